//! Pages of the administrator, some shared with coordinators: enrollment codes for the field
//! app (`enroll_page.rs`), devices and revoking a lost one (`devices_page.rs`), people and
//! their areas (`people_page.rs`), and, for administrators only, who read or changed a
//! beneficiary's records (`audit_page.rs`). Who may manage whom is one rule for all of them:
//! `crate::web::enroll::may_enroll`. `api.rs` answers the list and the question as JSON.

mod api;
mod audit_page;
mod devices_page;
mod enroll_page;
mod people_page;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub(super) use api::routes as api_routes;

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/admin/enroll",
            get(enroll_page::page).post(enroll_page::make),
        )
        .route("/admin/devices", get(devices_page::page))
        .route("/admin/devices/revoke", post(devices_page::revoke))
        .route(
            "/admin/people",
            get(people_page::page).post(people_page::add),
        )
        .route("/admin/people/disable", post(people_page::disable))
        .route("/admin/people/enable", post(people_page::enable))
        .route("/admin/people/areas", post(people_page::reassign))
        .route("/admin/audit", get(audit_page::page).post(audit_page::ask))
}
