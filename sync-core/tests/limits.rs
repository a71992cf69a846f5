//! The size limits hold before automerge builds anything: decompression bombs, run-length
//! bombs and oversized documents are refused quickly, and real documents pass.

use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use fieldsync_core::{DocumentSync, Kind, LimitError, Limits, Size, SyncError, limits};
use fieldsync_protocol::{DocumentId, PeerId};

fn did() -> DocumentId {
    DocumentId::from_bytes([7; 16])
}

fn peer() -> PeerId {
    PeerId::parse("phone-1").unwrap()
}

/// The last change of `doc`, as a peer would send it (compressed when automerge compresses).
fn last_change(doc: &mut AutoCommit) -> Vec<u8> {
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// A sync message carrying `chunks` as its changes.
fn message_with(chunks: Vec<Vec<u8>>) -> Vec<u8> {
    let mut doc = AutoCommit::new();
    let mut state = automerge::sync::State::new();
    let mut m = doc.sync().generate_sync_message(&mut state).unwrap();
    m.changes = chunks.into();
    m.encode()
}

/// One change putting a 10-million-character string: about 10 KB deflated.
fn bomb_change() -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "notes", "a".repeat(10_000_000)).unwrap();
    doc.commit();
    let mut change = doc.get_last_local_change().unwrap().clone();
    change.bytes().to_vec()
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_inflated() {
    let bomb = bomb_change();
    assert!(
        bomb.len() < 100_000,
        "the bomb is small on the wire: {}",
        bomb.len()
    );
    let started = Instant::now();
    let refused = limits::inspect(&bomb, &Limits::default(), Size::default());
    assert_eq!(
        refused,
        Err(LimitError::ChangeBytes {
            limit: Limits::default().max_change_bytes
        })
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let mut doc = DocumentSync::new(did());
    let err = doc
        .receive(&peer(), Kind::Sync, &message_with(vec![bomb.clone()]))
        .unwrap_err();
    assert!(matches!(err, SyncError::TooLarge(_)), "{err:?}");
    assert!(!doc.exists(), "nothing was applied");
    assert!(doc.take_commit().is_none());

    // Stored before the limits existed: refused before automerge reads it.
    let err = DocumentSync::load(did(), &bomb, 1, Limits::default()).unwrap_err();
    assert!(matches!(err, SyncError::TooLarge(_)), "{err:?}");
    // With limits that allow it, the same bytes load.
    let loaded = DocumentSync::load(did(), &bomb, 1, Limits::NONE).unwrap();
    assert!(loaded.exists());
}

/// A change chunk whose action column claims `items` operations in a few bytes.
fn run_length_bomb(items: i64) -> Vec<u8> {
    fn uleb(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn sleb(out: &mut Vec<u8>, mut v: i64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
            out.push(if done { b } else { b | 0x80 });
            if done {
                return;
            }
        }
    }
    let mut column = Vec::new();
    sleb(&mut column, items);
    uleb(&mut column, 1); // the action repeated: "make map"
    let mut body = Vec::new();
    uleb(&mut body, 0); // no dependencies
    uleb(&mut body, 16);
    body.extend([1u8; 16]); // actor
    uleb(&mut body, 1); // seq
    uleb(&mut body, 1); // start op
    sleb(&mut body, 0); // time
    uleb(&mut body, 0); // message
    uleb(&mut body, 0); // other actors
    uleb(&mut body, 1); // one column
    uleb(&mut body, (4 << 4) | 2); // action, unsigned integers
    uleb(&mut body, column.len() as u64);
    body.extend(column);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    uleb(&mut chunk, body.len() as u64);
    chunk.extend(body);
    chunk
}

#[test]
fn a_run_length_bomb_is_counted_not_walked() {
    let bomb = run_length_bomb(1 << 50);
    assert!(bomb.len() < 64);
    let started = Instant::now();
    let refused = limits::inspect(&bomb, &Limits::default(), Size::default());
    assert_eq!(
        refused,
        Err(LimitError::ChangeOps {
            limit: Limits::default().max_change_ops
        })
    );
    let mut doc = DocumentSync::new(did());
    let err = doc
        .receive(&peer(), Kind::Sync, &message_with(vec![bomb]))
        .unwrap_err();
    assert!(matches!(err, SyncError::TooLarge(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn too_many_operations_in_one_change_are_refused() {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, &"x".repeat(150_000)).unwrap();
    doc.commit();
    let change = last_change(&mut doc);
    let limits = Limits::default();
    assert_eq!(
        limits::inspect(&change, &limits, Size::default()),
        Err(LimitError::ChangeOps {
            limit: limits.max_change_ops
        })
    );
}

#[test]
fn a_document_may_not_grow_past_its_limit_change_by_change() {
    let limits = Limits {
        max_document_ops: 1_000,
        ..Limits::default()
    };
    let mut server = DocumentSync::new(did());
    server.set_limits(limits);
    let mut phone = AutoCommit::new();
    let text = phone.put_object(ROOT, "notes", ObjType::Text).unwrap();
    let mut state = automerge::sync::State::new();
    let mut refused = None;
    'rounds: for round in 0..20 {
        phone.splice_text(&text, 0, 0, &"y".repeat(100)).unwrap();
        phone.commit();
        loop {
            let Some(m) = phone.sync().generate_sync_message(&mut state) else {
                break;
            };
            match server.receive(&peer(), Kind::Sync, &m.encode()) {
                Ok(_) => {
                    if let Some(commit) = server.take_commit() {
                        server.committed(&commit);
                    }
                    for (_, reply) in server.generate().unwrap() {
                        let reply = automerge::sync::Message::decode(&reply).unwrap();
                        phone
                            .sync()
                            .receive_sync_message(&mut state, reply)
                            .unwrap();
                    }
                }
                Err(e) => {
                    refused = Some((round, e));
                    break 'rounds;
                }
            }
        }
    }
    let (round, e) = refused.expect("the document reached its limit");
    assert!(
        matches!(
            e,
            SyncError::TooLarge(LimitError::DocumentOps { limit: 1_000 })
        ),
        "{e:?}"
    );
    assert!(round >= 8, "refused only near the limit, at round {round}");
    assert!(server.size().ops <= 1_000);
}

#[test]
fn real_documents_and_snapshots_pass_and_are_counted() {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, "Kunjungan rumah, keluarga Suryani.")
        .unwrap();
    let list = doc.put_object(ROOT, "events", ObjType::List).unwrap();
    for i in 0..50 {
        let e = doc.insert_object(&list, i, ObjType::Map).unwrap();
        doc.put(&e, "kind", "note").unwrap();
        doc.put(&e, "n", i as i64).unwrap();
        doc.commit();
    }
    doc.splice_text(&text, 5, 3, "").unwrap();
    doc.commit();
    let ops = doc.document().stats().num_ops;

    // Change by change, as phones send them.
    let changes: Vec<u8> = doc
        .get_changes(&[])
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let size = limits::inspect(&changes, &Limits::default(), Size::default()).unwrap();
    assert!(
        size.ops >= ops,
        "{} counted, {ops} in the document",
        size.ops
    );

    // As a snapshot (a document chunk with deflated columns).
    let saved = doc.save();
    let size = limits::inspect(&saved, &Limits::default(), Size::default()).unwrap();
    assert!(
        size.ops >= ops && size.ops <= 2 * ops,
        "{} for {ops}",
        size.ops
    );
    let loaded = DocumentSync::load(did(), &saved, 1, Limits::default()).unwrap();
    assert!(loaded.doc().get(ROOT, "notes").unwrap().is_some());

    // A snapshot followed by a torn change chunk, as a crash leaves it, still loads.
    let mut torn = saved.clone();
    torn.extend_from_slice(&changes[..changes.len().min(20)]);
    assert!(DocumentSync::load(did(), &torn, 2, Limits::default()).is_ok());
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for bytes in [
        vec![],
        vec![0x85, 0x6f, 0x4a, 0x83],
        vec![
            0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ],
        vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2, 3, 1, 2, 3],
        vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 0],
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    ] {
        let result = limits::inspect(&bytes, &Limits::default(), Size::default());
        assert!(
            bytes.is_empty() || matches!(result, Err(LimitError::Malformed(_))),
            "{bytes:?}: {result:?}"
        );
    }
}

/// Found by the `limits_inspect` fuzz target: a document chunk with one one-byte actor and
/// nothing else makes automerge 0.12 panic while loading it. Loading it is an error, and a
/// message carrying it poisons the document instead of crashing the caller.
#[test]
fn a_chunk_automerge_panics_on_is_an_error_not_a_crash() {
    use sha2::{Digest, Sha256};
    let body = [1u8, 1, 0, 0, 0, 0];
    let hash = Sha256::new()
        .chain_update([0u8, body.len() as u8])
        .chain_update(body)
        .finalize();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend([0, body.len() as u8]);
    chunk.extend(body);

    assert!(DocumentSync::load(did(), &chunk, 1, Limits::default()).is_err());
    let mut doc = DocumentSync::new(did());
    let result = doc.receive(&peer(), Kind::Sync, &message_with(vec![chunk]));
    assert!(result.is_err(), "{result:?}");
    if result == Err(SyncError::Poisoned) {
        assert_eq!(
            doc.receive(&peer(), Kind::Sync, &message_with(vec![])),
            Err(SyncError::Poisoned),
            "nothing more is applied to a poisoned document"
        );
    }
}
