//! What the supervisor's pages read from the query tables: the review queue, the decisions
//! behind the outcome statistics, and people's names.
//!
//! The SQL is the same on both backends; [`review_impl`] instantiates [`Review`] for each.
//! Every query is limited to the caller's area scopes; the caller has already checked that
//! their role may read referrals. Decisions are never written here: they go into the
//! referral's document through the hub, and reach these tables as its query rows.

use std::collections::HashMap;

use fieldsync_core::schema::RegionCode;

use super::BoxFuture;
use super::query::Sql;

/// Which referrals the queue shows.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// The viewer's area scopes: nothing outside them is returned.
    pub scopes: Vec<RegionCode>,
    /// Derived statuses (`submitted`, …) to show; empty for every status.
    pub statuses: Vec<String>,
    /// A program slug.
    pub program: Option<String>,
    /// A region code prefix (kecamatan or kelurahan) to narrow to.
    pub area: Option<RegionCode>,
    /// Only referrals submitted (or, never submitted, created) at or before this time.
    pub submitted_before: Option<i64>,
    /// Only referrals after this one in the queue's order ("next referral"); a document that
    /// is not a referral in the table leaves nothing after it.
    pub after: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One referral in the queue. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueRow {
    pub document_id: String,
    pub area: String,
    pub created_by: String,
    /// The field worker's name, when they are a known user.
    pub worker_name: Option<String>,
    pub created_at: i64,
    pub nik: String,
    pub name: String,
    pub program: String,
    pub status: String,
    pub consent_given: bool,
    pub doc_ktp: bool,
    pub doc_kk: bool,
    pub doc_sktm: bool,
    pub doc_surat_puskesmas: bool,
    pub submitted_at: Option<i64>,
    pub last_event_at: Option<i64>,
}

/// A page of the queue and how many referrals match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub total: i64,
}

/// Which decisions the statistics count.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub scopes: Vec<RegionCode>,
    pub area: Option<RegionCode>,
    /// Decided at or after this time.
    pub from: Option<i64>,
    /// Decided before this time.
    pub until: Option<i64>,
}

/// A referral's first decision (approved or rejected).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DecisionRow {
    pub program: String,
    pub area: String,
    pub submitted_at: Option<i64>,
    pub decided_at: i64,
    /// `approved` or `rejected` (empty only if the rows disagree, which they never should).
    pub kind: String,
}

/// A referral still waiting for a decision, for the backlog: how long it has waited.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenRow {
    pub program: String,
    pub area: String,
    pub status: String,
    /// When it was submitted (or, never submitted, created).
    pub waiting_since: i64,
}

/// The supervisor's reads.
pub trait Review {
    /// Referrals matching `filter`, oldest submission first, and how many match in all.
    fn review_queue<'a>(&'a self, filter: &'a QueueFilter) -> BoxFuture<'a, QueuePage>;
    /// Every area code with a referral within `scopes`, sorted: what the area filter offers.
    fn referral_areas<'a>(&'a self, scopes: &'a [RegionCode]) -> BoxFuture<'a, Vec<String>>;
    /// The first decision of every referral decided within the filter's range and areas.
    fn decisions<'a>(&'a self, filter: &'a DecisionFilter) -> BoxFuture<'a, Vec<DecisionRow>>;
    /// Every referral in `statuses` (those waiting for a decision) within `scopes` (and
    /// `area`), with how long it has waited: the backlog.
    fn open_referrals<'a>(
        &'a self,
        scopes: &'a [RegionCode],
        area: Option<&'a RegionCode>,
        statuses: &'a [String],
    ) -> BoxFuture<'a, Vec<OpenRow>>;
    /// The names of the known users among `ids`.
    fn user_names<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, HashMap<String, String>>;
}

/// `FROM … WHERE …` of the queue's page. Its status is compared as `r.status || ''` so that
/// no database reads the page through the status index and sorts every waiting referral:
/// the `referrals_queue` index gives them in the queue's order, and the page stops after
/// `limit` rows.
pub(super) fn queue_from(filter: &QueueFilter) -> Sql {
    queue_where(
        filter,
        " FROM referrals r LEFT JOIN users u ON u.id = r.created_by WHERE ",
        "(r.status || '')",
    )
}

/// `FROM … WHERE …` of the queue's count: the same referrals, counted from the index of
/// status and area alone.
pub(super) fn queue_count_from(filter: &QueueFilter) -> Sql {
    queue_where(filter, " FROM referrals r WHERE ", "r.status")
}

fn queue_where(filter: &QueueFilter, from: &str, status: &str) -> Sql {
    let mut sql = Sql::new(from);
    sql.in_scope("r.area", &filter.scopes);
    if let Some(area) = &filter.area {
        sql.push(" AND ")
            .in_scope("r.area", std::slice::from_ref(area));
    }
    if !filter.statuses.is_empty() {
        sql.push(" AND ").push(status).push(" IN (");
        for (i, status) in filter.statuses.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(status.as_str());
        }
        sql.push(")");
    }
    if let Some(program) = &filter.program {
        sql.push(" AND r.program = ").text(program.as_str());
    }
    if let Some(before) = filter.submitted_before {
        sql.push(" AND COALESCE(r.submitted_at, r.created_at) <= ")
            .int(before);
    }
    if let Some(after) = &filter.after {
        // The queue's order (see `review_queue`) as a row value, compared with the one's.
        sql.push(
            " AND (COALESCE(r.submitted_at, r.created_at), r.created_at, r.document_id) > \
             (SELECT COALESCE(a.submitted_at, a.created_at), a.created_at, a.document_id \
             FROM referrals a WHERE a.document_id = ",
        )
        .text(after.as_str())
        .push(")");
    }
    sql
}

/// The query of [`Review::open_referrals`].
pub(super) fn open_sql(
    scopes: &[RegionCode],
    area: Option<&RegionCode>,
    statuses: &[String],
) -> Sql {
    let mut sql = Sql::new(
        "SELECT r.program, r.area, r.status, COALESCE(r.submitted_at, r.created_at) \
         AS waiting_since FROM referrals r WHERE ",
    );
    sql.in_scope("r.area", scopes);
    if let Some(area) = area {
        sql.push(" AND ")
            .in_scope("r.area", std::slice::from_ref(area));
    }
    sql.push(" AND r.status IN (");
    if statuses.is_empty() {
        sql.push("NULL");
    }
    for (i, status) in statuses.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.text(status.as_str());
    }
    sql.push(") ORDER BY waiting_since, r.document_id");
    sql
}

/// The columns of [`QueueRow`], in the order `queue_from` can serve them.
pub(super) const QUEUE_COLUMNS: &str = "SELECT r.document_id, r.area, r.created_by, \
    u.name AS worker_name, r.created_at, r.nik, r.name, r.program, r.status, r.consent_given, \
    r.doc_ktp, r.doc_kk, r.doc_sktm, r.doc_surat_puskesmas, r.submitted_at, r.last_event_at";

/// The query of [`Review::decisions`]. The kind is that of the first applied decision,
/// the one `decided_at` records.
pub(super) fn decisions_sql(filter: &DecisionFilter) -> Sql {
    let mut sql = Sql::new(
        "SELECT r.program, r.area, r.submitted_at, r.decided_at, \
         COALESCE((SELECT e.kind FROM referral_events e WHERE e.document_id = r.document_id \
          AND e.applied AND e.kind IN ('approved', 'rejected') ORDER BY e.seq LIMIT 1), '') \
         AS kind \
         FROM referrals r WHERE r.decided_at IS NOT NULL AND ",
    );
    sql.in_scope("r.area", &filter.scopes);
    if let Some(area) = &filter.area {
        sql.push(" AND ")
            .in_scope("r.area", std::slice::from_ref(area));
    }
    if let Some(from) = filter.from {
        sql.push(" AND r.decided_at >= ").int(from);
    }
    if let Some(until) = filter.until {
        sql.push(" AND r.decided_at < ").int(until);
    }
    sql.push(" ORDER BY r.decided_at, r.document_id");
    sql
}

/// Implements [`Review`] for a backend type with a `pool` field.
macro_rules! review_impl {
    ($storage:ty) => {
        impl $crate::storage::review::Review for $storage {
            fn review_queue<'a>(
                &'a self,
                filter: &'a $crate::storage::review::QueueFilter,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::review::QueuePage> {
                Box::pin(async move {
                    let counted = $crate::storage::review::queue_count_from(filter);
                    let count = format!("SELECT COUNT(*){}", counted.text);
                    let (total,): (i64,) = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(count)),
                        &counted.args
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    let from = $crate::storage::review::queue_from(filter);
                    let mut page = $crate::storage::query::Sql {
                        text: format!("{}{}", $crate::storage::review::QUEUE_COLUMNS, from.text),
                        args: from.args,
                    };
                    // Oldest first: a draft, never submitted, counts from its creation.
                    page.push(
                        " ORDER BY COALESCE(r.submitted_at, r.created_at), r.created_at, \
                         r.document_id LIMIT ",
                    )
                    .int(filter.limit)
                    .push(" OFFSET ")
                    .int(filter.offset);
                    let rows: Vec<$crate::storage::review::QueueRow> =
                        $crate::storage::query::bind_args!(
                            sqlx::query_as(sqlx::AssertSqlSafe(page.text)),
                            &page.args
                        )
                        .fetch_all(&self.pool)
                        .await?;
                    Ok($crate::storage::review::QueuePage { rows, total })
                })
            }

            fn referral_areas<'a>(
                &'a self,
                scopes: &'a [fieldsync_core::schema::RegionCode],
            ) -> $crate::storage::BoxFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let mut sql = $crate::storage::query::Sql::new(
                        "SELECT DISTINCT area FROM referrals WHERE ",
                    );
                    sql.in_scope("area", scopes).push(" ORDER BY area");
                    let rows: Vec<(String,)> = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn decisions<'a>(
                &'a self,
                filter: &'a $crate::storage::review::DecisionFilter,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::review::DecisionRow>> {
                Box::pin(async move {
                    let sql = $crate::storage::review::decisions_sql(filter);
                    let rows: Vec<$crate::storage::review::DecisionRow> =
                        $crate::storage::query::bind_args!(
                            sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                            &sql.args
                        )
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows)
                })
            }

            fn open_referrals<'a>(
                &'a self,
                scopes: &'a [fieldsync_core::schema::RegionCode],
                area: Option<&'a fieldsync_core::schema::RegionCode>,
                statuses: &'a [String],
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::review::OpenRow>> {
                Box::pin(async move {
                    let sql = $crate::storage::review::open_sql(scopes, area, statuses);
                    let rows: Vec<$crate::storage::review::OpenRow> =
                        $crate::storage::query::bind_args!(
                            sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                            &sql.args
                        )
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows)
                })
            }

            fn user_names<'a>(
                &'a self,
                ids: &'a [String],
            ) -> $crate::storage::BoxFuture<'a, std::collections::HashMap<String, String>> {
                Box::pin(async move {
                    if ids.is_empty() {
                        return Ok(Default::default());
                    }
                    let mut sql = $crate::storage::query::Sql::new(
                        "SELECT id, name FROM users WHERE id IN (",
                    );
                    for (i, id) in ids.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.text(id.as_str());
                    }
                    sql.push(")");
                    let rows: Vec<(String, String)> = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().collect())
                })
            }
        }
    };
}

pub(super) use review_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_conditions_follow_the_filter() {
        let filter = QueueFilter {
            scopes: vec![RegionCode::parse_prefix("32.77").unwrap()],
            statuses: vec!["submitted".into(), "accepted".into()],
            program: Some("pkh".into()),
            area: Some(RegionCode::parse_prefix("32.77.01").unwrap()),
            submitted_before: Some(9),
            after: None,
            limit: 50,
            offset: 0,
        };
        let sql = queue_from(&filter);
        assert_eq!(
            sql.text,
            " FROM referrals r LEFT JOIN users u ON u.id = r.created_by WHERE \
             (r.area = $1 OR r.area LIKE $2) AND (r.area = $3 OR r.area LIKE $4) \
             AND (r.status || '') IN ($5, $6) AND r.program = $7 \
             AND COALESCE(r.submitted_at, r.created_at) <= $8"
        );
        assert_eq!(sql.args.len(), 8);
        let count = queue_count_from(&filter);
        assert!(
            count.text.starts_with(" FROM referrals r WHERE "),
            "{}",
            count.text
        );
        assert!(
            count.text.contains(" AND r.status IN ($5, $6) "),
            "{}",
            count.text
        );
        assert_eq!(count.args.len(), 8);
    }
}
