//! Interoperability with the real JS client: `@automerge/automerge-repo` 2.5.6 with its
//! WebSocket adapter (pinned in tests/js/package.json), driven through tests/js/driver.mjs.

mod common;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use common::node::{NodeDriver, setup_js};
use common::{TestServer, WAIT};
use fieldsync_core::schema::{FieldDocument, Role, examples};
use fieldsync_protocol::AutomergeUrl;
use serde_json::{Value, json};

/// A field visit as a JS app writes it: a plain object, strings become text.
fn visit_json(nik: &str, notes: &str) -> Value {
    json!({
        "type": "visit", "schema": 1, "area": "32.77.01.1001",
        "createdBy": "peksos-ani", "createdAt": "2026-11-20T08:00:00Z",
        "beneficiary": {"nik": nik, "name": "Siti Aminah", "ppks": ["fakir-miskin"]},
        "visitedAt": "2026-11-20T09:30:00Z",
        "notes": notes,
        "actions": []
    })
}

struct JsClient {
    driver: NodeDriver,
    _storage: tempfile::TempDir,
}

impl JsClient {
    async fn start(url: &str) -> Self {
        let storage = tempfile::tempdir().unwrap();
        let dir = storage.path().to_str().unwrap().to_owned();
        let driver =
            NodeDriver::start("driver.mjs", &["--url", url, "--storage", &dir], WAIT).await;
        Self {
            driver,
            _storage: storage,
        }
    }

    /// Sends one command and returns its answer; panics on `ok: false`.
    async fn ok(&mut self, command: Value) -> Value {
        self.driver.ok(command).await
    }

    async fn send(&mut self, command: Value) -> Value {
        self.driver.send(command).await
    }

    async fn quit(self) {
        self.driver.quit().await;
    }
}

#[tokio::test]
async fn js_clients_and_the_rust_client_share_a_document_and_converge() {
    setup_js();
    let server = TestServer::start().await;

    // Step 1: a JS client creates a visit and waits until the server reports it stored.
    let mut a = JsClient::start(&server.url()).await;
    let created = a
        .ok(json!({"cmd": "create", "doc": visit_json("3277015204800002", "Kunjungan pertama.")}))
        .await;
    let url = created["url"].as_str().unwrap().to_owned();
    a.ok(json!({"cmd": "waitSynced", "url": url})).await;

    // Step 2: a second JS client with fresh storage finds it by URL.
    let mut b = JsClient::start(&server.url()).await;
    let found = b.ok(json!({"cmd": "find", "url": url})).await;
    assert_eq!(found["doc"]["notes"], json!("Kunjungan pertama."));

    // Step 3: the Rust client finds it too.
    let id = AutomergeUrl::parse(&url).unwrap().document_id();
    let (rust, _h) = server.phone().await;
    rust.find(id).await;
    rust.wait_doc(id, WAIT, |d| d.get(ROOT, "type").unwrap().is_some())
        .await
        .unwrap();

    // Step 4: concurrent edits from all three: text splices at both ends, a field each.
    a.ok(json!({"cmd": "splice", "url": url, "path": ["notes"], "index": 0, "insert": "[A] "}))
        .await;
    b.ok(json!({"cmd": "splice", "url": url, "path": ["notes"], "index": 18, "insert": " [B]"}))
        .await;
    b.ok(json!({"cmd": "set", "url": url, "path": ["followUpOn"], "value": "2026-12-01"}))
        .await;
    rust.change(id, |tx| {
        tx.put(ROOT, "attendees", 3)?;
        let actions = tx.get(ROOT, "actions")?.unwrap().1;
        tx.insert(&actions, 0, "rujuk ke puskesmas")
    })
    .await
    .unwrap();

    // Step 5: everyone converges to the same document with every edit in it.
    let expected_notes = "[A] Kunjungan pertama. [B]";
    for client in [&mut a, &mut b] {
        client
            .ok(json!({"cmd": "waitFor", "url": url, "path": ["notes"], "equals": expected_notes}))
            .await;
        client
            .ok(json!({"cmd": "waitFor", "url": url, "path": ["attendees"], "equals": 3}))
            .await;
        client
            .ok(json!({"cmd": "waitFor", "url": url, "path": ["followUpOn"], "equals": "2026-12-01"}))
            .await;
    }
    rust.wait_doc(id, WAIT, |d| {
        let notes = d.get(ROOT, "notes").ok().flatten();
        let text = notes.and_then(|(_, obj)| d.text(&obj).ok());
        text.as_deref() == Some(expected_notes) && d.get(ROOT, "followUpOn").unwrap().is_some()
    })
    .await
    .unwrap();
    let a_heads = a.ok(json!({"cmd": "heads", "url": url})).await["heads"].clone();
    let b_heads = b.ok(json!({"cmd": "heads", "url": url})).await["heads"].clone();
    let mut a_heads: Vec<String> = serde_json::from_value(a_heads).unwrap();
    let mut b_heads: Vec<String> = serde_json::from_value(b_heads).unwrap();
    a_heads.sort();
    b_heads.sort();
    assert_eq!(a_heads, b_heads);
    assert_eq!(rust.heads(id).await.unwrap().len(), a_heads.len());
    let actions = rust
        .read(id, |d| {
            let (_, list) = d.get(ROOT, "actions").unwrap().unwrap();
            assert_eq!(d.object_type(&list).unwrap(), ObjType::List);
            d.length(&list)
        })
        .await;
    assert_eq!(actions, Some(1));

    a.quit().await;
    b.quit().await;
}

/// Presence and cursors travel as ephemeral messages: relayed under their sender's id, and the
/// receiving JS client passes them on (back to the server, under that id). That echo is
/// dropped, not taken for a forgery: both clients stay connected and keep syncing.
#[tokio::test]
async fn ephemeral_messages_between_js_clients_carry_their_sender_and_the_echo_is_harmless() {
    setup_js();
    let server = TestServer::start().await;
    let mut a = JsClient::start(&server.url()).await;
    let created = a
        .ok(json!({"cmd": "create", "doc": visit_json("3277015204800002", "Kunjungan.")}))
        .await;
    let url = created["url"].as_str().unwrap().to_owned();
    a.ok(json!({"cmd": "waitSynced", "url": url})).await;
    let mut b = JsClient::start(&server.url()).await;
    b.ok(json!({"cmd": "find", "url": url})).await;

    let a_peer = a.ok(json!({"cmd": "peers"})).await;
    a.ok(json!({"cmd": "broadcast", "url": url, "message": {"cursor": 4}}))
        .await;
    let got = b
        .ok(json!({"cmd": "waitEphemeral", "url": url, "equals": {"cursor": 4}}))
        .await;
    assert_ne!(
        got["senderId"].as_str(),
        a_peer["peers"][0]["peerId"].as_str(),
        "not under the server's id: {got}"
    );
    // B's echo reached the server; both stay connected and still sync. A client the server
    // had disconnected would reconnect only after automerge-repo's 5 s retry delay.
    let started = std::time::Instant::now();
    b.ok(json!({"cmd": "splice", "url": url, "path": ["notes"], "index": 0, "insert": "[B] "}))
        .await;
    b.ok(json!({"cmd": "waitSynced", "url": url})).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "B was still connected: synced in {:?}",
        started.elapsed()
    );
    a.ok(json!({"cmd": "waitFor", "url": url, "path": ["notes"], "equals": "[B] Kunjungan."}))
        .await;
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn a_js_client_is_told_a_document_does_not_exist() {
    setup_js();
    let server = TestServer::start().await;
    let mut js = JsClient::start(&server.url()).await;
    let reply = js
        .send(json!({"cmd": "find", "url": "automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa", "timeoutMs": 20000}))
        .await;
    assert_eq!(reply, json!({"ok": false, "error": "unavailable"}));
    js.quit().await;
}

#[tokio::test]
async fn a_document_created_by_the_rust_client_opens_in_the_js_client() {
    setup_js();
    let server = TestServer::start().await;
    let (rust, _h) = server.phone().await;
    let id = rust
        .create(|tx| {
            let mut note = examples::outreach(&common::area(), "peksos-ani");
            note.notes = "Penyuluhan PKH di balai desa.".into();
            FieldDocument::Outreach(note).write(tx)
        })
        .await
        .unwrap();
    rust.wait_acknowledged(id, WAIT).await.unwrap();
    let mut js = JsClient::start(&server.url()).await;
    let found = js
        .ok(json!({"cmd": "find", "url": id.url().to_string()}))
        .await;
    assert_eq!(found["doc"]["attendees"], json!(25));
    assert_eq!(
        found["doc"]["notes"],
        json!("Penyuluhan PKH di balai desa.")
    );
    js.quit().await;
}

#[tokio::test]
async fn a_visit_with_nik_123_from_js_is_refused_and_a_valid_one_is_projected() {
    setup_js();
    let server = TestServer::start().await;
    let mut a = JsClient::start(&server.url()).await;

    // Step 1: a visit with NIK "123": the server refuses it and says why; the app stops
    // waiting instead of hanging.
    let bad = a
        .ok(json!({"cmd": "create", "doc": visit_json("123", "NIK salah ketik.")}))
        .await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = a.send(json!({"cmd": "waitSynced", "url": bad})).await;
    assert_eq!(reply["ok"], json!(false), "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(error.starts_with("refused:"), "{error}");
    assert!(error.contains("beneficiary.nik"), "{error}");

    // Step 2: a second client cannot find it: it was never stored.
    let mut b = JsClient::start(&server.url()).await;
    let reply = b.send(json!({"cmd": "find", "url": bad})).await;
    assert_eq!(reply, json!({"ok": false, "error": "unavailable"}));

    // Step 3: the app corrects the NIK; the repair travels with the refused change it builds
    // on, the pair is valid, and the document is stored and found.
    a.ok(json!({"cmd": "set", "url": bad, "path": ["beneficiary", "nik"], "value": "3277011204800001"}))
        .await;
    a.ok(json!({"cmd": "waitSynced", "url": bad})).await;
    let mut c = JsClient::start(&server.url()).await;
    let found = c.ok(json!({"cmd": "find", "url": bad})).await;
    assert_eq!(
        found["doc"]["beneficiary"]["nik"],
        json!("3277011204800001")
    );
    c.quit().await;

    // Step 4: a valid visit from the same client syncs, is found, and is in the query rows.
    let good = a
        .ok(json!({"cmd": "create", "doc": visit_json("3277015204800002", "Kunjungan kedua.")}))
        .await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(json!({"cmd": "waitSynced", "url": good})).await;
    let found = b.ok(json!({"cmd": "find", "url": good})).await;
    assert_eq!(found["doc"]["notes"], json!("Kunjungan kedua."));
    let id = AutomergeUrl::parse(&good).unwrap().document_id();
    let rows = server.projection_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = rows
        .iter()
        .find(|r| r.starts_with(&format!("visits|{id}|32.77.01.1001|peksos-ani|")))
        .unwrap_or_else(|| panic!("no row for {id}: {rows:?}"));
    assert!(row.contains("|3277015204800002|"), "{rows:?}");
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn the_js_client_is_offered_a_colleagues_new_visit_and_restores_from_its_index() {
    setup_js();
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.01.1001"])
        .await;
    let (_, token) = server.enroll("peksos-budi").await;
    let mut budi = JsClient::start(&server.url_for(&token)).await;
    // Budi's JS client is connected (it has the server as a peer) before Ani writes.
    budi.ok(json!({"cmd": "waitConnected"})).await;

    // Step 1: Ani, same kelurahan, records a visit on her Rust phone.
    let (ani, _h) = server.phone().await;
    let id = ani.create(common::visit).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 2: the server offers it to Budi's JS client, unasked.
    let offered = budi
        .ok(json!({"cmd": "waitOffered", "url": id.url().to_string()}))
        .await;
    assert_eq!(offered["doc"]["createdBy"], json!("peksos-ani"));
    budi.quit().await;

    // Step 3: Budi's replacement phone (a new JS client, empty storage) opens his index, its
    // page for his kelurahan, and every document listed there.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let index = fieldsync_server::admin::index_url(storage.as_ref(), "peksos-budi")
        .await
        .unwrap();
    storage.close().await.unwrap();
    let (_, token) = server.enroll("peksos-budi").await;
    let mut fresh = JsClient::start(&server.url_for(&token)).await;
    let root = fresh
        .ok(json!({"cmd": "waitFor", "url": index, "path": ["schema"], "equals": 2}))
        .await;
    assert_eq!(root["value"], json!(2));
    let root = fresh.ok(json!({"cmd": "get", "url": index})).await;
    let page = root["doc"]["pages"]["32.77.01.1001"]
        .as_str()
        .expect("the root lists the page of Budi's kelurahan")
        .to_owned();
    let found = fresh
        .ok(json!({"cmd": "waitFor", "url": page, "path": ["documents", id.to_string(), "type"], "equals": "visit"}))
        .await;
    assert_eq!(found["value"], json!("visit"));
    let listed = fresh.ok(json!({"cmd": "get", "url": page})).await;
    let url = listed["doc"]["documents"][id.to_string()]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let visit = fresh.ok(json!({"cmd": "find", "url": url})).await;
    assert_eq!(visit["doc"]["beneficiary"]["name"], json!("Siti Aminah"));
    fresh.quit().await;
}
