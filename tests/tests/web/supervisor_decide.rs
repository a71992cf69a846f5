//! Decisions: written into the referral's document in the supervisor's name, reaching the
//! field worker's phone; refused when they do not hold, and nothing changes then.

use fieldsync_core::schema::{EventKind, FieldDocument, Program, Role};
use fieldsync_protocol::DocumentId;
use serde_json::json;

use super::{ANI, ANI_AREA, ago, create, ids, phone_events, referral};
use crate::common::{TestServer, WAIT};
use crate::support::{Client, person};

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
    let reply = sri
        .post_form(
            &format!("/referrals/{id}/decide"),
            &[("kind", "approved"), ("note", note)],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let back = reply.header("location").unwrap().to_owned();
    assert_eq!(back, format!("/referrals/{id}?decided=approved"));
    let page = sri.get(&back).await.text();
    assert!(page.contains("class=\"notice\""));
    assert!(page.contains("data-status=\"approved\""));
    assert!(page.contains("value=\"enrolled\"") && page.contains("value=\"closed\""));
    assert!(!page.contains("value=\"approved\""));

    // The phone has the document open: the decision arrives as a change to it.
    let doc = DocumentId::parse(&id).unwrap();
    ani.wait_doc(
        doc,
        WAIT,
        |d| matches!(FieldDocument::read(d), Ok(FieldDocument::Referral(r)) if r.events.len() == 2),
    )
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

    // A rejection without a reason.
    let reply = sri
        .post_form(decide, &[("kind", "rejected"), ("note", "  ")])
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("class=\"alert\""));
    assert!(reply.text().contains("data-status=\"submitted\""));
    // A decision the status does not allow.
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

    let doc = DocumentId::parse(&id).unwrap();
    ani.wait_doc(
        doc,
        WAIT,
        |d| matches!(FieldDocument::read(d), Ok(FieldDocument::Referral(r)) if r.events.len() == 4),
    )
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
