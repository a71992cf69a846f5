//! The workbench's JSON twin, `/api/workbench`: the same lists and caseload as the page.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use fieldsync_core::schema::format_millis;
use serde_json::{Value, json};

use super::super::super::error::ApiError;
use super::super::super::session::{ApiUser, require_role};
use super::{
    APPROVED_DAYS, Items, LATE_BY_DAYS, LATE_WINDOW_DAYS, ListId, NEEDS_DOCUMENTS_DAYS,
    UNSYNCED_DAYS, WORKBENCH_ROLES, cutoffs, items, load,
};
use crate::AppState;
use crate::storage::activity::Person;
use crate::storage::now_millis;
use crate::storage::workbench::{WorkRow, WorkbenchData};

/// `GET /api/workbench`
pub async fn api(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
) -> Result<Json<Value>, ApiError> {
    require_role(&viewer, WORKBENCH_ROLES)?;
    let now = now_millis();
    let data = load(&state, &viewer, now).await?;
    let c = cutoffs(now);
    let names = &viewer.area_names;
    let record = |r: &WorkRow| {
        json!({
            "document": r.document_id,
            "kind": r.kind,
            "area": r.area,
            "areaName": names.name(&r.area),
            "createdBy": r.created_by,
            "workerName": r.worker_name,
            "nik": r.nik,
            "name": r.name,
            "at": format_millis(r.dated_at),
            "receivedAt": format_millis(r.received_at),
            "followUpOn": r.follow_up_on,
            "program": r.program,
            "status": r.status,
            "since": r.since.map(format_millis),
        })
    };
    let person = |p: &Person| json!({"id": p.id, "name": p.name});
    let mut lists = serde_json::Map::new();
    for list in ListId::ALL {
        let items: Vec<Value> = match items(&data, list) {
            Items::Records(l) => l.rows.iter().map(record).collect(),
            Items::Phones(p) => p
                .iter()
                .map(|(p, d)| {
                    json!({
                        "user": p.id,
                        "name": p.name,
                        "device": d.id,
                        "label": d.label,
                        "lastSyncAt": d.last_seen_at.map(format_millis),
                    })
                })
                .collect(),
            Items::People(p) => p.iter().map(person).collect(),
        };
        lists.insert(
            list.api_key().into(),
            json!({"count": items_count(&data, list), "items": items}),
        );
    }
    let workers: Vec<Value> = data
        .workers
        .iter()
        .map(|w| {
            json!({
                "id": w.person.id,
                "name": w.person.name,
                "openCases": w.open_cases,
                "overdueFollowUps": w.overdue,
                "lastSyncAt": w.last_sync().map(format_millis),
                "visitsThisWeek": w.visits_this_week,
            })
        })
        .collect();
    Ok(Json(json!({
        "today": c.today,
        "weekEnd": c.week_end,
        "thresholdDays": {
            "needsDocuments": NEEDS_DOCUMENTS_DAYS,
            "approvedNotEnrolled": APPROVED_DAYS,
            "phoneNotSynced": UNSYNCED_DAYS,
            "lateWindow": LATE_WINDOW_DAYS,
            "lateBy": LATE_BY_DAYS,
        },
        "lists": lists,
        "workers": workers,
    })))
}

fn items_count(data: &WorkbenchData, list: ListId) -> i64 {
    items(data, list).count()
}
