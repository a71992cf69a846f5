//! Placeholder: filled in by the coordinator part of the web.

use std::sync::Arc;

use axum::Router;

use super::api::ApiRoute;
use crate::AppState;

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
}

pub(super) fn api_routes() -> Vec<ApiRoute> {
    Vec::new()
}
