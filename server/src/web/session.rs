//! Signing in on the web: passwords (argon2id), session cookies, CSRF tokens, lockout, and
//! API tokens for scripts.
//!
//! A browser signs in with the user id and password and gets a random session token in an
//! HttpOnly, SameSite=Lax cookie (Secure under TLS); the database keeps only its SHA-256. Every
//! form carries the session's CSRF token, and an API call made with the cookie sends it as
//! `X-CSRF-Token`; a script uses `Authorization: Bearer fsa_…` instead and needs neither.
//! Handlers state what they need by their extractors: [`ApiUser`], [`PageUser`],
//! [`Submitted`].

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use fieldsync_core::schema::Role;
use serde::Deserialize;

use super::error::ApiError;
use super::i18n::Lang;
use super::layout;
use crate::AppState;
use crate::auth;
use crate::storage::web::ApiToken;
use crate::storage::{Storage, now_millis};

/// The session cookie.
pub const SESSION_COOKIE: &str = "fieldsync_session";
/// The cookie that ties the sign-in form to the browser that loaded it.
pub(super) const LOGIN_COOKIE: &str = "fieldsync_login";
/// How long a session lasts: one working day.
pub(super) const SESSION_MS: i64 = 12 * 3_600_000;
/// Shortest password `fieldsync user password` accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;

pub use super::cookies::cookie;
pub(super) use super::cookies::set_cookie;
pub use super::viewer::{Credential, Viewer};

async fn identify(parts: &Parts, state: &AppState) -> Result<Option<Viewer>, ApiError> {
    let lang = Lang::of(&parts.headers);
    let now = now_millis();
    if let Some(token) = auth::request_token(&parts.headers, None) {
        let hash = auth::token_hash(&token);
        let user = state.storage.api_token_user(&hash, now).await?;
        return Ok(user.map(|user| Viewer {
            user,
            lang,
            csrf: None,
            credential: Credential::ApiToken(hash),
            area_names: state.areas.names(),
        }));
    }
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = auth::token_hash(&token);
    let session = state.storage.session(&hash, now).await?;
    Ok(session.map(|s| Viewer {
        user: s.user,
        lang,
        csrf: Some(s.csrf_token),
        credential: Credential::Session(hash),
        area_names: state.areas.names(),
    }))
}

/// A signed-in caller of the JSON API. A state-changing call made with the session cookie
/// must carry the session's CSRF token in `X-CSRF-Token`.
#[derive(Debug, Clone)]
pub struct ApiUser(pub Viewer);

impl FromRequestParts<Arc<AppState>> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let viewer = identify(parts, state)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if !is_safe(&parts.method)
            && let Some(expected) = &viewer.csrf
        {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|s| constant_time_eq(s, expected)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a call made with the session cookie must send X-CSRF-Token",
                ));
            }
        }
        Ok(Self(viewer))
    }
}

/// A signed-in person viewing a page; anyone else is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct PageUser(pub Viewer);

impl FromRequestParts<Arc<AppState>> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        match identify(parts, state).await {
            Ok(Some(viewer)) if viewer.csrf.is_some() => Ok(Self(viewer)),
            Ok(_) => Err(to_login(parts)),
            Err(e) => Err(layout::error_page(
                Lang::of(&parts.headers),
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.message,
            )),
        }
    }
}

fn to_login(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = format!(
        "/login?{}",
        serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
    );
    Redirect::to(&target).into_response()
}

/// A form posted by a signed-in person, its CSRF token checked: `T` is the form's other
/// fields.
#[derive(Debug)]
pub struct Submitted<T>(pub Viewer, pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Arc<AppState>> for Submitted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let PageUser(viewer) = PageUser::from_request_parts(&mut parts, state).await?;
        let lang = viewer.lang;
        let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| {
            layout::error_page(lang, StatusCode::PAYLOAD_TOO_LARGE, "form too large")
        })?;
        let token: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField {
            csrf: String::new(),
        });
        let expected = viewer.csrf.as_deref().unwrap_or_default();
        if !constant_time_eq(&token.csrf, expected) {
            return Err(layout::error_page(
                lang,
                StatusCode::FORBIDDEN,
                lang.t(
                    "Formulir kedaluwarsa atau tidak sah. Muat ulang halaman lalu coba lagi.",
                    "The form expired or is not valid. Reload the page and try again.",
                ),
            ));
        }
        // The parser's own words are English, may quote what was typed, and do not say what
        // to do: the page says what to do, and the log keeps neither.
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            tracing::debug!("a submitted form could not be read");
            layout::error_page(
                lang,
                StatusCode::BAD_REQUEST,
                lang.t(
                    "Isian formulir tidak dapat dibaca. Muat ulang halaman lalu coba lagi.",
                    "The form could not be read. Reload the page and try again.",
                ),
            )
        })?;
        Ok(Self(viewer, form))
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares secrets without leaking where they differ.
pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An argon2id hash (PHC string) of a password.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

pub(super) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, verified for unknown users so that a wrong user id takes as
/// long to refuse as a wrong password.
pub(super) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&auth::new_token()).unwrap_or_default())
}

/// Sets a user's web password (`fieldsync user password`); their open sessions end.
pub async fn set_password(
    storage: &dyn Storage,
    user_id: &str,
    password: &str,
) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!("the password needs at least {MIN_PASSWORD_CHARS} characters");
    }
    let user = storage
        .user(user_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {user_id:?}"))?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    if !storage.set_password(&user.id, &hash).await? {
        anyhow::bail!("no user {user_id:?}");
    }
    Ok(())
}

/// Issues an API token for scripts (`fieldsync user api-token`); returns it with its secret,
/// which is shown only now.
pub async fn issue_api_token(
    storage: &dyn Storage,
    user_id: &str,
    label: &str,
    expires_in_days: Option<u32>,
) -> anyhow::Result<(ApiToken, String)> {
    let now = now_millis();
    let token = ApiToken {
        id: auth::new_id("api"),
        user_id: user_id.to_owned(),
        label: label.to_owned(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
    };
    let secret = format!("fsa_{}", &auth::new_token()[4..]);
    if !storage
        .add_api_token(&token, &auth::token_hash(&secret))
        .await?
    {
        anyhow::bail!("no enabled user {user_id:?}");
    }
    Ok((token, secret))
}

/// Whether a role may use a part of the web at all.
pub fn require_role(viewer: &Viewer, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&viewer.user.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this is not available to the role {}",
            viewer.user.role
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let hash = hash_password("kata sandi panjang").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "kata sandi panjang"));
        assert!(!verify_password(&hash, "kata sandi salah!"));
        assert!(!verify_password(decoy_hash(), ""));
    }

    #[test]
    fn comparing_in_constant_time() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
    }
}
