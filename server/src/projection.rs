//! Query rows derived from field documents: what the dashboards filter and count without
//! loading every document. Rows are a pure function of a document's state, written in the same
//! transaction as the change that produced that state, and rebuilt by `fieldsync reindex`.

use fieldsync_core::schema::{
    Beneficiary, Envelope, EventKind, FieldDocument, derive_status, timestamp_millis,
};
use fieldsync_protocol::BlobHash;

/// Longest excerpt of a free-text field kept in a row (characters).
const EXCERPT_CHARS: usize = 200;

/// The rows of one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// No rows: an empty document, or one of a schema newer than this server (rebuilt by
    /// `fieldsync reindex` once the server is upgraded).
    Nothing,
    Visit(VisitRow),
    Referral(ReferralRow),
    Outreach(OutreachRow),
}

/// Columns every row has. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub area: String,
    pub created_by: String,
    pub created_at: i64,
    pub schema: i64,
}

/// Columns about the beneficiary. `ppks` holds the slugs as `|a|b|`, so that one category
/// is found with `LIKE '%|a|%'` on both databases.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub nik: String,
    pub kk: Option<String>,
    pub name: String,
    pub ppks: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisitRow {
    pub common: Common,
    pub person: Person,
    pub visited_at: i64,
    pub purpose: Option<String>,
    pub follow_up_on: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub notes_excerpt: String,
    /// The blobs the visit references (`attachments[*].sha256`), sorted.
    pub attachments: Vec<BlobHash>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReferralRow {
    pub common: Common,
    pub person: Person,
    pub program: String,
    pub status: String,
    pub visit_id: Option<String>,
    pub consent_given: bool,
    pub documents: [bool; 4],
    pub reason_excerpt: String,
    /// When the referral was (first) submitted, by the events applied.
    pub submitted_at: Option<i64>,
    /// When it was (first) approved or rejected.
    pub decided_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub events: Vec<EventRow>,
    /// The blobs the referral references (`attachments[*].sha256`), sorted.
    pub attachments: Vec<BlobHash>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub at: i64,
    pub by: String,
    pub note: Option<String>,
    /// False for an event the status rule did not apply (a conflicting decision).
    pub applied: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutreachRow {
    pub common: Common,
    pub topic: String,
    pub held_at: i64,
    pub place: String,
    pub attendees: i64,
    pub notes_excerpt: String,
}

fn millis(s: &str) -> i64 {
    // Validation accepted the timestamp, so it converts.
    timestamp_millis(s).unwrap_or(0)
}

fn excerpt(s: &str) -> String {
    s.chars().take(EXCERPT_CHARS).collect()
}

fn common(e: &Envelope) -> Common {
    Common {
        area: e.area.to_string(),
        created_by: e.created_by.clone(),
        created_at: millis(&e.created_at),
        schema: e.schema as i64,
    }
}

fn person(b: &Beneficiary) -> Person {
    let mut ppks = String::from("|");
    for c in &b.ppks {
        ppks.push_str(c.as_str());
        ppks.push('|');
    }
    Person {
        nik: b.nik.to_string(),
        kk: b.kk.as_ref().map(ToString::to_string),
        name: b.name.clone(),
        ppks,
    }
}

impl Projection {
    /// The rows with the blobs the document references, as
    /// [`fieldsync_core::attachments::referenced`] read them from the Automerge document
    /// (only visits and referrals keep them; the typed schema does not carry them yet).
    pub fn with_attachments(mut self, hashes: Vec<BlobHash>) -> Self {
        match &mut self {
            Self::Visit(v) => v.attachments = hashes,
            Self::Referral(r) => r.attachments = hashes,
            Self::Nothing | Self::Outreach(_) => {}
        }
        self
    }

    /// The rows for a document's state as [`FieldDocument::read_state`] returns it.
    pub fn of(state: Option<&FieldDocument>) -> Self {
        match state {
            None | Some(FieldDocument::Newer(_)) => Self::Nothing,
            Some(FieldDocument::Visit(v)) => Self::Visit(VisitRow {
                common: common(&v.envelope),
                person: person(&v.beneficiary),
                visited_at: millis(&v.visited_at),
                purpose: v.purpose.clone(),
                follow_up_on: v.follow_up_on.clone(),
                lat: v.location.map(|l| l.0),
                lon: v.location.map(|l| l.1),
                notes_excerpt: excerpt(&v.notes),
                attachments: Vec::new(),
            }),
            Some(FieldDocument::Referral(r)) => {
                let derived = derive_status(r.events.iter().map(|e| e.kind));
                let events: Vec<EventRow> = r
                    .events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| EventRow {
                        seq: i as i64,
                        kind: e.kind.as_str().to_owned(),
                        at: millis(&e.at),
                        by: e.by.clone(),
                        note: e.note.clone(),
                        applied: !derived.not_applied.contains(&i),
                    })
                    .collect();
                let first_applied = |kinds: &[EventKind]| {
                    r.events
                        .iter()
                        .zip(&events)
                        .find(|(e, row)| row.applied && kinds.contains(&e.kind))
                        .map(|(_, row)| row.at)
                };
                Self::Referral(ReferralRow {
                    common: common(&r.envelope),
                    person: person(&r.beneficiary),
                    program: r.program.as_str().to_owned(),
                    status: derived.status.as_str().to_owned(),
                    visit_id: r.visit.map(|v| v.to_string()),
                    consent_given: r.consent.given,
                    documents: [
                        r.documents.ktp,
                        r.documents.kk,
                        r.documents.sktm,
                        r.documents.surat_puskesmas,
                    ],
                    reason_excerpt: excerpt(&r.reason),
                    submitted_at: first_applied(&[EventKind::Submitted]),
                    decided_at: first_applied(&[EventKind::Approved, EventKind::Rejected]),
                    last_event_at: events.iter().map(|e| e.at).max(),
                    events,
                    attachments: Vec::new(),
                })
            }
            Some(FieldDocument::Outreach(o)) => Self::Outreach(OutreachRow {
                common: common(&o.envelope),
                topic: o.topic.clone(),
                held_at: millis(&o.held_at),
                place: o.place.clone(),
                attendees: o.attendees.min(i64::MAX as u64) as i64,
                notes_excerpt: excerpt(&o.notes),
            }),
        }
    }
}
