//! Frames captured from the real JS client and reference server (see vectors/README.md) decode,
//! and survive a re-encode: the decoder reads what automerge-repo 2.5.6 actually sends.

use std::path::Path;

use fieldsync_protocol::{Message, PeerMetadata};

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(".hex")?.to_owned();
            Some((name, hex(&std::fs::read_to_string(&path).unwrap())))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_captured_frame_decodes_as_its_kind_and_roundtrips() {
    let vectors = vectors();
    assert!(
        vectors.len() >= 10,
        "expected the captured vectors, found {}",
        vectors.len()
    );
    let kinds = [
        "join",
        "peer",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "error",
        "remote-subscription-change",
        "remote-heads-changed",
    ];
    for (name, frame) in &vectors {
        let message = Message::decode(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = kinds
            .iter()
            .filter(|k| name.strip_prefix("js-").is_some_and(|n| n.starts_with(*k)))
            .max_by_key(|k| k.len())
            .unwrap_or_else(|| panic!("{name}: no known kind in the name"));
        assert_eq!(message.kind(), *expected, "{name}");
        assert_eq!(
            Message::decode(&message.encode()).unwrap(),
            message,
            "{name}"
        );
    }
}

#[test]
fn the_js_join_without_storage_has_undefined_storage_id() {
    let (_, frame) = vectors()
        .into_iter()
        .find(|(n, _)| n == "js-join-no-storage")
        .unwrap();
    // cbor-x writes `b9 00 NN` map headers and `undefined` (f7) for the missing storage id.
    assert_eq!(&frame[..2], &[0xb9, 0x00]);
    assert!(frame.contains(&0xf7));
    let Message::Join {
        metadata,
        supported_versions,
        ..
    } = Message::decode(&frame).unwrap()
    else {
        panic!("expected join")
    };
    assert_eq!(supported_versions, vec!["1".to_owned()]);
    assert!(matches!(
        metadata,
        Some(PeerMetadata {
            storage_id: None,
            ..
        })
    ));
}

/// The real JS client passes an ephemeral message it received on to its other peers, keeping
/// the original sender: the server hears its own relay echoed back under another peer's id. It
/// is dropped quietly, and the session goes on; a `sync` under another peer's id is still a
/// violation.
#[test]
fn an_echoed_ephemeral_message_is_dropped_not_a_violation() {
    use fieldsync_protocol::{Inbound, PeerId, Session};
    let echo = vectors()
        .into_iter()
        .find(|(name, _)| name == "js-ephemeral-echo")
        .expect("the captured echo")
        .1;
    let Message::Ephemeral { sender, target, .. } = Message::decode(&echo).unwrap() else {
        panic!("an ephemeral message");
    };
    let mut session = Session::new(target, PeerMetadata::default());
    let me = PeerId::parse("client-b-socket").unwrap();
    assert_ne!(sender, me);
    let join = Message::Join {
        sender: me.clone(),
        metadata: Some(PeerMetadata::default()),
        supported_versions: vec!["1".into()],
    };
    assert!(matches!(
        session.receive(&join.encode()),
        Ok(Inbound::Joined { .. })
    ));
    assert_eq!(session.receive(&echo), Ok(Inbound::Echo));
    // Still open: the joined peer's own frames pass.
    let leave = Message::Leave { sender: me };
    assert_eq!(session.receive(&leave.encode()), Ok(Inbound::Leave));
}
