//! Documents in memory: one actor task per document that some peer is syncing.
//!
//! Connections route each document's messages to that document's actor through the [`Hub`].
//! The actor owns the [`DocumentSync`], drains whatever messages queued up, applies them,
//! commits the new changes through the [`Writer`] (one transaction for many documents), and
//! only then sends replies and relays to every peer with the document open. The document is
//! loaded from storage on demand and unloaded when the memory budget needs room or no peer has
//! it open; the actor ends when no peer has it open.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::AtomicU64;

use fieldsync_core::schema::{DocKind, FieldDocument, RegionCode};
use fieldsync_core::{DocumentSync, Kind, Receipt, SyncError};
use fieldsync_protocol::{DocMessage, DocumentId, Message, Notice, PeerId, StorageId};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::cache::Cache;
use crate::projection::Projection;
use crate::storage::{Storage, Write};
use crate::writer::Writer;

mod access;
mod edit;
mod external;
mod residency;
mod waiting;
pub use crate::link::{Outbound, PeerLink, Waits};
use access::kind_of;
pub use edit::Changed;
pub use external::{Heard, OtherProcesses};
pub use fieldsync_core::actor::{EditError, EditFn, Editor};

/// Limits of the document cache.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Estimated memory all loaded documents may take together.
    pub cache_bytes: usize,
    /// A loaded document nobody touched for this long is unloaded.
    pub idle_unload: Duration,
    /// The largest change and document a peer may make us apply.
    pub document_limits: fieldsync_core::Limits,
}

/// A message or stored document this large is applied or loaded on a blocking thread, so that
/// it never holds up the async workers that serve every other peer.
const HEAVY_OPS: u64 = 5_000;
const HEAVY_BYTES: u64 = 64 * 1024;

/// A message for a document actor.
#[derive(Debug)]
pub enum Command {
    /// A peer's `sync` or `request`. The permit bounds how much one connection can queue.
    Sync {
        link: PeerLink,
        kind: Kind,
        data: Vec<u8>,
        permit: OwnedSemaphorePermit,
        /// When the connection read it: the start of the commit latency in the metrics.
        received: std::time::Instant,
    },
    /// An `ephemeral` message to relay to the document's other peers.
    Ephemeral {
        link: PeerLink,
        count: u64,
        session_id: String,
        data: Vec<u8>,
        permit: OwnedSemaphorePermit,
    },
    /// The peer's connection `conn` closed.
    Close { peer: PeerId, conn: u64 },
    /// Free the document's memory (the cache needs room).
    Unload,
    /// A read or an edit made on the server in a person's name ([`Hub::read`], [`Hub::edit`]).
    Request(edit::Request),
    /// Start syncing the document with a connected peer that did not ask for it: a new
    /// document in its user's areas (`crate::caseload`).
    Push { link: PeerLink },
    /// Another process sharing the database may have stored changes of the document
    /// (`hub/external.rs`).
    External,
}

/// The registry of document actors; cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    docs: Mutex<HashMap<DocumentId, mpsc::UnboundedSender<Command>>>,
    /// Peers waiting for documents that have no actor (`hub/waiting.rs`); locked only while
    /// `docs` is.
    waiting: Mutex<waiting::Parked>,
    storage: Arc<dyn Storage>,
    writer: Writer,
    cache: Mutex<Cache>,
    config: HubConfig,
    server_peer: PeerId,
    idle: Notify,
    /// Counts the server's own ephemeral messages (notices), as the protocol asks.
    notices: AtomicU64,
    /// Durable changes, for live views.
    changes: tokio::sync::broadcast::Sender<Changed>,
    /// Bounds how many heavy applies and loads run at once, whatever the number of documents.
    heavy: Arc<Semaphore>,
    /// Index documents (`crate::caseload`): written only by the server, as large as a
    /// caseload, and so loaded without the document limits.
    unlimited: Mutex<HashSet<DocumentId>>,
    /// Stored documents refused because they exceed the limits (loaded before the limits
    /// existed, or under larger limits).
    oversized: AtomicU64,
}

impl Hub {
    pub fn new(
        storage: Arc<dyn Storage>,
        writer: Writer,
        server_peer: PeerId,
        config: HubConfig,
    ) -> Self {
        Self(Arc::new(Inner {
            docs: Mutex::default(),
            waiting: Mutex::default(),
            storage,
            writer,
            cache: Mutex::new(Cache::new(config.cache_bytes)),
            config,
            server_peer,
            idle: Notify::new(),
            notices: AtomicU64::new(0),
            changes: tokio::sync::broadcast::channel(1024).0,
            heavy: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            oversized: AtomicU64::new(0),
            unlimited: Mutex::default(),
        }))
    }

    /// Whether the last attempt to store changes failed.
    pub fn commits_failing(&self) -> bool {
        self.0.writer.failing()
    }

    /// How many times a stored document was refused for exceeding the limits.
    pub fn oversized_refusals(&self) -> u64 {
        self.0.oversized.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn server_peer(&self) -> &PeerId {
        &self.0.server_peer
    }

    /// Delivers a command to the document's actor, starting one if needed.
    pub fn send(&self, doc: DocumentId, command: Command) {
        let mut docs = self.0.docs.lock().expect("hub lock poisoned");
        let command = match docs.get(&doc) {
            Some(tx) => match tx.send(command) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => command,
        };
        if let Command::Close { peer, conn } = &command {
            // Nothing to close in an actor that does not exist, but perhaps a waiting peer.
            self.forget_waiting(doc, peer, *conn);
            return;
        }
        if matches!(command, Command::Unload) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(command);
        docs.insert(doc, tx.clone());
        let actor = Actor {
            id: doc,
            hub: self.clone(),
            tx,
            doc: None,
            current: None,
            links: HashMap::new(),
            waiting: self.unpark_waiting(doc),
            parked: HashMap::new(),
            persisted: HashMap::new(),
            owners: HashMap::new(),
            pending: Vec::new(),
            readers: HashSet::new(),
            edit_replies: Vec::new(),
            index_owner: None,
            placed: None,
            retry_at: None,
            received: None,
        };
        tokio::spawn(actor.run(rx));
    }

    /// Delivers a command only to a running actor.
    fn send_existing(&self, doc: DocumentId, command: Command) {
        let docs = self.0.docs.lock().expect("hub lock poisoned");
        if let Some(tx) = docs.get(&doc) {
            let _ = tx.send(command);
        }
    }

    /// How many documents have an actor.
    pub fn open_documents(&self) -> usize {
        self.0.docs.lock().expect("hub lock poisoned").len()
    }

    /// Estimated memory of the loaded documents.
    pub fn cache_used(&self) -> usize {
        self.0.cache.lock().expect("cache lock poisoned").used
    }

    /// How many documents are loaded, and the budget their memory is held to.
    pub fn cache_counts(&self) -> (usize, usize) {
        let cache = self.0.cache.lock().expect("cache lock poisoned");
        (cache.len(), cache.budget())
    }

    /// Waits until every actor has ended (after every connection closed), or `limit` passed.
    pub async fn drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.0.idle.notified();
            if self.open_documents() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.open_documents() == 0;
            }
        }
    }
}

struct Actor {
    id: DocumentId,
    hub: Hub,
    tx: mpsc::UnboundedSender<Command>,
    doc: Option<DocumentSync>,
    /// The document's state as the write rules see it (`None`: empty), kept in step with
    /// `doc`: what the next change is judged against and what the query rows are made of.
    current: Option<FieldDocument>,
    links: HashMap<PeerId, PeerLink>,
    /// Peers that asked for the document before it existed. They were told
    /// `doc-unavailable`, and are given the document as soon as some peer creates it.
    waiting: HashMap<PeerId, waiting::Waiting>,
    /// Sync states of connected peers while the document is unloaded.
    parked: HashMap<PeerId, Vec<u8>>,
    /// Sync states stored for peers' storage ids, as loaded and as since written.
    persisted: HashMap<StorageId, Vec<u8>>,
    /// Which device owns each actor id seen in this document's new changes.
    owners: HashMap<String, Arc<str>>,
    /// Audit lines and actor bindings to store with the next commit.
    pending: Vec<Write>,
    /// Connections (peer, connection number) whose reading of the document is audited.
    readers: HashSet<(PeerId, u64)>,
    /// The user whose index document this is (`crate::caseload`): only they may read it,
    /// and only the server writes it.
    index_owner: Option<String>,
    /// Type and area as last committed: what live views and the caseload compare a change
    /// against.
    placed: Option<(DocKind, RegionCode)>,
    /// Accepted server-side edits waiting for their commit: their heads and whom to tell.
    edit_replies: Vec<edit::PendingEdit>,
    /// After a failed commit: when to ask peers for the lost changes again.
    retry_at: Option<tokio::time::Instant>,
    /// When the oldest message not yet committed arrived (for the commit latency metric).
    received: Option<std::time::Instant>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const MAX_DRAIN: usize = 64;
/// How long after a failed commit the document's peers are asked to send its changes again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let idle = self.hub.0.config.idle_unload;
        loop {
            let retry = self.retry_at.unwrap_or_else(tokio::time::Instant::now);
            let first = tokio::select! {
                c = rx.recv() => c,
                _ = tokio::time::sleep_until(retry), if self.retry_at.is_some() => {
                    self.retry_at = None;
                    self.commit_and_reply().await;
                    continue;
                }
                _ = tokio::time::sleep(idle), if self.doc.is_some() && self.retry_at.is_none() => {
                    self.unload().await;
                    continue;
                }
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            while batch.len() < MAX_DRAIN {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.handle(batch).await;
            // Peers waiting for a document that does not exist wait in the hub, not here.
            if self.links.is_empty() && (self.waiting.is_empty() || self.only_waiting()) {
                self.unload().await;
                if self.try_exit(&rx) {
                    break;
                }
            }
        }
        self.hub.0.idle.notify_waiters();
    }

    /// Leaves the hub, unless a command arrived meanwhile, leaving its waiting peers with
    /// the hub for the document's next actor. Senders hold the hub lock while they send (and
    /// start actors), so no command can slip in between this check and the removal.
    fn try_exit(&mut self, rx: &mpsc::UnboundedReceiver<Command>) -> bool {
        let mut docs = self.hub.0.docs.lock().expect("hub lock poisoned");
        if !rx.is_empty() {
            return false;
        }
        if docs
            .get(&self.id)
            .is_some_and(|tx| tx.same_channel(&self.tx))
        {
            docs.remove(&self.id);
            self.hub
                .park_waiting(self.id, std::mem::take(&mut self.waiting));
        }
        true
    }

    async fn handle(&mut self, batch: Vec<Command>) {
        let needs_doc = batch.iter().any(|c| {
            matches!(
                c,
                Command::Sync { .. }
                    | Command::Ephemeral { .. }
                    | Command::Request(_)
                    | Command::Push { .. }
            )
        });
        if needs_doc
            && self.doc.is_none()
            && let Err(failure) = self.load().await
        {
            for c in batch {
                match (&failure, c) {
                    // Refused for its size: to a peer, as if it did not exist; it is logged
                    // and counted for the operator, and nothing else is held up.
                    (
                        residency::LoadFailure::Oversized,
                        Command::Sync { link, .. } | Command::Ephemeral { link, .. },
                    ) => self.unavailable(&link),
                    (
                        residency::LoadFailure::Failed,
                        Command::Sync { link, .. } | Command::Ephemeral { link, .. },
                    ) => link
                        .fatal("the server cannot read this document now; try again later".into()),
                    // A dropped request tells its caller that it failed.
                    _ => {}
                }
            }
            return;
        }
        let mut unload = false;
        let mut external = false;
        for command in batch {
            match command {
                Command::Sync {
                    link,
                    kind,
                    data,
                    received,
                    ..
                } => {
                    self.received.get_or_insert(received);
                    self.receive(link, kind, &data).await;
                }
                Command::Ephemeral {
                    link,
                    count,
                    session_id,
                    data,
                    ..
                } => self.relay(&link, count, &session_id, &data),
                Command::Close { peer, conn } => self.close(&peer, conn).await,
                Command::Request(request) => self.request(request).await,
                Command::Push { link } => self.push(link),
                // Deferred: replies to this batch's messages must go out first.
                Command::Unload => unload = true,
                // After this batch's own commit, which it must not be mixed into.
                Command::External => external = true,
            }
        }
        self.commit_and_reply().await;
        self.received = None;
        self.settle_edits();
        if external {
            self.catch_up().await;
        }
        if unload {
            self.unload().await;
        }
    }

    /// Registers the peer's connection, replacing an older connection of the same peer.
    fn attach(&mut self, link: &PeerLink) {
        let doc = self.doc.as_mut().expect("attach needs a loaded document");
        match self.links.get(&link.peer) {
            Some(known) if known.conn == link.conn => return,
            Some(_) => {
                doc.remove_peer(&link.peer);
            }
            None => {}
        }
        let state = link
            .storage
            .as_ref()
            .and_then(|s| self.persisted.get(s).cloned());
        doc.add_peer(link.peer.clone(), state.as_deref());
        self.links.insert(link.peer.clone(), link.clone());
    }

    async fn receive(&mut self, link: PeerLink, kind: Kind, data: &[u8]) {
        let is_new = !self.links.contains_key(&link.peer);
        let exists = self.doc.as_ref().is_some_and(DocumentSync::exists);
        if is_new && kind == Kind::Request && !exists {
            self.wait(&link);
            self.unavailable(&link);
            return;
        }
        if exists && !self.readable(&link.author) {
            // Exactly what a document that does not exist gets. A device that says it holds
            // a copy (`sync`) is told to drop it.
            if let Some(doc) = self.doc.as_mut() {
                doc.remove_peer(&link.peer);
            }
            self.links.remove(&link.peer);
            self.unavailable(&link);
            if kind == Kind::Sync {
                self.notify(&link, &Notice::Drop);
            }
            return;
        }
        self.attach(&link);
        tracing::debug!(doc = %self.id, peer = %link.peer, conn = link.conn, ?kind, len = data.len(), "received");
        let before = self
            .doc
            .as_ref()
            .expect("receive needs a loaded document")
            .heads();
        let result = self.apply(&link.peer, kind, data).await;
        let Some(doc) = self.doc.as_mut() else {
            // The document was lost with a failed apply: the peer starts afresh.
            self.links.remove(&link.peer);
            link.fatal("the server could not apply this message; try again later".into());
            return;
        };
        match result {
            Ok(Receipt::Applied) if doc.heads() != before => self.judge(&link, &before).await,
            Ok(Receipt::Applied) => {}
            Ok(Receipt::Unavailable) => unreachable!("the peer was attached above"),
            Err(SyncError::TooLarge(e)) => self.refuse_oversized(&link, &e),
            Err(e) => {
                tracing::warn!(peer = %link.peer, conn = link.conn, doc = %self.id, "disconnecting peer: {e}");
                doc.remove_peer(&link.peer);
                self.links.remove(&link.peer);
                link.fatal(e.to_string());
            }
        }
    }

    /// Applies a peer's message: on this task when it is light, on a blocking thread (at most
    /// one per core at a time) when it is heavy. `self.doc` is `None` afterwards only if the
    /// apply panicked.
    async fn apply(
        &mut self,
        peer: &PeerId,
        kind: Kind,
        data: &[u8],
    ) -> Result<Receipt, SyncError> {
        let limits = self.hub.0.config.document_limits;
        let heavy = DocumentSync::message_size(data, &limits)
            .is_ok_and(|s| s.ops > HEAVY_OPS || s.bytes > HEAVY_BYTES);
        let mut doc = self.doc.take().expect("apply needs a loaded document");
        let (doc, result) = if heavy {
            let permit = self
                .hub
                .0
                .heavy
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (peer, data) = (peer.clone(), data.to_vec());
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let result = doc.receive(&peer, kind, &data);
                (Some(doc), result)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(doc = %self.id, "applying a message failed: {e}");
                (None, Err(SyncError::Poisoned))
            })
        } else {
            let result = doc.receive(peer, kind, data);
            (Some(doc), result)
        };
        if matches!(result, Err(SyncError::Poisoned)) {
            // Dropped: the next message loads the durable document again.
            tracing::error!(doc = %self.id, "automerge failed on a message, unloading");
            self.current = None;
            self.parked.clear();
        } else {
            self.doc = doc;
        }
        result
    }

    /// Relays a peer's ephemeral message to the document's other peers, as the protocol
    /// does: under the sender's own peer id, so that no peer can speak as the server (whose
    /// ephemeral messages are notices). Only between peers that may read the document: the
    /// sender must be attached to it (it passed the read rule), and so is every recipient.
    fn relay(&mut self, from: &PeerLink, count: u64, session_id: &str, data: &[u8]) {
        let attached = self
            .links
            .get(&from.peer)
            .is_some_and(|l| l.conn == from.conn);
        if !attached || !self.readable(&from.author) {
            tracing::debug!(doc = %self.id, peer = %from.peer, "ephemeral message from a peer not syncing the document, dropped");
            return;
        }
        for link in self.links.values() {
            if link.peer == from.peer || !self.readable(&link.author) {
                continue;
            }
            link.send(&Message::Ephemeral {
                document_id: self.id,
                sender: from.peer.clone(),
                target: link.peer.clone(),
                count,
                session_id: session_id.to_owned(),
                data: data.to_vec(),
            });
        }
    }

    async fn close(&mut self, peer: &PeerId, conn: u64) {
        self.stop_waiting(peer, conn);
        if self.links.get(peer).is_none_or(|l| l.conn != conn) {
            return; // an older connection of a peer that has since reconnected
        }
        let link = self.links.remove(peer).expect("checked above");
        self.readers.remove(&(peer.clone(), conn));
        let state = match self.doc.as_mut() {
            Some(doc) => doc.remove_peer(peer),
            None => self.parked.remove(peer),
        };
        if let (Some(storage), Some(state)) = (link.storage, state) {
            self.persist_sync_states(vec![(storage, state)]).await;
        }
    }

    async fn commit_and_reply(&mut self) {
        let mut announce = false;
        // Every connection with the document open is sent this change: connections not yet
        // audited as readers are audited in the change's own transaction (a moment before
        // the send, never after), which spares a second transaction per new document.
        let first_reads: Vec<((PeerId, u64), Write)> = self
            .links
            .values()
            .filter(|l| !self.readers.contains(&(l.peer.clone(), l.conn)))
            .map(|l| {
                let line = self.audit(l, "read", kind_of(self.current.as_ref()));
                ((l.peer.clone(), l.conn), line)
            })
            .collect();
        let Some(doc) = self.doc.as_mut() else { return };
        if let Some(commit) = doc.take_commit() {
            let mut writes = vec![Write::Append {
                doc: self.id,
                bytes: commit.bytes.clone(),
                projection: Projection::of(self.current.as_ref()),
            }];
            // Who wrote it, and the actor ids it binds, land in the same transaction.
            writes.append(&mut self.pending);
            let (readers, lines): (Vec<_>, Vec<_>) = first_reads.into_iter().unzip();
            writes.extend(lines);
            match self.hub.0.writer.write_all(writes).await {
                Ok(()) => {
                    if let Some(received) = self.received.take() {
                        crate::metrics::committed(received);
                    }
                    doc.committed(&commit);
                    self.readers.extend(readers);
                    announce = true;
                }
                Err(e) => {
                    tracing::error!(doc = %self.id, "changes not stored, rolled back: {e}");
                    if let Err(e) = doc.rolled_back() {
                        tracing::error!(doc = %self.id, "rollback failed, unloading: {e}");
                        self.doc = None;
                        return;
                    }
                    self.current = read_state(doc);
                    // Peers are asked to send the lost changes again, a moment from now
                    // rather than at once: while storage fails, each document retries about
                    // once a second instead of as fast as its peers answer.
                    self.retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER_FAILURE);
                    return;
                }
            }
        }
        self.attach_waiting();
        // Refusals not followed by any commit are audited on their own.
        if !self.pending.is_empty() {
            let writes = std::mem::take(&mut self.pending);
            if let Err(e) = self.hub.0.writer.write_all(writes).await {
                tracing::error!(doc = %self.id, "audit lines not stored: {e}");
            }
        }
        if announce {
            self.announce_change();
        }
        let Some(doc) = self.doc.as_mut() else { return };
        let messages = match doc.generate() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(doc = %self.id, "{e}");
                return;
            }
        };
        // Reading is audited before the document leaves: the first time each connection is
        // sent a document that exists.
        let exists = self.doc.as_ref().is_some_and(DocumentSync::exists);
        let mut reads = Vec::new();
        for (peer, _) in &messages {
            if let Some(link) = self.links.get(peer)
                && exists
                && self.readers.insert((peer.clone(), link.conn))
            {
                reads.push(self.audit(link, "read", kind_of(self.current.as_ref())));
            }
        }
        if !reads.is_empty()
            && let Err(e) = self.hub.0.writer.write_all(reads).await
        {
            // Nothing is sent that was not audited: these peers are disconnected instead, and
            // start afresh when they reconnect.
            tracing::error!(doc = %self.id, "read audit not stored, not sending: {e}");
            for (peer, _) in &messages {
                if let Some(link) = self.links.remove(peer) {
                    self.readers.remove(&(peer.clone(), link.conn));
                    if let Some(doc) = self.doc.as_mut() {
                        doc.remove_peer(peer);
                    }
                    link.fatal("the server cannot record this read now; try again later".into());
                }
            }
            return;
        }
        for (peer, data) in messages {
            tracing::debug!(doc = %self.id, %peer, len = data.len(), "sending");
            if let Some(link) = self.links.get(&peer) {
                link.send(&Message::Sync(DocMessage {
                    document_id: self.id,
                    sender: self.hub.0.server_peer.clone(),
                    target: peer,
                    data,
                }));
            }
        }
        self.compact().await;
        self.touch_cache();
    }
}

/// A document's type and area, when it is a field document.
fn placement(state: Option<&FieldDocument>) -> Option<(DocKind, RegionCode)> {
    state.map(|d| (d.kind(), d.envelope().area.clone()))
}

/// The state the write rules judge the next change against. A stored document that is not
/// valid (stored before a rule existed) counts as empty: the next change must then make it
/// valid, under the rules for creating it.
fn read_state(doc: &DocumentSync) -> Option<FieldDocument> {
    match FieldDocument::read_state(doc.doc()) {
        Ok(state) => state,
        Err(violations) => {
            tracing::warn!(
                doc = %doc.id(), violations = violations.len(),
                "stored document is not valid: {}", violations[0]
            );
            None
        }
    }
}
