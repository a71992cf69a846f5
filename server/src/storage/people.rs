//! What the administrator's pages read and change about people beyond the directory
//! (`directory.rs`): everyone with their last device connection, enabling a disabled user
//! again, and the audit lines about one beneficiary (`crate::web::admin`).
//!
//! The SQL is the same on both backends, written once as constants; [`people_impl`] forwards
//! a backend's pool to its functions below.

use super::BoxFuture;
use super::directory::User;

/// A user with when one of their devices last connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPerson {
    pub user: User,
    pub last_seen_at: Option<i64>,
}

/// One audit line about a beneficiary's documents, with who wrote it as the directory knows
/// them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeneficiaryAudit {
    /// The line's place in the log: pages continue below it.
    pub seq: i64,
    pub at: i64,
    pub device_id: String,
    pub user_id: String,
    /// Empty for a user the directory does not know (e.g. `cli`).
    pub user_name: String,
    pub user_role: String,
    pub document_id: String,
    /// `visit` or `referral`; empty for a line that is not about a document (an earlier
    /// question about the same beneficiary).
    pub kind: String,
    pub action: String,
}

/// Which audit lines about a beneficiary to return: newest first, below `before`.
#[derive(Debug, Clone)]
pub struct BeneficiaryQuery<'a> {
    /// The NIK, as the query tables hold it.
    pub nik: &'a str,
    /// The `document_id` under which questions about this NIK were audited (a keyed hash,
    /// `crate::admin::nik_query_key`): they are part of the answer.
    pub asked_as: &'a str,
    pub before: Option<i64>,
    pub limit: i64,
}

pub trait People {
    /// Every user, enabled or not, by name.
    fn people(&self) -> BoxFuture<'_, Vec<ListedPerson>>;
    /// Enables a disabled user. Their devices, web sessions and API tokens stay ended: the
    /// phones were told to delete their data, and a token from before must not come back to
    /// life. `false` if there is no disabled user with this id.
    fn enable_user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
    /// The audit lines about the documents whose beneficiary has this NIK, newest first.
    fn beneficiary_audit<'a>(
        &'a self,
        query: &'a BeneficiaryQuery<'a>,
    ) -> BoxFuture<'a, Vec<BeneficiaryAudit>>;
}

const PEOPLE: &str = "SELECT u.id, u.name, u.role, u.areas, u.disabled_at, MAX(d.last_seen_at) \
     FROM users u LEFT JOIN devices d ON d.user_id = u.id \
     GROUP BY u.id, u.name, u.role, u.areas, u.disabled_at ORDER BY u.name, u.id";
const ENABLE: &str =
    "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL";
const END_DEVICES: &str =
    "UPDATE devices SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
const END_SESSIONS: &str = "DELETE FROM web_sessions WHERE user_id = $1";
const END_API_TOKENS: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
/// The documents are found through the query tables' NIK indexes, the lines through the audit
/// log's document index.
const BENEFICIARY_AUDIT: &str = "SELECT a.seq, a.at, a.device_id, a.user_id, \
     COALESCE(u.name, ''), COALESCE(u.role, ''), a.document_id, \
     CASE WHEN EXISTS (SELECT 1 FROM visits v WHERE v.document_id = a.document_id) THEN 'visit' \
          WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.document_id = a.document_id) THEN 'referral' \
          ELSE '' END, \
     a.action \
     FROM audit_log a LEFT JOIN users u ON u.id = a.user_id \
     WHERE (a.document_id IN (SELECT document_id FROM visits WHERE nik = $1) \
         OR a.document_id IN (SELECT document_id FROM referrals WHERE nik = $1) \
         OR a.document_id = $2) \
     AND ($3 IS NULL OR a.seq < $3) \
     ORDER BY a.seq DESC LIMIT $4";

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn audit_line(row: AuditRow) -> BeneficiaryAudit {
    let (seq, at, device_id, user_id, user_name, user_role, document_id, kind, action) = row;
    BeneficiaryAudit {
        seq,
        at,
        device_id,
        user_id,
        user_name,
        user_role,
        document_id,
        kind,
        action,
    }
}

macro_rules! backend_fns {
    ($name:ident, $pool:ty) => {
        pub(super) mod $name {
            use super::super::StorageResult;
            use super::super::directory::user_from_row;
            use super::{
                AuditRow, BENEFICIARY_AUDIT, BeneficiaryAudit, BeneficiaryQuery, ENABLE,
                END_API_TOKENS, END_DEVICES, END_SESSIONS, ListedPerson, PEOPLE, audit_line,
            };

            pub async fn people(pool: &$pool) -> StorageResult<Vec<ListedPerson>> {
                let rows: Vec<(String, String, String, String, Option<i64>, Option<i64>)> =
                    sqlx::query_as(PEOPLE).fetch_all(pool).await?;
                rows.into_iter()
                    .map(|(id, name, role, areas, disabled_at, last_seen_at)| {
                        Ok(ListedPerson {
                            user: user_from_row((id, name, role, areas, disabled_at))?,
                            last_seen_at,
                        })
                    })
                    .collect()
            }

            pub async fn enable(pool: &$pool, id: &str) -> StorageResult<bool> {
                let now = super::super::now_millis();
                let mut tx = pool.begin().await?;
                let found = sqlx::query(ENABLE)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if found {
                    for end in [END_DEVICES, END_API_TOKENS] {
                        sqlx::query(end)
                            .bind(id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query(END_SESSIONS).bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(found)
            }

            pub async fn beneficiary_audit(
                pool: &$pool,
                q: &BeneficiaryQuery<'_>,
            ) -> StorageResult<Vec<BeneficiaryAudit>> {
                let rows: Vec<AuditRow> = sqlx::query_as(BENEFICIARY_AUDIT)
                    .bind(q.nik)
                    .bind(q.asked_as)
                    .bind(q.before)
                    .bind(q.limit)
                    .fetch_all(pool)
                    .await?;
                Ok(rows.into_iter().map(audit_line).collect())
            }
        }
    };
}

backend_fns!(sqlite, sqlx::SqlitePool);
backend_fns!(postgres, sqlx::PgPool);

/// Implements [`People`] for a backend type with a `pool` field by calling that backend's
/// functions above (`sqlite` or `postgres`).
macro_rules! people_impl {
    ($storage:ty, $backend:ident) => {
        impl $crate::storage::people::People for $storage {
            fn people(
                &self,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::people::ListedPerson>> {
                Box::pin($crate::storage::people::$backend::people(&self.pool))
            }

            fn enable_user<'a>(&'a self, id: &'a str) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin($crate::storage::people::$backend::enable(&self.pool, id))
            }

            fn beneficiary_audit<'a>(
                &'a self,
                query: &'a $crate::storage::people::BeneficiaryQuery<'a>,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::people::BeneficiaryAudit>>
            {
                Box::pin($crate::storage::people::$backend::beneficiary_audit(
                    &self.pool, query,
                ))
            }
        }
    };
}
pub(super) use people_impl;
