//! Enrollment of field-app phones with one-time codes, and the app's check that its device
//! may still sync.
//!
//! - `POST /api/enrollment-codes` (an administrator, or a coordinator for the field workers
//!   of their areas): makes a code for a user; the page `/admin/enroll` does the same.
//! - `POST /api/enroll` (no sign-in: the phone has only the code): exchanges a code once for
//!   a new device of the code's user. The device token goes into an HttpOnly cookie limited to
//!   `/sync` and `/files` (`auth::DEVICE_COOKIE`), so page scripts never hold it and it is
//!   never in a URL.
//!   Wrong codes count as failed sign-ins of the address (the limiter), and every attempt is
//!   audited, without the code.
//! - `POST /sync/device`: whether the app's cookie is still a valid device (a browser cannot
//!   read why a WebSocket upgrade was refused); `device-revoked` tells the app to wipe itself.
//!   A valid device gets its cookies set again (a phone enrolled before `/files` existed
//!   gains that one).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use fieldsync_core::schema::Role;
use serde::Deserialize;
use serde_json::json;

use super::api::{ApiRoute, error_response, ok_json};
use super::error::ApiError;
use super::session::{ApiUser, Viewer};
use crate::AppState;
use crate::admin;
use crate::auth::{self, Throttled};
use crate::storage::directory::{AuditEntry, TokenStatus, User};
use crate::storage::enroll::CodeUse;
use crate::storage::now_millis;

/// How long the app's device cookie lasts: 400 days, the most browsers keep a cookie. The
/// device token itself does not expire unless the administrator gave it an expiry.
const DEVICE_COOKIE_SECS: i64 = 400 * 86_400;

/// The routes a phone calls without a web session.
pub(crate) fn device_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/enroll", post(enroll))
        .route("/sync/device", post(device_status))
}

pub(crate) fn api_routes() -> Vec<ApiRoute> {
    vec![ApiRoute::new(
        Method::POST,
        "/api/enrollment-codes",
        post(make_code_api),
        json!({
            "summary": "Make a one-time enrollment code for a user's phone (the field app at /app/)",
            "description": "Administrators, for any user but an administrator; coordinators, for the field workers of their areas. The code works once, for 24 hours.",
            "tags": ["enrollment"],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["user"],
                "properties": {"user": {"type": "string", "description": "user id"}}
            }}}},
            "responses": {
                "200": ok_json(json!({
                    "type": "object",
                    "required": ["user", "code", "expiresAt", "link"],
                    "properties": {
                        "user": {"type": "string"},
                        "code": {"type": "string", "description": "XXXX-XXXX, shown only now"},
                        "expiresAt": {"type": "integer", "description": "epoch milliseconds"},
                        "link": {"type": "string", "description": "the app with the code filled in (in the fragment, never sent to a server)"}
                    }
                })),
                "400": error_response("No such user, or a disabled one"),
                "401": error_response("Not signed in"),
                "403": error_response("The caller may not enroll phones for this user")
            }
        }),
    )]
}

/// Whether `viewer` may make enrollment codes for `target`.
pub fn may_enroll(viewer: &User, target: &User) -> bool {
    match viewer.role {
        Role::Admin => target.role != Role::Admin,
        Role::Coordinator => {
            target.role == Role::Peksos
                && !target.areas.is_empty()
                && target
                    .areas
                    .iter()
                    .all(|a| viewer.areas.iter().any(|mine| mine.covers(a)))
        }
        _ => false,
    }
}

/// A code made by a person on the web, with the audit line of its making.
pub(crate) async fn make_code(
    state: &AppState,
    viewer: &Viewer,
    user_id: &str,
) -> Result<(User, String, i64), ApiError> {
    if !matches!(viewer.user.role, Role::Admin | Role::Coordinator) {
        return Err(ApiError::forbidden(
            "only administrators and coordinators make enrollment codes",
        ));
    }
    let target = state
        .storage
        .user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::invalid("no enabled user with this id"))?;
    if !may_enroll(&viewer.user, &target) {
        return Err(ApiError::forbidden(
            "you may make codes only for the field workers of your areas",
        ));
    }
    let (code, expires_at) = admin::make_enrollment_code(
        state.storage.as_ref(),
        &target.id,
        &viewer.user.id,
        admin::ENROLLMENT_CODE_HOURS,
    )
    .await
    .map_err(ApiError::internal)?;
    audit(
        state,
        AuditEntry {
            at: now_millis(),
            device_id: format!("web:{}", viewer.user.id),
            user_id: target.id.clone(),
            document_id: String::new(),
            action: "enroll-code".into(),
            detail: format!("made by {}", viewer.user.id),
        },
    )
    .await?;
    Ok((target, code, expires_at))
}

/// The app with the code in the fragment: what the QR code holds.
pub(crate) fn link(state: &AppState, headers: &HeaderMap, code: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/app/#enroll={code}")
}

#[derive(Debug, Deserialize)]
struct MakeCode {
    #[serde(default)]
    user: String,
}

async fn make_code_api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    headers: HeaderMap,
    body: Result<Json<MakeCode>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Ok(Json(body)) = body else {
        return Err(ApiError::invalid("send {\"user\": \"<user id>\"}"));
    };
    let (target, code, expires_at) = make_code(&state, &viewer, &body.user).await?;
    Ok(Json(json!({
        "user": target.id,
        "code": code,
        "expiresAt": expires_at,
        "link": link(&state, &headers, &code),
    })))
}

#[derive(Debug, Deserialize)]
struct EnrollRequest {
    code: String,
    #[serde(default)]
    label: String,
}

/// `POST /api/enroll`: a code for a new device of its user, the token in a cookie.
async fn enroll(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<EnrollRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let ip = addr.ip();
    if state.limiter.attempt(ip).is_err() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "too many attempts from this address; retry in a minute",
        ));
    }
    let Ok(Json(body)) = body else {
        return Err(ApiError::invalid(
            "send {\"code\": \"XXXX-XXXX\", \"label\": \"…\"}",
        ));
    };
    let code = admin::normalize_enrollment_code(&body.code);
    let taken = if code.len() == 8 {
        state
            .storage
            .take_enrollment_code(&auth::token_hash(&code), now_millis())
            .await?
    } else {
        CodeUse::Unknown
    };
    let user_id = match &taken {
        CodeUse::Taken { user_id } => user_id.clone(),
        refused => {
            state.limiter.failed(ip);
            crate::metrics::security_event(crate::metrics::Security::EnrollmentRefused);
            tracing::info!(%addr, why = refused.as_str(), "refused an enrollment code");
            audit(
                &state,
                attempt(String::new(), "enroll-refused", addr, refused.as_str()),
            )
            .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-code",
                "this enrollment code is not valid: wrong, already used, or expired",
            ));
        }
    };
    let label: String = body.label.trim().chars().take(80).collect();
    let label = if label.is_empty() {
        "field app"
    } else {
        &label
    };
    let (device, token) =
        match admin::enroll_device(state.storage.as_ref(), &user_id, Some(label), None).await {
            Ok(enrolled) => enrolled,
            Err(e) => {
                audit(
                    &state,
                    attempt(user_id, "enroll-refused", addr, "user cannot enroll"),
                )
                .await?;
                tracing::info!(%addr, "enrollment code of a user who cannot enroll: {e}");
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-code",
                    "this enrollment code is not valid: wrong, already used, or expired",
                ));
            }
        };
    let mut line = attempt(
        user_id.clone(),
        "enroll",
        addr,
        &format!("device {}", device.id),
    );
    line.device_id = device.id.clone();
    audit(&state, line).await?;
    let user = state
        .storage
        .user(&user_id)
        .await?
        .ok_or_else(|| ApiError::internal("enrolled user vanished"))?;
    state.caseloads.enrolled(&user).await;
    let index = admin::index_url(state.storage.as_ref(), &user.id)
        .await
        .map_err(ApiError::internal)?;
    let mut response = Json(json!({
        "user": {
            "id": user.id,
            "name": user.name,
            "role": user.role.as_str(),
            "areas": user.areas.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        },
        "deviceId": device.id,
        "indexUrl": index,
    }))
    .into_response();
    set_device_cookies(&mut response, &token, state.secure_cookies);
    Ok(response)
}

/// Sets the device cookie for each of its paths.
fn set_device_cookies(response: &mut Response, token: &str, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    for path in auth::DEVICE_COOKIE_PATHS {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!(
                "{}={token}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={DEVICE_COOKIE_SECS}{secure}",
                auth::DEVICE_COOKIE
            ))
            .expect("tokens are ASCII"),
        );
    }
}

fn attempt(user_id: String, action: &str, addr: SocketAddr, detail: &str) -> AuditEntry {
    AuditEntry {
        at: now_millis(),
        device_id: "enroll".into(),
        user_id,
        document_id: String::new(),
        action: action.into(),
        detail: format!("{detail}; from {}", addr.ip()),
    }
}

async fn audit(state: &AppState, entry: AuditEntry) -> Result<(), ApiError> {
    state.storage.audit_now(&entry).await?;
    Ok(())
}

/// `POST /sync/device`: is the app's device still allowed to sync?
async fn device_status(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ip = addr.ip();
    let refused = |code: &'static str, message: &str| {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, code, message))
    };
    if let Err(why) = state.limiter.attempt(ip) {
        let message = match why {
            Throttled::TooManyConnections => "too many requests from this address",
            Throttled::TooManyFailures => "too many failed sign-ins from this address",
        };
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("{message}; retry in a minute"),
        ));
    }
    let Some(token) = auth::device_cookie(&headers) else {
        state.limiter.failed(ip);
        return refused("unauthorized", "this browser is not an enrolled device");
    };
    match state
        .storage
        .authenticate(&auth::token_hash(&token), now_millis())
        .await?
    {
        // The user as the server knows them now: the app keeps their name and areas.
        TokenStatus::Valid(identity) => {
            let mut response = Json(json!({
                "status": "ok",
                "device": identity.device_id,
                "user": {
                    "id": identity.user.id,
                    "name": identity.user.name,
                    "role": identity.user.role.as_str(),
                    "areas": identity.user.areas.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                },
            }))
            .into_response();
            set_device_cookies(&mut response, &token, state.secure_cookies);
            Ok(response)
        }
        TokenStatus::Revoked => {
            state.limiter.failed(ip);
            refused("device-revoked", crate::live::WIPE)
        }
        TokenStatus::Expired => {
            state.limiter.failed(ip);
            refused("token-expired", "this device's token has expired")
        }
        TokenStatus::Unknown => {
            state.limiter.failed(ip);
            refused("unauthorized", "this device is not known")
        }
    }
}
