//! The `areas` table: administrative area names by code (`crate::areas`). The SQL is the same on
//! both backends; [`areas_impl`] instantiates [`AreaTable`] for each.

use super::BoxFuture;

/// One area: its Kemendagri code and name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AreaRow {
    pub code: String,
    pub name: String,
}

/// Which state of the table a process has read: its row count and newest write. Any import
/// changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AreaVersion {
    pub rows: i64,
    pub updated_at: i64,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AreaImport {
    /// Areas not known before.
    pub added: u64,
    /// Known areas whose name changed.
    pub renamed: u64,
    /// Rows in the table afterwards (areas no longer in the data are kept: documents may
    /// still name them).
    pub total: u64,
}

pub trait AreaTable {
    /// Adds or renames every area given, in one transaction, at time `now`.
    fn import_areas<'a>(&'a self, rows: &'a [AreaRow], now: i64) -> BoxFuture<'a, AreaImport>;
    /// Every area.
    fn area_rows(&self) -> BoxFuture<'_, Vec<AreaRow>>;
    fn areas_version(&self) -> BoxFuture<'_, AreaVersion>;
}

/// Rows per INSERT statement: 3 parameters each, well under both backends' limits.
pub(super) const BATCH: usize = 1000;

/// `INSERT … VALUES ($1, $2, $3), …` for `n` rows, adding or renaming.
pub(super) fn upsert_sql(n: usize) -> String {
    format!(
        "INSERT INTO areas (code, name, updated_at) VALUES {} ON CONFLICT (code) DO UPDATE \
         SET name = excluded.name, updated_at = excluded.updated_at \
         WHERE areas.name <> excluded.name",
        super::query::values_rows(n, 3)
    )
}

/// Implements [`AreaTable`] for a backend type with a `pool` field.
macro_rules! areas_impl {
    ($storage:ty) => {
        impl $crate::storage::areas::AreaTable for $storage {
            fn import_areas<'a>(
                &'a self,
                rows: &'a [$crate::storage::areas::AreaRow],
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::areas::AreaImport> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    let (before,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM areas")
                        .fetch_one(&mut *tx)
                        .await?;
                    let mut changed = 0u64;
                    for batch in rows.chunks($crate::storage::areas::BATCH) {
                        let sql = $crate::storage::areas::upsert_sql(batch.len());
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for row in batch {
                            query = query.bind(&row.code).bind(&row.name).bind(now);
                        }
                        changed += query.execute(&mut *tx).await?.rows_affected();
                    }
                    let (after,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM areas")
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    let added = u64::try_from(after - before).unwrap_or(0);
                    Ok($crate::storage::areas::AreaImport {
                        added,
                        renamed: changed.saturating_sub(added),
                        total: u64::try_from(after).unwrap_or(0),
                    })
                })
            }

            fn area_rows(
                &self,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::areas::AreaRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as("SELECT code, name FROM areas")
                        .fetch_all(&self.pool)
                        .await?)
                })
            }

            fn areas_version(
                &self,
            ) -> $crate::storage::BoxFuture<'_, $crate::storage::areas::AreaVersion> {
                Box::pin(async move {
                    let (rows, updated_at): (i64, Option<i64>) =
                        sqlx::query_as("SELECT COUNT(*), MAX(updated_at) FROM areas")
                            .fetch_one(&self.pool)
                            .await?;
                    Ok($crate::storage::areas::AreaVersion {
                        rows,
                        updated_at: updated_at.unwrap_or(0),
                    })
                })
            }
        }
    };
}

pub(super) use areas_impl;
