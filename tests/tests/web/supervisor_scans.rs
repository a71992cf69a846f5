//! Photos and scans on the office pages: the referral page shows a referral's scans beside its
//! checklist (a scan satisfies its item), "scan pending" until the phone has uploaded it, then a
//! thumbnail that opens the full size; the beneficiary timeline shows them too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fieldsync_core::schema::{Attachment, AttachmentKind, MediaType, Program, Role, Sha256};
use serde_json::Value;
use sha2::{Digest, Sha256 as Hasher};

use super::{ANI, ANI_AREA, create, referral};
use crate::common::TestServer;
use crate::support::{Client, person};

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 120, 10]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn hex(bytes: &[u8]) -> String {
    Hasher::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn attachment(bytes: &[u8], kind: AttachmentKind, caption: Option<&str>) -> Attachment {
    Attachment {
        sha256: Sha256::parse(&hex(bytes)).unwrap(),
        size: bytes.len() as u64,
        mime: MediaType::Png,
        kind,
        taken_at: "2026-11-20T09:35:00Z".into(),
        caption: caption.map(str::to_owned),
        id: None,
    }
}

/// Uploads `bytes` whole with tus (creation, then one PATCH) with the server's device token.
async fn upload(server: &TestServer, bytes: &[u8]) {
    let mut phone = Client {
        bearer: Some(server.token.clone()),
        ..Client::anonymous(server)
    };
    let metadata = format!(
        "sha256 {},filetype {}",
        STANDARD.encode(hex(bytes)),
        STANDARD.encode("image/png")
    );
    let length = bytes.len().to_string();
    let created = phone
        .send(
            "POST",
            "/files/",
            "",
            Vec::new(),
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Length", &length),
                ("Upload-Metadata", &metadata),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let location = created.header("location").unwrap().to_owned();
    let path = location
        .find("/files/")
        .map_or(location.as_str(), |at| &location[at..])
        .to_owned();
    let patched = phone
        .send(
            "PATCH",
            &path,
            "application/offset+octet-stream",
            bytes.to_vec(),
            &[("Tus-Resumable", "1.0.0"), ("Upload-Offset", "0")],
        )
        .await;
    assert_eq!(patched.status, 204, "{}", patched.text());
}

#[tokio::test]
async fn a_referrals_scans_show_on_its_page_pending_until_uploaded_then_as_thumbnails() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "ita", Role::Coordinator, &["32.77"]).await;
    let (ani, _sync) = server.phone_as(ANI).await;

    // A referral whose KTP box is not ticked, but which carries a KTP scan, and a house photo.
    let ktp = png(900, 600);
    let house = png(640, 480);
    let mut r = referral(ANI_AREA, ANI, Program::KisPbi, Some("2026-11-20T09:46:00Z"));
    r.documents.ktp = false;
    r.attachments = vec![
        attachment(&ktp, AttachmentKind::Ktp, Some("KTP Siti")),
        attachment(&house, AttachmentKind::Rumah, None),
    ];
    let nik = r.beneficiary.nik.as_str().to_owned();
    let id = create(&ani, r).await;
    let (ktp_hash, house_hash) = (hex(&ktp), hex(&house));

    // Nothing uploaded yet: both are pending, and the KTP scan already satisfies its item.
    let mut sri = Client::browser(&server, "sri").await;
    let page = sri.get(&format!("/referrals/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(html.matches(r#"data-state="pending""#).count(), 2, "{html}");
    assert!(html.contains("Pindaian belum terunggah"));
    assert!(
        html.contains(r#"<span class="doc yes" data-item="ktp""#),
        "the KTP item is satisfied by its scan: {html}"
    );
    assert!(html.contains(r#"<span class="doc no" data-item="sktm""#));
    assert!(!html.contains("/thumb"), "no thumbnail before the upload");

    // The phone uploads the KTP scan: the page shows its thumbnail, opening the full size.
    upload(&server, &ktp).await;
    let html = sri.get(&format!("/referrals/{id}")).await.text();
    assert!(
        html.contains(&format!(
            r#"<a href="/files/sha256/{ktp_hash}" target="_blank" rel="noopener"><img src="/files/sha256/{ktp_hash}/thumb" alt="KTP""#
        )),
        "{html}"
    );
    assert!(html.contains("KTP Siti"));
    assert!(html.contains(&format!(
        r#"data-sha256="{house_hash}" data-state="pending""#
    )));
    let thumb = sri.get(&format!("/files/sha256/{ktp_hash}/thumb")).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    let full = sri.get(&format!("/files/sha256/{ktp_hash}")).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body, ktp);

    // The API says the same.
    let mut script = Client::script(&server, "sri").await;
    let api = script.get(&format!("/api/referrals/{id}")).await.json();
    let stored: Vec<(String, bool)> = api["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["sha256"].as_str().unwrap().to_owned(),
                a["stored"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        vec![(ktp_hash.clone(), true), (house_hash.clone(), false)]
    );
    let item = |name: &str| -> Value {
        api["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["item"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(item("ktp")["checked"], false);
    assert_eq!(item("ktp")["satisfied"], true);
    assert_eq!(item("ktp")["scans"][0], ktp_hash.as_str());
    assert_eq!(item("sktm")["satisfied"], false);

    // The beneficiary's timeline shows them with the referral.
    let mut ita = Client::browser(&server, "ita").await;
    let timeline = ita.get(&format!("/beneficiaries/{nik}")).await;
    assert_eq!(timeline.status, 200);
    let html = timeline.text();
    assert!(
        html.contains(&format!(r#"data-sha256="{ktp_hash}" data-state="stored""#)),
        "{html}"
    );
    assert!(html.contains(&format!(
        r#"data-sha256="{house_hash}" data-state="pending""#
    )));
}
