//! PostgreSQL stores a group commit's appends in a fixed number of statements, however many
//! documents the batch holds: each kind of row goes in one statement over arrays (`unnest`).
//!
//! Every statement is a network round trip to PostgreSQL, and the writer waits for each
//! before the next. Written one document at a time (a chunk insert, the check for other
//! processes' chunks, the claim of the query rows, a delete, the main row, the name's
//! words), a batch of 128 new documents took 60–75 ms of round trips on loopback, and the
//! writer, which commits one batch at a time, was busy for nearly the whole storm.

use std::collections::{HashMap, HashSet};

use fieldsync_protocol::DocumentId;
use sqlx::PgConnection;

use super::CHUNK_CHANGES;
use crate::projection::Projection;

/// The query rows a run of writes leaves a document with.
pub(super) struct Rows<'a> {
    pub doc: String,
    /// The chunk the rows are computed from: the document's last in the run.
    pub source: i64,
    /// Every state the run reached, oldest first: the last gives the rows, and every one
    /// gives the name's words (an earlier spelling still finds the record).
    pub states: Vec<&'a Projection>,
}

impl<'a> Rows<'a> {
    pub fn new(doc: String, source: i64, projection: &'a Projection) -> Self {
        Self {
            doc,
            source,
            states: vec![projection],
        }
    }

    fn last(&self) -> &'a Projection {
        self.states.last().expect("rows hold at least one state")
    }
}

/// One append of a run: the document, its new chunk, and the rows of the state it leads to.
pub(super) type Append<'a> = (DocumentId, &'a [u8], &'a Projection);

/// Stores `run`'s chunks, in order, and writes the query rows of every document whose
/// state includes each chunk stored so far; `held` says, per document, the last chunk this
/// process holds. Returns the documents that lack another process's chunk (their rows are
/// to be rebuilt) and, for the others, the last chunk of each, which this process will hold
/// once the transaction commits. The caller holds every document's advisory lock, so no
/// other process adds a chunk of them meanwhile.
pub(super) async fn append(
    conn: &mut PgConnection,
    run: &[Append<'_>],
    held: impl Fn(DocumentId) -> i64,
) -> Result<(Vec<DocumentId>, HashMap<DocumentId, i64>), sqlx::Error> {
    if run.is_empty() {
        return Ok(Default::default());
    }
    // The ids are taken first, in increasing order, so that a document's later chunk gets
    // the larger id whatever order PostgreSQL inserts or returns rows in.
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('chunks', 'id')) FROM generate_series(1, $1)",
    )
    .bind(run.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    let docs: Vec<String> = run.iter().map(|(doc, ..)| doc.to_string()).collect();
    let bytes: Vec<&[u8]> = run.iter().map(|(_, bytes, _)| *bytes).collect();
    sqlx::query(
        "INSERT INTO chunks (id, document_id, kind, data) \
         SELECT i, d, $3, b FROM unnest($1::int8[], $2::text[], $4::bytea[]) AS t(i, d, b)",
    )
    .bind(&ids)
    .bind(&docs)
    .bind(CHUNK_CHANGES)
    .bind(&bytes)
    .execute(&mut *conn)
    .await?;

    // Which documents have a chunk, other than this run's, that this process does not hold.
    let mut distinct: Vec<DocumentId> = Vec::new();
    let mut seen = HashSet::new();
    for (doc, ..) in run {
        if seen.insert(*doc) {
            distinct.push(*doc);
        }
    }
    let names: Vec<String> = distinct.iter().map(ToString::to_string).collect();
    let helds: Vec<i64> = distinct.iter().map(|doc| held(*doc)).collect();
    let lacking: Vec<String> = sqlx::query_scalar(
        "SELECT h.d FROM unnest($1::text[], $2::int8[]) AS h(d, held) \
         WHERE EXISTS (SELECT 1 FROM chunks c \
         WHERE c.document_id = h.d AND c.id > h.held AND c.id <> ALL($3::int8[]))",
    )
    .bind(&names)
    .bind(&helds)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let lacking: HashSet<String> = lacking.into_iter().collect();

    let mut behind = Vec::new();
    let mut advanced = HashMap::new();
    let mut rows: Vec<Rows> = Vec::new();
    let mut index: HashMap<DocumentId, usize> = HashMap::new();
    for (((doc, _, projection), name), id) in run.iter().zip(docs).zip(&ids) {
        if lacking.contains(&name) {
            if !behind.contains(doc) {
                behind.push(*doc);
            }
            continue;
        }
        advanced.insert(*doc, *id);
        match index.get(doc) {
            Some(&i) => {
                rows[i].source = *id;
                rows[i].states.push(projection);
            }
            None => {
                index.insert(*doc, rows.len());
                rows.push(Rows::new(name, *id, projection));
            }
        }
    }
    write(conn, &rows).await?;
    Ok((behind, advanced))
}

/// Replaces each document's query rows with those of its last state, unless rows computed
/// from a newer chunk are already there (then that document's rows are left as they are).
/// A document appears at most once in `rows`.
///
/// The main row (`visits`, `referrals`, `outreach`) is an upsert that leaves `received_at`
/// alone: the server's time when the row was first written, kept through every later change
/// and every rebuild. A field document's type never changes once written (the envelope is
/// fixed), so its old rows can only be in its own tables; a document without rows (empty,
/// or of a newer schema) is cleared everywhere.
pub(super) async fn write(conn: &mut PgConnection, rows: &[Rows<'_>]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    // Claims the documents' rows for their sources; the row locks this takes also order a
    // concurrent rebuild after this transaction.
    let docs: Vec<&str> = rows.iter().map(|r| r.doc.as_str()).collect();
    let sources: Vec<i64> = rows.iter().map(|r| r.source).collect();
    let claimed: Vec<String> = sqlx::query_scalar(
        "INSERT INTO projection_sources (document_id, chunk_id) \
         SELECT * FROM unnest($1::text[], $2::int8[]) \
         ON CONFLICT (document_id) DO UPDATE SET chunk_id = excluded.chunk_id \
         WHERE projection_sources.chunk_id <= excluded.chunk_id RETURNING document_id",
    )
    .bind(&docs)
    .bind(&sources)
    .fetch_all(&mut *conn)
    .await?;
    let claimed: HashSet<String> = claimed.into_iter().collect();
    let rows: Vec<&Rows> = rows.iter().filter(|r| claimed.contains(&r.doc)).collect();

    let mut clear: [(&str, Vec<&str>); 5] = [
        (
            "DELETE FROM attachment_refs WHERE document_id = ANY($1)",
            Vec::new(),
        ),
        (
            "DELETE FROM referral_events WHERE document_id = ANY($1)",
            Vec::new(),
        ),
        ("DELETE FROM visits WHERE document_id = ANY($1)", Vec::new()),
        (
            "DELETE FROM referrals WHERE document_id = ANY($1)",
            Vec::new(),
        ),
        (
            "DELETE FROM outreach WHERE document_id = ANY($1)",
            Vec::new(),
        ),
    ];
    for r in &rows {
        let tables = match r.last() {
            Projection::Nothing => 0..5,
            Projection::Visit(_) => 0..1,
            Projection::Referral(_) => 0..2,
            Projection::Outreach(_) => 0..0,
        };
        for (_, docs) in &mut clear[tables] {
            docs.push(&r.doc);
        }
    }
    for (sql, docs) in &clear {
        if !docs.is_empty() {
            sqlx::query(*sql).bind(docs).execute(&mut *conn).await?;
        }
    }

    let received_at = crate::storage::now_millis();
    let mut attachments = Columns2::default();
    let mut visits = Vec::new();
    let mut referrals = Vec::new();
    let mut outreach = Vec::new();
    for r in &rows {
        match r.last() {
            Projection::Nothing => {}
            Projection::Visit(v) => {
                attachments.extend(&r.doc, v.attachments.iter().map(ToString::to_string));
                visits.push((r.doc.as_str(), v));
            }
            Projection::Referral(p) => {
                attachments.extend(&r.doc, p.attachments.iter().map(ToString::to_string));
                referrals.push((r.doc.as_str(), p));
            }
            Projection::Outreach(o) => outreach.push((r.doc.as_str(), o)),
        }
    }
    if !attachments.0.is_empty() {
        sqlx::query(
            "INSERT INTO attachment_refs (document_id, sha256) \
             SELECT * FROM unnest($1::text[], $2::text[])",
        )
        .bind(&attachments.0)
        .bind(&attachments.1)
        .execute(&mut *conn)
        .await?;
    }
    if !visits.is_empty() {
        write_visits(conn, &visits, received_at).await?;
    }
    if !referrals.is_empty() {
        write_referrals(conn, &referrals, received_at).await?;
    }
    if !outreach.is_empty() {
        write_outreach(conn, &outreach, received_at).await?;
    }

    // The name's words for search, from every state: kept when the name changes.
    let mut words = Columns2::default();
    let mut seen = HashSet::new();
    for r in &rows {
        for state in &r.states {
            let person = match state {
                Projection::Visit(v) => &v.person,
                Projection::Referral(p) => &p.person,
                Projection::Nothing | Projection::Outreach(_) => continue,
            };
            for word in crate::name_words::words(&person.name) {
                if seen.insert((word.clone(), r.doc.as_str())) {
                    words.0.push(word);
                    words.1.push(r.doc.clone());
                }
            }
        }
    }
    if !words.0.is_empty() {
        sqlx::query(
            "INSERT INTO name_words (word, document_id) \
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&words.0)
        .bind(&words.1)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Two columns of text, one array each.
#[derive(Default)]
struct Columns2(Vec<String>, Vec<String>);

impl Columns2 {
    fn extend(&mut self, doc: &str, values: impl Iterator<Item = String>) {
        for value in values {
            self.0.push(doc.to_owned());
            self.1.push(value);
        }
    }
}

/// A column of `rows`, as the array bound to one `unnest` argument.
fn column<'a, R, T>(rows: &'a [(&'a str, &'a R)], cell: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(|(_, row)| cell(row)).collect()
}

async fn write_visits(
    conn: &mut PgConnection,
    rows: &[(&str, &crate::projection::VisitRow)],
    received_at: i64,
) -> Result<(), sqlx::Error> {
    let docs: Vec<&str> = rows.iter().map(|(doc, _)| *doc).collect();
    sqlx::query(
        "INSERT INTO visits (document_id, area, created_by, created_at, schema, nik, kk, name, \
         ppks, visited_at, purpose, follow_up_on, lat, lon, notes_excerpt, received_at) \
         SELECT t.*, $16 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], \
         $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text[], \
         $12::text[], $13::float8[], $14::float8[], $15::text[]) AS t \
         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
         created_by = excluded.created_by, created_at = excluded.created_at, \
         schema = excluded.schema, nik = excluded.nik, kk = excluded.kk, \
         name = excluded.name, ppks = excluded.ppks, \
         visited_at = excluded.visited_at, purpose = excluded.purpose, \
         follow_up_on = excluded.follow_up_on, lat = excluded.lat, \
         lon = excluded.lon, notes_excerpt = excluded.notes_excerpt",
    )
    .bind(&docs)
    .bind(column(rows, |v| v.common.area.as_str()))
    .bind(column(rows, |v| v.common.created_by.as_str()))
    .bind(column(rows, |v| v.common.created_at))
    .bind(column(rows, |v| v.common.schema))
    .bind(column(rows, |v| v.person.nik.as_str()))
    .bind(column(rows, |v| v.person.kk.as_deref()))
    .bind(column(rows, |v| v.person.name.as_str()))
    .bind(column(rows, |v| v.person.ppks.as_str()))
    .bind(column(rows, |v| v.visited_at))
    .bind(column(rows, |v| v.purpose.as_deref()))
    .bind(column(rows, |v| v.follow_up_on.as_deref()))
    .bind(column(rows, |v| v.lat))
    .bind(column(rows, |v| v.lon))
    .bind(column(rows, |v| v.notes_excerpt.as_str()))
    .bind(received_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_referrals(
    conn: &mut PgConnection,
    rows: &[(&str, &crate::projection::ReferralRow)],
    received_at: i64,
) -> Result<(), sqlx::Error> {
    let docs: Vec<&str> = rows.iter().map(|(doc, _)| *doc).collect();
    sqlx::query(
        "INSERT INTO referrals (document_id, area, created_by, created_at, schema, nik, kk, \
         name, ppks, program, status, visit_id, consent_given, doc_ktp, doc_kk, doc_sktm, \
         doc_surat_puskesmas, reason_excerpt, submitted_at, decided_at, last_event_at, \
         received_at) \
         SELECT t.*, $22 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], \
         $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
         $12::text[], $13::bool[], $14::bool[], $15::bool[], $16::bool[], $17::bool[], \
         $18::text[], $19::int8[], $20::int8[], $21::int8[]) AS t \
         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
         created_by = excluded.created_by, created_at = excluded.created_at, \
         schema = excluded.schema, nik = excluded.nik, kk = excluded.kk, \
         name = excluded.name, ppks = excluded.ppks, \
         program = excluded.program, status = excluded.status, \
         visit_id = excluded.visit_id, consent_given = excluded.consent_given, \
         doc_ktp = excluded.doc_ktp, doc_kk = excluded.doc_kk, \
         doc_sktm = excluded.doc_sktm, \
         doc_surat_puskesmas = excluded.doc_surat_puskesmas, \
         reason_excerpt = excluded.reason_excerpt, \
         submitted_at = excluded.submitted_at, \
         decided_at = excluded.decided_at, \
         last_event_at = excluded.last_event_at",
    )
    .bind(&docs)
    .bind(column(rows, |r| r.common.area.as_str()))
    .bind(column(rows, |r| r.common.created_by.as_str()))
    .bind(column(rows, |r| r.common.created_at))
    .bind(column(rows, |r| r.common.schema))
    .bind(column(rows, |r| r.person.nik.as_str()))
    .bind(column(rows, |r| r.person.kk.as_deref()))
    .bind(column(rows, |r| r.person.name.as_str()))
    .bind(column(rows, |r| r.person.ppks.as_str()))
    .bind(column(rows, |r| r.program.as_str()))
    .bind(column(rows, |r| r.status.as_str()))
    .bind(column(rows, |r| r.visit_id.as_deref()))
    .bind(column(rows, |r| r.consent_given))
    .bind(column(rows, |r| r.documents[0]))
    .bind(column(rows, |r| r.documents[1]))
    .bind(column(rows, |r| r.documents[2]))
    .bind(column(rows, |r| r.documents[3]))
    .bind(column(rows, |r| r.reason_excerpt.as_str()))
    .bind(column(rows, |r| r.submitted_at))
    .bind(column(rows, |r| r.decided_at))
    .bind(column(rows, |r| r.last_event_at))
    .bind(received_at)
    .execute(&mut *conn)
    .await?;

    let events: Vec<(&str, &crate::projection::EventRow)> = rows
        .iter()
        .flat_map(|(doc, r)| r.events.iter().map(move |e| (*doc, e)))
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let docs: Vec<&str> = events.iter().map(|(doc, _)| *doc).collect();
    sqlx::query(
        "INSERT INTO referral_events (document_id, seq, kind, at, by_user, note, applied) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], \
         $6::text[], $7::bool[])",
    )
    .bind(&docs)
    .bind(column(&events, |e| e.seq))
    .bind(column(&events, |e| e.kind.as_str()))
    .bind(column(&events, |e| e.at))
    .bind(column(&events, |e| e.by.as_str()))
    .bind(column(&events, |e| e.note.as_deref()))
    .bind(column(&events, |e| e.applied))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_outreach(
    conn: &mut PgConnection,
    rows: &[(&str, &crate::projection::OutreachRow)],
    received_at: i64,
) -> Result<(), sqlx::Error> {
    let docs: Vec<&str> = rows.iter().map(|(doc, _)| *doc).collect();
    sqlx::query(
        "INSERT INTO outreach (document_id, area, created_by, created_at, schema, topic, \
         held_at, place, attendees, notes_excerpt, received_at) \
         SELECT t.*, $11 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], \
         $5::int8[], $6::text[], $7::int8[], $8::text[], $9::int8[], $10::text[]) AS t \
         ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, \
         created_by = excluded.created_by, created_at = excluded.created_at, \
         schema = excluded.schema, topic = excluded.topic, \
         held_at = excluded.held_at, place = excluded.place, \
         attendees = excluded.attendees, \
         notes_excerpt = excluded.notes_excerpt",
    )
    .bind(&docs)
    .bind(column(rows, |o| o.common.area.as_str()))
    .bind(column(rows, |o| o.common.created_by.as_str()))
    .bind(column(rows, |o| o.common.created_at))
    .bind(column(rows, |o| o.common.schema))
    .bind(column(rows, |o| o.topic.as_str()))
    .bind(column(rows, |o| o.held_at))
    .bind(column(rows, |o| o.place.as_str()))
    .bind(column(rows, |o| o.attendees))
    .bind(column(rows, |o| o.notes_excerpt.as_str()))
    .bind(received_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
