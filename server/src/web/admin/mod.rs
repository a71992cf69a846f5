//! Pages of the administrator (who has had none until now), some shared with coordinators:
//! enrollment codes for the field app (`enroll_page.rs`), devices and revoking a lost one
//! (`devices_page.rs`).

mod devices_page;
mod enroll_page;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/admin/enroll",
            get(enroll_page::page).post(enroll_page::make),
        )
        .route("/admin/devices", get(devices_page::page))
        .route("/admin/devices/revoke", post(devices_page::revoke))
}
