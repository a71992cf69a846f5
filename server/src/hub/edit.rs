//! Changes and reads made on the server in a person's name (a supervisor's decision from the
//! web, the demo's seed data), through the document's actor like a phone's change: judged by
//! the same write rules, bound to an actor id of the person's web "device", audited, committed
//! through the writer, then relayed to every peer with the document open. The caller hears
//! "done" only once the change is durable.

use std::sync::Arc;

use fieldsync_core::actor::{EditError, EditFn, Editor};
use fieldsync_core::automerge::{ActorId, ChangeHash};
use fieldsync_core::schema::{Author, DocKind, FieldDocument, RegionCode, check_change};
use fieldsync_protocol::DocumentId;
use tokio::sync::oneshot;

use super::{Actor, Command, Hub};
use crate::storage::{AuditEntry, Write, now_millis};

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

/// An accepted edit waiting for its commit: its heads, and whom to tell.
pub(super) type PendingEdit = (Vec<ChangeHash>, oneshot::Sender<Result<(), EditError>>);

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
            Command::Request(Request {
                editor: editor.clone(),
                op,
            }),
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
            Command::Request(Request {
                editor: editor.clone(),
                op,
            }),
        );
        answer
            .await
            .unwrap_or_else(|_| Err(EditError::Failed("the document actor ended".into())))
    }

    /// Changes `owner`'s index document (creating it when empty); returns once durable.
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

    pub async fn edit_index(
        &self,
        doc: DocumentId,
        owner: &str,
        change: EditFn,
    ) -> Result<(), EditError> {
        self.index_document(doc);
        let (reply, answer) = oneshot::channel();
        let op = Op::Index {
            owner: owner.to_owned(),
            change,
            reply,
        };
        let editor = Editor {
            author: Arc::new(Author::anonymous(fieldsync_core::schema::Role::Admin)),
            device: "server".into(),
        };
        self.send(doc, Command::Request(Request { editor, op }));
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

impl Actor {
    /// Carries out a request; an accepted edit's reply waits in `edit_replies` until the
    /// batch is committed.
    pub(super) async fn request(&mut self, request: Request) {
        let Request { editor, op } = request;
        let exists = self.doc.as_ref().is_some_and(|d| d.exists());
        let readable = exists && self.readable(&editor.author);
        match op {
            Op::Read(reply) => {
                if !readable {
                    let _ = reply.send(None);
                    return;
                }
                let line = self.audit_as(&editor, "read");
                match self.hub.0.writer.write(line).await {
                    Ok(()) => {
                        let _ = reply.send(self.current.clone());
                    }
                    Err(e) => {
                        tracing::error!(doc = %self.id, "read audit not stored, not reading: {e}");
                        let _ = reply.send(None);
                    }
                }
            }
            Op::Index {
                owner,
                change,
                reply,
            } => match self.apply_index(&owner, change) {
                Ok(heads) => self.edit_replies.push((heads, reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Op::Edit { change, reply } => {
                if !readable {
                    let _ = reply.send(Err(EditError::NotFound));
                    return;
                }
                match self.apply_edit(&editor, change) {
                    Ok(heads) => self.edit_replies.push((heads, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// Makes the change under a fresh actor id bound to the editor's device, and judges it:
    /// refused, it is undone.
    fn apply_edit(
        &mut self,
        editor: &Editor,
        change: EditFn,
    ) -> Result<Vec<ChangeHash>, EditError> {
        let actor = ActorId::random();
        let doc = self.doc.as_mut().expect("edit needs a loaded document");
        let before = doc.heads();
        doc.change_by(actor.clone(), change)
            .map_err(|e| EditError::Failed(e.to_string()))?;
        let verdict = FieldDocument::read_state(doc.doc()).and_then(|after| {
            check_change(self.current.as_ref(), after.as_ref(), &editor.author).map(|()| after)
        });
        let after = match verdict {
            Ok(after) => after,
            Err(violations) => {
                let peer = self.hub.0.server_peer.clone();
                if let Err(e) = doc.refuse(&peer, &before) {
                    tracing::error!(doc = %self.id, "cannot undo a refused edit, unloading: {e}");
                    self.doc = None;
                    self.current = None;
                    self.parked.clear();
                }
                crate::metrics::change_refused(crate::metrics::Refusal::Rules);
                return Err(EditError::Refused(violations));
            }
        };
        let heads = doc.heads();
        self.current = after;
        self.owners
            .insert(actor.to_hex_string(), editor.device.clone());
        self.pending.push(Write::BindActors {
            device: editor.device.to_string(),
            actors: vec![actor.to_hex_string()],
        });
        let line = self.audit_as(editor, "write");
        self.pending.push(line);
        self.enforce_read();
        Ok(heads)
    }

    /// The server's change to an index document: no field rules apply, but the result must
    /// still be `owner`'s index.
    fn apply_index(&mut self, owner: &str, change: EditFn) -> Result<Vec<ChangeHash>, EditError> {
        let exists = self.doc.as_ref().is_some_and(|d| d.exists());
        if exists && self.index_owner.as_deref() != Some(owner) {
            return Err(EditError::Failed(format!(
                "{} is not the index of {owner}",
                self.id
            )));
        }
        let doc = self.doc.as_mut().expect("edit needs a loaded document");
        let before = doc.heads();
        doc.change_by(ActorId::random(), change)
            .map_err(|e| EditError::Failed(e.to_string()))?;
        if fieldsync_core::index::index_owner(doc.doc()).as_deref() != Some(owner) {
            let peer = self.hub.0.server_peer.clone();
            let _ = doc.refuse(&peer, &before);
            return Err(EditError::Failed(format!(
                "the edit did not leave an index of {owner}"
            )));
        }
        let heads = doc.heads();
        self.index_owner = Some(owner.to_owned());
        Ok(heads)
    }

    fn audit_as(&self, editor: &Editor, action: &str) -> Write {
        Write::Audit(AuditEntry {
            at: now_millis(),
            device_id: editor.device.to_string(),
            user_id: editor.author.user.clone().unwrap_or_default(),
            document_id: self.id.to_string(),
            action: action.to_owned(),
            detail: super::access::kind_of(self.current.as_ref()),
        })
    }

    /// After a commit: edits whose changes are durable are told so, the others that they
    /// failed.
    pub(super) fn settle_edits(&mut self) {
        for (heads, reply) in std::mem::take(&mut self.edit_replies) {
            let durable = self.doc.as_ref().is_some_and(|d| d.is_durable(&heads));
            let _ = reply.send(if durable {
                Ok(())
            } else {
                Err(EditError::Failed("the change was not stored".into()))
            });
        }
    }

    /// Tells live views about a durable change.
    pub(super) fn announce_change(&mut self) {
        let envelope = self.current.as_ref().map(FieldDocument::envelope);
        let now = envelope.map(|e| (e.kind, e.area.clone()));
        let before = std::mem::replace(&mut self.placed, now);
        let _ = self.hub.0.changes.send(Changed {
            doc: self.id,
            kind: envelope.map(|e| e.kind),
            area: envelope.map(|e| e.area.clone()),
            before,
        });
    }
}
