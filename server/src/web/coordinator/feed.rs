//! The merged activity feed: `/activity` (page) and `/api/activity` (JSON).
//!
//! With the header `X-Partial: feed` the page answers with its table only: the live script
//! swaps it in when a phone's change arrives.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{PpksCategory, Program, format_millis};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::i18n::Lang;
use super::super::labels::{area, kind_label, ppks_label, program_label, status_label};
use super::super::layout;
use super::super::session::{ApiUser, PageUser, Viewer, require_role};
use super::filters::{self, FeedParams, PAGE, Refusal};
use super::{FEED_ROLES, failed_page, forbidden_page, scope_of, shorten};
use crate::AppState;
use crate::storage::StorageResult;
use crate::storage::activity::{Facets, FeedRow};

/// One page of the feed, and the cursor of the next (older) one.
struct FeedPage {
    rows: Vec<FeedRow>,
    next: Option<String>,
}

async fn load(
    state: &AppState,
    viewer: &Viewer,
    params: &FeedParams,
    page: i64,
) -> Result<StorageResult<FeedPage>, Refusal> {
    let filter = filters::feed_filter(viewer, scope_of(viewer), params, page)?;
    let listed = async {
        let mut rows = state.storage.feed(&filter).await?;
        let next = (rows.len() as i64 > page).then(|| {
            rows.truncate(page as usize);
            filters::cursor_after(rows.last().expect("a full page"))
        });
        let shown = rows
            .iter()
            .map(|r| (r.document_id.as_str(), r.kind.as_str()));
        state
            .reads
            .record(state.storage.as_ref(), viewer, shown)
            .await?;
        Ok(FeedPage { rows, next })
    };
    Ok(listed.await)
}

/// `GET /api/activity`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    let limit = filters::api_limit(&params).map_err(|r| r.api())?;
    let page = load(&state, &viewer, &params, limit)
        .await
        .map_err(|r| r.api())??;
    Ok(Json(json!({
        "items": page.rows.iter().map(item_json).collect::<Vec<_>>(),
        "nextCursor": page.next,
    })))
}

/// A row as the API gives it: every key present, `null` where it does not apply.
pub fn item_json(r: &FeedRow) -> Value {
    let beneficiary = r.nik.as_ref().map(|nik| {
        json!({
            "nik": nik,
            "name": r.name,
            "ppks": r.ppks_slugs(),
        })
    });
    json!({
        "document": r.document_id,
        "kind": r.kind,
        "at": format_millis(r.happened_at),
        "receivedAt": format_millis(r.received_at),
        "area": r.area,
        "createdBy": r.created_by,
        "workerName": r.worker_name,
        "actedBy": r.actor,
        "actorName": r.actor_name,
        "beneficiary": beneficiary,
        "purpose": r.purpose,
        "excerpt": r.excerpt,
        "followUpOn": r.follow_up_on,
        "program": r.program,
        "status": r.status,
        "topic": r.topic,
        "place": r.place,
        "attendees": r.attendees,
    })
}

/// `GET /activity`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<FeedParams>,
    headers: HeaderMap,
) -> Response {
    if require_role(&viewer, FEED_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let partial = headers
        .get("x-partial")
        .is_some_and(|v| v.as_bytes() == b"feed");
    let (page, refusal) = match load(&state, &viewer, &params, PAGE).await {
        Ok(Ok(page)) => (page, None),
        Ok(Err(e)) => return failed_page(&viewer, e),
        // An area outside the viewer's scope shows nothing, and says why.
        Err(r @ Refusal::OutOfScope(_)) => (
            FeedPage {
                rows: Vec::new(),
                next: None,
            },
            Some(r),
        ),
        Err(r) => return layout::error_page(lang, r.status(), &r.message(lang)),
    };
    let table = feed_table(&viewer, &params, &page);
    if partial {
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], table).into_response();
    }
    let facets = match state.storage.facets(&scope_of(&viewer)).await {
        Ok(f) => f,
        Err(e) => return failed_page(&viewer, e),
    };
    let title = lang.t("Aktivitas lapangan", "Field activity");
    let body = html! {
        section data-live="/api/activity/stream" {
            div.heading {
                h1 { (title) }
                span #live-status .live hidden
                    data-on=(lang.t("Pembaruan langsung aktif", "Live updates on"))
                    data-off=(lang.t("Pembaruan langsung terputus, menyambung ulang…", "Live updates interrupted, reconnecting…")) {}
            }
            // Where the live script tells screen readers what arrived ("N" is the count).
            p #live-news .visually-hidden aria-live="polite"
                data-one=(lang.t("1 aktivitas baru", "1 new activity"))
                data-many=(lang.t("N aktivitas baru", "N new activities")) {}
            p.muted { (lang.t(
                "Kunjungan, rujukan, dan penyuluhan semua petugas di wilayah Anda, yang terakhir diterima server di atas. Tanggal catatan sendiri tertulis di setiap baris.",
                "Visits, referrals and outreach of every worker in your areas, the last received by the server first. Each row shows the record's own date."
            )) }
            (filter_form(&viewer, &params, &facets))
            @if let Some(r) = &refusal { p.alert role="alert" { (r.message(lang)) } }
            div.scroll { (table) }
        }
    };
    layout::page(lang, Some(&viewer), title, "/activity", body).into_response()
}

fn filter_form(viewer: &Viewer, params: &FeedParams, facets: &Facets) -> Markup {
    let lang = viewer.lang;
    let p = params.normalized();
    let kinds = super::readable_kinds(viewer.user.role);
    // The viewer's own scopes, the kecamatan above each kelurahan seen, and the kelurahan.
    let mut areas: Vec<String> = viewer
        .user
        .areas
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    for a in &facets.areas {
        if let Some((kecamatan, _)) = a.rsplit_once('.') {
            areas.push(kecamatan.to_owned());
        }
        areas.push(a.clone());
    }
    areas.sort();
    areas.dedup();
    let is = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    html! {
        form.filters method="get" action="/activity" {
            label { (lang.t("Wilayah", "Area"))
                select name="area" {
                    option value="" { (lang.t("Semua", "All")) }
                    @for a in &areas { option value=(a) selected[is(&p.area, a)] { (viewer.area_names.label_in_parent(a)) } }
                }
            }
            label { (lang.t("Petugas", "Worker"))
                select name="worker" {
                    option value="" { (lang.t("Semua", "All")) }
                    @for (id, name) in &facets.workers {
                        option value=(id) selected[is(&p.worker, id)] { (name.as_deref().unwrap_or(id)) }
                    }
                }
            }
            label { (lang.t("Dari tanggal", "From")) input type="date" name="from" value=[p.from.as_deref()]; }
            label { (lang.t("Sampai tanggal", "To")) input type="date" name="to" value=[p.to.as_deref()]; }
            label { (lang.t("Jenis", "Type"))
                select name="type" {
                    option value="" { (lang.t("Semua", "All")) }
                    @for k in kinds {
                        option value=(k.as_str()) selected[is(&p.kind, k.as_str())] { (kind_label(lang, k.as_str())) }
                    }
                }
            }
            label { (lang.t("Kategori PPKS", "PPKS category"))
                select name="ppks" {
                    option value="" { (lang.t("Semua", "All")) }
                    @for c in PpksCategory::ALL {
                        option value=(c.as_str()) selected[is(&p.ppks, c.as_str())] { (ppks_label(lang, c.as_str())) }
                    }
                }
            }
            label { (lang.t("Program rujukan", "Referral program"))
                select name="program" {
                    option value="" { (lang.t("Semua", "All")) }
                    @for g in Program::ALL {
                        option value=(g.as_str()) selected[is(&p.program, g.as_str())] { (program_label(lang, g.as_str())) }
                    }
                }
            }
            button type="submit" { (lang.t("Terapkan", "Apply")) }
            @if params.filtered() {
                a.button.secondary href="/activity" { (lang.t("Hapus filter", "Clear filters")) }
            }
        }
    }
}

/// The table the live script replaces: rows, and the links to other pages in its footer so
/// they stay true after a refresh.
fn feed_table(viewer: &Viewer, params: &FeedParams, page: &FeedPage) -> Markup {
    let lang = viewer.lang;
    let newer = params.normalized().cursor.is_some();
    html! {
        table #feed {
            thead { tr {
                th { (lang.t("Diterima server", "Received")) }
                th { (lang.t("Jenis", "Type")) }
                th { (lang.t("Oleh", "By")) }
                th { (lang.t("Wilayah", "Area")) }
                th { (lang.t("Penerima manfaat", "Beneficiary")) }
                th { (lang.t("Ringkasan", "Summary")) }
            } }
            tbody {
                @for r in &page.rows { (feed_row(viewer, r)) }
                @if page.rows.is_empty() {
                    tr { td.muted colspan="6" { (lang.t(
                        "Tidak ada aktivitas yang cocok.",
                        "No matching activity."
                    )) } }
                }
            }
            @if page.next.is_some() || newer {
                tfoot { tr { td colspan="6" { div.pager {
                    @if newer {
                        a href={ "/activity?" (params.with_cursor(None)) } { (lang.t("« Terbaru", "« Newest")) }
                    }
                    @if let Some(next) = &page.next {
                        a rel="next" href={ "/activity?" (params.with_cursor(Some(next.clone()))) } {
                            (lang.t("Lebih lama »", "Older »"))
                        }
                    }
                } } } }
            }
        }
    }
}

/// What a row's own date is, by its type: "Tanggal kunjungan", "Tanggal penyuluhan", or a
/// referral's latest event.
pub fn own_date_label(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "visit" => lang.t("Tanggal kunjungan", "Visit date"),
        "referral" => lang.t("Peristiwa terakhir", "Latest event"),
        "outreach" => lang.t("Tanggal penyuluhan", "Held on"),
        _ => lang.t("Tanggal", "Date"),
    }
}

fn feed_row(viewer: &Viewer, r: &FeedRow) -> Markup {
    let lang = viewer.lang;
    let worker = r.worker_name.as_deref().unwrap_or(&r.created_by);
    let actor = r.actor_name.as_deref().unwrap_or(&r.actor);
    html! {
        tr data-doc=(r.document_id) data-kind=(r.kind) {
            td.when {
                time.received datetime=(format_millis(r.received_at)) { (lang.datetime(r.received_at)) }
                br;
                span.own-date.small {
                    (own_date_label(lang, &r.kind)) ": "
                    time datetime=(format_millis(r.happened_at)) { (lang.datetime(r.happened_at)) }
                }
            }
            td.kind { span.badge.(r.kind) { (kind_label(lang, &r.kind)) } }
            td.worker {
                @if r.actor != r.created_by {
                    span.actor title=(r.actor) { (actor) }
                    br;
                    span.muted.small {
                        (lang.t("Petugas", "Worker")) ": "
                        a href={ "/activity?" (serde_urlencoded::to_string([("worker", &r.created_by)]).unwrap_or_default()) } title=(r.created_by) { (worker) }
                    }
                } @else {
                    a href={ "/activity?" (serde_urlencoded::to_string([("worker", &r.created_by)]).unwrap_or_default()) } title=(r.created_by) { (worker) }
                }
            }
            td.area { (area(&viewer.area_names, &r.area)) }
            td.who {
                @if let Some(nik) = &r.nik {
                    a href={ "/beneficiaries/" (nik) } { (r.name.as_deref().unwrap_or(nik)) }
                    br;
                    span.nik { (nik) }
                } @else {
                    span.muted { "—" }
                }
            }
            td.what { (summary(lang, r)) }
        }
    }
}

/// What a list says about a document, by its type.
pub fn summary(lang: Lang, r: &FeedRow) -> Markup {
    html! {
        @match r.kind.as_str() {
            "visit" => {
                @if let Some(p) = &r.purpose { strong { (p) } " — " }
                (shorten(r.excerpt.as_deref().unwrap_or_default(), 140))
                (ppks_line(lang, r))
            }
            "referral" => {
                strong { (program_label(lang, r.program.as_deref().unwrap_or_default())) }
                " "
                @if let Some(s) = &r.status { span.badge.(s) { (status_label(lang, s)) } }
                @if let Some(reason) = r.excerpt.as_deref().filter(|s| !s.is_empty()) {
                    br; span.muted { (shorten(reason, 140)) }
                }
                (ppks_line(lang, r))
            }
            _ => {
                strong { (r.topic.as_deref().unwrap_or_default()) }
                " · " (r.place.as_deref().unwrap_or_default())
                " · " (r.attendees.unwrap_or(0)) " " (lang.t("peserta", "attendees"))
            }
        }
    }
}

fn ppks_line(lang: Lang, r: &FeedRow) -> Markup {
    let slugs = r.ppks_slugs();
    html! {
        @if !slugs.is_empty() {
            br;
            span.muted.small {
                @for (i, s) in slugs.iter().enumerate() {
                    @if i > 0 { ", " }
                    (ppks_label(lang, s))
                }
            }
        }
    }
}
