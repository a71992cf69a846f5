//! A beneficiary's timeline: every visit and referral in the viewer's scope about one NIK,
//! across workers, oldest first (a case history reads from its beginning), each referral with
//! its events. Opening it is a read of a person's record, so it is audited like a phone's
//! read, before anything is shown.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{DocKind, Nik, format_millis};
use maud::html;
use serde_json::{Value, json};

use super::super::attachments::{Shown, gallery};
use super::super::error::ApiError;
use super::super::labels::{area, event_label, kind_label, ppks_label};
use super::super::layout;
use super::super::session::{ApiUser, PageUser, Viewer, require_role};
use super::feed::{item_json, summary};
use super::{FEED_ROLES, failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::activity::{EventLine, FeedFilter, FeedRow};
use crate::storage::{AuditEntry, StorageResult, Write, now_millis};

/// Most records a timeline shows: the newest ones.
const MAX_ENTRIES: i64 = 500;

struct Timeline {
    /// Oldest first.
    rows: Vec<FeedRow>,
    events: HashMap<String, Vec<EventLine>>,
    /// Photos and scans, by document.
    attached: HashMap<String, Vec<Shown>>,
}

impl Timeline {
    /// Names, PPKS slugs and areas as recorded, each once, in order of appearance.
    fn recorded(&self) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
        let (mut names, mut ppks, mut areas) = (Vec::new(), Vec::new(), Vec::new());
        for r in &self.rows {
            if let Some(n) = r.name.as_deref()
                && !names.contains(&n)
            {
                names.push(n);
            }
            for s in r.ppks_slugs() {
                if !ppks.contains(&s) {
                    ppks.push(s);
                }
            }
            if !areas.contains(&r.area.as_str()) {
                areas.push(&r.area);
            }
        }
        (names, ppks, areas)
    }
}

fn parse_nik(s: &str) -> Result<Nik, String> {
    Nik::parse(s).map_err(|e| e.0)
}

async fn load(state: &AppState, viewer: &Viewer, nik: &Nik) -> StorageResult<Option<Timeline>> {
    let mut filter = FeedFilter::new(scope_of(viewer), MAX_ENTRIES);
    filter.nik = Some(nik.clone());
    let mut rows = state.storage.feed(&filter).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // The feed lists them as received; a case history reads by each record's own date.
    rows.sort_by(|a, b| (a.happened_at, &a.document_id).cmp(&(b.happened_at, &b.document_id)));
    let referrals: Vec<String> = rows
        .iter()
        .filter(|r| r.kind == DocKind::Referral.as_str())
        .map(|r| r.document_id.clone())
        .collect();
    let mut events: HashMap<String, Vec<EventLine>> = HashMap::new();
    for e in state.storage.referral_events(&referrals).await? {
        events.entry(e.document_id.clone()).or_default().push(e);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.document_id.clone()).collect();
    let mut attached: HashMap<String, Vec<Shown>> = HashMap::new();
    for a in state.storage.attachments_of(&ids).await? {
        attached.entry(a.document_id).or_default().push(Shown {
            sha256: a.sha256,
            kind: None,
            stored: a.mime.is_some(),
            mime: a.mime,
            caption: None,
            taken_at: None,
        });
    }
    let now = now_millis();
    let device = viewer.editor().device.to_string();
    let audit: Vec<Write> = rows
        .iter()
        .map(|r| {
            Write::Audit(AuditEntry {
                at: now,
                device_id: device.clone(),
                user_id: viewer.user.id.clone(),
                document_id: r.document_id.clone(),
                action: "read".into(),
                detail: r.kind.clone(),
            })
        })
        .collect();
    state.storage.write(&audit).await?;
    Ok(Some(Timeline {
        rows,
        events,
        attached,
    }))
}

/// `GET /api/beneficiaries/{nik}`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Path(nik): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    let nik = parse_nik(&nik).map_err(ApiError::invalid)?;
    let Some(t) = load(&state, &viewer, &nik).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no record of this NIK in your areas",
        ));
    };
    let (names, ppks, areas) = t.recorded();
    let entries: Vec<Value> = t
        .rows
        .iter()
        .map(|r| {
            let mut item = item_json(r);
            let events: Vec<Value> = t
                .events
                .get(&r.document_id)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    json!({
                        "kind": e.kind,
                        "at": format_millis(e.at),
                        "by": e.by_user,
                        "byName": e.by_name,
                        "note": e.note,
                        "applied": e.applied,
                    })
                })
                .collect();
            item["events"] = Value::Array(events);
            item["attachments"] = t
                .attached
                .get(&r.document_id)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|a| json!({"sha256": a.sha256, "mime": a.mime, "stored": a.stored}))
                .collect();
            item
        })
        .collect();
    Ok(Json(json!({
        "nik": nik.as_str(),
        "names": names,
        "ppks": ppks,
        "areas": areas,
        "entries": entries,
    })))
}

/// `GET /beneficiaries/{nik}`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Path(nik): Path<String>,
) -> Response {
    if require_role(&viewer, FEED_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let nik = match parse_nik(&nik) {
        Ok(n) => n,
        Err(_) => {
            return layout::error_page(
                lang,
                StatusCode::BAD_REQUEST,
                lang.t(
                    "NIK harus 16 angka dengan tanggal lahir yang sah",
                    "A NIK is 16 digits with a valid birth date",
                ),
            );
        }
    };
    let t = match load(&state, &viewer, &nik).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return layout::error_page(
                lang,
                StatusCode::NOT_FOUND,
                lang.t(
                    "Tidak ada catatan dengan NIK ini di wilayah Anda",
                    "No record with this NIK in your areas",
                ),
            );
        }
        Err(e) => return failed_page(&viewer, e),
    };
    let (names, ppks, areas) = t.recorded();
    let title = names.first().copied().unwrap_or(nik.as_str());
    let count = |kind: DocKind| t.rows.iter().filter(|r| r.kind == kind.as_str()).count();
    let body = html! {
        p { a href="/activity" { (lang.t("« Aktivitas", "« Activity")) } }
        h1 { (title) }
        dl.facts.card {
            dt { "NIK" } dd.nik { (nik.as_str()) }
            dt { (lang.t("Nama tercatat", "Names recorded")) }
            dd { @for (i, n) in names.iter().enumerate() { @if i > 0 { " · " } (n) } }
            dt { (lang.t("Kategori PPKS", "PPKS categories")) }
            dd {
                @for (i, s) in ppks.iter().enumerate() { @if i > 0 { ", " } (ppks_label(lang, s)) }
                @if ppks.is_empty() { span.muted { "—" } }
            }
            dt { (lang.t("Wilayah", "Areas")) }
            dd { @for (i, a) in areas.iter().enumerate() { @if i > 0 { ", " } (area(&viewer.area_names, a)) } }
            dt { (lang.t("Catatan", "Records")) }
            dd {
                (count(DocKind::Visit)) " " (lang.t("kunjungan", "visits")) ", "
                (count(DocKind::Referral)) " " (lang.t("rujukan", "referrals"))
            }
        }
        h2 { (lang.t("Riwayat, terlama di atas", "History, oldest first")) }
        ol.timeline {
            @for r in &t.rows {
                li data-doc=(r.document_id) data-kind=(r.kind) {
                    div.when {
                        time datetime=(format_millis(r.happened_at)) { (lang.datetime(r.happened_at)) }
                        " " span.badge.(r.kind) { (kind_label(lang, &r.kind)) }
                        " " span.muted {
                            (r.worker_name.as_deref().unwrap_or(&r.created_by)) " · " (area(&viewer.area_names, &r.area))
                        }
                    }
                    div { (summary(lang, r)) }
                    @if let Some(date) = &r.follow_up_on {
                        div.muted { (lang.t("Tindak lanjut", "Follow-up")) ": " time datetime=(date) { (lang.day_text(date)) } }
                    }
                    @if let Some(items) = t.attached.get(&r.document_id) {
                        (gallery(lang, items))
                    }
                    @if let Some(events) = t.events.get(&r.document_id) {
                        ul.events {
                            @for e in events {
                                li {
                                    time datetime=(format_millis(e.at)) { (lang.datetime(e.at)) }
                                    " " strong { (event_label(lang, &e.kind)) }
                                    " " span.muted title=(e.by_user) { (e.by_name.as_deref().unwrap_or(&e.by_user)) }
                                    @if let Some(note) = &e.note { " — " (note) }
                                    @if !e.applied {
                                        " " span.badge.not-applied title=(lang.t(
                                            "Peristiwa ini bertentangan dengan status saat itu dan tidak mengubahnya",
                                            "This event conflicted with the status at the time and did not change it"
                                        )) { (lang.t("tidak diterapkan", "not applied")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let path = format!("/beneficiaries/{}", nik.as_str());
    layout::page(lang, Some(&viewer), title, &path, body).into_response()
}
