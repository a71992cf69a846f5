//! Caseloads: new documents pushed to the devices of everyone whose areas they are in, the
//! per-user index document that restores a replacement phone, and reassignment.

mod common;

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use common::raw::RawPeer;
use common::{TestServer, WAIT, visit_in};
use fieldsync_client::{ClientError, DocStatus, Replica, SyncHandle, index};
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

/// Asks `phone` for the index and waits until the documents its pages list pass `check`.
async fn wait_listed(
    phone: &Replica,
    index: DocumentId,
    check: impl Fn(&[DocumentId]) -> bool,
) -> Result<(), ClientError> {
    phone.wait_index(index, WAIT, check).await.map(|_| ())
}

/// Ani and Budi, field workers of kelurahan A; Ani's phone has recorded a visit, stored.
async fn colleagues_with_a_visit(server: &TestServer) -> (Replica, SyncHandle, DocumentId) {
    server.add_user("ani", Role::Peksos, &[KELURAHAN_A]).await;
    server.add_user("budi", Role::Peksos, &[KELURAHAN_A]).await;
    let (ani, handle) = server.phone_as("ani").await;
    let visit = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(visit, WAIT).await.unwrap();
    (ani, handle, visit)
}

/// The pages `phone` holds of the index `index`, by kelurahan.
async fn pages_of(phone: &Replica, index: DocumentId) -> Vec<(String, DocumentId)> {
    phone
        .read(index, index::pages)
        .await
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .collect()
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
    let in_index = budi.index_listing(index).await.unwrap();
    assert!(!in_index.contains(&other));
    let pages = pages_of(&budi, index).await;
    assert_eq!(pages.len(), 1, "one page, for kelurahan A: {pages:?}");
    assert_eq!(pages[0].0, KELURAHAN_A);

    // Nobody else may read Budi's index or its pages: answered like missing documents.
    for doc in [index, pages[0].1] {
        citra.find(doc).await;
        citra
            .wait_status(doc, WAIT, |s| s == Some(DocStatus::Unavailable))
            .await
            .unwrap();
    }
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
    let (_ani, _ha, visit) = colleagues_with_a_visit(&server).await;
    let index = index_of(&server, "budi").await;
    let (budi, _hb) = server.phone_as("budi").await;
    budi.restore_from_index(index, WAIT).await.unwrap();
    let page = pages_of(&budi, index).await[0].1;

    // His own device, over a raw socket without the phone-side rules, tries to edit the
    // root (to take over the index) and the page (to list a document of someone else's).
    let (_, token) = server.enroll("budi").await;
    let mut raw = RawPeer::join(&server.url_for(&token), "budi-raw").await;
    type Edit = fn(&mut AutoCommit);
    let edits: [(DocumentId, Edit); 2] = [
        (index, |doc| doc.put(ROOT, "user", "someone-else").unwrap()),
        (page, |doc| {
            let (_, documents) = doc.get(ROOT, "documents").unwrap().unwrap();
            let entry = doc
                .put_object(
                    &documents,
                    "4XRc8kGzV9r2cZrL7YP4Rj6FDaQm",
                    automerge::ObjType::Map,
                )
                .unwrap();
            doc.put(&entry, "area", "32.77.02.1001").unwrap();
        }),
    ];
    for (id, edit) in edits {
        let bytes = budi.read(id, |d| d.save()).await.unwrap();
        let mut doc = AutoCommit::load(&bytes).unwrap();
        edit(&mut doc);
        let verdict = raw.sync_until_notice(id, &mut doc).await;
        let Some(Notice::ChangeRefused { violations, .. }) = verdict else {
            panic!("expected a refusal, got {verdict:?}");
        };
        assert!(
            violations[0].message.contains("read-only"),
            "{violations:?}"
        );
    }
    // The index is unchanged for everyone.
    let (again, _hg) = server.phone_as("budi").await;
    let listed = again.wait_index(index, WAIT, |_| true).await.unwrap();
    assert_eq!(listed, [visit]);
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
    let (_ani, _ha, id) = colleagues_with_a_visit(&server).await;
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
    assert!(
        pages_of(&fresh, index).await.is_empty(),
        "kelurahan A's page is no longer listed"
    );
}

/// A document moved from one kelurahan to another, both in a coordinator's areas, leaves the
/// first one's page of the coordinator's index for the second's.
#[tokio::test]
async fn a_document_moved_between_kelurahan_moves_between_pages() {
    let server = TestServer::start().await;
    server.add_user("ani", Role::Peksos, &["32.77.01"]).await;
    server
        .add_user("kecamatan", Role::Coordinator, &["32.77.01"])
        .await;
    let (ani, _ha) = server.phone_as("ani").await;
    let (koordinator, _hk) = server.phone_as("kecamatan").await;
    let index = index_of(&server, "kecamatan").await;
    let id = ani.create(visit_in(KELURAHAN_A, "ani")).await.unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();
    wait_listed(&koordinator, index, |listed| listed == [id])
        .await
        .unwrap();

    ani.change(id, |tx| tx.put(ROOT, "area", KELURAHAN_B))
        .await
        .unwrap();
    ani.wait_acknowledged(id, WAIT).await.unwrap();
    // Page B is listed in the root; then page A lists nothing and page B the visit.
    koordinator
        .wait_doc(index, WAIT, |d| {
            index::pages(d).is_some_and(|p| p.contains_key(KELURAHAN_B))
        })
        .await
        .expect("the root lists kelurahan B's page");
    let pages: std::collections::BTreeMap<_, _> =
        pages_of(&koordinator, index).await.into_iter().collect();
    for (area, listed) in [(KELURAHAN_A, vec![]), (KELURAHAN_B, vec![id])] {
        let page = pages[area];
        koordinator.find(page).await;
        koordinator
            .wait_doc(page, WAIT, |d| {
                index::index_entries(d) == Some(listed.clone())
            })
            .await
            .unwrap_or_else(|_| panic!("the page of {area} lists {listed:?}"));
    }
}

/// An index written before pages (schema 1: every entry in its root) is moved into pages
/// when its user next connects, and keeps listing the caseload all along.
#[tokio::test]
async fn an_index_of_schema_1_is_moved_into_pages() {
    let server = TestServer::start().await;
    let (_ani, ha, visit) = colleagues_with_a_visit(&server).await;
    ha.stop().await;
    let index = index_of(&server, "budi").await;
    let (dir, config) = server.stop().await;

    // Budi's index as the previous version wrote it, listing the visit and a document
    // that is gone since.
    let gone = DocumentId::from_bytes([9; 16]);
    let mut old = AutoCommit::new();
    old.put(ROOT, "type", "index").unwrap();
    old.put(ROOT, "schema", 1_i64).unwrap();
    old.put(ROOT, "user", "budi").unwrap();
    let documents = old
        .put_object(ROOT, "documents", automerge::ObjType::Map)
        .unwrap();
    for id in [visit, gone] {
        let entry = old
            .put_object(&documents, id.to_string(), automerge::ObjType::Map)
            .unwrap();
        old.put(&entry, "url", id.url().to_string()).unwrap();
        old.put(&entry, "type", "visit").unwrap();
        old.put(&entry, "area", KELURAHAN_A).unwrap();
    }
    let storage = fieldsync_server::storage::open(&config.database_url)
        .await
        .unwrap();
    storage
        .write(&[fieldsync_server::storage::Write::Append {
            doc: index,
            bytes: old.save(),
            projection: fieldsync_server::projection::Projection::Nothing,
        }])
        .await
        .unwrap();
    storage.close().await.unwrap();

    let server = TestServer::start_in(dir, config).await;
    let (budi, _hb) = server.phone_as("budi").await;
    wait_listed(&budi, index, |listed| listed == [visit])
        .await
        .expect("the index lists the visit, and no longer the document gone");
    let root = budi
        .read(index, |d| {
            (
                index::holds_documents(d),
                d.get(ROOT, "schema").unwrap().unwrap().0.as_i64(),
            )
        })
        .await
        .unwrap();
    assert_eq!(root, (false, Some(2)), "the root holds pages only");
    assert_eq!(pages_of(&budi, index).await.len(), 1);
}
