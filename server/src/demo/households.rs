//! The people the demo's field workers visit: one household per beneficiary, with a made-up
//! name, an address in the kelurahan, PPKS categories as a city's caseload has them, and NIK
//! and KK numbers of the right shape (Kota Cimahi's 32.77 prefix and the kecamatan, 40 added to
//! the day of birth for women) that belong to nobody.

use fieldsync_core::schema::{Beneficiary, Kk, Nik, PpksCategory};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use super::cimahi::Kelurahan;

/// One beneficiary and their family card.
#[derive(Debug, Clone)]
pub struct Household {
    pub nik: Nik,
    pub kk: Kk,
    pub name: String,
    pub address: String,
    pub ppks: Vec<PpksCategory>,
}

const WOMEN: &[&str] = &[
    "Siti", "Euis", "Nining", "Yati", "Entin", "Imas", "Popon", "Rohmah", "Nani", "Enok", "Cucu",
    "Aisyah", "Dewi", "Ai", "Iyah", "Lina",
];
const MEN: &[&str] = &[
    "Ujang", "Asep", "Dadan", "Cecep", "Endang", "Jajang", "Iwan", "Ahmad", "Dede", "Engkos",
    "Maman", "Otong", "Rahmat", "Wawan", "Yusuf", "Agus",
];
const FAMILY: &[&str] = &[
    "Suryana",
    "Hidayat",
    "Rohaeni",
    "Kurniasih",
    "Saputra",
    "Permana",
    "Setiadi",
    "Nurhayati",
    "Sumarni",
    "Mulyadi",
    "Wahyudi",
    "Komariah",
    "Rusmana",
    "Sutisna",
    "Hernawati",
    "Ruhiyat",
];
const STREETS: &[&str] = &[
    "Jl. Kebon Kopi",
    "Jl. Sangkuriang",
    "Jl. Pasantren",
    "Jl. Cihanjuang",
    "Jl. Gatot Subroto",
    "Jl. Encep Kartawiria",
    "Jl. Kolonel Masturi",
    "Gg. Melati",
    "Gg. Mawar",
    "Jl. Amir Machmud",
    "Jl. Cibaligo",
    "Jl. Sriwijaya",
];

/// (category, weight): who a Dinsos worker in a city meets most.
const PPKS: &[(PpksCategory, u32)] = &[
    (PpksCategory::FakirMiskin, 40),
    (PpksCategory::LansiaTerlantar, 14),
    (PpksCategory::PenyandangDisabilitas, 10),
    (PpksCategory::PerempuanRawanSosialEkonomi, 9),
    (PpksCategory::AnakTerlantar, 5),
    (PpksCategory::AnakBalitaTerlantar, 5),
    (PpksCategory::KeluargaBermasalahSosialPsikologis, 5),
    (PpksCategory::KorbanKekerasan, 4),
    (PpksCategory::Pemulung, 4),
    (PpksCategory::AnakDisabilitas, 3),
    (PpksCategory::Pengemis, 1),
];

pub fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut pick = rng.random_range(0..total);
    for &(item, weight) in items {
        if pick < weight {
            return item;
        }
        pick -= weight;
    }
    items[0].0
}

pub fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

/// `serial` is unique among all households, which keeps NIK and KK numbers apart.
pub fn household(rng: &mut StdRng, place: &Kelurahan, serial: usize) -> Household {
    let first = weighted(rng, PPKS);
    let mut ppks = vec![first];
    if first != PpksCategory::FakirMiskin && rng.random_bool(0.35) {
        ppks.push(PpksCategory::FakirMiskin);
    }
    let woman = first == PpksCategory::PerempuanRawanSosialEkonomi || rng.random_bool(0.55);
    let years = match first {
        PpksCategory::LansiaTerlantar => 1940..=1958,
        PpksCategory::AnakBalitaTerlantar => 2021..=2024,
        PpksCategory::AnakTerlantar | PpksCategory::AnakDisabilitas => 2010..=2019,
        _ => 1962..=2000,
    };
    let (day, month, year) = (
        rng.random_range(1..=28),
        rng.random_range(1..=12),
        rng.random_range(years),
    );
    let kecamatan = place.kecamatan + 1;
    let sex_day = if woman { day + 40 } else { day };
    let nik = format!(
        "3277{kecamatan:02}{sex_day:02}{month:02}{:02}{:04}",
        year % 100,
        serial + 1
    );
    let kk = format!(
        "3277{kecamatan:02}{:02}{:02}{:02}{:04}",
        rng.random_range(1..=28),
        rng.random_range(1..=12),
        rng.random_range(8..=23),
        serial + 101
    );
    let given = if woman {
        pick(rng, WOMEN)
    } else {
        pick(rng, MEN)
    };
    let address = format!(
        "{} No. {}, RT {:02}/RW {:02}, Kel. {}",
        pick(rng, STREETS),
        rng.random_range(1..=120),
        rng.random_range(1..=8),
        rng.random_range(1..=14),
        place.name
    );
    Household {
        nik: Nik::parse(&nik).expect("the demo makes valid NIK numbers"),
        kk: Kk::parse(&kk).expect("the demo makes valid KK numbers"),
        name: format!("{given} {}", pick(rng, FAMILY)),
        address,
        ppks,
    }
}

pub fn beneficiary(h: &Household) -> Beneficiary {
    Beneficiary {
        nik: h.nik.clone(),
        kk: Some(h.kk.clone()),
        name: h.name.clone(),
        address: Some(h.address.clone()),
        ppks: h.ppks.clone(),
    }
}

pub fn first_notes(rng: &mut StdRng, category: PpksCategory) -> String {
    let members = rng.random_range(3..=7);
    match category {
        PpksCategory::LansiaTerlantar => "Lansia tinggal sendiri, kondisi kesehatan menurun. Makan sehari-hari dibantu tetangga.".into(),
        PpksCategory::PenyandangDisabilitas | PpksCategory::AnakDisabilitas => "Disabilitas fisik, belum memiliki alat bantu jalan. Belum terdaftar sebagai penerima bantuan.".into(),
        PpksCategory::PerempuanRawanSosialEkonomi => format!("Ibu tunggal dengan {} anak, bekerja sebagai buruh cuci. Penghasilan tidak tetap.", members - 2),
        PpksCategory::AnakTerlantar | PpksCategory::AnakBalitaTerlantar => "Anak diasuh nenek, orang tua bekerja di luar kota. Berat badan kurang, perlu pemantauan posyandu.".into(),
        PpksCategory::KorbanKekerasan => "Korban KDRT, sudah didampingi ke UPTD PPA. Kondisi psikologis mulai stabil.".into(),
        PpksCategory::KeluargaBermasalahSosialPsikologis => "Konflik keluarga berkepanjangan, perlu konseling. Sudah dikoordinasikan dengan ketua RW.".into(),
        PpksCategory::Pemulung | PpksCategory::Pengemis => "Bekerja memulung di sekitar TPS. Anak usia sekolah belum bersekolah.".into(),
        _ => format!("Rumah semi permanen, {members} anggota keluarga. Kepala keluarga buruh harian lepas, penghasilan tidak tetap."),
    }
}
