//! `fieldsync reindex`: rebuilds every document's query rows from the stored documents.
//!
//! Safe while the server runs: each document's rows are written as of the chunk they were
//! computed from, and never over rows a newer change already wrote (see
//! [`crate::storage::Write::Project`]).

use fieldsync_core::automerge::{Automerge, LoadOptions, OnPartialLoad};
use fieldsync_core::schema::FieldDocument;

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
        let Some(stored) = storage.load(doc).await? else {
            continue;
        };
        let loaded = Automerge::load_with_options(
            &stored.bytes,
            LoadOptions::new().on_partial_load(OnPartialLoad::Ignore),
        );
        if loaded
            .as_ref()
            .is_ok_and(|d| crate::caseload::index_owner(d).is_some())
        {
            report.indexes += 1;
            continue;
        }
        report.documents += 1;
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
        let projection = Projection::of(state.as_ref().and_then(Option::as_ref));
        match (&projection, state.is_some()) {
            (_, false) => report.unreadable += 1,
            (Projection::Nothing, true) => report.without_rows += 1,
            (Projection::Visit(_), true) => report.visits += 1,
            (Projection::Referral(_), true) => report.referrals += 1,
            (Projection::Outreach(_), true) => report.outreach += 1,
        }
        batch.push(Write::Project {
            doc,
            source: stored.last_chunk,
            projection,
        });
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
