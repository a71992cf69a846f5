//! The engine in a simulated network: a server and phones exchanging sync messages through
//! queues, with "storage" a map of committed bytes. No IO, no clock: each story is exact.

use std::collections::{BTreeMap, VecDeque};

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use fieldsync_core::{DocumentSync, Kind, Limits, Receipt, SyncError};
use fieldsync_protocol::{DocumentId, PeerId};
use proptest::prelude::*;

fn pid(s: &str) -> PeerId {
    PeerId::parse(s).unwrap()
}

fn did(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

/// Commits whatever is uncommitted into `store`, as a runtime would.
fn commit(doc: &mut DocumentSync, store: &mut Vec<u8>) {
    if let Some(c) = doc.take_commit() {
        store.extend_from_slice(&c.bytes);
        doc.committed(&c);
    }
}

#[derive(Default)]
struct Net {
    server: BTreeMap<DocumentId, DocumentSync>,
    server_store: BTreeMap<DocumentId, Vec<u8>>,
    phones: BTreeMap<PeerId, BTreeMap<DocumentId, DocumentSync>>,
    /// (from, to, doc, kind, bytes)
    wire: VecDeque<(PeerId, PeerId, DocumentId, Kind, Vec<u8>)>,
    unavailable: Vec<(PeerId, DocumentId)>,
    connected: BTreeMap<PeerId, bool>,
}

impl Net {
    fn phone(&mut self, name: &str) {
        self.phones.insert(pid(name), BTreeMap::new());
        self.connected.insert(pid(name), false);
    }

    fn edit(&mut self, phone: &str, doc: DocumentId, key: &str, value: i64) {
        let docs = self.phones.get_mut(&pid(phone)).unwrap();
        let d = docs.entry(doc).or_insert_with(|| {
            let mut d = DocumentSync::new(doc);
            d.add_peer(pid("server"), None);
            d
        });
        d.change(|tx| tx.put(ROOT, key, value).map(|_| ())).unwrap();
        let mut local = Vec::new();
        commit(d, &mut local);
        self.flush_phone(phone);
    }

    fn flush_phone(&mut self, phone: &str) {
        if !self.connected[&pid(phone)] {
            return;
        }
        for (id, d) in self.phones.get_mut(&pid(phone)).unwrap() {
            for (_, bytes) in d.generate().unwrap() {
                self.wire
                    .push_back((pid(phone), pid("server"), *id, Kind::Sync, bytes));
            }
        }
    }

    fn connect(&mut self, phone: &str) {
        self.connected.insert(pid(phone), true);
        // A reconnect starts from fresh sync states on both sides.
        for d in self.phones.get_mut(&pid(phone)).unwrap().values_mut() {
            d.remove_peer(&pid("server"));
            d.add_peer(pid("server"), None);
        }
        for d in self.server.values_mut() {
            d.remove_peer(&pid(phone));
        }
        self.flush_phone(phone);
    }

    fn disconnect(&mut self, phone: &str) {
        self.connected.insert(pid(phone), false);
        self.wire
            .retain(|(from, to, ..)| from.as_str() != phone && to.as_str() != phone);
        for d in self.server.values_mut() {
            d.remove_peer(&pid(phone));
        }
    }

    /// Delivers one message; false when the wire is empty.
    fn step(&mut self) -> bool {
        let Some((from, to, doc, kind, bytes)) = self.wire.pop_front() else {
            return false;
        };
        if to.as_str() == "server" {
            let d = self
                .server
                .entry(doc)
                .or_insert_with(|| DocumentSync::new(doc));
            match d.receive(&from, kind, &bytes).unwrap() {
                Receipt::Unavailable => self.unavailable.push((from, doc)),
                Receipt::Applied => {
                    commit(d, self.server_store.entry(doc).or_default());
                    for (peer, out) in d.generate().unwrap() {
                        self.wire
                            .push_back((pid("server"), peer, doc, Kind::Sync, out));
                    }
                }
            }
        } else {
            let d = self
                .phones
                .get_mut(&to)
                .unwrap()
                .entry(doc)
                .or_insert_with(|| DocumentSync::new(doc));
            d.receive(&from, kind, &bytes).unwrap();
            commit(d, &mut Vec::new());
            for (_, out) in d.generate().unwrap() {
                self.wire
                    .push_back((to.clone(), from.clone(), doc, Kind::Sync, out));
            }
        }
        true
    }

    fn run_until_quiescent(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < 100_000, "sync did not settle");
        }
    }
}

#[test]
fn nothing_leaves_before_it_is_committed() {
    let mut server = DocumentSync::new(did(1));
    server.add_peer(pid("phone"), None);
    let mut phone = DocumentSync::new(did(1));
    phone.add_peer(pid("server"), None);
    phone
        .change(|tx| tx.put(ROOT, "nik", "3277011204800001").map(|_| ()))
        .unwrap();

    // Step 1: the phone's own edit is uncommitted: no sync message may be generated.
    assert!(phone.generate().is_err());
    let c = phone.take_commit().unwrap();
    phone.committed(&c);
    // Step 2: the exchange goes on until the server has applied the phone's change; until it
    // is stored, the server says nothing at all.
    let mut rounds = 0;
    loop {
        for (_, m) in phone.generate().unwrap() {
            server.receive(&pid("phone"), Kind::Sync, &m).unwrap();
        }
        let Ok(replies) = server.generate() else {
            break;
        };
        for (_, m) in replies {
            phone.receive(&pid("server"), Kind::Sync, &m).unwrap();
        }
        rounds += 1;
        assert!(rounds < 5, "the change never reached the server");
    }
    assert!(server.generate().is_err());
    let commit = server.take_commit().unwrap();
    assert_eq!(commit.changes, 1);

    // Step 3: after the commit the reply goes out, and the phone learns the server has it.
    server.committed(&commit);
    let replies = server.generate().unwrap();
    assert!(!replies.is_empty());
    for (_, m) in replies {
        phone.receive(&pid("server"), Kind::Sync, &m).unwrap();
    }
    assert!(phone.peer_has_everything(&pid("server")));

    // Step 4: what the server stored loads into the same document.
    let reloaded = DocumentSync::load(did(1), &commit.bytes, 1, Limits::default()).unwrap();
    assert_eq!(reloaded.heads(), server.heads());
}

#[test]
fn a_request_for_an_unknown_document_is_unavailable() {
    let mut server = DocumentSync::new(did(2));
    let mut phone = DocumentSync::new(did(2));
    phone.add_peer(pid("server"), None);
    let (_, request) = phone.generate().unwrap().remove(0);
    assert_eq!(
        server.receive(&pid("phone"), Kind::Request, &request),
        Ok(Receipt::Unavailable)
    );
    assert!(!server.has_peer(&pid("phone")));
}

#[test]
fn garbage_is_refused_and_changes_nothing() {
    let mut server = DocumentSync::new(did(3));
    let heads = server.heads();
    let err = server
        .receive(&pid("phone"), Kind::Sync, b"not a sync message")
        .unwrap_err();
    assert!(matches!(err, SyncError::NotASyncMessage(_)));
    assert_eq!(server.heads(), heads);
    assert!(server.take_commit().is_none());
}

#[test]
fn a_failed_commit_rolls_back_to_what_is_durable() {
    let mut doc = DocumentSync::new(did(4));
    doc.change(|tx| tx.put(ROOT, "a", 1).map(|_| ())).unwrap();
    let first = doc.take_commit().unwrap();
    doc.committed(&first);
    doc.change(|tx| tx.put(ROOT, "b", 2).map(|_| ())).unwrap();
    let _lost = doc.take_commit().unwrap();
    doc.rolled_back().unwrap();
    assert_eq!(doc.heads(), first.heads);
    assert!(doc.doc().get(ROOT, "b").unwrap().is_none());
    assert!(doc.generate().is_ok());
}

#[test]
fn persisted_sync_state_makes_a_reconnect_cheaper() {
    // Step 1: a phone with a large document syncs it to the server.
    let mut phone = DocumentSync::new(did(5));
    phone.add_peer(pid("server"), None);
    phone
        .change(|tx| {
            let list = tx.put_object(ROOT, "actions", ObjType::List)?;
            for i in 0..500 {
                tx.insert(&list, i, format!("action {i}"))?;
            }
            Ok::<_, automerge::AutomergeError>(())
        })
        .unwrap();
    for i in 0..200 {
        phone.change(|tx| tx.put(ROOT, "n", i).map(|_| ())).unwrap();
    }
    let c = phone.take_commit().unwrap();
    phone.committed(&c);
    let mut server = DocumentSync::new(did(5));
    let exchange = |phone: &mut DocumentSync, server: &mut DocumentSync| -> usize {
        let mut bytes = 0;
        loop {
            let out = phone.generate().unwrap();
            let back: Vec<_> = {
                for (_, m) in &out {
                    bytes += m.len();
                    server.receive(&pid("phone"), Kind::Sync, m).unwrap();
                }
                if let Some(c) = server.take_commit() {
                    server.committed(&c);
                }
                server.generate().unwrap()
            };
            for (_, m) in &back {
                bytes += m.len();
                phone.receive(&pid("server"), Kind::Sync, m).unwrap();
            }
            if out.is_empty() && back.is_empty() {
                return bytes;
            }
        }
    };
    exchange(&mut phone, &mut server);
    let saved = server.remove_peer(&pid("phone")).unwrap();
    let phone_saved = phone.remove_peer(&pid("server")).unwrap();

    // Step 2: one more edit offline, then reconnect with and without persisted states.
    phone
        .change(|tx| tx.put(ROOT, "n", 1000).map(|_| ()))
        .unwrap();
    let c = phone.take_commit().unwrap();
    phone.committed(&c);
    let (mut p1, mut s1) = (
        DocumentSync::load(did(5), &phone.doc().save(), 1, Limits::default()).unwrap(),
        DocumentSync::load(did(5), &server.doc().save(), 1, Limits::default()).unwrap(),
    );
    p1.add_peer(pid("server"), Some(&phone_saved));
    s1.add_peer(pid("phone"), Some(&saved));
    let warm = exchange(&mut p1, &mut s1);
    let (mut p2, mut s2) = (
        DocumentSync::load(did(5), &phone.doc().save(), 1, Limits::default()).unwrap(),
        DocumentSync::load(did(5), &server.doc().save(), 1, Limits::default()).unwrap(),
    );
    p2.add_peer(pid("server"), None);
    let cold = exchange(&mut p2, &mut s2);
    assert_eq!(s1.heads(), p1.heads());
    assert_eq!(s2.heads(), p2.heads());
    assert!(warm < cold, "warm reconnect sent {warm} bytes, cold {cold}");
}

#[test]
fn three_phones_offline_then_reconnecting_converge() {
    let mut net = Net::default();
    for p in ["a", "b", "c"] {
        net.phone(p);
    }
    // Step 1: phone a creates two documents online; b and c fetch them.
    net.connect("a");
    net.edit("a", did(10), "created", 1);
    net.edit("a", did(11), "created", 1);
    net.run_until_quiescent();
    for p in ["b", "c"] {
        net.connect(p);
        for d in [did(10), did(11)] {
            let doc = net
                .phones
                .get_mut(&pid(p))
                .unwrap()
                .entry(d)
                .or_insert_with(|| {
                    let mut s = DocumentSync::new(d);
                    s.add_peer(pid("server"), None);
                    s
                });
            let (_, m) = doc.generate().unwrap().remove(0);
            net.wire
                .push_back((pid(p), pid("server"), d, Kind::Request, m));
        }
        net.run_until_quiescent();
    }
    // Step 2: everyone goes offline and edits the same and different documents.
    for p in ["a", "b", "c"] {
        net.disconnect(p);
    }
    net.edit("a", did(10), "a", 1);
    net.edit("b", did(10), "b", 2);
    net.edit("c", did(11), "c", 3);
    net.edit("b", did(12), "b-only", 4);
    // Step 3: they come back in an order that is not the order they left in.
    for p in ["c", "a", "b"] {
        net.connect(p);
        net.run_until_quiescent();
    }
    for p in ["a", "c"] {
        net.disconnect(p);
        net.connect(p);
        net.run_until_quiescent();
    }
    // Step 4: every replica of every shared document equals the server's, which is stored.
    assert_converged(&net);
    let d10 = &net.server[&did(10)];
    for (key, value) in [("a", 1), ("b", 2)] {
        assert_eq!(
            d10.doc().get(ROOT, key).unwrap().unwrap().0.as_i64(),
            Some(value)
        );
    }
}

fn assert_converged(net: &Net) {
    for (id, server_doc) in &net.server {
        let stored = DocumentSync::load(*id, &net.server_store[id], 1, Limits::default()).unwrap();
        assert_eq!(
            stored.heads(),
            server_doc.heads(),
            "server memory equals storage"
        );
        for (phone, docs) in &net.phones {
            if let Some(d) = docs.get(id) {
                assert_eq!(d.heads(), server_doc.heads(), "{phone:?} on {id}");
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Edit(usize, u8, i64),
    Connect(usize),
    Disconnect(usize),
    Deliver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3u8, any::<i64>()).prop_map(|(p, d, v)| Op::Edit(p, d, v)),
        2 => (0..3usize).prop_map(Op::Connect),
        1 => (0..3usize).prop_map(Op::Disconnect),
        4 => (1..20usize).prop_map(Op::Deliver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_schedule_converges_once_everyone_reconnects(ops in proptest::collection::vec(op(), 1..60)) {
        let names = ["a", "b", "c"];
        let mut net = Net::default();
        for p in names {
            net.phone(p);
        }
        for op in ops {
            match op {
                Op::Edit(p, d, v) => net.edit(names[p], did(20 + d), names[p], v),
                Op::Connect(p) => if !net.connected[&pid(names[p])] { net.connect(names[p]) },
                Op::Disconnect(p) => net.disconnect(names[p]),
                Op::Deliver(n) => for _ in 0..n { net.step(); },
            }
        }
        for p in names {
            net.disconnect(p);
            net.connect(p);
            net.run_until_quiescent();
        }
        // Phones that connected before later edits reached the server need one more round.
        for p in names {
            net.disconnect(p);
            net.connect(p);
            net.run_until_quiescent();
        }
        assert_converged(&net);
        // Every edit any phone made is on the server.
        for docs in net.phones.values() {
            for (id, d) in docs {
                let server = &net.server[id];
                prop_assert!(server.doc().get_changes(&[]).len() >= d.doc().get_changes(&[]).len());
            }
        }
    }
}

#[test]
fn two_messages_of_a_peer_before_one_reply_still_get_acknowledged() {
    // A runtime may apply several queued messages of a peer before generating replies (the
    // server batches while it commits). Automerge skips a reply when a later message reports
    // heads equal to ours, which would leave the first message's changes unacknowledged.
    let mut phone = DocumentSync::new(did(6));
    phone.add_peer(pid("server"), None);
    phone.change(|tx| tx.put(ROOT, "n", 1).map(|_| ())).unwrap();
    commit(&mut phone, &mut Vec::new());
    let mut server = DocumentSync::new(did(6));
    let mut store = Vec::new();
    // Step 1: a full exchange, so both sides know each other's heads.
    for _ in 0..6 {
        for (_, m) in phone.generate().unwrap() {
            server.receive(&pid("phone"), Kind::Sync, &m).unwrap();
        }
        commit(&mut server, &mut store);
        for (_, m) in server.generate().unwrap() {
            phone.receive(&pid("server"), Kind::Sync, &m).unwrap();
        }
        commit(&mut phone, &mut Vec::new());
    }
    assert!(phone.peer_has_everything(&pid("server")));
    // Step 2: the server reloads the phone's state (as after an eviction) and says hello,
    // while the phone makes a change and sends it.
    let saved = server.remove_peer(&pid("phone")).unwrap();
    server.add_peer(pid("phone"), Some(&saved));
    let hello = server.generate().unwrap();
    phone.change(|tx| tx.put(ROOT, "n", 2).map(|_| ())).unwrap();
    commit(&mut phone, &mut Vec::new());
    let mut from_phone: Vec<Vec<u8>> = phone
        .generate()
        .unwrap()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    // Step 3: the phone answers the hello too, before the server replied to its change.
    for (_, m) in hello {
        phone.receive(&pid("server"), Kind::Sync, &m).unwrap();
    }
    from_phone.extend(phone.generate().unwrap().into_iter().map(|(_, m)| m));
    // Step 4: the server applies everything, commits once, replies once.
    for m in &from_phone {
        server.receive(&pid("phone"), Kind::Sync, m).unwrap();
    }
    commit(&mut server, &mut store);
    for _ in 0..6 {
        for (_, m) in server.generate().unwrap() {
            phone.receive(&pid("server"), Kind::Sync, &m).unwrap();
        }
        for (_, m) in phone.generate().unwrap() {
            server.receive(&pid("phone"), Kind::Sync, &m).unwrap();
        }
        commit(&mut server, &mut store);
    }
    assert_eq!(server.heads(), phone.heads(), "the server has the change");
    assert!(
        phone.peer_has_everything(&pid("server")),
        "and the phone knows it"
    );
}
