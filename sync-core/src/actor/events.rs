//! What goes into the document actor ([`Event`]) and what comes out ([`Effect`]), and the
//! values both carry.

use std::collections::HashSet;
use std::sync::Arc;

use automerge::transaction::Transaction;
use automerge::{ActorId, AutomergeError, ChangeHash};
use fieldsync_protocol::{BlobHash, Notice, PeerId, StorageId};

use crate::document::{Commit, DocumentSync, Kind};
use crate::schema::{Author, DocKind, FieldDocument, RegionCode, Violation};

/// Milliseconds since the Unix epoch, as the runtime's clock says.
pub type Millis = u64;

/// A connected peer as the actor knows it: who, on which connection, writing as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub peer: PeerId,
    /// Distinguishes a peer's successive connections: a new one replaces the old.
    pub conn: u64,
    /// The write and read rules' input.
    pub author: Arc<Author>,
    /// The enrolled device behind the connection, which owns the actor ids it writes under.
    pub device: Arc<str>,
    /// Where the peer's sync state is persisted (its storage id), unless it is ephemeral.
    pub storage: Option<StorageId>,
}

/// Who makes a server-side edit: the person, and the device the audit log and actor ids name
/// (`web:<user id>` for people on the web, `server` for index documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    pub author: Arc<Author>,
    pub device: Arc<str>,
}

impl Editor {
    /// A person signed in on the web, whose device is `web:<user id>`.
    pub fn web(author: Author) -> Self {
        let user = author.user.clone().unwrap_or_default();
        Self {
            author: Arc::new(author),
            device: format!("web:{user}").into(),
        }
    }
}

/// An edit of one document, as a function over an Automerge transaction.
pub type EditFn = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send>;

/// Why a server-side edit did not happen. Nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// No such document, or the editor may not read it (told apart by nobody).
    #[error("no such document")]
    NotFound,
    /// The write rules refused the change.
    #[error("change refused: {}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Refused(Vec<Violation>),
    /// The edit function failed, or storage did. For logs only.
    #[error("edit failed: {0}")]
    Failed(String),
}

/// Something that happened to the document.
pub enum Event {
    /// A peer's `sync` or `request`.
    Sync {
        from: Who,
        kind: Kind,
        data: Vec<u8>,
    },
    /// A peer's `ephemeral` message, relayed to the document's other peers.
    Ephemeral {
        from: Who,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
    /// Start syncing with a peer that did not ask: a document entering its caseload, or a
    /// peer that waited for the document to exist. Only if it exists and the peer may read it.
    Push { to: Who },
    /// The peer's connection `conn` closed.
    Left { peer: PeerId, conn: u64 },
    /// A change in a person's name. `actor` is a fresh actor id for it (the runtime draws it).
    Edit {
        ticket: u64,
        editor: Editor,
        actor: ActorId,
        change: EditFn,
    },
    /// The server's own change to `owner`'s index document. A write comes with the
    /// document's `seed` ([`crate::index::seed`]), applied first if it is not there yet; a
    /// read comes without, and creates nothing.
    IndexEdit {
        ticket: u64,
        owner: String,
        actor: ActorId,
        seed: Option<Vec<u8>>,
        change: EditFn,
    },
    /// A person reads the document on the server (a page of the web): answered
    /// [`Effect::ReadDone`], with the state only once the read is audited.
    Read { ticket: u64, editor: Editor },
    /// The document as stored, after an [`Effect::Load`], with the sync states persisted for
    /// peers' storage ids.
    Loaded {
        doc: Box<DocumentSync>,
        sync_states: Vec<(StorageId, Vec<u8>)>,
    },
    /// Storage could not give the document ([`Effect::Load`]).
    LoadFailed(LoadFailure),
    /// The owners storage knows of the actor ids of an [`Effect::LookupOwners`] (actor id,
    /// device), or `Err` when storage could not say.
    Owners(Result<Vec<(String, String)>, ()>),
    /// Storage's answer to the [`Effect::Write`] with this ticket.
    Stored { ticket: u64, outcome: Outcome },
    /// Storage says another process stored changes of the document.
    StoredElsewhere,
    /// Chunks another process stored that this document lacks (`chunks` of them,
    /// concatenated): the answer to [`Effect::CatchUp`].
    External { bytes: Vec<u8>, chunks: usize },
    /// Time passed: a rolled-back document asks its peers again once `retry_after_ms` is up.
    Tick,
    /// Free the document's memory (the cache needs room, or nobody touched it for long),
    /// once what is under way is settled: answered [`Effect::Unloaded`].
    Unload,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, peer) = match self {
            Self::Sync { from, .. } => ("sync", Some(&from.peer)),
            Self::Ephemeral { from, .. } => ("ephemeral", Some(&from.peer)),
            Self::Push { to } => ("push", Some(&to.peer)),
            Self::Left { peer, .. } => ("left", Some(peer)),
            Self::Edit { .. } => ("edit", None),
            Self::IndexEdit { .. } => ("index-edit", None),
            Self::Read { .. } => ("read", None),
            Self::Loaded { .. } => ("loaded", None),
            Self::LoadFailed(_) => ("load-failed", None),
            Self::Owners(_) => ("owners", None),
            Self::Stored { .. } => ("stored", None),
            Self::StoredElsewhere => ("stored-elsewhere", None),
            Self::External { .. } => ("external", None),
            Self::Tick => ("tick", None),
            Self::Unload => ("unload", None),
        };
        f.debug_struct("Event")
            .field("kind", &name)
            .field("peer", &peer)
            .finish_non_exhaustive()
    }
}

/// Whether a write is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Failed,
}

/// Why a document could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFailure {
    /// It exceeds the document limits: to a peer, as if it did not exist.
    Oversized,
    /// Storage failed, or the stored bytes are damaged.
    Failed,
}

/// What the runtime must do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Store, in one transaction, the new changes (if any) with the query rows of `state`,
    /// and `records`; answer with [`Event::Stored`] carrying `ticket`.
    Write {
        ticket: u64,
        changes: Option<Commit>,
        /// The document's state once the changes are stored (`None`: empty or not a field
        /// document), from which the query rows are made. Only with `changes`.
        state: Option<Box<FieldDocument>>,
        /// The blobs the document references once the changes are stored
        /// ([`crate::attachments::referenced`]), kept beside its query rows. Only with
        /// `changes`.
        attachments: Vec<BlobHash>,
        records: Vec<Record>,
    },
    /// Store these lines on their own; nothing waits for them (refusals that came with no
    /// change to commit).
    Record(Vec<Record>),
    /// Send `message` to the peer's connection.
    Send {
        to: (PeerId, u64),
        message: Outgoing,
    },
    /// Send an `error` with this text and close the peer's connection.
    Disconnect { to: (PeerId, u64), reason: String },
    /// Persist a peer's sync state under its storage id (it left, or the document is
    /// unloaded); nothing waits for it.
    Persist {
        storage: StorageId,
        sync_state: Vec<u8>,
    },
    /// Replace the stored chunks whose every change is in `covers` by `snapshot`, in one
    /// transaction; answer with [`Event::Stored`] carrying `ticket`. Another process's chunks
    /// stay.
    Compact {
        ticket: u64,
        snapshot: Vec<u8>,
        covers: HashSet<ChangeHash>,
    },
    /// Load the document from storage and answer [`Event::Loaded`] or [`Event::LoadFailed`].
    Load,
    /// Look up which devices own these actor ids and answer [`Event::Owners`].
    LookupOwners(Vec<String>),
    /// Read the chunks other processes stored that this process has not applied, and answer
    /// [`Event::External`] (nothing when there are none).
    CatchUp,
    /// A request for a document that does not exist: the runtime may remember the peer and
    /// [`Event::Push`] it the document once it exists.
    Wait(Who),
    /// The answer to [`Event::Edit`] or [`Event::IndexEdit`]: `Ok` once the change is stored.
    EditDone {
        ticket: u64,
        result: Result<(), EditError>,
    },
    /// The answer to [`Event::Read`]: the state, once the read is audited; `None` if the
    /// document does not exist, the reader may not read it, or the audit was not stored.
    ReadDone {
        ticket: u64,
        state: Option<Box<FieldDocument>>,
    },
    /// A change is stored: what live views and caseloads compare it against.
    Changed(Placement),
    /// A peer's change was refused: for the runtime's log line and metrics (no personal data
    /// in it). The peer was told, and the refusal is audited.
    Refused {
        to: (PeerId, u64),
        reason: Refusal,
        violations: usize,
        first: String,
    },
    /// The document in memory can no longer be trusted: it was dropped, and is loaded again
    /// when next needed.
    Dropped(String),
    /// The document is loaded and was just used; its memory may have changed (for the cache
    /// budget).
    Resident { approx_memory: usize },
    /// The document left memory ([`Event::Unload`]); peers stay, and it is loaded again when
    /// next needed.
    Unloaded,
}

/// Why a peer's change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The write rules (role, type, area, append-only history, schema).
    Rules,
    /// The change's actor id belongs to another device, or authorship could not be checked.
    Authorship,
    /// Someone wrote to a server-maintained index document.
    ReadOnly,
    /// Over the change or document size limits.
    TooLarge,
}

/// A message to one peer; the runtime encodes it (and numbers notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// An automerge sync message under the server's peer id.
    Sync(Vec<u8>),
    /// `doc-unavailable`.
    Unavailable,
    /// A notice (docs/protocol.md) under the server's peer id.
    Notice(Notice),
    /// Another peer's ephemeral message, under that peer's id.
    Relay {
        from: PeerId,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
}

/// An audit line or an actor-id binding, stored with the change it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Audit {
        at: Millis,
        device: Arc<str>,
        user: String,
        action: AuditAction,
        /// The document type, or the first violation of a refusal.
        detail: String,
    },
    /// Actor ids first seen in changes from this device: from now on they are its.
    BindActors {
        device: Arc<str>,
        actors: Vec<String>,
    },
}

/// What an audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Read,
    Write,
    Refused,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Refused => "refused",
        }
    }
}

/// A stored change's type and area, before and after (`None`: not a field document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub before: Option<(DocKind, RegionCode)>,
    pub after: Option<(DocKind, RegionCode)>,
}
