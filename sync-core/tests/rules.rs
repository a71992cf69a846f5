//! Who may change what: the write rules, cell by cell, on real Automerge documents written by
//! the typed writer.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use fieldsync_core::schema::{
    Action, Author, Beneficiary, Consent, DocKind, DocumentsChecklist, Envelope, Event, EventKind,
    FieldDocument, Nik, Outreach, PpksCategory, Program, Referral, RegionCode, Role, Violation,
    Visit, add_event, check_change, may_read, permits,
};

fn envelope(kind: DocKind, area: &str, by: &str) -> Envelope {
    Envelope {
        kind,
        schema: 1,
        area: RegionCode::parse(area).unwrap(),
        created_by: by.into(),
        created_at: "2026-11-20T08:00:00Z".into(),
    }
}

fn beneficiary() -> Beneficiary {
    Beneficiary {
        nik: Nik::parse("3277015204800002").unwrap(),
        kk: None,
        name: "Siti Aminah".into(),
        address: Some("Jl. Mawar 5".into()),
        ppks: vec![PpksCategory::FakirMiskin],
    }
}

fn visit(area: &str, by: &str) -> FieldDocument {
    FieldDocument::Visit(Visit {
        envelope: envelope(DocKind::Visit, area, by),
        beneficiary: beneficiary(),
        visited_at: "2026-11-20T09:30:00Z".into(),
        purpose: Some("Asesmen awal".into()),
        notes: "Rumah semi permanen.".into(),
        actions: vec!["rujuk KIS-PBI".into()],
        follow_up_on: Some("2026-12-01".into()),
        location: Some((-6.8722, 107.5425)),
        attachments: Vec::new(),
    })
}

fn event(kind: EventKind, by: &str) -> Event {
    Event {
        kind,
        at: "2026-11-21T10:00:00Z".into(),
        by: by.into(),
        note: None,
        id: None,
    }
}

fn referral(by: &str, events: Vec<Event>) -> FieldDocument {
    FieldDocument::Referral(Referral {
        envelope: envelope(DocKind::Referral, "32.77.01.1001", by),
        beneficiary: beneficiary(),
        program: Program::KisPbi,
        reason: "Tidak memiliki jaminan kesehatan.".into(),
        documents: DocumentsChecklist {
            ktp: true,
            ..Default::default()
        },
        consent: Consent {
            given: true,
            at: "2026-11-20T09:40:00Z".into(),
            by: "Siti Aminah".into(),
        },
        visit: None,
        events,
        attachments: Vec::new(),
    })
}

fn outreach(by: &str) -> FieldDocument {
    FieldDocument::Outreach(Outreach {
        envelope: envelope(DocKind::Outreach, "32.77.01.1001", by),
        topic: "Pencegahan stunting".into(),
        held_at: "2026-11-19T14:00:00Z".into(),
        place: "Balai RW 05".into(),
        attendees: 25,
        notes: "Dihadiri kader posyandu.".into(),
    })
}

fn write(doc: &FieldDocument) -> AutoCommit {
    let mut am = AutoCommit::new();
    doc.write(&mut am).unwrap();
    am
}

fn state(doc: &AutoCommit) -> Option<FieldDocument> {
    FieldDocument::read_state(doc).expect("valid")
}

/// Applies `f` to a copy of `doc` and checks the change for `author`.
fn try_change(
    doc: &AutoCommit,
    author: &Author,
    f: impl FnOnce(&mut AutoCommit),
) -> Result<(), Vec<Violation>> {
    let mut after = doc.clone();
    f(&mut after);
    let after = FieldDocument::read_state(&after)?;
    check_change(state(doc).as_ref(), after.as_ref(), author)
}

fn create(doc: &FieldDocument, author: &Author) -> Result<(), Vec<Violation>> {
    check_change(None, state(&write(doc)).as_ref(), author)
}

fn ani() -> Author {
    Author::user(
        "peksos-ani",
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.77.01.1001").unwrap()],
    )
}

fn budi() -> Author {
    Author::user(
        "supervisor-budi",
        Role::Supervisor,
        vec![RegionCode::parse_prefix("32.77").unwrap()],
    )
}

fn paths(r: Result<(), Vec<Violation>>) -> Vec<String> {
    r.unwrap_err().into_iter().map(|v| v.path).collect()
}

#[test]
fn typed_documents_roundtrip_through_automerge() {
    for doc in [
        visit("32.77.01.1001", "peksos-ani"),
        referral(
            "peksos-ani",
            vec![event(EventKind::Submitted, "peksos-ani")],
        ),
        outreach("peksos-ani"),
    ] {
        let mut read = FieldDocument::read(&write(&doc)).unwrap();
        if let FieldDocument::Referral(r) = &mut read {
            assert!(r.events.iter().all(|e| e.id.is_some()));
            r.events.iter_mut().for_each(|e| e.id = None);
        }
        assert_eq!(read, doc);
    }
}

#[test]
fn the_permission_table_cell_by_cell() {
    use Action::*;
    use DocKind::*;
    let kinds = [Visit, Referral, Outreach];
    let expect = |role: Role, kind: DocKind, action: Action| -> bool {
        match (role, kind, action) {
            (Role::Peksos, _, Create | Edit) => true,
            (Role::Peksos, Referral, AddEvent(e)) => matches!(
                e,
                EventKind::Submitted | EventKind::Withdrawn | EventKind::DocumentsAdded
            ),
            (Role::Coordinator, Outreach, Create | Edit) => true,
            (Role::Supervisor, Referral, AddEvent(e)) => !matches!(
                e,
                EventKind::Submitted | EventKind::Withdrawn | EventKind::DocumentsAdded
            ),
            _ => false,
        }
    };
    let mut actions = vec![Create, Edit];
    actions.extend(EventKind::ALL.iter().map(|e| AddEvent(*e)));
    let mut cells = 0;
    for role in Role::ALL {
        for kind in kinds {
            for action in &actions {
                assert_eq!(
                    permits(*role, kind, *action),
                    expect(*role, kind, *action),
                    "{role:?} {kind:?} {action:?}"
                );
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 4 * 3 * 11);
}

#[test]
fn creating_checks_role_author_and_area() {
    assert_eq!(
        create(&visit("32.77.01.1001", "peksos-ani"), &ani()),
        Ok(())
    );
    // Another kelurahan than Ani's.
    assert_eq!(
        paths(create(&visit("32.77.01.1002", "peksos-ani"), &ani())),
        ["area"]
    );
    // Written in someone else's name.
    assert_eq!(
        paths(create(&visit("32.77.01.1001", "peksos-dedi"), &ani())),
        ["createdBy"]
    );
    // A supervisor creates no documents; a coordinator only outreach notes.
    assert_eq!(
        paths(create(&visit("32.77.01.1001", "supervisor-budi"), &budi())),
        ["type"]
    );
    let coordinator = Author::anonymous(Role::Coordinator);
    assert!(create(&outreach("x"), &coordinator).is_ok());
    assert!(create(&visit("32.77.01.1001", "x"), &coordinator).is_err());
    // A new referral may carry only field-worker events.
    let approved_at_birth = referral(
        "peksos-ani",
        vec![
            event(EventKind::Submitted, "peksos-ani"),
            event(EventKind::Approved, "peksos-ani"),
        ],
    );
    assert_eq!(
        paths(create(&approved_at_birth, &ani())),
        ["events[1].kind"]
    );
    // An empty document (automerge-repo's `create()`) is no field document yet: allowed.
    assert_eq!(check_change(None, None, &ani()), Ok(()));
}

#[test]
fn a_field_worker_may_submit_and_withdraw_but_never_approve() {
    let doc = write(&referral(
        "peksos-ani",
        vec![event(EventKind::Submitted, "peksos-ani")],
    ));
    for kind in [
        EventKind::Withdrawn,
        EventKind::DocumentsAdded,
        EventKind::Submitted,
    ] {
        let r = try_change(&doc, &ani(), |d| {
            add_event(d, &event(kind, "peksos-ani")).unwrap();
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
    for kind in [
        EventKind::Approved,
        EventKind::Accepted,
        EventKind::Rejected,
    ] {
        let r = try_change(&doc, &ani(), |d| {
            add_event(d, &event(kind, "peksos-ani")).unwrap();
        });
        assert_eq!(paths(r), ["events[1].kind"], "{kind:?}");
    }
}

#[test]
fn a_supervisor_decides_but_does_not_edit() {
    let doc = write(&referral(
        "peksos-ani",
        vec![event(EventKind::Submitted, "peksos-ani")],
    ));
    let approve = |d: &mut AutoCommit| {
        add_event(d, &event(EventKind::Approved, "supervisor-budi")).unwrap();
    };
    assert_eq!(try_change(&doc, &budi(), approve), Ok(()));
    // The event must be in the supervisor's own name.
    let r = try_change(&doc, &budi(), |d| {
        add_event(d, &event(EventKind::Approved, "supervisor-citra")).unwrap();
    });
    assert_eq!(paths(r), ["events[1].by"]);
    // Editing the reason, alone or with a decision, is refused.
    let r = try_change(&doc, &budi(), |d| {
        approve(d);
        d.put(ROOT, "program", "gakinda").unwrap();
    });
    assert_eq!(paths(r), [""]);
    // So is a decision outside the supervisor's areas.
    let elsewhere = Author::user(
        "supervisor-budi",
        Role::Supervisor,
        vec![RegionCode::parse_prefix("32.73").unwrap()],
    );
    assert_eq!(paths(try_change(&doc, &elsewhere, approve)), ["area"]);
    // And a field worker cannot decide in a supervisor's name either.
    let r = try_change(&doc, &ani(), approve);
    assert_eq!(paths(r), ["events[1].kind", "events[1].by"]);
}

#[test]
fn events_are_append_only() {
    let doc = write(&referral(
        "peksos-ani",
        vec![
            event(EventKind::Submitted, "peksos-ani"),
            event(EventKind::Approved, "supervisor-budi"),
        ],
    ));
    let events = doc.get(ROOT, "events").unwrap().unwrap().1;
    let removed = try_change(&doc, &ani(), |d| d.delete(&events, 1).unwrap());
    assert_eq!(paths(removed), ["events[1]"]);
    let second = doc.get(&events, 1).unwrap().unwrap().1;
    let changed = try_change(&doc, &ani(), |d| d.put(&second, "note", "oops").unwrap());
    assert_eq!(paths(changed), ["events[1]"]);
}

#[test]
fn the_envelope_is_fixed_once_created() {
    let doc = write(&visit("32.77.01.1001", "peksos-ani"));
    let r = try_change(&doc, &ani(), |d| {
        d.put(ROOT, "createdBy", "peksos-dedi").unwrap()
    });
    assert_eq!(paths(r), ["createdBy"]);
    let r = try_change(&doc, &ani(), |d| d.put(ROOT, "type", "outreach").unwrap());
    assert!(r.is_err());
    // Moving a visit out of Ani's kelurahan is refused; within it, editing is fine.
    let r = try_change(&doc, &ani(), |d| {
        d.put(ROOT, "area", "32.77.02.1001").unwrap()
    });
    assert_eq!(paths(r), ["area"]);
    let r = try_change(&doc, &ani(), |d| {
        d.put(ROOT, "purpose", "Monitoring").unwrap()
    });
    assert_eq!(r, Ok(()));
    // Emptying a document is refused.
    let r = try_change(&doc, &ani(), |d| {
        for key in d.keys(ROOT).collect::<Vec<_>>() {
            d.delete(ROOT, key.as_str()).unwrap();
        }
    });
    assert_eq!(paths(r), [""]);
}

#[test]
fn a_schema_version_the_rules_do_not_know_is_refused_until_they_do() {
    let doc = write(&visit("32.77.01.1001", "peksos-ani"));
    let upgrade = |d: &mut AutoCommit| {
        d.put(ROOT, "schema", 2).unwrap();
        d.put(ROOT, "household", "v2 field").unwrap();
    };
    assert_eq!(paths(try_change(&doc, &ani(), upgrade)), ["schema"]);
    // Created at 2: refused too, whoever writes it.
    let mut v2 = doc.clone();
    upgrade(&mut v2);
    let created = check_change(None, state(&v2).as_ref(), &ani());
    assert_eq!(paths(created), ["schema"]);
    // One stored at 2 before this rule stays as it is: no edit, and no going back to 1.
    let r = try_change(&v2, &ani(), |d| {
        d.put(ROOT, "purpose", "Monitoring").unwrap()
    });
    assert_eq!(paths(r), ["schema"]);
    let r = try_change(&v2, &ani(), |d| d.put(ROOT, "schema", 1).unwrap());
    assert_eq!(paths(r), ["schema"]);
}

#[test]
fn the_read_table_cell_by_cell() {
    let docs = [
        (DocKind::Visit, visit("32.77.01.1001", "peksos-ani")),
        (DocKind::Referral, referral("peksos-ani", vec![])),
        (DocKind::Outreach, outreach("peksos-ani")),
    ];
    let in_scope = vec![RegionCode::parse_prefix("32.77.01").unwrap()];
    let elsewhere = vec![RegionCode::parse_prefix("32.73").unwrap()];
    for role in Role::ALL {
        for (kind, doc) in &docs {
            let by_role = match role {
                Role::Peksos | Role::Coordinator => true,
                Role::Supervisor => *kind != DocKind::Outreach,
                Role::Admin => false,
            };
            let here = Author::user("u", *role, in_scope.clone());
            let there = Author::user("u", *role, elsewhere.clone());
            assert_eq!(
                may_read(&here, Some(doc)),
                by_role,
                "{role:?} {kind:?} in scope"
            );
            assert!(
                !may_read(&there, Some(doc)),
                "{role:?} {kind:?} out of scope"
            );
        }
        // An empty document: anyone but an administrator.
        let anyone = Author::user("u", *role, elsewhere.clone());
        assert_eq!(
            may_read(&anyone, None),
            *role != Role::Admin,
            "{role:?} empty"
        );
    }
}
