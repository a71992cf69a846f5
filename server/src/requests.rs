//! What every HTTP request gets on its way through the router: an id in its tracing span and
//! in the `X-Request-Id` answer header, and its count and duration in the metrics under its
//! route template (never the path, which may carry ids).
//!
//! An incoming `X-Request-Id` is kept when it is short and plain (a proxy's id joins the two
//! logs); anything else is replaced by a new one, so that no client writes what it likes into
//! our log lines.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";
/// Longest incoming id kept.
const MAX_LEN: usize = 64;

/// The middleware: runs the request inside a span `request{id, method, route}`.
pub async fn observe(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(new_id, str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %id, %method, route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span).await;
    crate::metrics::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// Short, and only letters, digits and `-`.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(acceptable("abc-123-XYZ"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("a\"}{"));
        assert!(!acceptable("ä"));
        assert_eq!(new_id().len(), 16);
        assert!(acceptable(&new_id()));
    }
}
