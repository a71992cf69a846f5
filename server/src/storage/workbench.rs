//! What the coordinator's workbench reads: the lists of what needs action in the viewer's
//! areas (follow-ups due and overdue, referrals waiting on the worker or on enrolment, phones
//! not synced, workers without visits, records that arrived late) and each worker's caseload.
//!
//! Every read is bounded by a [`Scope`] (the reader's areas and the document types their role
//! may read); the thresholds come in as [`Cutoffs`], computed by the web from its named
//! constants. The SQL is the same on both backends; [`workbench_impl`] runs it for each.

use fieldsync_core::schema::DocKind;

use super::activity::{DeviceSeen, Person, Scope, WorkerCount};
use super::query::Sql;

/// Referral statuses that end a case: a referral in any other is an open case.
pub const CLOSED_STATUSES: &str = "('closed', 'enrolled', 'rejected', 'withdrawn')";

/// When each list starts counting. Times are epoch milliseconds; days are `YYYY-MM-DD` in
/// WIB, compared as text with `follow_up_on` (which the schema keeps in that form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutoffs {
    /// Today, in WIB: a follow-up before it is overdue.
    pub today: String,
    /// The last day (Sunday) of this week: a follow-up from today to it is due this week.
    pub week_end: String,
    /// Monday 00:00 WIB of this week, and the Monday after.
    pub week_from: i64,
    pub week_until: i64,
    /// A referral needing documents whose latest event is before this waits on the worker.
    pub needs_documents_before: i64,
    /// An approved referral decided before this waits on enrolment.
    pub approved_before: i64,
    /// A phone last seen before this (or never) has not synced.
    pub unsynced_before: i64,
    /// Records received at or after this are recent…
    pub late_since: i64,
    /// …and late when received at least this long after their own date.
    pub late_by: i64,
    /// Most rows each list holds (its total is counted in full).
    pub limit: i64,
}

/// One record in a list: a visit with a follow-up, a referral, or a late record.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkRow {
    /// `visit`, `referral` or `outreach`.
    pub kind: String,
    pub document_id: String,
    pub area: String,
    pub created_by: String,
    pub worker_name: Option<String>,
    pub nik: Option<String>,
    pub name: Option<String>,
    /// The record's own date: `visited_at`, a referral's `created_at`, `held_at`.
    pub dated_at: i64,
    /// When the server first received it.
    pub received_at: i64,
    pub follow_up_on: Option<String>,
    pub program: Option<String>,
    pub status: Option<String>,
    /// Referrals: since when they wait (their latest event, or their decision).
    pub since: Option<i64>,
    /// How many records match in all; `rows` holds at most [`Cutoffs::limit`].
    pub total: i64,
}

/// A list and its full count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkList {
    pub rows: Vec<WorkRow>,
    pub total: i64,
}

impl WorkList {
    pub fn of(rows: Vec<WorkRow>) -> Self {
        let total = rows.first().map_or(0, |r| r.total);
        Self { rows, total }
    }
}

/// A field worker in the viewer's areas and their caseload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLoad {
    pub person: Person,
    /// Referrals not closed, enrolled, rejected or withdrawn.
    pub open_cases: i64,
    /// Follow-ups overdue.
    pub overdue: i64,
    pub visits_this_week: i64,
    /// Their phones, not revoked.
    pub devices: Vec<DeviceSeen>,
}

impl WorkerLoad {
    /// The latest sync of any of their phones.
    pub fn last_sync(&self) -> Option<i64> {
        self.devices.iter().filter_map(|d| d.last_seen_at).max()
    }
}

/// Everything the workbench shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkbenchData {
    pub follow_ups_due: WorkList,
    pub follow_ups_overdue: WorkList,
    pub needs_documents: WorkList,
    pub approved_waiting: WorkList,
    pub late: WorkList,
    /// (worker, phone) for each phone not synced since [`Cutoffs::unsynced_before`].
    pub unsynced: Vec<(Person, DeviceSeen)>,
    /// Workers with no visit this week.
    pub idle: Vec<Person>,
    /// Every field worker in the areas, most in need first.
    pub workers: Vec<WorkerLoad>,
}

/// The field workers a workbench lists: enabled `peksos` whose areas overlap the scope.
pub fn workers_in(all: Vec<Person>, scope: &Scope) -> Vec<Person> {
    super::activity::summary_people(all, scope, &[])
        .into_iter()
        .filter(|p| p.role == "peksos" && p.disabled_at.is_none())
        .collect()
}

/// Arranges the counts per worker, most in need first: most overdue follow-ups, then most
/// open cases, then the longest without a sync, then by name.
pub fn caseloads(
    people: &[Person],
    devices: &[DeviceSeen],
    open: &[WorkerCount],
    overdue: &[WorkerCount],
    this_week: &[WorkerCount],
) -> Vec<WorkerLoad> {
    let count = |counts: &[WorkerCount], id: &str| {
        counts
            .iter()
            .find(|c| c.created_by == id)
            .map_or(0, |c| c.n)
    };
    let mut loads: Vec<WorkerLoad> = people
        .iter()
        .map(|p| WorkerLoad {
            person: p.clone(),
            open_cases: count(open, &p.id),
            overdue: count(overdue, &p.id),
            visits_this_week: count(this_week, &p.id),
            devices: devices
                .iter()
                .filter(|d| d.user_id == p.id)
                .cloned()
                .collect(),
        })
        .collect();
    loads.sort_by(|a, b| {
        b.overdue
            .cmp(&a.overdue)
            .then(b.open_cases.cmp(&a.open_cases))
            .then(a.last_sync().cmp(&b.last_sync()))
            .then(
                a.person
                    .name
                    .to_lowercase()
                    .cmp(&b.person.name.to_lowercase()),
            )
            .then(a.person.id.cmp(&b.person.id))
    });
    loads
}

/// The SQL of the workbench: constants and placeholders only, the same on both backends.
pub mod sql {
    use super::*;

    const NO_TEXT: &str = "CAST(NULL AS TEXT)";

    /// `follow_up_on` set and no later visit of the same beneficiary (in any area: a visit
    /// made elsewhere still answers the follow-up).
    const OPEN_FOLLOW_UP: &str = " AND x.follow_up_on IS NOT NULL AND NOT EXISTS \
        (SELECT 1 FROM visits y WHERE y.nik = x.nik AND y.visited_at > x.visited_at)";

    fn visit_head() -> String {
        format!(
            "SELECT 'visit' AS kind, x.document_id, x.area, x.created_by, u.name AS worker_name, \
             x.nik, x.name, x.visited_at AS dated_at, \
             x.received_at AS received_at, x.follow_up_on, \
             {NO_TEXT} AS program, {NO_TEXT} AS status, CAST(NULL AS BIGINT) AS since, \
             COUNT(*) OVER () AS total \
             FROM visits x LEFT JOIN users u ON u.id = x.created_by WHERE "
        )
    }

    /// Visits whose follow-up falls in `[from, to]` (`from` `None`: any day up to `to`,
    /// exclusive), still open, soonest first.
    pub fn follow_ups(
        scope: &Scope,
        from: Option<&str>,
        to: &str,
        to_inclusive: bool,
        limit: i64,
    ) -> Option<Sql> {
        if !scope.reads(DocKind::Visit) {
            return None;
        }
        let mut sql = Sql::new(&visit_head());
        sql.in_scope("x.area", &scope.areas).push(OPEN_FOLLOW_UP);
        if let Some(from) = from {
            sql.push(" AND x.follow_up_on >= ").text(from);
        }
        sql.push(if to_inclusive {
            " AND x.follow_up_on <= "
        } else {
            " AND x.follow_up_on < "
        })
        .text(to);
        sql.push(" ORDER BY x.follow_up_on, x.document_id LIMIT ")
            .int(limit);
        Some(sql)
    }

    /// Overdue follow-ups per worker.
    pub fn overdue_per_worker(scope: &Scope, today: &str) -> Option<Sql> {
        if !scope.reads(DocKind::Visit) {
            return None;
        }
        let mut sql = Sql::new("SELECT x.created_by, COUNT(*) AS n FROM visits x WHERE ");
        sql.in_scope("x.area", &scope.areas).push(OPEN_FOLLOW_UP);
        sql.push(" AND x.follow_up_on < ").text(today);
        sql.push(" GROUP BY x.created_by");
        Some(sql)
    }

    /// Referrals in `status` whose `since` column is before `before`, longest waiting first.
    pub fn referrals_waiting(
        scope: &Scope,
        status: &str,
        since: &str,
        before: i64,
        limit: i64,
    ) -> Option<Sql> {
        if !scope.reads(DocKind::Referral) {
            return None;
        }
        let mut sql = Sql::new(&format!(
            "SELECT 'referral' AS kind, x.document_id, x.area, x.created_by, \
             u.name AS worker_name, x.nik, x.name, x.created_at AS dated_at, \
             x.received_at AS received_at, \
             {NO_TEXT} AS follow_up_on, x.program, x.status, {since} AS since, \
             COUNT(*) OVER () AS total \
             FROM referrals x LEFT JOIN users u ON u.id = x.created_by WHERE "
        ));
        sql.in_scope("x.area", &scope.areas);
        sql.push(" AND x.status = ").text(status);
        sql.push(&format!(" AND {since} < ")).int(before);
        sql.push(&format!(" ORDER BY {since}, x.document_id LIMIT "))
            .int(limit);
        Some(sql)
    }

    /// Records received since `c.late_since` at least `c.late_by` after their own date,
    /// the last received first.
    pub fn late(scope: &Scope, c: &Cutoffs) -> Option<Sql> {
        let tables: [(DocKind, &str, &str, &str); 3] = [
            (
                DocKind::Visit,
                "visits",
                "x.visited_at",
                "x.nik, x.name, x.follow_up_on, CAST(NULL AS TEXT) AS program, \
                 CAST(NULL AS TEXT) AS status",
            ),
            (
                DocKind::Referral,
                "referrals",
                "x.created_at",
                "x.nik, x.name, CAST(NULL AS TEXT) AS follow_up_on, x.program, x.status",
            ),
            (
                DocKind::Outreach,
                "outreach",
                "x.held_at",
                "CAST(NULL AS TEXT) AS nik, x.topic AS name, CAST(NULL AS TEXT) AS follow_up_on, \
                 CAST(NULL AS TEXT) AS program, CAST(NULL AS TEXT) AS status",
            ),
        ];
        let mut sql = Sql::new("SELECT l.*, COUNT(*) OVER () AS total FROM (");
        let mut any = false;
        for (kind, table, dated, columns) in tables {
            if !scope.reads(kind) {
                continue;
            }
            if any {
                sql.push(" UNION ALL ");
            }
            any = true;
            sql.push(&format!(
                "SELECT '{kind}' AS kind, x.document_id, x.area, x.created_by, \
                 u.name AS worker_name, {dated} AS dated_at, \
                 x.received_at AS received_at, {columns}, \
                 CAST(NULL AS BIGINT) AS since \
                 FROM {table} x LEFT JOIN users u ON u.id = x.created_by WHERE ",
                kind = kind.as_str(),
            ));
            sql.in_scope("x.area", &scope.areas);
            sql.push(" AND x.received_at >= ").int(c.late_since);
            sql.push(&format!(" AND x.received_at - {dated} >= "))
                .int(c.late_by);
        }
        if !any {
            return None;
        }
        sql.push(") AS l ORDER BY l.received_at DESC, l.document_id DESC LIMIT ")
            .int(c.limit);
        Some(sql)
    }

    /// Open cases per worker.
    pub fn open_cases(scope: &Scope) -> Option<Sql> {
        if !scope.reads(DocKind::Referral) {
            return None;
        }
        let mut sql = Sql::new("SELECT created_by, COUNT(*) AS n FROM referrals WHERE ");
        sql.in_scope("area", &scope.areas);
        sql.push(&format!(
            " AND status NOT IN {CLOSED_STATUSES} GROUP BY created_by"
        ));
        Some(sql)
    }

    /// Visits per worker in `[from, until)`.
    pub fn visits_between(scope: &Scope, from: i64, until: i64) -> Option<Sql> {
        if !scope.reads(DocKind::Visit) {
            return None;
        }
        let mut sql = Sql::new("SELECT created_by, COUNT(*) AS n FROM visits WHERE ");
        sql.in_scope("area", &scope.areas);
        sql.push(" AND visited_at >= ").int(from);
        sql.push(" AND visited_at < ").int(until);
        sql.push(" GROUP BY created_by");
        Some(sql)
    }
}

/// The workbench's reads.
pub trait Workbench {
    fn workbench<'a>(
        &'a self,
        scope: &'a Scope,
        cutoffs: &'a Cutoffs,
    ) -> super::BoxFuture<'a, WorkbenchData>;

    /// For the demo only, whose phones all sync at its start: every row's received time
    /// becomes its record's own date plus `lag` (never after `now`), as if each phone had
    /// synced soon after, except the visits `late_worker` made between 7 and 4 days before
    /// `now`, which arrive now, as from a phone that was long out of signal.
    fn settle_demo_receipts<'a>(
        &'a self,
        now: i64,
        lag: i64,
        late_worker: &'a str,
    ) -> super::BoxFuture<'a, ()>;
}

/// The statements of [`Workbench::settle_demo_receipts`] that move each table's rows to
/// their own date plus `$2`, never after `$1`: (table, the column of its own date).
pub(super) const SETTLE_DEMO: [(&str, &str); 3] = [
    ("visits", "visited_at"),
    ("referrals", "created_at"),
    ("outreach", "held_at"),
];

/// Implements [`Workbench`] for a backend on which [`super::activity::activity_impl`] was
/// instantiated (it runs its queries through that macro's `activity_rows`).
macro_rules! workbench_impl {
    ($storage:ty) => {
        impl $crate::storage::workbench::Workbench for $storage {
            fn settle_demo_receipts<'a>(
                &'a self,
                now: i64,
                lag: i64,
                late_worker: &'a str,
            ) -> $crate::storage::BoxFuture<'a, ()> {
                Box::pin(async move {
                    const DAY: i64 = 86_400_000;
                    let mut tx = self.pool.begin().await?;
                    for (table, dated) in $crate::storage::workbench::SETTLE_DEMO {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE {table} SET received_at = \
                             CASE WHEN {dated} + $1 < $2 THEN {dated} + $1 ELSE $2 END"
                        )))
                        .bind(lag)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "UPDATE visits SET received_at = $1 WHERE created_by = $2 \
                         AND visited_at >= $3 AND visited_at < $4",
                    )
                    .bind(now)
                    .bind(late_worker)
                    .bind(now - 7 * DAY)
                    .bind(now - 4 * DAY)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn workbench<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                c: &'a $crate::storage::workbench::Cutoffs,
            ) -> $crate::storage::BoxFuture<'a, $crate::storage::workbench::WorkbenchData> {
                use $crate::storage::activity as a;
                use $crate::storage::workbench as w;
                Box::pin(async move {
                    let list = w::WorkList::of;
                    let due: Vec<w::WorkRow> = self
                        .activity_rows(w::sql::follow_ups(
                            scope,
                            Some(&c.today),
                            &c.week_end,
                            true,
                            c.limit,
                        ))
                        .await?;
                    let overdue: Vec<w::WorkRow> = self
                        .activity_rows(w::sql::follow_ups(scope, None, &c.today, false, c.limit))
                        .await?;
                    let needs_documents: Vec<w::WorkRow> = self
                        .activity_rows(w::sql::referrals_waiting(
                            scope,
                            "needs-documents",
                            "COALESCE(x.last_event_at, x.created_at)",
                            c.needs_documents_before,
                            c.limit,
                        ))
                        .await?;
                    let approved: Vec<w::WorkRow> = self
                        .activity_rows(w::sql::referrals_waiting(
                            scope,
                            "approved",
                            "COALESCE(x.decided_at, x.last_event_at, x.created_at)",
                            c.approved_before,
                            c.limit,
                        ))
                        .await?;
                    let late: Vec<w::WorkRow> = self.activity_rows(w::sql::late(scope, c)).await?;
                    let all: Vec<a::Person> = self
                        .activity_rows(Some($crate::storage::query::Sql::new(a::sql::PEOPLE_SQL)))
                        .await?;
                    let people = w::workers_in(all, scope);
                    let ids: Vec<String> = people.iter().map(|p| p.id.clone()).collect();
                    let devices: Vec<a::DeviceSeen> = if ids.is_empty() {
                        Vec::new()
                    } else {
                        self.activity_rows(Some(a::sql::devices_sql(&ids))).await?
                    };
                    let open: Vec<a::WorkerCount> =
                        self.activity_rows(w::sql::open_cases(scope)).await?;
                    let overdue_counts: Vec<a::WorkerCount> = self
                        .activity_rows(w::sql::overdue_per_worker(scope, &c.today))
                        .await?;
                    let this_week: Vec<a::WorkerCount> = self
                        .activity_rows(w::sql::visits_between(scope, c.week_from, c.week_until))
                        .await?;
                    let workers =
                        w::caseloads(&people, &devices, &open, &overdue_counts, &this_week);
                    let unsynced = workers
                        .iter()
                        .flat_map(|l| {
                            l.devices
                                .iter()
                                .filter(|d| d.last_seen_at.is_none_or(|t| t < c.unsynced_before))
                                .map(|d| (l.person.clone(), d.clone()))
                        })
                        .collect();
                    let idle = workers
                        .iter()
                        .filter(|l| l.visits_this_week == 0)
                        .map(|l| l.person.clone())
                        .collect();
                    Ok(w::WorkbenchData {
                        follow_ups_due: list(due),
                        follow_ups_overdue: list(overdue),
                        needs_documents: list(needs_documents),
                        approved_waiting: list(approved),
                        late: list(late),
                        unsynced,
                        idle,
                        workers,
                    })
                })
            }
        }
    };
}

pub(super) use workbench_impl;

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::RegionCode;

    use super::*;

    fn scope(kinds: &[DocKind]) -> Scope {
        Scope {
            areas: vec![RegionCode::parse_prefix("32.77.01").unwrap()],
            kinds: kinds.to_vec(),
        }
    }

    fn cutoffs() -> Cutoffs {
        Cutoffs {
            today: "2026-12-01".into(),
            week_end: "2026-12-06".into(),
            week_from: 1,
            week_until: 2,
            needs_documents_before: 3,
            approved_before: 4,
            unsynced_before: 5,
            late_since: 6,
            late_by: 7,
            limit: 8,
        }
    }

    #[test]
    fn placeholders_match_their_arguments() {
        let all = scope(&[DocKind::Visit, DocKind::Referral, DocKind::Outreach]);
        let c = cutoffs();
        let queries = [
            sql::follow_ups(&all, Some("2026-12-01"), "2026-12-06", true, 5),
            sql::follow_ups(&all, None, "2026-12-01", false, 5),
            sql::overdue_per_worker(&all, "2026-12-01"),
            sql::referrals_waiting(&all, "approved", "x.decided_at", 9, 5),
            sql::late(&all, &c),
            sql::open_cases(&all),
            sql::visits_between(&all, 1, 2),
        ];
        for q in queries {
            let q = q.expect("a query");
            assert_eq!(q.text.matches('$').count(), q.args.len(), "{}", q.text);
        }
    }

    #[test]
    fn lists_read_only_what_the_role_may_read() {
        let supervisor = scope(&[DocKind::Visit, DocKind::Referral]);
        let late = sql::late(&supervisor, &cutoffs()).unwrap();
        assert!(!late.text.contains("outreach"), "{}", late.text);
        let nothing = scope(&[]);
        assert!(sql::late(&nothing, &cutoffs()).is_none());
        assert!(sql::follow_ups(&nothing, None, "2026-12-01", false, 5).is_none());
        assert!(sql::open_cases(&nothing).is_none());
    }

    fn person(id: &str) -> Person {
        Person {
            id: id.into(),
            name: id.to_uppercase(),
            role: "peksos".into(),
            areas: "32.77.01".into(),
            disabled_at: None,
        }
    }

    fn count(id: &str, n: i64) -> WorkerCount {
        WorkerCount {
            created_by: id.into(),
            n,
        }
    }

    #[test]
    fn caseloads_put_the_most_overdue_first() {
        let people = [person("ani"), person("budi"), person("cici")];
        let loads = caseloads(
            &people,
            &[],
            &[count("ani", 5), count("cici", 1)],
            &[count("budi", 2), count("cici", 2)],
            &[count("ani", 3)],
        );
        let order: Vec<&str> = loads.iter().map(|l| l.person.id.as_str()).collect();
        assert_eq!(order, ["cici", "budi", "ani"]);
        assert_eq!(loads[2].open_cases, 5);
        assert_eq!(loads[2].visits_this_week, 3);
    }
}
