//! What each peer may do with the document: the read rules, the write rules (`judge`),
//! authorship of actor ids, notices and audit lines. Part of the document actor.

use std::sync::atomic::Ordering;

use fieldsync_core::automerge::ChangeHash;
use fieldsync_core::schema::{Author, FieldDocument, Violation, check_applied, may_read};
use fieldsync_protocol::{Message, Notice, NoticeViolation};

use super::{Actor, PeerLink};
use crate::metrics::Refusal;
use crate::storage::{AuditEntry, Write, now_millis};

impl Actor {
    /// Whether `author` may be sent the document: an index document only to its user, a
    /// field document by the read rules.
    pub(super) fn readable(&self, author: &Author) -> bool {
        match &self.index_owner {
            Some(owner) => author.user.as_deref() == Some(owner.as_str()),
            None => may_read(author, self.current.as_ref()),
        }
    }

    /// Starts syncing with a peer the server chose (a push): only a document that exists and
    /// that the peer may read, and only once.
    pub(super) fn push(&mut self, link: PeerLink) {
        let exists = self.doc.as_ref().is_some_and(|d| d.exists());
        if exists && !self.links.contains_key(&link.peer) && self.readable(&link.author) {
            self.attach(&link);
        }
    }
    pub(super) fn unavailable(&self, link: &PeerLink) {
        link.send(&Message::DocUnavailable {
            document_id: self.id,
            sender: self.hub.0.server_peer.clone(),
            target: link.peer.clone(),
        });
    }

    /// Sends a notice (docs/protocol.md) to one peer.
    pub(super) fn notify(&self, link: &PeerLink, notice: &Notice) {
        link.send(&Message::Ephemeral {
            document_id: self.id,
            sender: self.hub.0.server_peer.clone(),
            target: link.peer.clone(),
            count: self.hub.0.notices.fetch_add(1, Ordering::Relaxed),
            session_id: self.hub.0.server_peer.to_string(),
            data: notice.encode(),
        });
    }

    pub(super) fn audit(&self, link: &PeerLink, action: &str, detail: String) -> Write {
        Write::Audit(AuditEntry {
            at: now_millis(),
            device_id: link.device.to_string(),
            user_id: link.author.user.clone().unwrap_or_default(),
            document_id: self.id.to_string(),
            action: action.to_owned(),
            detail,
        })
    }

    /// A violation if the new changes carry an actor id that another device owns; binds the
    /// actor ids seen for the first time to this device.
    pub(super) async fn check_actors(
        &mut self,
        link: &PeerLink,
        before: &[ChangeHash],
    ) -> Option<Violation> {
        let doc = self
            .doc
            .as_ref()
            .expect("check_actors needs a loaded document");
        let mut actors: Vec<String> = doc
            .doc()
            .get_changes(before)
            .iter()
            .map(|c| c.actor_id().to_hex_string())
            .collect();
        actors.sort();
        actors.dedup();
        let unknown: Vec<String> = actors
            .iter()
            .filter(|a| !self.owners.contains_key(*a))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            match self.hub.0.storage.actor_owners(&unknown).await {
                Ok(found) => {
                    for (actor, device) in found {
                        self.owners.insert(actor, device.into());
                    }
                }
                Err(e) => {
                    tracing::error!(doc = %self.id, "cannot check actor ids: {e}");
                    return Some(Violation {
                        path: String::new(),
                        message: "the server cannot check authorship now; try again later".into(),
                    });
                }
            }
        }
        let mut new = Vec::new();
        for actor in actors {
            match self.owners.get(&actor) {
                Some(owner) if *owner != link.device => {
                    return Some(Violation {
                        path: String::new(),
                        message: format!(
                            "changes under actor id {actor} belong to another device; write under this device's own actor ids"
                        ),
                    });
                }
                Some(_) => {}
                None => new.push(actor),
            }
        }
        if !new.is_empty() {
            for actor in &new {
                self.owners.insert(actor.clone(), link.device.clone());
            }
            self.pending.push(Write::BindActors {
                device: link.device.to_string(),
                actors: new,
            });
        }
        None
    }

    /// After the document changed: peers that may no longer read it (it moved out of their
    /// areas) are detached and told to drop their copy.
    pub(super) fn enforce_read(&mut self) {
        let lost: Vec<PeerLink> = self
            .links
            .values()
            .filter(|l| !self.readable(&l.author))
            .cloned()
            .collect();
        for link in lost {
            if let Some(doc) = self.doc.as_mut() {
                doc.remove_peer(&link.peer);
            }
            self.links.remove(&link.peer);
            self.notify(&link, &Notice::Drop);
        }
    }

    /// Applies the write rules to what `link`'s last message changed: accepted, it becomes the
    /// current state; refused, the document goes back to `before` and the peer is told why
    /// (and hears nothing else about the document until it sends something new). Nothing of
    /// a refused change is stored or relayed.
    pub(super) async fn judge(&mut self, link: &PeerLink, before: &[ChangeHash]) {
        let actor_violation = if self.index_owner.is_some() {
            Some(Violation {
                path: String::new(),
                message: "this index document is maintained by the server and is read-only".into(),
            })
        } else {
            self.check_actors(link, before).await
        };
        let reason = match (&actor_violation, self.index_owner.is_some()) {
            (Some(_), true) => Refusal::ReadOnly,
            (Some(_), false) => Refusal::Actor,
            (None, _) => Refusal::Rules,
        };
        let doc = self.doc.as_mut().expect("judge needs a loaded document");
        let verdict = match actor_violation {
            Some(v) => Err(vec![v]),
            None => check_applied(doc.doc(), before, self.current.as_ref(), &link.author),
        };
        let violations = match verdict {
            Ok(after) => {
                self.current = after;
                let detail = kind_of(self.current.as_ref());
                self.pending.push(self.audit(link, "write", detail));
                self.enforce_read();
                return;
            }
            Err(violations) => violations,
        };
        crate::metrics::change_refused(reason);
        let heads = doc.heads().iter().map(ToString::to_string).collect();
        let first = violations
            .first()
            .map(Violation::to_string)
            .unwrap_or_default();
        tracing::info!(
            doc = %self.id, peer = %link.peer, conn = link.conn, violations = violations.len(),
            "change refused: {first}"
        );
        if let Err(e) = doc.refuse(&link.peer, before) {
            // The document in memory can no longer be trusted: drop it, and let the next
            // message load it again from storage.
            tracing::error!(doc = %self.id, "cannot undo a refused change, unloading: {e}");
            self.doc = None;
            self.current = None;
            self.parked.clear();
        }
        self.pending.push(self.audit(link, "refused", first));
        let notice = Notice::ChangeRefused {
            heads,
            violations: violations
                .into_iter()
                .map(|v| NoticeViolation {
                    path: v.path,
                    message: v.message,
                })
                .collect(),
        };
        self.notify(link, &notice);
    }
}

impl Actor {
    /// Refuses a message over the size limits, before anything of it was applied: the peer is
    /// told why, as for any refused change, and hears nothing more about the document until it
    /// sends something new.
    pub(super) fn refuse_oversized(&mut self, link: &PeerLink, e: &fieldsync_core::LimitError) {
        let Some(doc) = self.doc.as_mut() else { return };
        let heads: Vec<ChangeHash> = doc.heads();
        if let Err(e) = doc.refuse(&link.peer, &heads) {
            tracing::error!(doc = %self.id, "cannot silence a peer: {e}");
        }
        crate::metrics::change_refused(Refusal::TooLarge);
        tracing::warn!(doc = %self.id, peer = %link.peer, conn = link.conn, "change refused: {e}");
        self.pending
            .push(self.audit(link, "refused", e.to_string()));
        let notice = Notice::ChangeRefused {
            heads: heads.iter().map(ToString::to_string).collect(),
            violations: vec![NoticeViolation {
                path: String::new(),
                message: e.to_string(),
            }],
        };
        self.notify(link, &notice);
    }
}

/// The document type, for audit lines.
pub(super) fn kind_of(state: Option<&FieldDocument>) -> String {
    state.map_or("empty", |d| d.kind().as_str()).to_owned()
}
