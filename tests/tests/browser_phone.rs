//! The office pages on a phone (390×844) and at a desk (1366×768), in a real browser (Debian's
//! Chromium, headless, driven by Playwright through tests/js/phone.mjs): no page scrolls
//! sideways, lists are cards on the phone, whatever is tapped in a list or a form is at least
//! 44 px high, chart labels stay readable; a supervisor decides a referral on her phone with
//! the one-decision form and goes on to the next; the queue shows a new referral live.
//!
//! Set FIELDSYNC_SCREENSHOTS=DIR to also save a screenshot of each page checked.

mod common;
#[path = "web/support.rs"]
mod support;

use common::node::NodeDriver;
use common::{TestServer, WAIT};
use fieldsync_core::schema::{FieldDocument, RegionCode, Role, examples, format_millis};
use fieldsync_protocol::DocumentId;
use serde_json::{Value, json};

const KELURAHAN: &str = "32.77.01.1001";
const SIZES: [(u32, u32); 2] = [(390, 844), (1366, 768)];

struct Phone(NodeDriver);

impl Phone {
    async fn start(server: &TestServer) -> Self {
        Self(NodeDriver::pages("phone.mjs", server.addr).await)
    }

    async fn ok(&mut self, command: Value) -> Value {
        self.0.ok(command).await
    }

    async fn login(&mut self, user: &str) {
        let password = support::password_of(user);
        self.ok(json!({"cmd": "login", "user": user, "password": password}))
            .await;
    }

    async fn size(&mut self, (width, height): (u32, u32)) {
        self.ok(json!({"cmd": "viewport", "width": width, "height": height}))
            .await;
    }

    async fn goto(&mut self, path: &str) {
        let answer = self.ok(json!({"cmd": "goto", "path": path})).await;
        assert_eq!(answer["status"], 200, "{path}: {answer}");
    }

    async fn click(&mut self, selector: &str) -> Value {
        self.ok(json!({"cmd": "click", "selector": selector})).await
    }

    async fn wait_for(&mut self, selector: &str) -> Value {
        self.ok(json!({"cmd": "waitFor", "selector": selector, "timeoutMs": 10000}))
            .await
    }

    /// Checks the page now shown at `width`: no sideways scroll, lists as cards on a phone
    /// and as tables on a desk, tap targets of 44 px on a phone, chart text of 12 px.
    async fn check(&mut self, page: &str, width: u32, expect_rows: bool) {
        if let Ok(dir) = std::env::var("FIELDSYNC_SCREENSHOTS") {
            let name: String = page
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let path = std::path::Path::new(&dir).join(format!("phone-{width}{name}.png"));
            self.ok(json!({"cmd": "screenshot", "path": path})).await;
        }
        let layout = self.ok(json!({"cmd": "layout"})).await;
        let at = format!("{page} at {width} px: {layout}");
        assert!(
            layout["scrollWidth"].as_u64() <= layout["innerWidth"].as_u64(),
            "no horizontal scroll on {at}"
        );
        let rows = layout["rows"].as_u64().unwrap();
        if expect_rows {
            assert!(rows > 0, "{at}");
        }
        if width < 600 {
            assert_eq!(layout["cards"], rows, "every list row is a card on {at}");
            assert_eq!(layout["small"], json!([]), "tap targets on {at}");
            assert_eq!(
                layout["unlabelled"],
                json!([]),
                "card cells say what they are on {at}"
            );
        } else {
            assert_eq!(layout["cards"], 0, "tables stay tables on {at}");
        }
        assert_eq!(layout["tinyText"], json!([]), "chart text on {at}");
    }

    async fn quit(self) {
        self.0.quit().await;
    }
}

/// A referral from `phone`, submitted `days` ago, for `name`, acknowledged by the server.
async fn referral_from(phone: &fieldsync_client::Replica, name: &str, days: i64) -> DocumentId {
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let name = name.to_owned();
    let at = format_millis(now() - days * 86_400_000);
    let id = phone
        .create(move |tx| {
            let mut r = examples::referral(&area, "peksos-budi");
            r.beneficiary.name = name;
            r.envelope.created_at = at.clone();
            r.events[0].at = at;
            FieldDocument::Referral(r).write(tx)
        })
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    id
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The family card of the visit every page shows.
const KK: &str = "3277010101200001";

#[tokio::test]
async fn every_office_page_fits_a_phone_and_a_desk() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;
    support::person(&server, "admin-tono", Role::Admin, &["32.77"]).await;
    let (phone, _handle) = server.phone_as("peksos-budi").await;
    let area = RegionCode::parse(KELURAHAN).unwrap();
    let visit = phone
        .create(move |tx| {
            let mut v = examples::visit(&area, "peksos-budi");
            v.beneficiary.kk = Some(fieldsync_core::schema::Kk::parse(KK).unwrap());
            v.location = Some((-6.8975, 107.5381));
            FieldDocument::Visit(v).write(tx)
        })
        .await
        .unwrap();
    phone.wait_acknowledged(visit, WAIT).await.unwrap();
    let referral = referral_from(&phone, "Ibu Siti Aminah Nurhayati Kusumawardhani", 41).await;
    // A decision, so that the statistics have charts.
    let mut script = support::Client::script(&server, "supervisor-sri").await;
    let events = format!("/api/referrals/{referral}/events");
    let decided = script
        .post_json(
            &events,
            &json!({"kind": "rejected", "note": "Sudah terdaftar"}),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    referral_from(&phone, "Ibu Kartini", 3).await;

    let mut browser = Phone::start(&server).await;
    browser.login("supervisor-sri").await;
    let nik = examples::visit(&RegionCode::parse(KELURAHAN).unwrap(), "x")
        .beneficiary
        .nik;
    let pages = [
        ("/activity".to_owned(), true),
        ("/referrals".to_owned(), true),
        ("/referrals?status=all".to_owned(), true),
        (format!("/referrals/{referral}"), true),
        ("/stats".to_owned(), true),
        (format!("/beneficiaries/{}", nik.as_str()), false),
        ("/exports".to_owned(), false),
        ("/search?q=siti+ami".to_owned(), false),
        (format!("/households/{KK}"), false),
        ("/map".to_owned(), false),
    ];
    for size in SIZES {
        browser.size(size).await;
        for (path, rows) in &pages {
            browser.goto(path).await;
            browser.check(path, size.0, *rows).await;
        }
    }
    // Filters fold on the phone, with the number set in their summary.
    browser.size(SIZES[0]).await;
    browser.goto("/referrals?program=kis-pbi").await;
    let summary = browser.wait_for("details.filters > summary").await;
    let said: Vec<&str> = summary["text"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(said.join(" "), "Filter (1 aktif)", "{summary}");
    let folded = json!({"cmd": "waitFor", "selector": "form.filters select[name=program]", "timeoutMs": 300});
    assert_eq!(browser.0.send(folded.clone()).await["ok"], false, "folded");
    browser.click("details.filters > summary").await;
    browser.ok(folded).await;
    // The feed's filters fold too; the exports' form is no filter, and stays open.
    browser.goto("/activity").await;
    browser.wait_for("details.filters > summary").await;
    let feed =
        json!({"cmd": "waitFor", "selector": "form.filters select[name=type]", "timeoutMs": 300});
    assert_eq!(browser.0.send(feed).await["ok"], false, "folded");
    browser.goto("/exports").await;
    browser.wait_for("form.filters select[name=kind]").await;

    browser.login("admin-tono").await;
    for size in SIZES {
        browser.size(size).await;
        for path in ["/admin/people", "/admin/devices", "/admin/audit"] {
            browser.goto(path).await;
            browser.check(path, size.0, path == "/admin/devices").await;
        }
    }
    browser.quit().await;
}

#[tokio::test]
async fn a_supervisor_decides_on_her_phone_and_the_queue_shows_new_referrals_live() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &[KELURAHAN])
        .await;
    support::person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;
    let (phone, _handle) = server.phone_as("peksos-budi").await;
    let first = referral_from(&phone, "Ibu Sari", 9).await;
    let second = referral_from(&phone, "Ibu Wati", 2).await;

    let mut browser = Phone::start(&server).await;
    browser.login("supervisor-sri").await;
    browser.size(SIZES[0]).await;
    browser.goto("/referrals").await;
    let row = format!("table#queue tr[data-doc=\"{first}\"]");
    let card = browser.wait_for(&row).await;
    let text = card["text"].as_str().unwrap();
    assert!(text.starts_with("Ibu Sari"), "who first: {text}");
    assert!(text.contains("9 hari"), "{text}");

    // Step 1: she opens the oldest and chooses to reject it: the reason becomes required
    // and the form asks her to confirm.
    browser
        .click(&format!("{row} a[href=\"/referrals/{first}\"]"))
        .await;
    browser.wait_for("#status[data-status=submitted]").await;
    browser
        .click("form.decide input[name=kind][value=rejected]")
        .await;
    let asked = browser.wait_for("form.decide .confirm.warning").await;
    assert!(
        asked["text"]
            .as_str()
            .unwrap()
            .contains("Tolak rujukan ini?"),
        "{asked}"
    );
    browser.check("the decision form", 390, true).await;
    // Without the reason and the confirmation, the browser does not send the form.
    let stayed = browser.click("form.decide button[type=submit]").await;
    assert!(
        stayed["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/referrals/{first}")),
        "{stayed}"
    );
    browser
        .ok(json!({"cmd": "fill", "selector": "#decision-note", "value": "KK tidak sesuai alamat"}))
        .await;
    browser
        .click("form.decide .confirm input[name=confirm]")
        .await;
    browser.click("form.decide button[type=submit]").await;
    browser.wait_for(".notice #next-referral").await;
    browser.wait_for("#status[data-status=rejected]").await;
    browser.check("the referral, decided", 390, true).await;

    // Step 2: "next referral" opens the next one waiting.
    let next = browser.click("#next-referral").await;
    assert!(
        next["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/referrals/{second}")),
        "{next}"
    );

    // Step 3: on the queue, a referral synced now appears without a reload, and is
    // announced.
    for size in SIZES {
        browser.size(size).await;
        browser.goto("/referrals").await;
        browser.wait_for("#live-status.on").await;
        let name = format!("Ibu Baru {}", size.0);
        let new = referral_from(&phone, &name, 0).await;
        let shown = browser
            .wait_for(&format!("table#queue tr[data-doc=\"{new}\"]"))
            .await;
        assert!(shown["text"].as_str().unwrap().contains(&name), "{shown}");
        let news = browser
            .ok(json!({"cmd": "textOf", "selector": "#live-news[aria-live=polite]"}))
            .await;
        let said = news["text"].as_str().unwrap();
        assert!(
            said.starts_with("1 rujukan baru") && said.contains(&name),
            "{news}"
        );
        browser.check("the live queue", size.0, true).await;
    }
    browser.quit().await;
}
