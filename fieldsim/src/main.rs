//! `fieldsim`: simulated phones that edit offline and then reconnect all at once.
//!
//! Each phone creates its documents while offline (a field visit each, with a few edits), then
//! every phone connects at the same moment, as after a morning briefing in an office with
//! Wi-Fi. fieldsim measures, for every document, the time from that moment until the server
//! acknowledged it as durably stored, and reports throughput, latency percentiles and (given
//! the server's pid) the server's peak resident memory and CPU time per acknowledged document.
//! It speaks only protocol v1, so it can be pointed at any automerge-repo sync server.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use clap::Parser;
use fieldsync_client::{ConnectOptions, Replica};

#[derive(Debug, Parser)]
#[command(
    name = "fieldsim",
    about = "Load generator: phones editing offline, reconnecting together"
)]
struct Args {
    /// Sync endpoint of the server under test
    #[arg(long, default_value = "ws://127.0.0.1:8080/sync")]
    url: String,
    /// Device token to connect with (`fieldsync device enroll`); every simulated phone uses it
    #[arg(long, env = "FIELDSYNC_TOKEN")]
    token: Option<String>,
    /// The user id the token belongs to: the author of the simulated visits
    #[arg(long, default_value = "peksos-fieldsim")]
    user: String,
    /// With --token: the kelurahan the simulated visits are in (one of the user's areas)
    #[arg(long, default_value = "32.77.01.1001", conflicts_with = "enroll_in")]
    area: String,
    /// A fieldsync database to enroll one field worker per phone in, each with a device token
    /// of their own (a realistic caseload; instead of --token)
    #[arg(long, conflicts_with_all = ["token", "user"])]
    enroll_in: Option<String>,
    /// With --enroll-in: field workers per kelurahan. Each new document is also pushed to the
    /// phones of the other workers of its kelurahan, so 1 measures uploads alone.
    #[arg(long, default_value_t = 2, requires = "enroll_in")]
    workers_per_kelurahan: usize,
    /// Number of simulated phones
    #[arg(long, default_value_t = 100)]
    phones: usize,
    /// Documents each phone creates offline
    #[arg(long, default_value_t = 10)]
    docs: usize,
    /// Edits per document after creation
    #[arg(long, default_value_t = 5)]
    edits: usize,
    /// Process id of the server, to report its memory and CPU time (Linux only)
    #[arg(long)]
    server_pid: Option<u32>,
    /// Give up waiting for acknowledgements after this many seconds
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.url.starts_with("ws://") && !args.url.starts_with("wss://") {
        bail!("--url must be a ws:// or wss:// URL");
    }
    if fieldsync_core::schema::RegionCode::parse(&args.area).is_err() {
        bail!("--area must be a region code such as 32.77.01.1001");
    }

    let workers = match &args.enroll_in {
        Some(url) => enroll(url, args.phones, args.workers_per_kelurahan.max(1)).await?,
        None => vec![
            Worker {
                user: args.user.clone(),
                area: args.area.clone(),
                token: args.token.clone(),
            };
            args.phones
        ],
    };

    // Offline: every phone writes its documents with no connection.
    let mut phones = Vec::with_capacity(args.phones);
    for (p, worker) in workers.iter().enumerate() {
        let replica = Replica::in_memory().await;
        let mut ids = Vec::with_capacity(args.docs);
        for d in 0..args.docs {
            let id = replica
                .create(|tx| visit(tx, worker, p, d))
                .await
                .context("creating a document")?;
            for e in 0..args.edits {
                replica
                    .change(id, |tx| {
                        let actions = tx.get(ROOT, "actions")?.expect("created above").1;
                        tx.insert(&actions, e, format!("tindakan {e}"))
                    })
                    .await?;
            }
            ids.push(id);
        }
        phones.push((replica, ids, worker.token.clone()));
    }
    let total = args.phones * args.docs;
    let cpu_before = args.server_pid.and_then(cpu_seconds);

    // Everyone reconnects at once.
    let start = Instant::now();
    let limit = Duration::from_secs(args.timeout_secs);
    let mut tasks = Vec::with_capacity(args.phones);
    for (replica, ids, token) in phones {
        let url = args.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut options = ConnectOptions::new(url);
            options.token = token.clone();
            let handle = replica.connect(options);
            let mut latencies = Vec::with_capacity(ids.len());
            let mut failed = 0usize;
            for id in ids {
                match replica
                    .wait_acknowledged(id, limit.saturating_sub(start.elapsed()))
                    .await
                {
                    Ok(()) => latencies.push(start.elapsed()),
                    Err(_) => failed += 1,
                }
            }
            handle.stop().await;
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await?;
        latencies.extend(l);
        failed += f;
    }
    let wall = start.elapsed();
    let cpu = match (cpu_before, args.server_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let peak_rss_mib = args
        .server_pid
        .and_then(peak_rss_kib)
        .map(|k| k as f64 / 1024.0);

    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let acked = latencies.len();
    let rate = acked as f64 / wall.as_secs_f64();
    let cpu_ms_per_doc = cpu.map(|c| c * 1000.0 / acked.max(1) as f64);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "phones": args.phones, "docsPerPhone": args.docs, "editsPerDoc": args.edits,
                "documents": total, "acknowledged": acked, "failed": failed,
                "wallSeconds": wall.as_secs_f64(), "docsPerSecond": rate,
                "ackP50Ms": pct(0.5), "ackP99Ms": pct(0.99),
                "serverPeakRssMiB": peak_rss_mib, "serverCpuMsPerDoc": cpu_ms_per_doc,
            })
        );
    } else {
        println!(
            "phones {}  documents {}  edits/doc {}",
            args.phones, total, args.edits
        );
        println!(
            "acknowledged {acked}  failed {failed}  in {:.2} s",
            wall.as_secs_f64()
        );
        println!("throughput {rate:.0} documents/s");
        println!(
            "time to durable ack: p50 {:.0} ms  p99 {:.0} ms",
            pct(0.5),
            pct(0.99)
        );
        match (peak_rss_mib, cpu_ms_per_doc) {
            (Some(rss), Some(cpu)) => {
                println!("server: peak RSS {rss:.0} MiB  CPU {cpu:.2} ms per document")
            }
            _ => println!("server: pass --server-pid to measure memory and CPU"),
        }
    }
    if failed > 0 {
        bail!(
            "{failed} documents were not acknowledged within {} s",
            args.timeout_secs
        );
    }
    Ok(())
}

/// Who a simulated phone syncs as.
#[derive(Debug, Clone)]
struct Worker {
    user: String,
    area: String,
    token: Option<String>,
}

/// One field worker per phone, `per_kelurahan` in each kelurahan (kelurahan 1001-1100 of
/// kecamatan 01, 02, … of a kota 32.77), each with a device token.
async fn enroll(url: &str, phones: usize, per_kelurahan: usize) -> anyhow::Result<Vec<Worker>> {
    use fieldsync_core::schema::{RegionCode, Role};
    let storage = fieldsync_server::storage::open(url)
        .await
        .with_context(|| format!("cannot open {}", fieldsync_server::redact(url)))?;
    let mut workers = Vec::with_capacity(phones);
    for p in 0..phones {
        let k = p / per_kelurahan;
        let area = format!("32.77.{:02}.{}", 1 + (k / 100) % 99, 1001 + k % 100);
        let user = format!("fieldsim-{p}");
        let scope = RegionCode::parse(&area).context("a valid kelurahan code")?;
        // Already there from an earlier run: enroll another device.
        let _ = fieldsync_server::admin::add_user(
            storage.as_ref(),
            Some(user.clone()),
            &user,
            Role::Peksos,
            vec![scope],
        )
        .await;
        let (_, token) =
            fieldsync_server::admin::enroll_device(storage.as_ref(), &user, None, None).await?;
        workers.push(Worker {
            user,
            area,
            token: Some(token),
        });
    }
    storage.close().await?;
    Ok(workers)
}

/// A field visit as a phone would write it.
fn visit(
    tx: &mut automerge::transaction::Transaction<'_>,
    worker: &Worker,
    phone: usize,
    doc: usize,
) -> Result<(), automerge::AutomergeError> {
    tx.put(ROOT, "type", "visit")?;
    tx.put(ROOT, "schema", 1)?;
    tx.put(ROOT, "area", worker.area.as_str())?;
    tx.put(ROOT, "createdBy", worker.user.as_str())?;
    tx.put(ROOT, "createdAt", "2026-11-20T08:00:00Z")?;
    tx.put(ROOT, "visitedAt", "2026-11-20T09:30:00Z")?;
    let b = tx.put_object(ROOT, "beneficiary", ObjType::Map)?;
    tx.put(
        &b,
        "nik",
        format!("32770141079{:05}", (phone * 1000 + doc) % 100_000),
    )?;
    tx.put(&b, "name", "Siti Aminah")?;
    let ppks = tx.put_object(&b, "ppks", ObjType::List)?;
    tx.insert(&ppks, 0, "fakir-miskin")?;
    let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
    tx.splice_text(&notes, 0, 0, "Keluarga membutuhkan rujukan KIS-PBI.")?;
    tx.put_object(ROOT, "actions", ObjType::List)?;
    Ok(())
}

/// utime + stime of a process, in seconds (Linux /proc).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks per second: 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

/// Peak resident set size of a process, in KiB (Linux /proc).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
