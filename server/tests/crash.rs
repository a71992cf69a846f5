//! SIGKILL the real `fieldsync` process in the middle of a burst of syncs: after a restart on
//! the same database, every change any phone saw acknowledged, or saw relayed from another
//! phone, is there.

#![cfg(unix)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use fieldsync_client::{ConnectOptions, DocStatus, Replica};
use fieldsync_protocol::DocumentId;

const WAIT: Duration = Duration::from_secs(15);

/// Starts the binary on a random port; returns the child and its sync URL.
fn start(db: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .env("NO_COLOR", "1")
        .env("FIELDSYNC_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the fieldsync binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr: String = addr.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(WAIT)
        .expect("the server reports its address");
    (child, format!("ws://{addr}/sync"))
}

fn value(doc: &automerge::Automerge, key: &str) -> Option<i64> {
    doc.get(ROOT, key)
        .ok()
        .flatten()
        .and_then(|(v, _)| v.as_scalar().and_then(|s| s.as_i64()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing_acknowledged_or_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let (mut server, url) = start(&db);

    // Step 1: four phones each own three documents; an observer follows all of them.
    let observer = Replica::in_memory().await;
    let _observing = observer.connect(ConnectOptions::new(url.clone()));
    let mut phones = Vec::new();
    let mut docs: Vec<(usize, DocumentId)> = Vec::new();
    for p in 0..4 {
        let phone = Replica::in_memory().await;
        for _ in 0..3 {
            let id = phone
                .create(|tx| tx.put(ROOT, "counter", 0).map(|_| ()))
                .await
                .unwrap();
            docs.push((p, id));
            observer.find(id).await;
        }
        let handle = phone.connect(ConnectOptions {
            max_backoff: Duration::from_millis(200),
            ..ConnectOptions::new(url.clone())
        });
        phones.push((phone, handle));
    }

    // Step 2: a burst of edits; note the highest counter each document had acknowledged,
    // and the highest the observer saw relayed.
    let mut acknowledged: HashMap<DocumentId, i64> = HashMap::new();
    let mut relayed: HashMap<DocumentId, i64> = HashMap::new();
    let kill_after = 150;
    for round in 1..=400i64 {
        for (p, id) in &docs {
            let phone = &phones[*p].0;
            phone
                .change(*id, |tx| tx.put(ROOT, "counter", round))
                .await
                .unwrap();
        }
        for (p, id) in &docs {
            let phone = &phones[*p].0;
            // Read what was written before asking for the status: an acknowledged status
            // covers at least this value.
            let written = phone
                .read(*id, |d| value(d, "counter"))
                .await
                .flatten()
                .unwrap();
            if phone.status(*id).await == Some(DocStatus::Acknowledged) {
                acknowledged.insert(*id, written);
            }
            if let Some(Some(seen)) = observer.read(*id, |d| value(d, "counter")).await {
                let e = relayed.entry(*id).or_default();
                *e = (*e).max(seen);
            }
        }
        if round == kill_after {
            // Step 3: SIGKILL, no warning, in the middle of the burst.
            server.kill().unwrap();
            server.wait().unwrap();
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        !acknowledged.is_empty(),
        "the burst got acknowledgements before the kill"
    );

    // Step 4: restart on the same database; a fresh phone reads every document.
    let (mut server, url) = start(&db);
    let reader = Replica::in_memory().await;
    let _reading = reader.connect(ConnectOptions::new(url));
    for (_, id) in &docs {
        reader.find(*id).await;
    }
    for (_, id) in &docs {
        let floor = acknowledged
            .get(id)
            .copied()
            .unwrap_or(0)
            .max(relayed.get(id).copied().unwrap_or(0));
        reader
            .wait_status(*id, WAIT, |s| s == Some(DocStatus::Acknowledged))
            .await
            .unwrap_or_else(|_| panic!("document {id} is on the restarted server"));
        let stored = reader
            .read(*id, |d| value(d, "counter"))
            .await
            .flatten()
            .unwrap();
        assert!(
            stored >= floor,
            "document {id}: acknowledged or relayed {floor}, but the server kept only {stored}"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
