//! Outcome statistics as a page and as JSON: per program and per area, how many referrals
//! were decided, approved and rejected, the approval rate, and the median days from
//! submission to decision (`outcomes.rs`), as tables and bar charts.
//!
//! A referral counts once, by its first decision (approved or rejected: `decided_at` of its
//! query row), in the range of decision dates (whole days in WIB) asked for.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{RegionCode, date_days};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::charts::{Bar, bar_chart};
use super::outcomes::{Outcome, Stats, compute};
use super::{area_filter, area_select, filter_error_page, labels, present};
use crate::AppState;
use crate::storage::review::DecisionFilter;
use crate::web::error::ApiError;
use crate::web::i18n::{Lang, WIB_OFFSET_MS};
use crate::web::layout;
use crate::web::session::{ApiUser, PageUser, Viewer};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct StatsParams {
    from: Option<String>,
    to: Option<String>,
    area: Option<String>,
}

/// The filter of the parameters: `from`/`to` are whole days in WIB, both included.
fn parse(viewer: &Viewer, p: &StatsParams) -> Result<DecisionFilter, ApiError> {
    let day = |name: &str, v: Option<&str>| {
        v.map(|d| {
            date_days(d).ok_or_else(|| {
                ApiError::invalid(format!("{name} must be a date like 2026-11-20, got {d:?}"))
            })
        })
        .transpose()
    };
    let from = day("from", present(&p.from))?;
    let to = day("to", present(&p.to))?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::invalid("from must not be after to"));
    }
    Ok(DecisionFilter {
        scopes: viewer.user.areas.clone(),
        area: area_filter(viewer, present(&p.area))?,
        from: from.map(|d| d * DAY_MS - WIB_OFFSET_MS),
        until: to.map(|d| (d + 1) * DAY_MS - WIB_OFFSET_MS),
    })
}

async fn load(state: &AppState, viewer: &Viewer, p: &StatsParams) -> Result<Stats, ApiError> {
    super::may_view(viewer)?;
    let filter = parse(viewer, p)?;
    let rows = state.storage.decisions(&filter).await?;
    Ok(compute(&rows))
}

/// `GET /api/stats/referrals`
pub(super) async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<StatsParams>,
) -> Result<Json<Value>, ApiError> {
    let stats = load(&state, &viewer, &params).await?;
    let group = |key: &str, rows: &[(String, Outcome)]| -> Vec<Value> {
        rows.iter()
            .map(|(k, o)| {
                let mut v = o.json();
                v[key] = json!(k);
                v
            })
            .collect()
    };
    Ok(Json(json!({
        "from": present(&params.from),
        "to": present(&params.to),
        "area": present(&params.area),
        "total": stats.total.json(),
        "byProgram": group("program", &stats.by_program),
        "byKecamatan": group("area", &stats.by_kecamatan),
        "byKelurahan": group("area", &stats.by_kelurahan),
    })))
}

/// A number as people here write it: `66,7` in Indonesian, `66.7` in English.
fn decimal(lang: Lang, x: f64) -> String {
    let s = format!("{x:.1}");
    if lang == Lang::Id {
        s.replace('.', ",")
    } else {
        s
    }
}

fn rate_text(lang: Lang, o: &Outcome) -> String {
    o.approval_rate()
        .map_or_else(|| "—".into(), |r| format!("{}%", decimal(lang, r * 100.0)))
}

fn days_text(lang: Lang, o: &Outcome) -> String {
    o.median_days().map_or_else(
        || "—".into(),
        |d| format!("{} {}", decimal(lang, d), lang.t("hari", "days")),
    )
}

/// `GET /stats`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<StatsParams>,
) -> Response {
    let lang = viewer.lang;
    let result = async {
        let stats = load(&state, &viewer, &params).await?;
        let areas = state.storage.referral_areas(&viewer.user.areas).await?;
        Ok::<_, ApiError>((stats, areas))
    }
    .await;
    let (stats, areas) = match result {
        Ok(r) => r,
        Err(e) => return filter_error_page(lang, &e),
    };
    let title = lang.t("Statistik hasil rujukan", "Referral outcomes");
    let programs: Vec<(String, &Outcome)> = stats
        .by_program
        .iter()
        .map(|(p, o)| (labels::program_slug(lang, p), o))
        .collect();
    let rate_bars: Vec<Bar> = programs
        .iter()
        .map(|(label, o)| Bar {
            label: label.clone(),
            value: o.approval_rate().map(|r| r * 100.0),
            text: rate_text(lang, o),
        })
        .collect();
    let days_bars: Vec<Bar> = programs
        .iter()
        .map(|(label, o)| Bar {
            label: label.clone(),
            value: o.median_days(),
            text: days_text(lang, o),
        })
        .collect();
    let body = html! {
        h1 { (title) }
        (filter_form(lang, &params, &areas))
        p.muted { (lang.t(
            "Setiap rujukan dihitung sekali, menurut keputusan pertamanya (disetujui atau ditolak) pada rentang tanggal keputusan. Lama keputusan dihitung dari pengajuan pertama.",
            "Each referral counts once, by its first decision (approved or rejected) within the range of decision dates. Days to decision count from the first submission."
        )) }
        div.cards #summary {
            (card(lang.t("Diputuskan", "Decided"), stats.total.decided().to_string()))
            (card(lang.t("Disetujui", "Approved"), stats.total.approved.to_string()))
            (card(lang.t("Ditolak", "Rejected"), stats.total.rejected.to_string()))
            (card(lang.t("Persentase disetujui", "Approval rate"), rate_text(lang, &stats.total)))
            (card(lang.t("Median lama keputusan", "Median days to decision"), days_text(lang, &stats.total)))
        }
        @if stats.total.decided() == 0 {
            p.notice { (lang.t("Belum ada keputusan pada rentang dan wilayah ini.", "No decisions in this range and area yet.")) }
        } @else {
            div.charts {
                @let rate_title = lang.t("Persentase disetujui per program (%)", "Approval rate per program (%)");
                @let days_title = lang.t("Median hari sampai keputusan per program", "Median days to decision per program");
                figure {
                    figcaption { (rate_title) }
                    (bar_chart(rate_title, &rate_bars, 100.0, "rate"))
                }
                figure {
                    figcaption { (days_title) }
                    (bar_chart(days_title, &days_bars, 1.0, "days"))
                }
            }
            h2 { (lang.t("Per program", "By program")) }
            (table(lang, "by-program", lang.t("Program", "Program"), &programs))
            h2 { (lang.t("Per kecamatan", "By district (kecamatan)")) }
            (table(lang, "by-kecamatan", lang.t("Kecamatan", "District"), &refs(&stats.by_kecamatan)))
            h2 { (lang.t("Per kelurahan/desa", "By kelurahan/village")) }
            (table(lang, "by-kelurahan", lang.t("Kelurahan/desa", "Kelurahan/village"), &refs(&stats.by_kelurahan)))
        }
    };
    layout::page(lang, Some(&viewer), title, "/stats", body).into_response()
}

fn refs(rows: &[(String, Outcome)]) -> Vec<(String, &Outcome)> {
    rows.iter().map(|(k, o)| (k.clone(), o)).collect()
}

fn card(label: &str, value: String) -> Markup {
    html! {
        div.card {
            div.muted { (label) }
            div.figure { (value) }
        }
    }
}

fn table(lang: Lang, id: &str, first: &str, rows: &[(String, &Outcome)]) -> Markup {
    html! {
        div.scroll {
            table id=(id) {
                thead { tr {
                    th { (first) }
                    th.num { (lang.t("Diputuskan", "Decided")) }
                    th.num { (lang.t("Disetujui", "Approved")) }
                    th.num { (lang.t("Ditolak", "Rejected")) }
                    th.num { (lang.t("Persentase disetujui", "Approval rate")) }
                    th.num { (lang.t("Median hari", "Median days")) }
                } }
                tbody {
                    @for (name, o) in rows {
                        tr {
                            td { (name) }
                            td.num { (o.decided()) }
                            td.num { (o.approved) }
                            td.num { (o.rejected) }
                            td.num { (rate_text(lang, o)) }
                            td.num { (days_text(lang, o)) }
                        }
                    }
                }
            }
        }
    }
}

fn filter_form(lang: Lang, p: &StatsParams, areas: &[String]) -> Markup {
    let current = present(&p.area).and_then(|a| RegionCode::parse_prefix(a).ok());
    html! {
        form.filters method="get" action="/stats" {
            label {
                (lang.t("Diputuskan sejak", "Decided from"))
                input type="date" name="from" value=[present(&p.from)];
            }
            label {
                (lang.t("sampai", "to"))
                input type="date" name="to" value=[present(&p.to)];
            }
            (area_select(lang, areas, current.as_ref()))
            button type="submit" { (lang.t("Terapkan", "Apply")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_here_write_them() {
        assert_eq!(decimal(Lang::Id, 66.666), "66,7");
        assert_eq!(decimal(Lang::En, 2.0), "2.0");
    }
}
