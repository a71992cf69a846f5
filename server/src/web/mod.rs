//! The web: pages for coordinators and supervisors, and the JSON API under `/api/`.
//!
//! A request passes the security headers layer, then a handler whose extractors say what it
//! needs: [`session::PageUser`] (a signed-in browser), [`session::Submitted`] (a form with its
//! CSRF token checked) or [`session::ApiUser`] (a session or an API token). Handlers read the
//! query tables through storage, filtered by the viewer's role and areas with the same rules
//! the phones are held to, and write into documents only through the hub
//! ([`crate::hub::Hub::edit`]), in the viewer's name.
//!
//! - `session.rs`: who is asking (cookies, API tokens), CSRF, passwords; `signin.rs`: the
//!   sign-in page, signing out, the language switch; `lockout.rs`: failed sign-ins hold back
//!   the address that made them, never the account.
//! - `layout.rs`, `i18n.rs`: the frame of every page, Bahasa Indonesia first with English.
//! - `api.rs`: the API route list and its OpenAPI document.
//! - `coordinator.rs`, `supervisor.rs`, `exports.rs`: the pages and API of each group of users.
//! - `labels.rs`: the names people read for PPKS categories, programs, statuses, types.
//! - `app.rs`: the field app's files at `/app/`; `enroll.rs`: enrollment codes and their
//!   exchange for a device; `admin/`: the administrator's pages (people, enrollment codes,
//!   devices, the NIK audit question).

mod admin;
pub mod api;
pub mod app;
pub mod attachments;
mod cookies;
mod coordinator;
pub mod enroll;
pub mod error;
mod exports;
pub mod i18n;
pub mod labels;
pub mod layout;
pub mod lockout;
pub mod reads;
pub mod session;
mod signin;
mod supervisor;
pub mod tiles;
pub mod viewer;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fieldsync_core::schema::Role;

use crate::AppState;
use session::PageUser;

/// The routes of the web and the API, with what they share within one server: the failed
/// sign-ins (`lockout.rs`) and the running exports.
pub(crate) fn router() -> Router<Arc<AppState>> {
    let routes = api::routes();
    let document = Arc::new(api::openapi(&routes));
    let mut api = Router::new().route(
        "/api/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    );
    for route in routes {
        api = api.route(route.path, route.handler);
    }
    let api = api.fallback(|| async { error::ApiError::not_found() });
    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/logout", post(signin::logout))
        .route("/lang/{code}", get(signin::switch_lang))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .merge(coordinator::pages())
        .merge(supervisor::pages())
        .merge(exports::pages())
        .merge(admin::pages())
        .merge(enroll::device_routes());
    Router::new()
        .nest(
            "/api",
            Router::new().fallback(|| async { error::ApiError::not_found() }),
        )
        .merge(api)
        .merge(pages)
        .layer(Extension(Arc::new(lockout::Lockout::default())))
        .layer(Extension(Arc::new(exports::Admission::default())))
        .layer(axum::middleware::map_response(security_headers))
        // After the layer: the app's files carry their own policy (`app.rs`).
        .merge(app::routes())
}

/// API routes beyond `/api/me`, from each part of the web.
fn extra_api_routes() -> Vec<api::ApiRoute> {
    let mut routes = coordinator::api_routes();
    routes.extend(supervisor::api_routes());
    routes.extend(exports::api_routes());
    routes.extend(enroll::api_routes());
    routes.extend(admin::api_routes());
    routes
}

/// Under TLS (served here, or by a proxy in front when `secure_cookies` is set) every
/// response, the field app's and `/sync`'s included, tells browsers to use only HTTPS for this
/// host for a year, so that no later visit starts in plain HTTP where a session cookie or the
/// app's device cookie could be taken; neither subdomains nor the preload list are assumed.
pub(crate) async fn strict_transport(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// Headers on every web page and API response: nothing but our own files may load, no
/// framing, no sniffing, and pages with personal data stay out of shared caches.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    // A page may widen it for one purpose (the map's tile server: `tiles.rs`), never more.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `GET /`: each role's first page. Coordinators start at their workbench (what needs
/// action in their areas); a field worker on the web sees the activity of their areas (the
/// workbench's lists are about other workers' phones and caseloads, a coordinator's work).
async fn home(PageUser(viewer): PageUser) -> Response {
    match viewer.user.role {
        Role::Supervisor => Redirect::to("/referrals").into_response(),
        Role::Coordinator => Redirect::to("/workbench").into_response(),
        Role::Peksos => Redirect::to("/activity").into_response(),
        Role::Admin => Redirect::to("/admin/people").into_response(),
    }
}

/// A short digest of the stylesheet and script, in their URLs: a new version is fetched at
/// once after an upgrade, while an unchanged one stays cached.
pub fn assets_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(CSS)
            .chain_update(JS)
            .chain_update(ICON)
            .finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    })
}

const CSS: &str = include_str!("../../static/app.css");
const ICON: &str = include_str!("../../static/icon.svg");
const JS: &str = include_str!("../../static/app.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            // Versioned URLs (`assets_version`): safe to keep for a long time.
            (header::CACHE_CONTROL, "public, max-age=604800"),
        ],
        body,
    )
        .into_response()
}
