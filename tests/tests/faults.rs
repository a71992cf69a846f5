//! Faults injected while phones edit: a network that cuts, crawls, corrupts and swallows
//! (through `common::proxy`), a PostgreSQL restarted under the server (`common::pgcluster`), and
//! an SQLite disk that fills up and empties again. Each test ends with the same settlement:
//! every change a phone saw acknowledged is in the database, every replica has the server's
//! heads, the server still serves a new phone and `/healthz` says 200, and the server's log says
//! what happened in a line.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use common::pgcluster::PgCluster;
use common::proxy::{Faults, Proxy};
use common::{DEFAULT_USER, TestServer, WAIT, default_author, visit};
use fieldsync_client::automerge::transaction::Transactable;
use fieldsync_client::{ConnectOptions, DocStatus, Replica, SyncHandle};
use fieldsync_core::schema::FieldDocument;
use fieldsync_protocol::DocumentId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Phones, their documents and what they saw acknowledged.
struct Fleet {
    phones: Vec<Phone>,
}

struct Phone {
    replica: Replica,
    handle: SyncHandle,
    /// Documents this phone created and edits.
    own: Vec<DocumentId>,
    /// Every head this phone saw acknowledged, per document.
    acked: Arc<Mutex<HashMap<DocumentId, HashSet<ChangeHash>>>>,
    /// Every change this phone made: the database may hold these and nothing else.
    made: Mutex<HashSet<ChangeHash>>,
}

impl Phone {
    /// A phone of the default user with a device of its own, syncing through `url` (a proxy),
    /// retrying quickly.
    async fn through(server: &TestServer, url: String) -> Self {
        let (_, token) = server.enroll(DEFAULT_USER).await;
        let replica = Replica::in_memory().await;
        replica.set_author(default_author()).await;
        let mut options = ConnectOptions::new(url).with_token(token);
        options.min_backoff = Duration::from_millis(50);
        options.max_backoff = Duration::from_millis(500);
        let handle = replica.connect(options);
        Self {
            replica,
            handle,
            own: Vec::new(),
            acked: Arc::default(),
            made: Mutex::default(),
        }
    }

    async fn create(&mut self) {
        let id = self.replica.create(visit).await.unwrap();
        self.own.push(id);
        self.note_made(id).await;
    }

    async fn edit(&self, id: DocumentId, text: String) {
        self.replica
            .change(id, |tx| tx.put(ROOT, "purpose", text))
            .await
            .unwrap();
        self.note_made(id).await;
    }

    async fn note_made(&self, id: DocumentId) {
        let hash = self
            .replica
            .read(id, |d| d.get_last_local_change().map(|c| c.hash()))
            .await
            .flatten()
            .expect("a local change was just made");
        self.made.lock().unwrap().insert(hash);
    }

    /// Records the heads of every document whose local changes the server acknowledged.
    async fn record_acks(&self) {
        for &id in &self.own {
            // Only this phone's own driver edits the replica, and it is the caller: nothing
            // local can slip in between the status and the heads.
            if self.replica.status(id).await == Some(DocStatus::Acknowledged)
                && let Some(heads) = self.replica.heads(id).await
            {
                self.acked
                    .lock()
                    .unwrap()
                    .entry(id)
                    .or_default()
                    .extend(heads);
            }
        }
    }
}

impl Fleet {
    /// `phones` phones through `url`, each creating `docs` visits, all acknowledged before the
    /// faults start; then each phone also opens its neighbour's documents, so that relays are
    /// part of what must converge.
    async fn start(
        server: &TestServer,
        url: &str,
        (phones, docs): (usize, usize),
        limit: Duration,
    ) -> Self {
        let mut fleet = Fleet { phones: Vec::new() };
        for _ in 0..phones {
            let mut phone = Phone::through(server, url.to_owned()).await;
            for _ in 0..docs {
                phone.create().await;
            }
            fleet.phones.push(phone);
        }
        fleet.wait_acknowledged(limit).await;
        for (i, phone) in fleet.phones.iter().enumerate() {
            let next = &fleet.phones[(i + 1) % phones];
            if !std::ptr::eq(phone, next) {
                for id in &next.own {
                    phone.replica.find(*id).await;
                }
                // Received before any fault: a first read is audited, and a read that cannot
                // be audited is not sent.
                for id in &next.own {
                    let received = phone
                        .replica
                        .wait_doc(*id, limit, |d| !d.get_heads().is_empty())
                        .await;
                    assert!(received.is_ok(), "the neighbour's {id} arrives");
                }
            }
        }
        fleet
    }

    /// Every phone edits its own documents in turn, one edit per `period`, `rounds` times,
    /// recording acknowledgements as it goes.
    async fn edit(&self, rounds: usize, period: Duration) {
        let drivers = self.phones.iter().map(|phone| async move {
            for round in 0..rounds {
                phone.record_acks().await;
                let id = phone.own[round % phone.own.len()];
                phone.edit(id, format!("Kunjungan ulang ke-{round}")).await;
                tokio::time::sleep(period).await;
            }
            phone.record_acks().await;
        });
        futures_util::future::join_all(drivers).await;
    }

    async fn wait_acknowledged(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for phone in &self.phones {
            for id in &phone.own {
                let left = deadline.saturating_duration_since(Instant::now());
                let status = phone.replica.wait_acknowledged(*id, left).await;
                assert!(
                    status.is_ok(),
                    "{id} acknowledged within {limit:?}: {:?}, last error {:?}",
                    phone.replica.status(*id).await,
                    phone.handle.last_error()
                );
            }
        }
        for phone in &self.phones {
            phone.record_acks().await;
        }
    }

    fn documents(&self) -> Vec<DocumentId> {
        self.phones.iter().flat_map(|p| p.own.clone()).collect()
    }

    /// The end of every test: nothing acknowledged is lost, nothing stored is corrupt, every
    /// replica converges on the server's heads, and the server still serves.
    async fn settle(&self, server: &TestServer, limit: Duration) {
        self.wait_acknowledged(limit).await;
        let stored = stored_documents(&server.config.database_url, &self.documents()).await;
        for phone in &self.phones {
            for (id, hashes) in phone.acked.lock().unwrap().iter() {
                let doc = &stored[id];
                for hash in hashes {
                    assert!(
                        doc.get_change_by_hash(hash).is_some(),
                        "acknowledged change {hash} of {id} is in the database"
                    );
                }
            }
        }
        let made: HashSet<ChangeHash> = self
            .phones
            .iter()
            .flat_map(|p| p.made.lock().unwrap().clone())
            .collect();
        for (id, doc) in &stored {
            assert!(
                FieldDocument::read(doc).is_ok(),
                "{id} is stored as a valid visit"
            );
            for change in doc.get_changes(&[]) {
                assert!(
                    made.contains(&change.hash()),
                    "every stored change of {id} is one a phone made, unaltered"
                );
            }
        }
        let deadline = Instant::now() + limit;
        for phone in &self.phones {
            for id in phone.replica.documents().await {
                let Some(doc) = stored.get(&id) else { continue };
                let mut want = doc.get_heads();
                want.sort();
                let left = deadline.saturating_duration_since(Instant::now());
                let converged = phone
                    .replica
                    .wait_doc(id, left, |d| {
                        let mut heads = d.get_heads();
                        heads.sort();
                        heads == want
                    })
                    .await;
                assert!(
                    converged.is_ok(),
                    "the replica of {id} has the server's heads"
                );
            }
        }
        still_serves(server, &stored).await;
    }
}

/// Every document as the server stored it.
async fn stored_documents(url: &str, ids: &[DocumentId]) -> HashMap<DocumentId, Automerge> {
    let storage = fieldsync_server::storage::open(url).await.unwrap();
    let mut docs = HashMap::new();
    for id in ids {
        let stored = storage.load(*id).await.unwrap().expect("stored");
        docs.insert(
            *id,
            Automerge::load(&stored.bytes).expect("stored bytes load"),
        );
    }
    storage.close().await.unwrap();
    docs
}

/// A new phone, straight to the server, stores a new document and receives an existing one;
/// `/healthz` says 200.
async fn still_serves(server: &TestServer, stored: &HashMap<DocumentId, Automerge>) {
    assert_eq!(health(server).await, 200, "healthy afterwards");
    let (phone, _h) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    if let Some((old, doc)) = stored.iter().next() {
        let want = doc.get_heads().len();
        phone.find(*old).await;
        phone
            .wait_doc(*old, WAIT, |d| d.get_heads().len() == want)
            .await
            .expect("a new phone receives an existing document");
    }
}

/// `GET /healthz`: the status code (0 if no answer within `WAIT`).
async fn health(server: &TestServer) -> u16 {
    health_within(server, WAIT).await
}

async fn health_within(server: &TestServer, limit: Duration) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(server.addr).await else {
        return 0;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if s.write_all(request).await.is_err() {
        return 0;
    }
    let mut text = String::new();
    let _ = tokio::time::timeout(limit, s.read_to_string(&mut text)).await;
    text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Waits until `/healthz` answers `status`.
async fn wait_health(server: &TestServer, status: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = health(server).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz said {got}, not {status}, for {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's log lines, captured for this test binary: `None` when logging went elsewhere
/// (FIELDSYNC_TEST_LOG set), in which case tests skip their log check.
mod log {
    use super::*;

    static LINES: OnceLock<Option<Arc<Mutex<Vec<u8>>>>> = OnceLock::new();

    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Starts capturing (once per binary), before any server starts.
    pub fn capture() {
        LINES.get_or_init(|| {
            if std::env::var_os("FIELDSYNC_TEST_LOG").is_some() {
                return None;
            }
            let buffer = Buffer(Arc::default());
            let writer = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init()
                .ok()
                .map(|()| buffer.0)
        });
    }

    /// Lines containing every one of `words`; `None` if the log is not captured.
    pub fn lines_with(words: &[&str]) -> Option<Vec<String>> {
        let buffer = LINES.get()?.as_ref()?;
        let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
        Some(
            text.lines()
                .filter(|l| words.iter().all(|w| l.contains(w)))
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// A server on SQLite whose rate limit does not count a test's reconnect storms from
/// 127.0.0.1.
async fn server() -> TestServer {
    log::capture();
    TestServer::start_with(|c| c.rate_limits.connects_per_minute = 100_000).await
}

/// The same on a fresh PostgreSQL database (FIELDSYNC_TEST_POSTGRES_URL), `None` (counted as
/// skipped) if that is not set.
async fn server_on_postgres() -> Option<(TestServer, common::PgDatabase)> {
    log::capture();
    let db = common::PgDatabase::create().await?;
    let url = db.url.clone();
    let server = TestServer::start_with(|c| {
        c.database_url = url;
        c.rate_limits.connects_per_minute = 100_000;
    })
    .await;
    Some((server, db))
}

/// Any line with every one of `words` and one of `ids` (documents or peers of this test, since
/// tests of this binary share the log); skipped if the log is not captured.
fn log_names_one_of(test: &str, words: &[&str], ids: &[String]) {
    let mut found = None;
    for id in ids {
        let mut all = words.to_vec();
        all.push(id);
        match log::lines_with(&all) {
            None => {
                eprintln!("{test}: log not captured (FIELDSYNC_TEST_LOG set), not checked");
                return;
            }
            Some(lines) if !lines.is_empty() => {
                found = lines.into_iter().next();
                break;
            }
            Some(_) => {}
        }
    }
    let line =
        found.unwrap_or_else(|| panic!("{test}: no log line with {words:?} and one of ours"));
    eprintln!("{test}: the log says: {line}");
}

fn peers(fleet: &Fleet) -> Vec<String> {
    fleet
        .phones
        .iter()
        .map(|p| format!("peer=\"{}\"", p.replica.peer_id().as_str()))
        .collect()
}

fn doc_names(fleet: &Fleet) -> Vec<String> {
    fleet
        .documents()
        .iter()
        .map(|id| format!("doc={id}"))
        .collect()
}

#[tokio::test]
async fn phones_editing_while_every_connection_is_cut_lose_nothing() {
    cuts(&server().await).await;
}

#[tokio::test]
async fn phones_editing_while_every_connection_is_cut_lose_nothing_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        cuts(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn cuts(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(server, &proxy.sync_url(), (3, 3), WAIT).await;
    let cutter = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            proxy.cut_all();
        }
    };
    tokio::join!(fleet.edit(40, Duration::from_millis(50)), cutter);
    assert!(
        proxy.accepted() >= 3 * 5,
        "every phone reconnected after every cut: {} connections",
        proxy.accepted()
    );
    fleet.settle(server, WAIT).await;
    log_names_one_of("cuts", &["disconnected: connection lost"], &peers(&fleet));
}

#[tokio::test]
async fn five_phones_on_2g_have_twenty_documents_each_acknowledged_in_time() {
    slow_link(&server().await).await;
}

#[tokio::test]
async fn five_phones_on_2g_have_twenty_documents_each_acknowledged_in_time_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        slow_link(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn slow_link(server: &TestServer) {
    // 20 new visits each way at 50 kbit/s and a few 600 ms round trips: about 20 s here; the
    // bound leaves room for a loaded test machine.
    const BOUND: Duration = Duration::from_secs(60);
    let proxy = Proxy::start(server.addr).await;
    proxy.set(Faults::gprs());
    let started = Instant::now();
    let fleet = Fleet::start(server, &proxy.sync_url(), (5, 20), BOUND).await;
    let took = started.elapsed();
    eprintln!("2G: 5 phones × 20 documents acknowledged in {took:?}");
    fleet.edit(5, Duration::from_millis(200)).await;
    fleet.settle(server, BOUND).await;
    // A slow link is not a fault: nothing to log.
}

#[tokio::test]
async fn a_corrupted_stream_is_disconnected_and_nothing_corrupt_is_stored() {
    corruption(&server().await).await;
}

#[tokio::test]
async fn a_corrupted_stream_is_disconnected_and_nothing_corrupt_is_stored_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        corruption(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn corruption(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(server, &proxy.sync_url(), (2, 2), WAIT).await;
    proxy.set(Faults {
        corrupt_up_every: Some(97),
        ..Faults::default()
    });
    // Keep editing until the server has thrown out each phone's corrupted connection.
    let deadline = Instant::now() + WAIT;
    let mut round = 0;
    while fleet.phones.iter().any(|p| p.handle.is_connected()) {
        for phone in &fleet.phones {
            phone
                .edit(phone.own[0], format!("Kunjungan rusak ke-{round}"))
                .await;
        }
        round += 1;
        assert!(
            Instant::now() < deadline,
            "the server disconnects a corrupted stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.flipped() > 0);
    // A clean network again; connections begun while corrupt start afresh.
    proxy.heal();
    proxy.cut_all();
    fleet.settle(server, WAIT).await;
    log_names_one_of("corruption", &["WARN", "disconnected"], &peers(&fleet));
}

#[tokio::test]
async fn a_black_holed_phone_holds_up_nobody_and_catches_up_afterwards() {
    black_hole(&server().await).await;
}

#[tokio::test]
async fn a_black_holed_phone_holds_up_nobody_and_catches_up_afterwards_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        black_hole(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn black_hole(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let mut fleet = Fleet::start(server, &proxy.sync_url(), (1, 2), WAIT).await;
    // Another phone, straight to the server, with the silent phone's documents open too.
    let mut other = Phone::through(server, server.plain_url()).await;
    other.create().await;
    for id in fleet.phones[0].own.clone() {
        other.replica.find(id).await;
        other
            .replica
            .wait_doc(id, WAIT, |d| !d.get_heads().is_empty())
            .await
            .unwrap();
    }
    fleet.phones.push(other);
    let (silent, other) = (&fleet.phones[0], &fleet.phones[1]);
    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    // The silent phone's edits go nowhere; the other phone's, on its own document and on a
    // shared one the server relays into the void, are acknowledged as quickly as ever.
    for round in 0..5 {
        silent
            .edit(silent.own[round % 2], format!("Tanpa sinyal {round}"))
            .await;
        let started = Instant::now();
        other.edit(other.own[0], format!("Catatan {round}")).await;
        other
            .replica
            .change(silent.own[0], |tx| {
                tx.put(ROOT, "notes", format!("Catatan {round}"))
            })
            .await
            .unwrap();
        other.note_made(silent.own[0]).await;
        for id in [other.own[0], silent.own[0]] {
            other.replica.wait_acknowledged(id, WAIT).await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other phone is not held up: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(health(server).await, 200);
    assert_eq!(
        silent.replica.status(silent.own[0]).await,
        Some(DocStatus::Pending),
        "nothing got through the black hole"
    );
    // The network comes back (the old connection's stream lost bytes, so it is cut).
    proxy.heal();
    proxy.cut_all();
    fleet.settle(server, WAIT).await;
}

/// The server pings every 20 s and gives up on a peer silent for more than 60 s
/// (`server/src/connection.rs`, not configurable): this test waits for that, about 80 s.
#[tokio::test]
async fn the_server_drops_a_silent_peer_after_its_silence_limit() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (1, 1), WAIT).await;
    let silent = &fleet.phones[0];
    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    silent.edit(silent.own[0], "Tanpa sinyal".into()).await;
    let deadline = Instant::now() + Duration::from_secs(100);
    while proxy.closed_by_server() == 0 {
        assert!(
            Instant::now() < deadline,
            "the server drops a peer silent for longer than its limit"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    log_names_one_of(
        "black hole",
        &["disconnected: no frame for 60 s"],
        &peers(&fleet),
    );
    proxy.heal();
    proxy.cut_all();
    fleet.settle(&server, WAIT).await;
}

#[tokio::test]
async fn sqlite_disk_full_under_load_then_every_phone_is_acknowledged_without_reconnecting() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (4, 3), WAIT).await;
    let connections = proxy.accepted();

    let admin = sqlx::SqlitePool::connect(&server.config.database_url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER full BEFORE INSERT ON chunks BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&admin)
    .await
    .unwrap();
    fleet.edit(6, Duration::from_millis(50)).await;
    wait_health(&server, 503, WAIT).await;
    let pending = fleet.phones[0].replica.unacknowledged().await;
    assert!(
        !pending.is_empty(),
        "nothing acknowledged while the disk is full"
    );

    sqlx::query("DROP TRIGGER full")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    fleet.settle(&server, WAIT).await;
    assert_eq!(proxy.accepted(), connections, "no phone reconnected");
    log_names_one_of("disk full", &["changes not stored"], &doc_names(&fleet));
}

#[tokio::test]
async fn postgres_restarted_under_load_loses_nothing_and_serves_again() {
    let Some(pg) = PgCluster::start().await else {
        common::skip::skipped(
            "postgres_restarted_under_load_loses_nothing_and_serves_again",
            "PostgreSQL binaries not installed",
        );
        return;
    };
    log::capture();
    let url = pg.url();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (3, 3), WAIT).await;

    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.stop_fast().await;
        let asked = Instant::now();
        let status = health_within(&server, Duration::from_secs(40)).await;
        eprintln!(
            "health while PostgreSQL is down: {status} after {:?}",
            asked.elapsed()
        );
        assert_eq!(status, 503);
        // Phones keep editing into the outage for a while.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        pg.start_again().await;
        wait_health(&server, 200, WAIT).await;
    };
    tokio::join!(fleet.edit(60, Duration::from_millis(50)), outage);
    fleet.settle(&server, Duration::from_secs(30)).await;
    log_names_one_of(
        "postgres restart",
        &["changes not stored"],
        &doc_names(&fleet),
    );
}
