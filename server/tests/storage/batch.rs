//! A group commit of many documents' writes leaves the same rows as the same writes committed
//! one at a time: several changes of one document (the last state's rows, every spelling of the
//! name searchable), each kind of document, a document emptied, a compaction between two
//! changes of one document, and a document another process changed, which is left behind.

use automerge::AutoCommit;
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
use fieldsync_protocol::{BlobHash, StorageId};
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::activity::Scope;
use fieldsync_server::storage::beneficiaries::Query;
use fieldsync_server::storage::directory::AuditEntry;
use fieldsync_server::storage::{self, Storage, Write};

use super::{backends, covers, did, edit, finish};

const AREA: &str = "32.77.01.1001";

fn visit(name: &str, photo: u8) -> Projection {
    let mut v = examples::visit(&RegionCode::parse(AREA).unwrap(), "peksos-ani");
    v.beneficiary.name = name.into();
    Projection::of(Some(&FieldDocument::Visit(v)))
        .with_attachments(vec![BlobHash::from_bytes([photo; 32])])
}

fn referral(name: &str) -> Projection {
    let mut r = examples::referral(&RegionCode::parse(AREA).unwrap(), "peksos-ani");
    r.beneficiary.name = name.into();
    Projection::of(Some(&FieldDocument::Referral(r))).with_attachments(vec![
        BlobHash::from_bytes([7; 32]),
        BlobHash::from_bytes([8; 32]),
    ])
}

fn outreach() -> Projection {
    let o = examples::outreach(&RegionCode::parse(AREA).unwrap(), "peksos-ani");
    Projection::of(Some(&FieldDocument::Outreach(o)))
}

/// The writes of the scenario, for documents `base..base + 6`: appends, with a sync state,
/// an audit line and a compaction among them.
fn scenario(base: u8, docs: &mut [AutoCommit]) -> Vec<Write> {
    let d = |n: u8| did(base + n);
    let compact = Write::Compact {
        doc: d(4),
        snapshot: docs[4].save(),
        covers: covers(&mut docs[4]),
    };
    // Each change sets a key of its own: putting an unchanged value makes no change.
    let mut step = 0;
    let mut append = |n: u8, projection: Projection| {
        step += 1;
        Write::Append {
            doc: d(n),
            bytes: edit(&mut docs[n as usize], &format!("step{step}-"), 1),
            projection,
        }
    };
    let mut writes = vec![
        append(0, visit("Siti Nurhaliza", 1)),
        append(1, referral("Budi Santoso")),
        append(0, visit("Siti Aminah Putri", 2)),
        append(2, outreach()),
        append(3, referral("Dewi Lestari")),
        append(3, Projection::Nothing),
        append(5, visit("Rahmat Hidayat", 3)),
    ];
    writes.push(Write::SyncState {
        doc: d(0),
        storage: StorageId::parse("phone-store-1").unwrap(),
        state: vec![1, 2, 3],
    });
    writes.push(Write::Audit(AuditEntry {
        at: 1,
        device_id: "device-1".into(),
        user_id: "peksos-ani".into(),
        document_id: d(0).to_string(),
        action: "write".into(),
        detail: String::new(),
    }));
    writes.push(compact);
    writes.push(append(0, visit("Siti Amina", 4)));
    writes.push(append(4, visit("Wahyu Nugroho", 5)));
    writes
}

/// The query rows of documents `base..base + 6`, each document named by its offset.
async fn rows_of(storage: &dyn Storage, base: u8) -> Vec<String> {
    let mut rows: Vec<String> = storage
        .projection_rows()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| {
            (0..6).find_map(|n| {
                let id = did(base + n).to_string();
                row.contains(&id)
                    .then(|| row.replace(&id, &format!("doc{n}")))
            })
        })
        .collect();
    rows.sort();
    rows
}

/// The offsets of documents `base..base + 6` found by `words`.
async fn found(storage: &dyn Storage, base: u8, words: &[&str]) -> Vec<u8> {
    let scope = Scope {
        areas: vec![RegionCode::parse_prefix("32.77").unwrap()],
        kinds: vec![
            fieldsync_core::schema::DocKind::Visit,
            fieldsync_core::schema::DocKind::Referral,
        ],
    };
    let query = Query::Words(words.iter().map(|w| (*w).to_owned()).collect());
    let mut found: Vec<u8> = storage
        .find_records(&scope, &query, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| (0..6).find(|n| r.document_id == did(base + n).to_string()))
        .collect();
    found.sort();
    found
}

/// Stores the starting point of documents `base..base + 6`: document 4 has three changes
/// to compact, and document 5 has a change from another process, which `storage` lacks.
async fn prepare(storage: &dyn Storage, url: &str, base: u8) -> Vec<AutoCommit> {
    let mut docs: Vec<AutoCommit> = (0..6).map(|_| AutoCommit::new()).collect();
    for i in 0..3 {
        let bytes = edit(&mut docs[4], &format!("prepared{i}-"), 1);
        storage
            .write(&[Write::Append {
                doc: did(base + 4),
                bytes,
                projection: visit("Wahyu", 5),
            }])
            .await
            .unwrap();
    }
    storage.load(did(base + 4)).await.unwrap().unwrap();
    let other = storage::open(url).await.unwrap();
    let theirs = edit(&mut docs[5].fork(), "other", 1);
    other
        .write(&[Write::Append {
            doc: did(base + 5),
            bytes: theirs,
            projection: visit("Rahmat", 3),
        }])
        .await
        .unwrap();
    other.close().await.unwrap();
    docs
}

#[tokio::test]
async fn one_batch_leaves_the_rows_of_the_same_writes_one_at_a_time() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        let (batched, single) = (100, 120);

        let mut docs = prepare(s, &b.url, batched).await;
        let written = s.write(&scenario(batched, &mut docs)).await.unwrap();
        assert_eq!(written.behind, vec![did(batched + 5)], "{}", b.name);

        let mut docs = prepare(s, &b.url, single).await;
        let mut behind = Vec::new();
        for write in scenario(single, &mut docs) {
            behind.extend(s.write(&[write]).await.unwrap().behind);
        }
        assert_eq!(behind, vec![did(single + 5)], "{}", b.name);

        let rows = rows_of(s, batched).await;
        assert_eq!(rows, rows_of(s, single).await, "{}", b.name);
        // The last state's rows: the visit's newest name and photo, the emptied referral
        // gone with its events and attachments, and the compacted document's own row.
        let visit0: Vec<&String> = rows
            .iter()
            .filter(|r| r.starts_with("visits|doc0|"))
            .collect();
        assert_eq!(visit0.len(), 1, "{}: {rows:?}", b.name);
        assert!(visit0[0].contains("|Siti Amina|"), "{}: {visit0:?}", b.name);
        let photos: Vec<&String> = rows
            .iter()
            .filter(|r| r.starts_with("attachment_refs|doc0|"))
            .collect();
        assert_eq!(photos.len(), 1, "{}: {rows:?}", b.name);
        assert!(
            !rows.iter().any(|r| r.contains("|doc3|")),
            "{}: {rows:?}",
            b.name
        );
        assert!(rows.iter().any(|r| r.starts_with("referral_events|doc1|")));
        assert_eq!(
            rows.iter()
                .filter(|r| r.starts_with("attachment_refs|doc1|"))
                .count(),
            2,
            "{}: {rows:?}",
            b.name
        );
        assert!(rows.iter().any(|r| r.starts_with("outreach|doc2|")));
        assert!(rows.iter().any(|r| r.contains("|Wahyu Nugroho|")));
        // The document another process changed keeps that process's rows.
        assert!(
            rows.iter().any(|r| r.contains("|Rahmat|")),
            "{}: {rows:?}",
            b.name
        );

        // Every spelling the batch passed through still finds the visit.
        for words in [
            &["nurhaliza"][..],
            &["aminah", "putri"],
            &["siti"],
            &["budi"],
        ] {
            assert_eq!(
                found(s, batched, words).await,
                found(s, single, words).await,
                "{}: {words:?}",
                b.name
            );
        }
        assert_eq!(
            found(s, batched, &["nurhaliza"]).await,
            vec![0],
            "{}",
            b.name
        );
        assert_eq!(found(s, batched, &["putri"]).await, vec![0], "{}", b.name);
        assert_eq!(found(s, batched, &["amina"]).await, vec![0], "{}", b.name);
        assert_eq!(
            found(s, batched, &["dewi"]).await,
            Vec::<u8>::new(),
            "{}",
            b.name
        );
    }
    finish(backends).await;
}
