//! `/admin/enroll`: pick a person, make a one-time enrollment code, show it large and as a
//! QR code that opens the field app with the code filled in. Administrators see every user
//! but administrators; coordinators see the field workers of their areas.
//!
//! The QR code is drawn here as SVG with the `qrcode` crate (no image features): codes are
//! made per request, so nothing can be drawn at build time, and the page loads no script to
//! draw one (the pages' CSP allows only our own).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::Role;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::AppState;
use crate::web::enroll::{link, make_code, may_enroll};
use crate::web::i18n::Lang;
use crate::web::layout;
use crate::web::session::{PageUser, Submitted, Viewer};

const PATH: &str = "/admin/enroll";

pub(super) fn allowed(viewer: &Viewer) -> bool {
    matches!(viewer.user.role, Role::Admin | Role::Coordinator)
}

pub(super) fn forbidden(lang: Lang) -> Response {
    layout::error_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.t(
            "Halaman ini hanya untuk admin dan koordinator.",
            "This page is for administrators and coordinators only.",
        ),
    )
}

/// `GET /admin/enroll`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
) -> Response {
    if !allowed(&viewer) {
        return forbidden(viewer.lang);
    }
    render(&state, &viewer, None, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct MakeForm {
    #[serde(default)]
    user: String,
}

/// `POST /admin/enroll`: makes the code and shows it.
pub(super) async fn make(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Submitted(viewer, form): Submitted<MakeForm>,
) -> Response {
    if !allowed(&viewer) {
        return forbidden(viewer.lang);
    }
    match make_code(&state, &viewer, &form.user).await {
        Ok((target, code, expires_at)) => {
            let shown = Made {
                name: target.name,
                link: link(&state, &headers, &code),
                code,
                expires_at,
            };
            render(&state, &viewer, Some(shown), None).await
        }
        Err(e) => render(&state, &viewer, None, Some(e.message)).await,
    }
}

struct Made {
    name: String,
    code: String,
    link: String,
    expires_at: i64,
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    made: Option<Made>,
    error: Option<String>,
) -> Response {
    let lang = viewer.lang;
    let users = match state.storage.users().await {
        Ok(users) => users,
        Err(e) => return layout::internal_error_page(lang, "enrollment page", e),
    };
    let users: Vec<_> = users
        .into_iter()
        .filter(|u| may_enroll(&viewer.user, u))
        .collect();
    let csrf = viewer.csrf.as_deref().unwrap_or_default();
    let body = html! {
        section.narrow.enroll {
            h1 { (lang.t("Pendaftaran HP petugas", "Enrolling field workers' phones")) }
            @if let Some(made) = &made {
                (shown(lang, made))
            }
            @if let Some(error) = &error {
                p.error role="alert" { (error) }
            }
            p { (lang.t(
                "Pilih petugas, buat kode, lalu minta petugas membuka /app/ di HP-nya dan mengetik kode itu atau memindai kode QR. Kode hanya berlaku sekali, selama 24 jam.",
                "Pick a worker, make a code, then have them open /app/ on their phone and type the code or scan the QR code. A code works once, for 24 hours."
            )) }
            @if users.is_empty() {
                p.muted { (lang.t("Tidak ada petugas di wilayah Anda.", "No field workers in your areas.")) }
            } @else {
                form method="post" action=(PATH) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="user" { (lang.t("Petugas", "Worker")) }
                    select #user name="user" {
                        @for u in &users {
                            option value=(u.id) { (u.name) " (" (u.id) ", " (layout::role_name(lang, u.role)) ")" }
                        }
                    }
                    button type="submit" { (lang.t("Buat kode pendaftaran", "Make an enrollment code")) }
                }
            }
        }
    };
    layout::page(
        lang,
        Some(viewer),
        lang.t("Pendaftaran HP", "Phone enrollment"),
        PATH,
        body,
    )
    .into_response()
}

fn shown(lang: Lang, made: &Made) -> Markup {
    html! {
        div.made {
            p { (lang.t("Kode untuk ", "Code for ")) strong { (made.name) } }
            p.enroll-code #enroll-code { (made.code) }
            @if let Some(svg) = qr_svg(&made.link) {
                div.qr { (PreEscaped(svg)) }
            }
            p.muted { (lang.t("Berlaku sampai ", "Valid until ")) (lang.datetime(made.expires_at)) " WIB. "
                (lang.t("Kode ini tidak ditampilkan lagi.", "This code is not shown again.")) }
        }
    }
}

/// The link as an SVG QR code (only rectangles: nothing of the link becomes markup).
fn qr_svg(link: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    // Without the XML declaration, to sit inside HTML.
    Some(
        svg.split_once("?>")
            .map_or(svg.clone(), |(_, rest)| rest.trim().to_owned()),
    )
}
