//! Durable storage of documents and sync states, behind one trait with two backends.
//!
//! A document is a list of chunks: change chunks appended as changes arrive, and snapshots
//! written by compaction. Compaction replaces the chunks its snapshot covers by the snapshot in
//! a single transaction, so a crash at any moment leaves either the old chunks or the snapshot;
//! chunks another process stored meanwhile stay ([`chunks`]). All writes go through
//! [`Storage::write`], which applies a batch in one transaction: the [`crate::writer`] groups
//! the writes of many documents into one commit.

pub mod activity;
pub mod areas;
pub mod beneficiaries;
pub mod blobs;
pub mod caseload;
mod chunks;
pub mod directory;
pub mod enroll;
pub mod export;
pub mod map;
pub mod migrate;
pub mod people;
mod postgres;
mod postgres_rows;
mod projection;
pub mod query;
pub mod review;
mod sqlite;
mod sqlite_rows;
pub mod web;
pub mod workbench;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fieldsync_core::automerge::ChangeHash;
use fieldsync_protocol::{DocumentId, StorageId};

use crate::projection::Projection;

pub use activity::Activity;
pub use areas::AreaTable;
pub use beneficiaries::Beneficiaries;
pub use blobs::Blobs;
pub use caseload::Caseload;
pub use directory::{AuditEntry, Directory};
pub use export::Exports;
pub use map::MapReads;
pub use postgres::PostgresStorage;
pub use review::Review;
pub use sqlite::SqliteStorage;
pub use web::WebDirectory;
pub use workbench::Workbench;

/// A storage operation failed. The text is for logs, never for peers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub Arc<str>);

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string().into())
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self(format!("migration failed: {e}").into())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = StorageResult<T>> + Send + 'a>>;

/// What is stored of one document.
#[derive(Debug, Default, Clone)]
pub struct StoredDocument {
    /// Every chunk, oldest first, concatenated: `Automerge::load` reads this directly.
    pub bytes: Vec<u8>,
    pub chunks: usize,
    /// Id of the newest chunk: which state of the document `bytes` is, for
    /// [`Write::Project`].
    pub last_chunk: i64,
    /// Persisted sync states, by the storage id of the peer they belong to.
    pub sync_states: HashMap<StorageId, Vec<u8>>,
}

/// One write; a batch of them is applied in one transaction, in order.
#[derive(Debug, Clone)]
pub enum Write {
    /// New changes of a document (one or more change chunks, concatenated), and the query
    /// rows of the state they lead to. The rows are written only if that state includes every
    /// chunk stored so far, i.e. no other process stored a chunk this one has not loaded;
    /// otherwise the document is listed in [`Written::behind`] and its rows are left as they
    /// are until rebuilt.
    Append {
        doc: DocumentId,
        bytes: Vec<u8>,
        projection: Projection,
    },
    /// Query rows rebuilt from the stored document as of chunk `source` (`fieldsync
    /// reindex`); skipped if a newer change already wrote the document's rows.
    Project {
        doc: DocumentId,
        source: i64,
        projection: Projection,
    },
    /// Store this snapshot and delete every chunk row it provably contains: a row goes only
    /// if each of its changes is one of `covers`, the hashes of every change in the snapshot.
    /// Rows another process stored meanwhile, and rows that do not parse, stay.
    Compact {
        doc: DocumentId,
        snapshot: Vec<u8>,
        covers: Arc<HashSet<ChangeHash>>,
    },
    /// A line of the audit log.
    Audit(AuditEntry),
    /// Automerge actor ids first seen in changes from this device: from now on they are its.
    BindActors { device: String, actors: Vec<String> },
    /// The sync state of a peer's storage for a document.
    SyncState {
        doc: DocumentId,
        storage: StorageId,
        state: Vec<u8>,
    },
}

impl Write {
    /// The document whose rows this write touches, if any.
    fn document(&self) -> Option<DocumentId> {
        match self {
            Write::Append { doc, .. }
            | Write::Project { doc, .. }
            | Write::Compact { doc, .. }
            | Write::SyncState { doc, .. } => Some(*doc),
            Write::Audit(_) | Write::BindActors { .. } => None,
        }
    }
}

/// What a committed batch left to do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Documents whose changes were stored but whose query rows were not written, because
    /// another process had stored chunks the writing state lacks: their rows are to be
    /// rebuilt from everything stored ([`crate::reindex::rebuild`]).
    pub behind: Vec<DocumentId>,
}

/// What other processes sharing the database did, as this one hears it ([`Storage::follow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elsewhere {
    /// Another process committed new changes of these documents.
    Changed(Vec<DocumentId>),
    /// Another process told these words ([`Storage::tell`]), for live views.
    Said(Vec<String>),
    /// Notices may have been missed (the listening connection was lost and is back, or this is
    /// its first start): every loaded document is to be checked.
    Missed,
}

/// The one interface the server has to a database: documents here, people and devices in
/// [`Directory`], web sign-in in [`WebDirectory`], the administrator's lists in
/// [`people::People`], caseloads in [`Caseload`], the supervisor's reads in [`Review`], exports
/// in [`Exports`], the coordinator's reads in [`Activity`] and [`Workbench`], attachments and their uploads in
/// [`Blobs`].
pub trait Storage:
    Directory
    + WebDirectory
    + Caseload
    + Review
    + Exports
    + Activity
    + Workbench
    + enroll::Enrollment
    + people::People
    + Blobs
    + AreaTable
    + Beneficiaries
    + MapReads
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// The document's chunks and sync states for its actor; `None` if nothing was ever
    /// stored. This process then holds the document as of its newest chunk, which decides
    /// whether its later appends may write query rows ([`Write::Append`]).
    fn load(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>> {
        Box::pin(async move { Ok(self.load_many(&[doc]).await?.pop().flatten()) })
    }

    /// [`Storage::load`] of many documents in a few statements, in the order asked.
    fn load_many<'a>(
        &'a self,
        docs: &'a [DocumentId],
    ) -> BoxFuture<'a, Vec<Option<StoredDocument>>>;

    /// What is stored of the document, without the actor's bookkeeping of [`Storage::load`]:
    /// for reading it elsewhere (`fieldsync reindex`).
    fn read(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>>;

    /// The document's actor unloaded it: this process no longer holds it.
    fn forget(&self, doc: DocumentId);

    /// The document's chunks stored after the newest one this process holds (see
    /// [`Storage::load`]), oldest first; `None` if there are none. From now on the process
    /// holds them: its actor is to apply them.
    fn catch_up(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>>;

    /// Notices of the changes other processes commit from now on (PostgreSQL `LISTEN`), in a
    /// task of its own that reconnects when the connection is lost; `None` where no other
    /// process shares the database (SQLite). The task ends when the receiver is dropped.
    fn follow(&self) -> Option<tokio::sync::mpsc::Receiver<Elsewhere>>;

    /// Tells the other processes sharing the database `words` (each without spaces), which
    /// they hear as [`Elsewhere::Said`]: sent at once, in no transaction, as many PostgreSQL
    /// notifications as the payload limit needs. For live views, which a lost word only
    /// delays. Does nothing where no other process shares the database.
    fn tell(&self, words: Vec<String>) -> BoxFuture<'_, ()>;

    /// Applies every write in one transaction: all of them are durable when this returns
    /// `Ok`, none of them if it returns `Err`.
    fn write<'a>(&'a self, batch: &'a [Write]) -> BoxFuture<'a, Written>;

    /// A value of the server's own, created with `init` on first use and stable afterwards.
    fn meta<'a>(&'a self, key: &'a str, init: &'a str) -> BoxFuture<'a, String>;

    /// Every stored document's id.
    fn documents(&self) -> BoxFuture<'_, Vec<DocumentId>>;

    /// Every query row, one line per row (`table|column|…`), sorted: for comparing
    /// projections, e.g. before and after `fieldsync reindex`.
    fn projection_rows(&self) -> BoxFuture<'_, Vec<String>>;

    /// Cheap check that the database answers.
    fn ping(&self) -> BoxFuture<'_, ()>;

    /// Closes the pool after in-flight work.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// The connection pool's occupancy now, for metrics.
    fn pool_stats(&self) -> PoolStats;
}

/// How many connections a pool holds, how many of them wait idle, and its most.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Self {
        Self {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
}

/// Opens the backend a URL names: `sqlite://path` (or a plain path) or `postgres://…`.
pub async fn open(url: &str) -> StorageResult<Arc<dyn Storage>> {
    match backend_of(url)? {
        Backend::Postgres => Ok(Arc::new(PostgresStorage::connect(url).await?)),
        Backend::Sqlite => Ok(Arc::new(SqliteStorage::open(url).await?)),
    }
}

/// The databases fieldsync speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Which backend a database URL names; anything else is refused before anything is opened or
/// created (a `mysql://` URL must not become a SQLite file of that name).
pub fn backend_of(url: &str) -> StorageResult<Backend> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "postgres" | "postgresql" if url.contains("://") => Ok(Backend::Postgres),
        "sqlite" if url.len() > "sqlite:".len() && !url.ends_with("://") => Ok(Backend::Sqlite),
        "" => Err(StorageError(
            "not a database URL: use sqlite://PATH or postgres://USER@HOST/DB".into(),
        )),
        other => Err(StorageError(
            format!(
                "fieldsync does not speak `{other}`: use sqlite://PATH or postgres://USER@HOST/DB"
            )
            .into(),
        )),
    }
}

/// The wall clock, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Assembles what a backend read: chunks oldest first, and the sync state rows.
fn stored_document(
    chunks: Vec<(i64, Vec<u8>)>,
    sync_states: Vec<(String, Vec<u8>)>,
) -> StoredDocument {
    let mut bytes = Vec::with_capacity(chunks.iter().map(|c| c.1.len()).sum());
    for (_, chunk) in &chunks {
        bytes.extend_from_slice(chunk);
    }
    StoredDocument {
        bytes,
        chunks: chunks.len(),
        last_chunk: chunks.last().map_or(0, |c| c.0),
        sync_states: sync_state_map(sync_states),
    }
}

/// What [`Storage::load_many`] read (chunk rows and sync states, each with its document's id)
/// as one stored document per document asked (`ids`, as stored), in the order asked.
fn stored_documents(
    ids: &[String],
    chunks: Vec<(String, i64, Vec<u8>)>,
    states: Vec<(String, String, Vec<u8>)>,
) -> Vec<Option<StoredDocument>> {
    type Rows = (Vec<(i64, Vec<u8>)>, Vec<(String, Vec<u8>)>);
    let mut by_doc: HashMap<String, Rows> = HashMap::new();
    for (doc, id, data) in chunks {
        by_doc.entry(doc).or_default().0.push((id, data));
    }
    for (doc, storage, state) in states {
        by_doc.entry(doc).or_default().1.push((storage, state));
    }
    ids.iter()
        .map(|id| {
            let (mut chunks, states) = by_doc.remove(id)?;
            if chunks.is_empty() {
                return None;
            }
            chunks.sort_unstable_by_key(|c| c.0);
            Some(stored_document(chunks, states))
        })
        .collect()
}

/// The rows of `$select … IN (…)` for every one of `$ids`, a statement per 100 ids, its list
/// padded to one of a few sizes (`query::padded_lists`) so that each text is prepared once
/// per connection; `$placeholders(1, n)` writes the backend's list of n placeholders.
macro_rules! rows_in {
    ($pool:expr, $select:literal, $ids:expr, $placeholders:path) => {{
        let mut rows = Vec::new();
        for (list, size) in $crate::storage::query::padded_lists($ids) {
            let sql = format!(concat!($select, " IN {}"), $placeholders(1, size));
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in list {
                query = query.bind(id);
            }
            let last = list.last().expect("lists are never empty");
            for _ in list.len()..size {
                query = query.bind(last);
            }
            rows.extend(query.fetch_all($pool).await?);
        }
        rows
    }};
}
pub(crate) use rows_in;

/// The body of [`Storage::load_many`]: the chunks of every document asked, then the sync
/// states of those found; each document is then held as of its newest chunk, as
/// [`Storage::load`] does.
macro_rules! load_many_impl {
    ($self:ident, $docs:ident, $placeholders:path) => {{
        let ids: Vec<String> = $docs.iter().map(|d| d.to_string()).collect();
        let chunks: Vec<(String, i64, Vec<u8>)> = $crate::storage::rows_in!(
            &$self.pool,
            "SELECT document_id, id, data FROM chunks WHERE document_id",
            &ids,
            $placeholders
        );
        let mut stored: Vec<String> = chunks.iter().map(|c| c.0.clone()).collect();
        stored.sort_unstable();
        stored.dedup();
        let states: Vec<(String, String, Vec<u8>)> = $crate::storage::rows_in!(
            &$self.pool,
            "SELECT document_id, storage_id, state FROM sync_states WHERE document_id",
            &stored,
            $placeholders
        );
        let loaded = $crate::storage::stored_documents(&ids, chunks, states);
        for (doc, stored) in $docs.iter().zip(&loaded) {
            $self
                .held
                .loaded(*doc, stored.as_ref().map_or(0, |s| s.last_chunk));
        }
        Ok(loaded)
    }};
}
pub(crate) use load_many_impl;

fn parse_document_ids(rows: Vec<String>) -> Vec<DocumentId> {
    // Ids were validated before they were stored; a row that no longer parses is skipped
    // rather than failing every caller.
    rows.iter()
        .filter_map(|s| DocumentId::parse(s).ok())
        .collect()
}

fn sync_state_map(rows: Vec<(String, Vec<u8>)>) -> HashMap<StorageId, Vec<u8>> {
    rows.into_iter()
        .filter_map(|(s, state)| StorageId::parse(&s).ok().map(|s| (s, state)))
        .collect()
}

const CHUNK_CHANGES: i16 = 1;
const CHUNK_SNAPSHOT: i16 = 2;

/// The query of [`Storage::projection_rows`]: every column of every query table as text.
/// Built from the constants below only, never from input.
fn projection_rows_sql() -> sqlx::AssertSqlSafe<String> {
    const TABLES: [(&str, &str); 5] = [
        (
            "visits",
            "document_id, area, created_by, created_at, schema, nik, kk, name, ppks, visited_at, \
             purpose, follow_up_on, lat, lon, notes_excerpt",
        ),
        (
            "referrals",
            "document_id, area, created_by, created_at, schema, nik, kk, name, ppks, program, \
             status, visit_id, consent_given, doc_ktp, doc_kk, doc_sktm, doc_surat_puskesmas, \
             reason_excerpt, submitted_at, decided_at, last_event_at",
        ),
        (
            "referral_events",
            "document_id, seq, kind, at, by_user, note, applied",
        ),
        (
            "outreach",
            "document_id, area, created_by, created_at, schema, topic, held_at, place, \
             attendees, notes_excerpt",
        ),
        ("attachment_refs", "document_id, sha256"),
    ];
    let selects: Vec<String> = TABLES
        .iter()
        .map(|(table, columns)| {
            let cells: Vec<String> = columns
                .split(',')
                .map(|c| format!("COALESCE(CAST({} AS TEXT), '-')", c.trim()))
                .collect();
            format!(
                "SELECT '{table}|' || {} AS row FROM {table}",
                cells.join(" || '|' || ")
            )
        })
        .collect();
    sqlx::AssertSqlSafe(format!("{} ORDER BY 1", selects.join(" UNION ALL ")))
}
