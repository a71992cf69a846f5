//! `fieldsync backup --to FILE`: an online, consistent copy of a SQLite database.
//!
//! `VACUUM INTO` copies the database as of one read transaction, so a server may keep writing
//! meanwhile (WAL mode: readers and the writer do not block each other). The copy is then
//! fsynced (`VACUUM INTO` does not sync it) and checked with `PRAGMA integrity_check` before it
//! is called a backup. PostgreSQL is backed up with its own tools (`pg_dump -Fc`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// What a backup made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    /// Stored documents in the copy, caseload indexes included.
    pub documents: i64,
    #[serde(rename = "millis")]
    #[serde(serialize_with = "as_millis")]
    pub took: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Why there is no backup. Each says what to do, in one line.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "fieldsync backup copies SQLite only: back up PostgreSQL with pg_dump -Fc (see docs/operations.md)"
    )]
    Postgres,
    #[error("{0} exists: a backup never overwrites a file, choose a new name")]
    Exists(PathBuf),
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("cannot copy the database: {0}")]
    Copy(sqlx::Error),
    #[error("cannot make the copy durable: {0}")]
    Sync(std::io::Error),
    #[error(
        "the copy fails its integrity check ({0}): it was kept for inspection, do not restore it"
    )]
    Damaged(String),
}

/// Copies the SQLite database `url` names to `to`, which must not exist.
pub async fn backup(url: &str, to: &Path) -> Result<BackupReport, BackupError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(BackupError::Postgres);
    }
    let started = Instant::now();
    let source = sqlite_path(url);
    if !source.exists() {
        return Err(BackupError::NoDatabase(source));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let mut conn = connect(&source).await?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    copied.map_err(BackupError::Copy)?;

    sync(to).map_err(BackupError::Sync)?;

    let mut copy = connect(to).await?;
    let verdict: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut copy)
        .await
        .map_err(BackupError::Copy)?;
    if verdict.len() != 1 || verdict[0].0 != "ok" {
        let first = verdict.first().map(|r| r.0.clone()).unwrap_or_default();
        return Err(BackupError::Damaged(first));
    }
    let (documents,): (i64,) = sqlx::query_as("SELECT COUNT(DISTINCT document_id) FROM chunks")
        .fetch_one(&mut copy)
        .await
        .map_err(BackupError::Copy)?;
    let _ = copy.close().await;
    let bytes = std::fs::metadata(to).map_err(BackupError::Sync)?.len();
    Ok(BackupReport {
        file: to.to_owned(),
        bytes,
        documents,
        took: started.elapsed(),
    })
}

/// The file a `sqlite://` URL (or plain path) names, without query parameters.
fn sqlite_path(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

async fn connect(path: &Path) -> Result<SqliteConnection, BackupError> {
    SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(BackupError::Copy)?
        // A server's group commit holds the write lock briefly; never fail on it.
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(BackupError::Copy)
}

/// fsyncs the file and its directory: the copy, and its name, survive a power cut.
fn sync(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    #[cfg(unix)]
    if let Some(dir) = file.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
