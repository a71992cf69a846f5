//! Writing query rows inside a storage transaction, for a whole run of a batch's appends at
//! once: each kind of row goes in one statement (or a few), however many documents the run
//! holds. What to write is decided here, for both backends; `sqlite_rows.rs` and
//! `postgres_rows.rs` only say it in their SQL (rows of `VALUES`, or arrays and `unnest`).
//!
//! Written one document at a time, a new document cost six or seven statements: on
//! PostgreSQL each is a network round trip, and on SQLite each a hop to sqlx's worker thread
//! and back. A batch of 128 new documents took 60–75 ms of round trips on PostgreSQL, and the
//! writer, which commits one batch at a time, was busy for nearly the whole storm.
//!
//! A document's rows are claimed for the chunk they are computed from (`projection_sources`)
//! and replaced only if no rows from a newer chunk are there. The main row (`visits`,
//! `referrals`, `outreach`) is an upsert that leaves `received_at` alone: the server's time
//! when the row was first written, kept through every later change and every rebuild. A field
//! document's type never changes once written (the envelope is fixed), so its old rows can
//! only be in its own tables; a document without rows (empty, or of a newer schema) is
//! cleared everywhere.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use fieldsync_protocol::DocumentId;

use super::Written;
use super::chunks::Held;
use crate::projection::{EventRow, OutreachRow, Projection, ReferralRow, VisitRow};

/// One append of a run: the document, its new chunk, and the rows of the state it leads to.
pub(super) type Append<'a> = (DocumentId, &'a [u8], &'a Projection);

/// The query rows a run leaves a document with.
pub(super) struct Rows<'a> {
    pub id: DocumentId,
    /// `id` as the tables store it.
    pub doc: String,
    /// The chunk the rows are computed from: the document's last in the run.
    pub source: i64,
    /// Every state the run reached, oldest first: the last gives the rows, and every one
    /// gives the name's words (an earlier spelling still finds the record).
    pub states: Vec<&'a Projection>,
}

impl<'a> Rows<'a> {
    pub fn new(id: DocumentId, source: i64, projection: &'a Projection) -> Self {
        Self::named(id, id.to_string(), source, projection)
    }

    fn named(id: DocumentId, doc: String, source: i64, projection: &'a Projection) -> Self {
        Self {
            id,
            doc,
            source,
            states: vec![projection],
        }
    }

    fn last(&self) -> &'a Projection {
        self.states.last().expect("rows hold at least one state")
    }
}

/// The run's documents, each once, in the order they first appear, with their ids as the
/// tables store them.
pub(super) fn documents(run: &[Append<'_>]) -> Vec<(DocumentId, String)> {
    let mut seen = HashSet::new();
    run.iter()
        .filter(|(doc, ..)| seen.insert(*doc))
        .map(|(doc, ..)| (*doc, doc.to_string()))
        .collect()
}

/// What a stored run leaves to write. A document of `lacking` (it has a chunk from another
/// process that this one does not hold) is `behind`: its rows are left for a rebuild. Every
/// other document has its rows, computed from its last chunk, which is what this process
/// holds of it once the transaction commits.
#[derive(Default)]
pub(super) struct Stored<'a> {
    pub behind: Vec<DocumentId>,
    pub rows: Vec<Rows<'a>>,
}

impl<'a> Stored<'a> {
    /// `ids` are the run's new chunk ids in increasing order, one per append: a document's
    /// later chunk has the larger id. `lacking` names documents as the tables do.
    pub fn of(run: &[Append<'a>], ids: &[i64], lacking: &HashSet<String>) -> Self {
        let mut stored = Stored::default();
        let mut index: HashMap<DocumentId, usize> = HashMap::new();
        for ((doc, _, projection), id) in run.iter().zip(ids) {
            if let Some(&i) = index.get(doc) {
                stored.rows[i].source = *id;
                stored.rows[i].states.push(projection);
                continue;
            }
            let name = doc.to_string();
            if lacking.contains(&name) {
                stored.behind.push(*doc);
            } else {
                index.insert(*doc, stored.rows.len());
                stored.rows.push(Rows::named(*doc, name, *id, projection));
            }
        }
        stored
    }
}

/// What this process holds of a document as a batch goes on: its own chunks stored earlier in
/// the batch, else what it held before.
pub(super) fn holding<'a>(
    advanced: &'a HashMap<DocumentId, i64>,
    held: &'a Held,
) -> impl Fn(DocumentId) -> i64 + 'a {
    move |doc| advanced.get(&doc).copied().unwrap_or_else(|| held.get(doc))
}

/// Adds a stored run's outcome to its batch's: the documents behind, each once, and the
/// chunks this process will hold.
pub(super) fn settle(
    written: &mut Written,
    advanced: &mut HashMap<DocumentId, i64>,
    stored: Stored<'_>,
) {
    for doc in stored.behind {
        if !written.behind.contains(&doc) {
            written.behind.push(doc);
        }
    }
    advanced.extend(stored.rows.iter().map(|r| (r.id, r.source)));
}

/// The tables a document's old rows may be in, cleared before its new rows are written.
pub(super) const CLEARED: [&str; 5] = [
    "attachment_refs",
    "referral_events",
    "visits",
    "referrals",
    "outreach",
];

/// The rows to write for the documents whose claim succeeded, table by table.
#[derive(Default)]
pub(super) struct Plan<'a> {
    /// Per table of [`CLEARED`], the documents whose rows there go first.
    pub clear: [Vec<&'a str>; 5],
    /// (document, blob hash)
    pub attachments: Vec<(&'a str, String)>,
    pub visits: Vec<(&'a str, &'a VisitRow)>,
    pub referrals: Vec<(&'a str, &'a ReferralRow)>,
    pub events: Vec<(&'a str, &'a EventRow)>,
    pub outreach: Vec<(&'a str, &'a OutreachRow)>,
    /// (word, document), each pair once: the name's words for search, from every state.
    pub words: Vec<(String, &'a str)>,
}

impl<'a> Plan<'a> {
    pub fn of(rows: &'a [Rows<'a>], claimed: &HashSet<String>) -> Self {
        let mut plan = Plan::default();
        let mut words = HashSet::new();
        for r in rows.iter().filter(|r| claimed.contains(&r.doc)) {
            let doc = r.doc.as_str();
            let cleared = match r.last() {
                Projection::Nothing => 0..5,
                Projection::Visit(_) => 0..1,
                Projection::Referral(_) => 0..2,
                Projection::Outreach(_) => 0..0,
            };
            for docs in &mut plan.clear[cleared] {
                docs.push(doc);
            }
            match r.last() {
                Projection::Nothing => {}
                Projection::Visit(v) => {
                    plan.attachments
                        .extend(v.attachments.iter().map(|h| (doc, h.to_string())));
                    plan.visits.push((doc, v));
                }
                Projection::Referral(p) => {
                    plan.attachments
                        .extend(p.attachments.iter().map(|h| (doc, h.to_string())));
                    plan.referrals.push((doc, p));
                    plan.events.extend(p.events.iter().map(|e| (doc, e)));
                }
                Projection::Outreach(o) => plan.outreach.push((doc, o)),
            }
            for state in &r.states {
                let person = match state {
                    Projection::Visit(v) => &v.person,
                    Projection::Referral(p) => &p.person,
                    Projection::Nothing | Projection::Outreach(_) => continue,
                };
                for word in crate::name_words::words(&person.name) {
                    if words.insert((word.clone(), doc)) {
                        plan.words.push((word, doc));
                    }
                }
            }
        }
        plan
    }
}

/// The columns of the main tables, in the order both backends bind them.
pub(super) const VISIT_COLUMNS: &str = "document_id, area, created_by, created_at, schema, \
     nik, kk, name, ppks, visited_at, purpose, follow_up_on, lat, lon, notes_excerpt, received_at";
pub(super) const REFERRAL_COLUMNS: &str = "document_id, area, created_by, created_at, schema, \
     nik, kk, name, ppks, program, status, visit_id, consent_given, doc_ktp, doc_kk, doc_sktm, \
     doc_surat_puskesmas, reason_excerpt, submitted_at, decided_at, last_event_at, received_at";
pub(super) const OUTREACH_COLUMNS: &str = "document_id, area, created_by, created_at, schema, \
     topic, held_at, place, attendees, notes_excerpt, received_at";
pub(super) const EVENT_COLUMNS: &str = "document_id, seq, kind, at, by_user, note, applied";

/// How an upsert of a main row ends: every column replaced except the key and `received_at`.
pub(super) fn upsert(columns: &str) -> String {
    let set: Vec<String> = columns
        .split(',')
        .map(str::trim)
        .filter(|c| !matches!(*c, "document_id" | "received_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!("ON CONFLICT (document_id) DO UPDATE SET {}", set.join(", "))
}

/// Claims documents' rows for their source chunks: the start of the statement, to which each
/// backend adds its rows; the end is [`CLAIM_END`].
pub(super) const CLAIM: &str = "INSERT INTO projection_sources (document_id, chunk_id)";
/// Only a claim from a chunk at least as new as the rows' takes them; the row lock it takes
/// on PostgreSQL also orders a concurrent rebuild after this transaction.
pub(super) const CLAIM_END: &str = "ON CONFLICT (document_id) DO UPDATE SET chunk_id = \
     excluded.chunk_id WHERE projection_sources.chunk_id <= excluded.chunk_id \
     RETURNING document_id";

/// The upserts' endings, computed once.
pub(super) static VISIT_UPSERT: LazyLock<String> = LazyLock::new(|| upsert(VISIT_COLUMNS));
pub(super) static REFERRAL_UPSERT: LazyLock<String> = LazyLock::new(|| upsert(REFERRAL_COLUMNS));
pub(super) static OUTREACH_UPSERT: LazyLock<String> = LazyLock::new(|| upsert(OUTREACH_COLUMNS));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_replaces_every_column_but_the_key_and_the_first_received_time() {
        let sql = upsert("document_id, area, name, received_at");
        assert_eq!(
            sql,
            "ON CONFLICT (document_id) DO UPDATE SET area = excluded.area, name = excluded.name"
        );
    }
}
