//! A user's index in pages (`fieldsync_core::index`): the ids of its root and pages, and the
//! caseloads' writes into them: a round of queued entries, and the reconcile against the
//! query tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use fieldsync_core::automerge::AutomergeError;
use fieldsync_core::automerge::transaction::Transaction;
use fieldsync_core::index::{
    IndexEntry, drop_documents, entries, holds_documents, mark_schema, pages, put_entries,
    put_pages, seed,
};
use fieldsync_core::schema::{DocKind, RegionCode, may_read_placed};
use fieldsync_protocol::DocumentId;
use sha2::{Digest, Sha256};

use super::{Caseloads, Pending, author};
use crate::storage::Storage;
use crate::storage::directory::User;

/// Most entries a reconciliation writes in one change. Automerge's sync sends a peer the
/// whole document instead of the changes it lacks when those are over a third of the
/// document's changes: an index of 100,000 entries written in one change was sent whole (4.6
/// MiB, saved and compressed anew) to its phone after each later edit.
const ENTRIES_PER_CHANGE: usize = 1_000;

/// The id of `user`'s index document (its root): derived from a secret of this database, so
/// it cannot be guessed (only its user may read it anyway).
pub fn index_id(secret: &str, user: &str) -> DocumentId {
    derived_id(secret, b"\0fieldsync-index\0", &[user])
}

/// The id of the page of `user`'s index for the kelurahan `area`: derived like
/// [`index_id`], so every process finds the same page.
pub fn page_id(secret: &str, user: &str, area: &str) -> DocumentId {
    derived_id(secret, b"\0fieldsync-index-page\0", &[user, area])
}

/// A document id from the database's secret, what it is for, and its `parts` (separated).
fn derived_id(secret: &str, purpose: &[u8], parts: &[&str]) -> DocumentId {
    let mut hash = Sha256::new()
        .chain_update(secret.as_bytes())
        .chain_update(purpose);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash.update(b"\0");
        }
        hash.update(part.as_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finalize()[..16]);
    DocumentId::from_bytes(bytes)
}

/// The database's index secret, created on first use.
pub async fn index_secret(storage: &dyn Storage) -> crate::storage::StorageResult<String> {
    let fresh = crate::auth::new_token();
    storage.meta("index_secret", &fresh).await
}

/// One page's entries to write (by document id) and to remove.
type PageEdit = (Vec<(String, IndexEntry)>, Vec<String>);

impl Caseloads {
    /// Writes one user's queued entries into their index: one edit per page, the pages at
    /// once; then lists the pages new to the root.
    pub(super) async fn write_queued(&self, queued: Pending) {
        let user = queued.user;
        let mut by_page: BTreeMap<String, PageEdit> = BTreeMap::new();
        for ((area, doc), entry) in queued.entries {
            let (put, remove) = by_page.entry(area).or_default();
            match entry {
                Some(entry) => put.push((doc, entry)),
                None => remove.push(doc),
            }
        }
        let edits = by_page.into_iter().map(|(area, (put, remove))| async {
            // Only a page gaining entries is made; removals from a page not made are none.
            let make = !put.is_empty();
            let stored = self
                .edit_page(&user, &area, make, move |tx| put_entries(tx, &put, &remove))
                .await;
            (area, make && stored)
        });
        let written = futures_util::future::join_all(edits).await;
        let new_pages: Vec<String> = {
            let known = self.known_pages.lock().expect("caseload lock poisoned");
            let known = known.get(&user.id);
            written
                .into_iter()
                .filter(|(area, made)| *made && !known.is_some_and(|k| k.contains(area)))
                .map(|(area, _)| area)
                .collect()
        };
        if !new_pages.is_empty() {
            self.list_pages(&user, &new_pages, &[], false).await;
        }
    }

    /// Makes the user's index list exactly their caseload as the query tables hold it: each
    /// page its kelurahan's documents, the root every page with documents (and none outside
    /// the user's areas). A schema 1 index, all in its root, is moved into pages.
    ///
    /// Only entries listed *before* the query tables are read may be stale: one added
    /// meanwhile, for a change committed after that read, is not, and removing it would take
    /// a colleague's new record off the phones until the next reconcile. (Documents leaving
    /// the caseload meanwhile are removed by their own change's edit.)
    pub(super) async fn reconcile(&self, user: &User) -> Result<(), String> {
        let author = author(user);
        let Some(any_area) = user.areas.first() else {
            return Ok(());
        };
        let kinds: Vec<DocKind> = [DocKind::Visit, DocKind::Referral, DocKind::Outreach]
            .into_iter()
            .filter(|k| may_read_placed(&author, *k, any_area))
            .collect();
        if kinds.is_empty() {
            return Ok(());
        }
        // Reads first: an index not made yet stays unmade until it is written (its phone
        // would sync it empty first). Each page is read whole once and compared here, off
        // the document's actor.
        let root = index_id(&self.secret, &user.id);
        let (listed, schema_1) = self
            .read_index(root, user, |doc| (pages(doc), holds_documents(doc)))
            .await?
            .unwrap_or_default();
        let made = listed.is_some() || schema_1;
        let listed = listed.unwrap_or_default();
        let placed = self
            .storage
            .placed_in(&user.areas, &kinds)
            .await
            .map_err(|e| e.to_string())?;
        let mut wanted: BTreeMap<String, BTreeMap<String, IndexEntry>> = BTreeMap::new();
        let mut count = 0;
        for p in placed {
            let Ok(doc) = DocumentId::parse(&p.document_id) else {
                continue;
            };
            count += 1;
            let entry = IndexEntry {
                url: doc.url().to_string(),
                kind: p.kind.as_str().to_owned(),
                area: p.area.clone(),
            };
            wanted
                .entry(p.area)
                .or_default()
                .insert(p.document_id, entry);
        }
        // Pages outside the user's areas (they were moved) are emptied and unlisted.
        let outside: Vec<String> = listed
            .keys()
            .filter(|area| {
                !wanted.contains_key(*area)
                    && !RegionCode::parse(area).is_ok_and(|code| author.in_scope(&code))
            })
            .cloned()
            .collect();
        let areas: BTreeSet<String> = wanted.keys().chain(listed.keys()).cloned().collect();
        // What the root lists after: the pages listed and kept, and every one with documents.
        let mut keep: BTreeSet<String> = listed
            .keys()
            .filter(|area| !outside.contains(*area))
            .cloned()
            .collect();
        for area in areas {
            let page = page_id(&self.secret, &user.id, &area);
            let before = self
                .read_index(page, user, |doc| entries(doc))
                .await?
                .flatten()
                .unwrap_or_default();
            let want = wanted.remove(&area).unwrap_or_default();
            if !want.is_empty() {
                keep.insert(area.clone());
            }
            // Entries the writer adds meanwhile are not in `before`, so never taken for
            // stale; `put_entries` writes nothing that is already so.
            let stale: Vec<String> = before
                .keys()
                .filter(|doc| !want.contains_key(*doc))
                .cloned()
                .collect();
            let fresh: Vec<(String, IndexEntry)> = want
                .into_iter()
                .filter(|(doc, entry)| before.get(doc) != Some(entry))
                .collect();
            drop(before);
            if stale.is_empty() && fresh.is_empty() {
                continue;
            }
            let make = !fresh.is_empty();
            let mut parts = fresh.chunks(ENTRIES_PER_CHANGE).map(<[_]>::to_vec);
            // The first change also removes the stale entries.
            let first = parts.next().unwrap_or_default();
            self.edit_page(user, &area, make, move |tx| put_entries(tx, &first, &stale))
                .await;
            for part in parts {
                self.edit_page(user, &area, true, move |tx| put_entries(tx, &part, &[]))
                    .await;
            }
        }
        // Then the root: a phone sees a page listed once it is there. An empty caseload
        // gets an empty index.
        if made && !schema_1 && keep.iter().eq(listed.keys()) {
            tracing::debug!(user = %user.id, documents = count, "index already reconciled");
            self.known_pages
                .lock()
                .expect("caseload lock poisoned")
                .insert(user.id.clone(), keep);
            return Ok(());
        }
        let keep: Vec<String> = keep.into_iter().collect();
        self.list_pages(user, &keep, &outside, true).await;
        tracing::debug!(user = %user.id, documents = count, "index reconciled");
        Ok(())
    }

    /// Reads an index document (a root or a page) with `read`: `None` if it is not made.
    async fn read_index<T: Send + 'static>(
        &self,
        doc: DocumentId,
        user: &User,
        read: impl FnOnce(&Transaction<'_>) -> T + Send + 'static,
    ) -> Result<Option<T>, String> {
        let seen: Arc<Mutex<Option<T>>> = Arc::default();
        let into = seen.clone();
        self.hub
            .edit_index(
                doc,
                &user.id,
                None,
                Box::new(move |tx| {
                    *into.lock().expect("caseload lock poisoned") = Some(read(tx));
                    Ok(())
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        let seen = seen.lock().expect("caseload lock poisoned").take();
        Ok(seen)
    }

    /// Writes `change` into the user's page for `area`, making it if `make`; `true` once
    /// stored.
    async fn edit_page(
        &self,
        user: &User,
        area: &str,
        make: bool,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send + 'static,
    ) -> bool {
        let doc = page_id(&self.secret, &user.id, area);
        let seed = make.then(|| seed(doc, &user.id, Some(area)));
        self.edit(user, doc, seed, change).await
    }

    /// Lists the pages of `add` in the user's root and unlists those of `remove`; with
    /// `whole`, `add` is every page the root lists after (a reconcile), which also moves a
    /// schema 1 root's entries out.
    async fn list_pages(&self, user: &User, add: &[String], remove: &[String], whole: bool) {
        let doc = index_id(&self.secret, &user.id);
        let pages: Vec<(String, DocumentId)> = add
            .iter()
            .map(|area| (area.clone(), page_id(&self.secret, &user.id, area)))
            .collect();
        let remove = remove.to_vec();
        let root_seed = seed(doc, &user.id, None);
        let ok = self
            .edit(user, doc, Some(root_seed), move |tx| {
                if whole {
                    drop_documents(tx)?;
                }
                put_pages(tx, &pages, &remove)
            })
            .await;
        if ok {
            let mut known_pages = self.known_pages.lock().expect("caseload lock poisoned");
            let known = known_pages.entry(user.id.clone()).or_default();
            if whole {
                known.clear();
            }
            known.extend(add.iter().cloned());
        }
    }

    /// One edit of an index document, in the format of this version; `true` once stored.
    async fn edit(
        &self,
        user: &User,
        doc: DocumentId,
        seed: Option<Vec<u8>>,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send + 'static,
    ) -> bool {
        let result = self
            .hub
            .edit_index(
                doc,
                &user.id,
                seed,
                Box::new(move |tx| {
                    mark_schema(tx)?;
                    change(tx)
                }),
            )
            .await;
        if let Err(e) = &result {
            tracing::warn!(user = %user.id, "index not updated: {e}");
        }
        result.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ids_are_stable_and_per_user_and_per_database() {
        assert_eq!(index_id("s", "ani"), index_id("s", "ani"));
        assert_ne!(index_id("s", "ani"), index_id("s", "budi"));
        assert_ne!(index_id("s", "ani"), index_id("t", "ani"));
    }
}
