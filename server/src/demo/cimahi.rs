//! Kota Cimahi (32.77) as the demo knows it: three kecamatan, fifteen kelurahan, and the people
//! who work there. Codes and names are Kemendagri's, from the rows of the official lists in
//! `areas/` (see its NOTICE.md), which the demo also imports into the `areas` table the pages
//! read names from.

use std::sync::LazyLock;

use fieldsync_core::schema::{RegionCode, Role};

use crate::storage::areas::AreaRow;

/// The city.
pub const CITY: &str = "32.77";

/// The demo's rows of the official lists: the province, the city, its kecamatan and kelurahan.
pub fn area_rows() -> &'static [AreaRow] {
    static ROWS: LazyLock<Vec<AreaRow>> = LazyLock::new(|| {
        crate::areas::parse_dataset([
            (
                "provinces.csv",
                include_bytes!("areas/provinces.csv").as_slice(),
            ),
            (
                "regencies.csv",
                include_bytes!("areas/regencies.csv").as_slice(),
            ),
            (
                "districts.csv",
                include_bytes!("areas/districts.csv").as_slice(),
            ),
            (
                "villages.csv",
                include_bytes!("areas/villages.csv").as_slice(),
            ),
        ])
        .expect("the demo's area lists are valid")
    });
    &ROWS
}

/// The city's kecamatan: (code, name), in code order.
pub fn kecamatan() -> Vec<(&'static str, &'static str)> {
    area_rows()
        .iter()
        .filter(|r| r.code.starts_with("32.77.") && r.code.len() == 8)
        .map(|r| (r.code.as_str(), r.name.as_str()))
        .collect()
}

/// One kelurahan.
#[derive(Debug, Clone)]
pub struct Kelurahan {
    pub code: RegionCode,
    pub name: &'static str,
    /// Index into [`kecamatan`].
    pub kecamatan: usize,
}

/// Every kelurahan, in code order.
pub fn kelurahan() -> Vec<Kelurahan> {
    let kecamatan = kecamatan();
    area_rows()
        .iter()
        .filter(|r| r.code.starts_with("32.77.") && r.code.len() == 13)
        .map(|r| Kelurahan {
            code: RegionCode::parse(&r.code).expect("the demo's codes are valid"),
            name: r.name.as_str(),
            kecamatan: kecamatan
                .iter()
                .position(|(k, _)| r.code.starts_with(k))
                .expect("every kelurahan lies in a kecamatan of the list"),
        })
        .collect()
}

/// A person the demo signs up.
#[derive(Debug, Clone)]
pub struct PersonSpec {
    pub id: String,
    pub name: &'static str,
    pub role: Role,
    pub areas: Vec<RegionCode>,
    /// Where they work, for the printed table.
    pub place: String,
}

/// Field workers' names, one per kelurahan in code order.
const WORKERS: [&str; 15] = [
    "Ani Suryani",
    "Dedi Kurniawan",
    "Euis Komalasari",
    "Asep Saepudin",
    "Neneng Hasanah",
    "Rudi Hermawan",
    "Siti Nurjanah",
    "Yayan Sofyan",
    "Lilis Suryati",
    "Ujang Rahmat",
    "Tati Rohayati",
    "Hendra Gunawan",
    "Iis Ratnasari",
    "Dadang Supriatna",
    "Wulan Sari",
];

const COORDINATORS: [&str; 4] = [
    "Budi Santoso",
    "Rina Marlina",
    "Agus Setiawan",
    "Dewi Kartika",
];

const SUPERVISORS: [&str; 2] = ["Sri Mulyani", "Bambang Irawan"];

fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

fn prefix(code: &str) -> RegionCode {
    RegionCode::parse_prefix(code).expect("the demo's codes are valid")
}

/// Everyone: a peksos per kelurahan, a coordinator per kecamatan and one for the city, two
/// supervisors for the city, one administrator.
pub fn people() -> Vec<PersonSpec> {
    let mut all = Vec::new();
    for (k, name) in kelurahan().into_iter().zip(WORKERS) {
        all.push(PersonSpec {
            id: format!("peksos-{}", slug(k.name)),
            name,
            role: Role::Peksos,
            areas: vec![k.code.clone()],
            place: format!("Kel. {}", k.name),
        });
    }
    for ((code, kecamatan), name) in kecamatan().into_iter().zip(COORDINATORS) {
        all.push(PersonSpec {
            id: format!("koordinator-{}", slug(kecamatan)),
            name,
            role: Role::Coordinator,
            areas: vec![prefix(code)],
            place: format!("Kec. {kecamatan}"),
        });
    }
    all.push(PersonSpec {
        id: "koordinator-kota".into(),
        name: COORDINATORS[3],
        role: Role::Coordinator,
        areas: vec![prefix(CITY)],
        place: "Kota Cimahi".into(),
    });
    for (i, name) in SUPERVISORS.into_iter().enumerate() {
        all.push(PersonSpec {
            id: format!("supervisor-{}", i + 1),
            name,
            role: Role::Supervisor,
            areas: vec![prefix(CITY)],
            place: "Dinas Sosial Kota Cimahi".into(),
        });
    }
    all.push(PersonSpec {
        id: "admin".into(),
        name: "Admin Dinsos",
        role: Role::Admin,
        areas: vec![prefix(CITY)],
        place: "Dinas Sosial Kota Cimahi".into(),
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_kelurahan_and_everyone() {
        let all = kelurahan();
        assert_eq!(all.len(), 15);
        assert_eq!(all[0].code.as_str(), "32.77.01.1001");
        assert_eq!(all[14].code.as_str(), "32.77.03.1004");
        let people = people();
        assert_eq!(people.len(), 15 + 4 + 2 + 1);
        assert_eq!(people[6].id, "peksos-cigugur-tengah");
        assert!(people.iter().any(|p| p.id == "koordinator-cimahi-utara"));
    }
}
