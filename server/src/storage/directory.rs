//! People, devices, their tokens and the audit log, in the same database as the documents.
//!
//! The SQL is the same on both backends; [`directory_impl`] instantiates [`Directory`] for each
//! backend's storage type.

use fieldsync_core::schema::{RegionCode, Role};

use super::{BoxFuture, StorageError};

/// A person who uses fieldsync: one role, one or more area scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub areas: Vec<RegionCode>,
    pub disabled: bool,
}

/// An enrolled device. Its token is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub device_id: String,
    pub user: User,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    Valid(Identity),
    /// The device was revoked or its user disabled: it must delete its local data.
    Revoked,
    Expired,
    Unknown,
}

/// An administrative change a running server must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub seq: i64,
    /// `device-revoked`, `token-rotated` (subject: a device id) or `user-disabled` (a user id).
    pub kind: String,
    pub subject: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub device_id: String,
    pub user_id: String,
    pub document_id: String,
    /// `read` (the document was sent to the device), `write` (the device's change was stored)
    /// or `refused` (its change was not).
    pub action: String,
    pub detail: String,
}

/// A document a device held, for a breach notice: who the record is about, as the document
/// says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRecord {
    pub document_id: String,
    /// `visit`, `referral`, `outreach`, or empty for a document with no query row.
    pub kind: String,
    pub nik: Option<String>,
    pub name: Option<String>,
    pub first_at: i64,
    pub last_at: i64,
}

/// Which audit lines to return.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub device_id: Option<String>,
    pub user_id: Option<String>,
    pub document_id: Option<String>,
    pub limit: i64,
}

/// The directory of people and devices, and the audit log.
pub trait Directory {
    /// Adds a user; `false` if the id is taken.
    fn add_user<'a>(&'a self, user: &'a User) -> BoxFuture<'a, bool>;
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<User>>;
    /// Disables a user (their devices stop working at once); `false` if unknown.
    fn disable_user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
    /// Enrolls a device for an enabled user; `false` if there is no such user.
    fn enroll_device<'a>(&'a self, device: &'a Device, token_hash: &'a str) -> BoxFuture<'a, bool>;
    /// Replaces a device's token; `false` if the device is unknown or revoked.
    fn rotate_token<'a>(&'a self, device_id: &'a str, token_hash: &'a str) -> BoxFuture<'a, bool>;
    /// Revokes a device for good; `false` if unknown or already revoked.
    fn revoke_device<'a>(&'a self, device_id: &'a str) -> BoxFuture<'a, bool>;
    fn devices<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Vec<Device>>;
    /// What the token with this hash is at `now`; a valid one records its device as seen.
    fn authenticate<'a>(&'a self, token_hash: &'a str, now: i64) -> BoxFuture<'a, TokenStatus>;
    fn security_events(&self, after_seq: i64) -> BoxFuture<'_, Vec<SecurityEvent>>;
    /// The devices that own these actor ids, where bound.
    fn actor_owners<'a>(&'a self, actors: &'a [String]) -> BoxFuture<'a, Vec<(String, String)>>;
    fn audit<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Vec<AuditEntry>>;
    /// Every document the device was sent or wrote, with the beneficiary it concerns.
    fn held_by_device<'a>(&'a self, device_id: &'a str) -> BoxFuture<'a, Vec<HeldRecord>>;
}

/// The server's clock, for tests that make tokens expire.
pub fn now_for_tests() -> i64 {
    super::now_millis()
}

pub fn join_areas(areas: &[RegionCode]) -> String {
    areas
        .iter()
        .map(RegionCode::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

type UserRow = (String, String, String, String, Option<i64>);

pub(super) fn user_from_row(row: UserRow) -> Result<User, StorageError> {
    let (id, name, role, areas, disabled_at) = row;
    let bad = |what: &str| StorageError(format!("user {id}: stored {what} is invalid").into());
    let role = Role::parse(&role).map_err(|_| bad("role"))?;
    let areas = areas
        .split(',')
        .filter(|a| !a.is_empty())
        .map(RegionCode::parse_prefix)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("areas"))?;
    Ok(User {
        id,
        name,
        role,
        areas,
        disabled: disabled_at.is_some(),
    })
}

/// Implements [`Directory`] for a backend type with a `pool` field.
macro_rules! directory_impl {
    ($storage:ty) => {
        impl $crate::storage::directory::Directory for $storage {
            fn add_user<'a>(
                &'a self,
                user: &'a $crate::storage::directory::User,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO users (id, name, role, areas, created_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&user.id)
                    .bind(&user.name)
                    .bind(user.role.as_str())
                    .bind($crate::storage::directory::join_areas(&user.areas))
                    .bind($crate::storage::now_millis())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn user<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::directory::User>> {
                Box::pin(async move {
                    let row = sqlx::query_as(
                        "SELECT id, name, role, areas, disabled_at FROM users WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map($crate::storage::directory::user_from_row).transpose()
                })
            }

            fn disable_user<'a>(&'a self, id: &'a str) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let now = $crate::storage::now_millis();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    let found = done.rows_affected() == 1;
                    if found {
                        sqlx::query(
                            "INSERT INTO security_events (at, kind, subject) VALUES ($1, 'user-disabled', $2)",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(found)
                })
            }

            fn enroll_device<'a>(
                &'a self,
                device: &'a $crate::storage::directory::Device,
                token_hash: &'a str,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO devices (id, user_id, label, token_hash, created_at, expires_at) \
                         SELECT $1, id, $2, $3, $4, $5 FROM users WHERE id = $6 AND disabled_at IS NULL",
                    )
                    .bind(&device.id)
                    .bind(&device.label)
                    .bind(token_hash)
                    .bind(device.created_at)
                    .bind(device.expires_at)
                    .bind(&device.user_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn rotate_token<'a>(
                &'a self,
                device_id: &'a str,
                token_hash: &'a str,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let now = $crate::storage::now_millis();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE devices SET token_hash = $1, rotated_at = $2 WHERE id = $3 AND revoked_at IS NULL",
                    )
                    .bind(token_hash)
                    .bind(now)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                    let found = done.rows_affected() == 1;
                    if found {
                        sqlx::query(
                            "INSERT INTO security_events (at, kind, subject) VALUES ($1, 'token-rotated', $2)",
                        )
                        .bind(now)
                        .bind(device_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(found)
                })
            }

            fn revoke_device<'a>(&'a self, device_id: &'a str) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let now = $crate::storage::now_millis();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                    let found = done.rows_affected() == 1;
                    if found {
                        sqlx::query(
                            "INSERT INTO security_events (at, kind, subject) VALUES ($1, 'device-revoked', $2)",
                        )
                        .bind(now)
                        .bind(device_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(found)
                })
            }

            fn devices<'a>(
                &'a self,
                user_id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::directory::Device>> {
                Box::pin(async move {
                    let rows: Vec<(String, String, String, i64, Option<i64>, Option<i64>, Option<i64>)> =
                        sqlx::query_as(
                            "SELECT id, user_id, label, created_at, expires_at, revoked_at, last_seen_at \
                             FROM devices WHERE user_id = $1 ORDER BY created_at, id",
                        )
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, user_id, label, created_at, expires_at, revoked_at, last_seen_at)| {
                            $crate::storage::directory::Device {
                                id,
                                user_id,
                                label,
                                created_at,
                                expires_at,
                                revoked_at,
                                last_seen_at,
                            }
                        })
                        .collect())
                })
            }

            fn authenticate<'a>(
                &'a self,
                token_hash: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::directory::TokenStatus> {
                use $crate::storage::directory::{Identity, TokenStatus};
                Box::pin(async move {
                    let row: Option<(String, Option<i64>, Option<i64>, String, String, String, String, Option<i64>)> =
                        sqlx::query_as(
                            "SELECT d.id, d.revoked_at, d.expires_at, u.id, u.name, u.role, u.areas, u.disabled_at \
                             FROM devices d JOIN users u ON u.id = d.user_id WHERE d.token_hash = $1",
                        )
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                    let Some((device_id, revoked_at, expires_at, id, name, role, areas, disabled_at)) = row
                    else {
                        return Ok(TokenStatus::Unknown);
                    };
                    if revoked_at.is_some() || disabled_at.is_some() {
                        return Ok(TokenStatus::Revoked);
                    }
                    if expires_at.is_some_and(|at| at <= now) {
                        return Ok(TokenStatus::Expired);
                    }
                    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(&device_id)
                        .execute(&self.pool)
                        .await?;
                    let user = $crate::storage::directory::user_from_row((id, name, role, areas, disabled_at))?;
                    Ok(TokenStatus::Valid(Identity { device_id, user }))
                })
            }

            fn security_events(
                &self,
                after_seq: i64,
            ) -> $crate::storage::BoxFuture<'_, Vec<$crate::storage::directory::SecurityEvent>> {
                Box::pin(async move {
                    let rows: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT seq, kind, subject FROM security_events WHERE seq > $1 ORDER BY seq",
                    )
                    .bind(after_seq)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(seq, kind, subject)| $crate::storage::directory::SecurityEvent {
                            seq,
                            kind,
                            subject,
                        })
                        .collect())
                })
            }

            fn actor_owners<'a>(
                &'a self,
                actors: &'a [String],
            ) -> $crate::storage::BoxFuture<'a, Vec<(String, String)>> {
                Box::pin(async move {
                    // A few statements for many documents' actor ids (the hub gathers the
                    // lookups of every document that waits for one, `hub/rounds.rs`).
                    let out: Vec<(String, String)> = $crate::storage::rows_in!(
                        &self.pool,
                        "SELECT actor_id, device_id FROM device_actors WHERE actor_id",
                        actors,
                        $crate::storage::query::values_rows
                    );
                    Ok(out)
                })
            }

            fn audit<'a>(
                &'a self,
                filter: &'a $crate::storage::directory::AuditFilter,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::directory::AuditEntry>> {
                Box::pin(async move {
                    let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
                        "SELECT at, device_id, user_id, document_id, action, detail FROM audit_log \
                         WHERE ($1 IS NULL OR device_id = $1) AND ($2 IS NULL OR user_id = $2) \
                         AND ($3 IS NULL OR document_id = $3) ORDER BY seq DESC LIMIT $4",
                    )
                    .bind(&filter.device_id)
                    .bind(&filter.user_id)
                    .bind(&filter.document_id)
                    .bind(filter.limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(at, device_id, user_id, document_id, action, detail)| {
                            $crate::storage::directory::AuditEntry {
                                at,
                                device_id,
                                user_id,
                                document_id,
                                action,
                                detail,
                            }
                        })
                        .collect())
                })
            }

            fn held_by_device<'a>(
                &'a self,
                device_id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::directory::HeldRecord>> {
                Box::pin(async move {
                    let rows: Vec<(String, String, Option<String>, Option<String>, i64, i64)> =
                        sqlx::query_as(
                            "SELECT a.document_id, \
                             CASE WHEN v.document_id IS NOT NULL THEN 'visit' \
                                  WHEN r.document_id IS NOT NULL THEN 'referral' \
                                  WHEN o.document_id IS NOT NULL THEN 'outreach' ELSE '' END, \
                             COALESCE(v.nik, r.nik), COALESCE(v.name, r.name), MIN(a.at), MAX(a.at) \
                             FROM audit_log a \
                             LEFT JOIN visits v ON v.document_id = a.document_id \
                             LEFT JOIN referrals r ON r.document_id = a.document_id \
                             LEFT JOIN outreach o ON o.document_id = a.document_id \
                             WHERE a.device_id = $1 AND a.action IN ('read', 'write') \
                             GROUP BY a.document_id, v.document_id, r.document_id, o.document_id, \
                                      v.nik, r.nik, v.name, r.name \
                             ORDER BY MIN(a.at), a.document_id",
                        )
                        .bind(device_id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(document_id, kind, nik, name, first_at, last_at)| {
                            $crate::storage::directory::HeldRecord {
                                document_id,
                                kind,
                                nik,
                                name,
                                first_at,
                                last_at,
                            }
                        })
                        .collect())
                })
            }
        }
    };
}

pub(super) use directory_impl;

/// Defines `async fn $name(conn, batch)` for the directory's writes inside a storage
/// transaction: every audit line and actor binding of the batch, many rows per statement (a
/// reconnect storm brings hundreds per transaction; one statement each was most of the
/// writer's time). `$placeholders(rows, columns)` writes a `VALUES` list in the backend's
/// placeholders (`query::values_rows` or `query::anonymous_rows`).
macro_rules! identity_writer {
    ($name:ident, $conn:ty, $placeholders:path) => {
        async fn $name(
            conn: &mut $conn,
            batch: &[$crate::storage::Write],
        ) -> Result<(), sqlx::Error> {
            use $crate::storage::Write;
            let audits: Vec<&$crate::storage::AuditEntry> = batch
                .iter()
                .filter_map(|w| match w {
                    Write::Audit(entry) => Some(entry),
                    _ => None,
                })
                .collect();
            for rows in $crate::storage::query::parts(&audits) {
                let mut sql = String::from(
                    "INSERT INTO audit_log (at, device_id, user_id, document_id, action, detail) VALUES ",
                );
                sql.push_str(&$placeholders(rows.len(), 6));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for entry in rows {
                    query = query
                        .bind(entry.at)
                        .bind(&entry.device_id)
                        .bind(&entry.user_id)
                        .bind(&entry.document_id)
                        .bind(&entry.action)
                        .bind(&entry.detail);
                }
                query.execute(&mut *conn).await?;
            }
            let now = $crate::storage::now_millis();
            let bindings: Vec<(&str, &str)> = batch
                .iter()
                .filter_map(|w| match w {
                    Write::BindActors { device, actors } => Some(
                        actors.iter().map(move |a| (a.as_str(), device.as_str())),
                    ),
                    _ => None,
                })
                .flatten()
                .collect();
            for rows in $crate::storage::query::parts(&bindings) {
                let mut sql = String::from(
                    "INSERT INTO device_actors (actor_id, device_id, first_seen_at) VALUES ",
                );
                sql.push_str(&$placeholders(rows.len(), 3));
                sql.push_str(" ON CONFLICT (actor_id) DO NOTHING");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (actor, device) in rows {
                    query = query.bind(*actor).bind(*device).bind(now);
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}

pub(super) use identity_writer;
