//! PostgreSQL, for deployments that outgrow one machine: the same model as SQLite, with
//! its own migrations and SQL.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync_protocol::DocumentId;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::chunks::{DOCUMENT_LOCKS, Held, covered, lock_key};
use super::postgres_rows as rows;
use super::projection::{Append, Rows, holding, settle};
use super::{
    BoxFuture, CHUNK_SNAPSHOT, Elsewhere, Storage, StorageError, StorageResult, StoredDocument,
    Write, Written, parse_document_ids, projection_rows_sql, stored_document,
};

/// How long a start waits for PostgreSQL to answer before it says so and stops.
pub const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The channel on which every process announces the documents it committed changes of.
const CHANGES_CHANNEL: &str = "fieldsync_changes";
/// The channel on which processes tell each other what live views need ([`Storage::tell`]).
const LIVE_CHANNEL: &str = "fieldsync_live";
/// PostgreSQL refuses a notification payload of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
    held: Arc<Held>,
    /// This process, in its own notifications, so that it skips them.
    origin: Arc<str>,
}

impl PostgresStorage {
    /// Connects and applies pending migrations. Several processes may start at once on an
    /// empty database: sqlx's migrator holds a session advisory lock
    /// (`pg_advisory_lock`) while it migrates, so one migrates and the others wait, then find
    /// nothing left to do. Waits at most [`CONNECT_WITHIN`] for the server to answer.
    pub async fn connect(url: &str) -> StorageResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_WITHIN)
            .connect(url)
            .await
            .map_err(|e| {
                StorageError(
                    format!("no connection within {} s: {e}", CONNECT_WITHIN.as_secs()).into(),
                )
            })?;
        super::migrate::migrate_postgres(&pool).await?;
        Ok(Self {
            pool,
            held: Arc::default(),
            origin: uuid::Uuid::new_v4().simple().to_string().into(),
        })
    }

    /// Stores the appends of `run` (and empties it), noting what this process will hold and
    /// which documents lack another process's chunks.
    async fn append_run(
        &self,
        conn: &mut sqlx::PgConnection,
        run: &mut Vec<Append<'_>>,
        advanced: &mut HashMap<DocumentId, i64>,
        written: &mut Written,
    ) -> Result<(), sqlx::Error> {
        let stored = rows::append(conn, run, holding(advanced, &self.held)).await?;
        run.clear();
        settle(written, advanced, stored);
        Ok(())
    }

    /// A document's chunks and sync states, in one round trip: a storm loads tens of
    /// thousands of documents.
    async fn read_chunks(&self, doc: DocumentId) -> StorageResult<Option<StoredDocument>> {
        let rows: Vec<(Option<i64>, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT id, data, NULL AS storage_id FROM chunks WHERE document_id = $1 \
             UNION ALL SELECT NULL, state, storage_id FROM sync_states WHERE document_id = $1 \
             ORDER BY 1",
        )
        .bind(doc.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut chunks = Vec::new();
        let mut states = Vec::new();
        for (id, data, storage) in rows {
            match (id, storage) {
                (Some(id), _) => chunks.push((id, data)),
                (None, Some(storage)) => states.push((storage, data)),
                (None, None) => {}
            }
        }
        if chunks.is_empty() {
            return Ok(None);
        }
        Ok(Some(stored_document(chunks, states)))
    }
}

/// Tells the other processes which documents this batch added changes to: `origin`, then
/// document ids, separated by spaces, as many notifications as the payload limit needs.
/// PostgreSQL delivers them when (and only if) the transaction commits.
async fn notify_changes(
    conn: &mut sqlx::PgConnection,
    origin: &str,
    batch: &[Write],
) -> Result<(), sqlx::Error> {
    let mut docs: Vec<String> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Append { doc, .. } => Some(doc.to_string()),
            _ => None,
        })
        .collect();
    docs.sort_unstable();
    docs.dedup();
    for payload in payloads(origin, docs) {
        send_notification(&mut *conn, CHANGES_CHANNEL, &payload).await?;
    }
    Ok(())
}

/// `origin` and then `words`, separated by spaces, in as many payloads as the limit needs.
fn payloads(origin: &str, words: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all = Vec::new();
    let mut payload = String::new();
    for word in words {
        if !payload.is_empty() && payload.len() + 1 + word.len() > MAX_PAYLOAD {
            all.push(std::mem::take(&mut payload));
        }
        if payload.is_empty() {
            payload.push_str(origin);
        }
        payload.push(' ');
        payload.push_str(&word);
    }
    if !payload.is_empty() {
        all.push(payload);
    }
    all
}

async fn send_notification<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    channel: &str,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Listens on [`CHANGES_CHANNEL`] and [`LIVE_CHANNEL`] until `tx` is dropped, reconnecting after a lost
/// connection; reports [`Elsewhere::Missed`] whenever notifications may have been lost.
async fn listen(pool: PgPool, origin: Arc<str>, tx: tokio::sync::mpsc::Sender<Elsewhere>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot listen for other processes' changes: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = tx.closed() => return,
                }
            }
        };
        if let Err(e) = listener.listen_all([CHANGES_CHANNEL, LIVE_CHANNEL]).await {
            tracing::warn!("cannot listen for other processes' changes: {e}");
            continue;
        }
        // Whatever committed before the listener was up was not heard.
        if tx.send(Elsewhere::Missed).await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = tx.closed() => return,
            };
            let notification = match received {
                Ok(Some(n)) => n,
                // The connection was lost; notifications meanwhile are gone.
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("listening for other processes' changes: {e}");
                    break;
                }
            };
            let mut words = notification.payload().split(' ');
            if words.next() == Some(&*origin) {
                continue;
            }
            let heard = if notification.channel() == LIVE_CHANNEL {
                Elsewhere::Said(words.map(str::to_owned).collect())
            } else {
                let docs = parse_document_ids(words.map(str::to_owned).collect());
                if docs.is_empty() {
                    continue;
                }
                Elsewhere::Changed(docs)
            };
            if tx.send(heard).await.is_err() {
                return;
            }
        }
    }
}

/// Takes, in one order for every process (so no two batches deadlock), the advisory lock of
/// every document the batch touches, held until the transaction ends. Every insert of a
/// document's chunk is made under it, which is what makes a document's chunk ids commit in
/// increasing order (`super::chunks::Held`) and orders concurrent compactions, appends and
/// rebuilds of one document.
async fn lock_documents(conn: &mut sqlx::PgConnection, batch: &[Write]) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i32> = batch
        .iter()
        .filter_map(Write::document)
        .map(lock_key)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    // A function scan yields the array in order, and the locks are taken row by row.
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k")
        .bind(DOCUMENT_LOCKS)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

super::directory::identity_writer!(
    write_identity,
    sqlx::PgConnection,
    super::query::values_rows
);

/// The batch's sync states, the newest per (document, storage), many rows per statement
/// (`query::parts`).
async fn write_sync_states(
    conn: &mut sqlx::PgConnection,
    batch: &[Write],
) -> Result<(), sqlx::Error> {
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
        let mut sql =
            String::from("INSERT INTO sync_states (document_id, storage_id, state) VALUES ");
        sql.push_str(&super::query::values_rows(chunk.len(), 3));
        sql.push_str(" ON CONFLICT (document_id, storage_id) DO UPDATE SET state = excluded.state, updated_at = now()");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((doc, storage), state) in chunk {
            query = query
                .bind(doc.to_string())
                .bind(storage.as_str())
                .bind(state.as_slice());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

super::directory::directory_impl!(PostgresStorage);
super::web::web_impl!(PostgresStorage);
super::caseload::caseload_impl!(PostgresStorage);
super::review::review_impl!(PostgresStorage);
super::areas::areas_impl!(PostgresStorage);
super::beneficiaries::beneficiaries_impl!(PostgresStorage);
super::map::map_impl!(PostgresStorage);
super::export::export_impl!(PostgresStorage);
super::activity::activity_impl!(PostgresStorage, sqlx::Postgres);
super::workbench::workbench_impl!(PostgresStorage);
super::enroll::enroll_impl!(PostgresStorage, postgres);
super::people::people_impl!(PostgresStorage, postgres);
super::blobs::blobs_impl!(PostgresStorage, postgres);

impl Storage for PostgresStorage {
    fn load_many<'a>(
        &'a self,
        docs: &'a [DocumentId],
    ) -> BoxFuture<'a, Vec<Option<StoredDocument>>> {
        Box::pin(async move { super::load_many_impl!(self, docs, super::query::values_rows) })
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
                "SELECT id, data FROM chunks WHERE document_id = $1 AND id > $2 ORDER BY id",
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

    fn follow(&self) -> Option<tokio::sync::mpsc::Receiver<Elsewhere>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(listen(self.pool.clone(), self.origin.clone(), tx));
        Some(rx)
    }

    fn tell(&self, words: Vec<String>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for payload in payloads(&self.origin, words) {
                send_notification(&self.pool, LIVE_CHANNEL, &payload).await?;
            }
            Ok(())
        })
    }

    fn write<'a>(&'a self, batch: &'a [Write]) -> BoxFuture<'a, Written> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            lock_documents(&mut tx, batch).await?;
            let mut written = Written::default();
            // What this process will hold once the transaction commits.
            let mut advanced: HashMap<DocumentId, i64> = HashMap::new();
            // Appends are stored a run at a time, in a fixed number of statements; a
            // rebuild or a compaction ends a run, since it must see the run's chunks.
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
                        self.append_run(&mut tx, &mut run, &mut advanced, &mut written)
                            .await?;
                        let rows = Rows::new(*doc, *source, projection);
                        rows::write(&mut tx, &[rows]).await?;
                    }
                    Write::Compact {
                        doc,
                        snapshot,
                        covers,
                    } => {
                        self.append_run(&mut tx, &mut run, &mut advanced, &mut written)
                            .await?;
                        let id = doc.to_string();
                        let rows: Vec<(i64, Vec<u8>)> =
                            sqlx::query_as("SELECT id, data FROM chunks WHERE document_id = $1")
                                .bind(&id)
                                .fetch_all(&mut *tx)
                                .await?;
                        let (gone, kept): (Vec<_>, Vec<_>) =
                            rows.iter().partition(|(_, data)| covered(data, covers));
                        let gone: Vec<i64> = gone.into_iter().map(|(row, _)| *row).collect();
                        sqlx::query("DELETE FROM chunks WHERE id = ANY($1)")
                            .bind(&gone)
                            .execute(&mut *tx)
                            .await?;
                        let (chunk,): (i64,) = sqlx::query_as(
                            "INSERT INTO chunks (document_id, kind, data) VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(&id)
                        .bind(CHUNK_SNAPSHOT)
                        .bind(snapshot.as_slice())
                        .fetch_one(&mut *tx)
                        .await?;
                        // Every stored row was in the snapshot: this process holds it all.
                        if kept.is_empty() {
                            advanced.insert(*doc, chunk);
                        }
                    }
                    // Together at the end, many rows per statement.
                    Write::Audit(_) | Write::BindActors { .. } => {}
                    // Together at the end, many rows per statement.
                    Write::SyncState { .. } => {}
                }
            }
            self.append_run(&mut tx, &mut run, &mut advanced, &mut written)
                .await?;
            write_identity(&mut tx, batch).await?;
            write_sync_states(&mut tx, batch).await?;
            notify_changes(&mut tx, &self.origin, batch).await?;
            tx.commit().await?;
            self.held.advance(advanced);
            Ok(written)
        })
    }

    fn meta<'a>(&'a self, key: &'a str, init: &'a str) -> BoxFuture<'a, String> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO server_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(init)
            .execute(&self.pool)
            .await?;
            let (value,): (String,) =
                sqlx::query_as("SELECT value FROM server_meta WHERE key = $1")
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
