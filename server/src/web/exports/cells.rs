//! Values as a Dinas report shows them: times in WIB, yes and no, statuses, programs, PPKS
//! categories and areas by their Indonesian names.

use crate::areas::AreaNames;
use crate::storage::export::{Cell, ColumnType};
use crate::web::i18n::{Lang, WIB_OFFSET_MS, civil_from_days};
use crate::web::labels;

/// The text of a cell in a column of type `ty`.
pub fn text(ty: ColumnType, cell: &Cell, areas: &AreaNames) -> String {
    match (ty, cell) {
        (_, Cell::Empty) => String::new(),
        (ColumnType::Time, Cell::Int(ms)) => wib(*ms),
        (_, Cell::Int(n)) => n.to_string(),
        (_, Cell::Real(x)) => x.to_string(),
        (_, Cell::Bool(b)) => yes_no(*b).to_owned(),
        (ColumnType::Ppks, Cell::Text(s)) => ppks(s),
        (ColumnType::Program, Cell::Text(s)) => program(s).to_owned(),
        (ColumnType::Status, Cell::Text(s)) => status(s).to_owned(),
        (ColumnType::AreaName, Cell::Text(s)) => areas.name(s).unwrap_or_default().to_owned(),
        (ColumnType::KecamatanName, Cell::Text(s)) => s
            .rsplit_once('.')
            .and_then(|(kecamatan, _)| areas.name(kecamatan))
            .unwrap_or_default()
            .to_owned(),
        (_, Cell::Text(s)) => s.clone(),
    }
}

/// `YYYY-MM-DD HH:MM` in WIB.
pub fn wib(ms: i64) -> String {
    let local = ms + WIB_OFFSET_MS;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400_000));
    let minutes = local.rem_euclid(86_400_000) / 60_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "Ya" } else { "Tidak" }
}

/// `|a|b|` as `Fakir miskin; Lanjut usia terlantar`.
fn ppks(stored: &str) -> String {
    stored
        .split('|')
        .filter(|s| !s.is_empty())
        .map(|s| labels::ppks_label(Lang::Id, s))
        .collect::<Vec<_>>()
        .join("; ")
}

fn program(slug: &str) -> &str {
    labels::program_label(Lang::Id, slug)
}

fn status(slug: &str) -> &str {
    match slug {
        "draft" => "Draf",
        "submitted" => "Diajukan",
        "accepted" => "Diterima",
        "needs-documents" => "Perlu dokumen",
        "approved" => "Disetujui",
        "rejected" => "Ditolak",
        "enrolled" => "Terdaftar",
        "withdrawn" => "Ditarik",
        "closed" => "Ditutup",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_in_a_report() {
        // 2026-11-24T02:30:00Z is 09.30 WIB.
        let t = Cell::Int(1_795_487_400_000);
        let areas = AreaNames::from_rows([
            crate::storage::areas::AreaRow {
                code: "32.77.02".into(),
                name: "Cimahi Tengah".into(),
            },
            crate::storage::areas::AreaRow {
                code: "32.77.02.1003".into(),
                name: "Karangmekar".into(),
            },
        ]);
        let text = |ty, cell: &Cell| text(ty, cell, &areas);
        assert_eq!(text(ColumnType::Time, &t), "2026-11-24 09:30");
        let area = Cell::Text("32.77.02.1003".into());
        assert_eq!(text(ColumnType::AreaName, &area), "Karangmekar");
        assert_eq!(text(ColumnType::KecamatanName, &area), "Cimahi Tengah");
        assert_eq!(text(ColumnType::Text, &area), "32.77.02.1003");
        let unknown = Cell::Text("32.77.09.1001".into());
        assert_eq!(text(ColumnType::AreaName, &unknown), "");
        assert_eq!(text(ColumnType::Int, &Cell::Int(25)), "25");
        assert_eq!(text(ColumnType::Real, &Cell::Real(-6.8722)), "-6.8722");
        assert_eq!(text(ColumnType::Bool, &Cell::Bool(false)), "Tidak");
        let ppks_cell = Cell::Text("|fakir-miskin|lansia-terlantar|".into());
        assert_eq!(
            text(ColumnType::Ppks, &ppks_cell),
            "Fakir miskin; Lanjut usia terlantar"
        );
        let status_cell = Cell::Text("needs-documents".into());
        assert_eq!(text(ColumnType::Status, &status_cell), "Perlu dokumen");
        assert_eq!(
            text(ColumnType::Program, &Cell::Text("kis-pbi".into())),
            "KIS-PBI"
        );
        assert_eq!(text(ColumnType::Text, &Cell::Empty), "");
    }
}
