//! The write rules at work between real phones and the server: refused on the phone before
//! they are made, refused by the server when a phone does not check, query rows kept in step,
//! and documents of a newer schema passing through.

mod common;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use common::{TestServer, WAIT, area, visit};
use fieldsync_client::{ClientError, DocStatus};
use fieldsync_core::schema::{Author, Event, EventKind, FieldDocument, Role, add_event, examples};

fn referral(
    tx: &mut automerge::transaction::Transaction<'_>,
) -> Result<(), automerge::AutomergeError> {
    FieldDocument::Referral(examples::referral(&area(), "peksos-ani")).write(tx)
}

fn approve(
    tx: &mut automerge::transaction::Transaction<'_>,
) -> Result<(), automerge::AutomergeError> {
    let event = Event {
        kind: EventKind::Approved,
        at: "2026-11-22T10:00:00Z".into(),
        by: "supervisor-budi".into(),
        note: Some("Memenuhi syarat.".into()),
        id: None,
    };
    add_event(tx, &event).map(|_| ())
}

/// A string field, written as text or as a scalar string.
fn text(doc: &automerge::Automerge, key: &str) -> String {
    match doc.get(ROOT, key).unwrap().unwrap() {
        (automerge::Value::Scalar(s), _) => s.as_str().unwrap().to_owned(),
        (_, id) => doc.text(&id).unwrap(),
    }
}

#[tokio::test]
async fn the_phone_refuses_an_invalid_visit_before_making_it() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let refused = phone
        .create(|tx| {
            visit(tx)?;
            let (_, b) = tx.get(ROOT, "beneficiary")?.unwrap();
            tx.put(&b, "nik", "123")
        })
        .await;
    let Err(ClientError::Refused(violations)) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(violations[0].path, "beneficiary.nik");
    assert!(phone.documents().await.is_empty(), "nothing was kept");

    // An edit that breaks a valid document is undone whole; the document stays as it was.
    let id = phone.create(visit).await.unwrap();
    let broken = phone
        .change(id, |tx| {
            tx.put(ROOT, "purpose", "Monitoring")?;
            tx.put(ROOT, "visitedAt", "kemarin")
        })
        .await;
    assert!(matches!(broken, Err(ClientError::Refused(_))), "{broken:?}");
    let purpose = phone.read(id, |d| text(d, "purpose")).await.unwrap();
    assert_eq!(purpose, "Asesmen awal");
    phone.wait_acknowledged(id, WAIT).await.unwrap();
}

#[tokio::test]
async fn the_server_refuses_a_decision_from_a_field_worker_and_keeps_it_from_others() {
    // A field worker's phone that does not check its own edits (as a JS app may not):
    // the server is the one that refuses.
    let server = TestServer::start().await;
    let (worker, _hw) = server.phone().await;
    let (careless, _hc) = server.phone().await;
    careless
        .set_author(Author::anonymous(Role::Supervisor))
        .await;

    // Step 1: the worker's referral is stored.
    let id = worker.create(referral).await.unwrap();
    worker.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 2: the careless phone (a field worker's device) approves; the server refuses and
    // says why.
    careless.find(id).await;
    careless
        .wait_doc(id, WAIT, |d| d.get(ROOT, "events").unwrap().is_some())
        .await
        .unwrap();
    careless.change(id, approve).await.unwrap();
    careless
        .wait_status(id, WAIT, |s| s == Some(DocStatus::Refused))
        .await
        .unwrap();
    let why = careless.refusal(id).await.unwrap();
    assert_eq!(why[0].path, "events[1].kind", "{why:?}");
    assert!(
        why[0].message.contains("peksos may not add a approved"),
        "{why:?}"
    );

    // Step 3: the worker's edits still sync; the approval never reaches the worker, and the
    // query row still says submitted.
    worker
        .change(id, |tx| tx.put(ROOT, "note", "ditambah oleh pekerja"))
        .await
        .unwrap();
    worker.wait_acknowledged(id, WAIT).await.unwrap();
    let events = worker
        .read(id, |d| d.length(&d.get(ROOT, "events").unwrap().unwrap().1))
        .await
        .unwrap();
    assert_eq!(events, 1);
    let rows = server.projection_rows().await;
    assert!(
        rows.iter().any(
            |r| r.starts_with(&format!("referrals|{id}|")) && r.contains("|kis-pbi|submitted|")
        ),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_supervisors_decision_is_stored_and_reaches_the_worker() {
    let server = TestServer::start().await;
    server
        .add_user("supervisor-budi", Role::Supervisor, &["32.77"])
        .await;
    let (worker, _hw) = server.phone().await;
    let id = worker.create(referral).await.unwrap();
    worker.wait_acknowledged(id, WAIT).await.unwrap();

    let (office, _ho) = server.phone_as("supervisor-budi").await;
    office.find(id).await;
    office
        .wait_doc(id, WAIT, |d| d.get(ROOT, "events").unwrap().is_some())
        .await
        .unwrap();
    office.change(id, approve).await.unwrap();
    office.wait_acknowledged(id, WAIT).await.unwrap();
    let rows = server.projection_rows().await;
    assert!(
        rows.iter().any(|r| r.contains("|kis-pbi|approved|")),
        "{rows:?}"
    );

    // The worker's phone, connected all along, receives the decision.
    worker
        .wait_doc(id, WAIT, |d| {
            d.length(&d.get(ROOT, "events").unwrap().unwrap().1) == 2
        })
        .await
        .unwrap();
    // A supervisor may decide, but not edit the referral itself.
    let edit = office
        .change(id, |tx| tx.put(ROOT, "program", "gakinda"))
        .await;
    assert!(matches!(edit, Err(ClientError::Refused(_))), "{edit:?}");
}

#[tokio::test]
async fn concurrent_edits_to_a_visits_notes_from_two_phones_both_survive() {
    let server = TestServer::start().await;
    let (a, ha) = server.phone().await;
    let (b, hb) = server.phone().await;
    let id = a.create(visit).await.unwrap();
    a.wait_acknowledged(id, WAIT).await.unwrap();
    b.find(id).await;
    b.wait_doc(id, WAIT, |d| d.get(ROOT, "notes").unwrap().is_some())
        .await
        .unwrap();

    // Both go offline and write into the same notes.
    drop((ha, hb));
    let splice = |at_end: bool, words: &'static str| {
        move |tx: &mut automerge::transaction::Transaction<'_>| {
            let (_, notes) = tx.get(ROOT, "notes")?.unwrap();
            let at = if at_end { tx.length(&notes) } else { 0 };
            tx.splice_text(&notes, at, 0, words)
        }
    };
    a.change(id, splice(false, "[Ani] ")).await.unwrap();
    b.change(id, splice(true, " [Dedi]")).await.unwrap();

    let mut ha = a.connect(fieldsync_client::ConnectOptions::new(server.url()));
    let mut hb = b.connect(fieldsync_client::ConnectOptions::new(server.url()));
    assert!(ha.wait_connected(WAIT).await && hb.wait_connected(WAIT).await);
    let both = "[Ani] Rumah semi permanen, 5 anggota keluarga. [Dedi]";
    for phone in [&a, &b] {
        phone
            .wait_doc(id, WAIT, |d| text(d, "notes") == both)
            .await
            .unwrap();
    }
    a.wait_acknowledged(id, WAIT).await.unwrap();
    b.wait_acknowledged(id, WAIT).await.unwrap();
    let rows = server.projection_rows().await;
    assert!(rows[0].contains(both), "{rows:?}");
}

#[tokio::test]
async fn reindex_rebuilds_the_same_rows() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let mut ids = vec![
        phone.create(visit).await.unwrap(),
        phone.create(referral).await.unwrap(),
        phone
            .create(|tx| {
                FieldDocument::Outreach(examples::outreach(&area(), "peksos-ani")).write(tx)
            })
            .await
            .unwrap(),
    ];
    // An empty document, as automerge-repo's create() makes: accepted, no rows.
    let empty = phone
        .create(|tx| {
            tx.put(ROOT, "draft", true)?;
            tx.delete(ROOT, "draft")
        })
        .await
        .unwrap();
    ids.push(empty);
    for id in &ids {
        phone.wait_acknowledged(*id, WAIT).await.unwrap();
    }
    let before = server.projection_rows().await;
    assert_eq!(
        before
            .iter()
            .filter(|r| !r.starts_with("referral_events|"))
            .count(),
        3,
        "{before:?}"
    );

    // Lose the rows, then rebuild them from the stored documents.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&server.config.database_url)
        .await
        .unwrap();
    for table in ["visits", "referrals", "referral_events", "outreach"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    assert!(server.projection_rows().await.is_empty());
    let report = fieldsync_server::reindex::reindex(storage.as_ref())
        .await
        .unwrap();
    assert_eq!(
        (
            report.documents,
            report.visits,
            report.referrals,
            report.outreach,
            report.without_rows
        ),
        (4, 1, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(server.projection_rows().await, before);
    storage.close().await.unwrap();
}

#[tokio::test]
async fn a_schema_2_document_keeps_syncing_through_a_v1_server_and_v1_phones() {
    let server = TestServer::start().await;
    let (newer, _hn) = server.phone().await;
    let (older, _ho) = server.phone().await;

    // A v2 phone writes a visit with schema 2: a new field, and `visitedAt` (required in v1)
    // replaced by a v2 field. A v1 server checks only the shared envelope.
    let id = newer
        .create(|tx| {
            visit(tx)?;
            tx.put(ROOT, "schema", 2)?;
            tx.delete(ROOT, "visitedAt")?;
            let v = tx.put_object(ROOT, "visitWindow", ObjType::Map)?;
            tx.put(&v, "from", "2026-11-20T09:00:00Z")
        })
        .await
        .unwrap();
    newer.wait_acknowledged(id, WAIT).await.unwrap();

    // A v1 phone opens it, keeps the field it does not know, and edits what it knows.
    older.find(id).await;
    older
        .wait_doc(id, WAIT, |d| d.get(ROOT, "visitWindow").unwrap().is_some())
        .await
        .unwrap();
    older
        .change(id, |tx| tx.put(ROOT, "purpose", "Monitoring"))
        .await
        .unwrap();
    older.wait_acknowledged(id, WAIT).await.unwrap();
    newer
        .wait_doc(id, WAIT, |d| text(d, "purpose") == "Monitoring")
        .await
        .unwrap();
    // The envelope still binds every version.
    let bad = older.change(id, |tx| tx.put(ROOT, "area", "Cimahi")).await;
    assert!(matches!(bad, Err(ClientError::Refused(_))), "{bad:?}");
    let back = older.change(id, |tx| tx.put(ROOT, "schema", 1)).await;
    assert!(matches!(back, Err(ClientError::Refused(_))), "{back:?}");
    // A v1 server keeps no query row for it: `fieldsync reindex` after an upgrade adds one.
    assert!(server.projection_rows().await.is_empty());
}
