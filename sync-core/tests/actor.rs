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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ROOT, ReadDoc};
use fieldsync_core::actor::{
    ActorConfig, AuditAction, DocumentActor, EditFn, Editor, Effect, Event, Outcome, Outgoing,
    Record, Who,
};
use fieldsync_core::schema::{Author, FieldDocument, RegionCode, Role, examples};
use fieldsync_core::{DocumentSync, Kind, Limits};
use fieldsync_protocol::{DocumentId, Notice, PeerId};
use proptest::prelude::*;

const AREA: &str = "32.77.01.1001";
const RETRY: u64 = 1_000;

fn doc_id() -> DocumentId {
    DocumentId::from_bytes([7; 16])
}

/// The store every process shares: chunks in commit order, and the committed audit lines and
/// actor-id bindings.
#[derive(Default)]
struct Store {
    chunks: Vec<Vec<u8>>,
    owners: BTreeMap<String, String>,
    audit: Vec<(String, AuditAction)>,
}

impl Store {
    fn document(&self) -> Automerge {
        Automerge::load(&self.chunks.concat()).unwrap_or_default()
    }

    fn holds(&self, hash: &ChangeHash) -> bool {
        self.document().get_change_by_hash(hash).is_some()
    }
}

/// One server process: its actor, the chunks of the store it has applied, and the write it
/// waits for.
struct Process {
    actor: DocumentActor,
    applied: BTreeSet<usize>,
    write: Option<(u64, Option<Vec<u8>>, Vec<Record>)>,
    /// Storage said another process committed; not yet read.
    notified: bool,
}

struct Phone {
    name: String,
    author: Arc<Author>,
    doc: Automerge,
    /// The sync state for the server, and where it is connected: (process, connection).
    state: sync::State,
    at: Option<(usize, u64)>,
    /// Refused by the server: this phone writes only changes the rules refuse.
    vandal: bool,
    notices: Vec<Notice>,
}

#[derive(Default)]
struct Sim {
    now: u64,
    store: Store,
    processes: Vec<Process>,
    phones: Vec<Phone>,
    /// Frames in flight on each connection, in order: phone → process and back.
    up: BTreeMap<(usize, u64), VecDeque<Vec<u8>>>,
    down: BTreeMap<(usize, u64), VecDeque<Vec<u8>>>,
    next_conn: u64,
    /// Hashes of changes the vandal made: they must never spread.
    refused: BTreeSet<ChangeHash>,
    edits_done: Vec<Result<(), String>>,
    next_actor: u8,
    /// Every server head a phone was told, with whether the store held it then.
    acknowledged: usize,
}

fn peer(name: &str) -> PeerId {
    PeerId::parse(name).unwrap()
}

fn peksos(user: &str) -> Arc<Author> {
    Arc::new(Author::user(
        user,
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.77.01").unwrap()],
    ))
}

impl Sim {
    fn new(processes: usize) -> Self {
        let mut sim = Sim::default();
        for _ in 0..processes {
            sim.processes.push(Process {
                actor: DocumentActor::new(ActorConfig {
                    retry_after_ms: RETRY,
                }),
                applied: BTreeSet::new(),
                write: None,
                notified: false,
            });
        }
        sim
    }

    /// A phone of `user`; the first one creates the visit the story is about.
    fn phone(&mut self, user: &str, vandal: bool) -> usize {
        let n = self.phones.len();
        let mut doc = Automerge::new().with_actor(ActorId::from(vec![100 + n as u8; 16]));
        if n == 0 {
            let visit = examples::visit(&RegionCode::parse(AREA).unwrap(), user);
            let mut tx = doc.transaction();
            FieldDocument::Visit(visit).write(&mut tx).unwrap();
            tx.commit();
        }
        self.phones.push(Phone {
            name: format!("phone-{n}"),
            author: peksos(user),
            doc,
            state: sync::State::new(),
            at: None,
            vandal,
            notices: Vec::new(),
        });
        n
    }

    fn who(&self, phone: usize) -> Who {
        let p = &self.phones[phone];
        Who {
            peer: peer(&p.name),
            conn: p.at.expect("connected").1,
            author: p.author.clone(),
            device: format!("device-{}", p.name).into(),
        }
    }

    fn connect(&mut self, phone: usize, process: usize) {
        self.leave(phone);
        self.next_conn += 1;
        let p = &mut self.phones[phone];
        p.at = Some((process, self.next_conn));
        p.state = sync::State::new();
        self.up.insert((phone, self.next_conn), VecDeque::new());
        self.down.insert((phone, self.next_conn), VecDeque::new());
        self.phone_speaks(phone);
    }

    fn leave(&mut self, phone: usize) {
        let Some((process, conn)) = self.phones[phone].at.take() else {
            return;
        };
        self.up.remove(&(phone, conn));
        self.down.remove(&(phone, conn));
        let name = peer(&self.phones[phone].name);
        self.feed(process, vec![Event::Left { peer: name, conn }]);
    }

    /// The phone sends whatever its sync state says it should.
    fn phone_speaks(&mut self, phone: usize) {
        let p = &mut self.phones[phone];
        let Some((_, conn)) = p.at else { return };
        while let Some(message) = p.doc.generate_sync_message(&mut p.state) {
            self.up
                .get_mut(&(phone, conn))
                .unwrap()
                .push_back(message.encode());
        }
    }

    /// An honest phone edits the notes; a vandal rewrites who created the document.
    fn phone_edits(&mut self, phone: usize) {
        let p = &mut self.phones[phone];
        if p.doc.get_heads().is_empty() {
            return;
        }
        let mut tx = p.doc.transaction();
        if p.vandal {
            tx.put(ROOT, "createdBy", p.author.user.clone().unwrap())
                .unwrap();
        } else {
            let (_, notes) = tx.get(ROOT, "notes").unwrap().unwrap();
            tx.splice_text(&notes, 0, 0, "x").unwrap();
        }
        let (hash, _) = tx.commit();
        if p.vandal {
            self.refused.extend(hash);
        }
        self.phone_speaks(phone);
    }

    /// Delivers the next frame on one direction of a connection.
    fn deliver_up(&mut self, phone: usize) {
        let Some((process, conn)) = self.phones[phone].at else {
            return;
        };
        let Some(data) = self
            .up
            .get_mut(&(phone, conn))
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        let from = self.who(phone);
        self.feed(
            process,
            vec![Event::Sync {
                from,
                kind: Kind::Sync,
                data,
            }],
        );
    }

    fn deliver_down(&mut self, phone: usize) {
        let Some((_, conn)) = self.phones[phone].at else {
            return;
        };
        let Some(data) = self
            .down
            .get_mut(&(phone, conn))
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        let p = &mut self.phones[phone];
        let message = sync::Message::decode(&data).unwrap();
        p.doc.receive_sync_message(&mut p.state, message).unwrap();
        // Acknowledged means stored: every head the server claims is in the store.
        if let Some(heads) = p.state.their_heads.clone() {
            for head in &heads {
                assert!(
                    self.store.holds(head),
                    "{} was told the server has {head}, which the store does not hold",
                    p.name
                );
                self.acknowledged += 1;
            }
        }
        self.phone_speaks(phone);
    }

    /// The phone and its process exchange messages until the process asks storage to write.
    fn exchange_until_written(&mut self, phone: usize) {
        let (process, _) = self.phones[phone].at.expect("connected");
        for _ in 0..10 {
            if self.processes[process].write.is_some() {
                return;
            }
            self.deliver_up(phone);
            self.deliver_down(phone);
        }
        panic!("the process never wrote");
    }

    /// Storage answers the process's outstanding write.
    fn answer(&mut self, process: usize, outcome: Outcome) {
        let Some((ticket, changes, records)) = self.processes[process].write.take() else {
            return;
        };
        if outcome == Outcome::Committed {
            if let Some(bytes) = changes {
                self.store.chunks.push(bytes);
                let stored = self.store.document();
                for hash in &self.refused {
                    assert!(
                        stored.get_change_by_hash(hash).is_none(),
                        "a refused change reached the store"
                    );
                }
                let index = self.store.chunks.len() - 1;
                self.processes[process].applied.insert(index);
                for (i, other) in self.processes.iter_mut().enumerate() {
                    if i != process {
                        other.notified = true;
                    }
                }
            }
            for record in records {
                match record {
                    Record::BindActors { device, actors } => {
                        for actor in actors {
                            self.store.owners.entry(actor).or_insert(device.to_string());
                        }
                    }
                    Record::Audit { device, action, .. } => {
                        self.store.audit.push((device.to_string(), action));
                    }
                }
            }
        }
        self.feed(process, vec![Event::Stored { ticket, outcome }]);
    }

    /// The process reads what other processes stored since it last looked.
    fn catch_up(&mut self, process: usize) {
        let p = &mut self.processes[process];
        if !std::mem::take(&mut p.notified) || p.actor.document().is_none() {
            return;
        }
        let fresh: Vec<usize> = (0..self.store.chunks.len())
            .filter(|i| !p.applied.contains(i))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let bytes: Vec<u8> = fresh
            .iter()
            .flat_map(|i| self.store.chunks[*i].clone())
            .collect();
        p.applied.extend(&fresh);
        let chunks = fresh.len();
        self.feed(process, vec![Event::External { bytes, chunks }]);
    }

    /// A supervisor-free server-side edit: a Peksos on the web appends to the notes.
    fn server_edit(&mut self, process: usize) {
        self.next_actor += 1;
        let actor = ActorId::from(vec![self.next_actor; 16]);
        let editor = Editor {
            author: peksos("peksos-web"),
            device: "web:peksos-web".into(),
        };
        let change: EditFn = Box::new(|tx| {
            let (_, notes) = tx.get(ROOT, "notes")?.expect("a visit has notes");
            tx.splice_text(&notes, 0, 0, "w")
        });
        let ticket = u64::from(self.next_actor);
        self.feed(
            process,
            vec![Event::Edit {
                ticket,
                editor,
                actor,
                change,
            }],
        );
    }

    fn tick(&mut self) {
        self.now += RETRY;
        for process in 0..self.processes.len() {
            self.feed(process, vec![Event::Tick]);
        }
    }

    /// Hands events to a process's actor and carries out what it returns, answering loads
    /// and owner lookups at once.
    fn feed(&mut self, process: usize, events: Vec<Event>) {
        let mut events = events;
        while !events.is_empty() {
            let effects = self.processes[process].actor.handle_all(self.now, events);
            events = Vec::new();
            for effect in effects {
                match effect {
                    Effect::Write {
                        ticket,
                        changes,
                        records,
                        ..
                    } => {
                        let p = &mut self.processes[process];
                        assert!(p.write.is_none(), "one write at a time");
                        p.write = Some((ticket, changes.map(|c| c.bytes), records));
                    }
                    Effect::Record(records) => {
                        for record in records {
                            if let Record::Audit { device, action, .. } = record {
                                self.store.audit.push((device.to_string(), action));
                            }
                        }
                    }
                    Effect::Send { to, message } => self.send(to, message),
                    Effect::Disconnect { to, .. } => {
                        if let Some(phone) = self.phone_at(&to) {
                            self.phones[phone].at = None;
                        }
                    }
                    Effect::Load => {
                        let all: Vec<usize> = (0..self.store.chunks.len()).collect();
                        let p = &mut self.processes[process];
                        p.applied.extend(&all);
                        p.notified = false;
                        let doc = if all.is_empty() {
                            DocumentSync::new(doc_id())
                        } else {
                            let bytes = self.store.chunks.concat();
                            DocumentSync::load(doc_id(), &bytes, all.len(), Limits::default())
                                .unwrap()
                        };
                        events.push(Event::Loaded(Box::new(doc)));
                    }
                    Effect::LookupOwners(actors) => {
                        let found = actors
                            .into_iter()
                            .filter_map(|a| self.store.owners.get(&a).map(|d| (a, d.clone())))
                            .collect();
                        events.push(Event::Owners(Ok(found)));
                    }
                    Effect::EditDone { result, .. } => {
                        self.edits_done.push(result.map_err(|e| e.to_string()));
                    }
                    Effect::Persist { .. }
                    | Effect::Wait(_)
                    | Effect::Changed(_)
                    | Effect::Refused { .. }
                    | Effect::Dropped(_)
                    | Effect::Resident { .. } => {}
                }
            }
        }
    }

    fn phone_at(&self, to: &(PeerId, u64)) -> Option<usize> {
        self.phones
            .iter()
            .position(|p| peer(&p.name) == to.0 && p.at.is_some_and(|(_, c)| c == to.1))
    }

    fn send(&mut self, to: (PeerId, u64), message: Outgoing) {
        let Some(phone) = self.phone_at(&to) else {
            return; // that connection is gone
        };
        match message {
            Outgoing::Sync(data) => self.down.get_mut(&(phone, to.1)).unwrap().push_back(data),
            Outgoing::Notice(notice) => self.phones[phone].notices.push(notice),
            Outgoing::Unavailable | Outgoing::Relay { .. } => {}
        }
    }

    /// Storage works again, and everything is delivered until nothing moves.
    fn settle(&mut self) {
        for _ in 0..200 {
            let mut moved = false;
            for process in 0..self.processes.len() {
                if self.processes[process].write.is_some() {
                    self.answer(process, Outcome::Committed);
                    moved = true;
                }
                if self.processes[process].notified {
                    self.catch_up(process);
                    moved = true;
                }
            }
            for phone in 0..self.phones.len() {
                let Some((_, conn)) = self.phones[phone].at else {
                    continue;
                };
                while self.up.get(&(phone, conn)).is_some_and(|q| !q.is_empty()) {
                    self.deliver_up(phone);
                    moved = true;
                }
                while self.down.get(&(phone, conn)).is_some_and(|q| !q.is_empty()) {
                    self.deliver_down(phone);
                    moved = true;
                }
            }
            if !moved {
                if self.processes.iter().any(|p| p.actor.wake_at().is_some()) {
                    self.tick();
                    continue;
                }
                return;
            }
        }
        panic!("the network did not settle");
    }

    fn honest(&self) -> impl Iterator<Item = &Phone> {
        self.phones.iter().filter(|p| !p.vandal)
    }

    /// Every honest phone, every process and the store hold the same document, and nothing
    /// refused reached any of them.
    fn assert_converged(&self) {
        let stored = self.store.document();
        let mut heads = stored.get_heads();
        heads.sort();
        for phone in self.honest() {
            let mut theirs = phone.doc.get_heads();
            theirs.sort();
            assert_eq!(theirs, heads, "{} differs from the store", phone.name);
        }
        for (i, p) in self.processes.iter().enumerate() {
            if let Some(doc) = p.actor.document() {
                let mut theirs = doc.heads();
                theirs.sort();
                assert_eq!(theirs, heads, "process {i} differs from the store");
            }
        }
        self.assert_contained();
    }

    /// No refused change is in the store or on any phone but the vandal's.
    fn assert_contained(&self) {
        let stored = self.store.document();
        for hash in &self.refused {
            assert!(stored.get_change_by_hash(hash).is_none());
            for phone in self.honest() {
                assert!(
                    phone.doc.get_change_by_hash(hash).is_none(),
                    "a refused change reached {}",
                    phone.name
                );
            }
        }
    }
}

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

#[derive(Debug, Clone)]
enum Step {
    Edit(usize),
    Up(usize),
    Down(usize),
    Store(usize, bool),
    CatchUp(usize),
    Move(usize, usize),
    Leave(usize),
    ServerEdit(usize),
    Tick,
}

const PROCESSES: usize = 3;
const PHONES: usize = 4;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..PHONES).prop_map(Step::Edit),
        6 => (0..PHONES).prop_map(Step::Up),
        6 => (0..PHONES).prop_map(Step::Down),
        4 => (0..PROCESSES, any::<bool>()).prop_map(|(p, ok)| Step::Store(p, ok)),
        2 => (0..PROCESSES).prop_map(Step::CatchUp),
        1 => (0..PHONES, 0..PROCESSES).prop_map(|(ph, p)| Step::Move(ph, p)),
        1 => (0..PHONES).prop_map(Step::Leave),
        1 => (0..PROCESSES).prop_map(Step::ServerEdit),
        1 => Just(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random schedules of messages, storage answers, other processes' changes, server-side
    /// edits and phones leaving and moving: the invariants hold at every step, and once
    /// storage works every replica converges.
    #[test]
    fn every_schedule_keeps_the_invariants(steps in prop::collection::vec(step(), 1..120)) {
        let mut sim = Sim::new(PROCESSES);
        sim.phone("peksos-ani", false);
        sim.phone("peksos-citra", false);
        sim.phone("peksos-eka", false);
        sim.phone("peksos-dodi", true);
        for phone in 0..PHONES {
            sim.connect(phone, phone % PROCESSES);
        }
        for step in steps {
            match step {
                Step::Edit(phone) => sim.phone_edits(phone),
                Step::Up(phone) => sim.deliver_up(phone),
                Step::Down(phone) => sim.deliver_down(phone),
                Step::Store(process, ok) => {
                    let outcome = if ok { Outcome::Committed } else { Outcome::Failed };
                    sim.answer(process, outcome);
                }
                Step::CatchUp(process) => sim.catch_up(process),
                Step::Move(phone, process) => sim.connect(phone, process),
                Step::Leave(phone) => sim.leave(phone),
                Step::ServerEdit(process) => sim.server_edit(process),
                Step::Tick => sim.tick(),
            }
            sim.assert_contained();
        }
        // Storage works again and every phone is back on some process.
        for phone in 0..PHONES {
            if sim.phones[phone].at.is_none() {
                sim.connect(phone, phone % PROCESSES);
            }
        }
        sim.settle();
        sim.assert_converged();
        // Every honest phone's own changes are stored.
        let stored = sim.store.document();
        for phone in sim.honest() {
            for change in phone.doc.get_changes(&[]) {
                prop_assert!(stored.get_change_by_hash(&change.hash()).is_some());
            }
        }
    }
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
