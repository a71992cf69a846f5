//! `fieldsync`: the command line. Parses configuration, then hands over to the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_core::Limits as DocLimits;
use fieldsync_server::auth::RateLimits;
use fieldsync_server::{Config, Limits, TlsConfig};
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system's malloc: see `fieldsync_server::memory`.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "fieldsync",
    version = fieldsync_server::storage::migrate::version_line(),
    about = "Offline-first sync server for field social workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (coloured only on a terminal, never with NO_COLOR set) or as one
    /// JSON object per line, for log shippers
    #[arg(long, global = true, env = "FIELDSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve WebSocket sync at /sync and health at /healthz
    Serve(ServeArgs),
    /// Rebuild the query tables (visits, referrals, outreach) from the stored documents.
    /// Safe while the server runs.
    Reindex(ReindexArgs),
    /// Manage people: add, disable, show
    #[command(subcommand)]
    User(UserCommand),
    /// Manage devices: enrollment codes for the field app, enroll, rotate a token, revoke
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Read the audit log: who read or changed which document, from which device
    Audit(AuditArgs),
    /// Area names: import Kemendagri's lists so that pages show names instead of codes
    #[command(subcommand)]
    Areas(AreasCommand),
    /// Copy a SQLite database to a new file while it serves, and verify the copy
    Backup(BackupArgs),
    /// Read every document and query row and report damage (ids only); exits 1 on damage
    Check(AdminArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// The backup file to create; never overwritten
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Options every administration command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AreasCommand {
    /// Add or rename areas from a folder holding provinces.csv, regencies.csv, districts.csv
    /// and villages.csv (the data folder of idn-area-data); safe while the server runs, which
    /// shows the new names within 30 s
    Import {
        /// The folder, e.g. package/data after `npm pack idn-area-data` and unpacking it
        dir: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user with a role and area scopes; prints the user's id
    Add {
        /// Full name
        #[arg(long)]
        name: String,
        /// peksos, coordinator, supervisor or admin
        #[arg(long)]
        role: String,
        /// Area scopes: Kemendagri code prefixes, comma-separated (32.77 a city, 32.77.01 a
        /// kecamatan, 32.77.01.1001 a kelurahan)
        #[arg(long)]
        area: String,
        /// The id to use (e.g. an employee number); generated from the name if omitted
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Disable a user: every device of theirs is cut off and told to delete its data
    Disable {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Enable a disabled user again; their old devices, sessions and API tokens stay ended
    Enable {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show a user and their devices
    Show {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Set a user's password for the web (read from the first line of standard input); they
    /// sign in with their user id
    Password {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Issue an API token for scripts calling /api/; prints it, once
    ApiToken {
        #[arg(long)]
        user: String,
        /// What the token is for, e.g. "laporan bulanan"
        #[arg(long, default_value = "")]
        label: String,
        /// The token stops working after this many days
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Give a user new area scopes (reassignment); their devices drop what left their areas
    SetAreas {
        #[arg(long)]
        user: String,
        /// Kemendagri code prefixes, comma-separated
        #[arg(long)]
        area: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke an API token
    RevokeApiToken {
        #[arg(long)]
        token: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Enroll a device for a user; prints its id and token (shown only once)
    Enroll {
        #[arg(long)]
        user: String,
        /// A name to recognise the device by, e.g. "HP Ani (Samsung A05)"
        #[arg(long)]
        label: Option<String>,
        /// The token stops working after this many days
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a one-time enrollment code for a user's phone (the field app at /app/ exchanges
    /// it for a device token); prints the code (shown only once)
    Code {
        #[arg(long)]
        user: String,
        /// The code stops working after this many hours
        #[arg(long, default_value_t = fieldsync_server::admin::ENROLLMENT_CODE_HOURS)]
        hours: u32,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Give a device a new token; the old one stops working at once
    Rotate {
        #[arg(long)]
        device: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a device: it is cut off within 2 seconds and told to delete its data
    Revoke {
        #[arg(long)]
        device: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only what this device did
    #[arg(long)]
    device: Option<String>,
    /// Only what this user did
    #[arg(long)]
    user: Option<String>,
    /// Only what happened to this document
    #[arg(long)]
    document: Option<String>,
    /// Instead of log lines: every beneficiary record this device held (for a breach notice)
    #[arg(long, conflicts_with_all = ["device", "user", "document"])]
    held_by: Option<String>,
    /// Most recent lines to show
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Which database to use.
#[derive(Debug, clap::Args)]
pub(crate) struct DatabaseArgs {
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

    /// The URL, refused (naming the setting) unless it names a database fieldsync speaks; the
    /// default SQLite file's directory is created here, or refused with why.
    fn checked_url(&self) -> anyhow::Result<String> {
        let url = self.url();
        if self.database.is_some() {
            fieldsync_server::storage::backend_of(&url).map_err(|e| {
                anyhow::anyhow!("--database {}: {e}", fieldsync_server::redact(&url))
            })?;
        } else {
            std::fs::create_dir_all(&self.data_dir).with_context(|| {
                format!("--data-dir {}: cannot create it", self.data_dir.display())
            })?;
        }
        Ok(url)
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
    /// PEM certificate chain: serve HTTPS and WSS (needs --tls-key)
    #[arg(long, env = "FIELDSYNC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, RSA or EC)
    #[arg(long, env = "FIELDSYNC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address: only when a TLS-terminating proxy is in
    /// front (web cookies are then marked Secure)
    // Boolish so that FIELDSYNC_ALLOW_INSECURE=1 (or yes, on) works, not only `true`.
    #[arg(long, env = "FIELDSYNC_ALLOW_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    allow_insecure: bool,
    #[command(flatten)]
    db: DatabaseArgs,
    /// Base map tiles of the office map, a URL template such as
    /// https://tiles.example.go.id/{z}/{x}/{y}.png (the Dinas's own server, or one whose terms
    /// allow it); without it the map draws its points on a plain background
    #[arg(long, env = "FIELDSYNC_MAP_TILES")]
    map_tiles: Option<String>,
    /// The attribution the tile server asks for, shown in the map's corner
    #[arg(long, env = "FIELDSYNC_MAP_ATTRIBUTION", default_value = "")]
    map_attribution: String,
    /// Also serve Prometheus metrics at /metrics on this address, to anyone who reaches it
    /// (without it, /metrics answers only on the main address, to this machine)
    #[arg(long, env = "FIELDSYNC_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Memory budget for loaded documents, in MiB
    #[arg(long, env = "FIELDSYNC_CACHE_MB", default_value_t = 256, value_parser = cache_mb)]
    cache_mb: usize,
    /// Most documents loaded in memory at once, whatever their size. In a storm larger than
    /// this, a document waits for the one used longest ago to unload, and its phone's
    /// connection is read more slowly meanwhile. A thirty-second of them is kept for the
    /// office's reads and edits (a supervisor's decision), which then do not wait
    #[arg(long, env = "FIELDSYNC_MAX_LOADED_DOCS", default_value_t = 4_000, value_parser = count)]
    max_loaded_docs: usize,
    /// Unload a document after this many idle seconds
    #[arg(long, env = "FIELDSYNC_IDLE_UNLOAD_SECS", default_value_t = 60, value_parser = seconds)]
    idle_unload_secs: u64,
    /// Largest WebSocket message accepted, in bytes
    #[arg(long, env = "FIELDSYNC_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = message_bytes)]
    max_message_bytes: usize,
    /// Most documents one connection may sync
    #[arg(
        long,
        env = "FIELDSYNC_MAX_DOCS_PER_CONNECTION",
        default_value_t = 100_000
    , value_parser = count)]
    max_docs_per_connection: usize,
    /// Largest change a phone may send, in uncompressed bytes
    #[arg(long, env = "FIELDSYNC_MAX_CHANGE_BYTES", default_value_t = DocLimits::default().max_change_bytes, value_parser = amount)]
    max_change_bytes: u64,
    /// Most operations one change may carry
    #[arg(long, env = "FIELDSYNC_MAX_CHANGE_OPS", default_value_t = DocLimits::default().max_change_ops, value_parser = amount)]
    max_change_ops: u64,
    /// Largest document, in uncompressed bytes
    #[arg(long, env = "FIELDSYNC_MAX_DOCUMENT_BYTES", default_value_t = DocLimits::default().max_document_bytes, value_parser = amount)]
    max_document_bytes: u64,
    /// Most operations one document may hold
    #[arg(long, env = "FIELDSYNC_MAX_DOCUMENT_OPS", default_value_t = DocLimits::default().max_document_ops, value_parser = amount)]
    max_document_ops: u64,
    /// Most documents one connection may wait for (asked for before they exist); a request
    /// beyond it is answered doc-unavailable and not remembered
    #[arg(
        long,
        env = "FIELDSYNC_MAX_WAITING_PER_CONNECTION",
        default_value_t = 1_000
    , value_parser = count)]
    max_waiting_per_connection: usize,
    /// Seconds a client has to send a request's head (and to finish its TLS handshake); also
    /// how long an idle keep-alive connection stays open
    #[arg(long, env = "FIELDSYNC_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = seconds)]
    header_read_timeout_secs: u64,
    /// Seconds a WebSocket has to send its join message
    #[arg(long, env = "FIELDSYNC_JOIN_TIMEOUT_SECS", default_value_t = 10, value_parser = seconds)]
    join_timeout_secs: u64,
    /// Connections one address may have open at once (phones behind one carrier-grade NAT
    /// address share it); more are closed at once
    #[arg(
        long,
        env = "FIELDSYNC_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    , value_parser = count)]
    max_connections_per_address: usize,
    /// Connections open at once in total; more are closed at once
    #[arg(long, env = "FIELDSYNC_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = count)]
    max_connections: usize,
    /// Sync connections whose messages are handled at once; the others stay connected and
    /// wait their turn, first come first served. A turn is given back after half a second
    /// without a message (or after 5 s while others wait). Their documents should fit in a
    /// third of --max-loaded-docs, so that each phone's stay loaded through its exchange
    #[arg(long, env = "FIELDSYNC_MAX_SYNCING", default_value_t = 64, value_parser = count)]
    max_syncing: usize,
    /// Largest attachment (photo or scan) an upload may bring, in bytes
    #[arg(long, env = "FIELDSYNC_MAX_ATTACHMENT_BYTES", default_value_t = 20 * 1024 * 1024, value_parser = amount)]
    max_attachment_bytes: u64,
    /// Hours an unfinished upload is kept before it is deleted
    #[arg(long, env = "FIELDSYNC_UPLOAD_EXPIRY_HOURS", default_value_t = 24, value_parser = hours)]
    upload_expiry_hours: u64,
    /// WebSocket and sign-in attempts one address may make per minute (phones behind one
    /// carrier-grade NAT address share it)
    #[arg(long, env = "FIELDSYNC_CONNECTS_PER_MINUTE", default_value_t = 600, value_parser = per_minute)]
    connects_per_minute: u32,
    /// Failed sign-ins one address may make per minute before it is refused for the minute
    #[arg(long, env = "FIELDSYNC_AUTH_FAILURES_PER_MINUTE", default_value_t = 10, value_parser = per_minute)]
    auth_failures_per_minute: u32,
    /// Seed Kota Cimahi into an empty database on first start (people of every role, six
    /// weeks of records) and print everyone's password: for trying fieldsync out, never for
    /// real data
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    demo: bool,
}

/// Settings from the command line and the environment, checked before anything starts: each
/// refusal is one line naming the setting.
mod settings {
    fn whole(s: &str) -> Result<u64, String> {
        s.trim()
            .parse::<u64>()
            .map_err(|_| "must be a whole number".to_owned())
    }

    fn within(s: &str, min: u64, max: u64) -> Result<u64, String> {
        let n = whole(s)?;
        if n < min || n > max {
            return Err(format!("must be between {min} and {max}"));
        }
        Ok(n)
    }

    /// A count of at least one.
    pub fn count(s: &str) -> Result<usize, String> {
        within(s, 1, u32::MAX.into()).map(|n| n as usize)
    }

    /// An amount (bytes, operations) of at least one.
    pub fn amount(s: &str) -> Result<u64, String> {
        within(s, 1, u64::MAX)
    }

    pub fn seconds(s: &str) -> Result<u64, String> {
        within(s, 1, 86_400)
    }

    pub fn hours(s: &str) -> Result<u64, String> {
        within(s, 1, 24 * 365)
    }

    pub fn per_minute(s: &str) -> Result<u32, String> {
        within(s, 1, 1_000_000).map(|n| n as u32)
    }

    pub fn cache_mb(s: &str) -> Result<usize, String> {
        within(s, 1, 1_048_576).map(|n| n as usize)
    }

    /// Below 64 KiB an ordinary sync message would not fit.
    pub fn message_bytes(s: &str) -> Result<usize, String> {
        within(s, 64 * 1024, 1024 * 1024 * 1024).map(|n| n as usize)
    }
}
use settings::{amount, cache_mb, count, hours, message_bytes, per_minute, seconds};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to standard output as usual; a bad setting is one line.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid command line"));
            return std::process::ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line an operator can read or grep, causes after colons ("Error: cannot open
            // database …: …"), not anyhow's multi-line report with a backtrace.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The server logs to standard output; the other commands keep it for their result and
    // log warnings to standard error.
    let serving = matches!(cli.command, Command::Serve(_));
    let default = if serving { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("FIELDSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    init_logging(cli.log_format, filter, serving);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Reindex(args) => runtime.block_on(reindex(args)),
        Command::User(command) => runtime.block_on(cli::user(command)),
        Command::Device(command) => runtime.block_on(cli::device(command)),
        Command::Audit(args) => runtime.block_on(cli::audit(args)),
        Command::Areas(command) => runtime.block_on(cli::areas(command)),
        Command::Backup(args) => runtime.block_on(cli::backup(args)),
        Command::Check(args) => runtime.block_on(cli::check(args)),
    }
}

/// Logs to standard output when serving, else to standard error (standard output carries the
/// command's result). Colour only when that stream is a terminal and `NO_COLOR` is unset.
fn init_logging(format: LogFormat, filter: EnvFilter, serving: bool) {
    use std::io::IsTerminal;
    let terminal = if serving {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    match (format, serving) {
        (LogFormat::Text, true) => builder.init(),
        (LogFormat::Text, false) => builder.with_writer(std::io::stderr).init(),
        (LogFormat::Json, true) => builder.json().init(),
        (LogFormat::Json, false) => builder.json().with_writer(std::io::stderr).init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    fieldsync_server::memory::start();
    // Each connection is an open file: with the usual soft limit of 1,024, the file limit
    // and not the connection caps would decide who gets in.
    match fieldsync_server::listen::raise_open_file_limit() {
        Ok(files) if (files as usize) < args.max_connections => tracing::warn!(
            files,
            "the open-file limit is below --max-connections ({}): raise the hard limit (ulimit -Hn)",
            args.max_connections
        ),
        Ok(files) => tracing::info!(files, "open-file limit"),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
    let listener = fieldsync_server::listen::bind(&args.listen)
        .await
        .with_context(|| {
            if args
                .listen
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                format!(
                    "--listen {}: not an address; give HOST:PORT, e.g. 127.0.0.1:8080",
                    args.listen
                )
            } else {
                format!("--listen {}: cannot listen there", args.listen)
            }
        })?;
    let metrics_listener = match &args.metrics_listen {
        Some(addr) => Some(std::sync::Arc::new(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("--metrics-listen {addr}: cannot listen there"))?,
        )),
        None => None,
    };
    // The bound address, not the text: `localhost` or a host name counts as what it resolved to.
    if args.tls_cert.is_none() {
        fieldsync_server::tls::check_plain_http(listener.local_addr()?, args.allow_insecure)?;
    }
    let map_tiles = args
        .map_tiles
        .as_deref()
        .map(|url| fieldsync_server::web::tiles::MapTiles::parse(url, &args.map_attribution))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // Certificate and key are read before anything is created from the other settings.
    let tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsConfig { cert, key });
    if let Some(tls) = &tls {
        tls.load()?;
    }
    let config = Config {
        database_url: args.db.checked_url()?,
        cache_bytes: args.cache_mb * 1024 * 1024,
        idle_unload: Duration::from_secs(args.idle_unload_secs),
        max_loaded_docs: args.max_loaded_docs,
        changes_buffer: Config::default().changes_buffer,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_docs_per_connection: args.max_docs_per_connection,
            max_waiting_per_connection: args.max_waiting_per_connection,
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
            join_timeout: Duration::from_secs(args.join_timeout_secs),
            max_connections_per_address: args.max_connections_per_address,
            max_connections: args.max_connections,
            max_syncing: args.max_syncing,
            max_attachment_bytes: args.max_attachment_bytes,
            upload_expiry: Duration::from_secs(args.upload_expiry_hours * 3600),
        },
        document_limits: DocLimits {
            max_change_bytes: args.max_change_bytes,
            max_change_ops: args.max_change_ops,
            max_document_bytes: args.max_document_bytes,
            max_document_ops: args.max_document_ops,
        },
        rate_limits: RateLimits {
            connects_per_minute: args.connects_per_minute,
            auth_failures_per_minute: args.auth_failures_per_minute,
        },
        tls,
        // --allow-insecure means HTTPS ends at a proxy: browsers still reach us over HTTPS.
        secure_cookies: args.allow_insecure,
        map_tiles,
        demo: args.demo.then(Default::default),
        metrics_listener,
    };
    fieldsync_server::serve(listener, config, shutdown_signal()).await
}

async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let url = args.db.checked_url()?;
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
            "reindexed {} documents: {} visits, {} referrals, {} outreach notes, {} without rows, {} unreadable; skipped {} caseload indexes",
            report.documents,
            report.visits,
            report.referrals,
            report.outreach,
            report.without_rows,
            report.unreadable,
            report.indexes
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
