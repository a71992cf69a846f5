//! The coordinator's workbench, end to end: records seeded in three kelurahan (one synced
//! late by a phone, the others stored as a server would store a phone's document with
//! supervisors' decisions dated in the past), then each list's count and rows as coordinators
//! of different areas read them, on the page and in the API; nothing outside their areas.

use std::time::{SystemTime, UNIX_EPOCH};

use fieldsync_core::schema::{
    Event, EventKind, FieldDocument, Nik, Program, RegionCode, Role, examples, format_millis,
};
use fieldsync_protocol::DocumentId;
use fieldsync_server::Config;
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::Write;
use fieldsync_server::storage::areas::AreaRow;
use serde_json::Value;

use crate::common::{TestServer, WAIT};
use crate::support::{Client, person};

const DAY: i64 = 86_400_000;
const ANI_AREA: &str = "32.77.01.1001";
const BUDI_AREA: &str = "32.77.01.1002";
const CAHYA_AREA: &str = "32.77.02.1003";
const NIK_ANI_CASE: &str = "3277015204800002";
const NIK_BUDI_CASE: &str = "3277015204800003";
const NIK_CAHYA_CASE: &str = "3277025506600003";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The WIB date of a time.
fn date(millis: i64) -> String {
    format_millis(millis + 7 * 3_600_000)[..10].to_owned()
}

fn visit(area: &str, by: &str, nik: &str, name: &str, at: i64, follow_up: i64) -> FieldDocument {
    let mut v = examples::visit(&RegionCode::parse(area).unwrap(), by);
    v.envelope.created_at = format_millis(at);
    v.visited_at = format_millis(at);
    v.follow_up_on = Some(date(follow_up));
    v.beneficiary.nik = Nik::parse(nik).unwrap();
    v.beneficiary.name = name.into();
    FieldDocument::Visit(v)
}

fn event(kind: EventKind, at: i64, by: &str) -> Event {
    Event {
        kind,
        at: format_millis(at),
        by: by.into(),
        note: Some("catatan".into()),
        id: None,
    }
}

/// A referral submitted by `by` at `at`, then `events`.
fn referral(area: &str, by: &str, nik: &str, at: i64, events: Vec<Event>) -> FieldDocument {
    let mut r = examples::referral(&RegionCode::parse(area).unwrap(), by);
    r.envelope.created_at = format_millis(at);
    r.beneficiary.nik = Nik::parse(nik).unwrap();
    r.program = Program::Pkh;
    r.events = vec![event(EventKind::Submitted, at, by)];
    r.events.extend(events);
    FieldDocument::Referral(r)
}

/// Stores a document with its query rows as the server does for a phone's change (the
/// decisions in these were dated days ago, which no web decision can be).
async fn seed(server: &TestServer, doc: FieldDocument) -> String {
    let mut am = automerge::Automerge::new();
    let mut tx = am.transaction();
    doc.write(&mut tx).unwrap();
    tx.commit();
    let id = DocumentId::from_bytes(uuid::Uuid::new_v4().into_bytes());
    let storage = server.storage().await;
    storage
        .write(&[Write::Append {
            doc: id,
            bytes: am.save(),
            projection: Projection::of(Some(&doc)),
        }])
        .await
        .unwrap();
    storage.close().await.unwrap();
    id.to_string()
}

struct Bench {
    server: TestServer,
    _ani: (fieldsync_client::Replica, fieldsync_client::SyncHandle),
    late_visit: String,
    budi_visit: String,
    cahya_visit: String,
    waiting: String,
    budi_approved: String,
    cahya_approved: String,
}

async fn bench() -> Bench {
    bench_on(None).await
}

/// The bench on SQLite, or on the PostgreSQL database `url`.
async fn bench_on(url: Option<String>) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::sqlite_in(dir.path());
    if let Some(url) = url {
        config.database_url = url;
    }
    let storage = fieldsync_server::storage::open(&config.database_url)
        .await
        .unwrap();
    let names = [
        ("32.77", "Kota Cimahi"),
        ("32.77.01", "Cimahi Selatan"),
        ("32.77.01.1001", "Melong"),
        ("32.77.01.1002", "Cibeureum"),
        ("32.77.02", "Cimahi Tengah"),
        ("32.77.02.1003", "Karangmekar"),
    ]
    .map(|(code, name)| AreaRow {
        code: code.into(),
        name: name.into(),
    });
    storage.import_areas(&names, now()).await.unwrap();
    storage.close().await.unwrap();
    let server = TestServer::start_in(dir, config).await;
    person(&server, "ani", Role::Peksos, &[ANI_AREA]).await;
    person(&server, "budi", Role::Peksos, &[BUDI_AREA]).await;
    person(&server, "cahya", Role::Peksos, &[CAHYA_AREA]).await;
    person(&server, "camat1", Role::Coordinator, &["32.77.01"]).await;
    person(&server, "kota", Role::Coordinator, &["32.77"]).await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    // Budi's and Cahya's phones were enrolled and never synced.
    server.enroll("budi").await;
    server.enroll("cahya").await;
    let t = now();
    let budi_visit = seed(
        &server,
        visit(BUDI_AREA, "budi", NIK_BUDI_CASE, "Bu Budi Case", t, t),
    )
    .await;
    let cahya_visit = seed(
        &server,
        visit(
            CAHYA_AREA,
            "cahya",
            NIK_CAHYA_CASE,
            "Pak Rahasia",
            t - 9 * DAY,
            t - 2 * DAY,
        ),
    )
    .await;
    let waiting = seed(
        &server,
        referral(
            ANI_AREA,
            "ani",
            NIK_ANI_CASE,
            t - 12 * DAY,
            vec![event(EventKind::NeedsDocuments, t - 10 * DAY, "sri")],
        ),
    )
    .await;
    let budi_approved = seed(
        &server,
        referral(
            BUDI_AREA,
            "budi",
            NIK_BUDI_CASE,
            t - 25 * DAY,
            vec![event(EventKind::Approved, t - 20 * DAY, "sri")],
        ),
    )
    .await;
    let cahya_approved = seed(
        &server,
        referral(
            CAHYA_AREA,
            "cahya",
            NIK_CAHYA_CASE,
            t - 25 * DAY,
            vec![event(EventKind::Approved, t - 20 * DAY, "sri")],
        ),
    )
    .await;
    // Last: Ani's phone syncs a visit she made 8 days ago, its follow-up 2 days overdue.
    let ani = server.phone_as("ani").await;
    let doc = visit(
        ANI_AREA,
        "ani",
        NIK_ANI_CASE,
        "Ibu Telat",
        t - 8 * DAY,
        t - 2 * DAY,
    );
    let id = ani.0.create(move |tx| doc.write(tx)).await.unwrap();
    ani.0.wait_acknowledged(id, WAIT).await.unwrap();
    Bench {
        server,
        _ani: ani,
        late_visit: id.to_string(),
        budi_visit,
        cahya_visit,
        waiting,
        budi_approved,
        cahya_approved,
    }
}

/// (count, sorted document ids or people) of a list of `/api/workbench`.
fn list(answer: &Value, key: &str) -> (i64, Vec<String>) {
    let l = &answer["lists"][key];
    let mut items: Vec<String> = l["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{key}: {answer}"))
        .iter()
        .map(|i| {
            i["document"]
                .as_str()
                .or(i["id"].as_str())
                .or(i["user"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    items.sort();
    (l["count"].as_i64().unwrap(), items)
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The `data-count` of a list's card on the page.
fn shown_count(page: &str, list: &str) -> i64 {
    let card = format!("id=\"{list}\" data-count=\"");
    let at = page.find(&card).unwrap_or_else(|| panic!("no card {list}"));
    let rest = &page[at + card.len()..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn each_list_counts_what_needs_action_in_the_coordinator_s_areas_only() {
    lists_count_in_scope(bench().await).await;
}

#[tokio::test]
async fn the_workbench_on_postgresql() {
    let Some(db) = crate::common::PgDatabase::create().await else {
        return;
    };
    lists_count_in_scope(bench_on(Some(db.url.clone())).await).await;
    db.drop_database().await;
}

async fn lists_count_in_scope(b: Bench) {
    let mut camat1 = Client::browser(&b.server, "camat1").await;
    let answer = camat1.get("/api/workbench").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let a = answer.json();
    assert_eq!(
        list(&a, "followUpsOverdue"),
        (1, vec![b.late_visit.clone()])
    );
    assert_eq!(list(&a, "followUpsDue"), (1, vec![b.budi_visit.clone()]));
    assert_eq!(list(&a, "needsDocuments"), (1, vec![b.waiting.clone()]));
    assert_eq!(
        list(&a, "approvedNotEnrolled"),
        (1, vec![b.budi_approved.clone()])
    );
    // `peksos-ani`, the test server's own field worker in Melong, has a phone that never
    // synced and no visits.
    assert_eq!(list(&a, "phonesNotSynced").1, ["budi", "peksos-ani"]);
    assert_eq!(
        list(&a, "workersWithoutVisits"),
        (2, vec!["ani".into(), "peksos-ani".into()])
    );
    // Arrived 3 or more days after their date: the late visit and two referrals.
    assert_eq!(
        list(&a, "arrivedLate"),
        (3, sorted(&[&b.late_visit, &b.waiting, &b.budi_approved]))
    );
    let workers: Vec<(&str, i64, i64, i64)> = a["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap(),
                w["overdueFollowUps"].as_i64().unwrap(),
                w["openCases"].as_i64().unwrap(),
                w["visitsThisWeek"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        workers,
        [("ani", 1, 1, 0), ("budi", 0, 1, 1), ("peksos-ani", 0, 0, 0)]
    );
    assert!(
        a["workers"][0]["lastSyncAt"].is_string(),
        "Ani's phone synced"
    );
    assert_eq!(a["thresholdDays"]["needsDocuments"], 7);

    // The page shows the same counts, names areas and people, and nothing of Cahya's.
    let page = camat1.get("/workbench").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for (card, key) in [
        ("follow-ups-overdue", "followUpsOverdue"),
        ("follow-ups-due", "followUpsDue"),
        ("needs-documents", "needsDocuments"),
        ("approved-not-enrolled", "approvedNotEnrolled"),
        ("phones-not-synced", "phonesNotSynced"),
        ("workers-without-visits", "workersWithoutVisits"),
        ("arrived-late", "arrivedLate"),
    ] {
        assert_eq!(shown_count(&html, card), list(&a, key).0, "{card}");
    }
    assert!(html.contains("lebih dari 7 hari"), "{html}");
    assert!(html.contains("<span class=\"area\" title=\"32.77.01.1001\">Melong</span>"));
    assert!(html.contains("Ibu Telat"));
    assert!(html.contains(&format!("href=\"/referrals/{}\"", b.waiting)));
    assert!(html.contains("id=\"caseload\""));
    for foreign in [
        &b.cahya_visit,
        &b.cahya_approved,
        &"Pak Rahasia".to_owned(),
        &NIK_CAHYA_CASE.to_owned(),
        &"Karangmekar".to_owned(),
    ] {
        assert!(!html.contains(foreign.as_str()), "{foreign} leaked");
        assert!(
            !answer.text().contains(foreign.as_str()),
            "{foreign} leaked"
        );
    }

    // The city's coordinator sees Cahya's too.
    let mut kota = Client::browser(&b.server, "kota").await;
    let a = kota.get("/api/workbench").await.json();
    assert_eq!(
        list(&a, "followUpsOverdue"),
        (2, sorted(&[&b.late_visit, &b.cahya_visit]))
    );
    assert_eq!(
        list(&a, "approvedNotEnrolled"),
        (2, sorted(&[&b.budi_approved, &b.cahya_approved]))
    );
    assert_eq!(
        list(&a, "phonesNotSynced").1,
        ["budi", "cahya", "peksos-ani"]
    );
    assert_eq!(list(&a, "arrivedLate").0, 5);
}

#[tokio::test]
async fn the_workbench_is_the_coordinator_s_first_page_and_only_theirs() {
    let b = bench().await;
    let mut camat1 = Client::browser(&b.server, "camat1").await;
    let home = camat1.get("/").await;
    assert_eq!(home.status, 303, "{}", home.text());
    assert_eq!(home.header("location"), Some("/workbench"));
    let one = camat1.get("/workbench?list=arrived-late").await;
    assert_eq!(one.status, 200);
    assert_eq!(shown_count(&one.text(), "arrived-late"), 3);
    assert!(!one.text().contains("id=\"caseload\""));
    assert_eq!(camat1.get("/workbench?list=nothing").await.status, 404);
    // In English too, thresholds in the headings.
    camat1.get("/lang/en?next=%2Fworkbench").await;
    let english = camat1.get("/workbench").await.text();
    assert!(english.contains("Needs action"), "{english}");
    assert!(english.contains("for more than 7 days"), "{english}");
    assert!(english.contains("Caseload per worker"), "{english}");
    for (user, status) in [("sri", 403), ("ani", 403)] {
        let mut other = Client::browser(&b.server, user).await;
        assert_eq!(other.get("/workbench").await.status, status, "{user}");
        assert_eq!(other.get("/api/workbench").await.status, status, "{user}");
    }
    let mut ani = Client::browser(&b.server, "ani").await;
    assert_eq!(ani.get("/").await.header("location"), Some("/activity"));
}

#[tokio::test]
async fn the_feed_orders_by_arrival_and_shows_a_decision_as_the_supervisor_s() {
    let b = bench().await;
    let mut camat1 = Client::browser(&b.server, "camat1").await;
    let a = camat1.get("/api/activity").await.json();
    let items = a["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["document"].as_str().unwrap())
        .collect();
    // The late visit arrived last: first, though dated 8 days ago; then the others in the
    // reverse order they were stored, whatever their dates.
    assert_eq!(
        ids,
        [
            b.late_visit.as_str(),
            &b.budi_approved,
            &b.waiting,
            &b.budi_visit
        ]
    );
    let waiting = &items[2];
    assert_eq!(waiting["actedBy"], "sri");
    assert_eq!(waiting["actorName"], "sri");
    assert_eq!(waiting["createdBy"], "ani");
    assert!(items[0]["receivedAt"].as_str().unwrap() > items[0]["at"].as_str().unwrap());
    let html = camat1.get("/activity").await.text();
    let row =
        crate::support::between(&html, &format!("data-doc=\"{}\"", b.waiting), "</tr>").unwrap();
    assert!(row.contains("class=\"actor\" title=\"sri\""), "{row}");
    assert!(row.contains("Peristiwa terakhir"), "{row}");
    assert!(
        row.contains("title=\"32.77.01.1001\">Melong</span>"),
        "{row}"
    );
    let late =
        crate::support::between(&html, &format!("data-doc=\"{}\"", b.late_visit), "</tr>").unwrap();
    assert!(late.contains("Tanggal kunjungan"), "{late}");
    // The area filter offers names.
    assert!(html.contains("Cibeureum, Cimahi Selatan"), "{html}");
}
