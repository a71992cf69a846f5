//! Reading and setting the cookies the web uses (session, sign-in form, language).

use axum::http::HeaderValue;

use crate::AppState;

pub use crate::auth::cookie;

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when served over TLS.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie values are ASCII")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::*;

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fieldsync_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, "fieldsync_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
