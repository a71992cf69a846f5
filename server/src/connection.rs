//! One WebSocket connection: frames in, through the protocol [`Session`], to document actors;
//! frames out from those actors back to the socket.
//!
//! A connection ends with one log line saying why whenever the peer misbehaved (bad frame,
//! wrong sender, too slow, silent for too long). Before closing, the peer gets an `error`
//! message where the socket still allows it. Nothing a bad frame carried reaches storage: the
//! session rejects it before any document actor sees it.
//!
//! Every log line of a connection, here and in the document actors, carries its number
//! (`conn`): here through the span `sync{conn}`, in the actors as a field.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use fieldsync_core::Kind;
use fieldsync_protocol::{DocumentId, Inbound, Message, PeerId, Session, SessionError};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use fieldsync_core::schema::Author;

use crate::AppState;
use crate::hub::Command;
use crate::link::{Outbound, PeerLink, Waits};
use crate::storage::directory::Identity;
use crate::turns::{self, Count, Turn};

/// Frames a connection may have queued for sending before it counts as too slow.
const OUT_QUEUE: usize = 1024;
/// Messages a connection may have waiting at document actors.
const IN_FLIGHT: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(20);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// How the server's own peer ids begin (`crate::serve`); no phone may join under one.
pub(crate) const SERVER_PREFIX: &str = "fieldsync-";

/// Why a connection ended badly: logged, and sent to the peer when `reply` is set.
struct Ending {
    reason: String,
    reply: bool,
}

impl Ending {
    fn tell(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            reply: true,
        }
    }

    fn quiet(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            reply: false,
        }
    }
}

impl From<SessionError> for Ending {
    fn from(e: SessionError) -> Self {
        Self {
            reply: e.reply().is_some(),
            reason: e.to_string(),
        }
    }
}

pub(crate) async fn run(
    socket: WebSocket,
    state: Arc<AppState>,
    addr: SocketAddr,
    identity: Identity,
) {
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let _open = crate::metrics::sync_connection();
    let closed = state
        .live
        .register(conn, &identity.device_id, &identity.user.id);
    let author = Arc::new(Author::user(
        identity.user.id.clone(),
        identity.user.role,
        identity.user.areas.clone(),
    ));
    let waits = Waits::new(state.limits.max_waiting_per_connection);
    let mut c = Connection {
        device: identity.device_id.into(),
        author,
        state,
        addr,
        conn,
        session: None,
        link: None,
        docs: HashSet::new(),
        permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        kill: Arc::new(Notify::new()),
        replaced: Arc::new(Notify::new()),
        waits,
        busy: Arc::default(),
    };
    c.serve(socket, closed)
        .instrument(tracing::info_span!("sync", conn))
        .await;
    c.state.live.unregister(conn);
}

struct Connection {
    state: Arc<AppState>,
    /// The enrolled device this connection authenticated as, and its user.
    device: Arc<str>,
    author: Arc<Author>,
    addr: SocketAddr,
    conn: u64,
    session: Option<Session>,
    link: Option<Arc<PeerLink>>,
    docs: HashSet<DocumentId>,
    permits: Arc<Semaphore>,
    kill: Arc<Notify>,
    replaced: Arc<Notify>,
    /// Documents this connection waits for, bounded (`hub/waiting.rs`).
    waits: Arc<Waits>,
    busy: Arc<Count>,
}

impl Connection {
    async fn serve(&mut self, socket: WebSocket, mut closed: watch::Receiver<Option<String>>) {
        let (mut sink, mut stream) = socket.split();
        let (out_tx, mut out_rx) = mpsc::channel(OUT_QUEUE);
        let mut shutdown = self.state.shutdown.clone();
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = Instant::now();
        let join_by = Instant::now() + self.state.limits.join_timeout;
        self.session = Some(Session::new(
            self.state.server_peer.clone(),
            fieldsync_protocol::PeerMetadata {
                storage_id: Some(self.state.storage_id.clone()),
                is_ephemeral: false,
            },
        ));

        // The place at the document actors for the next message, taken before the socket is
        // read: while the actors are busy the socket is not read (the phone's sends wait in
        // TCP), but what is queued for the phone keeps going out. Waiting for it inside a
        // read stopped the outbound queue too, and a phone the server was slow to answer
        // was then disconnected as too slow to read.
        let mut permit: Option<OwnedSemaphorePermit> = None;
        // Turns at syncing (`turns.rs`): a message for a document waits in `pending` (and the
        // socket is not read further) until the connection has a turn. The wait for one is
        // kept across the loop's rounds so that frames going out do not lose its place.
        let mut turn: Option<Turn> = None;
        let mut pending: Option<Message> = None;
        let mut taking: Option<Taking> = None;
        let mut quiet_at = Instant::now();
        let ending: Option<Ending> = loop {
            tokio::select! {
                biased;
                _ = self.kill.notified() => break Some(Ending::tell("peer cannot keep up with its messages")),
                _ = self.replaced.notified() => break Some(Ending::quiet("replaced by a newer connection of the same peer")),
                _ = shutdown.changed() => break None,
                // Upgraded but silent: a socket held for nothing.
                _ = tokio::time::sleep_until(join_by), if self.link.is_none() => {
                    break Some(Ending::tell(format!(
                        "no join message within {:?} of connecting",
                        self.state.limits.join_timeout
                    )));
                }
                _ = closed.changed() => {
                    let reason = closed.borrow().clone().unwrap_or_default();
                    break Some(Ending::tell(reason));
                }
                Some(out) = out_rx.recv() => match out {
                    Outbound::Frame(frame) => {
                        if sink.send(WsMessage::Binary(frame.into())).await.is_err() {
                            break None;
                        }
                    }
                    Outbound::Fatal(reason) => break Some(Ending::tell(reason)),
                    Outbound::Push(doc) => self.push(doc),
                },
                p = self.permits.clone().acquire_owned(), if permit.is_none() => {
                    permit = Some(p.expect("the semaphore is never closed"));
                    // Time spent waiting on the server is not the peer's silence (a permit is
                    // taken after each message read, so for a silent peer this never runs).
                    last_heard = Instant::now();
                }
                t = wait_turn(&mut taking), if taking.is_some() => {
                    taking = None;
                    turn = Some(t);
                    // Waiting for a turn is not the peer's silence.
                    last_heard = Instant::now();
                    quiet_at = last_heard + turns::QUIET;
                    let message = pending.take().expect("a turn is taken for a pending message");
                    if let Err(ending) = self.route(message, &mut permit) {
                        break Some(ending);
                    }
                }
                _ = tokio::time::sleep_until(quiet_at), if turn.is_some() => {
                    if self.in_flight(&permit) == 0 {
                        turn = None;
                    } else {
                        quiet_at = Instant::now() + turns::QUIET;
                    }
                }
                frame = stream.next(), if permit.is_some() && pending.is_none() => {
                    last_heard = Instant::now();
                    quiet_at = last_heard + turns::QUIET;
                    match frame {
                        None | Some(Ok(WsMessage::Close(_))) => break None,
                        Some(Err(e)) => break Some(ws_error_ending(&e, self.state.limits.max_message_bytes)),
                        Some(Ok(WsMessage::Text(_))) => {
                            break Some(Ending::tell("text frames are not part of the protocol; send CBOR in binary frames"));
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                        Some(Ok(WsMessage::Binary(bytes))) => {
                            match self.receive(&bytes, &out_tx, &mut permit, &mut turn) {
                                Ok(Received::Reply(reply)) => {
                                    if sink.send(WsMessage::Binary(reply.into())).await.is_err() {
                                        break None;
                                    }
                                }
                                Ok(Received::Handled) => {}
                                Ok(Received::Waits(message)) => {
                                    pending = Some(message);
                                    let state = self.state.clone();
                                    taking = Some(Box::pin(async move { state.turns.take().await }));
                                }
                                Err(ending) => break ending,
                            }
                        }
                    }
                },
                _ = ping.tick() => {
                    // A connection waiting for its turn is not reading.
                    if pending.is_none() && last_heard.elapsed() > SILENCE_LIMIT {
                        break Some(Ending::quiet(format!("no frame for {} s", SILENCE_LIMIT.as_secs())));
                    }
                    if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                        break None;
                    }
                }
            }
        };

        let peer = self.session.as_ref().and_then(|s| s.peer().cloned());
        if let Some(ending) = ending {
            crate::metrics::disconnected_for_cause();
            let peer_name = peer.as_ref().map(PeerId::as_str).unwrap_or("-");
            if ending.reply {
                tracing::warn!(addr = %self.addr, peer = peer_name, "disconnected: {}", ending.reason);
            } else {
                tracing::info!(addr = %self.addr, peer = peer_name, "disconnected: {}", ending.reason);
            }
            if ending.reply {
                crate::metrics::message_sent("error");
                let frame = Message::Error {
                    message: ending.reason,
                }
                .encode();
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let _ = sink.send(WsMessage::Binary(frame.into())).await;
                })
                .await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        self.release(peer);
    }

    /// Messages of this connection at document actors: queued, or worked on until answered.
    fn in_flight(&self, permit: &Option<OwnedSemaphorePermit>) -> usize {
        IN_FLIGHT - self.permits.available_permits() - usize::from(permit.is_some())
            + self.busy.count()
    }

    /// Handles one binary frame. A message for a document is handed on while the connection
    /// has a turn (given up here once overdue), else given back to wait for one.
    /// `Err(None)` ends the connection without complaint (the peer said `leave`).
    fn receive(
        &mut self,
        bytes: &[u8],
        out: &mpsc::Sender<Outbound>,
        permit: &mut Option<OwnedSemaphorePermit>,
        turn: &mut Option<Turn>,
    ) -> Result<Received, Option<Ending>> {
        let session = self.session.as_mut().expect("session exists while serving");
        let inbound = session.receive(bytes).map_err(|e| Some(Ending::from(e)))?;
        crate::metrics::message_received(match &inbound {
            Inbound::Joined { .. } => "join",
            Inbound::Leave => "leave",
            Inbound::Echo => "ephemeral",
            Inbound::Message(m) => m.kind(),
        });
        match inbound {
            Inbound::Joined {
                peer,
                metadata,
                reply,
                ..
            } => {
                // A peer under the server's name could pass off its ephemeral messages, which
                // are relayed under their sender's id, as the server's notices.
                if peer == self.state.server_peer || peer.as_str().starts_with(SERVER_PREFIX) {
                    return Err(Some(Ending::tell(format!(
                        "peer ids starting with {SERVER_PREFIX:?} are reserved for servers"
                    ))));
                }
                self.link = Some(Arc::new(PeerLink {
                    peer: peer.clone(),
                    conn: self.conn,
                    storage: metadata.storage_id.filter(|_| !metadata.is_ephemeral),
                    out: out.clone(),
                    kill: self.kill.clone(),
                    author: self.author.clone(),
                    device: self.device.clone(),
                    waits: self.waits.clone(),
                    busy: self.busy.clone(),
                }));
                self.state
                    .register_peer(peer, self.conn, self.replaced.clone());
                self.state.live.joined(self.conn, out.clone());
                crate::metrics::message_sent(reply.kind());
                Ok(Received::Reply(reply.encode()))
            }
            Inbound::Leave => Err(None),
            Inbound::Echo => Ok(Received::Handled),
            Inbound::Message(message) => {
                if document_of(&message).is_some() {
                    if turn.as_ref().is_some_and(|t| t.overdue(&self.state.turns)) {
                        *turn = None;
                    }
                    if turn.is_none() {
                        return Ok(Received::Waits(message));
                    }
                }
                self.route(message, permit).map_err(Some)?;
                Ok(Received::Handled)
            }
        }
    }

    /// Hands a message to its document's actor with `permit` (taken: the next message waits
    /// for another), or leaves the permit for the next message if this one asks nothing.
    fn route(
        &mut self,
        message: Message,
        permit: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Ending> {
        let link = self
            .link
            .clone()
            .expect("messages arrive only after the handshake");
        let Some(doc) = document_of(&message) else {
            return Ok(());
        };
        if !self.docs.contains(&doc) && self.docs.len() >= self.state.limits.max_docs_per_connection
        {
            return Err(Ending::tell(format!(
                "more than {} documents on one connection",
                self.state.limits.max_docs_per_connection
            )));
        }
        let permit = permit
            .take()
            .expect("a frame is read only with a permit in hand");
        let command = match message {
            Message::Sync(m) => Command::Sync {
                link,
                kind: Kind::Sync,
                data: m.data,
                permit,
                received: std::time::Instant::now(),
            },
            Message::Request(m) => Command::Sync {
                link,
                kind: Kind::Request,
                data: m.data,
                permit,
                received: std::time::Instant::now(),
            },
            Message::Ephemeral {
                count,
                session_id,
                data,
                ..
            } => Command::Ephemeral {
                link,
                count,
                session_id,
                data,
                permit,
            },
            _ => unreachable!("filtered above"),
        };
        self.docs.insert(doc);
        self.state.hub.send(doc, command);
        Ok(())
    }

    /// A document the server offers unasked: synced like one the peer asked for, within the
    /// same limit of documents per connection.
    fn push(&mut self, doc: DocumentId) {
        let Some(link) = self.link.clone() else {
            return;
        };
        if self.docs.contains(&doc) || self.docs.len() >= self.state.limits.max_docs_per_connection
        {
            return;
        }
        // Offers queued before the peer fell behind are left out too.
        if !crate::link::room_for_offer(&link.out) {
            return;
        }
        self.docs.insert(doc);
        self.state.hub.send(doc, Command::Push { link });
    }

    fn release(&mut self, peer: Option<PeerId>) {
        let Some(peer) = peer else { return };
        for doc in self.docs.drain() {
            self.state.hub.send(
                doc,
                Command::Close {
                    peer: peer.clone(),
                    conn: self.conn,
                },
            );
        }
        self.state.unregister_peer(&peer, self.conn);
    }
}

/// What became of a frame read.
enum Received {
    /// A reply to send at once (the handshake answer).
    Reply(Vec<u8>),
    Handled,
    /// A message for a document, read while the connection has no turn: it waits for one.
    Waits(Message),
}

/// The wait for a turn, kept across the connection loop's rounds.
type Taking = Pin<Box<dyn Future<Output = Turn> + Send>>;

async fn wait_turn(taking: &mut Option<Taking>) -> Turn {
    match taking {
        Some(taking) => taking.await,
        None => std::future::pending().await,
    }
}

/// The document a message goes to. A peer telling us it lacks a document, or about other
/// stores' heads, asks nothing of a server that never announces documents.
fn document_of(message: &Message) -> Option<DocumentId> {
    match message {
        Message::Sync(m) | Message::Request(m) => Some(m.document_id),
        Message::Ephemeral { document_id, .. } => Some(*document_id),
        _ => None,
    }
}

/// A frame over the limit is the peer's fault and is told; a broken socket is just logged.
fn ws_error_ending(e: &axum::Error, max: usize) -> Ending {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        Ending::tell(format!("frame larger than the limit of {max} bytes"))
    } else {
        Ending::quiet(format!("connection lost: {text}"))
    }
}
