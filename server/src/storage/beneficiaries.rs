//! Finding beneficiaries: by NIK or KK prefix, or by the prefixes of their name's words
//! (`crate::name_words`), and a household's records by KK. Every read is bounded by a
//! [`Scope`]. The SQL is the same on both backends; [`beneficiaries_impl`] runs it for each.

use super::BoxFuture;
use super::activity::Scope;
use super::query::Sql;
use fieldsync_core::schema::DocKind;

/// What a search asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// NIK or KK starting with these digits.
    Number(String),
    /// Names with a word starting with each of these (folded) prefixes.
    Words(Vec<String>),
}

/// One visit or referral about a beneficiary, as search results and a household list it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PersonRecord {
    pub document_id: String,
    /// `visit` or `referral`.
    pub kind: String,
    pub nik: String,
    pub kk: Option<String>,
    pub name: String,
    pub area: String,
    pub created_by: String,
    /// The visit's date, or when the referral was made.
    pub at: i64,
    /// A referral's program and derived status.
    pub program: Option<String>,
    pub status: Option<String>,
}

pub trait Beneficiaries {
    /// Records in scope matching `query`, newest first, at most `limit`.
    fn find_records<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a Query,
        limit: i64,
    ) -> BoxFuture<'a, Vec<PersonRecord>>;
    /// Records in scope of one family card, newest first, at most `limit`.
    fn household<'a>(
        &'a self,
        scope: &'a Scope,
        kk: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Vec<PersonRecord>>;
    /// Once per database: writes the name words of every visit and referral stored before
    /// search existed, then records that it did. Returns how many records it read (0 when
    /// done before). Safe to run by several processes at once, and again after a crash.
    fn fill_name_words(&self) -> BoxFuture<'_, u64>;
}

/// Adds `n` (word, document) rows to `name_words`, keeping those already there: the projection
/// writes a record's words with this, and so does the one-time fill.
pub(crate) fn name_words_insert(n: usize) -> String {
    format!(
        "INSERT INTO name_words (word, document_id) VALUES {} ON CONFLICT DO NOTHING",
        super::query::values_rows(n, 2)
    )
}

/// Set in `server_meta` once the records stored before search have their name words.
pub const FILLED_KEY: &str = "name_words_filled";

/// The records of the readable types that meet `condition(table)`, newest first.
pub(super) fn records_sql(scope: &Scope, limit: i64, condition: impl Fn(&mut Sql, &str)) -> Sql {
    let mut sql = Sql::new("SELECT * FROM (");
    let mut first = true;
    for (kind, table, at, extra) in [
        (
            DocKind::Visit,
            "visits",
            "visited_at",
            "NULL AS program, NULL AS status",
        ),
        (
            DocKind::Referral,
            "referrals",
            "created_at",
            "program, status",
        ),
    ] {
        if !scope.reads(kind) {
            continue;
        }
        if !first {
            sql.push(" UNION ALL ");
        }
        first = false;
        sql.push(&format!(
            "SELECT document_id, '{}' AS kind, nik, kk, name, area, created_by, {at} AS at, \
             {extra} FROM {table} WHERE ",
            kind.as_str()
        ));
        sql.in_scope("area", &scope.areas).push(" AND ");
        condition(&mut sql, table);
    }
    if first {
        return Sql::new(
            "SELECT '' AS document_id, '' AS kind, '' AS nik, NULL AS kk, '' AS name, \
             '' AS area, '' AS created_by, 0 AS at, NULL AS program, NULL AS status WHERE 1 = 0",
        );
    }
    sql.push(") AS found ORDER BY at DESC, document_id LIMIT ")
        .int(limit);
    sql
}

/// The condition of a search on one table.
pub(super) fn query_condition(sql: &mut Sql, table: &str, query: &Query) {
    match query {
        Query::Number(digits) => {
            // `:` follows `9`: every number starting with the digits sorts below it, so
            // both the NIK and the KK index answer the range.
            let end = format!("{digits}:");
            sql.push("((nik >= ")
                .text(digits.as_str())
                .push(" AND nik < ")
                .text(end.as_str())
                .push(") OR (kk >= ")
                .text(digits.as_str())
                .push(" AND kk < ")
                .text(end)
                .push("))");
        }
        Query::Words(words) => {
            if words.is_empty() {
                sql.push("1 = 0");
                return;
            }
            for (i, word) in words.iter().enumerate() {
                if i > 0 {
                    sql.push(" AND ");
                }
                sql.push(&format!(
                    "{table}.document_id IN (SELECT document_id FROM name_words WHERE word >= "
                ))
                .text(word.as_str())
                .push(" AND word < ")
                .text(crate::name_words::prefix_end(word))
                .push(")");
            }
        }
    }
}

/// Implements [`Beneficiaries`] for a backend type with a `pool` field.
macro_rules! beneficiaries_impl {
    ($storage:ty) => {
        impl $crate::storage::beneficiaries::Beneficiaries for $storage {
            fn find_records<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                query: &'a $crate::storage::beneficiaries::Query,
                limit: i64,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::beneficiaries::PersonRecord>>
            {
                Box::pin(async move {
                    let sql =
                        $crate::storage::beneficiaries::records_sql(scope, limit, |sql, table| {
                            $crate::storage::beneficiaries::query_condition(sql, table, query)
                        });
                    Ok($crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn household<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                kk: &'a str,
                limit: i64,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::beneficiaries::PersonRecord>>
            {
                Box::pin(async move {
                    let sql =
                        $crate::storage::beneficiaries::records_sql(scope, limit, |sql, _| {
                            sql.push("kk = ").text(kk);
                        });
                    Ok($crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn fill_name_words(&self) -> $crate::storage::BoxFuture<'_, u64> {
                Box::pin(async move {
                    let done: Option<(String,)> =
                        sqlx::query_as("SELECT value FROM server_meta WHERE key = $1")
                            .bind($crate::storage::beneficiaries::FILLED_KEY)
                            .fetch_optional(&self.pool)
                            .await?;
                    if done.is_some() {
                        return Ok(0);
                    }
                    let mut read = 0u64;
                    for table in ["visits", "referrals"] {
                        let mut after = String::new();
                        loop {
                            let rows: Vec<(String, String)> =
                                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                                    "SELECT document_id, name FROM {table} WHERE document_id > $1 \
                                     ORDER BY document_id LIMIT 500"
                                )))
                                .bind(&after)
                                .fetch_all(&self.pool)
                                .await?;
                            let Some((last, _)) = rows.last() else {
                                break;
                            };
                            after = last.clone();
                            read += rows.len() as u64;
                            // One statement per document, its words in the order the
                            // projection writes them: a writer holding the same document
                            // never waits on this in the other order (no deadlock).
                            for (doc, name) in &rows {
                                let words = $crate::name_words::words(name);
                                if words.is_empty() {
                                    continue;
                                }
                                let sql =
                                    $crate::storage::beneficiaries::name_words_insert(words.len());
                                let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                                for word in &words {
                                    insert = insert.bind(word).bind(doc);
                                }
                                insert.execute(&self.pool).await?;
                            }
                        }
                    }
                    sqlx::query(
                        "INSERT INTO server_meta (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind($crate::storage::beneficiaries::FILLED_KEY)
                    .bind($crate::storage::now_millis().to_string())
                    .execute(&self.pool)
                    .await?;
                    Ok(read)
                })
            }
        }
    };
}

pub(super) use beneficiaries_impl;
