//! The JSON API under `/api/` and its OpenAPI document.
//!
//! Every API route is an [`ApiRoute`]: its method, path, handler and OpenAPI operation in one
//! value. The router and `/api/openapi.json` are both built from the same list, so the document
//! cannot name a route the server lacks or miss one it has; tests check that each documented
//! operation answers as documented.

use std::sync::Arc;

use axum::Json;
use axum::http::Method;
use axum::routing::{MethodRouter, get};
use serde_json::{Value, json};

use super::error::error_schema;
use super::session::ApiUser;
use crate::AppState;

/// One operation of the API.
#[derive(Debug)]
pub struct ApiRoute {
    pub method: Method,
    /// Path with `{param}` segments: the same syntax in axum and OpenAPI.
    pub path: &'static str,
    pub handler: MethodRouter<Arc<AppState>>,
    /// The OpenAPI operation object (summary, parameters, responses).
    pub doc: Value,
}

impl ApiRoute {
    pub fn new(
        method: Method,
        path: &'static str,
        handler: MethodRouter<Arc<AppState>>,
        doc: Value,
    ) -> Self {
        Self {
            method,
            path,
            handler,
            doc,
        }
    }
}

/// Every route of the API, from every part of the web.
pub fn routes() -> Vec<ApiRoute> {
    let mut all = vec![ApiRoute::new(
        Method::GET,
        "/api/me",
        get(me),
        json!({
            "summary": "Who the caller is",
            "tags": ["account"],
            "responses": {
                "200": ok_json(json!({
                    "type": "object",
                    "required": ["id", "name", "role", "areas"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "role": {"type": "string", "enum": ["peksos", "coordinator", "supervisor", "admin"]},
                        "areas": {"type": "array", "items": {"type": "string"}},
                        "csrfToken": {"type": ["string", "null"], "description": "send as X-CSRF-Token with state-changing calls made with the session cookie"}
                    }
                })),
                "401": error_response("not signed in")
            }
        }),
    )];
    all.extend(super::extra_api_routes());
    all
}

/// The OpenAPI 3.1 document of `routes`.
pub fn openapi(routes: &[ApiRoute]) -> Value {
    let mut paths = serde_json::Map::new();
    for route in routes {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = route.doc.clone();
    }
    paths.insert(
        "/api/openapi.json".into(),
        json!({"get": {
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {}}}}
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "fieldsync API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read the merged field activity of an area, review referrals and export data. \
                Sign in on the web (session cookie; send X-CSRF-Token with state-changing calls) or \
                send an API token from `fieldsync user api-token` as Authorization: Bearer. \
                Errors are {\"error\": code, \"message\": text}."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (fsa_…)"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::session::SESSION_COOKIE}
            },
            "schemas": {"Error": error_schema()}
        },
        "paths": paths
    })
}

/// A `200` response with a JSON body of this schema.
pub fn ok_json(schema: Value) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
}

/// An error response, with the shared error body.
pub fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// A query parameter for an operation's `parameters`.
pub fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// A path parameter for an operation's `parameters`.
pub fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

async fn me(ApiUser(viewer): ApiUser) -> Json<Value> {
    Json(json!({
        "id": viewer.user.id,
        "name": viewer.user.name,
        "role": viewer.user.role.as_str(),
        "areas": viewer.user.areas.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "csrfToken": viewer.csrf,
    }))
}
