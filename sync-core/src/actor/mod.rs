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
//!   its `read` audit line to be stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use automerge::ChangeHash;
use fieldsync_protocol::PeerId;

use crate::document::{Commit, DocumentSync};
use crate::limits::LimitError;
use crate::schema::{Author, DocKind, FieldDocument, RegionCode, Violation};

mod edit;
mod events;
mod judge;

pub use events::{
    AuditAction, EditError, EditFn, Editor, Effect, Event, LoadFailure, Millis, Outcome, Outgoing,
    Placement, Record, Who,
};

/// The actor's settings.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// How long after a failed write the peers are asked to send their changes again.
    pub retry_after_ms: Millis,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            retry_after_ms: 1_000,
        }
    }
}

/// One document's decisions; see the module docs.
#[derive(Debug)]
pub struct DocumentActor {
    config: ActorConfig,
    doc: Option<DocumentSync>,
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
    /// Audit lines and bindings to store with the next write.
    pending: Vec<Record>,
    /// Accepted edits waiting for their changes to be stored.
    edits: Vec<(u64, Vec<ChangeHash>)>,
    /// The write storage has not answered yet.
    in_flight: Option<InFlight>,
    /// A peer's changes applied, waiting for their actor ids' owners.
    judging: Option<(Who, Vec<ChangeHash>)>,
    /// A load was asked for and not answered.
    loading: bool,
    /// Events that arrived while the actor waited for storage, in order.
    backlog: VecDeque<Event>,
    /// After a failed write: when to ask the peers again.
    retry_at: Option<Millis>,
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
            pending: Vec::new(),
            edits: Vec::new(),
            in_flight: None,
            judging: None,
            loading: false,
            backlog: VecDeque::new(),
            retry_at: None,
            next_ticket: 0,
        }
    }

    /// The document, when loaded.
    pub fn document(&self) -> Option<&DocumentSync> {
        self.doc.as_ref()
    }

    /// The document's state as the rules see it.
    pub fn state(&self) -> Option<&FieldDocument> {
        self.current.as_ref()
    }

    /// Whether the document exists (loaded and with any change).
    pub fn exists(&self) -> bool {
        self.doc.as_ref().is_some_and(DocumentSync::exists)
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

    /// Frees the document's memory: every peer's sync state, to persist or to give back to
    /// [`Event::Loaded`] later. Refused (`None`) while the actor waits for storage.
    pub fn unload(&mut self) -> Option<Vec<(Who, Vec<u8>)>> {
        if self.busy() {
            return None;
        }
        let doc = self.doc.take()?;
        self.current = None;
        let states = doc.encoded_sync_states();
        Some(
            states
                .into_iter()
                .filter_map(|(peer, state)| self.links.get(&peer).map(|w| (w.clone(), state)))
                .collect(),
        )
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
            if !self.busy() && events.is_empty() {
                self.settle(now, &mut out);
                if !self.busy() {
                    events.extend(self.backlog.drain(..));
                }
            }
        }
        out
    }

    fn one(&mut self, now: Millis, event: Event, out: &mut Vec<Effect>) {
        match event {
            Event::Stored { ticket, outcome } => return self.stored(now, ticket, outcome, out),
            Event::Owners(found) => return self.owners_found(now, found, out),
            Event::Loaded(doc) => return self.loaded(*doc, out),
            Event::LoadFailed(why) => return self.load_failed(why, out),
            // Nothing waits for a peer that left; its sync state is persisted at once.
            Event::Left { peer, conn } => return self.left(&peer, conn, out),
            Event::Tick => {
                if self.retry_at.is_some_and(|at| now >= at) {
                    self.retry_at = None;
                }
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
                change,
            } => self.index_edit(ticket, &owner, actor, change, out),
            Event::External { bytes, chunks } => self.external(&bytes, chunks, out),
            Event::Stored { .. }
            | Event::Left { .. }
            | Event::Owners(_)
            | Event::Loaded(_)
            | Event::LoadFailed(_)
            | Event::Tick => unreachable!("handled above"),
        }
    }

    fn loaded(&mut self, mut doc: DocumentSync, out: &mut Vec<Effect>) {
        self.loading = false;
        for who in self.links.values() {
            if !doc.has_peer(&who.peer) {
                doc.add_peer(who.peer.clone(), None);
            }
        }
        self.index_owner = crate::index::index_owner(doc.doc());
        self.current = if self.index_owner.is_some() {
            None
        } else {
            read_state(&doc)
        };
        self.placed = placement(self.current.as_ref());
        out.push(Effect::Resident {
            approx_memory: doc.approx_memory(),
        });
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
                _ => {}
            }
        }
    }

    fn left(&mut self, peer: &PeerId, conn: u64, out: &mut Vec<Effect>) {
        if self.links.get(peer).is_none_or(|w| w.conn != conn) {
            return; // an older connection of a peer that has since reconnected
        }
        self.links.remove(peer);
        self.readers.remove(&(peer.clone(), conn));
        if let Some(state) = self.doc.as_mut().and_then(|d| d.remove_peer(peer)) {
            out.push(Effect::Persist {
                to: (peer.clone(), conn),
                sync_state: state,
            });
        }
    }

    /// Writes what changed, or, with nothing to write, sends what the peers are owed.
    fn settle(&mut self, now: Millis, out: &mut Vec<Effect>) {
        let Some(doc) = self.doc.as_mut() else {
            return;
        };
        if let Some(commit) = doc.take_commit() {
            // Every connection with the document open is sent this change: those not yet
            // audited as readers are audited in the change's own transaction.
            let mut records = std::mem::take(&mut self.pending);
            let mut readers = Vec::new();
            for who in self.links.values() {
                let key = (who.peer.clone(), who.conn);
                if !self.readers.contains(&key) {
                    records.push(audit(
                        now,
                        who,
                        AuditAction::Read,
                        kind_of(self.current.as_ref()),
                    ));
                    readers.push(key);
                }
            }
            let ticket = self.ticket();
            out.push(Effect::Write {
                ticket,
                changes: Some(commit.clone()),
                state: self.current.clone().map(Box::new),
                records,
            });
            self.in_flight = Some(InFlight {
                ticket,
                changes: Some(commit),
                readers,
                held: Vec::new(),
            });
            return;
        }
        if self.retry_at.is_some() {
            return; // the peers are asked again at the tick
        }
        if !self.pending.is_empty() {
            out.push(Effect::Record(std::mem::take(&mut self.pending)));
        }
        let Ok(messages) = doc.generate() else {
            return; // unreachable: nothing is uncommitted here
        };
        let exists = doc.exists();
        let mut unaudited = Vec::new();
        let mut records = Vec::new();
        for (peer, _) in &messages {
            if let Some(who) = self.links.get(peer) {
                let key = (peer.clone(), who.conn);
                if exists && !self.readers.contains(&key) && !unaudited.contains(&key) {
                    records.push(audit(
                        now,
                        who,
                        AuditAction::Read,
                        kind_of(self.current.as_ref()),
                    ));
                    unaudited.push(key);
                }
            }
        }
        if unaudited.is_empty() {
            self.send_all(messages, out);
            return;
        }
        // Reading is audited before the document leaves.
        let ticket = self.ticket();
        out.push(Effect::Write {
            ticket,
            changes: None,
            state: None,
            records,
        });
        self.in_flight = Some(InFlight {
            ticket,
            changes: None,
            readers: unaudited,
            held: messages,
        });
    }

    fn send_all(&self, messages: Vec<(PeerId, Vec<u8>)>, out: &mut Vec<Effect>) {
        for (peer, data) in messages {
            if let Some(who) = self.links.get(&peer) {
                out.push(Effect::Send {
                    to: (peer, who.conn),
                    message: Outgoing::Sync(data),
                });
            }
        }
    }

    fn stored(&mut self, now: Millis, ticket: u64, outcome: Outcome, out: &mut Vec<Effect>) {
        let Some(flight) = self.in_flight.take_if(|f| f.ticket == ticket) else {
            return; // not ours, or already settled
        };
        match (flight.changes, outcome) {
            (Some(commit), Outcome::Committed) => {
                let Some(doc) = self.doc.as_mut() else { return };
                doc.committed(&commit);
                let approx_memory = doc.approx_memory();
                self.readers.extend(flight.readers);
                let after = placement(self.current.as_ref());
                let before = std::mem::replace(&mut self.placed, after.clone());
                out.push(Effect::Changed(Placement { before, after }));
                self.settle_edits(out);
                out.push(Effect::Resident { approx_memory });
            }
            (Some(_), Outcome::Failed) => {
                self.roll_back(now, out);
                self.settle_edits(out);
            }
            (None, Outcome::Committed) => {
                self.readers.extend(flight.readers);
                self.send_all(flight.held, out);
            }
            (None, Outcome::Failed) => {
                // Nothing is sent that was not audited: these peers start afresh when they
                // reconnect.
                for (peer, conn) in flight.readers {
                    self.links.remove(&peer);
                    if let Some(doc) = self.doc.as_mut() {
                        doc.remove_peer(&peer);
                    }
                    out.push(Effect::Disconnect {
                        to: (peer, conn),
                        reason: "the server cannot record this read now; try again later".into(),
                    });
                }
            }
        }
    }

    fn roll_back(&mut self, now: Millis, out: &mut Vec<Effect>) {
        self.pending.clear();
        let Some(doc) = self.doc.as_mut() else { return };
        if let Err(e) = doc.rolled_back() {
            self.drop_document(format!("rollback failed: {e}"), out);
            return;
        }
        self.current = if self.index_owner.is_some() {
            None
        } else {
            read_state(doc)
        };
        // Peers are asked to send the lost changes again a moment from now rather than at
        // once: while storage fails, each document retries about once a period instead of
        // as fast as its peers answer.
        self.retry_at = Some(now + self.config.retry_after_ms);
    }

    /// Edits whose changes are stored are told so, the others that they failed.
    fn settle_edits(&mut self, out: &mut Vec<Effect>) {
        for (ticket, heads) in std::mem::take(&mut self.edits) {
            let durable = self.doc.as_ref().is_some_and(|d| d.is_durable(&heads));
            out.push(Effect::EditDone {
                ticket,
                result: if durable {
                    Ok(())
                } else {
                    Err(EditError::Failed("the change was not stored".into()))
                },
            });
        }
    }

    /// Changes another process stored: applied as durable, relayed at the next settle.
    fn external(&mut self, bytes: &[u8], chunks: usize, out: &mut Vec<Effect>) {
        let Some(doc) = self.doc.as_mut() else {
            return; // loaded afresh, with everything, when next needed
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
            self.current = read_state(doc);
        }
        let after = placement(self.current.as_ref());
        let before = std::mem::replace(&mut self.placed, after.clone());
        out.push(Effect::Changed(Placement { before, after }));
    }

    /// Forgets the document in memory; peers stay and start afresh once it is loaded again.
    fn drop_document(&mut self, why: String, out: &mut Vec<Effect>) {
        self.doc = None;
        self.current = None;
        self.in_flight = None;
        self.retry_at = None;
        for (ticket, _) in std::mem::take(&mut self.edits) {
            out.push(Effect::EditDone {
                ticket,
                result: Err(EditError::Failed("the change was not stored".into())),
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
fn read_state(doc: &DocumentSync) -> Option<FieldDocument> {
    FieldDocument::read_state(doc.doc()).unwrap_or_default()
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
