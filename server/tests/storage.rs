//! One conformance suite for every storage backend. SQLite always runs; PostgreSQL runs when
//! FIELDSYNC_TEST_POSTGRES_URL names a server (each test gets a fresh database there) and is
//! reported as skipped otherwise.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ROOT, ReadDoc};
use fieldsync_core::schema::{
    DocKind, Envelope, Event, EventKind, FieldDocument, Outreach, Program, RegionCode,
};
use fieldsync_protocol::{DocumentId, StorageId};
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::{self, Storage, Write};
use fieldsync_server::writer::Writer;
use sqlx::Connection;

#[path = "storage/review.rs"]
mod review;

#[path = "../../tests/tests/common/skip.rs"]
mod skip;

#[path = "storage/areas.rs"]
mod areas;
#[path = "storage/batch.rs"]
mod batch;
#[path = "storage/beneficiaries.rs"]
mod beneficiaries;
#[path = "storage/blobs.rs"]
mod blobs;

#[path = "storage/workbench.rs"]
mod workbench;

struct Backend {
    name: &'static str,
    /// Where it is: a second `storage::open` of it is a second server process.
    url: String,
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let sqlite = storage::open(&url).await.unwrap();
    let mut out = vec![Backend {
        name: "sqlite",
        url,
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
            let url = format!("{base}/{db}");
            let storage = storage::open(&url).await.unwrap();
            out.push(Backend {
                name: "postgres",
                url,
                storage,
                _dir: None,
                drop_db: Some((admin_url, db)),
            });
        }
        _ => skip::skipped(
            "PostgreSQL conformance (set FIELDSYNC_TEST_POSTGRES_URL=postgres://USER@HOST/DB)",
            "PostgreSQL not configured",
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

/// The hashes of every change of a document: what a snapshot of it covers.
fn covers(doc: &mut AutoCommit) -> Arc<HashSet<ChangeHash>> {
    Arc::new(
        doc.document()
            .get_changes_meta(&[])
            .into_iter()
            .map(|c| c.hash)
            .collect(),
    )
}

/// Makes `n` changes to `doc`; returns them as one chunk row, as an actor appends them.
fn edit(doc: &mut AutoCommit, key: &str, n: i64) -> Vec<u8> {
    let heads = doc.get_heads();
    for i in 0..n {
        doc.put(ROOT, format!("{key}{i}"), i).unwrap();
        doc.commit();
    }
    doc.save_after(&heads)
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
async fn actor_owners_answer_for_many_actor_ids_in_one_call() {
    let backends = backends().await;
    for b in &backends {
        let bound: Vec<String> = (0..131).map(|i| format!("{i:032x}")).collect();
        b.storage
            .write(&[
                Write::BindActors {
                    device: "phone-a".into(),
                    actors: bound[..70].to_vec(),
                },
                Write::BindActors {
                    device: "phone-b".into(),
                    actors: bound[70..].to_vec(),
                },
            ])
            .await
            .unwrap();
        // A later claim of a bound actor id changes nothing.
        b.storage
            .write(&[Write::BindActors {
                device: "phone-c".into(),
                actors: vec![bound[0].clone()],
            }])
            .await
            .unwrap();
        // 138 ids: parts of 100, 25, 5, 5, 1, 1 and 1.
        let mut asked = bound.clone();
        asked.extend((0..7).map(|i| format!("unbound{i}")));
        let mut found = b.storage.actor_owners(&asked).await.unwrap();
        found.sort();
        let want: Vec<(String, String)> = bound
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), if i < 70 { "phone-a" } else { "phone-b" }.into()))
            .collect();
        assert_eq!(found, want, "{}", b.name);
        assert!(b.storage.actor_owners(&[]).await.unwrap().is_empty());
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
            .map(|bytes| Write::Append {
                doc: did(2),
                bytes,
                projection: Projection::Nothing,
            })
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
                .write(&[Write::Append {
                    doc: did(3),
                    bytes,
                    projection: Projection::Nothing,
                }])
                .await
                .unwrap();
        }
        b.storage
            .write(&[Write::Compact {
                doc: did(3),
                snapshot: doc.save(),
                covers: covers(&mut doc),
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
                    projection: Projection::Nothing,
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
async fn many_documents_load_at_once_as_each_loads_alone() {
    let backends = backends().await;
    let phone = StorageId::parse("phone-store-1").unwrap();
    for b in &backends {
        // 127 documents of one to three chunk rows, every third with a sync state, written
        // interleaved so that their chunk ids are not in document order.
        let stored: Vec<DocumentId> = (0..127u8).map(|n| did(n.wrapping_add(100))).collect();
        let mut docs: Vec<AutoCommit> = stored.iter().map(|_| AutoCommit::new()).collect();
        for round in 0..3 {
            let mut batch = Vec::new();
            for (i, doc) in docs.iter_mut().enumerate() {
                if round > i % 3 {
                    continue;
                }
                batch.push(Write::Append {
                    doc: stored[i],
                    bytes: edit(doc, &format!("r{round}-"), 2),
                    projection: Projection::Nothing,
                });
                if i % 3 == 0 && round == 0 {
                    batch.push(Write::SyncState {
                        doc: stored[i],
                        storage: phone.clone(),
                        state: vec![i as u8],
                    });
                }
            }
            b.storage.write(&batch).await.unwrap();
        }
        // Asked with documents never stored among them, one of them twice.
        let mut asked = stored.clone();
        asked.insert(5, did(1));
        asked.insert(50, did(2));
        asked.push(did(1));
        let loaded = b.storage.load_many(&asked).await.unwrap();
        assert_eq!(loaded.len(), asked.len(), "{}", b.name);
        for (doc, many) in asked.iter().zip(&loaded) {
            let alone = b.storage.load(*doc).await.unwrap();
            match (many, alone) {
                (None, None) => assert!(!stored.contains(doc), "{}: {doc} lost", b.name),
                (Some(many), Some(alone)) => {
                    assert_eq!(many.bytes, alone.bytes, "{}: {doc}", b.name);
                    assert_eq!(many.chunks, alone.chunks, "{}: {doc}", b.name);
                    assert_eq!(many.last_chunk, alone.last_chunk, "{}: {doc}", b.name);
                    assert_eq!(many.sync_states, alone.sync_states, "{}: {doc}", b.name);
                }
                (many, alone) => panic!("{}: {doc}: {many:?} against {alone:?}", b.name),
            }
        }
        let with_state = loaded
            .iter()
            .flatten()
            .filter(|s| !s.sync_states.is_empty());
        assert_eq!(with_state.count(), 43, "{}", b.name);
        assert!(b.storage.load_many(&[]).await.unwrap().is_empty());
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
                            projection: Projection::Nothing,
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

fn outreach(attendees: u64) -> Projection {
    Projection::of(Some(&FieldDocument::Outreach(Outreach {
        envelope: Envelope {
            kind: DocKind::Outreach,
            schema: 1,
            area: RegionCode::parse("32.77.01.1001").unwrap(),
            created_by: "peksos-ani".into(),
            created_at: "2026-11-20T08:00:00Z".into(),
        },
        topic: "Pencegahan stunting".into(),
        held_at: "2026-11-19T14:00:00Z".into(),
        place: "Balai RW 05".into(),
        attendees,
        notes: "Dihadiri kader posyandu.".into(),
    })))
}

#[tokio::test]
async fn query_rows_follow_the_newest_change_and_a_rebuild_never_goes_back() {
    let backends = backends().await;
    for b in &backends {
        let (_, chunks) = doc_with_changes(2);
        let append = |bytes: &Vec<u8>, projection| Write::Append {
            doc: did(5),
            bytes: bytes.clone(),
            projection,
        };
        b.storage
            .write(&[append(&chunks[0], outreach(10))])
            .await
            .unwrap();
        let first = b.storage.load(did(5)).await.unwrap().unwrap().last_chunk;
        b.storage
            .write(&[append(&chunks[1], outreach(20))])
            .await
            .unwrap();
        let rows = b.storage.projection_rows().await.unwrap();
        assert_eq!(rows.len(), 1, "{}: {rows:?}", b.name);
        assert!(rows[0].starts_with("outreach|"), "{}", b.name);
        assert!(rows[0].contains("|20|"), "{}: {rows:?}", b.name);
        // A rebuild computed from the first chunk is older than the rows: skipped.
        b.storage
            .write(&[Write::Project {
                doc: did(5),
                source: first,
                projection: outreach(99),
            }])
            .await
            .unwrap();
        assert_eq!(
            b.storage.projection_rows().await.unwrap(),
            rows,
            "{}",
            b.name
        );
        // One computed from the newest chunk replaces them, even with no rows at all.
        let last = b.storage.load(did(5)).await.unwrap().unwrap().last_chunk;
        b.storage
            .write(&[Write::Project {
                doc: did(5),
                source: last,
                projection: Projection::Nothing,
            }])
            .await
            .unwrap();
        assert!(
            b.storage.projection_rows().await.unwrap().is_empty(),
            "{}",
            b.name
        );
    }
    finish(backends).await;
}

#[tokio::test]
async fn referral_rows_carry_the_derived_status_and_every_event() {
    let backends = backends().await;
    let event = |kind, by: &str| Event {
        kind,
        at: "2026-11-21T10:00:00Z".into(),
        by: by.into(),
        note: Some("catatan 'kutip' | pipa".into()),
        id: None,
    };
    let referral = fieldsync_core::schema::Referral {
        envelope: Envelope {
            kind: DocKind::Referral,
            schema: 1,
            area: RegionCode::parse("32.77.01.1001").unwrap(),
            created_by: "peksos-ani".into(),
            created_at: "2026-11-20T08:00:00Z".into(),
        },
        beneficiary: fieldsync_core::schema::Beneficiary {
            nik: fieldsync_core::schema::Nik::parse("3277015204800002").unwrap(),
            kk: None,
            name: "Siti O'Neil".into(),
            address: None,
            ppks: vec![fieldsync_core::schema::PpksCategory::FakirMiskin],
        },
        program: Program::Gakinda,
        reason: "Tidak mampu.".into(),
        documents: Default::default(),
        consent: fieldsync_core::schema::Consent {
            given: true,
            at: "2026-11-20T09:40:00Z".into(),
            by: "Siti".into(),
        },
        visit: None,
        events: vec![
            event(EventKind::Submitted, "peksos-ani"),
            event(EventKind::Approved, "supervisor-budi"),
            event(EventKind::Rejected, "supervisor-citra"),
        ],
        attachments: Vec::new(),
    };
    let projection = Projection::of(Some(&FieldDocument::Referral(referral)));
    for b in &backends {
        let (_, chunks) = doc_with_changes(1);
        b.storage
            .write(&[Write::Append {
                doc: did(6),
                bytes: chunks[0].clone(),
                projection: projection.clone(),
            }])
            .await
            .unwrap();
        let rows = b.storage.projection_rows().await.unwrap();
        let referral: Vec<&String> = rows
            .iter()
            .filter(|r| r.starts_with("referrals|"))
            .collect();
        assert_eq!(referral.len(), 1, "{}: {rows:?}", b.name);
        assert!(
            referral[0].contains("|gakinda|approved|"),
            "{}: {referral:?}",
            b.name
        );
        let events = rows
            .iter()
            .filter(|r| r.starts_with("referral_events|"))
            .count();
        assert_eq!(events, 3, "{}: {rows:?}", b.name);
        assert!(rows.iter().any(|r| r.contains("|rejected|")), "{}", b.name);
    }
    finish(backends).await;
}

async fn holders(storage: &dyn Storage) -> Vec<String> {
    let users = storage.device_holders().await.unwrap();
    users.into_iter().map(|u| u.id).collect()
}

async fn add_person(
    storage: &dyn Storage,
    id: &str,
    role: fieldsync_core::schema::Role,
    area: &str,
) {
    fieldsync_server::admin::add_user(
        storage,
        Some(id.into()),
        id,
        role,
        vec![RegionCode::parse_prefix(area).unwrap()],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn web_sign_in_lockout_sessions_and_api_tokens() {
    use fieldsync_core::schema::Role;
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        add_person(s, "sri", Role::Supervisor, "32.77").await;
        assert!(s.credentials("sri").await.unwrap().is_none(), "{}", b.name);
        assert!(s.set_password("sri", "$argon2id$fake").await.unwrap());
        assert!(!s.set_password("nobody", "$argon2id$fake").await.unwrap());
        let c = s.credentials("sri").await.unwrap().unwrap();
        assert_eq!((c.failures, c.locked_until), (0, None), "{}", b.name);

        // Three failures lock at the third, until now + 1000.
        for n in 1..=3 {
            assert_eq!(s.sign_in_failed("sri", 10, 3, 1000).await.unwrap(), n);
        }
        assert_eq!(
            s.credentials("sri").await.unwrap().unwrap().locked_until,
            Some(1010)
        );
        s.sign_in_succeeded("sri").await.unwrap();
        let c = s.credentials("sri").await.unwrap().unwrap();
        assert_eq!((c.failures, c.locked_until), (0, None), "{}", b.name);

        s.create_session("h1", "sri", "csrf1", 100, 200)
            .await
            .unwrap();
        let found = s.session("h1", 150).await.unwrap().unwrap();
        assert_eq!(
            (found.user.id.as_str(), found.csrf_token.as_str()),
            ("sri", "csrf1")
        );
        assert!(s.session("h1", 200).await.unwrap().is_none(), "expired");
        assert!(s.session("h2", 150).await.unwrap().is_none());
        // A new password ends every session.
        s.create_session("h3", "sri", "csrf3", 100, 10_000)
            .await
            .unwrap();
        s.set_password("sri", "$argon2id$other").await.unwrap();
        assert!(s.session("h3", 150).await.unwrap().is_none(), "{}", b.name);
        s.create_session("h4", "sri", "csrf4", 100, 10_000)
            .await
            .unwrap();
        s.delete_session("h4").await.unwrap();
        assert!(s.session("h4", 150).await.unwrap().is_none());

        let token = fieldsync_server::storage::web::ApiToken {
            id: "api_1".into(),
            user_id: "sri".into(),
            label: "laporan".into(),
            created_at: 0,
            expires_at: Some(500),
        };
        assert!(s.add_api_token(&token, "th").await.unwrap());
        assert_eq!(
            s.api_token_user("th", 100).await.unwrap().unwrap().id,
            "sri"
        );
        assert!(
            s.api_token_user("th", 500).await.unwrap().is_none(),
            "expired"
        );
        assert!(s.revoke_api_token("api_1").await.unwrap());
        assert!(!s.revoke_api_token("api_1").await.unwrap());
        assert!(
            s.api_token_user("th", 100).await.unwrap().is_none(),
            "revoked"
        );

        // A disabled user's session and tokens stop at once.
        s.create_session("h5", "sri", "csrf5", 100, 10_000)
            .await
            .unwrap();
        assert!(s.disable_user("sri").await.unwrap());
        assert!(s.session("h5", 150).await.unwrap().is_none(), "{}", b.name);
    }
    finish(backends).await;
}

#[tokio::test]
async fn caseloads_list_users_move_them_and_find_documents_by_area() {
    use fieldsync_core::schema::Role;
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        add_person(s, "ani", Role::Peksos, "32.77.01.1001").await;
        add_person(s, "budi", Role::Peksos, "32.77.01.1002").await;
        let users: Vec<String> = s.users().await.unwrap().into_iter().map(|u| u.id).collect();
        assert_eq!(users, ["ani", "budi"], "{}", b.name);

        // Index documents are kept for users with a device that is not revoked.
        assert!(holders(s).await.is_empty(), "{}", b.name);
        let (device, _) = fieldsync_server::admin::enroll_device(s, "budi", None, None)
            .await
            .unwrap();
        fieldsync_server::admin::enroll_device(s, "ani", None, None)
            .await
            .unwrap();
        assert_eq!(holders(s).await, ["ani", "budi"], "{}", b.name);
        assert!(s.revoke_device(&device.id).await.unwrap());
        assert_eq!(holders(s).await, ["ani"], "{}", b.name);
        add_person(s, "citra", Role::Peksos, "32.77.01.1002").await;
        fieldsync_server::admin::enroll_device(s, "citra", None, None)
            .await
            .unwrap();
        assert!(s.disable_user("citra").await.unwrap());
        assert_eq!(holders(s).await, ["ani"], "{}", b.name);
        let kelurahan_b = RegionCode::parse_prefix("32.77.01.1002").unwrap();
        assert!(
            s.set_areas("ani", std::slice::from_ref(&kelurahan_b))
                .await
                .unwrap()
        );
        assert_eq!(
            s.user("ani").await.unwrap().unwrap().areas,
            vec![kelurahan_b.clone()]
        );
        let events = s.security_events(0).await.unwrap();
        assert_eq!(events.last().unwrap().kind, "user-areas-changed");
        assert_eq!(events.last().unwrap().subject, "ani");
        assert!(
            !s.set_areas("nobody", std::slice::from_ref(&kelurahan_b))
                .await
                .unwrap()
        );

        // Documents by area prefix, not by text prefix: 32.77.01.1002 is not under 32.77.01.100.
        let write = |n: u8, area: &str| {
            let mut o = outreach(1);
            if let Projection::Outreach(row) = &mut o {
                row.common.area = area.into();
            }
            Write::Append {
                doc: did(n),
                bytes: doc_with_changes(1).1.concat(),
                projection: o,
            }
        };
        s.write(&[
            write(1, "32.77.01.1002"),
            write(2, "32.77.02.2001"),
            write(3, "32.77.01.1002"),
        ])
        .await
        .unwrap();
        let found = s
            .placed_in(
                std::slice::from_ref(&kelurahan_b),
                &[DocKind::Outreach, DocKind::Visit],
            )
            .await
            .unwrap();
        let mut ids: Vec<String> = found.iter().map(|p| p.document_id.clone()).collect();
        ids.sort();
        let mut want = [did(1).to_string(), did(3).to_string()];
        want.sort();
        assert_eq!(ids, want, "{}", b.name);
        assert!(found.iter().all(|p| p.kind == DocKind::Outreach));
        let city = RegionCode::parse_prefix("32.77").unwrap();
        assert_eq!(
            s.placed_in(std::slice::from_ref(&city), &[DocKind::Outreach])
                .await
                .unwrap()
                .len(),
            3
        );
        assert!(
            s.placed_in(&[kelurahan_b], &[DocKind::Referral])
                .await
                .unwrap()
                .is_empty()
        );
        // Every kind at once, in one statement: each row keeps its own kind.
        let all = [DocKind::Visit, DocKind::Referral, DocKind::Outreach];
        let found = s
            .placed_in(std::slice::from_ref(&city), &all)
            .await
            .unwrap();
        assert_eq!(found.len(), 3, "{}", b.name);
        assert!(
            found.iter().all(|p| p.kind == DocKind::Outreach),
            "{}",
            b.name
        );
        assert!(s.placed_in(&[city], &[]).await.unwrap().is_empty());
    }
    finish(backends).await;
}

// Several server processes on one database: each test opens the database a second time, as
// a second `fieldsync serve` would.

#[tokio::test]
async fn compaction_keeps_the_chunks_another_process_stored() {
    let backends = backends().await;
    for b in &backends {
        let (a, doc_id) = (&b.storage, did(20));
        let other = storage::open(&b.url).await.unwrap();
        // Step 1: process A stores a document and holds it loaded.
        let mut ours = AutoCommit::new();
        let first = edit(&mut ours, "a", 3);
        append(a, doc_id, first).await;
        a.load(doc_id).await.unwrap().unwrap();
        // Step 2: process B loads it and stores one change of its own.
        let stored = other.load(doc_id).await.unwrap().unwrap();
        let mut theirs = AutoCommit::load(&stored.bytes).unwrap();
        let change = edit(&mut theirs, "b", 1);
        append(&other, doc_id, change).await;
        // Step 3: A, which never loaded B's change, goes on and compacts what it holds.
        let more = edit(&mut ours, "c", 2);
        append(a, doc_id, more).await;
        a.write(&[Write::Compact {
            doc: doc_id,
            snapshot: ours.save(),
            covers: covers(&mut ours),
        }])
        .await
        .unwrap();
        // Step 4: everything either process stored is there, and A's chunks are gone.
        let stored = other.read(doc_id).await.unwrap().unwrap();
        assert_eq!(stored.chunks, 2, "{}: A's snapshot and B's change", b.name);
        let loaded = AutoCommit::load(&stored.bytes).unwrap();
        for key in ["a0", "a2", "b0", "c1"] {
            assert!(
                loaded.get(ROOT, key).unwrap().is_some(),
                "{}: {key} lost",
                b.name
            );
        }
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn two_processes_compacting_at_once_lose_nothing() {
    let backends = backends().await;
    for b in &backends {
        let doc_id = did(21);
        let other = storage::open(&b.url).await.unwrap();
        let mut base = AutoCommit::new();
        let first = edit(&mut base, "base", 2);
        append(&b.storage, doc_id, first).await;
        let (mut ours, mut theirs) = (base.fork(), base.fork());
        b.storage.load(doc_id).await.unwrap();
        other.load(doc_id).await.unwrap();
        let (a_change, b_change) = (edit(&mut ours, "a", 1), edit(&mut theirs, "b", 1));
        append(&b.storage, doc_id, a_change).await;
        append(&other, doc_id, b_change).await;
        let compact = |doc: &mut AutoCommit| Write::Compact {
            doc: doc_id,
            snapshot: doc.save(),
            covers: covers(doc),
        };
        let (x, y) = ([compact(&mut ours)], [compact(&mut theirs)]);
        let (r1, r2) = tokio::join!(b.storage.write(&x), other.write(&y));
        r1.unwrap();
        r2.unwrap();
        let stored = b.storage.read(doc_id).await.unwrap().unwrap();
        let loaded = AutoCommit::load(&stored.bytes).unwrap();
        for key in ["base1", "a0", "b0"] {
            assert!(
                loaded.get(ROOT, key).unwrap().is_some(),
                "{}: {key} lost",
                b.name
            );
        }
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn query_rows_come_only_from_a_state_holding_every_stored_chunk() {
    let backends = backends().await;
    for b in &backends {
        let doc_id = did(22);
        let other = storage::open(&b.url).await.unwrap();
        // Step 1: an outreach note with 10 attendees, loaded by both processes.
        let mut ours = AutoCommit::new();
        outreach_note(10).write(&mut ours).unwrap();
        let created = ours.save_after(&[]);
        b.storage
            .write(&[Write::Append {
                doc: doc_id,
                bytes: created,
                projection: outreach(10),
            }])
            .await
            .unwrap();
        b.storage.load(doc_id).await.unwrap();
        let stored = other.load(doc_id).await.unwrap().unwrap();
        let mut theirs = AutoCommit::load(&stored.bytes).unwrap();
        // Step 2: B sets 20 attendees; its rows say so.
        let heads = theirs.get_heads();
        theirs.put(ROOT, "attendees", 20).unwrap();
        let written = other
            .write(&[Write::Append {
                doc: doc_id,
                bytes: theirs.save_after(&heads),
                projection: outreach(20),
            }])
            .await
            .unwrap();
        assert!(written.behind.is_empty(), "{}", b.name);
        // Step 3: A, which lacks B's change, changes the place. Its state is not the
        // document's: the change is stored, the rows stay B's, and A is told.
        let heads = ours.get_heads();
        ours.put(ROOT, "place", "Balai RW 06").unwrap();
        let mut a_rows = outreach(10);
        if let Projection::Outreach(row) = &mut a_rows {
            row.place = "Balai RW 06".into();
        }
        let written = b
            .storage
            .write(&[Write::Append {
                doc: doc_id,
                bytes: ours.save_after(&heads),
                projection: a_rows,
            }])
            .await
            .unwrap();
        assert_eq!(written.behind, vec![doc_id], "{}", b.name);
        let rows = b.storage.projection_rows().await.unwrap();
        assert!(rows[0].contains("|20|"), "{}: {rows:?}", b.name);
        // Step 4: the rebuild the writer starts makes the rows the merged document's.
        fieldsync_server::reindex::rebuild(b.storage.as_ref(), doc_id)
            .await
            .unwrap();
        let rows = b.storage.projection_rows().await.unwrap();
        assert!(
            rows[0].contains("|20|") && rows[0].contains("Balai RW 06"),
            "{}: {rows:?}",
            b.name
        );
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn the_writer_rebuilds_rows_a_behind_process_could_not_write() {
    let backends = backends().await;
    for b in &backends {
        let doc_id = did(23);
        let other = storage::open(&b.url).await.unwrap();
        let mut ours = AutoCommit::new();
        outreach_note(10).write(&mut ours).unwrap();
        append(&b.storage, doc_id, ours.save_after(&[])).await;
        b.storage.load(doc_id).await.unwrap();
        let stored = other.load(doc_id).await.unwrap().unwrap();
        let mut theirs = AutoCommit::load(&stored.bytes).unwrap();
        let heads = theirs.get_heads();
        theirs.put(ROOT, "attendees", 20).unwrap();
        append(&other, doc_id, theirs.save_after(&heads)).await;
        let (writer, task) = Writer::spawn(b.storage.clone());
        let heads = ours.get_heads();
        ours.put(ROOT, "attendees", 30).unwrap();
        writer
            .write(Write::Append {
                doc: doc_id,
                bytes: ours.save_after(&heads),
                projection: outreach(30),
            })
            .await
            .unwrap();
        // The merged document has 20 or 30 (a conflict Automerge settles by actor id); the
        // rows must show what the stored document reads, whichever it is.
        let merged =
            AutoCommit::load(&b.storage.read(doc_id).await.unwrap().unwrap().bytes).unwrap();
        let want = format!("|{}|", merged.get(ROOT, "attendees").unwrap().unwrap().0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = b.storage.projection_rows().await.unwrap();
            if rows.iter().any(|r| r.contains(&want)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: rows never rebuilt to {want}: {rows:?}",
                b.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(writer);
        task.await.unwrap();
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn two_processes_starting_at_once_on_an_empty_database_both_start() {
    let Ok(admin_url) = std::env::var("FIELDSYNC_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: PostgreSQL migration race (set FIELDSYNC_TEST_POSTGRES_URL=postgres://USER@HOST/DB to run it)"
        );
        return;
    };
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    // A race is a matter of luck: several fresh databases, two processes each.
    for _ in 0..5 {
        let db = format!("fieldsync_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{base}/{db}");
        let (a, b) = tokio::join!(storage::open(&url), storage::open(&url));
        let (a, b) = (
            a.expect("first process starts"),
            b.expect("second process starts"),
        );
        assert_eq!(
            a.meta("storage_id", "a").await.unwrap(),
            b.meta("storage_id", "b").await.unwrap()
        );
        a.close().await.unwrap();
        b.close().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

async fn append(storage: &Arc<dyn Storage>, doc: DocumentId, bytes: Vec<u8>) {
    storage
        .write(&[Write::Append {
            doc,
            bytes,
            projection: Projection::Nothing,
        }])
        .await
        .unwrap();
}

fn outreach_document() -> Outreach {
    Outreach {
        envelope: Envelope {
            kind: DocKind::Outreach,
            schema: 1,
            area: RegionCode::parse("32.77.01.1001").unwrap(),
            created_by: "peksos-ani".into(),
            created_at: "2026-11-20T08:00:00Z".into(),
        },
        topic: "Pencegahan stunting".into(),
        held_at: "2026-11-19T14:00:00Z".into(),
        place: "Balai RW 05".into(),
        attendees: 10,
        notes: "Dihadiri kader posyandu.".into(),
    }
}

fn outreach_note(attendees: u64) -> FieldDocument {
    FieldDocument::Outreach(Outreach {
        attendees,
        ..outreach_document()
    })
}

#[tokio::test]
async fn catching_up_reads_only_what_another_process_stored_since() {
    let backends = backends().await;
    for b in &backends {
        let doc_id = did(24);
        let other = storage::open(&b.url).await.unwrap();
        let mut ours = AutoCommit::new();
        let first = edit(&mut ours, "a", 2);
        append(&b.storage, doc_id, first).await;
        b.storage.load(doc_id).await.unwrap();
        assert!(
            b.storage.catch_up(doc_id).await.unwrap().is_none(),
            "{}",
            b.name
        );
        // B stores a change; A reads that, and only that, once.
        let stored = other.load(doc_id).await.unwrap().unwrap();
        let mut theirs = AutoCommit::load(&stored.bytes).unwrap();
        let change = edit(&mut theirs, "b", 1);
        append(&other, doc_id, change.clone()).await;
        let caught = b.storage.catch_up(doc_id).await.unwrap().unwrap();
        assert_eq!((caught.bytes, caught.chunks), (change, 1), "{}", b.name);
        assert!(
            b.storage.catch_up(doc_id).await.unwrap().is_none(),
            "{}",
            b.name
        );
        // Having applied it, A holds every chunk again: its rows are written.
        ours.load_incremental(&b.storage.read(doc_id).await.unwrap().unwrap().bytes)
            .unwrap();
        let written = b
            .storage
            .write(&[Write::Append {
                doc: doc_id,
                bytes: edit(&mut ours, "c", 1),
                projection: outreach(5),
            }])
            .await
            .unwrap();
        assert!(written.behind.is_empty(), "{}", b.name);
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn other_processes_commits_are_heard_and_a_lost_listener_says_so() {
    let backends = backends().await;
    for b in &backends {
        let Some(mut heard) = b.storage.follow() else {
            assert_eq!(b.name, "sqlite", "only SQLite has nobody to hear from");
            b.storage.tell(vec!["nobody".into()]).await.unwrap();
            continue;
        };
        let next = async |heard: &mut tokio::sync::mpsc::Receiver<storage::Elsewhere>| {
            tokio::time::timeout(Duration::from_secs(10), heard.recv())
                .await
                .expect("a notice in time")
                .expect("the listener runs")
        };
        // Step 1: nothing heard before the listener is up.
        assert_eq!(next(&mut heard).await, storage::Elsewhere::Missed);
        // Step 2: our own commit is not news; another process's is, once it commits.
        let other = storage::open(&b.url).await.unwrap();
        append(&b.storage, did(25), doc_with_changes(1).1.concat()).await;
        append(&other, did(26), doc_with_changes(1).1.concat()).await;
        assert_eq!(
            next(&mut heard).await,
            storage::Elsewhere::Changed(vec![did(26)])
        );
        // Step 3: the listening connection dies; once back, it says notices may be lost.
        let mut admin = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .execute(&mut admin)
        .await
        .unwrap();
        assert_eq!(next(&mut heard).await, storage::Elsewhere::Missed);
        append(&other, did(27), doc_with_changes(1).1.concat()).await;
        assert_eq!(
            next(&mut heard).await,
            storage::Elsewhere::Changed(vec![did(27)])
        );
        // Step 4: a batch of more documents than one notice can name (8000 bytes) is heard
        // whole, over several notices.
        let many: Vec<DocumentId> = (0..600u16)
            .map(|n| {
                let mut bytes = [7u8; 16];
                bytes[..2].copy_from_slice(&n.to_be_bytes());
                DocumentId::from_bytes(bytes)
            })
            .collect();
        let batch: Vec<Write> = many
            .iter()
            .map(|doc| Write::Append {
                doc: *doc,
                bytes: doc_with_changes(1).1.concat(),
                projection: Projection::Nothing,
            })
            .collect();
        other.write(&batch).await.unwrap();
        let mut named = HashSet::new();
        while named.len() < many.len() {
            match next(&mut heard).await {
                storage::Elsewhere::Changed(docs) => named.extend(docs),
                other => panic!("no connection was lost and nothing was said: {other:?}"),
            }
        }
        assert_eq!(named, many.into_iter().collect());
        // Step 5: what a process tells the others is heard by them, not by itself, in order,
        // however many notices it takes.
        b.storage.tell(vec!["ours".into()]).await.unwrap();
        let said: Vec<String> = (0..2000).map(|n| format!("word-{n}")).collect();
        other.tell(said.clone()).await.unwrap();
        let mut heard_words = Vec::new();
        while heard_words.len() < said.len() {
            match next(&mut heard).await {
                storage::Elsewhere::Said(words) => heard_words.extend(words),
                other => panic!("only words were sent: {other:?}"),
            }
        }
        assert_eq!(heard_words, said);
        other.close().await.unwrap();
    }
    finish(backends).await;
}

#[tokio::test]
async fn enrollment_codes_are_taken_once_and_their_attempts_audited() {
    use fieldsync_core::schema::Role;
    use fieldsync_server::storage::directory::{AuditEntry, AuditFilter};
    use fieldsync_server::storage::enroll::{CodeUse, EnrollmentCode};
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        add_person(s, "budi", Role::Peksos, "32.77.01.1001").await;
        let code = |hash: &str, expires_at| EnrollmentCode {
            code_hash: hash.into(),
            user_id: "budi".into(),
            made_by: "admin".into(),
            created_at: 1_000,
            expires_at,
        };
        s.add_enrollment_code(&code("h1", 5_000)).await.unwrap();
        s.add_enrollment_code(&code("h2", 2_000)).await.unwrap();
        let taken = CodeUse::Taken {
            user_id: "budi".into(),
        };
        assert_eq!(
            s.take_enrollment_code("h1", 3_000).await.unwrap(),
            taken,
            "{}",
            b.name
        );
        assert_eq!(
            s.take_enrollment_code("h1", 3_001).await.unwrap(),
            CodeUse::AlreadyUsed,
            "{}",
            b.name
        );
        assert_eq!(
            s.take_enrollment_code("h2", 3_000).await.unwrap(),
            CodeUse::Expired
        );
        assert_eq!(
            s.take_enrollment_code("h3", 3_000).await.unwrap(),
            CodeUse::Unknown
        );
        s.audit_now(&AuditEntry {
            at: 3_000,
            device_id: "enroll".into(),
            user_id: "budi".into(),
            document_id: String::new(),
            action: "enroll".into(),
            detail: "device dev_1".into(),
        })
        .await
        .unwrap();
        let lines = s
            .audit(&AuditFilter {
                user_id: Some("budi".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(lines.len(), 1, "{}", b.name);
        assert_eq!(lines[0].action, "enroll");
    }
    finish(backends).await;
}
