//! The field app (`/app/`): enrollment with one-time codes, and the app itself in a real
//! phone-sized browser (Debian's Chromium through Playwright, tests/js/app-browser.mjs, with a
//! persistent profile): enrolled, offline from the service worker, records kept across a
//! browser restart, acknowledged once online, in the coordinator's feed, a supervisor's
//! decision arriving, an edit made offline, a refusal shown with its field, and a revoked
//! phone wiping itself. The app's validator is checked against the Rust rules' conformance
//! vectors.
//!
//! Set FIELDSYNC_SCREENSHOTS=DIR to also save screenshots of the app.

mod common;
#[path = "web/support.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::node::NodeDriver;
use common::{TestServer, WAIT};
use fieldsync_core::schema::Role;
use fieldsync_server::storage::Storage;
use fieldsync_server::storage::directory::AuditFilter;
use fieldsync_server::storage::enroll::EnrollmentCode;
use serde_json::{Value, json};
use support::{Client, Reply, person};

const KELURAHAN: &str = "32.77.01.1001";

async fn storage(server: &TestServer) -> Arc<dyn Storage> {
    fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap()
}

fn cookie_of(reply: &Reply) -> String {
    reply
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("fieldsync_device="))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no device cookie: {:?}", reply.headers))
}

async fn enroll(server: &TestServer, code: &str) -> Reply {
    Client::anonymous(server)
        .post_json("/api/enroll", &json!({"code": code, "label": "HP Budi"}))
        .await
}

#[tokio::test]
async fn an_enrollment_code_works_once_for_its_user_and_sets_a_cookie_only_for_sync() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    person(&server, "admin-dina", Role::Admin, &["32.77"]).await;
    let mut admin = Client::script(&server, "admin-dina").await;

    // Step 1: the administrator makes a code; the phone exchanges it, typed loosely.
    let made = admin
        .post_json("/api/enrollment-codes", &json!({"user": "peksos-budi"}))
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let code = made.json()["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9, "{code}");
    assert!(
        made.json()["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/app/#enroll={code}"))
    );
    let reply = enroll(&server, &format!(" {} ", code.to_lowercase())).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["user"]["id"], json!("peksos-budi"));
    assert_eq!(body["user"]["role"], json!("peksos"));
    assert_eq!(body["user"]["areas"], json!([KELURAHAN]));
    // The index is built before the phone first asks for it: it never finds it missing.
    let index = fieldsync_protocol::AutomergeUrl::parse(body["indexUrl"].as_str().unwrap())
        .unwrap()
        .document_id();
    let store = storage(&server).await;
    assert!(
        store.read(index).await.unwrap().is_some(),
        "the index is stored when the enrollment is answered"
    );
    store.close().await.unwrap();
    assert!(!reply.text().contains("fst_"), "no token in the body");
    let cookie = cookie_of(&reply);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/sync", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    // The same token for the uploads and photos under /files, and nowhere else.
    let paths: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(k, v)| k == "set-cookie" && v.starts_with("fieldsync_device="))
        .filter_map(|(_, v)| v.split("; ").find_map(|p| p.strip_prefix("Path=")))
        .collect();
    assert_eq!(paths, ["/sync", "/files"]);
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("fieldsync_device=")
        .to_owned();

    // Step 2: the cookie opens /sync, but only from a page of this server.
    let own = format!("http://{}", server.addr);
    let ok = device_check(&server, &token, Some(&own)).await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers
            .iter()
            .filter(|(k, v)| k == "set-cookie" && v.contains("Path=/files"))
            .count(),
        1,
        "a phone enrolled before /files existed gains that cookie: {:?}",
        ok.headers
    );
    assert_eq!(
        ok.json()["user"]["areas"],
        json!([KELURAHAN]),
        "the app learns its areas"
    );
    assert_eq!(
        device_check(&server, &token, Some("http://evil.example"))
            .await
            .status,
        401
    );
    assert_eq!(device_check(&server, &token, None).await.status, 401);
    assert!(
        sync_upgrade(&server, &token, &own).await,
        "same origin upgrades"
    );
    assert!(
        !sync_upgrade(&server, &token, "http://evil.example").await,
        "cross-site is refused"
    );

    // Step 3: the same code again is refused, and so is a made-up one.
    let again = enroll(&server, &code).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.json()["error"], json!("invalid-code"));
    assert_eq!(enroll(&server, "ABCD-EFGH").await.status, 401);

    // Step 4: an expired code is refused.
    let storage = storage(&server).await;
    let now = fieldsync_server::storage::directory::now_for_tests();
    storage
        .add_enrollment_code(&EnrollmentCode {
            code_hash: fieldsync_server::auth::token_hash("WXYZ2345"),
            user_id: "peksos-budi".into(),
            made_by: "test".into(),
            created_at: now - 25 * 3_600_000,
            expires_at: now - 3_600_000,
        })
        .await
        .unwrap();
    assert_eq!(enroll(&server, "WXYZ-2345").await.status, 401);

    // Step 5: every attempt is audited, never with the code.
    let lines = storage
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l.action.starts_with("enroll"))
        .map(|l| (l.action.as_str(), l.detail.split(';').next().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("enroll-refused", "expired"),
            ("enroll-refused", "unknown"),
            ("enroll-refused", "already-used"),
            ("enroll", actions[3].1),
            ("enroll-code", "made by admin-dina"),
        ],
        "newest first"
    );
    assert!(actions[3].1.starts_with("device dev_"));
    let plain = fieldsync_server::admin::normalize_enrollment_code(&code);
    assert!(
        lines
            .iter()
            .all(|l| !l.detail.contains(&code) && !l.detail.contains(&plain))
    );
    storage.close().await.unwrap();
}

/// `POST /sync/device` with the cookie and an Origin; the status.
async fn device_check(server: &TestServer, token: &str, origin: Option<&str>) -> Reply {
    let mut client = Client::anonymous(server);
    client
        .cookies
        .push(("fieldsync_device".into(), token.into()));
    let extra: Vec<(&str, &str)> = origin.map(|o| vec![("Origin", o)]).unwrap_or_default();
    client
        .send(
            "POST",
            "/sync/device",
            "application/json",
            b"{}".to_vec(),
            &extra,
        )
        .await
}

/// Whether `/sync` upgrades a WebSocket that carries only the cookie, from `origin`.
async fn sync_upgrade(server: &TestServer, token: &str, origin: &str) -> bool {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/sync", server.addr)
        .into_client_request()
        .unwrap();
    let h = request.headers_mut();
    h.insert(
        "cookie",
        format!("fieldsync_device={token}").parse().unwrap(),
    );
    h.insert("origin", origin.parse().unwrap());
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
        .is_ok()
}

#[tokio::test]
async fn coordinators_make_codes_only_for_the_field_workers_of_their_areas() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    server
        .add_user("peksos-cahya", Role::Peksos, &["32.77.02.1001"])
        .await;
    server
        .add_user("supervisor-sri", Role::Supervisor, &["32.77.01"])
        .await;
    person(&server, "koordinator-ita", Role::Coordinator, &["32.77.01"]).await;
    let mut ita = Client::script(&server, "koordinator-ita").await;
    let make = |user: &str| json!({"user": user});
    assert_eq!(
        ita.post_json("/api/enrollment-codes", &make("peksos-budi"))
            .await
            .status,
        200
    );
    assert_eq!(
        ita.post_json("/api/enrollment-codes", &make("peksos-cahya"))
            .await
            .status,
        403
    );
    assert_eq!(
        ita.post_json("/api/enrollment-codes", &make("supervisor-sri"))
            .await
            .status,
        403
    );
    assert_eq!(
        ita.post_json("/api/enrollment-codes", &make("nobody"))
            .await
            .status,
        400
    );
    // A field worker makes none; the page lists only Ita's own workers.
    person(&server, "peksos-dewi", Role::Peksos, &[KELURAHAN]).await;
    let mut dewi = Client::script(&server, "peksos-dewi").await;
    assert_eq!(
        dewi.post_json("/api/enrollment-codes", &make("peksos-budi"))
            .await
            .status,
        403
    );
    let mut page = Client::browser(&server, "koordinator-ita").await;
    let form = page.get("/admin/enroll").await;
    assert_eq!(form.status, 200);
    assert!(form.text().contains("value=\"peksos-budi\""));
    assert!(!form.text().contains("value=\"peksos-cahya\""));
    let made = page
        .post_form("/admin/enroll", &[("user", "peksos-budi")])
        .await;
    assert_eq!(made.status, 200);
    let shown =
        support::between(&made.text(), "id=\"enroll-code\">", "<").expect("the code is shown");
    assert!(made.text().contains("<svg"), "with its QR code");
    assert_eq!(enroll(&server, &shown).await.status, 200);
}

#[tokio::test]
async fn a_lost_phone_is_revoked_on_the_devices_page_by_whoever_looks_after_its_worker() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    server
        .add_user("peksos-cahya", Role::Peksos, &["32.77.02.1001"])
        .await;
    person(&server, "koordinator-ita", Role::Coordinator, &["32.77.01"]).await;
    let (budis, token) = server.enroll("peksos-budi").await;
    let (cahyas, _) = server.enroll("peksos-cahya").await;
    let mut ita = Client::browser(&server, "koordinator-ita").await;
    let page = ita.get("/admin/devices").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&budis));
    assert!(!page.text().contains(&cahyas), "not Ita's worker");
    // Cahya's phone is not hers to revoke; Budi's is.
    let refused = ita
        .post_form("/admin/devices/revoke", &[("device", &cahyas)])
        .await;
    assert_eq!(refused.status, 403);
    let revoked = ita
        .post_form("/admin/devices/revoke", &[("device", &budis)])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.text());
    let own = format!("http://{}", server.addr);
    let check = device_check(&server, &token, Some(&own)).await;
    assert_eq!(check.json()["error"], json!("device-revoked"));
    let storage = storage(&server).await;
    let lines = storage
        .audit(&AuditFilter {
            user_id: Some("peksos-budi".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(lines.iter().any(|l| l.action == "device-revoked"
        && l.device_id == "web:koordinator-ita"
        && l.detail.contains(&budis)));
    storage.close().await.unwrap();
}

#[tokio::test]
async fn wrong_codes_are_rate_limited_per_address() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    let storage = storage(&server).await;
    let (code, _) =
        fieldsync_server::admin::make_enrollment_code(storage.as_ref(), "peksos-budi", "test", 24)
            .await
            .unwrap();
    storage.close().await.unwrap();
    for _ in 0..10 {
        assert_eq!(enroll(&server, "AAAA-AAAA").await.status, 401);
    }
    let locked = enroll(&server, &code).await;
    assert_eq!(
        locked.status,
        429,
        "even the right code waits: {}",
        locked.text()
    );
}

#[tokio::test]
async fn the_secure_flag_follows_the_servers_cookies() {
    let server = TestServer::start_with(|c| c.secure_cookies = true).await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    let storage = storage(&server).await;
    let (code, _) =
        fieldsync_server::admin::make_enrollment_code(storage.as_ref(), "peksos-budi", "test", 24)
            .await
            .unwrap();
    storage.close().await.unwrap();
    let reply = enroll(&server, &code).await;
    assert!(cookie_of(&reply).contains("; Secure"));
}

#[tokio::test]
async fn the_app_is_served_with_its_own_policy_and_cache_rules() {
    let server = TestServer::start().await;
    let mut client = Client::anonymous(&server);
    let index = client.get("/app/").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    let csp = index.header("content-security-policy").unwrap();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = index.text();
    let script = support::between(&html, "<script type=\"module\" src=\"", "\"").unwrap();
    let js = client.get(&script).await;
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let sw = client.get("/app/sw.js").await;
    assert_eq!(sw.header("cache-control"), Some("no-cache"));
    let wasm_name =
        support::between(&sw.text(), "\"/app/automerge-", "\"").expect("the wasm is pre-cached");
    let wasm = client.get(&format!("/app/automerge-{wasm_name}")).await;
    let gzipped = client
        .send(
            "GET",
            &format!("/app/automerge-{wasm_name}"),
            "",
            Vec::new(),
            &[("Accept-Encoding", "gzip, br")],
        )
        .await;
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("content-type"), Some("application/wasm"));
    assert!(
        gzipped.body.len() < wasm.body.len() / 2,
        "{}",
        gzipped.body.len()
    );
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert!(
        wasm.body.len() > 2 * 1024 * 1024,
        "bigger than Workbox's default limit"
    );
    assert_eq!(client.get("/app/manifest.webmanifest").await.status, 200);
    // The rest of the web keeps its strict policy.
    let login = client.get("/login").await;
    assert!(
        !login
            .header("content-security-policy")
            .unwrap()
            .contains("wasm")
    );
}

// ---- one rule set ----

/// The app's validator (app/src/schema.js, run by tests/js/app-rules.mjs) finds the violations
/// the Rust rules find, path for path, in every conformance vector (generated from sync-core
/// by sync-core/tests/conformance.rs, which fails when the file is stale).
#[tokio::test]
async fn the_apps_validator_agrees_with_the_server_on_every_conformance_vector() {
    let vectors =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sync-core/conformance/vectors.json");
    let expected = serde_json::from_str::<Value>(&std::fs::read_to_string(&vectors).unwrap())
        .unwrap()["vectors"]
        .as_array()
        .unwrap()
        .len();
    let mut node = NodeDriver::start("app-rules.mjs", &[], Duration::from_secs(30)).await;
    let reply = node.ok(json!({"cmd": "check", "vectors": vectors})).await;
    assert_eq!(reply["count"], json!(expected), "{reply}");
    assert!(expected >= 50, "{expected} vectors");
    assert_eq!(
        reply["failures"],
        json!([]),
        "the app's validator drifted from sync-core"
    );
    node.quit().await;
}

// ---- the app in a browser ----

struct Phone(NodeDriver);

impl Phone {
    async fn start(server: &TestServer, profile: &std::path::Path) -> Self {
        let chromium = common::node::setup_browser();
        let base = format!("http://{}", server.addr);
        let profile = profile.to_str().unwrap();
        let args = [
            "--base",
            &base,
            "--profile",
            profile,
            "--chromium",
            &chromium,
        ];
        Self(NodeDriver::start("app-browser.mjs", &args, Duration::from_secs(60)).await)
    }

    async fn ok(&mut self, command: Value) -> Value {
        self.0.ok(command).await
    }

    async fn wait(&mut self, selector: &str) -> String {
        let reply = self
            .ok(json!({"cmd": "waitFor", "selector": selector, "timeoutMs": 30000}))
            .await;
        reply["text"].as_str().unwrap_or_default().to_owned()
    }

    /// Fills each form field (selector, value) in turn.
    async fn fill_all(&mut self, fields: &[(&str, &str)]) {
        for (field, value) in fields {
            self.ok(json!({"cmd": "fill", "selector": field, "value": value}))
                .await;
        }
    }

    /// Waits until `selector` matches exactly `n` elements.
    async fn wait_count(&mut self, selector: &str, n: u64) {
        self.ok(json!({"cmd": "waitCount", "selector": selector, "count": n, "timeoutMs": 30000}))
            .await;
    }

    async fn screenshot(&mut self, name: &str) {
        if let Ok(dir) = std::env::var("FIELDSYNC_SCREENSHOTS") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            self.ok(json!({"cmd": "screenshot", "path": path})).await;
        }
    }
}

#[tokio::test]
async fn a_field_worker_enrolls_works_offline_and_sees_records_stored_decided_refused_and_wiped() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    person(&server, "koordinator-ita", Role::Coordinator, &["32.77.01"]).await;
    person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;
    let profile = tempfile::tempdir().unwrap();

    // Step 0: a colleague's phone already logged a visit in Budi's kelurahan.
    let (colleague, _sync) = server.phone().await;
    let theirs = colleague
        .create(common::visit_in(KELURAHAN, common::DEFAULT_USER))
        .await
        .unwrap();
    colleague.wait_acknowledged(theirs, WAIT).await.unwrap();

    // Step 1: the coordinator makes a code; Budi opens /app/ and types it in.
    let mut ita = Client::script(&server, "koordinator-ita").await;
    let made = ita
        .post_json("/api/enrollment-codes", &json!({"user": "peksos-budi"}))
        .await;
    let code = made.json()["code"].as_str().unwrap().to_owned();
    let mut phone = Phone::start(&server, profile.path()).await;
    phone.ok(json!({"cmd": "goto", "path": "/app/"})).await;
    phone.screenshot("app-pendaftaran").await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#code", "value": code}))
        .await;
    phone
        .ok(json!({"cmd": "click", "selector": "form.enroll button[type=submit]"}))
        .await;
    assert_eq!(phone.wait("#online.ok").await, "Daring");
    phone
        .ok(json!({"cmd": "serviceWorker", "timeoutMs": 30000}))
        .await;
    // His caseload, from his index document, holds the colleague's visit.
    phone
        .wait_count("button.record[data-type=visit][data-status=stored]", 1)
        .await;

    // The app stores what it lists within 250 ms; a phone closed sooner lists the record
    // again only once online.
    phone
        .ok(json!({"cmd": "summaries", "count": 1, "timeoutMs": 30000}))
        .await;

    // Step 2: offline, the app starts again from the service worker.
    phone.ok(json!({"cmd": "offline", "offline": true})).await;
    phone.ok(json!({"cmd": "reload"})).await;
    assert_eq!(phone.wait("#online.off").await, "Luring");

    // Step 3: a visit and a referral from it, offline.
    phone
        .ok(json!({"cmd": "click", "selector": "#new-visit"}))
        .await;
    phone
        .fill_all(&[
            ("#nik", "3277015204800002"),
            ("#kk", "3277010101090003"),
            ("#name", "Siti Aminah"),
            ("#notes", "Rumah semi permanen, 5 anggota keluarga."),
            ("#followUpOn", "2026-01-05"),
        ])
        .await;
    phone.screenshot("app-kunjungan-baru").await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone.wait("#record-status[data-status=waiting]").await;
    phone
        .ok(json!({"cmd": "click", "selector": "#refer"}))
        .await;
    phone
        .ok(json!({"cmd": "select", "selector": "#program", "value": "kis-pbi"}))
        .await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#reason", "value": "Tidak memiliki jaminan kesehatan."}))
        .await;
    phone
        .ok(json!({"cmd": "check", "selector": "#doc-ktp"}))
        .await;
    phone
        .ok(json!({"cmd": "check", "selector": "#consent"}))
        .await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone
        .wait("#referral-status[data-referral-status=submitted]")
        .await;

    // Step 4: the browser closes and opens again, still offline: both are there, waiting,
    // beside the colleague's visit.
    phone.ok(json!({"cmd": "restart"})).await;
    phone.ok(json!({"cmd": "goto", "path": "/app/"})).await;
    phone
        .wait_count("button.record[data-status=waiting]", 2)
        .await;
    phone
        .wait_count("button.record[data-status=stored]", 1)
        .await;
    assert_eq!(phone.wait("#waiting").await, "2 menunggu dikirim");
    // All three were listed from their summaries before the repo started (the wasm, which
    // holds the page's thread while it compiles, is loaded only after the list is drawn).
    let marks = phone
        .ok(json!({
            "cmd": "marks",
            "names": ["fieldsync:caseload-listed", "fieldsync:repo-started"],
            "timeoutMs": 30000,
        }))
        .await;
    let mark = |name: &str| {
        marks["marks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == json!(name))
            .cloned()
            .unwrap()
    };
    let (listed, started) = (
        mark("fieldsync:caseload-listed"),
        mark("fieldsync:repo-started"),
    );
    assert_eq!(listed["detail"]["rows"], json!(3), "{marks}");
    assert!(
        listed["startTime"].as_f64().unwrap() < started["startTime"].as_f64().unwrap(),
        "{marks}"
    );
    phone.screenshot("app-luring").await;

    // Step 5: online, both are acknowledged and the coordinator's feed lists them.
    phone.ok(json!({"cmd": "offline", "offline": false})).await;
    phone
        .wait_count("button.record[data-status=stored]", 3)
        .await;
    assert_eq!(phone.wait("#waiting").await, "0 menunggu dikirim");
    phone.screenshot("app-tersimpan").await;
    // Search by name or NIK.
    phone
        .ok(json!({"cmd": "fill", "selector": "#search", "value": "32770152"}))
        .await;
    phone.wait_count("button.record", 3).await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#search", "value": "Joko"}))
        .await;
    phone.wait_count("button.record", 0).await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#search", "value": ""}))
        .await;
    let feed = ita.get("/api/activity").await.json();
    let items: Vec<&Value> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["createdBy"] == json!("peksos-budi"))
        .collect();
    let mut kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["referral", "visit"], "{feed}");
    assert!(
        items
            .iter()
            .all(|i| i["beneficiary"]["nik"] == json!("3277015204800002"))
    );
    let referral = items
        .iter()
        .find(|i| i["kind"] == json!("referral"))
        .unwrap();
    assert_eq!(referral["status"], json!("submitted"));
    let referral_id = referral["document"].as_str().unwrap().to_owned();

    // Step 6: a supervisor approves; the phone shows it.
    let mut sri = Client::script(&server, "supervisor-sri").await;
    let decided = sri
        .post_json(
            &format!("/api/referrals/{referral_id}/events"),
            &json!({"kind": "approved"}),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    phone
        .wait("button.record .referral-status[data-referral-status=approved]")
        .await;
    phone.screenshot("app-disetujui").await;

    // Step 6b: offline, Budi corrects his visit (notes and follow-up date): waiting on the
    // phone, stored once online, and the coordinator's replica receives the edit.
    let visit_id = items.iter().find(|i| i["kind"] == json!("visit")).unwrap()["document"]
        .as_str()
        .unwrap()
        .to_owned();
    phone.ok(json!({"cmd": "offline", "offline": true})).await;
    phone.wait("#online.off").await;
    phone
        .ok(json!({"cmd": "click", "selector": format!("button.record[data-url='automerge:{visit_id}']")}))
        .await;
    phone.ok(json!({"cmd": "click", "selector": "#edit"})).await;
    let corrected = "Rumah semi permanen, 6 anggota keluarga.";
    phone
        .ok(json!({"cmd": "fill", "selector": "#notes", "value": corrected}))
        .await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#followUpOn", "value": "2026-01-12"}))
        .await;
    phone.screenshot("app-ubah-kunjungan").await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone.wait("#record-status[data-status=waiting]").await;
    phone.ok(json!({"cmd": "offline", "offline": false})).await;
    phone.wait("#record-status[data-status=stored]").await;
    let (coordinator, _coordinator_sync) = server.phone_as("koordinator-ita").await;
    let visit_doc = fieldsync_protocol::DocumentId::parse(&visit_id).unwrap();
    coordinator.find(visit_doc).await;
    coordinator
        .wait_doc(visit_doc, WAIT, |doc| {
            use automerge::ReadDoc;
            let text = |key: &str| match doc.get(automerge::ROOT, key) {
                Ok(Some((automerge::Value::Object(_), id))) => doc.text(&id).ok(),
                _ => None,
            };
            text("notes").as_deref() == Some(corrected)
                && text("followUpOn").as_deref() == Some("2026-01-12")
        })
        .await
        .expect("the coordinator receives the edit");

    // An outreach note, online: stored at once.
    phone
        .ok(json!({"cmd": "click", "selector": "button.brand"}))
        .await;
    phone
        .ok(json!({"cmd": "click", "selector": "#new-outreach"}))
        .await;
    phone
        .fill_all(&[
            ("#topic", "Pencegahan stunting"),
            ("#place", "Balai RW 05"),
            ("#attendees", "25"),
            ("#notes", "Dihadiri kader posyandu."),
        ])
        .await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone.wait("#record-status[data-status=stored]").await;

    // Step 7: offline, Budi logs a visit, and meanwhile he is moved to another kelurahan: the
    // server refuses the visit, and the app says which field and why.
    phone.ok(json!({"cmd": "offline", "offline": true})).await;
    phone.wait("#online.off").await;
    phone
        .ok(json!({"cmd": "click", "selector": "button.brand"}))
        .await;
    phone
        .ok(json!({"cmd": "click", "selector": "#new-visit"}))
        .await;
    phone
        .fill_all(&[
            ("#nik", "3277011503700001"),
            ("#name", "Joko Susilo"),
            ("#notes", "Lansia tinggal sendiri."),
        ])
        .await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone.wait("#record-status[data-status=waiting]").await;
    let storage = storage(&server).await;
    let moved = vec![fieldsync_core::schema::RegionCode::parse("32.77.02.1001").unwrap()];
    fieldsync_server::admin::set_areas(storage.as_ref(), "peksos-budi", &moved)
        .await
        .unwrap();
    phone.ok(json!({"cmd": "offline", "offline": false})).await;
    phone.wait("#record-status[data-status=refused]").await;
    let refusal = phone.wait(".refusal li").await;
    assert!(refusal.contains("(area)"), "{refusal}");
    // A refused record waits for nothing: the status bar of the record's own screen says so.
    // A refused record waits for nothing, and neither does the referral whose last change
    // (the supervisor's approval) came from the server: the status bar says so.
    phone.wait("#waiting[data-count='0']").await;
    phone.screenshot("app-ditolak").await;
    // The colleague's visit left his caseload with the kelurahan: its page is no longer in his
    // index, and the list drops it (his own records stay).
    phone
        .ok(json!({"cmd": "click", "selector": "button.brand"}))
        .await;
    let colleagues = format!("button.record[data-url='{}']", theirs.url());
    phone.wait_count(&colleagues, 0).await;
    phone.wait("button.record[data-type=outreach]").await;

    // Step 8: the phone is revoked: the app deletes its data and returns to enrollment.
    let held = phone.ok(json!({"cmd": "storage"})).await;
    assert!(
        held["databases"]
            .as_array()
            .unwrap()
            .contains(&json!("fieldsync-blobs")),
        "the photo store exists before the wipe: {held}"
    );
    let devices = storage.devices("peksos-budi").await.unwrap();
    let app_device = devices.iter().find(|d| d.label == "field app").unwrap();
    assert!(storage.revoke_device(&app_device.id).await.unwrap());
    storage.close().await.unwrap();
    phone.wait("#code").await;
    let left = phone.ok(json!({"cmd": "storage"})).await;
    assert_eq!(left["localStorage"], json!(0), "{left}");
    let databases = left["databases"].as_array().unwrap();
    for kept in ["fieldsync", "fieldsync-blobs"] {
        assert!(!databases.contains(&json!(kept)), "{kept}: {left}");
    }
    assert_eq!(left["uploads"], json!(0), "{left}");
    phone.0.quit().await;
}

/// Step by step, issue 14's story: offline, a field worker photographs a KTP for a referral
/// with the phone's camera (Chromium's fake one); the record shows the scan waiting. Online,
/// it uploads (tus, resumed after the connection is cut mid-upload), the server has it, and a
/// supervisor's web session reads it.
#[tokio::test]
async fn a_ktp_photographed_offline_reaches_the_server_and_the_supervisor() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    person(&server, "koordinator-ita", Role::Coordinator, &["32.77.01"]).await;
    person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;
    let profile = tempfile::tempdir().unwrap();

    // Step 1: Budi's phone is enrolled and online.
    let mut ita = Client::script(&server, "koordinator-ita").await;
    let made = ita
        .post_json("/api/enrollment-codes", &json!({"user": "peksos-budi"}))
        .await;
    let code = made.json()["code"].as_str().unwrap().to_owned();
    let mut phone = Phone::start(&server, profile.path()).await;
    phone.ok(json!({"cmd": "goto", "path": "/app/"})).await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#code", "value": code}))
        .await;
    phone
        .ok(json!({"cmd": "click", "selector": "form.enroll button[type=submit]"}))
        .await;
    phone.wait("#online.ok").await;
    phone
        .ok(json!({"cmd": "serviceWorker", "timeoutMs": 30000}))
        .await;

    // Step 2: offline, a referral, and a photo of the KTP for it.
    phone.ok(json!({"cmd": "offline", "offline": true})).await;
    phone.wait("#online.off").await;
    phone
        .ok(json!({"cmd": "click", "selector": "#new-referral"}))
        .await;
    phone
        .fill_all(&[
            ("#nik", "3277015204800002"),
            ("#name", "Siti Aminah"),
            ("#reason", "Tidak memiliki jaminan kesehatan."),
        ])
        .await;
    phone
        .ok(json!({"cmd": "check", "selector": "#consent"}))
        .await;
    phone.ok(json!({"cmd": "click", "selector": "#save"})).await;
    phone.wait("#record-status[data-status=waiting]").await;
    phone
        .ok(json!({"cmd": "click", "selector": "#add-attachment"}))
        .await;
    phone
        .ok(json!({"cmd": "select", "selector": "#attach-kind", "value": "ktp"}))
        .await;
    phone
        .ok(json!({"cmd": "fill", "selector": "#attach-caption", "value": "KTP penerima"}))
        .await;
    phone.wait("#capture:enabled").await;
    phone.screenshot("app-foto-ktp").await;
    phone
        .ok(json!({"cmd": "click", "selector": "#capture"}))
        .await;
    let waiting = phone
        .wait("li.attachment[data-kind=ktp] .attachment-state[data-state=waiting]")
        .await;
    assert_eq!(waiting, "Menunggu diunggah");
    // The checklist counts the scan, though the KTP box was not ticked.
    let documents = phone.wait("dl .row:has(dt:text-is('Dokumen')) dd").await;
    assert_eq!(documents, "KTP ✓ (scan)");
    let sha256 = phone
        .ok(json!({"cmd": "attr", "selector": "li.attachment[data-kind=ktp]", "name": "data-sha256"}))
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sha256.len(), 64, "{sha256}");
    phone.screenshot("app-foto-menunggu").await;

    // Step 3: online over a slow uplink; the connection is cut mid-upload, the app keeps the
    // upload's URL, and once online again it resumes and finishes.
    phone
        .ok(json!({"cmd": "throttle", "uploadBytesPerSecond": 4096}))
        .await;
    phone.ok(json!({"cmd": "offline", "offline": false})).await;
    // The upload has begun once tus-js-client has stored its URL (before its first byte; the
    // progress shown is no sign: the browser reports bytes buffered, not sent).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored = phone.ok(json!({"cmd": "storage"})).await;
        if stored["uploads"] == json!(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload did not begin: {stored}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phone.ok(json!({"cmd": "offline", "offline": true})).await;
    // A real gap, long enough for the socket's close to arrive: the adapter then starts a
    // retry of its own, which once replaced the next working socket behind the repo's back and
    // left the record waiting for ever.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        phone
            .ok(json!({"cmd": "attr", "selector": "li.attachment[data-kind=ktp] .attachment-state", "name": "data-state"}))
            .await["value"],
        json!("waiting"),
        "cut before the upload finished"
    );
    let stored = phone.ok(json!({"cmd": "storage"})).await;
    assert_eq!(stored["uploads"], json!(1), "{stored}");
    phone.ok(json!({"cmd": "offline", "offline": false})).await;
    phone
        .wait("li.attachment .attachment-state[data-state=uploaded]")
        .await;
    let stored = phone
        .0
        .send(json!({"cmd": "waitFor", "selector": "#record-status[data-status=stored]", "timeoutMs": 30000}))
        .await;
    if stored["ok"] != json!(true) {
        // Say what the app believed, for the next person reading a failure.
        let online = phone
            .ok(json!({"cmd": "attr", "selector": ".statusbar", "name": "data-online"}))
            .await;
        let status = phone
            .ok(json!({"cmd": "attr", "selector": "#record-status", "name": "data-status"}))
            .await;
        let storage = phone.ok(json!({"cmd": "storage"})).await;
        let log = phone.0.logged().join("\n");
        panic!("the record was not stored: online {online}, status {status}, {storage}\n{log}");
    }
    let stored = phone.ok(json!({"cmd": "storage"})).await;
    assert_eq!(stored["uploads"], json!(0), "finished: {stored}");
    phone.screenshot("app-foto-terunggah").await;

    // Step 4: the server has the blob, and the supervisor's web session may read it.
    let (_, token) = server.enroll("peksos-budi").await;
    let bearer = format!("Bearer {token}");
    let head = Client::anonymous(&server)
        .send(
            "HEAD",
            &format!("/files/sha256/{sha256}"),
            "",
            Vec::new(),
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(head.status, 200);
    let mut sri = Client::browser(&server, "supervisor-sri").await;
    let blob = sri.get(&format!("/files/sha256/{sha256}")).await;
    assert_eq!(blob.status, 200);
    assert_eq!(blob.header("content-type"), Some("image/jpeg"));
    assert!(blob.body.starts_with(&[0xff, 0xd8]), "a JPEG");

    // Step 5: the supervisor's referral page shows the scan beside the checklist.
    let queue = sri.get("/api/referrals").await.json();
    let id = queue["items"][0]["id"].as_str().unwrap().to_owned();
    let page = sri.get(&format!("/referrals/{id}")).await.text();
    assert!(
        page.contains(&format!(r#"data-sha256="{sha256}" data-state="stored""#))
            && page.contains(&format!(r#"<img src="/files/sha256/{sha256}/thumb""#)),
        "{page}"
    );
    assert!(page.contains(r#"<span class="doc yes" data-item="ktp""#));
    let thumb = sri.get(&format!("/files/sha256/{sha256}/thumb")).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    phone.0.quit().await;
}
