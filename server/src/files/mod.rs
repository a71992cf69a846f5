//! Attachments over HTTP, under `/files/` (docs/protocol.md, "Attachments"): photos and scans
//! that visits and referrals reference by SHA-256.
//!
//! - [`tus`]: uploads by the tus 1.0.0 resumable upload protocol (core, creation,
//!   creation-with-upload, termination, checksum, expiration), with a device token, and
//!   `HEAD /files/sha256/<hex>`, which tells a phone whether the server has a blob already.
//!   Bodies are streamed into chunk rows ([`crate::storage::blobs`]); nothing holds a whole
//!   blob in memory.
//! - [`read`]: `GET /files/sha256/<hex>` and `…/thumb`, for whoever may read a document that
//!   references the blob (device token or web session), audited like a document read.
//! - [`thumb`]: thumbnails decoded on a blocking thread from images whose dimensions were
//!   checked first.
//!
//! Unfinished uploads expire ([`crate::Limits::upload_expiry`]); [`expire_uploads`] deletes
//! them periodically, on every process (the deletes are idempotent).

pub mod read;
pub mod thumb;
pub mod tus;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, options};

use crate::AppState;
use crate::auth;
use crate::metrics;
use crate::storage::directory::{Identity, TokenStatus};
use crate::storage::{Storage, now_millis};

/// The MIME types an attachment may have.
pub const ALLOWED_MIME: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// The routes under `/files/`.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/files/", options(tus::options).post(tus::create))
        .route("/files", options(tus::options).post(tus::create))
        .route(
            "/files/{id}",
            head(tus::head_upload)
                .patch(tus::patch)
                .delete(tus::terminate)
                .options(tus::options),
        )
        .route("/files/sha256/{hash}", get(read::blob).head(tus::head_blob))
        .route("/files/sha256/{hash}/thumb", get(read::thumbnail))
}

/// A refusal: JSON `{"error", "message"}` like `/sync`'s, with `Tus-Resumable` so that tus
/// clients read it as an answer of this protocol.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The same for a missing thing and a thing the caller may not see.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "no such file")
    }

    /// Logs the cause; the client only learns that something failed on our side.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("files: {cause}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server cannot store or read files now; try again later",
        )
    }
}

impl From<crate::storage::StorageError> for Refusal {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = crate::refuse(self.status, self.code, &self.message);
        response.headers_mut().insert(
            "tus-resumable",
            HeaderValue::from_static(fieldsync_protocol::tus::TUS_VERSION),
        );
        response
    }
}

/// The device a request comes from, by its token (`Authorization: Bearer`, or the field
/// app's cookie from our own origin): 401 like `/sync`'s when missing, unknown, expired or
/// revoked.
pub(crate) async fn device(
    state: &AppState,
    headers: &HeaderMap,
    addr: SocketAddr,
) -> Result<Identity, Refusal> {
    let Some(token) = device_token(headers) else {
        metrics::security_event(metrics::Security::TokenMissing);
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a device token is required (Authorization: Bearer)",
        ));
    };
    match state
        .storage
        .authenticate(&auth::token_hash(&token), now_millis())
        .await?
    {
        TokenStatus::Valid(identity) => Ok(identity),
        TokenStatus::Revoked => {
            metrics::security_event(metrics::Security::TokenRevoked);
            Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "device-revoked",
                crate::live::WIPE,
            ))
        }
        TokenStatus::Expired => {
            metrics::security_event(metrics::Security::TokenExpired);
            Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "token-expired",
                "this device's token has expired; ask an administrator for a new one",
            ))
        }
        TokenStatus::Unknown => {
            metrics::security_event(metrics::Security::TokenUnknown);
            tracing::info!(%addr, "files: refused an unknown token");
            Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this token is not valid",
            ))
        }
    }
}

/// A device token in the request, if any.
fn device_token(headers: &HeaderMap) -> Option<String> {
    auth::request_token(headers, None).or_else(|| auth::device_cookie(headers))
}

/// Deletes expired uploads now and then until `stop`: every eighth of the expiry, at least
/// every 15 minutes and at most every second.
pub(crate) async fn expire_uploads(
    storage: Arc<dyn Storage>,
    expiry: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let period = (expiry / 8).clamp(Duration::from_secs(1), Duration::from_secs(15 * 60));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        match storage.expire_uploads(now_millis()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired unfinished uploads deleted"),
            Err(e) => tracing::warn!("expired uploads not deleted: {e}"),
        }
    }
}
