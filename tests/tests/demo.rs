//! `fieldsync serve --demo`: Kota Cimahi seeded once, through the phones' and the web's own
//! paths, with people of every role who can sign in.

mod common;
#[path = "web/support.rs"]
mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldsync_core::schema::Role;
use fieldsync_protocol::DocumentId;
use fieldsync_server::demo::{Credential, Demo, READY_KEY, SEEDED_KEY};
use sqlx::SqlitePool;

use common::TestServer;
use support::Client;

/// Seeding takes a few seconds in a debug build; a busy CI machine gets much more.
const SEED_WAIT: Duration = Duration::from_secs(180);

type Announced = Arc<Mutex<Vec<(String, Vec<Credential>)>>>;

fn demo(announced: &Announced) -> Demo {
    let announced = announced.clone();
    Demo {
        announce: Arc::new(move |url, people| {
            announced
                .lock()
                .unwrap()
                .push((url.to_owned(), people.to_vec()))
        }),
    }
}

async fn count(db: &SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

async fn meta(db: &SqlitePool, key: &str) -> Option<String> {
    sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
        .bind(key)
        .fetch_optional(db)
        .await
        .unwrap()
}

/// Waits until the demo has stored every record.
async fn wait_ready(db: &SqlitePool) {
    let ready = async {
        while meta(db, READY_KEY).await.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(SEED_WAIT, ready)
        .await
        .expect("the demo is seeded in time");
}

#[tokio::test]
async fn the_demo_seeds_kota_cimahi_once_through_phones_and_the_hub() {
    let announced = Announced::default();
    let server = TestServer::start_with(|c| c.demo = Some(demo(&announced))).await;
    let db = SqlitePool::connect(&server.config.database_url)
        .await
        .unwrap();
    // Seeding takes seconds: meanwhile a load balancer is told the server is starting.
    let mut probe = Client::anonymous(&server);
    let health = probe.get("/healthz").await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["status"], "starting");
    wait_ready(&db).await;
    let ready = async {
        while probe.get("/healthz").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(common::WAIT, ready)
        .await
        .expect("ready once seeded");

    // Step 1: everyone was announced once, and each can sign in on the web.
    let (url, people) = announced.lock().unwrap()[0].clone();
    assert_eq!(url, format!("http://{}/", server.addr));
    assert_eq!(people.len(), 22);
    for role in [
        Role::Peksos,
        Role::Coordinator,
        Role::Supervisor,
        Role::Admin,
    ] {
        assert!(people.iter().any(|p| p.role == role), "a {role}");
    }
    for person in &people {
        let mut browser = Client::anonymous(&server);
        browser.sign_in(&person.id, &person.password).await;
        let me = browser.get("/api/me").await;
        assert_eq!(me.status, 200, "{} signs in", person.id);
        assert_eq!(me.json()["role"], person.role.as_str());
    }

    // Step 2: six weeks of records in all fifteen kelurahan.
    let documents = count(&db, "SELECT COUNT(DISTINCT document_id) FROM chunks").await;
    assert!((450..=700).contains(&documents), "{documents} documents");
    let kelurahan = count(&db, "SELECT COUNT(DISTINCT area) FROM visits").await;
    assert_eq!(kelurahan, 15);
    assert!(count(&db, "SELECT COUNT(*) FROM outreach").await >= 45);

    // Step 3: a queue to review, and decisions by supervisors, applied.
    let waiting = "SELECT COUNT(*) FROM referrals WHERE status IN ('submitted', 'needs-documents', 'accepted')";
    assert!(count(&db, waiting).await > 0);
    let decided =
        "SELECT COUNT(*) FROM referrals WHERE status IN ('approved', 'rejected', 'enrolled')";
    assert!(count(&db, decided).await > 0);
    let by_supervisors = "SELECT COUNT(*) FROM referral_events \
         WHERE by_user LIKE 'supervisor-%' AND applied AND at > 0";
    assert!(count(&db, by_supervisors).await >= 20);
    let supervisor = people.iter().find(|p| p.role == Role::Supervisor).unwrap();
    let mut browser = Client::anonymous(&server);
    browser.sign_in(&supervisor.id, &supervisor.password).await;
    let export = browser
        .get("/api/exports/referrals.csv?area=32.77&from=2000-01-01&to=2100-01-01")
        .await
        .text();
    assert!(export.contains(",Diajukan,") && export.contains(",Disetujui,"));
    // Every kelurahan of the demo is Kemendagri's, by code and name.
    let unnamed = "SELECT COUNT(*) FROM visits v WHERE NOT EXISTS \
         (SELECT 1 FROM areas a WHERE a.code = v.area)";
    assert_eq!(count(&db, unnamed).await, 0);
    assert!(export.contains(",32.77.02.1003,Karangmekar,Cimahi Tengah,"));
    // Records arrived as they were written, but for one phone's visits of last week.
    let late = "SELECT COUNT(*) FROM visits WHERE received_at - visited_at >= 3 * 86400000";
    let late = count(&db, late).await;
    assert!((1..=10).contains(&late), "{late} late visits");
    let arrived = "SELECT COUNT(*) FROM referrals WHERE received_at > created_at + 3 * 86400000";
    assert_eq!(count(&db, arrived).await, 0);

    // Step 4: authorship. Every change to a referral was made under an actor id bound to the
    // author's phone, or to the supervisor's web identity for decisions.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let referrals: Vec<(String, String)> =
        sqlx::query_as("SELECT document_id, created_by FROM referrals ORDER BY document_id")
            .fetch_all(&db)
            .await
            .unwrap();
    for (doc, author) in &referrals {
        let stored = storage
            .load(DocumentId::parse(doc).unwrap())
            .await
            .unwrap()
            .unwrap();
        let am = automerge::Automerge::load(&stored.bytes).unwrap();
        let actors: Vec<String> = am
            .get_changes(&[])
            .iter()
            .map(|c| c.actor_id().to_hex_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let phone: HashSet<String> = storage
            .devices(author)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        let owners = storage.actor_owners(&actors).await.unwrap();
        assert_eq!(owners.len(), actors.len(), "every actor of {doc} is bound");
        for (_, device) in owners {
            assert!(
                phone.contains(&device)
                    || device == "web:supervisor-1"
                    || device == "web:supervisor-2",
                "{doc} changed by {device}"
            );
        }
    }
    storage.close().await.unwrap();

    // Step 5: a second start does not seed again.
    let seeded = meta(&db, SEEDED_KEY).await;
    let users = count(&db, "SELECT COUNT(*) FROM users").await;
    db.close().await;
    let (dir, config) = server.stop().await;
    let again = TestServer::start_in(dir, config).await;
    let mut probe = Client::anonymous(&again);
    assert_eq!(probe.get("/healthz").await.status, 200);
    let db = SqlitePool::connect(&again.config.database_url)
        .await
        .unwrap();
    assert_eq!(meta(&db, SEEDED_KEY).await, seeded);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, users);
    let after = count(&db, "SELECT COUNT(DISTINCT document_id) FROM chunks").await;
    assert_eq!(after, documents);
    assert_eq!(announced.lock().unwrap().len(), 1, "announced once");
    db.close().await;
}

#[tokio::test]
async fn a_database_with_documents_is_never_seeded() {
    let announced = Announced::default();
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let doc = phone.create(common::visit).await.unwrap();
    phone.wait_acknowledged(doc, common::WAIT).await.unwrap();
    let (dir, mut config) = server.stop().await;
    config.demo = Some(demo(&announced));
    let again = TestServer::start_in(dir, config).await;
    let mut probe = Client::anonymous(&again);
    assert_eq!(probe.get("/healthz").await.status, 200);
    assert!(announced.lock().unwrap().is_empty());
    let db = SqlitePool::connect(&again.config.database_url)
        .await
        .unwrap();
    assert_eq!(meta(&db, SEEDED_KEY).await, None);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 1);
    db.close().await;
}
