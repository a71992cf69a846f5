//! The demo's synthetic field records: for each field worker, six weeks of visits, referrals
//! and outreach notes, and the supervisors' later decisions on about half of the referrals.
//!
//! Everything comes from a [`StdRng`] seeded with the worker's number, so the data are the same
//! on every machine; only the dates move with the day the demo is seeded. The beneficiaries
//! come from [`super::households`].

use fieldsync_core::schema::{
    Consent, DocKind, DocumentsChecklist, Envelope, Event, EventKind, Outreach, Program, Referral,
    Visit, format_millis,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::cimahi::{Kelurahan, PersonSpec};
use super::households::{Household, beneficiary, first_notes, household, pick, weighted};

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
const WIB: i64 = 7 * 3_600_000;
/// How far back the records go.
const DAYS: i64 = 42;
const HOUSEHOLDS: usize = 16;

/// One worker's records, in the order they are written.
#[derive(Debug, Clone)]
pub struct WorkerRecords {
    pub visits: Vec<Visit>,
    pub referrals: Vec<PlannedReferral>,
    pub outreach: Vec<Outreach>,
}

#[derive(Debug, Clone)]
pub struct PlannedReferral {
    /// The visit it came out of, by index into [`WorkerRecords::visits`].
    pub visit: usize,
    pub referral: Referral,
    /// Supervisor decisions to add later, oldest first: (supervisor number 0 or 1, event).
    pub decisions: Vec<(usize, Event)>,
}

/// The records of the `number`th worker, dated before `now` (epoch milliseconds).
pub fn worker_records(
    number: usize,
    worker: &PersonSpec,
    place: &Kelurahan,
    now: i64,
) -> WorkerRecords {
    let mut rng = StdRng::seed_from_u64(0x0C13_A417 + number as u64);
    let today = (now + WIB).div_euclid(DAY);
    let households: Vec<Household> = (0..HOUSEHOLDS)
        .map(|h| household(&mut rng, place, number * HOUSEHOLDS + h))
        .collect();
    let envelope = |kind, area: &Kelurahan, at: i64| Envelope {
        kind,
        schema: 1,
        area: area.code.clone(),
        created_by: worker.id.clone(),
        created_at: format_millis(at),
    };

    let mut visit_plans: Vec<(i64, usize)> = (0..rng.random_range(18..=26))
        .map(|_| {
            let day = working_day(&mut rng, today);
            (
                office_time(&mut rng, day, 8, 15),
                rng.random_range(0..HOUSEHOLDS),
            )
        })
        .collect();
    visit_plans.sort();
    let mut seen = [false; HOUSEHOLDS];
    let mut visits = Vec::new();
    for &(at, h) in &visit_plans {
        let first = !std::mem::replace(&mut seen[h], true);
        visits.push(visit(&mut rng, &households[h], first, at, place, &envelope));
    }

    let mut referrals = Vec::new();
    let mut referred = [false; HOUSEHOLDS];
    let wanted = rng.random_range(5..=9);
    for (i, &(at, h)) in visit_plans.iter().enumerate() {
        if referrals.len() == wanted || referred[h] || !rng.random_bool(0.5) {
            continue;
        }
        referred[h] = true;
        let created = at + rng.random_range(20..90) * MINUTE;
        let referral = referral(&mut rng, &households[h], created, worker, place, &envelope);
        let decisions = decisions(&mut rng, number + i, created + MINUTE, now);
        referrals.push(PlannedReferral {
            visit: i,
            referral,
            decisions,
        });
    }

    let outreach = (0..rng.random_range(3..=5))
        .map(|_| {
            let day = working_day(&mut rng, today);
            let held = office_time(&mut rng, day, 9, 13);
            outreach(&mut rng, held, place, &envelope)
        })
        .collect();
    WorkerRecords {
        visits,
        referrals,
        outreach,
    }
}

/// A day of the last six weeks, not a Sunday (1970-01-01 was a Thursday).
fn working_day(rng: &mut StdRng, today: i64) -> i64 {
    loop {
        let day = today - rng.random_range(1..=DAYS);
        if (day + 4).rem_euclid(7) != 0 {
            return day;
        }
    }
}

/// A time on `day` between the hours (WIB), on a quarter hour, as epoch milliseconds.
fn office_time(rng: &mut StdRng, day: i64, from_hour: i64, to_hour: i64) -> i64 {
    let quarter = rng.random_range(from_hour * 4..to_hour * 4);
    day * DAY + quarter * 15 * MINUTE - WIB
}

const LATER_NOTES: &[&str] = &[
    "Kondisi keluarga stabil. Berkas bantuan sedang dilengkapi.",
    "Sudah diperiksa di puskesmas, obat rutin tersedia.",
    "Anak sudah kembali bersekolah, perlu seragam dan buku.",
    "Rumah bocor saat hujan, diusulkan ke program rutilahu.",
    "Penghasilan bertambah dari usaha warung kecil.",
    "Keluarga belum menerima bantuan yang diusulkan, ditanyakan ke kelurahan.",
];

fn visit(
    rng: &mut StdRng,
    h: &Household,
    first: bool,
    at: i64,
    place: &Kelurahan,
    envelope: &impl Fn(DocKind, &Kelurahan, i64) -> Envelope,
) -> Visit {
    let (purpose, notes) = if first {
        ("Asesmen awal", first_notes(rng, h.ppks[0]))
    } else {
        let purpose = pick(
            rng,
            &["Kunjungan lanjutan", "Pemantauan", "Verifikasi DTSEN"],
        );
        (purpose, pick(rng, LATER_NOTES).to_owned())
    };
    let actions = match rng.random_range(0..6) {
        0 => vec!["rujuk KIS-PBI".to_owned()],
        1 => vec!["koordinasi dengan puskesmas".to_owned()],
        2 => vec!["usulkan PKH".to_owned(), "pendataan ulang DTSEN".to_owned()],
        3 => vec!["pendataan ulang DTSEN".to_owned()],
        _ => Vec::new(),
    };
    let follow_up = rng.random_bool(0.6).then(|| {
        let day = (at + WIB).div_euclid(DAY) + rng.random_range(7..=21);
        format_millis(day * DAY)[..10].to_owned()
    });
    // Around the middle of each kecamatan.
    let (lat, lon) = [(-6.897, 107.538), (-6.877, 107.543), (-6.853, 107.551)][place.kecamatan];
    // Four decimals, as a phone's GPS reading is usually shown (about 11 m).
    let near = |rng: &mut StdRng, x: f64| {
        let jittered = x + f64::from(rng.random_range(-80..=80)) / 10_000.0;
        format!("{jittered:.4}").parse().unwrap_or(x)
    };
    Visit {
        envelope: envelope(
            DocKind::Visit,
            place,
            at + rng.random_range(10..60) * MINUTE,
        ),
        beneficiary: beneficiary(h),
        visited_at: format_millis(at),
        purpose: Some(purpose.to_owned()),
        notes,
        actions,
        follow_up_on: follow_up,
        location: Some((near(rng, lat), near(rng, lon))),
        attachments: Vec::new(),
    }
}

fn referral(
    rng: &mut StdRng,
    h: &Household,
    created: i64,
    worker: &PersonSpec,
    place: &Kelurahan,
    envelope: &impl Fn(DocKind, &Kelurahan, i64) -> Envelope,
) -> Referral {
    let program = weighted(
        rng,
        &[
            (Program::KisPbi, 30),
            (Program::PbiApbd, 15),
            (Program::Gakinda, 15),
            (Program::Pkh, 20),
            (Program::Bpnt, 20),
        ],
    );
    let reason = match program {
        Program::KisPbi => "Tidak memiliki jaminan kesehatan; keluarga di desil 1-4 DTSEN.",
        Program::PbiApbd => {
            "Belum terdaftar PBI-JK, perlu jaminan kesehatan segera untuk pengobatan rutin."
        }
        Program::Gakinda => {
            "Perlu biaya rawat inap di RSUD Cibabat, tidak memiliki jaminan kesehatan."
        }
        Program::Pkh => "Keluarga dengan anak usia sekolah dan balita, penghasilan di bawah UMK.",
        _ => "Kebutuhan pangan tidak tercukupi, penghasilan tidak tetap.",
    };
    let gakinda = program == Program::Gakinda;
    Referral {
        envelope: envelope(DocKind::Referral, place, created),
        beneficiary: beneficiary(h),
        program,
        reason: reason.into(),
        documents: DocumentsChecklist {
            ktp: rng.random_bool(0.9),
            kk: rng.random_bool(0.85),
            sktm: rng.random_bool(if gakinda { 0.7 } else { 0.45 }),
            surat_puskesmas: rng.random_bool(if gakinda { 0.6 } else { 0.15 }),
        },
        consent: Consent {
            given: true,
            at: format_millis(created - 5 * MINUTE),
            by: h.name.clone(),
        },
        // Set once the visit has its document id.
        visit: None,
        events: vec![event(
            EventKind::Submitted,
            created + MINUTE,
            &worker.id,
            None,
        )],
        attachments: Vec::new(),
    }
}

fn event(kind: EventKind, at: i64, by: &str, note: Option<&str>) -> Event {
    Event {
        kind,
        at: format_millis(at),
        by: by.to_owned(),
        note: note.map(str::to_owned),
        id: None,
    }
}

/// The supervisors' decisions on a referral submitted at `submitted`: none for about half,
/// otherwise one of the usual paths, each step a day or more after the one before, and none
/// after `now`.
fn decisions(
    rng: &mut StdRng,
    pick_supervisor: usize,
    submitted: i64,
    now: i64,
) -> Vec<(usize, Event)> {
    if !rng.random_bool(0.6) {
        return Vec::new();
    }
    let path: &[(EventKind, Option<&str>)] = match rng.random_range(0..20) {
        0..4 => &[(EventKind::Accepted, None)],
        4..8 => &[(
            EventKind::NeedsDocuments,
            Some(
                *[
                    "SKTM dari kelurahan belum ada",
                    "Fotokopi KK belum dilampirkan",
                    "Surat rujukan puskesmas belum ada",
                ]
                .choose(rng)
                .unwrap_or(&""),
            ),
        )],
        8..12 => &[(EventKind::Accepted, None), (EventKind::Approved, None)],
        12..16 => &[
            (EventKind::Accepted, None),
            (EventKind::Approved, None),
            (EventKind::Enrolled, Some("Terdaftar mulai bulan depan")),
        ],
        _ => &[(
            EventKind::Rejected,
            Some(
                *[
                    "Sudah terdaftar sebagai peserta PBI-JK",
                    "Desil DTSEN di atas batas kelayakan",
                    "NIK tidak ditemukan di data Dukcapil",
                ]
                .choose(rng)
                .unwrap_or(&""),
            ),
        )],
    };
    let supervisor = pick_supervisor % 2;
    let by = format!("supervisor-{}", supervisor + 1);
    let mut at = submitted;
    let mut events = Vec::new();
    for (kind, note) in path {
        at += rng.random_range(1..=3) * DAY + rng.random_range(0..6 * 60) * MINUTE;
        if at >= now {
            break;
        }
        events.push((supervisor, event(*kind, at, &by, *note)));
    }
    events
}

fn outreach(
    rng: &mut StdRng,
    held: i64,
    place: &Kelurahan,
    envelope: &impl Fn(DocKind, &Kelurahan, i64) -> Envelope,
) -> Outreach {
    let (topic, notes) = *[
        (
            "Pencegahan stunting",
            "Dihadiri kader posyandu dan ibu hamil. Dibagikan leaflet gizi seimbang.",
        ),
        (
            "Posyandu dan gizi balita",
            "Penimbangan balita bersama, 3 balita dirujuk ke puskesmas.",
        ),
        (
            "Pendaftaran KIS-PBI",
            "Warga membawa KTP dan KK, 12 berkas dikumpulkan untuk diajukan.",
        ),
        (
            "Pemutakhiran data DTSEN",
            "Penjelasan cara mengecek status desil dan mengajukan sanggahan.",
        ),
        (
            "Pencegahan kekerasan dalam rumah tangga",
            "Bersama UPTD PPA, dibuka layanan konsultasi setelah acara.",
        ),
        (
            "Bahaya NAPZA bagi remaja",
            "Peserta karang taruna dan pelajar SMP.",
        ),
    ]
    .choose(rng)
    .unwrap_or(&("Penyuluhan sosial", ""));
    let places = [
        format!("Aula Kelurahan {}", place.name),
        format!("Balai RW {:02}", rng.random_range(1..=14)),
        "Posyandu Melati".to_owned(),
        "Masjid Al-Ikhlas".to_owned(),
    ];
    Outreach {
        envelope: envelope(
            DocKind::Outreach,
            place,
            held + rng.random_range(90..180) * MINUTE,
        ),
        topic: topic.into(),
        held_at: format_millis(held),
        place: places.choose(rng).cloned().unwrap_or_default(),
        attendees: rng.random_range(12..=45),
        notes: notes.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::cimahi::{kelurahan, people};
    use fieldsync_core::schema::{Author, FieldDocument, Role, check_change};

    #[test]
    fn records_are_valid_the_same_every_time_and_in_the_past() {
        let now = 1_795_487_400_000;
        let places = kelurahan();
        let person = &people()[3];
        let a = worker_records(3, person, &places[3], now);
        let b = worker_records(3, person, &places[3], now);
        assert_eq!(format!("{:?}", a.visits), format!("{:?}", b.visits));
        assert!((18..=26).contains(&a.visits.len()));
        assert!((3..=5).contains(&a.outreach.len()));
        let author = Author::user(&person.id, Role::Peksos, person.areas.clone());
        let docs = a
            .visits
            .iter()
            .cloned()
            .map(FieldDocument::Visit)
            .chain(
                a.referrals
                    .iter()
                    .map(|r| FieldDocument::Referral(r.referral.clone())),
            )
            .chain(a.outreach.iter().cloned().map(FieldDocument::Outreach));
        for doc in docs {
            assert_eq!(check_change(None, Some(&doc), &author), Ok(()), "{doc:?}");
        }
        for v in &a.visits {
            let (lat, lon) = v.location.unwrap();
            for x in [lat, lon] {
                assert!(x.to_string().split('.').nth(1).unwrap().len() <= 4, "{x}");
            }
        }
        for r in &a.referrals {
            for (_, e) in &r.decisions {
                let at = fieldsync_core::schema::timestamp_millis(&e.at).unwrap();
                assert!(at < now && e.at > r.referral.events[0].at);
            }
        }
    }
}
