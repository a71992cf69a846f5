//! tus 1.0.0 at `/files/`: creation (`POST`), the offset (`HEAD`), appending (`PATCH`),
//! termination (`DELETE`), with per-PATCH checksums and expiration; and
//! `HEAD /files/sha256/<hex>`, whether a blob is stored.
//!
//! A PATCH body is read as it arrives, in [`CHUNK_BYTES`] pieces, each stored in its own
//! transaction: memory per upload is one chunk, and the offset the server reports counts only
//! committed chunks. With `Upload-Checksum` the pieces are stored without moving the offset,
//! which moves once the body's digest matched; otherwise a body cut in the middle keeps what
//! arrived. When the last byte is stored the whole blob's SHA-256 is computed from the stored
//! chunks and compared with the one announced at creation: only then does the blob exist.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::BlobHash;
use fieldsync_protocol::tus::{
    Checksum, ChecksumAlgorithm, HeaderError, Metadata, TUS_VERSION, parse_bytes,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{ALLOWED_MIME, Refusal, device};
use crate::AppState;
use crate::storage::blobs::{Claim, Finish, Upload, writer_token};
use crate::storage::directory::Identity;
use crate::storage::now_millis;

/// Largest chunk row (and the most of one upload's body held in memory).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// A PATCH body that sends nothing for this long counts as cut (a phone that lost its link
/// without the server hearing of it): what arrived is kept, and the upload is free again.
const BODY_IDLE: Duration = Duration::from_secs(60);
/// How long `HEAD` waits for a PATCH still writing the upload (one whose connection was just
/// cut, storing what arrived) before it answers the offset.
const HEAD_WAITS: Duration = Duration::from_secs(2);

/// What the server supports, for `OPTIONS`.
const EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
const CHECKSUMS: &str = "sha1,sha256";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// `OPTIONS /files/`: the protocol's capabilities, for anyone.
pub async fn options(State(state): State<Arc<AppState>>) -> Response {
    let mut headers = HeaderMap::new();
    put(&mut headers, "tus-resumable", TUS_VERSION);
    put(&mut headers, "tus-version", TUS_VERSION);
    put(&mut headers, "tus-extension", EXTENSIONS);
    put(
        &mut headers,
        "tus-max-size",
        &state.limits.max_attachment_bytes.to_string(),
    );
    put(&mut headers, "tus-checksum-algorithm", CHECKSUMS);
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// `POST /files/`: a new upload of a blob of `Upload-Length` bytes whose SHA-256 and MIME type
/// the metadata names; the body, if any, is its first bytes.
pub async fn create(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    // When the request came: a later request's PATCH takes an upload over, never an earlier's.
    let arrived = now_millis();
    resumable(&headers)?;
    let who = device(&state, &headers, addr).await?;
    let max = state.limits.max_attachment_bytes;
    if headers.contains_key("upload-defer-length") {
        return Err(invalid(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = parse_bytes(
        "Upload-Length",
        text(&headers, "upload-length").ok_or_else(|| invalid("Upload-Length is required"))?,
    )
    .map_err(header_error)?;
    if length > max {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "this file is {} and the server takes files of at most {}: send a smaller \
                 photo or scan",
                size_text(length),
                size_text(max)
            ),
        ));
    }
    if length == 0 {
        return Err(invalid("the file is empty"));
    }
    let metadata =
        Metadata::parse(text(&headers, "upload-metadata").unwrap_or("")).map_err(header_error)?;
    let sha256 = metadata
        .text("sha256")
        .and_then(BlobHash::parse)
        .ok_or_else(|| {
            invalid(
                "Upload-Metadata must carry sha256: the file's SHA-256 as 64 lowercase hex digits",
            )
        })?;
    let mime = metadata.text("filetype").unwrap_or("");
    if !ALLOWED_MIME.contains(&mime) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-type",
            format!(
                "Upload-Metadata filetype must be one of {}",
                ALLOWED_MIME.join(", ")
            ),
        ));
    }
    let now = now_millis();
    let existing = state.storage.blob(sha256).await?;
    if let Some(blob) = &existing
        && blob.size != length
    {
        return Err(invalid(
            "a file with this SHA-256 is stored with another length: the SHA-256 or the length is wrong",
        ));
    }
    let upload = Upload {
        id: format!("up_{}", uuid::Uuid::new_v4().simple()),
        user_id: who.user.id.clone(),
        device_id: who.device_id.clone(),
        sha256,
        mime: mime.to_owned(),
        length,
        // A blob stored already makes the upload complete at once: the client is done.
        stored: if existing.is_some() { length } else { 0 },
        created_at: now,
        expires_at: now.saturating_add(millis(state.limits.upload_expiry)),
        finished: existing.is_some(),
        writing: false,
    };
    state.storage.create_upload(&upload).await?;
    let location = format!("/files/{}", upload.id);
    // creation-with-upload: the body is the first bytes (read and dropped when the blob is
    // stored already).
    let with_body = text(&headers, header::CONTENT_TYPE.as_str()) == Some(OFFSET_STREAM);
    let offset = if with_body {
        match append(&state, &who, &upload.id, 0, &headers, arrived, body).await {
            Ok(offset) => offset,
            // The upload exists: the client learns where it is and what went wrong.
            Err(mut refusal) => {
                refusal.message = format!("{} (upload {location})", refusal.message);
                return Err(refusal);
            }
        }
    } else {
        upload.stored
    };
    let mut headers = upload_headers(&upload);
    put(&mut headers, "upload-offset", &offset.to_string());
    put(&mut headers, header::LOCATION.as_str(), &location);
    Ok((StatusCode::CREATED, headers).into_response())
}

/// `HEAD /files/<id>`: how much of the upload is stored, for the user who made it.
pub async fn head_upload(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    resumable(&headers)?;
    let who = device(&state, &headers, addr).await?;
    let mut upload = owned(&state, &who, &id).await?;
    // A client resumes right after its connection was cut, often before the PATCH on the
    // server's side has seen the cut and stored what arrived: the offset it would be told now
    // is about to grow, and a PATCH from it would be refused (409) after sending its body.
    let deadline = tokio::time::Instant::now() + HEAD_WAITS;
    while upload.writing && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        upload = owned(&state, &who, &id).await?;
    }
    let mut headers = upload_headers(&upload);
    put(&mut headers, "upload-offset", &upload.stored.to_string());
    put(&mut headers, "upload-length", &upload.length.to_string());
    Ok((StatusCode::OK, headers).into_response())
}

/// `PATCH /files/<id>`: bytes at `Upload-Offset`, which must be the stored offset.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    // When the request came: a later request's PATCH takes an upload over, never an earlier's.
    let arrived = now_millis();
    resumable(&headers)?;
    let who = device(&state, &headers, addr).await?;
    if text(&headers, header::CONTENT_TYPE.as_str()) != Some(OFFSET_STREAM) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-type",
            "a PATCH must be sent as Content-Type: application/offset+octet-stream",
        ));
    }
    let offset = parse_bytes(
        "Upload-Offset",
        text(&headers, "upload-offset").ok_or_else(|| invalid("Upload-Offset is required"))?,
    )
    .map_err(header_error)?;
    let upload = owned(&state, &who, &id).await?;
    let stored = append(&state, &who, &upload.id, offset, &headers, arrived, body).await?;
    let mut headers = upload_headers(&upload);
    put(&mut headers, "upload-offset", &stored.to_string());
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// `DELETE /files/<id>`: termination; the upload and its bytes go (a finished blob stays).
pub async fn terminate(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    resumable(&headers)?;
    let who = device(&state, &headers, addr).await?;
    let upload = owned(&state, &who, &id).await?;
    state.storage.delete_upload(&upload.id).await?;
    let mut headers = HeaderMap::new();
    put(&mut headers, "tus-resumable", TUS_VERSION);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// `HEAD /files/sha256/<hex>`: 200 when the blob is stored, else 404; for any enrolled device
/// (it says only that some phone uploaded these bytes, which the asker has).
pub async fn head_blob(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    device(&state, &headers, addr).await?;
    let sha256 = BlobHash::parse(&hash).ok_or_else(Refusal::not_found)?;
    state
        .storage
        .blob(sha256)
        .await?
        .ok_or_else(Refusal::not_found)?;
    let mut headers = HeaderMap::new();
    put(&mut headers, header::CACHE_CONTROL.as_str(), "no-store");
    Ok((StatusCode::OK, headers).into_response())
}

/// Stores a body at `offset` of the upload; the stored offset after it.
async fn append(
    state: &AppState,
    who: &Identity,
    id: &str,
    offset: u64,
    headers: &HeaderMap,
    arrived: i64,
    body: Body,
) -> Result<u64, Refusal> {
    let checksum = text(headers, "upload-checksum")
        .map(Checksum::parse)
        .transpose()
        .map_err(header_error)?;
    let storage = &state.storage;
    let upload = storage.upload(id).await?.ok_or_else(Refusal::not_found)?;
    if let Some(announced) =
        text(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok())
        && offset.saturating_add(announced) > upload.length
    {
        return Err(invalid("the body goes past Upload-Length"));
    }
    let writer = writer_token(arrived);
    match storage.claim(id, offset, &writer, now_millis()).await? {
        Claim::Claimed => {}
        Claim::Conflict { stored } => return Err(conflict(stored)),
        // A retry of a finished upload is a success, wherever it starts.
        Claim::Finished => {
            drain(body, upload.length).await;
            return Ok(upload.length);
        }
        Claim::Gone => return Err(Refusal::not_found()),
    }
    let written = write_body(state, who, &upload, offset, &writer, checksum, body).await;
    if let Err(e) = storage.release(id, &writer).await {
        tracing::warn!(upload = %id, "upload not released: {e}");
    }
    written
}

/// The body of a claimed PATCH, stored as it arrives; the stored offset after it.
async fn write_body(
    state: &AppState,
    who: &Identity,
    upload: &Upload,
    offset: u64,
    writer: &str,
    checksum: Option<Checksum>,
    body: Body,
) -> Result<u64, Refusal> {
    let (storage, id) = (&state.storage, upload.id.as_str());
    let durable = checksum.is_none();
    let mut digest = checksum.as_ref().map(|c| PatchDigest::new(c.algorithm));
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    // The offset of `buffer`'s first byte.
    let mut at = offset;
    let mut stream = body.into_data_stream();
    let mut cut = false;
    loop {
        let mut bytes = match tokio::time::timeout(BODY_IDLE, stream.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(bytes))) => bytes,
            // A connection error, or silence.
            Ok(Some(Err(_))) | Err(_) => {
                cut = true;
                break;
            }
        };
        if at + (buffer.len() + bytes.len()) as u64 > upload.length {
            return Err(invalid("the body goes past Upload-Length"));
        }
        if let Some(d) = digest.as_mut() {
            d.update(&bytes);
        }
        while !bytes.is_empty() {
            let take = (CHUNK_BYTES - buffer.len()).min(bytes.len());
            buffer.extend_from_slice(&bytes.split_to(take));
            if buffer.len() == CHUNK_BYTES {
                store(state, id, writer, at, &buffer, durable).await?;
                at += buffer.len() as u64;
                buffer.clear();
            }
        }
    }
    if cut && !durable {
        // Bytes of a body that was cut cannot be checked against its checksum: none count.
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "cut",
            "the body was cut before its end",
        ));
    }
    if !buffer.is_empty() {
        store(state, id, writer, at, &buffer, durable).await?;
        at += buffer.len() as u64;
    }
    if cut {
        // What arrived is stored; the client resumes from the offset HEAD reports.
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "cut",
            "the body was cut before its end",
        ));
    }
    if let (Some(checksum), Some(d)) = (&checksum, digest) {
        if d.finish() != checksum.digest {
            return Err(Refusal::new(
                StatusCode::from_u16(460).expect("460 is a valid status"),
                "checksum-mismatch",
                "Upload-Checksum does not match this PATCH's body: it was not stored; send it again",
            ));
        }
        if !storage.advance(id, writer, at).await? {
            return Err(taken_over());
        }
    }
    if at == upload.length {
        complete(state, who, upload, writer).await?;
    }
    Ok(at)
}

/// Reads and drops a body the server does not need (a finished upload's bytes sent again),
/// at most `limit` bytes of it: a client still sending when the answer comes could otherwise
/// have its connection reset before it reads the answer.
async fn drain(body: Body, limit: u64) {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(bytes)) = stream.next().await {
        seen += bytes.len() as u64;
        if seen > limit {
            return;
        }
    }
}

/// A full upload: its SHA-256, from the stored chunks, must be the one announced.
async fn complete(
    state: &AppState,
    who: &Identity,
    upload: &Upload,
    writer: &str,
) -> Result<(), Refusal> {
    let storage = &state.storage;
    let mut hasher = Sha256::new();
    let mut next = 0u64;
    while next < upload.length {
        let Some((start, data)) = storage.chunk(&upload.id, next, upload.length).await? else {
            break;
        };
        if start != next {
            break;
        }
        hasher.update(&data);
        next += data.len() as u64;
    }
    let whole = next == upload.length;
    if !whole || BlobHash::from_bytes(hasher.finalize().into()) != upload.sha256 {
        storage.delete_upload(&upload.id).await?;
        tracing::info!(
            upload = %upload.id,
            device = %who.device_id,
            "upload refused: its SHA-256 is not the one announced"
        );
        return Err(Refusal::new(
            StatusCode::from_u16(460).expect("460 is a valid status"),
            "checksum-mismatch",
            "the file's SHA-256 is not the one announced in Upload-Metadata: nothing was kept; \
             upload the file again from the start",
        ));
    }
    match storage.finish(&upload.id, writer, now_millis()).await? {
        Finish::Stored | Finish::Duplicate => Ok(()),
        Finish::Lost => Err(taken_over()),
    }
}

async fn store(
    state: &AppState,
    id: &str,
    writer: &str,
    at: u64,
    data: &[u8],
    durable: bool,
) -> Result<(), Refusal> {
    if state
        .storage
        .put_chunk(id, writer, at, data, durable)
        .await?
    {
        Ok(())
    } else {
        Err(taken_over())
    }
}

/// The upload of this id, if it is the caller's and has not expired.
async fn owned(state: &AppState, who: &Identity, id: &str) -> Result<Upload, Refusal> {
    match state.storage.upload(id).await? {
        Some(u) if u.user_id == who.user.id && u.expires_at > now_millis() => Ok(u),
        _ => Err(Refusal::not_found()),
    }
}

/// The running digest of one PATCH's body.
enum PatchDigest {
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl PatchDigest {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Requests other than `OPTIONS` must speak tus 1.0.0.
fn resumable(headers: &HeaderMap) -> Result<(), Refusal> {
    if text(headers, "tus-resumable") == Some(TUS_VERSION) {
        return Ok(());
    }
    Err(Refusal::new(
        StatusCode::PRECONDITION_FAILED,
        "tus-version",
        "this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0",
    ))
}

/// `Tus-Resumable` and `Upload-Expires` of an upload's answers; never cached.
fn upload_headers(upload: &Upload) -> HeaderMap {
    let mut headers = HeaderMap::new();
    put(&mut headers, "tus-resumable", TUS_VERSION);
    put(&mut headers, header::CACHE_CONTROL.as_str(), "no-store");
    let expires = UNIX_EPOCH + Duration::from_millis(u64::try_from(upload.expires_at).unwrap_or(0));
    put(
        &mut headers,
        "upload-expires",
        &httpdate::fmt_http_date(expires),
    );
    headers
}

fn put(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        axum::http::HeaderName::try_from(name),
        HeaderValue::try_from(value),
    ) {
        headers.insert(name, value);
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "invalid", message)
}

fn header_error(e: HeaderError) -> Refusal {
    invalid(e.to_string())
}

fn conflict(stored: u64) -> Refusal {
    Refusal::new(
        StatusCode::CONFLICT,
        "offset-mismatch",
        format!(
            "Upload-Offset must be the stored offset, {stored}: ask with HEAD and resume from there"
        ),
    )
}

fn taken_over() -> Refusal {
    Refusal::new(
        StatusCode::CONFLICT,
        "taken-over",
        "another request is now writing this upload",
    )
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Bytes for people: `20 MB`, `512 KB`, `300 bytes` (1 MB = 1024 × 1024 bytes).
fn size_text(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64).replace(".0 MB", " MB")
    } else if bytes >= 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}
