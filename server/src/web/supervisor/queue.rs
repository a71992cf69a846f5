//! The review queue: referrals in the viewer's areas, oldest submission first, by default
//! those waiting for a decision.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use fieldsync_core::schema::{DocumentsChecklist, Program, ReferralStatus, RegionCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::labels::{self, AWAITING, STATUSES};
use super::{
    PER_PAGE, area_filter, area_select, checklist, checklist_json, filter_error_page, present,
};
use crate::AppState;
use crate::storage::now_millis;
use crate::storage::review::{QueueFilter, QueuePage, QueueRow};
use crate::web::error::ApiError;
use crate::web::i18n::Lang;
use crate::web::layout;
use crate::web::session::{ApiUser, PageUser, Viewer};

const DAY_MS: i64 = 86_400_000;

/// The queue's filters as the URL carries them; empty values mean "not filtered".
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct QueueParams {
    status: Option<String>,
    program: Option<String>,
    area: Option<String>,
    age: Option<String>,
    page: Option<String>,
    /// Set by "next referral" when no other referral waits.
    empty: Option<String>,
}

/// Which statuses to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusChoice {
    /// Submitted, accepted or needs-documents.
    Awaiting,
    All,
    One(ReferralStatus),
}

impl Filters {
    /// How many filters differ from the queue as it opens.
    fn set(&self) -> usize {
        usize::from(self.status != StatusChoice::Awaiting)
            + usize::from(self.program.is_some())
            + usize::from(self.area.is_some())
            + usize::from(self.age.is_some())
    }
}

impl StatusChoice {
    fn slug(self) -> &'static str {
        match self {
            Self::Awaiting => "awaiting",
            Self::All => "all",
            Self::One(s) => s.as_str(),
        }
    }
}

/// The filters, parsed.
#[derive(Debug, Clone)]
struct Filters {
    status: StatusChoice,
    program: Option<Program>,
    area: Option<RegionCode>,
    /// Older than this many days.
    age: Option<u32>,
    page: u32,
}

fn parse(viewer: &Viewer, p: &QueueParams) -> Result<Filters, ApiError> {
    let status = match present(&p.status) {
        None | Some("awaiting") => StatusChoice::Awaiting,
        Some("all") => StatusChoice::All,
        Some(s) => StatusChoice::One(labels::parse_status(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown status {s:?}: use awaiting, all or a status such as submitted"
            ))
        })?),
    };
    let program = present(&p.program)
        .map(Program::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.0))?;
    let age = present(&p.age)
        .map(|a| {
            a.parse::<u32>()
                .map_err(|_| ApiError::invalid("age must be a whole number of days"))
        })
        .transpose()?;
    let page = present(&p.page)
        .map(|n| {
            n.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::invalid("page must be a number from 1"))
        })
        .transpose()?
        .unwrap_or(1);
    Ok(Filters {
        status,
        program,
        area: area_filter(viewer, present(&p.area))?,
        age,
        page,
    })
}

async fn load(state: &AppState, viewer: &Viewer, f: &Filters) -> Result<QueuePage, ApiError> {
    let statuses = match f.status {
        StatusChoice::Awaiting => AWAITING.iter().map(|s| s.as_str().to_owned()).collect(),
        StatusChoice::All => Vec::new(),
        StatusChoice::One(s) => vec![s.as_str().to_owned()],
    };
    let filter = QueueFilter {
        scopes: viewer.user.areas.clone(),
        statuses,
        program: f.program.map(|p| p.as_str().to_owned()),
        area: f.area.clone(),
        submitted_before: f.age.map(|d| now_millis() - i64::from(d) * DAY_MS),
        after: None,
        limit: PER_PAGE,
        offset: i64::from(f.page - 1) * PER_PAGE,
    };
    let page = state.storage.review_queue(&filter).await?;
    let shown = page
        .rows
        .iter()
        .map(|r| (r.document_id.as_str(), "referral"));
    state
        .reads
        .record(state.storage.as_ref(), viewer, shown)
        .await?;
    Ok(page)
}

/// Whole days since the referral was submitted; `None` for a draft.
fn age_days(row: &QueueRow, now: i64) -> Option<i64> {
    row.submitted_at.map(|t| (now - t).max(0) / DAY_MS)
}

fn documents(row: &QueueRow) -> DocumentsChecklist {
    DocumentsChecklist {
        ktp: row.doc_ktp,
        kk: row.doc_kk,
        sktm: row.doc_sktm,
        surat_puskesmas: row.doc_surat_puskesmas,
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| {
        fieldsync_core::schema::format_millis(t).into()
    })
}

/// `GET /api/referrals`
pub(super) async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<QueueParams>,
) -> Result<Json<Value>, ApiError> {
    super::may_view(&viewer)?;
    let filters = parse(&viewer, &params)?;
    let found = load(&state, &viewer, &filters).await?;
    let now = now_millis();
    let items: Vec<Value> = found
        .rows
        .iter()
        .map(|r| {
            json!({
                "id": r.document_id,
                "area": r.area,
                "beneficiary": {"nik": r.nik, "name": r.name},
                "program": r.program,
                "status": r.status,
                "worker": {"id": r.created_by, "name": r.worker_name},
                "createdAt": time(Some(r.created_at)),
                "submittedAt": time(r.submitted_at),
                "ageDays": age_days(r, now),
                "documents": checklist_json(&documents(r)),
                "consentGiven": r.consent_given,
            })
        })
        .collect();
    Ok(Json(json!({
        "status": filters.status.slug(),
        "page": filters.page,
        "perPage": PER_PAGE,
        "total": found.total,
        "items": items,
    })))
}

/// `GET /referrals`; with `X-Partial: queue-list` only the list, which app.js swaps in when
/// the live stream says a referral in the viewer's areas changed.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<QueueParams>,
    headers: HeaderMap,
) -> Response {
    let lang = viewer.lang;
    let partial = headers
        .get("x-partial")
        .is_some_and(|v| v.as_bytes() == LIST_ID.as_bytes());
    let result = async {
        super::may_view(&viewer)?;
        let filters = parse(&viewer, &params)?;
        let found = load(&state, &viewer, &filters).await?;
        Ok::<_, ApiError>((filters, found))
    }
    .await;
    let (filters, found) = match result {
        Ok(r) => r,
        Err(e) => return filter_error_page(lang, &e),
    };
    let list = list(&viewer, &filters, &found);
    if partial {
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], list).into_response();
    }
    let areas = match state.storage.referral_areas(&viewer.user.areas).await {
        Ok(a) => a,
        Err(e) => return filter_error_page(lang, &ApiError::from(e)),
    };
    let body = html! {
        // The activity stream names every referral that changes in the viewer's areas (the
        // read rule, as for the feed); the page then fetches its own list again.
        section data-live="/api/activity/stream" data-live-target=(LIST_ID) {
            div.heading {
                h1 { (lang.t("Antrian rujukan", "Referral queue")) }
                span #live-status .live hidden
                    data-on=(lang.t("Pembaruan langsung aktif", "Live updates on"))
                    data-off=(lang.t("Pembaruan langsung terputus, menyambung ulang…", "Live updates interrupted, reconnecting…")) {}
            }
            p #live-news .visually-hidden aria-live="polite"
                data-one=(lang.t("1 rujukan baru", "1 new referral"))
                data-many=(lang.t("N rujukan baru", "N new referrals")) {}
            @if present(&params.empty).is_some() {
                p.notice role="status" { (lang.t(
                    "Tidak ada rujukan lain yang menunggu keputusan.",
                    "No other referral is awaiting a decision."
                )) }
            }
            (super::folded_filters(lang, filters.set(), filter_form(&viewer, &filters, &areas)))
            (list)
            (pager(lang, &params, &filters, found.total))
        }
    };
    layout::page(
        lang,
        Some(&viewer),
        lang.t("Antrian rujukan", "Referral queue"),
        "/referrals",
        body,
    )
    .into_response()
}

/// The id of the part of the queue page that live updates replace.
const LIST_ID: &str = "queue-list";

/// The count and the rows: what live updates replace.
fn list(viewer: &Viewer, filters: &Filters, found: &QueuePage) -> Markup {
    let lang = viewer.lang;
    html! {
        div #queue-list {
            p.muted {
                (super::int(lang, found.total)) " " (lang.t("rujukan", "referrals"))
                @if filters.status == StatusChoice::Awaiting {
                    " " (lang.t("menunggu keputusan, yang terlama di atas", "awaiting a decision, oldest first"))
                }
            }
            @if found.rows.is_empty() {
                p.notice { (lang.t("Tidak ada rujukan yang cocok dengan filter ini.", "No referral matches these filters.")) }
            } @else {
                (table(viewer, &found.rows))
            }
        }
    }
}

/// `GET /referrals/{id}/next`: the referral after this one in the queue of those awaiting a
/// decision (oldest first), or the first when none comes after it; the queue itself when
/// nothing else waits.
pub(super) async fn next(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Path(id): Path<String>,
) -> Response {
    let lang = viewer.lang;
    let result = async {
        super::may_view(&viewer)?;
        let id = super::document_id(&id)?.to_string();
        let mut filter = QueueFilter {
            scopes: viewer.user.areas.clone(),
            statuses: AWAITING.iter().map(|s| s.as_str().to_owned()).collect(),
            after: Some(id.clone()),
            limit: 1,
            ..QueueFilter::default()
        };
        let after = state.storage.review_queue(&filter).await?;
        if let Some(row) = after.rows.into_iter().next() {
            return Ok::<_, ApiError>(Some(row.document_id));
        }
        filter.after = None;
        filter.limit = 2;
        let first = state.storage.review_queue(&filter).await?;
        Ok(first
            .rows
            .into_iter()
            .map(|r| r.document_id)
            .find(|d| *d != id))
    }
    .await;
    match result {
        Ok(Some(next)) => Redirect::to(&format!("/referrals/{next}")).into_response(),
        Ok(None) => Redirect::to("/referrals?empty=1").into_response(),
        Err(e) => super::error_page(lang, &e),
    }
}

fn filter_form(viewer: &Viewer, f: &Filters, areas: &[String]) -> Markup {
    let lang = viewer.lang;
    html! {
        form.filters method="get" action="/referrals" {
            label {
                (lang.t("Status", "Status"))
                select name="status" {
                    option value="awaiting" selected[f.status == StatusChoice::Awaiting] {
                        (lang.t("Menunggu keputusan", "Awaiting a decision"))
                    }
                    option value="all" selected[f.status == StatusChoice::All] {
                        (lang.t("Semua status", "Every status"))
                    }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[f.status == StatusChoice::One(s)] {
                            (labels::status(lang, s))
                        }
                    }
                }
            }
            label {
                (lang.t("Program", "Program"))
                select name="program" {
                    option value="" { (lang.t("Semua program", "Every program")) }
                    @for p in Program::ALL {
                        option value=(p.as_str()) selected[f.program == Some(*p)] {
                            (labels::program(lang, *p))
                        }
                    }
                }
            }
            (area_select(viewer, areas, f.area.as_ref()))
            label {
                (lang.t("Menunggu lebih dari (hari)", "Waiting more than (days)"))
                input type="number" name="age" min="0" inputmode="numeric" value=[f.age];
            }
            button type="submit" { (lang.t("Terapkan", "Apply")) }
            @if f.set() > 0 {
                a.button.secondary href="/referrals" { (lang.t("Hapus filter", "Clear filters")) }
            }
        }
    }
}

/// The queue: a table on a wide screen, one card per referral on a phone (app.css), whose
/// cells say what they are (`data-label`) and come most important first: who, what, how
/// long it has waited, its status.
fn table(viewer: &Viewer, rows: &[QueueRow]) -> Markup {
    let lang = viewer.lang;
    let now = now_millis();
    let waiting = lang.t("Menunggu", "Waiting");
    let program = lang.t("Program", "Program");
    let status = lang.t("Status", "Status");
    let documents_label = lang.t("Dokumen", "Documents");
    let consent = lang.t("Persetujuan penerima manfaat", "Beneficiary's consent");
    let area = lang.t("Wilayah", "Area");
    let worker = lang.t("Peksos", "Field worker");
    html! {
        table #queue {
            thead { tr {
                th { (lang.t("Penerima manfaat", "Beneficiary")) }
                th { (program) }
                // How long the referral has waited since it was submitted, not anyone's age.
                th.num { (waiting) }
                th { (status) }
                th { (documents_label) }
                th { (consent) }
                th { (area) }
                th { (worker) }
            } }
            tbody {
                @for r in rows {
                    @let worker_name = r.worker_name.as_deref().unwrap_or(&r.created_by);
                    @let say = format!("{} · {} · {}", r.name, labels::program_slug(lang, &r.program), worker_name);
                    tr data-doc=(r.document_id) data-say=(say) {
                        td.who {
                            a href={"/referrals/" (r.document_id)} { (r.name) }
                            br;
                            span.nik { "NIK " (r.nik) }
                        }
                        td.what data-label=(program) { (labels::program_slug(lang, &r.program)) }
                        td.num.when data-label=(waiting) {
                            @match age_days(r, now) {
                                Some(d) => { (super::days(lang, d)) },
                                None => span.muted { "—" },
                            }
                        }
                        td.state data-label=(status) { span class={"badge " (r.status)} { (labels::status_slug(lang, &r.status)) } }
                        td data-label=(documents_label) { (checklist(lang, &documents(r))) }
                        td data-label=(consent) {
                            @if r.consent_given { (lang.t("Ya", "Yes")) }
                            @else { span.no { (lang.t("Tidak", "No")) } }
                        }
                        td data-label=(area) { (crate::web::labels::area(&viewer.area_names, &r.area)) }
                        td data-label=(worker) { (worker_name) }
                    }
                }
            }
        }
    }
}

fn pager(lang: Lang, params: &QueueParams, f: &Filters, total: i64) -> Markup {
    let link = |page: u32| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("status", &params.status),
            ("program", &params.program),
            ("area", &params.area),
            ("age", &params.age),
        ] {
            if let Some(v) = present(v) {
                pairs.push((k, v.to_owned()));
            }
        }
        pairs.push(("page", page.to_string()));
        format!(
            "/referrals?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    html! {
        @if pages > 1 {
            nav.pager aria-label=(lang.t("Halaman", "Pages")) {
                @if f.page > 1 {
                    a href=(link(f.page - 1)) rel="prev" { (lang.t("← Sebelumnya", "← Previous")) }
                }
                span.muted { (lang.t("Halaman", "Page")) " " (f.page) " / " (pages) }
                @if i64::from(f.page) < pages {
                    a href=(link(f.page + 1)) rel="next" { (lang.t("Berikutnya →", "Next →")) }
                }
            }
        }
    }
}
