//! Changes other processes store: several `fieldsync serve` processes may share one PostgreSQL
//! database, and a change committed by any of them reaches the phones connected to every
//! other one that has the document open. Storage hears of them ([`Storage::follow`]: PostgreSQL
//! `LISTEN/NOTIFY`, sent when a transaction commits); the document's actor, if this process has
//! one, reads the chunks it has not applied, applies them as durable, and sends them on like
//! its own. A notice may be lost (the listening connection drops): on reconnecting, every
//! loaded document is checked, so a lost notice delays a change and never loses it.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Actor, Command, Hub, read_state};
use crate::storage::{Elsewhere, Storage};

impl Hub {
    /// Passes other processes' changes to this process's actors until `stop`. Returns at once
    /// where no other process can share the database.
    pub async fn follow_other_processes(
        self,
        storage: Arc<dyn Storage>,
        mut stop: watch::Receiver<bool>,
    ) {
        let Some(mut notices) = storage.follow() else {
            return;
        };
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
                }
                None => return,
            }
        }
    }
}

impl Actor {
    /// Applies what other processes stored since this one last read the document, then
    /// relays it to every peer, announces it to live views, and writes nothing: it is stored.
    pub(super) async fn catch_up(&mut self) {
        if self.doc.is_none() {
            return; // loaded afresh, with everything, when next needed
        }
        let stored = match self.hub.0.storage.catch_up(self.id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                // The next notice, or the next load, brings them.
                tracing::warn!(doc = %self.id, "cannot read other processes' changes: {e}");
                return;
            }
        };
        let doc = self.doc.as_mut().expect("checked above");
        let before = doc.heads();
        if let Err(e) = doc.apply_stored(&stored.bytes, stored.chunks) {
            tracing::error!(doc = %self.id, "other processes' changes not applied, unloading: {e}");
            self.unload().await;
            return;
        }
        if doc.heads() == before {
            return;
        }
        if self.index_owner.is_none() {
            self.current = read_state(doc);
        }
        self.announce_change();
        // Nothing to commit: this sends the new changes to every peer with the document open.
        self.commit_and_reply().await;
    }
}
