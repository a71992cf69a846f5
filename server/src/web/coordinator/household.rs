//! A household: everyone recorded under one family card (KK) in the viewer's areas, each
//! with their visits and referrals, newest first. Listing them is a read of those records,
//! audited as the feed's are (`web::reads`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{Kk, format_millis};
use maud::html;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::labels::{self, kind_label, program_label, status_label};
use super::super::layout;
use super::super::session::{ApiUser, PageUser, Viewer, require_role};
use super::search::people;
use super::{FEED_ROLES, failed_page, forbidden_page, scope_of};
use crate::AppState;
use crate::storage::StorageResult;
use crate::storage::beneficiaries::PersonRecord;

/// Most records shown of one household.
const MAX_RECORDS: i64 = 500;

async fn load(state: &AppState, viewer: &Viewer, kk: &Kk) -> StorageResult<Vec<PersonRecord>> {
    let records = state
        .storage
        .household(&scope_of(viewer), kk.as_str(), MAX_RECORDS)
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

fn not_found_text(lang: super::super::i18n::Lang) -> &'static str {
    lang.t(
        "Tidak ada catatan dengan No. KK ini di wilayah Anda",
        "No record with this KK number in your areas",
    )
}

/// `GET /api/households/{kk}`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    Path(kk): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    let kk = Kk::parse(&kk).map_err(|e| ApiError::invalid(e.0))?;
    let records = load(&state, &viewer, &kk).await?;
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no record of this KK in your areas",
        ));
    }
    let members: Vec<Value> = people(&records)
        .iter()
        .map(|p| {
            let own: Vec<Value> = records
                .iter()
                .filter(|r| r.nik == p.nik)
                .map(|r| {
                    json!({
                        "id": r.document_id,
                        "type": r.kind,
                        "at": format_millis(r.at),
                        "area": r.area,
                        "created_by": r.created_by,
                        "program": r.program,
                        "status": r.status,
                    })
                })
                .collect();
            json!({"nik": p.nik, "name": p.name, "records": own})
        })
        .collect();
    Ok(Json(json!({"kk": kk.as_str(), "members": members})))
}

/// What `/api/openapi.json` says of `GET /api/households/{kk}`.
pub fn openapi() -> Value {
    use super::super::api::{error_response, ok_json, path_param};
    json!({
        "summary": "A household's members and records",
        "description": "Everyone recorded under one family card in the caller's areas, newest \
            record first, with their visits and referrals. Reading it is written to the audit log.",
        "tags": ["activity"],
        "parameters": [path_param("kk", "16-digit KK number")],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["kk", "members"],
                "properties": {
                    "kk": {"type": "string"},
                    "members": {"type": "array", "items": {
                        "type": "object",
                        "required": ["nik", "name", "records"],
                        "properties": {
                            "nik": {"type": "string"},
                            "name": {"type": "string"},
                            "records": {"type": "array", "items": {"type": "object"}}
                        }
                    }}
                }
            })),
            "400": error_response("not a KK number"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity"),
            "404": error_response("no record of this KK in the caller's areas")
        }
    })
}

/// `GET /households/{kk}`
pub async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
    Path(kk): Path<String>,
) -> Response {
    if require_role(&viewer, FEED_ROLES).is_err() {
        return forbidden_page(&viewer);
    }
    let lang = viewer.lang;
    let Ok(kk) = Kk::parse(&kk) else {
        return layout::error_page(
            lang,
            StatusCode::BAD_REQUEST,
            lang.t("No. KK harus 16 angka", "A KK number is 16 digits"),
        );
    };
    let records = match load(&state, &viewer, &kk).await {
        Ok(r) if r.is_empty() => {
            return layout::error_page(lang, StatusCode::NOT_FOUND, not_found_text(lang));
        }
        Ok(r) => r,
        Err(e) => return failed_page(&viewer, e),
    };
    let ids: Vec<String> = {
        let mut ids: Vec<String> = records.iter().map(|r| r.created_by.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let workers: HashMap<String, String> = state.storage.user_names(&ids).await.unwrap_or_default();
    let members = people(&records);
    let body = html! {
        p { a href="/search" { (lang.t("« Cari", "« Search")) } }
        h1 { (lang.t("Keluarga", "Household")) " " span.nik { (kk.as_str()) } }
        p.muted {
            (members.len()) " " (lang.t("anggota tercatat", "members recorded")) " · "
            (records.len()) " " (lang.t("catatan", "records"))
        }
        @for p in &members {
            section.card.member data-nik=(p.nik) {
                h2 { a href={ "/beneficiaries/" (p.nik) } { (p.name) } }
                p.muted { "NIK " span.nik { (p.nik) } }
                ul.records {
                    @for r in records.iter().filter(|r| r.nik == p.nik) {
                        li data-doc=(r.document_id) {
                            time datetime=(format_millis(r.at)) { (lang.date(r.at)) }
                            " " span.badge.(r.kind) { (kind_label(lang, &r.kind)) }
                            @if let Some(program) = &r.program {
                                " " (program_label(lang, program))
                            }
                            @if let Some(status) = &r.status {
                                " · " (status_label(lang, status))
                            }
                            br;
                            span.muted {
                                (workers.get(&r.created_by).map_or(r.created_by.as_str(), String::as_str))
                                " · " (labels::area(&viewer.area_names, &r.area))
                            }
                        }
                    }
                }
            }
        }
    };
    let path = format!("/households/{}", kk.as_str());
    let title = lang.t("Keluarga", "Household");
    layout::page(lang, Some(&viewer), title, &path, body).into_response()
}
