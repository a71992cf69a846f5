//! The coordinator's workbench on the demo (`fieldsync serve --demo`), in a real browser
//! (Debian's Chromium through tests/js/workbench.mjs) at 1366×768 and at 390×844: each list's
//! count is what the demo's records say when read independently through the feed and
//! summary APIs; a visit a phone syncs a week late appears among the records that arrived
//! late; at phone width neither the workbench nor the feed scrolls sideways.
//!
//! Set FIELDSYNC_SCREENSHOTS=DIR to also save screenshots of the workbench.

mod common;
#[path = "web/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::node::NodeDriver;
use common::{TestServer, WAIT};
use fieldsync_core::schema::{
    FieldDocument, Nik, RegionCode, Role, examples, format_millis, timestamp_millis,
};
use fieldsync_server::demo::{Credential, Demo, READY_KEY};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use support::Client;

const DAY: i64 = 86_400_000;
const WIB: i64 = 7 * 3_600_000;
/// Seeding takes a few seconds in a debug build; a busy CI machine gets much more.
const SEED_WAIT: Duration = Duration::from_secs(180);

struct Browser(NodeDriver);

impl Browser {
    async fn start(server: &TestServer) -> Self {
        Self(NodeDriver::pages("workbench.mjs", server.addr).await)
    }

    async fn ok(&mut self, command: Value) -> Value {
        self.0.ok(command).await
    }

    async fn screenshot(&mut self, name: &str) {
        if let Ok(dir) = std::env::var("FIELDSYNC_SCREENSHOTS") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            self.ok(json!({"cmd": "screenshot", "path": path})).await;
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `YYYY-MM-DD` of a WIB day number.
fn day_text(days: i64) -> String {
    format_millis(days * DAY)[..10].to_owned()
}

/// The demo, seeded, and the people it announced.
async fn demo() -> (TestServer, Vec<Credential>) {
    type Announced = Arc<Mutex<Vec<Credential>>>;
    let announced = Announced::default();
    let told = announced.clone();
    let demo = Demo {
        announce: Arc::new(move |_, people| told.lock().unwrap().extend_from_slice(people)),
    };
    let server = TestServer::start_with(|c| c.demo = Some(demo)).await;
    let db = SqlitePool::connect(&server.config.database_url)
        .await
        .unwrap();
    let ready = async {
        loop {
            let done: Option<String> =
                sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
                    .bind(READY_KEY)
                    .fetch_optional(&db)
                    .await
                    .unwrap();
            if done.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(SEED_WAIT, ready)
        .await
        .expect("the demo is seeded in time");
    db.close().await;
    let people = announced.lock().unwrap().clone();
    (server, people)
}

/// Every row of the feed the viewer may read, through its pages.
async fn whole_feed(client: &mut Client) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = "/api/activity?limit=200".to_owned();
    loop {
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let page = reply.json();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/activity?limit=200&cursor={c}"),
            None => return items,
        }
    }
}

/// The workbench's counts worked out from the feed and the summary, without the workbench.
async fn expected_counts(client: &mut Client) -> BTreeMap<String, i64> {
    let t = now();
    let today_days = (t + WIB).div_euclid(DAY);
    let weekday = (today_days + 3).rem_euclid(7); // Monday 0: the epoch was a Thursday.
    let today = day_text(today_days);
    let week_end = day_text(today_days + 6 - weekday);
    let feed = whole_feed(client).await;
    let at = |i: &Value| timestamp_millis(i["at"].as_str().unwrap()).unwrap();
    let visits: Vec<&Value> = feed.iter().filter(|i| i["kind"] == "visit").collect();
    let open_follow_ups: Vec<(&Value, &str)> = visits
        .iter()
        .filter_map(|v| Some((*v, v["followUpOn"].as_str()?)))
        .filter(|(v, _)| {
            let nik = &v["beneficiary"]["nik"];
            !visits
                .iter()
                .any(|w| &w["beneficiary"]["nik"] == nik && at(w) > at(v))
        })
        .collect();
    let overdue = open_follow_ups
        .iter()
        .filter(|(_, d)| *d < today.as_str())
        .count();
    let due = open_follow_ups
        .iter()
        .filter(|(_, d)| (today.as_str()..=week_end.as_str()).contains(d))
        .count();
    let referrals = |status: &str, days: i64| {
        feed.iter()
            .filter(|i| i["kind"] == "referral" && i["status"] == status)
            .filter(|i| at(i) < t - days * DAY)
            .count()
    };
    let summary = client.get("/api/summary").await.json();
    let workers = summary["workers"].as_array().unwrap();
    let unsynced = workers
        .iter()
        .flat_map(|w| w["devices"].as_array().unwrap().iter())
        .filter(|d| {
            d["lastSyncAt"]
                .as_str()
                .is_none_or(|s| timestamp_millis(s).unwrap() < t - 7 * DAY)
        })
        .count();
    let idle = workers
        .iter()
        .filter(|w| w["visitsPerWeek"].as_array().unwrap().last() == Some(&json!(0)))
        .count();
    [
        ("follow-ups-overdue", overdue),
        ("follow-ups-due", due),
        ("needs-documents", referrals("needs-documents", 7)),
        ("approved-not-enrolled", referrals("approved", 14)),
        ("phones-not-synced", unsynced),
        ("workers-without-visits", idle),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n as i64))
    .collect()
}

#[tokio::test]
async fn the_demo_workbench_counts_what_the_records_say_and_fits_a_phone() {
    let (server, people) = demo().await;
    let coordinator = people
        .iter()
        .find(|p| p.role == Role::Coordinator && p.areas.iter().all(|a| a.len() == 8))
        .expect("a kecamatan coordinator")
        .clone();
    let kecamatan = coordinator.areas[0].clone();
    let worker = people
        .iter()
        .find(|p| p.role == Role::Peksos && p.areas[0].starts_with(&kecamatan))
        .expect("a field worker of the kecamatan")
        .clone();

    // Step 1: a phone of the kecamatan syncs a visit made 8 days ago (a new person, no
    // follow-up: only the list of late arrivals changes).
    let (phone, _sync) = server.phone_as(&worker.id).await;
    let area = RegionCode::parse(&worker.areas[0]).unwrap();
    let by = worker.id.clone();
    let late = phone
        .create(move |tx| {
            let mut v = examples::visit(&area, &by);
            let at = format_millis(now() - 8 * DAY);
            v.envelope.created_at = at.clone();
            v.visited_at = at;
            v.follow_up_on = None;
            v.beneficiary.nik = Nik::parse("3277024107850099").unwrap();
            v.beneficiary.name = "Ibu Sinkron Terlambat".into();
            FieldDocument::Visit(v).write(tx)
        })
        .await
        .unwrap();
    phone.wait_acknowledged(late, WAIT).await.unwrap();

    // Step 2: the counts, read through the feed and the summary.
    let mut api = Client::anonymous(&server);
    api.sign_in(&coordinator.id, &coordinator.password).await;
    let expected = expected_counts(&mut api).await;
    assert!(
        expected.values().any(|n| *n > 0),
        "the demo has something to act on: {expected:?}"
    );

    // Step 3: the coordinator signs in and lands on the workbench, at both sizes.
    let mut browser = Browser::start(&server).await;
    let landed = browser
        .ok(json!({"cmd": "login", "user": coordinator.id, "password": coordinator.password}))
        .await;
    assert!(
        landed["url"].as_str().unwrap().ends_with("/workbench"),
        "{landed}"
    );
    for (width, height) in [(1366, 768), (390, 844)] {
        browser
            .ok(json!({"cmd": "viewport", "width": width, "height": height}))
            .await;
        browser
            .ok(json!({"cmd": "goto", "path": "/workbench"}))
            .await;
        let shown = browser.ok(json!({"cmd": "counts"})).await;
        for (list, n) in &expected {
            assert_eq!(
                shown["counts"][list],
                json!(n),
                "{list} at {width} px: {shown}"
            );
        }
        assert_eq!(shown["counts"], shown["shown"], "badges say the counts");
        // The visit synced late is the newest of the late arrivals.
        let row = browser
            .ok(json!({"cmd": "waitFor", "selector": format!("#arrived-late li[data-doc=\"{late}\"]")}))
            .await;
        assert!(
            row["text"]
                .as_str()
                .unwrap()
                .contains("Ibu Sinkron Terlambat"),
            "{row}"
        );
        assert!(shown["counts"]["arrived-late"].as_i64().unwrap() >= 1);
        // Areas by their names, never by code: the coordinator's kecamatan and its kelurahan.
        let text = browser.ok(json!({"cmd": "mainText"})).await;
        let text = text["text"].as_str().unwrap();
        assert!(text.contains("Wilayah Anda: Cimahi "), "{text}");
        let coded = text.split_whitespace().find(|w| {
            let parts: Vec<&str> = w
                .trim_matches(|c: char| !c.is_ascii_digit())
                .split('.')
                .collect();
            parts.len() >= 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        assert_eq!(coded, None, "an area shown by its code at {width} px");
        for page in ["/workbench", "/activity"] {
            browser.ok(json!({"cmd": "goto", "path": page})).await;
            browser
                .screenshot(&format!("{}-{width}", page.trim_start_matches('/')))
                .await;
            let o = browser.ok(json!({"cmd": "overflow"})).await;
            assert!(
                o["scrollWidth"].as_i64() <= o["innerWidth"].as_i64(),
                "{page} at {width} px scrolls sideways: {o}"
            );
        }
        if width == 390 {
            browser
                .ok(json!({"cmd": "goto", "path": "/workbench"}))
                .await;
            let small = browser
                .ok(json!({"cmd": "smallTargets", "selector": "main"}))
                .await;
            assert_eq!(small["small"], json!([]), "tap targets under 44 px");
        }
    }
    browser.ok(json!({"cmd": "quit"})).await;
}
