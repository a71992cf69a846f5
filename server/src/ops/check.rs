//! `fieldsync check`: reads the whole database and reports damage, without writing to it.
//!
//! Every stored document must load the way the server loads it, every chunk must decode
//! (checksum, columns, dependencies: a strict automerge load), and every query row must be what
//! [`Projection::of`] computes from its document, like [`crate::reindex`] without writing. The
//! expected rows are written to a scratch database of the same backend and both are read with
//! [`Storage::projection_rows`], so that the comparison is of text the same SQL produced.
//!
//! While a server writes, a document may change between reading its rows and loading it: a
//! document whose rows differ is read again, and judged only if it did not change meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fieldsync_core::automerge::{Automerge, LoadOptions, OnPartialLoad};
use fieldsync_core::schema::FieldDocument;
use fieldsync_core::{DocumentSync, Limits};
use fieldsync_protocol::DocumentId;
use sqlx::Connection;

use crate::projection::Projection;
use crate::storage::{self, Storage, StorageError, StorageResult, Write};

/// Documents per write to the scratch database.
const BATCH: usize = 256;

/// What a check found. Names documents by id only: never what they hold.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Stored documents, caseload indexes included.
    pub documents: usize,
    /// Users' index documents (`crate::caseload`), which have no query rows.
    pub indexes: usize,
    pub chunks: usize,
    /// Query rows compared.
    pub rows: usize,
    /// Documents that changed while being checked, twice: not judged.
    pub changing: usize,
    pub damaged: Vec<Damage>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    pub document: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// The server cannot load it ([`DocumentSync::load`] fails).
    DoesNotLoad,
    /// A chunk fails its checksum, does not parse, or depends on a change that is not stored.
    ChunkDoesNotDecode,
    /// It loads but is not a valid field document.
    NotValid,
    /// Its query rows are not what its content gives (`fieldsync reindex` rebuilds them).
    RowsDiffer,
    /// Query rows of a document that is not stored.
    RowsWithoutDocument,
}

impl Problem {
    pub fn describe(self) -> &'static str {
        match self {
            Self::DoesNotLoad => "does not load",
            Self::ChunkDoesNotDecode => "a chunk does not decode",
            Self::NotValid => "is not a valid field document",
            Self::RowsDiffer => {
                "query rows differ from the document (fieldsync reindex rebuilds them)"
            }
            Self::RowsWithoutDocument => "query rows of a document that is not stored",
        }
    }
}

/// Checks the database at `url` (opened as `storage`); needs a scratch database of the same
/// backend: a temporary SQLite file, or a temporary schema in the same PostgreSQL database.
pub async fn check(storage: &dyn Storage, url: &str) -> StorageResult<CheckReport> {
    let scratch = Scratch::create(url).await?;
    let result = compare(storage, scratch.storage.as_ref()).await;
    scratch.remove().await?;
    result
}

/// What one document is expected to have, from one reading of it.
enum Verdict {
    Damaged(Problem),
    Index,
    Rows(Box<Projection>),
}

async fn compare(storage: &dyn Storage, scratch: &dyn Storage) -> StorageResult<CheckReport> {
    let mut report = CheckReport::default();
    // Rows first, documents after: a document that changes in between has newer content than
    // its rows, and is read again below.
    let stored_rows = by_document(storage.projection_rows().await?);
    let mut last_chunks = BTreeMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    for doc in storage.documents().await? {
        let Some(stored) = storage.load(doc).await? else {
            continue;
        };
        report.documents += 1;
        report.chunks += stored.chunks;
        last_chunks.insert(doc.to_string(), stored.last_chunk);
        match verdict(doc, &stored.bytes, stored.chunks) {
            Verdict::Damaged(problem) => report.damaged.push(Damage {
                document: doc.to_string(),
                problem,
            }),
            Verdict::Index => report.indexes += 1,
            Verdict::Rows(projection) => {
                batch.push(Write::Project {
                    doc,
                    source: stored.last_chunk,
                    projection: *projection,
                });
                if batch.len() == BATCH {
                    scratch.write(&batch).await?;
                    batch.clear();
                }
            }
        }
    }
    if !batch.is_empty() {
        scratch.write(&batch).await?;
    }
    let expected = by_document(scratch.projection_rows().await?);
    report.rows = stored_rows.values().map(Vec::len).sum();

    let judged: BTreeSet<&String> = report.damaged.iter().map(|d| &d.document).collect();
    let suspects: Vec<String> = stored_rows
        .keys()
        .chain(expected.keys())
        .filter(|doc| !judged.contains(doc))
        .filter(|doc| stored_rows.get(*doc) != expected.get(*doc))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if suspects.is_empty() {
        return Ok(report);
    }
    // Read again: rows, then each suspect. One whose newest chunk is still the one checked
    // above did not change, so its rows now are the rows of that content.
    let stored_rows = by_document(storage.projection_rows().await?);
    for doc in suspects {
        let Some(checked) = last_chunks.get(&doc) else {
            report.damaged.push(Damage {
                document: doc,
                problem: Problem::RowsWithoutDocument,
            });
            continue;
        };
        let now = match DocumentId::parse(&doc) {
            Ok(id) => storage.load(id).await?.map(|s| s.last_chunk),
            Err(_) => None,
        };
        if now != Some(*checked) {
            report.changing += 1;
        } else if stored_rows.get(&doc) != expected.get(&doc) {
            report.damaged.push(Damage {
                document: doc,
                problem: Problem::RowsDiffer,
            });
        }
    }
    Ok(report)
}

fn verdict(doc: DocumentId, bytes: &[u8], chunks: usize) -> Verdict {
    // No limits: the check asks whether what is stored is intact. A document stored before a
    // limit existed, or over a limit an operator lowered, is not damaged; whether a server
    // serves it depends on that server's flags, which the check does not know.
    if DocumentSync::load(doc, bytes, chunks, Limits::NONE).is_err() {
        return Verdict::Damaged(Problem::DoesNotLoad);
    }
    // The server forgives a torn tail; the check does not, and a strict load verifies every
    // chunk's checksum and columns and that every change's dependencies are stored.
    let loaded = match Automerge::load_with_options(
        bytes,
        LoadOptions::new().on_partial_load(OnPartialLoad::Error),
    ) {
        Ok(loaded) => loaded,
        Err(_) => return Verdict::Damaged(Problem::ChunkDoesNotDecode),
    };
    if fieldsync_core::index::index_owner(&loaded).is_some() {
        return Verdict::Index;
    }
    match FieldDocument::read_state(&loaded) {
        Ok(state) => Verdict::Rows(Box::new(
            Projection::of(state.as_ref())
                .with_attachments(fieldsync_core::attachments::referenced(&loaded)),
        )),
        Err(_) => Verdict::Damaged(Problem::NotValid),
    }
}

/// `table|document_id|…` rows, by document id.
fn by_document(rows: Vec<String>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let doc = row.split('|').nth(1).unwrap_or_default().to_owned();
        out.entry(doc).or_default().push(row);
    }
    out
}

/// An empty database of the same backend, removed after the check.
struct Scratch {
    storage: Arc<dyn Storage>,
    place: Place,
}

enum Place {
    Directory(tempfile::TempDir),
    Schema { url: String, schema: String },
}

impl Scratch {
    async fn create(url: &str) -> StorageResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let schema = format!("fieldsync_check_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            let separator = if url.contains('?') { '&' } else { '?' };
            let scratch_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
            let storage = storage::open(&scratch_url).await?;
            Ok(Self {
                storage,
                place: Place::Schema {
                    url: url.to_owned(),
                    schema,
                },
            })
        } else {
            let dir = tempfile::tempdir().map_err(|e| {
                StorageError(format!("cannot create a scratch directory: {e}").into())
            })?;
            let path = dir.path().join("check.db");
            let storage = storage::open(&format!("sqlite://{}", path.display())).await?;
            Ok(Self {
                storage,
                place: Place::Directory(dir),
            })
        }
    }

    async fn remove(self) -> StorageResult<()> {
        self.storage.close().await?;
        match self.place {
            Place::Directory(dir) => drop(dir),
            Place::Schema { url, schema } => {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
        }
        Ok(())
    }
}
