//! The write rules at work between real phones and the server: refused on the phone before
//! they are made, refused by the server when a phone does not check, query rows kept in step,
//! events appended only after what their author had seen, and documents of a schema version
//! the server does not know refused.

mod common;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{DEFAULT_USER, TestServer, WAIT, area, visit};
use fieldsync_client::{ClientError, DocStatus};
use fieldsync_core::schema::{Author, Event, EventKind, FieldDocument, Role, add_event, examples};
use fieldsync_protocol::{DocumentId, Notice};

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
async fn a_schema_version_the_server_does_not_know_is_refused() {
    let server = TestServer::start().await;
    let (phone, _h) = server.phone().await;
    let v2 = |tx: &mut automerge::transaction::Transaction<'_>| {
        visit(tx)?;
        tx.put(ROOT, "schema", 2)?;
        tx.delete(ROOT, "visitedAt")?;
        let v = tx.put_object(ROOT, "visitWindow", ObjType::Map)?;
        tx.put(&v, "from", "2026-11-20T09:00:00Z")
    };
    // The Rust client refuses it before making it...
    let refused = phone.create(v2).await;
    let Err(ClientError::Refused(why)) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(why[0].path, "schema");

    // ...and the server refuses it from a phone that does not check: created at 2...
    let (_, token) = server.enroll(DEFAULT_USER).await;
    let mut raw = RawPeer::join(&server.url_for(&token), "newer-app").await;
    let mut written = automerge::Automerge::new();
    written
        .transact(|tx| v2(tx).map(|_| ()))
        .map_err(|f| f.error)
        .unwrap();
    let mut created = AutoCommit::load(&written.save()).unwrap();
    let id = DocumentId::from_bytes([7; 16]);
    let verdict = raw.sync_until_notice(id, &mut created).await;
    let Some(Notice::ChangeRefused { violations, .. }) = verdict else {
        panic!("expected a refusal, got {verdict:?}");
    };
    assert_eq!(violations[0].path, "schema", "{violations:?}");

    // ...or raised from 1 to 2, which would hide the visit from every table.
    let id = phone.create(visit).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    let bytes = phone.read(id, |d| d.save()).await.unwrap();
    let mut raised = AutoCommit::load(&bytes).unwrap();
    raised.put(ROOT, "schema", 2).unwrap();
    let verdict = raw.sync_until_notice(id, &mut raised).await;
    let Some(Notice::ChangeRefused { violations, .. }) = verdict else {
        panic!("expected a refusal, got {verdict:?}");
    };
    assert_eq!(violations[0].path, "schema", "{violations:?}");
    let rows = server.projection_rows().await;
    assert!(
        rows.iter().any(|r| r.starts_with(&format!("visits|{id}|"))),
        "the visit keeps its row: {rows:?}"
    );
}

/// Inserts an event at `at`, as an app that does not append could.
fn insert_event(
    at: usize,
    kind: EventKind,
    by: &'static str,
) -> impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), automerge::AutomergeError>
{
    move |tx| {
        let (_, list) = tx.get(ROOT, "events")?.unwrap();
        let e = tx.insert_object(&list, at, ObjType::Map)?;
        tx.put(&e, "kind", kind.as_str())?;
        tx.put(&e, "at", "2026-11-23T08:00:00Z")?;
        tx.put(&e, "by", by)
    }
}

fn append(
    kind: EventKind,
    by: &'static str,
) -> impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), automerge::AutomergeError>
{
    move |tx| {
        let event = Event {
            kind,
            at: "2026-11-22T10:00:00Z".into(),
            by: by.into(),
            note: Some("Memenuhi syarat.".into()),
            id: None,
        };
        add_event(tx, &event).map(|_| ())
    }
}

fn event_kinds(doc: &automerge::Automerge) -> Vec<EventKind> {
    match FieldDocument::read(doc) {
        Ok(FieldDocument::Referral(r)) => r.events.iter().map(|e| e.kind).collect(),
        other => panic!("expected a referral, got {other:?}"),
    }
}

#[tokio::test]
async fn events_may_not_be_inserted_before_events_their_author_had_seen() {
    use EventKind::*;
    let server = TestServer::start().await;
    server
        .add_user("supervisor-budi", Role::Supervisor, &["32.77"])
        .await;
    let (worker, _hw) = server.phone().await;
    let (office, _ho) = server.phone_as("supervisor-budi").await;

    // Step 1: Ani submits; Budi approves and enrols.
    let id = worker.create(referral).await.unwrap();
    worker.wait_acknowledged(id, WAIT).await.unwrap();
    office.find(id).await;
    office
        .wait_doc(id, WAIT, |d| d.get(ROOT, "events").unwrap().is_some())
        .await
        .unwrap();
    office
        .change(id, append(Approved, "supervisor-budi"))
        .await
        .unwrap();
    office
        .change(id, append(Enrolled, "supervisor-budi"))
        .await
        .unwrap();
    office.wait_acknowledged(id, WAIT).await.unwrap();
    worker
        .wait_doc(id, WAIT, |d| event_kinds(d).len() == 3)
        .await
        .unwrap();

    // Step 2: Ani's phone, having seen both decisions, puts a withdrawal before them, which
    // would void them. The server refuses it.
    worker
        .change(id, insert_event(1, Withdrawn, "peksos-ani"))
        .await
        .unwrap();
    worker
        .wait_status(id, WAIT, |s| s == Some(DocStatus::Refused))
        .await
        .unwrap();
    let why = worker.refusal(id).await.unwrap();
    assert_eq!(why[0].path, "events[1]", "{why:?}");
    let rows = server.projection_rows().await;
    assert!(
        rows.iter().any(|r| r.contains("|kis-pbi|enrolled|")),
        "{rows:?}"
    );

    // Step 3: on another referral, Ani withdraws; Budi's device puts an approval before the
    // withdrawal. Refused too.
    let other = worker.create(referral).await.unwrap();
    worker
        .change(other, append(Withdrawn, "peksos-ani"))
        .await
        .unwrap();
    worker.wait_acknowledged(other, WAIT).await.unwrap();
    office.find(other).await;
    office
        .wait_doc(other, WAIT, |d| {
            d.get(ROOT, "events").unwrap().is_some() && event_kinds(d).len() == 2
        })
        .await
        .unwrap();
    office
        .change(other, insert_event(1, Approved, "supervisor-budi"))
        .await
        .unwrap();
    office
        .wait_status(other, WAIT, |s| s == Some(DocStatus::Refused))
        .await
        .unwrap();
    let why = office.refusal(other).await.unwrap();
    assert_eq!(why[0].path, "events[1]", "{why:?}");
    let rows = server.projection_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("referrals|{other}|")) && r.contains("|withdrawn|")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn concurrent_appends_from_offline_devices_both_merge() {
    use EventKind::*;
    let server = TestServer::start().await;
    server
        .add_user("supervisor-budi", Role::Supervisor, &["32.77"])
        .await;
    let (worker, hw) = server.phone().await;
    let (_, token) = server.enroll("supervisor-budi").await;
    let office = fieldsync_client::Replica::in_memory().await;
    office
        .set_author(Author::user(
            "supervisor-budi",
            Role::Supervisor,
            vec![fieldsync_core::schema::RegionCode::parse_prefix("32.77").unwrap()],
        ))
        .await;
    let office_online = || {
        office.connect(
            fieldsync_client::ConnectOptions::new(server.plain_url()).with_token(token.clone()),
        )
    };
    let mut ho = office_online();
    assert!(ho.wait_connected(WAIT).await);
    let id = worker.create(referral).await.unwrap();
    worker.wait_acknowledged(id, WAIT).await.unwrap();
    office.find(id).await;
    office
        .wait_doc(id, WAIT, |d| d.get(ROOT, "events").unwrap().is_some())
        .await
        .unwrap();

    // Both offline. Ani edits the reason at length, so her op ids are the higher and
    // Automerge will put her event first, before the decision the server receives first.
    drop((hw, ho));
    worker
        .change(id, |tx| {
            let (_, reason) = tx.get(ROOT, "reason")?.unwrap();
            tx.splice_text(&reason, 0, 0, "Keluarga lima orang, ayah sakit. ")
        })
        .await
        .unwrap();
    worker
        .change(id, append(DocumentsAdded, "peksos-ani"))
        .await
        .unwrap();
    office
        .change(id, append(Approved, "supervisor-budi"))
        .await
        .unwrap();

    let mut ho = office_online();
    assert!(ho.wait_connected(WAIT).await);
    office.wait_acknowledged(id, WAIT).await.unwrap();
    let mut hw = worker.connect(fieldsync_client::ConnectOptions::new(server.url()));
    assert!(hw.wait_connected(WAIT).await);
    worker.wait_acknowledged(id, WAIT).await.unwrap();
    for phone in [&worker, &office] {
        phone
            .wait_doc(id, WAIT, |d| {
                event_kinds(d) == [Submitted, DocumentsAdded, Approved]
            })
            .await
            .unwrap();
    }
}
