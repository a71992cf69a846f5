//! `check_change` on arbitrary edits to a valid document. The input picks a starting document
//! (an example of docs/schema.md), an author (role, user id, area scope) and a list of edits
//! (`fieldsync_fuzz::Edit`: put, delete, insert, splice, increment at a walked path), applied
//! as one change. The state after is read as the server reads it; when it reads and the rules
//! accept the change, the promises of `check_change` must hold:
//!
//! - the after-state is a field document, and it reads back equal after a save and a load;
//! - type, `createdBy`, `createdAt` are unchanged and `schema` did not go back;
//! - every event before is still there, unchanged;
//! - an author whose role may not edit this type changed nothing but adding events.
#![no_main]

use arbitrary::Arbitrary;
use automerge::Automerge;
use automerge::transaction::Transactable;
use fieldsync_core::schema::{
    Action, Author, EventKind, FieldDocument, RegionCode, Role, add_event, check_applied,
    check_change, examples, permits,
};
use fieldsync_fuzz::{Edit, apply};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    start: Start,
    role: RoleChoice,
    user: u8,
    scope: u8,
    edits: Vec<Edit>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Start {
    Visit,
    Referral,
    /// A referral a supervisor has accepted: events of two authors.
    Accepted,
    Outreach,
    Empty,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum RoleChoice {
    Peksos,
    Coordinator,
    Supervisor,
    Admin,
}

const USERS: &[&str] = &["peksos-1", "peksos-2", "supervisor-1", "coordinator-1"];
const AREA: &str = "32.77.01.1001";

thread_local! {
    /// The starting documents and their states, written and read once: that is most of the
    /// cost of a run.
    static STARTS: Vec<(Automerge, Option<FieldDocument>)> = {
        let area = RegionCode::parse(AREA).expect("a valid area");
        [Start::Visit, Start::Referral, Start::Accepted, Start::Outreach, Start::Empty]
            .into_iter()
            .map(|start| {
                let mut doc = Automerge::new();
                doc.transact(|tx| write_start(tx, start, &area))
                    .expect("an example writes");
                let state = FieldDocument::read_state(&doc).expect("an example is valid");
                (doc, state)
            })
            .collect()
    };
}

fn write_start(
    tx: &mut impl Transactable,
    start: Start,
    area: &RegionCode,
) -> Result<(), automerge::AutomergeError> {
    match start {
        Start::Visit => examples::visit(area, "peksos-1").write(tx),
        Start::Referral => examples::referral(area, "peksos-1").write(tx),
        Start::Accepted => {
            examples::referral(area, "peksos-1").write(tx)?;
            let mut event = examples::referral(area, "peksos-1").events[0].clone();
            event.kind = EventKind::Accepted;
            event.by = "supervisor-1".into();
            add_event(tx, &event).map(drop)
        }
        Start::Outreach => examples::outreach(area, "coordinator-1").write(tx),
        Start::Empty => Ok(()),
    }
}

fuzz_target!(|input: Input| {
    let (mut after_doc, before) = STARTS.with(|starts| starts[input.start as usize].clone());

    let role = match input.role {
        RoleChoice::Peksos => Role::Peksos,
        RoleChoice::Coordinator => Role::Coordinator,
        RoleChoice::Supervisor => Role::Supervisor,
        RoleChoice::Admin => Role::Admin,
    };
    let user = USERS[usize::from(input.user) % USERS.len()];
    let author = match input.scope % 3 {
        0 => Author::user(
            user,
            role,
            vec![RegionCode::parse_prefix("32.77.01").unwrap()],
        ),
        1 => Author::user(
            user,
            role,
            vec![RegionCode::parse_prefix("32.77.02").unwrap()],
        ),
        _ => Author::anonymous(role),
    };

    let before_heads = after_doc.get_heads();
    let _ = after_doc.transact(|tx| -> Result<(), automerge::AutomergeError> {
        for edit in &input.edits {
            apply(tx, edit);
        }
        Ok(())
    });
    // What the server does: a state that does not read is refused before the rules run.
    let Ok(after) = FieldDocument::read_state(&after_doc) else {
        return;
    };
    // As the server judges a peer's change: the states, and where new events sit.
    if check_change(before.as_ref(), after.as_ref(), &author).is_err()
        || check_applied(&after_doc, &before_heads, before.as_ref(), &author).is_err()
    {
        return;
    }

    let reloaded = Automerge::load(&after_doc.save()).expect("a saved document loads");
    assert_eq!(
        FieldDocument::read_state(&reloaded).ok(),
        Some(after.clone()),
        "the accepted state reads differently after a save and a load"
    );
    let (Some(before), Some(after)) = (before, after) else {
        // Nothing to create from an empty document, or an empty one left empty.
        return;
    };
    let (b, a) = (before.envelope(), after.envelope());
    assert_eq!(a.kind, b.kind);
    assert_eq!(a.created_by, b.created_by);
    assert_eq!(a.created_at, b.created_at);
    assert!(a.schema >= b.schema);
    let events = |d: &FieldDocument| match d {
        FieldDocument::Referral(r) => r.events.clone(),
        _ => Vec::new(),
    };
    let (old, new) = (events(&before), events(&after));
    for event in &old {
        assert!(new.contains(event), "{event:?} was removed or changed");
    }
    if !permits(author.role, a.kind, Action::Edit) {
        let strip = |d: &FieldDocument| {
            let mut d = d.clone();
            if let FieldDocument::Referral(r) = &mut d {
                r.events.clear();
            }
            d
        };
        assert_eq!(
            strip(&after),
            strip(&before),
            "a {} edited a {} document",
            author.role.as_str(),
            a.kind.as_str()
        );
        assert!(new.len() > old.len(), "accepted without adding an event");
    }
    // Issue 10: "events may only be appended after every event the author has seen"; this
    // change saw them all.
    assert_eq!(
        &new[..old.len()],
        &old[..],
        "a new event was inserted before old ones"
    );
});
