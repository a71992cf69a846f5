//! What happens once a batch of events is handled: the changes it made are written (with
//! their audit lines), or, with nothing to write, the peers are sent what they are owed —
//! after the `read` audit lines of connections that have not read the document yet. Storage's
//! answer settles the write: committed, the peers hear of the change and edits and reads are
//! answered; failed, the document rolls back and the peers are asked again a moment later.

use fieldsync_protocol::PeerId;

use super::{
    AuditAction, DocumentActor, EditError, Effect, InFlight, Millis, Outcome, Outgoing, Placement,
    audit, kind_of, placement, read_state,
};

impl DocumentActor {
    /// Writes what changed, or, with nothing to write, sends what the peers are owed.
    pub(super) fn settle(&mut self, now: Millis, out: &mut Vec<Effect>) {
        let Some(doc) = self.doc.as_deref_mut() else {
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
            let attachments = crate::attachments::referenced(doc.doc());
            let ticket = self.ticket();
            out.push(Effect::Write {
                ticket,
                changes: Some(commit.clone()),
                state: self.current.clone().map(Box::new),
                attachments,
                records,
            });
            self.in_flight = Some(InFlight {
                ticket,
                changes: Some(commit),
                readers,
                held: Vec::new(),
                reads: std::mem::take(&mut self.reads),
                compaction: None,
            });
            return;
        }
        // After a failed write the peers are asked again only at the tick.
        let messages = match self.retry_at {
            Some(_) => Vec::new(),
            None => doc.generate().unwrap_or_default(), // nothing is uncommitted here
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
        // Edits that changed nothing are as stored as the document.
        self.settle_edits(out);
        if unaudited.is_empty() && self.reads.is_empty() {
            // Refusals that came with no change to commit: nothing waits for their lines.
            if !self.pending.is_empty() {
                out.push(Effect::Record(std::mem::take(&mut self.pending)));
            }
            self.send_all(messages, out);
            self.compact(out);
            return;
        }
        // Reading is audited before the document leaves, or a read is answered.
        let mut lines = std::mem::take(&mut self.pending);
        lines.append(&mut records);
        let ticket = self.ticket();
        out.push(Effect::Write {
            ticket,
            changes: None,
            state: None,
            attachments: Vec::new(),
            records: lines,
        });
        self.in_flight = Some(InFlight {
            ticket,
            changes: None,
            readers: unaudited,
            held: messages,
            reads: std::mem::take(&mut self.reads),
            compaction: None,
        });
    }

    /// With nothing else under way, replaces the stored chunks by one snapshot when they are
    /// many (a storage concern: nobody waits for it, and nothing is sent about it).
    fn compact(&mut self, out: &mut Vec<Effect>) {
        let Some(doc) = self.doc.as_deref() else {
            return;
        };
        if !doc.wants_compaction() {
            return;
        }
        let Some(snapshot) = doc.snapshot() else {
            return;
        };
        // Storage deletes only the rows whose every change is in the snapshot: another
        // process may have stored changes this one never loaded.
        let covers = doc
            .doc()
            .get_changes_meta(&[])
            .into_iter()
            .map(|c| c.hash)
            .collect();
        let ticket = self.ticket();
        self.in_flight = Some(InFlight {
            ticket,
            changes: None,
            readers: Vec::new(),
            held: Vec::new(),
            reads: Vec::new(),
            compaction: Some(snapshot.len()),
        });
        out.push(Effect::Compact {
            ticket,
            snapshot,
            covers,
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

    pub(super) fn stored(
        &mut self,
        now: Millis,
        ticket: u64,
        outcome: Outcome,
        out: &mut Vec<Effect>,
    ) {
        let Some(flight) = self.in_flight.take_if(|f| f.ticket == ticket) else {
            return; // not ours, or already settled
        };
        if let Some(len) = flight.compaction {
            if outcome == Outcome::Committed
                && let Some(doc) = self.doc.as_deref_mut()
            {
                doc.compacted(len);
            }
            return; // failed: the chunks stay, and compaction is tried after the next change
        }
        match (flight.changes, outcome) {
            (Some(commit), Outcome::Committed) => {
                let Some(doc) = self.doc.as_deref_mut() else {
                    return;
                };
                doc.committed(&commit);
                self.readers.extend(flight.readers);
                let after = placement(self.current.as_ref());
                let before = std::mem::replace(&mut self.placed, after.clone());
                out.push(Effect::Changed(Placement { before, after }));
                self.settle_edits(out);
                self.answer_reads(flight.reads, true, out);
            }
            (Some(_), Outcome::Failed) => {
                self.roll_back(now, out);
                self.settle_edits(out);
                self.answer_reads(flight.reads, false, out);
            }
            (None, Outcome::Committed) => {
                self.readers.extend(flight.readers);
                self.send_all(flight.held, out);
                self.answer_reads(flight.reads, true, out);
            }
            (None, Outcome::Failed) => {
                // Nothing is sent that was not audited: these peers start afresh when they
                // reconnect. The others get what was generated for them.
                for (peer, conn) in flight.readers {
                    self.links.remove(&peer);
                    if let Some(doc) = self.doc.as_deref_mut() {
                        doc.remove_peer(&peer);
                    }
                    out.push(Effect::Disconnect {
                        to: (peer, conn),
                        reason: "the server cannot record this read now; try again later".into(),
                    });
                }
                self.send_all(flight.held, out);
                self.answer_reads(flight.reads, false, out);
            }
        }
    }

    /// Reads on the server get the state once their audit lines are stored, else nothing.
    fn answer_reads(&mut self, reads: Vec<u64>, audited: bool, out: &mut Vec<Effect>) {
        for ticket in reads {
            let state = if audited {
                self.current.clone().map(Box::new)
            } else {
                None
            };
            out.push(Effect::ReadDone { ticket, state });
        }
    }

    fn roll_back(&mut self, now: Millis, out: &mut Vec<Effect>) {
        self.pending.clear();
        let Some(doc) = self.doc.as_deref_mut() else {
            return;
        };
        if let Err(e) = doc.rolled_back() {
            self.drop_document(format!("rollback failed: {e}"), out);
            return;
        }
        self.current = if self.index_owner.is_some() {
            None
        } else {
            read_state(doc, &self.config.schema)
        };
        // Peers are asked to send the lost changes again a moment from now rather than at
        // once: while storage fails, each document retries about once a period instead of
        // as fast as its peers answer.
        self.retry_at = Some(now + self.config.retry_after_ms);
    }

    /// Edits whose changes are stored are told so, the others that they failed.
    fn settle_edits(&mut self, out: &mut Vec<Effect>) {
        for (ticket, heads) in std::mem::take(&mut self.edits) {
            let durable = self.doc.as_deref().is_some_and(|d| d.is_durable(&heads));
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
}
