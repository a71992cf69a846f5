//! One conformance suite for every storage backend. SQLite always runs; PostgreSQL runs when
//! FIELDSYNC_TEST_POSTGRES_URL names a server (each test gets a fresh database there) and is
//! reported as skipped otherwise.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use fieldsync_protocol::{DocumentId, StorageId};
use fieldsync_server::storage::{self, Storage, Write};
use fieldsync_server::writer::Writer;
use sqlx::Connection;

struct Backend {
    name: &'static str,
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = storage::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let mut out = vec![Backend {
        name: "sqlite",
        storage: sqlite,
        _dir: Some(dir),
        drop_db: None,
    }];
    match std::env::var("FIELDSYNC_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let db = format!("fieldsync_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
            let storage = storage::open(&format!("{base}/{db}")).await.unwrap();
            out.push(Backend {
                name: "postgres",
                storage,
                _dir: None,
                drop_db: Some((admin_url, db)),
            });
        }
        _ => eprintln!(
            "SKIPPED: PostgreSQL conformance (set FIELDSYNC_TEST_POSTGRES_URL=postgres://USER@HOST/DB to run it)"
        ),
    }
    out
}

async fn finish(backends: Vec<Backend>) {
    for b in backends {
        b.storage.close().await.unwrap();
        if let Some((admin_url, db)) = b.drop_db {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {db} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }
}

fn did(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

/// A document with `n` changes, and the bytes of each change.
fn doc_with_changes(n: i64) -> (AutoCommit, Vec<Vec<u8>>) {
    let mut doc = AutoCommit::new();
    let mut chunks = Vec::new();
    for i in 0..n {
        let heads = doc.get_heads();
        doc.put(ROOT, format!("k{i}"), i).unwrap();
        chunks.push(doc.save_after(&heads));
    }
    (doc, chunks)
}

#[tokio::test]
async fn unknown_documents_load_as_none() {
    let backends = backends().await;
    for b in &backends {
        assert!(
            b.storage.load(did(1)).await.unwrap().is_none(),
            "{}",
            b.name
        );
    }
    finish(backends).await;
}

#[tokio::test]
async fn appended_chunks_load_back_as_the_same_document() {
    let backends = backends().await;
    for b in &backends {
        let (mut doc, chunks) = doc_with_changes(5);
        let batch: Vec<_> = chunks
            .into_iter()
            .map(|bytes| Write::Append { doc: did(2), bytes })
            .collect();
        b.storage.write(&batch).await.unwrap();
        let stored = b.storage.load(did(2)).await.unwrap().unwrap();
        assert_eq!(stored.chunks, 5, "{}", b.name);
        let mut loaded = AutoCommit::load(&stored.bytes).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads(), "{}", b.name);
        assert_eq!(
            b.storage.documents().await.unwrap(),
            vec![did(2)],
            "{}",
            b.name
        );
    }
    finish(backends).await;
}

#[tokio::test]
async fn compaction_replaces_every_chunk_by_one_snapshot() {
    let backends = backends().await;
    for b in &backends {
        let (mut doc, chunks) = doc_with_changes(40);
        for bytes in chunks {
            b.storage
                .write(&[Write::Append { doc: did(3), bytes }])
                .await
                .unwrap();
        }
        b.storage
            .write(&[Write::Compact {
                doc: did(3),
                snapshot: doc.save(),
            }])
            .await
            .unwrap();
        let stored = b.storage.load(did(3)).await.unwrap().unwrap();
        assert_eq!(stored.chunks, 1, "{}", b.name);
        let mut loaded = AutoCommit::load(&stored.bytes).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads(), "{}", b.name);
        assert_eq!(
            loaded.get(ROOT, "k39").unwrap().unwrap().0.to_string(),
            "39"
        );
    }
    finish(backends).await;
}

#[tokio::test]
async fn sync_states_are_kept_per_document_and_storage_id() {
    let backends = backends().await;
    let s1 = StorageId::parse("phone-store-1").unwrap();
    let s2 = StorageId::parse("phone-store-2").unwrap();
    for b in &backends {
        let (_, chunks) = doc_with_changes(1);
        b.storage
            .write(&[
                Write::Append {
                    doc: did(4),
                    bytes: chunks[0].clone(),
                },
                Write::SyncState {
                    doc: did(4),
                    storage: s1.clone(),
                    state: vec![1],
                },
                Write::SyncState {
                    doc: did(4),
                    storage: s2.clone(),
                    state: vec![2],
                },
                Write::SyncState {
                    doc: did(4),
                    storage: s1.clone(),
                    state: vec![3],
                },
            ])
            .await
            .unwrap();
        let stored = b.storage.load(did(4)).await.unwrap().unwrap();
        assert_eq!(stored.sync_states.get(&s1), Some(&vec![3]), "{}", b.name);
        assert_eq!(stored.sync_states.get(&s2), Some(&vec![2]), "{}", b.name);
    }
    finish(backends).await;
}

#[tokio::test]
async fn server_meta_is_created_once_and_stays() {
    let backends = backends().await;
    for b in &backends {
        let first = b.storage.meta("storage_id", "a").await.unwrap();
        let second = b.storage.meta("storage_id", "b").await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("a", "a"), "{}", b.name);
        b.storage.ping().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn many_concurrent_writers_through_group_commit_all_land() {
    let backends = backends().await;
    for b in &backends {
        let (writer, task) = Writer::spawn(b.storage.clone());
        let mut handles = Vec::new();
        for n in 0..50u8 {
            let writer = writer.clone();
            handles.push(tokio::spawn(async move {
                let (_, chunks) = doc_with_changes(3);
                for bytes in chunks {
                    writer
                        .write(Write::Append {
                            doc: did(100 + n),
                            bytes,
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        drop(writer);
        task.await.unwrap();
        assert_eq!(b.storage.documents().await.unwrap().len(), 50, "{}", b.name);
        for n in 0..50u8 {
            let stored = b.storage.load(did(100 + n)).await.unwrap().unwrap();
            assert_eq!(stored.chunks, 3, "{}", b.name);
        }
    }
    finish(backends).await;
}
