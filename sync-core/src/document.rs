//! One document and the sync states of the peers that have it open.

use std::collections::BTreeMap;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash, LoadOptions, OnPartialLoad, ReadDoc};
use fieldsync_protocol::{DocumentId, PeerId};

use crate::limits::{self, LimitError, Limits, Size};

/// Changes applied in memory that the runtime must now make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The new changes, each in automerge's change-chunk format, concatenated: exactly what
    /// `Automerge::load` reads back.
    pub bytes: Vec<u8>,
    /// How many changes `bytes` holds.
    pub changes: usize,
    /// The document's heads once these are stored.
    pub heads: Vec<ChangeHash>,
}

/// What [`DocumentSync::receive`] made of a peer's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The message was applied; changes it carried (if any) are now uncommitted.
    Applied,
    /// A `request` for a document we do not have: answer `doc-unavailable`. The peer was not
    /// added.
    Unavailable,
}

/// Why a peer's message was refused. Nothing of it was kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("data is not an automerge sync message: {0}")]
    NotASyncMessage(String),
    #[error("sync message could not be applied: {0}")]
    Apply(String),
    #[error("stored document could not be loaded: {0}")]
    Load(String),
    /// Over a size limit: nothing of it was applied or loaded.
    #[error("{0}")]
    TooLarge(LimitError),
    /// automerge failed inside while applying the message: the document in memory can no
    /// longer be trusted; drop it and load it again from storage.
    #[error("the message could not be applied")]
    Poisoned,
}

/// [`DocumentSync::generate`] was called while changes were waiting to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("changes are not committed yet; no sync message may leave before they are")]
pub struct Uncommitted;

/// Whether a sync message came as `request` (the peer lacks the document) or `sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Sync,
}

/// A connected peer's sync state while its document is unloaded: its encoding (what is
/// persisted for the peer's storage id) and whether its last change was refused, which the
/// encoding loses. A refused peer believes it sent a change we do not hold, and sends it
/// again only once told to forget what it sent; restored from the encoding alone, its
/// document asked it for that change again and again after the next edit, and it never sent
/// it (found by the actor's property test, `tests/actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedPeer {
    pub encoded: Vec<u8>,
    refused: bool,
}

#[derive(Debug)]
struct Peer {
    state: sync::State,
    /// A message of this peer was applied since we last generated for it.
    unanswered: bool,
    /// Its last change was refused: say nothing to it until it sends something new.
    quiet: bool,
    /// Reset after a rollback: the next exchange tells it our heads after the reset.
    retell: bool,
}

impl Peer {
    fn new(state: sync::State) -> Self {
        Self {
            state,
            unanswered: false,
            quiet: false,
            retell: false,
        }
    }
}

/// One automerge document, the peers syncing it, and what of it is durable.
#[derive(Debug)]
pub struct DocumentSync {
    id: DocumentId,
    doc: Automerge,
    peers: BTreeMap<PeerId, Peer>,
    /// Heads of what is durable; uncommitted changes are those since.
    durable_heads: Vec<ChangeHash>,
    /// True between a change in memory and [`Self::committed`]/[`Self::rolled_back`].
    dirty: bool,
    /// True between [`Self::take_commit`] and its settlement.
    in_commit: bool,
    /// Bytes in storage: the last snapshot plus every change chunk since.
    stored_bytes: usize,
    snapshot_bytes: usize,
    chunks_since_snapshot: usize,
    /// What a peer's message may add ([`crate::limits`]).
    limits: Limits,
    /// The document's size as the limits count it: uncompressed bytes stored and applied
    /// since, and operations.
    size: Size,
    /// automerge panicked while applying a message: nothing more is applied.
    poisoned: bool,
    /// Bytes of memory per byte stored ([`Self::approx_memory`]).
    memory_ratio: usize,
}

impl DocumentSync {
    /// A document nobody has written yet, with the default [`Limits`].
    pub fn new(id: DocumentId) -> Self {
        Self::from_doc(id, Automerge::new(), 0)
    }

    /// A document from its stored chunks (a snapshot and/or change chunks, concatenated). A
    /// torn chunk at the end, left by a crash in the middle of a write, is ignored.
    /// Stored chunks over `limits` are refused before automerge reads them
    /// ([`SyncError::TooLarge`]): a document stored before a limit existed must not cost the
    /// memory it was refused for.
    pub fn load(
        id: DocumentId,
        stored: &[u8],
        chunks: usize,
        limits: Limits,
    ) -> Result<Self, SyncError> {
        let size = match limits::inspect(stored, &limits, Size::default()) {
            Ok(size) => size,
            // A torn chunk at the end, left by a crash: measure what precedes it, which is
            // what automerge will load.
            Err(LimitError::Malformed(_)) if torn_prefix(stored).len() < stored.len() => {
                limits::inspect(torn_prefix(stored), &limits, Size::default())
                    .map_err(stored_error)?
            }
            Err(e) => return Err(stored_error(e)),
        };
        // automerge 0.12 can panic on a malformed document chunk (found by fuzzing): that is
        // a load error, not a crash of the caller.
        let doc = std::panic::catch_unwind(|| {
            Automerge::load_with_options(
                stored,
                LoadOptions::new().on_partial_load(OnPartialLoad::Ignore),
            )
        })
        .map_err(|_| SyncError::Load("automerge failed on these bytes".into()))?
        .map_err(|e| SyncError::Load(e.to_string()))?;
        let mut this = Self::from_doc(id, doc, stored.len());
        this.chunks_since_snapshot = chunks;
        this.limits = limits;
        this.size = size;
        Ok(this)
    }

    /// Sets what a peer's message may add to this document.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The size of the changes a sync message carries, checked against `limits` on their own
    /// (not counting a document they would join). Lets a runtime decide, before applying it,
    /// whether a message is heavy enough to apply off its async workers.
    pub fn message_size(data: &[u8], limits: &Limits) -> Result<Size, SyncError> {
        let message =
            sync::Message::decode(data).map_err(|e| SyncError::NotASyncMessage(e.to_string()))?;
        let mut total = Size::default();
        for chunk in message.changes.iter() {
            let size = limits::inspect(chunk, limits, total).map_err(limit_error)?;
            total.bytes += size.bytes;
            total.ops += size.ops;
        }
        Ok(total)
    }

    /// The document's size as the limits count it.
    pub fn size(&self) -> Size {
        self.size
    }

    fn from_doc(id: DocumentId, doc: Automerge, stored_bytes: usize) -> Self {
        Self {
            limits: Limits::default(),
            size: Size::default(),
            poisoned: false,
            memory_ratio: 28,
            id,
            durable_heads: doc.get_heads(),
            doc,
            peers: BTreeMap::new(),
            dirty: false,
            in_commit: false,
            stored_bytes,
            snapshot_bytes: 0,
            chunks_since_snapshot: 0,
        }
    }

    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// The document itself, for reading.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// True once the document has any change, in memory or stored.
    pub fn exists(&self) -> bool {
        !self.doc.get_heads().is_empty()
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Heads of what is durable.
    pub fn durable_heads(&self) -> &[ChangeHash] {
        &self.durable_heads
    }

    /// Starts syncing with a peer, from a sync state persisted for its storage id if it had
    /// one (so that the exchange starts from shared heads), else from scratch.
    pub fn add_peer(&mut self, peer: PeerId, persisted: Option<&[u8]>) {
        let state = persisted
            .and_then(|bytes| sync::State::decode(bytes).ok())
            .unwrap_or_default();
        self.peers.insert(peer, Peer::new(state));
    }

    /// Stops syncing with a peer; returns its sync state, encoded for persisting.
    pub fn remove_peer(&mut self, peer: &PeerId) -> Option<Vec<u8>> {
        self.peers.remove(peer).map(|p| p.state.encode())
    }

    pub fn has_peer(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// Every peer's sync state, as kept while the document is unloaded and its peers stay
    /// connected (before the document is unloaded).
    pub fn parked_peers(&self) -> Vec<(PeerId, ParkedPeer)> {
        self.peers
            .iter()
            .map(|(id, p)| {
                let parked = ParkedPeer {
                    encoded: p.state.encode(),
                    refused: p.quiet,
                };
                (id.clone(), parked)
            })
            .collect()
    }

    /// Goes on syncing with a peer that stayed connected while the document was unloaded,
    /// from where it was ([`Self::parked_peers`]).
    pub fn add_parked_peer(&mut self, peer: PeerId, parked: &ParkedPeer) {
        let mut state = sync::State::decode(&parked.encoded).unwrap_or_default();
        // As `refuse` left it: nothing for the peer until it sends something new, and then
        // a fresh exchange that asks it to forget what it sent.
        state.needs_reset = parked.refused;
        let mut p = Peer::new(state);
        p.quiet = parked.refused;
        self.peers.insert(peer, p);
    }

    /// Applies a peer's `sync` or `request`. A peer not yet known is added with a fresh sync
    /// state. On error the document and the peer's state are as before the call.
    pub fn receive(
        &mut self,
        peer: &PeerId,
        kind: Kind,
        data: &[u8],
    ) -> Result<Receipt, SyncError> {
        if self.poisoned {
            return Err(SyncError::Poisoned);
        }
        let message =
            sync::Message::decode(data).map_err(|e| SyncError::NotASyncMessage(e.to_string()))?;
        if kind == Kind::Request && !self.exists() && !self.peers.contains_key(peer) {
            return Ok(Receipt::Unavailable);
        }
        // Before automerge inflates or builds anything: the document with these changes
        // must stay within the limits.
        let mut incoming = Size::default();
        for chunk in message.changes.iter() {
            let mut base = self.size;
            base.bytes += incoming.bytes;
            base.ops += incoming.ops;
            let size = limits::inspect(chunk, &self.limits, base).map_err(limit_error)?;
            incoming.bytes += size.bytes;
            incoming.ops += size.ops;
        }
        let before = self.doc.get_heads();
        let entry = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| Peer::new(sync::State::new()));
        entry.quiet = false;
        let saved_state = entry.state.clone();
        // automerge 0.12 can panic on a malformed chunk (found by fuzzing): the document may
        // then be half-changed, so it is poisoned and the caller must load it again.
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.doc.receive_sync_message(&mut entry.state, message)
        }));
        let Ok(applied) = applied else {
            self.poisoned = true;
            return Err(SyncError::Poisoned);
        };
        match applied {
            Ok(()) => {
                // Automerge skips its next reply when a message reports heads equal to ours,
                // assuming a reply went out after the previous message. When the runtime
                // applies several messages of a peer before generating (a server batching
                // while it commits), that reply never went out: keep what was really sent, so
                // the changes of the earlier message are still acknowledged.
                if entry.unanswered {
                    entry.state.last_sent_heads = saved_state.last_sent_heads.clone();
                }
                entry.unanswered = true;
                if self.doc.get_heads() != before {
                    self.dirty = true;
                    self.size.bytes += incoming.bytes;
                    self.size.ops = self.doc.stats().num_ops;
                }
                Ok(Receipt::Applied)
            }
            Err(e) => {
                entry.state = saved_state;
                self.reset_to(&before)?;
                Err(SyncError::Apply(e.to_string()))
            }
        }
    }

    /// Refuses what the last [`Self::receive`] from `peer` applied: the document goes back to
    /// `before` (its heads before that call); changes of other peers applied before that call
    /// are kept. Nothing is generated for the peer until it sends something new (so a refusal
    /// cannot loop); that next exchange starts afresh and asks the peer to forget what it
    /// thinks it sent, so that a repairing change arrives together with the refused ones it
    /// builds on, and the pair is judged as one.
    pub fn refuse(&mut self, peer: &PeerId, before: &[ChangeHash]) -> Result<(), SyncError> {
        if let Some(p) = self.peers.get_mut(peer) {
            let mut state = sync::State::new();
            state.needs_reset = true;
            *p = Peer::new(state);
            p.quiet = true;
        }
        self.reset_to(before)
    }

    /// Undoes local edits not yet committed: the document goes back to `heads` (its heads
    /// before them), as if they had never been made.
    pub fn undo(&mut self, heads: &[ChangeHash]) -> Result<(), SyncError> {
        self.reset_to(heads)
    }

    /// Makes a local edit (a phone's own, or a server-side decision) with `f`. The edit is
    /// uncommitted until the runtime stores it.
    /// If `f` fails, nothing of it is kept (the rules use this: a check inside `f` that
    /// returns an error undoes the edit).
    pub fn change<O, E>(
        &mut self,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, E>,
    ) -> Result<O, E> {
        let mut tx = self.doc.transaction();
        match f(&mut tx) {
            Ok(out) => {
                tx.commit();
                self.dirty = true;
                Ok(out)
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }

    /// Like [`Self::change`], but the edit is made under `actor` (a server-side edit in a
    /// person's name); the document's own actor id is kept for later edits.
    pub fn change_by<O, E>(
        &mut self,
        actor: automerge::ActorId,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, E>,
    ) -> Result<O, E> {
        let own = self.doc.get_actor().clone();
        self.doc.set_actor(actor);
        let out = self.change(f);
        self.doc.set_actor(own);
        out
    }

    /// Applies a change made elsewhere as if it were a local edit (the seed of an index,
    /// [`crate::index::seed`]): uncommitted until the runtime stores it. A change the document
    /// already has changes nothing.
    pub fn merge_local(&mut self, change: &[u8]) -> Result<(), SyncError> {
        let before = self.doc.get_heads();
        self.doc
            .load_incremental(change)
            .map_err(|e| SyncError::Load(e.to_string()))?;
        if self.doc.get_heads() != before {
            self.size.bytes += change.len() as u64;
            self.size.ops = self.doc.stats().num_ops;
            self.dirty = true;
        }
        Ok(())
    }

    /// Whether every change up to `heads` is durable.
    pub fn is_durable(&self, heads: &[ChangeHash]) -> bool {
        let pending = self.doc.get_changes(&self.durable_heads);
        heads.iter().all(|h| {
            self.doc.get_change_by_hash(h).is_some() && !pending.iter().any(|c| c.hash() == *h)
        })
    }

    /// The changes to make durable, if any are uncommitted and none is already on its way.
    pub fn take_commit(&mut self) -> Option<Commit> {
        if !self.dirty || self.in_commit {
            return None;
        }
        let changes = self.doc.get_changes(&self.durable_heads);
        if changes.is_empty() {
            self.dirty = false;
            return None;
        }
        let mut bytes = Vec::with_capacity(changes.iter().map(|c| c.raw_bytes().len()).sum());
        for c in &changes {
            bytes.extend_from_slice(c.raw_bytes());
        }
        self.in_commit = true;
        Some(Commit {
            bytes,
            changes: changes.len(),
            heads: self.doc.get_heads(),
        })
    }

    /// Storage holds `commit`: its changes may now be acknowledged and relayed.
    pub fn committed(&mut self, commit: &Commit) {
        self.durable_heads = commit.heads.clone();
        self.stored_bytes += commit.bytes.len();
        self.chunks_since_snapshot += 1;
        self.in_commit = false;
        self.dirty = self.doc.get_heads() != self.durable_heads;
    }

    /// Changes another process stored (`chunks` stored chunks, concatenated): applied and
    /// durable at once, so they are relayed at the next `generate`. Refused while changes of
    /// ours wait for their commit, whose durable heads it would misstate.
    pub fn apply_stored(&mut self, stored: &[u8], chunks: usize) -> Result<(), SyncError> {
        if self.dirty || self.in_commit {
            return Err(SyncError::Load(Uncommitted.to_string()));
        }
        // Another process judged these against its own limits, which may be larger.
        let size = limits::inspect(stored, &self.limits, self.size).map_err(stored_error)?;
        self.doc
            .load_incremental(stored)
            .map_err(|e| SyncError::Load(e.to_string()))?;
        self.size.bytes += size.bytes;
        self.size.ops = self.doc.stats().num_ops;
        self.durable_heads = self.doc.get_heads();
        self.stored_bytes += stored.len();
        self.chunks_since_snapshot += chunks;
        Ok(())
    }

    /// Storage failed: forget everything not durable, and restart every peer's sync from
    /// scratch, because their states may count changes we no longer have.
    pub fn rolled_back(&mut self) -> Result<(), SyncError> {
        let durable = self.durable_heads.clone();
        self.reset_to(&durable)?;
        // Each peer believes it sent the lost changes and would not send them again: ask
        // every peer to forget what it sent, so that they come back and are acknowledged
        // once storage works again.
        for p in self.peers.values_mut() {
            let mut state = sync::State::new();
            state.needs_reset = true;
            *p = Peer::new(state);
            p.retell = true;
        }
        self.in_commit = false;
        self.dirty = false;
        Ok(())
    }

    fn reset_to(&mut self, heads: &[ChangeHash]) -> Result<(), SyncError> {
        if self.doc.get_heads() == heads {
            return Ok(());
        }
        let actor = self.doc.get_actor().clone();
        let doc = self
            .doc
            .fork_at(heads)
            .map_err(|e| SyncError::Load(e.to_string()))?;
        self.doc = doc.with_actor(actor);
        self.dirty = self.doc.get_heads() != self.durable_heads;
        self.size.ops = self.doc.stats().num_ops;
        Ok(())
    }

    /// Sync messages for every peer, until each has nothing more to say. Refused while
    /// changes are uncommitted, so nothing unstored is ever acknowledged or relayed.
    pub fn generate(&mut self) -> Result<Vec<(PeerId, Vec<u8>)>, Uncommitted> {
        if self.dirty || self.in_commit {
            return Err(Uncommitted);
        }
        let mut out = Vec::new();
        for (id, peer) in &mut self.peers {
            if peer.quiet {
                continue;
            }
            peer.unanswered = false;
            let mut resetting = std::mem::take(&mut peer.retell);
            while let Some(message) = self.doc.generate_sync_message(&mut peer.state) {
                out.push((id.clone(), message.encode()));
                if std::mem::take(&mut resetting) {
                    // After a rollback, the reset to a peer whose capabilities a fresh state
                    // does not know yet names no heads at all. A peer that holds nothing has
                    // nothing to answer to that, and the exchange would stall with our heads
                    // untold: say them in a second message.
                    peer.state.last_sent_heads.clear();
                }
            }
        }
        Ok(out)
    }

    /// Whether `peer` has told us it holds every change we have. On a phone, with the server
    /// as the peer, this means "the server has durably stored all of my changes", because the
    /// server only reports heads it has stored.
    pub fn peer_has_everything(&self, peer: &PeerId) -> bool {
        let Some(p) = self.peers.get(peer) else {
            return false;
        };
        let Some(theirs) = &p.state.their_heads else {
            return false;
        };
        theirs
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
            && self.doc.get_changes(theirs).is_empty()
    }

    /// Should the runtime replace the stored chunks by one snapshot? True when there are
    /// many chunks, or the chunks since the last snapshot outweigh it.
    pub fn wants_compaction(&self) -> bool {
        self.chunks_since_snapshot >= 32
            || (self.chunks_since_snapshot >= 4
                && self.stored_bytes > 2 * self.snapshot_bytes.max(4096))
    }

    /// A snapshot of everything durable, for compaction. `None` while changes are
    /// uncommitted: a snapshot must never contain what is not yet stored.
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        (!self.dirty && !self.in_commit).then(|| self.doc.save())
    }

    /// Storage replaced every chunk by a snapshot of `len` bytes.
    pub fn compacted(&mut self, len: usize) {
        self.stored_bytes = len;
        self.snapshot_bytes = len;
        self.chunks_since_snapshot = 1;
    }

    /// The bytes storage holds for this document: its snapshot and the chunks since.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    /// A rough measure of the memory this document holds: automerge keeps about 28 times the
    /// saved size in memory (measured on field-visit documents; see
    /// [`Self::set_memory_ratio`] for others), plus a fixed overhead.
    pub fn approx_memory(&self) -> usize {
        16 * 1024 + self.stored_bytes.saturating_mul(self.memory_ratio)
    }

    /// How many bytes of memory this document holds per byte stored, where it differs from a
    /// field document's 28: a caseload index holds about 5
    /// ([`crate::index::MEMORY_RATIO`]).
    pub fn set_memory_ratio(&mut self, ratio: usize) {
        self.memory_ratio = ratio;
    }
}

/// Malformed bytes are automerge's to name; everything else is over a limit.
fn limit_error(e: LimitError) -> SyncError {
    match e {
        LimitError::Malformed(_) => SyncError::Apply(e.to_string()),
        e => SyncError::TooLarge(e),
    }
}

fn stored_error(e: LimitError) -> SyncError {
    match e {
        LimitError::Malformed(_) => SyncError::Load(e.to_string()),
        e => SyncError::TooLarge(e),
    }
}

/// The whole chunks at the start of `stored`, without a torn one at the end.
fn torn_prefix(stored: &[u8]) -> &[u8] {
    let mut end = 0;
    while let Some(len) = chunk_len(&stored[end..]) {
        end += len;
    }
    &stored[..end]
}

/// The length of the whole chunk at the start of `data`, if it is all there.
fn chunk_len(data: &[u8]) -> Option<usize> {
    if data.len() < 9 || data[..4] != [0x85, 0x6f, 0x4a, 0x83] {
        return None;
    }
    let mut len: u64 = 0;
    let mut i = 9;
    for shift in (0..64).step_by(7) {
        let b = *data.get(i)?;
        i += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let total = i.checked_add(usize::try_from(len).ok()?)?;
            return (total <= data.len()).then_some(total);
        }
    }
    None
}
