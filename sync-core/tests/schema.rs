//! The field-document schema, read from real Automerge documents.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use fieldsync_core::schema::{
    DocKind, EventKind, FieldDocument, Program, ReferralStatus, derive_status,
};

fn envelope(doc: &mut AutoCommit, kind: &str) {
    doc.put(ROOT, "type", kind).unwrap();
    doc.put(ROOT, "schema", 1).unwrap();
    doc.put(ROOT, "area", "32.77.01.1001").unwrap();
    doc.put(ROOT, "createdBy", "peksos-ani").unwrap();
    doc.put(ROOT, "createdAt", "2026-11-20T08:00:00Z").unwrap();
}

/// Strings as JS automerge 3 writes them: collaborative text.
fn text(doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str) {
    let t = doc.put_object(obj, key, ObjType::Text).unwrap();
    doc.splice_text(&t, 0, 0, value).unwrap();
}

fn beneficiary(doc: &mut AutoCommit, nik: &str) {
    let b = doc.put_object(ROOT, "beneficiary", ObjType::Map).unwrap();
    text(doc, &b, "nik", nik);
    doc.put(&b, "name", "Siti Aminah").unwrap();
    let ppks = doc.put_object(&b, "ppks", ObjType::List).unwrap();
    doc.insert(&ppks, 0, "fakir-miskin").unwrap();
}

fn visit(nik: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    envelope(&mut doc, "visit");
    beneficiary(&mut doc, nik);
    doc.put(ROOT, "visitedAt", "2026-11-20T09:30:00Z").unwrap();
    text(
        &mut doc,
        &ROOT,
        "notes",
        "Rumah semi permanen, 5 anggota keluarga.",
    );
    let actions = doc.put_object(ROOT, "actions", ObjType::List).unwrap();
    doc.insert(&actions, 0, "rujuk KIS-PBI").unwrap();
    doc.put(ROOT, "followUpOn", "2026-12-01").unwrap();
    doc
}

fn referral() -> AutoCommit {
    let mut doc = AutoCommit::new();
    envelope(&mut doc, "referral");
    beneficiary(&mut doc, "3277015204800002");
    doc.put(ROOT, "program", "kis-pbi").unwrap();
    text(
        &mut doc,
        &ROOT,
        "reason",
        "Tidak memiliki jaminan kesehatan.",
    );
    let d = doc.put_object(ROOT, "documents", ObjType::Map).unwrap();
    doc.put(&d, "ktp", true).unwrap();
    doc.put(&d, "kk", true).unwrap();
    let c = doc.put_object(ROOT, "consent", ObjType::Map).unwrap();
    doc.put(&c, "given", true).unwrap();
    doc.put(&c, "at", "2026-11-20T09:40:00Z").unwrap();
    doc.put(&c, "by", "Siti Aminah").unwrap();
    doc.put_object(ROOT, "events", ObjType::List).unwrap();
    add_event(&mut doc, "submitted", "peksos-ani");
    doc
}

fn add_event(doc: &mut AutoCommit, kind: &str, by: &str) {
    let events = doc.get(ROOT, "events").unwrap().unwrap().1;
    let at = doc.length(&events);
    let e = doc.insert_object(&events, at, ObjType::Map).unwrap();
    doc.put(&e, "kind", kind).unwrap();
    doc.put(&e, "at", "2026-11-21T10:00:00Z").unwrap();
    doc.put(&e, "by", by).unwrap();
}

fn events(doc: &AutoCommit) -> Vec<EventKind> {
    match FieldDocument::read(doc).unwrap() {
        FieldDocument::Referral(r) => r.events.iter().map(|e| e.kind).collect(),
        other => panic!("expected a referral, got {other:?}"),
    }
}

#[test]
fn a_valid_visit_reads_with_text_and_scalar_strings() {
    let doc = visit("3277011204800001");
    let FieldDocument::Visit(v) = FieldDocument::read(&doc).unwrap() else {
        panic!()
    };
    assert_eq!(v.envelope.kind, DocKind::Visit);
    assert_eq!(v.beneficiary.nik.as_str(), "3277011204800001");
    assert_eq!(v.notes, "Rumah semi permanen, 5 anggota keluarga.");
    assert_eq!(v.actions, vec!["rujuk KIS-PBI"]);
}

#[test]
fn a_visit_with_nik_123_is_refused_naming_the_field() {
    let doc = visit("123");
    let violations = FieldDocument::read(&doc).unwrap_err();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "beneficiary.nik");
    assert!(violations[0].message.contains("16 digits"));
}

#[test]
fn every_violation_is_reported_at_once() {
    let mut doc = visit("3277011204800001");
    doc.put(ROOT, "area", "Cimahi").unwrap();
    doc.put(ROOT, "followUpOn", "besok").unwrap();
    doc.delete(ROOT, "visitedAt").unwrap();
    let paths: Vec<String> = FieldDocument::read(&doc)
        .unwrap_err()
        .into_iter()
        .map(|v| v.path)
        .collect();
    assert_eq!(paths, vec!["area", "visitedAt", "followUpOn"]);
}

#[test]
fn unknown_fields_are_kept_and_ignored() {
    let mut doc = visit("3277011204800001");
    doc.put(ROOT, "photoCount", 3).unwrap();
    assert!(FieldDocument::read(&doc).is_ok());
}

#[test]
fn a_newer_schema_is_checked_only_for_its_envelope() {
    let mut doc = AutoCommit::new();
    envelope(&mut doc, "visit");
    doc.put(ROOT, "schema", 2).unwrap();
    doc.put(ROOT, "household", "a field a v1 server does not know")
        .unwrap();
    let read = FieldDocument::read(&doc).unwrap();
    assert!(matches!(read, FieldDocument::Newer(ref e) if e.schema == 2));
    doc.put(ROOT, "area", "nowhere").unwrap();
    assert!(
        FieldDocument::read(&doc).is_err(),
        "the envelope still counts"
    );
}

#[test]
fn a_valid_referral_and_outreach_read() {
    let doc = referral();
    let FieldDocument::Referral(r) = FieldDocument::read(&doc).unwrap() else {
        panic!()
    };
    assert_eq!(r.program, Program::KisPbi);
    assert!(r.documents.ktp && !r.documents.sktm);
    assert_eq!(
        derive_status(events(&doc)).status,
        ReferralStatus::Submitted
    );

    let mut o = AutoCommit::new();
    envelope(&mut o, "outreach");
    o.put(ROOT, "topic", "Pencegahan stunting").unwrap();
    o.put(ROOT, "heldAt", "2026-11-19T14:00:00Z").unwrap();
    o.put(ROOT, "place", "Balai RW 05").unwrap();
    o.put(ROOT, "attendees", 25).unwrap();
    text(&mut o, &ROOT, "notes", "Dihadiri kader posyandu.");
    assert!(matches!(
        FieldDocument::read(&o),
        Ok(FieldDocument::Outreach(_))
    ));
    o.put(ROOT, "attendees", ScalarValue::Int(-1)).unwrap();
    assert_eq!(FieldDocument::read(&o).unwrap_err()[0].path, "attendees");
}

#[test]
fn unknown_program_and_event_kinds_are_refused() {
    let mut doc = referral();
    doc.put(ROOT, "program", "bansos-x").unwrap();
    add_event(&mut doc, "teleported", "x");
    let paths: Vec<String> = FieldDocument::read(&doc)
        .unwrap_err()
        .into_iter()
        .map(|v| v.path)
        .collect();
    assert_eq!(paths, vec!["program", "events[1].kind"]);
}

#[test]
fn withdraw_concurrent_with_approve_derives_one_status_everywhere() {
    // Step 1: a submitted referral is on the phone and on the supervisor's side.
    let mut phone = referral();
    let mut office = phone.fork();
    // Step 2: offline, the worker withdraws while the supervisor approves.
    add_event(&mut phone, "withdrawn", "peksos-ani");
    add_event(&mut office, "approved", "supervisor-budi");
    // Step 3: they merge, in both directions.
    let mut a = phone.fork();
    a.merge(&mut office).unwrap();
    let mut b = office.fork();
    b.merge(&mut phone).unwrap();
    // Both events stay in the history; both replicas derive the same status.
    assert_eq!(events(&a).len(), 3);
    assert_eq!(events(&a), events(&b));
    let (da, db) = (derive_status(events(&a)), derive_status(events(&b)));
    assert_eq!(da, db);
    assert_eq!(
        da.not_applied.len(),
        1,
        "the later of the two is kept but not applied"
    );
    assert!(matches!(
        da.status,
        ReferralStatus::Withdrawn | ReferralStatus::Approved
    ));
}

#[test]
fn two_supervisors_deciding_differently_offline_converge() {
    let mut one = referral();
    add_event(&mut one, "accepted", "supervisor-budi");
    let mut two = one.fork();
    add_event(&mut one, "approved", "supervisor-budi");
    add_event(&mut two, "rejected", "supervisor-citra");
    let mut a = one.fork();
    a.merge(&mut two).unwrap();
    let mut b = two.fork();
    b.merge(&mut one).unwrap();
    assert_eq!(derive_status(events(&a)), derive_status(events(&b)));
    assert_eq!(derive_status(events(&a)).not_applied, vec![3]);
}

/// Found by the `schema_read` fuzz target: what the reader accepts, the writer must write
/// back readably (fuzz/regressions/README.md).
#[test]
fn numbers_the_writer_cannot_write_are_refused() {
    use automerge::{AutoCommit, ROOT, ScalarValue, transaction::Transactable};
    use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    for (key, value) in [
        ("schema", ScalarValue::Uint(u64::MAX)),
        ("schema", ScalarValue::F64(1e300)),
        ("attendees", ScalarValue::Uint(u64::MAX)),
        ("attendees", ScalarValue::Int(i64::MAX)),
    ] {
        let mut doc = AutoCommit::new();
        FieldDocument::Outreach(examples::outreach(&area, "peksos-1"))
            .write(&mut doc)
            .unwrap();
        doc.put(ROOT, key, value.clone()).unwrap();
        if let Ok(Some(read)) = FieldDocument::read_state(&doc) {
            let mut copy = AutoCommit::new();
            read.write(&mut copy).unwrap();
            assert_eq!(
                FieldDocument::read_state(&copy).ok().flatten().as_ref(),
                Some(&read),
                "{key} = {value:?} was accepted but does not survive a write"
            );
        }
    }
}
