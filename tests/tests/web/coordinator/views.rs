//! A beneficiary's timeline, the summaries, the live stream, the OpenAPI document, and the
//! same views on PostgreSQL.

use std::time::Duration;

use fieldsync_core::schema::{PpksCategory, format_millis};
use serde_json::Value;

use super::feed::{feed_is_merged_and_scoped, filters_narrow};
use super::field::*;
use crate::common::{PgDatabase, TestServer};
use crate::support::{Client, read_until};

#[tokio::test]
async fn a_timeline_gathers_one_beneficiary_across_workers() {
    let f = field().await;
    // Cahya meets Siti too, in her own kelurahan, and writes her name differently.
    let later = create(
        &f.cahya.0,
        visit(
            "32.77.02.1003",
            "cahya",
            f.now - DAY / 2,
            NIK_SITI,
            "Siti Aminah binti Karta",
            PpksCategory::FakirMiskin,
        ),
    )
    .await;
    let mut kota = f.browser("kota").await;
    let reply = kota.get(&format!("/api/beneficiaries/{NIK_SITI}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let t = reply.json();
    let entries: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["document"].as_str().unwrap())
        .collect();
    // Oldest first: the referral's place is its last event (8 days ago), after the visit.
    assert_eq!(entries, [&*f.visit_ani, &*f.referral_ani, &*later]);
    assert_eq!(
        t["names"],
        serde_json::json!(["Siti Aminah", "Siti Aminah binti Karta"])
    );
    let events = t["entries"][1]["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["submitted", "documents-added"]);
    assert_eq!(events[1]["note"], "SKTM menyusul");
    assert_eq!(events[1]["applied"], true);
    assert!(t["entries"][0]["events"].as_array().unwrap().is_empty());

    let page = kota.get(&format!("/beneficiaries/{NIK_SITI}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(rows(&html), [&*f.visit_ani, &*f.referral_ani, &*later]);
    assert!(html.contains("SKTM menyusul") && html.contains("Siti Aminah binti Karta"));
    // The follow-up date (2026-12-01 in the document) as people read it.
    assert!(
        html.contains("<time datetime=\"2026-12-01\">1 Des 2026</time>"),
        "{html}"
    );
    assert!(!html.contains(">2026-12-01<"));

    let mut camat1 = f.browser("camat1").await;
    let mine = camat1
        .get(&format!("/api/beneficiaries/{NIK_SITI}"))
        .await
        .json();
    assert_eq!(
        mine["entries"].as_array().unwrap().len(),
        2,
        "only the kecamatan's records"
    );
    assert_eq!(
        camat1
            .get(&format!("/api/beneficiaries/{NIK_DARTO}"))
            .await
            .status,
        404
    );
    let bad = camat1.get("/api/beneficiaries/12345").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "invalid");
    assert_eq!(
        camat1.get("/beneficiaries/3277019999999999").await.status,
        400
    );

    // Opening a person's record is audited, like a phone's read.
    let storage = fieldsync_server::storage::open(&f.server.config.database_url)
        .await
        .unwrap();
    let lines = storage
        .audit(&fieldsync_server::storage::directory::AuditFilter {
            device_id: Some("web:kota".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    storage.close().await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.document_id == later && l.action == "read"),
        "{lines:?}"
    );
}

async fn summary_counts(f: &Field, started: i64) {
    use fieldsync_server::storage::activity::week_of;
    let mut kota = f.browser("kota").await;
    let reply = kota.get("/api/summary").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let s = reply.json();
    assert_eq!(s["weeks"].as_array().unwrap().len(), 8);
    let worker = |id: &str| {
        s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {s}"))
    };
    let ani = worker("ani");
    let mut weeks = vec![0; 8];
    weeks[(7 - (week_of(f.now) - week_of(f.now - 10 * DAY))) as usize] = 1;
    assert_eq!(ani["visitsPerWeek"], serde_json::json!(weeks));
    assert_eq!(ani["openReferrals"], 1);
    assert_eq!(ani["lastVisitAt"], format_millis(f.now - 10 * DAY));
    let devices = ani["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{ani}");
    let synced =
        fieldsync_core::schema::timestamp_millis(devices[0]["lastSyncAt"].as_str().unwrap())
            .unwrap();
    assert!(synced >= started - 1000 && synced <= now(), "{ani}");
    assert_eq!(worker("cahya")["openReferrals"], 1);
    // The test server's own field worker has a device that never connected.
    let idle = worker("peksos-ani");
    assert_eq!(idle["devices"][0]["lastSyncAt"], Value::Null);
    assert_eq!(idle["visitsPerWeek"], serde_json::json!(vec![0; 8]));

    let area = |code: &str| {
        s["areas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["area"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("{code} in {s}"))
    };
    let a = area("32.77.01.1001");
    assert_eq!(
        (a["visits"].as_i64(), a["referralsOpen"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            a["referralsSubmitted"].as_i64(),
            a["referralsDecided"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(
        (a["outreach"].as_i64(), a["outreachAttendees"].as_i64()),
        (Some(1), Some(25))
    );
    assert_eq!(area("32.77.02.1003")["visits"], 1);
    // A period that holds only Cahya's visit.
    let day = wib_date(f.now - 3 * DAY);
    let narrow = kota
        .get(&format!("/api/summary?from={day}&to={day}"))
        .await
        .json();
    let visits: Vec<(String, i64)> = narrow["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["area"].as_str().unwrap().to_owned(),
                a["visits"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        visits.contains(&("32.77.02.1003".into(), 1))
            && visits.contains(&("32.77.01.1001".into(), 0)),
        "{visits:?}"
    );

    let mut camat2 = f.browser("camat2").await;
    let theirs = camat2.get("/api/summary").await.json();
    let ids: Vec<&str> = theirs["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cahya"]);
    let mut sri = f.browser("sri").await;
    let supervised = sri.get("/api/summary").await.json();
    assert!(
        supervised["areas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outreach"].is_null())
    );
    let page = kota.get("/summary").await;
    assert_eq!(page.status, 200);
    // Weeks by their days ("minggu 12–18 Okt"), not by ISO number ("Mg 42").
    let head = crate::support::between(&page.text(), "<thead>", "</thead>").unwrap();
    assert_eq!(head.matches(">minggu ").count(), 8, "{head}");
    assert!(!head.contains("Mg "), "{head}");
    assert!(
        page.text().contains("data-worker=\"ani\"")
            && page.text().contains("data-area=\"32.77.02.1003\"")
    );
}

#[tokio::test]
async fn the_summary_counts_per_worker_and_kelurahan() {
    let started = now();
    let f = field().await;
    summary_counts(&f, started).await;
}

/// The stream event naming `doc`, or a failure after a few seconds.
async fn stream_of(client: &mut Client) -> (tokio::net::TcpStream, Vec<u8>) {
    let (status, stream, seen) = client.open_stream("/api/activity/stream").await;
    assert_eq!(status, 200);
    (stream, seen)
}

#[tokio::test]
async fn live_changes_reach_coordinators_in_scope_only() {
    let f = field().await;
    let mut camat1 = f.browser("camat1").await;
    let (mut stream, mut seen) = stream_of(&mut camat1).await;
    read_until(&mut stream, &mut seen, "retry:", Duration::from_secs(5)).await;
    // Another kecamatan first: its change is announced before Ani's, so if the stream let
    // it through it would arrive first.
    let theirs = create(
        &f.cahya.0,
        visit(
            "32.77.02.1003",
            "cahya",
            f.now,
            NIK_DARTO,
            "Darto",
            PpksCategory::LansiaTerlantar,
        ),
    )
    .await;
    let ours = create(
        &f.ani.0,
        visit(
            "32.77.01.1001",
            "ani",
            f.now,
            NIK_SITI,
            "Siti Aminah",
            PpksCategory::FakirMiskin,
        ),
    )
    .await;
    read_until(&mut stream, &mut seen, &ours, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.contains("event: change"), "{text}");
    assert!(!text.contains(&theirs), "{text}");

    // What the page's script fetches then: the table alone, with the new row.
    let partial = camat1
        .send("GET", "/activity", "", Vec::new(), &[("X-Partial", "feed")])
        .await;
    assert_eq!(partial.status, 200);
    let html = partial.text();
    assert!(html.starts_with("<table id=\"feed\">"), "{html}");
    assert_eq!(rows(&html).first().map(String::as_str), Some(ours.as_str()));
    assert!(!html.contains("<html"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_coordinator_routes() {
    let server = TestServer::start().await;
    let doc = Client::anonymous(&server)
        .get("/api/openapi.json")
        .await
        .json();
    for path in [
        "/api/activity",
        "/api/activity/stream",
        "/api/beneficiaries/{nik}",
        "/api/summary",
    ] {
        let op = &doc["paths"][path]["get"];
        assert!(op["summary"].is_string(), "{path}");
        assert!(op["responses"]["200"].is_object(), "{path}");
        assert!(op["responses"]["401"].is_object(), "{path}");
    }
    let item = &doc["paths"]["/api/activity"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(
        item["required"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("nextCursor"))
    );
}

#[tokio::test]
async fn the_same_views_on_postgresql() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let started = now();
    let f = field_on(TestServer::start_with(|c| c.database_url = url).await).await;
    feed_is_merged_and_scoped(&f).await;
    filters_narrow(&f).await;
    summary_counts(&f, started).await;
    let mut kota = f.browser("kota").await;
    let t = kota.get(&format!("/api/beneficiaries/{NIK_SITI}")).await;
    assert_eq!(t.json()["entries"].as_array().unwrap().len(), 2);
    drop(f);
    db.drop_database().await;
}
