//! Changes made on the server in a person's name (a supervisor's decision from the web), and
//! the server's own changes to index documents: judged by the same rules as a peer's, answered
//! only once stored ([`Effect::EditDone`] after [`super::Event::Stored`]). Reads in a person's
//! name are answered once audited ([`Effect::ReadDone`]).

use automerge::ActorId;

use super::{AuditAction, DocumentActor, EditError, EditFn, Editor, Effect, Millis, Record};
use crate::schema::{FieldDocument, check_change};

impl DocumentActor {
    /// A person reads the document: audited with the next write, then answered.
    pub(super) fn read(
        &mut self,
        now: Millis,
        ticket: u64,
        editor: &Editor,
        out: &mut Vec<Effect>,
    ) {
        if !self.exists() || !self.readable(&editor.author) {
            return out.push(Effect::ReadDone {
                ticket,
                state: None,
            });
        }
        self.pending.push(Record::Audit {
            at: now,
            device: editor.device.clone(),
            user: editor.author.user.clone().unwrap_or_default(),
            action: AuditAction::Read,
            detail: super::kind_of(self.current.as_ref()),
        });
        self.reads.push(ticket);
    }

    /// Makes the change under `actor`, bound to the editor's device, and judges it: refused,
    /// it is undone.
    pub(super) fn edit(
        &mut self,
        now: Millis,
        ticket: u64,
        editor: &Editor,
        actor: ActorId,
        change: EditFn,
        out: &mut Vec<Effect>,
    ) {
        if !self.exists() || !self.readable(&editor.author) {
            return out.push(Effect::EditDone {
                ticket,
                result: Err(EditError::NotFound),
            });
        }
        let doc = self.doc.as_deref_mut().expect("exists");
        let before = doc.heads();
        if let Err(e) = doc.change_by(actor.clone(), change) {
            return out.push(Effect::EditDone {
                ticket,
                result: Err(EditError::Failed(e.to_string())),
            });
        }
        let verdict =
            FieldDocument::read_state_with(doc.doc(), &self.config.schema).and_then(|after| {
                check_change(self.current.as_ref(), after.as_ref(), &editor.author).map(|()| after)
            });
        let after = match verdict {
            Ok(after) => after,
            Err(violations) => {
                if let Err(e) = doc.undo(&before) {
                    self.drop_document(format!("cannot undo a refused edit: {e}"), out);
                }
                return out.push(Effect::EditDone {
                    ticket,
                    result: Err(EditError::Refused(violations)),
                });
            }
        };
        let heads = doc.heads();
        self.current = after;
        self.owners
            .insert(actor.to_hex_string(), editor.device.clone());
        self.pending.push(Record::BindActors {
            device: editor.device.clone(),
            actors: vec![actor.to_hex_string()],
        });
        self.pending.push(Record::Audit {
            at: now,
            device: editor.device.clone(),
            user: editor.author.user.clone().unwrap_or_default(),
            action: AuditAction::Write,
            detail: super::kind_of(self.current.as_ref()),
        });
        self.enforce_read(out);
        self.edits.push((ticket, heads));
    }

    /// The server's change to an index document: no field rules apply, but the result must
    /// still be `owner`'s index.
    pub(super) fn index_edit(
        &mut self,
        ticket: u64,
        owner: &str,
        actor: ActorId,
        seed: Option<&[u8]>,
        change: EditFn,
        out: &mut Vec<Effect>,
    ) {
        let failed = |why: String| Effect::EditDone {
            ticket,
            result: Err(EditError::Failed(why)),
        };
        if self.exists() && self.index_owner.as_deref() != Some(owner) {
            return out.push(failed(format!("not the index of {owner}")));
        }
        let doc = self
            .doc
            .as_mut()
            .expect("index_edit needs a loaded document");
        let before = doc.heads();
        if let Some(seed) = seed
            && let Err(e) = doc.merge_local(seed)
        {
            return out.push(failed(e.to_string()));
        }
        if let Err(e) = doc.change_by(actor, change) {
            let _ = doc.undo(&before);
            return out.push(failed(e.to_string()));
        }
        if before.is_empty() && doc.heads().is_empty() {
            // A read of an index not made yet: nothing to write, nothing to wait for.
            return out.push(Effect::EditDone {
                ticket,
                result: Ok(()),
            });
        }
        if crate::index::index_owner(doc.doc()).as_deref() != Some(owner) {
            let _ = doc.undo(&before);
            return out.push(failed(format!(
                "the edit did not leave an index of {owner}"
            )));
        }
        let heads = doc.heads();
        self.index_owner = Some(owner.to_owned());
        self.current = None;
        self.edits.push((ticket, heads));
    }
}
