//! Exports of visits, referrals and outreach notes as CSV or XLSX, for an area and a date
//! range, with Indonesian column headers: the page `/exports` and the API
//! `/api/exports/{kind}.{format}` it leads to.
//!
//! An export follows the read rules of the phones (its kind readable by the viewer's role, its
//! area within their scope), is written to the audit log with its row count before any row
//! leaves, and streams: rows come from the database one at a time through a bounded channel
//! into the response (CSV) or into a constant-memory workbook on disk (XLSX).

mod api;
mod cells;
mod csv;
mod page;
mod request;
mod xlsx;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::api::ApiRoute;
use super::error::ApiError;
use super::session::Viewer;
use crate::AppState;
use crate::storage::export::{ExportKind, columns};
use crate::storage::{AuditEntry, Write, now_millis};
use request::{ExportRequest, Format};

/// Exports running at once: each holds a database connection while it streams, and the
/// SQLite pool has four, which phones' changes need too.
static RUNNING: Semaphore = Semaphore::const_new(2);

/// How long an export waits for another to finish before it is turned away.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route("/exports", get(page::form))
        .route("/exports/download", get(page::download))
}

pub(super) fn api_routes() -> Vec<ApiRoute> {
    api::routes()
}

/// Makes an export the viewer may make: counts and audits it, then streams it.
async fn export(state: &AppState, viewer: &Viewer, request: ExportRequest) -> Response {
    match stream(state, viewer, &request).await {
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

async fn stream(
    state: &AppState,
    viewer: &Viewer,
    request: &ExportRequest,
) -> Result<Response, ApiError> {
    let permit = admit().await?;
    let kind = request.query.kind;
    let rows = state.storage.export_count(&request.query).await?;
    if request.format == Format::Xlsx && rows > xlsx::MAX_ROWS {
        return Err(ApiError::invalid(format!(
            "{rows} rows do not fit in one worksheet; export CSV, or a shorter range"
        )));
    }
    audit(state, viewer, request, rows).await?;
    let stream = state.storage.export_rows(request.query.clone());
    match request.format {
        Format::Csv => Ok(csv::body(columns(kind), stream, permit).into_response()),
        Format::Xlsx => {
            let (file, len) = xlsx::build(sheet_name(kind), columns(kind), stream)
                .await
                .map_err(ApiError::internal)?;
            let mut response = xlsx::body(file, permit).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Ok(response)
        }
    }
}

/// A place among the running exports, or a 503 after waiting [`QUEUE_WAIT`].
async fn admit() -> Result<SemaphorePermit<'static>, ApiError> {
    match tokio::time::timeout(QUEUE_WAIT, RUNNING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "other exports are running; try again in a minute",
        )),
    }
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
