//! Documents in memory: one actor task per document that some peer is syncing.
//!
//! Connections route each document's messages to that document's actor through the [`Hub`].
//! The actor task (`hub/task.rs`) only runs the document's sans-IO core,
//! [`fieldsync_core::actor::DocumentActor`], which makes every decision: the task drains
//! whatever commands queued up, turns them into the core's events, and carries out the effects
//! that come back (`hub/effects.rs`): writes through the [`Writer`] (one transaction for many
//! documents), answered to the core once durable, and only then the replies and relays the
//! core sends to every peer with the document open. The document is loaded from storage on
//! demand (`hub/residency.rs`) and unloaded when the memory budget needs room, when another
//! document must load beyond the limit on loaded documents (it waits meanwhile: the storm's
//! back-pressure), or when nobody touched it for a while; the task ends when no peer has the
//! document open.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldsync_core::Kind;
use fieldsync_protocol::{DocumentId, PeerId};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::cache::Cache;
use crate::storage::Storage;
use crate::writer::Writer;

mod edit;
mod effects;
mod external;
mod residency;
mod rounds;
mod task;
mod waiting;
pub use crate::link::{Outbound, PeerLink, Waits};
pub use edit::Changed;
pub use external::{Heard, OtherProcesses};
pub use fieldsync_core::actor::{EditError, EditFn, Editor};

/// Limits of the document cache: its memory (`cache_bytes`) and its number of documents
/// (`max_loaded`).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Estimated memory all loaded documents may take together.
    pub cache_bytes: usize,
    /// A loaded document nobody touched for this long is unloaded.
    pub idle_unload: Duration,
    /// Most documents loaded at once, whatever their size: a document that must load beyond
    /// it waits while the one used longest ago unloads (`hub/residency.rs`). A thirty-second
    /// of the places is kept for the office's reads and edits ([`Hub::reserved_places`]).
    pub max_loaded: usize,
    /// The largest change and document a peer may make us apply.
    pub document_limits: fieldsync_core::Limits,
    /// What the document rules need of the deployment: the attachment maximum
    /// (`--max-attachment-bytes`), so a document may reference what `/files/` accepts.
    pub schema_limits: fieldsync_core::schema::SchemaLimits,
    /// Durable changes held for the slowest follower (the caseloads, live pages) before it is
    /// told it fell behind ([`Hub::changes`]).
    pub changes_buffer: usize,
}

/// A message for a document actor. Kept small (links shared, requests boxed): every actor's
/// queue reserves room for 32 of them at once.
#[derive(Debug)]
pub enum Command {
    /// A peer's `sync` or `request`. The permit bounds how much one connection can queue.
    Sync {
        link: Arc<PeerLink>,
        kind: Kind,
        data: Vec<u8>,
        permit: OwnedSemaphorePermit,
        /// When the connection read it: the start of the commit latency in the metrics.
        received: std::time::Instant,
    },
    /// An `ephemeral` message to relay to the document's other peers.
    Ephemeral {
        link: Arc<PeerLink>,
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
    Request(Box<edit::Request>),
    /// Start syncing the document with a connected peer that did not ask for it: a new
    /// document in its user's areas (`crate::caseload`).
    Push { link: Arc<PeerLink> },
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
    /// The actor-id owner lookups and the loads of every document, each kind asked together
    /// (`hub/rounds.rs`); started at first use.
    owners: std::sync::OnceLock<rounds::Rounds<rounds::Owners>>,
    loads: std::sync::OnceLock<rounds::Rounds<rounds::Loads>>,
    cache: Mutex<Cache>,
    /// One permit per loaded document, `config.max_loaded` in all with `reserve`: held from
    /// the load until the document leaves memory.
    slots: Arc<Semaphore>,
    /// The places only a read or edit of the office may take (a supervisor's decision, a
    /// referral's page), so that it does not queue behind a storm's phones for a place.
    reserve: Arc<Semaphore>,
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
    /// caseload, and so loaded without the document limits and without taking a place among
    /// `max_loaded` (their memory still counts against the cache budget).
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
        mut config: HubConfig,
    ) -> Self {
        config.max_loaded = config.max_loaded.max(1);
        let reserved = Self::reserved_places(config.max_loaded);
        let changes_buffer = config.changes_buffer.max(1);
        Self(Arc::new(Inner {
            docs: Mutex::default(),
            waiting: Mutex::default(),
            storage,
            writer,
            owners: std::sync::OnceLock::new(),
            loads: std::sync::OnceLock::new(),
            cache: Mutex::new(Cache::new(config.cache_bytes)),
            slots: Arc::new(Semaphore::new(config.max_loaded - reserved)),
            reserve: Arc::new(Semaphore::new(reserved)),
            config,
            server_peer,
            idle: Notify::new(),
            notices: AtomicU64::new(0),
            changes: tokio::sync::broadcast::channel(changes_buffer).0,
            heavy: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            oversized: AtomicU64::new(0),
            unlimited: Mutex::default(),
        }))
    }

    /// Runs `work` on a blocking thread, at most one per core at a time: a heavy message or
    /// load never holds up the async workers that serve every other peer.
    pub(crate) async fn run_heavy<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let permit = self
            .0
            .heavy
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
    }

    fn owners(&self) -> &rounds::Rounds<rounds::Owners> {
        (self.0.owners).get_or_init(|| rounds::Rounds::start(self.0.storage.clone()))
    }

    fn loads(&self) -> &rounds::Rounds<rounds::Loads> {
        (self.0.loads).get_or_init(|| rounds::Rounds::start(self.0.storage.clone()))
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
        let actor = task::Actor::new(doc, self.clone(), tx, self.unpark_waiting(doc));
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

    /// How many documents hold a place in memory (loaded or loading), of `max_loaded`.
    pub fn loaded_places(&self) -> usize {
        self.0.config.max_loaded
            - self.0.slots.available_permits()
            - self.0.reserve.available_permits()
    }

    /// Of `max_loaded` places, those kept for the office's reads and edits: a thirty-second
    /// (125 of the default 4,000; none when `max_loaded` is under 32). In a storm larger than
    /// the places a phone's document waits 20-27 s in line for one (docs/benchmarks.md), and
    /// a supervisor's decision or referral page whose document must load would wait with it.
    pub fn reserved_places(max_loaded: usize) -> usize {
        max_loaded / 32
    }

    /// The budget the loaded documents' memory is held to.
    pub fn cache_budget(&self) -> usize {
        self.0.cache.lock().expect("cache lock poisoned").budget()
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
