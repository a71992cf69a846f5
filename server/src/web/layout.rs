//! The frame of every page: head, navigation by role, language switch, sign-out.
//!
//! Pages are plain HTML rendered on the server with maud, which escapes every value it
//! interpolates: text that came from a phone can never become markup. One small stylesheet
//! and one small script, both served by us (the Content-Security-Policy allows nothing else).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::Role;
use maud::{DOCTYPE, Markup, html};

use super::i18n::Lang;
use super::viewer::Viewer;

/// The navigation entries a role sees: (path, Indonesian, English). Every page a role may
/// open is here (tests/web/navigation.rs checks both ways).
fn nav(role: Role) -> &'static [(&'static str, &'static str, &'static str)] {
    match role {
        Role::Coordinator => &[
            ("/workbench", "Perlu tindakan", "Needs action"),
            ("/activity", "Aktivitas", "Activity"),
            ("/search", "Cari", "Search"),
            ("/map", "Peta", "Map"),
            ("/summary", "Ringkasan", "Summary"),
            ("/referrals", "Rujukan", "Referrals"),
            ("/stats", "Statistik", "Statistics"),
            ("/exports", "Ekspor", "Exports"),
            ("/admin/people", "Pengguna", "People"),
            ("/admin/enroll", "Pendaftaran HP", "Phone enrollment"),
            ("/admin/devices", "Perangkat", "Devices"),
        ],
        Role::Supervisor => &[
            ("/referrals", "Antrian rujukan", "Referral queue"),
            ("/stats", "Statistik", "Statistics"),
            ("/activity", "Aktivitas", "Activity"),
            ("/search", "Cari", "Search"),
            ("/map", "Peta", "Map"),
            ("/summary", "Ringkasan", "Summary"),
            ("/exports", "Ekspor", "Exports"),
        ],
        Role::Peksos => &[
            ("/activity", "Aktivitas", "Activity"),
            ("/search", "Cari", "Search"),
            ("/map", "Peta", "Map"),
            ("/exports", "Ekspor", "Exports"),
        ],
        Role::Admin => &[
            ("/admin/people", "Pengguna", "People"),
            ("/admin/enroll", "Pendaftaran HP", "Phone enrollment"),
            ("/admin/devices", "Perangkat", "Devices"),
            ("/admin/audit", "Audit NIK", "NIK audit"),
        ],
    }
}

/// A whole page. `path` is the page's own path (the language switch returns to it).
pub fn page(lang: Lang, viewer: Option<&Viewer>, title: &str, path: &str, body: Markup) -> Markup {
    let back = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldsync" }
                link rel="stylesheet" href={"/static/app.css?v=" (super::assets_version())};
                link rel="icon" href={"/static/icon.svg?v=" (super::assets_version())} type="image/svg+xml";
                script src={"/static/app.js?v=" (super::assets_version())} defer {}
            }
            body {
                // The first stop of the Tab key: past the header to what the page is about.
                a.skip href="#main" { (lang.t("Langsung ke isi", "Skip to content")) }
                header.top {
                    a.brand href="/" { "fieldsync" span.muted { " · Dinas Sosial" } }
                    @if let Some(v) = viewer {
                        nav {
                            @for (href, id, en) in nav(v.user.role) {
                                a href=(href) aria-current=[path.starts_with(href).then_some("page")] {
                                    (lang.t(id, en))
                                }
                            }
                        }
                    }
                    div.tools {
                        span.lang {
                            a href={"/lang/id?" (back)} aria-current=[(lang == Lang::Id).then_some("true")] { "ID" }
                            " | "
                            a href={"/lang/en?" (back)} aria-current=[(lang == Lang::En).then_some("true")] { "EN" }
                        }
                        @if let Some(v) = viewer {
                            span.who title=(v.user.id) { (v.user.name) " (" (role_name(lang, v.user.role)) ")" }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf.as_deref().unwrap_or_default());
                                button.link type="submit" { (lang.t("Keluar", "Sign out")) }
                            }
                        }
                    }
                }
                main #main tabindex="-1" data-csrf=[viewer.and_then(|v| v.csrf.as_deref())] { (body) }
            }
        }
    }
}

/// A role's name for people.
pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Peksos => lang.t("Peksos", "Field worker"),
        Role::Coordinator => lang.t("Koordinator", "Coordinator"),
        Role::Supervisor => lang.t("Supervisor", "Supervisor"),
        Role::Admin => lang.t("Admin", "Administrator"),
    }
}

/// A 500 page for a failure the viewer cannot mend: the cause goes to the log (with
/// `context`, e.g. "people page"), never to the page.
pub fn internal_error_page(lang: Lang, context: &str, cause: impl std::fmt::Display) -> Response {
    tracing::error!("{context}: {cause}");
    error_page(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        lang.t("Terjadi kesalahan.", "Something went wrong."),
    )
}

/// A page that only says what went wrong.
pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => lang.t("Tidak ditemukan", "Not found"),
        StatusCode::FORBIDDEN => lang.t("Tidak diizinkan", "Not allowed"),
        StatusCode::BAD_REQUEST => lang.t("Permintaan tidak sah", "Bad request"),
        _ => lang.t("Terjadi kesalahan", "Something went wrong"),
    };
    let body = html! {
        section.narrow {
            h1 { (title) }
            p { (message) }
            p { a href="/" { (lang.t("Kembali ke beranda", "Back to the start page")) } }
        }
    };
    (status, page(lang, None, title, "/", body)).into_response()
}
