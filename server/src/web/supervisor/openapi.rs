//! The OpenAPI operations of the supervisor's API: what each route takes and returns, in the
//! document served at `/api/openapi.json` (built from the same route list as the router).

use serde_json::{Value, json};

use super::decide::MAX_NOTE_CHARS;
use crate::web::api::{error_response, ok_json, path_param, query_param};

/// `GET /api/referrals`
pub(super) fn queue() -> Value {
    let nullable_time = json!({"type": ["string", "null"], "format": "date-time"});
    json!({
        "summary": "The referral review queue",
        "description": "Referrals in the caller's areas, oldest submission first, 50 per page. \
            Supervisors and coordinators only.",
        "tags": ["referrals"],
        "parameters": [
            query_param("status", "awaiting (submitted, accepted or needs-documents; the default), all, or one status", json!({"type": "string", "enum": ["awaiting", "all", "draft", "submitted", "accepted", "needs-documents", "approved", "rejected", "enrolled", "closed", "withdrawn"]})),
            query_param("program", "a program slug, e.g. kis-pbi", json!({"type": "string"})),
            query_param("area", "a region code prefix within the caller's areas, e.g. 32.77.01", json!({"type": "string"})),
            query_param("age", "only referrals submitted more than this many days ago", json!({"type": "integer", "minimum": 0})),
            query_param("page", "page number, from 1", json!({"type": "integer", "minimum": 1}))
        ],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["status", "page", "perPage", "total", "items"],
                "properties": {
                    "status": {"type": "string"},
                    "page": {"type": "integer"},
                    "perPage": {"type": "integer"},
                    "total": {"type": "integer", "description": "referrals matching the filters, on every page"},
                    "items": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "area", "beneficiary", "program", "status", "worker", "createdAt", "submittedAt", "ageDays", "documents", "consentGiven"],
                        "properties": {
                            "id": {"type": "string", "description": "the referral's document id"},
                            "area": {"type": "string"},
                            "beneficiary": {"type": "object", "required": ["nik", "name"], "properties": {"nik": {"type": "string"}, "name": {"type": "string"}}},
                            "program": {"type": "string"},
                            "status": {"type": "string"},
                            "worker": {"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
                            "createdAt": {"type": "string", "format": "date-time"},
                            "submittedAt": nullable_time,
                            "ageDays": {"type": ["integer", "null"], "description": "whole days since submission"},
                            "documents": checklist_schema(),
                            "consentGiven": {"type": "boolean"}
                        }
                    }}
                }
            })),
            "400": error_response("a filter is not valid"),
            "401": error_response("not signed in"),
            "403": error_response("not a supervisor or coordinator, or the area lies outside the caller's areas")
        }
    })
}

/// `GET /api/referrals/{id}`
pub(super) fn referral() -> Value {
    let text = json!({"type": "string"});
    let nullable = json!({"type": ["string", "null"]});
    json!({
        "summary": "One referral, read from its document",
        "description": "The referral with its whole event history and derived status. The read \
            is written to the audit log. Supervisors and coordinators only.",
        "tags": ["referrals"],
        "parameters": [path_param("id", "the referral's document id")],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["id", "area", "createdBy", "createdAt", "status", "beneficiary", "program", "reason", "documents", "consent", "visit", "events", "decisions"],
                "properties": {
                    "id": text, "area": text,
                    "createdBy": {"type": "object", "required": ["id", "name"], "properties": {"id": text, "name": nullable}},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "status": {"type": "string", "description": "derived from the events, in list order"},
                    "beneficiary": {"type": "object", "required": ["nik", "kk", "name", "address", "ppks"], "properties": {
                        "nik": text, "kk": nullable, "name": text, "address": nullable,
                        "ppks": {"type": "array", "items": text}
                    }},
                    "program": text, "reason": text,
                    "documents": checklist_schema(),
                    "consent": {"type": "object", "required": ["given", "at", "by"], "properties": {"given": {"type": "boolean"}, "at": text, "by": text}},
                    "visit": {"type": ["string", "null"], "description": "automerge URL of the visit the referral came from"},
                    "events": {"type": "array", "items": {
                        "type": "object",
                        "required": ["seq", "kind", "at", "by", "byName", "note", "applied"],
                        "properties": {
                            "seq": {"type": "integer"}, "kind": text,
                            "at": {"type": "string", "format": "date-time"},
                            "by": text, "byName": nullable, "note": nullable,
                            "applied": {"type": "boolean", "description": "false for an event the status rule did not apply (a conflicting decision)"}
                        }
                    }},
                    "decisions": {"type": "array", "items": text, "description": "the event kinds the caller may add now"}
                }
            })),
            "401": error_response("not signed in"),
            "403": error_response("not a supervisor or coordinator"),
            "404": error_response("no such referral in the caller's areas")
        }
    })
}

/// `POST /api/referrals/{id}/events`
pub(super) fn decision() -> Value {
    let kinds = json!([
        "accepted",
        "needs-documents",
        "approved",
        "rejected",
        "enrolled",
        "closed"
    ]);
    json!({
        "summary": "Record a supervisor's decision on a referral",
        "description": "Appends the event to the referral's document in the caller's name; it \
            reaches the field worker's phone on its next sync. Supervisors only. The answer \
            comes once the change is durable.",
        "tags": ["referrals"],
        "parameters": [path_param("id", "the referral's document id")],
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"type": "string", "enum": kinds},
                    "note": {"type": "string", "maxLength": MAX_NOTE_CHARS, "description": "why; required for rejected and needs-documents"}
                }
            }}}
        },
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["status", "events"],
                "properties": {
                    "status": {"type": "string", "description": "the referral's status after the decision"},
                    "events": {"type": "integer", "description": "events in the referral's history now"}
                }
            })),
            "400": error_response("not a decision, or a reason is missing"),
            "401": error_response("not signed in"),
            "403": error_response("not a supervisor, or X-CSRF-Token missing on a session call"),
            "404": error_response("no such referral in the caller's areas"),
            "409": error_response("the decision does not apply in the referral's status (conflict), or the write rules refused it (refused, with violations)")
        }
    })
}

/// `GET /api/stats/referrals`
pub(super) fn stats() -> Value {
    let outcome = |key: Option<&str>| {
        let mut required = vec![
            "decided",
            "approved",
            "rejected",
            "approvalRate",
            "medianDays",
        ];
        let mut properties = json!({
            "decided": {"type": "integer", "description": "referrals with a first decision in the range"},
            "approved": {"type": "integer"},
            "rejected": {"type": "integer"},
            "approvalRate": {"type": ["number", "null"], "description": "approved / (approved + rejected), 0 to 1"},
            "medianDays": {"type": ["number", "null"], "description": "median days from submission to the first decision"}
        });
        if let Some(key) = key {
            required.push(key);
            properties[key] = json!({"type": "string"});
        }
        json!({"type": "object", "required": required, "properties": properties})
    };
    let date = json!({"type": "string", "format": "date"});
    json!({
        "summary": "Referral outcomes: approval rate and median days to decision, trend and backlog",
        "description": "Each referral counts once, by its first decision (approved or rejected), \
            per program, per kecamatan and per kelurahan in the caller's areas. Supervisors and \
            coordinators only.",
        "tags": ["referrals"],
        "parameters": [
            query_param("from", "first day of decisions (WIB), e.g. 2026-11-01", date.clone()),
            query_param("to", "last day of decisions (WIB), included", date.clone()),
            query_param("area", "a region code prefix within the caller's areas", json!({"type": "string"}))
        ],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["from", "to", "area", "total", "byProgram", "byKecamatan", "byKelurahan", "byMonth", "backlog"],
                "properties": {
                    "from": {"type": ["string", "null"]},
                    "to": {"type": ["string", "null"]},
                    "area": {"type": ["string", "null"]},
                    "total": outcome(None),
                    "byProgram": {"type": "array", "items": outcome(Some("program"))},
                    "byKecamatan": {"type": "array", "items": outcome(Some("area"))},
                    "byKelurahan": {"type": "array", "items": outcome(Some("area"))},
                    "byMonth": {
                        "type": "array",
                        "description": "the trend: per month of the decision (WIB, e.g. 2026-11), oldest first",
                        "items": outcome(Some("month"))
                    },
                    "backlog": {
                        "type": "array",
                        "description": "referrals awaiting a decision now (not limited to the date range), \
                            by whole days waited since submission: 0-7, 8-14, 15-30, more than 30",
                        "items": {
                            "type": "object",
                            "required": ["minDays", "maxDays", "count"],
                            "properties": {
                                "minDays": {"type": "integer"},
                                "maxDays": {"type": ["integer", "null"], "description": "null for the last group"},
                                "count": {"type": "integer"}
                            }
                        }
                    }
                }
            })),
            "400": error_response("a date or area is not valid"),
            "401": error_response("not signed in"),
            "403": error_response("not a supervisor or coordinator, or the area lies outside the caller's areas")
        }
    })
}

/// The OpenAPI schema of a documents checklist.
fn checklist_schema() -> Value {
    json!({
        "type": "object",
        "required": ["ktp", "kk", "sktm", "suratPuskesmas"],
        "properties": {
            "ktp": {"type": "boolean"}, "kk": {"type": "boolean"},
            "sktm": {"type": "boolean"}, "suratPuskesmas": {"type": "boolean"}
        }
    })
}
