//! The names of Indonesia's administrative areas (Kemendagri codes: province, kabupaten/kota,
//! kecamatan, kelurahan/desa), as imported by `fieldsync areas import` into the `areas` table.
//!
//! Pages never show a bare code where a name is known: [`AreaNames::label`] gives the name, or
//! the code itself for an area not imported. The whole country (about 91,000 areas) is held
//! in one compact sorted table of about 2 MiB, read from the database at start and again
//! whenever another process has imported a new version ([`AreaBook::refresh`]).

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};

use crate::storage::areas::{AreaRow, AreaVersion};
use crate::storage::{Storage, StorageResult};

/// Every known area name, by code.
#[derive(Debug, Default)]
pub struct AreaNames {
    /// Sorted keys ([`key`]), one per area.
    keys: Vec<u64>,
    /// `ends[i]` is where the name of `keys[i]` ends in `text`; it starts where the previous
    /// one ends.
    ends: Vec<u32>,
    text: String,
}

/// A code as one number: its digits, with their count in the top byte so that `32` (a
/// province) and `0032` can never meet. `None` for text that is not a dotted region code of
/// any level (`32`, `32.77`, `32.77.02`, `32.77.02.1003`).
fn key(code: &str) -> Option<u64> {
    let level = code.matches('.').count();
    if level > 3 || !code_shape(code, level) {
        return None;
    }
    let mut value: u64 = 0;
    let mut digits: u64 = 0;
    for b in code.bytes().filter(u8::is_ascii_digit) {
        value = value * 10 + u64::from(b - b'0');
        digits += 1;
    }
    Some(value | (digits << 56))
}

const VALUE_MASK: u64 = (1 << 56) - 1;

/// The dotted code of a key: the digits grouped 2, 2, 2, 4.
fn code_of(key: u64) -> String {
    let digits = (key >> 56) as usize;
    let text = format!("{:0digits$}", key & VALUE_MASK);
    let mut code = String::with_capacity(digits + 3);
    for (i, c) in text.chars().enumerate() {
        if i > 0 && i % 2 == 0 && i <= 6 {
            code.push('.');
        }
        code.push(c);
    }
    code
}

impl AreaNames {
    pub fn from_rows(rows: impl IntoIterator<Item = AreaRow>) -> Self {
        let mut keyed: Vec<(u64, String)> = rows
            .into_iter()
            .filter_map(|r| Some((key(&r.code)?, r.name)))
            .collect();
        keyed.sort_unstable_by_key(|(k, _)| *k);
        keyed.dedup_by_key(|(k, _)| *k);
        let mut names = Self {
            keys: Vec::with_capacity(keyed.len()),
            ends: Vec::with_capacity(keyed.len()),
            text: String::new(),
        };
        for (k, name) in keyed {
            names.text.push_str(&name);
            names.keys.push(k);
            names
                .ends
                .push(u32::try_from(names.text.len()).unwrap_or(u32::MAX));
        }
        names.text.shrink_to_fit();
        names
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name of an area, if it has been imported.
    pub fn name(&self, code: &str) -> Option<&str> {
        let i = self.keys.binary_search(&key(code)?).ok()?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// The kecamatan and kelurahan/desa that lie in `scope` (a code of any level, itself
    /// included when it is one of those), in code order, with their names; at most `limit`.
    pub fn within(&self, scope: &str, limit: usize) -> Vec<(String, &str)> {
        let Some(scope_key) = key(scope) else {
            return Vec::new();
        };
        let (scope_digits, scope_value) = (scope_key >> 56, scope_key & VALUE_MASK);
        let mut found = Vec::new();
        for digits in [6u64, 10] {
            let Some(shift) = digits.checked_sub(scope_digits) else {
                continue;
            };
            let low = (scope_value * 10u64.pow(shift as u32)) | (digits << 56);
            let high = low + 10u64.pow(shift as u32);
            let start = self.keys.partition_point(|k| *k < low);
            for i in start..self.keys.len() {
                if self.keys[i] >= high || found.len() >= limit {
                    break;
                }
                let name_start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                found.push((
                    code_of(self.keys[i]),
                    &self.text[name_start..self.ends[i] as usize],
                ));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// What a page shows for an area: its name, or the code when none is known.
    pub fn label<'a>(&'a self, code: &'a str) -> &'a str {
        self.name(code).unwrap_or(code)
    }

    /// An area with the one above it, for a kelurahan or kecamatan shown out of context:
    /// `Karangmekar, Cimahi Tengah`.
    pub fn label_in_parent(&self, code: &str) -> String {
        let own = self.label(code);
        match code
            .rsplit_once('.')
            .and_then(|(parent, _)| self.name(parent))
        {
            Some(parent) if code.matches('.').count() >= 2 => format!("{own}, {parent}"),
            _ => own.to_owned(),
        }
    }
}

/// The names this process reads, kept current with the database.
#[derive(Debug, Default)]
pub struct AreaBook {
    current: RwLock<(AreaVersion, Arc<AreaNames>)>,
}

impl AreaBook {
    /// The names as last read.
    pub fn names(&self) -> Arc<AreaNames> {
        self.current.read().expect("area book lock").1.clone()
    }

    /// Reads the table again if it changed since the last read (another process or the CLI
    /// imported); cheap when it did not.
    pub async fn refresh(&self, storage: &dyn Storage) -> StorageResult<()> {
        let version = storage.areas_version().await?;
        if self.current.read().expect("area book lock").0 == version {
            return Ok(());
        }
        let names = Arc::new(AreaNames::from_rows(storage.area_rows().await?));
        *self.current.write().expect("area book lock") = (version, names);
        Ok(())
    }
}

/// Reads the table again every 30 s when it changed (an import by the CLI or another
/// process), until shutdown.
pub async fn keep_current(
    book: Arc<AreaBook>,
    storage: Arc<dyn Storage>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = book.refresh(storage.as_ref()).await {
                    tracing::warn!(error = %e, "cannot read the area names");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The levels of the dataset, in the order they are read: `(file, code column, name column)`
/// of the idn-area-data layout (`provinces.csv`, `regencies.csv`, `districts.csv`,
/// `villages.csv`, each with a `code` and a `name` column).
const FILES: [&str; 4] = [
    "provinces.csv",
    "regencies.csv",
    "districts.csv",
    "villages.csv",
];

/// Reads the area files of a directory (the idn-area-data layout).
pub fn read_dataset(dir: &Path) -> anyhow::Result<Vec<AreaRow>> {
    let mut sources = Vec::new();
    for file in FILES {
        let path = dir.join(file);
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {}: give the folder that holds {}",
                path.display(),
                FILES.join(", ")
            )
        })?;
        sources.push((path.display().to_string(), text));
    }
    parse_dataset(
        sources
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_slice())),
    )
}

/// Reads the four levels, provinces first, each named for its errors: every row is checked (a
/// code of its level in Kemendagri's dotted form whose parent is in the data, a name of 1–100
/// characters) before anything is returned, so a bad file imports nothing.
pub fn parse_dataset<'a>(
    levels: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> anyhow::Result<Vec<AreaRow>> {
    let mut rows: Vec<AreaRow> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for (level, (source, text)) in levels.into_iter().enumerate() {
        let mut reader = csv::Reader::from_reader(text);
        let headers = reader
            .headers()
            .with_context(|| format!("{source}: bad CSV"))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
                .with_context(|| format!("{source}: no `{name}` column"))
        };
        let (code_at, name_at) = (column("code")?, column("name")?);
        for (line, record) in reader.records().enumerate() {
            let at = || format!("{source} line {}", line + 2);
            let record = record.with_context(|| format!("{}: bad CSV", at()))?;
            let code = record.get(code_at).unwrap_or("").trim();
            let name = record.get(name_at).unwrap_or("").trim();
            if !code_shape(code, level) {
                bail!("{}: {code:?} is not a code of this level", at());
            }
            if let Some((parent, _)) = code.rsplit_once('.')
                && !known.contains(parent)
            {
                bail!(
                    "{}: {code} lies in {parent}, which is not in the data",
                    at()
                );
            }
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("{}: the name of {code} must be 1-100 characters", at());
            }
            known.insert(code.to_owned());
            rows.push(AreaRow {
                code: code.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    Ok(rows)
}

/// `32`, `32.77`, `32.77.02`, `32.77.02.1003` for levels 0 to 3.
fn code_shape(code: &str, level: usize) -> bool {
    const WIDTHS: [usize; 4] = [2, 2, 2, 4];
    let mut parts = 0;
    for (i, part) in code.split('.').enumerate() {
        if i > level || part.len() != WIDTHS[i] || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        parts += 1;
    }
    parts == level + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(code: &str, name: &str) -> AreaRow {
        AreaRow {
            code: code.into(),
            name: name.into(),
        }
    }

    #[test]
    fn names_are_found_by_code_at_every_level() {
        let names = AreaNames::from_rows([
            row("32.77.02.1003", "Karangmekar"),
            row("32", "Jawa Barat"),
            row("32.77", "Kota Cimahi"),
            row("32.77.02", "Cimahi Tengah"),
        ]);
        assert_eq!(names.len(), 4);
        assert_eq!(names.name("32"), Some("Jawa Barat"));
        assert_eq!(names.name("32.77"), Some("Kota Cimahi"));
        assert_eq!(names.label("32.77.02.1003"), "Karangmekar");
        assert_eq!(
            names.label_in_parent("32.77.02.1003"),
            "Karangmekar, Cimahi Tengah"
        );
        assert_eq!(names.label_in_parent("32.77"), "Kota Cimahi");
        // Not imported, or not a code: shown as it is.
        assert_eq!(names.label("32.77.02.1004"), "32.77.02.1004");
        assert_eq!(names.label("3277"), "3277");
        assert_eq!(names.label(""), "");

        let within: Vec<(String, &str)> = names.within("32.77", 10);
        assert_eq!(
            within,
            [
                ("32.77.02".to_owned(), "Cimahi Tengah"),
                ("32.77.02.1003".to_owned(), "Karangmekar")
            ]
        );
        assert_eq!(names.within("32.77.02.1003", 10).len(), 1);
        assert_eq!(names.within("32.77.01", 10).len(), 0);
        assert_eq!(names.within("32", 1).len(), 1);
    }

    #[test]
    fn only_codes_of_the_level_are_accepted() {
        assert!(code_shape("32", 0));
        assert!(code_shape("32.77", 1));
        assert!(code_shape("32.77.02", 2));
        assert!(code_shape("32.77.02.1003", 3));
        assert!(!code_shape("32.77.02.103", 3));
        assert!(!code_shape("32.77", 2));
        assert!(!code_shape("3x", 0));
    }

    #[test]
    fn a_dataset_with_an_orphan_or_a_bad_code_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, s: &str| std::fs::write(dir.path().join(f), s).unwrap();
        write("provinces.csv", "code,name\n32,Jawa Barat\n");
        write(
            "regencies.csv",
            "code,province_code,name\n32.77,32,Kota Cimahi\n",
        );
        write(
            "districts.csv",
            "code,regency_code,name\n32.77.02,32.77,Cimahi Tengah\n",
        );
        write(
            "villages.csv",
            "code,district_code,name\n32.77.02.1003,32.77.02,\"Karang\"\"mekar\"\n",
        );
        let rows = read_dataset(dir.path()).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3].name, "Karang\"mekar");

        write(
            "villages.csv",
            "code,district_code,name\n32.77.09.1003,32.77.09,Nowhere\n",
        );
        let err = read_dataset(dir.path()).unwrap_err().to_string();
        assert!(err.contains("32.77.09"), "{err}");

        write(
            "villages.csv",
            "code,district_code,name\n32.77.02.13,32.77.02,X\n",
        );
        let err = read_dataset(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
