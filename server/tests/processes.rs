//! Several `fieldsync serve` processes on one PostgreSQL database, as a deployment behind a
//! load balancer runs them: what any of them acknowledged is stored, whatever the others do.

#![cfg(unix)]

mod support;

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use fieldsync_client::{ConnectOptions, DocStatus, Replica, SyncHandle};
use fieldsync_protocol::DocumentId;
use support::{Postgres, Server, WAIT, add_user, cli, device_token, serve, start, value, visit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Edits through A after B's: more than a document takes before it is compacted.
const EDITS_THROUGH_A: i64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_one_process_keeps_what_another_acknowledged() {
    let Some(db) = Postgres::create("two processes on one database") else {
        return;
    };
    let (mut a, url_a) = start(&db.url);
    let (mut b, url_b) = start(&db.url);

    // Step 1: a phone on A creates a visit and keeps it open on A the whole time.
    let phone_a = Replica::in_memory().await;
    let _on_a = phone_a.connect(ConnectOptions {
        max_backoff: Duration::from_millis(200),
        ..ConnectOptions::new(url_a)
    });
    let id = phone_a
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "counter", 0).map(|_| ())
        })
        .await
        .unwrap();
    phone_a.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 2: a phone on B opens it and makes one edit, which B acknowledges.
    let phone_b = Replica::in_memory().await;
    let _on_b = phone_b.connect(ConnectOptions::new(url_b));
    phone_b.find(id).await;
    phone_b
        .wait_doc(id, WAIT, |d| value(d, "counter") == Some(0))
        .await
        .unwrap();
    phone_b
        .change(id, |tx| tx.put(ROOT, "from_b", 1))
        .await
        .unwrap();
    phone_b.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 3: enough acknowledged edits through A, one commit each, for A to compact the
    // document it loaded before B's edit.
    for round in 1..=EDITS_THROUGH_A {
        phone_a
            .change(id, |tx| tx.put(ROOT, "counter", round))
            .await
            .unwrap();
        phone_a.wait_acknowledged(id, WAIT).await.unwrap();
    }

    // Step 4: both die without warning; one comes back; every acknowledged edit is there.
    a.kill();
    b.kill();
    let (_a, url) = start(&db.url);
    let reader = Replica::in_memory().await;
    let _reading = reader.connect(ConnectOptions::new(url));
    reader.find(id).await;
    reader
        .wait_status(id, WAIT, |s| s == Some(DocStatus::Acknowledged))
        .await
        .expect("the document is on the restarted server");
    let stored = reader
        .read(id, |d| (value(d, "counter"), value(d, "from_b")))
        .await
        .unwrap();
    assert_eq!(
        stored,
        (Some(EDITS_THROUGH_A), Some(1)),
        "(A's last acknowledged counter, B's acknowledged edit)"
    );
}

/// How soon a change must cross processes: "about a second", with room for a busy machine.
const CROSSING: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_process_reaches_phones_on_another() {
    let Some(db) = Postgres::create("changes crossing processes") else {
        return;
    };
    let (_a, url_a) = start(&db.url);
    let (_b, url_b) = start(&db.url);

    // Step 1: the same visit open on both processes, one phone on each.
    let phone_a = Replica::in_memory().await;
    let _on_a = phone_a.connect(ConnectOptions::new(url_a));
    let id = phone_a
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "counter", 0).map(|_| ())
        })
        .await
        .unwrap();
    phone_a.wait_acknowledged(id, WAIT).await.unwrap();
    let phone_b = Replica::in_memory().await;
    let _on_b = phone_b.connect(ConnectOptions::new(url_b));
    phone_b.find(id).await;
    phone_b
        .wait_doc(id, WAIT, |d| value(d, "counter") == Some(0))
        .await
        .unwrap();

    // Step 2: each edit reaches the phone on the other process, both ways, promptly.
    for round in 1..=3 {
        phone_b
            .change(id, |tx| tx.put(ROOT, "from_b", round))
            .await
            .unwrap();
        phone_a
            .wait_doc(id, CROSSING, |d| value(d, "from_b") == Some(round))
            .await
            .unwrap_or_else(|_| panic!("B's edit {round} did not reach the phone on A"));
        phone_a
            .change(id, |tx| tx.put(ROOT, "counter", round))
            .await
            .unwrap();
        phone_b
            .wait_doc(id, CROSSING, |d| value(d, "counter") == Some(round))
            .await
            .unwrap_or_else(|_| panic!("A's edit {round} did not reach the phone on B"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_spread_over_two_processes_converge_and_keep_every_acknowledged_edit() {
    if let Some(db) = Postgres::create("phones spread over two processes") {
        phones_spread_over(&db, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_spread_over_three_processes_converge_and_keep_every_acknowledged_edit() {
    if let Some(db) = Postgres::create("phones spread over three processes") {
        phones_spread_over(&db, 3).await;
    }
}

async fn phones_spread_over(db: &Postgres, processes: usize) {
    const ROUNDS: i64 = 20;
    let phones_count = 2 * processes;
    let (mut servers, urls): (Vec<Server>, Vec<String>) =
        (0..processes).map(|_| start(&db.url)).unzip();

    // Step 1: three documents, created through the first process; two phones on each
    // process, all holding all three.
    let creator = Replica::in_memory().await;
    let _creating = creator.connect(ConnectOptions::new(urls[0].clone()));
    let mut docs = Vec::new();
    for _ in 0..3 {
        let id = creator.create(visit).await.unwrap();
        creator.wait_acknowledged(id, WAIT).await.unwrap();
        docs.push(id);
    }
    let mut phones = Vec::new();
    for p in 0..phones_count {
        let phone = Replica::in_memory().await;
        let handle = phone.connect(ConnectOptions::new(urls[p % processes].clone()));
        for id in &docs {
            phone.find(*id).await;
            phone
                .wait_status(*id, WAIT, |s| s == Some(DocStatus::Acknowledged))
                .await
                .unwrap();
        }
        phones.push((phone, handle));
    }

    // Step 2: every phone edits every document at the same time, each its own key, waiting
    // for each acknowledgement.
    let mut editors = Vec::new();
    for (p, (phone, _)) in phones.iter().enumerate() {
        let (phone, docs) = (phone.clone(), docs.clone());
        editors.push(tokio::spawn(async move {
            for round in 1..=ROUNDS {
                for id in &docs {
                    phone
                        .change(*id, |tx| tx.put(ROOT, format!("phone{p}"), round))
                        .await
                        .unwrap();
                }
                for id in &docs {
                    phone.wait_acknowledged(*id, WAIT).await.unwrap();
                }
            }
        }));
    }
    for e in editors {
        e.await.unwrap();
    }

    // Step 3: every phone, on any process, ends with every phone's last edit.
    let all_done = |d: &automerge::Automerge| {
        (0..phones_count).all(|p| value(d, &format!("phone{p}")) == Some(ROUNDS))
    };
    for (phone, _) in &phones {
        for id in &docs {
            phone
                .wait_doc(*id, WAIT, all_done)
                .await
                .unwrap_or_else(|_| panic!("a phone did not converge on {id}"));
        }
    }

    // Step 4: all die; from a restarted process, all of it is stored.
    for s in &mut servers {
        s.kill();
    }
    stored(db, &docs, all_done).await;
}

/// Reads `docs` from a fresh process on the database, after every other was stopped: each
/// must pass `check`, so everything it checks is stored.
async fn stored(
    db: &Postgres,
    docs: &[DocumentId],
    check: impl Fn(&automerge::Automerge) -> bool + Copy,
) {
    let (_server, url) = start(&db.url);
    let reader = Replica::in_memory().await;
    let _reading = reader.connect(ConnectOptions::new(url));
    for id in docs {
        reader.find(*id).await;
        reader
            .wait_doc(*id, WAIT, check)
            .await
            .unwrap_or_else(|_| panic!("{id} lost acknowledged edits"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_visit_through_one_process_is_offered_and_streamed_on_another() {
    let Some(db) = Postgres::create("live views across processes") else {
        return;
    };
    let (_a, url_a) = start(&db.url);
    let (_b, addr_b) = serve(&db.url, "127.0.0.1:0");
    // Budi works in Ani's kelurahan; Dewi coordinates its kecamatan and watches the feed.
    add_user(&db.url, "peksos-budi", "peksos", "32.77.01.1001");
    add_user(&db.url, "koordinator-dewi", "coordinator", "32.77.01");
    let api = cli(
        &db.url,
        &["user", "api-token", "--user", "koordinator-dewi"],
    );

    // Step 1: on B, Budi's phone is connected and Dewi's stream is open; B has never loaded
    // the visit to come.
    let budi = Replica::in_memory().await;
    let mut on_b = budi.connect(
        ConnectOptions::new(format!("ws://{addr_b}/sync"))
            .with_token(device_token(&db.url, "peksos-budi")),
    );
    assert!(
        on_b.wait_connected(WAIT).await,
        "Budi's phone connects to B"
    );
    let mut stream = LiveStream::open(&addr_b, api["token"].as_str().unwrap()).await;

    // Step 2: Ani's phone on A creates a visit in the kelurahan.
    let ani = Replica::in_memory().await;
    let _on_a = ani.connect(ConnectOptions::new(url_a));
    let id = ani.create(visit).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 3: B offers it to Budi's phone unasked, and streams it to Dewi, promptly.
    budi.wait_doc(id, CROSSING, |d| {
        d.get(ROOT, "type").ok().flatten().is_some()
    })
    .await
    .expect("the new visit is offered to the colleague's phone on B");
    assert!(
        stream.wait_for(&id.to_string(), CROSSING).await,
        "the coordinator's stream on B names the new visit; it got: {}",
        stream.seen
    );
}

/// `GET /api/activity/stream` over a plain socket, as a script with an API token reads it.
struct LiveStream {
    socket: tokio::net::TcpStream,
    seen: String,
}

impl LiveStream {
    /// Opens the stream; returns once it has begun, so everything after is delivered.
    async fn open(addr: &str, token: &str) -> Self {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /api/activity/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut stream = Self {
            socket,
            seen: String::new(),
        };
        assert!(
            stream.wait_for("retry:", WAIT).await,
            "the stream begins: {}",
            stream.seen
        );
        assert!(stream.seen.starts_with("HTTP/1.1 200"), "{}", stream.seen);
        stream
    }

    /// Reads until `needle` has been received; `false` if it did not come within `limit`.
    async fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            match tokio::time::timeout_at(deadline, self.socket.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => return false,
            }
        }
        true
    }
}

/// Phones editing shared documents without pause, each its own keys (`p<phone>r<round>`), one
/// round after another, each round's edits waited for until acknowledged, until told to stop.
/// Each phone knows every process and moves to the next one whenever its connection ends.
struct Burst {
    phones: Vec<(Replica, SyncHandle)>,
    /// The last round each phone had acknowledged.
    acked: watch::Receiver<Vec<i64>>,
    stop: watch::Sender<bool>,
    editors: Vec<tokio::task::JoinHandle<()>>,
}

impl Burst {
    /// `phones` phones of one device, phone p first connecting to process p mod n, each
    /// holding every document of `docs` before the burst begins.
    async fn start(addrs: &[String], token: &str, phones: usize, docs: &[DocumentId]) -> Self {
        let (acked_tx, acked) = watch::channel(vec![0; phones]);
        let (stop, _) = watch::channel(false);
        let mut all = Vec::new();
        let mut editors = Vec::new();
        for p in 0..phones {
            let mut urls: Vec<String> = addrs.iter().map(|a| format!("ws://{a}/sync")).collect();
            let n = urls.len();
            urls.rotate_left(p % n);
            let first = urls.remove(0);
            let phone = Replica::in_memory().await;
            let handle = phone.connect(ConnectOptions {
                other_urls: urls,
                min_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                ..ConnectOptions::new(first).with_token(token)
            });
            for id in docs {
                phone.find(*id).await;
                phone
                    .wait_status(*id, WAIT, |s| s == Some(DocStatus::Acknowledged))
                    .await
                    .unwrap();
            }
            let (editing, docs, acked, stop) = (
                phone.clone(),
                docs.to_vec(),
                acked_tx.clone(),
                stop.subscribe(),
            );
            editors.push(tokio::spawn(async move {
                let mut round = 0;
                while !*stop.borrow() {
                    round += 1;
                    for id in &docs {
                        editing
                            .change(*id, |tx| tx.put(ROOT, format!("p{p}r{round}"), round))
                            .await
                            .unwrap();
                    }
                    for id in &docs {
                        editing
                            .wait_acknowledged(*id, WAIT)
                            .await
                            .unwrap_or_else(|_| {
                                panic!("phone {p}: round {round} not acknowledged")
                            });
                    }
                    acked.send_modify(|a| a[p] = round);
                }
            }));
            all.push((phone, handle));
        }
        Self {
            phones: all,
            acked,
            stop,
            editors,
        }
    }

    /// Waits until every phone had `rounds` more rounds acknowledged than now.
    async fn progress(&mut self, rounds: i64) {
        let now = self.acked.borrow().clone();
        let waited = tokio::time::timeout(
            WAIT,
            self.acked
                .wait_for(|a| a.iter().zip(&now).all(|(a, was)| *a >= was + rounds)),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        assert!(waited, "phones stalled at {:?}", self.acked.borrow());
    }

    /// Stops editing; every phone then holds every phone's acknowledged edits, which are
    /// returned (the last acknowledged round of each phone).
    async fn finish(self, docs: &[DocumentId]) -> Vec<i64> {
        self.stop.send_replace(true);
        for e in self.editors {
            e.await.expect("an editor failed");
        }
        let acked = self.acked.borrow().clone();
        for (p, (phone, _)) in self.phones.iter().enumerate() {
            for id in docs {
                phone
                    .wait_doc(*id, WAIT, |d| every_round(d, &acked))
                    .await
                    .unwrap_or_else(|_| panic!("phone {p} did not converge on {id}"));
            }
        }
        acked
    }
}

/// Whether the document holds every round each phone had acknowledged.
fn every_round(d: &automerge::Automerge, acked: &[i64]) -> bool {
    acked
        .iter()
        .enumerate()
        .all(|(p, last)| (1..=*last).all(|r| value(d, &format!("p{p}r{r}")) == Some(r)))
}

/// Processes on one database and what a burst edits: documents created through the first.
async fn burst_setup(
    db: &Postgres,
    processes: usize,
) -> (Vec<Server>, Vec<String>, String, Vec<DocumentId>) {
    let (servers, addrs): (Vec<Server>, Vec<String>) = (0..processes)
        .map(|_| serve(&db.url, "127.0.0.1:0"))
        .unzip();
    let token = support::enroll(&db.url);
    let creator = Replica::in_memory().await;
    let creating = creator
        .connect(ConnectOptions::new(format!("ws://{}/sync", addrs[0])).with_token(token.clone()));
    let mut docs = Vec::new();
    for _ in 0..2 {
        let id = creator.create(visit).await.unwrap();
        creator.wait_acknowledged(id, WAIT).await.unwrap();
        docs.push(id);
    }
    creating.stop().await;
    (servers, addrs, token, docs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_burst_loses_nothing_its_phones_saw_acknowledged() {
    let Some(db) = Postgres::create("a process killed mid-burst") else {
        return;
    };
    let (mut servers, addrs, token, docs) = burst_setup(&db, 3).await;
    let mut burst = Burst::start(&addrs, &token, 6, &docs).await;
    burst.progress(3).await;

    // The first process dies without warning in the middle of the burst; its phones move on
    // to the next process and keep editing.
    servers[0].kill();
    burst.progress(3).await;

    let acked = burst.finish(&docs).await;
    for s in &mut servers {
        s.kill();
    }
    stored(&db, &docs, |d| every_round(d, &acked)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_nothing() {
    let Some(db) = Postgres::create("a rolling restart") else {
        return;
    };
    let (servers, addrs, token, docs) = burst_setup(&db, 2).await;
    let [a, b]: [Server; 2] = servers.try_into().unwrap_or_else(|_| unreachable!());
    let mut burst = Burst::start(&addrs, &token, 4, &docs).await;
    burst.progress(3).await;

    // A stops as an operator stops it: its phones move to B.
    assert!(a.terminate().await.success(), "A exits 0 on SIGTERM");
    burst.progress(3).await;
    // A comes back on its address, then B stops: every phone moves back to A.
    let (a_again, _) = serve(&db.url, &addrs[0]);
    assert!(b.terminate().await.success(), "B exits 0 on SIGTERM");
    burst.progress(3).await;
    // B comes back too, and both serve.
    let (b_again, _) = serve(&db.url, &addrs[1]);
    burst.progress(2).await;

    let acked = burst.finish(&docs).await;
    drop((a_again, b_again));
    stored(&db, &docs, |d| every_round(d, &acked)).await;
}
