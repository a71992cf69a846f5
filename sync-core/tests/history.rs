//! What only the Automerge document shows: where a new event was inserted, and everything a
//! supervisor's change touched. Each test plays the server: it merges a phone's changes into
//! its own copy and judges them with `check_applied`, as `judge` does.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use fieldsync_core::schema::{
    Author, Event, EventKind, FieldDocument, RegionCode, Role, Violation, add_event, check_applied,
    check_change, examples,
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

fn event(kind: EventKind, by: &str) -> Event {
    Event {
        kind,
        at: "2026-11-22T10:00:00Z".into(),
        by: by.into(),
        note: None,
        id: None,
    }
}

/// Ani's referral with these events, written under Ani's actor id: the server's document.
fn referral(events: &[EventKind]) -> AutoCommit {
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    let mut referral = examples::referral(&area, "peksos-ani");
    referral.events = events.iter().map(|k| event(*k, "peksos-ani")).collect();
    let mut doc = AutoCommit::new().with_actor(actor(1));
    FieldDocument::Referral(referral).write(&mut doc).unwrap();
    doc
}

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

/// A device's copy of `server`'s document, writing under its own actor id.
fn device(server: &AutoCommit, n: u8) -> AutoCommit {
    server.clone().with_actor(actor(n))
}

/// The server receives `phone`'s changes: merges them and judges them for `author`. Returns
/// the merged document (the new server state if accepted) and the verdict.
fn receive(
    server: &AutoCommit,
    phone: &mut AutoCommit,
    author: &Author,
) -> (AutoCommit, Result<(), Vec<Violation>>) {
    let mut merged = server.clone();
    let before_heads = merged.get_heads();
    let before = FieldDocument::read_state(&merged).unwrap();
    merged.merge(phone).unwrap();
    let verdict = check_applied(merged.document(), &before_heads, before.as_ref(), author);
    (merged, verdict.map(|_| ()))
}

/// Inserts an event at `at` in the event list, as a hostile app could.
fn insert_event(doc: &mut AutoCommit, at: usize, kind: EventKind, by: &str) {
    let list = doc.get(ROOT, "events").unwrap().unwrap().1;
    let e = doc.insert_object(&list, at, ObjType::Map).unwrap();
    doc.put(&e, "kind", kind.as_str()).unwrap();
    doc.put(&e, "at", "2026-11-23T08:00:00Z").unwrap();
    doc.put(&e, "by", by).unwrap();
}

fn kinds(doc: &AutoCommit) -> Vec<EventKind> {
    match FieldDocument::read(doc).unwrap() {
        FieldDocument::Referral(r) => r.events.iter().map(|e| e.kind).collect(),
        other => panic!("expected a referral, got {other:?}"),
    }
}

fn paths(r: Result<(), Vec<Violation>>) -> Vec<String> {
    r.unwrap_err().into_iter().map(|v| v.path).collect()
}

#[test]
fn a_field_worker_cannot_insert_a_withdrawal_before_a_supervisors_decisions() {
    use EventKind::*;
    // Step 1: Ani submitted; Budi approved and enrolled, and the server accepted both.
    let server = referral(&[Submitted]);
    let mut office = device(&server, 2);
    add_event(&mut office, &event(Approved, "supervisor-budi")).unwrap();
    add_event(&mut office, &event(Enrolled, "supervisor-budi")).unwrap();
    let (server, verdict) = receive(&server, &mut office, &budi());
    assert_eq!(verdict, Ok(()));

    // Step 2: Ani's phone, which has seen both decisions, inserts a withdrawal before them,
    // which would void them (derive_status applies the first in the list).
    let mut phone = device(&server, 3);
    insert_event(&mut phone, 1, Withdrawn, "peksos-ani");
    let (merged, verdict) = receive(&server, &mut phone, &ani());
    assert_eq!(kinds(&merged), [Submitted, Withdrawn, Approved, Enrolled]);
    // The states alone look like an append of a field worker's event...
    let before = FieldDocument::read_state(&server).unwrap();
    let after = FieldDocument::read_state(&merged).unwrap();
    assert_eq!(
        check_change(before.as_ref(), after.as_ref(), &ani()),
        Ok(())
    );
    // ...but it was put before events its author had seen.
    assert_eq!(paths(verdict), ["events[1]"]);

    // Appending the same withdrawal at the end is fine (and not applied: the referral is
    // enrolled).
    let mut phone = device(&server, 3);
    add_event(&mut phone, &event(Withdrawn, "peksos-ani")).unwrap();
    assert_eq!(receive(&server, &mut phone, &ani()).1, Ok(()));
}

#[test]
fn a_supervisor_cannot_insert_an_approval_before_a_withdrawal() {
    use EventKind::*;
    let server = referral(&[Submitted, Withdrawn]);
    let mut office = device(&server, 2);
    insert_event(&mut office, 1, Approved, "supervisor-budi");
    let (merged, verdict) = receive(&server, &mut office, &budi());
    assert_eq!(kinds(&merged), [Submitted, Approved, Withdrawn]);
    assert_eq!(paths(verdict), ["events[1]"]);
    // Nor at the very start.
    let mut office = device(&server, 2);
    insert_event(&mut office, 0, Approved, "supervisor-budi");
    assert_eq!(
        paths(receive(&server, &mut office, &budi()).1),
        ["events[0]"]
    );
}

#[test]
fn concurrent_appends_from_two_devices_are_accepted_in_either_order_and_placement() {
    use EventKind::*;
    let base = referral(&[Submitted]);
    // Automerge puts the concurrent insert with the higher op id (counter, then actor id)
    // first. A device that made more operations offline has higher counters, so its event
    // lands *before* the other's, even when the server receives it second.
    for worker_ahead in [false, true] {
        for worker_first in [false, true] {
            let case =
                format!("worker's op ids higher {worker_ahead}, worker first {worker_first}");
            let mut office = device(&base, 2);
            let mut phone = device(&base, if worker_ahead { 3 } else { 0 });
            if worker_ahead {
                let reason = phone.get(ROOT, "reason").unwrap().unwrap().1;
                phone
                    .splice_text(&reason, 0, 0, "Keluarga lima orang. ")
                    .unwrap();
            }
            add_event(&mut phone, &event(DocumentsAdded, "peksos-ani")).unwrap();
            add_event(&mut office, &event(Approved, "supervisor-budi")).unwrap();

            let (server, first, second) = if worker_first {
                let (s, v1) = receive(&base, &mut phone, &ani());
                let (s, v2) = receive(&s, &mut office, &budi());
                (s, v1, v2)
            } else {
                let (s, v1) = receive(&base, &mut office, &budi());
                let (s, v2) = receive(&s, &mut phone, &ani());
                (s, v1, v2)
            };
            assert_eq!((first, second), (Ok(()), Ok(())), "{case}");
            let expected = if worker_ahead {
                [Submitted, DocumentsAdded, Approved]
            } else {
                [Submitted, Approved, DocumentsAdded]
            };
            assert_eq!(kinds(&server), expected, "{case}");
        }
    }
}

#[test]
fn a_supervisors_change_may_only_append_events() {
    use EventKind::*;
    let server = referral(&[Submitted]);
    let approve = |d: &mut AutoCommit| {
        add_event(d, &event(Approved, "supervisor-budi")).unwrap();
    };
    let judged = |f: &dyn Fn(&mut AutoCommit)| {
        let mut office = device(&server, 2);
        approve(&mut office);
        f(&mut office);
        receive(&server, &mut office, &budi()).1
    };
    assert_eq!(judged(&|_| {}), Ok(()));

    // A field the schema does not name, at the top...
    let r = judged(&|d| {
        d.put(ROOT, "prioritas", "tinggi").unwrap();
    });
    assert_eq!(paths(r), [""]);
    // ...inside the field worker's old event...
    let r = judged(&|d| {
        let list = d.get(ROOT, "events").unwrap().unwrap().1;
        let old = d.get(&list, 0).unwrap().unwrap().1;
        d.put(&old, "verified", true).unwrap();
    });
    assert!(paths(r).contains(&"events[0]".to_owned()));
    // ...or inside the supervisor's own new event.
    let r = judged(&|d| {
        let list = d.get(ROOT, "events").unwrap().unwrap().1;
        let new = d.get(&list, 1).unwrap().unwrap().1;
        d.put(&new, "score", 10).unwrap();
    });
    assert_eq!(paths(r), ["events[1]"]);
    // A field rewritten with the same value is still a write: it would replace the object a
    // field worker may be editing offline.
    let r = judged(&|d| {
        let reason = FieldDocument::read(d).map(|doc| match doc {
            FieldDocument::Referral(r) => r.reason,
            _ => unreachable!(),
        });
        let t = d.put_object(ROOT, "reason", ObjType::Text).unwrap();
        d.splice_text(&t, 0, 0, &reason.unwrap()).unwrap();
    });
    assert_eq!(paths(r), [""]);
    let r = judged(&|d| {
        let list = d.get(ROOT, "events").unwrap().unwrap().1;
        let old = d.get(&list, 0).unwrap().unwrap().1;
        d.put(&old, "at", "2026-11-21T10:00:00Z").unwrap();
    });
    assert_eq!(paths(r), ["events[0]", ""]);
    // Rules compare states: a field added by mistake and removed again in a later change
    // (the repair sent with the refused change) leaves only the decision.
    let r = judged(&|d| {
        d.put(ROOT, "prioritas", "tinggi").unwrap();
        d.commit();
        d.delete(ROOT, "prioritas").unwrap();
    });
    assert_eq!(r, Ok(()));
}

#[test]
fn a_field_worker_may_not_touch_another_persons_event() {
    use EventKind::*;
    let mut server = referral(&[Submitted]);
    add_event(&mut server, &event(Approved, "supervisor-budi")).unwrap();
    let mut phone = device(&server, 3);
    let list = phone.get(ROOT, "events").unwrap().unwrap().1;
    let decision = phone.get(&list, 1).unwrap().unwrap().1;
    phone.put(&decision, "revoked", true).unwrap();
    assert_eq!(paths(receive(&server, &mut phone, &ani()).1), ["events[1]"]);
    // The referral itself is the field worker's to edit.
    let mut phone = device(&server, 3);
    phone.put(ROOT, "reason", "Tidak memiliki KIS.").unwrap();
    assert_eq!(receive(&server, &mut phone, &ani()).1, Ok(()));
}

#[test]
fn a_schema_version_these_rules_do_not_know_is_refused() {
    // Raising a visit from 1 to 2 would hide it from every table.
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    let mut server = AutoCommit::new().with_actor(actor(1));
    FieldDocument::Visit(examples::visit(&area, "peksos-ani"))
        .write(&mut server)
        .unwrap();
    let mut phone = device(&server, 3);
    phone.put(ROOT, "schema", 2).unwrap();
    let (_, verdict) = receive(&server, &mut phone, &ani());
    let violations = verdict.unwrap_err();
    assert_eq!(violations[0].path, "schema");
    assert!(
        violations[0].message.contains("version 2"),
        "{violations:?}"
    );

    // A new schema-2 referral carrying a decision its field worker wrote.
    let mut phone = AutoCommit::new().with_actor(actor(3));
    let mut referral = examples::referral(&area, "peksos-ani");
    referral.envelope.schema = 2;
    referral.events = vec![event(EventKind::Approved, "peksos-ani")];
    FieldDocument::Referral(referral).write(&mut phone).unwrap();
    let (_, verdict) = receive(&AutoCommit::new(), &mut phone, &ani());
    assert_eq!(paths(verdict), ["schema"]);
}
