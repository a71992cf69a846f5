//! What coordinators read: the merged activity of the query tables (visits, referrals,
//! outreach), a beneficiary's records, and counts per worker and per kelurahan.
//!
//! Every read is bounded by a [`Scope`] (the reader's areas and the document types their role
//! may read), so a caller cannot forget the read rules. The SQL is built here from constants
//! and placeholders ([`Sql`]) and is the same on both backends; [`activity_impl`] runs it for
//! each.

use fieldsync_core::schema::{DocKind, Nik, PpksCategory, Program, RegionCode};

use super::query::Sql;

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

/// Where a page of the feed starts: strictly older than this row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
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
    /// Visits: `visited_at`; referrals: their last event, else `created_at`; outreach:
    /// `held_at`.
    pub happened_at: i64,
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
    pub note: Option<String>,
    /// False when the status rule did not apply it (a conflicting decision).
    pub applied: bool,
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

/// The statuses in which a referral waits for someone.
pub const OPEN_STATUSES: &str = "('submitted', 'accepted', 'needs-documents')";

/// The read queries, per document type.
struct Table {
    kind: DocKind,
    table: &'static str,
    /// When a row happened, for sorting and date filters.
    at: &'static str,
    /// The select list after `kind, document_id, area, created_by, worker_name, happened_at`.
    columns: &'static str,
}

const TABLES: [Table; 3] = [
    Table {
        kind: DocKind::Visit,
        table: "visits",
        at: "x.visited_at",
        columns: "x.nik, x.name, x.ppks, x.purpose, x.notes_excerpt AS excerpt, x.follow_up_on, \
                  CAST(NULL AS TEXT) AS program, CAST(NULL AS TEXT) AS status, \
                  CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS place, \
                  CAST(NULL AS BIGINT) AS attendees",
    },
    Table {
        kind: DocKind::Referral,
        table: "referrals",
        at: "COALESCE(x.last_event_at, x.created_at)",
        columns: "x.nik, x.name, x.ppks, CAST(NULL AS TEXT) AS purpose, \
                  x.reason_excerpt AS excerpt, CAST(NULL AS TEXT) AS follow_up_on, x.program, \
                  x.status, CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS place, \
                  CAST(NULL AS BIGINT) AS attendees",
    },
    Table {
        kind: DocKind::Outreach,
        table: "outreach",
        at: "x.held_at",
        columns: "CAST(NULL AS TEXT) AS nik, CAST(NULL AS TEXT) AS name, \
                  CAST(NULL AS TEXT) AS ppks, CAST(NULL AS TEXT) AS purpose, \
                  x.notes_excerpt AS excerpt, CAST(NULL AS TEXT) AS follow_up_on, \
                  CAST(NULL AS TEXT) AS program, CAST(NULL AS TEXT) AS status, x.topic, x.place, \
                  x.attendees",
    },
];

/// The merged feed: each table's newest `limit` matching rows, then the newest `limit` of
/// those; `None` when no table can match.
pub fn feed_sql(f: &FeedFilter) -> Option<Sql> {
    let mut sql = Sql::default();
    let mut branches = 0;
    for t in TABLES.iter().filter(|t| f.includes(t.kind)) {
        if branches > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(&format!(
            "SELECT * FROM (SELECT '{kind}' AS kind, x.document_id, x.area, x.created_by, \
             u.name AS worker_name, {at} AS happened_at, {columns} \
             FROM {table} x LEFT JOIN users u ON u.id = x.created_by WHERE ",
            kind = t.kind.as_str(),
            at = t.at,
            columns = t.columns,
            table = t.table,
        ));
        sql.in_scope("x.area", &f.scope.areas);
        if let Some(area) = &f.area {
            sql.push(" AND ")
                .in_scope("x.area", std::slice::from_ref(area));
        }
        if let Some(worker) = &f.worker {
            sql.push(" AND x.created_by = ").text(worker.as_str());
        }
        if let Some(from) = f.from {
            sql.push(&format!(" AND {} >= ", t.at)).int(from);
        }
        if let Some(until) = f.until {
            sql.push(&format!(" AND {} < ", t.at)).int(until);
        }
        if let Some(ppks) = f.ppks {
            sql.push(" AND x.ppks LIKE ")
                .text(format!("%|{}|%", ppks.as_str()));
        }
        if let Some(program) = f.program {
            sql.push(" AND x.program = ").text(program.as_str());
        }
        if let Some(nik) = &f.nik {
            sql.push(" AND x.nik = ").text(nik.as_str());
        }
        if let Some(c) = &f.before {
            sql.push(&format!(" AND ({} < ", t.at)).int(c.at);
            sql.push(&format!(" OR ({} = ", t.at)).int(c.at);
            sql.push(" AND x.document_id < ")
                .text(c.doc.as_str())
                .push("))");
        }
        sql.push(" ORDER BY happened_at DESC, document_id DESC LIMIT ")
            .int(f.limit)
            .push(&format!(") AS b{branches}"));
        branches += 1;
    }
    if branches == 0 {
        return None;
    }
    sql.push(" ORDER BY happened_at DESC, document_id DESC LIMIT ")
        .int(f.limit);
    Some(sql)
}

/// The events of these referrals, each referral's in order.
pub fn events_sql(docs: &[String]) -> Sql {
    let mut sql = Sql::new(
        "SELECT document_id, seq, kind, at, by_user, note, applied FROM referral_events \
         WHERE document_id IN (",
    );
    in_list(&mut sql, docs);
    sql.push(") ORDER BY document_id, seq");
    sql
}

/// Placeholders for a non-empty list of values; an empty list matches nothing.
fn in_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        sql.push("NULL");
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.text(v.as_str());
    }
}

/// `SELECT <what> FROM <table> x WHERE <scope>` for every table the scope reads, joined by
/// `UNION`: the distinct values of a column across the feed.
fn distinct_sql(scope: &Scope, column: &str) -> Option<Sql> {
    let mut sql = Sql::default();
    let mut any = false;
    for t in TABLES.iter().filter(|t| scope.reads(t.kind)) {
        if any {
            sql.push(" UNION ");
        }
        sql.push(&format!("SELECT x.{column} AS v FROM {} x WHERE ", t.table));
        sql.in_scope("x.area", &scope.areas);
        any = true;
    }
    any.then_some(sql)
}

/// Areas with documents in scope.
pub fn facet_areas_sql(scope: &Scope) -> Option<Sql> {
    distinct_sql(scope, "area").map(|mut s| {
        s.push(" ORDER BY 1");
        s
    })
}

/// Authors of documents in scope, with their names.
pub fn facet_workers_sql(scope: &Scope) -> Option<Sql> {
    distinct_sql(scope, "created_by").map(|inner| {
        let mut sql = Sql::new("SELECT a.v AS created_by, u.name FROM (");
        sql.text.push_str(&inner.text);
        sql.args = inner.args;
        sql.push(") AS a LEFT JOIN users u ON u.id = a.v");
        sql
    })
}

/// A query over one table in scope: `head` then ` WHERE <scope>` then `tail`, with
/// `range` (column, from, until) as extra conditions.
fn scoped(
    scope: &Scope,
    kind: DocKind,
    head: &str,
    range: Option<(&str, i64, i64)>,
    tail: &str,
) -> Option<Sql> {
    if !scope.reads(kind) {
        return None;
    }
    let mut sql = Sql::new(head);
    sql.push(" WHERE ").in_scope("area", &scope.areas);
    if let Some((column, from, until)) = range {
        sql.push(&format!(" AND {column} >= ")).int(from);
        sql.push(&format!(" AND {column} < ")).int(until);
    }
    sql.push(" ").push(tail);
    Some(sql)
}

/// Visits per worker and week.
pub fn weekly_sql(scope: &Scope, r: &SummaryRange) -> Option<Sql> {
    let mut sql = Sql::new("SELECT created_by, (visited_at + ");
    sql.int(WEEK_SHIFT_MS).push(&format!(
        ") / {WEEK_MS} AS week, COUNT(*) AS visits FROM visits"
    ));
    let rest = scoped(
        scope,
        DocKind::Visit,
        "",
        Some(("visited_at", r.weeks_from, r.weeks_until)),
        "GROUP BY 1, 2",
    )?;
    append(&mut sql, rest);
    Some(sql)
}

/// Appends another [`Sql`], renumbering its placeholders after ours.
fn append(sql: &mut Sql, other: Sql) {
    let offset = sql.args.len();
    let mut text = String::with_capacity(other.text.len());
    let mut rest = other.text.as_str();
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let digits: String = rest[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n: usize = digits.parse().expect("a placeholder number");
        text.push_str(&format!("${}", n + offset));
        rest = &rest[i + 1 + digits.len()..];
    }
    text.push_str(rest);
    sql.text.push_str(&text);
    sql.args.extend(other.args);
}

pub fn last_visit_sql(scope: &Scope) -> Option<Sql> {
    scoped(
        scope,
        DocKind::Visit,
        "SELECT created_by, MAX(visited_at) AS n FROM visits",
        None,
        "GROUP BY created_by",
    )
}

pub fn open_referrals_sql(scope: &Scope) -> Option<Sql> {
    scoped(
        scope,
        DocKind::Referral,
        "SELECT created_by, COUNT(*) AS n FROM referrals",
        None,
        &format!("AND status IN {OPEN_STATUSES} GROUP BY created_by"),
    )
}

pub fn area_visits_sql(scope: &Scope, r: &SummaryRange) -> Option<Sql> {
    scoped(
        scope,
        DocKind::Visit,
        "SELECT area, COUNT(*) AS n, CAST(0 AS BIGINT) AS m, CAST(0 AS BIGINT) AS o FROM visits",
        Some(("visited_at", r.from, r.until)),
        "GROUP BY area",
    )
}

pub fn area_referrals_sql(scope: &Scope, r: &SummaryRange) -> Option<Sql> {
    let mut sql = Sql::new(&format!(
        "SELECT area, COUNT(CASE WHEN status IN {OPEN_STATUSES} THEN 1 END) AS n, \
         COUNT(CASE WHEN decided_at >= "
    ));
    sql.int(r.from).push(" AND decided_at < ").int(r.until);
    sql.push(" THEN 1 END) AS m, COUNT(CASE WHEN submitted_at >= ")
        .int(r.from)
        .push(" AND submitted_at < ")
        .int(r.until);
    sql.push(" THEN 1 END) AS o FROM referrals");
    let rest = scoped(scope, DocKind::Referral, "", None, "GROUP BY area")?;
    append(&mut sql, rest);
    Some(sql)
}

pub fn area_outreach_sql(scope: &Scope, r: &SummaryRange) -> Option<Sql> {
    scoped(
        scope,
        DocKind::Outreach,
        "SELECT area, COUNT(*) AS n, CAST(COALESCE(SUM(attendees), 0) AS BIGINT) AS m, \
         CAST(0 AS BIGINT) AS o FROM outreach",
        Some(("held_at", r.from, r.until)),
        "GROUP BY area",
    )
}

pub const PEOPLE_SQL: &str =
    "SELECT id, name, role, areas, disabled_at FROM users ORDER BY name, id";

/// The devices, not revoked, of these users.
pub fn devices_sql(users: &[String]) -> Sql {
    let mut sql = Sql::new(
        "SELECT user_id, id, label, last_seen_at FROM devices \
         WHERE revoked_at IS NULL AND user_id IN (",
    );
    in_list(&mut sql, users);
    sql.push(") ORDER BY user_id, created_at, id");
    sql
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
    /// Rows of the merged feed, newest first.
    fn feed<'a>(&'a self, filter: &'a FeedFilter) -> super::BoxFuture<'a, Vec<FeedRow>>;
    /// The events of these referrals (document ids), each referral's in order.
    fn referral_events<'a>(&'a self, docs: &'a [String]) -> super::BoxFuture<'a, Vec<EventLine>>;
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
                    self.activity_rows($crate::storage::activity::feed_sql(filter))
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
                    self.activity_rows(Some($crate::storage::activity::events_sql(docs)))
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
                        self.activity_rows(a::facet_areas_sql(scope)).await?;
                    let mut workers: Vec<(String, Option<String>)> =
                        self.activity_rows(a::facet_workers_sql(scope)).await?;
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
                        weekly: self.activity_rows(a::weekly_sql(scope, range)).await?,
                        last_visit: self.activity_rows(a::last_visit_sql(scope)).await?,
                        open_referrals: self.activity_rows(a::open_referrals_sql(scope)).await?,
                        area_visits: self.activity_rows(a::area_visits_sql(scope, range)).await?,
                        area_referrals: self
                            .activity_rows(a::area_referrals_sql(scope, range))
                            .await?,
                        area_outreach: self
                            .activity_rows(a::area_outreach_sql(scope, range))
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
                        .activity_rows(Some($crate::storage::query::Sql::new(a::PEOPLE_SQL)))
                        .await?;
                    let people = a::summary_people(all, scope, &authors);
                    let ids: Vec<String> = people.iter().map(|p| p.id.clone()).collect();
                    data.devices = if ids.is_empty() {
                        Vec::new()
                    } else {
                        self.activity_rows(Some(a::devices_sql(&ids))).await?
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

    fn scope(kinds: &[DocKind]) -> Scope {
        Scope {
            areas: vec![RegionCode::parse_prefix("32.77.01").unwrap()],
            kinds: kinds.to_vec(),
        }
    }

    #[test]
    fn the_feed_reads_only_tables_that_can_match() {
        let all = [DocKind::Visit, DocKind::Referral, DocKind::Outreach];
        let f = FeedFilter::new(scope(&all), 51);
        let sql = feed_sql(&f).unwrap();
        assert_eq!(sql.text.matches("UNION ALL").count(), 2);
        let supervisor = FeedFilter::new(scope(&[DocKind::Visit, DocKind::Referral]), 51);
        assert!(
            !feed_sql(&supervisor)
                .unwrap()
                .text
                .contains("FROM outreach")
        );
        let by_program = FeedFilter {
            program: Some(Program::Pkh),
            ..f.clone()
        };
        let sql = feed_sql(&by_program).unwrap();
        assert!(!sql.text.contains("UNION"), "{}", sql.text);
        assert!(sql.text.contains("FROM referrals"));
        let outreach_by_ppks = FeedFilter {
            kind: Some(DocKind::Outreach),
            ppks: Some(PpksCategory::FakirMiskin),
            ..f
        };
        assert!(feed_sql(&outreach_by_ppks).is_none());
    }

    #[test]
    fn appended_queries_keep_their_placeholders_in_order() {
        let range = SummaryRange {
            from: 10,
            until: 20,
            weeks_from: 1,
            weeks_until: 30,
        };
        let sql = area_referrals_sql(&scope(&[DocKind::Referral]), &range).unwrap();
        let placeholders = sql.text.matches('$').count();
        assert_eq!(placeholders, sql.args.len(), "{}", sql.text);
        assert!(
            sql.text.contains("$5") && sql.text.contains("$6"),
            "{}",
            sql.text
        );
        let weekly = weekly_sql(&scope(&[DocKind::Visit]), &range).unwrap();
        assert_eq!(weekly.text.matches('$').count(), weekly.args.len());
    }

    #[test]
    fn weeks_start_on_monday_in_wib() {
        // Monday 2026-11-23 00:00 WIB is 2026-11-22T17:00:00Z.
        let monday = 1_795_366_800_000;
        assert_eq!(week_start(week_of(monday)), monday);
        assert_eq!(week_of(monday - 1), week_of(monday) - 1);
        assert_eq!(week_of(monday + WEEK_MS - 1), week_of(monday));
    }
}
