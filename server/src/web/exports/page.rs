//! `GET /exports`: the form; `GET /exports/download`: checks it and sends the browser on to
//! the API route that makes the file, so pages and scripts share one export.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fieldsync_core::schema::RegionCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::request::{ExportParams, ExportRequest, Format, Refused, date_text, kinds_for, today};
use crate::AppState;
use crate::storage::export::ExportKind;
use crate::web::i18n::Lang;
use crate::web::layout;
use crate::web::session::{PageUser, Viewer};

/// The form's fields, as sent (or as first shown).
#[derive(Debug, Default, Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    params: ExportParams,
}

/// `GET /exports`
pub async fn form(State(state): State<Arc<AppState>>, PageUser(viewer): PageUser) -> Response {
    let today = today();
    let form = ExportForm {
        kind: String::new(),
        format: String::new(),
        params: ExportParams {
            area: String::new(),
            from: date_text(today - 29),
            to: date_text(today),
        },
    };
    render(&state, &viewer, &form, None).await
}

/// `GET /exports/download`
pub async fn download(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(form): Query<ExportForm>,
) -> Response {
    let kind = ExportKind::parse(&form.kind).unwrap_or(ExportKind::Visits);
    let format = Format::parse(&form.format).unwrap_or(Format::Xlsx);
    match ExportRequest::check(&viewer, kind, format, &form.params) {
        Ok(request) => {
            let query = serde_urlencoded::to_string([
                ("area", request.query.area.as_str()),
                ("from", &request.from),
                ("to", &request.to),
            ])
            .unwrap_or_default();
            let target = format!(
                "/api/exports/{}.{}?{query}",
                kind.as_str(),
                format.extension()
            );
            Redirect::to(&target).into_response()
        }
        Err(refused) => render(&state, &viewer, &form, Some(refused)).await,
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    form: &ExportForm,
    refused: Option<Refused>,
) -> Response {
    let lang = viewer.lang;
    let kinds = kinds_for(viewer.user.role);
    if kinds.is_empty() {
        let status = StatusCode::FORBIDDEN;
        return layout::error_page(lang, status, &Refused::Admin.text(lang));
    }
    let found = match state.storage.export_areas(&viewer.user.areas, kinds).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("export areas: {e}");
            Vec::new()
        }
    };
    let areas = area_choices(&viewer.user.areas, &found);
    let status = refused.as_ref().map_or(StatusCode::OK, Refused::status);
    let message = refused.map(|r| r.text(lang));
    let body = body(lang, viewer, form, kinds, &areas, message.as_deref());
    let title = lang.t("Ekspor data", "Export data");
    (
        status,
        layout::page(lang, Some(viewer), title, "/exports", body),
    )
        .into_response()
}

/// The areas to offer: the viewer's own, and every kecamatan and kelurahan below them that
/// has records, in code order (so each sits under its parent).
fn area_choices(scopes: &[RegionCode], found: &[String]) -> Vec<String> {
    let mut areas: BTreeSet<String> = scopes.iter().map(|a| a.as_str().to_owned()).collect();
    for code in found
        .iter()
        .filter_map(|a| RegionCode::parse_prefix(a).ok())
    {
        let kecamatan = code
            .as_str()
            .get(..8)
            .and_then(|k| RegionCode::parse_prefix(k).ok());
        for area in kecamatan.into_iter().chain([code]) {
            if scopes.iter().any(|s| s.covers(&area)) {
                areas.insert(area.as_str().to_owned());
            }
        }
    }
    areas.into_iter().collect()
}

fn level(lang: Lang, code: &str) -> &'static str {
    match code.split('.').count() {
        1 => lang.t("provinsi", "province"),
        2 => lang.t("kota/kabupaten", "city/regency"),
        3 => lang.t("kecamatan", "district"),
        _ => lang.t("kelurahan/desa", "village"),
    }
}

fn kind_name(lang: Lang, kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Visits => lang.t("Kunjungan", "Visits"),
        ExportKind::Referrals => lang.t("Rujukan", "Referrals"),
        ExportKind::Outreach => lang.t("Catatan penyuluhan", "Outreach notes"),
    }
}

fn body(
    lang: Lang,
    viewer: &Viewer,
    form: &ExportForm,
    kinds: &[ExportKind],
    areas: &[String],
    message: Option<&str>,
) -> Markup {
    let p = &form.params;
    let selected_area = if p.area.is_empty() {
        viewer.user.areas.first().map(|a| a.as_str().to_owned())
    } else {
        Some(p.area.clone())
    };
    let format = Format::parse(&form.format).unwrap_or(Format::Xlsx);
    html! {
        h1 { (lang.t("Ekspor data", "Export data")) }
        p.muted { (lang.t(
            "Unduh data di wilayah Anda untuk laporan. Setiap ekspor dicatat di log audit, karena berisi data pribadi.",
            "Download the records of your areas for reports. Every export is written to the audit log, since it holds personal data."
        )) }
        @if let Some(m) = message { p.alert role="alert" { (m) } }
        form.filters method="get" action="/exports/download" {
            label {
                (lang.t("Jenis data", "Records"))
                select name="kind" {
                    @for kind in kinds {
                        option value=(kind.as_str()) selected[form.kind == kind.as_str()] { (kind_name(lang, *kind)) }
                    }
                }
            }
            label {
                (lang.t("Wilayah", "Area"))
                select name="area" {
                    @for area in areas {
                        option value=(area) selected[selected_area.as_deref() == Some(area.as_str())] {
                            (viewer.area_names.label(area)) " (" (level(lang, area)) ", " (area) ")"
                        }
                    }
                }
            }
            label {
                (lang.t("Dari tanggal", "From"))
                input type="date" name="from" value=(p.from) required;
            }
            label {
                (lang.t("Sampai tanggal", "To"))
                input type="date" name="to" value=(p.to) required;
            }
            label {
                (lang.t("Format", "Format"))
                select name="format" {
                    option value="xlsx" selected[format == Format::Xlsx] { "XLSX (Excel)" }
                    option value="csv" selected[format == Format::Csv] { "CSV" }
                }
            }
            button type="submit" { (lang.t("Unduh", "Download")) }
        }
        h2 { (lang.t("Keterangan", "Notes")) }
        ul {
            li { (lang.t(
                "Rentang tanggal berlaku untuk tanggal kunjungan, tanggal rujukan dibuat, dan tanggal penyuluhan; kedua tanggal termasuk. Semua waktu dalam WIB.",
                "The range applies to the day of the visit, the day the referral was made and the day of the outreach; both days are included. All times are in WIB."
            )) }
            li { (lang.t(
                "XLSX untuk Excel: NIK dan No. KK tetap utuh sebagai teks. CSV (UTF-8, dipisah koma) untuk aplikasi lain.",
                "XLSX for Excel: NIK and KK numbers stay whole, as text. CSV (UTF-8, comma-separated) for other software."
            )) }
            li { (lang.t(
                "Catatan dan alasan berisi 200 karakter pertama.",
                "Notes and reasons hold their first 200 characters."
            )) }
            li {
                (lang.t("Untuk skrip, dengan token API:", "For scripts, with an API token:"))
                " " code { "GET /api/exports/visits.csv?area=32.77.01&from=2026-11-01&to=2026-11-30" }
                " (" a href="/api/openapi.json" { "OpenAPI" } ")"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_offered_nest_under_the_viewer_scope() {
        let scopes = [RegionCode::parse_prefix("32.77.01").unwrap()];
        let found = [
            "32.77.01.1002".to_owned(),
            "32.77.01.1001".to_owned(),
            "32.77.02.1001".to_owned(),
        ];
        assert_eq!(
            area_choices(&scopes, &found),
            ["32.77.01", "32.77.01.1001", "32.77.01.1002"]
        );
        let city = [RegionCode::parse_prefix("32.77").unwrap()];
        assert_eq!(
            area_choices(&city, &found[2..]),
            ["32.77", "32.77.02", "32.77.02.1001"]
        );
    }
}
