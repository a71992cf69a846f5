//! Phones and the server converge, live and after being offline, and lose nothing.

mod common;

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use common::{TestServer, WAIT, metric, visit};
use fieldsync_client::{ConnectOptions, DocStatus, Replica, Store};
use proptest::prelude::*;

fn get_i64(doc: &automerge::Automerge, key: &str) -> Option<i64> {
    doc.get(ROOT, key)
        .ok()
        .flatten()
        .and_then(|(v, _)| v.as_scalar().and_then(|s| s.as_i64()))
}

#[tokio::test]
async fn a_change_reaches_a_second_phone_live() {
    let server = TestServer::start().await;
    let (a, _ha) = server.phone().await;
    let (b, _hb) = server.phone().await;

    // Step 1: phone a creates a visit; the server acknowledges it as stored.
    let id = a
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "nik", "3277014107900002").map(|_| ())
        })
        .await
        .unwrap();
    a.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 2: phone b asks for it by id and gets it.
    b.find(id).await;
    b.wait_doc(id, WAIT, |d| d.get(ROOT, "nik").unwrap().is_some())
        .await
        .unwrap();

    // Step 3: a new edit on a arrives at b without b asking again.
    a.change(id, |tx| tx.put(ROOT, "attendees", 12))
        .await
        .unwrap();
    b.wait_doc(id, WAIT, |d| get_i64(d, "attendees") == Some(12))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_document_is_unavailable() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let id = fieldsync_protocol::DocumentId::from_bytes([9; 16]);
    phone.find(id).await;
    phone
        .wait_status(id, WAIT, |s| s == Some(DocStatus::Unavailable))
        .await
        .unwrap();
}

#[tokio::test]
async fn three_phones_offline_converge_in_any_reconnect_order() {
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let server = TestServer::start().await;
        let phones = [
            Replica::in_memory().await,
            Replica::in_memory().await,
            Replica::in_memory().await,
        ];

        // Step 1: phone 0 creates a shared document and everyone fetches it.
        let shared = phones[0]
            .create(|tx| {
                visit(tx)?;
                tx.put_object(ROOT, "actions", ObjType::List).map(|_| ())
            })
            .await
            .unwrap();
        let mut handles = Vec::new();
        for p in &phones {
            p.find(shared).await;
            handles.push(p.connect(ConnectOptions::new(server.url())));
        }
        for p in &phones {
            p.wait_doc(shared, WAIT, |d| d.get(ROOT, "actions").unwrap().is_some())
                .await
                .unwrap();
        }
        // Step 2: all go offline and edit the shared document and documents of their own.
        for h in handles.drain(..) {
            h.stop().await;
        }
        let mut own = Vec::new();
        for (i, p) in phones.iter().enumerate() {
            p.change(shared, |tx| {
                let list = tx.get(ROOT, "actions")?.unwrap().1;
                tx.insert(&list, 0, format!("action from phone {i}"))?;
                tx.put(ROOT, format!("phone{i}"), i as i64)
            })
            .await
            .unwrap();
            own.push(
                p.create(|tx| {
                    visit(tx)?;
                    tx.put(ROOT, "owner", i as i64).map(|_| ())
                })
                .await
                .unwrap(),
            );
        }
        // Step 3: they come back one at a time, in this order.
        for &i in &order {
            let h = phones[i].connect(ConnectOptions::new(server.url()));
            phones[i].wait_acknowledged(shared, WAIT).await.unwrap();
            phones[i].wait_acknowledged(own[i], WAIT).await.unwrap();
            handles.push(h);
        }
        // Step 4: everyone ends with every edit, and with the same heads.
        for p in &phones {
            p.wait_doc(shared, WAIT, |d| {
                (0..3).all(|i| get_i64(d, &format!("phone{i}")) == Some(i))
            })
            .await
            .unwrap();
        }
        let heads = phones[0].heads(shared).await;
        for p in &phones {
            assert_eq!(p.heads(shared).await, heads, "order {order:?}");
            let len = p
                .read(shared, |d| {
                    d.length(&d.get(ROOT, "actions").unwrap().unwrap().1)
                })
                .await;
            assert_eq!(len, Some(3));
        }
        // Another phone, fresh, finds each phone's own document on the server.
        let (late, _h) = server.phone().await;
        for (i, id) in own.iter().enumerate() {
            late.find(*id).await;
            late.wait_doc(*id, WAIT, |d| get_i64(d, "owner") == Some(i as i64))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn documents_survive_a_restart_and_phones_resume_from_disk() {
    let server = TestServer::start().await;
    let phone_dir = tempfile::tempdir().unwrap();
    let phone = Replica::open(Store::Dir(phone_dir.path().to_owned()))
        .await
        .unwrap();
    let h = phone.connect(ConnectOptions::new(server.url()));
    let id = phone
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "n", 1).map(|_| ())
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    h.stop().await;

    // The server restarts on the same database; the phone restarts from its own disk.
    let (dir, config) = server.stop().await;
    let server = TestServer::start_in(dir, config).await;
    drop(phone);
    let phone = Replica::open(Store::Dir(phone_dir.path().to_owned()))
        .await
        .unwrap();
    assert_eq!(phone.read(id, |d| get_i64(d, "n")).await, Some(Some(1)));
    phone.change(id, |tx| tx.put(ROOT, "n", 2)).await.unwrap();
    let _h = phone.connect(ConnectOptions::new(server.url()));
    phone.wait_acknowledged(id, WAIT).await.unwrap();

    let (other, _h2) = server.phone().await;
    other.find(id).await;
    other
        .wait_doc(id, WAIT, |d| get_i64(d, "n") == Some(2))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tiny_cache_unloads_documents_and_still_serves_them() {
    let server = TestServer::start_with(|c| c.cache_bytes = 64 * 1024).await;
    let (phone, _h) = server.phone().await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = phone
            .create(|tx| {
                visit(tx)?;
                tx.put(ROOT, "i", i as i64).map(|_| ())
            })
            .await
            .unwrap();
        ids.push(id);
    }
    for id in &ids {
        phone.wait_acknowledged(*id, WAIT).await.unwrap();
    }
    // Edits to documents that were unloaded meanwhile still reach another phone live.
    let (other, _h2) = server.phone().await;
    for id in &ids {
        other.find(*id).await;
    }
    for (i, id) in ids.iter().enumerate() {
        other
            .wait_doc(*id, WAIT, |d| get_i64(d, "i") == Some(i as i64))
            .await
            .unwrap();
    }
    phone
        .change(ids[0], |tx| tx.put(ROOT, "i", 1000))
        .await
        .unwrap();
    other
        .wait_doc(ids[0], WAIT, |d| get_i64(d, "i") == Some(1000))
        .await
        .unwrap();
}

/// A storm larger than `max_loaded_docs`: documents wait for a place instead of loading
/// beyond the limit, and every one is still acknowledged, served and edited live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_beyond_the_loaded_limit_wait_for_a_place_and_are_all_served() {
    let server = TestServer::start_with(|c| c.max_loaded_docs = 2).await;
    let waits_before = metric(server.addr, "fieldsync_document_load_waits_total").await;
    // Three phones write eight visits each offline, then connect at once.
    let mut phones = Vec::new();
    let mut ids = Vec::new();
    for p in 0..3i64 {
        let phone = Replica::in_memory().await;
        for i in 0..8i64 {
            let n = p * 100 + i;
            let id = phone
                .create(|tx| {
                    visit(tx)?;
                    tx.put(ROOT, "i", n).map(|_| ())
                })
                .await
                .unwrap();
            ids.push((id, n));
        }
        phones.push(phone);
    }
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let addr = server.addr;
    let watcher = tokio::spawn(async move {
        let mut peak = 0.0f64;
        while !*stopped.borrow() {
            peak = peak.max(metric(addr, "fieldsync_documents_loaded").await);
            let _ = tokio::time::timeout(Duration::from_millis(5), stopped.changed()).await;
        }
        peak
    });
    let _handles: Vec<_> = phones
        .iter()
        .map(|p| p.connect(ConnectOptions::new(server.url())))
        .collect();
    for (p, phone) in phones.iter().enumerate() {
        for (id, _) in &ids[p * 8..p * 8 + 8] {
            phone.wait_acknowledged(*id, WAIT * 3).await.unwrap();
        }
    }
    let (other, _h) = server.phone().await;
    for (id, _) in &ids {
        other.find(*id).await;
    }
    for (id, n) in &ids {
        other
            .wait_doc(*id, WAIT, |d| get_i64(d, "i") == Some(*n))
            .await
            .unwrap();
    }
    let (first, _) = ids[0];
    phones[0]
        .change(first, |tx| tx.put(ROOT, "i", 1000))
        .await
        .unwrap();
    other
        .wait_doc(first, WAIT, |d| get_i64(d, "i") == Some(1000))
        .await
        .unwrap();
    stop.send(true).unwrap();
    let peak = watcher.await.unwrap();
    assert!(
        (1.0..=2.0).contains(&peak),
        "documents loaded at once: {peak}"
    );
    let waits = metric(server.addr, "fieldsync_document_load_waits_total").await;
    assert!(waits > waits_before, "no load waited for a place");
}

#[tokio::test]
async fn a_phone_keeps_editing_offline_while_the_server_is_down() {
    let server = TestServer::start().await;
    let phone = Replica::in_memory().await;
    let _h = phone.connect(ConnectOptions {
        max_backoff: Duration::from_millis(300),
        ..ConnectOptions::new(server.url())
    });
    let id = phone
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "n", 1).map(|_| ())
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let addr = server.addr;
    let (dir, config) = server.stop().await;
    phone.change(id, |tx| tx.put(ROOT, "n", 2)).await.unwrap();
    assert_eq!(phone.status(id).await, Some(DocStatus::Pending));
    // Same port, same database: the phone reconnects by itself and its edit is acknowledged.
    // The old listener is closed once `stop` returned; tokio binds with SO_REUSEADDR.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(fieldsync_server::serve(listener, config, async {
        let _ = stopped.await;
    }));
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    drop(dir);
}

#[derive(Debug, Clone)]
enum Op {
    Edit(usize, usize, i64),
    Online(usize),
    Offline(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..2usize, 0..1000i64).prop_map(|(p, d, v)| Op::Edit(p, d, v)),
        1 => (0..3usize).prop_map(Op::Online),
        1 => (0..3usize).prop_map(Op::Offline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    /// Random schedules over a real server: whatever happened, once everyone is online and
    /// acknowledged, every replica and the server agree.
    #[test]
    fn random_schedules_converge_over_the_network(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let server = TestServer::start().await;
            let phones = [Replica::in_memory().await, Replica::in_memory().await, Replica::in_memory().await];
            let docs = [
                phones[0].create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "doc", 0).map(|_| ())
        }).await.unwrap(),
                phones[0].create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "doc", 1).map(|_| ())
        }).await.unwrap(),
            ];
            for p in &phones[1..] {
                for d in docs { p.find(d).await; }
            }
            let mut handles: Vec<Option<fieldsync_client::SyncHandle>> = vec![None, None, None];
            handles[0] = Some(phones[0].connect(ConnectOptions::new(server.url())));
            for d in docs { phones[0].wait_acknowledged(d, WAIT).await.unwrap(); }
            for op in ops {
                match op {
                    Op::Edit(p, d, v) => {
                        if phones[p].read(docs[d], |_| ()).await.is_some() {
                            phones[p].change(docs[d], |tx| tx.put(ROOT, format!("p{p}"), v)).await.unwrap();
                        }
                    }
                    Op::Online(p) => if handles[p].is_none() {
                        handles[p] = Some(phones[p].connect(ConnectOptions::new(server.url())));
                    },
                    Op::Offline(p) => if let Some(h) = handles[p].take() { h.stop().await },
                }
            }
            for (p, h) in handles.iter_mut().enumerate() {
                if h.is_none() {
                    *h = Some(phones[p].connect(ConnectOptions::new(server.url())));
                }
            }
            for p in &phones {
                for d in docs {
                    if p.wait_status(d, WAIT, |s| s == Some(DocStatus::Acknowledged)).await.is_err() {
                        panic!("{} never acknowledged {d}: {:?}", p.peer_id(), p.status(d).await);
                    }
                }
            }
            // Everything is on the server now: a fresh phone fetches the merged result, and
            // every phone must reach exactly that.
            let (fresh, _hf) = server.phone().await;
            for d in docs {
                fresh.find(d).await;
                fresh.wait_acknowledged(d, WAIT).await.unwrap();
                let expected = fresh.heads(d).await;
                for p in &phones {
                    p.wait_doc(d, WAIT, |doc| Some(doc.get_heads()) == expected).await.unwrap();
                }
            }
        });
    }
}

#[tokio::test]
async fn the_postgres_backend_syncs_and_keeps_documents_across_restarts() {
    let Some(db) = common::PgDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    let (a, _ha) = server.phone().await;
    let (b, _hb) = server.phone().await;
    let id = a
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "n", 1).map(|_| ())
        })
        .await
        .unwrap();
    a.wait_acknowledged(id, WAIT).await.unwrap();
    b.find(id).await;
    a.change(id, |tx| tx.put(ROOT, "n", 2)).await.unwrap();
    b.wait_doc(id, WAIT, |d| get_i64(d, "n") == Some(2))
        .await
        .unwrap();
    drop((a, _ha, b, _hb));

    let (dir, config) = server.stop().await;
    let server = TestServer::start_in(dir, config).await;
    let (c, _hc) = server.phone().await;
    c.find(id).await;
    c.wait_doc(id, WAIT, |d| get_i64(d, "n") == Some(2))
        .await
        .unwrap();
    drop((c, _hc));
    server.stop().await;
    db.drop_database().await;
}
