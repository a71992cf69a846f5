//! Validated values of the field documents, parsed once at the boundary.

use std::fmt;

/// Why a value was refused; the text is meant for a field worker's screen and a developer's log.
///
/// It never repeats the value it refused: violations reach the server's log and the
/// append-only audit table, and a refused value may be a NIK, a KK number or a name typed
/// into the wrong field. The path of the violation says which field; the phone has the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn two(s: &str, at: usize) -> u32 {
    s[at..at + 2].parse().unwrap_or(0)
}

/// Nomor Induk Kependudukan: 16 digits `PP KK CC DDMMYY NNNN`, women's birth day + 40.
///
/// Only the shape is checked: unknown region codes are accepted (regions split and merge), and
/// nothing authoritative (sex, birth date) is derived from it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nik(String);

impl Nik {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 16 || !all_digits(s) {
            return Err(refused("NIK must be 16 digits"));
        }
        let day = two(s, 6);
        let month = two(s, 8);
        if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
            return Err(refused(
                "NIK digits 7-8 (birth day) must be 01-31, or 41-71 for women",
            ));
        }
        if !(1..=12).contains(&month) {
            return Err(refused("NIK digits 9-10 (birth month) must be 01-12"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Nomor Kartu Keluarga (family card number): 16 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kk(String);

impl Kk {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 16 || !all_digits(s) {
            return Err(refused("KK number must be 16 digits"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kemendagri region code of a kelurahan/desa, `PP.KK.CC.DDDD`, or a prefix of one
/// (`PP`, `PP.KK`, `PP.KK.CC`) when it names an area scope. Codes are data, not an enum: new
/// ones appear when regions split.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// A full kelurahan/desa code: what a document's `area` holds.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let code = Self::parse_prefix(s)?;
        if code.0.len() != 13 {
            return Err(refused(
                "area must be a kelurahan/desa code like 32.77.01.1001 (PP.KK.CC.DDDD)",
            ));
        }
        Ok(code)
    }

    /// A code or prefix of one: `32`, `32.77`, `32.77.01` or `32.77.01.1001`.
    pub fn parse_prefix(s: &str) -> Result<Self, InvalidValue> {
        let parts: Vec<&str> = s.split('.').collect();
        let widths = [2, 2, 2, 4];
        let ok = !parts.is_empty()
            && parts.len() <= 4
            && parts
                .iter()
                .zip(widths)
                .all(|(p, w)| p.len() == w && all_digits(p));
        if !ok {
            return Err(refused(
                "region code must look like 32.77.01.1001 (or a prefix of it)",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` (a scope prefix) covers `code`: it is one of `code`'s [`Self::scopes`].
    pub fn covers(&self, code: &RegionCode) -> bool {
        // Without building "scope.": the rules and the office's pages ask this of every
        // document they check.
        code.0
            .strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }

    /// Every scope that covers this code, widest first: `32`, `32.77`, `32.77.01`,
    /// `32.77.01.1001` (the code itself). The users of a place are found by looking these up.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let code = self.0.as_str();
        code.match_indices('.')
            .map(move |(at, _)| &code[..at])
            .chain(std::iter::once(code))
    }
}

macro_rules! slug_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident => $slug:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $slug),+ }
            }

            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| refused(concat!("must be a known ", $what)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(super) use slug_enum;

slug_enum!(
    /// The program a beneficiary is referred to.
    Program, "program", {
        KisPbi => "kis-pbi",
        PbiApbd => "pbi-apbd",
        Gakinda => "gakinda",
        Pkh => "pkh",
        Bpnt => "bpnt",
        Rehabilitasi => "rehabilitasi",
        Lainnya => "lainnya",
    }
);

slug_enum!(
    /// The 26 PPKS categories (Permensos 8/2012, renamed PPKS in 2019), as slugs.
    PpksCategory, "PPKS category", {
        AnakBalitaTerlantar => "anak-balita-terlantar",
        AnakTerlantar => "anak-terlantar",
        AnakBerhadapanHukum => "anak-berhadapan-hukum",
        AnakJalanan => "anak-jalanan",
        AnakDisabilitas => "anak-disabilitas",
        AnakKorbanKekerasan => "anak-korban-kekerasan",
        AnakPerlindunganKhusus => "anak-perlindungan-khusus",
        LansiaTerlantar => "lansia-terlantar",
        PenyandangDisabilitas => "penyandang-disabilitas",
        TunaSusila => "tuna-susila",
        Gelandangan => "gelandangan",
        Pengemis => "pengemis",
        Pemulung => "pemulung",
        KelompokMinoritas => "kelompok-minoritas",
        BekasWargaBinaan => "bekas-warga-binaan",
        Odha => "odha",
        KorbanNapza => "korban-napza",
        KorbanTrafficking => "korban-trafficking",
        KorbanKekerasan => "korban-kekerasan",
        PekerjaMigranBermasalah => "pekerja-migran-bermasalah",
        KorbanBencanaAlam => "korban-bencana-alam",
        KorbanBencanaSosial => "korban-bencana-sosial",
        PerempuanRawanSosialEkonomi => "perempuan-rawan-sosial-ekonomi",
        FakirMiskin => "fakir-miskin",
        KeluargaBermasalahSosialPsikologis => "keluarga-bermasalah-sosial-psikologis",
        KomunitasAdatTerpencil => "komunitas-adat-terpencil",
    }
);

slug_enum!(
    /// What a user does; decides what they may read and write.
    Role, "role", {
        Peksos => "peksos",
        Coordinator => "coordinator",
        Supervisor => "supervisor",
        Admin => "admin",
    }
);

slug_enum!(
    /// A step in a referral's history.
    EventKind, "referral event kind", {
        Submitted => "submitted",
        Withdrawn => "withdrawn",
        DocumentsAdded => "documents-added",
        Accepted => "accepted",
        NeedsDocuments => "needs-documents",
        Approved => "approved",
        Rejected => "rejected",
        Enrolled => "enrolled",
        Closed => "closed",
    }
);

impl EventKind {
    /// Field workers record these; every other kind is a supervisor's decision.
    pub fn is_field_worker_event(self) -> bool {
        matches!(
            self,
            Self::Submitted | Self::Withdrawn | Self::DocumentsAdded
        )
    }

    /// Which roles may add an event of this kind.
    pub fn may_be_added_by(self, role: Role) -> bool {
        match role {
            Role::Peksos => self.is_field_worker_event(),
            Role::Supervisor => !self.is_field_worker_event(),
            Role::Coordinator | Role::Admin => false,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: an RFC 3339 timestamp in UTC.
pub fn check_timestamp(s: &str) -> Result<(), InvalidValue> {
    let bad = || refused("expected an RFC 3339 UTC time like 2026-11-20T09:30:00Z");
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || *b.last().unwrap() != b'Z'
    {
        return Err(bad());
    }
    check_date(&s[..10]).map_err(|_| bad())?;
    let (h, m, sec) = (two(s, 11), two(s, 14), two(s, 17));
    if !all_digits(&s[11..13])
        || !all_digits(&s[14..16])
        || !all_digits(&s[17..19])
        || h > 23
        || m > 59
        || sec > 60
    {
        return Err(bad());
    }
    let rest = &s[19..s.len() - 1];
    if !(rest.is_empty() || (rest.len() >= 2 && rest.starts_with('.') && all_digits(&rest[1..]))) {
        return Err(bad());
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn check_date(s: &str) -> Result<(), InvalidValue> {
    let bad = || refused("expected a date like 2026-12-01");
    let b = s.as_bytes();
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !all_digits(&s[..4])
        || !all_digits(&s[5..7])
        || !all_digits(&s[8..])
    {
        return Err(bad());
    }
    let year: u32 = s[..4].parse().map_err(|_| bad())?;
    let (month, day) = (two(s, 5), two(s, 8));
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day == 0 || day > days {
        return Err(bad());
    }
    Ok(())
}

/// Milliseconds since the Unix epoch of a timestamp [`check_timestamp`] accepts, for sorting
/// and range queries; `None` for anything else.
pub fn timestamp_millis(s: &str) -> Option<i64> {
    check_timestamp(s).ok()?;
    let days = date_days(&s[..10])?;
    let secs = days * 86_400
        + i64::from(two(s, 11)) * 3600
        + i64::from(two(s, 14)) * 60
        + i64::from(two(s, 17));
    let fraction = &s[19..s.len() - 1];
    let millis = match fraction.get(1..) {
        Some(digits) if !digits.is_empty() => {
            let padded: String = digits.chars().chain("000".chars()).take(3).collect();
            padded.parse::<i64>().ok()?
        }
        _ => 0,
    };
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a date [`check_date`] accepts; `None` for anything else.
pub fn date_days(s: &str) -> Option<i64> {
    check_date(s).ok()?;
    let (y, m, d): (i64, i64, i64) = (
        s[..4].parse().ok()?,
        i64::from(two(s, 5)),
        i64::from(two(s, 8)),
    );
    // Days from civil (proleptic Gregorian), after Howard Hinnant's well-known algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// (year, month 1–12, day 1–31) of a count of days since 1970-01-01, proleptic Gregorian:
/// the inverse of [`date_days`], after Howard Hinnant's well-known algorithm.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC timestamp (to the second): the
/// inverse of [`timestamp_millis`], for showing stored times to people.
pub fn format_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The only way values in this module build an [`InvalidValue`]: from fixed text, so that no
/// refused value can end up in a message.
pub(super) fn refused(message: &'static str) -> InvalidValue {
    InvalidValue(message.to_owned())
}

/// A NIK or KK number for logs and debug output: the first four digits (province and
/// regency) and the last four, e.g. `3277********0002`.
fn masked(digits: &str) -> String {
    let n = digits.chars().count();
    digits
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 4 || i + 4 >= n { c } else { '*' })
        .collect()
}

/// `Debug` masks the number, so a `{:?}` of a document in a log or a test failure shows no
/// whole NIK or KK. `Display` is the number itself, for the pages and rows that must show it.
macro_rules! personal_number {
    ($($name:ident),+) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), masked(&self.0))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )+};
}

personal_number!(Nik, Kk);

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({:?})", self.0)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_shape() {
        assert!(Nik::parse("3277011204800001").is_ok()); // man, born 12 April 1980
        assert!(Nik::parse("3277015204800002").is_ok()); // woman: day 12 + 40
        for bad in [
            "123",
            "32770112048000011",
            "327701120480000x",
            "3277013204800001",
            "3277011213800001",
            "3277017204800001",
        ] {
            assert!(Nik::parse(bad).is_err(), "{bad}");
        }
        // An unknown region prefix is fine: regions split and merge.
        assert!(Nik::parse("9999011204800001").is_ok());
    }

    #[test]
    fn region_codes_and_scopes() {
        let kelurahan = RegionCode::parse("32.77.01.1001").unwrap();
        assert!(RegionCode::parse("32.77.01").is_err());
        assert!(RegionCode::parse("32.77.1.1001").is_err());
        let city = RegionCode::parse_prefix("32.77").unwrap();
        assert!(city.covers(&kelurahan));
        assert!(
            RegionCode::parse_prefix("32.77.01")
                .unwrap()
                .covers(&kelurahan)
        );
        assert!(
            !RegionCode::parse_prefix("32.77.02")
                .unwrap()
                .covers(&kelurahan)
        );
        assert!(kelurahan.covers(&kelurahan), "a scope covers itself");
        let scopes: Vec<&str> = kelurahan.scopes().collect();
        assert_eq!(scopes, ["32", "32.77", "32.77.01", "32.77.01.1001"]);
        for scope in scopes {
            assert!(RegionCode::parse_prefix(scope).unwrap().covers(&kelurahan));
        }
        let next = RegionCode::parse("32.77.01.1002").unwrap();
        assert!(!kelurahan.covers(&next) && !next.covers(&kelurahan));
        assert!(!kelurahan.covers(&RegionCode::parse_prefix("32.77").unwrap()));
        // Segments have fixed widths, so "32.7" is no prefix of anything.
        assert!(RegionCode::parse_prefix("32.7").is_err());
    }

    #[test]
    fn slugs_roundtrip() {
        assert_eq!(PpksCategory::ALL.len(), 26);
        for c in PpksCategory::ALL {
            assert_eq!(PpksCategory::parse(c.as_str()), Ok(*c));
        }
        assert_eq!(Program::parse("gakinda"), Ok(Program::Gakinda));
        assert!(Program::parse("Gakinda").is_err());
    }

    #[test]
    fn who_may_add_which_event() {
        assert!(EventKind::Submitted.may_be_added_by(Role::Peksos));
        assert!(!EventKind::Approved.may_be_added_by(Role::Peksos));
        assert!(EventKind::Approved.may_be_added_by(Role::Supervisor));
        assert!(!EventKind::Withdrawn.may_be_added_by(Role::Supervisor));
        assert!(!EventKind::Closed.may_be_added_by(Role::Coordinator));
    }

    #[test]
    fn times_and_dates() {
        assert!(check_timestamp("2026-11-20T09:30:00Z").is_ok());
        assert!(check_timestamp("2026-11-20T09:30:00.123Z").is_ok());
        for bad in [
            "2026-11-20",
            "2026-11-20T09:30:00",
            "2026-11-20T09:30:00+07:00",
            "2026-02-30T09:30:00Z",
            "2026-11-20T25:30:00Z",
        ] {
            assert!(check_timestamp(bad).is_err(), "{bad}");
        }
        assert!(check_date("2028-02-29").is_ok());
        assert!(check_date("2026-02-29").is_err());
        assert!(check_date("2026-13-01").is_err());
    }

    #[test]
    fn timestamps_become_epoch_millis() {
        assert_eq!(timestamp_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            timestamp_millis("2026-11-20T09:30:00Z"),
            Some(1_795_167_000_000)
        );
        assert_eq!(
            timestamp_millis("2026-11-20T09:30:00.5Z"),
            Some(1_795_167_000_500)
        );
        assert_eq!(date_days("2000-03-01"), Some(11_017));
        assert_eq!(timestamp_millis("2026-11-20"), None);
        for t in [
            "1970-01-01T00:00:00Z",
            "2026-11-20T09:30:00Z",
            "2028-02-29T23:59:59Z",
        ] {
            assert_eq!(format_millis(timestamp_millis(t).unwrap()), t);
        }
    }
}
