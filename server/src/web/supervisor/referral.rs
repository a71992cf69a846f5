//! One referral: read from its document (an audited read, like a phone's), with its whole
//! event history and the decisions the viewer may record now.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{
    Derived, EventKind, FieldDocument, Referral, ReferralStatus, Role, derive_status,
    timestamp_millis,
};
use fieldsync_protocol::DocumentId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{checklist_json, document_id, error_page, form, labels};
use crate::AppState;
use crate::web::attachments;
use crate::web::error::ApiError;
use crate::web::i18n::Lang;
use crate::web::layout;
use crate::web::session::{ApiUser, PageUser, Viewer};

/// A referral as the viewer may see it.
#[derive(Debug)]
pub(super) struct Loaded {
    pub id: DocumentId,
    pub referral: Referral,
    pub derived: Derived,
    /// Names of the users the document mentions, by id.
    pub names: HashMap<String, String>,
}

impl Loaded {
    pub fn status(&self) -> ReferralStatus {
        self.derived.status
    }

    fn name_of<'a>(&'a self, user: &'a str) -> &'a str {
        self.names.get(user).map_or(user, String::as_str)
    }
}

/// Reads the referral through its document's actor; a document that does not exist, is no
/// referral, or lies outside the viewer's areas is "not found" alike.
pub(super) async fn load(
    state: &AppState,
    viewer: &Viewer,
    id: DocumentId,
) -> Result<Loaded, ApiError> {
    super::may_view(viewer)?;
    let Some(FieldDocument::Referral(referral)) = state.hub.read(id, &viewer.editor()).await else {
        return Err(ApiError::not_found());
    };
    let derived = derive_status(referral.events.iter().map(|e| e.kind));
    let mut ids: Vec<String> = referral.events.iter().map(|e| e.by.clone()).collect();
    ids.push(referral.envelope.created_by.clone());
    ids.sort();
    ids.dedup();
    let names = state.storage.user_names(&ids).await?;
    Ok(Loaded {
        id,
        referral,
        derived,
        names,
    })
}

/// The decisions `viewer` may record on a referral in `status`: a supervisor's kinds of
/// event that the status rule would apply now. Nobody else decides.
pub(super) fn decisions(viewer: &Viewer, status: ReferralStatus) -> Vec<EventKind> {
    if viewer.user.role != Role::Supervisor {
        return Vec::new();
    }
    EventKind::ALL
        .iter()
        .copied()
        .filter(|k| k.may_be_added_by(Role::Supervisor) && status.after(*k).is_some())
        .collect()
}

/// Whether a decision must say why: a rejection, or a request for documents.
pub(super) fn needs_note(kind: EventKind) -> bool {
    matches!(kind, EventKind::Rejected | EventKind::NeedsDocuments)
}

/// `GET /api/referrals/{id}`
pub(super) async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = load(&state, &viewer, document_id(&id)?).await?;
    let r = &loaded.referral;
    let b = &r.beneficiary;
    let events: Vec<Value> = r
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "seq": i,
                "kind": e.kind.as_str(),
                "at": e.at,
                "by": e.by,
                "byName": loaded.names.get(&e.by),
                "note": e.note,
                "applied": !loaded.derived.not_applied.contains(&i),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": loaded.id.to_string(),
        "area": r.envelope.area.as_str(),
        "createdBy": {"id": r.envelope.created_by, "name": loaded.names.get(&r.envelope.created_by)},
        "createdAt": r.envelope.created_at,
        "status": loaded.status().as_str(),
        "beneficiary": {
            "nik": b.nik.as_str(),
            "kk": b.kk.as_ref().map(|k| k.as_str()),
            "name": b.name,
            "address": b.address,
            "ppks": b.ppks.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
        "program": r.program.as_str(),
        "reason": r.reason,
        "documents": checklist_json(&r.documents),
        "consent": {"given": r.consent.given, "at": r.consent.at, "by": r.consent.by},
        "visit": r.visit.map(|v| v.url().to_string()),
        "events": events,
        "attachments": attachments_json(&attachments::shown(&state, &r.attachments).await),
        "checklist": r.checklist().iter().map(|e| json!({
            "item": e.item.as_str(),
            "checked": e.checked,
            "scans": e.scans.iter().map(|a| a.sha256.as_str()).collect::<Vec<_>>(),
            "satisfied": e.satisfied(),
        })).collect::<Vec<_>>(),
        "decisions": decisions(&viewer, loaded.status()).iter().map(|k| k.as_str()).collect::<Vec<_>>(),
    })))
}

/// Attachments as the API gives them: the document's reference, and whether the server has
/// the bytes yet (`GET /files/sha256/{sha256}` then serves them).
fn attachments_json(items: &[attachments::Shown]) -> Vec<Value> {
    items
        .iter()
        .map(|a| {
            json!({
                "sha256": a.sha256,
                "kind": a.kind.map(|k| k.as_str()),
                "mime": a.mime,
                "caption": a.caption,
                "takenAt": a.taken_at,
                "stored": a.stored,
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageParams {
    decided: Option<String>,
}

/// `GET /referrals/{id}`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let lang = viewer.lang;
    let loaded = match async { load(&state, &viewer, document_id(&id)?).await }.await {
        Ok(l) => l,
        Err(e) => return error_page(lang, &e),
    };
    let notice = params
        .decided
        .as_deref()
        .and_then(|k| EventKind::parse(k).ok())
        .map(|kind| {
            html! {
                div.notice role="status" {
                    p {
                        (lang.t("Keputusan tersimpan: ", "Decision stored: "))
                        strong { (labels::event(lang, kind)) } ". "
                        (lang.t(
                            "Ponsel Peksos menerimanya pada sinkronisasi berikutnya.",
                            "The field worker's phone receives it on its next sync."
                        ))
                    }
                    p { a.button #next-referral href={"/referrals/" (id) "/next"} { (lang.t("Rujukan berikutnya →", "Next referral →")) } }
                }
            }
        });
    let visit = visit_section(&state, &viewer, &loaded).await;
    let scans = attachments::shown(&state, &loaded.referral.attachments).await;
    let view = View {
        notice,
        ..View::default()
    };
    render(&viewer, &loaded, view, visit, &scans).into_response()
}

/// What a page shows besides the referral: a confirmation, an alert, the decision to put
/// back in the form, and the question to confirm it with.
#[derive(Debug, Default)]
pub(super) struct View<'a> {
    pub notice: Option<Markup>,
    pub alert: Option<Markup>,
    pub refill: Option<(EventKind, &'a str)>,
    /// The decision in `refill` needs confirming: the question to ask.
    pub ask: Option<String>,
}

/// The referral page, answered with `status` (the page after a refused decision).
pub(super) async fn page_with(
    state: &AppState,
    viewer: &Viewer,
    loaded: &Loaded,
    view: View<'_>,
    status: StatusCode,
) -> Response {
    let visit = visit_section(state, viewer, loaded).await;
    let scans = attachments::shown(state, &loaded.referral.attachments).await;
    (status, render(viewer, loaded, view, visit, &scans)).into_response()
}

fn render(
    viewer: &Viewer,
    loaded: &Loaded,
    view: View<'_>,
    visit: Markup,
    scans: &[attachments::Shown],
) -> Markup {
    let lang = viewer.lang;
    let r = &loaded.referral;
    let b = &r.beneficiary;
    let status = loaded.status();
    let title = format!("{}: {}", lang.t("Rujukan", "Referral"), b.name);
    let body = html! {
        p.links {
            a href="/referrals" { (lang.t("← Antrian rujukan", "← Referral queue")) }
            @if viewer.user.role == Role::Supervisor {
                a href={"/referrals/" (loaded.id) "/next"} { (lang.t("Rujukan berikutnya →", "Next referral →")) }
            }
        }
        h1 {
            (title) " "
            span #status class={"badge " (status.as_str())} data-status=(status.as_str()) {
                (labels::status(lang, status))
            }
        }
        @if let Some(n) = view.notice { (n) }
        @if let Some(a) = view.alert { (a) }
        div.cards {
            section.card {
                h2 { (lang.t("Penerima manfaat", "Beneficiary")) }
                dl.facts {
                    dt { (lang.t("Nama", "Name")) } dd { (b.name) }
                    dt { "NIK" } dd { a href={"/beneficiaries/" (b.nik.as_str())} { (b.nik.as_str()) } }
                    dt { (lang.t("No. KK", "Family card")) }
                    dd {
                        @match &b.kk {
                            Some(kk) => a href={ "/households/" (kk.as_str()) } { (kk.as_str()) },
                            None => "—",
                        }
                    }
                    dt { (lang.t("Alamat", "Address")) } dd { (b.address.as_deref().unwrap_or("—")) }
                    dt { "PPKS" }
                    dd {
                        @if b.ppks.is_empty() { "—" }
                        @for (i, p) in b.ppks.iter().enumerate() {
                            @if i > 0 { ", " }
                            (labels::ppks(lang, p.as_str()))
                        }
                    }
                }
            }
            section.card {
                h2 { (lang.t("Rujukan", "Referral")) }
                dl.facts {
                    dt { (lang.t("Program", "Program")) } dd { (labels::program(lang, r.program)) }
                    dt { (lang.t("Wilayah", "Area")) } dd { (crate::web::labels::area(&viewer.area_names, r.envelope.area.as_str())) }
                    dt { (lang.t("Peksos", "Field worker")) }
                    dd { (loaded.name_of(&r.envelope.created_by)) }
                    dt { (lang.t("Dibuat", "Created")) } dd { (when(lang, &r.envelope.created_at)) }
                    dt { (lang.t("Dokumen", "Documents")) } dd { (checklist_with_scans(lang, r)) }
                    dt { (lang.t("Persetujuan penerima manfaat", "Beneficiary's consent")) }
                    dd {
                        @if r.consent.given {
                            (lang.t("Diberikan oleh ", "Given by ")) (r.consent.by)
                            ", " (when(lang, &r.consent.at))
                        } @else {
                            span.no { (lang.t("Tidak diberikan", "Not given")) }
                        }
                    }
                }
            }
        }
        section {
            h2 { (lang.t("Alasan rujukan", "Reason for referral")) }
            p.text { (r.reason) }
        }
        (attachments::section(lang, "scans", scans))
        (visit)
        (form::decision_form(viewer, loaded, view.refill, view.ask.as_deref()))
        (history(lang, loaded))
    };
    layout::page(
        lang,
        Some(viewer),
        &title,
        &format!("/referrals/{}", loaded.id),
        body,
    )
}

/// The documents checklist, each item ticked by the field worker or backed by an attached
/// scan of its kind (which the page shows under "Photos and scans").
fn checklist_with_scans(lang: Lang, r: &Referral) -> Markup {
    html! {
        span.checklist {
            @for entry in r.checklist() {
                @let name = attachments::kind_label(lang, entry.item.scan_kind());
                @if entry.satisfied() {
                    span.doc.yes data-item=(entry.item.as_str()) title=(lang.t("ada", "present")) {
                        (name) " ✓"
                        @if !entry.scans.is_empty() {
                            a.scan href="#scans" { (lang.t("pindaian", "scan")) }
                        }
                    }
                } @else {
                    span.doc.no data-item=(entry.item.as_str()) title=(lang.t("belum ada", "missing")) { (name) " ✗" }
                }
                " "
            }
        }
    }
}

/// A document's timestamp as people read it here; as written if it does not parse.
fn when(lang: Lang, at: &str) -> String {
    timestamp_millis(at).map_or_else(|| at.to_owned(), |t| lang.datetime(t))
}

fn history(lang: Lang, loaded: &Loaded) -> Markup {
    let events = &loaded.referral.events;
    html! {
        section {
            h2 { (lang.t("Riwayat", "History")) }
            @if events.is_empty() {
                p.muted { (lang.t("Belum ada peristiwa: rujukan ini masih draf.", "No events yet: this referral is still a draft.")) }
            } @else {
                div.scroll {
                    table #events {
                        thead { tr {
                            th.num { "#" }
                            th { (lang.t("Peristiwa", "Event")) }
                            th { (lang.t("Oleh", "By")) }
                            th { (lang.t("Waktu", "Time")) }
                            th { (lang.t("Catatan", "Note")) }
                        } }
                        tbody {
                            @for (i, e) in events.iter().enumerate() {
                                @let applied = !loaded.derived.not_applied.contains(&i);
                                tr data-kind=(e.kind.as_str()) class=[(!applied).then_some("not-applied")] {
                                    td.num.aside { (i + 1) }
                                    td.what {
                                        (labels::event(lang, e.kind))
                                        @if !applied {
                                            " " span.badge.not-applied title=(lang.t(
                                                "Status saat itu tidak mengizinkan peristiwa ini; ia tetap tercatat.",
                                                "The status at that point did not allow this event; it stays recorded."
                                            )) { (lang.t("tidak diterapkan", "not applied")) }
                                        }
                                    }
                                    td.who title=(e.by) data-label=(lang.t("Oleh", "By")) { (loaded.name_of(&e.by)) }
                                    td.when data-label=(lang.t("Waktu", "Time")) { (when(lang, &e.at)) }
                                    td.text data-label=(lang.t("Catatan", "Note")) { (e.note.as_deref().unwrap_or("—")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The visit the referral came from, read like the referral (audited, in scope only).
async fn visit_section(state: &AppState, viewer: &Viewer, loaded: &Loaded) -> Markup {
    let lang = viewer.lang;
    let Some(id) = loaded.referral.visit else {
        return html! {};
    };
    let visit = match state.hub.read(id, &viewer.editor()).await {
        Some(FieldDocument::Visit(v)) => Some(v),
        _ => None,
    };
    let photos = match &visit {
        Some(v) => attachments::shown(state, &v.attachments).await,
        None => Vec::new(),
    };
    html! {
        section #visit {
            h2 { (lang.t("Kunjungan asal", "Originating visit")) }
            @if let Some(v) = visit {
                dl.facts {
                    dt { (lang.t("Waktu kunjungan", "Visited")) } dd { (when(lang, &v.visited_at)) }
                    dt { (lang.t("Tujuan", "Purpose")) } dd { (v.purpose.as_deref().unwrap_or("—")) }
                    dt { (lang.t("Catatan", "Notes")) } dd.text { (v.notes) }
                    @if !photos.is_empty() {
                        dt { (lang.t("Foto dan pindaian", "Photos and scans")) }
                        dd { (attachments::gallery(lang, &photos)) }
                    }
                    dt { (lang.t("Lihat juga", "See also")) }
                    dd {
                        a href={"/beneficiaries/" (v.beneficiary.nik.as_str())} {
                            (lang.t("Riwayat penerima manfaat", "Beneficiary timeline"))
                        }
                    }
                }
            } @else {
                p.muted {
                    (lang.t("Kunjungan ini tidak tersedia untuk Anda: ", "This visit is not available to you: "))
                    code { (id.url().to_string()) }
                }
            }
        }
    }
}
