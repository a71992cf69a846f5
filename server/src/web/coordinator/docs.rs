//! The OpenAPI operations of the coordinator's routes: what `/api/openapi.json` says about
//! them, kept next to the code so both change together.

use serde_json::{Value, json};

use super::super::api::{error_response, ok_json, path_param, query_param};
use super::filters::MAX_LIMIT;

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

/// One row of the feed, as `/api/activity` and the timeline give it.
fn item_schema() -> Value {
    json!({
        "type": "object",
        "required": ["document", "kind", "at", "area", "createdBy", "workerName", "beneficiary",
                     "purpose", "excerpt", "followUpOn", "program", "status", "topic", "place",
                     "attendees"],
        "properties": {
            "document": {"type": "string", "description": "document id (automerge URL without the prefix)"},
            "kind": {"type": "string", "enum": ["visit", "referral", "outreach"]},
            "at": {"type": "string", "format": "date-time",
                   "description": "visits: visitedAt; referrals: their last event, else createdAt; outreach: heldAt"},
            "area": {"type": "string", "description": "region code of the kelurahan/desa"},
            "createdBy": {"type": "string"},
            "workerName": nullable("string"),
            "beneficiary": {
                "type": ["object", "null"],
                "description": "null for outreach",
                "required": ["nik", "name", "ppks"],
                "properties": {
                    "nik": {"type": "string"},
                    "name": {"type": "string"},
                    "ppks": {"type": "array", "items": {"type": "string"}}
                }
            },
            "purpose": nullable("string"),
            "excerpt": {"type": ["string", "null"],
                        "description": "visits and outreach: the notes; referrals: the reason (at most 200 characters)"},
            "followUpOn": {"type": ["string", "null"], "format": "date"},
            "program": nullable("string"),
            "status": {"type": ["string", "null"], "description": "the referral's derived status"},
            "topic": nullable("string"),
            "place": nullable("string"),
            "attendees": nullable("integer")
        }
    })
}

fn date_param(name: &str, description: &str) -> Value {
    query_param(
        name,
        description,
        json!({"type": "string", "format": "date"}),
    )
}

pub fn activity() -> Value {
    json!({
        "summary": "Merged activity feed",
        "description": "Visits, referrals and outreach of every worker in the caller's areas, newest first, \
            with the types the caller's role may read (supervisors: no outreach). Filters combine.",
        "tags": ["activity"],
        "parameters": [
            query_param("area", "region code prefix within the caller's areas, e.g. 32.77.01", json!({"type": "string"})),
            query_param("worker", "user id of the author (createdBy)", json!({"type": "string"})),
            date_param("from", "first day (WIB), YYYY-MM-DD"),
            date_param("to", "last day (WIB), inclusive"),
            query_param("type", "document type", json!({"type": "string", "enum": ["visit", "referral", "outreach"]})),
            query_param("ppks", "PPKS category slug; matches visits and referrals", json!({"type": "string"})),
            query_param("program", "program slug; matches referrals", json!({"type": "string"})),
            query_param("cursor", "nextCursor of the previous page", json!({"type": "string"})),
            query_param("limit", "rows per page", json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}))
        ],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["items", "nextCursor"],
                "properties": {
                    "items": {"type": "array", "items": item_schema()},
                    "nextCursor": {"type": ["string", "null"], "description": "pass as cursor for older rows; null on the last page"}
                }
            })),
            "400": error_response("a filter is not valid"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity, or area is outside the caller's areas")
        }
    })
}

pub fn stream() -> Value {
    json!({
        "summary": "Live changes (server-sent events)",
        "description": "An event `change` with data {\"document\", \"kind\", \"area\"} each time a document \
            the caller may read is durably changed; `reload` when some were missed. Comments keep the \
            stream alive; it ends after 10 minutes and the client reconnects.",
        "tags": ["activity"],
        "responses": {
            "200": {
                "description": "an event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}
            },
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity")
        }
    })
}

pub fn timeline() -> Value {
    let event = json!({
        "type": "object",
        "required": ["kind", "at", "by", "note", "applied"],
        "properties": {
            "kind": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "by": {"type": "string"},
            "note": {"type": ["string", "null"]},
            "applied": {"type": "boolean", "description": "false when the status rule did not apply it"}
        }
    });
    let mut entry = item_schema();
    entry["required"]
        .as_array_mut()
        .expect("a list")
        .push(json!("events"));
    entry["properties"]["events"] = json!({"type": "array", "items": event});
    json!({
        "summary": "A beneficiary's timeline",
        "description": "Every visit and referral in the caller's areas about one NIK, oldest first, \
            referrals with their events. Reading it is written to the audit log.",
        "tags": ["activity"],
        "parameters": [path_param("nik", "16-digit NIK")],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["nik", "names", "ppks", "areas", "entries"],
                "properties": {
                    "nik": {"type": "string"},
                    "names": {"type": "array", "items": {"type": "string"}, "description": "names as recorded, each once"},
                    "ppks": {"type": "array", "items": {"type": "string"}},
                    "areas": {"type": "array", "items": {"type": "string"}},
                    "entries": {"type": "array", "items": entry}
                }
            })),
            "400": error_response("not a NIK"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read field activity"),
            "404": error_response("no record of this NIK in the caller's areas")
        }
    })
}

pub fn summary() -> Value {
    let count = json!({"type": "integer"});
    json!({
        "summary": "Summaries per worker and per kelurahan",
        "description": "Per worker: visits per ISO week (Monday to Sunday, WIB) for the 8 weeks up to `to`, \
            referrals open now, last visit, and when each device last connected. Per kelurahan: visits, \
            referrals submitted and decided, outreach in the period; referrals open now.",
        "tags": ["activity"],
        "parameters": [
            date_param("from", "first day (WIB); default: the Monday 7 weeks before the week of `to`"),
            date_param("to", "last day (WIB), inclusive; default: today")
        ],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["from", "to", "weeks", "workers", "areas"],
                "properties": {
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "weeks": {"type": "array", "items": {
                        "type": "object",
                        "required": ["week", "start"],
                        "properties": {
                            "week": {"type": "string", "description": "ISO week, e.g. 2026-W48"},
                            "start": {"type": "string", "format": "date"}
                        }
                    }},
                    "workers": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "name", "visitsPerWeek", "openReferrals", "lastVisitAt", "devices"],
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "visitsPerWeek": {"type": "array", "items": count, "description": "one count per entry of weeks"},
                            "openReferrals": count,
                            "lastVisitAt": {"type": ["string", "null"], "format": "date-time"},
                            "devices": {"type": "array", "items": {
                                "type": "object",
                                "required": ["id", "label", "lastSyncAt"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "label": {"type": "string"},
                                    "lastSyncAt": {"type": ["string", "null"], "format": "date-time"}
                                }
                            }}
                        }
                    }},
                    "areas": {"type": "array", "items": {
                        "type": "object",
                        "required": ["area", "visits", "referralsOpen", "referralsSubmitted",
                                     "referralsDecided", "outreach", "outreachAttendees"],
                        "properties": {
                            "area": {"type": "string"},
                            "visits": count,
                            "referralsOpen": count,
                            "referralsSubmitted": count,
                            "referralsDecided": count,
                            "outreach": {"type": ["integer", "null"], "description": "null for roles that do not read outreach"},
                            "outreachAttendees": {"type": ["integer", "null"]}
                        }
                    }}
                }
            })),
            "400": error_response("a date is not valid"),
            "401": error_response("not signed in"),
            "403": error_response("the role may not read summaries")
        }
    })
}
