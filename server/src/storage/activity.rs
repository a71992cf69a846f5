//! What coordinators read: the merged activity of the query tables (visits, referrals,
//! outreach), a beneficiary's records, and counts per worker and per kelurahan.
//!
//! Every read is bounded by a [`Scope`] (the reader's areas and the document types their role
//! may read), so a caller cannot forget the read rules. The SQL (`activity/sql.rs`) is the
//! same on both backends; [`activity_impl`] runs it for each.

pub(super) mod sql;

use fieldsync_core::schema::{DocKind, Nik, PpksCategory, Program, RegionCode};

/// What a reader may see: documents in these areas, of these types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub areas: Vec<RegionCode>,
    pub kinds: Vec<DocKind>,
}

impl Scope {
    pub fn reads(&self, kind: DocKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// Where a page of the feed starts: strictly before this row, in the order the server
/// received them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `received_at`.
    pub at: i64,
    pub doc: String,
}

/// Which rows of the merged feed to read. Every filter is optional; `limit` rows at most.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedFilter {
    pub scope: Scope,
    /// A region prefix the rows must lie in, besides the scope.
    pub area: Option<RegionCode>,
    pub kind: Option<DocKind>,
    /// `created_by`.
    pub worker: Option<String>,
    /// Epoch milliseconds, `from` inclusive, `until` exclusive.
    pub from: Option<i64>,
    pub until: Option<i64>,
    pub ppks: Option<PpksCategory>,
    pub program: Option<Program>,
    pub nik: Option<Nik>,
    pub before: Option<Cursor>,
    pub limit: i64,
}

impl FeedFilter {
    /// Everything in scope, newest first.
    pub fn new(scope: Scope, limit: i64) -> Self {
        Self {
            scope,
            area: None,
            kind: None,
            worker: None,
            from: None,
            until: None,
            ppks: None,
            program: None,
            nik: None,
            before: None,
            limit,
        }
    }

    /// Whether rows of this type can match: readable, of the type asked for, and having the
    /// fields filtered on (outreach has no beneficiary, only referrals have a program).
    fn includes(&self, kind: DocKind) -> bool {
        self.scope.reads(kind)
            && self.kind.is_none_or(|k| k == kind)
            && (kind != DocKind::Outreach || (self.ppks.is_none() && self.nik.is_none()))
            && (kind == DocKind::Referral || self.program.is_none())
    }
}

/// One row of the feed: a document, when it happened, and what a list shows of it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FeedRow {
    /// `visit`, `referral` or `outreach`.
    pub kind: String,
    pub document_id: String,
    pub area: String,
    pub created_by: String,
    /// The author's name, if they are a known user.
    pub worker_name: Option<String>,
    /// The record's own date. Visits: `visited_at`; referrals: their last event, else
    /// `created_at`; outreach: `held_at`.
    pub happened_at: i64,
    /// When the server first received it: the feed's order.
    pub received_at: i64,
    /// Who acted last: the author, or for a referral whoever wrote its latest applied event.
    pub actor: String,
    /// The actor's name, if they are a known user.
    pub actor_name: Option<String>,
    pub nik: Option<String>,
    pub name: Option<String>,
    /// `|a|b|`.
    pub ppks: Option<String>,
    pub purpose: Option<String>,
    /// Visits and outreach: the notes; referrals: the reason.
    pub excerpt: Option<String>,
    pub follow_up_on: Option<String>,
    pub program: Option<String>,
    pub status: Option<String>,
    pub topic: Option<String>,
    pub place: Option<String>,
    pub attendees: Option<i64>,
}

impl FeedRow {
    /// The PPKS slugs of the beneficiary.
    pub fn ppks_slugs(&self) -> Vec<&str> {
        self.ppks
            .as_deref()
            .unwrap_or_default()
            .split('|')
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// One event of a referral.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventLine {
    pub document_id: String,
    pub seq: i64,
    pub kind: String,
    pub at: i64,
    pub by_user: String,
    /// The author's name, if they are a known user.
    pub by_name: Option<String>,
    pub note: Option<String>,
    /// False when the status rule did not apply it (a conflicting decision).
    pub applied: bool,
}

/// A photo or scan a document references, and its MIME type if the server has its bytes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttachedLine {
    pub document_id: String,
    pub sha256: String,
    /// `None`: not uploaded yet.
    pub mime: Option<String>,
}

/// Choices for the filters: the areas and authors that have documents in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub areas: Vec<String>,
    /// (user id, name if known), by name.
    pub workers: Vec<(String, Option<String>)>,
}

/// The period of a summary, in epoch milliseconds (start inclusive, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRange {
    /// Counts per kelurahan.
    pub from: i64,
    pub until: i64,
    /// Visits per week: from the start of the first week to the end of the last.
    pub weeks_from: i64,
    pub weeks_until: i64,
}

/// The length of a week, and where weeks start: Monday 00:00 WIB. The epoch was a Thursday,
/// so Mondays are 4 days after it; shifting by WIB (UTC+7) makes the buckets local days.
pub const WEEK_MS: i64 = 7 * 86_400_000;
pub const WEEK_SHIFT_MS: i64 = 7 * 3_600_000 - 4 * 86_400_000;

/// The week bucket (as the SQL computes it) of a time.
pub fn week_of(millis: i64) -> i64 {
    (millis + WEEK_SHIFT_MS).div_euclid(WEEK_MS)
}

/// When a week bucket starts.
pub fn week_start(week: i64) -> i64 {
    week * WEEK_MS - WEEK_SHIFT_MS
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerWeek {
    pub created_by: String,
    pub week: i64,
    pub visits: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerCount {
    pub created_by: String,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AreaCount {
    pub area: String,
    pub n: i64,
    /// A second count where the query has one (referrals decided, outreach attendees).
    pub m: i64,
    pub o: i64,
}

/// A user the summary may list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: String,
    /// Comma-separated area scopes.
    pub areas: String,
    pub disabled_at: Option<i64>,
}

impl Person {
    pub fn area_codes(&self) -> Vec<RegionCode> {
        self.areas
            .split(',')
            .filter_map(|a| RegionCode::parse_prefix(a).ok())
            .collect()
    }
}

/// A device that is not revoked, and when it last connected.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceSeen {
    pub user_id: String,
    pub id: String,
    pub label: String,
    pub last_seen_at: Option<i64>,
}

/// The raw counts of a summary; the web arranges them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryData {
    pub weekly: Vec<WorkerWeek>,
    /// Latest `visited_at` per worker, ever.
    pub last_visit: Vec<WorkerCount>,
    /// Referrals waiting (submitted, accepted, needs documents) per worker, now.
    pub open_referrals: Vec<WorkerCount>,
    /// Visits in range per area (`n`).
    pub area_visits: Vec<AreaCount>,
    /// Per area: referrals open now (`n`), decided in range (`m`), submitted in range (`o`).
    pub area_referrals: Vec<AreaCount>,
    /// Per area: outreach held in range (`n`), their attendees (`m`).
    pub area_outreach: Vec<AreaCount>,
    /// Field workers whose areas overlap the scope, and every author counted above.
    pub people: Vec<Person>,
    pub devices: Vec<DeviceSeen>,
}

/// Which users a summary lists: field workers whose areas overlap the scope, and everyone
/// who wrote something counted in it.
pub fn summary_people(all: Vec<Person>, scope: &Scope, authors: &[&str]) -> Vec<Person> {
    let overlaps = |p: &Person| {
        p.area_codes()
            .iter()
            .any(|a| scope.areas.iter().any(|s| s.covers(a) || a.covers(s)))
    };
    all.into_iter()
        .filter(|p| {
            authors.contains(&p.id.as_str())
                || (p.role == "peksos" && p.disabled_at.is_none() && overlaps(p))
        })
        .collect()
}

/// The coordinator's reads.
pub trait Activity {
    /// Rows of the merged feed, the last received first.
    fn feed<'a>(&'a self, filter: &'a FeedFilter) -> super::BoxFuture<'a, Vec<FeedRow>>;
    /// The events of these referrals (document ids), each referral's in order.
    fn referral_events<'a>(&'a self, docs: &'a [String]) -> super::BoxFuture<'a, Vec<EventLine>>;
    /// The attachments these documents (ids) reference, by document.
    fn attachments_of<'a>(&'a self, docs: &'a [String]) -> super::BoxFuture<'a, Vec<AttachedLine>>;
    /// The areas and authors with documents in scope.
    fn facets<'a>(&'a self, scope: &'a Scope) -> super::BoxFuture<'a, Facets>;
    /// Counts per worker and per area.
    fn summary<'a>(
        &'a self,
        scope: &'a Scope,
        range: &'a SummaryRange,
    ) -> super::BoxFuture<'a, SummaryData>;
}

/// Implements [`Activity`] for a backend type with a `pool` field, over its database type.
macro_rules! activity_impl {
    ($storage:ty, $db:ty) => {
        impl $storage {
            /// Runs a query built by `storage::activity`.
            async fn activity_rows<T>(
                &self,
                sql: Option<$crate::storage::query::Sql>,
            ) -> $crate::storage::StorageResult<Vec<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                let Some(sql) = sql else {
                    return Ok(Vec::new());
                };
                let query = sqlx::query_as::<$db, T>(sqlx::AssertSqlSafe(sql.text));
                let query = $crate::storage::query::bind_args!(query, &sql.args);
                Ok(query.fetch_all(&self.pool).await?)
            }
        }

        impl $crate::storage::activity::Activity for $storage {
            fn feed<'a>(
                &'a self,
                filter: &'a $crate::storage::activity::FeedFilter,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::activity::FeedRow>> {
                Box::pin(async move {
                    self.activity_rows($crate::storage::activity::sql::feed_sql(filter))
                        .await
                })
            }

            fn referral_events<'a>(
                &'a self,
                docs: &'a [String],
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::activity::EventLine>> {
                Box::pin(async move {
                    if docs.is_empty() {
                        return Ok(Vec::new());
                    }
                    self.activity_rows(Some($crate::storage::activity::sql::events_sql(docs)))
                        .await
                })
            }

            fn attachments_of<'a>(
                &'a self,
                docs: &'a [String],
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::activity::AttachedLine>> {
                Box::pin(async move {
                    if docs.is_empty() {
                        return Ok(Vec::new());
                    }
                    self.activity_rows(Some($crate::storage::activity::sql::attachments_sql(docs)))
                        .await
                })
            }

            fn facets<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::activity::Facets> {
                use $crate::storage::activity as a;
                Box::pin(async move {
                    let areas: Vec<(String,)> =
                        self.activity_rows(a::sql::facet_areas_sql(scope)).await?;
                    let mut workers: Vec<(String, Option<String>)> =
                        self.activity_rows(a::sql::facet_workers_sql(scope)).await?;
                    workers.sort_by(|x, y| {
                        let key = |w: &(String, Option<String>)| {
                            (
                                w.1.clone().unwrap_or_else(|| w.0.clone()).to_lowercase(),
                                w.0.clone(),
                            )
                        };
                        key(x).cmp(&key(y))
                    });
                    Ok(a::Facets {
                        areas: areas.into_iter().map(|r| r.0).collect(),
                        workers,
                    })
                })
            }

            fn summary<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                range: &'a $crate::storage::activity::SummaryRange,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::activity::SummaryData> {
                use $crate::storage::activity as a;
                Box::pin(async move {
                    let mut data = a::SummaryData {
                        weekly: self.activity_rows(a::sql::weekly_sql(scope, range)).await?,
                        last_visit: self.activity_rows(a::sql::last_visit_sql(scope)).await?,
                        open_referrals: self
                            .activity_rows(a::sql::open_referrals_sql(scope))
                            .await?,
                        area_visits: self
                            .activity_rows(a::sql::area_visits_sql(scope, range))
                            .await?,
                        area_referrals: self
                            .activity_rows(a::sql::area_referrals_sql(scope, range))
                            .await?,
                        area_outreach: self
                            .activity_rows(a::sql::area_outreach_sql(scope, range))
                            .await?,
                        ..Default::default()
                    };
                    let authors: Vec<&str> = data
                        .weekly
                        .iter()
                        .map(|w| w.created_by.as_str())
                        .chain(data.last_visit.iter().map(|w| w.created_by.as_str()))
                        .chain(data.open_referrals.iter().map(|w| w.created_by.as_str()))
                        .collect();
                    let all: Vec<a::Person> = self
                        .activity_rows(Some($crate::storage::query::Sql::new(a::sql::PEOPLE_SQL)))
                        .await?;
                    let people = a::summary_people(all, scope, &authors);
                    let ids: Vec<String> = people.iter().map(|p| p.id.clone()).collect();
                    data.devices = if ids.is_empty() {
                        Vec::new()
                    } else {
                        self.activity_rows(Some(a::sql::devices_sql(&ids))).await?
                    };
                    data.people = people;
                    Ok(data)
                })
            }
        }
    };
}

pub(super) use activity_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_in_wib() {
        // Monday 2026-11-23 00:00 WIB is 2026-11-22T17:00:00Z.
        let monday = 1_795_366_800_000;
        assert_eq!(week_start(week_of(monday)), monday);
        assert_eq!(week_of(monday - 1), week_of(monday) - 1);
        assert_eq!(week_of(monday + WEEK_MS - 1), week_of(monday));
    }
}
