//! Summaries: per worker (visits per ISO week for the last 8 weeks, open referrals, last
//! visit, when each of their devices last connected) and per kelurahan (visits, referrals
//! and outreach in a period).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{DocKind, date_days, format_millis};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::i18n::{WIB_OFFSET_MS, civil_from_days};
use super::super::session::{ApiUser, PageUser, Viewer, require_role};
use super::super::{labels, layout};
use super::filters::{Refusal, date_range, date_text, today_days};
use super::{SUMMARY_ROLES, failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::activity::{DeviceSeen, Scope, SummaryRange, week_of, week_start};
use crate::storage::{StorageResult, now_millis};

/// How many weeks of visits the summary counts per worker.
const WEEKS: usize = 8;
const DAY_MS: i64 = 86_400_000;
/// A device not seen for this long is marked in the table.
const STALE_MS: i64 = 7 * DAY_MS;

#[derive(Debug, Default, Deserialize)]
pub struct SummaryParams {
    from: Option<String>,
    to: Option<String>,
}

struct WorkerLine {
    id: String,
    name: String,
    weeks: [i64; WEEKS],
    open_referrals: i64,
    last_visit: Option<i64>,
    devices: Vec<DeviceSeen>,
}

#[derive(Default)]
struct AreaLine {
    visits: i64,
    open: i64,
    decided: i64,
    submitted: i64,
    outreach: i64,
    attendees: i64,
}

struct Summary {
    from: String,
    to: String,
    range: SummaryRange,
    /// The first week bucket.
    first_week: i64,
    workers: Vec<WorkerLine>,
    areas: BTreeMap<String, AreaLine>,
    outreach: bool,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The period: `to` defaults to today, `from` to the Monday 7 weeks before `to`'s week, so
/// both tables cover the same 8 weeks unless asked otherwise.
fn range(params: &SummaryParams, now: i64) -> Result<(SummaryRange, String, String), Refusal> {
    let (from, until) = date_range(blank(&params.from), blank(&params.to))?;
    let until = until.unwrap_or_else(|| (today_days(now) + 1) * DAY_MS - WIB_OFFSET_MS);
    let last_week = week_of(until - 1);
    let weeks_from = week_start(last_week - (WEEKS as i64 - 1));
    let from = from.unwrap_or(weeks_from);
    Ok((
        SummaryRange {
            from,
            until,
            weeks_from,
            weeks_until: week_start(last_week + 1),
        },
        date_text(today_days(from)),
        date_text(today_days(until - 1)),
    ))
}

async fn load(
    state: &AppState,
    scope: &Scope,
    params: &SummaryParams,
) -> Result<StorageResult<Summary>, Refusal> {
    let (r, from, to) = range(params, now_millis())?;
    let data = match state.storage.summary(scope, &r).await {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let first_week = week_of(r.weeks_from);
    let mut devices: HashMap<&str, Vec<DeviceSeen>> = HashMap::new();
    for d in &data.devices {
        devices
            .entry(d.user_id.as_str())
            .or_default()
            .push(d.clone());
    }
    let mut workers: Vec<WorkerLine> = data
        .people
        .iter()
        .map(|p| WorkerLine {
            id: p.id.clone(),
            name: p.name.clone(),
            weeks: [0; WEEKS],
            open_referrals: 0,
            last_visit: None,
            devices: devices.remove(p.id.as_str()).unwrap_or_default(),
        })
        .collect();
    let index: HashMap<String, usize> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| (w.id.clone(), i))
        .collect();
    for w in &data.weekly {
        let slot = usize::try_from(w.week - first_week)
            .ok()
            .filter(|s| *s < WEEKS);
        if let (Some(&i), Some(slot)) = (index.get(&w.created_by), slot) {
            workers[i].weeks[slot] += w.visits;
        }
    }
    for c in &data.last_visit {
        if let Some(&i) = index.get(&c.created_by) {
            workers[i].last_visit = Some(c.n);
        }
    }
    for c in &data.open_referrals {
        if let Some(&i) = index.get(&c.created_by) {
            workers[i].open_referrals = c.n;
        }
    }
    let mut areas: BTreeMap<String, AreaLine> = BTreeMap::new();
    // Kelurahan where a worker serves appear even before anything was recorded there.
    for p in data
        .people
        .iter()
        .filter(|p| p.role == "peksos" && p.disabled_at.is_none())
    {
        for a in p.area_codes() {
            if a.as_str().len() == 13 && scope.areas.iter().any(|s| s.covers(&a)) {
                areas.entry(a.as_str().to_owned()).or_default();
            }
        }
    }
    for c in &data.area_visits {
        areas.entry(c.area.clone()).or_default().visits = c.n;
    }
    for c in &data.area_referrals {
        let line = areas.entry(c.area.clone()).or_default();
        (line.open, line.decided, line.submitted) = (c.n, c.m, c.o);
    }
    for c in &data.area_outreach {
        let line = areas.entry(c.area.clone()).or_default();
        (line.outreach, line.attendees) = (c.n, c.m);
    }
    Ok(Ok(Summary {
        from,
        to,
        range: r,
        first_week,
        workers,
        areas,
        outreach: scope.reads(DocKind::Outreach),
    }))
}

/// `2026-W48` and the Monday it starts, of a week bucket.
fn iso_week(week: i64) -> (String, i64) {
    let start = week_start(week);
    let monday = today_days(start);
    let thursday = monday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let jan1 = date_days(&format!("{year:04}-01-01")).unwrap_or(thursday);
    (format!("{year}-W{:02}", (thursday - jan1) / 7 + 1), start)
}

/// `GET /api/summary`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<SummaryParams>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, SUMMARY_ROLES)?;
    let s = load(&state, &scope_of(&viewer), &params)
        .await
        .map_err(|r| r.api())??;
    let weeks: Vec<Value> = (0..WEEKS as i64)
        .map(|i| {
            let (label, start) = iso_week(s.first_week + i);
            json!({"week": label, "start": date_text(today_days(start))})
        })
        .collect();
    let workers: Vec<Value> = s
        .workers
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "name": w.name,
                "visitsPerWeek": w.weeks,
                "openReferrals": w.open_referrals,
                "lastVisitAt": w.last_visit.map(format_millis),
                "devices": w.devices.iter().map(|d| json!({
                    "id": d.id,
                    "label": d.label,
                    "lastSyncAt": d.last_seen_at.map(format_millis),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let areas: Vec<Value> = s
        .areas
        .iter()
        .map(|(area, a)| {
            json!({
                "area": area,
                "visits": a.visits,
                "referralsOpen": a.open,
                "referralsSubmitted": a.submitted,
                "referralsDecided": a.decided,
                "outreach": s.outreach.then_some(a.outreach),
                "outreachAttendees": s.outreach.then_some(a.attendees),
            })
        })
        .collect();
    Ok(Json(json!({
        "from": s.from,
        "to": s.to,
        "weeks": weeks,
        "workers": workers,
        "areas": areas,
    })))
}

/// `GET /summary`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<SummaryParams>,
) -> Response {
    if require_role(&viewer, SUMMARY_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let s = match load(&state, &scope_of(&viewer), &params).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed_page(&viewer, e),
        Err(r) => return layout::error_page(lang, r.status(), &r.message(lang)),
    };
    let title = lang.t("Ringkasan", "Summary");
    let body = html! {
        h1 { (title) }
        form.filters method="get" action="/summary" {
            label { (lang.t("Dari tanggal", "From")) input type="date" name="from" value=(s.from); }
            label { (lang.t("Sampai tanggal", "To")) input type="date" name="to" value=(s.to); }
            button type="submit" { (lang.t("Terapkan", "Apply")) }
        }
        h2 { (lang.t("Per petugas", "Per worker")) }
        p.muted { (lang.t(
            "Kunjungan per minggu (Senin–Minggu, WIB) selama 8 minggu sampai tanggal akhir; rujukan terbuka: diajukan, diterima, atau perlu dokumen.",
            "Visits per week (Monday to Sunday, WIB) for the 8 weeks up to the end date; open referrals: submitted, accepted or needing documents."
        )) }
        div.scroll { (workers_table(&viewer, &s)) }
        h2 { (lang.t("Per kelurahan", "Per kelurahan")) }
        p.muted {
            (lang.t("Periode", "Period")) " " (lang.date(s.range.from)) " – " (lang.date(s.range.until - 1)) ". "
            (lang.t("Rujukan terbuka dihitung saat ini.", "Open referrals are counted as of now."))
        }
        div.scroll { (areas_table(&viewer, &s)) }
    };
    layout::page(lang, Some(&viewer), title, "/summary", body).into_response()
}

fn workers_table(viewer: &Viewer, s: &Summary) -> Markup {
    let lang = viewer.lang;
    let now = now_millis();
    html! {
        table #workers {
            thead { tr {
                th { (lang.t("Petugas", "Worker")) }
                @for i in 0..WEEKS as i64 {
                    @let start = week_start(s.first_week + i);
                    th.num title={ (lang.date(start)) " – " (lang.date(start + 6 * 86_400_000)) } { (lang.week(start)) }
                }
                th.num { (lang.t("Rujukan terbuka", "Open referrals")) }
                th { (lang.t("Kunjungan terakhir", "Last visit")) }
                th { (lang.t("Sinkron terakhir perangkat", "Devices' last sync")) }
            } }
            tbody {
                @for w in &s.workers {
                    tr data-worker=(w.id) {
                        td { a href={ "/activity?" (serde_urlencoded::to_string([("worker", &w.id)]).unwrap_or_default()) } { (w.name) } }
                        @for n in &w.weeks { td.num { (n) } }
                        td.num { (w.open_referrals) }
                        td.nowrap { @match w.last_visit { Some(t) => (lang.datetime(t)), None => span.muted { "—" } } }
                        td {
                            @for d in &w.devices {
                                div.nowrap.stale[d.last_seen_at.is_none_or(|t| now - t > STALE_MS)] {
                                    (d.label) ": "
                                    @match d.last_seen_at {
                                        Some(t) => (lang.datetime(t)),
                                        None => (lang.t("belum pernah", "never")),
                                    }
                                }
                            }
                            @if w.devices.is_empty() { span.muted { (lang.t("tidak ada perangkat", "no device")) } }
                        }
                    }
                }
                @if s.workers.is_empty() {
                    tr { td.muted colspan=(WEEKS + 4) { (lang.t("Belum ada petugas di wilayah ini.", "No workers in these areas yet.")) } }
                }
            }
        }
    }
}

fn areas_table(viewer: &Viewer, s: &Summary) -> Markup {
    let lang = viewer.lang;
    html! {
        table #areas {
            thead { tr {
                th { (lang.t("Kelurahan/desa", "Kelurahan/desa")) }
                th.num { (lang.t("Kunjungan", "Visits")) }
                th.num { (lang.t("Rujukan baru", "New referrals")) }
                th.num { (lang.t("Rujukan terbuka", "Open referrals")) }
                th.num { (lang.t("Rujukan diputuskan", "Referrals decided")) }
                @if s.outreach {
                    th.num { (lang.t("Penyuluhan", "Outreach")) }
                    th.num { (lang.t("Peserta", "Attendees")) }
                }
            } }
            tbody {
                @for (area, a) in &s.areas {
                    tr data-area=(area) {
                        td { a href={ "/activity?" (serde_urlencoded::to_string([("area", area)]).unwrap_or_default()) } { (labels::area(&viewer.area_names, area)) } }
                        td.num { (a.visits) }
                        td.num { (a.submitted) }
                        td.num { (a.open) }
                        td.num { (a.decided) }
                        @if s.outreach {
                            td.num { (a.outreach) }
                            td.num { (a.attendees) }
                        }
                    }
                }
                @if s.areas.is_empty() {
                    tr { td.muted colspan="7" { (lang.t("Belum ada catatan.", "Nothing recorded yet.")) } }
                }
            }
        }
    }
}
