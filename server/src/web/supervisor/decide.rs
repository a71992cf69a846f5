//! Recording a decision: an event appended to the referral's document in the supervisor's
//! name, through the hub, never a row in a table.
//!
//! The hub judges the change with the same write rules as a phone's, stores it durably,
//! rewrites the query rows in the same transaction and relays it to every phone with the
//! document open; a phone offline now gets it on its next sync. Whether the decision applies
//! in the current status is checked inside the edit, against the document as it is at that
//! moment, so a phone's concurrent change cannot slip between the check and the write.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fieldsync_core::automerge::AutomergeError;
use fieldsync_core::schema::{
    Event, EventKind, FieldDocument, ReferralStatus, Role, Violation, add_event, derive_status,
    format_millis,
};
use fieldsync_protocol::DocumentId;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::referral::{self, View, needs_note};
use super::{document_id, error_page, form, labels};
use crate::AppState;
use crate::hub::EditError;
use crate::storage::now_millis;
use crate::web::error::ApiError;
use crate::web::i18n::Lang;
use crate::web::session::{ApiUser, Submitted, Viewer};

/// Longest note a decision may carry (characters).
pub(super) const MAX_NOTE_CHARS: usize = 2000;

/// A decision recorded: the referral's status after it, and how many events it has now.
#[derive(Debug, Clone, Copy)]
struct Decided {
    status: ReferralStatus,
    events: usize,
}

/// Why a decision was not recorded. Nothing was written in any case.
#[derive(Debug)]
enum Refusal {
    Forbidden,
    NotFound,
    /// Not one of a supervisor's kinds of event.
    NotADecision(EventKind),
    MissingNote(EventKind),
    NoteTooLong,
    /// The status rule would not apply it now.
    DoesNotApply(ReferralStatus, EventKind),
    /// The write rules refused the change.
    Refused(Vec<Violation>),
    Failed(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::NotADecision(_) | Self::MissingNote(_) | Self::NoteTooLong => {
                StatusCode::BAD_REQUEST
            }
            Self::DoesNotApply(..) | Self::Refused(_) => StatusCode::CONFLICT,
            Self::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer to an API call.
    fn api(self) -> Response {
        let status = self.status();
        let (code, message) = match &self {
            Self::Forbidden => {
                return ApiError::forbidden("only supervisors record decisions").into_response();
            }
            Self::NotFound => return ApiError::not_found().into_response(),
            Self::Failed(cause) => return ApiError::internal(cause).into_response(),
            Self::NotADecision(k) => ("invalid", format!("{k} is not a supervisor's decision")),
            Self::MissingNote(k) => ("invalid", format!("a {k} decision needs a note saying why")),
            Self::NoteTooLong => (
                "invalid",
                format!("a note has at most {MAX_NOTE_CHARS} characters"),
            ),
            Self::DoesNotApply(s, k) => (
                "conflict",
                format!("{k} does not apply to a referral that is {}", s.as_str()),
            ),
            Self::Refused(v) => {
                let violations: Vec<Value> = v
                    .iter()
                    .map(|v| json!({"path": v.path, "message": v.message}))
                    .collect();
                let first = v.first().map(ToString::to_string).unwrap_or_default();
                return (
                    status,
                    Json(json!({
                        "error": "refused",
                        "message": format!("the write rules refused this change: {first}"),
                        "violations": violations,
                    })),
                )
                    .into_response();
            }
        };
        ApiError::new(status, code, message).into_response()
    }

    /// What the referral page says about it.
    fn message(&self, lang: Lang) -> String {
        match self {
            Self::NotADecision(_) => lang
                .t(
                    "Ini bukan keputusan supervisor.",
                    "This is not a supervisor's decision.",
                )
                .to_owned(),
            Self::MissingNote(k) => format!(
                "{} “{}”.",
                lang.t(
                    "Tuliskan alasannya untuk keputusan",
                    "Write the reason for the decision"
                ),
                labels::action(lang, *k)
            ),
            Self::NoteTooLong => format!(
                "{} {} {}",
                lang.t("Catatan paling banyak", "A note has at most"),
                super::int(lang, MAX_NOTE_CHARS as i64),
                lang.t("karakter.", "characters.")
            ),
            Self::DoesNotApply(s, k) => format!(
                "{} “{}” {} “{}”.",
                lang.t("Keputusan", "The decision"),
                labels::action(lang, *k),
                lang.t(
                    "tidak berlaku untuk rujukan berstatus",
                    "does not apply to a referral with status"
                ),
                labels::status(lang, *s)
            ),
            Self::Refused(_) => lang
                .t(
                    "Aturan penulisan menolak perubahan ini; tidak ada yang disimpan:",
                    "The write rules refused this change; nothing was stored:",
                )
                .to_owned(),
            Self::Forbidden | Self::NotFound | Self::Failed(_) => String::new(),
        }
    }
}

/// What the edit saw of the document, inside the actor.
#[derive(Debug, Clone, Copy)]
enum Seen {
    NotAReferral,
    Referral {
        before: ReferralStatus,
        events: usize,
    },
}

/// The note of a decision, trimmed: refused when the decision is not a supervisor's, when
/// it must say why and does not, or when it is too long.
fn checked_note(kind: EventKind, note: Option<&str>) -> Result<Option<&str>, Refusal> {
    if !kind.may_be_added_by(Role::Supervisor) {
        return Err(Refusal::NotADecision(kind));
    }
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_none() && needs_note(kind) {
        return Err(Refusal::MissingNote(kind));
    }
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(Refusal::NoteTooLong);
    }
    Ok(note)
}

/// Appends the decision to the referral's document, in the viewer's name.
async fn decide(
    state: &AppState,
    viewer: &Viewer,
    id: DocumentId,
    kind: EventKind,
    note: Option<&str>,
) -> Result<Decided, Refusal> {
    if viewer.user.role != Role::Supervisor {
        return Err(Refusal::Forbidden);
    }
    let note = checked_note(kind, note)?;
    let event = Event {
        kind,
        at: format_millis(now_millis()),
        by: viewer.user.id.clone(),
        note: note.map(str::to_owned),
        id: None,
    };
    let seen = Arc::new(Mutex::new(None));
    let slot = seen.clone();
    let result = state
        .hub
        .edit(
            id,
            &viewer.editor(),
            Box::new(move |tx| {
                let current = FieldDocument::read_state(&*tx).ok().flatten();
                let Some(FieldDocument::Referral(r)) = current else {
                    *slot.lock().expect("slot lock") = Some(Seen::NotAReferral);
                    return Err(AutomergeError::Fail);
                };
                let before = derive_status(r.events.iter().map(|e| e.kind)).status;
                *slot.lock().expect("slot lock") = Some(Seen::Referral {
                    before,
                    events: r.events.len(),
                });
                if before.after(kind).is_none() {
                    // Abandoned: nothing is written, and the caller is told why below.
                    return Err(AutomergeError::Fail);
                }
                add_event(tx, &event).map(|_| ())
            }),
        )
        .await;
    let seen = *seen.lock().expect("slot lock");
    match (result, seen) {
        (Ok(()), Some(Seen::Referral { before, events })) => Ok(Decided {
            status: before.after(kind).unwrap_or(before),
            events: events + 1,
        }),
        (Err(EditError::NotFound), _) | (_, Some(Seen::NotAReferral)) => Err(Refusal::NotFound),
        (Err(EditError::Refused(v)), _) => Err(Refusal::Refused(v)),
        (Err(_), Some(Seen::Referral { before, .. })) if before.after(kind).is_none() => {
            Err(Refusal::DoesNotApply(before, kind))
        }
        (Err(EditError::Failed(cause)), _) => Err(Refusal::Failed(cause)),
        (Ok(()), None) => Err(Refusal::Failed("the edit did not run".into())),
    }
}

#[derive(Debug, Deserialize)]
struct DecisionBody {
    kind: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/referrals/{id}/events`
pub(super) async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let parsed = async {
        super::may_view(&viewer)?;
        let id = document_id(&id)?;
        let body: DecisionBody = serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid(format!(
                "the body must be {{\"kind\": …, \"note\": …}}: {e}"
            ))
        })?;
        let kind = EventKind::parse(&body.kind).map_err(|e| ApiError::invalid(e.0))?;
        Ok::<_, ApiError>((id, kind, body.note))
    }
    .await;
    let (id, kind, note) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match decide(&state, &viewer, id, kind, note.as_deref()).await {
        Ok(d) => Json(json!({"status": d.status.as_str(), "events": d.events})).into_response(),
        Err(refusal) => refusal.api(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    note: String,
    /// `yes` once the supervisor confirmed a decision that asks for it.
    #[serde(default)]
    confirm: String,
}

/// `POST /referrals/{id}/decide`, the one-decision form: on success back to the referral
/// page with a confirmation and a link to the next referral. A rejection or closing, and an
/// approval while a document is missing, first come back with the question to confirm
/// (nothing written yet). Otherwise the page again, saying why, with the choice and note
/// kept. (The API records decisions without this step: a script has no one to ask.)
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Submitted(viewer, form): Submitted<DecisionForm>,
) -> Response {
    let lang = viewer.lang;
    let id = match document_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(lang, &e),
    };
    if viewer.user.role != Role::Supervisor {
        return refused_page(&state, &viewer, id, None, "", Refusal::Forbidden).await;
    }
    let Ok(kind) = EventKind::parse(form.kind.trim()) else {
        let loaded = match referral::load(&state, &viewer, id).await {
            Ok(l) => l,
            Err(e) => return error_page(lang, &e),
        };
        let alert = html! {
            div.alert role="alert" { p { (lang.t(
                "Pilih satu keputusan terlebih dahulu.",
                "Choose a decision first."
            )) } }
        };
        let view = View {
            alert: Some(alert),
            ..View::default()
        };
        return referral::page_with(&state, &viewer, &loaded, view, StatusCode::BAD_REQUEST).await;
    };
    if let Err(refusal) = checked_note(kind, Some(&form.note)) {
        return refused_page(&state, &viewer, id, Some(kind), &form.note, refusal).await;
    }
    if form.confirm.trim() != "yes" {
        let loaded = match referral::load(&state, &viewer, id).await {
            Ok(l) => l,
            Err(e) => return error_page(lang, &e),
        };
        // A decision that does not apply is refused below without asking first.
        let applies = loaded.status().after(kind).is_some();
        if let Some(question) = form::confirmation(lang, &loaded.referral, kind).filter(|_| applies)
        {
            let view = View {
                refill: Some((kind, form.note.as_str())),
                ask: Some(question),
                ..View::default()
            };
            return referral::page_with(&state, &viewer, &loaded, view, StatusCode::OK).await;
        }
    }
    match decide(&state, &viewer, id, kind, Some(&form.note)).await {
        Ok(_) => {
            Redirect::to(&format!("/referrals/{id}?decided={}", kind.as_str())).into_response()
        }
        Err(refusal) => refused_page(&state, &viewer, id, Some(kind), &form.note, refusal).await,
    }
}

/// The answer to a refused decision: the referral page saying why, with the choice and
/// the note kept; a plain page when there is no referral to show.
async fn refused_page(
    state: &AppState,
    viewer: &Viewer,
    id: DocumentId,
    kind: Option<EventKind>,
    note: &str,
    refusal: Refusal,
) -> Response {
    let lang = viewer.lang;
    let status = refusal.status();
    let plain = match &refusal {
        Refusal::Forbidden => {
            let message = lang.t(
                "Hanya supervisor yang dapat mencatat keputusan.",
                "Only supervisors can record decisions.",
            );
            return crate::web::layout::error_page(lang, status, message);
        }
        Refusal::NotFound => Some(ApiError::not_found()),
        Refusal::Failed(cause) => Some(ApiError::internal(cause)),
        _ => None,
    };
    if let Some(e) = plain {
        return error_page(lang, &e);
    }
    let loaded = match referral::load(state, viewer, id).await {
        Ok(l) => l,
        Err(e) => return error_page(lang, &e),
    };
    let alert = html! {
        div.alert role="alert" {
            p { (refusal.message(lang)) }
            @if let Refusal::Refused(violations) = &refusal {
                // The rules' own words are English: an Indonesian page names only the field.
                ul { @for v in violations {
                    li { code { (v.path) } @if lang == Lang::En { " " (v.message) } }
                } }
            }
        }
    };
    let view = View {
        alert: Some(alert),
        refill: kind.map(|k| (k, note)),
        ..View::default()
    };
    referral::page_with(state, viewer, &loaded, view, status).await
}
