//! `/admin/audit`: "who read or changed the records of this beneficiary?" An administrator
//! enters a NIK and gets, newest first and a page at a time, every audit line about the
//! visits and referrals whose beneficiary has that NIK (as the query tables hold it now):
//! who, in which role, read or changed or had a change refused, which document, when, from
//! which phone or browser; and the earlier questions about the same NIK.
//!
//! Only administrators ask: the answer spans every area (it tells whether a person is a
//! beneficiary anywhere), and the data officer answers data subjects and breach questions
//! (docs/security.md). The NIK travels in a POST body, never in a URL, and reaches no log
//! line; the question is audited before the answer is sent, under a keyed hash of the NIK
//! (`crate::admin::nik_query_key`), never the NIK itself.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{Nik, Role};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::admin::nik_query_key;
use crate::storage::directory::AuditEntry;
use crate::storage::now_millis;
use crate::storage::people::{BeneficiaryAudit, BeneficiaryQuery};
use crate::web::i18n::Lang;
use crate::web::layout;
use crate::web::session::{PageUser, Submitted, Viewer};

const PATH: &str = "/admin/audit";
/// Lines per page.
pub(super) const PAGE: i64 = 50;
/// The audit action of asking.
pub const ASKED: &str = "nik-audit";

fn forbidden(lang: Lang) -> Response {
    layout::error_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.t(
            "Halaman ini hanya untuk admin.",
            "This page is for administrators only.",
        ),
    )
}

/// `GET /admin/audit`: the question.
pub(super) async fn page(PageUser(viewer): PageUser) -> Response {
    if viewer.user.role != Role::Admin {
        return forbidden(viewer.lang);
    }
    render(&viewer, StatusCode::OK, "", None, None)
}

#[derive(Debug, Deserialize)]
pub(super) struct AskForm {
    #[serde(default)]
    nik: String,
    /// The page continues below this line (`seq`).
    #[serde(default)]
    before: Option<i64>,
}

/// `POST /admin/audit`: the answer, one page.
pub(super) async fn ask(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<AskForm>,
) -> Response {
    let lang = viewer.lang;
    if viewer.user.role != Role::Admin {
        return forbidden(lang);
    }
    let typed = typed_nik(&form.nik);
    let Ok(nik) = Nik::parse(&typed) else {
        return render(
            &viewer,
            StatusCode::BAD_REQUEST,
            &typed,
            Some(lang.t(
                "NIK tidak sah: 16 angka; angka ke-7–8 tanggal lahir (01–31, perempuan 41–71), angka ke-9–10 bulan lahir (01–12).",
                "Not a valid NIK: 16 digits; digits 7–8 the birth day (01–31, women 41–71), digits 9–10 the birth month (01–12).",
            )),
            None,
        );
    };
    match answer(&state, &viewer, &nik, form.before).await {
        Ok(lines) => render(&viewer, StatusCode::OK, nik.as_str(), None, Some(lines)),
        Err(e) => {
            // The cause only: no NIK in the log.
            tracing::error!("audit question: {e}");
            render(
                &viewer,
                StatusCode::INTERNAL_SERVER_ERROR,
                nik.as_str(),
                Some(lang.t(
                    "Terjadi kesalahan; coba lagi.",
                    "Something went wrong; try again.",
                )),
                None,
            )
        }
    }
}

/// Audits the question, then reads one page of the answer (one line more, to know whether
/// another page follows).
pub(super) async fn answer(
    state: &AppState,
    viewer: &Viewer,
    nik: &Nik,
    before: Option<i64>,
) -> crate::storage::StorageResult<Vec<BeneficiaryAudit>> {
    let key = nik_query_key(state.storage.as_ref(), nik).await?;
    state
        .storage
        .audit_now(&AuditEntry {
            at: now_millis(),
            // A session is a person at a browser; no session means an API token.
            device_id: format!(
                "{}:{}",
                if viewer.csrf.is_some() { "web" } else { "api" },
                viewer.user.id
            ),
            user_id: viewer.user.id.clone(),
            document_id: key.clone(),
            action: ASKED.into(),
            detail: match before {
                Some(seq) => format!("page before line {seq}"),
                None => "first page".into(),
            },
        })
        .await?;
    state
        .storage
        .beneficiary_audit(&BeneficiaryQuery {
            nik: nik.as_str(),
            asked_as: &key,
            before,
            limit: PAGE + 1,
        })
        .await
}

fn render(
    viewer: &Viewer,
    status: StatusCode,
    nik: &str,
    error: Option<&str>,
    lines: Option<Vec<BeneficiaryAudit>>,
) -> Response {
    let lang = viewer.lang;
    let csrf = viewer.csrf.as_deref().unwrap_or_default();
    let body = html! {
        h1 { (lang.t("Siapa membaca atau mengubah data penerima manfaat ini?", "Who read or changed this beneficiary's records?")) }
        p.muted { (lang.t(
            "Masukkan NIK: daftar ini memuat setiap pembacaan dan perubahan kunjungan dan rujukan dengan NIK itu, dari HP dan dari web. Pertanyaan ini sendiri dicatat di log audit (tanpa NIK).",
            "Enter a NIK: the list holds every read and change of the visits and referrals with that NIK, from phones and from the web. Asking is itself recorded in the audit log (without the NIK)."
        )) }
        form.stacked.card method="post" action=(PATH) {
            input type="hidden" name="csrf" value=(csrf);
            label for="nik" { "NIK" }
            input #nik name="nik" value=(nik) required inputmode="numeric" autocomplete="off" maxlength="20";
            button type="submit" { (lang.t("Cari di log audit", "Search the audit log")) }
        }
        @if let Some(error) = error {
            p.alert role="alert" { (error) }
        }
        @if let Some(lines) = &lines {
            (answer_list(lang, csrf, nik, lines))
        }
    };
    (
        status,
        layout::page(
            lang,
            Some(viewer),
            lang.t("Audit NIK", "NIK audit"),
            PATH,
            body,
        ),
    )
        .into_response()
}

fn answer_list(lang: Lang, csrf: &str, nik: &str, lines: &[BeneficiaryAudit]) -> Markup {
    let more = lines.len() as i64 > PAGE;
    let shown = &lines[..lines.len().min(PAGE as usize)];
    html! {
        h2 { (lang.t("Catatan audit", "Audit lines")) }
        @if shown.is_empty() {
            p #no-lines { (lang.t(
                "Tidak ada catatan: tidak ada kunjungan atau rujukan dengan NIK ini yang dibaca atau diubah.",
                "No lines: no visit or referral with this NIK has been read or changed."
            )) }
        }
        ul.audit #audit-lines {
            @for line in shown {
                li.card data-action=(line.action) data-document=(line.document_id) {
                    div.heading {
                        strong { (what(lang, &line.action)) }
                        span.muted { (lang.datetime(line.at)) }
                    }
                    dl.facts {
                        dt { (lang.t("Oleh", "By")) }
                        dd.wrap {
                            @if line.user_name.is_empty() { (line.user_id) } @else { (line.user_name) " (" (line.user_id) ")" }
                            @if let Ok(role) = Role::parse(&line.user_role) { ", " (layout::role_name(lang, role)) }
                        }
                        dt { (lang.t("Lewat", "Through")) }
                        dd.wrap { (through(lang, &line.device_id)) }
                        @if !line.kind.is_empty() {
                            dt { (lang.t("Dokumen", "Document")) }
                            dd.wrap { (kind(lang, &line.kind)) " " span.muted { (line.document_id) } }
                        }
                    }
                }
            }
        }
        @if let Some(last) = shown.last().filter(|_| more) {
            form.pager method="post" action=(PATH) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="nik" value=(nik);
                input type="hidden" name="before" value=(last.seq);
                button.secondary type="submit" { (lang.t("Catatan sebelumnya", "Earlier lines")) }
            }
        }
    }
}

/// A NIK as typed, without the spaces people put in to read it.
pub(super) fn typed_nik(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace()).collect()
}

/// What an audit action means to a reader.
fn what(lang: Lang, action: &str) -> String {
    match action {
        "read" => lang.t("Membaca", "Read").into(),
        "write" => lang.t("Mengubah", "Changed").into(),
        "refused" => lang.t("Perubahan ditolak", "Change refused").into(),
        ASKED => lang.t("Menanyakan NIK ini", "Asked about this NIK").into(),
        other => other.to_owned(),
    }
}

fn kind(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "visit" => lang.t("Kunjungan", "Visit"),
        "referral" => lang.t("Rujukan", "Referral"),
        _ => "",
    }
}

/// A phone by its device id, a browser as "web", a script as "API".
fn through(lang: Lang, device: &str) -> String {
    if device.starts_with("web:") {
        lang.t("web (peramban)", "web (browser)").into()
    } else if device.starts_with("api:") {
        "API".into()
    } else {
        format!("{} {device}", lang.t("HP", "phone"))
    }
}
