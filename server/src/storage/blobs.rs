//! Attachments: blobs named by their SHA-256, stored once in chunks, and the resumable uploads
//! (tus, `crate::files`) that bring them (`migrations/*/0007_attachments.sql`).
//!
//! Everything that several processes sharing one PostgreSQL database must agree on is in the
//! database, so an upload may continue on another process:
//! - an upload's `stored` offset counts only chunks committed with it; chunks at or past it
//!   are not (yet) part of the upload and are deleted when the next PATCH claims the upload;
//! - a PATCH writes only while it is the upload's `writer`: a later PATCH (a client resuming
//!   after a cut the server has not noticed yet) takes the upload over, and the earlier one's
//!   next write finds it lost and stops, in the same transaction that would have stored it;
//! - a finished upload's chunks become the blob's by naming them (`blobs.content`), in one
//!   transaction with marking the upload finished; when the blob was already stored (two
//!   phones sent the same photo) the later copy's chunks are deleted instead.
//!
//! The SQL is the same on both backends; the functions are instantiated per backend by
//! [`backend_fns`], and [`blobs_impl`] forwards a backend's pool to them.

use fieldsync_core::schema::DocKind;
use fieldsync_protocol::BlobHash;

use super::BoxFuture;
use super::caseload::Placed;

/// A blob as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub sha256: BlobHash,
    pub size: u64,
    pub mime: String,
    /// Whose chunks hold its bytes ([`Blobs::chunk`]).
    pub content: String,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    pub sha256: BlobHash,
    pub mime: String,
    pub length: u64,
    /// Bytes durably stored.
    pub stored: u64,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished: bool,
    /// A PATCH is writing it now (it has not released it yet).
    pub writing: bool,
}

/// What a PATCH found when it asked to write at an offset ([`Blobs::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It is now the upload's writer.
    Claimed,
    /// The offset is not the stored one (which this is).
    Conflict { stored: u64 },
    /// Finished already.
    Finished,
    /// No such upload (never made, terminated or expired).
    Gone,
}

/// How an upload ended ([`Blobs::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Its bytes are now the blob's.
    Stored,
    /// The blob was stored already; this copy was dropped.
    Duplicate,
    /// Another PATCH took the upload over, or it expired meanwhile.
    Lost,
}

/// Blobs, uploads, the documents that reference blobs, and thumbnails.
pub trait Blobs {
    /// The stored blob of this hash.
    fn blob(&self, sha256: BlobHash) -> BoxFuture<'_, Option<Blob>>;
    /// Records a new upload; with `finished` (the blob is stored already) it is complete from
    /// the start and holds no chunk.
    fn create_upload<'a>(&'a self, upload: &'a Upload) -> BoxFuture<'a, ()>;
    fn upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Upload>>;
    /// Makes `writer` the upload's writer if `offset` is its stored offset and it is neither
    /// finished nor expired at `now`, and deletes its chunks past that offset. Writers are
    /// [`writer_token`]s: a claim never takes the upload from a writer whose request came
    /// later (a PATCH whose connection was cut before it claimed must not overtake the one
    /// that resumes it), unless that writer claimed more than [`STALE_WRITER_MS`] ago by its
    /// token (a process that died holding it, with a clock ahead).
    fn claim<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        writer: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Claim>;
    /// Stores a chunk at `start` while `writer` is the upload's writer; with `durable` the
    /// stored offset moves past it in the same transaction (otherwise it waits for
    /// [`Blobs::advance`]). `false` (and nothing stored) when the writer lost the upload.
    fn put_chunk<'a>(
        &'a self,
        id: &'a str,
        writer: &'a str,
        start: u64,
        data: &'a [u8],
        durable: bool,
    ) -> BoxFuture<'a, bool>;
    /// The PATCH `writer` is done with the upload (ended, cut or refused): a client asking the
    /// offset no longer waits for it.
    fn release<'a>(&'a self, id: &'a str, writer: &'a str) -> BoxFuture<'a, ()>;
    /// Sets the stored offset to `stored` (a PATCH whose checksum matched); `false` when the
    /// writer lost the upload.
    fn advance<'a>(&'a self, id: &'a str, writer: &'a str, stored: u64) -> BoxFuture<'a, bool>;
    /// The chunk of `content` that starts at or after `from` and before `end`: its start and
    /// bytes.
    fn chunk<'a>(
        &'a self,
        content: &'a str,
        from: u64,
        end: u64,
    ) -> BoxFuture<'a, Option<(u64, Vec<u8>)>>;
    /// Makes a complete, verified upload's bytes the blob's, or drops them if the blob exists.
    fn finish<'a>(&'a self, id: &'a str, writer: &'a str, now: i64) -> BoxFuture<'a, Finish>;
    /// Deletes an upload and the chunks that are its own (not a finished blob's); `false`
    /// when there was none.
    fn delete_upload<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
    /// Deletes every upload that expired before `now`, with its own chunks, and chunks that
    /// belong to nothing; how many uploads went.
    fn expire_uploads(&self, now: i64) -> BoxFuture<'_, u64>;
    /// The documents (with their query rows' type and area) whose attachments reference the
    /// blob.
    fn referencing(&self, sha256: BlobHash) -> BoxFuture<'_, Vec<Placed>>;
    fn thumbnail(&self, sha256: BlobHash) -> BoxFuture<'_, Option<Vec<u8>>>;
    fn put_thumbnail<'a>(&'a self, sha256: BlobHash, data: &'a [u8], now: i64)
    -> BoxFuture<'a, ()>;
}

/// After this long a writer's claim no longer holds off a claim of an earlier request.
pub const STALE_WRITER_MS: i64 = 120_000;

/// The token of a PATCH that arrived at `arrived` (ms since the epoch): 40 digits, the time
/// first, so that tokens compare as their requests' arrival, in any collation.
pub fn writer_token(arrived: i64) -> String {
    format!("{:020}{:020}", arrived.max(0), rand::random::<u64>())
}

/// Rows of `uploads` as read.
type UploadRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    bool,
);

const UPLOAD_COLUMNS: &str = "id, user_id, device_id, sha256, mime, length, stored, created_at, \
                              expires_at, finished_at, writer IS NOT NULL";

fn upload_of(row: UploadRow) -> Option<Upload> {
    let (
        id,
        user_id,
        device_id,
        sha,
        mime,
        length,
        stored,
        created_at,
        expires_at,
        finished,
        writing,
    ) = row;
    Some(Upload {
        id,
        user_id,
        device_id,
        sha256: BlobHash::parse(&sha)?,
        mime,
        length: u64::try_from(length).ok()?,
        stored: u64::try_from(stored).ok()?,
        created_at,
        expires_at,
        finished: finished.is_some(),
        writing,
    })
}

fn kind_of(table: &str) -> Option<DocKind> {
    match table {
        "visit" => Some(DocKind::Visit),
        "referral" => Some(DocKind::Referral),
        _ => None,
    }
}

/// Offsets and lengths are at most the configured maximum, far below `i64::MAX`.
fn db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

macro_rules! backend_fns {
    ($name:ident, $pool:ty, $begin:literal) => {
        pub(super) mod $name {
            use fieldsync_protocol::BlobHash;

            use super::super::StorageResult;
            use super::super::caseload::Placed;
            use super::{
                Blob, Claim, Finish, UPLOAD_COLUMNS, Upload, UploadRow, db, kind_of, upload_of,
            };

            pub async fn blob(pool: &$pool, sha256: BlobHash) -> StorageResult<Option<Blob>> {
                let row: Option<(i64, String, String)> =
                    sqlx::query_as("SELECT size, mime, content FROM blobs WHERE sha256 = $1")
                        .bind(sha256.to_string())
                        .fetch_optional(pool)
                        .await?;
                Ok(row.map(|(size, mime, content)| Blob {
                    sha256,
                    size: u64::try_from(size).unwrap_or(0),
                    mime,
                    content,
                }))
            }

            pub async fn create_upload(pool: &$pool, u: &Upload) -> StorageResult<()> {
                sqlx::query(
                    "INSERT INTO uploads (id, user_id, device_id, sha256, mime, length, stored, \
                     created_at, expires_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&u.id)
                .bind(&u.user_id)
                .bind(&u.device_id)
                .bind(u.sha256.to_string())
                .bind(&u.mime)
                .bind(db(u.length))
                .bind(db(u.stored))
                .bind(u.created_at)
                .bind(u.expires_at)
                .bind(u.finished.then_some(u.created_at))
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn upload(pool: &$pool, id: &str) -> StorageResult<Option<Upload>> {
                let row: Option<UploadRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(pool)
                .await?;
                Ok(row.and_then(upload_of))
            }

            pub async fn claim(
                pool: &$pool,
                id: &str,
                offset: u64,
                writer: &str,
                now: i64,
            ) -> StorageResult<Claim> {
                let mut tx = pool.begin_with($begin).await?;
                let taken = sqlx::query(
                    "UPDATE uploads SET writer = $2 WHERE id = $1 AND stored = $3 \
                     AND finished_at IS NULL AND expires_at > $4 \
                     AND (writer IS NULL OR writer < $2 OR writer < $5)",
                )
                .bind(id)
                .bind(writer)
                .bind(db(offset))
                .bind(now)
                .bind(format!("{:020}", now.saturating_sub(super::STALE_WRITER_MS).max(0)))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 1 {
                    sqlx::query("DELETE FROM blob_chunks WHERE content = $1 AND start_at >= $2")
                        .bind(id)
                        .bind(db(offset))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(Claim::Claimed);
                }
                let row: Option<(i64, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT stored, finished_at, expires_at FROM uploads WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(match row {
                    None => Claim::Gone,
                    Some((_, Some(_), _)) => Claim::Finished,
                    Some((_, None, expires)) if expires <= now => Claim::Gone,
                    Some((stored, None, _)) => Claim::Conflict {
                        stored: u64::try_from(stored).unwrap_or(0),
                    },
                })
            }

            pub async fn put_chunk(
                pool: &$pool,
                id: &str,
                writer: &str,
                start: u64,
                data: &[u8],
                durable: bool,
            ) -> StorageResult<bool> {
                let end = db(start + data.len() as u64);
                let mut tx = pool.begin_with($begin).await?;
                // First the upload's row: it locks out a PATCH taking over meanwhile.
                let still = sqlx::query(
                    "UPDATE uploads SET stored = CASE WHEN $3 THEN $4 ELSE stored END \
                     WHERE id = $1 AND writer = $2 AND finished_at IS NULL",
                )
                .bind(id)
                .bind(writer)
                .bind(durable)
                .bind(end)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if still != 1 {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO blob_chunks (content, start_at, data) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(db(start))
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            pub async fn release(pool: &$pool, id: &str, writer: &str) -> StorageResult<()> {
                sqlx::query("UPDATE uploads SET writer = NULL WHERE id = $1 AND writer = $2")
                    .bind(id)
                    .bind(writer)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            pub async fn advance(
                pool: &$pool,
                id: &str,
                writer: &str,
                stored: u64,
            ) -> StorageResult<bool> {
                let done = sqlx::query(
                    "UPDATE uploads SET stored = $3 WHERE id = $1 AND writer = $2 \
                     AND finished_at IS NULL",
                )
                .bind(id)
                .bind(writer)
                .bind(db(stored))
                .execute(pool)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            pub async fn chunk(
                pool: &$pool,
                content: &str,
                from: u64,
                end: u64,
            ) -> StorageResult<Option<(u64, Vec<u8>)>> {
                let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT start_at, data FROM blob_chunks \
                     WHERE content = $1 AND start_at >= $2 AND start_at < $3 \
                     ORDER BY start_at LIMIT 1",
                )
                .bind(content)
                .bind(db(from))
                .bind(db(end))
                .fetch_optional(pool)
                .await?;
                Ok(row.map(|(start, data)| (u64::try_from(start).unwrap_or(0), data)))
            }

            pub async fn finish(
                pool: &$pool,
                id: &str,
                writer: &str,
                now: i64,
            ) -> StorageResult<Finish> {
                let mut tx = pool.begin_with($begin).await?;
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "UPDATE uploads SET finished_at = $3, writer = NULL \
                     WHERE id = $1 AND writer = $2 AND finished_at IS NULL AND stored = length \
                     RETURNING sha256, mime, length",
                )
                .bind(id)
                .bind(writer)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((sha256, mime, length)) = row else {
                    return Ok(Finish::Lost);
                };
                let added = sqlx::query(
                    "INSERT INTO blobs (sha256, size, mime, content, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(&sha256)
                .bind(length)
                .bind(&mime)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added == 0 {
                    sqlx::query("DELETE FROM blob_chunks WHERE content = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(if added == 1 {
                    Finish::Stored
                } else {
                    Finish::Duplicate
                })
            }

            pub async fn delete_upload(pool: &$pool, id: &str) -> StorageResult<bool> {
                let mut tx = pool.begin_with($begin).await?;
                let gone = sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "DELETE FROM blob_chunks WHERE content = $1 \
                     AND NOT EXISTS (SELECT 1 FROM blobs WHERE blobs.content = $1)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(gone == 1)
            }

            pub async fn expire_uploads(pool: &$pool, now: i64) -> StorageResult<u64> {
                // The uploads first: a PATCH still writing one of them waits for this
                // transaction (the row is locked) and then finds it gone, so no chunk of an
                // expired upload is left behind. Chunks that belong to nothing (a crash of
                // an older version, a lost race) go too.
                let mut tx = pool.begin_with($begin).await?;
                let gone = sqlx::query("DELETE FROM uploads WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "DELETE FROM blob_chunks WHERE \
                     NOT EXISTS (SELECT 1 FROM uploads WHERE uploads.id = blob_chunks.content) \
                     AND NOT EXISTS (SELECT 1 FROM blobs WHERE blobs.content = blob_chunks.content)",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(gone)
            }

            pub async fn referencing(
                pool: &$pool,
                sha256: BlobHash,
            ) -> StorageResult<Vec<Placed>> {
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT r.document_id, 'visit', v.area FROM attachment_refs r \
                     JOIN visits v ON v.document_id = r.document_id WHERE r.sha256 = $1 \
                     UNION ALL \
                     SELECT r.document_id, 'referral', f.area FROM attachment_refs r \
                     JOIN referrals f ON f.document_id = r.document_id WHERE r.sha256 = $1 \
                     ORDER BY 1",
                )
                .bind(sha256.to_string())
                .fetch_all(pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(document_id, kind, area)| {
                        Some(Placed {
                            document_id,
                            kind: kind_of(&kind)?,
                            area,
                        })
                    })
                    .collect())
            }

            pub async fn thumbnail(
                pool: &$pool,
                sha256: BlobHash,
            ) -> StorageResult<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>,)> =
                    sqlx::query_as("SELECT data FROM thumbnails WHERE sha256 = $1")
                        .bind(sha256.to_string())
                        .fetch_optional(pool)
                        .await?;
                Ok(row.map(|r| r.0))
            }

            pub async fn put_thumbnail(
                pool: &$pool,
                sha256: BlobHash,
                data: &[u8],
                now: i64,
            ) -> StorageResult<()> {
                sqlx::query(
                    "INSERT INTO thumbnails (sha256, data, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(sha256.to_string())
                .bind(data)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            }
        }
    };
}

// SQLite: take the write lock at the start, so that two writers never both read first and
// then fail to upgrade.
backend_fns!(sqlite, sqlx::SqlitePool, "BEGIN IMMEDIATE");
backend_fns!(postgres, sqlx::PgPool, "BEGIN");

/// Implements [`Blobs`] for a backend type with a `pool` field by calling that backend's
/// functions above (`sqlite` or `postgres`).
macro_rules! blobs_impl {
    ($storage:ty, $backend:ident) => {
        impl $crate::storage::blobs::Blobs for $storage {
            fn blob(
                &self,
                sha256: fieldsync_protocol::BlobHash,
            ) -> $crate::storage::BoxFuture<'_, Option<$crate::storage::blobs::Blob>> {
                Box::pin($crate::storage::blobs::$backend::blob(&self.pool, sha256))
            }
            fn create_upload<'a>(
                &'a self,
                upload: &'a $crate::storage::blobs::Upload,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin($crate::storage::blobs::$backend::create_upload(
                    &self.pool, upload,
                ))
            }
            fn upload<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::blobs::Upload>> {
                Box::pin($crate::storage::blobs::$backend::upload(&self.pool, id))
            }
            fn claim<'a>(
                &'a self,
                id: &'a str,
                offset: u64,
                writer: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::blobs::Claim> {
                Box::pin($crate::storage::blobs::$backend::claim(
                    &self.pool, id, offset, writer, now,
                ))
            }
            fn put_chunk<'a>(
                &'a self,
                id: &'a str,
                writer: &'a str,
                start: u64,
                data: &'a [u8],
                durable: bool,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin($crate::storage::blobs::$backend::put_chunk(
                    &self.pool, id, writer, start, data, durable,
                ))
            }
            fn release<'a>(
                &'a self,
                id: &'a str,
                writer: &'a str,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin($crate::storage::blobs::$backend::release(
                    &self.pool, id, writer,
                ))
            }
            fn advance<'a>(
                &'a self,
                id: &'a str,
                writer: &'a str,
                stored: u64,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin($crate::storage::blobs::$backend::advance(
                    &self.pool, id, writer, stored,
                ))
            }
            fn chunk<'a>(
                &'a self,
                content: &'a str,
                from: u64,
                end: u64,
            ) -> $crate::storage::BoxFuture<'a, Option<(u64, Vec<u8>)>> {
                Box::pin($crate::storage::blobs::$backend::chunk(
                    &self.pool, content, from, end,
                ))
            }
            fn finish<'a>(
                &'a self,
                id: &'a str,
                writer: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::blobs::Finish> {
                Box::pin($crate::storage::blobs::$backend::finish(
                    &self.pool, id, writer, now,
                ))
            }
            fn delete_upload<'a>(&'a self, id: &'a str) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin($crate::storage::blobs::$backend::delete_upload(
                    &self.pool, id,
                ))
            }
            fn expire_uploads(&self, now: i64) -> $crate::storage::BoxFuture<'_, u64> {
                Box::pin($crate::storage::blobs::$backend::expire_uploads(
                    &self.pool, now,
                ))
            }
            fn referencing(
                &self,
                sha256: fieldsync_protocol::BlobHash,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::caseload::Placed>> {
                Box::pin($crate::storage::blobs::$backend::referencing(
                    &self.pool, sha256,
                ))
            }
            fn thumbnail(
                &self,
                sha256: fieldsync_protocol::BlobHash,
            ) -> $crate::storage::BoxFuture<'_, Option<Vec<u8>>> {
                Box::pin($crate::storage::blobs::$backend::thumbnail(
                    &self.pool, sha256,
                ))
            }
            fn put_thumbnail<'a>(
                &'a self,
                sha256: fieldsync_protocol::BlobHash,
                data: &'a [u8],
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin($crate::storage::blobs::$backend::put_thumbnail(
                    &self.pool, sha256, data, now,
                ))
            }
        }
    };
}
pub(super) use blobs_impl;
