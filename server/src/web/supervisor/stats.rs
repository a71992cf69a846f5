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
use super::labels::AWAITING;
use super::outcomes::{BACKLOG_BOUNDS, Outcome, Stats, backlog, compute};
use super::{
    area_filter, area_select, decimal, filter_error_page, folded_filters, int, labels, present,
    share,
};
use crate::AppState;
use crate::storage::now_millis;
use crate::storage::review::DecisionFilter;
use crate::web::error::ApiError;
use crate::web::i18n::{Lang, WIB_OFFSET_MS};
use crate::web::labels::area;
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

/// The figures: decisions in the range, and the backlog now.
struct Figures {
    stats: Stats,
    /// Referrals waiting for a decision, by how long (see [`BACKLOG_BOUNDS`]).
    backlog: [u64; 4],
}

async fn load(state: &AppState, viewer: &Viewer, p: &StatsParams) -> Result<Figures, ApiError> {
    super::may_view(viewer)?;
    let filter = parse(viewer, p)?;
    let rows = state.storage.decisions(&filter).await?;
    let awaiting: Vec<String> = AWAITING.iter().map(|s| s.as_str().to_owned()).collect();
    let open = state
        .storage
        .open_referrals(&filter.scopes, filter.area.as_ref(), &awaiting)
        .await?;
    Ok(Figures {
        stats: compute(&rows),
        backlog: backlog(&open, now_millis()),
    })
}

/// `GET /api/stats/referrals`
pub(super) async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<StatsParams>,
) -> Result<Json<Value>, ApiError> {
    let Figures { stats, backlog } = load(&state, &viewer, &params).await?;
    let group = |key: &str, rows: &[(String, Outcome)]| -> Vec<Value> {
        rows.iter()
            .map(|(k, o)| {
                let mut v = o.json();
                v[key] = json!(k);
                v
            })
            .collect()
    };
    let backlog: Vec<Value> = backlog
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({
                "minDays": if i == 0 { 0 } else { BACKLOG_BOUNDS[i - 1] + 1 },
                "maxDays": BACKLOG_BOUNDS.get(i),
                "count": n,
            })
        })
        .collect();
    Ok(Json(json!({
        "from": present(&params.from),
        "to": present(&params.to),
        "area": present(&params.area),
        "total": stats.total.json(),
        "byProgram": group("program", &stats.by_program),
        "byKecamatan": group("area", &stats.by_kecamatan),
        "byKelurahan": group("area", &stats.by_kelurahan),
        "byMonth": group("month", &stats.by_month),
        "backlog": backlog,
    })))
}

/// The approval rate with what it counts: `75,0 % (3 dari 4)`.
fn rate_text(lang: Lang, o: &Outcome) -> String {
    share(lang, o.approved, o.decided())
}

fn days_text(lang: Lang, o: &Outcome) -> String {
    o.median_days().map_or_else(
        || "—".into(),
        |d| format!("{} {}", decimal(lang, d), lang.t("hari", "days")),
    )
}

/// A backlog group's name: `0–7 hari`, `lebih dari 30 hari`.
fn backlog_label(lang: Lang, group: usize) -> String {
    match (
        group.checked_sub(1).map(|i| BACKLOG_BOUNDS[i]),
        BACKLOG_BOUNDS.get(group),
    ) {
        (None, Some(max)) => format!("0–{max} {}", lang.t("hari", "days")),
        (Some(prev), Some(max)) => format!("{}–{max} {}", prev + 1, lang.t("hari", "days")),
        (Some(prev), None) => format!(
            "{} {prev} {}",
            lang.t("lebih dari", "more than"),
            lang.t("hari", "days")
        ),
        (None, None) => String::new(),
    }
}

/// A month key (`2026-11`) as people read it: `Nov 2026`.
fn month_label(lang: Lang, key: &str) -> String {
    // The first day of the month, as a date, without its day.
    let day = lang.day_text(&format!("{key}-01"));
    day.split_once(' ')
        .map_or(day.clone(), |(_, rest)| rest.to_owned())
}

/// `GET /stats`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<StatsParams>,
) -> Response {
    let lang = viewer.lang;
    let result = async {
        let figures = load(&state, &viewer, &params).await?;
        let areas = state.storage.referral_areas(&viewer.user.areas).await?;
        Ok::<_, ApiError>((figures, areas))
    }
    .await;
    let (Figures { stats, backlog }, areas) = match result {
        Ok(r) => r,
        Err(e) => return filter_error_page(lang, &e),
    };
    let title = lang.t("Statistik hasil rujukan", "Referral outcomes");
    let programs: Vec<(Markup, String, &Outcome)> = stats
        .by_program
        .iter()
        .map(|(p, o)| {
            let name = labels::program_slug(lang, p);
            (html! { (name) }, name, o)
        })
        .collect();
    let rate_bars: Vec<Bar> = programs
        .iter()
        .map(|(_, label, o)| Bar {
            label: label.clone(),
            value: o.approval_rate().map(|r| r * 100.0),
            text: rate_text(lang, o),
        })
        .collect();
    let days_bars: Vec<Bar> = programs
        .iter()
        .map(|(_, label, o)| Bar {
            label: label.clone(),
            value: o.median_days(),
            text: days_text(lang, o),
        })
        .collect();
    let waiting: u64 = backlog.iter().sum();
    let backlog_bars: Vec<Bar> = backlog
        .iter()
        .enumerate()
        .map(|(i, n)| Bar {
            label: backlog_label(lang, i),
            value: Some(*n as f64),
            text: share(lang, *n, waiting),
        })
        .collect();
    let month_bars: Vec<Bar> = stats
        .by_month
        .iter()
        .map(|(m, o)| Bar {
            label: month_label(lang, m),
            value: Some(o.decided() as f64),
            text: format!(
                "{} · {} {}",
                int(lang, o.decided() as i64),
                lang.t("disetujui", "approved"),
                rate_text(lang, o)
            ),
        })
        .collect();
    let area_rows = |rows: &[(String, Outcome)]| -> Vec<(Markup, String, Outcome)> {
        rows.iter()
            .map(|(code, o)| (area(&viewer.area_names, code), code.clone(), o.clone()))
            .collect()
    };
    let months: Vec<(Markup, String, &Outcome)> = stats
        .by_month
        .iter()
        .map(|(m, o)| (html! { (month_label(lang, m)) }, m.clone(), o))
        .collect();
    let kecamatan = area_rows(&stats.by_kecamatan);
    let kelurahan = area_rows(&stats.by_kelurahan);
    let set = [&params.from, &params.to, &params.area]
        .iter()
        .filter(|v| present(v).is_some())
        .count();
    let body = html! {
        h1 { (title) }
        (folded_filters(lang, set, filter_form(&viewer, &params, &areas)))
        p.muted { (lang.t(
            "Setiap rujukan dihitung sekali, menurut keputusan pertamanya (disetujui atau ditolak) pada rentang tanggal keputusan. Lama keputusan dihitung dari pengajuan pertama.",
            "Each referral counts once, by its first decision (approved or rejected) within the range of decision dates. Days to decision count from the first submission."
        )) }
        div.cards #summary {
            (card(lang.t("Diputuskan", "Decided"), int(lang, stats.total.decided() as i64)))
            (card(lang.t("Disetujui", "Approved"), share(lang, stats.total.approved, stats.total.decided())))
            (card(lang.t("Ditolak", "Rejected"), share(lang, stats.total.rejected, stats.total.decided())))
            (card(lang.t("Median lama keputusan", "Median days to decision"), days_text(lang, &stats.total)))
            (card(lang.t("Menunggu keputusan sekarang", "Awaiting a decision now"), int(lang, waiting as i64)))
        }
        h2 { (lang.t("Antrian yang menunggu keputusan", "Backlog: awaiting a decision")) }
        p.muted { (lang.t(
            "Rujukan yang sekarang menunggu keputusan (diajukan, diterima untuk ditinjau, atau menunggu dokumen), menurut lamanya menunggu sejak diajukan; tidak dibatasi rentang tanggal.",
            "Referrals awaiting a decision now (submitted, accepted for review, or waiting for documents), by how long they have waited since submission; not limited to the date range."
        )) }
        div.charts {
            figure {
                @let backlog_title = lang.t("Rujukan menunggu keputusan, menurut lama menunggu", "Referrals awaiting a decision, by time waited");
                figcaption { (backlog_title) }
                (bar_chart(backlog_title, &backlog_bars, 1.0, "backlog"))
            }
        }
        (backlog_table(lang, &backlog, waiting))
        @if stats.total.decided() == 0 {
            p.notice { (lang.t("Belum ada keputusan pada rentang dan wilayah ini.", "No decisions in this range and area yet.")) }
        } @else {
            h2 { (lang.t("Tren per bulan", "Trend by month")) }
            div.charts {
                figure {
                    @let month_title = lang.t("Keputusan per bulan, dengan persentase disetujui", "Decisions per month, with the approval rate");
                    figcaption { (month_title) }
                    (bar_chart(month_title, &month_bars, 1.0, "month"))
                }
            }
            (table(lang, "by-month", lang.t("Bulan", "Month"), &months))
            h2 { (lang.t("Per program", "By program")) }
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
            (table(lang, "by-program", lang.t("Program", "Program"), &programs.iter().map(|(m, k, o)| (m.clone(), k.clone(), *o)).collect::<Vec<_>>()))
            h2 { (lang.t("Per kecamatan", "By district (kecamatan)")) }
            (table(lang, "by-kecamatan", lang.t("Kecamatan", "District"), &refs(&kecamatan)))
            h2 { (lang.t("Per kelurahan/desa", "By kelurahan/village")) }
            (table(lang, "by-kelurahan", lang.t("Kelurahan/desa", "Kelurahan/village"), &refs(&kelurahan)))
        }
    };
    layout::page(lang, Some(&viewer), title, "/stats", body).into_response()
}

fn refs(rows: &[(Markup, String, Outcome)]) -> Vec<(Markup, String, &Outcome)> {
    rows.iter()
        .map(|(m, k, o)| (m.clone(), k.clone(), o))
        .collect()
}

fn card(label: &str, value: String) -> Markup {
    html! {
        div.card {
            div.muted { (label) }
            div.figure { (value) }
        }
    }
}

fn backlog_table(lang: Lang, groups: &[u64; 4], waiting: u64) -> Markup {
    let count = lang.t("Rujukan", "Referrals");
    html! {
        table #backlog {
            thead { tr {
                th { (lang.t("Lama menunggu", "Time waited")) }
                th.num { (count) }
            } }
            tbody {
                @for (i, n) in groups.iter().enumerate() {
                    tr {
                        td.who { (backlog_label(lang, i)) }
                        td.num data-label=(count) { (share(lang, *n, waiting)) }
                    }
                }
            }
        }
    }
}

/// A table of outcomes, one row per group: its name as shown, its key (`data-key`), and the
/// figures, each percentage with the counts it comes from.
fn table(lang: Lang, id: &str, first: &str, rows: &[(Markup, String, &Outcome)]) -> Markup {
    let decided = lang.t("Diputuskan", "Decided");
    let approved = lang.t("Disetujui", "Approved");
    let rejected = lang.t("Ditolak", "Rejected");
    let median = lang.t("Median lama keputusan", "Median days to decision");
    html! {
        table id=(id) {
            thead { tr {
                th { (first) }
                th.num { (decided) }
                th.num { (approved) }
                th.num { (rejected) }
                th.num { (median) }
            } }
            tbody {
                @for (name, key, o) in rows {
                    tr data-key=(key) {
                        td.who { (name) }
                        td.num data-label=(decided) { (int(lang, o.decided() as i64)) }
                        td.num data-label=(approved) { (rate_text(lang, o)) }
                        td.num data-label=(rejected) { (share(lang, o.rejected, o.decided())) }
                        td.num data-label=(median) { (days_text(lang, o)) }
                    }
                }
            }
        }
    }
}

fn filter_form(viewer: &Viewer, p: &StatsParams, areas: &[String]) -> Markup {
    let lang = viewer.lang;
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
            (area_select(viewer, areas, current.as_ref()))
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
        assert_eq!(int(Lang::Id, 1234567), "1.234.567");
        assert_eq!(int(Lang::En, 1234), "1,234");
        assert_eq!(int(Lang::Id, 999), "999");
        assert_eq!(share(Lang::Id, 6, 6), "100,0 % (6 dari 6)");
        assert_eq!(share(Lang::En, 1, 8), "12.5 % (1 of 8)");
        assert_eq!(share(Lang::Id, 0, 0), "—");
    }

    #[test]
    fn groups_and_months_in_words() {
        assert_eq!(backlog_label(Lang::Id, 0), "0–7 hari");
        assert_eq!(backlog_label(Lang::Id, 1), "8–14 hari");
        assert_eq!(backlog_label(Lang::Id, 3), "lebih dari 30 hari");
        assert_eq!(month_label(Lang::Id, "2026-12"), "Des 2026");
        assert_eq!(month_label(Lang::En, "2026-08"), "Aug 2026");
    }
}
