//! The SQL of [`super::Activity`]: built from constants and placeholders only, the same text
//! on SQLite and PostgreSQL. Counts are BIGINT on both (`COUNT`, or `CAST` around `SUM`), and
//! the NULL columns of the merged feed carry their type so a `UNION` lines up.

use fieldsync_core::schema::DocKind;

use super::{FeedFilter, Scope, SummaryRange, WEEK_MS, WEEK_SHIFT_MS};
use crate::storage::query::Sql;

/// The statuses in which a referral waits for someone.
pub const OPEN_STATUSES: &str = "('submitted', 'accepted', 'needs-documents')";

/// The read queries, per document type.
struct Table {
    kind: DocKind,
    table: &'static str,
    /// When a row happened (its own date), for the date filters.
    at: &'static str,
    /// Who acted last: the author, or for a referral whoever wrote its latest applied
    /// event (a supervisor's decision is the supervisor's).
    actor: &'static str,
    /// The select list after `kind, document_id, area, created_by, worker_name, happened_at`.
    columns: &'static str,
}

const TABLES: [Table; 3] = [
    Table {
        kind: DocKind::Visit,
        table: "visits",
        at: "x.visited_at",
        actor: "x.created_by",
        columns: "x.nik, x.name, x.ppks, x.purpose, x.notes_excerpt AS excerpt, x.follow_up_on, \
                  CAST(NULL AS TEXT) AS program, CAST(NULL AS TEXT) AS status, \
                  CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS place, \
                  CAST(NULL AS BIGINT) AS attendees",
    },
    Table {
        kind: DocKind::Referral,
        table: "referrals",
        at: "COALESCE(x.last_event_at, x.created_at)",
        actor: "COALESCE((SELECT e.by_user FROM referral_events e \
                WHERE e.document_id = x.document_id AND e.applied \
                ORDER BY e.seq DESC LIMIT 1), x.created_by)",
        columns: "x.nik, x.name, x.ppks, CAST(NULL AS TEXT) AS purpose, \
                  x.reason_excerpt AS excerpt, CAST(NULL AS TEXT) AS follow_up_on, x.program, \
                  x.status, CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS place, \
                  CAST(NULL AS BIGINT) AS attendees",
    },
    Table {
        kind: DocKind::Outreach,
        table: "outreach",
        at: "x.held_at",
        actor: "x.created_by",
        columns: "CAST(NULL AS TEXT) AS nik, CAST(NULL AS TEXT) AS name, \
                  CAST(NULL AS TEXT) AS ppks, CAST(NULL AS TEXT) AS purpose, \
                  x.notes_excerpt AS excerpt, CAST(NULL AS TEXT) AS follow_up_on, \
                  CAST(NULL AS TEXT) AS program, CAST(NULL AS TEXT) AS status, x.topic, x.place, \
                  x.attendees",
    },
];

/// The merged feed: each table's `limit` matching rows the server received last, then the
/// last `limit` of those; `None` when no table can match. Date filters apply to each
/// record's own date; the order and the cursor follow `received_at`.
pub fn feed_sql(f: &FeedFilter) -> Option<Sql> {
    let mut sql = Sql::default();
    let mut branches = 0;
    for t in TABLES.iter().filter(|t| f.includes(t.kind)) {
        if branches > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(&format!(
            "SELECT * FROM (SELECT '{kind}' AS kind, x.document_id, x.area, x.created_by, \
             u.name AS worker_name, {at} AS happened_at, \
             x.received_at AS received_at, {actor} AS actor, \
             ua.name AS actor_name, {columns} \
             FROM {table} x LEFT JOIN users u ON u.id = x.created_by \
             LEFT JOIN users ua ON ua.id = {actor} WHERE ",
            kind = t.kind.as_str(),
            at = t.at,
            actor = t.actor,
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
            sql.push(" AND (x.received_at < ").int(c.at);
            sql.push(" OR (x.received_at = ").int(c.at);
            sql.push(" AND x.document_id < ")
                .text(c.doc.as_str())
                .push("))");
        }
        sql.push(" ORDER BY received_at DESC, document_id DESC LIMIT ")
            .int(f.limit)
            .push(&format!(") AS b{branches}"));
        branches += 1;
    }
    if branches == 0 {
        return None;
    }
    sql.push(" ORDER BY received_at DESC, document_id DESC LIMIT ")
        .int(f.limit);
    Some(sql)
}

/// The events of these referrals, each referral's in order.
pub fn events_sql(docs: &[String]) -> Sql {
    let mut sql = Sql::new(
        "SELECT e.document_id, e.seq, e.kind, e.at, e.by_user, u.name AS by_name, e.note, \
         e.applied FROM referral_events e LEFT JOIN users u ON u.id = e.by_user \
         WHERE e.document_id IN (",
    );
    in_list(&mut sql, docs);
    sql.push(") ORDER BY e.document_id, e.seq");
    sql
}

/// The attachments of these documents, with the MIME type of those stored.
pub fn attachments_sql(docs: &[String]) -> Sql {
    let mut sql = Sql::new(
        "SELECT r.document_id, r.sha256, b.mime FROM attachment_refs r \
         LEFT JOIN blobs b ON b.sha256 = r.sha256 WHERE r.document_id IN (",
    );
    in_list(&mut sql, docs);
    sql.push(") ORDER BY r.document_id, r.sha256");
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

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::{PpksCategory, Program, RegionCode};

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
}
