//! Decisions: written into the referral's document in the supervisor's name, reaching the
//! field worker's phone; refused when they do not hold, and nothing changes then.

use fieldsync_core::schema::{EventKind, Program, Role};
use fieldsync_protocol::DocumentId;
use serde_json::json;

use super::{ANI, ANI_AREA, ago, create, ids, phone_events, referral, wait_for_events};
use crate::common::{TestServer, WAIT, metric};
use crate::support::{Client, between, on_postgres, person};

#[tokio::test]
async fn an_approval_on_the_page_is_written_into_the_document_and_reaches_the_phone() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    let (ani, _sync) = server.phone_as(ANI).await;
    let id = create(
        &ani,
        referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(1))),
    )
    .await;

    let mut sri = Client::browser(&server, "sri").await;
    let note = "Memenuhi syarat, desil 1 DTSEN";
    // SKTM and the puskesmas letter are neither ticked nor scanned: the form warns first,
    // and nothing is written until Sri confirms.
    let warned = sri
        .post_form(
            &format!("/referrals/{id}/decide"),
            &[("kind", "approved"), ("note", note)],
        )
        .await;
    assert_eq!(warned.status, 200, "{}", warned.text());
    let html = warned.text();
    let warning = between(
        &html,
        "<div class=\"confirm warning\" role=\"alert\">",
        "</div>",
    )
    .expect("a warning that asks to confirm");
    assert!(
        warning.contains("SKTM, Surat puskesmas") && warning.contains("Tetap setujui"),
        "{warning}"
    );
    assert!(warning.contains("name=\"confirm\" value=\"yes\" required"));
    assert!(html.contains(note), "the note is kept");
    assert!(html.contains("value=\"approved\" id=\"kind-approved\" required checked"));
    assert_eq!(phone_events(&ani, &id).await.len(), 1, "nothing was added");
    let reply = sri
        .post_form(
            &format!("/referrals/{id}/decide"),
            &[("kind", "approved"), ("note", note), ("confirm", "yes")],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let back = reply.header("location").unwrap().to_owned();
    assert_eq!(back, format!("/referrals/{id}?decided=approved"));
    let page = sri.get(&back).await.text();
    assert!(page.contains("class=\"notice\""));
    assert!(page.contains(&format!(
        "id=\"next-referral\" href=\"/referrals/{id}/next\""
    )));
    assert!(page.contains("data-status=\"approved\""));
    assert!(page.contains("value=\"enrolled\"") && page.contains("value=\"closed\""));
    assert!(!page.contains("value=\"approved\""));

    // The phone has the document open: the decision arrives as a change to it.
    wait_for_events(&ani, &id, 2)
        .await
        .expect("the decision reaches the phone");
    let events = phone_events(&ani, &id).await;
    assert_eq!(
        events[1],
        (EventKind::Approved, "sri".to_owned(), Some(note.to_owned()))
    );
    // The query row follows the document.
    let mut script = Client::script(&server, "sri").await;
    assert_eq!(
        ids(&script.get("/api/referrals?status=approved").await.json()),
        [id.as_str()]
    );
    assert!(server.projection_rows().await.iter().any(|r| {
        r.starts_with(&format!("referral_events|{id}|1|approved|")) && r.contains("|sri|")
    }));
}

#[tokio::test]
async fn decisions_that_do_not_hold_change_nothing_and_the_api_guards_its_calls() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "raka", Role::Supervisor, &["32.73"]).await;
    let (ani, _sync) = server.phone_as(ANI).await;
    let id = create(&ani, referral(ANI_AREA, ANI, Program::Pkh, Some(&ago(4)))).await;
    let decide = &format!("/referrals/{id}/decide");
    let events = &format!("/api/referrals/{id}/events");
    let mut sri = Client::browser(&server, "sri").await;

    // A rejection without a reason, confirmed or not.
    for confirm in ["", "yes"] {
        let reply = sri
            .post_form(
                decide,
                &[("kind", "rejected"), ("note", "  "), ("confirm", confirm)],
            )
            .await;
        assert_eq!(reply.status, 400);
        let html = reply.text();
        let alert = between(&html, "<div class=\"alert\" role=\"alert\">", "</div>").unwrap();
        assert!(
            alert.contains("Tuliskan alasannya untuk keputusan “Tolak rujukan”"),
            "{alert}"
        );
        assert!(html.contains("data-status=\"submitted\""));
    }
    // No decision chosen.
    let reply = sri.post_form(decide, &[("note", "Lengkap")]).await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("Pilih satu keputusan"));
    // A decision the status does not allow is refused, without asking to confirm it first.
    let reply = sri.post_form(decide, &[("kind", "closed")]).await;
    assert_eq!(reply.status, 409);
    assert!(
        !reply
            .text()
            .contains("name=\"confirm\" value=\"yes\" required")
    );
    let reply = sri.post_form(decide, &[("kind", "enrolled")]).await;
    assert_eq!(reply.status, 409);
    assert!(reply.text().contains("class=\"alert\""));
    let reply = sri.post_json(events, &json!({"kind": "enrolled"})).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "conflict");
    // A field worker's kind of event is no decision.
    let reply = sri.post_json(events, &json!({"kind": "withdrawn"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(phone_events(&ani, &id).await.len(), 1, "nothing was added");

    // A call with the session cookie needs the CSRF header.
    let body = json!({"kind": "accepted"}).to_string().into_bytes();
    let forged = sri
        .send("POST", events, "application/json", body, &[])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(forged.json()["error"], "csrf");
    let accepted = sri.post_json(events, &json!({"kind": "accepted"})).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(accepted.json(), json!({"status": "accepted", "events": 2}));

    // A script with an API token.
    let mut script = Client::script(&server, "sri").await;
    let missing = script
        .post_json(events, &json!({"kind": "needs-documents"}))
        .await;
    assert_eq!(missing.status, 400);
    let asked = script
        .post_json(
            events,
            &json!({"kind": "needs-documents", "note": "SKTM dari kelurahan belum ada"}),
        )
        .await;
    assert_eq!(
        asked.json(),
        json!({"status": "needs-documents", "events": 3})
    );
    let rejected = script
        .post_json(
            events,
            &json!({"kind": "rejected", "note": "<img src=x onerror=alert(1)>"}),
        )
        .await;
    assert_eq!(rejected.json(), json!({"status": "rejected", "events": 4}));
    let page = sri.get(&format!("/referrals/{id}")).await.text();
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!page.contains("<img src=x"), "the reason is escaped");

    // Out of scope is not found; an unknown id too.
    let mut raka = Client::script(&server, "raka").await;
    let reply = raka.post_json(events, &json!({"kind": "closed"})).await;
    assert_eq!(reply.status, 404);
    let unknown = format!("/api/referrals/{}/events", DocumentId::from_bytes([7; 16]));
    let reply = script.post_json(&unknown, &json!({"kind": "closed"})).await;
    assert_eq!(reply.status, 404);

    wait_for_events(&ani, &id, 4)
        .await
        .expect("the decisions reach the phone");
    let kinds: Vec<EventKind> = phone_events(&ani, &id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Submitted,
            EventKind::Accepted,
            EventKind::NeedsDocuments,
            EventKind::Rejected
        ]
    );
}

#[tokio::test]
async fn the_one_decision_form_confirms_closing_and_rejecting_and_leads_to_the_next_referral() {
    one_decision_on(TestServer::start().await).await;
}

/// "Next referral" reads the queue after a referral with a row comparison: the same on both.
#[tokio::test]
async fn the_one_decision_form_and_next_referral_work_the_same_on_postgres() {
    on_postgres(one_decision_on).await;
}

async fn one_decision_on(server: TestServer) {
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    let (ani, _sync) = server.phone_as(ANI).await;
    let oldest = create(&ani, referral(ANI_AREA, ANI, Program::Pkh, Some(&ago(20)))).await;
    let middle = create(&ani, referral(ANI_AREA, ANI, Program::Pkh, Some(&ago(10)))).await;
    let mut complete = referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(5)));
    complete.documents.sktm = true;
    complete.documents.surat_puskesmas = true;
    let newest = create(&ani, complete).await;
    let mut sri = Client::browser(&server, "sri").await;

    // One form: a choice per decision, saying what it does, and one note box.
    let html = sri.get(&format!("/referrals/{oldest}")).await.text();
    assert_eq!(html.matches("<form class=\"decide\"").count(), 1, "{html}");
    assert_eq!(html.matches("<textarea").count(), 1);
    assert_eq!(html.matches("type=\"radio\" name=\"kind\"").count(), 4);
    for words in [
        "Terima untuk ditinjau",
        "Setujui rujukan",
        "Tolak rujukan",
        "Keputusan akhir",
    ] {
        assert!(html.contains(words), "the form says {words}");
    }
    assert!(html.contains("data-confirm=\"Tolak rujukan ini?"));

    // Rejecting with a reason asks to confirm; nothing is written until then.
    let decide = format!("/referrals/{oldest}/decide");
    let reason = "Sudah terdaftar PBI-JK";
    let asked = sri
        .post_form(&decide, &[("kind", "rejected"), ("note", reason)])
        .await;
    assert_eq!(asked.status, 200);
    let html = asked.text();
    assert!(html.contains("Tolak rujukan ini?") && html.contains(reason));
    assert!(html.contains("name=\"confirm\" value=\"yes\" required"));
    assert_eq!(
        phone_events(&ani, &oldest).await.len(),
        1,
        "nothing was added"
    );
    let done = sri
        .post_form(
            &decide,
            &[("kind", "rejected"), ("note", reason), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text());

    // Closing needs the confirmation too.
    let asked = sri.post_form(&decide, &[("kind", "closed")]).await;
    assert_eq!(asked.status, 200);
    let html = asked.text();
    let warning = between(
        &html,
        "<div class=\"confirm warning\" role=\"alert\">",
        "</div>",
    )
    .expect("a confirmation step");
    assert!(warning.contains("Tutup rujukan ini?"), "{warning}");
    let api = format!("/api/referrals/{oldest}");
    let mut script = Client::script(&server, "sri").await;
    assert_eq!(script.get(&api).await.json()["status"], "rejected");
    let done = sri
        .post_form(&decide, &[("kind", "closed"), ("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(script.get(&api).await.json()["status"], "closed");

    // Approving with every document present is recorded at once.
    let done = sri
        .post_form(
            &format!("/referrals/{newest}/decide"),
            &[("kind", "accepted")],
        )
        .await;
    assert_eq!(done.status, 303);
    let done = sri
        .post_form(
            &format!("/referrals/{newest}/decide"),
            &[("kind", "approved")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text());

    // "Next referral" follows the queue (oldest first), from wherever the supervisor is.
    let accepted = sri
        .post_form(
            &format!("/referrals/{middle}/decide"),
            &[("kind", "accepted")],
        )
        .await;
    assert_eq!(accepted.status, 303);
    let next = |from: &str| {
        let mut sri = sri.clone();
        let path = format!("/referrals/{from}/next");
        async move {
            let reply = sri.get(&path).await;
            assert_eq!(reply.status, 303, "{}", reply.text());
            reply.header("location").unwrap().to_owned()
        }
    };
    assert_eq!(next(&oldest).await, format!("/referrals/{middle}"));
    // The one just accepted still waits, but next goes on; only it waits, so nothing else.
    assert_eq!(next(&middle).await, "/referrals?empty=1");
    let more = create(&ani, referral(ANI_AREA, ANI, Program::Pkh, Some(&ago(1)))).await;
    assert_eq!(next(&middle).await, format!("/referrals/{more}"));
    assert_eq!(
        next(&more).await,
        format!("/referrals/{middle}"),
        "from the last, the first"
    );
    let empty = sri.get("/referrals?empty=1").await.text();
    assert!(empty.contains("Tidak ada rujukan lain yang menunggu keputusan"));
}

/// Phones hold every shared place among the `--max-loaded-docs`: a supervisor's decision
/// takes one of the places kept for the office instead of waiting in line and unloading a
/// phone's document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_does_not_wait_behind_the_phones_for_a_place() {
    // 32 places: 31 for everyone, one kept for the office.
    let server = TestServer::start_with(|c| c.max_loaded_docs = 32).await;
    assert_eq!(
        fieldsync_server::hub::Hub::reserved_places(32),
        1,
        "the test's premise"
    );
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    const LOADED: &str = "fieldsync_documents_loaded";
    // Ani's referral, her phone still connected.
    let (ani, _ani_sync) = server.phone_as(ANI).await;
    let id = create(
        &ani,
        referral(ANI_AREA, ANI, Program::KisPbi, Some(&ago(1))),
    )
    .await;
    // A field worker of another kelurahan writes 31 visits and keeps them open: they take
    // every shared place, the last one by unloading the referral, the oldest.
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.02.1002"])
        .await;
    let (budi, _budi_sync) = server.phone_as("peksos-budi").await;
    for _ in 0..31 {
        let doc = budi
            .create(crate::common::visit_in("32.77.02.1002", "peksos-budi"))
            .await
            .unwrap();
        budi.wait_acknowledged(doc, WAIT).await.unwrap();
    }
    assert_eq!(metric(server.addr, LOADED).await, 31.0);

    let mut sri = Client::script(&server, "sri").await;
    let reply = sri
        .post_json(
            &format!("/api/referrals/{id}/events"),
            &json!({"kind": "approved", "note": "Memenuhi syarat"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The referral loaded into the reserved place and stays (Ani has it open); waiting for
    // a shared place would have unloaded one of Budi's visits, leaving 31.
    assert_eq!(metric(server.addr, LOADED).await, 32.0);
    wait_for_events(&ani, &id, 2)
        .await
        .expect("the decision reaches the phone");
}
