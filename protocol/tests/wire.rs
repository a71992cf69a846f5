//! The wire format, tested at the crate's boundary: bytes in, messages out, and back.

use fieldsync_protocol::{
    DecodeError, DocMessage, DocumentId, HeadsInfo, Inbound, Message, PeerId, PeerMetadata,
    ProtocolVersion, Session, SessionError, StorageId,
};
use minicbor::Encoder;
use proptest::prelude::*;

fn peer(s: &str) -> PeerId {
    PeerId::parse(s).unwrap()
}

fn doc_id() -> DocumentId {
    DocumentId::parse("PLUD22EtHV6JRMaH8ZvRwb1ejFa").unwrap()
}

/// Writes a map the way cbor-x does: a 16-bit length header even for small maps.
/// Writes one value into an encoder.
type Field<'a> = (&'a str, &'a dyn Fn(&mut Encoder<Vec<u8>>));

fn non_minimal_map(entries: &[Field<'_>]) -> Vec<u8> {
    let mut out = vec![0xb9, 0x00, entries.len() as u8];
    for (key, write) in entries {
        let mut e = Encoder::new(Vec::new());
        e.str(key).unwrap();
        write(&mut e);
        out.extend(e.into_writer());
    }
    out
}

#[test]
fn decodes_a_join_as_the_js_client_writes_it() {
    // Non-minimal map headers, storageId as CBOR undefined, an unknown key.
    let metadata = |e: &mut Encoder<Vec<u8>>| {
        e.writer_mut().extend([0xb9, 0x00, 0x02]);
        e.str("storageId").unwrap().undefined().unwrap();
        e.str("isEphemeral").unwrap().bool(true).unwrap();
    };
    let frame = non_minimal_map(&[
        ("type", &|e| {
            e.str("join").unwrap();
        }),
        ("senderId", &|e| {
            e.str("js-peer-1").unwrap();
        }),
        ("peerMetadata", &metadata),
        ("supportedProtocolVersions", &|e| {
            e.array(1).unwrap().str("1").unwrap();
        }),
        ("somethingNew", &|e| {
            e.map(1).unwrap().str("x").unwrap().f64(1.5).unwrap();
        }),
    ]);
    let message = Message::decode(&frame).unwrap();
    assert_eq!(
        message,
        Message::Join {
            sender: peer("js-peer-1"),
            metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true
            }),
            supported_versions: vec!["1".into()],
        }
    );
}

#[test]
fn accepts_samods_metadata_alias_and_indefinite_maps() {
    let mut e = Encoder::new(Vec::new());
    e.begin_map().unwrap();
    e.str("type").unwrap().str("join").unwrap();
    e.str("senderId").unwrap().str("samod").unwrap();
    e.str("metadata").unwrap().map(2).unwrap();
    e.str("storageId")
        .unwrap()
        .str("3760df37-a4c6-4f66-9ecd-732039a13214")
        .unwrap();
    e.str("isEphemeral").unwrap().bool(false).unwrap();
    e.str("supportedProtocolVersions")
        .unwrap()
        .begin_array()
        .unwrap();
    e.str("1").unwrap().end().unwrap();
    e.end().unwrap();
    let Message::Join { metadata, .. } = Message::decode(&e.into_writer()).unwrap() else {
        panic!("expected join");
    };
    assert_eq!(
        metadata.unwrap().storage_id.unwrap().as_str(),
        "3760df37-a4c6-4f66-9ecd-732039a13214"
    );
}

#[test]
fn float_timestamps_and_counts_decode() {
    let frame = non_minimal_map(&[
        ("type", &|e| {
            e.str("remote-heads-changed").unwrap();
        }),
        ("senderId", &|e| {
            e.str("a").unwrap();
        }),
        ("targetId", &|e| {
            e.str("b").unwrap();
        }),
        ("documentId", &|e| {
            e.str("PLUD22EtHV6JRMaH8ZvRwb1ejFa").unwrap();
        }),
        ("newHeads", &|e| {
            e.map(1).unwrap().str("store-1").unwrap().map(2).unwrap();
            e.str("heads").unwrap().array(1).unwrap().str("h1").unwrap();
            e.str("timestamp")
                .unwrap()
                .f64(1_763_800_000_123.0)
                .unwrap();
        }),
    ]);
    let Message::RemoteHeadsChanged { new_heads, .. } = Message::decode(&frame).unwrap() else {
        panic!("expected remote-heads-changed");
    };
    assert_eq!(new_heads[0].1.timestamp, 1_763_800_000_123.0);
}

#[test]
fn refuses_what_is_not_a_message() {
    assert!(matches!(
        Message::decode(b"\xff\xfe"),
        Err(DecodeError::NotCbor(_) | DecodeError::NotAMap)
    ));
    // A map that ends in the middle of its first key.
    assert!(matches!(
        Message::decode(b"\xa1\x64ty"),
        Err(DecodeError::NotCbor(_))
    ));
    assert!(matches!(Message::decode(b""), Err(DecodeError::NotCbor(_))));
    assert_eq!(Message::decode(&[0x83, 1, 2, 3]), Err(DecodeError::NotAMap));
    let mut e = Encoder::new(Vec::new());
    e.map(1)
        .unwrap()
        .str("type")
        .unwrap()
        .str("teleport")
        .unwrap();
    assert_eq!(
        Message::decode(&e.into_writer()),
        Err(DecodeError::UnknownType("teleport".into()))
    );
    let mut e = Encoder::new(Vec::new());
    e.map(2).unwrap().str("type").unwrap().str("sync").unwrap();
    e.str("senderId").unwrap().str("a").unwrap();
    assert!(matches!(
        Message::decode(&e.into_writer()),
        Err(DecodeError::MissingField { .. })
    ));
    let mut frame = Message::Leave { sender: peer("a") }.encode();
    frame.push(0);
    assert_eq!(Message::decode(&frame), Err(DecodeError::TrailingBytes));
}

#[test]
fn refuses_a_malformed_document_id() {
    let m = Message::Sync(DocMessage {
        document_id: doc_id(),
        sender: peer("a"),
        target: peer("b"),
        data: vec![1],
    });
    let frame = m.encode();
    let good = doc_id().to_string();
    let bad = frame
        .windows(good.len())
        .position(|w| w == good.as_bytes())
        .map(|at| {
            let mut f = frame.clone();
            f[at] = b'0'; // '0' is not in the bs58 alphabet
            f
        })
        .unwrap();
    assert!(matches!(
        Message::decode(&bad),
        Err(DecodeError::InvalidField {
            field: "documentId",
            ..
        })
    ));
}

#[test]
fn refuses_huge_lists() {
    let mut e = Encoder::new(Vec::new());
    e.map(3).unwrap().str("type").unwrap().str("join").unwrap();
    e.str("senderId").unwrap().str("a").unwrap();
    e.str("supportedProtocolVersions")
        .unwrap()
        .array(1_000_000)
        .unwrap();
    assert!(matches!(
        Message::decode(&e.into_writer()),
        Err(DecodeError::InvalidField { .. })
    ));
}

fn arb_peer() -> impl Strategy<Value = PeerId> {
    "[a-zA-Z0-9-]{1,40}".prop_map(|s| PeerId::parse(&s).unwrap())
}

fn arb_storage() -> impl Strategy<Value = StorageId> {
    "[a-f0-9-]{1,36}".prop_map(|s| StorageId::parse(&s).unwrap())
}

fn arb_doc() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn arb_metadata() -> impl Strategy<Value = Option<PeerMetadata>> {
    proptest::option::of(
        (proptest::option::of(arb_storage()), any::<bool>()).prop_map(
            |(storage_id, is_ephemeral)| PeerMetadata {
                storage_id,
                is_ephemeral,
            },
        ),
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    let doc_message = || {
        (
            arb_doc(),
            arb_peer(),
            arb_peer(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(document_id, sender, target, data)| DocMessage {
                document_id,
                sender,
                target,
                data,
            })
    };
    prop_oneof![
        (
            arb_peer(),
            arb_metadata(),
            proptest::collection::vec("[0-9]{1,2}", 0..3)
        )
            .prop_map(|(sender, metadata, supported_versions)| Message::Join {
                sender,
                metadata,
                supported_versions
            }),
        (arb_peer(), arb_peer(), arb_metadata(), "[0-9]").prop_map(
            |(sender, target, metadata, selected_version)| Message::Peer {
                sender,
                target,
                metadata,
                selected_version
            }
        ),
        arb_peer().prop_map(|sender| Message::Leave { sender }),
        ".{0,40}".prop_map(|message| Message::Error { message }),
        doc_message().prop_map(Message::Request),
        doc_message().prop_map(Message::Sync),
        (arb_doc(), arb_peer(), arb_peer()).prop_map(|(document_id, sender, target)| {
            Message::DocUnavailable {
                document_id,
                sender,
                target,
            }
        }),
        (
            arb_doc(),
            arb_peer(),
            arb_peer(),
            any::<u32>(),
            "[a-z0-9]{1,20}",
            proptest::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(document_id, sender, target, count, session_id, data)| {
                Message::Ephemeral {
                    document_id,
                    sender,
                    target,
                    count: count.into(),
                    session_id,
                    data,
                }
            }),
        (
            arb_peer(),
            arb_peer(),
            proptest::collection::vec(arb_storage(), 0..3),
            proptest::collection::vec(arb_storage(), 0..3)
        )
            .prop_map(
                |(sender, target, add, remove)| Message::RemoteSubscriptionChange {
                    sender,
                    target,
                    add,
                    remove
                }
            ),
        (
            arb_doc(),
            arb_peer(),
            arb_peer(),
            arb_storage(),
            proptest::collection::vec("[a-z0-9]{4}", 0..3),
            0u64..(1 << 50)
        )
            .prop_map(|(document_id, sender, target, storage, heads, ts)| {
                Message::RemoteHeadsChanged {
                    document_id,
                    sender,
                    target,
                    new_heads: vec![(
                        storage,
                        HeadsInfo {
                            heads,
                            timestamp: ts as f64,
                        },
                    )],
                }
            }),
    ]
}

proptest! {
    #[test]
    fn every_message_roundtrips(message in arb_message()) {
        let decoded = Message::decode(&message.encode()).unwrap();
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&bytes);
        let mut session = Session::new(peer("server"), PeerMetadata::default());
        let _ = session.receive(&bytes);
    }
}

fn join(sender: &str, versions: &[&str]) -> Vec<u8> {
    Message::Join {
        sender: peer(sender),
        metadata: None,
        supported_versions: versions.iter().map(|v| v.to_string()).collect(),
    }
    .encode()
}

#[test]
fn session_handshake_then_checks_sender_and_target() {
    let mut session = Session::new(peer("server"), PeerMetadata::default());
    let sync = |sender: &str, target: &str| {
        Message::Sync(DocMessage {
            document_id: doc_id(),
            sender: peer(sender),
            target: peer(target),
            data: vec![],
        })
        .encode()
    };
    // Step 1: nothing but join is accepted first.
    assert_eq!(
        session.clone().receive(&sync("phone", "server")),
        Err(SessionError::BeforeHandshake("sync"))
    );
    // Step 2: join completes the handshake with a peer reply naming the version.
    let Inbound::Joined {
        peer: p,
        version,
        reply,
        ..
    } = session.receive(&join("phone", &["1"])).unwrap()
    else {
        panic!("expected joined")
    };
    assert_eq!((p.as_str(), version), ("phone", ProtocolVersion::V1));
    let Message::Peer {
        selected_version,
        target,
        ..
    } = reply
    else {
        panic!()
    };
    assert_eq!((selected_version.as_str(), target.as_str()), ("1", "phone"));
    // Step 3: frames from the joined peer to us pass; any other sender or target does not.
    assert!(matches!(
        session.receive(&sync("phone", "server")),
        Ok(Inbound::Message(_))
    ));
    assert!(matches!(
        session.clone().receive(&sync("intruder", "server")),
        Err(SessionError::WrongSender { .. })
    ));
    assert!(matches!(
        session.clone().receive(&sync("phone", "elsewhere")),
        Err(SessionError::WrongTarget { .. })
    ));
    assert_eq!(
        session.clone().receive(&join("phone", &["1"])),
        Err(SessionError::Unexpected("join"))
    );
}

/// Found by the `session` fuzz target: a session went on accepting the joined peer's frames
/// after refusing one, so a caller that did not close at once acted on frames sent after a
/// violation.
#[test]
fn session_accepts_nothing_after_an_error() {
    let sync = |sender: &str| {
        Message::Sync(DocMessage {
            document_id: doc_id(),
            sender: peer(sender),
            target: peer("server"),
            data: vec![],
        })
        .encode()
    };
    // Step 1: a joined session refuses a frame from another peer.
    let mut session = Session::new(peer("server"), PeerMetadata::default());
    session.receive(&join("phone", &["1"])).unwrap();
    assert!(matches!(
        session.receive(&sync("intruder")),
        Err(SessionError::WrongSender { .. })
    ));
    // Step 2: from then on nothing passes, not even a valid frame, and nothing more is said.
    assert_eq!(session.receive(&sync("phone")), Err(SessionError::Closed));
    assert_eq!(SessionError::Closed.reply(), None);
    // Step 3: the peer that joined is still known (the server logs it when it disconnects).
    assert_eq!(session.peer().map(|p| p.as_str()), Some("phone"));

    // A failed handshake ends the session too: a later valid join is refused.
    let mut session = Session::new(peer("server"), PeerMetadata::default());
    assert!(session.receive(&sync("phone")).is_err());
    assert_eq!(
        session.receive(&join("phone", &["1"])),
        Err(SessionError::Closed)
    );
}

#[test]
fn session_refuses_unknown_versions_naming_ours() {
    let mut session = Session::new(peer("server"), PeerMetadata::default());
    let err = session.receive(&join("phone", &["7"])).unwrap_err();
    let Some(Message::Error { message }) = err.reply() else {
        panic!("expected an error reply")
    };
    assert!(message.contains(r#"supports ["1"]"#), "{message}");
    assert!(session.peer().is_none());
}
