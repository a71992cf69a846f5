//! Attachments on visits and referrals: what an entry must hold, who may add or remove one,
//! that none is changed in place, and what satisfies a referral's checklist. Each change is
//! judged as the server judges a peer's: merged into the server's copy, then `check_applied`.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use fieldsync_core::schema::{
    Attachment, AttachmentKind, Author, ChecklistItem, DEFAULT_MAX_ATTACHMENT_BYTES, Event,
    EventKind, FieldDocument, MediaType, RegionCode, Role, SchemaLimits, Violation, add_attachment,
    add_event, check_applied, check_applied_with, examples,
};

fn ani() -> Author {
    Author::user(
        "peksos-ani",
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.77.01").unwrap()],
    )
}

fn budi() -> Author {
    Author::user(
        "supervisor-budi",
        Role::Supervisor,
        vec![RegionCode::parse_prefix("32.77").unwrap()],
    )
}

fn area() -> RegionCode {
    RegionCode::parse("32.77.01.1001").unwrap()
}

/// Ani's referral with these attachments, written under Ani's actor id: the server's copy.
fn referral(attachments: Vec<Attachment>) -> AutoCommit {
    let mut r = examples::referral(&area(), "peksos-ani");
    r.documents = Default::default();
    r.attachments = attachments;
    let mut doc = AutoCommit::new().with_actor(ActorId::from([1; 16]));
    FieldDocument::Referral(r).write(&mut doc).unwrap();
    doc
}

fn device(server: &AutoCommit, n: u8) -> AutoCommit {
    server.clone().with_actor(ActorId::from([n; 16]))
}

fn receive_with(
    server: &AutoCommit,
    phone: &mut AutoCommit,
    author: &Author,
    limits: &SchemaLimits,
) -> Result<(), Vec<Violation>> {
    let mut merged = server.clone();
    let heads = merged.get_heads();
    let before = FieldDocument::read_state_with(&merged, limits).unwrap();
    merged.merge(phone).unwrap();
    check_applied_with(merged.document(), &heads, before.as_ref(), author, limits).map(|_| ())
}

fn receive(
    server: &AutoCommit,
    phone: &mut AutoCommit,
    author: &Author,
) -> Result<(), Vec<Violation>> {
    receive_with(server, phone, author, &SchemaLimits::default())
}

fn paths(r: Result<(), Vec<Violation>>) -> Vec<String> {
    r.unwrap_err().into_iter().map(|v| v.path).collect()
}

fn attachments(doc: &AutoCommit) -> Vec<Attachment> {
    FieldDocument::read(doc).unwrap().attachments().to_vec()
}

fn list(doc: &AutoCommit) -> automerge::ObjId {
    doc.get(ROOT, "attachments").unwrap().unwrap().1
}

#[test]
fn a_document_without_attachments_reads_as_before() {
    let doc = referral(Vec::new());
    assert_eq!(doc.get(ROOT, "attachments").unwrap(), None);
    assert!(attachments(&doc).is_empty());
}

#[test]
fn an_attachment_reads_back_as_written() {
    let mut scan = examples::scan(AttachmentKind::Ktp);
    scan.caption = Some("KTP kepala keluarga".into());
    let doc = referral(vec![scan.clone()]);
    let read = attachments(&doc);
    assert_eq!(read.len(), 1);
    assert_eq!(
        Attachment {
            id: None,
            ..read[0].clone()
        },
        scan
    );
}

#[test]
fn a_field_worker_adds_and_removes_attachments_offline() {
    let server = referral(Vec::new());
    // Step 1: Ani's phone adds a KTP scan and a photo of the house.
    let mut phone = device(&server, 2);
    add_attachment(&mut phone, &examples::scan(AttachmentKind::Ktp)).unwrap();
    add_attachment(&mut phone, &examples::scan(AttachmentKind::Rumah)).unwrap();
    assert_eq!(receive(&server, &mut phone, &ani()), Ok(()));

    // Step 2: she removes the house photo again.
    let mut server = server;
    server.merge(&mut phone).unwrap();
    let mut phone = device(&server, 2);
    let l = list(&phone);
    phone.delete(&l, 1).unwrap();
    assert_eq!(receive(&server, &mut phone, &ani()), Ok(()));
}

#[test]
fn an_attachment_is_never_changed_in_place() {
    let server = referral(vec![examples::scan(AttachmentKind::Ktp)]);
    let entry = |doc: &AutoCommit| doc.get(list(doc), 0).unwrap().unwrap().1;
    for (field, value) in [
        (
            "sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("kind", "kk"),
        ("caption", "KK"),
        ("takenAt", "2026-11-21T09:00:00Z"),
    ] {
        let mut phone = device(&server, 2);
        let e = entry(&phone);
        phone.put(&e, field, value).unwrap();
        assert_eq!(
            paths(receive(&server, &mut phone, &ani())),
            ["attachments[0]"],
            "{field} changed"
        );
    }
    // Replacing the whole entry by another is a removal plus an addition: allowed.
    let mut phone = device(&server, 2);
    let l = list(&phone);
    phone.delete(&l, 0).unwrap();
    add_attachment(&mut phone, &examples::scan(AttachmentKind::Kk)).unwrap();
    assert_eq!(receive(&server, &mut phone, &ani()), Ok(()));
}

#[test]
fn a_supervisor_cannot_touch_attachments_but_may_still_decide() {
    let server = referral(vec![examples::scan(AttachmentKind::Ktp)]);
    let refused = ["".to_owned()];

    let mut office = device(&server, 3);
    add_attachment(&mut office, &examples::scan(AttachmentKind::Sktm)).unwrap();
    assert_eq!(paths(receive(&server, &mut office, &budi())), refused);

    let mut office = device(&server, 3);
    let l = list(&office);
    office.delete(&l, 0).unwrap();
    assert_eq!(paths(receive(&server, &mut office, &budi())), refused);

    // A decision alone is what a supervisor's change may be.
    let mut office = device(&server, 3);
    let approved = Event {
        kind: EventKind::Approved,
        at: "2026-11-22T10:00:00Z".into(),
        by: "supervisor-budi".into(),
        note: None,
        id: None,
    };
    add_event(&mut office, &approved).unwrap();
    assert_eq!(receive(&server, &mut office, &budi()), Ok(()));
}

/// Spoils one field of an attachment entry.
type Spoil = dyn Fn(&mut AutoCommit, &automerge::ObjId);

#[test]
fn each_field_of_an_entry_is_checked() {
    let server = referral(Vec::new());
    let cases: [(&str, &Spoil); 8] = [
        ("sha256", &|d, e| d.put(e, "sha256", "ABC").unwrap()),
        ("size", &|d, e| d.put(e, "size", 0).unwrap()),
        ("size", &|d, e| d.put(e, "size", "12").unwrap()),
        ("size", &|d, e| d.put(e, "size", 2.5).unwrap()),
        ("mime", &|d, e| d.put(e, "mime", "image/gif").unwrap()),
        ("kind", &|d, e| d.put(e, "kind", "paspor").unwrap()),
        ("takenAt", &|d, e| d.put(e, "takenAt", "kemarin").unwrap()),
        ("caption", &|d, e| d.put(e, "caption", 7).unwrap()),
    ];
    for (field, spoil) in cases {
        let mut phone = device(&server, 2);
        let e = add_attachment(&mut phone, &examples::scan(AttachmentKind::Ktp)).unwrap();
        spoil(&mut phone, &e);
        assert_eq!(
            paths(receive(&server, &mut phone, &ani())),
            [format!("attachments[0].{field}")]
        );
    }
    // A field too many, a missing field, an entry that is not an object, a list that is not.
    let mut phone = device(&server, 2);
    let e = add_attachment(&mut phone, &examples::scan(AttachmentKind::Ktp)).unwrap();
    phone.put(&e, "nik", "3277015204800002").unwrap();
    assert_eq!(
        paths(receive(&server, &mut phone, &ani())),
        ["attachments[0]"]
    );
    let mut phone = device(&server, 2);
    let e = add_attachment(&mut phone, &examples::scan(AttachmentKind::Ktp)).unwrap();
    phone.delete(&e, "mime").unwrap();
    assert_eq!(
        paths(receive(&server, &mut phone, &ani())),
        ["attachments[0].mime"]
    );
    let mut phone = device(&server, 2);
    let l = phone
        .put_object(ROOT, "attachments", ObjType::List)
        .unwrap();
    phone.insert(&l, 0, "ktp.jpg").unwrap();
    assert_eq!(
        paths(receive(&server, &mut phone, &ani())),
        ["attachments[0]"]
    );
    let mut phone = device(&server, 2);
    phone.put(ROOT, "attachments", "ktp.jpg").unwrap();
    assert_eq!(paths(receive(&server, &mut phone, &ani())), ["attachments"]);
}

#[test]
fn the_size_is_held_to_the_configured_maximum() {
    let server = referral(Vec::new());
    let sized = |size: u64| {
        let mut phone = device(&server, 2);
        let mut scan = examples::scan(AttachmentKind::Ktp);
        scan.size = size;
        add_attachment(&mut phone, &scan).unwrap();
        phone
    };
    let max = DEFAULT_MAX_ATTACHMENT_BYTES;
    assert_eq!(max, 20 * 1024 * 1024);
    assert_eq!(receive(&server, &mut sized(max), &ani()), Ok(()));
    assert_eq!(
        paths(receive(&server, &mut sized(max + 1), &ani())),
        ["attachments[0].size"]
    );
    // A server configured for less refuses what the default allows, and says its maximum.
    let small = SchemaLimits {
        max_attachment_bytes: 1024 * 1024,
    };
    let refused = receive_with(&server, &mut sized(max), &ani(), &small).unwrap_err();
    assert_eq!(refused[0].path, "attachments[0].size");
    assert!(
        refused[0].message.contains("1048576"),
        "{}",
        refused[0].message
    );
    assert_eq!(
        receive_with(&server, &mut sized(1024 * 1024), &ani(), &small),
        Ok(())
    );
}

#[test]
fn an_outreach_note_holds_no_attachments() {
    let mut doc = AutoCommit::new();
    FieldDocument::Outreach(examples::outreach(&area(), "peksos-ani"))
        .write(&mut doc)
        .unwrap();
    add_attachment(&mut doc, &examples::scan(AttachmentKind::Lainnya)).unwrap();
    let violations = FieldDocument::read(&doc).unwrap_err();
    assert_eq!(violations[0].path, "attachments");
}

#[test]
fn a_visit_may_hold_a_photo_of_the_house() {
    let mut visit = examples::visit(&area(), "peksos-ani");
    let mut photo = examples::scan(AttachmentKind::Rumah);
    photo.mime = MediaType::Webp;
    visit.attachments = vec![photo];
    let mut doc = AutoCommit::new();
    FieldDocument::Visit(visit).write(&mut doc).unwrap();
    let heads: Vec<_> = Vec::new();
    assert!(check_applied(doc.document(), &heads, None, &ani()).is_ok());
    assert_eq!(attachments(&doc)[0].kind, AttachmentKind::Rumah);
}

#[test]
fn a_scan_of_its_kind_satisfies_a_checklist_item() {
    let mut r = examples::referral(&area(), "peksos-ani");
    r.documents = Default::default();
    r.documents.sktm = true;
    r.attachments = vec![
        examples::scan(AttachmentKind::Ktp),
        examples::scan(AttachmentKind::Rumah),
        examples::scan(AttachmentKind::Ktp),
    ];
    let list = r.checklist();
    let by_item = |item| list.iter().find(|e| e.item == item).unwrap();
    assert_eq!(
        list.iter().map(|e| e.item).collect::<Vec<_>>(),
        ChecklistItem::ALL
    );
    let ktp = by_item(ChecklistItem::Ktp);
    assert!(ktp.satisfied() && !ktp.checked);
    assert_eq!(ktp.scans.len(), 2);
    let sktm = by_item(ChecklistItem::Sktm);
    assert!(sktm.satisfied() && sktm.checked && sktm.scans.is_empty());
    assert!(!by_item(ChecklistItem::Kk).satisfied());
    assert!(!by_item(ChecklistItem::SuratPuskesmas).satisfied());
    assert_eq!(ChecklistItem::SuratPuskesmas.as_str(), "suratPuskesmas");
    assert_eq!(
        ChecklistItem::SuratPuskesmas.scan_kind(),
        AttachmentKind::SuratPuskesmas
    );
}
