//! Device tokens and abuse limits at the door of `/sync`.
//!
//! A token is 256 random bits, shown once at enrollment; the database keeps only its SHA-256.
//! Tokens come in an `Authorization: Bearer` header, or a `token` query parameter for clients
//! that cannot set headers (browser and JS WebSocket adapters), or, for the field app, an
//! HttpOnly cookie accepted only from our own origin ([`device_cookie`]). They never reach a
//! log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new device token: `fst_` and 64 hex digits (256 bits from the OS-seeded CSPRNG).
pub fn new_token() -> String {
    format!("fst_{}", hex(&rand::random::<[u8; 32]>()))
}

/// What the database stores of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new random id with a readable prefix, e.g. `dev_3f9a…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex(&rand::random::<[u8; 8]>()))
}

/// The token a request carries, from the header or else the query string.
pub fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    header.filter(|t| !t.is_empty()).or_else(|| {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| percent_decode(v))
            .filter(|t| !t.is_empty())
    })
}

/// The cookie in which the field app (`/app/`) keeps its device token: HttpOnly, so page
/// scripts never read it, and set twice, with `Path=/sync` and `Path=/files` (its uploads and
/// the photos it shows), so it goes nowhere else.
pub const DEVICE_COOKIE: &str = "fieldsync_device";

/// The paths the device cookie is set for.
pub const DEVICE_COOKIE_PATHS: [&str; 2] = ["/sync", "/files"];

/// The field app's device token from its cookie, only when the request comes from a page of
/// this server: browsers send cookies with a WebSocket opened by any site, and the same-origin
/// policy does not cover WebSockets, so without this check another site could sync as the
/// phone (cross-site WebSocket hijacking). Browsers always send `Origin` on a WebSocket and on
/// a POST or PATCH; a same-origin GET or HEAD (an `<img>`, a `fetch` of a photo) carries none,
/// but says `Sec-Fetch-Site: same-origin`, a header no page script can set.
pub fn device_cookie(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let same_origin = match header("origin") {
        Some(origin) => {
            let host = header("host")?;
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))?;
            authority.eq_ignore_ascii_case(host)
        }
        None => header("sec-fetch-site") == Some("same-origin"),
    };
    if !same_origin {
        return None;
    }
    cookie(headers, DEVICE_COOKIE).filter(|t| !t.is_empty())
}

/// The value of one cookie of a request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Tokens are hex with a prefix, so decoding only needs to undo what a client's URL encoder
/// might have done to them.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => {
                let decoded = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match decoded {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Per-address limits on connection attempts and on failed authentications.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Connection attempts one address may make per minute (a Dinas office behind one NAT
    /// address reconnects many phones at once, so this is generous).
    pub connects_per_minute: u32,
    /// Failed authentications one address may make per minute before it is refused for the
    /// rest of the minute.
    pub auth_failures_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            connects_per_minute: 600,
            auth_failures_per_minute: 10,
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    connects: u32,
    failures: u32,
}

/// Fixed one-minute windows per address; old windows are dropped as new ones start.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

/// Why a request was turned away before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    TooManyConnections,
    TooManyFailures,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection attempt from `ip`; refuses it when over a limit.
    pub fn attempt(&self, ip: IpAddr) -> Result<(), Throttled> {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock poisoned");
        if windows.len() > 10_000 {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let w = windows.entry(ip).or_insert(Window {
            started: now,
            connects: 0,
            failures: 0,
        });
        if now.duration_since(w.started) >= WINDOW {
            *w = Window {
                started: now,
                connects: 0,
                failures: 0,
            };
        }
        if w.failures >= self.limits.auth_failures_per_minute {
            crate::metrics::rate_limited("failures");
            return Err(Throttled::TooManyFailures);
        }
        w.connects += 1;
        if w.connects > self.limits.connects_per_minute {
            crate::metrics::rate_limited("connections");
            return Err(Throttled::TooManyConnections);
        }
        Ok(())
    }

    /// Counts a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().expect("limiter lock poisoned");
        if let Some(w) = windows.get_mut(&ip) {
            w.failures += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_cookie_counts_only_from_the_servers_own_pages() {
        let with = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            headers.insert("cookie", "fieldsync_device=fsd_1".parse().unwrap());
            headers.insert("host", "dinsos.example:8080".parse().unwrap());
            for (k, v) in pairs {
                headers.insert(*k, v.parse().unwrap());
            }
            device_cookie(&headers)
        };
        let ok = Some("fsd_1".to_owned());
        assert_eq!(with(&[("origin", "https://dinsos.example:8080")]), ok);
        assert_eq!(with(&[("origin", "https://evil.example")]), None);
        // A same-origin GET (an <img>) has no Origin, but says where it comes from.
        assert_eq!(with(&[("sec-fetch-site", "same-origin")]), ok);
        assert_eq!(with(&[("sec-fetch-site", "cross-site")]), None);
        assert_eq!(with(&[("sec-fetch-site", "same-site")]), None);
        assert_eq!(with(&[]), None, "neither header: not from a page of ours");
        // Origin decides when both are there.
        assert_eq!(
            with(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]),
            None
        );
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            request_token(&headers, Some("token=fst_ab&x=1")),
            Some("fst_ab".into())
        );
        assert_eq!(request_token(&headers, Some("x=1")), None);
        assert_eq!(request_token(&headers, Some("token=")), None);
        assert_eq!(
            request_token(&headers, Some("token=fst%5Fab")),
            Some("fst_ab".into())
        );
        headers.insert("authorization", "Bearer fst_cd".parse().unwrap());
        assert_eq!(
            request_token(&headers, Some("token=fst_ab")),
            Some("fst_cd".into())
        );
    }

    #[test]
    fn the_device_cookie_counts_only_from_our_own_origin() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "dinsos.example:8443".parse().unwrap());
        headers.insert("cookie", "a=1; fieldsync_device=fst_ab".parse().unwrap());
        assert_eq!(device_cookie(&headers), None, "no Origin, no cookie");
        headers.insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(device_cookie(&headers), None);
        headers.insert("origin", "https://dinsos.example:8443".parse().unwrap());
        assert_eq!(device_cookie(&headers), Some("fst_ab".into()));
    }

    #[test]
    fn failures_lock_an_address_out_for_the_window() {
        let limiter = Limiter::new(RateLimits {
            connects_per_minute: 5,
            auth_failures_per_minute: 2,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            limiter.attempt(a).unwrap();
            limiter.failed(a);
        }
        assert_eq!(limiter.attempt(a), Err(Throttled::TooManyFailures));
        for _ in 0..5 {
            limiter.attempt(b).unwrap();
        }
        assert_eq!(limiter.attempt(b), Err(Throttled::TooManyConnections));
    }
}
