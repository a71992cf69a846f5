//! Changes other processes store: several `fieldsync serve` processes may share one PostgreSQL
//! database, and a change committed by any of them reaches the phones connected to every
//! other one that has the document open. Storage hears of them ([`Storage::follow`]: PostgreSQL
//! `LISTEN/NOTIFY`, sent when a transaction commits); the document's actor, if this process has
//! one, reads the chunks it has not applied, applies them as durable, and sends them on like
//! its own. A notice may be lost (the listening connection drops): on reconnecting, every
//! loaded document is checked, so a lost notice delays a change and never loses it.
//!
//! Live views (caseload offers, the coordinators' stream) hear of every other process's
//! change, loaded here or not: each process tells the others what its own live views heard
//! ([`Changed`]: document, type, area, and type and area before), once durable
//! ([`Storage::tell`]), and publishes what it hears from them as [`Heard`]. Only the process
//! that committed a change writes caseload indexes for it (`crate::caseload`); the others
//! only offer and stream it, so no two processes write the same index entry for one change.

use std::sync::Arc;

use fieldsync_core::actor::Event;
use fieldsync_core::schema::{DocKind, RegionCode};
use fieldsync_protocol::DocumentId;
use tokio::sync::{broadcast, watch};

use super::task::Actor;
use super::{Changed, Command, Hub};
use crate::storage::{Elsewhere, Storage};

/// Most of this process's changes told to the others in one go.
const TELL_BATCH: usize = 1024;
/// The word that says "some changes were not told": listeners reload.
const MISSED: &str = "*";

/// What live views hear of the changes other processes made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Changed(Changed),
    /// Some were missed (the listening connection was lost, or the other process fell behind
    /// telling): views reload what they show.
    Missed,
}

/// Other processes' changes for this process's live views; cheap to clone. Without a shared
/// database nothing is ever sent on it.
#[derive(Debug, Clone)]
pub struct OtherProcesses(broadcast::Sender<Heard>);

impl Default for OtherProcesses {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl OtherProcesses {
    /// Every change heard from now on. A receiver that falls behind misses some (and is told
    /// so by `recv`), as with [`Hub::changes`].
    pub fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.0.subscribe()
    }

    /// Publishes what another process said (see [`encode`]); unreadable words are skipped.
    fn publish(&self, words: &[String]) {
        for word in words {
            let heard = if word == MISSED {
                Some(Heard::Missed)
            } else {
                decode(word).map(Heard::Changed)
            };
            match heard {
                Some(heard) => {
                    // No receiver is no error: nobody is watching.
                    let _ = self.0.send(heard);
                }
                None => tracing::warn!("unreadable change from another process, skipped"),
            }
        }
    }
}

/// A field document's change as one word: `id,type,area,type before,area before`, a field
/// empty where it is `None`. `None` for changes no live view shows (not a field document,
/// before or after: an index, or a document not yet valid).
fn encode(c: &Changed) -> Option<String> {
    if c.kind.is_none() && c.before.is_none() {
        return None;
    }
    let (bkind, barea) = match &c.before {
        Some((k, a)) => (k.as_str(), a.as_str()),
        None => ("", ""),
    };
    Some(format!(
        "{},{},{},{bkind},{barea}",
        c.doc,
        c.kind.map_or("", DocKind::as_str),
        c.area.as_ref().map_or("", RegionCode::as_str),
    ))
}

fn decode(word: &str) -> Option<Changed> {
    let fields: Vec<&str> = word.split(',').collect();
    let [doc, kind, area, bkind, barea] = fields[..] else {
        return None;
    };
    let kind_of = |s: &str| -> Option<Option<DocKind>> {
        if s.is_empty() {
            return Some(None);
        }
        [DocKind::Visit, DocKind::Referral, DocKind::Outreach]
            .into_iter()
            .find(|k| k.as_str() == s)
            .map(Some)
    };
    let area_of = |s: &str| -> Option<Option<RegionCode>> {
        if s.is_empty() {
            return Some(None);
        }
        RegionCode::parse(s).ok().map(Some)
    };
    let before = match (kind_of(bkind)?, area_of(barea)?) {
        (Some(kind), Some(area)) => Some((kind, area)),
        (None, None) => None,
        _ => return None,
    };
    Some(Changed {
        doc: DocumentId::parse(doc).ok()?,
        kind: kind_of(kind)?,
        area: area_of(area)?,
        before,
    })
}

impl Hub {
    /// Passes other processes' changes to this process's actors and live views, and tells
    /// them this process's, until `stop`. Returns at once where no other process can share
    /// the database.
    pub async fn follow_other_processes(
        self,
        storage: Arc<dyn Storage>,
        others: OtherProcesses,
        stop: watch::Receiver<bool>,
    ) {
        let Some(notices) = storage.follow() else {
            return;
        };
        let telling = tell(self.changes(), storage, stop.clone());
        tokio::join!(self.hear(notices, others, stop), telling);
    }

    async fn hear(
        &self,
        mut notices: tokio::sync::mpsc::Receiver<Elsewhere>,
        others: OtherProcesses,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let notice = tokio::select! {
                n = notices.recv() => n,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            match notice {
                Some(Elsewhere::Changed(docs)) => {
                    for doc in docs {
                        self.send_existing(doc, Command::External);
                    }
                }
                Some(Elsewhere::Said(words)) => others.publish(&words),
                Some(Elsewhere::Missed) => {
                    let docs: Vec<_> = self
                        .0
                        .docs
                        .lock()
                        .expect("hub lock poisoned")
                        .keys()
                        .copied()
                        .collect();
                    for doc in docs {
                        self.send_existing(doc, Command::External);
                    }
                    others.publish(&[MISSED.to_owned()]);
                }
                None => return,
            }
        }
    }
}

/// Tells the other processes every change this process made durable (its own commits: a
/// change caught up from elsewhere is not announced here, see `Actor::catch_up`), taking
/// together whatever queued up meanwhile.
async fn tell(
    mut changes: broadcast::Receiver<Changed>,
    storage: Arc<dyn Storage>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            c = changes.recv() => c,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let mut words = Vec::new();
        // `None`: this task fell behind and missed changes; the others then reload rather
        // than miss them silently.
        let mut take = |received: Option<Changed>| match received {
            Some(c) => words.extend(encode(&c)),
            None => words.push(MISSED.to_owned()),
        };
        match first {
            Ok(c) => take(Some(c)),
            Err(broadcast::error::RecvError::Lagged(_)) => take(None),
            Err(broadcast::error::RecvError::Closed) => return,
        }
        for _ in 1..TELL_BATCH {
            match changes.try_recv() {
                Ok(c) => take(Some(c)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => take(None),
                Err(_) => break,
            }
        }
        if words.is_empty() {
            continue;
        }
        if let Err(e) = storage.tell(words).await {
            // Their live views miss these until they reload; the changes themselves reach
            // them through storage.
            tracing::warn!("cannot tell other processes about changes: {e}");
        }
    }
}

impl Actor {
    /// Reads what other processes stored since this one last read the document, for the core
    /// to apply and relay ([`fieldsync_core::actor::Effect::CatchUp`]); nothing is written (it
    /// is stored). Live views here hear of it from the process that committed it ([`Heard`]),
    /// not from this actor, so that each change is announced once and caseload indexes are
    /// written by that process alone.
    pub(super) async fn catch_up(&mut self) -> Option<Event> {
        match self.hub.0.storage.catch_up(self.id).await {
            Ok(Some(stored)) => Some(Event::External {
                bytes: stored.bytes,
                chunks: stored.chunks,
            }),
            Ok(None) => None,
            Err(e) => {
                // The next notice, or the next load, brings them.
                tracing::warn!(doc = %self.id, "cannot read other processes' changes: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    #[test]
    fn a_change_is_heard_as_it_was_told() {
        let doc = DocumentId::from_bytes([7; 16]);
        for changed in [
            Changed {
                doc,
                kind: Some(DocKind::Visit),
                area: Some(area("32.77.01.1001")),
                before: None,
            },
            Changed {
                doc,
                kind: Some(DocKind::Referral),
                area: Some(area("32.77.02.1001")),
                before: Some((DocKind::Referral, area("32.77.01.1001"))),
            },
            Changed {
                doc,
                kind: None,
                area: None,
                before: Some((DocKind::Outreach, area("32.77.01.1002"))),
            },
        ] {
            let word = encode(&changed).expect("a field document's change is told");
            assert!(!word.contains(' '), "{word:?} must be one word");
            assert_eq!(decode(&word), Some(changed));
        }
    }

    #[test]
    fn only_field_documents_are_told_and_nonsense_is_not_heard() {
        let index = Changed {
            doc: DocumentId::from_bytes([7; 16]),
            kind: None,
            area: None,
            before: None,
        };
        assert_eq!(encode(&index), None);
        let doc = DocumentId::from_bytes([7; 16]).to_string();
        for word in [
            String::new(),
            "x,visit,32.77.01.1001,,".into(),
            format!("{doc},visit,32.77.01.1001,"),
            format!("{doc},letter,32.77.01.1001,,"),
            format!("{doc},visit,32.77,,"),
            format!("{doc},visit,32.77.01.1001,visit,"),
        ] {
            assert_eq!(decode(&word), None, "{word:?}");
        }
    }
}
