//! Finding a beneficiary by NIK, KK or name, and a household's page, each only within the
//! reader's areas and audited as a read.

use fieldsync_core::schema::{FieldDocument, Kk, Nik, PpksCategory};

use super::field::*;

const KK_SITI: &str = "3277010101200001";
const NIK_ENGGAR: &str = "3277011509750003";

/// Siti's household: a second visit of hers with the family card, and one of her son Énggar.
async fn household(f: &Field) -> (String, String) {
    let mut with_kk = visit(
        "32.77.01.1001",
        "ani",
        f.now - DAY,
        NIK_SITI,
        "Siti Aminah",
        PpksCategory::FakirMiskin,
    );
    let mut son = visit(
        "32.77.01.1001",
        "ani",
        f.now - DAY,
        NIK_ENGGAR,
        "Énggar Prasetyo",
        PpksCategory::AnakTerlantar,
    );
    for doc in [&mut with_kk, &mut son] {
        if let FieldDocument::Visit(v) = doc {
            v.beneficiary.kk = Some(Kk::parse(KK_SITI).unwrap());
        }
    }
    if let FieldDocument::Visit(v) = &mut son {
        v.beneficiary.nik = Nik::parse(NIK_ENGGAR).unwrap();
    }
    (create(&f.ani.0, with_kk).await, create(&f.ani.0, son).await)
}

#[tokio::test]
async fn beneficiaries_are_found_by_name_nik_and_kk_within_the_readers_areas() {
    let f = field().await;
    let (siti_kk, son) = household(&f).await;
    let mut camat1 = f.browser("camat1").await;
    let mut camat2 = f.browser("camat2").await;

    // By the start of each word of the name, whatever the case or accents.
    let page = camat1.get("/search?q=sit+AMI").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains(&format!("href=\"/beneficiaries/{NIK_SITI}\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/households/{KK_SITI}\"")),
        "{html}"
    );
    assert!(html.contains("1 orang ditemukan"), "{html}");
    // The kelurahan by its name, the code on hover.
    assert!(html.contains("title=\"32.77.01.1001\">Melong<"), "{html}");
    let enggar = camat1.get("/api/search?q=engg").await.json();
    assert_eq!(enggar["people"][0]["nik"], NIK_ENGGAR, "{enggar}");
    assert_eq!(enggar["people"].as_array().unwrap().len(), 1);

    // By NIK or KK digits.
    let by_nik = camat1
        .get(&format!("/api/search?q={}", &NIK_SITI[..10]))
        .await
        .json();
    assert_eq!(by_nik["people"][0]["nik"], NIK_SITI, "{by_nik}");
    assert_eq!(by_nik["people"][0]["visits"], 2, "{by_nik}");
    assert_eq!(by_nik["people"][0]["referrals"], 1, "{by_nik}");
    let by_kk = camat1.get("/api/search?q=3277+0101+0120").await.json();
    assert_eq!(by_kk["people"].as_array().unwrap().len(), 2, "{by_kk}");

    // Never outside the reader's areas: Darto lives in camat2's kecamatan only.
    let none = camat1.get("/api/search?q=darto").await.json();
    assert!(none["people"].as_array().unwrap().is_empty(), "{none}");
    let darto = camat2.get("/api/search?q=darto").await.json();
    assert_eq!(darto["people"][0]["nik"], NIK_DARTO, "{darto}");
    let elsewhere = camat2.get("/search?q=siti").await.text();
    assert!(!elsewhere.contains(NIK_SITI), "{elsewhere}");
    let nobody = camat2.get("/search?q=engg").await.text();
    assert!(nobody.contains("Tidak ada yang cocok"), "{nobody}");

    // What cannot be searched says why, and an administrator reads no records.
    let short = camat1.get("/search?q=s").await;
    assert_eq!(short.status, 400);
    assert!(short.text().contains("minimal 2 huruf"), "{}", short.text());
    assert_eq!(camat1.get("/api/search?q=3277").await.status, 400);
    let mut admin = f.browser("admin").await;
    assert_eq!(admin.get("/api/search?q=siti").await.status, 403);

    // The household: both members with their records; another kecamatan sees nothing.
    let page = camat1.get(&format!("/households/{KK_SITI}")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("2 anggota tercatat"), "{html}");
    assert!(html.contains(&siti_kk) && html.contains(&son), "{html}");
    assert!(html.contains("Énggar Prasetyo"), "{html}");
    let api = camat1
        .get(&format!("/api/households/{KK_SITI}"))
        .await
        .json();
    assert_eq!(api["members"].as_array().unwrap().len(), 2, "{api}");
    assert_eq!(
        camat2.get(&format!("/households/{KK_SITI}")).await.status,
        404
    );
    assert_eq!(camat1.get("/households/12345").await.status, 400);

    // Listing them was a read of each record, audited.
    let storage = f.server.storage().await;
    let lines = storage
        .audit(&fieldsync_server::storage::directory::AuditFilter {
            device_id: Some("web:camat1".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    storage.close().await.unwrap();
    for doc in [&siti_kk, &son, &f.visit_ani] {
        assert!(
            lines
                .iter()
                .any(|l| &l.document_id == doc && l.action == "read"),
            "{doc} in {lines:?}"
        );
    }
}
