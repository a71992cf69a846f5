//! The database schema: which version this binary knows, applying its migrations when storage
//! opens, and refusing a database that a newer fieldsync already migrated (running an older
//! binary on it would misread tables it does not know, so it is refused before anything is
//! served).

use std::sync::LazyLock;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{PgPool, SqlitePool};

use super::{StorageError, StorageResult};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The database schema this binary migrates to: its highest migration number (both backends
/// number their migrations alike).
pub fn schema_version() -> i64 {
    SQLITE.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What `fieldsync --version` prints after the name: the release and the schema.
pub fn version_line() -> &'static str {
    static LINE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} (database schema {})",
            env!("CARGO_PKG_VERSION"),
            schema_version()
        )
    });
    LINE.as_str()
}

/// Applies the pending SQLite migrations; refuses a database of a newer schema.
pub async fn migrate_sqlite(pool: &SqlitePool) -> StorageResult<()> {
    match SQLITE.run(pool).await {
        Err(MigrateError::VersionMissing(_)) => {
            let (newest,): (i64,) = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await?;
            Err(newer_database(newest))
        }
        other => Ok(other?),
    }
}

/// Applies the pending PostgreSQL migrations; refuses a database of a newer schema.
pub async fn migrate_postgres(pool: &PgPool) -> StorageResult<()> {
    match POSTGRES.run(pool).await {
        Err(MigrateError::VersionMissing(_)) => {
            let (newest,): (i64,) = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await?;
            Err(newer_database(newest))
        }
        other => Ok(other?),
    }
}

/// sqlx reports a migration that was applied but that this binary does not have as
/// [`MigrateError::VersionMissing`]: the database was migrated by a newer fieldsync.
fn newer_database(schema: i64) -> StorageError {
    StorageError(
        format!(
            "this database was upgraded by a newer fieldsync (schema {schema}); this is version {} \
             with schema {}: run the newer version or restore a backup",
            env!("CARGO_PKG_VERSION"),
            schema_version()
        )
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_schema_version() {
        let postgres = POSTGRES.iter().map(|m| m.version).max();
        assert_eq!(postgres, Some(schema_version()));
    }
}
