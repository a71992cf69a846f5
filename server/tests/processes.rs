//! Several `fieldsync serve` processes on one PostgreSQL database, as a deployment behind a
//! load balancer runs them: what any of them acknowledged is stored, whatever the others do.

#![cfg(unix)]

mod support;

use std::time::Duration;

use automerge::ROOT;
use automerge::transaction::Transactable;
use fieldsync_client::{ConnectOptions, DocStatus, Replica};
use support::{Postgres, WAIT, start, value, visit};

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
    let Some(db) = Postgres::create("phones spread over two processes") else {
        return;
    };
    const PHONES: usize = 4;
    const ROUNDS: i64 = 20;
    let (a, url_a) = start(&db.url);
    let (b, url_b) = start(&db.url);
    let mut servers = vec![a, b];

    // Step 1: three documents, created through A; four phones, two on each process, all
    // holding all three.
    let creator = Replica::in_memory().await;
    let _creating = creator.connect(ConnectOptions::new(url_a.clone()));
    let mut docs = Vec::new();
    for _ in 0..3 {
        let id = creator.create(visit).await.unwrap();
        creator.wait_acknowledged(id, WAIT).await.unwrap();
        docs.push(id);
    }
    let mut phones = Vec::new();
    for p in 0..PHONES {
        let phone = Replica::in_memory().await;
        let url = if p % 2 == 0 { &url_a } else { &url_b };
        let handle = phone.connect(ConnectOptions::new(url.clone()));
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

    // Step 3: every phone, on either process, ends with every phone's last edit.
    let all_done = |d: &automerge::Automerge| {
        (0..PHONES).all(|p| value(d, &format!("phone{p}")) == Some(ROUNDS))
    };
    for (phone, _) in &phones {
        for id in &docs {
            phone
                .wait_doc(*id, WAIT, all_done)
                .await
                .unwrap_or_else(|_| panic!("a phone did not converge on {id}"));
        }
    }

    // Step 4: both die; from a restarted process, all of it is stored.
    for s in &mut servers {
        s.kill();
    }
    let (_b, url) = start(&db.url);
    let reader = Replica::in_memory().await;
    let _reading = reader.connect(ConnectOptions::new(url));
    for id in &docs {
        reader.find(*id).await;
        reader
            .wait_doc(*id, WAIT, all_done)
            .await
            .unwrap_or_else(|_| panic!("{id} lost acknowledged edits"));
    }
}
