//! Prometheus metrics: every name fieldsync exports, and one function per thing it counts, so
//! that each call site is one line and the names live in one place (docs/operations.md lists
//! them, `docs/grafana-dashboard.json` draws them).
//!
//! Names start with `fieldsync_` and are in base units (seconds, bytes). Labels take only
//! values from small fixed sets (a message type, a reason, a route template, a status code):
//! never a user, device, document or peer id, so no series tells who did what.
//!
//! The recorder is the process's global one (the `metrics` facade), installed once by the
//! first [`install`]; `/metrics` renders it ([`render`]). Durations are histograms with fixed
//! buckets, not summaries, so that the series of several processes add up.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const SYNC_CONNECTIONS: &str = "fieldsync_sync_connections";
const TURNS_HELD: &str = "fieldsync_sync_turns_held";
const TURNS_WAITING: &str = "fieldsync_sync_turns_waiting";
const TURN_WAITS: &str = "fieldsync_sync_turn_waits_total";
const TCP_CONNECTIONS: &str = "fieldsync_tcp_connections";
const TCP_REFUSED: &str = "fieldsync_tcp_connections_refused_total";
const MESSAGES_RECEIVED: &str = "fieldsync_sync_messages_received_total";
const MESSAGES_SENT: &str = "fieldsync_sync_messages_sent_total";
const DISCONNECTED: &str = "fieldsync_sync_disconnected_for_cause_total";
const CHANGES_REFUSED: &str = "fieldsync_changes_refused_total";
const COMMIT_SECONDS: &str = "fieldsync_change_commit_seconds";
const DOCUMENTS_OPEN: &str = "fieldsync_documents_open";
const DOCUMENTS_LOADED: &str = "fieldsync_documents_loaded";
const DOCUMENT_LOADS: &str = "fieldsync_document_loads_total";
const DOCUMENT_LOAD_WAITS: &str = "fieldsync_document_load_waits_total";
const CACHE_BYTES: &str = "fieldsync_document_cache_bytes";
const CACHE_BUDGET: &str = "fieldsync_document_cache_budget_bytes";
const BATCH_WRITES: &str = "fieldsync_write_batch_writes";
const BATCH_SECONDS: &str = "fieldsync_write_batch_seconds";
const BATCHES_FAILED: &str = "fieldsync_write_batches_failed_total";
const POOL_CONNECTIONS: &str = "fieldsync_db_pool_connections";
const POOL_MAX: &str = "fieldsync_db_pool_max_connections";
const HTTP_REQUESTS: &str = "fieldsync_http_requests_total";
const HTTP_SECONDS: &str = "fieldsync_http_request_seconds";
const SSE_LISTENERS: &str = "fieldsync_sse_listeners";
const SECURITY_EVENTS: &str = "fieldsync_security_events_total";
const RATE_LIMITED: &str = "fieldsync_rate_limited_total";
const BUILD_INFO: &str = "fieldsync_build_info";
const MEMORY_ALLOCATED: &str = "fieldsync_memory_allocated_bytes";
const MEMORY_RESIDENT: &str = "fieldsync_memory_resident_bytes";

/// Seconds: from a millisecond to half a minute.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Writes per transaction: powers of two up to the writer's largest batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder as the process's global one, once; later calls return the same.
/// `None` when another recorder was installed first (a program embedding the server): then
/// `/metrics` says so rather than render nothing.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_WRITES.into()), BATCH_BUCKETS)
                })
                .expect("bucket lists are not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics in Prometheus' text format; `None` when [`install`] found another recorder.
pub fn render() -> Option<String> {
    install().map(PrometheusHandle::render)
}

/// Folds recorded histogram samples into their buckets now and then, so that memory stays
/// bounded when nobody scrapes; ends when `stop` turns true.
pub async fn upkeep(mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(handle) = install() else { return };
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn describe() {
    describe_gauge!(SYNC_CONNECTIONS, "WebSocket sync connections open");
    describe_gauge!(
        TURNS_HELD,
        "Sync connections whose messages are being handled (at most --max-syncing)"
    );
    describe_gauge!(
        TURNS_WAITING,
        "Sync connections waiting for a turn because --max-syncing others have one"
    );
    describe_counter!(
        TURN_WAITS,
        "Turns at syncing that had to wait for one given back"
    );
    describe_gauge!(
        TCP_CONNECTIONS,
        "TCP connections open (HTTP, WebSocket, metrics)"
    );
    describe_counter!(
        TCP_REFUSED,
        "TCP connections closed at once, by reason (per-address or total cap)"
    );
    describe_counter!(
        MESSAGES_RECEIVED,
        "Sync protocol messages received, by type"
    );
    describe_counter!(MESSAGES_SENT, "Sync protocol messages sent, by type");
    describe_counter!(
        DISCONNECTED,
        "Sync connections the server ended because the peer misbehaved or was too slow"
    );
    describe_counter!(
        CHANGES_REFUSED,
        "Changes refused and rolled back, by reason"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "From a sync message's receipt to the durable commit of the changes it brought"
    );
    describe_gauge!(
        DOCUMENTS_OPEN,
        "Documents with an actor (loaded, or with peers waiting)"
    );
    describe_gauge!(
        DOCUMENTS_LOADED,
        "Documents loaded in memory or loading (at most --max-loaded-docs; caseload indexes not counted)"
    );
    describe_counter!(DOCUMENT_LOADS, "Documents loaded from storage");
    describe_counter!(
        DOCUMENT_LOAD_WAITS,
        "Loads that waited for a place among the loaded documents (--max-loaded-docs)"
    );
    describe_gauge!(
        CACHE_BYTES,
        Unit::Bytes,
        "Estimated memory of the loaded documents"
    );
    describe_gauge!(
        CACHE_BUDGET,
        Unit::Bytes,
        "The memory budget for loaded documents (--cache-mb)"
    );
    describe_histogram!(
        BATCH_WRITES,
        Unit::Count,
        "Writes per group-commit transaction"
    );
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Duration of one group-commit transaction"
    );
    describe_counter!(
        BATCHES_FAILED,
        "Group-commit transactions that failed (their changes were not acknowledged)"
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database pool connections, by state (idle, in_use)"
    );
    describe_gauge!(POOL_MAX, "Most connections the database pool opens");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "Time to the response head of an HTTP request, by route template"
    );
    describe_gauge!(
        SSE_LISTENERS,
        "Open server-sent event streams (coordinators' live feeds)"
    );
    describe_counter!(
        SECURITY_EVENTS,
        "Refused device tokens, failed sign-ins and lockouts, refused enrollment codes, by event"
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused by the per-address rate limits, by reason"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label");
    describe_gauge!(
        MEMORY_ALLOCATED,
        Unit::Bytes,
        "Heap the server has allocated and not freed (jemalloc)"
    );
    describe_gauge!(
        MEMORY_RESIDENT,
        Unit::Bytes,
        "Memory the allocator holds in RAM: the live heap, its metadata, freed pages not yet returned"
    );
}

/// Holds a gauge one higher until dropped: an open connection, a listening stream.
#[derive(Debug)]
#[must_use = "the gauge goes down again when this is dropped"]
pub struct Open(&'static str);

impl Open {
    fn new(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

/// A WebSocket sync connection, open while the value lives.
pub fn sync_connection() -> Open {
    Open::new(SYNC_CONNECTIONS)
}

/// A sync connection's turn (`turns.rs`), held while the value lives.
pub(crate) fn turn_held() -> Open {
    Open::new(TURNS_HELD)
}

/// A sync connection waiting for a turn, while the value lives.
pub(crate) fn turn_waiting() -> Open {
    Open::new(TURNS_WAITING)
}

/// A turn had to wait.
pub(crate) fn turn_waited() {
    counter!(TURN_WAITS).increment(1);
}

/// A TCP connection admitted on the main listener, open while the value lives.
pub fn tcp_connection() -> Open {
    Open::new(TCP_CONNECTIONS)
}

/// A server-sent event stream, open while the value lives.
pub fn sse_listener() -> Open {
    Open::new(SSE_LISTENERS)
}

/// A TCP connection closed at once by a cap (`"per_address"`, `"total"`).
pub fn tcp_refused(reason: &'static str) {
    counter!(TCP_REFUSED, "reason" => reason).increment(1);
}

/// A protocol message arrived (`kind`: `Message::kind`, e.g. `"sync"`).
pub fn message_received(kind: &'static str) {
    counter!(MESSAGES_RECEIVED, "type" => kind).increment(1);
}

/// A protocol message was queued for a peer.
pub fn message_sent(kind: &'static str) {
    counter!(MESSAGES_SENT, "type" => kind).increment(1);
}

/// The server ended a sync connection for cause (the one log line of `connection.rs`).
pub fn disconnected_for_cause() {
    counter!(DISCONNECTED).increment(1);
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The write rules (role, type, area, append-only history, schema).
    Rules,
    /// The change's actor id belongs to another device.
    Actor,
    /// Someone wrote to a server-maintained index document.
    ReadOnly,
    /// Over the change or document size limits.
    TooLarge,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rules => "rules",
            Self::Actor => "actor",
            Self::ReadOnly => "read_only",
            Self::TooLarge => "too_large",
        }
    }
}

pub fn change_refused(reason: Refusal) {
    counter!(CHANGES_REFUSED, "reason" => reason.as_str()).increment(1);
}

/// Changes received at `received` are durable now.
pub fn committed(received: Instant) {
    histogram!(COMMIT_SECONDS).record(received.elapsed());
}

/// A document was loaded from storage.
pub fn document_loaded() {
    counter!(DOCUMENT_LOADS).increment(1);
}

/// A load waited for a place among the loaded documents.
pub fn document_load_waited() {
    counter!(DOCUMENT_LOAD_WAITS).increment(1);
}

/// One group-commit transaction of `writes` writes took `took`.
pub fn write_batch(writes: usize, took: Duration, ok: bool) {
    histogram!(BATCH_WRITES).record(writes as f64);
    histogram!(BATCH_SECONDS).record(took);
    if !ok {
        counter!(BATCHES_FAILED).increment(1);
    }
}

/// An HTTP request answered: `route` is the route template (`/api/referrals/{id}`), never
/// the path; methods outside the usual few count as `"other"`.
pub fn http_request(route: &str, method: &axum::http::Method, status: u16, took: Duration) {
    use axum::http::Method;
    let method = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = route.to_owned();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_SECONDS, "route" => route).record(took);
}

/// A security event worth an operator's eye.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// A device token nobody issued (or a mistyped one).
    TokenUnknown,
    TokenRevoked,
    TokenExpired,
    /// No token at all on `/sync`.
    TokenMissing,
    SignInFailed,
    /// A failed sign-in that held the (user id, address) pair back.
    Lockout,
    EnrollmentRefused,
}

impl Security {
    fn as_str(self) -> &'static str {
        match self {
            Self::TokenUnknown => "token_unknown",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
            Self::TokenMissing => "token_missing",
            Self::SignInFailed => "signin_failed",
            Self::Lockout => "lockout",
            Self::EnrollmentRefused => "enrollment_refused",
        }
    }
}

pub fn security_event(event: Security) {
    counter!(SECURITY_EVENTS, "event" => event.as_str()).increment(1);
}

/// A request refused by the per-address limits (`"connections"`, `"failures"`).
pub fn rate_limited(reason: &'static str) {
    counter!(RATE_LIMITED, "reason" => reason).increment(1);
}

/// What is read rather than counted, sampled at each scrape.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub documents_open: usize,
    pub documents_loaded: usize,
    pub cache_bytes: usize,
    pub cache_budget: usize,
    pub pool: crate::storage::PoolStats,
    pub memory: Option<crate::memory::Stats>,
}

pub fn sample(s: Sample) {
    gauge!(DOCUMENTS_OPEN).set(s.documents_open as f64);
    gauge!(DOCUMENTS_LOADED).set(s.documents_loaded as f64);
    gauge!(CACHE_BYTES).set(s.cache_bytes as f64);
    gauge!(CACHE_BUDGET).set(s.cache_budget as f64);
    let in_use = s.pool.size.saturating_sub(s.pool.idle);
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(s.pool.idle as f64);
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    gauge!(POOL_MAX).set(s.pool.max as f64);
    if let Some(memory) = s.memory {
        gauge!(MEMORY_ALLOCATED).set(memory.allocated as f64);
        gauge!(MEMORY_RESIDENT).set(memory.resident as f64);
    }
}
