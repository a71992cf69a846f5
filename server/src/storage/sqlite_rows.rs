//! SQLite's SQL for a run of appends and its query rows (`super::projection`): each kind of
//! row in a few statements of many `VALUES` rows each ([`parts`]), with anonymous
//! placeholders ([`anonymous_rows`]).

use std::collections::HashSet;

use fieldsync_protocol::DocumentId;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqliteConnection};

use super::CHUNK_CHANGES;
use super::projection::{
    Append, CLAIM, CLAIM_END, CLEARED, EVENT_COLUMNS, OUTREACH_COLUMNS, OUTREACH_UPSERT, Plan,
    REFERRAL_COLUMNS, REFERRAL_UPSERT, Rows, Stored, VISIT_COLUMNS, VISIT_UPSERT, documents,
};
use super::query::{anonymous_rows, parts};

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// `head VALUES (?, …), … tail` for each of the [`parts`] of `rows`, `columns` values a row,
/// bound by `bind`; returns what the statements return, if `tail` returns anything.
async fn each_rows<T>(
    conn: &mut SqliteConnection,
    head: &str,
    columns: usize,
    tail: &str,
    rows: &[T],
    bind: impl Fn(Query, &T) -> Query,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    let mut returned = Vec::new();
    for part in parts(rows) {
        let sql = format!(
            "{head} VALUES {} {tail}",
            anonymous_rows(part.len(), columns)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in part {
            query = bind(query, row);
        }
        returned.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(returned)
}

/// The first column of each row.
fn first<T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
    rows: Vec<sqlx::sqlite::SqliteRow>,
) -> Result<Vec<T>, sqlx::Error> {
    use sqlx::Row;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Stores `run`'s chunks, in order, and writes the query rows of every document whose state
/// includes each chunk stored so far; `held` says, per document, the last chunk this process
/// holds. The caller's transaction holds SQLite's write lock, so no other process adds a
/// chunk until it ends.
pub(super) async fn append<'a>(
    conn: &mut SqliteConnection,
    run: &[Append<'a>],
    held: impl Fn(DocumentId) -> i64,
    now: i64,
) -> Result<Stored<'a>, sqlx::Error> {
    if run.is_empty() {
        return Ok(Stored::default());
    }
    let docs = documents(run);
    let lacking: HashSet<String> = first(
        each_rows(
            conn,
            "WITH h (d, held) AS (",
            2,
            ") SELECT h.d FROM h WHERE EXISTS (SELECT 1 FROM chunks c \
             WHERE c.document_id = h.d AND c.id > h.held)",
            &docs,
            |q, (doc, name)| q.bind(name).bind(held(*doc)),
        )
        .await?,
    )?
    .into_iter()
    .collect();

    // Rows are inserted in order and `AUTOINCREMENT` gives each a larger id than the last,
    // so the sorted ids are the run's, in order, whatever order RETURNING yields them in.
    let mut ids: Vec<i64> = first(
        each_rows(
            conn,
            "INSERT INTO chunks (document_id, kind, data, created_at)",
            4,
            "RETURNING id",
            run,
            |q, (doc, bytes, _)| {
                q.bind(doc.to_string())
                    .bind(CHUNK_CHANGES)
                    .bind(*bytes)
                    .bind(now)
            },
        )
        .await?,
    )?;
    ids.sort_unstable();

    let stored = Stored::of(run, &ids, &lacking);
    write(conn, &stored.rows).await?;
    Ok(stored)
}

/// Replaces each document's query rows with those of its last state, unless rows computed
/// from a newer chunk are already there. A document appears at most once in `rows`.
pub(super) async fn write(
    conn: &mut SqliteConnection,
    rows: &[Rows<'_>],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let claimed: HashSet<String> = first(
        each_rows(conn, CLAIM, 2, CLAIM_END, rows, |q, r| {
            q.bind(&r.doc).bind(r.source)
        })
        .await?,
    )?
    .into_iter()
    .collect();
    let plan = Plan::of(rows, &claimed);
    let received_at = crate::storage::now_millis();

    for (table, docs) in CLEARED.iter().zip(&plan.clear) {
        for part in parts(docs) {
            let marks = vec!["?"; part.len()].join(", ");
            let sql = format!("DELETE FROM {table} WHERE document_id IN ({marks})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for doc in part {
                query = query.bind(*doc);
            }
            query.execute(&mut *conn).await?;
        }
    }
    each_rows(
        conn,
        "INSERT INTO attachment_refs (document_id, sha256)",
        2,
        "",
        &plan.attachments,
        |q, (doc, hash)| q.bind(*doc).bind(hash),
    )
    .await?;
    each_rows(
        conn,
        &format!("INSERT INTO visits ({VISIT_COLUMNS})"),
        16,
        &VISIT_UPSERT,
        &plan.visits,
        |q, (doc, v)| {
            q.bind(*doc)
                .bind(&v.common.area)
                .bind(&v.common.created_by)
                .bind(v.common.created_at)
                .bind(v.common.schema)
                .bind(&v.person.nik)
                .bind(&v.person.kk)
                .bind(&v.person.name)
                .bind(&v.person.ppks)
                .bind(v.visited_at)
                .bind(&v.purpose)
                .bind(&v.follow_up_on)
                .bind(v.lat)
                .bind(v.lon)
                .bind(&v.notes_excerpt)
                .bind(received_at)
        },
    )
    .await?;
    each_rows(
        conn,
        &format!("INSERT INTO referrals ({REFERRAL_COLUMNS})"),
        22,
        &REFERRAL_UPSERT,
        &plan.referrals,
        |q, (doc, r)| {
            q.bind(*doc)
                .bind(&r.common.area)
                .bind(&r.common.created_by)
                .bind(r.common.created_at)
                .bind(r.common.schema)
                .bind(&r.person.nik)
                .bind(&r.person.kk)
                .bind(&r.person.name)
                .bind(&r.person.ppks)
                .bind(&r.program)
                .bind(&r.status)
                .bind(&r.visit_id)
                .bind(r.consent_given)
                .bind(r.documents[0])
                .bind(r.documents[1])
                .bind(r.documents[2])
                .bind(r.documents[3])
                .bind(&r.reason_excerpt)
                .bind(r.submitted_at)
                .bind(r.decided_at)
                .bind(r.last_event_at)
                .bind(received_at)
        },
    )
    .await?;
    each_rows(
        conn,
        &format!("INSERT INTO referral_events ({EVENT_COLUMNS})"),
        7,
        "",
        &plan.events,
        |q, (doc, e)| {
            q.bind(*doc)
                .bind(e.seq)
                .bind(&e.kind)
                .bind(e.at)
                .bind(&e.by)
                .bind(&e.note)
                .bind(e.applied)
        },
    )
    .await?;
    each_rows(
        conn,
        &format!("INSERT INTO outreach ({OUTREACH_COLUMNS})"),
        11,
        &OUTREACH_UPSERT,
        &plan.outreach,
        |q, (doc, o)| {
            q.bind(*doc)
                .bind(&o.common.area)
                .bind(&o.common.created_by)
                .bind(o.common.created_at)
                .bind(o.common.schema)
                .bind(&o.topic)
                .bind(o.held_at)
                .bind(&o.place)
                .bind(o.attendees)
                .bind(&o.notes_excerpt)
                .bind(received_at)
        },
    )
    .await?;
    each_rows(
        conn,
        "INSERT INTO name_words (word, document_id)",
        2,
        "ON CONFLICT DO NOTHING",
        &plan.words,
        |q, (word, doc)| q.bind(word).bind(*doc),
    )
    .await?;
    Ok(())
}
