//! The one-decision form of the referral page: the supervisor chooses one decision (each
//! choice says what it does), then writes one note or reason, required where the rules want
//! one; closing, rejecting, and approving while a document is missing ask to confirm.

use fieldsync_core::schema::{EventKind, Referral, Role};
use maud::{Markup, html};

use super::labels;
use super::referral::{Loaded, decisions, needs_note};
use crate::web::attachments;
use crate::web::i18n::Lang;
use crate::web::session::Viewer;

/// The items of the documents checklist that nothing satisfies: neither ticked by the field
/// worker nor backed by an attached scan.
pub(super) fn missing_documents(lang: Lang, r: &Referral) -> Vec<&'static str> {
    r.checklist()
        .iter()
        .filter(|e| !e.satisfied())
        .map(|e| attachments::kind_label(lang, e.item.scan_kind()))
        .collect()
}

/// The question a decision must be confirmed with, if any: closing and rejecting always,
/// approving while a document of the checklist is missing.
pub(super) fn confirmation(lang: Lang, r: &Referral, kind: EventKind) -> Option<String> {
    match kind {
        EventKind::Rejected => Some(
            lang.t(
                "Tolak rujukan ini? Ini keputusan akhir; Peksos membaca alasannya.",
                "Reject this referral? This is a final decision; the field worker reads the reason.",
            )
            .to_owned(),
        ),
        EventKind::Closed => Some(
            lang.t(
                "Tutup rujukan ini? Rujukan yang ditutup tidak dapat dibuka kembali.",
                "Close this referral? A closed referral cannot be reopened.",
            )
            .to_owned(),
        ),
        EventKind::Approved => {
            let missing = missing_documents(lang, r);
            (!missing.is_empty()).then(|| {
                format!(
                    "{} {}. {}",
                    lang.t(
                        "Dokumen belum lengkap (tidak dicentang dan tanpa pindaian):",
                        "Documents missing (not ticked and without a scan):"
                    ),
                    missing.join(", "),
                    lang.t("Tetap setujui rujukan ini?", "Approve this referral anyway?")
                )
            })
        }
        _ => None,
    }
}

/// One decision at a time: choose it (each choice says what it does), then one note or
/// reason box, required for the decisions that must say why. A decision that needs
/// confirming shows a required checkbox: app.js reveals it as soon as the decision is
/// chosen; without the script the server asks for it (`ask`) after the first submission.
pub(super) fn decision_form(
    viewer: &Viewer,
    loaded: &Loaded,
    refill: Option<(EventKind, &str)>,
    ask: Option<&str>,
) -> Markup {
    let lang = viewer.lang;
    let kinds = decisions(viewer, loaded.status());
    let csrf = viewer.csrf.as_deref().unwrap_or_default();
    let action = format!("/referrals/{}/decide", loaded.id);
    let chosen = refill.map(|(k, _)| k);
    let note = refill.map_or("", |(_, n)| n);
    let needing_note: Vec<&str> = kinds
        .iter()
        .filter(|k| needs_note(**k))
        .map(|k| labels::action(lang, *k))
        .collect();
    html! {
        section.decisions #decision {
            h2 { (lang.t("Keputusan", "Decision")) }
            @if viewer.user.role != Role::Supervisor {
                p.muted { (lang.t("Hanya supervisor yang dapat mencatat keputusan.", "Only supervisors can record decisions.")) }
            } @else if kinds.is_empty() {
                p.muted { (lang.t("Tidak ada keputusan yang berlaku pada status ini.", "No decision applies in this status.")) }
            } @else {
                form.decide method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    fieldset.choices {
                        legend { (lang.t("1. Pilih satu keputusan", "1. Choose one decision")) }
                        @for kind in &kinds {
                            @let kind = *kind;
                            @let id = format!("kind-{}", kind.as_str());
                            @let question = confirmation(lang, &loaded.referral, kind);
                            div.choice {
                                input type="radio" name="kind" value=(kind.as_str()) id=(id) required
                                    checked[chosen == Some(kind)]
                                    data-note=[needs_note(kind).then_some("required")]
                                    data-confirm=[question.as_deref()];
                                label for=(id) {
                                    strong class=[matches!(kind, EventKind::Rejected | EventKind::Closed).then_some("bad")] {
                                        (labels::action(lang, kind))
                                    }
                                    span.help { (labels::action_help(lang, kind)) }
                                }
                            }
                        }
                    }
                    div.note {
                        label for="decision-note" {
                            (lang.t("2. Catatan atau alasan", "2. Note or reason"))
                            @if !needing_note.is_empty() {
                                " " span.muted {
                                    "(" (lang.t("wajib untuk", "required for")) " " (needing_note.join(", ")) ")"
                                }
                            }
                        }
                        textarea #decision-note name="note" rows="3" maxlength="2000"
                            required[chosen.is_some_and(needs_note)] { (note) }
                    }
                    @if let Some(question) = ask {
                        div.confirm.warning role="alert" {
                            p.question { (question) }
                            label {
                                input type="checkbox" name="confirm" value="yes" required;
                                " " (lang.t("Ya, saya yakin", "Yes, I am sure"))
                            }
                        }
                    } @else {
                        div.confirm.warning hidden {
                            p.question {}
                            label {
                                input type="checkbox" name="confirm" value="yes";
                                " " (lang.t("Ya, saya yakin", "Yes, I am sure"))
                            }
                        }
                    }
                    button type="submit" { (lang.t("Simpan keputusan", "Record the decision")) }
                }
            }
        }
    }
}
