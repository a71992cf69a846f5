//! The workbench, a coordinator's first page: "Perlu tindakan", what needs action in the
//! viewer's areas, each a list with its count whose rows link to the records; then every
//! field worker's caseload, most in need first. `/workbench` (page; `?list=ID` shows one list
//! in full) and `/api/workbench` (JSON).
//!
//! The thresholds are the constants below, shown in the headings ("lebih dari 7 hari").

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{Role, format_millis};
use maud::{Markup, html};
use serde::Deserialize;

use super::super::i18n::Lang;
use super::super::labels::{area, kind_label, program_label, status_label};
use super::super::layout;
use super::super::session::{PageUser, Viewer, require_role};
use super::feed::own_date_label;
use super::filters::{date_text, today_days};
use super::{failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::StorageResult;
use crate::storage::activity::{DeviceSeen, Person, WEEK_MS, week_of, week_start};
use crate::storage::now_millis;
use crate::storage::workbench::{Cutoffs, WorkList, WorkRow, WorkbenchData};

/// A referral needing documents waits on the worker after this many days.
pub const NEEDS_DOCUMENTS_DAYS: i64 = 7;
/// An approved referral is late for enrolment after this many days.
pub const APPROVED_DAYS: i64 = 14;
/// A phone that has not synced for this many days is listed.
pub const UNSYNCED_DAYS: i64 = 7;
/// Records received in the last this many days…
pub const LATE_WINDOW_DAYS: i64 = 7;
/// …at least this many days after their own date arrived late.
pub const LATE_BY_DAYS: i64 = 3;
/// Rows each list shows on the workbench; the rest are one link away.
const SHOWN: usize = 5;
/// Most rows a list reads (its count is always complete).
const LIST_LIMIT: i64 = 200;

/// Who has a workbench: the coordinators (their landing page). Supervisors start at their
/// referral queue, field workers at the activity of their areas.
pub const WORKBENCH_ROLES: &[Role] = &[Role::Coordinator];

const DAY_MS: i64 = 86_400_000;

/// The thresholds as of `now`.
pub fn cutoffs(now: i64) -> Cutoffs {
    let week = week_start(week_of(now));
    Cutoffs {
        today: date_text(today_days(now)),
        week_end: date_text(today_days(week + WEEK_MS - 1)),
        week_from: week,
        week_until: week + WEEK_MS,
        needs_documents_before: now - NEEDS_DOCUMENTS_DAYS * DAY_MS,
        approved_before: now - APPROVED_DAYS * DAY_MS,
        unsynced_before: now - UNSYNCED_DAYS * DAY_MS,
        late_since: now - LATE_WINDOW_DAYS * DAY_MS,
        late_by: LATE_BY_DAYS * DAY_MS,
        limit: LIST_LIMIT,
    }
}

/// The lists, in the order the page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListId {
    Overdue,
    Due,
    NeedsDocuments,
    Approved,
    Unsynced,
    Idle,
    Late,
}

impl ListId {
    const ALL: [Self; 7] = [
        Self::Overdue,
        Self::Due,
        Self::NeedsDocuments,
        Self::Approved,
        Self::Unsynced,
        Self::Idle,
        Self::Late,
    ];

    /// The id in the page (`id=`), the `?list=` value, and the API's key.
    fn slug(self) -> &'static str {
        match self {
            Self::Overdue => "follow-ups-overdue",
            Self::Due => "follow-ups-due",
            Self::NeedsDocuments => "needs-documents",
            Self::Approved => "approved-not-enrolled",
            Self::Unsynced => "phones-not-synced",
            Self::Idle => "workers-without-visits",
            Self::Late => "arrived-late",
        }
    }

    fn api_key(self) -> &'static str {
        match self {
            Self::Overdue => "followUpsOverdue",
            Self::Due => "followUpsDue",
            Self::NeedsDocuments => "needsDocuments",
            Self::Approved => "approvedNotEnrolled",
            Self::Unsynced => "phonesNotSynced",
            Self::Idle => "workersWithoutVisits",
            Self::Late => "arrivedLate",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.slug() == s)
    }

    /// The heading, with its threshold.
    fn heading(self, lang: Lang) -> String {
        match (self, lang) {
            (Self::Overdue, Lang::Id) => "Tindak lanjut terlambat".into(),
            (Self::Overdue, Lang::En) => "Follow-ups overdue".into(),
            (Self::Due, Lang::Id) => "Tindak lanjut minggu ini".into(),
            (Self::Due, Lang::En) => "Follow-ups due this week".into(),
            (Self::NeedsDocuments, Lang::Id) => {
                format!(
                    "Rujukan menunggu dokumen dari petugas lebih dari {NEEDS_DOCUMENTS_DAYS} hari"
                )
            }
            (Self::NeedsDocuments, Lang::En) => format!(
                "Referrals waiting on the worker for documents for more than {NEEDS_DOCUMENTS_DAYS} days"
            ),
            (Self::Approved, Lang::Id) => {
                format!("Rujukan disetujui, belum terdaftar setelah {APPROVED_DAYS} hari")
            }
            (Self::Approved, Lang::En) => {
                format!("Referrals approved but not enrolled after {APPROVED_DAYS} days")
            }
            (Self::Unsynced, Lang::Id) => {
                format!("HP tidak sinkron lebih dari {UNSYNCED_DAYS} hari")
            }
            (Self::Unsynced, Lang::En) => {
                format!("Phones not synced for more than {UNSYNCED_DAYS} days")
            }
            (Self::Idle, Lang::Id) => "Petugas tanpa kunjungan minggu ini".into(),
            (Self::Idle, Lang::En) => "Workers with no visit this week".into(),
            (Self::Late, Lang::Id) => format!(
                "Catatan terlambat masuk: diterima {LATE_WINDOW_DAYS} hari terakhir, {LATE_BY_DAYS} hari atau lebih setelah tanggalnya"
            ),
            (Self::Late, Lang::En) => format!(
                "Records that arrived late: received in the last {LATE_WINDOW_DAYS} days, {LATE_BY_DAYS} or more days after their date"
            ),
        }
    }

    /// The list in a few words, for the overview at the top of the page.
    fn short(self, lang: Lang) -> String {
        match (self, lang) {
            (Self::Overdue, Lang::Id) => "Tindak lanjut terlambat".into(),
            (Self::Overdue, Lang::En) => "Follow-ups overdue".into(),
            (Self::Due, Lang::Id) => "Tindak lanjut minggu ini".into(),
            (Self::Due, Lang::En) => "Follow-ups this week".into(),
            (Self::NeedsDocuments, Lang::Id) => {
                format!("Menunggu dokumen > {NEEDS_DOCUMENTS_DAYS} hari")
            }
            (Self::NeedsDocuments, Lang::En) => {
                format!("Waiting for documents > {NEEDS_DOCUMENTS_DAYS} days")
            }
            (Self::Approved, Lang::Id) => format!("Belum terdaftar > {APPROVED_DAYS} hari"),
            (Self::Approved, Lang::En) => format!("Not enrolled > {APPROVED_DAYS} days"),
            (Self::Unsynced, Lang::Id) => format!("HP tidak sinkron > {UNSYNCED_DAYS} hari"),
            (Self::Unsynced, Lang::En) => format!("Phones not synced > {UNSYNCED_DAYS} days"),
            (Self::Idle, Lang::Id) => "Petugas tanpa kunjungan".into(),
            (Self::Idle, Lang::En) => "Workers without visits".into(),
            (Self::Late, Lang::Id) => "Catatan terlambat masuk".into(),
            (Self::Late, Lang::En) => "Records that arrived late".into(),
        }
    }

    /// Where the rows are in full elsewhere, if some page lists them.
    fn elsewhere(self) -> Option<&'static str> {
        match self {
            Self::NeedsDocuments => Some("/referrals?status=needs-documents"),
            Self::Approved => Some("/referrals?status=approved"),
            _ => None,
        }
    }
}

/// What one list holds.
enum Items<'a> {
    Records(&'a WorkList),
    Phones(&'a [(Person, DeviceSeen)]),
    People(&'a [Person]),
}

impl Items<'_> {
    fn count(&self) -> i64 {
        match self {
            Self::Records(l) => l.total,
            Self::Phones(p) => p.len() as i64,
            Self::People(p) => p.len() as i64,
        }
    }
}

fn items(data: &WorkbenchData, list: ListId) -> Items<'_> {
    match list {
        ListId::Overdue => Items::Records(&data.follow_ups_overdue),
        ListId::Due => Items::Records(&data.follow_ups_due),
        ListId::NeedsDocuments => Items::Records(&data.needs_documents),
        ListId::Approved => Items::Records(&data.approved_waiting),
        ListId::Late => Items::Records(&data.late),
        ListId::Unsynced => Items::Phones(&data.unsynced),
        ListId::Idle => Items::People(&data.idle),
    }
}

async fn load(state: &AppState, viewer: &Viewer, now: i64) -> StorageResult<WorkbenchData> {
    let data = state
        .storage
        .workbench(&scope_of(viewer), &cutoffs(now))
        .await?;
    // Every record named on the page is a read of it.
    let shown = [
        &data.follow_ups_overdue,
        &data.follow_ups_due,
        &data.needs_documents,
        &data.approved_waiting,
        &data.late,
    ]
    .into_iter()
    .flat_map(|l| l.rows.iter())
    .map(|r| (r.document_id.as_str(), r.kind.as_str()));
    state
        .reads
        .record(state.storage.as_ref(), viewer, shown)
        .await?;
    Ok(data)
}

#[derive(Debug, Default, Deserialize)]
pub struct WorkbenchParams {
    list: Option<String>,
}

/// `GET /workbench`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<WorkbenchParams>,
) -> Response {
    if require_role(&viewer, WORKBENCH_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let only = match params.list.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match ListId::parse(s) {
            Some(l) => Some(l),
            None => {
                return layout::error_page(
                    lang,
                    StatusCode::NOT_FOUND,
                    lang.t("Daftar ini tidak ada", "There is no such list"),
                );
            }
        },
    };
    let now = now_millis();
    let data = match load(&state, &viewer, now).await {
        Ok(d) => d,
        Err(e) => return failed_page(&viewer, e),
    };
    let title = lang.t("Perlu tindakan", "Needs action");
    let body = html! {
        section.workbench {
            h1 { (title) }
            p.muted {
                (lang.t("Wilayah Anda", "Your areas")) ": "
                @for (i, a) in viewer.user.areas.iter().enumerate() {
                    @if i > 0 { ", " }
                    (area(&viewer.area_names, a.as_str()))
                }
                ". " (lang.t("Hari ini", "Today")) " " (lang.date(now)) "."
            }
            @match only {
                Some(list) => {
                    p { a href="/workbench" { (lang.t("« Semua daftar", "« All lists")) } }
                    (list_card(&viewer, &data, list, usize::MAX, now))
                }
                None => {
                    nav.work-summary aria-label=(lang.t("Ringkasan daftar", "Lists at a glance")) {
                        ul {
                            @for list in ListId::ALL {
                                @let count = items(&data, list).count();
                                li { a href={ "#" (list.slug()) } {
                                    span.count.zero[count == 0] { (count) }
                                    " " (list.short(lang))
                                } }
                            }
                        }
                    }
                    div.worklists {
                        @for list in ListId::ALL { (list_card(&viewer, &data, list, SHOWN, now)) }
                    }
                    h2 #caseload-heading { (lang.t("Beban kasus per petugas", "Caseload per worker")) }
                    p.muted { (lang.t(
                        "Yang paling banyak tindak lanjut terlambat di atas. Kasus terbuka: rujukan yang belum ditutup, terdaftar, ditolak, atau dibatalkan.",
                        "Most overdue follow-ups first. Open cases: referrals not closed, enrolled, rejected or withdrawn."
                    )) }
                    (caseload_table(&viewer, &data, now))
                }
            }
        }
    };
    layout::page(lang, Some(&viewer), title, "/workbench", body).into_response()
}

fn list_card(
    viewer: &Viewer,
    data: &WorkbenchData,
    list: ListId,
    shown: usize,
    now: i64,
) -> Markup {
    let lang = viewer.lang;
    let items = items(data, list);
    let count = items.count();
    let heading_id = format!("{}-heading", list.slug());
    let more = count as usize > shown.min(LIST_LIMIT as usize);
    html! {
        section.card.worklist #(list.slug()) data-count=(count) aria-labelledby=(heading_id) {
            h2 #(heading_id) {
                span.count.zero[count == 0] { (count) }
                " " (list.heading(lang))
            }
            @if count == 0 {
                p.muted { (lang.t("Tidak ada.", "None.")) }
            } @else {
                ul.worklist-items {
                    @match items {
                        Items::Records(l) => {
                            @for r in l.rows.iter().take(shown) { li data-doc=(r.document_id) { (record_item(viewer, list, r, now)) } }
                        }
                        Items::Phones(p) => {
                            @for (person, device) in p.iter().take(shown) {
                                li data-worker=(person.id) data-device=(device.id) { (phone_item(viewer, person, device, now)) }
                            }
                        }
                        Items::People(p) => {
                            @for person in p.iter().take(shown) {
                                li data-worker=(person.id) { (person_item(viewer, person)) }
                            }
                        }
                    }
                }
                @if more && shown != usize::MAX {
                    p.more { a href={ "/workbench?list=" (list.slug()) } {
                        (lang.t("Lihat semua", "See all")) " (" (count) ")"
                    } }
                }
                @if shown == usize::MAX && count > LIST_LIMIT {
                    p.muted { (match lang {
                        Lang::Id => format!("Ditampilkan {LIST_LIMIT} pertama dari {count}."),
                        Lang::En => format!("The first {LIST_LIMIT} of {count} are shown."),
                    }) }
                }
            }
            @if let Some(path) = list.elsewhere() {
                p.more { a href=(path) { (lang.t("Buka di antrian rujukan", "Open in the referral queue")) } }
            }
        }
    }
}

/// Whole days from `from` to `to`.
fn days_between(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(DAY_MS)
}

fn days_text(lang: Lang, days: i64) -> String {
    match lang {
        Lang::Id => format!("{days} hari"),
        Lang::En if days == 1 => "1 day".into(),
        Lang::En => format!("{days} days"),
    }
}

fn worker_link(id: &str, name: Option<&str>) -> Markup {
    let query = serde_urlencoded::to_string([("worker", id)]).unwrap_or_default();
    html! { a.worker href={ "/activity?" (query) } title=(id) { (name.unwrap_or(id)) } }
}

fn record_item(viewer: &Viewer, list: ListId, r: &WorkRow, now: i64) -> Markup {
    let lang = viewer.lang;
    let who = r.name.as_deref().or(r.nik.as_deref()).unwrap_or("—");
    html! {
        div.what {
            @match (r.kind.as_str(), &r.nik) {
                ("referral", _) => { a href={ "/referrals/" (r.document_id) } { (who) } }
                (_, Some(nik)) => { a href={ "/beneficiaries/" (nik) } { (who) } }
                _ => { strong { (who) } }
            }
            " "
            @if list == ListId::Late { span.badge.(r.kind) { (kind_label(lang, &r.kind)) } " " }
            @if let Some(p) = &r.program { span.muted { (program_label(lang, p)) } " " }
            @if list == ListId::Late {
                @if let Some(s) = &r.status { span.badge.(s) { (status_label(lang, s)) } }
            }
        }
        div.when.small {
            @match list {
                ListId::Overdue | ListId::Due => {
                    @if let Some(date) = &r.follow_up_on {
                        (lang.t("Tindak lanjut", "Follow-up")) ": " time datetime=(date) { (lang.day_text(date)) }
                    }
                    " · " (lang.t("kunjungan", "visit")) " " time datetime=(format_millis(r.dated_at)) { (lang.date(r.dated_at)) }
                }
                ListId::NeedsDocuments | ListId::Approved => {
                    @if let Some(since) = r.since {
                        (if list == ListId::Approved { lang.t("Disetujui", "Approved") } else { lang.t("Menunggu sejak", "Waiting since") })
                        " " time datetime=(format_millis(since)) { (lang.date(since)) }
                        " (" (days_text(lang, days_between(since, now))) ")"
                    }
                }
                _ => {
                    (own_date_label(lang, &r.kind)) ": " time datetime=(format_millis(r.dated_at)) { (lang.date(r.dated_at)) }
                    " · " (lang.t("diterima", "received")) " " time.received datetime=(format_millis(r.received_at)) { (lang.datetime(r.received_at)) }
                    " (" (days_text(lang, days_between(r.dated_at, r.received_at))) " " (lang.t("kemudian", "later")) ")"
                }
            }
        }
        div.whom.small.muted {
            (worker_link(&r.created_by, r.worker_name.as_deref())) " · " (area(&viewer.area_names, &r.area))
        }
    }
}

fn last_sync_text(lang: Lang, at: Option<i64>, now: i64) -> Markup {
    html! {
        @match at {
            Some(t) => {
                time datetime=(format_millis(t)) { (lang.datetime(t)) }
                " (" (days_text(lang, days_between(t, now))) " " (lang.t("lalu", "ago")) ")"
            }
            None => (lang.t("belum pernah sinkron", "never synced")),
        }
    }
}

fn phone_item(viewer: &Viewer, person: &Person, device: &DeviceSeen, now: i64) -> Markup {
    let lang = viewer.lang;
    html! {
        div.what { (worker_link(&person.id, Some(&person.name))) " · " span.muted { (device.label) } }
        div.when.small { (lang.t("Sinkron terakhir", "Last sync")) ": " (last_sync_text(lang, device.last_seen_at, now)) }
    }
}

fn person_areas(viewer: &Viewer, person: &Person) -> Markup {
    html! {
        @for (i, a) in person.area_codes().iter().enumerate() {
            @if i > 0 { ", " }
            (area(&viewer.area_names, a.as_str()))
        }
    }
}

fn person_item(viewer: &Viewer, person: &Person) -> Markup {
    html! {
        div.what { (worker_link(&person.id, Some(&person.name))) }
        div.whom.small.muted { (person_areas(viewer, person)) }
    }
}

fn caseload_table(viewer: &Viewer, data: &WorkbenchData, now: i64) -> Markup {
    let lang = viewer.lang;
    html! {
        table #caseload {
            thead { tr {
                th { (lang.t("Petugas", "Worker")) }
                th.num { (lang.t("Kasus terbuka", "Open cases")) }
                th.num { (lang.t("Tindak lanjut terlambat", "Overdue follow-ups")) }
                th { (lang.t("Sinkron terakhir", "Last sync")) }
                th.num { (lang.t("Kunjungan minggu ini", "Visits this week")) }
            } }
            tbody {
                @for w in &data.workers {
                    tr data-worker=(w.person.id) {
                        td {
                            (worker_link(&w.person.id, Some(&w.person.name)))
                            br;
                            span.small.muted { (person_areas(viewer, &w.person)) }
                        }
                        td.num data-label=(lang.t("Kasus terbuka", "Open cases")) { (w.open_cases) }
                        td.num.overdue[w.overdue > 0] data-label=(lang.t("Tindak lanjut terlambat", "Overdue follow-ups")) { (w.overdue) }
                        td data-label=(lang.t("Sinkron terakhir", "Last sync")) {
                            @if w.devices.is_empty() {
                                span.muted { (lang.t("tidak ada HP", "no phone")) }
                            } @else {
                                (last_sync_text(lang, w.last_sync(), now))
                            }
                        }
                        td.num data-label=(lang.t("Kunjungan minggu ini", "Visits this week")) { (w.visits_this_week) }
                    }
                }
                @if data.workers.is_empty() {
                    tr { td.muted colspan="5" { (lang.t("Belum ada petugas di wilayah ini.", "No workers in these areas yet.")) } }
                }
            }
        }
    }
}

mod api;

pub use api::api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_week_runs_monday_to_sunday_in_wib() {
        // Tuesday 2026-12-01 10:00 WIB.
        let now = 1_796_094_000_000;
        let c = cutoffs(now);
        assert_eq!(c.today, "2026-12-01");
        assert_eq!(c.week_end, "2026-12-06");
        assert_eq!(date_text(today_days(c.week_from)), "2026-11-30");
        assert_eq!(c.week_until - c.week_from, WEEK_MS);
    }

    #[test]
    fn every_heading_names_its_threshold() {
        assert!(
            ListId::NeedsDocuments
                .heading(Lang::Id)
                .contains("lebih dari 7 hari")
        );
        assert!(ListId::Approved.heading(Lang::En).contains("14 days"));
        for list in ListId::ALL {
            assert_eq!(ListId::parse(list.slug()), Some(list));
        }
    }
}
