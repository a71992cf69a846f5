//! Pages of the administrator (who has had none until now), some shared with coordinators:
//! enrollment codes for the field app (`enroll_page.rs`).

mod enroll_page;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new().route(
        "/admin/enroll",
        get(enroll_page::page).post(enroll_page::make),
    )
}
