//! The operator's commands, run as the real binary: `fieldsync check` finds damage and names
//! it, `fieldsync backup` makes a copy that restores, and a restore drill: phones that synced
//! with the lost server bring back what came after the backup.

#![cfg(unix)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use fieldsync_client::{ConnectOptions, Replica};
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
use fieldsync_protocol::DocumentId;
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::{self, Storage, Write};
use sqlx::Connection;

#[path = "../../tests/tests/common/skip.rs"]
mod skip;

const WAIT: Duration = Duration::from_secs(20);

fn fieldsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(args)
        .env("NO_COLOR", "1")
        // An operator's error is one line; a backtrace is for developers.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("the fieldsync binary runs")
}

/// A valid field visit, with an extra counter the schema ignores.
fn visit(
    tx: &mut automerge::transaction::Transaction<'_>,
) -> Result<(), automerge::AutomergeError> {
    let area = RegionCode::parse("32.77.01.1001").expect("a valid code");
    FieldDocument::Visit(examples::visit(&area, "peksos-ani")).write(tx)
}

fn counter(doc: &Automerge) -> Option<i64> {
    doc.get(ROOT, "counter")
        .ok()
        .flatten()
        .and_then(|(v, _)| v.as_scalar().and_then(|s| s.as_i64()))
}

/// A database to check: a SQLite file, and a fresh PostgreSQL database when
/// FIELDSYNC_TEST_POSTGRES_URL names a server.
struct Database {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

async fn databases() -> Vec<Database> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![Database {
        url: format!("sqlite://{}", dir.path().join("ops.db").display()),
        _dir: Some(dir),
        drop_db: None,
    }];
    match std::env::var("FIELDSYNC_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let db = format!("fieldsync_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
            out.push(Database {
                url: format!("{base}/{db}"),
                _dir: None,
                drop_db: Some((admin_url, db)),
            });
        }
        _ => skip::skipped(
            "fieldsync check on PostgreSQL (set FIELDSYNC_TEST_POSTGRES_URL=postgres://USER@HOST/DB)",
            "PostgreSQL not configured",
        ),
    }
    out
}

async fn finish(databases: Vec<Database>) {
    for d in databases {
        if let Some((admin_url, db)) = d.drop_db {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {db} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }
}

/// Stores three visits the way the server does: each a change chunk with its query rows,
/// then a second change chunk. Returns their ids.
async fn store_visits(storage: &dyn Storage) -> Vec<DocumentId> {
    let mut ids = Vec::new();
    for n in 0..3u8 {
        let id = DocumentId::from_bytes([n + 1; 16]);
        let mut doc = Automerge::new();
        doc.transact(visit).unwrap();
        let first = doc.save();
        let heads = doc.get_heads();
        doc.transact(|tx| tx.put(ROOT, "counter", 1).map(|_| ()))
            .unwrap();
        let second = doc.save_after(&heads);
        for bytes in [first, second] {
            let state = FieldDocument::read_state(&doc).unwrap();
            storage
                .write(&[Write::Append {
                    doc: id,
                    bytes,
                    projection: Projection::of(state.as_ref()),
                }])
                .await
                .unwrap();
        }
        ids.push(id);
    }
    ids
}

fn check(url: &str) -> (Output, serde_json::Value) {
    let out = fieldsync(&["check", "--json", "--database", url]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {out:?}"));
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_a_clean_database_and_names_a_corrupt_chunk_and_a_tampered_row() {
    let databases = databases().await;
    for db in &databases {
        let storage = storage::open(&db.url).await.unwrap();
        let ids = store_visits(storage.as_ref()).await;

        let (out, report) = check(&db.url);
        assert!(out.status.success(), "{}: {out:?}", db.url);
        assert_eq!(report["documents"], 3, "{report}");
        assert_eq!(report["chunks"], 6, "{report}");
        assert_eq!(report["rows"], 3, "{report}");
        assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
        let text = fieldsync(&["check", "--database", &db.url]);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("no damage"),
            "{text:?}"
        );

        // Damage: bytes overwritten in the middle of the second chunk of one document (the
        // server would load it without that change), and a query row edited by hand.
        damage(&db.url, ids[0], ids[1]).await;

        let (out, report) = check(&db.url);
        assert_eq!(out.status.code(), Some(1), "{}: {out:?}", db.url);
        let mut damaged: Vec<(String, String)> = report["damaged"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["document"].as_str().unwrap().to_owned(),
                    d["problem"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        damaged.sort();
        let mut want = vec![
            (ids[0].to_string(), "chunk-does-not-decode".to_owned()),
            (ids[1].to_string(), "rows-differ".to_owned()),
        ];
        want.sort();
        assert_eq!(damaged, want, "{}: {report}", db.url);
        // The text names the documents, never what they hold.
        let text = fieldsync(&["check", "--database", &db.url]);
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert!(stdout.contains(&ids[0].to_string()), "{stdout}");
        assert!(stdout.contains(&ids[1].to_string()), "{stdout}");
        assert!(!stdout.contains("3277015204800002"), "{stdout}");
        storage.close().await.unwrap();
    }
    finish(databases).await;
}

/// Overwrites bytes in the middle of `chunk_of`'s newest chunk, and edits a query row of
/// `row_of`, with SQL on a connection of the test's own.
async fn damage(url: &str, chunk_of: DocumentId, row_of: DocumentId) {
    macro_rules! on {
        ($conn:expr) => {{
            let mut conn = $conn;
            let (chunk, mut data): (i64, Vec<u8>) = sqlx::query_as(
                "SELECT id, data FROM chunks WHERE document_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(chunk_of.to_string())
            .fetch_one(&mut conn)
            .await
            .unwrap();
            let middle = data.len() / 2;
            for b in &mut data[middle..middle + 4] {
                *b ^= 0xff;
            }
            sqlx::query("UPDATE chunks SET data = $1 WHERE id = $2")
                .bind(data)
                .bind(chunk)
                .execute(&mut conn)
                .await
                .unwrap();
            let updated =
                sqlx::query("UPDATE visits SET purpose = 'tampered' WHERE document_id = $1")
                    .bind(row_of.to_string())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(updated.rows_affected(), 1);
            conn.close().await.unwrap();
        }};
    }
    if url.starts_with("postgres") {
        on!(sqlx::PgConnection::connect(url).await.unwrap());
    } else {
        on!(sqlx::SqliteConnection::connect(url).await.unwrap());
    }
}

#[test]
fn backup_refuses_to_overwrite_and_points_postgres_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, b"keep me").unwrap();
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    // The database exists once a command opened it.
    let out = fieldsync(&["check", "--database", &db]);
    assert!(out.status.success(), "{out:?}");

    let out = fieldsync(&[
        "backup",
        "--database",
        &db,
        "--to",
        existing.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let to = dir.path().join("pg.backup");
    let out = fieldsync(&[
        "backup",
        "--database",
        "postgres://postgres@127.0.0.1:1/none",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump -Fc"), "{stderr}");
    assert!(!to.exists());

    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let out = fieldsync(&[
        "backup",
        "--database",
        &missing,
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!to.exists());
}

/// The server process, killed when dropped so that a failing test leaves nothing running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = fieldsync(&args);
    assert!(out.status.success(), "fieldsync {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Starts `fieldsync serve` on a random port with `args` naming its database; returns the
/// process and its address.
fn serve(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .env("FIELDSYNC_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the fieldsync binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr: String = addr.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(addr);
            }
        }
    });
    let server = Server(child);
    let addr = rx
        .recv_timeout(WAIT)
        .expect("the server reports its address");
    (server, addr)
}

type Acknowledged = Arc<Mutex<HashMap<DocumentId, i64>>>;

/// Waits until every document's acknowledged counter is at least `floor(id)`.
async fn wait_acknowledged(
    acknowledged: &Acknowledged,
    docs: &[(usize, DocumentId)],
    floor: impl Fn(DocumentId) -> i64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let acknowledged = acknowledged.lock().unwrap();
            docs.iter()
                .all(|(_, id)| acknowledged.get(id).copied().unwrap_or(0) >= floor(*id))
        };
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no acknowledgements"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_backup_while_phones_sync_then_phones_bring_back_the_rest() {
    let old_dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", old_dir.path().join("fieldsync.db").display());
    let user = json(&[
        "user",
        "add",
        "--id",
        "peksos-ani",
        "--name",
        "Ani",
        "--role",
        "peksos",
        "--area",
        "32.77.01.1001",
        "--database",
        &db,
    ]);
    assert_eq!(user["id"], "peksos-ani");
    let device = json(&[
        "device",
        "enroll",
        "--user",
        "peksos-ani",
        "--database",
        &db,
    ]);
    let token = device["token"].as_str().unwrap().to_owned();
    let (old_server, addr) = serve(&["--database", &db]);
    let url = format!("ws://{addr}/sync?token={token}");

    // Three phones, two visits each, all syncing.
    let mut phones = Vec::new();
    let mut docs: Vec<(usize, DocumentId)> = Vec::new();
    for p in 0..3 {
        let phone = Replica::in_memory().await;
        for _ in 0..2 {
            let id = phone
                .create(|tx| {
                    visit(tx)?;
                    tx.put(ROOT, "counter", 0).map(|_| ())
                })
                .await
                .unwrap();
            docs.push((p, id));
        }
        let handle = phone.connect(ConnectOptions {
            max_backoff: Duration::from_millis(200),
            ..ConnectOptions::new(url.clone())
        });
        phones.push((phone, Some(handle)));
    }

    // Every document is edited over and over; each phone notes the highest counter the
    // server acknowledged.
    let acknowledged: Acknowledged = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let mut editors = Vec::new();
    for (p, id) in docs.clone() {
        let phone = phones[p].0.clone();
        let (acknowledged, running) = (acknowledged.clone(), running.clone());
        editors.push(tokio::spawn(async move {
            let mut round = 0;
            while running.load(Ordering::Relaxed) {
                round += 1;
                phone
                    .change(id, |tx| tx.put(ROOT, "counter", round))
                    .await
                    .unwrap();
                if phone
                    .wait_acknowledged(id, Duration::from_millis(500))
                    .await
                    .is_ok()
                {
                    acknowledged.lock().unwrap().insert(id, round);
                }
            }
        }));
    }
    wait_acknowledged(&acknowledged, &docs, |_| 3).await;

    // The backup, while the phones keep syncing. What was acknowledged before it began must
    // be in it.
    let before = acknowledged.lock().unwrap().clone();
    let backup = old_dir.path().join("backup.db");
    let backup_arg = backup.to_str().unwrap().to_owned();
    let db_arg = db.clone();
    let report = tokio::task::spawn_blocking(move || {
        json(&["backup", "--database", &db_arg, "--to", &backup_arg])
    })
    .await
    .unwrap();
    // Six visits and Ani's caseload index: its root and the page of her kelurahan.
    assert_eq!(report["documents"], 8, "{report}");
    // More changes, acknowledged by the old server only.
    let at_backup = acknowledged.lock().unwrap().clone();
    wait_acknowledged(&acknowledged, &docs, |id| at_backup[&id] + 3).await;

    // The disk dies: the old server is gone with everything after the backup.
    running.store(false, Ordering::Relaxed);
    for e in editors {
        e.await.unwrap();
    }
    for (_, handle) in &mut phones {
        handle.take().unwrap().stop().await;
    }
    drop(old_server);

    // Restore: the backup becomes the database of a new data directory.
    let new_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, new_dir.path().join("fieldsync.db")).unwrap();
    let (_new_server, addr) = serve(&["--data-dir", new_dir.path().to_str().unwrap()]);
    let url = format!("ws://{addr}/sync?token={token}");

    // Before any phone returns: nothing acknowledged before the backup is missing.
    let reader = Replica::in_memory().await;
    let _reading = reader.connect(ConnectOptions::new(url.clone()));
    for (_, id) in &docs {
        reader.find(*id).await;
        let floor = before[id];
        reader
            .wait_doc(*id, WAIT, |d| counter(d).is_some_and(|c| c >= floor))
            .await
            .unwrap_or_else(|_| {
                panic!("document {id}: {floor} was acknowledged before the backup")
            });
    }

    // ... and what came after it is missing (else this drill would test nothing).
    for (p, id) in &docs {
        let restored = reader.read(*id, counter).await.flatten().unwrap();
        let latest = phones[*p].0.read(*id, counter).await.flatten().unwrap();
        assert!(
            restored < latest,
            "document {id}: {restored} restored, {latest} on the phone"
        );
    }

    // The phones reconnect and bring back what came after: the server ends with every
    // phone's heads.
    let mut handles = Vec::new();
    for (phone, _) in &phones {
        handles.push(phone.connect(ConnectOptions::new(url.clone())));
    }
    for (p, id) in &docs {
        let heads = phones[*p].0.heads(*id).await.unwrap();
        reader
            .wait_doc(*id, WAIT, |d| d.get_heads() == heads)
            .await
            .unwrap_or_else(|_| panic!("document {id} re-synced from its phone"));
        phones[*p].0.wait_acknowledged(*id, WAIT).await.unwrap();
        assert_eq!(phones[*p].0.heads(*id).await.unwrap(), heads, "{id}");
    }
    for handle in handles {
        handle.stop().await;
    }
    // The restored database is whole.
    let restored = format!("sqlite://{}", new_dir.path().join("fieldsync.db").display());
    let (out, report) = check(&restored);
    assert!(out.status.success(), "{out:?}");
    // Six visits, and Ani's index: its root and her kelurahan's page.
    assert_eq!(report["documents"], 8, "{report}");
    assert_eq!(report["indexes"], 2, "{report}");
}

/// Runs `fieldsync serve` expecting it to refuse to start; returns its standard error.
fn serve_refused(args: &[&str]) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fieldsync binary starts");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(WAIT) else {
        let _ = Command::new("kill").arg(id.to_string()).status();
        panic!("fieldsync serve {args:?} started instead of refusing");
    };
    let out = out.unwrap();
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_fieldsync_is_refused_in_one_line() {
    let version = fieldsync(&["--version"]);
    let version = String::from_utf8(version.stdout).unwrap();
    let schema = fieldsync_server::storage::migrate::schema_version();
    assert_eq!(
        version.trim(),
        format!(
            "fieldsync {} (database schema {schema})",
            env!("CARGO_PKG_VERSION")
        )
    );

    let databases = databases().await;
    for db in &databases {
        storage::open(&db.url).await.unwrap().close().await.unwrap();
        let newer = schema + 1;
        macro_rules! on {
            ($conn:expr) => {{
                let mut conn = $conn;
                sqlx::query(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                     execution_time) VALUES ($1, 'from the future', TRUE, $2, 0)",
                )
                .bind(newer)
                .bind(vec![0u8; 48])
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
            }};
        }
        if db.url.starts_with("postgres") {
            on!(sqlx::PgConnection::connect(&db.url).await.unwrap());
        } else {
            on!(sqlx::SqliteConnection::connect(&db.url).await.unwrap());
        }
        let stderr = serve_refused(&["--database", &db.url]);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].ends_with(&format!(
                "this database was upgraded by a newer fieldsync (schema {newer}); this is version {} \
                 with schema {schema}: run the newer version or restore a backup",
                env!("CARGO_PKG_VERSION")
            )),
            "{stderr}"
        );
    }
    finish(databases).await;
}

/// The highest migration applied to the database.
async fn schema_of(url: &str) -> i64 {
    let query = "SELECT MAX(version) FROM _sqlx_migrations";
    let (schema,): (i64,) = if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(query).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(query).fetch_one(&mut conn).await.unwrap()
    };
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_made_by_v0_1_0_opens_migrates_and_serves() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v0.1.0");
    let databases = databases().await;
    for db in &databases {
        // The SQLite file, or the PostgreSQL dump loaded into the fresh database.
        if let Some(path) = db.url.strip_prefix("sqlite://") {
            std::fs::copy(format!("{fixtures}/fieldsync.db"), path).unwrap();
        } else {
            let dump = std::fs::read_to_string(format!("{fixtures}/fieldsync.sql")).unwrap();
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        assert_eq!(schema_of(&db.url).await, 4, "v0.1.0's schema");
        serves_what_v0_1_0_stored(&db.url).await;
    }
    finish(databases).await;
}

async fn serves_what_v0_1_0_stored(db: &str) {
    let visit_id = DocumentId::from_bytes([0x10; 16]);
    // The field worker v0.1.0 stored gets a new device; the server starts on the old data.
    let device = json(&["device", "enroll", "--user", "peksos-ani", "--database", db]);
    let token = device["token"].as_str().unwrap().to_owned();
    let (_server, addr) = serve(&["--database", db]);
    assert_eq!(
        schema_of(db).await,
        fieldsync_server::storage::migrate::schema_version(),
        "{db}: migrated"
    );

    // A phone syncs a visit v0.1.0 stored.
    let phone = Replica::in_memory().await;
    let _syncing = phone.connect(ConnectOptions::new(format!(
        "ws://{addr}/sync?token={token}"
    )));
    phone.find(visit_id).await;
    phone
        .wait_doc(visit_id, WAIT, |d| {
            counter(d) == Some(1) && matches!(FieldDocument::read(d), Ok(FieldDocument::Visit(_)))
        })
        .await
        .unwrap_or_else(|_| panic!("{db}: the visit v0.1.0 stored reaches the phone"));

    // Every document and query row v0.1.0 wrote reads as this version computes it.
    let (out, report) = check(db);
    assert!(out.status.success(), "{db}: {out:?}");
    // Its three documents, and the caseload index today's server made for Ani: its root and
    // the page of her kelurahan.
    assert_eq!(report["documents"], 5, "{db}: {report}");
    assert_eq!(report["indexes"], 2, "{db}: {report}");
    assert_eq!(report["rows"], 3, "{db}: {report}");
}

/// Where `scripts/setup-js.sh` puts idn-area-data's lists (Kemendagri's areas), if it ran.
fn official_areas() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/js/node_modules/idn-area-data/data");
    if dir.join("villages.csv").exists() {
        return Some(dir);
    }
    skip::skipped(
        "fieldsync areas import of the official lists (run scripts/setup-js.sh)",
        "npm packages not installed",
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn areas_import_reads_the_official_lists_once_and_a_bad_file_changes_nothing() {
    let Some(official) = official_areas() else {
        return;
    };
    // The same lists with one kelurahan in a kecamatan that does not exist, at the end.
    let bad = tempfile::tempdir().unwrap();
    for file in [
        "provinces.csv",
        "regencies.csv",
        "districts.csv",
        "villages.csv",
    ] {
        std::fs::copy(official.join(file), bad.path().join(file)).unwrap();
    }
    let mut villages = std::fs::read_to_string(bad.path().join("villages.csv")).unwrap();
    villages.push_str("32.77.09.1001,32.77.09,Entah\n");
    std::fs::write(bad.path().join("villages.csv"), villages).unwrap();

    let databases = databases().await;
    for db in &databases {
        let url = db.url.as_str();
        let out = fieldsync(&[
            "areas",
            "import",
            bad.path().to_str().unwrap(),
            "--database",
            url,
        ]);
        assert!(!out.status.success(), "{url}: a bad file is refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("32.77.09.1001") && err.contains("villages.csv line"),
            "{url}: the error names the row: {err}"
        );

        let official = official.to_str().unwrap();
        let started = std::time::Instant::now();
        let first = json(&["areas", "import", official, "--database", url]);
        let took = started.elapsed();
        let read = first["read"].as_u64().unwrap();
        // 38 provinces, 514 kabupaten/kota, 7,285 kecamatan, 83,762 kelurahan/desa (4.0.1).
        assert!(read > 90_000, "{url}: {first}");
        assert_eq!(first["added"].as_u64(), Some(read), "{url}: {first}");
        assert_eq!(
            first["total"].as_u64(),
            Some(read),
            "{url}: nothing from the bad file"
        );
        eprintln!("{url}: imported {read} areas in {took:?}");

        let again = json(&["areas", "import", official, "--database", url]);
        assert_eq!(again["added"], 0, "{url}: {again}");
        assert_eq!(again["renamed"], 0, "{url}: {again}");

        let storage = storage::open(url).await.unwrap();
        let names =
            fieldsync_server::areas::AreaNames::from_rows(storage.area_rows().await.unwrap());
        storage.close().await.unwrap();
        assert_eq!(names.len() as u64, read);
        assert_eq!(names.name("32.77.02.1003"), Some("Karangmekar"));
        assert_eq!(names.name("32.77"), Some("Kota Cimahi"));
        assert_eq!(
            names.label_in_parent("32.77.02.1003"),
            "Karangmekar, Cimahi Tengah"
        );
    }
    finish(databases).await;
}
