//! The administrator's pages as JSON, for scripts: the people the caller looks after
//! (`GET /api/people`, as `/admin/people` lists them) and the NIK audit question
//! (`POST /api/audit/nik`, as `/admin/audit` answers it, audited the same way). The NIK goes
//! in the body, never in a URL, where proxies and logs would keep it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::Method;
use axum::routing::{get, post};
use fieldsync_core::schema::{Nik, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit_page::{PAGE, answer, typed_nik};
use super::people_page::listed;
use crate::AppState;
use crate::web::api::{ApiRoute, error_response, ok_json};
use crate::web::error::ApiError;
use crate::web::session::{ApiUser, require_role};

pub(crate) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/people",
            get(people),
            json!({
                "summary": "The people the caller looks after, with their areas and last phone connection",
                "description": "Administrators: everyone (`manageable` is false for administrators); coordinators: the field workers of their areas. Changes are made on /admin/people.",
                "tags": ["admin"],
                "responses": {
                    "200": ok_json(json!({
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": {
                            "type": "object",
                            "required": ["id", "name", "role", "areas", "disabled", "lastSeenAt", "manageable"],
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "role": {"type": "string", "enum": ["peksos", "coordinator", "supervisor", "admin"]},
                                "areas": {"type": "array", "items": {"type": "string"}},
                                "disabled": {"type": "boolean"},
                                "lastSeenAt": {"type": ["integer", "null"], "description": "epoch milliseconds: when one of their phones last connected"},
                                "manageable": {"type": "boolean", "description": "whether the caller may disable, enable or reassign them"}
                            }
                        }}}
                    })),
                    "401": error_response("Not signed in"),
                    "403": error_response("Only administrators and coordinators")
                }
            }),
        ),
        ApiRoute::new(
            Method::POST,
            "/api/audit/nik",
            post(nik_audit),
            json!({
                "summary": "Who read or changed the records of the beneficiary with this NIK",
                "description": "Administrators only. Every audit line about the visits and referrals whose beneficiary has this NIK, and the earlier questions about it, newest first, 50 at a time. Asking is audited (under a keyed hash of the NIK, never the NIK).",
                "tags": ["admin"],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["nik"],
                    "properties": {
                        "nik": {"type": "string", "description": "16 digits"},
                        "before": {"type": ["integer", "null"], "description": "`next` of the previous page"}
                    }
                }}}},
                "responses": {
                    "200": ok_json(json!({
                        "type": "object",
                        "required": ["items", "next"],
                        "properties": {
                            "items": {"type": "array", "items": {
                                "type": "object",
                                "required": ["at", "userId", "userName", "role", "action", "documentId", "kind", "deviceId"],
                                "properties": {
                                    "at": {"type": "integer", "description": "epoch milliseconds"},
                                    "userId": {"type": "string"},
                                    "userName": {"type": "string"},
                                    "role": {"type": "string"},
                                    "action": {"type": "string", "description": "read, write, refused, or nik-audit (an earlier question)"},
                                    "documentId": {"type": "string"},
                                    "kind": {"type": "string", "description": "visit, referral, or empty"},
                                    "deviceId": {"type": "string", "description": "a phone's device id, web:<user> or api:<user>"}
                                }
                            }},
                            "next": {"type": ["integer", "null"], "description": "send as `before` for the next page; null on the last"}
                        }
                    })),
                    "400": error_response("Not a valid NIK"),
                    "401": error_response("Not signed in"),
                    "403": error_response("Only administrators")
                }
            }),
        ),
    ]
}

async fn people(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, &[Role::Admin, Role::Coordinator])?;
    let items: Vec<Value> = listed(&state, &viewer)
        .await?
        .into_iter()
        .map(|(p, manageable)| {
            json!({
                "id": p.user.id,
                "name": p.user.name,
                "role": p.user.role.as_str(),
                "areas": p.user.areas.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                "disabled": p.user.disabled,
                "lastSeenAt": p.last_seen_at,
                "manageable": manageable,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
struct Ask {
    nik: String,
    #[serde(default)]
    before: Option<i64>,
}

async fn nik_audit(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
    body: Result<Json<Ask>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, &[Role::Admin])?;
    let Ok(Json(ask)) = body else {
        return Err(ApiError::invalid(
            "send {\"nik\": \"<16 digits>\", \"before\": <next of the previous page>}",
        ));
    };
    let nik = Nik::parse(&typed_nik(&ask.nik)).map_err(|e| ApiError::invalid(e.to_string()))?;
    let lines = answer(&state, &viewer, &nik, ask.before).await?;
    let next = (lines.len() as i64 > PAGE).then(|| lines[PAGE as usize - 1].seq);
    let items: Vec<Value> = lines
        .into_iter()
        .take(PAGE as usize)
        .map(|l| {
            json!({
                "at": l.at,
                "userId": l.user_id,
                "userName": l.user_name,
                "role": l.user_role,
                "action": l.action,
                "documentId": l.document_id,
                "kind": l.kind,
                "deviceId": l.device_id,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}
