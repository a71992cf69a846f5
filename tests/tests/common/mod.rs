//! Shared test harness: a server on a random loopback port with its own database.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use fieldsync_client::automerge::AutomergeError;
use fieldsync_client::automerge::transaction::Transaction;
use fieldsync_client::{ConnectOptions, Replica, SyncHandle};
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
use fieldsync_server::Config;
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with a fresh SQLite database.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::sqlite_in(dir.path());
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    /// A server over an existing database directory (a restart).
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> Self {
        init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fieldsync_server::serve(listener, config.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// Stops gracefully and hands back the data directory, for a restart.
    pub async fn stop(mut self) -> (tempfile::TempDir, Config) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("server stops within 20 s")
            .unwrap()
            .unwrap();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.config.clone())
    }

    /// A connected in-memory phone.
    pub async fn phone(&self) -> (Replica, SyncHandle) {
        let replica = Replica::in_memory().await;
        let mut handle = replica.connect(ConnectOptions::new(self.url()));
        assert!(handle.wait_connected(WAIT).await, "phone connects");
        (replica, handle)
    }
}

impl TestServer {
    /// Every query row the server keeps (`table|column|…`), read from its database.
    pub async fn projection_rows(&self) -> Vec<String> {
        let storage = fieldsync_server::storage::open(&self.config.database_url)
            .await
            .unwrap();
        let rows = storage.projection_rows().await.unwrap();
        storage.close().await.unwrap();
        rows
    }
}

/// The kelurahan the sample documents are in.
pub fn area() -> RegionCode {
    RegionCode::parse("32.77.01.1001").unwrap()
}

/// Writes a valid field visit (the example of docs/schema.md) into a new document; tests add
/// their own fields next to it, which the schema keeps and ignores.
pub fn visit(tx: &mut Transaction<'_>) -> Result<(), AutomergeError> {
    FieldDocument::Visit(examples::visit(&area(), "peksos-ani")).write(tx)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn init_tracing() {
    // Silent unless FIELDSYNC_TEST_LOG is set, e.g. FIELDSYNC_TEST_LOG=debug.
    if let Ok(filter) = std::env::var("FIELDSYNC_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// A fresh PostgreSQL database for one test, dropped at the end; `None` (with a note) when
/// FIELDSYNC_TEST_POSTGRES_URL is not set.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Option<Self> {
        use sqlx::Connection;
        let admin_url = match std::env::var("FIELDSYNC_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!(
                    "SKIPPED: PostgreSQL end-to-end (FIELDSYNC_TEST_POSTGRES_URL is not set)"
                );
                return None;
            }
        };
        let name = format!("fieldsync_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap();
        Some(Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    pub async fn drop_database(self) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}
