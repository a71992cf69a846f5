//! Changes and reads made on the server in a person's name (a supervisor's decision from the
//! web, the demo's seed data), through the document's actor like a phone's change: the core
//! judges them by the same write rules, binds them to an actor id of the person's web
//! "device" (drawn here), audits them, and they are committed through the writer, then relayed
//! to every peer with the document open. The caller hears "done" only once the change is
//! durable, and a read only once it is audited.

use std::sync::Arc;

use fieldsync_core::actor::{EditError, EditFn, Editor};
use fieldsync_core::schema::{Author, DocKind, FieldDocument, RegionCode};
use fieldsync_protocol::DocumentId;
use tokio::sync::oneshot;

use super::{Command, Hub};

/// A document changed and the change is durable: what live views need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub doc: DocumentId,
    /// `None` for a document that is not (yet) a field document.
    pub kind: Option<DocKind>,
    pub area: Option<RegionCode>,
    /// Type and area before this change (`None`: it was not a field document).
    pub before: Option<(DocKind, RegionCode)>,
}

/// A request to a document actor from inside the server.
pub struct Request {
    pub(super) editor: Editor,
    pub(super) op: Op,
}

pub(super) enum Op {
    Read(oneshot::Sender<Option<FieldDocument>>),
    Edit {
        change: EditFn,
        reply: oneshot::Sender<Result<(), EditError>>,
    },
    /// The server's own change to a user's index document (`crate::caseload`).
    Index {
        owner: String,
        seed: Option<Vec<u8>>,
        change: EditFn,
        reply: oneshot::Sender<Result<(), EditError>>,
    },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Read(_) => "read",
            Op::Edit { .. } => "edit",
            Op::Index { .. } => "index",
        };
        f.debug_struct("Request")
            .field("device", &self.editor.device)
            .field("op", &op)
            .finish()
    }
}

impl Hub {
    /// The document as `editor` may see it: `None` if it does not exist or they may not read
    /// it. The read is audited before it is returned.
    pub async fn read(&self, doc: DocumentId, editor: &Editor) -> Option<FieldDocument> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Read(reply);
        self.send(
            doc,
            Command::Request(Box::new(Request {
                editor: editor.clone(),
                op,
            })),
        );
        answer.await.ok().flatten()
    }

    /// Changes an existing document in `editor`'s name; returns once the change is durable.
    pub async fn edit(
        &self,
        doc: DocumentId,
        editor: &Editor,
        change: EditFn,
    ) -> Result<(), EditError> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Edit { change, reply };
        self.send(
            doc,
            Command::Request(Box::new(Request {
                editor: editor.clone(),
                op,
            })),
        );
        answer
            .await
            .unwrap_or_else(|_| Err(EditError::Failed("the document actor ended".into())))
    }

    /// Marks `doc` as an index document: written only by the server and as large as its
    /// caseload, it is loaded without the document limits (what peers send it is still held
    /// to the change limits, then refused by the rules).
    pub fn index_document(&self, doc: DocumentId) {
        self.0
            .unlimited
            .lock()
            .expect("unlimited lock poisoned")
            .insert(doc);
    }

    /// Changes `owner`'s index document (a root or a page); returns once durable. A write
    /// comes with the document's `seed` ([`fieldsync_core::index::seed`]); a read
    /// without one creates nothing.
    pub async fn edit_index(
        &self,
        doc: DocumentId,
        owner: &str,
        seed: Option<Vec<u8>>,
        change: EditFn,
    ) -> Result<(), EditError> {
        self.index_document(doc);
        let (reply, answer) = oneshot::channel();
        let op = Op::Index {
            owner: owner.to_owned(),
            seed,
            change,
            reply,
        };
        let editor = Editor {
            author: Arc::new(Author::anonymous(fieldsync_core::schema::Role::Admin)),
            device: "server".into(),
        };
        self.send(doc, Command::Request(Box::new(Request { editor, op })));
        answer
            .await
            .unwrap_or_else(|_| Err(EditError::Failed("the document actor ended".into())))
    }

    /// Every durable change from now on, for live views. A receiver that falls behind
    /// misses changes (and is told so by `recv`); views then reload.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Changed> {
        self.0.changes.subscribe()
    }
}
