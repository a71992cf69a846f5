//! What coordinators see: the merged activity of every worker in their areas, a
//! beneficiary's timeline by NIK, summaries per worker and per kelurahan, and live updates
//! when a phone's change becomes durable.
//!
//! Everything is read from the query tables through [`crate::storage::Activity`], bounded by
//! a [`Scope`] made from the viewer: their areas, and the document types their role may read
//! (the phones' rule, [`fieldsync_core::schema::may_read`]).
//!
//! - `filters.rs`: the feed's filters, from the URL query.
//! - `feed.rs`: `/activity` and `/api/activity`.
//! - `timeline.rs`: `/beneficiaries/{nik}` and its API.
//! - `summary.rs`: `/summary` and its API.
//! - `live.rs`: `/api/activity/stream`, server-sent events.
//! - `workbench.rs`: `/workbench` and its API: what needs action, and each worker's caseload.
//! - `docs.rs`: the OpenAPI operations of the routes above.

mod docs;
mod feed;
mod filters;
mod household;
mod live;
mod map;
mod search;
mod summary;
mod timeline;
mod workbench;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use fieldsync_core::schema::{DocKind, Role};

use super::api::ApiRoute;
use super::layout;
use super::session::Viewer;
use crate::AppState;
use crate::storage::activity::Scope;

/// Who may read the activity feed and timelines: everyone who reads field documents.
const FEED_ROLES: &[Role] = &[Role::Peksos, Role::Coordinator, Role::Supervisor];
/// Who may read the summaries.
const SUMMARY_ROLES: &[Role] = &[Role::Coordinator, Role::Supervisor];

pub(super) fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route("/activity", get(feed::page))
        .route("/beneficiaries/{nik}", get(timeline::page))
        .route("/summary", get(summary::page))
        .route("/search", get(search::page))
        .route("/households/{kk}", get(household::page))
        .route("/map", get(map::page))
        .route("/workbench", get(workbench::page))
}

pub(super) fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/activity",
            get(feed::api),
            docs::activity(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/activity/stream",
            get(live::stream),
            docs::stream(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/beneficiaries/{nik}",
            get(timeline::api),
            docs::timeline(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/search",
            get(search::api),
            search::openapi(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/households/{kk}",
            get(household::api),
            household::openapi(),
        ),
        ApiRoute::new(Method::GET, "/api/map", get(map::api), map::openapi()),
        ApiRoute::new(
            Method::GET,
            "/api/summary",
            get(summary::api),
            docs::summary(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api/workbench",
            get(workbench::api),
            docs::workbench(),
        ),
    ]
}

/// The document types a role may read: the rule of `may_read`, as a list the queries can
/// use (a unit test holds the two together).
fn readable_kinds(role: Role) -> &'static [DocKind] {
    match role {
        Role::Peksos | Role::Coordinator => &[DocKind::Visit, DocKind::Referral, DocKind::Outreach],
        Role::Supervisor => &[DocKind::Visit, DocKind::Referral],
        Role::Admin => &[],
    }
}

/// What the viewer may read.
fn scope_of(viewer: &Viewer) -> Scope {
    Scope {
        areas: viewer.user.areas.clone(),
        kinds: readable_kinds(viewer.user.role).to_vec(),
    }
}

/// The page a role without access to a part of the web gets.
fn forbidden_page(viewer: &Viewer) -> Response {
    let lang = viewer.lang;
    layout::error_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.t(
            "Halaman ini tidak tersedia untuk peran Anda",
            "This page is not available to your role",
        ),
    )
}

/// A page failed on our side: logged, and a plain page for the viewer.
fn failed_page(viewer: &Viewer, cause: impl std::fmt::Display) -> Response {
    tracing::error!("web page failed: {cause}");
    let lang = viewer.lang;
    layout::error_page(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        lang.t(
            "Server tidak dapat menampilkan halaman ini sekarang. Coba lagi sebentar lagi.",
            "The server cannot show this page now. Try again in a moment.",
        ),
    )
}

/// Up to `max` characters of a text, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{}…", head.trim_end())
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::{Author, FieldDocument, RegionCode, examples, may_read};

    use super::*;

    #[test]
    fn readable_kinds_follow_the_read_rule_of_the_phones() {
        let area = RegionCode::parse("32.77.01.1001").unwrap();
        let docs = [
            FieldDocument::Visit(examples::visit(&area, "ani")),
            FieldDocument::Referral(examples::referral(&area, "ani")),
            FieldDocument::Outreach(examples::outreach(&area, "ani")),
        ];
        for role in Role::ALL {
            let author = Author::user("x", *role, vec![area.clone()]);
            for doc in &docs {
                assert_eq!(
                    readable_kinds(*role).contains(&doc.kind()),
                    may_read(&author, Some(doc)),
                    "{role} reading a {}",
                    doc.kind().as_str()
                );
            }
        }
    }

    #[test]
    fn shortening_cuts_at_characters() {
        assert_eq!(shorten("Rumah semi permanen", 5), "Rumah…");
        assert_eq!(shorten("pendek", 10), "pendek");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}
