//! CSV as spreadsheets read it: RFC 4180 quoting, CRLF line ends, UTF-8 with a byte-order mark
//! (without it Excel reads the file in the local code page and garbles every letter outside
//! ASCII), and no cell that a spreadsheet would run as a formula.
//!
//! The body is a stream: rows are encoded as they arrive from the database and sent in chunks
//! of about [`CHUNK_BYTES`], so memory stays flat whatever the number of rows.

use axum::body::{Body, Bytes};
use tokio::sync::SemaphorePermit;
use tokio::sync::mpsc::error::TryRecvError;

use super::cells;
use crate::storage::export::{Cell, Column, RowStream};

/// A chunk is sent once it holds this much, or when no further row is ready.
const CHUNK_BYTES: usize = 32 * 1024;

const BOM: &str = "\u{feff}";

/// The response body: the header line, then every row as it streams in. A database error
/// mid-way ends the body with an error, so the client sees a broken transfer rather than a
/// file that looks complete.
pub fn body(columns: &'static [Column], rows: RowStream, permit: SemaphorePermit<'static>) -> Body {
    let mut first = String::from(BOM);
    line(&mut first, columns.iter().map(|c| c.header.to_owned()));
    let state = Encoder {
        columns,
        rows,
        pending: Some(first),
        done: false,
        _permit: permit,
    };
    Body::from_stream(futures_util::stream::unfold(state, Encoder::next_chunk))
}

struct Encoder {
    columns: &'static [Column],
    rows: RowStream,
    /// What is encoded and not yet sent.
    pending: Option<String>,
    done: bool,
    /// Held until the body ends: it counts this export as running.
    _permit: SemaphorePermit<'static>,
}

impl Encoder {
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.done {
            return None;
        }
        let mut buf = self.pending.take().unwrap_or_default();
        loop {
            // Wait for a row only when there is nothing to send yet.
            let next = if buf.is_empty() {
                self.rows.recv().await
            } else {
                match self.rows.try_recv() {
                    Ok(row) => Some(row),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => None,
                }
            };
            match next {
                Some(Ok(row)) => {
                    self.row(&mut buf, &row);
                    if buf.len() >= CHUNK_BYTES {
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::error!("export failed while streaming: {e}");
                    self.done = true;
                    return Some((Err(std::io::Error::other("export failed")), self));
                }
                None => {
                    self.done = true;
                    if buf.is_empty() {
                        return None;
                    }
                    break;
                }
            }
        }
        Some((Ok(Bytes::from(buf)), self))
    }

    fn row(&self, buf: &mut String, row: &[Cell]) {
        let texts = self
            .columns
            .iter()
            .zip(row)
            .map(|(c, cell)| cells::text(c.ty, cell));
        line(buf, texts);
    }
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
