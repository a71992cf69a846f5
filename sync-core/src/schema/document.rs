//! The three field documents, read from an Automerge document and validated in one pass.
//!
//! [`FieldDocument::read`] either returns the typed document or every violation it found, each
//! with the JSON path it concerns, so a phone can show the field worker what to fix. Strings may
//! be collaborative text or plain scalar strings (JS automerge 3 writes text by default). Fields
//! the schema does not name are ignored, except inside a referral event, whose shape is closed.
//! A document with `schema` newer than [`SCHEMA`] is read only for the envelope every version
//! shares, as [`FieldDocument::Newer`]; the write rules refuse it (see docs/schema.md).
//!
//! No violation message repeats a value from the document: messages reach logs and the audit
//! table, and a value in the wrong field may be personal data.

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldsync_protocol::{AutomergeUrl, DocumentId};

use super::attachment::{
    ATTACHMENT_FIELDS, Attachment, AttachmentKind, MediaType, SchemaLimits, Sha256,
};
use super::values::{
    EventKind, InvalidValue, Kk, Nik, PpksCategory, Program, RegionCode, check_date,
    check_timestamp,
};

/// The largest `schema` read at all (a newer version than [`SCHEMA`] is read as
/// [`FieldDocument::Newer`]): beyond it the number could not be written back the way JS and
/// this crate write numbers.
const MAX_SCHEMA: u64 = u32::MAX as u64;
/// Attendees of one outreach session: beyond it the number is a mistake or an attack.
const MAX_ATTENDEES: u64 = 1_000_000_000;

/// The schema version this build knows, reads and accepts.
pub const SCHEMA: u64 = 1;

/// The fields of a referral event; any other is refused.
const EVENT_FIELDS: [&str; 4] = ["kind", "at", "by", "note"];

/// One thing wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON path, e.g. `beneficiary.nik` or `events[2].kind`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Visit,
    Referral,
    Outreach,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visit => "visit",
            Self::Referral => "referral",
            Self::Outreach => "outreach",
        }
    }
}

/// What every document has, in every schema version.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub kind: DocKind,
    pub schema: u64,
    pub area: RegionCode,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Beneficiary {
    pub nik: Nik,
    pub kk: Option<Kk>,
    pub name: String,
    pub address: Option<String>,
    pub ppks: Vec<PpksCategory>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub envelope: Envelope,
    pub beneficiary: Beneficiary,
    pub visited_at: String,
    pub purpose: Option<String>,
    pub notes: String,
    pub actions: Vec<String>,
    pub follow_up_on: Option<String>,
    pub location: Option<(f64, f64)>,
    /// Photos and scans, in list order (absent: none).
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentsChecklist {
    pub ktp: bool,
    pub kk: bool,
    pub sktm: bool,
    pub surat_puskesmas: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub given: bool,
    pub at: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub at: String,
    pub by: String,
    pub note: Option<String>,
    /// Where the event sits in the document, once it is there: what tells two events with
    /// the same content apart, and lets the rules see that an event was changed or removed.
    pub id: Option<ObjId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    pub envelope: Envelope,
    pub beneficiary: Beneficiary,
    pub program: Program,
    pub reason: String,
    pub documents: DocumentsChecklist,
    pub consent: Consent,
    pub visit: Option<DocumentId>,
    pub events: Vec<Event>,
    /// Scans and photos, in list order (absent: none).
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outreach {
    pub envelope: Envelope,
    pub topic: String,
    pub held_at: String,
    pub place: String,
    pub attendees: u64,
    pub notes: String,
}

/// A valid field document.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldDocument {
    Visit(Visit),
    Referral(Referral),
    Outreach(Outreach),
    /// A newer schema than this build knows: only the envelope was checked. The write rules
    /// refuse a document in this state ([`super::check_change`]).
    Newer(Envelope),
}

impl FieldDocument {
    /// Reads and validates the whole document, under the default [`SchemaLimits`].
    pub fn read(doc: &impl ReadDoc) -> Result<Self, Vec<Violation>> {
        Self::read_with(doc, &SchemaLimits::default())
    }

    /// Reads and validates the whole document under `limits` (the server's configured
    /// attachment maximum).
    pub fn read_with(doc: &impl ReadDoc, limits: &SchemaLimits) -> Result<Self, Vec<Violation>> {
        let mut r = Reader {
            doc,
            limits,
            violations: Vec::new(),
        };
        let (kind, schema, envelope) = r.envelope();
        // The body is checked even when the envelope is not, so that every violation is
        // reported at once; a newer schema's body is not ours to judge.
        let out = match (kind, schema) {
            (_, Some(v)) if v > SCHEMA => envelope.map(Self::Newer),
            (Some(DocKind::Visit), _) => r.visit(envelope).map(Self::Visit),
            (Some(DocKind::Referral), _) => r.referral(envelope).map(Self::Referral),
            (Some(DocKind::Outreach), _) => r.outreach(envelope).map(Self::Outreach),
            (None, _) => None,
        };
        match out {
            Some(d) if r.violations.is_empty() => Ok(d),
            _ => Err(r.violations),
        }
    }

    /// Like [`Self::read`], but a document whose root is still empty (what `repo.create()`
    /// of automerge-repo makes before the app's first change) is `Ok(None)`: not a field
    /// document yet, and nothing in it to refuse.
    pub fn read_state(doc: &impl ReadDoc) -> Result<Option<Self>, Vec<Violation>> {
        Self::read_state_with(doc, &SchemaLimits::default())
    }

    /// [`Self::read_state`] under `limits`.
    pub fn read_state_with(
        doc: &impl ReadDoc,
        limits: &SchemaLimits,
    ) -> Result<Option<Self>, Vec<Violation>> {
        if doc.length(ROOT) == 0 {
            return Ok(None);
        }
        Self::read_with(doc, limits).map(Some)
    }

    /// The photos and scans the document references (none for an outreach note, or a
    /// document of a newer schema).
    pub fn attachments(&self) -> &[Attachment] {
        match self {
            Self::Visit(v) => &v.attachments,
            Self::Referral(r) => &r.attachments,
            Self::Outreach(_) | Self::Newer(_) => &[],
        }
    }

    pub fn kind(&self) -> DocKind {
        self.envelope().kind
    }

    pub fn envelope(&self) -> &Envelope {
        match self {
            Self::Visit(v) => &v.envelope,
            Self::Referral(r) => &r.envelope,
            Self::Outreach(o) => &o.envelope,
            Self::Newer(e) => e,
        }
    }
}

struct Reader<'a, D: ReadDoc> {
    doc: &'a D,
    limits: &'a SchemaLimits,
    violations: Vec<Violation>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<D: ReadDoc> Reader<'_, D> {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            path: path.into(),
            message: message.into(),
        });
    }

    fn get(&self, obj: &ObjId, key: &str) -> Option<(Value<'_>, ObjId)> {
        self.doc.get(obj, key).ok().flatten()
    }

    /// A string field: collaborative text or a scalar string.
    fn string(&mut self, obj: &ObjId, path: &str, key: &str, required: bool) -> Option<String> {
        let p = join(path, key);
        match self.get(obj, key) {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => {
                    self.fail(p, "must be a string");
                    None
                }
            },
            Some((Value::Object(ObjType::Text), id)) => self.doc.text(&id).ok(),
            Some(_) => {
                self.fail(p, "must be a string");
                None
            }
            None => {
                if required {
                    self.fail(p, "is required");
                }
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        obj: &ObjId,
        path: &str,
        key: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let s = self.string(obj, path, key, required)?;
        match parse(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(join(path, key), e.0);
                None
            }
        }
    }

    fn timestamp(&mut self, obj: &ObjId, path: &str, key: &str, required: bool) -> Option<String> {
        self.parsed(obj, path, key, required, |s| {
            check_timestamp(s).map(|()| s.to_owned())
        })
    }

    fn scalar(&mut self, obj: &ObjId, key: &str) -> Option<ScalarValue> {
        match self.get(obj, key) {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        }
    }

    fn object(
        &mut self,
        obj: &ObjId,
        path: &str,
        key: &str,
        kind: ObjType,
        required: bool,
    ) -> Option<ObjId> {
        match self.get(obj, key) {
            Some((Value::Object(t), id))
                if t == kind || (kind == ObjType::Map && t == ObjType::Table) =>
            {
                Some(id)
            }
            Some(_) => {
                let what = if kind == ObjType::List {
                    "a list"
                } else {
                    "an object"
                };
                self.fail(join(path, key), format!("must be {what}"));
                None
            }
            None => {
                if required {
                    self.fail(join(path, key), "is required");
                }
                None
            }
        }
    }

    fn bool(&mut self, obj: &ObjId, path: &str, key: &str) -> Option<bool> {
        match self.scalar(obj, key) {
            Some(ScalarValue::Boolean(b)) => Some(b),
            Some(_) => {
                self.fail(join(path, key), "must be true or false");
                None
            }
            None => None,
        }
    }

    fn envelope(&mut self) -> (Option<DocKind>, Option<u64>, Option<Envelope>) {
        let kind = match self.string(&ROOT, "", "type", true).as_deref() {
            Some("visit") => Some(DocKind::Visit),
            Some("referral") => Some(DocKind::Referral),
            Some("outreach") => Some(DocKind::Outreach),
            Some(_) => {
                self.fail("type", "must be visit, referral or outreach");
                None
            }
            None => None,
        };
        // Bounded so that whatever is read can be written back (as a signed integer, as JS
        // numbers are): found by the `schema_read` fuzz target.
        let schema = match self.scalar(&ROOT, "schema") {
            Some(ScalarValue::Uint(n)) if (1..=MAX_SCHEMA).contains(&n) => Some(n),
            Some(ScalarValue::Int(n)) if (1..=MAX_SCHEMA as i64).contains(&n) => Some(n as u64),
            Some(ScalarValue::F64(n))
                if (1.0..=MAX_SCHEMA as f64).contains(&n) && n.fract() == 0.0 =>
            {
                Some(n as u64)
            }
            _ => {
                self.fail("schema", "must be a schema version, 1 or later");
                None
            }
        };
        let area = self.parsed(&ROOT, "", "area", true, RegionCode::parse);
        let created_by = self.string(&ROOT, "", "createdBy", true);
        let created_at = self.timestamp(&ROOT, "", "createdAt", true);
        let envelope = (|| {
            Some(Envelope {
                kind: kind?,
                schema: schema?,
                area: area?,
                created_by: created_by?,
                created_at: created_at?,
            })
        })();
        (kind, schema, envelope)
    }

    fn beneficiary(&mut self) -> Option<Beneficiary> {
        let b = self.object(&ROOT, "", "beneficiary", ObjType::Map, true)?;
        let p = "beneficiary";
        let nik = self.parsed(&b, p, "nik", true, Nik::parse);
        let kk = self.parsed(&b, p, "kk", false, Kk::parse);
        let name = self.string(&b, p, "name", true);
        let address = self.string(&b, p, "address", false);
        let mut ppks = Vec::new();
        if let Some(list) = self.object(&b, p, "ppks", ObjType::List, true) {
            for i in 0..self.doc.length(&list) {
                let path = format!("beneficiary.ppks[{i}]");
                match self.doc.get(&list, i).ok().flatten() {
                    Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Str(_)) => {
                        let ScalarValue::Str(slug) = s.as_ref() else {
                            unreachable!()
                        };
                        match PpksCategory::parse(slug) {
                            Ok(c) => ppks.push(c),
                            Err(e) => self.fail(path, e.0),
                        }
                    }
                    Some((Value::Object(ObjType::Text), id)) => {
                        match self.doc.text(&id).map(|s| PpksCategory::parse(&s)) {
                            Ok(Ok(c)) => ppks.push(c),
                            Ok(Err(e)) => self.fail(path, e.0),
                            Err(_) => self.fail(path, "must be a category slug"),
                        }
                    }
                    _ => self.fail(path, "must be a category slug"),
                }
            }
        }
        Some(Beneficiary {
            nik: nik?,
            kk,
            name: name?,
            address,
            ppks,
        })
    }

    fn strings(&mut self, list: &ObjId, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.doc.length(list) {
            match self.doc.get(list, i).ok().flatten() {
                Some((Value::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Str(s) => out.push(s.to_string()),
                    _ => self.fail(format!("{path}[{i}]"), "must be a string"),
                },
                Some((Value::Object(ObjType::Text), id)) => {
                    out.push(self.doc.text(&id).unwrap_or_default())
                }
                _ => self.fail(format!("{path}[{i}]"), "must be a string"),
            }
        }
        out
    }

    fn visit(&mut self, envelope: Option<Envelope>) -> Option<Visit> {
        let beneficiary = self.beneficiary();
        let visited_at = self.timestamp(&ROOT, "", "visitedAt", true);
        let purpose = self.string(&ROOT, "", "purpose", false);
        let notes = self.string(&ROOT, "", "notes", true);
        let actions = self
            .object(&ROOT, "", "actions", ObjType::List, true)
            .map(|l| self.strings(&l, "actions"));
        let follow_up_on = self.parsed(&ROOT, "", "followUpOn", false, |s| {
            check_date(s).map(|()| s.to_owned())
        });
        let location = self
            .object(&ROOT, "", "location", ObjType::Map, false)
            .and_then(|loc| {
                let coordinate = |r: &mut Self, key: &str, limit: f64| match r.scalar(&loc, key) {
                    Some(ScalarValue::F64(v)) if v.abs() <= limit => Some(v),
                    Some(ScalarValue::Int(v)) if (v as f64).abs() <= limit => Some(v as f64),
                    Some(ScalarValue::Uint(v)) if (v as f64) <= limit => Some(v as f64),
                    _ => {
                        r.fail(
                            format!("location.{key}"),
                            format!("must be a number from -{limit} to {limit}"),
                        );
                        None
                    }
                };
                Some((
                    coordinate(self, "lat", 90.0)?,
                    coordinate(self, "lon", 180.0)?,
                ))
            });
        let attachments = self.attachments();
        Some(Visit {
            envelope: envelope?,
            beneficiary: beneficiary?,
            visited_at: visited_at?,
            purpose,
            notes: notes?,
            actions: actions?,
            follow_up_on,
            location,
            attachments,
        })
    }

    fn referral(&mut self, envelope: Option<Envelope>) -> Option<Referral> {
        let beneficiary = self.beneficiary();
        let program = self.parsed(&ROOT, "", "program", true, Program::parse);
        let reason = self.string(&ROOT, "", "reason", true);
        let documents = self
            .object(&ROOT, "", "documents", ObjType::Map, true)
            .map(|d| DocumentsChecklist {
                ktp: self.bool(&d, "documents", "ktp").unwrap_or(false),
                kk: self.bool(&d, "documents", "kk").unwrap_or(false),
                sktm: self.bool(&d, "documents", "sktm").unwrap_or(false),
                surat_puskesmas: self
                    .bool(&d, "documents", "suratPuskesmas")
                    .unwrap_or(false),
            });
        let consent = self
            .object(&ROOT, "", "consent", ObjType::Map, true)
            .and_then(|c| {
                let given = self.bool(&c, "consent", "given");
                if given.is_none() && self.get(&c, "given").is_none() {
                    self.fail("consent.given", "is required");
                }
                let at = self.timestamp(&c, "consent", "at", true);
                let by = self.string(&c, "consent", "by", true);
                Some(Consent {
                    given: given?,
                    at: at?,
                    by: by?,
                })
            });
        let visit = self.parsed(&ROOT, "", "visit", false, |s| {
            AutomergeUrl::parse(s)
                .map(|u| u.document_id())
                .map_err(|_| InvalidValue("must be an automerge: URL".to_owned()))
        });
        let mut events = Vec::new();
        if let Some(list) = self.object(&ROOT, "", "events", ObjType::List, true) {
            for i in 0..self.doc.length(&list) {
                let path = format!("events[{i}]");
                let Some((Value::Object(ObjType::Map), e)) = self.doc.get(&list, i).ok().flatten()
                else {
                    self.fail(path, "must be an object {kind, at, by, note?}");
                    continue;
                };
                let kind = self.parsed(&e, &path, "kind", true, EventKind::parse);
                let at = self.timestamp(&e, &path, "at", true);
                let by = self.string(&e, &path, "by", true);
                let note = self.string(&e, &path, "note", false);
                // The key itself is not named: it is the document's text, and could be anything.
                if self
                    .doc
                    .keys(&e)
                    .any(|key| !EVENT_FIELDS.contains(&key.as_str()))
                {
                    self.fail(
                        path.clone(),
                        "an event has only the fields kind, at, by and note",
                    );
                }
                if let (Some(kind), Some(at), Some(by)) = (kind, at, by) {
                    events.push(Event {
                        kind,
                        at,
                        by,
                        note,
                        id: Some(e),
                    });
                }
            }
        }
        let attachments = self.attachments();
        Some(Referral {
            envelope: envelope?,
            beneficiary: beneficiary?,
            program: program?,
            reason: reason?,
            documents: documents?,
            consent: consent?,
            visit,
            events,
            attachments,
        })
    }

    fn outreach(&mut self, envelope: Option<Envelope>) -> Option<Outreach> {
        let topic = self.string(&ROOT, "", "topic", true);
        let held_at = self.timestamp(&ROOT, "", "heldAt", true);
        let place = self.string(&ROOT, "", "place", true);
        let attendees = match self.scalar(&ROOT, "attendees") {
            Some(ScalarValue::Uint(n)) if n < MAX_ATTENDEES => Some(n),
            Some(ScalarValue::Int(n)) if (0..MAX_ATTENDEES as i64).contains(&n) => Some(n as u64),
            Some(ScalarValue::F64(n))
                if (0.0..MAX_ATTENDEES as f64).contains(&n) && n.fract() == 0.0 =>
            {
                Some(n as u64)
            }
            _ => {
                self.fail("attendees", "must be a whole number, 0 or more");
                None
            }
        };
        let notes = self.string(&ROOT, "", "notes", true);
        if self.get(&ROOT, "attachments").is_some() {
            self.fail("attachments", "only visits and referrals hold attachments");
        }
        Some(Outreach {
            envelope: envelope?,
            topic: topic?,
            held_at: held_at?,
            place: place?,
            attendees: attendees?,
            notes: notes?,
        })
    }
}

impl<D: ReadDoc> Reader<'_, D> {
    /// The `attachments` list of a visit or referral; absent is empty.
    fn attachments(&mut self) -> Vec<Attachment> {
        let mut out = Vec::new();
        let Some(list) = self.object(&ROOT, "", "attachments", ObjType::List, false) else {
            return out;
        };
        for i in 0..self.doc.length(&list) {
            let path = format!("attachments[{i}]");
            let Some((Value::Object(ObjType::Map), a)) = self.doc.get(&list, i).ok().flatten()
            else {
                self.fail(
                    path,
                    "must be an object {sha256, size, mime, kind, takenAt, caption?}",
                );
                continue;
            };
            let sha256 = self.parsed(&a, &path, "sha256", true, Sha256::parse);
            let size = self.size(&a, &path);
            let mime = self.parsed(&a, &path, "mime", true, MediaType::parse);
            let kind = self.parsed(&a, &path, "kind", true, AttachmentKind::parse);
            let taken_at = self.timestamp(&a, &path, "takenAt", true);
            let caption = self.string(&a, &path, "caption", false);
            // The key itself is not named: it is the document's text, and could be anything.
            if self
                .doc
                .keys(&a)
                .any(|key| !ATTACHMENT_FIELDS.contains(&key.as_str()))
            {
                self.fail(
                    path.clone(),
                    "an attachment has only the fields sha256, size, mime, kind, takenAt and caption",
                );
            }
            if let (Some(sha256), Some(size), Some(mime), Some(kind), Some(taken_at)) =
                (sha256, size, mime, kind, taken_at)
            {
                out.push(Attachment {
                    sha256,
                    size,
                    mime,
                    kind,
                    taken_at,
                    caption,
                    id: Some(a),
                });
            }
        }
        out
    }

    /// An attachment's `size`: whole bytes, 1 to the configured maximum.
    fn size(&mut self, obj: &ObjId, path: &str) -> Option<u64> {
        let max = self.limits.max_attachment_bytes;
        let size = match self.scalar(obj, "size") {
            Some(ScalarValue::Uint(n)) => Some(n),
            Some(ScalarValue::Int(n)) => u64::try_from(n).ok(),
            Some(ScalarValue::F64(n)) if n >= 0.0 && n.fract() == 0.0 && n < u64::MAX as f64 => {
                Some(n as u64)
            }
            None if self.get(obj, "size").is_none() => {
                self.fail(join(path, "size"), "is required");
                return None;
            }
            _ => None,
        };
        match size {
            Some(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                self.fail(
                    join(path, "size"),
                    format!("must be a whole number of bytes from 1 to {max}"),
                );
                None
            }
        }
    }
}
