//! The embedded default: one SQLite file in WAL mode, created on first start.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fieldsync_protocol::DocumentId;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::chunks::{Held, covered};
use super::projection::{Append, Rows, holding, settle};
use super::sqlite_rows as rows;
use super::{
    BoxFuture, CHUNK_SNAPSHOT, Elsewhere, Storage, StorageError, StorageResult, StoredDocument,
    Write, Written, now_millis, parse_document_ids, projection_rows_sql, stored_document,
};

#[derive(Debug, Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    held: Arc<Held>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database a `sqlite://` URL or plain path names, and
    /// applies pending migrations.
    pub async fn open(url: &str) -> StorageResult<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let file = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(file).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError(format!("cannot create {}: {e}", dir.display()).into())
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a crash of the process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // Room for the writer's statements of many rows (`sqlite_rows.rs`: about 60
            // texts) besides those every read uses.
            .statement_cache_capacity(256);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        super::migrate::migrate_sqlite(&pool).await?;
        Ok(Self {
            pool,
            held: Arc::default(),
        })
    }

    /// Stores the appends of `run` (and empties it), noting what this process will hold and
    /// which documents lack another process's chunks.
    async fn append_run(
        &self,
        conn: &mut sqlx::SqliteConnection,
        run: &mut Vec<Append<'_>>,
        advanced: &mut HashMap<DocumentId, i64>,
        written: &mut Written,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let stored = rows::append(conn, run, holding(advanced, &self.held), now).await?;
        run.clear();
        settle(written, advanced, stored);
        Ok(())
    }

    async fn read_chunks(&self, doc: DocumentId) -> StorageResult<Option<StoredDocument>> {
        let id = doc.to_string();
        let chunks: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, data FROM chunks WHERE document_id = ? ORDER BY id")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
        if chunks.is_empty() {
            return Ok(None);
        }
        let states: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT storage_id, state FROM sync_states WHERE document_id = ?")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(stored_document(chunks, states)))
    }
}

super::directory::identity_writer!(
    write_identity,
    sqlx::SqliteConnection,
    super::query::anonymous_rows
);

/// The batch's sync states, the newest per (document, storage), many rows per statement
/// (`query::parts`).
async fn write_sync_states(
    conn: &mut sqlx::SqliteConnection,
    batch: &[Write],
) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let mut newest = std::collections::HashMap::new();
    for w in batch {
        if let Write::SyncState {
            doc,
            storage,
            state,
        } = w
        {
            newest.insert((doc, storage), state);
        }
    }
    let rows: Vec<_> = newest.into_iter().collect();
    for chunk in super::query::parts(&rows) {
        let mut sql = String::from(
            "INSERT INTO sync_states (document_id, storage_id, state, updated_at) VALUES ",
        );
        sql.push_str(&super::query::anonymous_rows(chunk.len(), 4));
        sql.push_str(" ON CONFLICT (document_id, storage_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((doc, storage), state) in chunk {
            query = query
                .bind(doc.to_string())
                .bind(storage.as_str())
                .bind(state.as_slice())
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

super::directory::directory_impl!(SqliteStorage);
super::web::web_impl!(SqliteStorage);
super::caseload::caseload_impl!(SqliteStorage);
super::review::review_impl!(SqliteStorage);
super::areas::areas_impl!(SqliteStorage);
super::beneficiaries::beneficiaries_impl!(SqliteStorage);
super::map::map_impl!(SqliteStorage);
super::export::export_impl!(SqliteStorage);
super::activity::activity_impl!(SqliteStorage, sqlx::Sqlite);
super::workbench::workbench_impl!(SqliteStorage);
super::enroll::enroll_impl!(SqliteStorage, sqlite);
super::people::people_impl!(SqliteStorage, sqlite);
super::blobs::blobs_impl!(SqliteStorage, sqlite);

impl Storage for SqliteStorage {
    fn load_many<'a>(
        &'a self,
        docs: &'a [DocumentId],
    ) -> BoxFuture<'a, Vec<Option<StoredDocument>>> {
        Box::pin(async move { super::load_many_impl!(self, docs, super::query::anonymous_rows) })
    }

    fn read(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>> {
        Box::pin(self.read_chunks(doc))
    }

    fn forget(&self, doc: DocumentId) {
        self.held.forget(doc);
    }

    fn catch_up(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>> {
        Box::pin(async move {
            let chunks: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT id, data FROM chunks WHERE document_id = ? AND id > ? ORDER BY id",
            )
            .bind(doc.to_string())
            .bind(self.held.get(doc))
            .fetch_all(&self.pool)
            .await?;
            if chunks.is_empty() {
                return Ok(None);
            }
            let stored = stored_document(chunks, Vec::new());
            self.held.loaded(doc, stored.last_chunk);
            Ok(Some(stored))
        })
    }

    /// One SQLite file is one process's: nobody else to hear from.
    fn follow(&self) -> Option<tokio::sync::mpsc::Receiver<Elsewhere>> {
        None
    }

    fn tell(&self, _words: Vec<String>) -> BoxFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn write<'a>(&'a self, batch: &'a [Write]) -> BoxFuture<'a, Written> {
        Box::pin(async move {
            let now = now_millis();
            // Another process on the same file may commit between a deferred transaction's
            // first read and its first write; taking the write lock first rules that out.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let mut written = Written::default();
            // What this process will hold once the transaction commits.
            let mut advanced: HashMap<DocumentId, i64> = HashMap::new();
            // Appends are stored a run at a time, in a few statements; a rebuild or a
            // compaction ends a run, since it must see the run's chunks.
            let mut run: Vec<Append> = Vec::new();
            for w in batch {
                match w {
                    Write::Append {
                        doc,
                        bytes,
                        projection,
                    } => run.push((*doc, bytes, projection)),
                    Write::Project {
                        doc,
                        source,
                        projection,
                    } => {
                        self.append_run(&mut tx, &mut run, &mut advanced, &mut written, now)
                            .await?;
                        let rows = Rows::new(*doc, *source, projection);
                        rows::write(&mut tx, &[rows]).await?;
                    }
                    Write::Compact {
                        doc,
                        snapshot,
                        covers,
                    } => {
                        self.append_run(&mut tx, &mut run, &mut advanced, &mut written, now)
                            .await?;
                        let id = doc.to_string();
                        let rows: Vec<(i64, Vec<u8>)> =
                            sqlx::query_as("SELECT id, data FROM chunks WHERE document_id = ?")
                                .bind(&id)
                                .fetch_all(&mut *tx)
                                .await?;
                        let mut kept = 0;
                        for (row, data) in &rows {
                            if !covered(data, covers) {
                                kept += 1;
                                continue;
                            }
                            sqlx::query("DELETE FROM chunks WHERE id = ?")
                                .bind(row)
                                .execute(&mut *tx)
                                .await?;
                        }
                        let (chunk,): (i64,) = sqlx::query_as(
                            "INSERT INTO chunks (document_id, kind, data, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                        )
                        .bind(&id)
                        .bind(CHUNK_SNAPSHOT)
                        .bind(snapshot.as_slice())
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                        // Every stored row was in the snapshot: this process holds it all.
                        if kept == 0 {
                            advanced.insert(*doc, chunk);
                        }
                    }
                    // Together at the end, many rows per statement.
                    Write::Audit(_) | Write::BindActors { .. } => {}
                    // Together at the end, many rows per statement.
                    Write::SyncState { .. } => {}
                }
            }
            self.append_run(&mut tx, &mut run, &mut advanced, &mut written, now)
                .await?;
            write_identity(&mut tx, batch).await?;
            write_sync_states(&mut tx, batch).await?;
            tx.commit().await?;
            self.held.advance(advanced);
            Ok(written)
        })
    }

    fn meta<'a>(&'a self, key: &'a str, init: &'a str) -> BoxFuture<'a, String> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO server_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(init)
            .execute(&self.pool)
            .await?;
            let (value,): (String,) = sqlx::query_as("SELECT value FROM server_meta WHERE key = ?")
                .bind(key)
                .fetch_one(&self.pool)
                .await?;
            Ok(value)
        })
    }

    fn documents(&self) -> BoxFuture<'_, Vec<DocumentId>> {
        Box::pin(async move {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT DISTINCT document_id FROM chunks ORDER BY document_id")
                    .fetch_all(&self.pool)
                    .await?;
            Ok(parse_document_ids(rows.into_iter().map(|r| r.0).collect()))
        })
    }

    fn projection_rows(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let rows: Vec<(String,)> = sqlx::query_as(projection_rows_sql())
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }
    fn pool_stats(&self) -> super::PoolStats {
        super::PoolStats::of(&self.pool)
    }
}
