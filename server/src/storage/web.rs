//! People signing in on the web: password hashes, browser sessions and API tokens.
//!
//! The SQL is the same on both backends; [`web_impl`] instantiates [`WebDirectory`] for each.
//! Secrets are never stored: sessions and API tokens by SHA-256, passwords by argon2id.

use super::BoxFuture;
use super::directory::User;

/// What is stored of a user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    /// argon2id in PHC string format.
    pub password_hash: String,
    /// Failed sign-ins in a row.
    pub failures: i64,
    pub locked_until: Option<i64>,
}

/// A signed-in browser, as found by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// An API token for scripts. Its secret is shown once and stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// The web side of the directory of people.
pub trait WebDirectory {
    /// Sets a user's password hash, clearing any lockout and ending their sessions; `false`
    /// if there is no such user.
    fn set_password<'a>(&'a self, user_id: &'a str, hash: &'a str) -> BoxFuture<'a, bool>;
    /// The user and their password hash, if they have one.
    fn credentials<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Option<Credentials>>;
    /// Counts a failed sign-in; after `lock_after` in a row the account is locked until
    /// `now + lock_ms`. Returns the failures in a row.
    fn sign_in_failed<'a>(
        &'a self,
        user_id: &'a str,
        now: i64,
        lock_after: i64,
        lock_ms: i64,
    ) -> BoxFuture<'a, i64>;
    /// A successful sign-in: the count of failures starts again.
    fn sign_in_succeeded<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, ()>;
    fn create_session<'a>(
        &'a self,
        token_hash: &'a str,
        user_id: &'a str,
        csrf_token: &'a str,
        now: i64,
        expires_at: i64,
    ) -> BoxFuture<'a, ()>;
    /// The session with this token hash, if it has not expired and its user is enabled.
    fn session<'a>(&'a self, token_hash: &'a str, now: i64) -> BoxFuture<'a, Option<WebSession>>;
    fn delete_session<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, ()>;
    fn add_api_token<'a>(&'a self, token: &'a ApiToken, hash: &'a str) -> BoxFuture<'a, bool>;
    /// The enabled user an unexpired, unrevoked API token belongs to; the token's last use
    /// becomes `now`.
    fn api_token_user<'a>(&'a self, hash: &'a str, now: i64) -> BoxFuture<'a, Option<User>>;
    /// The same as [`Self::api_token_user`] without writing anything: for re-checking, every
    /// second or so, a token whose use has already been recorded.
    fn api_token_holder<'a>(&'a self, hash: &'a str, now: i64) -> BoxFuture<'a, Option<User>>;
    /// Revokes an API token; `false` if unknown or already revoked.
    fn revoke_api_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
}

/// Implements [`WebDirectory`] for a backend type with a `pool` field.
macro_rules! web_impl {
    ($storage:ty) => {
        impl $crate::storage::web::WebDirectory for $storage {
            fn set_password<'a>(
                &'a self,
                user_id: &'a str,
                hash: &'a str,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let now = $crate::storage::now_millis();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "INSERT INTO web_credentials (user_id, password_hash, updated_at, failures) \
                         SELECT id, $1, $2, 0 FROM users WHERE id = $3 \
                         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
                         updated_at = excluded.updated_at, failures = 0, locked_until = NULL",
                    )
                    .bind(hash)
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn credentials<'a>(
                &'a self,
                user_id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::web::Credentials>> {
                Box::pin(async move {
                    let row: Option<(String, String, String, String, Option<i64>, String, i64, Option<i64>)> =
                        sqlx::query_as(
                            "SELECT u.id, u.name, u.role, u.areas, u.disabled_at, c.password_hash, \
                             c.failures, c.locked_until \
                             FROM web_credentials c JOIN users u ON u.id = c.user_id WHERE u.id = $1",
                        )
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|(id, name, role, areas, disabled_at, password_hash, failures, locked_until)| {
                        Ok($crate::storage::web::Credentials {
                            user: $crate::storage::directory::user_from_row((
                                id,
                                name,
                                role,
                                areas,
                                disabled_at,
                            ))?,
                            password_hash,
                            failures,
                            locked_until,
                        })
                    })
                    .transpose()
                })
            }

            fn sign_in_failed<'a>(
                &'a self,
                user_id: &'a str,
                now: i64,
                lock_after: i64,
                lock_ms: i64,
            ) -> $crate::storage::BoxFuture<'a, i64> {
                Box::pin(async move {
                    let row: Option<(i64,)> = sqlx::query_as(
                        "UPDATE web_credentials SET failures = failures + 1, \
                         locked_until = CASE WHEN failures + 1 >= $1 THEN $2 ELSE locked_until END \
                         WHERE user_id = $3 RETURNING failures",
                    )
                    .bind(lock_after)
                    .bind(now + lock_ms)
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map_or(0, |r| r.0))
                })
            }

            fn sign_in_succeeded<'a>(
                &'a self,
                user_id: &'a str,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE web_credentials SET failures = 0, locked_until = NULL WHERE user_id = $1",
                    )
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn create_session<'a>(
                &'a self,
                token_hash: &'a str,
                user_id: &'a str,
                csrf_token: &'a str,
                now: i64,
                expires_at: i64,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    // Expired sessions are swept whenever someone signs in.
                    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, \
                         expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $4)",
                    )
                    .bind(token_hash)
                    .bind(user_id)
                    .bind(csrf_token)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn session<'a>(
                &'a self,
                token_hash: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::web::WebSession>> {
                Box::pin(async move {
                    let row: Option<(String, String, String, String, Option<i64>, String, i64)> =
                        sqlx::query_as(
                            "SELECT u.id, u.name, u.role, u.areas, u.disabled_at, s.csrf_token, s.expires_at \
                             FROM web_sessions s JOIN users u ON u.id = s.user_id \
                             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                        )
                        .bind(token_hash)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|(id, name, role, areas, disabled_at, csrf_token, expires_at)| {
                        Ok($crate::storage::web::WebSession {
                            user: $crate::storage::directory::user_from_row((
                                id,
                                name,
                                role,
                                areas,
                                disabled_at,
                            ))?,
                            csrf_token,
                            expires_at,
                        })
                    })
                    .transpose()
                })
            }

            fn delete_session<'a>(
                &'a self,
                token_hash: &'a str,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                        .bind(token_hash)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn add_api_token<'a>(
                &'a self,
                token: &'a $crate::storage::web::ApiToken,
                hash: &'a str,
            ) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO api_tokens (id, user_id, label, token_hash, created_at, expires_at) \
                         SELECT $1, id, $2, $3, $4, $5 FROM users WHERE id = $6 AND disabled_at IS NULL",
                    )
                    .bind(&token.id)
                    .bind(&token.label)
                    .bind(hash)
                    .bind(token.created_at)
                    .bind(token.expires_at)
                    .bind(&token.user_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn api_token_user<'a>(
                &'a self,
                hash: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::directory::User>> {
                Box::pin(async move {
                    let user = self.api_token_holder(hash, now).await?;
                    if user.is_some() {
                        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                            .bind(now)
                            .bind(hash)
                            .execute(&self.pool)
                            .await?;
                    }
                    Ok(user)
                })
            }

            fn api_token_holder<'a>(
                &'a self,
                hash: &'a str,
                now: i64,
            ) -> $crate::storage::BoxFuture<'a, Option<$crate::storage::directory::User>> {
                Box::pin(async move {
                    let row: Option<(String, String, String, String, Option<i64>)> =
                        sqlx::query_as(
                            "SELECT u.id, u.name, u.role, u.areas, u.disabled_at \
                             FROM api_tokens t JOIN users u ON u.id = t.user_id \
                             WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
                             AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled_at IS NULL",
                        )
                        .bind(hash)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map($crate::storage::directory::user_from_row).transpose()
                })
            }

            fn revoke_api_token<'a>(&'a self, id: &'a str) -> $crate::storage::BoxFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    )
                    .bind($crate::storage::now_millis())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }
        }
    };
}

pub(super) use web_impl;
