//! The harness of the fault tests: phones (`Phone`) through a proxy, a fleet of them editing
//! (`Fleet`), and the settlement every test ends with (`Fleet::settle`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use fieldsync_client::automerge::transaction::Transactable;
use fieldsync_client::{ConnectOptions, DocStatus, Replica, SyncHandle};
use fieldsync_core::schema::FieldDocument;
use fieldsync_protocol::DocumentId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::log;
use crate::common::{self, DEFAULT_USER, TestServer, WAIT, default_author, visit};

/// Phones, their documents and what they saw acknowledged.
pub struct Fleet {
    pub phones: Vec<Phone>,
}

pub struct Phone {
    pub replica: Replica,
    pub handle: SyncHandle,
    /// Documents this phone created and edits.
    pub own: Vec<DocumentId>,
    /// Every head this phone saw acknowledged, per document.
    acked: Arc<Mutex<HashMap<DocumentId, HashSet<ChangeHash>>>>,
    /// Every change this phone made: the database may hold these and nothing else.
    made: Mutex<HashSet<ChangeHash>>,
}

impl Phone {
    /// A phone of the default user with a device of its own, syncing through `url` (a proxy),
    /// retrying quickly.
    pub async fn through(server: &TestServer, url: String) -> Self {
        Self::through_with(server, url, |options| options).await
    }

    /// As `through`, with the connection's options changed by `tweak`.
    pub async fn through_with(
        server: &TestServer,
        url: String,
        tweak: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> Self {
        let (_, token) = server.enroll(DEFAULT_USER).await;
        let replica = Replica::in_memory().await;
        replica.set_author(default_author()).await;
        let mut options = ConnectOptions::new(url).with_token(token);
        options.min_backoff = Duration::from_millis(50);
        options.max_backoff = Duration::from_millis(500);
        let handle = replica.connect(tweak(options));
        Self {
            replica,
            handle,
            own: Vec::new(),
            acked: Arc::default(),
            made: Mutex::default(),
        }
    }

    pub async fn create(&mut self) {
        let id = self.replica.create(visit).await.unwrap();
        self.own.push(id);
        self.note_made(id).await;
    }

    pub async fn edit(&self, id: DocumentId, text: String) {
        self.replica
            .change(id, |tx| tx.put(ROOT, "purpose", text))
            .await
            .unwrap();
        self.note_made(id).await;
    }

    pub async fn note_made(&self, id: DocumentId) {
        let hash = self
            .replica
            .read(id, |d| d.get_last_local_change().map(|c| c.hash()))
            .await
            .flatten()
            .expect("a local change was just made");
        self.made.lock().unwrap().insert(hash);
    }

    /// Records the heads of every document whose local changes the server acknowledged.
    pub async fn record_acks(&self) {
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
    pub async fn start(
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
    pub async fn edit(&self, rounds: usize, period: Duration) {
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

    pub async fn wait_acknowledged(&self, limit: Duration) {
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

    pub fn documents(&self) -> Vec<DocumentId> {
        self.phones.iter().flat_map(|p| p.own.clone()).collect()
    }

    /// The end of every test: nothing acknowledged is lost, nothing stored is corrupt, every
    /// replica converges on the server's heads, and the server still serves.
    pub async fn settle(&self, server: &TestServer, limit: Duration) {
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
pub async fn stored_documents(url: &str, ids: &[DocumentId]) -> HashMap<DocumentId, Automerge> {
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
pub async fn still_serves(server: &TestServer, stored: &HashMap<DocumentId, Automerge>) {
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
pub async fn health(server: &TestServer) -> u16 {
    health_within(server, WAIT).await
}

pub async fn health_within(server: &TestServer, limit: Duration) -> u16 {
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
pub async fn wait_health(server: &TestServer, status: u16, limit: Duration) {
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

/// A server on SQLite whose rate limit does not count a test's reconnect storms from
/// 127.0.0.1.
pub async fn server() -> TestServer {
    log::capture();
    TestServer::start_with(|c| c.rate_limits.connects_per_minute = 100_000).await
}

/// The same on a fresh PostgreSQL database (FIELDSYNC_TEST_POSTGRES_URL), `None` (counted as
/// skipped) if that is not set.
pub async fn server_on_postgres() -> Option<(TestServer, common::PgDatabase)> {
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
pub fn log_names_one_of(test: &str, words: &[&str], ids: &[String]) {
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

pub fn peers(fleet: &Fleet) -> Vec<String> {
    fleet
        .phones
        .iter()
        .map(|p| format!("peer=\"{}\"", p.replica.peer_id().as_str()))
        .collect()
}

pub fn doc_names(fleet: &Fleet) -> Vec<String> {
    fleet
        .documents()
        .iter()
        .map(|id| format!("doc={id}"))
        .collect()
}
