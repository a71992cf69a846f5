//! `GET /files/sha256/<hex>` and `GET /files/sha256/<hex>/thumb`: a blob, or its thumbnail,
//! for whoever may read a document that references it, by device token or web session.
//!
//! Knowing a hash is no permission: a blob no readable document references is answered
//! exactly like a missing one (404). Every answer is audited first, as a `read` of the
//! document that granted it, naming the blob in the detail. The bytes are streamed one stored
//! chunk at a time, under headers that keep a browser from doing anything with them but show
//! an image or download a PDF.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{Author, RegionCode, may_read_placed};
use fieldsync_protocol::BlobHash;

use super::{Refusal, device, device_token, thumb};
use crate::AppState;
use crate::storage::blobs::Blob;
use crate::storage::caseload::Placed;
use crate::storage::{AuditEntry, Storage, Write, now_millis};
use crate::web::session::{Credential, SESSION_COOKIE, Viewer, cookie};

/// `GET /files/sha256/<hex>`: the blob's bytes.
pub async fn blob(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let (blob, _) = permitted(&state, &headers, addr, &hash, "").await?;
    let mut out = blob_headers(&blob.sha256, &blob.mime, "");
    if fresh(&headers, &out) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    let body = Body::from_stream(chunks(state.storage.clone(), blob));
    Ok((StatusCode::OK, out, body).into_response())
}

/// `GET /files/sha256/<hex>/thumb`: a JPEG at most 320 px on its longest side, for images.
pub async fn thumbnail(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let (blob, _) = permitted(&state, &headers, addr, &hash, " thumbnail").await?;
    if !blob.mime.starts_with("image/") {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "no-thumbnail",
            "this file is not an image: it has no thumbnail",
        ));
    }
    let out = blob_headers(&blob.sha256, "image/jpeg", "-thumb");
    if fresh(&headers, &out) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let bytes = match state.storage.thumbnail(blob.sha256).await? {
        Some(bytes) => bytes,
        None => {
            let made = make_thumbnail(&state, &blob).await?;
            state
                .storage
                .put_thumbnail(blob.sha256, &made, now_millis())
                .await?;
            made
        }
    };
    Ok((StatusCode::OK, out, bytes).into_response())
}

/// The blob, if the caller may read a document that references it, with the line that
/// audits this read already stored; else 404 (401 without a device token or session).
async fn permitted(
    state: &AppState,
    headers: &HeaderMap,
    addr: SocketAddr,
    hash: &str,
    what: &str,
) -> Result<(Blob, Placed), Refusal> {
    let reader = reader(state, headers, addr).await?;
    let sha256 = BlobHash::parse(hash).ok_or_else(Refusal::not_found)?;
    let granted = state
        .storage
        .referencing(sha256)
        .await?
        .into_iter()
        .find(|p| {
            RegionCode::parse(&p.area)
                .is_ok_and(|area| may_read_placed(&reader.author, p.kind, &area))
        })
        .ok_or_else(Refusal::not_found)?;
    let blob = state
        .storage
        .blob(sha256)
        .await?
        .ok_or_else(Refusal::not_found)?;
    let line = AuditEntry {
        at: now_millis(),
        device_id: reader.device,
        user_id: reader.user,
        document_id: granted.document_id.clone(),
        action: "read".into(),
        detail: format!("{} attachment{what} {sha256}", granted.kind.as_str()),
    };
    state.storage.write(&[Write::Audit(line)]).await?;
    Ok((blob, granted))
}

/// Who reads, as the read rule and the audit log see them.
struct Reader {
    author: Author,
    device: String,
    user: String,
}

/// A device (its token) or a person signed in on the web (the session cookie).
async fn reader(
    state: &AppState,
    headers: &HeaderMap,
    addr: SocketAddr,
) -> Result<Reader, Refusal> {
    if device_token(headers).is_some() {
        let who = device(state, headers, addr).await?;
        return Ok(Reader {
            author: Author::user(who.user.id.clone(), who.user.role, who.user.areas.clone()),
            device: who.device_id,
            user: who.user.id,
        });
    }
    let unauthorized = || {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in, or send a device token as Authorization: Bearer",
        )
    };
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(unauthorized)?;
    let hash = crate::auth::token_hash(&token);
    let session = state
        .storage
        .session(&hash, now_millis())
        .await?
        .ok_or_else(unauthorized)?;
    let viewer = Viewer {
        user: session.user,
        lang: crate::web::i18n::Lang::of(headers),
        csrf: Some(session.csrf_token),
        credential: Credential::Session(hash),
        area_names: state.areas.names(),
    };
    Ok(Reader {
        author: viewer.author(),
        device: viewer.editor().device.to_string(),
        user: viewer.user.id,
    })
}

/// Headers of a blob's answer: its type, a safe name, nothing for a browser to sniff or run,
/// and private caching forever (a hash names the same bytes forever).
fn blob_headers(sha256: &BlobHash, mime: &str, suffix: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    let (disposition, extension) = match mime {
        "image/jpeg" => ("inline", "jpg"),
        "image/png" => ("inline", "png"),
        "image/webp" => ("inline", "webp"),
        "application/pdf" => ("attachment", "pdf"),
        _ => ("attachment", "bin"),
    };
    let short = &sha256.to_string()[..12];
    let name = format!("lampiran-{short}{suffix}.{extension}");
    let pairs = [
        (header::CONTENT_TYPE, mime.to_owned()),
        (
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{name}\""),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; img-src 'self'".to_owned(),
        ),
        (
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable".to_owned(),
        ),
        (header::ETAG, format!("\"{sha256}{suffix}\"")),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::try_from(value) {
            out.insert(name, value);
        }
    }
    out
}

/// Whether the request's `If-None-Match` names this answer's ETag.
fn fresh(request: &HeaderMap, answer: &HeaderMap) -> bool {
    let (Some(sent), Some(etag)) = (
        request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok()),
        answer.get(header::ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    sent.split(',').any(|t| t.trim() == etag || t.trim() == "*")
}

/// The blob's bytes, one stored chunk at a time.
fn chunks(
    storage: Arc<dyn Storage>,
    blob: Blob,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(0u64, move |next| {
        let storage = storage.clone();
        let content = blob.content.clone();
        let size = blob.size;
        async move {
            if next >= size {
                return None;
            }
            match storage.chunk(&content, next, size).await {
                Ok(Some((start, data))) if start == next && !data.is_empty() => {
                    let after = next + data.len() as u64;
                    Some((Ok(data), after))
                }
                Ok(_) => {
                    tracing::error!(content = %content, "a stored blob is missing a chunk");
                    Some((Err(std::io::Error::other("blob chunk missing")), size))
                }
                Err(e) => {
                    tracing::error!("blob not read: {e}");
                    Some((Err(std::io::Error::other("storage failed")), size))
                }
            }
        }
    })
}

/// Decodes the image off the async workers, within the bounds of [`thumb`].
async fn make_thumbnail(state: &AppState, blob: &Blob) -> Result<Vec<u8>, Refusal> {
    let format = thumb::format_of(&blob.mime).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "no-thumbnail",
            "this file is not an image: it has no thumbnail",
        )
    })?;
    // The encoded image, at most the largest attachment; decoding needs it whole.
    let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
    let mut next = 0;
    while next < blob.size {
        match state.storage.chunk(&blob.content, next, blob.size).await? {
            Some((start, data)) if start == next && !data.is_empty() => {
                next += data.len() as u64;
                bytes.extend_from_slice(&data);
            }
            _ => return Err(Refusal::internal("a stored blob is missing a chunk")),
        }
    }
    let made = state
        .hub
        .run_heavy(move || thumb::make(&bytes, format))
        .await
        .map_err(Refusal::internal)?;
    made.map_err(|e| {
        tracing::info!(blob = %blob.sha256, "no thumbnail: {e}");
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-decodable",
            e.to_string(),
        )
    })
}
