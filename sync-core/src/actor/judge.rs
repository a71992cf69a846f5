//! What each peer may do with the document: receiving its messages under the read rule,
//! judging what they changed with the write rules (and who owns the actor ids they carry),
//! refusing and undoing, relaying its ephemeral messages.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use fieldsync_protocol::{Notice, NoticeViolation};

use super::{
    AuditAction, DocumentActor, Effect, Millis, Outgoing, Record, Refusal, Who, audit, kind_of,
    too_large, violation,
};
use crate::document::{Kind, Receipt, SyncError};
use crate::schema::{FieldDocument, Role, Violation, check_applied_with};

/// What the rules made of a change: the state after it, or why it is refused.
type Verdict = Result<Option<FieldDocument>, (Refusal, Vec<Violation>)>;

impl DocumentActor {
    /// Registers the peer's connection, replacing an older connection of the same peer. A
    /// peer new to the document starts from the sync state persisted for its storage id.
    fn attach(&mut self, who: &Who) {
        let Some(doc) = self.doc.as_deref_mut() else {
            return;
        };
        match self.links.get(&who.peer) {
            Some(known) if known.conn == who.conn => return,
            Some(_) => {
                doc.remove_peer(&who.peer);
            }
            None => {}
        }
        if !doc.has_peer(&who.peer) {
            let persisted = who.storage.as_ref().and_then(|s| self.persisted.get(s));
            doc.add_peer(who.peer.clone(), persisted.map(Vec::as_slice));
        }
        self.links.insert(who.peer.clone(), who.clone());
    }

    /// Starts syncing with a peer the server chose: only a document that exists and that the
    /// peer may read, and only once.
    pub(super) fn push(&mut self, to: Who) {
        if self.exists() && !self.links.contains_key(&to.peer) && self.readable(&to.author) {
            self.attach(&to);
        }
    }

    pub(super) fn receive(
        &mut self,
        now: Millis,
        from: Who,
        kind: Kind,
        data: &[u8],
        out: &mut Vec<Effect>,
    ) {
        let is_new = !self.links.contains_key(&from.peer);
        let exists = self.exists();
        if is_new && kind == Kind::Request && !exists {
            out.push(Effect::Send {
                to: (from.peer.clone(), from.conn),
                message: Outgoing::Unavailable,
            });
            if from.author.role != Role::Admin {
                // Administrators read everything: their requests would be remembered for
                // every id they ever tried.
                out.push(Effect::Wait(from));
            }
            return;
        }
        if exists && !self.readable(&from.author) {
            // Exactly what a document that does not exist gets. A device that says it holds
            // a copy (`sync`) is told to drop it.
            if let Some(doc) = self.doc.as_deref_mut() {
                doc.remove_peer(&from.peer);
            }
            self.links.remove(&from.peer);
            let to = (from.peer.clone(), from.conn);
            out.push(Effect::Send {
                to: to.clone(),
                message: Outgoing::Unavailable,
            });
            if kind == Kind::Sync {
                out.push(Effect::Send {
                    to,
                    message: Outgoing::Notice(Notice::Drop),
                });
            }
            return;
        }
        self.attach(&from);
        let doc = self
            .doc
            .as_deref_mut()
            .expect("receive needs a loaded document");
        let before = doc.heads();
        match doc.receive(&from.peer, kind, data) {
            Ok(Receipt::Applied) if doc.heads() != before => self.judge(now, from, before, out),
            Ok(Receipt::Applied | Receipt::Unavailable) => {}
            Err(SyncError::TooLarge(e)) => {
                let heads = doc.heads();
                if let Err(e) = doc.refuse(&from.peer, &heads) {
                    self.drop_document(format!("cannot silence a peer: {e}"), out);
                }
                let refusal = (Refusal::TooLarge, vec![too_large(&e)]);
                self.refused(now, &from, heads, refusal, out);
            }
            Err(SyncError::Poisoned) => {
                self.links.remove(&from.peer);
                self.drop_document("automerge failed on a message".into(), out);
                out.push(Effect::Disconnect {
                    to: (from.peer, from.conn),
                    reason: "the server could not apply this message; try again later".into(),
                });
            }
            Err(e) => {
                doc.remove_peer(&from.peer);
                self.links.remove(&from.peer);
                out.push(Effect::Disconnect {
                    to: (from.peer, from.conn),
                    reason: e.to_string(),
                });
            }
        }
    }

    /// Judges what `from`'s last message changed. Actor ids not yet known are looked up in
    /// storage first ([`Effect::LookupOwners`]); the judgement resumes at the answer.
    fn judge(&mut self, now: Millis, from: Who, before: Vec<ChangeHash>, out: &mut Vec<Effect>) {
        if self.index_owner.is_some() {
            let refusal =
                violation("this index document is maintained by the server and is read-only");
            let refusal = Err((Refusal::ReadOnly, vec![refusal]));
            return self.verdict(now, &from, &before, &BTreeSet::new(), refusal, out);
        }
        let actors = self.actors_since(&before);
        let unknown: Vec<String> = actors
            .iter()
            .filter(|a| !self.owners.contains_key(*a))
            .cloned()
            .collect();
        if unknown.is_empty() {
            let verdict = self.check(&from, &before, &actors);
            return self.verdict(now, &from, &before, &actors, verdict, out);
        }
        self.judging = Some((from, before, actors));
        out.push(Effect::LookupOwners(unknown));
    }

    pub(super) fn owners_found(
        &mut self,
        now: Millis,
        found: Result<Vec<(String, String)>, ()>,
        out: &mut Vec<Effect>,
    ) {
        let Some((from, before, actors)) = self.judging.take() else {
            return;
        };
        self.resume = true;
        let verdict = match found {
            Ok(found) => {
                for (actor, device) in found {
                    self.owners.insert(actor, device.into());
                }
                self.check(&from, &before, &actors)
            }
            Err(()) => Err((
                Refusal::Authorship,
                vec![violation(
                    "the server cannot check authorship now; try again later",
                )],
            )),
        };
        self.verdict(now, &from, &before, &actors, verdict, out);
    }

    /// The actor ids of the changes since `before` (from their metadata: automerge rebuilds
    /// whole changes to list them, which costs far more).
    fn actors_since(&self, before: &[ChangeHash]) -> BTreeSet<String> {
        let Some(doc) = self.doc.as_deref() else {
            return BTreeSet::new();
        };
        doc.doc()
            .get_changes_meta(before)
            .iter()
            .map(|c| c.actor.to_hex_string())
            .collect()
    }

    /// The write rules and authorship: every actor id must be unknown or the sender's.
    fn check(&self, from: &Who, before: &[ChangeHash], actors: &BTreeSet<String>) -> Verdict {
        for actor in actors {
            if let Some(owner) = self.owners.get(actor)
                && *owner != from.device
            {
                return Err((
                    Refusal::Authorship,
                    vec![violation(format!(
                        "changes under actor id {actor} belong to another device; write under this device's own actor ids"
                    ))],
                ));
            }
        }
        let doc = self.doc.as_deref().expect("check needs a loaded document");
        check_applied_with(
            doc.doc(),
            before,
            self.current.as_ref(),
            &from.author,
            &self.config.schema,
        )
        .map_err(|v| (Refusal::Rules, v))
    }

    /// Accepted, the change becomes the current state, its new actor ids the sender's; refused,
    /// the document goes back to `before` and the peer is told why.
    fn verdict(
        &mut self,
        now: Millis,
        from: &Who,
        before: &[ChangeHash],
        actors: &BTreeSet<String>,
        verdict: Verdict,
        out: &mut Vec<Effect>,
    ) {
        if self.doc.is_none() {
            return;
        }
        match verdict {
            Ok(after) => {
                let fresh: Vec<String> = actors
                    .iter()
                    .filter(|a| !self.owners.contains_key(*a))
                    .cloned()
                    .collect();
                for actor in &fresh {
                    self.owners.insert(actor.clone(), from.device.clone());
                }
                if !fresh.is_empty() {
                    self.pending.push(Record::BindActors {
                        device: from.device.clone(),
                        actors: fresh,
                    });
                }
                self.current = after;
                let detail = kind_of(self.current.as_ref());
                self.pending
                    .push(audit(now, from, AuditAction::Write, detail));
                self.enforce_read(out);
            }
            Err(refusal) => {
                let doc = self.doc.as_deref_mut().expect("checked above");
                let heads = doc.heads();
                if let Err(e) = doc.refuse(&from.peer, before) {
                    self.drop_document(format!("cannot undo a refused change: {e}"), out);
                }
                self.refused(now, from, heads, refusal, out);
            }
        }
    }

    /// Tells the peer its change was refused, and audits it. The peer hears nothing else
    /// about the document until it sends something new.
    fn refused(
        &mut self,
        now: Millis,
        from: &Who,
        heads: Vec<ChangeHash>,
        (reason, violations): (Refusal, Vec<Violation>),
        out: &mut Vec<Effect>,
    ) {
        let first = violations
            .first()
            .map(Violation::to_string)
            .unwrap_or_default();
        out.push(Effect::Refused {
            to: (from.peer.clone(), from.conn),
            reason,
            violations: violations.len(),
            first: first.clone(),
        });
        self.pending
            .push(audit(now, from, AuditAction::Refused, first));
        let notice = Notice::ChangeRefused {
            heads: heads.iter().map(ToString::to_string).collect(),
            violations: violations
                .into_iter()
                .map(|v| NoticeViolation {
                    path: v.path,
                    message: v.message,
                })
                .collect(),
        };
        out.push(Effect::Send {
            to: (from.peer.clone(), from.conn),
            message: Outgoing::Notice(notice),
        });
    }

    /// After the document changed: peers that may no longer read it (it moved out of their
    /// areas) are detached and told to drop their copy.
    pub(super) fn enforce_read(&mut self, out: &mut Vec<Effect>) {
        let lost: Vec<Who> = self
            .links
            .values()
            .filter(|w| !self.readable(&w.author))
            .cloned()
            .collect();
        for who in lost {
            if let Some(doc) = self.doc.as_deref_mut() {
                doc.remove_peer(&who.peer);
            }
            self.links.remove(&who.peer);
            out.push(Effect::Send {
                to: (who.peer, who.conn),
                message: Outgoing::Notice(Notice::Drop),
            });
        }
    }

    /// Relays a peer's ephemeral message to the document's other peers, under the sender's
    /// own peer id (no peer can speak as the server), and only between peers syncing the
    /// document under the read rule.
    pub(super) fn relay(
        &mut self,
        from: &Who,
        count: u64,
        session_id: String,
        data: Vec<u8>,
        out: &mut Vec<Effect>,
    ) {
        let attached = self
            .links
            .get(&from.peer)
            .is_some_and(|w| w.conn == from.conn);
        if !attached || !self.readable(&from.author) {
            return;
        }
        for who in self.links.values() {
            if who.peer == from.peer || !self.readable(&who.author) {
                continue;
            }
            out.push(Effect::Send {
                to: (who.peer.clone(), who.conn),
                message: Outgoing::Relay {
                    from: from.peer.clone(),
                    count,
                    session_id: session_id.clone(),
                    data: data.clone(),
                },
            });
        }
    }
}
