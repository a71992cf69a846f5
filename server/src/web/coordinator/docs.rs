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
        "required": ["document", "kind", "at", "receivedAt", "area", "createdBy", "workerName",
                     "actedBy", "actorName", "beneficiary",
                     "purpose", "excerpt", "followUpOn", "program", "status", "topic", "place",
                     "attendees"],
        "properties": {
            "document": {"type": "string", "description": "document id (automerge URL without the prefix)"},
            "kind": {"type": "string", "enum": ["visit", "referral", "outreach"]},
            "at": {"type": "string", "format": "date-time",
                   "description": "the record's own date. visits: visitedAt; referrals: their last event, else createdAt; outreach: heldAt"},
            "receivedAt": {"type": "string", "format": "date-time",
                           "description": "when the server first received the record; the feed's order"},
            "area": {"type": "string", "description": "region code of the kelurahan/desa"},
            "createdBy": {"type": "string"},
            "workerName": nullable("string"),
            "actedBy": {"type": "string",
                        "description": "who acted last: createdBy, or for a referral the author of its latest applied event (a supervisor's decision)"},
            "actorName": nullable("string"),
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
        "description": "Visits, referrals and outreach of every worker in the caller's areas, the last received \
            by the server first (`from`/`to` filter on each record's own date), \
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
            "byName": {"type": ["string", "null"], "description": "the author's name, if a known user"},
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

pub fn workbench() -> Value {
    let list = |items: Value| {
        json!({
            "type": "object",
            "required": ["count", "items"],
            "properties": {
                "count": {"type": "integer", "description": "how many match in all (items holds at most 200)"},
                "items": {"type": "array", "items": items}
            }
        })
    };
    let record = json!({
        "type": "object",
        "required": ["document", "kind", "area", "areaName", "createdBy", "workerName", "nik", "name",
                     "at", "receivedAt", "followUpOn", "program", "status", "since"],
        "properties": {
            "document": {"type": "string"},
            "kind": {"type": "string", "enum": ["visit", "referral", "outreach"]},
            "area": {"type": "string", "description": "region code"},
            "areaName": nullable("string"),
            "createdBy": {"type": "string"},
            "workerName": nullable("string"),
            "nik": nullable("string"),
            "name": {"type": ["string", "null"], "description": "the beneficiary; outreach: its topic"},
            "at": {"type": "string", "format": "date-time", "description": "the record's own date (visitedAt, a referral's createdAt, heldAt)"},
            "receivedAt": {"type": "string", "format": "date-time"},
            "followUpOn": {"type": ["string", "null"], "format": "date"},
            "program": nullable("string"),
            "status": nullable("string"),
            "since": {"type": ["string", "null"], "format": "date-time",
                      "description": "referrals: their latest event (needs documents) or their decision (approved)"}
        }
    });
    let person = json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}}
    });
    let phone = json!({
        "type": "object",
        "required": ["user", "name", "device", "label", "lastSyncAt"],
        "properties": {
            "user": {"type": "string"},
            "name": {"type": "string"},
            "device": {"type": "string"},
            "label": {"type": "string"},
            "lastSyncAt": {"type": ["string", "null"], "format": "date-time"}
        }
    });
    json!({
        "summary": "What needs action (the workbench)",
        "description": "In the caller's areas: follow-ups overdue (before today, no later visit of the same \
            beneficiary) and due this week (today to Sunday, WIB); referrals needing documents for more \
            than thresholdDays.needsDocuments days; approved but not enrolled after \
            thresholdDays.approvedNotEnrolled days; phones of field workers not synced for more than \
            thresholdDays.phoneNotSynced days; field workers with no visit this week; records received in \
            the last thresholdDays.lateWindow days at least thresholdDays.lateBy days after their own \
            date. Then each field worker's caseload, most overdue first.",
        "tags": ["activity"],
        "responses": {
            "200": ok_json(json!({
                "type": "object",
                "required": ["today", "weekEnd", "thresholdDays", "lists", "workers"],
                "properties": {
                    "today": {"type": "string", "format": "date"},
                    "weekEnd": {"type": "string", "format": "date"},
                    "thresholdDays": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "lists": {
                        "type": "object",
                        "required": ["followUpsOverdue", "followUpsDue", "needsDocuments",
                                     "approvedNotEnrolled", "phonesNotSynced", "workersWithoutVisits",
                                     "arrivedLate"],
                        "properties": {
                            "followUpsOverdue": list(record.clone()),
                            "followUpsDue": list(record.clone()),
                            "needsDocuments": list(record.clone()),
                            "approvedNotEnrolled": list(record.clone()),
                            "phonesNotSynced": list(phone),
                            "workersWithoutVisits": list(person),
                            "arrivedLate": list(record)
                        }
                    },
                    "workers": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "name", "openCases", "overdueFollowUps", "lastSyncAt", "visitsThisWeek"],
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "openCases": {"type": "integer"},
                            "overdueFollowUps": {"type": "integer"},
                            "lastSyncAt": {"type": ["string", "null"], "format": "date-time"},
                            "visitsThisWeek": {"type": "integer"}
                        }
                    }}
                }
            })),
            "401": error_response("not signed in"),
            "403": error_response("the role has no workbench")
        }
    })
}
