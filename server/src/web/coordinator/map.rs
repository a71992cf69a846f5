//! The map of visits in the viewer's areas: points where the visit recorded a GPS location,
//! clustered, drawn in the browser by the office map bundle (Leaflet, built from `app/` and
//! served at `/app/office/`); the visits without a location counted per kelurahan beneath.
//! Listing the points is a read of those visits, audited as the feed's are.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::labels;
use super::super::layout;
use super::super::session::{ApiUser, PageUser, require_role};
use super::super::tiles::MapTiles;
use super::{FEED_ROLES, failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::now_millis;

/// Most points sent: the newest visits.
pub const MAX_POINTS: i64 = 5000;
/// The periods offered, in days; the first is the default.
const PERIODS: [i64; 3] = [30, 90, 365];
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Deserialize)]
pub struct MapParams {
    pub days: Option<i64>,
}

fn days_of(params: &MapParams) -> Result<i64, &'static str> {
    match params.days {
        None => Ok(PERIODS[0]),
        Some(d) if PERIODS.contains(&d) => Ok(d),
        Some(_) => Err("days must be 30, 90 or 365"),
    }
}

/// `GET /api/map?days=30`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Query(params): Query<MapParams>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    let days = days_of(&params).map_err(ApiError::invalid)?;
    let (scope, from) = (scope_of(&viewer), now_millis() - days * DAY_MS);
    let found = state.storage.visit_points(&scope, from, MAX_POINTS).await?;
    state
        .reads
        .record(
            state.storage.as_ref(),
            &viewer,
            found.iter().map(|p| (p.document_id.as_str(), "visit")),
        )
        .await?;
    let unlocated = state.storage.unlocated_visits(&scope, from).await?;
    let names = &viewer.area_names;
    let points: Vec<Value> = found
        .iter()
        .map(|p| {
            json!({
                "id": p.document_id,
                "nik": p.nik,
                "name": p.name,
                "area": p.area,
                "area_name": names.label(&p.area),
                "lat": p.lat,
                "lon": p.lon,
                "date": viewer.lang.date(p.visited_at),
            })
        })
        .collect();
    let unlocated: Vec<Value> = unlocated
        .iter()
        .map(|(area, n)| json!({"area": area, "area_name": names.label(area), "visits": n}))
        .collect();
    Ok(Json(json!({
        "days": days,
        "points": points,
        "complete": (found.len() as i64) < MAX_POINTS,
        "unlocated": unlocated,
    })))
}

/// What `/api/openapi.json` says of `GET /api/map`.
pub fn openapi() -> Value {
    use super::super::api::{error_response, ok_json, query_param};
    json!({
        "summary": "Visits on the map",
        "description": "Visits in the caller's areas over the last `days` days: those with a GPS \
            location as points (newest first, at most 5000), and how many had none, per \
            kelurahan. The visits listed are written to the audit log.",
        "tags": ["activity"],
        "parameters": [query_param("days", "30 (default), 90 or 365", json!({"type": "integer", "enum": PERIODS}))],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["days", "points", "complete", "unlocated"],
                "properties": {
                    "days": {"type": "integer"},
                    "points": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "nik", "name", "area", "area_name", "lat", "lon", "date"],
                        "properties": {
                            "id": {"type": "string"},
                            "nik": {"type": "string"},
                            "name": {"type": "string"},
                            "area": {"type": "string"},
                            "area_name": {"type": "string"},
                            "lat": {"type": "number"},
                            "lon": {"type": "number"},
                            "date": {"type": "string", "description": "the visit's date as people read it"}
                        }
                    }},
                    "complete": {"type": "boolean"},
                    "unlocated": {"type": "array", "items": {
                        "type": "object",
                        "required": ["area", "area_name", "visits"],
                        "properties": {
                            "area": {"type": "string"},
                            "area_name": {"type": "string"},
                            "visits": {"type": "integer"}
                        }
                    }}
                }
            })),
            "400": error_response("days is not 30, 90 or 365"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity")
        }
    })
}

/// `GET /map?days=30`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Query(params): Query<MapParams>,
) -> Response {
    if require_role(&viewer, FEED_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let days = days_of(&params).unwrap_or(PERIODS[0]);
    let unlocated = match state
        .storage
        .unlocated_visits(&scope_of(&viewer), now_millis() - days * DAY_MS)
        .await
    {
        Ok(u) => u,
        Err(e) => return failed_page(&viewer, e),
    };
    let tiles = state.map_tiles.as_ref();
    let body = html! {
        h1 { (lang.t("Peta kunjungan", "Visits on the map")) }
        nav.periods aria-label=(lang.t("Periode", "Period")) {
            @for d in PERIODS {
                a.button.secondary href={ "/map?days=" (d) } aria-current=[(d == days).then_some("page")] {
                    (d) " " (lang.t("hari", "days"))
                }
            }
        }
        link rel="stylesheet" href="/app/office/map.css";
        div #map data-source={ "/api/map?days=" (days) }
            data-tiles=[tiles.map(MapTiles::url)]
            data-attribution=[tiles.map(MapTiles::attribution)]
            role="region" aria-label=(lang.t("Peta kunjungan", "Visits on the map")) {}
        p #map-status role="status" aria-live="polite" {
            (lang.t("Memuat peta…", "Loading the map…"))
        }
        noscript { p.alert { (lang.t("Peta memerlukan JavaScript.", "The map needs JavaScript.")) } }
        @if tiles.is_none() {
            p.muted { (lang.t(
                "Peta dasar belum diatur: titik digambar tanpa latar (pengaturan --map-tiles).",
                "No base map is set: points are drawn on a plain background (setting --map-tiles)."
            )) }
        }
        h2 { (lang.t("Kunjungan tanpa lokasi GPS", "Visits without a GPS location")) }
        @if unlocated.is_empty() {
            p.muted { (lang.t("Semua kunjungan periode ini punya lokasi.", "Every visit of this period has a location.")) }
        } @else {
            ul.cards.unlocated {
                @for (area, n) in &unlocated {
                    li data-area=(area) {
                        (labels::area(&viewer.area_names, area)) ": "
                        strong { (n) } " " (lang.t("kunjungan", "visits"))
                    }
                }
            }
        }
        script type="module" src="/app/office/map.js" {}
    };
    let mut response =
        layout::page(lang, Some(&viewer), lang.t("Peta", "Map"), "/map", body).into_response();
    if let Ok(csp) = HeaderValue::from_str(&MapTiles::csp(tiles)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}
