//! `/admin/devices`: every phone of the people the viewer looks after (administrators: all
//! but administrators; coordinators: the field workers of their areas), with its last
//! connection, and a button that revokes a lost one. Revoking cuts the phone off within
//! 2 seconds and makes it delete its data (`crate::live`); the line goes to the audit log.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::enroll_page::{allowed, forbidden};
use crate::AppState;
use crate::storage::directory::AuditEntry;
use crate::storage::now_millis;
use crate::web::enroll::may_enroll;
use crate::web::layout;
use crate::web::session::{PageUser, Submitted};

const PATH: &str = "/admin/devices";

/// `GET /admin/devices`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
) -> Response {
    let lang = viewer.lang;
    if !allowed(&viewer) {
        return forbidden(lang);
    }
    let failed = |e| layout::internal_error_page(lang, "devices page", e);
    let users = match state.storage.users().await {
        Ok(users) => users,
        Err(e) => return failed(e),
    };
    let mut rows = Vec::new();
    for user in users.into_iter().filter(|u| may_enroll(&viewer.user, u)) {
        let devices = match state.storage.devices(&user.id).await {
            Ok(devices) => devices,
            Err(e) => return failed(e),
        };
        for device in devices {
            rows.push((user.clone(), device));
        }
    }
    let csrf = viewer.csrf.as_deref().unwrap_or_default();
    let body = html! {
        h1 { (lang.t("Perangkat petugas", "Field workers' devices")) }
        p { (lang.t(
            "Cabut perangkat yang hilang: perangkat itu terputus dalam 2 detik dan menghapus datanya saat tersambung lagi.",
            "Revoke a lost device: it is cut off within 2 seconds and deletes its data when it next connects."
        )) }
        table #devices {
            thead { tr {
                th { (lang.t("Petugas", "Worker")) }
                th { (lang.t("Perangkat", "Device")) }
                th { (lang.t("Didaftarkan", "Enrolled")) }
                th { (lang.t("Terakhir tersambung", "Last connected")) }
                th { (lang.t("Status", "Status")) }
                th {}
            } }
            tbody {
                @for (user, device) in &rows {
                    tr data-device=(device.id) {
                        td { (user.name) " (" (user.id) ")" }
                        td { (device.label) br; span.muted { (device.id) } }
                        td { (lang.datetime(device.created_at)) }
                        td { @if let Some(at) = device.last_seen_at { (lang.datetime(at)) } @else { "—" } }
                        td { @if device.revoked_at.is_some() { (lang.t("Dicabut", "Revoked")) } @else { (lang.t("Aktif", "Active")) } }
                        td {
                            @if device.revoked_at.is_none() {
                                form.inline method="post" action={(PATH) "/revoke"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="device" value=(device.id);
                                    button.danger type="submit" { (lang.t("Cabut", "Revoke")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(
        lang,
        Some(&viewer),
        lang.t("Perangkat", "Devices"),
        PATH,
        body,
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    device: String,
}

/// `POST /admin/devices/revoke`
pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<RevokeForm>,
) -> Response {
    let lang = viewer.lang;
    if !allowed(&viewer) {
        return forbidden(lang);
    }
    // The device must belong to someone the viewer looks after.
    let owner = match state.storage.users().await {
        Ok(users) => {
            let mut found = None;
            for user in users.into_iter().filter(|u| may_enroll(&viewer.user, u)) {
                if let Ok(devices) = state.storage.devices(&user.id).await
                    && devices.iter().any(|d| d.id == form.device)
                {
                    found = Some(user);
                    break;
                }
            }
            found
        }
        Err(e) => {
            tracing::error!("revoking a device: {e}");
            None
        }
    };
    let Some(owner) = owner else {
        return forbidden(lang);
    };
    match state.storage.revoke_device(&form.device).await {
        Ok(false) => Redirect::to(PATH).into_response(),
        Ok(true) => {
            let line = AuditEntry {
                at: now_millis(),
                device_id: format!("web:{}", viewer.user.id),
                user_id: owner.id,
                document_id: String::new(),
                action: "device-revoked".into(),
                detail: format!("{} revoked by {}", form.device, viewer.user.id),
            };
            if let Err(e) = state.storage.audit_now(&line).await {
                tracing::error!("audit of a revocation: {e}");
            }
            Redirect::to(PATH).into_response()
        }
        Err(e) => layout::internal_error_page(lang, "revoking a device", e),
    }
}
