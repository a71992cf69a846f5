//! The sign-in page, signing in and out, and the language switch.
//!
//! The sign-in form is tied to the browser that loaded it (a random token in a cookie and in
//! the form). Failed attempts hold back the address that made them (`lockout.rs`, and the
//! per-address limiter), never the account, and every refusal looks the same whether the user
//! id exists or not: same page, same status, and an unknown id costs as much time as a wrong
//! password. User ids are lowercase, so what is typed is lowercased before it is looked up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::ApiError;
use super::i18n::Lang;
use super::layout;
use super::lockout::Lockout;
use super::session::{
    LOGIN_COOKIE, SESSION_COOKIE, SESSION_MS, Submitted, constant_time_eq, cookie, decoy_hash,
    set_cookie, verify_password,
};
use crate::AppState;
use crate::auth::{self, Throttled};
use crate::storage::now_millis;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Why the sign-in form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A wrong password, an unknown or disabled user id: one answer for all three.
    Wrong,
    /// This address failed too often for this user id.
    HeldBack,
    /// This address failed too often for any user id.
    Throttled,
    /// The form's token did not match the browser's.
    Expired,
}

impl Refusal {
    fn message(self, lang: Lang) -> &'static str {
        match self {
            Self::Wrong => lang.t("ID pengguna atau kata sandi salah.", "Wrong user id or password."),
            Self::HeldBack => lang.t(
                "Terlalu banyak percobaan gagal untuk ID ini dari alamat ini. Coba lagi dalam 15 menit.",
                "Too many failed attempts for this user id from this address. Try again in 15 minutes.",
            ),
            Self::Throttled => lang.t(
                "Terlalu banyak percobaan dari alamat ini. Coba lagi sebentar lagi.",
                "Too many attempts from this address. Try again in a minute.",
            ),
            Self::Expired => lang.t(
                "Formulir kedaluwarsa. Silakan coba lagi.",
                "The form expired. Please try again.",
            ),
        }
    }
}

/// A local path to return to after signing in or switching language; anything else goes
/// home.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| is_local_path(n)).unwrap_or("/").to_owned()
}

/// Whether `next` stays on this site whatever a browser makes of it: it starts with one `/`
/// not followed by another, and holds no backslash, whitespace or control character (nor a
/// percent-encoded backslash or control character). Browsers drop tabs and line breaks from a URL and read `\` as `/`, so
/// `/\t/host`, `/\host` and `/\r\n/host` all lead to another host.
fn is_local_path(next: &str) -> bool {
    let bytes = next.as_bytes();
    let encoded_hostile = bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f || b == b'\\')
    });
    next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
        && !encoded_hostile
}

/// `GET /login`
pub async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    form_page(&state, Lang::of(&headers), &next, "", None)
}

/// The sign-in page with a fresh form token, and why it is shown again if it is.
fn form_page(
    state: &AppState,
    lang: Lang,
    next: &str,
    username: &str,
    refusal: Option<Refusal>,
) -> Response {
    let form_token = auth::new_token();
    let message = refusal.map(|r| r.message(lang));
    let body = login_form(lang, &form_token, next, username, message);
    let mut response =
        layout::page(lang, None, lang.t("Masuk", "Sign in"), "/login", body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &form_token, 3600),
    );
    response
}

fn login_form(
    lang: Lang,
    form_token: &str,
    next: &str,
    username: &str,
    message: Option<&str>,
) -> Markup {
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
                // Phones would capitalise and "correct" a user id otherwise.
                input #username name="username" value=(username) autocomplete="username"
                    autocapitalize="none" autocorrect="off" spellcheck="false" required
                    autofocus[username.is_empty()];
                label for="password" { (lang.t("Kata sandi", "Password")) }
                input #password type="password" name="password" autocomplete="current-password"
                    required autofocus[!username.is_empty()];
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

/// `POST /login`: signs in and goes on to `next`, or shows the form again (with what was
/// typed as the user id) and why.
pub async fn login(
    State(state): State<Arc<AppState>>,
    Extension(lockout): Extension<Arc<Lockout>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let next = safe_next(form.next.as_deref());
    let typed = form.username.trim();
    let again = |refusal: Refusal| form_page(&state, lang, &next, typed, Some(refusal));
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(&form.csrf, &expected) {
        return again(Refusal::Expired);
    }
    let ip = addr.ip();
    if let Err(Throttled::TooManyConnections | Throttled::TooManyFailures) =
        state.limiter.attempt(ip)
    {
        return again(Refusal::Throttled);
    }
    let username = typed.to_ascii_lowercase();
    if lockout.locked(&username, ip, Instant::now()) {
        return again(Refusal::HeldBack);
    }
    let now = now_millis();
    let credentials = match state.storage.credentials(&username).await {
        Ok(c) => c,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    // An unknown or disabled user costs the same verification as a known one.
    let hash = credentials
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |c| c.password_hash.clone());
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let credentials = credentials.filter(|c| !c.user.disabled);
    if !matches || credentials.is_none() {
        state.limiter.failed(ip);
        let held_back = lockout.failed(&username, ip, Instant::now());
        // The account is never locked; its failures in a row (from any address) go to the
        // log, where a guess spread over many addresses shows.
        let failures = if credentials.is_some() {
            state
                .storage
                .sign_in_failed(&username, now, i64::MAX, 0)
                .await
                .unwrap_or(0)
        } else {
            0
        };
        crate::metrics::security_event(if held_back {
            crate::metrics::Security::Lockout
        } else {
            crate::metrics::Security::SignInFailed
        });
        // What was typed as a user id is logged only when it is one: people type their
        // password into the wrong field.
        match credentials {
            Some(_) => tracing::info!(user = %username, failures, held_back, "web sign-in failed"),
            None => tracing::info!(held_back, "web sign-in failed: no such user id"),
        }
        return again(if held_back {
            Refusal::HeldBack
        } else {
            Refusal::Wrong
        });
    }
    lockout.succeeded(&username, ip);
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
    let mut response = Redirect::to(&next).into_response();
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
        for local in [
            "/",
            "/referrals?status=submitted",
            "/activity?q=a%20b",
            "/a/b#c",
        ] {
            assert_eq!(safe_next(Some(local)), local);
        }
        for hostile in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "\t//evil.example",
            "/\r\n/evil.example",
            "/%09/evil.example",
            "/%5C/evil.example",
            "/%0a/evil.example",
            "/ /evil.example",
            "/\u{85}/evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
