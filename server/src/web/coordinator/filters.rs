//! The filters of the activity feed, as they travel in the URL query (so a filtered view is a
//! link), parsed once into values the storage query takes.

use axum::http::StatusCode;
use fieldsync_core::schema::{DocKind, PpksCategory, Program, RegionCode, date_days};
use fieldsync_protocol::DocumentId;
use serde::{Deserialize, Serialize};

use super::super::error::ApiError;
use super::super::i18n::{Lang, WIB_OFFSET_MS};
use super::super::session::Viewer;
use crate::storage::activity::{Cursor, FeedFilter, FeedRow, Scope};

/// Rows per page of the feed.
pub const PAGE: i64 = 50;
/// Most rows an API caller may ask for at once.
pub const MAX_LIMIT: i64 = 200;

const DAY_MS: i64 = 86_400_000;

/// The query of `/activity` and `/api/activity`, as written in the URL. Blank fields (an
/// unchosen select of the filter form) mean "any".
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FeedParams {
    pub area: Option<String>,
    pub worker: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub ppks: Option<String>,
    pub program: Option<String>,
    pub cursor: Option<String>,
    /// API only: rows per page.
    #[serde(skip_serializing)]
    pub limit: Option<String>,
}

impl FeedParams {
    /// The same query without blank fields.
    pub fn normalized(&self) -> Self {
        let keep = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            area: keep(&self.area),
            worker: keep(&self.worker),
            from: keep(&self.from),
            to: keep(&self.to),
            kind: keep(&self.kind),
            ppks: keep(&self.ppks),
            program: keep(&self.program),
            cursor: keep(&self.cursor),
            limit: keep(&self.limit),
        }
    }

    /// `?…` of this query with another cursor (`None`: the newest page).
    pub fn with_cursor(&self, cursor: Option<String>) -> String {
        let q = Self {
            cursor,
            ..self.normalized()
        };
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }

    /// Whether any filter (not paging) is set.
    pub fn filtered(&self) -> bool {
        let n = self.normalized();
        [
            &n.area, &n.worker, &n.from, &n.to, &n.kind, &n.ppks, &n.program,
        ]
        .iter()
        .any(|v| v.is_some())
    }
}

/// Why a query was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a value of that filter: the Indonesian and English message.
    Invalid(String, String),
    /// The area lies outside every area of the viewer.
    OutOfScope(String),
}

impl Refusal {
    fn invalid(id: impl Into<String>, en: impl Into<String>) -> Self {
        Self::Invalid(id.into(), en.into())
    }

    pub fn message(&self, lang: Lang) -> String {
        match self {
            Self::Invalid(id, en) => lang.t(id, en).to_owned(),
            Self::OutOfScope(area) => match lang {
                Lang::Id => format!("Wilayah {area} berada di luar wilayah kerja Anda"),
                Lang::En => format!("area {area} is outside your areas"),
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(..) => StatusCode::BAD_REQUEST,
            Self::OutOfScope(_) => StatusCode::FORBIDDEN,
        }
    }

    pub fn api(&self) -> ApiError {
        match self {
            Self::Invalid(..) => ApiError::invalid(self.message(Lang::En)),
            Self::OutOfScope(_) => ApiError::forbidden(self.message(Lang::En)),
        }
    }
}

/// Start (inclusive) of a `YYYY-MM-DD` day in WIB, in epoch milliseconds.
pub fn day_start(date: &str) -> Option<i64> {
    date_days(date).map(|d| d * DAY_MS - WIB_OFFSET_MS)
}

/// Today's date in WIB, as days since the epoch.
pub fn today_days(now: i64) -> i64 {
    (now + WIB_OFFSET_MS).div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of a day count.
pub fn date_text(days: i64) -> String {
    let (y, m, d) = super::super::i18n::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A `from`/`to` pair as an epoch-millisecond range, `to` inclusive.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), Refusal> {
    // `field` is the parameter's name (English, as in the URL) and its name in Indonesian.
    let parse = |field: (&str, &str), v: Option<&str>| -> Result<Option<i64>, Refusal> {
        v.map(|s| {
            day_start(s).ok_or_else(|| {
                Refusal::invalid(
                    format!(
                        "Tanggal {} harus berbentuk TTTT-BB-HH, misalnya 2026-11-20",
                        field.1
                    ),
                    format!("{} must be a date like 2026-11-20", field.0),
                )
            })
        })
        .transpose()
    };
    let from = parse(("from", "mulai"), from)?;
    let until = parse(("to", "akhir"), to)?.map(|t| t + DAY_MS);
    if let (Some(f), Some(u)) = (from, until)
        && f >= u
    {
        return Err(Refusal::invalid(
            "Tanggal mulai harus sebelum atau sama dengan tanggal akhir",
            "from must not be after to",
        ));
    }
    Ok((from, until))
}

/// The cursor of the page after `row` (the feed's order: when the server received it).
pub fn cursor_after(row: &FeedRow) -> String {
    format!("{}_{}", row.received_at, row.document_id)
}

fn parse_cursor(s: &str) -> Option<Cursor> {
    let (at, doc) = s.split_once('_')?;
    Some(Cursor {
        at: at.parse().ok()?,
        doc: DocumentId::parse(doc).ok()?.to_string(),
    })
}

/// The storage filter of a query, for the viewer. `limit` is one more than the page, to
/// learn whether an older page exists.
pub fn feed_filter(
    viewer: &Viewer,
    scope: Scope,
    params: &FeedParams,
    page: i64,
) -> Result<FeedFilter, Refusal> {
    let p = params.normalized();
    let mut f = FeedFilter::new(scope, page + 1);
    if let Some(area) = &p.area {
        let code = RegionCode::parse_prefix(area).map_err(|_| {
            Refusal::invalid(
                "Wilayah harus berupa kode wilayah, misalnya 32.77.01 atau 32.77.01.1001",
                "area must be a region code like 32.77.01 or 32.77.01.1001",
            )
        })?;
        let overlaps = viewer
            .user
            .areas
            .iter()
            .any(|s| s.covers(&code) || code.covers(s));
        if !overlaps {
            return Err(Refusal::OutOfScope(area.clone()));
        }
        f.area = Some(code);
    }
    if let Some(worker) = &p.worker {
        if worker.chars().count() > 100 {
            return Err(Refusal::invalid(
                "ID petugas terlalu panjang",
                "worker is too long",
            ));
        }
        f.worker = Some(worker.clone());
    }
    (f.from, f.until) = date_range(p.from.as_deref(), p.to.as_deref())?;
    if let Some(kind) = &p.kind {
        f.kind = Some(match kind.as_str() {
            "visit" => DocKind::Visit,
            "referral" => DocKind::Referral,
            "outreach" => DocKind::Outreach,
            _ => {
                return Err(Refusal::invalid(
                    "Jenis harus visit, referral, atau outreach",
                    "type must be visit, referral or outreach",
                ));
            }
        });
    }
    if let Some(ppks) = &p.ppks {
        f.ppks = Some(PpksCategory::parse(ppks).map_err(|_| {
            Refusal::invalid(
                "Kategori PPKS tidak dikenal",
                "ppks must be a PPKS category slug, e.g. fakir-miskin",
            )
        })?);
    }
    if let Some(program) = &p.program {
        f.program = Some(Program::parse(program).map_err(|_| {
            Refusal::invalid(
                "Program tidak dikenal",
                "program must be a program slug, e.g. kis-pbi",
            )
        })?);
    }
    if let Some(cursor) = &p.cursor {
        f.before = Some(parse_cursor(cursor).ok_or_else(|| {
            Refusal::invalid(
                "Penanda halaman tidak sah; buka lagi halaman terbaru",
                "cursor is not valid; start again from the newest page",
            )
        })?);
    }
    Ok(f)
}

/// Rows per page an API caller asked for.
pub fn api_limit(params: &FeedParams) -> Result<i64, Refusal> {
    match params.normalized().limit {
        None => Ok(PAGE),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Refusal::invalid(
                    format!("Parameter limit harus 1 sampai {MAX_LIMIT}"),
                    format!("limit must be 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_wib_days_and_to_is_inclusive() {
        // 2026-11-20 00:00 WIB is 2026-11-19T17:00:00Z.
        let (from, until) = date_range(Some("2026-11-20"), Some("2026-11-20")).unwrap();
        assert_eq!(
            fieldsync_core::schema::format_millis(from.unwrap()),
            "2026-11-19T17:00:00Z"
        );
        assert_eq!(until.unwrap() - from.unwrap(), DAY_MS);
        assert!(date_range(Some("2026-11-21"), Some("2026-11-20")).is_err());
        assert!(date_range(Some("2026-02-30"), None).is_err());
        assert_eq!(date_text(today_days(from.unwrap())), "2026-11-20");
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let doc = DocumentId::from_bytes([7; 16]).to_string();
        let c = parse_cursor(&format!("1795487400000_{doc}")).unwrap();
        assert_eq!(c.at, 1_795_487_400_000);
        assert_eq!(c.doc, doc);
        assert!(parse_cursor("12_notanid").is_none());
        assert!(parse_cursor("x_").is_none());
    }

    #[test]
    fn links_keep_filters_and_drop_blanks() {
        let p = FeedParams {
            area: Some("32.77.01".into()),
            worker: Some(String::new()),
            kind: Some("visit".into()),
            limit: Some("5".into()),
            ..Default::default()
        };
        assert_eq!(
            p.with_cursor(Some("9_x".into())),
            "area=32.77.01&type=visit&cursor=9_x"
        );
        assert!(p.filtered());
        assert!(!FeedParams::default().filtered());
    }
}
