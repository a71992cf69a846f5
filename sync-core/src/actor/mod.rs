//! The document actor's decisions, without IO: one document, the peers syncing it, and what
//! must happen when something arrives.
//!
//! A runtime (the server's hub, or a simulation in a test) feeds [`DocumentActor::handle`] the
//! current time and [`Event`]s — a peer's sync message, a peer leaving, a server-side edit in a
//! person's name, storage's answer to a write, changes another process stored, a tick — and
//! carries out the [`Effect`]s that come back, in order: store these changes and audit lines,
//! send this to that peer, tell live views, load the document, look up who owns these actor
//! ids. The actor reads no clock (time comes in as milliseconds), draws no randomness (a
//! server-side edit brings its actor id) and does no IO, so the same events give the same
//! effects, on the server and in a test.
//!
//! The rules it keeps:
//!
//! - **Acknowledged means stored.** At most one [`Effect::Write`] is outstanding; until its
//!   [`Event::Stored`] arrives, no sync message leaves ([`DocumentSync::generate`] refuses while
//!   changes are uncommitted) and later events wait in order behind it.
//! - **Refused changes go nowhere.** A change the write rules refuse is undone before anything
//!   is written or generated; the peer gets a `change-refused` notice and an audit line.
//! - **A failed write rolls back.** The document returns to what is stored, every peer is asked
//!   to send its changes again, and after `retry_after_ms` (a [`Event::Tick`]) the actor asks.
//! - **Nothing is sent unaudited.** A connection's first sync of an existing document waits for
//!   its `read` audit line to be stored, and a read on the server ([`Event::Read`]) is answered
//!   only once its line is.
//!
//! `mod.rs` holds the flow (events in order, what waits for storage, loading and unloading,
//! peers leaving, other processes' changes); `settle.rs` what is written and answered once a
//! batch of events is handled; `judge.rs` the read rule, the write rules and relaying; `edit.rs`
//! server-side and index edits.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use automerge::ChangeHash;
use fieldsync_protocol::{PeerId, StorageId};

use crate::document::{Commit, DocumentSync};
use crate::limits::LimitError;
use crate::schema::{Author, DocKind, FieldDocument, RegionCode, SchemaLimits, Violation};

mod edit;
mod events;
mod judge;
mod settle;

pub use events::{
    AuditAction, EditError, EditFn, Editor, Effect, Event, LoadFailure, Millis, Outcome, Outgoing,
    Placement, Record, Refusal, Who,
};

/// The actor's settings.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// How long after a failed write the peers are asked to send their changes again.
    pub retry_after_ms: Millis,
    /// What the document rules need of the deployment (the attachment maximum).
    pub schema: SchemaLimits,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            retry_after_ms: 1_000,
            schema: SchemaLimits::default(),
        }
    }
}

/// One document's decisions; see the module docs.
#[derive(Debug)]
pub struct DocumentActor {
    config: ActorConfig,
    /// Boxed: an actor whose document is unloaded stays small.
    doc: Option<Box<DocumentSync>>,
    /// The document's state as the write rules see it (`None`: empty, or an index), kept in
    /// step with `doc`.
    current: Option<FieldDocument>,
    /// The user whose index document this is: only they may read it, only the server writes.
    index_owner: Option<String>,
    /// Type and area as last stored.
    placed: Option<(DocKind, RegionCode)>,
    links: BTreeMap<PeerId, Who>,
    /// Connections whose reading of the document is audited.
    readers: BTreeSet<(PeerId, u64)>,
    /// Which device owns each actor id seen in this document's changes.
    owners: BTreeMap<String, Arc<str>>,
    /// Sync states stored for peers' storage ids, as loaded and as since persisted.
    persisted: BTreeMap<StorageId, Vec<u8>>,
    /// Sync states of connected peers while the document is unloaded.
    parked: BTreeMap<PeerId, crate::ParkedPeer>,
    /// Audit lines and bindings to store with the next write.
    pending: Vec<Record>,
    /// Accepted edits waiting for their changes to be stored.
    edits: Vec<(u64, Vec<ChangeHash>)>,
    /// Reads on the server whose audit lines are in `pending`.
    reads: Vec<u64>,
    /// The write storage has not answered yet.
    in_flight: Option<InFlight>,
    /// A peer's changes applied (and their actor ids), waiting for the ids' owners.
    judging: Option<(Who, Vec<ChangeHash>, BTreeSet<String>)>,
    /// A load was asked for and not answered.
    loading: bool,
    /// Events that arrived while the actor waited for storage, in order.
    backlog: VecDeque<Event>,
    /// The backlog waited for a load or a lookup, not a write: it goes on before anything is
    /// written, so that one batch of events still costs one write.
    resume: bool,
    /// After a failed write: when to ask the peers again.
    retry_at: Option<Millis>,
    /// An [`Event::Unload`] waits for what is under way.
    unload: bool,
    next_ticket: u64,
}

#[derive(Debug)]
struct InFlight {
    ticket: u64,
    changes: Option<Commit>,
    /// Connections audited as readers by this write.
    readers: Vec<(PeerId, u64)>,
    /// Sync messages waiting for those audit lines.
    held: Vec<(PeerId, Vec<u8>)>,
    /// Reads on the server audited by this write.
    reads: Vec<u64>,
    /// A compaction into a snapshot of this many bytes.
    compaction: Option<usize>,
}

impl DocumentActor {
    /// An actor whose document is not loaded yet: the first event that needs it asks for it.
    pub fn new(config: ActorConfig) -> Self {
        Self {
            config,
            doc: None,
            current: None,
            index_owner: None,
            placed: None,
            links: BTreeMap::new(),
            readers: BTreeSet::new(),
            owners: BTreeMap::new(),
            persisted: BTreeMap::new(),
            parked: BTreeMap::new(),
            pending: Vec::new(),
            edits: Vec::new(),
            reads: Vec::new(),
            in_flight: None,
            judging: None,
            loading: false,
            backlog: VecDeque::new(),
            resume: false,
            retry_at: None,
            unload: false,
            next_ticket: 0,
        }
    }

    /// The document, when loaded.
    pub fn document(&self) -> Option<&DocumentSync> {
        self.doc.as_deref()
    }

    /// The document's state as the rules see it.
    pub fn state(&self) -> Option<&FieldDocument> {
        self.current.as_ref()
    }

    /// Whether the document exists (loaded and with any change).
    pub fn exists(&self) -> bool {
        self.doc.as_deref().is_some_and(DocumentSync::exists)
    }

    /// The peers syncing the document.
    pub fn peers(&self) -> impl Iterator<Item = &Who> {
        self.links.values()
    }

    /// Whether the actor waits for storage (a write, a load or an owners lookup).
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || self.judging.is_some() || self.loading
    }

    /// When the runtime must send [`Event::Tick`], if at all.
    pub fn wake_at(&self) -> Option<Millis> {
        self.retry_at
    }

    /// Whether `author` may be sent the document: an index only to its user, a field
    /// document by the read rules.
    pub fn readable(&self, author: &Author) -> bool {
        match &self.index_owner {
            Some(owner) => author.user.as_deref() == Some(owner.as_str()),
            None => crate::schema::may_read(author, self.current.as_ref()),
        }
    }

    /// Handles one event; see [`Self::handle_all`].
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Effect> {
        self.handle_all(now, vec![event])
    }

    /// Handles events that arrived together, then writes what they changed once: many
    /// peers' messages cost one write.
    pub fn handle_all(&mut self, now: Millis, events: Vec<Event>) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut events: VecDeque<Event> = events.into();
        while let Some(event) = events.pop_front() {
            self.one(now, event, &mut out);
            if self.busy() || !events.is_empty() {
                continue;
            }
            if std::mem::take(&mut self.resume) && !self.backlog.is_empty() {
                events.extend(self.backlog.drain(..));
                continue;
            }
            self.settle(now, &mut out);
            if self.busy() {
                continue;
            }
            if self.backlog.is_empty() {
                self.unload_if_asked(&mut out);
            } else {
                events.extend(self.backlog.drain(..));
            }
        }
        if let Some(doc) = self.doc.as_deref() {
            out.push(Effect::Resident {
                approx_memory: doc.approx_memory(),
            });
        }
        out
    }

    fn one(&mut self, now: Millis, event: Event, out: &mut Vec<Effect>) {
        match event {
            Event::Stored { ticket, outcome } => return self.stored(now, ticket, outcome, out),
            Event::Owners(found) => return self.owners_found(now, found, out),
            Event::Loaded { doc, sync_states } => return self.loaded(doc, sync_states),
            Event::LoadFailed(why) => return self.load_failed(why, out),
            // Nothing waits for a peer that left (its sync state is persisted at once), unless
            // its own earlier messages wait in the backlog: it must not join after leaving.
            Event::Left { peer, conn } if self.backlog.is_empty() => {
                return self.left(&peer, conn, out);
            }
            event @ Event::Left { .. } => return self.backlog.push_back(event),
            Event::Tick => {
                if self.retry_at.is_some_and(|at| now >= at) {
                    self.retry_at = None;
                }
                return;
            }
            // After whatever else is under way, at the next settle.
            Event::Unload => {
                self.unload = true;
                return;
            }
            // Any event from outside lets the actor speak again after a failed write: the
            // pause only keeps a failing store from being retried as fast as peers answer.
            _ => self.retry_at = None,
        }
        // Other processes' changes are applied only onto what is stored.
        let uncommitted = self
            .doc
            .as_ref()
            .is_some_and(|d| d.heads() != d.durable_heads());
        if self.busy() || (uncommitted && matches!(event, Event::External { .. })) {
            self.backlog.push_back(event);
            return;
        }
        if matches!(event, Event::StoredElsewhere) {
            return self.stored_elsewhere(out);
        }
        let needs_doc = !matches!(event, Event::External { .. });
        if needs_doc && self.doc.is_none() {
            self.loading = true;
            self.backlog.push_back(event);
            out.push(Effect::Load);
            return;
        }
        match event {
            Event::Sync { from, kind, data } => self.receive(now, from, kind, &data, out),
            Event::Ephemeral {
                from,
                count,
                session_id,
                data,
            } => self.relay(&from, count, session_id, data, out),
            Event::Push { to } => self.push(to),
            Event::Edit {
                ticket,
                editor,
                actor,
                change,
            } => self.edit(now, ticket, &editor, actor, change, out),
            Event::IndexEdit {
                ticket,
                owner,
                actor,
                seed,
                change,
            } => self.index_edit(ticket, &owner, actor, seed.as_deref(), change, out),
            Event::Read { ticket, editor } => self.read(now, ticket, &editor, out),
            Event::External { bytes, chunks } => self.external(&bytes, chunks, out),
            Event::StoredElsewhere
            | Event::Stored { .. }
            | Event::Left { .. }
            | Event::Owners(_)
            | Event::Loaded { .. }
            | Event::LoadFailed(_)
            | Event::Tick
            | Event::Unload => unreachable!("handled above"),
        }
    }

    fn loaded(&mut self, mut doc: Box<DocumentSync>, sync_states: Vec<(StorageId, Vec<u8>)>) {
        self.loading = false;
        self.resume = true;
        self.persisted = sync_states.into_iter().collect();
        for who in self.links.values() {
            if !doc.has_peer(&who.peer) {
                // A peer connected while the document was unloaded goes on from where it was;
                // one new to this process from what was persisted for it.
                match self.parked.remove(&who.peer) {
                    Some(parked) => doc.add_parked_peer(who.peer.clone(), &parked),
                    None => {
                        let persisted = who.storage.as_ref().and_then(|s| self.persisted.get(s));
                        doc.add_peer(who.peer.clone(), persisted.map(Vec::as_slice));
                    }
                }
            }
        }
        self.parked.clear();
        self.index_owner = crate::index::index_owner(doc.doc());
        self.current = if self.index_owner.is_some() {
            None
        } else {
            read_state(&doc, &self.config.schema)
        };
        self.placed = placement(self.current.as_ref());
        self.doc = Some(doc);
    }

    /// The events that waited for the load are answered: peers as if the document did not
    /// exist (too large) or with an error (storage failed); edits as failed.
    fn load_failed(&mut self, why: LoadFailure, out: &mut Vec<Effect>) {
        self.loading = false;
        for event in std::mem::take(&mut self.backlog) {
            match (event, why) {
                (
                    Event::Sync { from, .. } | Event::Ephemeral { from, .. },
                    LoadFailure::Oversized,
                ) => {
                    out.push(Effect::Send {
                        to: (from.peer, from.conn),
                        message: Outgoing::Unavailable,
                    });
                }
                (Event::Sync { from, .. } | Event::Ephemeral { from, .. }, LoadFailure::Failed) => {
                    out.push(Effect::Disconnect {
                        to: (from.peer, from.conn),
                        reason: "the server cannot read this document now; try again later".into(),
                    });
                }
                (Event::Edit { ticket, .. } | Event::IndexEdit { ticket, .. }, _) => {
                    out.push(Effect::EditDone {
                        ticket,
                        result: Err(EditError::Failed("the document cannot be loaded".into())),
                    });
                }
                (Event::Read { ticket, .. }, _) => {
                    out.push(Effect::ReadDone {
                        ticket,
                        state: None,
                    });
                }
                _ => {}
            }
        }
    }

    fn left(&mut self, peer: &PeerId, conn: u64, out: &mut Vec<Effect>) {
        if self.links.get(peer).is_none_or(|w| w.conn != conn) {
            return; // an older connection of a peer that has since reconnected
        }
        let who = self.links.remove(peer).expect("checked above");
        self.readers.remove(&(peer.clone(), conn));
        let state = match self.doc.as_deref_mut() {
            Some(doc) => doc.remove_peer(peer),
            None => self.parked.remove(peer).map(|parked| parked.encoded),
        };
        if let (Some(storage), Some(state)) = (who.storage, state) {
            self.persist(storage, state, out);
        }
    }

    /// Persists a peer's sync state, unless that is what storage holds already.
    fn persist(&mut self, storage: StorageId, state: Vec<u8>, out: &mut Vec<Effect>) {
        if self.persisted.get(&storage) == Some(&state) {
            return;
        }
        self.persisted.insert(storage.clone(), state.clone());
        out.push(Effect::Persist {
            storage,
            sync_state: state,
        });
    }

    /// Frees the document's memory once nothing waits, keeping the peers' sync states for
    /// its next load and persisting them. After a failed write it waits for the tick that
    /// asks the peers again: unloaded, nothing would ask them.
    fn unload_if_asked(&mut self, out: &mut Vec<Effect>) {
        if self.retry_at.is_some() || !std::mem::take(&mut self.unload) {
            return;
        }
        let Some(doc) = self.doc.take() else { return };
        self.current = None;
        for (peer, parked) in doc.parked_peers() {
            let Some(who) = self.links.get(&peer) else {
                continue;
            };
            if let Some(storage) = who.storage.clone() {
                self.persist(storage, parked.encoded.clone(), out);
            }
            self.parked.insert(peer, parked);
        }
        out.push(Effect::Unloaded);
    }

    /// Another process stored changes: a loaded document reads them; an unloaded one with
    /// peers is loaded again, with them, so that its peers hear of them now rather than when
    /// they next send something; without peers, the next load brings them.
    fn stored_elsewhere(&mut self, out: &mut Vec<Effect>) {
        if self.doc.is_some() {
            out.push(Effect::CatchUp);
        } else if !self.links.is_empty() {
            self.loading = true;
            self.resume = true;
            out.push(Effect::Load);
        }
    }

    /// Changes another process stored: applied as durable, relayed at the next settle. Live
    /// views hear of them from the process that stored them, so no [`Effect::Changed`]: what
    /// changes here is only what this process's next change is compared against.
    fn external(&mut self, bytes: &[u8], chunks: usize, out: &mut Vec<Effect>) {
        let Some(doc) = self.doc.as_deref_mut() else {
            // Unloaded since the catch-up was asked (found by the property test: a phone
            // holding nothing then never heard of the changes). Loaded again as for any
            // other process's change, if peers wait; else afresh when next needed.
            if !self.loading {
                self.stored_elsewhere(out);
            }
            return;
        };
        let before = doc.heads();
        if let Err(e) = doc.apply_stored(bytes, chunks) {
            self.drop_document(format!("other processes' changes not applied: {e}"), out);
            return;
        }
        if doc.heads() == before {
            return;
        }
        if self.index_owner.is_none() {
            self.current = read_state(doc, &self.config.schema);
        }
        self.placed = placement(self.current.as_ref());
    }

    /// Forgets the document in memory; peers stay and start afresh once it is loaded again.
    fn drop_document(&mut self, why: String, out: &mut Vec<Effect>) {
        self.doc = None;
        self.current = None;
        self.in_flight = None;
        self.retry_at = None;
        self.parked.clear();
        for (ticket, _) in std::mem::take(&mut self.edits) {
            out.push(Effect::EditDone {
                ticket,
                result: Err(EditError::Failed("the change was not stored".into())),
            });
        }
        for ticket in std::mem::take(&mut self.reads) {
            out.push(Effect::ReadDone {
                ticket,
                state: None,
            });
        }
        out.push(Effect::Dropped(why));
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }
}

fn audit(now: Millis, who: &Who, action: AuditAction, detail: String) -> Record {
    Record::Audit {
        at: now,
        device: who.device.clone(),
        user: who.author.user.clone().unwrap_or_default(),
        action,
        detail,
    }
}

/// The document type, for audit lines.
fn kind_of(state: Option<&FieldDocument>) -> String {
    state.map_or("empty", |d| d.kind().as_str()).to_owned()
}

/// A document's type and area, when it is a field document.
fn placement(state: Option<&FieldDocument>) -> Option<(DocKind, RegionCode)> {
    state.map(|d| (d.kind(), d.envelope().area.clone()))
}

/// The state the write rules judge the next change against. A stored document that is not
/// valid (stored before a rule existed) counts as empty: the next change must then make it
/// valid, under the rules for creating it.
fn read_state(doc: &DocumentSync, limits: &SchemaLimits) -> Option<FieldDocument> {
    FieldDocument::read_state_with(doc.doc(), limits).unwrap_or_default()
}

/// A violation without a path.
fn violation(message: impl Into<String>) -> Violation {
    Violation {
        path: String::new(),
        message: message.into(),
    }
}

/// Why the message is refused before anything of it was applied.
fn too_large(e: &LimitError) -> Violation {
    violation(e.to_string())
}
