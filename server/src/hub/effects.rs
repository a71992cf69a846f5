//! Carrying out what the document's core decided ([`Effect`]), in order: writes through the
//! [`crate::writer::Writer`] (the core hears [`Event::Stored`] once the transaction is
//! durable or failed), frames to connections, live views, answers to callers, log lines and
//! metrics. Storage's answers come back as the events the core handles next.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fieldsync_core::actor::{
    EditError, Effect, Event, Outcome, Outgoing, Placement, Record, Refusal,
};
use fieldsync_protocol::{DocMessage, Message, PeerId};

use super::Changed;
use super::task::{Actor, Reply};
use crate::metrics::Refusal as Counted;
use crate::projection::Projection;
use crate::storage::{AuditEntry, Write};

impl Actor {
    /// Carries out the core's effects; returns storage's answers, for the core.
    pub(super) async fn carry_out(&mut self, effects: Vec<Effect>) -> Vec<Event> {
        let mut answers = Vec::new();
        for effect in effects {
            match effect {
                Effect::Write {
                    ticket,
                    changes,
                    state,
                    attachments,
                    records,
                } => {
                    let mut writes = Vec::with_capacity(records.len() + 1);
                    let commits = changes.is_some();
                    if let Some(commit) = changes {
                        writes.push(Write::Append {
                            doc: self.id,
                            bytes: commit.bytes,
                            projection: Projection::of(state.as_deref())
                                .with_attachments(attachments),
                        });
                    }
                    writes.extend(records.into_iter().map(|r| self.record(r)));
                    let outcome = match self.hub.0.writer.write_all(writes).await {
                        Ok(()) => {
                            if commits && let Some(received) = self.received.take() {
                                crate::metrics::committed(received);
                            }
                            Outcome::Committed
                        }
                        Err(e) if commits => {
                            tracing::error!(doc = %self.id, "changes not stored, rolled back: {e}");
                            Outcome::Failed
                        }
                        Err(e) => {
                            tracing::error!(doc = %self.id, "read audit not stored, not reading: {e}");
                            Outcome::Failed
                        }
                    };
                    answers.push(Event::Stored { ticket, outcome });
                }
                Effect::Record(records) => {
                    let writes = records.into_iter().map(|r| self.record(r)).collect();
                    if let Err(e) = self.hub.0.writer.write_all(writes).await {
                        tracing::error!(doc = %self.id, "audit lines not stored: {e}");
                    }
                }
                Effect::Compact {
                    ticket,
                    snapshot,
                    covers,
                } => {
                    let write = Write::Compact {
                        doc: self.id,
                        snapshot,
                        covers: Arc::new(covers),
                    };
                    let outcome = match self.hub.0.writer.write(write).await {
                        Ok(()) => Outcome::Committed,
                        Err(e) => {
                            tracing::warn!(doc = %self.id, "compaction failed, chunks kept: {e}");
                            Outcome::Failed
                        }
                    };
                    answers.push(Event::Stored { ticket, outcome });
                }
                Effect::Persist {
                    storage,
                    sync_state,
                } => {
                    let write = Write::SyncState {
                        doc: self.id,
                        storage,
                        state: sync_state,
                    };
                    if let Err(e) = self.hub.0.writer.write(write).await {
                        // A lost sync state only costs the peer a longer exchange next time.
                        tracing::warn!(doc = %self.id, "sync state not saved: {e}");
                    }
                }
                Effect::Send { to, message } => self.send(&to, message),
                Effect::Disconnect { to, reason } => {
                    tracing::warn!(doc = %self.id, peer = %to.0, conn = to.1, "disconnecting peer: {reason}");
                    if let Some(link) = self.links.get(&to) {
                        link.fatal(reason);
                    }
                }
                Effect::Load => answers.push(self.load().await),
                Effect::CatchUp => answers.extend(self.catch_up().await),
                Effect::LookupOwners(actors) => {
                    let found = self.hub.owners().of(actors).await;
                    answers.push(Event::Owners(found.map_err(|e| {
                        tracing::error!(doc = %self.id, "cannot check actor ids: {e}");
                    })));
                }
                Effect::Wait(who) => {
                    if let Some(link) = self.links.get(&(who.peer.clone(), who.conn)) {
                        self.waiting.add(&who, link);
                    }
                }
                Effect::EditDone { ticket, result } => {
                    if matches!(result, Err(EditError::Refused(_))) {
                        crate::metrics::change_refused(Counted::Rules);
                    }
                    if let Some(Reply::Edit(reply)) = self.replies.remove(&ticket) {
                        let _ = reply.send(result);
                    }
                }
                Effect::ReadDone { ticket, state } => {
                    if let Some(Reply::Read(reply)) = self.replies.remove(&ticket) {
                        let _ = reply.send(state.map(|s| *s));
                    }
                }
                Effect::Changed(placement) => self.announce(placement),
                Effect::Refused {
                    to,
                    reason,
                    violations,
                    first,
                } => refused(self.id, &to, reason, violations, &first),
                Effect::Dropped(why) => {
                    // The next message loads the durable document again.
                    tracing::error!(doc = %self.id, "document dropped from memory: {why}");
                    self.forget_document();
                }
                Effect::Resident { approx_memory } => self.resident = Some(approx_memory),
                Effect::Unloaded => {
                    tracing::debug!(doc = %self.id, "unloading");
                    self.forget_document();
                }
            }
        }
        answers
    }

    /// One message to one connection, encoded as the protocol says.
    fn send(&self, to: &(PeerId, u64), message: Outgoing) {
        let Some(link) = self.links.get(to) else {
            return; // that connection is gone
        };
        let server = &self.hub.0.server_peer;
        let target = to.0.clone();
        let message = match message {
            Outgoing::Sync(data) => {
                tracing::debug!(doc = %self.id, peer = %target, len = data.len(), "sending");
                Message::Sync(DocMessage {
                    document_id: self.id,
                    sender: server.clone(),
                    target,
                    data,
                })
            }
            Outgoing::Unavailable => Message::DocUnavailable {
                document_id: self.id,
                sender: server.clone(),
                target,
            },
            // The server's own ephemeral messages are counted, as the protocol asks.
            Outgoing::Notice(notice) => Message::Ephemeral {
                document_id: self.id,
                sender: server.clone(),
                target,
                count: self.hub.0.notices.fetch_add(1, Ordering::Relaxed),
                session_id: server.to_string(),
                data: notice.encode(),
            },
            Outgoing::Relay {
                from,
                count,
                session_id,
                data,
            } => Message::Ephemeral {
                document_id: self.id,
                sender: from,
                target,
                count,
                session_id,
                data,
            },
        };
        link.send(&message);
    }

    fn record(&self, record: Record) -> Write {
        match record {
            Record::Audit {
                at,
                device,
                user,
                action,
                detail,
            } => Write::Audit(AuditEntry {
                at: i64::try_from(at).unwrap_or(i64::MAX),
                device_id: device.to_string(),
                user_id: user,
                document_id: self.id.to_string(),
                action: action.as_str().to_owned(),
                detail,
            }),
            Record::BindActors { device, actors } => Write::BindActors {
                device: device.to_string(),
                actors,
            },
        }
    }

    /// Tells live views about a durable change.
    fn announce(&self, placement: Placement) {
        let _ = self.hub.0.changes.send(Changed {
            doc: self.id,
            kind: placement.after.as_ref().map(|(kind, _)| *kind),
            area: placement.after.map(|(_, area)| area),
            before: placement.before,
        });
    }
}

/// The log line and the metric of a refused change (no personal data: the first violation
/// names a path and a rule).
fn refused(
    doc: fieldsync_protocol::DocumentId,
    to: &(PeerId, u64),
    reason: Refusal,
    violations: usize,
    first: &str,
) {
    let (peer, conn) = (&to.0, to.1);
    let counted = match reason {
        Refusal::Rules => Counted::Rules,
        Refusal::Authorship => Counted::Actor,
        Refusal::ReadOnly => Counted::ReadOnly,
        Refusal::TooLarge => Counted::TooLarge,
    };
    crate::metrics::change_refused(counted);
    if reason == Refusal::TooLarge {
        tracing::warn!(%doc, %peer, conn, "change refused: {first}");
    } else {
        tracing::info!(%doc, %peer, conn, violations, "change refused: {first}");
    }
}
