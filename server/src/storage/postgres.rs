//! PostgreSQL, for deployments that outgrow one machine: the same model as SQLite, with
//! its own migrations and SQL.

use fieldsync_protocol::DocumentId;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{
    BoxFuture, CHUNK_CHANGES, CHUNK_SNAPSHOT, Storage, StorageResult, StoredDocument, Write,
    parse_document_ids, projection_rows_sql, stored_document,
};

#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> StorageResult<Self> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

super::projection::projection_writer!(write_projection, sqlx::PgConnection);
super::directory::identity_writer!(write_identity, sqlx::PgConnection);

/// The batch's sync states, the newest per (document, storage), 100 rows per statement.
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
    for chunk in rows.chunks(100) {
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
super::export::export_impl!(PostgresStorage);
super::activity::activity_impl!(PostgresStorage, sqlx::Postgres);
super::enroll::enroll_impl!(PostgresStorage, postgres);

impl Storage for PostgresStorage {
    fn load(&self, doc: DocumentId) -> BoxFuture<'_, Option<StoredDocument>> {
        Box::pin(async move {
            let id = doc.to_string();
            let chunks: Vec<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT id, data FROM chunks WHERE document_id = $1 ORDER BY id")
                    .bind(&id)
                    .fetch_all(&self.pool)
                    .await?;
            if chunks.is_empty() {
                return Ok(None);
            }
            let states: Vec<(String, Vec<u8>)> =
                sqlx::query_as("SELECT storage_id, state FROM sync_states WHERE document_id = $1")
                    .bind(&id)
                    .fetch_all(&self.pool)
                    .await?;
            Ok(Some(stored_document(chunks, states)))
        })
    }

    fn write<'a>(&'a self, batch: &'a [Write]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for w in batch {
                match w {
                    Write::Append {
                        doc,
                        bytes,
                        projection,
                    } => {
                        let id = doc.to_string();
                        let (chunk,): (i64,) = sqlx::query_as(
                            "INSERT INTO chunks (document_id, kind, data) VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(&id)
                        .bind(CHUNK_CHANGES)
                        .bind(bytes.as_slice())
                        .fetch_one(&mut *tx)
                        .await?;
                        write_projection(&mut tx, &id, chunk, projection).await?;
                    }
                    Write::Project {
                        doc,
                        source,
                        projection,
                    } => {
                        write_projection(&mut tx, &doc.to_string(), *source, projection).await?;
                    }
                    Write::Compact { doc, snapshot } => {
                        let id = doc.to_string();
                        sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(
                            "INSERT INTO chunks (document_id, kind, data) VALUES ($1, $2, $3)",
                        )
                        .bind(&id)
                        .bind(CHUNK_SNAPSHOT)
                        .bind(snapshot.as_slice())
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Together at the end, many rows per statement.
                    Write::Audit(_) | Write::BindActors { .. } => {}
                    // Together at the end, many rows per statement.
                    Write::SyncState { .. } => {}
                }
            }
            write_identity(&mut tx, batch).await?;
            write_sync_states(&mut tx, batch).await?;
            tx.commit().await?;
            Ok(())
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
}
