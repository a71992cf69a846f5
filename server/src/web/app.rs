//! The field app at `/app/`: the files `server/build.rs` built from `app/` and embedded, served
//! from the same origin as `/sync` and the API.
//!
//! `index.html` and `sw.js` are revalidated on every load (`no-cache`), so a new build reaches
//! phones on their next start with signal; the content-hashed bundle and wasm are `immutable`.
//! The app's pages get their own Content-Security-Policy: the page-wide one of the web would
//! block compiling Automerge's wasm (`'wasm-unsafe-eval'`), and `connect-src 'self'` covers
//! the same-origin WebSocket in current browsers. Browsers that accept gzip get the gzip the
//! build made of each file (the wasm: 1.1 MB instead of 3.6 MB over a weak link).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;

mod files {
    include!(concat!(env!("OUT_DIR"), "/app_files.rs"));
}

/// The policy of every response under `/app/`.
const APP_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                       connect-src 'self'; img-src 'self' data:; style-src 'self'; \
                       worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; \
                       form-action 'self'; base-uri 'none'";

/// The routes of the field app's files.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route(
            "/app/",
            get(|headers: HeaderMap| async move { file("index.html", &headers) }),
        )
        .route(
            "/app/{*path}",
            get(
                |Path(path): Path<String>, headers: HeaderMap| async move { file(&path, &headers) },
            ),
        )
}

/// Whether the server was built with the field app (not with `FIELDSYNC_WITHOUT_APP=1`).
pub fn built() -> bool {
    !files::APP_FILES.is_empty()
}

fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    files::APP_FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ty, body)| (*ty, *body))
}

fn file(path: &str, headers: &HeaderMap) -> Response {
    // The build wrote a gzip of each compressible file beside it (`app/build.mjs`).
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gzipped = lookup(&format!("{path}.gz")).filter(|_| gzip_ok && !path.ends_with(".gz"));
    let found = lookup(path).map(|(ty, body)| (path, ty, gzipped.map_or(body, |(_, gz)| gz)));
    let mut response = match found {
        Some((p, content_type, body)) => {
            let cache = if is_hashed(p) {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, cache),
                ],
                body,
            )
                .into_response()
        }
        None if path == "index.html" => not_built(),
        // Any other path inside the app is the shell (the app routes in the page itself).
        None if !path.contains('.') && built() => return file("index.html", headers),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-cache")],
            "not found",
        )
            .into_response(),
    };
    let h = response.headers_mut();
    if found.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzipped.is_some() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(APP_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `main-OU64C7DI.js`: esbuild's content hash before the extension.
fn is_hashed(path: &str) -> bool {
    let stem = path.rsplit_once('.').map_or(path, |(s, _)| s);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 8
            && hash
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// `/app/` of a server built with `FIELDSYNC_WITHOUT_APP=1`.
fn not_built() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        "<!doctype html><html lang=\"id\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>fieldsync</title>\
         <h1>Aplikasi lapangan tidak tersedia</h1>\
         <p>Server ini dibangun tanpa aplikasi lapangan (FIELDSYNC_WITHOUT_APP=1). \
         Bangun ulang dengan Node.js 20 atau lebih baru dan npm.</p>\
         <h1 lang=\"en\">The field app is not available</h1>\
         <p lang=\"en\">This server was built without the field app (FIELDSYNC_WITHOUT_APP=1). \
         Build it again with Node.js 20 or newer and npm.</p></html>",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert!(is_hashed("main-OU64C7DI.js"));
        assert!(is_hashed("automerge-X4OLCNJ7.wasm"));
        assert!(!is_hashed("sw.js"));
        assert!(!is_hashed("icon-192.png"));
        assert!(!is_hashed("index.html"));
    }

    /// What `/app/` answers on a server built with `FIELDSYNC_WITHOUT_APP=1` (testing it through
    /// the router would need a second build of the server without the app).
    #[tokio::test]
    async fn a_server_built_without_the_app_says_so_in_both_languages() {
        let response = not_built();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        for said in [
            "Aplikasi lapangan tidak tersedia",
            "The field app is not available",
            "FIELDSYNC_WITHOUT_APP=1",
            "Node.js 20",
            "name=\"viewport\"",
        ] {
            assert!(page.contains(said), "{said} missing from {page}");
        }
    }
}
