//! Caseloads: new documents pushed to the devices of everyone whose areas they are in, the
//! per-user index document that restores a replacement phone, and reassignment.

mod common;

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{TestServer, WAIT, visit_in};
use fieldsync_client::{ClientError, DocStatus, Replica, index_entries};
use fieldsync_core::schema::{RegionCode, Role};
use fieldsync_protocol::{AutomergeUrl, DocumentId, Notice};

const KELURAHAN_A: &str = "32.77.01.1001";
const KELURAHAN_B: &str = "32.77.01.1002";

async fn index_of(server: &TestServer, user: &str) -> DocumentId {
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let url = fieldsync_server::admin::index_url(storage.as_ref(), user)
        .await
        .unwrap();
    storage.close().await.unwrap();
    AutomergeUrl::parse(&url).unwrap().document_id()
}

/// Asks `phone` for the index and waits until the documents it lists pass `check`.
async fn wait_listed(
    phone: &Replica,
    index: DocumentId,
    check: impl Fn(&[DocumentId]) -> bool,
) -> Result<(), ClientError> {
    phone.find(index).await;
    phone
        .wait_doc(index, WAIT, |d| {
            index_entries(d).is_some_and(|listed| check(&listed))
        })
        .await
}

#[tokio::test]
async fn a_colleagues_new_visit_reaches_every_connected_phone_in_its_kelurahan_only() {
    let server = TestServer::start().await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("citra", Role::Peksos, &[KELURAHAN_B]).await;
    server
        .add_user("koordinator", Role::Coordinator, &["32.77.01"])
        .await;
    let (ani, _ha) = server.phone_as("ani").await;
    let (budi, _hb) = server.phone_as("budi").await;
    let (citra, _hc) = server.phone_as("citra").await;
    let (koordinator, _hk) = server.phone_as("koordinator").await;

    // Step 1: Ani records a visit; nobody asked the server for it.
    let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();

    // Step 2: Budi (same kelurahan) and the kecamatan coordinator get it offered.
    for (who, phone) in [("budi", &budi), ("koordinator", &koordinator)] {
        phone
            .wait_doc(id, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
            .await
            .unwrap_or_else(|_| panic!("{who} gets the new visit pushed"));
    }

    // Step 3: Citra, of another kelurahan, never does. Her own new visit, pushed to the
    // coordinator after Ani's, shows the pushes have been made by then.
    let own = citra.create(visit_in(KELURAHAN_B, "citra")).await.unwrap();
    citra.wait_acknowledged(own, WAIT).await.unwrap();
    koordinator
        .wait_doc(own, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
        .await
        .unwrap();
    assert_eq!(
        citra.status(id).await,
        None,
        "Citra was not offered Ani's visit"
    );
    assert_eq!(
        ani.status(own).await,
        None,
        "Ani was not offered Citra's visit"
    );
}

#[tokio::test]
async fn a_replacement_phone_restores_the_whole_caseload_from_the_index() {
    let server = TestServer::start().await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("citra", Role::Peksos, &[KELURAHAN_B]).await;

    // Ani and Citra write while Budi is away.
    let (ani, _ha) = server.phone_as("ani").await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
        ani.wait_acknowledged(id, WAIT).await.unwrap();
        mine.push(id);
    }
    let (citra, _hc) = server.phone_as("citra").await;
    let other = citra.create(visit_in(KELURAHAN_B, "citra")).await.unwrap();
    citra.wait_acknowledged(other, WAIT).await.unwrap();

    // Budi's new phone knows only its token and his index URL.
    let index = index_of(&server, "budi").await;
    let (budi, _hb) = server.phone_as("budi").await;
    let listed = budi.restore_from_index(index, WAIT).await.unwrap();
    for id in &mine {
        budi.wait_doc(*id, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
            .await
            .unwrap();
    }
    assert_eq!(listed, 3, "the index lists exactly Budi's caseload");
    let in_index = budi.read(index, index_entries).await.flatten().unwrap();
    assert!(!in_index.contains(&other));

    // Nobody else may read Budi's index: it is answered like a missing document.
    citra.find(index).await;
    citra
        .wait_status(index, WAIT, |s| s == Some(DocStatus::Unavailable))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_without_a_phone_has_no_index_kept_until_their_first_phone_connects() {
    let server = TestServer::start().await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    // A city coordinator who works on the web: every visit of the city is in their caseload.
    server.add_user("kota", Role::Coordinator, &["32.77"]).await;
    let (ani, _ha) = server.phone_as("ani").await;
    let mut visits = Vec::new();
    for _ in 0..2 {
        let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
        ani.wait_acknowledged(id, WAIT).await.unwrap();
        visits.push(id);
    }
    // Ani's own index lists both: the caseloads have taken the visits in.
    let ani_index = index_of(&server, "ani").await;
    wait_listed(&ani, ani_index, |listed| listed.len() == 2)
        .await
        .expect("Ani's index lists her two visits");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing was written for the coordinator, who has no phone.
    let kota_index = index_of(&server, "kota").await;
    let storage = server.storage().await;
    let stored = storage.read(kota_index).await.unwrap();
    storage.close().await.unwrap();
    assert!(
        stored.is_none(),
        "no index is kept for a user without a phone"
    );

    // Their first phone finds the whole caseload, and later visits follow.
    let (kota, _hk) = server.phone_as("kota").await;
    wait_listed(&kota, kota_index, |listed| listed.len() == 2)
        .await
        .expect("the first phone's connection brings the index up to date");
    let third = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(third, WAIT).await.unwrap();
    wait_listed(&kota, kota_index, |listed| listed.contains(&third))
        .await
        .expect("the index follows new visits once the coordinator has a phone");
}

/// A burst of new documents larger than the hub holds for a slow follower (two changes here):
/// the caseloads fall behind, and the indexes of the users connected meanwhile are repaired at
/// once. Before, they lacked the documents missed until their phones reconnected, and a
/// city's large index, slow to edit, made the caseloads fall behind in every storm.
#[tokio::test]
async fn indexes_missed_in_a_burst_are_repaired_while_their_phones_stay_connected() {
    let server = TestServer::start_with(|c| c.changes_buffer = 2).await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_B]).await;
    server.add_user("kota", Role::Coordinator, &["32.77"]).await;
    let (kota, _hk) = server.phone_as("kota").await;
    let (ani, _ha) = server.phone_as("ani").await;
    let (budi, _hb) = server.phone_as("budi").await;

    // Both write twenty visits as fast as they can; nobody waits for an acknowledgement.
    let mut made = Vec::new();
    for _ in 0..20 {
        made.push(ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap());
        made.push(budi.create(visit_in(KELURAHAN_B, "budi")).await.unwrap());
    }
    for (i, id) in made.iter().enumerate() {
        let phone = if i % 2 == 0 { &ani } else { &budi };
        phone.wait_acknowledged(*id, WAIT).await.unwrap();
    }

    // The coordinator's phone, connected throughout, finds all forty in its index.
    let index = index_of(&server, "kota").await;
    wait_listed(&kota, index, |listed| {
        made.iter().all(|id| listed.contains(id))
    })
    .await
    .expect("the coordinator's index lists every visit of the burst");
    let ani_index = index_of(&server, "ani").await;
    wait_listed(&ani, ani_index, |listed| listed.len() == 20)
        .await
        .expect("Ani's index lists her twenty visits");
}

#[tokio::test]
async fn the_index_is_read_only_for_its_user() {
    let server = TestServer::start().await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    let index = index_of(&server, "budi").await;
    let (budi, _hb) = server.phone_as("budi").await;
    budi.restore_from_index(index, WAIT).await.unwrap();
    let bytes = budi.read(index, |d| d.save()).await.unwrap();

    // His own device, over a raw socket without the phone-side rules, tries to edit it.
    let (_, token) = server.enroll("budi").await;
    let mut raw = RawPeer::join(&server.url_for(&token), "budi-raw").await;
    let mut doc = AutoCommit::load(&bytes).unwrap();
    doc.put(ROOT, "user", "someone-else").unwrap();
    let verdict = raw.sync_until_notice(index, &mut doc).await;
    let Some(Notice::ChangeRefused { violations, .. }) = verdict else {
        panic!("expected a refusal, got {verdict:?}");
    };
    assert!(
        violations[0].message.contains("read-only"),
        "{violations:?}"
    );
    // The index is unchanged for everyone.
    let (again, _ha) = server.phone_as("budi").await;
    again.find(index).await;
    again
        .wait_doc(index, WAIT, |d| index_entries(d).is_some())
        .await
        .unwrap();
    let user = again
        .read(index, |d| {
            d.get(ROOT, "user").unwrap().unwrap().0.to_string()
        })
        .await
        .unwrap();
    assert_eq!(user, "\"budi\"");
}

#[tokio::test]
async fn a_reassigned_worker_drops_what_left_their_areas() {
    let server = TestServer::start().await;
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    let (ani, _ha) = server.phone_as("ani").await;
    let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();
    let (budi, _hb) = server.phone_as("budi").await;
    budi.find(id).await;
    budi.wait_doc(id, WAIT, |d| d.get(ROOT, "beneficiary").unwrap().is_some())
        .await
        .unwrap();

    // Budi moves to kelurahan B: his phone reconnects and deletes Ani's visit.
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    fieldsync_server::admin::set_areas(
        storage.as_ref(),
        "budi",
        &[RegionCode::parse_prefix(KELURAHAN_B).unwrap()],
    )
    .await
    .unwrap();
    storage.close().await.unwrap();
    budi.wait_status(id, Duration::from_secs(10), |s| s.is_none())
        .await
        .expect("Budi's phone drops the visit that left his areas");

    // His index follows: a new phone of his restores nothing of kelurahan A.
    let index = index_of(&server, "budi").await;
    let (fresh, _hf) = server.phone_as("budi").await;
    fresh
        .wait_status(id, Duration::from_millis(10), |s| s.is_none())
        .await
        .unwrap();
    let listed = fresh.restore_from_index(index, WAIT).await.unwrap();
    assert_eq!(listed, 0);
}
