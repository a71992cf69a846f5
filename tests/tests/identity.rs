//! Who may connect, read and write: tokens, area scopes, revocation, authorship, the audit
//! log and the abuse limits, against a real server.

mod common;

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{DEFAULT_USER, TestServer, WAIT, area, visit, visit_in};
use fieldsync_client::{ConnectOptions, DocStatus, Replica};
use fieldsync_core::schema::Role;
use fieldsync_protocol::Notice;
use fieldsync_server::storage::directory::Device;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Tries the WebSocket upgrade; returns the HTTP status and body when it is refused.
async fn upgrade(url: &str, bearer: Option<&str>) -> Result<(), (u16, String)> {
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn no_tampered_or_expired_token_gets_past_the_upgrade() {
    let server = TestServer::start().await;
    assert!(
        upgrade(&server.url(), None).await.is_ok(),
        "control: the query token works"
    );
    assert!(
        upgrade(&server.plain_url(), Some(&server.token))
            .await
            .is_ok(),
        "and the header"
    );

    let (status, body) = upgrade(&server.plain_url(), None).await.unwrap_err();
    assert_eq!(status, 401);
    assert!(body.contains("\"unauthorized\""), "{body}");
    let mut tampered = server.token.clone();
    tampered.replace_range(10..11, if &tampered[10..11] == "0" { "1" } else { "0" });
    let (status, _) = upgrade(&server.url_for(&tampered), None).await.unwrap_err();
    assert_eq!(status, 401);

    // A token that expired a minute ago.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let token = fieldsync_server::auth::new_token();
    let now = fieldsync_server::storage::directory::now_for_tests();
    let device = Device {
        id: "dev_expired".into(),
        user_id: DEFAULT_USER.into(),
        label: String::new(),
        created_at: now - 120_000,
        expires_at: Some(now - 60_000),
        revoked_at: None,
        last_seen_at: None,
    };
    assert!(
        storage
            .enroll_device(&device, &fieldsync_server::auth::token_hash(&token))
            .await
            .unwrap()
    );
    storage.close().await.unwrap();
    let (status, body) = upgrade(&server.url_for(&token), None).await.unwrap_err();
    assert_eq!(
        (status, body.contains("token-expired")),
        (401, true),
        "{body}"
    );
}

#[tokio::test]
async fn a_field_worker_sees_only_their_kelurahan_and_the_city_coordinator_sees_all() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-dedi", Role::Peksos, &["32.77.01.1002"])
        .await;
    server
        .add_user("koordinator-cimahi", Role::Coordinator, &["32.77"])
        .await;
    server.add_user("admin-it", Role::Admin, &["32"]).await;

    // Dedi records a visit in his kelurahan, B.
    let (dedi, _hd) = server.phone_as("peksos-dedi").await;
    let id = dedi
        .create(visit_in("32.77.01.1002", "peksos-dedi"))
        .await
        .unwrap();
    dedi.wait_acknowledged(id, WAIT).await.unwrap();

    // Ani, of kelurahan A, is told it does not exist; so is the administrator.
    for user in [DEFAULT_USER, "admin-it"] {
        let (phone, _h) = server.phone_as(user).await;
        phone.find(id).await;
        phone
            .wait_status(id, WAIT, |s| s == Some(DocStatus::Unavailable))
            .await
            .unwrap_or_else(|_| panic!("{user} must not get the visit"));
    }
    // The coordinator of the city gets it.
    let (coordinator, _hc) = server.phone_as("koordinator-cimahi").await;
    coordinator.find(id).await;
    coordinator
        .wait_doc(id, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
        .await
        .unwrap();

    // Ani cannot create a visit in Dedi's kelurahan either: her phone refuses, and so would
    // the server.
    let (ani, _ha) = server.phone().await;
    let refused = ani.create(visit_in("32.77.01.1002", DEFAULT_USER)).await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn a_revoked_device_is_cut_off_within_two_seconds_and_wipes_its_data() {
    let server = TestServer::start().await;
    let (device, token) = server.enroll(DEFAULT_USER).await;
    let dir = tempfile::tempdir().unwrap();
    let phone = Replica::open(fieldsync_client::Store::Dir(dir.path().into()))
        .await
        .unwrap();
    phone.set_author(common::default_author()).await;
    let mut handle =
        phone.connect(ConnectOptions::new(server.plain_url()).with_token(token.clone()));
    assert!(handle.wait_connected(WAIT).await);
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();

    // An administrator revokes it, from another process's connection to the database.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let revoked_at = Instant::now();
    assert!(storage.revoke_device(&device).await.unwrap());
    storage.close().await.unwrap();

    // The socket closes and the phone deletes what it held, within 2 seconds.
    phone
        .wait_status(id, Duration::from_secs(2), |s| s.is_none())
        .await
        .expect("wiped within 2 s");
    assert!(revoked_at.elapsed() < Duration::from_secs(2));
    assert!(!handle.is_connected());
    let note = handle.last_error().unwrap_or_default();
    assert!(note.contains("revoked"), "{note}");
    let reopened = Replica::open(fieldsync_client::Store::Dir(dir.path().into()))
        .await
        .unwrap();
    assert!(
        reopened.documents().await.is_empty(),
        "nothing left on disk"
    );

    // Reconnecting is refused, and says why.
    let (status, body) = upgrade(&server.url_for(&token), None).await.unwrap_err();
    assert_eq!(
        (status, body.contains("device-revoked")),
        (401, true),
        "{body}"
    );
    // Other devices of the user keep working.
    let (other, _h) = server.phone().await;
    other.find(id).await;
    other.wait_acknowledged(id, WAIT).await.unwrap();
}

#[tokio::test]
async fn a_disabled_user_is_cut_off() {
    let server = TestServer::start().await;
    let (phone, handle) = server.phone().await;
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    assert!(storage.disable_user(DEFAULT_USER).await.unwrap());
    storage.close().await.unwrap();
    phone
        .wait_status(id, WAIT, |s| s.is_none())
        .await
        .expect("the phone deletes the document");
    assert!(!handle.is_connected());
    let (status, _) = upgrade(&server.url(), None).await.unwrap_err();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_change_under_another_devices_actor_id_is_refused() {
    let server = TestServer::start().await;
    // Device A writes a visit.
    let (a, _ha) = server.phone().await;
    let id = a.create(visit).await.unwrap();
    a.wait_acknowledged(id, WAIT).await.unwrap();
    let (bytes, actor) = a
        .read(id, |d| (d.save(), d.get_changes(&[])[0].actor_id().clone()))
        .await
        .unwrap();

    // Device B, same user, forges a change under A's actor id, over a raw socket.
    let (_, token_b) = server.enroll(DEFAULT_USER).await;
    let mut raw = RawPeer::join(&server.url_for(&token_b), "forger").await;
    let mut doc = AutoCommit::load(&bytes).unwrap().with_actor(actor);
    doc.put(ROOT, "purpose", "ditulis atas nama perangkat lain")
        .unwrap();
    let verdict = raw.sync_until_notice(id, &mut doc).await;
    let Some(Notice::ChangeRefused { violations, .. }) = verdict else {
        panic!("expected a refusal, got {verdict:?}");
    };
    assert!(
        violations[0].message.contains("another device"),
        "{violations:?}"
    );
    // Nobody sees the forged change: the server's document is still A's.
    let (reader, _hr) = server.phone().await;
    reader.find(id).await;
    reader.wait_acknowledged(id, WAIT).await.unwrap();
    assert_eq!(reader.heads(id).await, a.heads(id).await);
}

#[tokio::test]
async fn the_audit_log_answers_which_records_a_device_held() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-dedi", Role::Peksos, &["32.77.01"])
        .await;
    // Ani's default device writes two visits; Dedi reads one of them, and writes his own.
    let (ani, _ha) = server.phone().await;
    let first = ani.create(visit).await.unwrap();
    let second = ani
        .create(|tx| {
            visit(tx)?;
            let (_, b) = tx.get(ROOT, "beneficiary")?.unwrap();
            tx.put(&b, "nik", "3277011204800001")?;
            tx.put(&b, "name", "Budi Santoso")
        })
        .await
        .unwrap();
    ani.wait_acknowledged(first, WAIT).await.unwrap();
    ani.wait_acknowledged(second, WAIT).await.unwrap();
    let (dedi, _hd) = server.phone_as("peksos-dedi").await;
    dedi.find(second).await;
    dedi.wait_acknowledged(second, WAIT).await.unwrap();
    let own = dedi
        .create(visit_in("32.77.01.1003", "peksos-dedi"))
        .await
        .unwrap();
    dedi.wait_acknowledged(own, WAIT).await.unwrap();

    // Which device is Dedi's? The one that is not Ani's default.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let devices = storage.devices("peksos-dedi").await.unwrap();
    assert_eq!(devices.len(), 1);
    let held = storage.held_by_device(&devices[0].id).await.unwrap();
    let mut records: Vec<(String, Option<String>, Option<String>)> = held
        .into_iter()
        .map(|h| (h.document_id, h.nik, h.name))
        .collect();
    records.sort();
    let mut expected = vec![
        (
            second.to_string(),
            Some("3277011204800001".into()),
            Some("Budi Santoso".into()),
        ),
        (
            own.to_string(),
            Some("3277015204800002".into()),
            Some("Siti Aminah".into()),
        ),
    ];
    expected.sort();
    assert_eq!(
        records, expected,
        "the first visit never reached Dedi's device"
    );
    storage.close().await.unwrap();
    let _ = area();
}

#[tokio::test]
async fn repeated_bad_tokens_from_one_address_are_throttled() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.auth_failures_per_minute = 3;
    })
    .await;
    for _ in 0..3 {
        let (status, _) = upgrade(&server.url_for("fst_guess"), None)
            .await
            .unwrap_err();
        assert_eq!(status, 401);
    }
    // Now even a good token from that address waits out the minute.
    let (status, body) = upgrade(&server.url(), None).await.unwrap_err();
    assert_eq!(
        (status, body.contains("rate-limited")),
        (429, true),
        "{body}"
    );
}

#[tokio::test]
async fn connection_attempts_per_address_are_limited() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.connects_per_minute = 3;
    })
    .await;
    for _ in 0..3 {
        upgrade(&server.url(), None).await.unwrap();
    }
    let (status, _) = upgrade(&server.url(), None).await.unwrap_err();
    assert_eq!(status, 429);
}

#[tokio::test]
async fn documents_per_connection_are_limited() {
    let server = TestServer::start_with(|c| c.limits.max_docs_per_connection = 2).await;
    let (phone, handle) = server.phone().await;
    for _ in 0..3 {
        phone.create(visit).await.unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while !handle
        .last_error()
        .is_some_and(|e| e.contains("more than 2 documents"))
    {
        assert!(Instant::now() < deadline, "{:?}", handle.last_error());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_throttled_phone_waits_as_long_as_the_server_says() {
    let server = TestServer::start_with(|c| c.rate_limits.connects_per_minute = 1).await;
    upgrade(&server.url(), None).await.unwrap();
    // The refusal says when to come back.
    let Err(tokio_tungstenite::tungstenite::Error::Http(refused)) =
        tokio_tungstenite::connect_async(server.url()).await
    else {
        panic!("a second attempt within the minute is refused");
    };
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");

    // A phone told so does not try again within the minute, however short its own back-off.
    let proxy = common::proxy::Proxy::start(server.addr).await;
    let phone = Replica::in_memory().await;
    let mut options = ConnectOptions::new(proxy.sync_url()).with_token(server.token.clone());
    options.min_backoff = Duration::from_millis(20);
    options.max_backoff = Duration::from_millis(100);
    let handle = phone.connect(options);
    let deadline = Instant::now() + WAIT;
    while !handle.last_error().is_some_and(|e| e.contains("429")) {
        assert!(Instant::now() < deadline, "{:?}", handle.last_error());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        proxy.accepted(),
        1,
        "the phone came back before the minute was over"
    );
}
