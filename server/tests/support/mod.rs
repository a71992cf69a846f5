//! The real `fieldsync` binary for tests that kill it: starting it on a random port, its
//! administration commands, and what the phones write.

#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use automerge::{ROOT, ReadDoc};
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};

/// A valid field visit to carry the test's counter (an extra field the schema ignores).
pub fn visit(
    tx: &mut automerge::transaction::Transaction<'_>,
) -> Result<(), automerge::AutomergeError> {
    let area = RegionCode::parse("32.77.01.1001").expect("a valid code");
    FieldDocument::Visit(examples::visit(&area, "peksos-ani")).write(tx)
}

pub const WAIT: Duration = Duration::from_secs(15);

/// The server process, killed when dropped so that a failing test leaves nothing running.
pub struct Server(pub Child);

impl Server {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Asks the process to stop (SIGTERM, as an init system does) and waits until it has
    /// ended by itself, at most [`WAIT`]; returns how it ended.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Killing an exited process on drop is harmless, so the guard can stay.
        let exited = tokio::task::spawn_blocking(move || self.0.wait().unwrap());
        tokio::time::timeout(WAIT, exited)
            .await
            .expect("the server exits within 15 s of SIGTERM")
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs an administration command of the binary with `--json`; returns its output object.
pub fn cli(db: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(args)
        .args(["--json", "--database", db])
        .output()
        .expect("the fieldsync binary runs");
    assert!(out.status.success(), "fieldsync {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Adds a user unless they exist: `role` (as the CLI spells it) in `area`.
pub fn add_user(db: &str, id: &str, role: &str, area: &str) {
    let exists = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["user", "show", "--user", id, "--database", db])
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let user = cli(
            db,
            &[
                "user", "add", "--id", id, "--name", id, "--role", role, "--area", area,
            ],
        );
        assert_eq!(user["id"], id);
    }
}

/// A token for a new device of `user`.
pub fn device_token(db: &str, user: &str) -> String {
    let device = cli(db, &["device", "enroll", "--user", user]);
    device["token"].as_str().expect("a token").to_owned()
}

/// The field worker the phones sync as, and a token for a new device of theirs.
pub fn enroll(db: &str) -> String {
    add_user(db, "peksos-ani", "peksos", "32.77.01.1001");
    device_token(db, "peksos-ani")
}

/// Starts the binary on a random port; returns the process and its sync URL, with a token.
pub fn start(db: &str) -> (Server, String) {
    let token = enroll(db);
    let (server, addr) = serve(db, "127.0.0.1:0");
    (server, format!("ws://{addr}/sync?token={token}"))
}

/// Starts the binary listening on `listen`; returns the process and the address it listens on.
pub fn serve(db: &str, listen: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["serve", "--listen", listen, "--database", db])
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

pub fn value(doc: &automerge::Automerge, key: &str) -> Option<i64> {
    doc.get(ROOT, key)
        .ok()
        .flatten()
        .and_then(|(v, _)| v.as_scalar().and_then(|s| s.as_i64()))
}

/// A fresh PostgreSQL database for one test, dropped at the end; `None` (after saying so) when
/// FIELDSYNC_TEST_POSTGRES_URL is not set.
pub struct Postgres {
    admin_url: String,
    name: String,
    pub url: String,
}

impl Postgres {
    pub fn create(test: &str) -> Option<Self> {
        let admin_url = match std::env::var("FIELDSYNC_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!(
                    "SKIPPED: {test} needs PostgreSQL (set FIELDSYNC_TEST_POSTGRES_URL=postgres://USER@HOST/DB to run it)"
                );
                return None;
            }
        };
        let name = format!("fieldsync_test_{}", uuid::Uuid::new_v4().simple());
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// One statement, on a runtime of its own so that it works inside and outside async tests.
fn psql(url: &str, statement: &str) {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            });
    })
    .join()
    .unwrap();
}
