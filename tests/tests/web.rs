//! The web and its JSON API, end to end: sign-in, the coordinator's, the supervisor's and the
//! administrator's pages, exports, and the OpenAPI document, against a real server with
//! phones syncing.

mod common;
#[path = "web/support.rs"]
mod support;

#[path = "web/account.rs"]
mod account;
#[path = "web/admin.rs"]
mod admin;
#[path = "web/coordinator.rs"]
mod coordinator;
#[path = "web/exports.rs"]
mod exports;
#[path = "web/live_stream.rs"]
mod live_stream;
#[path = "web/navigation.rs"]
mod navigation;
#[path = "web/openapi.rs"]
mod openapi;
#[path = "web/supervisor.rs"]
mod supervisor;
#[path = "web/workbench.rs"]
mod workbench;
