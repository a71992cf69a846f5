//! Attachments at `/files/` (issue 14): uploads by the real tus-js-client 4.3.1 (pinned in
//! tests/js/package.json, driven through tests/js/tus-driver.mjs) against the real server,
//! through a proxy that cuts connections, on SQLite and PostgreSQL; and the HTTP rules of
//! tus and of reading blobs, with a plain HTTP client.

mod common;
#[path = "web/support.rs"]
mod support;

#[path = "files/rules.rs"]
mod rules;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};
use common::node::{NodeDriver, setup_js};
use common::proxy::{Faults, Proxy};
use common::{PgDatabase, TestServer, WAIT, visit};
use fieldsync_protocol::{BlobHash, DocumentId};
use serde_json::{Value, json};
use support::{Client, Reply};

/// Runs `story` on a server over SQLite, then over PostgreSQL when configured.
async fn on_both<F, Fut>(story: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = TestServer>,
{
    let server = story(TestServer::start().await).await;
    server.stop().await;
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let url = pg.url.clone();
    let server = story(TestServer::start_with(|c| c.database_url = url).await).await;
    server.stop().await;
    pg.drop_database().await;
}

async fn tus() -> NodeDriver {
    setup_js();
    NodeDriver::start("tus-driver.mjs", &[], WAIT).await
}

fn endpoint(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}/files/")
}

/// A device client of the default user.
fn phone(server: &TestServer) -> Client {
    Client {
        bearer: Some(server.token.clone()),
        ..Client::anonymous(server)
    }
}

/// A tus request from `client`.
async fn tus_request(
    client: &mut Client,
    method: &str,
    path: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("Tus-Resumable", "1.0.0")];
    headers.extend_from_slice(extra);
    let content_type = if method == "PATCH" {
        "application/offset+octet-stream"
    } else {
        ""
    };
    client
        .send(method, path, content_type, body, &headers)
        .await
}

/// The blob's bytes as stored, read from the database.
async fn stored_bytes(server: &TestServer, hash: &str) -> Option<Vec<u8>> {
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let blob = storage
        .blob(BlobHash::parse(hash).unwrap())
        .await
        .unwrap()?;
    let mut out = Vec::new();
    while let Some((_, data)) = storage
        .chunk(&blob.content, out.len() as u64, blob.size)
        .await
        .unwrap()
    {
        out.extend_from_slice(&data);
    }
    storage.close().await.unwrap();
    Some(out)
}

/// One number from the database (`SELECT COUNT(*) …`).
async fn count(server: &TestServer, sql: &'static str) -> i64 {
    let url = &server.config.database_url;
    if url.starts_with("postgres") {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// A visit by the default user whose attachments list references `hashes`; returns once the
/// server has stored it.
async fn visit_with(server: &TestServer, hashes: &[&str]) -> DocumentId {
    let (replica, _handle) = server.phone().await;
    let hashes: Vec<String> = hashes.iter().map(|h| (*h).to_owned()).collect();
    let id = replica
        .create(move |tx| {
            visit(tx)?;
            let list = tx.put_object(ROOT, "attachments", ObjType::List)?;
            for (i, hash) in hashes.iter().enumerate() {
                let entry = tx.insert_object(&list, i, ObjType::Map)?;
                tx.put(&entry, "sha256", hash.as_str())?;
                tx.put(&entry, "size", 1_i64)?;
                tx.put(&entry, "mime", "image/jpeg")?;
                tx.put(&entry, "kind", "ktp")?;
                tx.put(&entry, "takenAt", "2026-11-20T09:30:00Z")?;
            }
            Ok(())
        })
        .await
        .unwrap();
    replica.wait_acknowledged(id, WAIT).await.unwrap();
    id
}

/// Waits until the upload at `url` (a path under `/files/`) has stored at least `bytes`.
async fn stored_at_least(server: &TestServer, path: &str, bytes: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let head = tus_request(&mut phone(server), "HEAD", path, Vec::new(), &[]).await;
        let offset: u64 = head
            .header("upload-offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        if offset >= bytes {
            return offset;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload reached {bytes} bytes (it is at {offset})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn path_of(url: &str) -> String {
    url.find("/files/").map(|i| url[i..].to_owned()).unwrap()
}

fn requests(done: &Value) -> Vec<Value> {
    done["requests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_cut_upload_resumes_from_the_servers_offset_and_completes() {
    on_both(|server| async move {
        let proxy = Proxy::start(server.addr).await;
        // 8 Mbit/s: the 2 MB scan takes about two seconds, time to cut it in the middle.
        proxy.set(Faults {
            bits_per_second: Some(8_000_000),
            ..Faults::default()
        });
        let mut tus = tus().await;
        let size = 2 * 1024 * 1024;
        let started = tus
            .ok(
                json!({"cmd": "upload", "name": "scan", "endpoint": endpoint(proxy.addr),
                       "token": server.token, "size": size, "seed": 7}),
            )
            .await;
        let path = path_of(started["url"].as_str().unwrap());
        let before_cut = stored_at_least(&server, &path, 512 * 1024).await;
        proxy.cut_all();
        proxy.heal();
        let done = tus.ok(json!({"cmd": "wait", "name": "scan"})).await;
        assert_eq!(done["result"], "success", "{done}");

        // After the cut, the client asked the server's offset and sent only the rest.
        let requests = requests(&done);
        let head = requests
            .iter()
            .position(|r| r["method"] == "HEAD")
            .unwrap_or_else(|| panic!("the client asked the offset after the cut: {done}"));
        let resumed_at: u64 = requests[head]["responseOffset"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(resumed_at >= before_cut, "{done}");
        assert!(resumed_at < size, "{done}");
        let next = &requests[head + 1..]
            .iter()
            .find(|r| r["method"] == "PATCH")
            .unwrap();
        assert_eq!(next["offset"], json!(resumed_at.to_string()), "{done}");
        // HEAD waited for the cut PATCH to store what arrived: no PATCH was sent from an
        // offset the server had already passed (a 409 after sending its whole body).
        assert!(!requests.iter().any(|r| r["status"] == 409), "{done}");

        let sha256 = started["sha256"].as_str().unwrap();
        let stored = stored_bytes(&server, sha256)
            .await
            .expect("the blob is stored");
        assert_eq!(stored.len() as u64, size);
        assert_eq!(
            BlobHash::from_bytes(sha2_of(&stored)).to_string(),
            sha256,
            "the stored bytes are the file's"
        );
        tus.quit().await;
        server
    })
    .await;
}

fn sha2_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[tokio::test]
async fn a_wrong_checksum_is_refused_and_nothing_is_kept() {
    on_both(|server| async move {
        let mut tus = tus().await;
        let wrong = "0".repeat(64);
        let started = tus
            .ok(
                json!({"cmd": "upload", "name": "bad", "endpoint": endpoint(server.addr),
                       "token": server.token, "size": 300_000, "seed": 3, "sha256": wrong}),
            )
            .await;
        let done = tus.ok(json!({"cmd": "wait", "name": "bad"})).await;
        assert_eq!(done["result"], "error", "{done}");
        assert_eq!(done["status"], 460, "{done}");
        assert!(
            done["body"].as_str().unwrap().contains("nothing was kept"),
            "{done}"
        );
        let real = started["sha256"].as_str().unwrap();
        for hash in [real, wrong.as_str()] {
            let head = phone(&server)
                .send(
                    "HEAD",
                    &format!("/files/sha256/{hash}"),
                    "",
                    Vec::new(),
                    &[],
                )
                .await;
            assert_eq!(head.status, 404);
        }
        assert_eq!(count(&server, "SELECT COUNT(*) FROM uploads").await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) FROM blob_chunks").await, 0);
        tus.quit().await;
        server
    })
    .await;
}

#[tokio::test]
async fn the_same_photo_twice_is_stored_once() {
    on_both(|server| async move {
        let mut tus = tus().await;
        let (_, other_token) = server.enroll("peksos-ani").await;
        let mut sha = Vec::new();
        // The second phone sends the data with the creation request (creation-with-upload).
        for (name, token, with) in [("one", &server.token, false), ("two", &other_token, true)] {
            let started = tus
                .ok(
                    json!({"cmd": "upload", "name": name, "endpoint": endpoint(server.addr),
                           "token": token, "size": 600_000, "seed": 11,
                           "creationWithUpload": with}),
                )
                .await;
            let done = tus.ok(json!({"cmd": "wait", "name": name})).await;
            assert_eq!(done["result"], "success", "{done}");
            sha.push(started["sha256"].as_str().unwrap().to_owned());
        }
        assert_eq!(sha[0], sha[1]);
        assert_eq!(count(&server, "SELECT COUNT(*) FROM blobs").await, 1);
        // 600 000 bytes are three chunk rows of at most 256 KiB: one copy.
        assert_eq!(count(&server, "SELECT COUNT(*) FROM blob_chunks").await, 3);
        tus.quit().await;
        server
    })
    .await;
}

#[tokio::test]
async fn a_file_over_the_maximum_gets_413_from_the_first_request() {
    on_both(|server| async move {
        let mut tus = tus().await;
        let size = 20 * 1024 * 1024 + 1;
        tus.ok(
            json!({"cmd": "upload", "name": "big", "endpoint": endpoint(server.addr),
                      "token": server.token, "size": size, "seed": 5}),
        )
        .await;
        let done = tus.ok(json!({"cmd": "wait", "name": "big"})).await;
        assert_eq!(done["result"], "error", "{done}");
        assert_eq!(done["status"], 413, "{done}");
        assert!(
            done["body"].as_str().unwrap().contains("at most 20 MB"),
            "{done}"
        );
        assert_eq!(
            requests(&done).len(),
            1,
            "one request, no body sent: {done}"
        );
        tus.quit().await;
        server
    })
    .await;
}

#[tokio::test]
async fn a_blob_is_read_only_by_whoever_may_read_a_document_that_references_it() {
    on_both(|server| async move {
        let mut tus = tus().await;
        let mut hashes = Vec::new();
        for (name, seed) in [("referenced", 21), ("unreferenced", 22)] {
            let started = tus
                .ok(
                    json!({"cmd": "upload", "name": name, "endpoint": endpoint(server.addr),
                           "token": server.token, "size": 40_000, "seed": seed}),
                )
                .await;
            let done = tus.ok(json!({"cmd": "wait", "name": name})).await;
            assert_eq!(done["result"], "success", "{done}");
            hashes.push(started["sha256"].as_str().unwrap().to_owned());
        }
        tus.quit().await;
        let doc = visit_with(&server, &[&hashes[0]]).await;

        // The field worker of the area reads it, with the headers of a safe download.
        let path = format!("/files/sha256/{}", hashes[0]);
        let got = phone(&server).get(&path).await;
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.body.len(), 40_000);
        assert_eq!(
            BlobHash::from_bytes(sha2_of(&got.body)).to_string(),
            hashes[0]
        );
        assert_eq!(got.header("content-type"), Some("image/jpeg"));
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
        assert!(
            got.header("content-security-policy")
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(
            got.header("content-disposition"),
            Some(format!("inline; filename=\"lampiran-{}.jpg\"", &hashes[0][..12]).as_str())
        );
        assert_eq!(
            got.header("cache-control"),
            Some("private, max-age=31536000, immutable")
        );
        let etag = got.header("etag").unwrap().to_owned();
        let again = phone(&server)
            .send("GET", &path, "", Vec::new(), &[("If-None-Match", &etag)])
            .await;
        assert_eq!(again.status, 304);

        // Someone of another kelurahan, and a hash no document references: 404 like nothing.
        server
            .add_user(
                "peksos-lain",
                fieldsync_core::schema::Role::Peksos,
                &["32.77.02"],
            )
            .await;
        let (_, stranger) = server.enroll("peksos-lain").await;
        let mut outsider = Client {
            bearer: Some(stranger),
            ..Client::anonymous(&server)
        };
        let refused = outsider.get(&path).await;
        assert_eq!(refused.status, 404);
        let unreferenced = phone(&server)
            .get(&format!("/files/sha256/{}", hashes[1]))
            .await;
        assert_eq!(unreferenced.status, 404);
        assert_eq!(
            unreferenced.body, refused.body,
            "the same answer as a missing blob"
        );
        let missing = phone(&server)
            .get(&format!("/files/sha256/{}", "1".repeat(64)))
            .await;
        assert_eq!((missing.status, missing.body), (404, refused.body));
        // Without a token or a session: 401.
        assert_eq!(Client::anonymous(&server).get(&path).await.status, 401);

        // A supervisor of the city, signed in on the web, reads it too; both reads are audited
        // as reads of the visit.
        support::person(
            &server,
            "spv-kota",
            fieldsync_core::schema::Role::Supervisor,
            &["32.77"],
        )
        .await;
        let mut browser = Client::browser(&server, "spv-kota").await;
        assert_eq!(browser.get(&path).await.status, 200);
        let storage = fieldsync_server::storage::open(&server.config.database_url)
            .await
            .unwrap();
        let lines = storage
            .audit(&fieldsync_server::storage::directory::AuditFilter {
                document_id: Some(doc.to_string()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        storage.close().await.unwrap();
        let reads: Vec<(&str, &str)> = lines
            .iter()
            .filter(|l| l.detail.contains("attachment"))
            .map(|l| (l.user_id.as_str(), l.detail.as_str()))
            .collect();
        let detail = format!("visit attachment {}", hashes[0]);
        assert!(
            reads.contains(&("peksos-ani", detail.as_str())),
            "{reads:?}"
        );
        assert!(reads.contains(&("spv-kota", detail.as_str())), "{reads:?}");
        assert!(!reads.iter().any(|(u, _)| *u == "peksos-lain"), "{reads:?}");
        server
    })
    .await;
}
