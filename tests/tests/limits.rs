//! Size limits and storage failures as phones meet them: an oversized change is refused with
//! a notice and stored nowhere, a stored document over the limits is refused without being
//! loaded, and a failed commit is acknowledged once storage works again, without a reconnect.

mod common;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{TestServer, WAIT, visit};
use fieldsync_client::DocStatus;
use fieldsync_core::schema::FieldDocument;
use fieldsync_protocol::{DocumentId, Message, Notice};
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over plain HTTP: (status, body).
async fn get(server: &TestServer, path: &str) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Chunked or not: the JSON object is between the first `{` and the last `}`.
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    (status, serde_json::from_str(json).unwrap())
}

/// A valid visit whose notes are ten million characters: ~10 KB on the wire.
fn bomb_visit() -> AutoCommit {
    let mut doc = AutoCommit::new();
    let visit = fieldsync_core::schema::examples::visit(&common::area(), common::DEFAULT_USER);
    FieldDocument::Visit(visit).write(&mut doc).unwrap();
    doc.put(ROOT, "notes", "a".repeat(10_000_000)).unwrap();
    doc.commit();
    doc
}

#[tokio::test]
async fn an_oversized_change_is_refused_with_a_notice_and_stored_nowhere() {
    let server = TestServer::start().await;
    let mut raw = RawPeer::join(&server.url(), "raw-bomber").await;
    let id = DocumentId::from_bytes([0x42; 16]);
    let mut bomb = bomb_visit();
    let notice = raw.sync_until_notice(id, &mut bomb).await;
    let Some(Notice::ChangeRefused { violations, .. }) = notice else {
        panic!("expected a refusal, got {notice:?}");
    };
    assert!(
        violations[0].message.contains("bytes uncompressed"),
        "{violations:?}"
    );
    assert!(server.projection_rows().await.is_empty(), "nothing stored");

    // Other phones, and this connection's other documents, are not held up.
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let (status, health) = get(&server, "/healthz").await;
    assert_eq!(status, 200, "{health}");
}

#[tokio::test]
async fn a_stored_document_over_the_limits_is_refused_not_loaded() {
    let server = TestServer::start().await;
    // As a server before the limits would have stored it.
    let id = DocumentId::from_bytes([0x43; 16]);
    let mut bomb = bomb_visit();
    let bytes = bomb.save();
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    storage
        .write(&[Write::Append {
            doc: id,
            bytes,
            projection: Projection::of(None),
        }])
        .await
        .unwrap();
    storage.close().await.unwrap();

    let mut raw = RawPeer::join(&server.url(), "raw-reader").await;
    raw.request(id).await;
    assert!(
        matches!(raw.next().await, Message::DocUnavailable { .. }),
        "answered as a document this server cannot serve"
    );
    let (status, health) = get(&server, "/healthz").await;
    assert_eq!(status, 200, "the server keeps serving: {health}");
    assert_eq!(health["oversizedDocumentsRefused"], 1, "{health}");
}

#[tokio::test]
async fn a_failed_commit_is_acknowledged_once_storage_works_again() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();

    // The disk is "full": every new chunk is refused by the database.
    let db = server.config.database_url.clone();
    let admin = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER full BEFORE INSERT ON chunks BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&admin)
    .await
    .unwrap();
    phone
        .change(id, |tx| tx.put(ROOT, "purpose", "Kunjungan ulang"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, health) = get(&server, "/healthz").await;
        if status == 503 {
            assert_eq!(health["status"], "failing", "{health}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never said so"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        phone.status(id).await,
        Some(DocStatus::Pending),
        "not acknowledged"
    );

    // Space again: the same connection's change is stored and acknowledged.
    sqlx::query("DROP TRIGGER full")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    phone
        .wait_acknowledged(id, WAIT)
        .await
        .expect("acknowledged without a reconnect");
    let (status, _) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
}

/// A caseload index grows with the caseload, through the server's own edits: it is not held
/// to the document limits, or a busy kelurahan's index would stop updating and no phone could
/// restore from it (found by the soak test with the default 4 MiB limit). The same holds for
/// its page of that kelurahan, which a phone may ask a new server process for before the
/// caseloads there have touched it.
#[tokio::test]
async fn an_index_larger_than_the_document_limits_still_loads_and_restores() {
    // A limit just above one visit: the index passes it after a few dozen entries.
    let mut one = AutoCommit::new();
    let visit_doc = fieldsync_core::schema::examples::visit(&common::area(), common::DEFAULT_USER);
    FieldDocument::Visit(visit_doc).write(&mut one).unwrap();
    let limit = one.document().stats().num_ops + 20;
    let entries = (limit / 2 + 10) as usize;
    let server = TestServer::start_with(|c| c.document_limits.max_document_ops = limit).await;
    let (phone, _h) = server.phone().await;
    let mut made = Vec::new();
    for _ in 0..entries {
        let id = phone.create(visit).await.unwrap();
        made.push(id);
    }
    for id in &made {
        phone.wait_acknowledged(*id, WAIT).await.unwrap();
    }
    drop(_h);
    // Loaded afresh by a new process: the index is over the limit.
    let (dir, config) = server.stop().await;
    let server = TestServer::start_in(dir, config).await;
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let url = fieldsync_server::admin::index_url(storage.as_ref(), common::DEFAULT_USER)
        .await
        .unwrap();
    storage.close().await.unwrap();
    let index = fieldsync_protocol::AutomergeUrl::parse(&url)
        .unwrap()
        .document_id();
    let (fresh, _h2) = server.phone().await;
    let listed = fresh.restore_from_index(index, WAIT).await.unwrap();
    assert_eq!(listed, entries);
    let pages = fresh
        .read(index, fieldsync_client::index::pages)
        .await
        .flatten()
        .unwrap();
    let page = *pages.values().next().unwrap();
    let size = fresh.read(page, |d| d.stats().num_ops).await.unwrap();
    assert!(
        size > limit,
        "the index's page is over the limit: {size} operations"
    );
}

/// Sends `request`s for documents that do not exist, one every 100 ms, until `stop`; each
/// answered `doc-unavailable`. A connection that talks this steadily keeps its turn, which
/// it has once `started` (its first answer) is told.
async fn keep_talking(
    mut peer: RawPeer,
    started: tokio::sync::oneshot::Sender<()>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> usize {
    tokio::pin!(stop);
    let mut started = Some(started);
    let mut sent = 0u8;
    loop {
        peer.request(DocumentId::from_bytes([sent; 16])).await;
        sent += 1;
        assert!(matches!(peer.next().await, Message::DocUnavailable { .. }));
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        tokio::select! {
            _ = &mut stop => return usize::from(sent),
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
        assert!(sent < 150, "never told to stop");
    }
}

#[tokio::test]
async fn a_phone_past_max_syncing_is_joined_at_once_and_served_in_its_turn() {
    let server = TestServer::start_with(|c| c.limits.max_syncing = 1).await;
    let (_, talker_token) = server.enroll(common::DEFAULT_USER).await;
    let (_, waiter_token) = server.enroll(common::DEFAULT_USER).await;
    let talker = RawPeer::join(&server.url_for(&talker_token), "talker").await;
    let (started, has_turn) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let talking = tokio::spawn(keep_talking(talker, started, stopped));
    has_turn.await.unwrap();

    // The only turn is the talker's, but joining needs none.
    let mut waiter = RawPeer::join(&server.url_for(&waiter_token), "waiter").await;
    let asked = std::time::Instant::now();
    waiter.request(DocumentId::from_bytes([200; 16])).await;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(1500), waiter.next())
            .await
            .is_err(),
        "answered while another connection had the only turn"
    );
    // The talker never falls quiet, so it gives its turn up after 5 s because one waits.
    let answer = tokio::time::timeout(WAIT, waiter.next())
        .await
        .expect("served in its turn");
    assert!(matches!(answer, Message::DocUnavailable { .. }));
    let waited = asked.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(4),
        "served after {waited:?}, before the talker's turn was over"
    );
    let _ = stop.send(());
    let sent = talking.await.unwrap();
    assert!(sent >= 20, "the talker was held up: {sent} requests");

    // A connection that falls quiet gives its turn back within half a second.
    let mut quiet = RawPeer::join(&server.url_for(&talker_token), "quiet").await;
    quiet.request(DocumentId::from_bytes([201; 16])).await;
    assert!(matches!(quiet.next().await, Message::DocUnavailable { .. }));
    waiter.request(DocumentId::from_bytes([202; 16])).await;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(2), waiter.next())
        .await
        .expect("the quiet connection gave its turn back");
    assert!(matches!(answer, Message::DocUnavailable { .. }));
}
