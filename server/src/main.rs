//! `fieldsync`: the command line. Parses configuration, then hands over to the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_server::{Config, Limits};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "fieldsync",
    version,
    about = "Offline-first sync server for field social workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve WebSocket sync at /sync and health at /healthz
    Serve(ServeArgs),
    /// Rebuild the query tables (visits, referrals, outreach) from the stored documents.
    /// Safe while the server runs.
    Reindex(ReindexArgs),
}

/// Which database to use.
#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB
    #[arg(long, env = "FIELDSYNC_DATABASE_URL")]
    database: Option<String>,
    /// Directory of the default SQLite database
    #[arg(long, env = "FIELDSYNC_DATA_DIR", default_value = "./fieldsync-data")]
    data_dir: PathBuf,
}

impl DatabaseArgs {
    fn url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("fieldsync.db").display()))
    }
}

#[derive(Debug, clap::Args)]
struct ReindexArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    db: DatabaseArgs,
    /// Memory budget for loaded documents, in MiB
    #[arg(long, env = "FIELDSYNC_CACHE_MB", default_value_t = 256)]
    cache_mb: usize,
    /// Unload a document after this many idle seconds
    #[arg(long, env = "FIELDSYNC_IDLE_UNLOAD_SECS", default_value_t = 60)]
    idle_unload_secs: u64,
    /// Largest WebSocket message accepted, in bytes
    #[arg(long, env = "FIELDSYNC_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Most documents one connection may sync
    #[arg(
        long,
        env = "FIELDSYNC_MAX_DOCS_PER_CONNECTION",
        default_value_t = 100_000
    )]
    max_docs_per_connection: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FIELDSYNC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Reindex(args) => runtime.block_on(reindex(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        database_url: args.db.url(),
        cache_bytes: args.cache_mb * 1024 * 1024,
        idle_unload: Duration::from_secs(args.idle_unload_secs),
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_docs_per_connection: args.max_docs_per_connection,
        },
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    fieldsync_server::serve(listener, config, shutdown_signal()).await
}

async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let url = args.db.url();
    let storage = fieldsync_server::storage::open(&url)
        .await
        .with_context(|| format!("cannot open database {}", fieldsync_server::redact(&url)))?;
    let report = fieldsync_server::reindex::reindex(storage.as_ref())
        .await
        .context("reindex failed")?;
    storage.close().await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "reindexed {} documents: {} visits, {} referrals, {} outreach notes, {} without rows, {} unreadable",
            report.documents,
            report.visits,
            report.referrals,
            report.outreach,
            report.without_rows,
            report.unreadable
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("signal received");
}
