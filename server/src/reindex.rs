//! `fieldsync reindex`: rebuilds every document's query rows from the stored documents.
//!
//! Safe while any number of servers run on the same database: each document's rows are
//! written as of the newest chunk they were computed from, and never over rows a newer change
//! already wrote (see [`crate::storage::Write::Project`]). That chunk is a true watermark:
//! a document's chunks are committed in id order (on PostgreSQL under the document's advisory
//! lock, `storage/chunks.rs`), so rows computed from every chunk up to it are the rows of
//! that state.

use fieldsync_core::automerge::{Automerge, LoadOptions, OnPartialLoad};
use fieldsync_core::schema::FieldDocument;
use fieldsync_protocol::DocumentId;

use crate::projection::Projection;
use crate::storage::{Storage, StorageResult, Write};

/// Documents per transaction.
const BATCH: usize = 256;

/// What a rebuild found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReindexReport {
    pub documents: usize,
    pub visits: usize,
    pub referrals: usize,
    pub outreach: usize,
    /// Empty documents, and documents of a newer schema than this server reads.
    pub without_rows: usize,
    /// Stored documents that do not load or are not valid (each is logged).
    pub unreadable: usize,
    /// Users' index documents (`crate::caseload`): no rows, not counted in `documents`.
    pub indexes: usize,
}

pub async fn reindex(storage: &dyn Storage) -> StorageResult<ReindexReport> {
    let mut report = ReindexReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    for doc in storage.documents().await? {
        let Some((write, found)) = rows_of(storage, doc).await? else {
            continue;
        };
        report.count(found);
        if let Some(write) = write {
            batch.push(write);
        }
        if batch.len() == BATCH {
            storage.write(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        storage.write(&batch).await?;
    }
    Ok(report)
}

/// Rebuilds one document's rows from everything stored: after two processes changed it at
/// the same time, neither had the state the rows must show (`crate::writer`).
pub async fn rebuild(storage: &dyn Storage, doc: DocumentId) -> StorageResult<()> {
    if let Some((Some(write), _)) = rows_of(storage, doc).await? {
        storage.write(&[write]).await?;
    }
    Ok(())
}

/// What one stored document is.
#[derive(Debug, Clone, Copy)]
enum Found {
    Index,
    Unreadable,
    WithoutRows,
    Visit,
    Referral,
    Outreach,
}

impl ReindexReport {
    fn count(&mut self, found: Found) {
        match found {
            Found::Index => self.indexes += 1,
            Found::Unreadable => self.unreadable += 1,
            Found::WithoutRows => self.without_rows += 1,
            Found::Visit => self.visits += 1,
            Found::Referral => self.referrals += 1,
            Found::Outreach => self.outreach += 1,
        }
        if !matches!(found, Found::Index) {
            self.documents += 1;
        }
    }
}

/// The write that sets the document's rows from what is stored now (none for an index
/// document), and what it found; `None` if nothing is stored.
async fn rows_of(
    storage: &dyn Storage,
    doc: DocumentId,
) -> StorageResult<Option<(Option<Write>, Found)>> {
    let Some(stored) = storage.read(doc).await? else {
        return Ok(None);
    };
    let loaded = Automerge::load_with_options(
        &stored.bytes,
        LoadOptions::new().on_partial_load(OnPartialLoad::Ignore),
    );
    if loaded
        .as_ref()
        .is_ok_and(|d| fieldsync_core::index::index_owner(d).is_some())
    {
        return Ok(Some((None, Found::Index)));
    }
    let state = match loaded.as_ref().map(FieldDocument::read_state) {
        Ok(Ok(state)) => Some(state),
        Ok(Err(violations)) => {
            tracing::warn!(%doc, "not valid, rows removed: {}", violations[0]);
            None
        }
        Err(e) => {
            tracing::warn!(%doc, "does not load, rows removed: {e}");
            None
        }
    };
    let attachments = match &loaded {
        Ok(d) if state.is_some() => fieldsync_core::attachments::referenced(d),
        _ => Vec::new(),
    };
    let projection =
        Projection::of(state.as_ref().and_then(Option::as_ref)).with_attachments(attachments);
    let found = match (&projection, state.is_some()) {
        (_, false) => Found::Unreadable,
        (Projection::Nothing, true) => Found::WithoutRows,
        (Projection::Visit(_), true) => Found::Visit,
        (Projection::Referral(_), true) => Found::Referral,
        (Projection::Outreach(_), true) => Found::Outreach,
    };
    let write = Write::Project {
        doc,
        source: stored.last_chunk,
        projection,
    };
    Ok(Some((Some(write), found)))
}
