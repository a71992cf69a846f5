//! Who should have which documents: every user with their areas, reassigning a user's areas,
//! and the documents an area scope holds. Feeds each user's index document and the push of
//! new documents to their devices (`crate::caseload`).
//!
//! The SQL is the same on both backends; [`caseload_impl`] instantiates [`Caseload`] for each.

use fieldsync_core::schema::{DocKind, RegionCode};

use super::BoxFuture;
use super::directory::User;

/// A document's place, as its query row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub document_id: String,
    pub kind: DocKind,
    pub area: String,
}

pub trait Caseload {
    /// Every enabled user.
    fn users(&self) -> BoxFuture<'_, Vec<User>>;
    /// Every enabled user with a device that is not revoked: the users whose index documents
    /// are kept.
    fn device_holders(&self) -> BoxFuture<'_, Vec<User>>;
    /// Gives a user new area scopes; their devices are cut off and reconnect under the new
    /// scopes (a `user-areas-changed` security event). `false` if there is no enabled user.
    fn set_areas<'a>(&'a self, user_id: &'a str, areas: &'a [RegionCode]) -> BoxFuture<'a, bool>;
    /// The documents of these kinds whose area lies in one of `areas`.
    fn placed_in<'a>(
        &'a self,
        areas: &'a [RegionCode],
        kinds: &'a [DocKind],
    ) -> BoxFuture<'a, Vec<Placed>>;
}

/// Implements [`Caseload`] for a backend type with a `pool` field.
macro_rules! caseload_impl {
    ($storage:ty) => {
        impl $crate::storage::caseload::Caseload for $storage {
            fn users(
                &self,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::directory::User>> {
                Box::pin(async move {
                    let rows: Vec<(String, String, String, String, Option<i64>)> = sqlx::query_as(
                        "SELECT id, name, role, areas, disabled_at FROM users \
                         WHERE disabled_at IS NULL ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map($crate::storage::directory::user_from_row)
                        .collect()
                })
            }

            fn device_holders(
                &self,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::directory::User>> {
                Box::pin(async move {
                    let rows: Vec<(String, String, String, String, Option<i64>)> = sqlx::query_as(
                        "SELECT id, name, role, areas, disabled_at FROM users u \
                         WHERE disabled_at IS NULL AND EXISTS (SELECT 1 FROM devices d \
                         WHERE d.user_id = u.id AND d.revoked_at IS NULL) ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map($crate::storage::directory::user_from_row)
                        .collect()
                })
            }

            fn set_areas<'a>(
                &'a self,
                user_id: &'a str,
                areas: &'a [fieldsync_core::schema::RegionCode],
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let now = $crate::storage::now_millis();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE users SET areas = $1 WHERE id = $2 AND disabled_at IS NULL",
                    )
                    .bind($crate::storage::directory::join_areas(areas))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                    let found = done.rows_affected() == 1;
                    if found {
                        sqlx::query(
                            "INSERT INTO security_events (at, kind, subject) \
                             VALUES ($1, 'user-areas-changed', $2)",
                        )
                        .bind(now)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(found)
                })
            }

            fn placed_in<'a>(
                &'a self,
                areas: &'a [fieldsync_core::schema::RegionCode],
                kinds: &'a [fieldsync_core::schema::DocKind],
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::caseload::Placed>> {
                use fieldsync_core::schema::DocKind;
                Box::pin(async move {
                    if kinds.is_empty() {
                        return Ok(Vec::new());
                    }
                    // One statement for every kind: it runs at each phone's first connection.
                    let mut sql = $crate::storage::query::Sql::default();
                    for (i, kind) in kinds.iter().enumerate() {
                        let table = match kind {
                            DocKind::Visit => "visits",
                            DocKind::Referral => "referrals",
                            DocKind::Outreach => "outreach",
                        };
                        if i > 0 {
                            sql.push(" UNION ALL ");
                        }
                        sql.push(&format!(
                            "SELECT document_id, area, {i} FROM {table} WHERE "
                        ))
                        .in_scope_indexed("area", areas);
                    }
                    let rows: Vec<(String, String, i32)> = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text.clone())),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    let out = rows
                        .into_iter()
                        .filter_map(|(document_id, area, i)| {
                            let kind = *kinds.get(usize::try_from(i).ok()?)?;
                            Some($crate::storage::caseload::Placed {
                                document_id,
                                kind,
                                area,
                            })
                        })
                        .collect();
                    Ok(out)
                })
            }
        }
    };
}

pub(super) use caseload_impl;
