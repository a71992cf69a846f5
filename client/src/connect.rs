//! The background task that keeps a replica in sync with one server.

use std::time::Duration;

use fieldsync_core::Kind;
use fieldsync_core::schema::Violation;
use fieldsync_protocol::{
    DocMessage, DocumentId, Message, Notice, PeerId, PeerMetadata, StorageId,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{Entry, Replica, State};

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `ws://host:port/sync` or `wss://host:port/sync` (a `?token=…` query is passed through).
    pub url: String,
    /// Other servers of the same deployment (processes sharing one database). The first
    /// connection goes to `url`; after each connection ends or fails, the next one goes to the
    /// next URL of the list, round-robin, so a phone leaves a server that is gone.
    pub other_urls: Vec<String>,
    /// First wait after a failed connection; doubles up to `max_backoff`, with jitter.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Largest message accepted from the server.
    pub max_message_bytes: usize,
    /// The device token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// DER certificates trusted for `wss://` besides the public (Mozilla) roots.
    pub root_certificates: Vec<Vec<u8>>,
    /// How often the phone pings the server. fieldsync pings too (every 20 s), but a server
    /// of the automerge-repo family need not, and a ping is what makes a quiet link speak.
    pub ping_every: Duration,
    /// A connection that has carried nothing at all (not even a pong) for this long is dead:
    /// a link that drops packets without a reset (a black hole, a NAT that forgot us) would
    /// otherwise look connected for ever, with edits waiting behind it.
    pub silence_limit: Duration,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            other_urls: Vec::new(),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_message_bytes: 64 * 1024 * 1024,
            token: None,
            root_certificates: Vec::new(),
            ping_every: Duration::from_secs(20),
            silence_limit: Duration::from_secs(60),
        }
    }

    /// Pings every `ping_every` and gives a connection up after `silence_limit` without a
    /// frame from the server.
    pub fn with_keepalive(mut self, ping_every: Duration, silence_limit: Duration) -> Self {
        self.ping_every = ping_every;
        self.silence_limit = silence_limit;
        self
    }

    /// Authenticates as the enrolled device with this token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Also connects to this server of the same deployment, in turn with the others
    /// ([`ConnectOptions::other_urls`]).
    pub fn with_other_url(mut self, url: impl Into<String>) -> Self {
        self.other_urls.push(url.into());
        self
    }

    /// Every server to connect to, in the order they are tried.
    fn urls(&self) -> impl Iterator<Item = &str> + Clone {
        std::iter::once(self.url.as_str()).chain(self.other_urls.iter().map(String::as_str))
    }

    /// Also trusts this root certificate (DER) for `wss://`: a private CA, or a test CA.
    pub fn with_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(der.into());
        self
    }
}

/// What the server says to a revoked device, on the socket or in the refused upgrade.
const WIPE: &str = "fieldsync-wipe";
const REVOKED: &str = "device-revoked";

/// Controls a running sync task. Dropping it stops the task.
#[derive(Debug)]
pub struct SyncHandle {
    stop: watch::Sender<bool>,
    connected: watch::Receiver<bool>,
    last_error: watch::Receiver<Option<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SyncHandle {
    /// Stops syncing: says `leave`, saves sync states and closes the connection.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until the handshake with the server completed.
    pub async fn wait_connected(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the connection is given up (or was never made).
    pub async fn wait_disconnected(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.connected.wait_for(|c| !*c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Why the last connection ended, if it ended badly (as the server said it, or as the
    /// network failed).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.borrow().clone()
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Replica {
    /// Starts syncing with the server at `options.url`, reconnecting until stopped (to the
    /// next of `options.other_urls` each time, if there are any).
    pub fn connect(&self, options: ConnectOptions) -> SyncHandle {
        let (stop, stop_rx) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let (error_tx, last_error) = watch::channel(None);
        let replica = self.clone();
        let task = tokio::spawn(async move {
            let mut backoff = options.min_backoff;
            let mut stop_rx = stop_rx;
            let mut urls = options.urls().cycle();
            loop {
                if *stop_rx.borrow() {
                    break;
                }
                let url = urls.next().expect("a cycle of at least one URL");
                let mut retry_after = None;
                let outcome = replica
                    .session(url, &options, &mut stop_rx, &connected_tx, &mut retry_after)
                    .await;
                connected_tx.send_replace(false);
                replica.after_disconnect().await;
                if let Err(e) = &outcome
                    && (e.contains(WIPE) || e.contains(REVOKED))
                {
                    // The device was revoked: delete everything and stop for good.
                    tracing::warn!("device revoked by the server: deleting local data");
                    error_tx.send_replace(Some("device revoked: deleting local data".into()));
                    let wiped = replica.wipe().await;
                    let note = match wiped {
                        Ok(()) => "device revoked: local data deleted".to_owned(),
                        Err(e) => format!("device revoked; deleting local data failed: {e}"),
                    };
                    error_tx.send_replace(Some(note));
                    break;
                }
                match outcome {
                    Ok(Ended::Stopped) => break,
                    Ok(Ended::Synced) => backoff = options.min_backoff,
                    Err(e) => {
                        tracing::debug!(peer = %replica.0.peer_id, "sync connection ended: {e}");
                        error_tx.send_replace(Some(e));
                    }
                }
                let jitter = rand::random_range(0.5..1.0);
                // A server that said when to come back (`Retry-After` on a refusal: too many
                // attempts, or busy) is not asked again before then, spread over half as long
                // again so that phones told together do not all come back in the same second.
                let asked = retry_after
                    .unwrap_or_default()
                    .min(MAX_RETRY_AFTER)
                    .mul_f64(rand::random_range(1.0..1.5));
                let wait = backoff.mul_f64(jitter).max(asked);
                backoff = (backoff * 2).min(options.max_backoff);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(&mut stop_rx) => break,
                }
            }
        });
        SyncHandle {
            stop,
            connected,
            last_error,
            task: Some(task),
        }
    }

    async fn after_disconnect(&self) {
        let mut state = self.0.state.lock().await;
        let Some(server) = state.server.take() else {
            return;
        };
        let server_storage = state.server_storage.take();
        let mut to_save = Vec::new();
        for (id, entry) in state.docs.iter_mut() {
            if let Some(encoded) = entry.sync.remove_peer(&server) {
                to_save.push((*id, encoded));
            }
        }
        drop(state);
        if let Some(storage) = server_storage {
            for (id, encoded) in to_save {
                self.0.store.save_sync_state(&storage, id, &encoded).await;
            }
        }
    }

    /// One connection, from handshake to its end.
    async fn session(
        &self,
        url: &str,
        options: &ConnectOptions,
        stop: &mut watch::Receiver<bool>,
        connected: &watch::Sender<bool>,
        retry_after: &mut Option<Duration>,
    ) -> Result<Ended, String> {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(options.max_message_bytes))
            .max_frame_size(Some(options.max_message_bytes));
        let mut request = url
            .into_client_request()
            .map_err(|e| format!("bad server URL: {e}"))?;
        if let Some(token) = &options.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| "the token is not a valid header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let tls = crate::tls::connector(&options.root_certificates)?;
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async_tls_with_config(
                request,
                Some(config),
                false,
                Some(tls),
            ),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| {
            *retry_after = retry_after_of(&e);
            describe_connect_error(e)
        })?;
        let (mut sink, mut stream) = ws.split();

        let join = Message::Join {
            sender: self.0.peer_id.clone(),
            metadata: Some(PeerMetadata {
                storage_id: Some(self.0.storage_id.clone()),
                is_ephemeral: false,
            }),
            supported_versions: vec!["1".into()],
        };
        send(&mut sink, &join).await?;
        let (server, server_storage) = loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .map_err(|_| "handshake timed out".to_string())?;
            match frame {
                Some(Ok(WsMessage::Binary(b))) => match Message::decode(&b) {
                    Ok(Message::Peer {
                        sender, metadata, ..
                    }) => {
                        break (sender, metadata.and_then(|m| m.storage_id));
                    }
                    Ok(Message::Error { message }) => return Err(format!("server: {message}")),
                    Ok(other) => return Err(format!("expected peer, got {}", other.kind())),
                    Err(e) => return Err(format!("bad frame from server: {e}")),
                },
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("connection failed: {e}")),
                None => return Err("connection closed during handshake".into()),
            }
        };
        self.attach_server(&server, server_storage.as_ref()).await;
        connected.send_replace(true);
        // Sending, too, is bounded by the silence limit: on a dead link a full socket
        // buffer would otherwise hold the loop (and its silence check) for ever.
        let silence = options.silence_limit;
        let flush = async |sink: &mut _| {
            tokio::time::timeout(silence, self.flush(&server, sink))
                .await
                .map_err(|_| format!("sending stalled for {} s", silence.as_secs()))?
        };
        flush(&mut sink).await?;

        let every = options.ping_every;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = stopped(stop) => {
                    let _ = send(&mut sink, &Message::Leave { sender: self.0.peer_id.clone() }).await;
                    let _ = sink.close().await;
                    return Ok(Ended::Stopped);
                }
                _ = self.0.local_change.notified() => flush(&mut sink).await?,
                _ = ping.tick() => {
                    if last_heard.elapsed() > silence {
                        return Err(format!("no word from the server for {} s", silence.as_secs()));
                    }
                    tokio::time::timeout(silence, sink.send(WsMessage::Ping(Default::default())))
                        .await
                        .map_err(|_| format!("sending stalled for {} s", silence.as_secs()))?
                        .map_err(|e| format!("connection failed: {e}"))?;
                }
                frame = stream.next() => {
                    last_heard = tokio::time::Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Binary(b))) => {
                            let message = Message::decode(&b).map_err(|e| format!("bad frame from server: {e}"))?;
                            self.handle(&server, message).await?;
                            flush(&mut sink).await?;
                        }
                        Some(Ok(WsMessage::Close(_))) | None => return Ok(Ended::Synced),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(format!("connection failed: {e}")),
                    }
                }
            }
        }
    }

    async fn attach_server(&self, server: &PeerId, server_storage: Option<&StorageId>) {
        let ids: Vec<DocumentId> = self.0.state.lock().await.docs.keys().copied().collect();
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            let saved = match server_storage {
                Some(s) => self.0.store.load_sync_state(s, id).await,
                None => None,
            };
            states.push((id, saved));
        }
        let mut state = self.0.state.lock().await;
        state.server = Some(server.clone());
        state.server_storage = server_storage.cloned();
        for (id, saved) in states {
            if let Some(entry) = state.docs.get_mut(&id) {
                entry.sync.remove_peer(server);
                entry.sync.add_peer(server.clone(), saved.as_deref());
            }
        }
        // Documents created or found since: they start from scratch.
        for entry in state.docs.values_mut() {
            if !entry.sync.has_peer(server) {
                entry.sync.add_peer(server.clone(), None);
            }
        }
    }

    async fn handle(&self, server: &PeerId, message: Message) -> Result<(), String> {
        match message {
            Message::Sync(m) | Message::Request(m) => {
                let mut state = self.0.state.lock().await;
                let State { docs, .. } = &mut *state;
                // A document we never asked for is one the server offers: a new document in
                // this user's areas. It only offers what the user may read.
                let entry = docs
                    .entry(m.document_id)
                    .or_insert_with(|| Entry::new(m.document_id, Some(server.clone())));
                entry
                    .sync
                    .receive(server, Kind::Sync, &m.data)
                    .map_err(|e| format!("server sent a bad sync message: {e}"))?;
                entry.unavailable = false;
                self.commit_locally(m.document_id, entry)
                    .await
                    .map_err(|e| e.to_string())?;
                if entry.sync.peer_has_everything(server) {
                    entry.acked = Some(entry.sync.heads());
                }
            }
            Message::DocUnavailable { document_id, .. } => {
                if let Some(entry) = self.0.state.lock().await.docs.get_mut(&document_id)
                    && !entry.sync.exists()
                {
                    entry.unavailable = true;
                }
            }
            // Only the server's notices are obeyed: other peers' ephemeral messages are
            // relayed under their own peer ids (docs/protocol.md), so a forged notice cannot
            // delete a document.
            Message::Ephemeral {
                document_id,
                sender,
                data,
                ..
            } if sender == *server => {
                let notice = Notice::decode(&data);
                if let Ok(Some(Notice::Drop)) = notice {
                    tracing::info!(doc = %document_id, "the server told us to drop a document");
                    self.drop_document(document_id)
                        .await
                        .map_err(|e| format!("cannot delete a dropped document: {e}"))?;
                } else if let Ok(Some(Notice::ChangeRefused { violations, .. })) = notice
                    && let Some(entry) = self.0.state.lock().await.docs.get_mut(&document_id)
                {
                    tracing::info!(doc = %document_id, "server refused our changes");
                    entry.refused = Some(
                        violations
                            .into_iter()
                            .map(|v| Violation {
                                path: v.path,
                                message: v.message,
                            })
                            .collect(),
                    );
                }
            }
            Message::Error { message } => return Err(format!("server: {message}")),
            _ => {}
        }
        self.bump();
        Ok(())
    }

    /// Sends every sync message any document has to say.
    async fn flush<S>(&self, server: &PeerId, sink: &mut S) -> Result<(), String>
    where
        S: futures_util::Sink<WsMessage> + Unpin,
        S::Error: std::fmt::Display,
    {
        let mut out = Vec::new();
        {
            let mut state = self.0.state.lock().await;
            for (id, entry) in state.docs.iter_mut() {
                // A document we do not have yet is asked for with `request`.
                let have_it = entry.sync.exists();
                // Refused: nothing to say until a local change makes a new attempt.
                if entry.unavailable || entry.refused.is_some() {
                    continue;
                }
                let Ok(messages) = entry.sync.generate() else {
                    continue;
                };
                for (_, data) in messages {
                    let m = DocMessage {
                        document_id: *id,
                        sender: self.0.peer_id.clone(),
                        target: server.clone(),
                        data,
                    };
                    out.push(if have_it {
                        Message::Sync(m)
                    } else {
                        Message::Request(m)
                    });
                }
            }
        }
        tracing::debug!(peer = %self.0.peer_id, messages = out.len(), "flush");
        for m in &out {
            send(sink, m).await?;
        }
        Ok(())
    }
}

/// The longest wait a server's `Retry-After` is honoured for: a wrong or hostile value does not
/// keep the phone offline for long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The wait a refusal's `Retry-After` asks for, in seconds (the HTTP-date form is not used by
/// fieldsync and is ignored).
fn retry_after_of(e: &tokio_tungstenite::tungstenite::Error) -> Option<Duration> {
    let tokio_tungstenite::tungstenite::Error::Http(response) = e else {
        return None;
    };
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// A refused upgrade says why in its JSON body (`{"error": code, "message": …}`).
fn describe_connect_error(e: tokio_tungstenite::tungstenite::Error) -> String {
    if let tokio_tungstenite::tungstenite::Error::Http(response) = &e {
        let body = response
            .body()
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return format!(
            "server refused the connection ({}): {body}",
            response.status()
        );
    }
    format!("connect failed: {e}")
}

enum Ended {
    /// Asked to stop.
    Stopped,
    /// The server closed the connection normally.
    Synced,
}

async fn send<S>(sink: &mut S, message: &Message) -> Result<(), String>
where
    S: futures_util::Sink<WsMessage> + Unpin,
    S::Error: std::fmt::Display,
{
    sink.send(WsMessage::Binary(message.encode().into()))
        .await
        .map_err(|e| format!("send failed: {e}"))
}

/// Completes once the stop flag is set (never, if its sender is gone without setting it).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
