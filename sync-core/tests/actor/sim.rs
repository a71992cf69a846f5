//! The simulation the actor's stories and property test run on (see `main.rs`): phones
//! exchange messages with several simulated server processes, each running its own
//! `DocumentActor` for the same document, all sharing one simulated store.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ROOT, ReadDoc};
use fieldsync_core::actor::{
    ActorConfig, AuditAction, DocumentActor, EditFn, Editor, Effect, Event, Outcome, Outgoing,
    Record, Refusal, Who,
};
use fieldsync_core::schema::{Author, FieldDocument, RegionCode, Role, examples};
use fieldsync_core::{DocumentSync, Kind, Limits};
use fieldsync_protocol::{DocumentId, Notice, PeerId, StorageId};

pub const AREA: &str = "32.77.01.1001";
pub const RETRY: u64 = 1_000;

pub fn doc_id() -> DocumentId {
    DocumentId::from_bytes([7; 16])
}

/// The store every process shares: chunks in commit order, and the committed audit lines and
/// actor-id bindings.
#[derive(Default)]
pub struct Store {
    pub chunks: Vec<Vec<u8>>,
    pub owners: BTreeMap<String, String>,
    pub audit: Vec<(String, AuditAction)>,
    /// Sync states persisted for storage ids.
    pub sync_states: BTreeMap<StorageId, Vec<u8>>,
}

impl Store {
    pub fn document(&self) -> Automerge {
        Automerge::load(&self.chunks.concat()).unwrap_or_default()
    }

    pub fn holds(&self, hash: &ChangeHash) -> bool {
        self.document().get_change_by_hash(hash).is_some()
    }
}

/// One server process: its actor, the chunks of the store it has applied, and the write it
/// waits for.
pub struct Process {
    pub actor: DocumentActor,
    pub applied: BTreeSet<usize>,
    pub write: Option<(u64, Option<Vec<u8>>, Vec<Record>)>,
    /// Storage said another process committed; not yet read.
    pub notified: bool,
}

pub struct Phone {
    pub name: String,
    pub author: Arc<Author>,
    pub doc: Automerge,
    /// The sync state for the server, and where it is connected: (process, connection).
    pub state: sync::State,
    pub at: Option<(usize, u64)>,
    /// Refused by the server: this phone writes only changes the rules refuse.
    pub vandal: bool,
    pub notices: Vec<Notice>,
}

#[derive(Default)]
pub struct Sim {
    pub now: u64,
    pub store: Store,
    pub processes: Vec<Process>,
    pub phones: Vec<Phone>,
    /// Frames in flight on each connection, in order: phone → process and back.
    pub up: BTreeMap<(usize, u64), VecDeque<Vec<u8>>>,
    pub down: BTreeMap<(usize, u64), VecDeque<Vec<u8>>>,
    pub next_conn: u64,
    /// Hashes of changes the vandal made: they must never spread.
    pub refused: BTreeSet<ChangeHash>,
    pub edits_done: Vec<Result<(), String>>,
    pub next_actor: u8,
    /// Every server head a phone was told, with whether the store held it then.
    pub acknowledged: usize,
    /// Compactions asked for, and changes told to live views, by process.
    pub compactions: usize,
    pub changed: Vec<usize>,
    /// Reads on the server answered (with the state or not), refusals, unloads.
    pub reads_done: Vec<bool>,
    pub refusals: Vec<Refusal>,
    pub unloads: usize,
}

pub fn peer(name: &str) -> PeerId {
    PeerId::parse(name).unwrap()
}

pub fn peksos(user: &str) -> Arc<Author> {
    Arc::new(Author::user(
        user,
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.77.01").unwrap()],
    ))
}

impl Sim {
    pub fn new(processes: usize) -> Self {
        let mut sim = Sim::default();
        for _ in 0..processes {
            sim.processes.push(Process {
                actor: DocumentActor::new(ActorConfig {
                    retry_after_ms: RETRY,
                    ..ActorConfig::default()
                }),
                applied: BTreeSet::new(),
                write: None,
                notified: false,
            });
            sim.changed.push(0);
        }
        sim
    }

    /// A phone of `user`; the first one creates the visit the story is about.
    pub fn phone(&mut self, user: &str, vandal: bool) -> usize {
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

    pub fn who(&self, phone: usize) -> Who {
        let p = &self.phones[phone];
        Who {
            peer: peer(&p.name),
            conn: p.at.expect("connected").1,
            author: p.author.clone(),
            device: format!("device-{}", p.name).into(),
            storage: Some(StorageId::parse(&format!("store-{}", p.name)).unwrap()),
        }
    }

    pub fn connect(&mut self, phone: usize, process: usize) {
        self.leave(phone);
        self.next_conn += 1;
        let p = &mut self.phones[phone];
        p.at = Some((process, self.next_conn));
        p.state = sync::State::new();
        self.up.insert((phone, self.next_conn), VecDeque::new());
        self.down.insert((phone, self.next_conn), VecDeque::new());
        self.phone_speaks(phone);
    }

    pub fn leave(&mut self, phone: usize) {
        let Some((process, conn)) = self.phones[phone].at.take() else {
            return;
        };
        self.up.remove(&(phone, conn));
        self.down.remove(&(phone, conn));
        let name = peer(&self.phones[phone].name);
        self.feed(process, vec![Event::Left { peer: name, conn }]);
    }

    /// The phone sends whatever its sync state says it should.
    pub fn phone_speaks(&mut self, phone: usize) {
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
    pub fn phone_edits(&mut self, phone: usize) {
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
    pub fn deliver_up(&mut self, phone: usize) {
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

    pub fn deliver_down(&mut self, phone: usize) {
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
    pub fn exchange_until_written(&mut self, phone: usize) {
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
    pub fn answer(&mut self, process: usize, outcome: Outcome) {
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

    /// Storage tells the process that others stored changes.
    pub fn catch_up(&mut self, process: usize) {
        if std::mem::take(&mut self.processes[process].notified) {
            self.feed(process, vec![Event::StoredElsewhere]);
        }
    }

    /// What other processes stored that `process` has not applied, as storage reads it.
    fn fresh_chunks(&mut self, process: usize) -> Option<Event> {
        let p = &mut self.processes[process];
        let fresh: Vec<usize> = (0..self.store.chunks.len())
            .filter(|i| !p.applied.contains(i))
            .collect();
        if fresh.is_empty() {
            return None;
        }
        let bytes: Vec<u8> = fresh
            .iter()
            .flat_map(|i| self.store.chunks[*i].clone())
            .collect();
        p.applied.extend(&fresh);
        let chunks = fresh.len();
        Some(Event::External { bytes, chunks })
    }

    /// A supervisor-free server-side edit: a Peksos on the web appends to the notes.
    pub fn server_edit(&mut self, process: usize) {
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

    /// A person on the web reads the visit through a process.
    pub fn server_read(&mut self, process: usize, author: Arc<Author>) {
        let user = author.user.clone().unwrap_or_default();
        let editor = Editor {
            author,
            device: format!("web:{user}").into(),
        };
        self.feed(process, vec![Event::Read { ticket: 1, editor }]);
    }

    pub fn unload(&mut self, process: usize) {
        self.feed(process, vec![Event::Unload]);
    }

    pub fn tick(&mut self) {
        self.now += RETRY;
        for process in 0..self.processes.len() {
            self.feed(process, vec![Event::Tick]);
        }
    }

    /// Hands events to a process's actor and carries out what it returns, answering loads
    /// and owner lookups at once.
    pub fn feed(&mut self, process: usize, events: Vec<Event>) {
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
                    // The store's content stays the same: the snapshot holds the chunks it
                    // replaces.
                    Effect::Compact { ticket, .. } => {
                        let p = &mut self.processes[process];
                        assert!(p.write.is_none(), "one write at a time");
                        p.write = Some((ticket, None, Vec::new()));
                        self.compactions += 1;
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
                        let sync_states = self
                            .store
                            .sync_states
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        events.push(Event::Loaded {
                            doc: Box::new(doc),
                            sync_states,
                        });
                    }
                    Effect::CatchUp => events.extend(self.fresh_chunks(process)),
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
                    Effect::Changed(_) => self.changed[process] += 1,
                    Effect::Persist {
                        storage,
                        sync_state,
                    } => {
                        self.store.sync_states.insert(storage, sync_state);
                    }
                    Effect::ReadDone { state, .. } => self.reads_done.push(state.is_some()),
                    Effect::Refused { reason, .. } => self.refusals.push(reason),
                    Effect::Unloaded => self.unloads += 1,
                    Effect::Wait(_) | Effect::Dropped(_) | Effect::Resident { .. } => {}
                }
            }
        }
    }

    pub fn phone_at(&self, to: &(PeerId, u64)) -> Option<usize> {
        self.phones
            .iter()
            .position(|p| peer(&p.name) == to.0 && p.at.is_some_and(|(_, c)| c == to.1))
    }

    pub fn send(&mut self, to: (PeerId, u64), message: Outgoing) {
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
    pub fn settle(&mut self) {
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

    pub fn honest(&self) -> impl Iterator<Item = &Phone> {
        self.phones.iter().filter(|p| !p.vandal)
    }

    /// Every honest phone, every process and the store hold the same document, and nothing
    /// refused reached any of them.
    pub fn assert_converged(&self) {
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
    pub fn assert_contained(&self) {
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
