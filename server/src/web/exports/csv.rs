//! CSV as spreadsheets read it: RFC 4180 quoting, CRLF line ends, UTF-8 with a byte-order mark
//! (without it Excel reads the file in the local code page and garbles every letter outside
//! ASCII), and no cell that a spreadsheet would run as a formula.
//!
//! Rows are encoded as they arrive from the database into a temporary file, in a blocking
//! task, so memory stays flat whatever the number of rows; the file is then sent
//! (`send.rs`).

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::sync::Arc;

use super::cells;
use crate::areas::AreaNames;
use crate::storage::export::{Column, RowStream};

const BOM: &str = "\u{feff}";

/// Writes the header line and every row into a temporary file (on a blocking thread) and
/// returns it, ready to read from its start, with its length. A database error mid-way fails
/// the whole export before anything is sent.
pub async fn build(
    columns: &'static [Column],
    rows: RowStream,
    areas: Arc<AreaNames>,
) -> anyhow::Result<(tokio::fs::File, u64)> {
    let file = tokio::task::spawn_blocking(move || write(columns, rows, &areas)).await??;
    let len = file.metadata()?.len();
    Ok((tokio::fs::File::from_std(file), len))
}

fn write(
    columns: &'static [Column],
    mut rows: RowStream,
    areas: &AreaNames,
) -> anyhow::Result<std::fs::File> {
    let mut out = BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?);
    let mut buf = String::from(BOM);
    line(&mut buf, columns.iter().map(|c| c.header.to_owned()));
    while let Some(row) = rows.blocking_recv() {
        let row = row?;
        let texts = columns
            .iter()
            .zip(&row)
            .map(|(c, cell)| cells::text(c.ty, cell, areas));
        line(&mut buf, texts);
        out.write_all(buf.as_bytes())?;
        buf.clear();
    }
    out.write_all(buf.as_bytes())?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Appends one line of cells, each guarded and quoted as needed, ended by CRLF.
fn line(buf: &mut String, cells: impl Iterator<Item = String>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            buf.push(',');
        }
        field(buf, &cell);
    }
    buf.push_str("\r\n");
}

fn field(buf: &mut String, value: &str) {
    // A spreadsheet runs a cell that starts with one of these as a formula (tab and CR are
    // stripped first by some), so such a value gets a leading apostrophe: shown as text.
    let guard = value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_number(value);
    let quote = guard || value.contains([',', '"', '\r', '\n']);
    if !quote {
        buf.push_str(value);
        return;
    }
    buf.push('"');
    if guard {
        buf.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            buf.push('"');
        }
        buf.push(c);
    }
    buf.push('"');
}

/// A plain negative number (a longitude) cannot run as a formula and stays a number.
fn is_number(value: &str) -> bool {
    value.parse::<f64>().is_ok_and(f64::is_finite)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> String {
        let mut buf = String::new();
        field(&mut buf, value);
        buf
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(one("Siti Aminah"), "Siti Aminah");
        assert_eq!(one("Jl. Mawar 5, RT 02"), "\"Jl. Mawar 5, RT 02\"");
        assert_eq!(one("kata \"ibu\""), "\"kata \"\"ibu\"\"\"");
        assert_eq!(one("baris 1\nbaris 2"), "\"baris 1\nbaris 2\"");
        assert_eq!(one(""), "");
    }

    #[test]
    fn formulas_become_text_and_numbers_stay_numbers() {
        assert_eq!(
            one("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(one("+62 812"), "\"'+62 812\"");
        assert_eq!(one("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(one("-1+1"), "\"'-1+1\"");
        assert_eq!(one("\tx"), "\"'\tx\"");
        assert_eq!(one("-6.8722"), "-6.8722");
        let mut buf = String::new();
        line(&mut buf, ["a".to_owned(), "b,c".to_owned()].into_iter());
        assert_eq!(buf, "a,\"b,c\"\r\n");
    }
}
