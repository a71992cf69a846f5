//! Exports of visits, referrals and outreach notes as CSV or XLSX, for an area and a date
//! range, with Indonesian column headers: the page `/exports` and the API
//! `/api/exports/{kind}.{format}` it leads to.
//!
//! An export follows the read rules of the phones (its kind readable by the viewer's role, its
//! area within their scope), is written to the audit log with its row count before any row
//! leaves, and never sits whole in memory: rows come from the database one at a time through
//! a bounded channel into a temporary file (CSV, or a constant-memory workbook for XLSX),
//! which is then sent. Reading the database is bounded for the whole server; sending is
//! bounded per person and by a send timeout (`admission.rs`), so a client that stops reading
//! holds up no one else.

mod admission;
mod api;
mod cells;
mod csv;
mod page;
mod request;
mod send;
mod xlsx;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::api::ApiRoute;
use super::error::ApiError;
use super::session::Viewer;
use crate::AppState;
use crate::storage::export::{ExportKind, columns};
use crate::storage::{AuditEntry, Write, now_millis};
pub use admission::Admission;
use request::{ExportRequest, Format};

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route("/exports", get(page::form))
        .route("/exports/download", get(page::download))
}

pub(super) fn api_routes() -> Vec<ApiRoute> {
    api::routes()
}

/// Makes an export the viewer may make: counts and audits it, writes it, then sends it.
async fn export(
    state: &AppState,
    admission: &Arc<Admission>,
    viewer: &Viewer,
    request: ExportRequest,
) -> Response {
    match make(state, admission, viewer, &request).await {
        Ok(body) => {
            let disposition = format!("attachment; filename=\"{}\"", request.filename());
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(request.format.content_type()),
            );
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn make(
    state: &AppState,
    admission: &Arc<Admission>,
    viewer: &Viewer,
    request: &ExportRequest,
) -> Result<Response, ApiError> {
    let slot = admission.user_slot(&viewer.user.id)?;
    let reading = admission.reading().await?;
    let kind = request.query.kind;
    let rows = state.storage.export_count(&request.query).await?;
    if request.format == Format::Xlsx && rows > xlsx::MAX_ROWS {
        return Err(ApiError::invalid(format!(
            "{rows} rows do not fit in one worksheet; export CSV, or a shorter range"
        )));
    }
    audit(state, viewer, request, rows).await?;
    let stream = state.storage.export_rows(request.query.clone());
    let (file, len) = match request.format {
        Format::Csv => csv::build(columns(kind), stream, viewer.area_names.clone()).await,
        Format::Xlsx => {
            let names = viewer.area_names.clone();
            xlsx::build(sheet_name(kind), columns(kind), stream, names).await
        }
    }
    .map_err(ApiError::internal)?;
    // The database is done with; however slowly the client reads, it holds up only its own
    // person's exports.
    drop(reading);
    let mut response = send::body(file, slot).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

/// One line in the audit log, committed before the first row is sent: exports carry
/// personal data.
async fn audit(
    state: &AppState,
    viewer: &Viewer,
    request: &ExportRequest,
    rows: i64,
) -> Result<(), ApiError> {
    // A session is a person at a browser; no session means an API token.
    let channel = if viewer.csrf.is_some() { "web" } else { "api" };
    let q = &request.query;
    let entry = AuditEntry {
        at: now_millis(),
        device_id: format!("{channel}:{}", viewer.user.id),
        user_id: viewer.user.id.clone(),
        document_id: format!("export:{}", q.kind.as_str()),
        action: "export".into(),
        detail: format!(
            "area={} from={} to={} format={} rows={rows}",
            q.area,
            request.from,
            request.to,
            request.format.extension()
        ),
    };
    state.storage.write(&[Write::Audit(entry)]).await?;
    Ok(())
}

fn sheet_name(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Visits => "Kunjungan",
        ExportKind::Referrals => "Rujukan",
        ExportKind::Outreach => "Penyuluhan",
    }
}
