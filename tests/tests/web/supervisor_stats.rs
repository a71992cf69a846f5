//! Outcome statistics: approval rate and median days to decision, from decisions made at
//! known times by a supervisor's phone, on both databases.

use fieldsync_client::Replica;
use fieldsync_core::schema::{Event, EventKind, FieldDocument, Program, Role, add_event};
use fieldsync_protocol::DocumentId;
use serde_json::json;

use super::{ANI, ANI_AREA, create, referral};
use crate::common::{TestServer, WAIT};
use crate::support::{Client, on_postgres, person};

/// A decision by the supervisor's own phone, at a known time.
async fn decide_at(phone: &Replica, id: &str, kind: EventKind, at: &str) {
    let doc = DocumentId::parse(id).unwrap();
    phone.find(doc).await;
    phone
        .wait_doc(doc, WAIT, |d| FieldDocument::read(d).is_ok())
        .await
        .expect("the supervisor's phone gets the referral");
    let event = Event {
        kind,
        at: at.to_owned(),
        by: "sri".into(),
        note: (kind == EventKind::Rejected).then(|| "Tidak memenuhi syarat".into()),
        id: None,
    };
    phone
        .change(doc, move |tx| add_event(tx, &event).map(|_| ()))
        .await
        .unwrap();
    phone.wait_acknowledged(doc, WAIT).await.unwrap();
}

#[tokio::test]
async fn statistics_count_first_decisions_with_rates_and_median_days() {
    statistics_on(TestServer::start().await).await;
}

#[tokio::test]
async fn statistics_are_the_same_on_postgres() {
    on_postgres(statistics_on).await;
}

async fn statistics_on(server: TestServer) {
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "raka", Role::Supervisor, &["32.73"]).await;
    let (ani, _ani_sync) = server.phone_as(ANI).await;
    let (sri_phone, _sri_sync) = server.phone_as("sri").await;
    // (program, submitted, decision, decided): days to decision 2, 4, 10 and 1.5.
    let cases = [
        (
            Program::KisPbi,
            "2026-11-02T01:00:00Z",
            EventKind::Approved,
            "2026-11-04T01:00:00Z",
        ),
        (
            Program::KisPbi,
            "2026-11-02T01:00:00Z",
            EventKind::Rejected,
            "2026-11-06T01:00:00Z",
        ),
        (
            Program::KisPbi,
            "2026-11-03T01:00:00Z",
            EventKind::Approved,
            "2026-11-13T01:00:00Z",
        ),
        (
            Program::Pkh,
            "2026-11-01T00:00:00Z",
            EventKind::Approved,
            "2026-11-02T12:00:00Z",
        ),
    ];
    for (program, submitted, kind, decided) in cases {
        let id = create(&ani, referral(ANI_AREA, ANI, program, Some(submitted))).await;
        decide_at(&sri_phone, &id, kind, decided).await;
    }
    // Undecided: not counted.
    create(
        &ani,
        referral(ANI_AREA, ANI, Program::KisPbi, Some("2026-11-05T00:00:00Z")),
    )
    .await;

    let mut sri = Client::script(&server, "sri").await;
    let stats = sri.get("/api/stats/referrals").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    let stats = stats.json();
    assert_eq!(
        stats["total"],
        json!({"decided": 4, "approved": 3, "rejected": 1, "approvalRate": 0.75, "medianDays": 3.0})
    );
    let kis = &stats["byProgram"][0];
    assert_eq!(kis["program"], "kis-pbi");
    assert_eq!(kis["decided"], 3);
    assert!((kis["approvalRate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(kis["medianDays"], 4.0);
    let pkh = &stats["byProgram"][1];
    assert_eq!(
        (pkh["program"].as_str(), pkh["approvalRate"].as_f64()),
        (Some("pkh"), Some(1.0))
    );
    assert_eq!(pkh["medianDays"], 1.5);
    assert_eq!(stats["byKecamatan"][0]["area"], "32.77.01");
    assert_eq!(stats["byKelurahan"][0]["area"], ANI_AREA);
    assert_eq!(stats["byKelurahan"][0]["decided"], 4);
    // The trend: every decision was in November (WIB).
    assert_eq!(
        stats["byMonth"],
        json!([{"month": "2026-11", "decided": 4, "approved": 3, "rejected": 1,
                "approvalRate": 0.75, "medianDays": 3.0}])
    );
    // The backlog: the undecided referral, in the group of how long it has waited.
    let waited = (super::now() - 1_793_836_800_000) / super::DAY_MS; // since 2026-11-05
    let group = [7, 14, 30].iter().position(|b| waited <= *b).unwrap_or(3);
    let counts: Vec<u64> = stats["backlog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    let mut expected = vec![0; 4];
    expected[group] = 1;
    assert_eq!(counts, expected, "{}", stats["backlog"]);
    assert_eq!(stats["backlog"][3]["minDays"], 31);

    // Decision dates are whole days in WIB, both ends included.
    let range = sri
        .get("/api/stats/referrals?from=2026-11-05&to=2026-11-13")
        .await
        .json();
    assert_eq!(
        range["total"],
        json!({"decided": 2, "approved": 1, "rejected": 1, "approvalRate": 0.5, "medianDays": 7.0})
    );
    let range = sri
        .get("/api/stats/referrals?from=2026-11-05&to=2026-11-12")
        .await
        .json();
    assert_eq!(range["total"]["decided"], 1);
    assert_eq!(
        sri.get("/api/stats/referrals?from=2026-11-31").await.status,
        400
    );
    assert_eq!(sri.get("/api/stats/referrals?area=32.73").await.status, 403);
    let other = Client::script(&server, "raka")
        .await
        .get("/api/stats/referrals")
        .await
        .json();
    assert_eq!(other["total"]["decided"], 0);

    // The page: tables and charts.
    let mut sri = Client::browser(&server, "sri").await;
    let page = sri.get("/stats").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "<svg class=\"chart\"",
        "role=\"img\"",
        // "Persetujuan" is the beneficiary's consent; the decision is "disetujui".
        "<title>Persentase disetujui per program (%)</title>",
        // A count beside every percentage.
        "75,0 % (3 dari 4)",
        "66,7 % (2 dari 3)",
        "100,0 % (1 dari 1)",
        "25,0 % (1 dari 4)",
        "3,0 hari",
        "<table id=\"by-program\"",
        "<table id=\"by-kelurahan\"",
        "<table id=\"by-month\"",
        "Nov 2026",
        "<table id=\"backlog\"",
        "lebih dari 30 hari",
        "100,0 % (1 dari 1)",
    ] {
        assert!(html.contains(needle), "the statistics page has {needle}");
    }
    assert!(!html.contains("style="), "the CSP forbids inline styles");
    assert!(!html.contains("75,0%"), "a percentage without its count");
    assert!(!html.to_lowercase().contains("persetujuan"), "{html}");
    // A refused filter is explained in Indonesian on an Indonesian page.
    let refused = sri.get("/stats?from=2026-11-31").await;
    assert_eq!(refused.status, 400);
    let said = crate::support::between(&refused.text(), "<h1>", "</section>").unwrap();
    assert!(said.contains("periksa tanggal"), "{said}");
    assert!(!said.contains("must"), "{said}");
}
