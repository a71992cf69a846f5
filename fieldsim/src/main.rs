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
use fieldsync_core::schema::RegionCode;

mod office;
mod seed;
mod watch;

#[derive(Debug, Parser)]
#[command(
    name = "fieldsim",
    about = "Load generator: phones editing offline, reconnecting together"
)]
struct Args {
    /// Sync endpoint of the server under test. Repeat it, or give a comma-separated list,
    /// for several processes of one deployment: phones are spread over them in turn, and each
    /// phone reconnects to the next one when its connection ends
    #[arg(
        long = "url",
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/sync"
    )]
    urls: Vec<String>,
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
    /// With --enroll-in: the kota the field workers work in (its kelurahan 1001-1100 of
    /// kecamatan 01, 02, …)
    #[arg(long, default_value = "32.77", requires = "enroll_in")]
    kota: String,
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
    /// Process id of the server, to report its memory and CPU time (Linux only); repeat it
    /// for several processes
    #[arg(long = "server-pid", value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Also report the CPU time of every process of this name during the reconnect (Linux
    /// only), e.g. `postgres` for a PostgreSQL server on the same machine
    #[arg(long)]
    database_process: Option<String>,
    /// Give up waiting for acknowledgements after this many seconds
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Instead of a storm: store this many documents straight into the database of
    /// --enroll-in (a province's caseloads, to measure the server at rest), then exit
    #[arg(long, requires = "enroll_in")]
    seed: Option<usize>,
    /// With --seed: the number of kota (32.01, 32.02, …) the documents are spread over, 250
    /// kelurahan each
    #[arg(long, default_value_t = 20, requires = "seed")]
    seed_kota: usize,
    /// A user's caseload index (its `automerge:` URL, from `fieldsync device enroll`) that one
    /// more phone, with --watch-token, opens before the storm and keeps open through it, as a
    /// coordinator's phone would: reports how long the index took to arrive, its size, and how
    /// long after the storm it listed every document
    #[arg(long, requires = "watch_token")]
    watch_index: Option<String>,
    /// The device token of the phone that opens --watch-index
    #[arg(long, requires = "watch_index")]
    watch_token: Option<String>,
    /// Start the storm once the index lists this many documents (it is built, a thousand
    /// entries at a time, when its user's phone first connects)
    #[arg(long, default_value_t = 1, requires = "watch_index")]
    watch_entries: usize,
    /// With --enroll-in: the percentage of each phone's documents that are referrals
    /// (submitted, for the supervisors' queue) rather than visits
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100), requires = "enroll_in")]
    referral_share: u8,
    /// With --enroll-in: coordinators of the kota at work through the storm, each with the
    /// activity feed's live stream open and its first page read every --office-every-ms
    #[arg(long, default_value_t = 0, requires = "enroll_in")]
    coordinators: usize,
    /// With --enroll-in: supervisors of the kota at work through the storm, each reading the
    /// review queue and approving one waiting referral every --office-every-ms
    #[arg(long, default_value_t = 0, requires = "enroll_in")]
    supervisors: usize,
    /// How often each coordinator and supervisor takes a step, in milliseconds
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    office_every_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let (Some(count), Some(url)) = (args.seed, &args.enroll_in) {
        return seed::seed(url, count, args.seed_kota).await;
    }
    if let Some(bad) = args
        .urls
        .iter()
        .find(|u| !u.starts_with("ws://") && !u.starts_with("wss://"))
    {
        bail!("--url must be a ws:// or wss:// URL, not {bad:?}");
    }
    if RegionCode::parse(&args.area).is_err() {
        bail!("--area must be a region code such as 32.77.01.1001");
    }

    let office_urls = if args.coordinators + args.supervisors > 0 {
        args.urls
            .iter()
            .map(|u| office::http_authority(u))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let mut office_users = Vec::new();
    let workers = match &args.enroll_in {
        Some(url) => {
            let kota = RegionCode::parse_prefix(&args.kota)
                .ok()
                .filter(|k| k.to_string().len() == 5)
                .context("--kota must be a kota code such as 32.77")?;
            let storage = fieldsync_server::storage::open(url)
                .await
                .with_context(|| format!("cannot open {}", fieldsync_server::redact(url)))?;
            let workers = enroll(
                storage.as_ref(),
                &kota,
                args.phones,
                args.workers_per_kelurahan.max(1),
            )
            .await?;
            office_users =
                office::enroll(storage.as_ref(), &kota, args.coordinators, args.supervisors)
                    .await?;
            storage.close().await?;
            workers
        }
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
            // Spread evenly: the n-th document of the run is a referral when the running
            // count of referrals goes up at n.
            let n = p * args.docs + d;
            let share = usize::from(args.referral_share);
            let is_referral = (n + 1) * share / 100 > n * share / 100;
            let id = replica
                .create(|tx| {
                    if is_referral {
                        referral(tx, worker, p, d)
                    } else {
                        visit(tx, worker, p, d)
                    }
                })
                .await
                .context("creating a document")?;
            for e in 0..args.edits {
                replica
                    .change(id, |tx| {
                        if is_referral {
                            // The reason, written a few words at a time.
                            let reason = tx.get(ROOT, "reason")?.expect("created above").1;
                            let end = tx.length(&reason);
                            return tx.splice_text(&reason, end, 0, &format!(" Catatan {e}."));
                        }
                        let actions = tx.get(ROOT, "actions")?.expect("created above").1;
                        tx.insert(&actions, e, format!("tindakan {e}"))
                    })
                    .await?;
            }
            ids.push(id);
        }
        phones.push((replica, ids, worker.token.clone()));
    }
    let limit = Duration::from_secs(args.timeout_secs);
    // A coordinator's phone with its index open, before the storm and through it.
    let watcher = match (&args.watch_index, &args.watch_token) {
        (Some(index), Some(token)) => {
            let (watcher, opened) =
                watch::open(&args.urls[0], token, index, args.watch_entries, limit).await?;
            println!(
                "index: arrived in {:.2} s, {} entries, {:.1} MiB saved",
                opened.seconds,
                opened.entries,
                opened.bytes as f64 / 1048576.0
            );
            let created: Vec<_> = phones.iter().flat_map(|(_, ids, _)| ids.clone()).collect();
            Some((watcher, created))
        }
        _ => None,
    };

    let total = args.phones * args.docs;
    let cpu_before: Vec<Option<f64>> = args.server_pids.iter().map(|p| cpu_seconds(*p)).collect();
    let database_before = args.database_process.as_deref().map(cpu_of_named);
    let own_before = cpu_seconds(std::process::id());

    // The office is at work before the phones come back, and until the last one is done.
    let mix = if office_users.is_empty() {
        None
    } else {
        let every = Duration::from_millis(args.office_every_ms);
        Some(office::Mix::start(&office_users, &office_urls, every).await)
    };

    // Everyone reconnects at once.
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.phones);
    for (p, (replica, ids, token)) in phones.into_iter().enumerate() {
        // Phone p starts on server p mod n and moves on to the next ones in turn.
        let mut urls = args.urls.clone();
        let n = urls.len();
        urls.rotate_left(p % n);
        tasks.push(tokio::spawn(async move {
            let mut options = ConnectOptions::new(urls.remove(0));
            options.other_urls = urls;
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
    let office = match mix {
        Some(mix) => Some(mix.finish().await),
        None => None,
    };
    if let Some((watcher, created)) = watcher {
        match watcher.listed(&created, limit).await {
            Some(after) => println!(
                "index: listed every new document {:.2} s after the last acknowledgement",
                after
            ),
            None => println!(
                "index: did not list every new document within {} s",
                limit.as_secs()
            ),
        }
    }
    let servers: Vec<Measured> = args
        .server_pids
        .iter()
        .zip(cpu_before)
        .map(|(pid, before)| Measured {
            pid: *pid,
            cpu_seconds: before.zip(cpu_seconds(*pid)).map(|(a, b)| b - a),
            peak_rss_mib: peak_rss_kib(*pid).map(|k| k as f64 / 1024.0),
        })
        .collect();
    let database_cpu = args
        .database_process
        .as_deref()
        .map(cpu_of_named)
        .zip(database_before)
        .map(|(after, before)| after - before);
    let own_cpu = cpu_seconds(std::process::id())
        .zip(own_before)
        .map(|(after, before)| after - before);
    // Every server's, together (one server: its own).
    let measured = !servers.is_empty()
        && servers
            .iter()
            .all(|s| s.cpu_seconds.is_some() && s.peak_rss_mib.is_some());
    let cpu = measured.then(|| servers.iter().filter_map(|s| s.cpu_seconds).sum::<f64>());
    let peak_rss_mib = measured.then(|| servers.iter().filter_map(|s| s.peak_rss_mib).sum::<f64>());

    let (ack_p50, ack_p99) = p50_p99(&latencies);
    let acked = latencies.len();
    let rate = acked as f64 / wall.as_secs_f64();
    let per_doc = |cpu: f64| cpu * 1000.0 / acked.max(1) as f64;
    let cpu_ms_per_doc = cpu.map(per_doc);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "phones": args.phones, "docsPerPhone": args.docs, "editsPerDoc": args.edits,
                "documents": total, "acknowledged": acked, "failed": failed,
                "wallSeconds": wall.as_secs_f64(), "docsPerSecond": rate,
                "ackP50Ms": ack_p50, "ackP99Ms": ack_p99,
                "serverPeakRssMiB": peak_rss_mib, "serverCpuMsPerDoc": cpu_ms_per_doc,
                "databaseCpuSeconds": database_cpu, "fieldsimCpuSeconds": own_cpu,
                "referralShare": args.referral_share,
                "office": office.as_ref().map(|o| serde_json::json!({
                    "coordinators": args.coordinators, "supervisors": args.supervisors,
                    "everyMs": args.office_every_ms, "tally": o.json(),
                })),
                "servers": servers.iter().map(|s| serde_json::json!({
                    "pid": s.pid, "peakRssMiB": s.peak_rss_mib,
                    "cpuSeconds": s.cpu_seconds, "cpuMsPerDoc": s.cpu_seconds.map(per_doc),
                })).collect::<Vec<_>>(),
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
        println!("time to durable ack: p50 {ack_p50:.0} ms  p99 {ack_p99:.0} ms");
        match (peak_rss_mib, cpu_ms_per_doc) {
            (Some(rss), Some(cpu)) => {
                println!("server: peak RSS {rss:.0} MiB  CPU {cpu:.2} ms per document")
            }
            _ => println!("server: pass --server-pid to measure memory and CPU"),
        }
        if let (Some(db), Some(own)) = (database_cpu, own_cpu) {
            let all = db + own + cpu.unwrap_or(0.0);
            println!(
                "CPU: database {db:.1} s ({:.0} % of servers + database + fieldsim), fieldsim {own:.1} s",
                100.0 * db / all
            );
        }
        for line in office
            .iter()
            .flat_map(|o| o.lines(args.coordinators, args.supervisors))
        {
            println!("{line}");
        }
        if servers.len() > 1 {
            for s in &servers {
                if let (Some(rss), Some(cpu)) = (s.peak_rss_mib, s.cpu_seconds) {
                    println!(
                        "  pid {}: peak RSS {rss:.0} MiB  CPU {cpu:.1} s ({:.2} ms per document)",
                        s.pid,
                        per_doc(cpu)
                    );
                }
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} documents were not acknowledged within {} s",
            args.timeout_secs
        );
    }
    if let Some(o) = office.as_ref().filter(|o| o.errors > 0) {
        bail!(
            "{} office calls failed; the first: {}",
            o.errors,
            o.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// One server process's figures.
#[derive(Debug)]
struct Measured {
    pid: u32,
    /// CPU time used during the run.
    cpu_seconds: Option<f64>,
    peak_rss_mib: Option<f64>,
}

/// Who a simulated phone syncs as.
#[derive(Debug, Clone)]
struct Worker {
    user: String,
    area: String,
    token: Option<String>,
}

/// One field worker per phone, `per_kelurahan` in each kelurahan (kelurahan 1001-1100 of
/// kecamatan 01, 02, … of `kota`), each with a device token.
async fn enroll(
    storage: &dyn fieldsync_server::storage::Storage,
    kota: &RegionCode,
    phones: usize,
    per_kelurahan: usize,
) -> anyhow::Result<Vec<Worker>> {
    use fieldsync_core::schema::Role;
    let mut workers = Vec::with_capacity(phones);
    for p in 0..phones {
        let k = p / per_kelurahan;
        let area = format!("{kota}.{:02}.{}", 1 + (k / 100) % 99, 1001 + k % 100);
        let user = format!("fieldsim-{p}");
        let scope = RegionCode::parse(&area).context("a valid kelurahan code")?;
        // Already there from an earlier run: enroll another device.
        let _ = fieldsync_server::admin::add_user(
            storage,
            Some(user.clone()),
            &user,
            Role::Peksos,
            vec![scope],
        )
        .await;
        let (_, token) = fieldsync_server::admin::enroll_device(storage, &user, None, None).await?;
        workers.push(Worker {
            user,
            area,
            token: Some(token),
        });
    }
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
    tx.put(&b, "nik", nik(phone, doc))?;
    tx.put(&b, "name", "Siti Aminah")?;
    let ppks = tx.put_object(&b, "ppks", ObjType::List)?;
    tx.insert(&ppks, 0, "fakir-miskin")?;
    let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
    tx.splice_text(&notes, 0, 0, "Keluarga membutuhkan rujukan KIS-PBI.")?;
    tx.put_object(ROOT, "actions", ObjType::List)?;
    Ok(())
}

/// A referral as a phone would write it: submitted, so it waits in the supervisors' queue.
fn referral(
    tx: &mut automerge::transaction::Transaction<'_>,
    worker: &Worker,
    phone: usize,
    doc: usize,
) -> Result<(), automerge::AutomergeError> {
    use fieldsync_core::schema::{Nik, examples};
    let area = RegionCode::parse(&worker.area).expect("checked when enrolled");
    let mut r = examples::referral(&area, &worker.user);
    r.beneficiary.nik = Nik::parse(&nik(phone, doc)).expect("a valid NIK");
    r.write(tx)
}

/// The beneficiary's NIK of a phone's document: one of 100,000.
fn nik(phone: usize, doc: usize) -> String {
    format!("32770141079{:05}", (phone * 1000 + doc) % 100_000)
}

/// The p50 and p99 of `samples`, in milliseconds (NaN when there are none).
fn p50_p99(samples: &[Duration]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |p: f64| {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
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

/// CPU time of every process called `name`, with that of their children that ended (a
/// PostgreSQL backend's time moves to the postmaster when it exits), in seconds.
fn cpu_of_named(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of stat(5).
        total += fields
            .get(11..15)
            .into_iter()
            .flatten()
            .filter_map(|f| f.parse::<f64>().ok())
            .sum::<f64>();
    }
    total / 100.0
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
