//! The fieldsync server: WebSocket sync at `/sync`, health at `/healthz`, the web and its JSON
//! API ([`web`]), storage in SQLite or PostgreSQL.
//!
//! Data flows: a phone's frame → [`connection`] (protocol session, limits) → the document's
//! actor in [`hub`] (apply, commit through [`writer`] into [`storage`], then reply and relay) →
//! frames to every peer with the document open. `main.rs` only parses the command line and
//! calls [`serve`].

pub mod admin;
pub mod areas;
pub mod auth;
mod cache;
pub mod caseload;
mod connection;
pub mod demo;
pub mod files;
pub mod hub;
mod link;
pub mod listen;
mod live;
pub mod memory;
pub mod metrics;
pub mod name_words;
pub mod ops;
pub mod projection;
pub mod reindex;
mod requests;
pub mod storage;
pub mod tls;
mod turns;
pub mod web;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, RawQuery, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fieldsync_protocol::{PeerId, StorageId};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::auth::{Limiter, RateLimits, Throttled};
use crate::hub::{Hub, HubConfig};
use crate::live::Registry;
use crate::storage::Storage;
use crate::storage::directory::TokenStatus;
pub use crate::tls::TlsConfig;
use crate::writer::Writer;

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Estimated memory all loaded documents may take together.
    pub cache_bytes: usize,
    /// A loaded document untouched for this long is unloaded.
    pub idle_unload: Duration,
    /// Most documents loaded at once; more wait for a place (`HubConfig::max_loaded`).
    pub max_loaded_docs: usize,
    /// Durable changes held for a slow follower (`HubConfig::changes_buffer`); tests make it
    /// small to make a follower fall behind.
    pub changes_buffer: usize,
    pub limits: Limits,
    /// The largest change and document a peer may make the server apply (checked before
    /// applying, and before loading a stored document).
    pub document_limits: fieldsync_core::Limits,
    /// Per-address limits on connection attempts and failed authentications.
    pub rate_limits: RateLimits,
    /// Serve HTTPS and WSS with this certificate; `None` serves plain HTTP (loopback, or behind
    /// a TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
    /// Mark web cookies `Secure` without TLS here: behind a TLS-terminating proxy. Always on
    /// with `tls`.
    pub secure_cookies: bool,
    /// The office map's base map (`--map-tiles`); none: points on a plain background.
    pub map_tiles: Option<web::tiles::MapTiles>,
    /// `--demo`: seed Kota Cimahi into an empty database and announce its people.
    pub demo: Option<demo::Demo>,
    /// `--metrics-listen`: a second listener serving only `/metrics`, to anyone who reaches
    /// it. Without it `/metrics` is served on the main listener to loopback clients only.
    pub metrics_listener: Option<Arc<std::net::TcpListener>>,
}

/// Limits that protect the server and other peers from one peer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket message accepted.
    pub max_message_bytes: usize,
    /// Most distinct documents one connection may sync.
    pub max_docs_per_connection: usize,
    /// Most documents one connection may wait for: asked for before they exist, and given to
    /// the peer if some peer creates them while it stays connected. A request beyond it is
    /// answered `doc-unavailable` and not remembered.
    pub max_waiting_per_connection: usize,
    /// A client must send a request's head within this (after the TLS handshake, which has
    /// the same limit), and an idle keep-alive connection is closed after it.
    pub header_read_timeout: std::time::Duration,
    /// A WebSocket that has not sent `join` by then is closed.
    pub join_timeout: std::time::Duration,
    /// Connections (HTTP and WebSocket) one address may have open at once; more are closed
    /// at once. Phones behind one carrier-grade NAT address share it.
    pub max_connections_per_address: usize,
    /// Connections open at once in total; more are closed at once.
    pub max_connections: usize,
    /// Sync connections whose messages are handled at once; the others wait their turn
    /// (`turns.rs`).
    pub max_syncing: usize,
    /// Largest attachment (one blob) an upload may announce; more is refused with 413 before
    /// any of it is read.
    pub max_attachment_bytes: u64,
    /// An unfinished upload is deleted this long after it was created.
    pub upload_expiry: Duration,
}

impl Config {
    /// The SQLite default under `dir`.
    pub fn sqlite_in(dir: &std::path::Path) -> Self {
        Self {
            database_url: format!("sqlite://{}", dir.join("fieldsync.db").display()),
            ..Self::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./fieldsync-data/fieldsync.db".into(),
            cache_bytes: 256 * 1024 * 1024,
            idle_unload: Duration::from_secs(60),
            max_loaded_docs: 4_000,
            changes_buffer: 1_024,
            limits: Limits {
                max_message_bytes: 16 * 1024 * 1024,
                max_docs_per_connection: 100_000,
                max_waiting_per_connection: 1_000,
                header_read_timeout: Duration::from_secs(10),
                join_timeout: Duration::from_secs(10),
                max_connections_per_address: 256,
                max_connections: 10_000,
                max_syncing: 64,
                max_attachment_bytes: 20 * 1024 * 1024,
                upload_expiry: Duration::from_secs(24 * 3600),
            },
            document_limits: fieldsync_core::Limits::default(),
            rate_limits: RateLimits::default(),
            tls: None,
            secure_cookies: false,
            map_tiles: None,
            demo: None,
            metrics_listener: None,
        }
    }
}

/// Shared by every request and connection.
#[derive(Debug)]
pub struct AppState {
    hub: Hub,
    storage: Arc<dyn Storage>,
    storage_id: StorageId,
    server_peer: PeerId,
    limits: Limits,
    limiter: Limiter,
    /// Turns at syncing (`--max-syncing`).
    turns: turns::Turns,
    live: Arc<Registry>,
    caseloads: Arc<caseload::Caseloads>,
    /// Changes other processes sharing the database made, for live views.
    others: hub::OtherProcesses,
    next_conn: AtomicU64,
    /// Connected peers: peer id → (connection number, how to tell it it was replaced).
    peers: Mutex<HashMap<PeerId, (u64, Arc<Notify>)>>,
    shutdown: watch::Receiver<bool>,
    /// Web cookies carry `Secure`.
    secure_cookies: bool,
    /// Documents listed on the web, audited (`web::reads`).
    reads: web::reads::ReadLog,
    /// Still starting (the demo is being seeded): health says so, with 503.
    starting: std::sync::atomic::AtomicBool,
    /// Area names for the pages, kept current with the `areas` table.
    areas: Arc<areas::AreaBook>,
    map_tiles: Option<web::tiles::MapTiles>,
}

impl AppState {
    /// A `join` with a peer id already connected replaces the older connection.
    fn register_peer(&self, peer: PeerId, conn: u64, replaced: Arc<Notify>) {
        let old = self
            .peers
            .lock()
            .expect("peers lock poisoned")
            .insert(peer, (conn, replaced));
        if let Some((_, old)) = old {
            old.notify_one();
        }
    }

    fn unregister_peer(&self, peer: &PeerId, conn: u64) {
        let mut peers = self.peers.lock().expect("peers lock poisoned");
        if peers.get(peer).is_some_and(|(c, _)| *c == conn) {
            peers.remove(peer);
        }
    }
}

/// The HTTP routes. `/metrics` is one of them unless `--metrics-listen` serves it elsewhere:
/// then nothing on the main address can expose it, whatever a proxy in front forwards.
fn router(state: Arc<AppState>, metrics_here: bool) -> Router {
    let mut routes = Router::new()
        .route("/sync", get(sync_socket))
        .route("/healthz", get(healthz));
    if metrics_here {
        routes = routes.route("/metrics", get(local_metrics));
    }
    let routes = routes
        .merge(web::router())
        .merge(files::router())
        .layer(axum::middleware::from_fn(requests::observe));
    if state.secure_cookies {
        routes
            .layer(axum::middleware::map_response(web::strict_transport))
            .with_state(state)
    } else {
        routes.with_state(state)
    }
}

/// Headers a reverse proxy adds (nginx as usually configured, Caddy, HAProxy, cloud load
/// balancers): a request that has one came from elsewhere, whatever its address.
const PROXY_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// `/metrics` on the main listener: only for a client on this machine that did not come
/// through a proxy (which would make anyone on the internet look local); anyone else is told
/// it does not exist. `--metrics-listen` serves it elsewhere without this rule.
async fn local_metrics(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let proxied = PROXY_HEADERS.iter().any(|h| headers.contains_key(*h));
    if proxied || !addr.ip().to_canonical().is_loopback() {
        return StatusCode::NOT_FOUND.into_response();
    }
    metrics_text(State(state)).await
}

/// The metrics in Prometheus' text format, with the sampled gauges read now.
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    metrics::sample(metrics::Sample {
        documents_open: state.hub.open_documents(),
        documents_loaded: state.hub.loaded_places(),
        cache_bytes: state.hub.cache_used(),
        cache_budget: state.hub.cache_budget(),
        pool: state.storage.pool_stats(),
        memory: memory::stats(),
    });
    match metrics::render() {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are off: another metrics recorder was installed first\n",
        )
            .into_response(),
    }
}

/// The WebSocket upgrade, for a device with a valid token only: anything else gets a JSON
/// error before the upgrade (401, or 429 when an address tries too often).
async fn sync_socket(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ip = addr.ip();
    if let Err(why) = state.limiter.attempt(ip) {
        let message = match why {
            Throttled::TooManyConnections => {
                "too many connection attempts from this address; retry in a minute"
            }
            Throttled::TooManyFailures => {
                "too many failed sign-ins from this address; retry in a minute"
            }
        };
        return refuse_until(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            message,
            RETRY_RATE_LIMITED,
        );
    }
    let token =
        auth::request_token(&headers, query.as_deref()).or_else(|| auth::device_cookie(&headers));
    let Some(token) = token else {
        metrics::security_event(metrics::Security::TokenMissing);
        state.limiter.failed(ip);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a device token is required (Authorization: Bearer, or ?token=)",
        );
    };
    let status = state
        .storage
        .authenticate(&auth::token_hash(&token), storage::now_millis())
        .await;
    let identity = match status {
        Ok(TokenStatus::Valid(identity)) => identity,
        Ok(TokenStatus::Revoked) => {
            metrics::security_event(metrics::Security::TokenRevoked);
            state.limiter.failed(ip);
            return refuse(StatusCode::UNAUTHORIZED, "device-revoked", live::WIPE);
        }
        Ok(TokenStatus::Expired) => {
            metrics::security_event(metrics::Security::TokenExpired);
            state.limiter.failed(ip);
            return refuse(
                StatusCode::UNAUTHORIZED,
                "token-expired",
                "this device's token has expired; ask an administrator for a new one",
            );
        }
        Ok(TokenStatus::Unknown) => {
            metrics::security_event(metrics::Security::TokenUnknown);
            state.limiter.failed(ip);
            tracing::info!(%addr, "refused an unknown token");
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this token is not valid",
            );
        }
        Err(e) => {
            tracing::error!("authentication: {e}");
            return refuse_until(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server cannot check tokens now; try again later",
                RETRY_UNAVAILABLE,
            );
        }
    };
    state.caseloads.connected(&identity.user);
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = state.limits.max_message_bytes;
    // tungstenite reserves its whole read buffer per socket at once (128 KiB by default: 125
    // MiB for 1,000 phones); it grows when a larger message arrives.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| connection::run(socket, state, addr, identity))
}

/// The read buffer each sync WebSocket starts with.
const READ_BUFFER: usize = 8 * 1024;

/// Seconds a phone refused for too many attempts is told to wait (`Retry-After`): the rate
/// limits count per minute.
const RETRY_RATE_LIMITED: u64 = 60;
/// Seconds a phone is told to wait when the database cannot check its token.
const RETRY_UNAVAILABLE: u64 = 10;

/// [`refuse`] with `Retry-After: seconds`, which fieldsync's phones honour.
fn refuse_until(status: StatusCode, code: &str, message: &str, seconds: u64) -> Response {
    let mut response = refuse(status, code, message);
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, seconds.into());
    response
}

/// A JSON error with a stable code and a message for people.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// Health for load balancers and operators: 503 when the database does not answer, or when
/// the last attempt to store changes failed (phones are then not acknowledged), and 503 with
/// `"status": "starting"` while the demo is being seeded.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    if state.starting.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "starting",
                "problem": "the demo is being seeded",
            })),
        )
            .into_response();
    }
    // A database that does not answer must not hold up the answer: load balancers time out.
    let ping = tokio::time::timeout(Duration::from_secs(2), state.storage.ping()).await;
    let problem =
        match ping.unwrap_or_else(|_| Err(storage::StorageError("no answer within 2 s".into()))) {
            Err(e) => {
                tracing::error!("health check: {e}");
                Some("the database does not answer")
            }
            Ok(()) if state.hub.commits_failing() => {
                Some("storing changes fails: phones are not acknowledged (see the log)")
            }
            Ok(()) => None,
        };
    let status = if problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::json!({
        "status": if problem.is_some() { "failing" } else { "ok" },
        "storageId": state.storage_id.as_str(),
        "openDocuments": state.hub.open_documents(),
        "oversizedDocumentsRefused": state.hub.oversized_refusals(),
    });
    if let Some(problem) = problem {
        body["problem"] = problem.into();
    }
    (status, Json(body)).into_response()
}

/// Serves on `listener` until `shutdown` completes, then closes every connection, persists
/// sync states and closes storage.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // First, so that a bad certificate or key stops the start before the database is touched.
    let tls_config = config.tls.as_ref().map(TlsConfig::load).transpose()?;
    let storage = storage::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open database {}", redact(&config.database_url)))?;
    let storage_id = storage
        .meta("storage_id", &uuid::Uuid::new_v4().to_string())
        .await
        .context("cannot read the server's storage id")?;
    let storage_id = StorageId::parse(&storage_id).context("stored storage id is invalid")?;
    // Before listening, so that the demo's people are announced before anything is served.
    let seed_demo = match &config.demo {
        Some(demo) => {
            let (addr, tls) = (listener.local_addr()?, config.tls.is_some());
            demo::prepare(demo, storage.as_ref(), addr, tls).await?
        }
        None => false,
    };
    let server_peer = PeerId::parse(&format!(
        "{}{}",
        connection::SERVER_PREFIX,
        uuid::Uuid::new_v4()
    ))
    .expect("a uuid makes a valid peer id");
    metrics::install();
    let (writer, writer_task) = Writer::spawn(storage.clone());
    let hub = Hub::new(
        storage.clone(),
        writer,
        server_peer.clone(),
        HubConfig {
            cache_bytes: config.cache_bytes,
            idle_unload: config.idle_unload,
            max_loaded: config.max_loaded_docs,
            changes_buffer: config.changes_buffer,
            document_limits: config.document_limits,
            schema_limits: fieldsync_core::schema::SchemaLimits {
                max_attachment_bytes: config.limits.max_attachment_bytes,
            },
        },
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let area_book = Arc::new(areas::AreaBook::default());
    area_book
        .refresh(storage.as_ref())
        .await
        .context("cannot read the area names")?;
    let live = Arc::new(Registry::default());
    let caseloads = caseload::Caseloads::new(hub.clone(), storage.clone(), live.clone())
        .await
        .context("cannot read the index secret")?;
    let others = hub::OtherProcesses::default();
    let caseload_task = tokio::spawn(caseloads.clone().run(others.clone(), stop_rx.clone()));
    let watcher = tokio::spawn(live::watch_security_events(
        storage.clone(),
        live.clone(),
        {
            let caseloads = caseloads.clone();
            move |user: &str| caseloads.forget(user)
        },
        stop_rx.clone(),
    ));
    let follower = tokio::spawn(hub.clone().follow_other_processes(
        storage.clone(),
        others.clone(),
        stop_rx.clone(),
    ));
    let state = Arc::new(AppState {
        hub: hub.clone(),
        storage: storage.clone(),
        storage_id,
        server_peer,
        limits: config.limits.clone(),
        limiter: Limiter::new(config.rate_limits.clone()),
        turns: turns::Turns::new(config.limits.max_syncing),
        live: live.clone(),
        caseloads,
        others,
        next_conn: AtomicU64::new(0),
        peers: Mutex::default(),
        shutdown: stop_rx,
        secure_cookies: config.secure_cookies || config.tls.is_some(),
        reads: web::reads::ReadLog::default(),
        starting: std::sync::atomic::AtomicBool::new(seed_demo),
        areas: area_book.clone(),
        map_tiles: config.map_tiles.clone(),
    });
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        database = %redact(&config.database_url),
        tls = tls_config.is_some(),
        "fieldsync listening"
    );
    let demo_task = seed_demo.then(|| {
        let seeding = demo::spawn(addr, hub.clone(), storage.clone());
        let abort = seeding.abort_handle();
        let state = state.clone();
        let waiter = tokio::spawn(async move {
            let _ = seeding.await;
            state
                .starting
                .store(false, std::sync::atomic::Ordering::Relaxed);
        });
        (abort, waiter)
    });
    let app = router(state.clone(), config.metrics_listener.is_none());
    let upkeep = tokio::spawn(metrics::upkeep(state.shutdown.clone()));
    let search_fill = tokio::spawn({
        let storage = storage.clone();
        async move {
            match storage.fill_name_words().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "search: names of earlier records indexed"),
                Err(e) => {
                    tracing::warn!(error = %e, "search: cannot index earlier records' names; the next start tries again")
                }
            }
        }
    });
    let area_task = tokio::spawn(areas::keep_current(
        area_book,
        storage.clone(),
        state.shutdown.clone(),
    ));
    let expiry = tokio::spawn(files::expire_uploads(
        storage.clone(),
        config.limits.upload_expiry,
        state.shutdown.clone(),
    ));
    let metrics_task = match &config.metrics_listener {
        Some(listener) => {
            let listener = listener.try_clone()?;
            listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(listener)?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let app = Router::new()
                .route("/metrics", get(metrics_text))
                .with_state(state.clone());
            let (limits, stop) = (config.limits.clone(), state.shutdown.clone());
            Some(tokio::spawn(async move {
                listen::serve(listener, None, app, &limits, stop).await;
            }))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    listen::serve(
        listener,
        tls_config,
        app,
        &config.limits,
        state.shutdown.clone(),
    )
    .await;
    if let Some((seeding, waiter)) = demo_task {
        // Unfinished seeding stops here: it holds the hub, which must go before the writer.
        seeding.abort();
        let _ = waiter.await;
    }

    tracing::info!("shutting down: closing connections and saving sync states");
    // First: it writes the caseload index entries still queued, through the hub.
    let _ = caseload_task.await;
    if !hub.drained(Duration::from_secs(10)).await {
        tracing::warn!("some documents were still busy after 10 s");
    }
    let _ = watcher.await;
    let _ = follower.await;
    let _ = upkeep.await;
    let _ = area_task.await;
    search_fill.abort();
    let _ = expiry.await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    drop(state);
    drop(hub);
    let _ = writer_task.await;
    storage.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}
