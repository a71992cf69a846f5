//! SIGKILL the real `fieldsync` process in the middle of a burst of syncs: after a restart on
//! the same database, every change any phone saw acknowledged, or saw relayed from another
//! phone, is there.

#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::ROOT;
use automerge::transaction::Transactable;
use fieldsync_client::{ConnectOptions, DocStatus, Replica};
use fieldsync_protocol::DocumentId;
use support::{WAIT, cli, start, value, visit};

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
                .create(|tx| {
                    visit(tx)?;
                    tx.put(ROOT, "counter", 0).map(|_| ())
                })
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

    // Step 2: a burst: every document is edited over and over; after each edit its phone
    // waits (briefly) for the acknowledgement and notes the highest value acknowledged. The
    // observer notes the highest value it saw relayed.
    let acknowledged: Arc<Mutex<HashMap<DocumentId, i64>>> = Arc::default();
    let relayed: Arc<Mutex<HashMap<DocumentId, i64>>> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let mut editors = Vec::new();
    for (p, id) in docs.clone() {
        let phone = phones[p].0.clone();
        let (acknowledged, running) = (acknowledged.clone(), running.clone());
        editors.push(tokio::spawn(async move {
            let mut round = 0;
            while running.load(Ordering::Relaxed) {
                round += 1;
                phone
                    .change(id, |tx| tx.put(ROOT, "counter", round))
                    .await
                    .unwrap();
                if phone
                    .wait_acknowledged(id, Duration::from_millis(500))
                    .await
                    .is_ok()
                {
                    acknowledged.lock().unwrap().insert(id, round);
                }
            }
        }));
    }
    let watcher = {
        let (observer, relayed, running, docs) = (
            observer.clone(),
            relayed.clone(),
            running.clone(),
            docs.clone(),
        );
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                for (_, id) in &docs {
                    if let Some(Some(seen)) = observer.read(*id, |d| value(d, "counter")).await {
                        let mut relayed = relayed.lock().unwrap();
                        let e = relayed.entry(*id).or_default();
                        *e = (*e).max(seen);
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };

    // Step 3: SIGKILL, no warning, once the burst is well under way: every document has been
    // acknowledged several times, and edits are still in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let progress = acknowledged
            .lock()
            .unwrap()
            .values()
            .filter(|r| **r >= 5)
            .count();
        if progress == docs.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst got no acknowledgements"
        );
        tokio::task::yield_now().await;
    }
    server.kill();
    running.store(false, Ordering::Relaxed);
    for e in editors {
        e.await.unwrap();
    }
    watcher.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let relayed = relayed.lock().unwrap().clone();

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
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("term.db").display());
    let (server, url) = start(&db);
    let phone = Replica::in_memory().await;
    let handle = phone.connect(ConnectOptions::new(url));
    let id = phone
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "counter", 7).map(|_| ())
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();

    // SIGTERM with a phone still connected: the process ends by itself, successfully.
    let status = server.terminate().await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    handle.stop().await;

    // The query rows can be rebuilt from what was stored, with the command an operator runs.
    let out = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["reindex", "--json", "--database", &db])
        .output()
        .unwrap();
    assert!(out.status.success(), "reindex: {out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["documents"], 1, "{report}");
    assert_eq!(report["visits"], 1, "{report}");
    assert_eq!(report["unreadable"], 0, "{report}");
    // The audit log says who wrote the document, from which device.
    let audit = cli(&db, &["audit", "--document", &id.to_string()]);
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "write" && e["user"] == "peksos-ani"),
        "{audit}"
    );
    let device = entries[0]["device"].as_str().unwrap();
    let held = cli(&db, &["audit", "--held-by", device]);
    assert_eq!(held["records"][0]["nik"], "3277015204800002", "{held}");

    let (_server, url) = start(&db);
    let reader = Replica::in_memory().await;
    let _h = reader.connect(ConnectOptions::new(url));
    reader.find(id).await;
    reader
        .wait_doc(id, WAIT, |d| value(d, "counter") == Some(7))
        .await
        .unwrap();
}
