//! Shared test harness: a server on a random loopback port with its own database.

#![allow(dead_code)]

pub mod node;
pub mod pgcluster;
pub mod proxy;
pub mod raw;
pub mod skip;

use std::net::SocketAddr;
use std::time::Duration;

use fieldsync_client::automerge::AutomergeError;
use fieldsync_client::automerge::transaction::Transaction;
use fieldsync_client::{ConnectOptions, Replica, SyncHandle};
use fieldsync_core::schema::{Author, FieldDocument, RegionCode, Role, examples};
use fieldsync_server::Config;
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    /// A device token of the default user, `peksos-ani` (field worker of 32.77.01.1001).
    pub token: String,
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
        // The default user and a device of theirs, written before the server starts.
        let storage = fieldsync_server::storage::open(&config.database_url)
            .await
            .unwrap();
        let _ = fieldsync_server::admin::add_user(
            storage.as_ref(),
            Some(DEFAULT_USER.into()),
            "Ani",
            Role::Peksos,
            vec![area()],
        )
        .await;
        // Kota Cimahi's area names, as a deployment has them after `fieldsync areas import`.
        storage
            .import_areas(fieldsync_server::demo::area_rows(), 1)
            .await
            .unwrap();
        let (_, token) =
            fieldsync_server::admin::enroll_device(storage.as_ref(), DEFAULT_USER, None, None)
                .await
                .unwrap();
        storage.close().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fieldsync_server::serve(listener, config.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            token,
            config,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    /// The sync URL without a token.
    pub fn plain_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// The sync URL with a token for a device of `peksos-ani`.
    pub fn url(&self) -> String {
        self.url_for(&self.token)
    }

    pub fn url_for(&self, token: &str) -> String {
        format!("ws://{}/sync?token={token}", self.addr)
    }

    pub async fn storage(&self) -> std::sync::Arc<dyn fieldsync_server::storage::Storage> {
        fieldsync_server::storage::open(&self.config.database_url)
            .await
            .unwrap()
    }

    /// Adds a user.
    pub async fn add_user(&self, id: &str, role: Role, areas: &[&str]) {
        let storage = self.storage().await;
        let areas = areas
            .iter()
            .map(|a| RegionCode::parse_prefix(a).unwrap())
            .collect();
        fieldsync_server::admin::add_user(storage.as_ref(), Some(id.into()), id, role, areas)
            .await
            .unwrap();
        storage.close().await.unwrap();
    }

    /// Enrolls a device for `user`; returns (device id, token).
    pub async fn enroll(&self, user: &str) -> (String, String) {
        let storage = self.storage().await;
        let (device, token) =
            fieldsync_server::admin::enroll_device(storage.as_ref(), user, None, None)
                .await
                .unwrap();
        storage.close().await.unwrap();
        (device.id, token)
    }

    /// A connected in-memory phone of `user`, with a device of its own, checking its edits
    /// as that user.
    pub async fn phone_as(&self, user: &str) -> (Replica, SyncHandle) {
        let storage = self.storage().await;
        let found = storage.user(user).await.unwrap().expect("the user exists");
        storage.close().await.unwrap();
        let (_, token) = self.enroll(user).await;
        let replica = Replica::in_memory().await;
        replica
            .set_author(Author::user(found.id, found.role, found.areas))
            .await;
        let mut handle = replica.connect(ConnectOptions::new(self.plain_url()).with_token(token));
        assert!(
            handle.wait_connected(WAIT).await,
            "phone of {user} connects"
        );
        (replica, handle)
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

    /// A connected in-memory phone of the default user, on the default device.
    pub async fn phone(&self) -> (Replica, SyncHandle) {
        let replica = Replica::in_memory().await;
        replica.set_author(default_author()).await;
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

/// The user every test server has.
pub const DEFAULT_USER: &str = "peksos-ani";

pub fn default_author() -> Author {
    Author::user(DEFAULT_USER, Role::Peksos, vec![area()])
}

/// The kelurahan the sample documents are in.
pub fn area() -> RegionCode {
    RegionCode::parse("32.77.01.1001").unwrap()
}

/// A new document's first change: a valid visit (docs/schema.md's example) in `area` by `by`.
pub fn visit_in(
    area: &str,
    by: &str,
) -> impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + use<> {
    let area = RegionCode::parse(area).unwrap();
    let by = by.to_owned();
    move |tx| FieldDocument::Visit(examples::visit(&area, &by)).write(tx)
}

/// A new document's first change: a submitted referral to KIS-PBI in `area` by `by`.
pub fn referral_in(
    area: &str,
    by: &str,
) -> impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + use<> {
    let area = RegionCode::parse(area).unwrap();
    let by = by.to_owned();
    move |tx| FieldDocument::Referral(examples::referral(&area, &by)).write(tx)
}

/// Writes a valid field visit (the example of docs/schema.md) into a new document; tests add
/// their own fields next to it, which the schema keeps and ignores.
pub fn visit(tx: &mut Transaction<'_>) -> Result<(), AutomergeError> {
    FieldDocument::Visit(examples::visit(&area(), "peksos-ani")).write(tx)
}

/// One unlabelled series of `/metrics` (0 when absent), over a plain HTTP/1.0 request.
pub async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
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
/// Why PostgreSQL tests skip, as the test command's closing line counts them.
pub const POSTGRES_NOT_CONFIGURED: &str = "PostgreSQL not configured";

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
                skip::skipped("PostgreSQL end-to-end", POSTGRES_NOT_CONFIGURED);
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
