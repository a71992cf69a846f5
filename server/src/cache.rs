//! Least-recently-used accounting of the memory that loaded documents take.
//!
//! The budget bounds the server's resident memory by configuration rather than by how many
//! documents exist: when loading or growing a document pushes the estimate over the budget, the
//! documents used longest ago are unloaded first (their actors persist sync states and keep only
//! what connected peers need). The same order says which document to unload when another waits
//! for a place among the `--max-loaded-docs` (`hub/residency.rs`), among the documents that
//! hold one of the same kind ([`Place`]): caseload indexes hold none, and unloading one
//! would free none; a phone's document frees a shared place, and only the office's reads and
//! edits may take a reserved one.

use std::collections::{BTreeSet, HashMap};

use fieldsync_protocol::DocumentId;

/// Which of the `--max-loaded-docs` places a loaded document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// None: a caseload index.
    None,
    /// One of the places every document may take.
    Shared,
    /// One of the few kept for the office's reads and edits (`Hub::reserved_places`).
    Reserved,
}

/// Least-recently-used accounting of loaded documents' estimated memory.
#[derive(Debug)]
pub(crate) struct Cache {
    budget: usize,
    pub(crate) used: usize,
    tick: u64,
    /// Each document's last use, estimated size, and the place it holds.
    entries: HashMap<DocumentId, (u64, usize, Place)>,
    order: BTreeSet<(u64, DocumentId)>,
}

impl Cache {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Records a use of `doc` at `size`; returns the documents to unload to stay in budget.
    pub(crate) fn touch(&mut self, doc: DocumentId, size: usize, place: Place) -> Vec<DocumentId> {
        self.remove(doc);
        self.tick += 1;
        self.entries.insert(doc, (self.tick, size, place));
        self.order.insert((self.tick, doc));
        self.used += size;
        let mut victims = Vec::new();
        // When only the current document is left, it stays, however large.
        while self.used > self.budget && self.order.first().is_some_and(|&(_, d)| d != doc) {
            victims.extend(self.evict_oldest());
        }
        victims
    }

    /// Records a use of `doc` at the size last recorded, if it is accounted for: a message
    /// handled without a change in size. A document in the middle of its phone's exchange is
    /// then not the one used longest ago.
    pub(crate) fn refresh(&mut self, doc: DocumentId) {
        let Some(entry) = self.entries.get_mut(&doc) else {
            return;
        };
        self.order.remove(&(entry.0, doc));
        self.tick += 1;
        entry.0 = self.tick;
        self.order.insert((self.tick, doc));
    }

    /// Takes the document used longest ago out of the accounting, to be asked to unload:
    /// room for a document waiting to load (`hub/residency.rs`).
    pub(crate) fn evict_oldest(&mut self) -> Option<DocumentId> {
        let (_, oldest) = self.order.pop_first()?;
        if let Some((_, size, _)) = self.entries.remove(&oldest) {
            self.used -= size;
        }
        Some(oldest)
    }

    /// Takes out the document used longest ago among those holding a place of this kind.
    pub(crate) fn evict_oldest_in(&mut self, place: Place) -> Option<DocumentId> {
        let oldest = self
            .order
            .iter()
            .map(|&(_, doc)| doc)
            .find(|doc| self.entries.get(doc).is_some_and(|e| e.2 == place))?;
        self.remove(oldest);
        Some(oldest)
    }

    pub(crate) fn remove(&mut self, doc: DocumentId) {
        if let Some((tick, size, _)) = self.entries.remove(&doc) {
            self.order.remove(&(tick, doc));
            self.used -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_evicts_least_recently_used_first() {
        let d = |n| DocumentId::from_bytes([n; 16]);
        let mut cache = Cache::new(100);
        assert!(cache.touch(d(1), 40, Place::Shared).is_empty());
        assert!(cache.touch(d(2), 40, Place::Shared).is_empty());
        assert!(cache.touch(d(1), 40, Place::Shared).is_empty()); // d(1) is now the most recent
        assert_eq!(cache.touch(d(3), 40, Place::Shared), vec![d(2)]);
        cache.refresh(d(1)); // a use without a new size: d(3) is now the oldest
        cache.refresh(d(9)); // not accounted for: nothing
        assert_eq!(cache.evict_oldest_in(Place::Shared), Some(d(3)));
        assert_eq!(cache.used, 40);
        assert!(cache.touch(d(3), 40, Place::Shared).is_empty());
        assert_eq!(cache.used, 80);
        assert_eq!(cache.touch(d(4), 500, Place::Shared), vec![d(1), d(3)]);
        assert_eq!(cache.used, 500);
    }

    #[test]
    fn evict_oldest_takes_the_least_recently_used() {
        let d = |n| DocumentId::from_bytes([n; 16]);
        let mut cache = Cache::new(1000);
        assert_eq!(cache.evict_oldest(), None);
        cache.touch(d(1), 10, Place::Shared);
        cache.touch(d(2), 20, Place::Shared);
        cache.touch(d(1), 10, Place::Shared);
        assert_eq!(cache.evict_oldest(), Some(d(2)));
        assert_eq!((cache.entries.len(), cache.used), (1, 10));
        assert_eq!(cache.evict_oldest(), Some(d(1)));
        assert_eq!((cache.entries.len(), cache.used), (0, 0));
    }

    #[test]
    fn a_place_is_freed_by_the_oldest_document_holding_one() {
        let d = |n| DocumentId::from_bytes([n; 16]);
        let mut cache = Cache::new(1000);
        cache.touch(d(1), 10, Place::None); // an index: oldest, but it holds no place
        cache.touch(d(2), 20, Place::Shared);
        cache.touch(d(3), 30, Place::Shared);
        cache.touch(d(4), 40, Place::Reserved); // the office's: frees no shared place
        assert_eq!(cache.evict_oldest_in(Place::Shared), Some(d(2)));
        assert_eq!(cache.evict_oldest_in(Place::Shared), Some(d(3)));
        assert_eq!(cache.evict_oldest_in(Place::Shared), None);
        assert_eq!(cache.evict_oldest_in(Place::Reserved), Some(d(4)));
        assert_eq!((cache.entries.len(), cache.used), (1, 10));
    }
}
