//! The pages in a real browser (Debian's Chromium, headless, driven by Playwright through
//! tests/js/browser.mjs), with phones syncing in the same test: a supervisor approves a
//! referral and the field worker's phone receives the decision; a coordinator watches a new
//! visit appear live; the keyboard and screen readers can follow the pages, whose text has
//! enough contrast (WCAG AA).
//!
//! Set FIELDSYNC_SCREENSHOTS=DIR to also save screenshots of the pages walked through.

mod common;
#[path = "web/support.rs"]
mod support;

use std::path::PathBuf;

use automerge::{ROOT, ReadDoc};
use common::node::NodeDriver;
use common::{TestServer, WAIT};
use fieldsync_core::schema::{FieldDocument, Program, RegionCode, Role, examples};
use serde_json::{Value, json};

const KELURAHAN: &str = "32.77.01.1001";

struct Browser(NodeDriver);

impl Browser {
    async fn start(server: &TestServer) -> Self {
        Self(NodeDriver::pages("browser.mjs", server.addr).await)
    }

    /// Sends one command; panics unless it succeeded.
    async fn ok(&mut self, command: Value) -> Value {
        self.0.ok(command).await
    }

    /// Saves a screenshot when FIELDSYNC_SCREENSHOTS names a directory.
    async fn screenshot(&mut self, name: &str) {
        if let Ok(dir) = std::env::var("FIELDSYNC_SCREENSHOTS") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            self.ok(json!({"cmd": "screenshot", "path": path, "fullPage": false}))
                .await;
        }
    }

    async fn quit(self) {
        self.0.quit().await;
    }
}

fn referral_to(
    program: Program,
    by: &str,
) -> impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), automerge::AutomergeError>
{
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let by = by.to_owned();
    move |tx| {
        let mut r = examples::referral(&area, &by);
        r.program = program;
        FieldDocument::Referral(r).write(tx)
    }
}

#[tokio::test]
async fn a_supervisor_approves_a_referral_in_the_browser_and_the_phone_receives_it() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;

    // Step 1: Budi refers two families from his phone, one to KIS-PBI and one to PKH.
    let (phone, _handle) = server.phone_as("peksos-budi").await;
    let kis = phone
        .create(referral_to(Program::KisPbi, "peksos-budi"))
        .await
        .unwrap();
    let pkh = phone
        .create(referral_to(Program::Pkh, "peksos-budi"))
        .await
        .unwrap();
    phone.wait_acknowledged(kis, WAIT).await.unwrap();
    phone.wait_acknowledged(pkh, WAIT).await.unwrap();

    // Step 2: Sri signs in and filters her queue to KIS-PBI.
    let mut browser = Browser::start(&server).await;
    let landed = browser
        .ok(json!({"cmd": "login", "user": "supervisor-sri", "password": support::password_of("supervisor-sri")}))
        .await;
    assert!(
        landed["url"].as_str().unwrap().ends_with("/referrals"),
        "{landed}"
    );
    browser
        .ok(json!({"cmd": "select", "selector": "form.filters select[name=program]", "value": "kis-pbi"}))
        .await;
    browser
        .ok(json!({"cmd": "click", "selector": "form.filters button[type=submit]"}))
        .await;
    let row = format!("table#queue tr[data-doc=\"{kis}\"]");
    browser.ok(json!({"cmd": "waitFor", "selector": row})).await;
    browser.screenshot("antrian-rujukan").await;
    assert_contrast(&mut browser, "the referral queue").await;
    let hidden = browser
        .ok(json!({"cmd": "attr", "selector": "table#queue", "name": "id"}))
        .await;
    assert_eq!(hidden["value"], json!("queue"));
    assert!(
        !page_has(&mut browser, &format!("table#queue tr[data-doc=\"{pkh}\"]")).await,
        "the PKH referral is filtered out"
    );

    // Step 3: she opens the referral and approves it.
    browser
        .ok(json!({"cmd": "click", "selector": format!("{row} a[href=\"/referrals/{kis}\"]")}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": "#status[data-status=submitted]"}))
        .await;
    browser.screenshot("rujukan").await;
    assert_contrast(&mut browser, "the referral page").await;
    // One decision at a time: she chooses it; SKTM is missing, so the form asks her to
    // confirm before it records the approval.
    browser
        .ok(json!({"cmd": "click", "selector": "form.decide input[name=kind][value=approved]"}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": "form.decide .confirm.warning"}))
        .await;
    assert_contrast(&mut browser, "the decision form, asking to confirm").await;
    browser
        .ok(json!({"cmd": "click", "selector": "form.decide .confirm input[name=confirm]"}))
        .await;
    browser
        .ok(json!({"cmd": "click", "selector": "form.decide button[type=submit]"}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": ".notice"}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": "#status[data-status=approved]"}))
        .await;
    assert_contrast(&mut browser, "the referral page, approved").await;
    browser.quit().await;

    // Step 4: the decision, written into the document in Sri's name, reaches Budi's phone.
    phone
        .wait_doc(kis, WAIT, |doc| {
            matches!(
                FieldDocument::read(doc),
                Ok(FieldDocument::Referral(r))
                    if r.events.iter().any(|e| e.kind.as_str() == "approved" && e.by == "supervisor-sri")
            )
        })
        .await
        .expect("the approval reaches the field worker's phone");
}

/// Every text shown on the current page has WCAG AA contrast with what is behind it.
async fn assert_contrast(browser: &mut Browser, page: &str) {
    let report = browser.ok(json!({"cmd": "contrast"})).await;
    assert!(report["checked"].as_u64().unwrap() > 0, "{page}: {report}");
    assert_eq!(report["failures"], json!([]), "{page}: text below 4.5:1");
}

/// Whether an element is on the page now (without waiting for it).
async fn page_has(browser: &mut Browser, selector: &str) -> bool {
    let command =
        json!({"cmd": "attr", "selector": selector, "name": "data-doc", "timeoutMs": 300});
    browser.0.send(command).await["ok"] == json!(true)
}

#[tokio::test]
async fn a_coordinator_sees_a_new_visit_appear_live() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(
        &server,
        "koordinator-dewi",
        Role::Coordinator,
        &["32.77.01"],
    )
    .await;
    let (phone, _handle) = server.phone_as("peksos-budi").await;

    // Step 1: Dewi opens the activity feed; the page says it is live.
    let mut browser = Browser::start(&server).await;
    browser
        .ok(json!({"cmd": "login", "user": "koordinator-dewi", "password": support::password_of("koordinator-dewi")}))
        .await;
    browser
        .ok(json!({"cmd": "goto", "path": "/activity"}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": "#live-status.on"}))
        .await;

    // Step 2: Budi's phone syncs a visit.
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let id = phone
        .create(move |tx| {
            let mut v = examples::visit(&area, "peksos-budi");
            v.beneficiary.name = "Ibu Kartini Live".into();
            FieldDocument::Visit(v).write(tx)
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    assert!(
        phone
            .read(id, |d| d.get(ROOT, "type").unwrap().is_some())
            .await
            .unwrap()
    );

    // Step 3: without reloading, the visit appears in her feed.
    let row = browser
        .ok(json!({"cmd": "waitFor", "selector": format!("table#feed tr[data-doc=\"{id}\"]"), "timeoutMs": 10000}))
        .await;
    assert!(
        row["text"].as_str().unwrap().contains("Ibu Kartini Live"),
        "{row}"
    );
    browser.screenshot("aktivitas").await;
    browser.quit().await;
}

/// A visit from Budi's phone, for Ibu `name`, acknowledged by the server.
async fn visit_from(
    phone: &fieldsync_client::Replica,
    name: &str,
) -> fieldsync_protocol::DocumentId {
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let name = name.to_owned();
    let id = phone
        .create(move |tx| {
            let mut v = examples::visit(&area, "peksos-budi");
            v.beneficiary.name = name;
            FieldDocument::Visit(v).write(tx)
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    id
}

#[tokio::test]
async fn the_keyboard_skips_to_content_and_keeps_its_place_while_new_rows_are_announced() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(
        &server,
        "koordinator-dewi",
        Role::Coordinator,
        &["32.77.01"],
    )
    .await;
    let (phone, _handle) = server.phone_as("peksos-budi").await;
    let first = visit_from(&phone, "Ibu Sari Awal").await;

    // Dewi signs in on her phone, whose keyboard capitalised her id, and mistypes her
    // password first: the id stays in the field (the password does not), and the capital
    // letter does not matter.
    let mut browser = Browser::start(&server).await;
    browser
        .ok(json!({"cmd": "viewport", "width": 390, "height": 844}))
        .await;
    browser.ok(json!({"cmd": "goto", "path": "/login"})).await;
    assert_contrast(&mut browser, "the sign-in page").await;
    browser
        .ok(json!({"cmd": "fill", "selector": "#username", "value": "Koordinator-Dewi"}))
        .await;
    browser
        .ok(json!({"cmd": "fill", "selector": "#password", "value": "salah-salah-salah"}))
        .await;
    browser
        .ok(json!({"cmd": "click", "selector": "form button[type=submit]"}))
        .await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": ".alert"}))
        .await;
    let kept = browser
        .ok(json!({"cmd": "attr", "selector": "#username", "name": "value"}))
        .await;
    assert_eq!(kept["value"], "Koordinator-Dewi");
    let password = browser
        .ok(json!({"cmd": "attr", "selector": "#password", "name": "value"}))
        .await;
    assert_eq!(password["value"], Value::Null);
    let focused = browser.ok(json!({"cmd": "focused"})).await;
    assert_eq!(focused["focused"]["id"], "password", "{focused}");
    assert_contrast(&mut browser, "the sign-in page, refused").await;
    browser
        .ok(json!({"cmd": "login", "user": "Koordinator-Dewi", "password": support::password_of("koordinator-dewi")}))
        .await;
    // At phone size too, as Dewi would open it on the road.
    for (width, height) in [(390, 844), (1366, 768)] {
        browser
            .ok(json!({"cmd": "viewport", "width": width, "height": height}))
            .await;
        browser
            .ok(json!({"cmd": "goto", "path": "/activity"}))
            .await;
        browser
            .ok(json!({"cmd": "waitFor", "selector": "#live-status.on"}))
            .await;
        assert_contrast(&mut browser, &format!("the activity feed at {width} px")).await;

        // The first Tab reaches the skip link, which takes the keyboard past the menu.
        let skip = browser.ok(json!({"cmd": "press", "key": "Tab"})).await;
        assert_eq!(skip["focused"]["cls"], "skip", "{skip}");
        assert_eq!(skip["focused"]["text"], "Langsung ke isi", "{skip}");
        let main = browser.ok(json!({"cmd": "press", "key": "Enter"})).await;
        assert_eq!(main["focused"]["id"], "main", "{main}");
        let next = browser.ok(json!({"cmd": "press", "key": "Tab"})).await;
        assert_ne!(next["focused"]["cls"], "skip", "{next}");
    }

    // Dewi is on the name of the first visit when a second one arrives.
    let name = format!("table#feed tr[data-doc=\"{first}\"] a[href^=\"/beneficiaries/\"]");
    let before = browser.ok(json!({"cmd": "focus", "selector": name})).await;
    assert_eq!(before["focused"]["text"], "Ibu Sari Awal", "{before}");
    let second = visit_from(&phone, "Ibu Kartini Live").await;
    browser
        .ok(json!({"cmd": "waitFor", "selector": format!("table#feed tr[data-doc=\"{second}\"]"), "timeoutMs": 10000}))
        .await;
    let after = browser.ok(json!({"cmd": "focused"})).await;
    assert_eq!(
        after["focused"], before["focused"],
        "focus stays on the same link"
    );
    let news = browser
        .ok(json!({"cmd": "textOf", "selector": "#live-news[aria-live=polite]"}))
        .await;
    let said = news["text"].as_str().unwrap();
    assert!(
        said.starts_with("1 aktivitas baru") && said.contains("Ibu Kartini Live"),
        "{news}"
    );
    assert!(!said.contains("Ibu Sari Awal"), "only the new row: {news}");
    browser.quit().await;
}

#[tokio::test]
async fn the_map_clusters_the_visits_with_a_location_and_counts_the_rest_by_kelurahan() {
    // At a desk, with the Dinas's own tile server (another origin, on this machine: no test
    // needs the internet) whose tiles the page's policy must allow; on a phone, with no tile
    // server set at all.
    let tile_server = tile_server();
    let tiles = fieldsync_server::web::tiles::MapTiles::parse(
        &format!("http://{tile_server}/tiles/{{z}}/{{x}}/{{y}}.png"),
        "Peta uji",
    )
    .unwrap();
    for (tiles, width, height) in [(Some(tiles), 1366, 768), (None, 390, 844)] {
        let with_tiles = tiles.is_some();
        let server = TestServer::start_with(|c| c.map_tiles = tiles).await;
        let mut browser = map_shows_every_visit(&server, width, height).await;
        let loaded = browser
            .ok(json!({"cmd": "count", "selector": "img.leaflet-tile-loaded"}))
            .await;
        assert_eq!(
            loaded["count"].as_u64().unwrap() > 0,
            with_tiles,
            "{width}px: tiles drawn exactly when a tile server is set: {loaded}"
        );
        browser.quit().await;
    }
}

/// A tile server on 127.0.0.1 answering every request with a 1×1 PNG; returns its address.
fn tile_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    const PNG: [u8; 69] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
        0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xb8,
        0xfb, 0xe2, 0x09, 0x00, 0x05, 0x4f, 0x02, 0xaa, 0x2b, 0x87, 0x53, 0x31, 0x00, 0x00, 0x00,
        0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                PNG.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.write_all(&PNG);
        }
    });
    addr
}

/// Opens the map at this size over four visits, three with a location; returns the browser.
async fn map_shows_every_visit(server: &TestServer, width: u32, height: u32) -> Browser {
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(server, "koordinator-dewi", Role::Coordinator, &["32.77.01"]).await;
    let (phone, _handle) = server.phone_as("peksos-budi").await;
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let now = fieldsync_core::schema::format_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 86_400_000,
    );
    let places = [
        Some((-6.8975, 107.5381)),
        Some((-6.8979, 107.5385)),
        Some((-6.8531, 107.5512)),
        None,
    ];
    for place in places {
        let (area, now) = (area.clone(), now.clone());
        let id = phone
            .create(move |tx| {
                let mut v = examples::visit(&area, "peksos-budi");
                v.visited_at = now;
                v.location = place;
                FieldDocument::Visit(v).write(tx)
            })
            .await
            .unwrap();
        phone.wait_acknowledged(id, WAIT).await.unwrap();
    }

    let mut browser = Browser::start(server).await;
    browser
        .ok(json!({"cmd": "login", "user": "koordinator-dewi", "password": support::password_of("koordinator-dewi")}))
        .await;
    browser
        .ok(json!({"cmd": "viewport", "width": width, "height": height}))
        .await;
    browser.ok(json!({"cmd": "goto", "path": "/map"})).await;
    browser
        .ok(json!({"cmd": "attr", "selector": "#map[data-ready=true]", "name": "data-points", "timeoutMs": 10000}))
        .await;
    let points = browser
        .ok(json!({"cmd": "attr", "selector": "#map", "name": "data-points"}))
        .await;
    assert_eq!(points["value"], "3", "{width}px");
    // Every point is drawn: alone, or counted in a cluster.
    let clusters = browser
        .ok(json!({"cmd": "count", "selector": ".marker-cluster span"}))
        .await;
    let clustered: u64 = clusters["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str()?.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let alone = browser
        .ok(json!({"cmd": "count", "selector": "#map path.leaflet-interactive"}))
        .await;
    assert_eq!(
        clustered + alone["count"].as_u64().unwrap(),
        3,
        "{width}px: {clusters} {alone}"
    );
    assert_eq!(alone["wide"], false, "{width}px: no sideways scroll");
    // The visit without a location is counted under its kelurahan, by name.
    let unlocated = browser
        .ok(json!({"cmd": "textOf", "selector": ".unlocated li[data-area=\"32.77.01.1001\"]"}))
        .await;
    assert!(
        unlocated["text"].as_str().unwrap().contains("Melong"),
        "{unlocated}"
    );
    assert!(
        unlocated["text"].as_str().unwrap().contains('1'),
        "{unlocated}"
    );
    let status = browser
        .ok(json!({"cmd": "textOf", "selector": "#map-status"}))
        .await;
    assert!(
        status["text"].as_str().unwrap().starts_with('3'),
        "{status}"
    );
    browser.screenshot(&format!("peta-{width}")).await;
    // Nothing failed on the page, and nothing was refused by its policy.
    let errors = browser.ok(json!({"cmd": "errors"})).await;
    assert_eq!(errors["errors"], json!([]), "{width}px");
    browser
}
