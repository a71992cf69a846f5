//! The supervisor part of the web: the review queue and the referral page here; decisions
//! written into the referral's document and reaching the field worker's phone in
//! `supervisor_decide.rs`; outcome statistics in `supervisor_stats.rs`.

#[path = "supervisor_decide.rs"]
mod decide;
#[path = "supervisor_scans.rs"]
mod scans;
#[path = "supervisor_stats.rs"]
mod stats;

use std::time::{SystemTime, UNIX_EPOCH};

use fieldsync_client::Replica;
use fieldsync_core::schema::{
    EventKind, FieldDocument, Program, Referral, RegionCode, Role, examples, format_millis,
};
use fieldsync_protocol::DocumentId;
use serde_json::{Value, json};

use crate::common::{TestServer, WAIT};
use crate::support::{Client, on_postgres, person};

pub(super) const DAY_MS: i64 = 86_400_000;
pub(super) const ANI: &str = "peksos-ani";
pub(super) const ANI_AREA: &str = "32.77.01.1001";

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A referral by `by` in `area`, submitted at `submitted` (RFC 3339), or a draft.
pub(super) fn referral(
    area: &str,
    by: &str,
    program: Program,
    submitted: Option<&str>,
) -> Referral {
    let mut r = examples::referral(&RegionCode::parse(area).unwrap(), by);
    r.program = program;
    match submitted {
        Some(at) => {
            r.envelope.created_at = at.to_owned();
            r.events[0].at = at.to_owned();
        }
        None => r.events.clear(),
    }
    r
}

/// Writes the referral on the phone and waits until the server has stored it.
pub(super) async fn create(phone: &Replica, r: Referral) -> String {
    let id = phone
        .create(move |tx| FieldDocument::Referral(r).write(tx))
        .await
        .unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    id.to_string()
}

pub(super) fn ago(days: i64) -> String {
    format_millis(now() - days * DAY_MS)
}

pub(super) fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the phone holds `count` events of the referral (decisions arrived); an
/// error when they did not within `WAIT`.
pub(super) async fn wait_for_events(
    phone: &Replica,
    id: &str,
    count: usize,
) -> Result<(), fieldsync_client::ClientError> {
    let id = DocumentId::parse(id).unwrap();
    phone
        .wait_doc(
            id,
            WAIT,
            |d| matches!(FieldDocument::read(d), Ok(FieldDocument::Referral(r)) if r.events.len() == count),
        )
        .await
}

/// The referral's events as the phone holds them: (kind, by, note).
pub(super) async fn phone_events(
    phone: &Replica,
    id: &str,
) -> Vec<(EventKind, String, Option<String>)> {
    let id = DocumentId::parse(id).unwrap();
    phone
        .read(id, |doc| match FieldDocument::read(doc) {
            Ok(FieldDocument::Referral(r)) => r
                .events
                .into_iter()
                .map(|e| (e.kind, e.by, e.note))
                .collect(),
            _ => Vec::new(),
        })
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn the_queue_lists_referrals_in_scope_oldest_first_and_filters_them() {
    queue_on(TestServer::start().await).await;
}

#[tokio::test]
async fn the_queue_works_the_same_on_postgres() {
    on_postgres(queue_on).await;
}

async fn queue_on(server: TestServer) {
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "raka", Role::Supervisor, &["32.73"]).await;
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.02.1003"])
        .await;
    let (ani, _ani_sync) = server.phone_as(ANI).await;
    let (budi, _budi_sync) = server.phone_as("peksos-budi").await;

    let newest = create(
        &ani,
        referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(2))),
    )
    .await;
    let oldest = create(
        &ani,
        referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(20))),
    )
    .await;
    let middle = create(
        &budi,
        referral("32.77.02.1003", "peksos-budi", Program::Pkh, Some(&ago(5))),
    )
    .await;
    let mut draft = referral(ANI_AREA, ANI, Program::Gakinda, None);
    draft.envelope.created_at = ago(30);
    let draft = create(&ani, draft).await;

    let mut sri = Client::script(&server, "sri").await;
    let queue = sri.get("/api/referrals").await;
    assert_eq!(queue.status, 200, "{}", queue.text());
    let queue = queue.json();
    assert_eq!(queue["status"], "awaiting");
    assert_eq!(queue["total"], 3, "the draft awaits nobody: {queue}");
    assert_eq!(
        ids(&queue),
        [oldest.as_str(), middle.as_str(), newest.as_str()],
        "oldest first"
    );
    let first = &queue["items"][0];
    assert_eq!(first["ageDays"], 20);
    assert_eq!(first["worker"]["name"], "Ani");
    assert_eq!(first["beneficiary"]["nik"], "3277015204800002");
    assert_eq!(first["documents"]["ktp"], true);
    assert_eq!(first["documents"]["sktm"], false);
    assert_eq!(first["consentGiven"], true);

    let filtered = |q: &'static str| {
        let mut sri = sri.clone();
        async move { ids(&sri.get(&format!("/api/referrals?{q}")).await.json()) }
    };
    assert_eq!(
        filtered("program=kis-pbi").await,
        [oldest.as_str(), newest.as_str()]
    );
    assert_eq!(filtered("area=32.77.02").await, [middle.as_str()]);
    assert_eq!(
        filtered("area=32.77.01.1001&age=10").await,
        [oldest.as_str()]
    );
    assert_eq!(filtered("status=draft").await, [draft.as_str()]);
    assert_eq!(
        filtered("status=all").await,
        [
            draft.as_str(),
            oldest.as_str(),
            middle.as_str(),
            newest.as_str()
        ]
    );
    assert!(filtered("status=approved").await.is_empty());
    assert_eq!(sri.get("/api/referrals?status=bogus").await.status, 400);
    assert_eq!(sri.get("/api/referrals?area=32.73").await.status, 403);
    assert_eq!(sri.get("/api/referrals?page=0").await.status, 400);

    // The page: the markup the browser tests rely on.
    let mut browser = Client::browser(&server, "sri").await;
    let page = browser.get("/referrals").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "<form class=\"filters\"",
        "<select name=\"status\"",
        "<select name=\"program\"",
        "name=\"area\"",
        "<table id=\"queue\"",
        &format!("<tr data-doc=\"{oldest}\""),
        &format!("href=\"/referrals/{middle}\""),
        "KTP ✓",
        "SKTM ✗",
        // How long a referral waited, not a person's age; consent, not approval.
        ">Menunggu</th>",
        "data-label=\"Menunggu\">20 hari</td>",
        ">Persetujuan penerima manfaat</th>",
        // Filters fold; the list follows the live stream.
        "<details class=\"filters\"><summary>Filter</summary>",
        "data-live=\"/api/activity/stream\" data-live-target=\"queue-list\"",
        "<div id=\"queue-list\">",
        "3 rujukan menunggu keputusan",
    ] {
        assert!(html.contains(needle), "the queue page has {needle}: {html}");
    }
    assert!(!html.contains("Umur"));
    // What the live script fetches: the list alone.
    let list = browser
        .send(
            "GET",
            "/referrals",
            "",
            Vec::new(),
            &[("X-Partial", "queue-list")],
        )
        .await
        .text();
    assert!(list.starts_with("<div id=\"queue-list\">"), "{list}");
    assert!(list.contains(&format!("<tr data-doc=\"{oldest}\"")));
    assert!(!list.contains("<html"));
    let filtered = browser.get("/referrals?program=pkh&age=1").await.text();
    assert!(
        filtered.contains("<span class=\"count\">(2 aktif)</span>"),
        "{filtered}"
    );
    assert!(!html.contains(&draft));
    let pkh = browser
        .get("/referrals?status=awaiting&program=pkh")
        .await
        .text();
    assert!(pkh.contains(&middle) && !pkh.contains(&oldest));

    // Another city's supervisor sees none of it, and the referral does not exist for them.
    let mut raka = Client::browser(&server, "raka").await;
    assert_eq!(raka.get("/api/referrals").await.json()["total"], 0);
    assert_eq!(raka.get(&format!("/referrals/{oldest}")).await.status, 404);
    assert_eq!(
        raka.get(&format!("/api/referrals/{oldest}")).await.status,
        404
    );
    assert!(!raka.get("/referrals").await.text().contains(&oldest));
}

#[tokio::test]
async fn the_referral_page_shows_the_document_and_only_supervisors_may_decide() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    person(&server, "peksos-citra", Role::Peksos, &[ANI_AREA]).await;
    person(&server, "admin-tono", Role::Admin, &["32.77"]).await;
    let (ani, _sync) = server.phone_as(ANI).await;
    let mut r = referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(3)));
    r.reason = "<img src=x onerror=alert(1)>".into();
    let id = create(&ani, r).await;

    let mut sri = Client::browser(&server, "sri").await;
    let page = sri.get(&format!("/referrals/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "Siti Aminah",
        "3277015204800002",
        "Jl. Mawar 5, RT 02/RW 05",
        "Fakir miskin",
        "KIS-PBI",
        "KTP ✓",
        "KK ✓",
        "SKTM ✗",
        "Surat puskesmas ✗",
        "Diberikan oleh Siti Aminah",
        "id=\"status\"",
        "data-status=\"submitted\"",
        "Diajukan",
        "&lt;img src=x onerror=alert(1)&gt;",
        &format!("action=\"/referrals/{id}/decide\""),
    ] {
        assert!(html.contains(needle), "the referral page has {needle}");
    }
    assert!(!html.contains("<img src=x"), "the reason is escaped");
    for kind in ["accepted", "needs-documents", "approved", "rejected"] {
        assert!(
            html.contains(&format!("name=\"kind\" value=\"{kind}\"")),
            "{kind} is offered"
        );
    }
    for kind in ["enrolled", "closed", "submitted"] {
        assert!(
            !html.contains(&format!("value=\"{kind}\"")),
            "{kind} is not offered on a submitted referral"
        );
    }
    let json = Client::script(&server, "sri")
        .await
        .get(&format!("/api/referrals/{id}"))
        .await
        .json();
    assert_eq!(json["status"], "submitted");
    assert_eq!(json["events"][0]["kind"], "submitted");
    assert_eq!(json["events"][0]["byName"], "Ani");
    assert_eq!(
        json["decisions"],
        json!(["accepted", "needs-documents", "approved", "rejected"])
    );
    assert_eq!(json["reason"], "<img src=x onerror=alert(1)>");

    // A coordinator looks, without deciding.
    let mut dewi = Client::browser(&server, "dewi").await;
    let page = dewi.get(&format!("/referrals/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("class=\"decide\""));
    assert_eq!(dewi.get("/stats").await.status, 200);
    let decide = &format!("/referrals/{id}/decide");
    let events = &format!("/api/referrals/{id}/events");
    assert_eq!(
        dewi.post_form(decide, &[("kind", "approved")]).await.status,
        403
    );
    let approve = json!({"kind": "approved"});
    assert_eq!(dewi.post_json(events, &approve).await.status, 403);

    // Field workers and administrators are turned away.
    let mut citra = Client::browser(&server, "peksos-citra").await;
    assert_eq!(citra.get("/referrals").await.status, 403);
    assert_eq!(citra.get(&format!("/referrals/{id}")).await.status, 403);
    assert_eq!(
        citra
            .post_form(decide, &[("kind", "approved")])
            .await
            .status,
        403
    );
    assert_eq!(citra.post_json(events, &approve).await.status, 403);
    let mut tono = Client::browser(&server, "admin-tono").await;
    assert_eq!(tono.get("/referrals").await.status, 403);
    assert_eq!(tono.get("/api/stats/referrals").await.status, 403);
    assert_eq!(phone_events(&ani, &id).await.len(), 1, "nothing was added");
}

#[tokio::test]
async fn the_openapi_document_describes_the_supervisor_routes() {
    let server = TestServer::start().await;
    let doc = Client::anonymous(&server)
        .get("/api/openapi.json")
        .await
        .json();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/referrals", "get"),
        ("/api/referrals/{id}", "get"),
        ("/api/referrals/{id}/events", "post"),
        ("/api/stats/referrals", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op["summary"].is_string(), "{method} {path} is documented");
        let ok = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            ok["required"].is_array(),
            "{method} {path} says what it returns"
        );
        assert!(op["responses"]["401"].is_object());
    }
}
