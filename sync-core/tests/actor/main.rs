//! The document actor without sockets: phones (plain automerge documents with one sync state
//! each) exchange messages with several simulated server processes, each running its own
//! `DocumentActor` for the same document, all sharing one simulated store. Nothing here reads
//! a clock or waits: every schedule is a list of steps, run exactly.
//!
//! What every schedule must keep:
//! - no phone hears server heads that the store does not hold (acknowledged means stored);
//! - a refused change never reaches the store or another phone;
//! - a failed write is rolled back, and the phones' changes come again until stored;
//! - once storage works and every message is delivered, every replica is the same.

mod schedules;
mod sim;

use std::collections::VecDeque;
use std::sync::Arc;

use automerge::sync::SyncDoc;
use automerge::{ActorId, Automerge};
use fieldsync_core::actor::{
    ActorConfig, AuditAction, DocumentActor, Effect, Event, Outcome, Refusal, Who,
};
use fieldsync_core::schema::{Author, RegionCode, Role};
use fieldsync_core::{DocumentSync, Kind};
use fieldsync_protocol::{DocumentId, Notice, PeerId, StorageId};
use sim::{RETRY, Sim, peksos};

/// Step by step: a phone's change is acknowledged only once the store holds it.
#[test]
fn a_change_is_acknowledged_only_once_stored() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);

    // Step 1: Ani's phone connects; the exchange goes on until her visit reaches the server,
    // which asks storage to write it.
    sim.connect(ani, 0);
    sim.exchange_until_written(ani);

    // Step 2: until storage answers, the server says nothing more, whatever the phone sends.
    let said = sim.down.values().map(VecDeque::len).sum::<usize>();
    sim.phone_speaks(ani);
    sim.deliver_up(ani);
    assert_eq!(
        sim.down.values().map(VecDeque::len).sum::<usize>(),
        said,
        "a reply left before the write was stored"
    );
    assert!(sim.store.chunks.is_empty());

    // Step 3: stored; the reply goes out and names what is stored.
    sim.answer(0, Outcome::Committed);
    assert_eq!(sim.store.chunks.len(), 1);
    sim.settle();
    sim.assert_converged();
    assert!(sim.acknowledged > 0);
    // The write was audited with it, and the device now owns its actor id.
    assert!(
        sim.store
            .audit
            .contains(&("device-phone-0".into(), AuditAction::Write))
    );
    assert_eq!(sim.store.owners.len(), 1);
}

/// Step by step: a refused change is undone, audited and told, and reaches nobody.
#[test]
fn a_refused_change_reaches_nobody() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);
    let vandal = sim.phone("peksos-dodi", true);

    // Step 1: the visit is stored and every phone has it.
    for phone in [ani, citra, vandal] {
        sim.connect(phone, 0);
    }
    sim.settle();
    sim.assert_converged();

    // Step 2: Dodi rewrites who created the visit.
    sim.phone_edits(vandal);
    sim.settle();
    assert_eq!(sim.refusals, vec![Refusal::Rules]);

    // Step 3: refused, audited, and Dodi is told why; nobody else has it.
    assert!(matches!(
        sim.phones[vandal].notices.last(),
        Some(Notice::ChangeRefused { violations, .. }) if violations[0].path == "createdBy"
    ));
    assert!(
        sim.store
            .audit
            .contains(&("device-phone-2".into(), AuditAction::Refused))
    );
    sim.assert_converged();

    // Step 4: honest work goes on around the refusal.
    sim.phone_edits(citra);
    sim.settle();
    sim.assert_converged();
}

/// Step by step: a failed write is rolled back; a tick later the phones send it again.
#[test]
fn a_failed_write_is_rolled_back_and_sent_again() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    sim.connect(ani, 0);

    // Step 1: storage fails the visit's write.
    sim.exchange_until_written(ani);
    let said = sim.down.values().map(VecDeque::len).sum::<usize>();
    sim.answer(0, Outcome::Failed);
    assert!(sim.store.chunks.is_empty());
    assert!(!sim.processes[0].actor.exists(), "not rolled back");
    assert_eq!(sim.processes[0].actor.wake_at(), Some(RETRY));

    // Step 2: nothing is said until the tick.
    assert_eq!(sim.down.values().map(VecDeque::len).sum::<usize>(), said);

    // Step 3: after the tick the server asks again, the phone resends, and it is stored.
    sim.settle();
    assert_eq!(sim.store.chunks.len(), 1);
    sim.assert_converged();
}

/// Step by step: a change stored by another process reaches this process's phones, and a
/// server-side edit is answered only once stored.
#[test]
fn changes_cross_processes_and_edits_wait_for_storage() {
    let mut sim = Sim::new(2);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);

    // Step 1: Ani on process 0, Citra on process 1.
    sim.connect(ani, 0);
    sim.settle();
    sim.connect(citra, 1);
    sim.settle();
    sim.assert_converged();

    // Step 2: Ani edits through process 0; process 1 reads it from the store.
    sim.phone_edits(ani);
    sim.settle();
    sim.assert_converged();

    // Step 3: an edit on process 1 is done only when stored.
    sim.server_edit(1);
    assert!(sim.edits_done.is_empty());
    sim.answer(1, Outcome::Committed);
    assert_eq!(sim.edits_done, vec![Ok(())]);
    sim.settle();
    sim.assert_converged();

    // Step 4: a failed edit says so, and nothing of it stays.
    sim.server_edit(0);
    sim.answer(0, Outcome::Failed);
    assert_eq!(sim.edits_done.len(), 2);
    assert!(sim.edits_done[1].is_err());
    sim.settle();
    sim.assert_converged();
}

/// Found by the property test: a phone holding nothing, on a process whose write failed,
/// still gets the document once it is stored (the reset after the rollback names no heads,
/// to which an empty phone has nothing to answer).
#[test]
fn an_empty_phone_gets_the_document_after_a_failed_write() {
    let mut sim = Sim::new(2);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);

    // Step 1: Ani on process 0, Citra (holding nothing) on process 1; Ani moves to process 1
    // and edits her new visit before it is stored anywhere.
    sim.connect(ani, 0);
    sim.connect(citra, 1);
    sim.connect(ani, 1);
    sim.phone_edits(ani);
    sim.deliver_up(ani);
    sim.deliver_down(ani);
    sim.deliver_up(citra);
    sim.exchange_until_written(ani);

    // Step 2: storage fails the visit's write.
    sim.answer(1, Outcome::Failed);

    // Step 3: storage works again: both phones end with the stored visit.
    sim.settle();
    sim.assert_converged();
    assert_eq!(sim.store.chunks.len(), 1);
}

/// Step by step: a change another process stored reaches this process's phones, but only the
/// process that stored it tells live views (each change is announced once).
#[test]
fn other_processes_changes_are_relayed_not_announced() {
    let mut sim = Sim::new(2);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);
    sim.connect(ani, 0);
    sim.settle();
    sim.connect(citra, 1);
    sim.settle();
    let told = sim.changed.clone();

    // Ani edits through process 0; process 1 reads it from the store and relays it.
    sim.phone_edits(ani);
    sim.settle();
    sim.assert_converged();
    assert_eq!(
        sim.changed[0],
        told[0] + 1,
        "the storing process tells live views"
    );
    assert_eq!(
        sim.changed[1], told[1],
        "a caught-up change is not told again"
    );
}

/// Step by step: a read on the server is answered once its audit line is stored, and not at
/// all for a reader outside the document's area or when the line cannot be stored.
#[test]
fn a_read_on_the_server_waits_for_its_audit_line() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    sim.connect(ani, 0);
    sim.settle();

    // Step 1: a Peksos of the area reads the visit: audited first, answered after.
    sim.server_read(0, peksos("peksos-web"));
    assert!(
        sim.reads_done.is_empty(),
        "answered before the audit line was stored"
    );
    sim.answer(0, Outcome::Committed);
    assert_eq!(sim.reads_done, vec![true]);
    assert!(
        sim.store
            .audit
            .contains(&("web:peksos-web".into(), AuditAction::Read))
    );

    // Step 2: someone of another area is answered at once, with nothing.
    let stranger = Arc::new(Author::user(
        "peksos-far",
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.78").unwrap()],
    ));
    sim.server_read(0, stranger);
    assert_eq!(sim.reads_done, vec![true, false]);
    assert!(sim.processes[0].write.is_none());

    // Step 3: the audit line cannot be stored: nothing is read.
    sim.server_read(0, peksos("peksos-web"));
    sim.answer(0, Outcome::Failed);
    assert_eq!(sim.reads_done, vec![true, false, false]);
}

/// Step by step: unloading waits for the write under way, persists every peer's sync state
/// under its storage id, and the document comes back when next needed.
#[test]
fn unloading_waits_for_the_write_and_persists_sync_states() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    sim.connect(ani, 0);

    // Step 1: asked to unload while the visit's write is outstanding, the actor waits.
    sim.exchange_until_written(ani);
    sim.unload(0);
    assert!(sim.processes[0].actor.document().is_some());
    assert_eq!(sim.unloads, 0);

    // Step 2: stored, it replies and then unloads, persisting Ani's sync state.
    sim.answer(0, Outcome::Committed);
    assert_eq!(sim.unloads, 1);
    assert!(sim.processes[0].actor.document().is_none());
    let storage = StorageId::parse("store-phone-0").unwrap();
    assert!(sim.store.sync_states.contains_key(&storage));

    // Step 3: Ani's next change loads the document again and is stored.
    sim.settle();
    sim.phone_edits(ani);
    sim.settle();
    assert!(sim.processes[0].actor.document().is_some());
    assert_eq!(sim.store.chunks.len(), 2);
    sim.assert_converged();
}

/// Step by step: many small changes are compacted into a snapshot, one write at a time, and
/// nothing is lost.
#[test]
fn many_changes_are_compacted() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    sim.connect(ani, 0);
    sim.settle();
    for _ in 0..40 {
        sim.phone_edits(ani);
        sim.settle();
    }
    assert!(sim.compactions > 0, "never compacted");
    sim.assert_converged();
}

/// Found by the property test: a process that unloaded the document while its phone stayed
/// connected loads it again when another process stores a change, so that the phone hears of
/// it now, not only when it next sends something.
#[test]
fn an_unloaded_document_is_loaded_for_other_processes_changes() {
    let mut sim = Sim::new(2);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);
    sim.connect(ani, 0);
    sim.settle();
    sim.connect(citra, 1);
    sim.settle();

    // Step 1: process 1 unloads the visit; Citra stays connected.
    sim.unload(1);
    assert!(sim.processes[1].actor.document().is_none());

    // Step 2: Ani edits through process 0; Citra gets it through process 1.
    sim.phone_edits(ani);
    sim.settle();
    assert!(sim.processes[1].actor.document().is_some());
    sim.assert_converged();
}

/// Found by the property test: after a failed write the document stays loaded until the
/// tick has asked its peers again, even when asked to unload.
#[test]
fn unloading_waits_for_the_retry_after_a_failed_write() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    sim.connect(ani, 0);
    sim.exchange_until_written(ani);
    sim.unload(0);

    // Step 1: the write fails: rolled back, still loaded.
    sim.answer(0, Outcome::Failed);
    assert!(sim.processes[0].actor.document().is_some());
    assert_eq!(sim.unloads, 0);

    // Step 2: at the tick the phone is asked again, and its visit is stored.
    sim.settle();
    assert!(sim.unloads > 0);
    assert_eq!(sim.store.chunks.len(), 1);
    sim.assert_converged();
}

/// Found by the load generator: a peer whose message waits for the document's load and
/// which leaves meanwhile does not join once it is loaded (its actor could never end).
#[test]
fn a_peer_that_leaves_while_the_document_loads_does_not_join() {
    let mut actor = DocumentActor::new(ActorConfig::default());
    let who = Who {
        peer: PeerId::parse("phone-0").unwrap(),
        conn: 1,
        author: peksos("peksos-ani"),
        device: "device-phone-0".into(),
        storage: None,
    };
    let hello = automerge::sync::Message::encode(
        Automerge::new()
            .generate_sync_message(&mut automerge::sync::State::new())
            .unwrap(),
    );
    let effects = actor.handle_all(
        0,
        vec![
            Event::Sync {
                from: who.clone(),
                kind: Kind::Sync,
                data: hello,
            },
            Event::Left {
                peer: who.peer.clone(),
                conn: who.conn,
            },
        ],
    );
    assert!(matches!(effects[..], [Effect::Load]));
    actor.handle(
        0,
        Event::Loaded {
            doc: Box::new(DocumentSync::new(DocumentId::from_bytes([7; 16]))),
            sync_states: Vec::new(),
        },
    );
    assert_eq!(actor.peers().count(), 0, "the peer joined after it left");
}

/// Found by the load generator: a server edit that changes nothing (an index entry that is
/// already there) is answered at once, with nothing to store.
#[test]
fn an_edit_that_changes_nothing_is_answered() {
    let mut actor = DocumentActor::new(ActorConfig::default());
    let loaded = Event::Loaded {
        doc: Box::new(DocumentSync::new(DocumentId::from_bytes([7; 16]))),
        sync_states: Vec::new(),
    };
    actor.handle(0, loaded);
    let edit = |ticket| Event::IndexEdit {
        ticket,
        owner: "peksos-ani".into(),
        actor: ActorId::from(vec![9; 16]),
        seed: Some(fieldsync_core::index::seed(
            DocumentId::from_bytes([7; 16]),
            "peksos-ani",
            None,
        )),
        change: Box::new(fieldsync_core::index::mark_schema),
    };
    let effects = actor.handle(0, edit(1));
    let Some(Effect::Write { ticket, .. }) =
        effects.iter().find(|e| matches!(e, Effect::Write { .. }))
    else {
        panic!("the first edit is written: {effects:?}");
    };
    let done = actor.handle(
        0,
        Event::Stored {
            ticket: *ticket,
            outcome: Outcome::Committed,
        },
    );
    assert!(done.iter().any(|e| matches!(
        e,
        Effect::EditDone {
            ticket: 1,
            result: Ok(())
        }
    )));

    // The same edit again changes nothing: answered, and nothing is written.
    let effects = actor.handle(0, edit(2));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::EditDone {
                ticket: 2,
                result: Ok(())
            }
        )),
        "{effects:?}"
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Write { .. })));
}

/// A caseload's reconcile reads an index before it reads the query tables: when the index does
/// not exist yet, that read must not create it (a phone would sync the empty index first).
#[test]
fn reading_an_index_that_does_not_exist_creates_nothing() {
    let mut actor = DocumentActor::new(ActorConfig::default());
    let loaded = Event::Loaded {
        doc: Box::new(DocumentSync::new(DocumentId::from_bytes([7; 16]))),
        sync_states: Vec::new(),
    };
    actor.handle(0, loaded);
    let effects = actor.handle(
        0,
        Event::IndexEdit {
            ticket: 1,
            owner: "peksos-ani".into(),
            actor: ActorId::from(vec![9; 16]),
            seed: None,
            change: Box::new(|tx| {
                assert!(fieldsync_core::index::listed(tx).is_empty());
                Ok(())
            }),
        },
    );
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::EditDone {
                ticket: 1,
                result: Ok(())
            }
        )),
        "{effects:?}"
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Write { .. })));
    assert!(!actor.exists(), "nothing was made");
}

/// Step by step: two phones' changes that arrive together cost one write, even when one of
/// them brings an actor id that storage must be asked about first.
#[test]
fn an_owners_lookup_does_not_split_a_batch() {
    let mut sim = Sim::new(1);
    let ani = sim.phone("peksos-ani", false);
    let citra = sim.phone("peksos-citra", false);
    sim.connect(ani, 0);
    sim.connect(citra, 0);
    sim.settle();
    let stored = sim.store.chunks.len();

    // Step 1: Citra (whose actor id the server has not seen) and Ani edit; both messages
    // reach the server in one batch.
    sim.phone_edits(citra);
    sim.phone_edits(ani);
    let mut batch = Vec::new();
    for phone in [citra, ani] {
        let from = sim.who(phone);
        let queue = sim.up.get_mut(&(phone, from.conn)).unwrap();
        while let Some(data) = queue.pop_front() {
            batch.push(Event::Sync {
                from: from.clone(),
                kind: Kind::Sync,
                data,
            });
        }
    }
    sim.feed(0, batch);

    // Step 2: one write holds both changes; once it is stored, nothing more is written.
    sim.answer(0, Outcome::Committed);
    assert!(sim.processes[0].write.is_none(), "the batch was split");
    assert_eq!(sim.store.chunks.len(), stored + 1);
    sim.settle();
    sim.assert_converged();
}
