//! The administrator's people pages and the NIK audit question: adding a person who then
//! signs in, disabling that ends their session, reassigning that empties a phone, the scope
//! of a coordinator, CSRF, and "who read or changed this beneficiary?" with its own audit.

use std::time::Duration;

use automerge::{ROOT, ReadDoc};
use fieldsync_core::schema::{FieldDocument, Nik, RegionCode, Role, examples};
use fieldsync_server::storage::directory::{AuditEntry, AuditFilter};

use crate::common::{TestServer, WAIT, visit_in};
use crate::support::{Client, Reply, between, encode, on_postgres, person};

const KELURAHAN_A: &str = "32.77.01.1001";
const KELURAHAN_B: &str = "32.77.01.1002";
/// The beneficiary of the sample documents (`examples`).
const SITI: &str = "3277015204800002";
/// Another beneficiary.
const OTHER: &str = "3277014107900003";

async fn audit_lines(server: &TestServer, device: &str) -> Vec<AuditEntry> {
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let lines = storage
        .audit(&AuditFilter {
            device_id: Some(device.into()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    storage.close().await.unwrap();
    lines
}

/// The text of the page's notice or alert.
fn message(reply: &Reply) -> String {
    let text = reply.text();
    between(&text, "class=\"notice\" role=\"status\">", "<")
        .or_else(|| between(&text, "class=\"alert\" role=\"alert\">", "<"))
        .unwrap_or_else(|| panic!("a message on the page: {text}"))
}

#[tokio::test]
async fn a_person_added_on_the_page_signs_in_and_disabling_ends_their_session() {
    people_on(TestServer::start().await).await;
}

#[tokio::test]
async fn people_pages_work_the_same_on_postgres() {
    on_postgres(people_on).await;
}

async fn people_on(server: TestServer) {
    person(&server, "ita", Role::Admin, &["32.77"]).await;
    let mut ita = Client::browser(&server, "ita").await;
    let page = ita.get("/admin/people").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("action=\"/admin/people\""));

    let add = |id: &'static str, role: &'static str, areas: &'static str, pw: &'static str| {
        vec![
            ("name", "Sri Wahyuni"),
            ("id", id),
            ("role", role),
            ("areas", areas),
            ("password", pw),
        ]
    };
    // Refused clearly, and nothing added.
    let reply = ita
        .post_form("/admin/people", &add("sri", "supervisor", "32.77", ""))
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        message(&reply).contains("Kata sandi awal wajib"),
        "{}",
        message(&reply)
    );
    let reply = ita
        .post_form(
            "/admin/people",
            &add("sri", "supervisor", "Cimahi", "kata-sandi-awal"),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(message(&reply).contains("bukan kode wilayah"));
    let reply = ita
        .post_form(
            "/admin/people",
            &add("sri", "admin", "32.77", "kata-sandi-awal"),
        )
        .await;
    assert_eq!(reply.status, 400, "no administrators from the web");

    let reply = ita
        .post_form(
            "/admin/people",
            &add("sri", "supervisor", "32.77", "kata-sandi-awal"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(message(&reply).contains("sri"));
    assert!(reply.text().contains("data-user=\"sri\""));
    let reply = ita
        .post_form(
            "/admin/people",
            &add("sri", "supervisor", "32.77", "kata-sandi-awal"),
        )
        .await;
    assert_eq!(reply.status, 409);

    // Sri signs in with the initial password.
    let mut sri = Client::anonymous(&server);
    sri.sign_in("sri", "kata-sandi-awal").await;
    assert!(sri.csrf.is_some(), "the new supervisor signs in");
    assert_eq!(sri.get("/referrals").await.status, 200);
    let me = sri.get("/api/me").await.json();
    assert_eq!(
        (me["role"].as_str(), me["name"].as_str()),
        (Some("supervisor"), Some("Sri Wahyuni"))
    );

    // Disabling ends her session at once; enabling again does not bring it back.
    let reply = ita
        .post_form("/admin/people/disable", &[("user", "sri")])
        .await;
    assert_eq!(reply.status, 200);
    assert!(message(&reply).contains("dinonaktifkan"));
    assert_eq!(sri.get("/api/me").await.status, 401);
    assert_eq!(sri.get("/referrals").await.status, 303);
    let reply = ita
        .post_form("/admin/people/enable", &[("user", "sri")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        sri.get("/api/me").await.status,
        401,
        "the old session stays ended"
    );
    let mut again = Client::anonymous(&server);
    again.sign_in("sri", "kata-sandi-awal").await;
    assert!(again.csrf.is_some(), "enabled again, she signs in anew");

    // Every change is one audit line, in the administrator's name, without her name.
    let lines = audit_lines(&server, "web:ita").await;
    let actions: Vec<&str> = lines.iter().rev().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["user-added", "user-disabled", "user-enabled"]);
    for line in &lines {
        assert_eq!(line.user_id, "sri");
        assert!(line.detail.contains("by ita"), "{line:?}");
        assert!(!line.detail.contains("Sri") && !line.detail.contains("kata-sandi"));
    }
}

#[tokio::test]
async fn a_coordinator_reassigns_a_worker_of_their_area_whose_phone_drops_what_left() {
    let server = TestServer::start().await;
    person(&server, "kiki", Role::Coordinator, &["32.77.01"]).await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    server
        .add_user("cahya", Role::Peksos, &["32.73.01.1001"])
        .await;
    person(&server, "sri", Role::Supervisor, &["32.77.01"]).await;
    let (ani, _ha) = server.phone_as("ani").await;
    let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();
    let (budi, _hb) = server.phone_as("budi").await;
    budi.find(id).await;
    budi.wait_doc(id, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
        .await
        .unwrap();

    let mut kiki = Client::browser(&server, "kiki").await;
    let page = kiki.get("/admin/people").await.text();
    assert!(page.contains("data-user=\"budi\""));
    assert!(!page.contains("data-user=\"cahya\"") && !page.contains("data-user=\"sri\""));
    assert!(
        !page.contains("value=\"coordinator\""),
        "a coordinator adds field workers only"
    );

    // Outside the coordinator's reach: refused, nothing changed.
    for (path, fields) in [
        (
            "/admin/people/areas",
            vec![("user", "budi"), ("areas", "32.73.01")],
        ),
        (
            "/admin/people/areas",
            vec![("user", "cahya"), ("areas", KELURAHAN_B)],
        ),
        ("/admin/people/disable", vec![("user", "cahya")]),
        ("/admin/people/disable", vec![("user", "sri")]),
        (
            "/admin/people",
            vec![
                ("name", "Dodi"),
                ("role", "peksos"),
                ("areas", "32.73.01.1001"),
            ],
        ),
        (
            "/admin/people",
            vec![
                ("name", "Dodi"),
                ("role", "coordinator"),
                ("areas", KELURAHAN_A),
                ("password", "kata-sandi-dodi"),
            ],
        ),
    ] {
        let reply = kiki.post_form(path, &fields).await;
        assert_eq!(reply.status, 403, "{path} {fields:?}");
        assert!(message(&reply).contains("wilayah Anda sendiri"));
    }
    assert!(audit_lines(&server, "web:kiki").await.is_empty());

    // Budi moves to kelurahan B: his phone reconnects and deletes Ani's visit.
    let reply = kiki
        .post_form(
            "/admin/people/areas",
            &[("user", "budi"), ("areas", KELURAHAN_B)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(message(&reply).contains("pindah wilayah"));
    budi.wait_status(id, Duration::from_secs(10), |s| s.is_none())
        .await
        .expect("Budi's phone drops the visit that left his areas");
    let lines = audit_lines(&server, "web:kiki").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].action, "user-areas-changed");
    assert_eq!(
        lines[0].detail,
        format!("areas {KELURAHAN_A} -> {KELURAHAN_B}; by kiki")
    );

    // The coordinator adds a field worker of their area, without a password.
    let reply = kiki
        .post_form(
            "/admin/people",
            &[
                ("name", "Dodi Setiawan"),
                ("role", "peksos"),
                ("areas", KELURAHAN_B),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(message(&reply).contains("dodi-setiawan-"));
}

#[tokio::test]
async fn a_people_form_without_its_csrf_token_changes_nothing() {
    let server = TestServer::start().await;
    person(&server, "ita", Role::Admin, &["32.77"]).await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    let mut ita = Client::browser(&server, "ita").await;
    for (path, fields) in [
        ("/admin/people/disable", vec![("user", "sri")]),
        (
            "/admin/people/areas",
            vec![("user", "sri"), ("areas", "32.73")],
        ),
        (
            "/admin/people",
            vec![("name", "Dodi"), ("role", "peksos"), ("areas", "32.77")],
        ),
        ("/admin/audit", vec![("nik", SITI)]),
    ] {
        let reply = ita
            .send(
                "POST",
                path,
                "application/x-www-form-urlencoded",
                encode(&fields).into_bytes(),
                &[],
            )
            .await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(reply.text().contains("Formulir kedaluwarsa"));
    }
    let mut sri = Client::browser(&server, "sri").await;
    assert_eq!(sri.get("/api/me").await.json()["areas"][0], "32.77");
    assert!(audit_lines(&server, "web:ita").await.is_empty());
}

/// The audit cards of an answer: (action, document id, the card's text).
fn cards(page: &str) -> Vec<(String, String, String)> {
    page.split("<li class=\"card\" data-action=\"")
        .skip(1)
        .map(|card| {
            let action = card.split('"').next().unwrap().to_owned();
            let document = between(card, "data-document=\"", "\"").unwrap();
            let text = card.split("</li>").next().unwrap().to_owned();
            (action, document, text)
        })
        .collect()
}

#[tokio::test]
async fn the_nik_audit_lists_who_read_and_changed_a_beneficiary() {
    nik_audit_on(TestServer::start().await).await;
}

#[tokio::test]
async fn the_nik_audit_works_the_same_on_postgres() {
    on_postgres(nik_audit_on).await;
}

async fn nik_audit_on(server: TestServer) {
    person(&server, "ita", Role::Admin, &["32.77"]).await;
    person(&server, "kiki", Role::Coordinator, &["32.77"]).await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    // Ani's phone writes a referral about Siti and a visit about someone else.
    let (ani, _h) = server.phone().await;
    let referral = ani
        .create(crate::common::referral_in(KELURAHAN_A, "peksos-ani"))
        .await
        .unwrap();
    ani.wait_acknowledged(referral, WAIT).await.unwrap();
    let mut visit = examples::visit(&RegionCode::parse(KELURAHAN_A).unwrap(), "peksos-ani");
    visit.beneficiary.nik = Nik::parse(OTHER).unwrap();
    let other = ani
        .create(move |tx| FieldDocument::Visit(visit).write(tx))
        .await
        .unwrap();
    ani.wait_acknowledged(other, WAIT).await.unwrap();
    // The coordinator reads both in the feed; the supervisor approves the referral.
    let mut kiki = Client::browser(&server, "kiki").await;
    assert_eq!(kiki.get("/activity").await.status, 200);
    let mut sri = Client::browser(&server, "sri").await;
    let reply = sri
        .post_form(
            &format!("/referrals/{referral}/decide"),
            &[
                ("kind", "approved"),
                ("note", "Memenuhi syarat"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());

    // Only administrators ask.
    assert_eq!(kiki.get("/admin/audit").await.status, 403);
    assert_eq!(
        kiki.post_form("/admin/audit", &[("nik", SITI)])
            .await
            .status,
        403
    );

    let mut ita = Client::browser(&server, "ita").await;
    assert_eq!(ita.get("/admin/audit").await.status, 200);
    // A form the page cannot read says what to do, in the page's language, not the parser's
    // English ("invalid digit found in string").
    let unreadable = ita
        .post_form("/admin/audit", &[("nik", SITI), ("before", "kemarin")])
        .await;
    assert_eq!(unreadable.status, 400);
    let said = crate::support::between(&unreadable.text(), "<h1>", "</section>").unwrap();
    assert!(said.contains("Muat ulang halaman"), "{said}");
    assert!(!said.contains("invalid"), "{said}");
    let reply = ita.post_form("/admin/audit", &[("nik", SITI)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let found = cards(&reply.text());
    let referral = referral.to_string();
    let about = |action: &str, who: &str| {
        found
            .iter()
            .any(|(a, d, text)| a == action && *d == referral && text.contains(who))
    };
    assert!(
        about("write", "peksos-ani"),
        "the phone's change: {found:?}"
    );
    assert!(about("read", "kiki"), "the coordinator's read: {found:?}");
    assert!(
        about("write", "sri"),
        "the supervisor's decision: {found:?}"
    );
    assert!(about("write", "Supervisor") && about("read", "Koordinator"));
    assert!(
        found
            .iter()
            .all(|(a, d, _)| *d == referral || a == "nik-audit"),
        "nothing about the other beneficiary: {found:?}"
    );

    // The other NIK finds the other visit only.
    let page = ita
        .post_form("/admin/audit", &[("nik", OTHER)])
        .await
        .text();
    let found = cards(&page);
    assert!(found.iter().any(|(_, d, _)| *d == other.to_string()));
    assert!(found.iter().all(|(_, d, _)| *d != referral));
    // A NIK nobody holds: no read or change.
    let page = ita
        .post_form("/admin/audit", &[("nik", "3277010101010001")])
        .await
        .text();
    assert!(cards(&page).iter().all(|(a, _, _)| a == "nik-audit"));
    assert!(page.contains("id=\"no-lines\"") || cards(&page).len() == 1);

    // An invalid NIK is refused and not asked.
    let asked = audit_lines(&server, "web:ita").await.len();
    let reply = ita
        .post_form("/admin/audit", &[("nik", "32770152048000")])
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("NIK tidak sah"));
    assert_eq!(audit_lines(&server, "web:ita").await.len(), asked);

    // Each question is audited without the NIK, and the next answer about Siti lists it.
    let lines = audit_lines(&server, "web:ita").await;
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(
            (line.action.as_str(), line.user_id.as_str()),
            ("nik-audit", "ita")
        );
        assert!(line.document_id.starts_with("nik:"));
        for nik in [SITI, OTHER, "3277010101010001"] {
            assert!(!line.document_id.contains(nik) && !line.detail.contains(nik));
        }
    }
    let page = ita.post_form("/admin/audit", &[("nik", SITI)]).await.text();
    let asked: Vec<_> = cards(&page)
        .into_iter()
        .filter(|(a, _, _)| a == "nik-audit")
        .collect();
    assert_eq!(asked.len(), 2, "the first question and this one: {asked:?}");

    // The same question as JSON, for scripts: audited as the API's.
    let mut script = Client::script(&server, "ita").await;
    let reply = script
        .post_json("/api/audit/nik", &serde_json::json!({"nik": SITI}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let items = body["items"].as_array().unwrap();
    assert!(items.iter().any(|i| {
        i["action"] == "write" && i["userId"] == "sri" && i["documentId"] == referral.as_str()
    }));
    assert!(
        items
            .iter()
            .all(|i| i["documentId"] != other.to_string().as_str())
    );
    assert_eq!(body["next"], serde_json::Value::Null);
    let invalid = script
        .post_json("/api/audit/nik", &serde_json::json!({"nik": "1234"}))
        .await;
    assert_eq!(
        (invalid.status, invalid.json()["error"].as_str()),
        (400, Some("invalid"))
    );
    let lines = audit_lines(&server, "api:ita").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].action, "nik-audit");
    let mut kiki_script = Client::script(&server, "kiki").await;
    let reply = kiki_script
        .post_json("/api/audit/nik", &serde_json::json!({"nik": SITI}))
        .await;
    assert_eq!(reply.status, 403);
    let people = kiki_script.get("/api/people").await.json();
    let ids: Vec<&str> = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["peksos-ani"],
        "a coordinator lists the field workers of their areas"
    );
}

#[tokio::test]
async fn a_long_nik_audit_comes_in_pages() {
    let server = TestServer::start().await;
    person(&server, "ita", Role::Admin, &["32.77"]).await;
    let (ani, _h) = server.phone().await;
    let referral = ani
        .create(crate::common::referral_in(KELURAHAN_A, "peksos-ani"))
        .await
        .unwrap();
    ani.wait_acknowledged(referral, WAIT).await.unwrap();
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    for i in 0..60 {
        storage
            .audit_now(&AuditEntry {
                at: 1_795_487_400_000 + i,
                device_id: "dev_test".into(),
                user_id: "peksos-ani".into(),
                document_id: referral.to_string(),
                action: "read".into(),
                detail: "referral".into(),
            })
            .await
            .unwrap();
    }
    storage.close().await.unwrap();

    let mut ita = Client::browser(&server, "ita").await;
    let first = ita.post_form("/admin/audit", &[("nik", SITI)]).await.text();
    // This question, 60 reads and the phone's write: more than a page.
    assert_eq!(cards(&first).len(), 50);
    assert!(first.contains("24 Nov 2026"), "dates as people read them");
    let before = between(&first, "name=\"before\" value=\"", "\"").expect("a next page");
    let second = ita
        .post_form("/admin/audit", &[("nik", SITI), ("before", &before)])
        .await
        .text();
    // The rest: the oldest reads and the phone's write (and whatever the phone was sent
    // back); the second question is newer than the first page, so not on this one.
    let rest = cards(&second);
    assert!((11..50).contains(&rest.len()), "{}", rest.len());
    assert!(rest.iter().all(|(a, _, _)| a != "nik-audit"));
    assert!(
        rest.iter().any(|(a, _, _)| a == "write"),
        "the oldest lines"
    );
    assert!(!second.contains("name=\"before\""));
}
