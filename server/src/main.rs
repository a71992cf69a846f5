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
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB
    #[arg(long, env = "FIELDSYNC_DATABASE_URL")]
    database: Option<String>,
    /// Directory of the default SQLite database
    #[arg(long, env = "FIELDSYNC_DATA_DIR", default_value = "./fieldsync-data")]
    data_dir: PathBuf,
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
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        database_url: args.database.unwrap_or_else(|| {
            format!("sqlite://{}", args.data_dir.join("fieldsync.db").display())
        }),
        cache_bytes: args.cache_mb * 1024 * 1024,
        idle_unload: Duration::from_secs(args.idle_unload_secs),
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_docs_per_connection: args.max_docs_per_connection,
        },
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    fieldsync_server::serve(listener, config, shutdown_signal()).await
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
