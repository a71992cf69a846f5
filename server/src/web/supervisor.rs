//! The supervisor's part of the web: the referral review queue, the referral page with its
//! decisions, and outcome statistics, each as a page and as JSON.
//!
//! Supervisors decide; coordinators may look (queue, referral pages, statistics) without
//! deciding; field workers and administrators are turned away. A decision is never written
//! to a table: it is an event appended to the referral's Automerge document through the hub,
//! in the supervisor's name, judged by the same write rules as a phone's change, and so it
//! reaches the field worker's phone on its next sync. The query rows follow from the
//! document.
//!
//! - `queue.rs`: `GET /referrals`, `GET /api/referrals`.
//! - `referral.rs`: `GET /referrals/{id}`, `GET /api/referrals/{id}`; `form.rs`: its
//!   one-decision form, and which decisions ask to be confirmed.
//! - `decide.rs`: `POST /referrals/{id}/decide` (the one-decision form, with its confirmation
//!   step), `GET /referrals/{id}/next`, `POST /api/referrals/{id}/events`.
//! - `stats.rs`, `outcomes.rs`, `charts.rs`: `GET /stats`, `GET /api/stats/referrals`: the
//!   figures, and SVG bar charts of them.
//! - `openapi.rs`: the OpenAPI operation of each API route.
//! - `labels.rs`: names of statuses, programs, events and PPKS categories.

mod charts;
mod decide;
mod form;
mod labels;
mod openapi;
mod outcomes;
mod queue;
mod referral;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use fieldsync_core::schema::{DocumentsChecklist, RegionCode, Role};
use fieldsync_protocol::DocumentId;
use maud::{Markup, html};

use super::api::ApiRoute;
use super::error::ApiError;
use super::i18n::Lang;
use super::layout;
use super::session::{Viewer, require_role};
use crate::AppState;
use crate::areas::AreaNames;

/// Referrals shown per page of the queue.
const PER_PAGE: i64 = 50;

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route("/referrals", get(queue::page))
        .route("/referrals/{id}", get(referral::page))
        .route("/referrals/{id}/decide", post(decide::page))
        .route("/referrals/{id}/next", get(queue::next))
        .route("/stats", get(stats::page))
}

pub(super) fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/referrals",
            get(queue::api),
            openapi::queue(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/referrals/{id}",
            get(referral::api),
            openapi::referral(),
        ),
        ApiRoute::new(
            Method::POST,
            "/api/referrals/{id}/events",
            post(decide::api),
            openapi::decision(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/stats/referrals",
            get(stats::api),
            openapi::stats(),
        ),
    ]
}

/// Whether the viewer may see the supervisor's pages: supervisors, and coordinators
/// read-only. Both roles may read referrals in their areas (`may_read`), which every query
/// here is limited to.
fn may_view(viewer: &Viewer) -> Result<(), ApiError> {
    require_role(viewer, &[Role::Supervisor, Role::Coordinator])
}

/// The page for an error of these pages, in the viewer's language.
fn error_page(lang: Lang, e: &ApiError) -> Response {
    let message = match e.status {
        StatusCode::FORBIDDEN => lang.t(
            "Halaman ini hanya untuk supervisor dan koordinator Dinas Sosial.",
            "This page is for Dinas Sosial supervisors and coordinators only.",
        ),
        StatusCode::NOT_FOUND => lang.t(
            "Rujukan ini tidak ada, atau berada di luar wilayah Anda.",
            "This referral does not exist, or it lies outside your areas.",
        ),
        StatusCode::BAD_REQUEST => &e.message,
        _ => lang.t(
            "Server tidak dapat menyelesaikan permintaan ini. Coba lagi nanti.",
            "The server could not complete this request. Try again later.",
        ),
    };
    layout::error_page(lang, e.status, message)
}

/// The page for a refused queue or statistics filter. The API's reasons are English (they
/// name the parameters of the URL); an Indonesian page says in Indonesian what to check
/// rather than mixing the two.
fn filter_error_page(lang: Lang, e: &ApiError) -> Response {
    if e.status == StatusCode::BAD_REQUEST && lang == Lang::Id {
        return layout::error_page(
            lang,
            e.status,
            "Filter tidak dapat dipakai: periksa tanggal (tanggal awal tidak setelah tanggal \
             akhir), wilayah, dan angka yang diisi.",
        );
    }
    error_page(lang, e)
}

/// A document id from a path: anything that is not one is a referral that does not exist.
fn document_id(s: &str) -> Result<DocumentId, ApiError> {
    DocumentId::parse(s).map_err(|_| ApiError::not_found())
}

/// An area filter: a region code prefix that overlaps the viewer's areas.
fn area_filter(viewer: &Viewer, area: Option<&str>) -> Result<Option<RegionCode>, ApiError> {
    let Some(area) = area.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let area = RegionCode::parse_prefix(area).map_err(|e| ApiError::invalid(e.0))?;
    let overlaps = viewer
        .user
        .areas
        .iter()
        .any(|s| s.covers(&area) || area.covers(s));
    if !overlaps {
        return Err(ApiError::forbidden(format!(
            "the area {} lies outside your areas",
            area.as_str()
        )));
    }
    Ok(Some(area))
}

/// A query parameter with something in it.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The area filter of a form: every kecamatan and kelurahan with referrals in the viewer's
/// areas (`areas`, from the query rows), and the one chosen now, by name.
fn area_select(viewer: &Viewer, areas: &[String], current: Option<&RegionCode>) -> Markup {
    let lang = viewer.lang;
    let mut choices: Vec<&str> = areas.iter().filter_map(|a| a.get(..8)).collect();
    choices.extend(areas.iter().map(String::as_str));
    choices.extend(current.map(RegionCode::as_str));
    choices.sort_unstable();
    choices.dedup();
    let current = current.map(RegionCode::as_str);
    html! {
        label {
            (lang.t("Wilayah", "Area"))
            select name="area" {
                option value="" { (lang.t("Semua wilayah saya", "All my areas")) }
                @for c in choices {
                    option value=(c) selected[current == Some(c)] { (area_option(lang, &viewer.area_names, c)) }
                }
            }
        }
    }
}

/// An area in a list of choices: `Kec. Cimahi Selatan`, `  Kel. Melong` under it; the code
/// with what it is when no name is known.
fn area_option(lang: Lang, names: &AreaNames, code: &str) -> String {
    let name = names.name(code);
    // A kecamatan code is PP.KK.CC; a kelurahan's last part starts with 1, a desa's with 2.
    match (code.len(), name) {
        (8, Some(n)) => format!("Kec. {n}"),
        (8, None) => format!("{code} ({})", lang.t("kecamatan", "district")),
        (13, Some(n)) if code.as_bytes()[9] == b'2' => format!("\u{a0}\u{a0}Desa {n}"),
        (13, Some(n)) => format!("\u{a0}\u{a0}Kel. {n}"),
        (_, Some(n)) => n.to_owned(),
        (_, None) => code.to_owned(),
    }
}

/// A whole number as people here write it: `1.234` in Indonesian, `1,234` in English.
fn int(lang: Lang, n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let sep = if lang == Lang::Id { '.' } else { ',' };
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(d);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A number with one decimal: `66,7` in Indonesian, `66.7` in English.
fn decimal(lang: Lang, x: f64) -> String {
    let s = format!("{x:.1}");
    if lang == Lang::Id {
        s.replace('.', ",")
    } else {
        s
    }
}

/// A share with what it counts: `75,0 % (3 dari 4)`; `—` when nothing was counted.
fn share(lang: Lang, part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    let rate = part as f64 / whole as f64 * 100.0;
    format!(
        "{} % ({} {} {})",
        decimal(lang, rate),
        int(lang, part as i64),
        lang.t("dari", "of"),
        int(lang, whole as i64)
    )
}

/// Whole days as text: `1 hari`, `41 hari` (`1 day`, `41 days`).
fn days(lang: Lang, n: i64) -> String {
    let unit = match (lang, n) {
        (Lang::Id, _) => "hari",
        (Lang::En, 1) => "day",
        (Lang::En, _) => "days",
    };
    format!("{} {unit}", int(lang, n))
}

/// The filters of a list, folded: a `<details>` whose summary says how many are set (`set`);
/// app.js opens it on a screen wider than a phone.
fn folded_filters(lang: Lang, set: usize, form: Markup) -> Markup {
    html! {
        details.filters {
            summary {
                (lang.t("Filter", "Filters"))
                @if set > 0 {
                    " " span.count { "(" (set) " " (lang.t("aktif", "set")) ")" }
                }
            }
            (form)
        }
    }
}

/// The documents checklist, e.g. `KTP ✓ KK ✓ SKTM ✗ Surat puskesmas ✗`.
fn checklist(lang: Lang, d: &DocumentsChecklist) -> Markup {
    let items = [
        ("KTP", d.ktp),
        ("KK", d.kk),
        ("SKTM", d.sktm),
        (
            lang.t("Surat puskesmas", "Puskesmas letter"),
            d.surat_puskesmas,
        ),
    ];
    html! {
        span.checklist {
            @for (name, present) in items {
                @if present {
                    span.doc.yes title=(lang.t("ada", "present")) { (name) " ✓" }
                } @else {
                    span.doc.no title=(lang.t("belum ada", "missing")) { (name) " ✗" }
                }
                " "
            }
        }
    }
}

/// The checklist of a document as JSON.
fn checklist_json(d: &DocumentsChecklist) -> serde_json::Value {
    serde_json::json!({
        "ktp": d.ktp, "kk": d.kk, "sktm": d.sktm, "suratPuskesmas": d.surat_puskesmas
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::areas::AreaRow;

    #[test]
    fn area_choices_are_named_with_their_kind() {
        let row = |code: &str, name: &str| AreaRow {
            code: code.into(),
            name: name.into(),
        };
        let names = AreaNames::from_rows([
            row("32.77.01", "Cimahi Selatan"),
            row("32.77.01.1001", "Melong"),
            row("32.04.01.2001", "Cikoneng"),
        ]);
        let option = |code| area_option(Lang::Id, &names, code);
        assert_eq!(option("32.77.01"), "Kec. Cimahi Selatan");
        assert_eq!(option("32.77.01.1001"), "\u{a0}\u{a0}Kel. Melong");
        assert_eq!(option("32.04.01.2001"), "\u{a0}\u{a0}Desa Cikoneng");
        assert_eq!(option("32.77.02"), "32.77.02 (kecamatan)");
        assert_eq!(option("32.77.02.1003"), "32.77.02.1003");
    }
}
