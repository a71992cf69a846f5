//! Exports: the rows of one query table for an area and a time range, streamed out of the
//! database rather than collected, so that an export of any size holds one row at a time.
//!
//! The columns of each export are listed once, in [`columns`]: the SQL expression that reads
//! a column and the Indonesian header it goes under stay side by side. The SQL is the same on
//! both backends; [`export_impl`] instantiates [`Exports`] for each.

use fieldsync_core::schema::{DocKind, RegionCode};
use tokio::sync::mpsc;

use super::query::Sql;
use super::{BoxFuture, StorageResult};

/// What is exported: one query table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    Visits,
    Referrals,
    Outreach,
}

impl ExportKind {
    pub const ALL: [Self; 3] = [Self::Visits, Self::Referrals, Self::Outreach];

    /// The slug in URLs: `visits`, `referrals`, `outreach`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visits => "visits",
            Self::Referrals => "referrals",
            Self::Outreach => "outreach",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The type of the documents the rows come from, for the read rules.
    pub fn doc_kind(self) -> DocKind {
        match self {
            Self::Visits => DocKind::Visit,
            Self::Referrals => DocKind::Referral,
            Self::Outreach => DocKind::Outreach,
        }
    }

    fn table(self) -> &'static str {
        self.as_str()
    }

    /// The time the date range applies to: when the visit or outreach took place, when the
    /// referral was made.
    fn time_column(self) -> &'static str {
        match self {
            Self::Visits => "visited_at",
            Self::Referrals => "created_at",
            Self::Outreach => "held_at",
        }
    }
}

/// How a column's values are read and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// Milliseconds since the epoch, shown as a date and time in WIB.
    Time,
    Int,
    Real,
    /// Shown as Ya / Tidak.
    Bool,
    /// PPKS slugs stored as `|a|b|`.
    Ppks,
    /// A program slug, shown by its name.
    Program,
    /// A referral status slug, shown in Indonesian.
    Status,
    /// A kelurahan code, shown by its name (`crate::areas`).
    AreaName,
    /// A kelurahan code, shown by the name of its kecamatan.
    KecamatanName,
}

/// One column of an export.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// A column of the table, or a constant SQL expression over it.
    pub sql: &'static str,
    /// The header, in Indonesian: exports go to Dinas reports whatever the page language.
    pub header: &'static str,
    pub ty: ColumnType,
    /// Width in the spreadsheet, in characters.
    pub width: u16,
}

const fn col(sql: &'static str, header: &'static str, ty: ColumnType, width: u16) -> Column {
    Column {
        sql,
        header,
        ty,
        width,
    }
}

use ColumnType as T;

const VISITS: &[Column] = &[
    col("document_id", "ID Dokumen", T::Text, 30),
    col("area", "Kode Wilayah", T::Text, 14),
    col("area", "Kelurahan/Desa", T::AreaName, 20),
    col("area", "Kecamatan", T::KecamatanName, 18),
    col("created_by", "ID Petugas", T::Text, 20),
    col(WORKER_NAME, "Nama Petugas", T::Text, 24),
    col("created_at", "Dibuat (WIB)", T::Time, 17),
    col("visited_at", "Tanggal Kunjungan (WIB)", T::Time, 22),
    col("nik", "NIK", T::Text, 18),
    col("kk", "No. KK", T::Text, 18),
    col("name", "Nama", T::Text, 24),
    col("ppks", "Kategori PPKS", T::Ppks, 30),
    col("purpose", "Tujuan", T::Text, 24),
    col("follow_up_on", "Tindak Lanjut", T::Text, 13),
    col("lat", "Lintang", T::Real, 10),
    col("lon", "Bujur", T::Real, 10),
    col("notes_excerpt", "Catatan", T::Text, 50),
];

/// The name of the worker who made the record.
const WORKER_NAME: &str = "(SELECT u.name FROM users u WHERE u.id = created_by)";

/// The note of the latest applied decision, e.g. why a referral was rejected.
const DECISION_NOTE: &str = "(SELECT e.note FROM referral_events e \
     WHERE e.document_id = referrals.document_id AND e.applied AND e.note IS NOT NULL \
     AND e.kind IN ('accepted', 'needs-documents', 'approved', 'rejected', 'enrolled', 'closed') \
     ORDER BY e.seq DESC LIMIT 1)";

const REFERRALS: &[Column] = &[
    col("document_id", "ID Dokumen", T::Text, 30),
    col("area", "Kode Wilayah", T::Text, 14),
    col("area", "Kelurahan/Desa", T::AreaName, 20),
    col("area", "Kecamatan", T::KecamatanName, 18),
    col("created_by", "ID Petugas", T::Text, 20),
    col(WORKER_NAME, "Nama Petugas", T::Text, 24),
    col("created_at", "Dibuat (WIB)", T::Time, 17),
    col("nik", "NIK", T::Text, 18),
    col("kk", "No. KK", T::Text, 18),
    col("name", "Nama", T::Text, 24),
    col("ppks", "Kategori PPKS", T::Ppks, 30),
    col("program", "Program", T::Program, 11),
    col("status", "Status", T::Status, 14),
    col("consent_given", "Persetujuan", T::Bool, 11),
    col("doc_ktp", "KTP", T::Bool, 6),
    col("doc_kk", "KK", T::Bool, 6),
    col("doc_sktm", "SKTM", T::Bool, 6),
    col("doc_surat_puskesmas", "Surat Puskesmas", T::Bool, 15),
    col("reason_excerpt", "Alasan", T::Text, 40),
    col("submitted_at", "Diajukan (WIB)", T::Time, 17),
    col("decided_at", "Diputuskan (WIB)", T::Time, 17),
    col(DECISION_NOTE, "Catatan Keputusan", T::Text, 36),
    col("visit_id", "Kunjungan Asal", T::Text, 30),
];

const OUTREACH: &[Column] = &[
    col("document_id", "ID Dokumen", T::Text, 30),
    col("area", "Kode Wilayah", T::Text, 14),
    col("area", "Kelurahan/Desa", T::AreaName, 20),
    col("area", "Kecamatan", T::KecamatanName, 18),
    col("created_by", "ID Petugas", T::Text, 20),
    col(WORKER_NAME, "Nama Petugas", T::Text, 24),
    col("created_at", "Dibuat (WIB)", T::Time, 17),
    col("topic", "Topik", T::Text, 30),
    col("held_at", "Tanggal (WIB)", T::Time, 17),
    col("place", "Tempat", T::Text, 24),
    col("attendees", "Jumlah Peserta", T::Int, 14),
    col("notes_excerpt", "Catatan", T::Text, 50),
];

/// The columns of an export, in order.
pub fn columns(kind: ExportKind) -> &'static [Column] {
    match kind {
        ExportKind::Visits => VISITS,
        ExportKind::Referrals => REFERRALS,
        ExportKind::Outreach => OUTREACH,
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
}

/// Which rows to export. The caller has checked that `area` lies within `scope`; the query
/// applies both anyway.
#[derive(Debug, Clone)]
pub struct ExportQuery {
    pub kind: ExportKind,
    /// The viewer's areas.
    pub scope: Vec<RegionCode>,
    /// The area asked for: a city, kecamatan or kelurahan code.
    pub area: RegionCode,
    /// Epoch milliseconds, inclusive.
    pub from: i64,
    /// Epoch milliseconds, exclusive.
    pub until: i64,
}

/// Rows as they arrive from the database, in the order of [`columns`]; an `Err` ends the
/// stream.
pub type RowStream = mpsc::Receiver<StorageResult<Vec<Cell>>>;

/// Rows in flight between the database task and the response.
pub const ROW_BUFFER: usize = 256;

pub trait Exports {
    /// How many rows the export holds now.
    fn export_count<'a>(&'a self, query: &'a ExportQuery) -> BoxFuture<'a, i64>;

    /// Streams the rows, oldest first, from a task of its own with one pooled connection;
    /// the task stops when the receiver is dropped.
    fn export_rows(&self, query: ExportQuery) -> RowStream;

    /// The distinct area codes with any rows of these kinds within `scope`.
    fn export_areas<'a>(
        &'a self,
        scope: &'a [RegionCode],
        kinds: &'a [ExportKind],
    ) -> BoxFuture<'a, Vec<String>>;
}

fn filtered(select: &str, query: &ExportQuery) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" FROM ")
        .push(query.kind.table())
        .push(" WHERE ")
        .in_scope("area", &query.scope)
        .push(" AND ")
        .in_scope("area", std::slice::from_ref(&query.area))
        .push(" AND ")
        .push(query.kind.time_column())
        .push(" >= ")
        .int(query.from)
        .push(" AND ")
        .push(query.kind.time_column())
        .push(" < ")
        .int(query.until);
    sql
}

/// The SELECT of an export (constants and placeholders only).
pub(super) fn rows_sql(query: &ExportQuery) -> Sql {
    let list: Vec<&str> = columns(query.kind).iter().map(|c| c.sql).collect();
    let mut sql = filtered(&format!("SELECT {}", list.join(", ")), query);
    sql.push(" ORDER BY ")
        .push(query.kind.time_column())
        .push(", document_id");
    sql
}

pub(super) fn count_sql(query: &ExportQuery) -> Sql {
    filtered("SELECT COUNT(*)", query)
}

pub(super) fn areas_sql(scope: &[RegionCode], kinds: &[ExportKind]) -> Sql {
    let mut sql = Sql::new("SELECT DISTINCT area FROM (");
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ");
        }
        sql.push("SELECT area FROM ")
            .push(kind.table())
            .push(" WHERE ")
            .in_scope("area", scope);
    }
    if kinds.is_empty() {
        sql.push("SELECT area FROM visits WHERE 1 = 0");
    }
    sql.push(") AS areas ORDER BY area");
    sql
}

/// Implements [`Exports`] for a backend type with a `pool` field.
macro_rules! export_impl {
    ($storage:ty) => {
        impl $crate::storage::export::Exports for $storage {
            fn export_count<'a>(
                &'a self,
                query: &'a $crate::storage::export::ExportQuery,
            ) -> $crate::storage::BoxFuture<'a, i64> {
                Box::pin(async move {
                    let sql = $crate::storage::export::count_sql(query);
                    let (n,): (i64,) = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(n)
                })
            }

            fn export_rows(
                &self,
                query: $crate::storage::export::ExportQuery,
            ) -> $crate::storage::export::RowStream {
                use futures_util::StreamExt;
                use sqlx::Row;
                use $crate::storage::export::{Cell, ColumnType};

                let (tx, rx) = tokio::sync::mpsc::channel($crate::storage::export::ROW_BUFFER);
                let pool = self.pool.clone();
                tokio::spawn(async move {
                    let columns = $crate::storage::export::columns(query.kind);
                    let sql = $crate::storage::export::rows_sql(&query);
                    let q = $crate::storage::query::bind_args!(
                        sqlx::query(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    );
                    let mut rows = q.fetch(&pool);
                    while let Some(row) = rows.next().await {
                        let cells = row.and_then(|row| {
                            columns
                                .iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    Ok(match c.ty {
                                        ColumnType::Time | ColumnType::Int => row
                                            .try_get::<Option<i64>, _>(i)?
                                            .map_or(Cell::Empty, Cell::Int),
                                        ColumnType::Real => row
                                            .try_get::<Option<f64>, _>(i)?
                                            .map_or(Cell::Empty, Cell::Real),
                                        ColumnType::Bool => row
                                            .try_get::<Option<bool>, _>(i)?
                                            .map_or(Cell::Empty, Cell::Bool),
                                        ColumnType::Text
                                        | ColumnType::Ppks
                                        | ColumnType::Program
                                        | ColumnType::Status
                                        | ColumnType::AreaName
                                        | ColumnType::KecamatanName => row
                                            .try_get::<Option<String>, _>(i)?
                                            .map_or(Cell::Empty, Cell::Text),
                                    })
                                })
                                .collect::<Result<Vec<_>, sqlx::Error>>()
                        });
                        let failed = cells.is_err();
                        if tx.send(cells.map_err(Into::into)).await.is_err() || failed {
                            // The response was dropped (the client went away), or the
                            // stream ends with its error.
                            return;
                        }
                    }
                });
                rx
            }

            fn export_areas<'a>(
                &'a self,
                scope: &'a [fieldsync_core::schema::RegionCode],
                kinds: &'a [$crate::storage::export::ExportKind],
            ) -> $crate::storage::BoxFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let sql = $crate::storage::export::areas_sql(scope, kinds);
                    let rows: Vec<(String,)> = $crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }
        }
    };
}

pub(super) use export_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_scoped_twice_and_ranged() {
        let query = ExportQuery {
            kind: ExportKind::Outreach,
            scope: vec![RegionCode::parse_prefix("32.77").unwrap()],
            area: RegionCode::parse_prefix("32.77.01").unwrap(),
            from: 10,
            until: 20,
        };
        let sql = rows_sql(&query);
        assert_eq!(
            sql.text,
            "SELECT document_id, area, area, area, created_by, (SELECT u.name FROM users u \
             WHERE u.id = created_by), created_at, topic, held_at, place, attendees, \
             notes_excerpt FROM outreach WHERE (area = $1 OR area LIKE $2) AND (area = $3 OR \
             area LIKE $4) AND held_at >= $5 AND held_at < $6 ORDER BY held_at, document_id"
        );
        assert_eq!(sql.args.len(), 6);
        let areas = areas_sql(&query.scope, &[ExportKind::Visits, ExportKind::Referrals]);
        assert!(areas.text.contains("FROM visits WHERE (area = $1"));
        assert!(
            areas
                .text
                .contains("UNION SELECT area FROM referrals WHERE (area = $3")
        );
        for kind in ExportKind::ALL {
            assert_eq!(ExportKind::parse(kind.as_str()), Some(kind));
        }
    }
}
