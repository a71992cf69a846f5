//! The actor task of one document: it owns the document's sans-IO core
//! ([`DocumentActor`]), turns the [`Command`]s that queued up into the core's [`Event`]s, and
//! has the effects that come back carried out (`effects.rs`) until the core waits for nothing.
//! Everything here is plumbing: which connection a peer id names, which caller waits for which
//! ticket, timers, the blocking thread a heavy message is applied on. The decisions are the
//! core's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync_core::DocumentSync;
use fieldsync_core::actor::{ActorConfig, DocumentActor, EditError, Event, Who};
use fieldsync_core::automerge::ActorId;
use fieldsync_core::schema::FieldDocument;
use fieldsync_protocol::{DocumentId, PeerId};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::edit::{Op, Request};
use super::{Command, Hub, PeerLink, waiting};
use crate::cache::Place;

const MAX_DRAIN: usize = 64;
/// How long after a failed commit the document's peers are asked to send its changes again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// A message or stored document this large is applied or loaded on a blocking thread, so that
/// it never holds up the async workers that serve every other peer.
pub(super) const HEAVY_OPS: u64 = 5_000;
pub(super) const HEAVY_BYTES: u64 = 64 * 1024;

/// Whom to answer when the core answers a ticket.
pub(super) enum Reply {
    Read(oneshot::Sender<Option<FieldDocument>>),
    Edit(oneshot::Sender<Result<(), EditError>>),
}

pub(super) struct Actor {
    pub(super) id: DocumentId,
    pub(super) hub: Hub,
    tx: mpsc::UnboundedSender<Command>,
    pub(super) core: DocumentActor,
    /// How to reach the connections the core may address, by (peer, connection).
    pub(super) links: HashMap<(PeerId, u64), Arc<PeerLink>>,
    /// Peers that asked for the document before it existed (`waiting.rs`). They were told
    /// `doc-unavailable`, and are pushed the document as soon as some peer creates it.
    pub(super) waiting: waiting::WaitingPeers,
    /// Server-side reads and edits waiting for the core's answer, by ticket.
    pub(super) replies: HashMap<u64, Reply>,
    next_ticket: u64,
    /// When the oldest message not yet committed arrived (for the commit latency metric).
    pub(super) received: Option<Instant>,
    /// The memory the core last said the loaded document takes, for the cache budget.
    pub(super) resident: Option<usize>,
    /// The document's place among those loaded (`HubConfig::max_loaded`), held from its load
    /// until it leaves memory, and which kind it is.
    pub(super) place: Option<(OwnedSemaphorePermit, Place)>,
    /// The batch being handled holds a read or edit of the office: a load it needs may take
    /// a reserved place.
    pub(super) office: bool,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Actor {
    pub(super) fn new(
        id: DocumentId,
        hub: Hub,
        tx: mpsc::UnboundedSender<Command>,
        waiting: waiting::WaitingPeers,
    ) -> Self {
        let core = DocumentActor::new(core_config(&hub.0.config));
        Self {
            id,
            hub,
            tx,
            core,
            links: HashMap::new(),
            waiting,
            replies: HashMap::new(),
            next_ticket: 0,
            received: None,
            resident: None,
            place: None,
            office: false,
        }
    }

    /// The work of a batch runs in a boxed future of its own, allocated while it runs: the
    /// task of an idle document (most of a storm's, waiting for their phones) stays a few
    /// hundred bytes instead of the ~20 KB the whole call tree's state would take inline.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let idle = self.hub.0.config.idle_unload;
        loop {
            let wake = self.core.wake_at();
            let retry_in = Duration::from_millis(wake.unwrap_or(0).saturating_sub(now()));
            let loaded = self.core.document().is_some();
            let first = tokio::select! {
                c = rx.recv() => c,
                () = tokio::time::sleep(retry_in), if wake.is_some() => {
                    Box::pin(self.drive(vec![Event::Tick], Vec::new(), false)).await;
                    continue;
                }
                () = tokio::time::sleep(idle), if loaded && wake.is_none() => {
                    Box::pin(self.drive(vec![Event::Unload], Vec::new(), false)).await;
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
            Box::pin(self.handle(batch)).await;
            // Peers waiting for a document that does not exist wait in the hub, not here.
            if self.core.peers().next().is_none()
                && (self.waiting.is_empty() || !self.core.exists())
            {
                Box::pin(self.drive(vec![Event::Unload], Vec::new(), false)).await;
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
        let mut events = Vec::with_capacity(batch.len());
        let mut permits = Vec::new();
        // Held until the batch is done, its writes stored and its replies sent.
        let mut working = Vec::new();
        let mut heavy = false;
        let mut external = false;
        for command in batch {
            match command {
                Command::Sync {
                    link,
                    kind,
                    data,
                    permit,
                    received,
                } => {
                    tracing::debug!(doc = %self.id, peer = %link.peer, conn = link.conn, ?kind, len = data.len(), "received");
                    self.received.get_or_insert(received);
                    heavy |= self.heavy(&data);
                    permits.push(permit);
                    working.push(link.busy.hold());
                    let from = self.remember(link);
                    events.push(Event::Sync { from, kind, data });
                }
                Command::Ephemeral {
                    link,
                    count,
                    session_id,
                    data,
                    permit,
                } => {
                    permits.push(permit);
                    working.push(link.busy.hold());
                    let from = self.remember(link);
                    events.push(Event::Ephemeral {
                        from,
                        count,
                        session_id,
                        data,
                    });
                }
                Command::Close { peer, conn } => {
                    self.waiting.stop(&peer, conn);
                    self.links.remove(&(peer.clone(), conn));
                    events.push(Event::Left { peer, conn });
                }
                // The core unloads once this batch's replies are out.
                Command::Unload => events.push(Event::Unload),
                Command::Request(request) => events.push(self.request(*request)),
                Command::Push { link } => {
                    working.push(link.busy.hold());
                    let to = self.remember(link);
                    events.push(Event::Push { to });
                }
                // After this batch's own commit, which it must not be mixed into.
                Command::External => external = true,
            }
        }
        self.drive(events, permits, heavy).await;
        drop(working);
        // Its load, if it needed one, is done: a later batch's is not the office's.
        self.office = false;
        self.received = None;
        if external {
            self.drive(vec![Event::StoredElsewhere], Vec::new(), false)
                .await;
        }
    }

    /// Hands events to the core and carries out its effects, feeding storage's answers back,
    /// until the core waits for nothing; then gives the document to peers that waited for it
    /// to exist. The batch's permits are released once its messages are applied.
    pub(super) async fn drive(
        &mut self,
        mut events: Vec<Event>,
        permits: Vec<OwnedSemaphorePermit>,
        heavy: bool,
    ) {
        let mut permits = permits;
        loop {
            if events.is_empty() {
                events = self.waiting_pushes();
                if events.is_empty() {
                    break;
                }
            }
            // Every step of a heavy batch: its messages may wait for a load or a lookup.
            let effects = if heavy || self.large(&events) {
                self.handle_blocking(events).await
            } else {
                self.core.handle_all(now(), events)
            };
            permits.clear();
            events = self.carry_out(effects).await;
        }
        self.touch_cache();
    }

    /// The core handles a heavy message on a blocking thread (at most one per core at a
    /// time), so that it never holds up the async workers.
    async fn handle_blocking(&mut self, events: Vec<Event>) -> Vec<fieldsync_core::actor::Effect> {
        let config = core_config(&self.hub.0.config);
        let mut core = std::mem::replace(&mut self.core, DocumentActor::new(config));
        let now = now();
        let handled = self
            .hub
            .run_heavy(move || {
                let effects = core.handle_all(now, events);
                (core, effects)
            })
            .await;
        match handled {
            Ok((core, effects)) => {
                self.core = core;
                effects
            }
            Err(e) => {
                // The core's state is lost with the thread: every peer starts afresh, and
                // the next message loads the durable document again.
                tracing::error!(doc = %self.id, "applying a message failed: {e}");
                for link in self.links.values() {
                    link.fatal("the server could not apply this message; try again later".into());
                }
                self.links.clear();
                self.replies.clear();
                self.forget_document();
                Vec::new()
            }
        }
    }

    /// Whether the document is large enough that any work on it (an edit, a sync message
    /// generated, a compaction's snapshot) is better done off the async workers: a city's
    /// caseload index of 100,000 entries took seconds to reconcile and each edit of it
    /// hundreds of milliseconds, and on a worker thread that held up half of every other
    /// peer's traffic (docs/benchmarks.md, "A city's index").
    fn large(&self, events: &[Event]) -> bool {
        let large = |doc: &DocumentSync| doc.stored_bytes() as u64 > HEAVY_BYTES;
        self.core.document().is_some_and(large)
            || events
                .iter()
                .any(|e| matches!(e, Event::Loaded { doc, .. } if large(doc)))
    }

    /// Whether applying this message could take long.
    fn heavy(&self, data: &[u8]) -> bool {
        let limits = self.hub.0.config.document_limits;
        DocumentSync::message_size(data, &limits)
            .is_ok_and(|s| s.ops > HEAVY_OPS || s.bytes > HEAVY_BYTES)
    }

    /// The core's view of a connection; the link is kept to reach it.
    /// Once the document exists, it is pushed to the peers that waited for it (the core gives
    /// it to those that may read it).
    fn waiting_pushes(&mut self) -> Vec<Event> {
        if self.waiting.is_empty() || !self.core.exists() {
            return Vec::new();
        }
        let links = self.waiting.take();
        links
            .into_iter()
            .map(|link| Event::Push {
                to: self.remember(link),
            })
            .collect()
    }

    pub(super) fn remember(&mut self, link: Arc<PeerLink>) -> Who {
        let who = who(&link);
        self.links.insert((link.peer.clone(), link.conn), link);
        who
    }

    /// A request from inside the server, as the core's event; its caller waits for the
    /// ticket's answer.
    fn request(&mut self, request: Request) -> Event {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let Request { editor, op } = request;
        self.office |= matches!(op, Op::Read(_) | Op::Edit { .. });
        match op {
            Op::Read(reply) => {
                self.replies.insert(ticket, Reply::Read(reply));
                Event::Read { ticket, editor }
            }
            Op::Edit { change, reply } => {
                self.replies.insert(ticket, Reply::Edit(reply));
                Event::Edit {
                    ticket,
                    editor,
                    actor: ActorId::random(),
                    change,
                }
            }
            Op::Index {
                owner,
                seed,
                change,
                reply,
            } => {
                self.replies.insert(ticket, Reply::Edit(reply));
                Event::IndexEdit {
                    ticket,
                    owner,
                    actor: ActorId::random(),
                    seed,
                    change,
                }
            }
        }
    }
}

pub(super) fn who(link: &PeerLink) -> Who {
    Who {
        peer: link.peer.clone(),
        conn: link.conn,
        author: link.author.clone(),
        device: link.device.clone(),
        storage: link.storage.clone(),
    }
}

fn core_config(hub: &super::HubConfig) -> ActorConfig {
    ActorConfig {
        retry_after_ms: u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX),
        schema: hub.schema_limits,
    }
}

/// The wall clock, as the core counts time.
pub(super) fn now() -> u64 {
    u64::try_from(crate::storage::now_millis()).unwrap_or(0)
}
