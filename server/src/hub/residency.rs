//! Where a document's memory goes: loading it from storage when the core asks
//! ([`Effect::Load`](fieldsync_core::actor::Effect::Load)), on a blocking thread when it is
//! large, within the document limits, once the document has a place among the loaded ones
//! (`HubConfig::max_loaded`; it waits for one, asking the document used longest ago to
//! unload; the office's reads and edits may take a reserved one); the cache budget the
//! core's estimates are held to; and forgetting a document the core unloaded or dropped.
//! Part of the document actor task.

use std::sync::atomic::Ordering;

use fieldsync_core::actor::{Event, LoadFailure};
use fieldsync_core::{DocumentSync, SyncError};

use super::Command;
use super::task::{Actor, HEAVY_BYTES};
use crate::cache::Place;

/// While a document waits for a place among the loaded ones: how often another is asked to
/// unload.
const EVICT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Actor {
    /// Loads the document from storage (or starts it empty), with the sync states persisted
    /// for peers' storage ids. A stored document over the limits is refused before automerge
    /// reads it, logged and counted; a large one is loaded on a blocking thread.
    pub(super) async fn load(&mut self) -> Event {
        let index = self
            .hub
            .0
            .unlimited
            .lock()
            .expect("unlimited lock poisoned")
            .contains(&self.id);
        // A caseload index takes no place: their number is that of the users with a device,
        // and each is edited through every storm in its user's areas; made to wait for a place
        // and then evicted for one, a city's index was loaded again for every edit.
        if !index {
            self.take_place().await;
        }
        let event = self.read_stored(index).await;
        if matches!(event, Event::LoadFailed(_)) {
            self.place = None;
        }
        event
    }

    /// Waits for a place among the loaded documents. At the limit, the document used
    /// longest ago is asked to unload, and another every `EVICT_EVERY` while none has:
    /// one asked may still be busy, or be used again before it unloads. Meanwhile this
    /// actor's commands queue up and hold their connections' permits, so a storm larger
    /// than the limit slows its phones' reading instead of growing memory. A load for the
    /// office's read or edit may also take a reserved place (and unloads the office's
    /// oldest document for one), so it does not queue behind the storm.
    async fn take_place(&mut self) {
        if self.place.is_some() {
            return;
        }
        let office = self.office;
        let slots = self.hub.0.slots.clone();
        let reserve = self.hub.0.reserve.clone();
        if let Ok(place) = slots.clone().try_acquire_owned() {
            self.place = Some((place, Place::Shared));
            return;
        }
        // A reserve of no places (a small `max_loaded`) is simply never acquired.
        if office && let Ok(place) = reserve.clone().try_acquire_owned() {
            self.place = Some((place, Place::Reserved));
            return;
        }
        crate::metrics::document_load_waited();
        loop {
            let victim = {
                let mut cache = self.hub.0.cache.lock().expect("cache lock poisoned");
                let reserved = if office {
                    cache.evict_oldest_in(Place::Reserved)
                } else {
                    None
                };
                reserved.or_else(|| cache.evict_oldest_in(Place::Shared))
            };
            if let Some(victim) = victim {
                self.hub.send_existing(victim, Command::Unload);
            }
            let acquired = tokio::time::timeout(EVICT_EVERY, async {
                tokio::select! {
                    place = slots.clone().acquire_owned() => (place, Place::Shared),
                    place = reserve.clone().acquire_owned(), if office => (place, Place::Reserved),
                }
            })
            .await;
            if let Ok((place, kind)) = acquired {
                self.place = Some((place.expect("the semaphore is never closed"), kind));
                return;
            }
        }
    }

    async fn read_stored(&mut self, unlimited: bool) -> Event {
        let limits = if unlimited {
            fieldsync_core::Limits::NONE
        } else {
            self.hub.0.config.document_limits
        };
        let stored = match self.hub.loads().of(vec![self.id]).await {
            Ok(mut found) => found.pop().map(|(_, stored)| stored),
            Err(e) => {
                tracing::error!(doc = %self.id, "cannot load document: {e}");
                return Event::LoadFailed(LoadFailure::Failed);
            }
        };
        let mut sync_states = Vec::new();
        let loaded = match stored {
            Some(s) => {
                sync_states.extend(s.sync_states);
                let (id, chunks) = (self.id, s.chunks);
                if s.bytes.len() as u64 > HEAVY_BYTES {
                    self.hub
                        .run_heavy(move || DocumentSync::load(id, &s.bytes, chunks, limits))
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
                return Event::LoadFailed(LoadFailure::Oversized);
            }
            Err(e) => {
                tracing::error!(doc = %self.id, "cannot load document: {e}");
                return Event::LoadFailed(LoadFailure::Failed);
            }
        };
        if unlimited || fieldsync_core::index::index_owner(doc.doc()).is_some() {
            // An index grows with its caseload, through the server's own edits; what a peer
            // sends it is still held to the change limits (and then refused by the rules).
            let config = self.hub.0.config.document_limits;
            doc.set_limits(fieldsync_core::Limits {
                max_document_bytes: u64::MAX,
                max_document_ops: u64::MAX,
                ..config
            });
            doc.set_memory_ratio(fieldsync_core::index::MEMORY_RATIO);
            // A phone reads the root before it asks for the pages: they load as index
            // documents too, even before this process's caseloads have touched them (a busy
            // kelurahan's page grows past the limits like the whole index did).
            let pages = fieldsync_core::index::pages(doc.doc()).unwrap_or_default();
            for page in pages.into_values() {
                self.hub.index_document(page);
            }
        }
        crate::metrics::document_loaded();
        Event::Loaded {
            doc: Box::new(doc),
            sync_states,
        }
    }

    /// Holds the loaded document to the cache budget, as the most recently used; the
    /// documents that no longer fit are asked to unload.
    pub(super) fn touch_cache(&mut self) {
        if self.core.document().is_none() {
            self.resident = None;
            return;
        }
        let Some(size) = self.resident.take() else {
            self.hub
                .0
                .cache
                .lock()
                .expect("cache lock poisoned")
                .refresh(self.id);
            return;
        };
        let place = self.place.as_ref().map_or(Place::None, |p| p.1);
        let victims = self
            .hub
            .0
            .cache
            .lock()
            .expect("cache lock poisoned")
            .touch(self.id, size, place);
        for victim in victims {
            self.hub.send_existing(victim, Command::Unload);
        }
    }

    /// The document left memory (unloaded, or dropped as untrustworthy): it no longer counts
    /// against the budget, and this process no longer holds its chunks.
    pub(super) fn forget_document(&mut self) {
        self.resident = None;
        self.place = None;
        self.hub
            .0
            .cache
            .lock()
            .expect("cache lock poisoned")
            .remove(self.id);
        self.hub.0.storage.forget(self.id);
    }
}
