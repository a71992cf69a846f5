//! The HTTP rules of `/files/`, request by request: what tus 1.0.0 and the contract of issue
//! 14 say each answer is.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;

use super::common::TestServer;
use super::support::Client;
use super::{phone, tus_request, visit_with};

fn hex(bytes: &[u8]) -> String {
    fieldsync_protocol::BlobHash::from_bytes(sha2::Sha256::digest(bytes).into()).to_string()
}

fn metadata(sha256: &str, mime: &str) -> String {
    format!(
        "sha256 {},filetype {},filename {}",
        STANDARD.encode(sha256),
        STANDARD.encode(mime),
        STANDARD.encode("KTP Siti.jpg")
    )
}

/// Creates an upload of `bytes` as the default user's phone; returns its path.
async fn create(server: &TestServer, bytes: &[u8], mime: &str) -> String {
    let length = bytes.len().to_string();
    let meta = metadata(&hex(bytes), mime);
    let created = tus_request(
        &mut phone(server),
        "POST",
        "/files/",
        Vec::new(),
        &[("Upload-Length", &length), ("Upload-Metadata", &meta)],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    created.header("location").unwrap().to_owned()
}

async fn patch(server: &TestServer, path: &str, offset: u64, body: &[u8]) -> super::Reply {
    tus_request(
        &mut phone(server),
        "PATCH",
        path,
        body.to_vec(),
        &[("Upload-Offset", &offset.to_string())],
    )
    .await
}

#[tokio::test]
async fn options_say_what_the_server_supports() {
    let server = TestServer::start().await;
    let reply = Client::anonymous(&server)
        .send("OPTIONS", "/files/", "", Vec::new(), &[])
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("tus-version"), Some("1.0.0"));
    assert_eq!(
        reply.header("tus-extension"),
        Some("creation,creation-with-upload,termination,checksum,expiration")
    );
    assert_eq!(reply.header("tus-max-size"), Some("20971520"));
    assert_eq!(reply.header("tus-checksum-algorithm"), Some("sha1,sha256"));
}

#[tokio::test]
async fn creation_refuses_what_it_cannot_take_before_reading_a_body() {
    let server = TestServer::start().await;
    let bytes = b"a scan";
    let good = metadata(&hex(bytes), "image/jpeg");
    // (headers, status, what the message says)
    type Case = (Vec<(&'static str, String)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![("Upload-Metadata", good.clone())],
            400,
            "Upload-Length is required",
        ),
        (
            vec![
                ("Upload-Length", "20971521".into()),
                ("Upload-Metadata", good.clone()),
            ],
            413,
            "at most 20 MB",
        ),
        (
            vec![
                ("Upload-Length", "6".into()),
                ("Upload-Metadata", metadata(&hex(bytes), "text/html")),
            ],
            415,
            "filetype must be one of",
        ),
        (
            vec![
                ("Upload-Length", "6".into()),
                ("Upload-Metadata", metadata("ABC", "image/jpeg")),
            ],
            400,
            "sha256",
        ),
        (
            vec![
                ("Upload-Length", "-6".into()),
                ("Upload-Metadata", good.clone()),
            ],
            400,
            "Upload-Length",
        ),
        (
            vec![
                ("Upload-Length", "0".into()),
                ("Upload-Metadata", good.clone()),
            ],
            400,
            "empty",
        ),
    ];
    for (headers, status, says) in cases {
        let extra: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = tus_request(&mut phone(&server), "POST", "/files/", Vec::new(), &extra).await;
        assert_eq!(reply.status, status, "{headers:?}: {}", reply.text());
        assert!(reply.text().contains(says), "{headers:?}: {}", reply.text());
        assert_eq!(reply.header("tus-resumable"), Some("1.0.0"));
    }
    // Without a device token: 401 like /sync; without Tus-Resumable: 412.
    let anonymous = Client::anonymous(&server)
        .send(
            "POST",
            "/files/",
            "",
            Vec::new(),
            &[("Tus-Resumable", "1.0.0"), ("Upload-Length", "6")],
        )
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["error"], "unauthorized");
    let old = phone(&server)
        .send("POST", "/files/", "", Vec::new(), &[("Upload-Length", "6")])
        .await;
    assert_eq!(old.status, 412);
}

#[tokio::test]
async fn patches_go_at_the_stored_offset_and_a_checksum_mismatch_keeps_nothing_of_the_patch() {
    let server = TestServer::start().await;
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
    let path = create(&server, &bytes, "image/png").await;
    let head = tus_request(&mut phone(&server), "HEAD", &path, Vec::new(), &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("upload-offset"), Some("0"));
    assert_eq!(head.header("upload-length"), Some("1000"));
    assert!(head.header("upload-expires").unwrap().ends_with("GMT"));
    assert_eq!(head.header("cache-control"), Some("no-store"));

    let first = patch(&server, &path, 0, &bytes[..400]).await;
    assert_eq!(first.status, 204, "{}", first.text());
    assert_eq!(first.header("upload-offset"), Some("400"));
    // Not the stored offset: 409.
    assert_eq!(patch(&server, &path, 300, &bytes[300..]).await.status, 409);

    // A checksum that does not match this PATCH's body: 460, and the offset stays.
    let wrong = format!("sha1 {}", STANDARD.encode([0u8; 20]));
    let refused = tus_request(
        &mut phone(&server),
        "PATCH",
        &path,
        bytes[400..].to_vec(),
        &[("Upload-Offset", "400"), ("Upload-Checksum", &wrong)],
    )
    .await;
    assert_eq!(refused.status, 460, "{}", refused.text());
    let head = tus_request(&mut phone(&server), "HEAD", &path, Vec::new(), &[]).await;
    assert_eq!(head.header("upload-offset"), Some("400"));
    // An algorithm the server does not know: 400.
    let md5 = tus_request(
        &mut phone(&server),
        "PATCH",
        &path,
        bytes[400..].to_vec(),
        &[
            ("Upload-Offset", "400"),
            ("Upload-Checksum", "md5 AAAAAAAAAAAAAAAAAAAAAA=="),
        ],
    )
    .await;
    assert_eq!(md5.status, 400);

    // The right checksum: stored, complete, visible.
    let right = format!(
        "sha256 {}",
        STANDARD.encode(sha2::Sha256::digest(&bytes[400..]))
    );
    let last = tus_request(
        &mut phone(&server),
        "PATCH",
        &path,
        bytes[400..].to_vec(),
        &[("Upload-Offset", "400"), ("Upload-Checksum", &right)],
    )
    .await;
    assert_eq!(last.status, 204, "{}", last.text());
    assert_eq!(last.header("upload-offset"), Some("1000"));
    let stored = phone(&server)
        .send(
            "HEAD",
            &format!("/files/sha256/{}", hex(&bytes)),
            "",
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(stored.status, 200);
    // A retry of the finished upload is a success.
    let retry = patch(&server, &path, 0, &bytes).await;
    assert_eq!(retry.status, 204);
    assert_eq!(retry.header("upload-offset"), Some("1000"));
    // Creating it again is complete at once.
    let again = create(&server, &bytes, "image/png").await;
    let head = tus_request(&mut phone(&server), "HEAD", &again, Vec::new(), &[]).await;
    assert_eq!(head.header("upload-offset"), Some("1000"));
}

#[tokio::test]
async fn an_upload_is_only_its_makers_and_termination_deletes_it() {
    let server = TestServer::start().await;
    let bytes = b"a house photo".to_vec();
    let path = create(&server, &bytes, "image/webp").await;
    server
        .add_user(
            "peksos-budi",
            fieldsync_core::schema::Role::Peksos,
            &["32.77.01.1001"],
        )
        .await;
    let (_, budi) = server.enroll("peksos-budi").await;
    let mut other = Client {
        bearer: Some(budi),
        ..Client::anonymous(&server)
    };
    for method in ["HEAD", "DELETE"] {
        let reply = tus_request(&mut other, method, &path, Vec::new(), &[]).await;
        assert_eq!(reply.status, 404, "{method}");
    }
    let reply = tus_request(
        &mut other,
        "PATCH",
        &path,
        bytes.clone(),
        &[("Upload-Offset", "0")],
    )
    .await;
    assert_eq!(reply.status, 404);
    let gone = tus_request(&mut phone(&server), "DELETE", &path, Vec::new(), &[]).await;
    assert_eq!(gone.status, 204);
    let head = tus_request(&mut phone(&server), "HEAD", &path, Vec::new(), &[]).await;
    assert_eq!(head.status, 404);
}

/// A PNG of `width` × `height` pixels.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([10, 120, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload_whole(server: &TestServer, bytes: &[u8], mime: &str) {
    let path = create(server, bytes, mime).await;
    let done = patch(server, &path, 0, bytes).await;
    assert_eq!(done.status, 204, "{}", done.text());
}

#[tokio::test]
async fn thumbnails_are_small_jpegs_and_a_bomb_is_refused_undecoded() {
    let server = TestServer::start().await;
    let photo = png(1200, 600);
    upload_whole(&server, &photo, "image/png").await;
    // A PNG whose header claims 60000 × 60000 pixels.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    upload_whole(&server, &bomb, "image/png").await;
    let pdf = b"%PDF-1.4 surat keterangan".to_vec();
    upload_whole(&server, &pdf, "application/pdf").await;
    visit_with(&server, &[&hex(&photo), &hex(&bomb), &hex(&pdf)]).await;

    let thumb = phone(&server)
        .get(&format!("/files/sha256/{}/thumb", hex(&photo)))
        .await;
    assert_eq!(thumb.status, 200, "{}", thumb.text());
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    let decoded = image::load_from_memory(&thumb.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (320, 160));
    // Made once, then read from the database.
    let again = phone(&server)
        .get(&format!("/files/sha256/{}/thumb", hex(&photo)))
        .await;
    assert_eq!(again.body, thumb.body);

    let refused = phone(&server)
        .get(&format!("/files/sha256/{}/thumb", hex(&bomb)))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("60000"), "{}", refused.text());

    let document = phone(&server)
        .get(&format!("/files/sha256/{}", hex(&pdf)))
        .await;
    assert_eq!(document.status, 200);
    assert_eq!(document.header("content-type"), Some("application/pdf"));
    assert!(
        document
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"lampiran-")
    );
    let no_thumb = phone(&server)
        .get(&format!("/files/sha256/{}/thumb", hex(&pdf)))
        .await;
    assert_eq!(no_thumb.status, 404);
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn unfinished_uploads_expire_and_are_deleted() {
    let server = TestServer::start_with(|c| {
        c.limits.upload_expiry = std::time::Duration::from_millis(1500);
    })
    .await;
    let bytes = vec![9u8; 5000];
    let path = create(&server, &bytes, "image/jpeg").await;
    assert_eq!(patch(&server, &path, 0, &bytes[..2000]).await.status, 204);
    // Gone for the client once expired, and deleted with its bytes by the periodic task.
    let deadline = tokio::time::Instant::now() + super::WAIT;
    loop {
        let uploads = super::count(&server, "SELECT COUNT(*) FROM uploads").await;
        let chunks = super::count(&server, "SELECT COUNT(*) FROM blob_chunks").await;
        if uploads == 0 && chunks == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired upload deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let head = tus_request(&mut phone(&server), "HEAD", &path, Vec::new(), &[]).await;
    assert_eq!(head.status, 404);
}
