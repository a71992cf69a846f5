//! `GET /api/exports/{kind}.{format}`: one route per kind and format, so that each names the
//! one content type it answers with.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use super::Admission;
use super::request::{ExportParams, ExportRequest, Format};
use crate::AppState;
use crate::storage::export::{ExportKind, columns};
use crate::web::api::{ApiRoute, error_response};
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

/// Every export route: (kind, format, path). Paths are literals because routes keep them as
/// `&'static str`.
const ROUTES: [(ExportKind, Format, &str); 6] = [
    (ExportKind::Visits, Format::Csv, "/api/exports/visits.csv"),
    (ExportKind::Visits, Format::Xlsx, "/api/exports/visits.xlsx"),
    (
        ExportKind::Referrals,
        Format::Csv,
        "/api/exports/referrals.csv",
    ),
    (
        ExportKind::Referrals,
        Format::Xlsx,
        "/api/exports/referrals.xlsx",
    ),
    (
        ExportKind::Outreach,
        Format::Csv,
        "/api/exports/outreach.csv",
    ),
    (
        ExportKind::Outreach,
        Format::Xlsx,
        "/api/exports/outreach.xlsx",
    ),
];

pub fn routes() -> Vec<ApiRoute> {
    ROUTES
        .into_iter()
        .map(|(kind, format, path)| {
            let handler = move |State(state): State<Arc<AppState>>,
                                Extension(admission): Extension<Arc<Admission>>,
                                ApiUser(viewer): ApiUser,
                                RawQuery(query): RawQuery| async move {
                let params: ExportParams =
                    match serde_urlencoded::from_str(query.as_deref().unwrap_or_default()) {
                        Ok(p) => p,
                        Err(e) => return ApiError::invalid(format!("query: {e}")).into_response(),
                    };
                match ExportRequest::check(&viewer, kind, format, &params) {
                    Ok(request) => super::export(&state, &admission, &viewer, request).await,
                    Err(refused) => refused.api().into_response(),
                }
            };
            ApiRoute::new(Method::GET, path, get(handler), doc(kind, format))
        })
        .collect::<Vec<_>>()
}

fn doc(kind: ExportKind, format: Format) -> Value {
    let what = match kind {
        ExportKind::Visits => "visits",
        ExportKind::Referrals => "referrals",
        ExportKind::Outreach => "outreach notes",
    };
    let range = match kind {
        ExportKind::Visits => "visited",
        ExportKind::Referrals => "created",
        ExportKind::Outreach => "held",
    };
    let headers: Vec<&str> = columns(kind).iter().map(|c| c.header).collect();
    let (media, schema, shape) = match format {
        Format::Csv => (
            "text/csv",
            json!({"type": "string"}),
            "CSV: UTF-8 with a byte-order mark, comma-separated, RFC 4180 quoting, CRLF line \
             ends; a cell starting with =, +, -, @, tab or CR gets a leading apostrophe so that \
             spreadsheets show it as text.",
        ),
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            json!({"type": "string", "format": "binary"}),
            "XLSX: one worksheet, bold header row, times as dates, NIK and KK as text.",
        ),
    };
    let date = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "required": true, "description": description,
            "schema": {"type": "string", "format": "date"}
        })
    };
    json!({
        "summary": format!("Export {what} as {}", format.extension().to_uppercase()),
        "description": format!(
            "The {what} of an area {range} between two dates (inclusive, in WIB), oldest first, \
             with Indonesian column headers: {}. Times are YYYY-MM-DD HH:MM in WIB; free text \
             is the first 200 characters. Same read rules as the phones: the area must lie in \
             the caller's areas, supervisors cannot export outreach notes, administrators \
             nothing. Each export is written to the audit log with its row count, then \
             written whole on the server and sent with its length; a caller has at most two \
             exports running at once, and a download that takes no data for a minute is \
             dropped. {shape}",
            headers.join(", ")
        ),
        "tags": ["exports"],
        "parameters": [
            {
                "name": "area", "in": "query", "required": true,
                "description": "a city, kecamatan or kelurahan code within the caller's areas, e.g. 32.77.01",
                "schema": {"type": "string"}
            },
            date("from", "first day, YYYY-MM-DD"),
            date("to", "last day, YYYY-MM-DD")
        ],
        "responses": {
            "200": {
                "description": "the file, named e.g. kunjungan_32.77.01_2026-10-01_2026-11-30.csv",
                "headers": {
                    "Content-Disposition": {
                        "description": "attachment; filename=\"…\"",
                        "schema": {"type": "string"}
                    }
                },
                "content": {media: {"schema": schema}}
            },
            "400": error_response("a missing or malformed area or date, or a range ending before it starts"),
            "401": error_response("not signed in"),
            "403": error_response("the area is outside the caller's areas, or their role may not read this kind"),
            "429": error_response("two exports of the caller are still running; wait for one to finish"),
            "503": error_response("other exports are reading the database; try again in a minute")
        }
    })
}
