//! Typed documents written into Automerge: the other direction of [`FieldDocument::read`].
//!
//! Every string is written as collaborative text, as JS automerge 3 does by default, so that a
//! JS app reads plain strings from documents the server or a Rust tool wrote. Numbers are
//! integers where the schema says whole numbers.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ObjType, ROOT, Value};

use super::attachment::Attachment;
use super::document::{Beneficiary, Envelope, Event, FieldDocument, Outreach, Referral, Visit};

fn text(
    tx: &mut impl Transactable,
    obj: &ObjId,
    key: &str,
    value: &str,
) -> Result<(), AutomergeError> {
    let t = tx.put_object(obj, key, ObjType::Text)?;
    tx.splice_text(&t, 0, 0, value)
}

fn text_opt(
    tx: &mut impl Transactable,
    obj: &ObjId,
    key: &str,
    value: Option<&str>,
) -> Result<(), AutomergeError> {
    match value {
        Some(v) => text(tx, obj, key, v),
        None => Ok(()),
    }
}

fn text_list<'a>(
    tx: &mut impl Transactable,
    obj: &ObjId,
    key: &str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<(), AutomergeError> {
    let list = tx.put_object(obj, key, ObjType::List)?;
    for (i, item) in items.into_iter().enumerate() {
        let t = tx.insert_object(&list, i, ObjType::Text)?;
        tx.splice_text(&t, 0, 0, item)?;
    }
    Ok(())
}

impl FieldDocument {
    /// Writes the document into an empty Automerge document (or over its root fields). A
    /// [`FieldDocument::Newer`] writes only its envelope.
    pub fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        match self {
            Self::Visit(v) => v.write(tx),
            Self::Referral(r) => r.write(tx),
            Self::Outreach(o) => o.write(tx),
            Self::Newer(e) => e.write(tx),
        }
    }
}

impl Envelope {
    fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        text(tx, &ROOT, "type", self.kind.as_str())?;
        tx.put(ROOT, "schema", self.schema as i64)?;
        text(tx, &ROOT, "area", self.area.as_str())?;
        text(tx, &ROOT, "createdBy", &self.created_by)?;
        text(tx, &ROOT, "createdAt", &self.created_at)
    }
}

impl Beneficiary {
    fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        let b = tx.put_object(ROOT, "beneficiary", ObjType::Map)?;
        text(tx, &b, "nik", self.nik.as_str())?;
        text_opt(tx, &b, "kk", self.kk.as_ref().map(|k| k.as_str()))?;
        text(tx, &b, "name", &self.name)?;
        text_opt(tx, &b, "address", self.address.as_deref())?;
        text_list(tx, &b, "ppks", self.ppks.iter().map(|c| c.as_str()))
    }
}

impl Visit {
    pub fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        self.envelope.write(tx)?;
        self.beneficiary.write(tx)?;
        text(tx, &ROOT, "visitedAt", &self.visited_at)?;
        text_opt(tx, &ROOT, "purpose", self.purpose.as_deref())?;
        text(tx, &ROOT, "notes", &self.notes)?;
        text_list(
            tx,
            &ROOT,
            "actions",
            self.actions.iter().map(String::as_str),
        )?;
        text_opt(tx, &ROOT, "followUpOn", self.follow_up_on.as_deref())?;
        if let Some((lat, lon)) = self.location {
            let l = tx.put_object(ROOT, "location", ObjType::Map)?;
            tx.put(&l, "lat", lat)?;
            tx.put(&l, "lon", lon)?;
        }
        for attachment in &self.attachments {
            add_attachment(tx, attachment)?;
        }
        Ok(())
    }
}

impl Referral {
    pub fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        self.envelope.write(tx)?;
        self.beneficiary.write(tx)?;
        text(tx, &ROOT, "program", self.program.as_str())?;
        text(tx, &ROOT, "reason", &self.reason)?;
        let d = tx.put_object(ROOT, "documents", ObjType::Map)?;
        tx.put(&d, "ktp", self.documents.ktp)?;
        tx.put(&d, "kk", self.documents.kk)?;
        tx.put(&d, "sktm", self.documents.sktm)?;
        tx.put(&d, "suratPuskesmas", self.documents.surat_puskesmas)?;
        let c = tx.put_object(ROOT, "consent", ObjType::Map)?;
        tx.put(&c, "given", self.consent.given)?;
        text(tx, &c, "at", &self.consent.at)?;
        text(tx, &c, "by", &self.consent.by)?;
        if let Some(visit) = self.visit {
            text(tx, &ROOT, "visit", &format!("automerge:{visit}"))?;
        }
        tx.put_object(ROOT, "events", ObjType::List)?;
        for event in &self.events {
            add_event(tx, event)?;
        }
        for attachment in &self.attachments {
            add_attachment(tx, attachment)?;
        }
        Ok(())
    }
}

/// Appends `event` to a referral's `events` list (the only way events are ever written).
pub fn add_event(tx: &mut impl Transactable, event: &Event) -> Result<ObjId, AutomergeError> {
    let events = match tx.get(ROOT, "events")? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => tx.put_object(ROOT, "events", ObjType::List)?,
    };
    let at = tx.length(&events);
    let e = tx.insert_object(&events, at, ObjType::Map)?;
    text(tx, &e, "kind", event.kind.as_str())?;
    text(tx, &e, "at", &event.at)?;
    text(tx, &e, "by", &event.by)?;
    text_opt(tx, &e, "note", event.note.as_deref())?;
    Ok(e)
}

/// Appends `attachment` to a visit's or referral's `attachments` list, creating the list when
/// the document has none (absent means none, so documents without attachments stay as they
/// were).
pub fn add_attachment(
    tx: &mut impl Transactable,
    attachment: &Attachment,
) -> Result<ObjId, AutomergeError> {
    let list = match tx.get(ROOT, "attachments")? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => tx.put_object(ROOT, "attachments", ObjType::List)?,
    };
    let at = tx.length(&list);
    let a = tx.insert_object(&list, at, ObjType::Map)?;
    text(tx, &a, "sha256", attachment.sha256.as_str())?;
    tx.put(&a, "size", attachment.size as i64)?;
    text(tx, &a, "mime", attachment.mime.as_str())?;
    text(tx, &a, "kind", attachment.kind.as_str())?;
    text(tx, &a, "takenAt", &attachment.taken_at)?;
    text_opt(tx, &a, "caption", attachment.caption.as_deref())?;
    Ok(a)
}

impl Outreach {
    pub fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        self.envelope.write(tx)?;
        text(tx, &ROOT, "topic", &self.topic)?;
        text(tx, &ROOT, "heldAt", &self.held_at)?;
        text(tx, &ROOT, "place", &self.place)?;
        tx.put(ROOT, "attendees", self.attendees as i64)?;
        text(tx, &ROOT, "notes", &self.notes)
    }
}
