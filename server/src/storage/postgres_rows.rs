//! PostgreSQL's SQL for a run of appends and its query rows (`super::projection`): each kind
//! of row in one statement over arrays (`unnest`), whose text never changes, so each is
//! prepared once per connection.

use std::collections::HashSet;
use std::sync::LazyLock;

use fieldsync_protocol::DocumentId;
use sqlx::PgConnection;

use super::CHUNK_CHANGES;
use super::projection::{
    Append, CLAIM, CLAIM_END, CLEARED, EVENT_COLUMNS, OUTREACH_COLUMNS, OUTREACH_UPSERT, Plan,
    REFERRAL_COLUMNS, REFERRAL_UPSERT, Rows, Stored, VISIT_COLUMNS, VISIT_UPSERT, documents,
};

/// Stores `run`'s chunks, in order, and writes the query rows of every document whose state
/// includes each chunk stored so far; `held` says, per document, the last chunk this process
/// holds. The caller holds every document's advisory lock, so every chunk another process
/// stored of them is committed, and none is added until this transaction ends.
pub(super) async fn append<'a>(
    conn: &mut PgConnection,
    run: &[Append<'a>],
    held: impl Fn(DocumentId) -> i64,
) -> Result<Stored<'a>, sqlx::Error> {
    if run.is_empty() {
        return Ok(Stored::default());
    }
    let (docs, names): (Vec<DocumentId>, Vec<String>) = documents(run).into_iter().unzip();
    let helds: Vec<i64> = docs.iter().map(|doc| held(*doc)).collect();
    let lacking: HashSet<String> = sqlx::query_scalar(
        "SELECT h.d FROM unnest($1::text[], $2::int8[]) AS h(d, held) \
         WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.document_id = h.d AND c.id > h.held)",
    )
    .bind(&names)
    .bind(&helds)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    // The ids are taken first and sorted, so that a document's later chunk gets the larger
    // id whatever order PostgreSQL inserts or returns rows in.
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('chunks', 'id')) FROM generate_series(1, $1)",
    )
    .bind(run.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    let run_docs: Vec<String> = run.iter().map(|(doc, ..)| doc.to_string()).collect();
    let bytes: Vec<&[u8]> = run.iter().map(|(_, bytes, _)| *bytes).collect();
    sqlx::query(
        "INSERT INTO chunks (id, document_id, kind, data) \
         SELECT i, d, $3, b FROM unnest($1::int8[], $2::text[], $4::bytea[]) AS t(i, d, b)",
    )
    .bind(&ids)
    .bind(&run_docs)
    .bind(CHUNK_CHANGES)
    .bind(&bytes)
    .execute(&mut *conn)
    .await?;

    let stored = Stored::of(run, &ids, &lacking);
    write(conn, &stored.rows).await?;
    Ok(stored)
}

/// `INSERT INTO table (columns) SELECT t.*, $n FROM unnest($1::type[], …) AS t`, then `end`:
/// every column but the last from an array, the last (`received_at`) one value for all rows.
fn from_arrays(table: &str, columns: &str, types: &[&str], end: &str) -> String {
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) SELECT t.*, ${} FROM unnest({}) AS t {end}",
        types.len() + 1,
        arrays.join(", ")
    )
}

static VISITS: LazyLock<String> = LazyLock::new(|| {
    let types = [
        "text", "text", "text", "int8", "int8", "text", "text", "text", "text", "int8", "text",
        "text", "float8", "float8", "text",
    ];
    from_arrays("visits", VISIT_COLUMNS, &types, &VISIT_UPSERT)
});
static REFERRALS: LazyLock<String> = LazyLock::new(|| {
    let types = [
        "text", "text", "text", "int8", "int8", "text", "text", "text", "text", "text", "text",
        "text", "bool", "bool", "bool", "bool", "bool", "text", "int8", "int8", "int8",
    ];
    from_arrays("referrals", REFERRAL_COLUMNS, &types, &REFERRAL_UPSERT)
});
static OUTREACH: LazyLock<String> = LazyLock::new(|| {
    let types = [
        "text", "text", "text", "int8", "int8", "text", "int8", "text", "int8", "text",
    ];
    from_arrays("outreach", OUTREACH_COLUMNS, &types, &OUTREACH_UPSERT)
});
static EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO referral_events ({EVENT_COLUMNS}) SELECT * FROM unnest($1::text[], \
         $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::bool[])"
    )
});
static CLAIMS: LazyLock<String> =
    LazyLock::new(|| format!("{CLAIM} SELECT * FROM unnest($1::text[], $2::int8[]) {CLAIM_END}"));
static CLEARS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CLEARED
        .iter()
        .map(|table| format!("DELETE FROM {table} WHERE document_id = ANY($1)"))
        .collect()
});

/// A column of `rows`, as the array bound to one `unnest` argument.
fn column<'a, R, T>(rows: &[(&'a str, &'a R)], cell: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(|(_, row)| cell(row)).collect()
}

/// The first column of `rows`: their documents.
fn docs<'a, R>(rows: &[(&'a str, R)]) -> Vec<&'a str> {
    rows.iter().map(|(doc, _)| *doc).collect()
}

/// Replaces each document's query rows with those of its last state, unless rows computed
/// from a newer chunk are already there. A document appears at most once in `rows`.
pub(super) async fn write(conn: &mut PgConnection, rows: &[Rows<'_>]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = rows.iter().map(|r| r.doc.as_str()).collect();
    let sources: Vec<i64> = rows.iter().map(|r| r.source).collect();
    let claimed: HashSet<String> = sqlx::query_scalar(CLAIMS.as_str())
        .bind(&names)
        .bind(&sources)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let plan = Plan::of(rows, &claimed);
    let received_at = crate::storage::now_millis();

    for (sql, docs) in CLEARS.iter().zip(&plan.clear) {
        if !docs.is_empty() {
            sqlx::query(sql.as_str())
                .bind(docs)
                .execute(&mut *conn)
                .await?;
        }
    }
    if !plan.attachments.is_empty() {
        let hashes: Vec<&str> = plan.attachments.iter().map(|(_, h)| h.as_str()).collect();
        sqlx::query(
            "INSERT INTO attachment_refs (document_id, sha256) \
             SELECT * FROM unnest($1::text[], $2::text[])",
        )
        .bind(docs(&plan.attachments))
        .bind(hashes)
        .execute(&mut *conn)
        .await?;
    }
    let visits = &plan.visits;
    if !visits.is_empty() {
        sqlx::query(VISITS.as_str())
            .bind(docs(visits))
            .bind(column(visits, |v| v.common.area.as_str()))
            .bind(column(visits, |v| v.common.created_by.as_str()))
            .bind(column(visits, |v| v.common.created_at))
            .bind(column(visits, |v| v.common.schema))
            .bind(column(visits, |v| v.person.nik.as_str()))
            .bind(column(visits, |v| v.person.kk.as_deref()))
            .bind(column(visits, |v| v.person.name.as_str()))
            .bind(column(visits, |v| v.person.ppks.as_str()))
            .bind(column(visits, |v| v.visited_at))
            .bind(column(visits, |v| v.purpose.as_deref()))
            .bind(column(visits, |v| v.follow_up_on.as_deref()))
            .bind(column(visits, |v| v.lat))
            .bind(column(visits, |v| v.lon))
            .bind(column(visits, |v| v.notes_excerpt.as_str()))
            .bind(received_at)
            .execute(&mut *conn)
            .await?;
    }
    let referrals = &plan.referrals;
    if !referrals.is_empty() {
        sqlx::query(REFERRALS.as_str())
            .bind(docs(referrals))
            .bind(column(referrals, |r| r.common.area.as_str()))
            .bind(column(referrals, |r| r.common.created_by.as_str()))
            .bind(column(referrals, |r| r.common.created_at))
            .bind(column(referrals, |r| r.common.schema))
            .bind(column(referrals, |r| r.person.nik.as_str()))
            .bind(column(referrals, |r| r.person.kk.as_deref()))
            .bind(column(referrals, |r| r.person.name.as_str()))
            .bind(column(referrals, |r| r.person.ppks.as_str()))
            .bind(column(referrals, |r| r.program.as_str()))
            .bind(column(referrals, |r| r.status.as_str()))
            .bind(column(referrals, |r| r.visit_id.as_deref()))
            .bind(column(referrals, |r| r.consent_given))
            .bind(column(referrals, |r| r.documents[0]))
            .bind(column(referrals, |r| r.documents[1]))
            .bind(column(referrals, |r| r.documents[2]))
            .bind(column(referrals, |r| r.documents[3]))
            .bind(column(referrals, |r| r.reason_excerpt.as_str()))
            .bind(column(referrals, |r| r.submitted_at))
            .bind(column(referrals, |r| r.decided_at))
            .bind(column(referrals, |r| r.last_event_at))
            .bind(received_at)
            .execute(&mut *conn)
            .await?;
    }
    let events = &plan.events;
    if !events.is_empty() {
        sqlx::query(EVENTS.as_str())
            .bind(docs(events))
            .bind(column(events, |e| e.seq))
            .bind(column(events, |e| e.kind.as_str()))
            .bind(column(events, |e| e.at))
            .bind(column(events, |e| e.by.as_str()))
            .bind(column(events, |e| e.note.as_deref()))
            .bind(column(events, |e| e.applied))
            .execute(&mut *conn)
            .await?;
    }
    let outreach = &plan.outreach;
    if !outreach.is_empty() {
        sqlx::query(OUTREACH.as_str())
            .bind(docs(outreach))
            .bind(column(outreach, |o| o.common.area.as_str()))
            .bind(column(outreach, |o| o.common.created_by.as_str()))
            .bind(column(outreach, |o| o.common.created_at))
            .bind(column(outreach, |o| o.common.schema))
            .bind(column(outreach, |o| o.topic.as_str()))
            .bind(column(outreach, |o| o.held_at))
            .bind(column(outreach, |o| o.place.as_str()))
            .bind(column(outreach, |o| o.attendees))
            .bind(column(outreach, |o| o.notes_excerpt.as_str()))
            .bind(received_at)
            .execute(&mut *conn)
            .await?;
    }
    if !plan.words.is_empty() {
        let words: Vec<&str> = plan.words.iter().map(|(w, _)| w.as_str()).collect();
        let docs: Vec<&str> = plan.words.iter().map(|(_, d)| *d).collect();
        sqlx::query(
            "INSERT INTO name_words (word, document_id) \
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(words)
        .bind(docs)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
