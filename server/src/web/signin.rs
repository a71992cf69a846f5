//! The sign-in page, signing in and out, and the language switch.
//!
//! The sign-in form is tied to the browser that loaded it (a random token in a cookie and in
//! the form), failed attempts count per account (lockout) and per address (the limiter), and
//! an unknown user id costs as much time as a wrong password.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::ApiError;
use super::i18n::Lang;
use super::layout;
use super::session::{
    LOCK_AFTER, LOCK_MS, LOGIN_COOKIE, SESSION_COOKIE, SESSION_MS, Submitted, constant_time_eq,
    cookie, decoy_hash, set_cookie, verify_password,
};
use crate::AppState;
use crate::auth::{self, Throttled};
use crate::storage::now_millis;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A local path to return to after signing in; anything else goes home.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `GET /login`
pub async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let form_token = auth::new_token();
    let message = match q.error.as_deref() {
        Some("locked") => Some(lang.t(
            "Terlalu banyak percobaan gagal. Akun dikunci 15 menit.",
            "Too many failed attempts. The account is locked for 15 minutes.",
        )),
        Some("throttled") => Some(lang.t(
            "Terlalu banyak percobaan dari alamat ini. Coba lagi sebentar lagi.",
            "Too many attempts from this address. Try again in a minute.",
        )),
        Some("expired") => Some(lang.t(
            "Formulir kedaluwarsa. Silakan coba lagi.",
            "The form expired. Please try again.",
        )),
        Some(_) => Some(lang.t(
            "ID pengguna atau kata sandi salah.",
            "Wrong user id or password.",
        )),
        None => None,
    };
    let next = safe_next(q.next.as_deref());
    let body = login_form(lang, &form_token, &next, message);
    let mut response =
        layout::page(lang, None, lang.t("Masuk", "Sign in"), "/login", body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, &form_token, 3600),
    );
    response
}

fn login_form(lang: Lang, form_token: &str, next: &str, message: Option<&str>) -> Markup {
    html! {
        section.narrow {
            h1 { (lang.t("Masuk", "Sign in")) }
            p.muted { (lang.t(
                "Untuk koordinator, supervisor, dan petugas Dinas Sosial.",
                "For coordinators, supervisors and Dinas Sosial staff."
            )) }
            @if let Some(m) = message { p.alert role="alert" { (m) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(form_token);
                input type="hidden" name="next" value=(next);
                label for="username" { (lang.t("ID pengguna", "User id")) }
                input #username name="username" autocomplete="username" required autofocus;
                label for="password" { (lang.t("Kata sandi", "Password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { (lang.t("Masuk", "Sign in")) }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let again = |error: &str| {
        let query = serde_urlencoded::to_string([
            ("error", error),
            ("next", &safe_next(form.next.as_deref())),
        ])
        .unwrap_or_default();
        Redirect::to(&format!("/login?{query}")).into_response()
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(&form.csrf, &expected) {
        return again("expired");
    }
    if let Err(Throttled::TooManyConnections | Throttled::TooManyFailures) =
        state.limiter.attempt(addr.ip())
    {
        return again("throttled");
    }
    let now = now_millis();
    let username = form.username.trim().to_owned();
    let credentials = match state.storage.credentials(&username).await {
        Ok(c) => c,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let hash = credentials
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |c| c.password_hash.clone());
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(credentials) = credentials.filter(|c| !c.user.disabled) else {
        state.limiter.failed(addr.ip());
        return again("wrong");
    };
    if credentials.locked_until.is_some_and(|t| t > now) {
        return again("locked");
    }
    if !matches {
        state.limiter.failed(addr.ip());
        let failures = state
            .storage
            .sign_in_failed(&username, now, LOCK_AFTER, LOCK_MS)
            .await
            .unwrap_or(0);
        tracing::info!(user = %username, failures, "web sign-in failed");
        return again(if failures >= LOCK_AFTER {
            "locked"
        } else {
            "wrong"
        });
    }
    let token = auth::new_token();
    let csrf = auth::new_token();
    let stored = async {
        state.storage.sign_in_succeeded(&username).await?;
        state
            .storage
            .create_session(
                &auth::token_hash(&token),
                &username,
                &csrf,
                now,
                now + SESSION_MS,
            )
            .await
    };
    if let Err(e) = stored.await {
        return ApiError::internal(e).into_response();
    }
    tracing::info!(user = %username, "signed in on the web");
    let mut response = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_MS / 1000),
    );
    headers.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    response
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

/// `POST /logout`
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Submitted(_, Nothing {}): Submitted<Nothing>,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state
            .storage
            .delete_session(&auth::token_hash(&token))
            .await
    {
        return ApiError::internal(e).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /lang/{code}`: switches the language of the pages, then goes back.
pub async fn switch_lang(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(code): axum::extract::Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let mut response = Redirect::to(&safe_next(q.next.as_deref())).into_response();
    let cookie = format!(
        "{}={}; Path=/; SameSite=Lax; Max-Age=31536000{}",
        super::i18n::COOKIE,
        lang.code(),
        if state.secure_cookies { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_local() {
        assert_eq!(
            safe_next(Some("/referrals?status=submitted")),
            "/referrals?status=submitted"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
