//! `fieldsim --seed N`: a province's stored caseloads written straight into a fieldsync
//! database, to measure the server at rest at scale (start-up, idle memory, the office pages'
//! reads). Each document is a real Automerge document of the public schema, stored with its
//! query rows as the server stores a phone's: 70 % visits, 20 % referrals (submitted, waiting
//! for review), 10 % outreach notes, spread evenly over the 250 kelurahan of each of 20 kota
//! (fewer with `--seed-kota`) and over six months, each beneficiary with a NIK of their own.

use std::time::Instant;

use anyhow::{Context, bail};
use automerge::AutoCommit;
use fieldsync_core::schema::{FieldDocument, Nik, RegionCode, Role, examples};
use fieldsync_protocol::DocumentId;
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::{Storage, Write};

/// Documents stored per transaction.
const BATCH: usize = 1_000;
/// Kecamatan per kota and kelurahan per kecamatan: 250 kelurahan in each kota (32.01, 32.02, …).
const KECAMATAN: usize = 25;
const KELURAHAN: usize = 10;

const NAMES: &[&str] = &[
    "Siti Aminah",
    "Budi Santoso",
    "Dewi Lestari",
    "Agus Salim",
    "Nur Hidayah",
    "Rina Marlina",
    "Asep Sunandar",
    "Euis Komariah",
    "Dedi Mulyadi",
    "Yayah Rokayah",
    "Ujang Suherman",
    "Teti Herawati",
];

/// Who reads the seeded data: a coordinator of the first kota and a supervisor of the
/// province, with the users that wrote it (one field worker per kelurahan).
pub const COORDINATOR: &str = "koordinator-seed";
pub const SUPERVISOR: &str = "supervisor-seed";

/// Writes `count` documents, spread over `kota` kota, into the database at `url`; prints the
/// rate now and then.
pub async fn seed(url: &str, count: usize, kota: usize) -> anyhow::Result<()> {
    if !(1..=99).contains(&kota) {
        bail!("--seed-kota must be 1 to 99");
    }
    let storage = fieldsync_server::storage::open(url)
        .await
        .with_context(|| format!("cannot open {}", fieldsync_server::redact(url)))?;
    add_readers(storage.as_ref()).await?;
    let start = Instant::now();
    // The next batch is built on another thread while this one is stored.
    let build = |from: usize| {
        tokio::task::spawn_blocking(move || {
            (from..(from + BATCH).min(count))
                .map(|n| document(n, kota))
                .collect::<anyhow::Result<Vec<_>>>()
        })
    };
    let mut next = (count > 0).then(|| build(0));
    let mut done = 0;
    while let Some(job) = next.take() {
        let batch = job.await??;
        done += batch.len();
        if done < count {
            next = Some(build(done));
        }
        let written = storage
            .write(&batch)
            .await
            .context("storing a batch of documents")?;
        if !written.behind.is_empty() {
            bail!("another process wrote to this database while seeding");
        }
        if done % 100_000 == 0 || done == count {
            let rate = done as f64 / start.elapsed().as_secs_f64();
            println!("seeded {done} documents ({rate:.0}/s)");
        }
    }
    storage.close().await?;
    Ok(())
}

async fn add_readers(storage: &dyn Storage) -> anyhow::Result<()> {
    let kota = RegionCode::parse_prefix("32.01").context("a kota code")?;
    let province = RegionCode::parse_prefix("32").context("a province code")?;
    for (id, role, area) in [
        (COORDINATOR, Role::Coordinator, kota),
        (SUPERVISOR, Role::Supervisor, province),
    ] {
        // Already there from an earlier seed: keep them.
        let _ =
            fieldsync_server::admin::add_user(storage, Some(id.to_owned()), id, role, vec![area])
                .await;
    }
    Ok(())
}

/// The `n`th document of a seed over `kotas` kota: its kind, area, date, beneficiary and id
/// all follow from `n`.
fn document(n: usize, kotas: usize) -> anyhow::Result<Write> {
    let k = n % (kotas * KECAMATAN * KELURAHAN);
    let (kota, kecamatan, kelurahan) = (
        1 + k / (KECAMATAN * KELURAHAN),
        1 + (k / KELURAHAN) % KECAMATAN,
        1001 + k % KELURAHAN,
    );
    let area = RegionCode::parse(&format!("32.{kota:02}.{kecamatan:02}.{kelurahan}"))
        .context("a kelurahan code")?;
    let by = format!("peksos-{kota:02}{kecamatan:02}{kelurahan}");
    let nik = Nik::parse(&format!(
        "32{kota:02}{kecamatan:02}{:02}{:02}{:02}{:04}",
        1 + n % 28,
        1 + (n / 28) % 12,
        50 + (n / 336) % 50,
        1 + (n / 16_800) % 9_999
    ))
    .context("a NIK")?;
    let name = NAMES[n % NAMES.len()].to_owned();
    let day = format!("2026-{:02}-{:02}", 6 + n % 6, 1 + (n / 6) % 28);
    let state = match n % 10 {
        0 | 1 => {
            let mut r = examples::referral(&area, &by);
            r.beneficiary.nik = nik;
            r.beneficiary.name = name;
            r.envelope.created_at = format!("{day}T08:00:00Z");
            r.consent.at = format!("{day}T08:10:00Z");
            r.events[0].at = format!("{day}T08:15:00Z");
            FieldDocument::Referral(r)
        }
        2 => {
            let mut o = examples::outreach(&area, &by);
            o.envelope.created_at = format!("{day}T13:00:00Z");
            o.held_at = format!("{day}T14:00:00Z");
            FieldDocument::Outreach(o)
        }
        _ => {
            let mut v = examples::visit(&area, &by);
            v.beneficiary.nik = nik;
            v.beneficiary.name = name;
            v.envelope.created_at = format!("{day}T08:00:00Z");
            v.visited_at = format!("{day}T09:30:00Z");
            FieldDocument::Visit(v)
        }
    };
    let mut doc = AutoCommit::new();
    state.write(&mut doc).context("writing a document")?;
    Ok(Write::Append {
        doc: DocumentId::from_bytes(id_bytes(n as u64)),
        bytes: doc.save_after(&[]),
        projection: Projection::of(Some(&state)),
    })
}

/// Sixteen bytes that differ for every `n` (splitmix64, twice).
fn id_bytes(n: u64) -> [u8; 16] {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&mix(2 * n).to_le_bytes());
    bytes[8..].copy_from_slice(&mix(2 * n + 1).to_le_bytes());
    bytes
}
