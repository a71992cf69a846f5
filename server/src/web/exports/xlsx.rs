//! XLSX for Excel: NIK and KK numbers stay text (in CSV Excel turns them into 3.27702E+15),
//! times are real dates, the header row is bold and stays in view.
//!
//! The worksheet is in rust_xlsxwriter's constant-memory mode: each row goes to a temporary
//! file as soon as the next one starts, and strings are written inline instead of into a
//! shared-string table held in memory. The workbook is then saved to another temporary file,
//! which is sent as the body (`send.rs`); none of it is ever whole in memory.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::cells;
use crate::areas::AreaNames;
use crate::storage::export::{Cell, Column, ColumnType, RowStream};
use crate::web::i18n::WIB_OFFSET_MS;

/// The most rows a worksheet holds, after its header row.
pub const MAX_ROWS: i64 = 1_048_575;

/// Excel's limit on the length of a cell's text.
const MAX_CELL_CHARS: usize = 32_767;

/// Writes the workbook from `rows` (on a blocking thread: the writer does file IO) and returns
/// the saved file, ready to read from its start, with its length.
pub async fn build(
    sheet: &'static str,
    columns: &'static [Column],
    rows: RowStream,
    areas: Arc<AreaNames>,
) -> anyhow::Result<(tokio::fs::File, u64)> {
    let file = tokio::task::spawn_blocking(move || write(sheet, columns, rows, &areas)).await??;
    let len = file.metadata()?.len();
    Ok((tokio::fs::File::from_std(file), len))
}

fn write(
    sheet: &str,
    columns: &'static [Column],
    mut rows: RowStream,
    areas: &AreaNames,
) -> anyhow::Result<std::fs::File> {
    let mut workbook = Workbook::new();
    let worksheet = workbook.add_worksheet_with_constant_memory()?;
    worksheet.set_name(sheet)?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    for (i, column) in columns.iter().enumerate() {
        let i = i as u16;
        worksheet.set_column_width(i, column.width)?;
        worksheet.write_string_with_format(0, i, column.header, &bold)?;
    }
    worksheet.set_freeze_panes(1, 0)?;
    let mut row_number = 0u32;
    while let Some(row) = rows.blocking_recv() {
        let row = row?;
        row_number += 1;
        if i64::from(row_number) > MAX_ROWS {
            anyhow::bail!("more rows than a worksheet holds");
        }
        for (i, (column, cell)) in columns.iter().zip(&row).enumerate() {
            put(
                worksheet, row_number, i as u16, column.ty, cell, &date, areas,
            )?;
        }
    }
    let last_column = columns.len().saturating_sub(1) as u16;
    worksheet.autofilter(0, 0, row_number, last_column)?;
    let mut file = tempfile::tempfile()?;
    workbook.save_to_writer(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

fn put(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    ty: ColumnType,
    cell: &Cell,
    date: &Format,
    areas: &AreaNames,
) -> Result<(), XlsxError> {
    match (ty, cell) {
        (_, Cell::Empty) => {}
        (ColumnType::Time, Cell::Int(ms)) => {
            // Excel has no time zones: the cell holds the WIB wall-clock time.
            let local = ExcelDateTime::from_timestamp((ms + WIB_OFFSET_MS).div_euclid(1000))?;
            sheet.write_datetime_with_format(row, col, local, date)?;
        }
        (_, Cell::Int(n)) => {
            sheet.write_number(row, col, *n as f64)?;
        }
        (_, Cell::Real(x)) => {
            sheet.write_number(row, col, *x)?;
        }
        _ => {
            // Strings are written as strings, never as formulas, so no guard is needed here.
            let text = cells::text(ty, cell, areas);
            let text = match text.char_indices().nth(MAX_CELL_CHARS) {
                Some((cut, _)) => text[..cut].to_owned(),
                None => text,
            };
            sheet.write_string(row, col, text)?;
        }
    }
    Ok(())
}
