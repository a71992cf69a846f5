//! Every kind of bad input ends only the offending connection, with an `error` message where
//! the socket allows, stores nothing, and leaves other peers syncing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{DEFAULT_USER, TestServer, WAIT, visit};
use fieldsync_client::DocStatus;
use fieldsync_core::schema::Role;
use fieldsync_protocol::{DocMessage, DocumentId, Message, Notice, PeerId, PeerMetadata};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(server: &TestServer) -> Socket {
    tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap()
        .0
}

fn pid(s: &str) -> PeerId {
    PeerId::parse(s).unwrap()
}

fn join(sender: &str) -> Ws {
    Ws::Binary(
        Message::Join {
            sender: pid(sender),
            metadata: Some(PeerMetadata::default()),
            supported_versions: vec!["1".into()],
        }
        .encode()
        .into(),
    )
}

/// Joins as `sender` and returns the server's peer id.
async fn handshake(ws: &mut Socket, sender: &str) -> PeerId {
    ws.send(join(sender)).await.unwrap();
    match next_message(ws).await {
        Some(Message::Peer { sender, .. }) => sender,
        other => panic!("expected peer, got {other:?}"),
    }
}

async fn next_message(ws: &mut Socket) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("server answers in time")
        {
            Some(Ok(Ws::Binary(b))) => return Some(Message::decode(&b).unwrap()),
            Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// The server says `error` (mentioning `expect`) and then closes.
async fn expect_error_then_close(ws: &mut Socket, expect: &str) {
    match next_message(ws).await {
        Some(Message::Error { message }) => {
            assert!(
                message.contains(expect),
                "error {message:?} should mention {expect:?}"
            )
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    assert!(
        next_message(ws).await.is_none(),
        "the server closes after the error"
    );
}

/// A well-behaved phone, connected throughout, still syncs after the bad peer is gone, and
/// the document the bad peer named was never stored.
async fn others_unaffected(
    server: &TestServer,
    bystander: &fieldsync_client::Replica,
    untouched: DocumentId,
) {
    let id = bystander
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "after", true).map(|_| ())
        })
        .await
        .unwrap();
    bystander.wait_acknowledged(id, WAIT).await.unwrap();
    let (late, _h) = server.phone().await;
    late.find(id).await;
    late.wait_status(id, WAIT, |s| s == Some(DocStatus::Acknowledged))
        .await
        .unwrap();
    late.find(untouched).await;
    late.wait_status(untouched, WAIT, |s| s == Some(DocStatus::Unavailable))
        .await
        .unwrap();
}

fn doc() -> DocumentId {
    DocumentId::from_bytes([42; 16])
}

/// A real first sync message for a document holding one change.
fn real_sync_data() -> Vec<u8> {
    let mut d = automerge::AutoCommit::new();
    d.put(ROOT, "nik", "3277011204800001").unwrap();
    let mut state = automerge::sync::State::new();
    d.sync().generate_sync_message(&mut state).unwrap().encode()
}

fn sync_frame(sender: &str, target: &PeerId, document: &str, data: Vec<u8>) -> Vec<u8> {
    // Built by hand so that the document id can be malformed on purpose.
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(5).unwrap();
    e.str("type").unwrap().str("sync").unwrap();
    e.str("documentId").unwrap().str(document).unwrap();
    e.str("senderId").unwrap().str(sender).unwrap();
    e.str("targetId").unwrap().str(target.as_str()).unwrap();
    e.str("data").unwrap().bytes(&data).unwrap();
    e.into_writer()
}

async fn case(setup: impl AsyncFnOnce(&mut Socket) -> (Ws, &'static str)) {
    let server = TestServer::start().await;
    let (bystander, _h) = server.phone().await;
    let mut ws = raw(&server).await;
    let (frame, expect) = setup(&mut ws).await;
    ws.send(frame).await.unwrap();
    expect_error_then_close(&mut ws, expect).await;
    others_unaffected(&server, &bystander, doc()).await;
}

#[tokio::test]
async fn text_frame() {
    case(async |ws| {
        handshake(ws, "bad").await;
        (Ws::Text("{\"type\":\"join\"}".into()), "text frames")
    })
    .await;
}

#[tokio::test]
async fn bytes_that_are_not_cbor() {
    case(async |_| (Ws::Binary(vec![0xa1, 0x64, b't'].into()), "not valid CBOR")).await;
}

#[tokio::test]
async fn unknown_message_type() {
    case(async |ws| {
        handshake(ws, "bad").await;
        let mut e = minicbor::Encoder::new(Vec::new());
        e.map(2)
            .unwrap()
            .str("type")
            .unwrap()
            .str("teleport")
            .unwrap();
        e.str("senderId").unwrap().str("bad").unwrap();
        (Ws::Binary(e.into_writer().into()), "unknown message type")
    })
    .await;
}

#[tokio::test]
async fn message_before_the_handshake() {
    case(async |_| {
        let frame = sync_frame("bad", &pid("server"), &doc().to_string(), real_sync_data());
        (Ws::Binary(frame.into()), "expected a join")
    })
    .await;
}

#[tokio::test]
async fn sender_id_that_does_not_match_the_handshake() {
    case(async |ws| {
        let server = handshake(ws, "bad").await;
        let frame = sync_frame(
            "someone-else",
            &server,
            &doc().to_string(),
            real_sync_data(),
        );
        (Ws::Binary(frame.into()), "does not match")
    })
    .await;
}

#[tokio::test]
async fn malformed_document_id() {
    case(async |ws| {
        let server = handshake(ws, "bad").await;
        let frame = sync_frame("bad", &server, "not-a-document-0OIl", real_sync_data());
        (Ws::Binary(frame.into()), "documentId")
    })
    .await;
}

#[tokio::test]
async fn data_that_is_not_an_automerge_sync_message() {
    case(async |ws| {
        let server = handshake(ws, "bad").await;
        let frame = sync_frame(
            "bad",
            &server,
            &doc().to_string(),
            b"\x42\x00garbage".to_vec(),
        );
        (Ws::Binary(frame.into()), "not an automerge sync message")
    })
    .await;
}

#[tokio::test]
async fn frame_over_the_size_limit() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 64 * 1024).await;
    let (bystander, _h) = server.phone().await;
    let mut ws = raw(&server).await;
    let peer = handshake(&mut ws, "bad").await;
    let frame = sync_frame("bad", &peer, &doc().to_string(), vec![7; 100 * 1024]);
    let _ = ws.send(Ws::Binary(frame.into())).await;
    expect_error_then_close(&mut ws, "larger than the limit").await;
    others_unaffected(&server, &bystander, doc()).await;
}

#[tokio::test]
async fn no_common_protocol_version() {
    case(async |_| {
        let frame = Message::Join {
            sender: pid("future-phone"),
            metadata: None,
            supported_versions: vec!["9".into()],
        }
        .encode();
        (Ws::Binary(frame.into()), "this server supports [\"1\"]")
    })
    .await;
}

#[tokio::test]
async fn a_valid_frame_after_a_bad_one_on_another_connection_syncs() {
    // The well-formed version of the frames above is accepted, to show the cases fail for the
    // reason they claim and not for a mistake in how the test builds frames.
    let server = TestServer::start().await;
    let mut ws = raw(&server).await;
    let peer = handshake(&mut ws, "good").await;
    let frame = sync_frame("good", &peer, &doc().to_string(), real_sync_data());
    ws.send(Ws::Binary(frame.into())).await.unwrap();
    let reply = next_message(&mut ws).await;
    assert!(
        matches!(reply, Some(Message::Sync(DocMessage { .. }))),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_socket_that_never_joins_is_closed() {
    let server =
        TestServer::start_with(|c| c.limits.join_timeout = Duration::from_millis(300)).await;
    let (bystander, _h) = server.phone().await;
    let mut ws = raw(&server).await;
    expect_error_then_close(&mut ws, "no join message within 300ms").await;
    others_unaffected(&server, &bystander, doc()).await;
}

// Slow and too many HTTP connections (slowloris): each costs the server an open file.

/// The start of a request whose head never ends.
const HALF_A_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: fieldsync\r\nX-Slow: ";

/// A TCP connection from `from`, a loopback address of the test's own, so that its
/// connections count apart from the phones' and the health checks' (127.0.0.1).
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server closed the connection (end of stream or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// `GET /healthz` on a new connection from `from`: the status line, or `None` when the
/// connection was closed without an answer.
async fn health_from(from: &str, server: SocketAddr) -> Option<String> {
    let mut stream = connect_from(from, server).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: fieldsync\r\nConnection: close\r\n\r\n";
    stream.write_all(request).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().map(str::to_owned)
}

/// Asks for health from `from` until it answers (a closed connection frees its place a
/// moment after the client sees it close).
async fn health_answers_from(from: &str, server: SocketAddr) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(status) = health_from(from, server).await {
            return status.contains(" 200 ");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn many_half_sent_requests_leave_health_answering() {
    // The review's attack: 1,100 such connections used up the server's open files.
    fieldsync_server::listen::raise_open_file_limit().unwrap();
    let server = TestServer::start().await;
    let cap = server.config.limits.max_connections_per_address;
    let mut slow = Vec::new();
    for _ in 0..1_100 {
        let mut stream = connect_from("127.0.0.2", server.addr).await;
        let _ = stream.write_all(HALF_A_HEAD).await;
        slow.push(stream);
    }
    let asked = Instant::now();
    let status = health_from("127.0.0.1", server.addr).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 200 ")),
        "{status:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // Over its cap, the address's connections were closed at once; the others wait for the
    // header timeout (10 s).
    let closed = futures_util::future::join_all(
        slow.iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(2))),
    )
    .await;
    assert_eq!(closed.iter().filter(|c| **c).count(), 1_100 - cap);
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_timeout() {
    let server = TestServer::start_with(|c| {
        c.limits.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    let mut half = connect_from("127.0.0.1", server.addr).await;
    half.write_all(HALF_A_HEAD).await.unwrap();
    let mut silent = connect_from("127.0.0.1", server.addr).await;
    assert!(closed_within(&mut half, WAIT).await, "half a head");
    assert!(closed_within(&mut silent, WAIT).await, "nothing at all");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(health_answers_from("127.0.0.1", server.addr).await);
}

#[tokio::test]
async fn a_connection_over_the_per_address_cap_is_closed_at_once() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_address = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.3", server.addr).await);
    }
    let mut fourth = connect_from("127.0.0.3", server.addr).await;
    assert!(
        closed_within(&mut fourth, WAIT).await,
        "the fourth is closed"
    );
    // Other addresses are not affected.
    assert!(health_answers_from("127.0.0.1", server.addr).await);
    // A closed connection frees its place.
    drop(held.pop());
    assert!(health_answers_from("127.0.0.3", server.addr).await);
    for mut stream in held {
        assert!(!closed_within(&mut stream, Duration::from_millis(100)).await);
    }
}

#[tokio::test]
async fn a_connection_over_the_total_cap_is_closed_at_once() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let _held = [
        connect_from("127.0.0.4", server.addr).await,
        connect_from("127.0.0.5", server.addr).await,
    ];
    let mut third = connect_from("127.0.0.6", server.addr).await;
    assert!(closed_within(&mut third, WAIT).await);
}

#[tokio::test]
async fn websockets_count_against_the_per_address_cap() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_address = 2).await;
    let mut a = raw(&server).await;
    handshake(&mut a, "first").await;
    let mut b = raw(&server).await;
    handshake(&mut b, "second").await;
    let mut third = connect_from("127.0.0.1", server.addr).await;
    assert!(closed_within(&mut third, WAIT).await);
}

// Ephemeral messages: relayed only between peers that may read the document, under the
// sender's own peer id, so that no peer can pass for the server (whose ephemeral messages are
// notices the phones obey).

#[tokio::test]
async fn a_forged_drop_notice_does_not_delete_another_phones_document() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    // Another device of the same user: it may read the document.
    let (_, token) = server.enroll(DEFAULT_USER).await;
    let mut forger = RawPeer::join(&server.url_for(&token), "forger").await;
    let (mut copy, mut state) = forger.fetch(id).await;

    phone
        .change(id, |tx| tx.put(ROOT, "unsynced", true))
        .await
        .unwrap();
    forger.send_ephemeral(id, 1, Notice::Drop.encode()).await;
    // The actor answers the forger's change after it handled the ephemeral message, and a
    // relay to the phone would have been queued before anything after it.
    copy.put(ROOT, "forger", true).unwrap();
    forger.send_sync(id, &mut copy, &mut state).await;
    forger.next().await;
    phone
        .change(id, |tx| tx.put(ROOT, "after", true))
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();

    assert!(phone.documents().await.contains(&id));
    let kept = phone
        .read(id, |d| {
            d.get(ROOT, "unsynced").unwrap().is_some() && d.get(ROOT, "after").unwrap().is_some()
        })
        .await;
    assert_eq!(
        kept,
        Some(true),
        "the phone keeps the document and its edits"
    );
}

#[tokio::test]
async fn an_ephemeral_message_from_outside_the_area_reaches_nobody() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.02"])
        .await;
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let (_, reader) = server.enroll(DEFAULT_USER).await;
    let mut watcher = RawPeer::join(&server.url_for(&reader), "watcher").await;
    let (mut copy, mut state) = watcher.fetch(id).await;

    let (_, outside) = server.enroll("peksos-budi").await;
    let mut outsider = RawPeer::join(&server.url_for(&outside), "outsider").await;
    outsider.send_ephemeral(id, 1, Notice::Drop.encode()).await;
    outsider.send_ephemeral(id, 2, b"hello".to_vec()).await;
    // Asked for, the document is unavailable to the outsider: by then the actor has handled
    // both ephemeral messages.
    let request = Message::Request(DocMessage {
        document_id: id,
        sender: outsider.me().clone(),
        target: outsider.server().clone(),
        data: real_sync_data(),
    });
    outsider.send(&request).await;
    assert!(matches!(
        outsider.next().await,
        Message::DocUnavailable { .. }
    ));
    // The watcher's next message is the answer to its change, not a relay (which would
    // have been queued before it).
    copy.put(ROOT, "watcher", true).unwrap();
    watcher.send_sync(id, &mut copy, &mut state).await;
    let next = watcher.next().await;
    assert!(matches!(next, Message::Sync(_)), "{next:?}");
}

#[tokio::test]
async fn ephemeral_messages_between_readers_carry_their_sender() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let (_, a) = server.enroll(DEFAULT_USER).await;
    let (_, b) = server.enroll(DEFAULT_USER).await;
    let mut alice = RawPeer::join(&server.url_for(&a), "alice").await;
    let mut bob = RawPeer::join(&server.url_for(&b), "bob").await;
    alice.fetch(id).await;
    bob.fetch(id).await;
    alice.send_ephemeral(id, 7, b"cursor".to_vec()).await;
    loop {
        match bob.next().await {
            Message::Ephemeral {
                sender,
                data,
                count,
                ..
            } => {
                assert_eq!(sender.as_str(), "alice");
                assert_eq!((data.as_slice(), count), (&b"cursor"[..], 7));
                break;
            }
            Message::Sync(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_peer_cannot_join_under_a_servers_peer_id() {
    let server = TestServer::start().await;
    let (bystander, _h) = server.phone().await;
    let mut ws = raw(&server).await;
    let server_peer = handshake(&mut ws, "curious").await;
    for name in [server_peer.as_str(), "fieldsync-imposter"] {
        let mut ws = raw(&server).await;
        ws.send(join(name)).await.unwrap();
        expect_error_then_close(&mut ws, "reserved for servers").await;
    }
    others_unaffected(&server, &bystander, doc()).await;
}

// Requests for documents that do not exist: each is remembered, to give the document to the
// peer if someone creates it, but only so many per connection.

#[tokio::test]
async fn a_connection_waits_for_a_bounded_number_of_documents() {
    let server = TestServer::start_with(|c| c.limits.max_waiting_per_connection = 5).await;
    // A phone that makes eight documents offline, and syncs them later.
    let phone = fieldsync_client::Replica::in_memory().await;
    phone.set_author(common::default_author()).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(phone.create(visit).await.unwrap());
    }
    // Another device of the user asks for all eight before they exist.
    let (_, token) = server.enroll(DEFAULT_USER).await;
    let mut asker = RawPeer::join(&server.url_for(&token), "asker").await;
    for id in &ids {
        let request = Message::Request(DocMessage {
            document_id: *id,
            sender: asker.me().clone(),
            target: asker.server().clone(),
            data: empty_sync_data(),
        });
        asker.send(&request).await;
        assert!(matches!(asker.next().await, Message::DocUnavailable { .. }));
    }

    let _h = phone.connect(fieldsync_client::ConnectOptions::new(server.url()));
    for id in &ids {
        phone.wait_acknowledged(*id, WAIT).await.unwrap();
    }
    // Whatever the server sends the asker about the eight was queued before the phone's last
    // acknowledgement; a request for a ninth, missing document comes after all of it.
    let marker = DocumentId::from_bytes([9; 16]);
    let request = Message::Request(DocMessage {
        document_id: marker,
        sender: asker.me().clone(),
        target: asker.server().clone(),
        data: empty_sync_data(),
    });
    asker.send(&request).await;
    let mut given = std::collections::HashSet::new();
    loop {
        match asker.next().await {
            Message::Sync(m) => {
                given.insert(m.document_id);
            }
            Message::DocUnavailable { document_id, .. } if document_id == marker => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(given.len(), 5, "only five were remembered: {given:?}");
}

/// The first sync message of a peer that has nothing.
fn empty_sync_data() -> Vec<u8> {
    let mut d = automerge::AutoCommit::new();
    let mut state = automerge::sync::State::new();
    d.sync().generate_sync_message(&mut state).unwrap().encode()
}

#[tokio::test]
async fn shutdown_does_not_wait_for_half_sent_requests() {
    let server = TestServer::start().await;
    let (_phone, _h) = server.phone().await;
    let mut half = connect_from("127.0.0.1", server.addr).await;
    half.write_all(HALF_A_HEAD).await.unwrap();
    let _silent = connect_from("127.0.0.1", server.addr).await;
    assert!(health_answers_from("127.0.0.1", server.addr).await);
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
