//! One conformance suite for every storage backend. SQLite always runs; PostgreSQL runs when
//! FIELDSYNC_TEST_POSTGRES_URL names a server (each test gets a fresh database there) and is
//! reported as skipped otherwise.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use fieldsync_core::schema::{
    DocKind, Envelope, Event, EventKind, FieldDocument, Outreach, Program, RegionCode,
};
use fieldsync_protocol::{DocumentId, StorageId};
use fieldsync_server::projection::Projection;
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
            s.placed_in(&[city], &[DocKind::Outreach])
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
