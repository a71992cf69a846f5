//! Kota Cimahi (32.77) as the demo knows it: three kecamatan, fifteen kelurahan, and the people
//! who work there. The kecamatan codes are Kemendagri's; the kelurahan are numbered 1001, 1002,
//! … within each kecamatan for the demo, so their codes are illustrative.

use fieldsync_core::schema::{RegionCode, Role};

/// The city.
pub const CITY: &str = "32.77";

/// (code, name, kelurahan names in code order).
pub const KECAMATAN: [(&str, &str, &[&str]); 3] = [
    (
        "32.77.01",
        "Cimahi Selatan",
        &["Melong", "Cibeureum", "Utama", "Leuwigajah", "Cibeber"],
    ),
    (
        "32.77.02",
        "Cimahi Tengah",
        &[
            "Baros",
            "Cigugur Tengah",
            "Karangmekar",
            "Setiamanah",
            "Padasuka",
            "Cimahi",
        ],
    ),
    (
        "32.77.03",
        "Cimahi Utara",
        &["Pasirkaliki", "Cibabat", "Citeureup", "Cipageran"],
    ),
];

/// One kelurahan.
#[derive(Debug, Clone)]
pub struct Kelurahan {
    pub code: RegionCode,
    pub name: &'static str,
    /// Index into [`KECAMATAN`].
    pub kecamatan: usize,
}

/// Every kelurahan, in code order.
pub fn kelurahan() -> Vec<Kelurahan> {
    let mut all = Vec::new();
    for (k, (code, _, names)) in KECAMATAN.iter().enumerate() {
        for (i, name) in names.iter().enumerate() {
            let code = RegionCode::parse(&format!("{code}.{}", 1001 + i))
                .expect("the demo's codes are valid");
            all.push(Kelurahan {
                code,
                name,
                kecamatan: k,
            });
        }
    }
    all
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
    for ((code, kecamatan, _), name) in KECAMATAN.iter().zip(COORDINATORS) {
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
