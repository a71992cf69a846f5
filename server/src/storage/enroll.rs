//! One-time enrollment codes: made for a user by an administrator or coordinator, exchanged
//! once by the field app for a device token (`crate::admin::make_enrollment_code`,
//! `crate::web::enroll`).
//!
//! Only a code's SHA-256 is stored. A code is taken by one conditional `UPDATE` (unused and
//! unexpired) before anything else is read, so two phones racing with the same code cannot
//! both enroll. The SQL is plain
//! functions per backend; [`enroll_impl`] only forwards a backend's pool to them.

use super::BoxFuture;
use super::directory::AuditEntry;

/// A code as stored (without the code itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentCode {
    pub code_hash: String,
    pub user_id: String,
    pub made_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What happened when a phone offered a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// The code was valid and is now used up: enroll a device for this user.
    Taken {
        user_id: String,
    },
    Unknown,
    AlreadyUsed,
    Expired,
}

impl CodeUse {
    /// For the audit line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Taken { .. } => "taken",
            Self::Unknown => "unknown",
            Self::AlreadyUsed => "already-used",
            Self::Expired => "expired",
        }
    }
}

/// Enrollment codes, and the audit lines of their use.
pub trait Enrollment {
    fn add_enrollment_code<'a>(&'a self, code: &'a EnrollmentCode) -> BoxFuture<'a, ()>;
    /// Uses up the code with this hash if it is unused and unexpired at `now`.
    fn take_enrollment_code<'a>(&'a self, code_hash: &'a str, now: i64) -> BoxFuture<'a, CodeUse>;
    /// Writes one audit line at once (an enrollment attempt is no document change, so it does
    /// not go through the writer).
    fn audit_now<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, ()>;
}

const INSERT: &str = "INSERT INTO enrollment_codes (code_hash, user_id, made_by, created_at, expires_at) \
                      VALUES ($1, $2, $3, $4, $5)";
const LOOK: &str = "SELECT user_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = $1";
const TAKE: &str = "UPDATE enrollment_codes SET used_at = $2 \
                    WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2";
const AUDIT: &str = "INSERT INTO audit_log (at, device_id, user_id, document_id, action, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6)";

fn judged(row: Option<(String, i64, Option<i64>)>, now: i64, updated: u64) -> CodeUse {
    match row {
        None => CodeUse::Unknown,
        Some((user_id, _, _)) if updated == 1 => CodeUse::Taken { user_id },
        Some((_, expires_at, None)) if expires_at <= now => CodeUse::Expired,
        Some(_) => CodeUse::AlreadyUsed,
    }
}

macro_rules! backend_fns {
    ($name:ident, $pool:ty) => {
        pub(super) mod $name {
            use super::super::StorageResult;
            use super::{AUDIT, AuditEntry, CodeUse, EnrollmentCode, INSERT, LOOK, TAKE, judged};

            pub async fn add(pool: &$pool, code: &EnrollmentCode) -> StorageResult<()> {
                sqlx::query(INSERT)
                    .bind(&code.code_hash)
                    .bind(&code.user_id)
                    .bind(&code.made_by)
                    .bind(code.created_at)
                    .bind(code.expires_at)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            pub async fn take(pool: &$pool, code_hash: &str, now: i64) -> StorageResult<CodeUse> {
                // The update first, on its own: one atomic statement decides who gets the
                // code; only then is a refusal explained.
                let updated = sqlx::query(TAKE)
                    .bind(code_hash)
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected();
                let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(LOOK)
                    .bind(code_hash)
                    .fetch_optional(pool)
                    .await?;
                Ok(judged(row, now, updated))
            }

            pub async fn audit(pool: &$pool, e: &AuditEntry) -> StorageResult<()> {
                sqlx::query(AUDIT)
                    .bind(e.at)
                    .bind(&e.device_id)
                    .bind(&e.user_id)
                    .bind(&e.document_id)
                    .bind(&e.action)
                    .bind(&e.detail)
                    .execute(pool)
                    .await?;
                Ok(())
            }
        }
    };
}

backend_fns!(sqlite, sqlx::SqlitePool);
backend_fns!(postgres, sqlx::PgPool);

/// Implements [`Enrollment`] for a backend type with a `pool` field by calling that backend's
/// functions above (`sqlite` or `postgres`).
macro_rules! enroll_impl {
    ($storage:ty, $backend:ident) => {
        impl $crate::storage::enroll::Enrollment for $storage {
            fn add_enrollment_code<'a>(
                &'a self,
                code: &'a $crate::storage::enroll::EnrollmentCode,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin($crate::storage::enroll::$backend::add(&self.pool, code))
            }

            fn take_enrollment_code<'a>(
                &'a self,
                code_hash: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::enroll::CodeUse> {
                Box::pin($crate::storage::enroll::$backend::take(
                    &self.pool, code_hash, now,
                ))
            }

            fn audit_now<'a>(
                &'a self,
                entry: &'a $crate::storage::directory::AuditEntry,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin($crate::storage::enroll::$backend::audit(&self.pool, entry))
            }
        }
    };
}
pub(super) use enroll_impl;
