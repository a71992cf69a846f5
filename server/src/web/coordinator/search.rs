//! Search for a beneficiary in the viewer's areas: by NIK or KK (the first 6 or more digits)
//! or by name (the start of each word, without regard to case or accents: `sit ami` finds
//! `Siti Aminah`). Results are people, each with their records' count and latest date, linked
//! to their timeline and household. Listing them is a read of those records, audited as the
//! feed's are (`web::reads`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::format_millis;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::i18n::Lang;
use super::super::labels;
use super::super::layout;
use super::super::session::{ApiUser, PageUser, Viewer, require_role};
use super::{FEED_ROLES, failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::StorageResult;
use crate::storage::beneficiaries::{PersonRecord, Query as Wanted};

/// Records read for one search: people are grouped from them.
const MAX_RECORDS: i64 = 300;
/// Fewest digits of a NIK or KK searched for: fewer match a whole kecamatan.
pub const MIN_DIGITS: usize = 6;

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
}

/// A person found: their newest record first.
#[derive(Debug)]
pub struct Found<'a> {
    pub nik: &'a str,
    pub name: &'a str,
    pub kk: Option<&'a str>,
    pub area: &'a str,
    pub visits: usize,
    pub referrals: usize,
    pub latest: i64,
}

/// What was typed, as a query, or why it cannot be one (in the viewer's language).
pub fn parse(lang: Lang, typed: &str) -> Result<Wanted, &'static str> {
    let typed = typed.trim();
    if typed
        .chars()
        .all(|c| c.is_ascii_digit() || " .-".contains(c))
    {
        let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < MIN_DIGITS || digits.len() > 16 {
            return Err(lang.t(
                "Ketik 6 sampai 16 angka NIK atau No. KK",
                "Type 6 to 16 digits of a NIK or KK number",
            ));
        }
        return Ok(Wanted::Number(digits));
    }
    let words = crate::name_words::words(typed);
    if words.is_empty() || words.iter().any(|w| w.chars().count() < 2) || words.len() > 4 {
        return Err(lang.t(
            "Ketik awal nama (tiap kata minimal 2 huruf, paling banyak 4 kata)",
            "Type the start of a name (at least 2 letters per word, at most 4 words)",
        ));
    }
    Ok(Wanted::Words(words))
}

/// People in the records, in the order of their newest record.
pub fn people(records: &[PersonRecord]) -> Vec<Found<'_>> {
    let mut order: Vec<Found<'_>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for r in records {
        let i = *at.entry(&r.nik).or_insert_with(|| {
            order.push(Found {
                nik: &r.nik,
                name: &r.name,
                kk: r.kk.as_deref(),
                area: &r.area,
                visits: 0,
                referrals: 0,
                latest: r.at,
            });
            order.len() - 1
        });
        let found = &mut order[i];
        if r.kind == "visit" {
            found.visits += 1;
        } else {
            found.referrals += 1;
        }
        if found.kk.is_none() {
            found.kk = r.kk.as_deref();
        }
    }
    order
}

async fn run(
    state: &AppState,
    viewer: &Viewer,
    wanted: &Wanted,
) -> StorageResult<Vec<PersonRecord>> {
    let records = state
        .storage
        .find_records(&scope_of(viewer), wanted, MAX_RECORDS)
        .await?;
    state
        .reads
        .record(
            state.storage.as_ref(),
            viewer,
            records
                .iter()
                .map(|r| (r.document_id.as_str(), r.kind.as_str())),
        )
        .await?;
    Ok(records)
}

/// `GET /api/search?q=`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    let wanted = parse(Lang::En, &params.q).map_err(ApiError::invalid)?;
    let records = run(&state, &viewer, &wanted).await?;
    let people: Vec<Value> = people(&records)
        .iter()
        .map(|p| {
            json!({
                "nik": p.nik,
                "name": p.name,
                "kk": p.kk,
                "area": p.area,
                "visits": p.visits,
                "referrals": p.referrals,
                "latest": format_millis(p.latest),
            })
        })
        .collect();
    Ok(Json(json!({
        "people": people,
        "complete": (records.len() as i64) < MAX_RECORDS,
    })))
}

/// What `/api/openapi.json` says of `GET /api/search`.
pub fn openapi() -> Value {
    use super::super::api::{error_response, ok_json, query_param};
    json!({
        "summary": "Find beneficiaries by NIK, KK or name",
        "description": "People in the caller's areas whose NIK or KK starts with the digits \
            given (6 to 16), or whose name has a word starting with each word given (case and \
            accents ignored). The records listed are written to the audit log.",
        "tags": ["activity"],
        "parameters": [query_param("q", "digits of a NIK or KK, or the start of a name", json!({"type": "string"}))],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["people", "complete"],
                "properties": {
                    "people": {"type": "array", "items": {
                        "type": "object",
                        "required": ["nik", "name", "kk", "area", "visits", "referrals", "latest"],
                        "properties": {
                            "nik": {"type": "string"},
                            "name": {"type": "string", "description": "as in the newest record"},
                            "kk": {"type": ["string", "null"]},
                            "area": {"type": "string"},
                            "visits": {"type": "integer"},
                            "referrals": {"type": "integer"},
                            "latest": {"type": "string", "format": "date-time"}
                        }
                    }},
                    "complete": {"type": "boolean", "description": "false when only the newest matches were read"}
                }
            })),
            "400": error_response("nothing searchable: too few digits or letters"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity")
        }
    })
}

/// `GET /search?q=`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<SearchParams>,
) -> Response {
    if require_role(&viewer, FEED_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let typed = params.q.trim();
    let (status, outcome) = if typed.is_empty() {
        (StatusCode::OK, html! {})
    } else {
        match parse(lang, typed) {
            Err(why) => (
                StatusCode::BAD_REQUEST,
                html! { p.alert role="alert" { (why) } },
            ),
            Ok(wanted) => match run(&state, &viewer, &wanted).await {
                Ok(records) => (StatusCode::OK, results(&viewer, &records)),
                Err(e) => return failed_page(&viewer, e),
            },
        }
    };
    let body = html! {
        h1 { (lang.t("Cari penerima manfaat", "Find a beneficiary")) }
        (form(lang, typed))
        (outcome)
    };
    let title = lang.t("Cari", "Search");
    (
        status,
        layout::page(lang, Some(&viewer), title, "/search", body),
    )
        .into_response()
}

/// The search box, as this page and others show it.
pub fn form(lang: Lang, typed: &str) -> Markup {
    html! {
        form.search method="get" action="/search" role="search" {
            label for="search-q" { (lang.t("NIK, No. KK, atau nama", "NIK, KK number, or name")) }
            div.inline {
                input #search-q type="search" name="q" value=(typed) required
                    autocomplete="off" spellcheck="false" enterkeyhint="search"
                    placeholder=(lang.t("mis. 3277 atau Siti Ami", "e.g. 3277 or Siti Ami"));
                button type="submit" { (lang.t("Cari", "Search")) }
            }
        }
    }
}

fn results(viewer: &Viewer, records: &[PersonRecord]) -> Markup {
    let lang = viewer.lang;
    let found = people(records);
    html! {
        p role="status" {
            @if found.is_empty() {
                (lang.t("Tidak ada yang cocok di wilayah Anda.", "Nobody matches in your areas."))
            } @else {
                (found.len()) " " (lang.t("orang ditemukan", "people found"))
                @if records.len() as i64 >= MAX_RECORDS {
                    " " span.muted { (lang.t("(hanya yang terbaru; persempit pencarian)", "(newest only; narrow the search)")) }
                }
            }
        }
        ul.cards.found {
            @for p in &found {
                li.card data-nik=(p.nik) {
                    div.heading {
                        a href={ "/beneficiaries/" (p.nik) } { strong { (p.name) } }
                    }
                    dl.facts {
                        dt { "NIK" } dd.nik { (p.nik) }
                        dt { (lang.t("No. KK", "KK number")) }
                        dd {
                            @match p.kk {
                                Some(kk) => a href={ "/households/" (kk) } { (kk) },
                                None => span.muted { "—" },
                            }
                        }
                        dt { (lang.t("Wilayah", "Area")) }
                        dd { (labels::area(&viewer.area_names, p.area)) }
                        dt { (lang.t("Catatan", "Records")) }
                        dd {
                            (p.visits) " " (lang.t("kunjungan", "visits")) ", "
                            (p.referrals) " " (lang.t("rujukan", "referrals")) " · "
                            (lang.t("terakhir", "latest")) " " (lang.date(p.latest))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_told_apart() {
        assert_eq!(
            parse(Lang::Id, " 3277 0152 "),
            Ok(Wanted::Number("32770152".into()))
        );
        assert_eq!(
            parse(Lang::Id, "Siti  Ámi"),
            Ok(Wanted::Words(vec!["siti".into(), "ami".into()]))
        );
        assert!(parse(Lang::Id, "3277").is_err(), "too few digits");
        assert!(parse(Lang::Id, "32770152048000021").is_err(), "too many");
        assert!(parse(Lang::Id, "s").is_err(), "one letter");
        assert!(parse(Lang::Id, "a b c d e").is_err(), "too many words");
        assert!(parse(Lang::Id, "%").is_err(), "nothing to search");
    }
}
