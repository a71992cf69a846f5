//! What an export asks for, checked once: the kind the viewer's role may read, an area within
//! their scope, a date range in WIB.

use axum::http::StatusCode;
use fieldsync_core::schema::{RegionCode, Role, date_days};
use serde::Deserialize;

use crate::storage::export::{ExportKind, ExportQuery};
use crate::web::error::ApiError;
use crate::web::i18n::{Lang, WIB_OFFSET_MS, civil_from_days};
use crate::web::session::Viewer;

const DAY_MS: i64 = 86_400_000;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub const ALL: [Self; 2] = [Self::Csv, Self::Xlsx];

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// The query string of an export, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    #[serde(default)]
    pub area: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

/// An export the viewer may make.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub query: ExportQuery,
    pub format: Format,
    /// The dates as given, `YYYY-MM-DD`.
    pub from: String,
    pub to: String,
}

/// The kinds a role may export: those it may read (docs/schema.md).
pub fn kinds_for(role: Role) -> &'static [ExportKind] {
    match role {
        Role::Peksos | Role::Coordinator => &ExportKind::ALL,
        Role::Supervisor => &[ExportKind::Visits, ExportKind::Referrals],
        Role::Admin => &[],
    }
}

/// Why an export cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Administrators read no beneficiary data.
    Admin,
    /// The role may not read this kind of document.
    Kind(ExportKind),
    NoArea,
    BadArea(String),
    OutsideScope(RegionCode),
    /// The `from` or `to` parameter is missing or not a real date.
    BadDate(&'static str),
    Backwards,
}

impl Refused {
    /// As the API answers it.
    pub fn api(&self) -> ApiError {
        match self {
            Self::Admin => ApiError::forbidden(
                "administrators do not read beneficiaries' records, so they cannot export them",
            ),
            Self::Kind(kind) => ApiError::forbidden(format!(
                "your role may not read {}, so it cannot export them",
                kind.as_str()
            )),
            Self::NoArea => ApiError::invalid(
                "give an area, e.g. area=32.77.01 (a city, kecamatan or kelurahan code)",
            ),
            Self::BadArea(e) => ApiError::invalid(format!("area: {e}")),
            Self::OutsideScope(area) => {
                ApiError::forbidden(format!("the area {area} is outside your areas"))
            }
            Self::BadDate(name) => ApiError::invalid(format!(
                "give {name} as a date of the form YYYY-MM-DD, e.g. {name}=2026-11-01"
            )),
            Self::Backwards => ApiError::invalid("to must not be before from"),
        }
    }

    /// As a page says it.
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Self::Admin => lang
                .t(
                    "Administrator tidak membaca data penerima manfaat, jadi tidak dapat mengekspornya.",
                    "Administrators do not read beneficiaries' records, so they cannot export them.",
                )
                .to_owned(),
            Self::Kind(_) => lang
                .t(
                    "Peran Anda tidak dapat membaca data jenis ini, jadi tidak dapat mengekspornya.",
                    "Your role may not read this kind of record, so it cannot export it.",
                )
                .to_owned(),
            Self::NoArea | Self::BadArea(_) => lang
                .t("Pilih wilayah.", "Choose an area.")
                .to_owned(),
            Self::OutsideScope(area) => format!(
                "{} {area}",
                lang.t("Di luar wilayah Anda:", "Outside your areas:")
            ),
            Self::BadDate(_) => lang
                .t(
                    "Isi kedua tanggal dengan tanggal yang benar.",
                    "Fill in both dates with real dates.",
                )
                .to_owned(),
            Self::Backwards => lang
                .t(
                    "Tanggal akhir tidak boleh sebelum tanggal awal.",
                    "The end date must not be before the start date.",
                )
                .to_owned(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.api().status
    }
}

impl ExportRequest {
    /// Checks an export against the viewer's role and areas.
    pub fn check(
        viewer: &Viewer,
        kind: ExportKind,
        format: Format,
        params: &ExportParams,
    ) -> Result<Self, Refused> {
        match viewer.user.role {
            Role::Admin => return Err(Refused::Admin),
            role if !kinds_for(role).contains(&kind) => return Err(Refused::Kind(kind)),
            _ => {}
        }
        let area = params.area.trim();
        if area.is_empty() {
            return Err(Refused::NoArea);
        }
        let area = RegionCode::parse_prefix(area).map_err(|e| Refused::BadArea(e.to_string()))?;
        if !viewer.user.areas.iter().any(|scope| scope.covers(&area)) {
            return Err(Refused::OutsideScope(area));
        }
        let from = day(&params.from).ok_or(Refused::BadDate("from"))?;
        let to = day(&params.to).ok_or(Refused::BadDate("to"))?;
        if to < from {
            return Err(Refused::Backwards);
        }
        Ok(Self {
            query: ExportQuery {
                kind,
                scope: viewer.user.areas.clone(),
                area,
                from: from * DAY_MS - WIB_OFFSET_MS,
                until: (to + 1) * DAY_MS - WIB_OFFSET_MS,
            },
            format,
            from: params.from.trim().to_owned(),
            to: params.to.trim().to_owned(),
        })
    }

    /// The download's name, e.g. `kunjungan_32.77.01_2026-10-01_2026-11-30.csv`: Indonesian,
    /// like the headers inside.
    pub fn filename(&self) -> String {
        let stem = match self.query.kind {
            ExportKind::Visits => "kunjungan",
            ExportKind::Referrals => "rujukan",
            ExportKind::Outreach => "penyuluhan",
        };
        format!(
            "{stem}_{}_{}_{}.{}",
            self.query.area,
            self.from,
            self.to,
            self.format.extension()
        )
    }
}

/// Days since the epoch of a `YYYY-MM-DD` parameter.
fn day(value: &str) -> Option<i64> {
    date_days(value.trim())
}

/// A day (days since the epoch) as `YYYY-MM-DD`.
pub fn date_text(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today in WIB, in days since the epoch.
pub fn today() -> i64 {
    (crate::storage::now_millis() + WIB_OFFSET_MS).div_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::directory::User;

    fn viewer(role: Role, area: &str) -> Viewer {
        Viewer {
            user: User {
                id: "u".into(),
                name: "U".into(),
                role,
                areas: vec![RegionCode::parse_prefix(area).unwrap()],
                disabled: false,
            },
            lang: Lang::Id,
            csrf: None,
            credential: crate::web::session::Credential::ApiToken(String::new()),
            area_names: Default::default(),
        }
    }

    fn params(area: &str, from: &str, to: &str) -> ExportParams {
        ExportParams {
            area: area.into(),
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn the_range_covers_whole_days_in_wib() {
        let v = viewer(Role::Coordinator, "32.77.01");
        let p = params("32.77.01.1001", "2026-11-01", "2026-11-30");
        let r = ExportRequest::check(&v, ExportKind::Visits, Format::Csv, &p).unwrap();
        // 2026-11-01 00:00 WIB is 2026-10-31 17:00 UTC.
        assert_eq!(r.query.from, 1_793_466_000_000);
        assert_eq!(r.query.until - r.query.from, 30 * DAY_MS);
        assert_eq!(
            r.filename(),
            "kunjungan_32.77.01.1001_2026-11-01_2026-11-30.csv"
        );
    }

    #[test]
    fn scope_role_and_dates_are_checked() {
        let v = viewer(Role::Coordinator, "32.77.01");
        let check = |v: &Viewer, kind, p: ExportParams| {
            ExportRequest::check(v, kind, Format::Xlsx, &p).map_err(|e| e.status().as_u16())
        };
        let ok = params("32.77.01", "2026-11-01", "2026-11-01");
        assert!(check(&v, ExportKind::Outreach, ok).is_ok());
        let wider = params("32.77", "2026-11-01", "2026-11-01");
        assert_eq!(check(&v, ExportKind::Visits, wider).unwrap_err(), 403);
        let other = params("32.77.02", "2026-11-01", "2026-11-01");
        assert_eq!(check(&v, ExportKind::Visits, other).unwrap_err(), 403);
        let backwards = params("32.77.01", "2026-11-02", "2026-11-01");
        assert_eq!(check(&v, ExportKind::Visits, backwards).unwrap_err(), 400);
        let no_date = params("32.77.01", "2026-02-30", "2026-11-01");
        assert_eq!(check(&v, ExportKind::Visits, no_date).unwrap_err(), 400);
        let supervisor = viewer(Role::Supervisor, "32.77");
        let any = params("32.77", "2026-11-01", "2026-11-01");
        assert_eq!(
            check(&supervisor, ExportKind::Outreach, any).unwrap_err(),
            403
        );
        let admin = viewer(Role::Admin, "32.77");
        let any = params("32.77", "2026-11-01", "2026-11-01");
        assert_eq!(check(&admin, ExportKind::Visits, any).unwrap_err(), 403);
        assert_eq!(date_text(20_000), "2024-10-04");
    }
}
