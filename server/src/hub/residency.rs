//! Where a document's memory goes: loading it from storage on demand, persisting peers' sync
//! states, compaction into a snapshot, the cache budget and unloading. Part of the document
//! actor.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fieldsync_core::{DocumentSync, SyncError};
use fieldsync_protocol::StorageId;

use super::{Actor, Command, placement, read_state};
use crate::storage::Write;

/// Why a document could not be loaded.
#[derive(Debug)]
pub(super) enum LoadFailure {
    /// It exceeds the document limits.
    Oversized,
    /// Storage failed, or the stored bytes are damaged.
    Failed,
}

impl Actor {
    /// Loads the document from storage (or starts it empty). A stored document over the
    /// limits is refused before automerge reads it, logged and counted; a large one is loaded
    /// on a blocking thread.
    pub(super) async fn load(&mut self) -> Result<(), LoadFailure> {
        let unlimited = self
            .hub
            .0
            .unlimited
            .lock()
            .expect("unlimited lock poisoned")
            .contains(&self.id);
        let limits = if unlimited {
            fieldsync_core::Limits::NONE
        } else {
            self.hub.0.config.document_limits
        };
        let stored = self.hub.0.storage.load(self.id).await.map_err(|e| {
            tracing::error!(doc = %self.id, "cannot load document: {e}");
            LoadFailure::Failed
        })?;
        let loaded = match stored {
            Some(s) => {
                self.persisted = s.sync_states;
                let (id, chunks) = (self.id, s.chunks);
                if s.bytes.len() as u64 > super::HEAVY_BYTES {
                    let permit = self
                        .hub
                        .0
                        .heavy
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed");
                    tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        DocumentSync::load(id, &s.bytes, chunks, limits)
                    })
                    .await
                    .unwrap_or_else(|e| Err(SyncError::Load(e.to_string())))
                } else {
                    DocumentSync::load(id, &s.bytes, chunks, limits)
                }
            }
            None => {
                let mut doc = DocumentSync::new(self.id);
                doc.set_limits(limits);
                Ok(doc)
            }
        };
        let mut doc = match loaded {
            Ok(doc) => doc,
            Err(SyncError::TooLarge(e)) => {
                self.hub.0.oversized.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    doc = %self.id,
                    "stored document refused, not loaded: {e} (raise the document limits to serve it)"
                );
                return Err(LoadFailure::Oversized);
            }
            Err(e) => {
                tracing::error!(doc = %self.id, "cannot load document: {e}");
                return Err(LoadFailure::Failed);
            }
        };
        for (peer, link) in &self.links {
            let state = self.parked.remove(peer).or_else(|| {
                link.storage
                    .as_ref()
                    .and_then(|s| self.persisted.get(s).cloned())
            });
            doc.add_peer(peer.clone(), state.as_deref());
        }
        self.index_owner = fieldsync_core::index::index_owner(doc.doc());
        if unlimited || self.index_owner.is_some() {
            // An index grows with its caseload, through the server's own edits; what a peer
            // sends it is still held to the change limits (and then refused by the rules).
            let config = self.hub.0.config.document_limits;
            doc.set_limits(fieldsync_core::Limits {
                max_document_bytes: u64::MAX,
                max_document_ops: u64::MAX,
                ..config
            });
        }
        self.current = if self.index_owner.is_some() {
            None
        } else {
            read_state(&doc)
        };
        self.placed = placement(self.current.as_ref());
        self.doc = Some(doc);
        self.touch_cache();
        crate::metrics::document_loaded();
        Ok(())
    }

    pub(super) async fn persist_sync_states(&mut self, states: Vec<(StorageId, Vec<u8>)>) {
        for (storage, state) in states {
            if self.persisted.get(&storage) == Some(&state) {
                continue;
            }
            let write = Write::SyncState {
                doc: self.id,
                storage: storage.clone(),
                state: state.clone(),
            };
            match self.hub.0.writer.write(write).await {
                Ok(()) => {
                    self.persisted.insert(storage, state);
                }
                // A lost sync state only costs the peer a longer exchange next time.
                Err(e) => tracing::warn!(doc = %self.id, "sync state not saved: {e}"),
            }
        }
    }

    pub(super) async fn compact(&mut self) {
        let Some(doc) = self.doc.as_mut() else { return };
        if !doc.wants_compaction() {
            return;
        }
        let Some(snapshot) = doc.snapshot() else {
            return;
        };
        // Storage deletes only the rows whose every change is in the snapshot: another
        // process may have stored changes this one never loaded.
        let covers: HashSet<_> = doc
            .doc()
            .get_changes_meta(&[])
            .into_iter()
            .map(|c| c.hash)
            .collect();
        let len = snapshot.len();
        match self
            .hub
            .0
            .writer
            .write(Write::Compact {
                doc: self.id,
                snapshot,
                covers: Arc::new(covers),
            })
            .await
        {
            Ok(()) => doc.compacted(len),
            Err(e) => tracing::warn!(doc = %self.id, "compaction failed, chunks kept: {e}"),
        }
    }

    pub(super) fn touch_cache(&mut self) {
        let Some(doc) = &self.doc else { return };
        let victims = self
            .hub
            .0
            .cache
            .lock()
            .expect("cache lock poisoned")
            .touch(self.id, doc.approx_memory());
        for victim in victims {
            self.hub.send_existing(victim, Command::Unload);
        }
    }

    pub(super) async fn unload(&mut self) {
        let Some(doc) = self.doc.take() else { return };
        self.current = None;
        tracing::debug!(doc = %self.id, "unloading");
        self.hub
            .0
            .cache
            .lock()
            .expect("cache lock poisoned")
            .remove(self.id);
        self.hub.0.storage.forget(self.id);
        let mut to_persist = Vec::new();
        for (peer, state) in doc.encoded_sync_states() {
            if let Some(storage) = self.links.get(&peer).and_then(|l| l.storage.clone()) {
                to_persist.push((storage, state.clone()));
            }
            self.parked.insert(peer, state);
        }
        self.persist_sync_states(to_persist).await;
    }
}
