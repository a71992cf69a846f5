//! `/admin/people`: the people the viewer looks after, and adding, disabling, enabling and
//! reassigning them. Who looks after whom is the enrollment rule (`crate::web::enroll::may_enroll`):
//! administrators every user but administrators, coordinators the field workers whose areas
//! lie in theirs; a coordinator adds only field workers, in their own areas.
//!
//! Each change reuses what the CLI does (`crate::admin`): disabling ends the person's web
//! sessions, API tokens and phone connections at once, and their phones delete their data;
//! new areas make their phones reconnect and drop what left their caseload. Every change is
//! one audit line (`user-added`, `user-disabled`, `user-enabled`, `user-areas-changed`) that
//! names user ids and areas, never names or passwords.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_core::schema::{RegionCode, Role};
use maud::{Markup, html};
use serde::Deserialize;

use super::enroll_page::{allowed, forbidden};
use crate::AppState;
use crate::admin::{self, AddUserError};
use crate::storage::directory::{AuditEntry, User, join_areas};
use crate::storage::now_millis;
use crate::storage::people::ListedPerson;
use crate::web::enroll::may_enroll;
use crate::web::i18n::Lang;
use crate::web::session::{MIN_PASSWORD_CHARS, PageUser, Submitted, Viewer};
use crate::web::{labels, layout};

const PATH: &str = "/admin/people";

/// What a page shows after a change: a notice, or an error with its status.
enum Outcome {
    Shown,
    Done(String),
    Refused(StatusCode, String),
}

/// `GET /admin/people`
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    PageUser(viewer): PageUser,
) -> Response {
    if !allowed(&viewer) {
        return forbidden(viewer.lang);
    }
    render(&state, &viewer, Outcome::Shown, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    areas: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/people`: adds a person.
pub(super) async fn add(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<AddForm>,
) -> Response {
    if !allowed(&viewer) {
        return forbidden(viewer.lang);
    }
    match added(&state, &viewer, &form).await {
        Ok(outcome) => render(&state, &viewer, outcome, None).await,
        // Shown again as typed (but the password), to be corrected.
        Err(outcome) => render(&state, &viewer, outcome, Some(&form)).await,
    }
}

async fn added(state: &AppState, viewer: &Viewer, form: &AddForm) -> Result<Outcome, Outcome> {
    let lang = viewer.lang;
    let bad = |text: String| Outcome::Refused(StatusCode::BAD_REQUEST, text);
    let role = match form.role.as_str() {
        "peksos" => Role::Peksos,
        "coordinator" => Role::Coordinator,
        "supervisor" => Role::Supervisor,
        _ => {
            return Err(bad(lang
                .t(
                    "Pilih peran: Peksos, Koordinator atau Supervisor.",
                    "Choose a role: field worker, coordinator or supervisor.",
                )
                .into()));
        }
    };
    let areas = parse_areas(lang, &form.areas).map_err(bad)?;
    let id = Some(form.id.trim().to_ascii_lowercase()).filter(|id| !id.is_empty());
    let prospective = User {
        id: id.clone().unwrap_or_default(),
        name: form.name.trim().to_owned(),
        role,
        areas: areas.clone(),
        disabled: false,
    };
    if !may_enroll(&viewer.user, &prospective) {
        return Err(out_of_scope(lang));
    }
    // Office roles sign in on the web; a field worker works on the phone, with a password
    // only if one is given.
    let password = form.password.as_str();
    let needs_password = role != Role::Peksos;
    if (needs_password || !password.is_empty()) && password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(bad(format!(
            "{} {MIN_PASSWORD_CHARS} {}",
            lang.t(
                "Kata sandi awal wajib untuk koordinator dan supervisor, minimal",
                "An initial password is required for coordinators and supervisors, at least",
            ),
            lang.t("karakter.", "characters."),
        )));
    }
    let user = match admin::add_user(state.storage.as_ref(), id, &form.name, role, areas).await {
        Ok(user) => user,
        Err(AddUserError::EmptyName) => {
            return Err(bad(lang.t("Isi nama.", "Enter a name.").into()));
        }
        Err(AddUserError::BadId(_)) => {
            return Err(bad(lang
                .t(
                    "ID pengguna: 1–64 huruf kecil a–z, angka 0–9, '.', '_' atau '-' (mis. NIP).",
                    "User id: 1–64 of lower-case a–z, digits 0–9, '.', '_' or '-' (e.g. an employee number).",
                )
                .into()));
        }
        Err(AddUserError::Taken(id)) => {
            return Err(Outcome::Refused(
                StatusCode::CONFLICT,
                format!(
                    "{} {id} {}",
                    lang.t("ID", "The id"),
                    lang.t("sudah dipakai.", "is already taken.")
                ),
            ));
        }
        Err(AddUserError::Storage(e)) => return Err(failed(lang, e)),
    };
    if !password.is_empty()
        && let Err(e) =
            crate::web::session::set_password(state.storage.as_ref(), &user.id, password).await
    {
        // The person exists; only the password is missing. Say so rather than pretend.
        tracing::error!("setting a new user's password: {e}");
        return Err(Outcome::Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} {} {}",
                lang.t("Pengguna", "User"),
                user.id,
                lang.t(
                    "ditambahkan, tetapi kata sandinya tidak tersimpan: atur dengan fieldsync user password.",
                    "was added, but the password was not stored: set it with fieldsync user password.",
                )
            ),
        ));
    }
    audit(
        state,
        viewer,
        &user.id,
        "user-added",
        format!("role={} areas={}", user.role, join_areas(&user.areas)),
    )
    .await
    .map_err(|e| failed(lang, e))?;
    Ok(Outcome::Done(format!(
        "{} {} {}",
        lang.t("Ditambahkan dengan ID", "Added with the id"),
        user.id,
        lang.t(
            "— ID ini dipakai untuk masuk.",
            "— this id is what they sign in with."
        ),
    )))
}

#[derive(Debug, Deserialize)]
pub(super) struct PersonForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    areas: String,
}

/// `POST /admin/people/disable`
pub(super) async fn disable(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<PersonForm>,
) -> Response {
    change(state, viewer, form, Change::Disable).await
}

/// `POST /admin/people/enable`
pub(super) async fn enable(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<PersonForm>,
) -> Response {
    change(state, viewer, form, Change::Enable).await
}

/// `POST /admin/people/areas`
pub(super) async fn reassign(
    State(state): State<Arc<AppState>>,
    Submitted(viewer, form): Submitted<PersonForm>,
) -> Response {
    change(state, viewer, form, Change::Areas).await
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Areas,
}

async fn change(state: Arc<AppState>, viewer: Viewer, form: PersonForm, what: Change) -> Response {
    if !allowed(&viewer) {
        return forbidden(viewer.lang);
    }
    let outcome = match changed(&state, &viewer, &form, what).await {
        Ok(outcome) | Err(outcome) => outcome,
    };
    render(&state, &viewer, outcome, None).await
}

async fn changed(
    state: &AppState,
    viewer: &Viewer,
    form: &PersonForm,
    what: Change,
) -> Result<Outcome, Outcome> {
    let lang = viewer.lang;
    let target = state
        .storage
        .user(form.user.trim())
        .await
        .map_err(|e| failed(lang, e))?
        .filter(|u| may_enroll(&viewer.user, u))
        .ok_or_else(|| out_of_scope(lang))?;
    let storage = state.storage.as_ref();
    let (action, detail, done) = match what {
        Change::Disable => {
            if !storage
                .disable_user(&target.id)
                .await
                .map_err(|e| failed(lang, e))?
            {
                return Ok(Outcome::Done(already(lang, &target.id)));
            }
            (
                "user-disabled",
                String::new(),
                lang.t(
                    "dinonaktifkan: sesi, token, dan HP-nya berhenti sekarang; HP-nya menghapus datanya.",
                    "is disabled: their sessions, tokens and phones stop now; the phones delete their data.",
                ),
            )
        }
        Change::Enable => {
            if !storage
                .enable_user(&target.id)
                .await
                .map_err(|e| failed(lang, e))?
            {
                return Ok(Outcome::Done(already(lang, &target.id)));
            }
            (
                "user-enabled",
                String::new(),
                lang.t(
                    "aktif lagi. HP lama tetap dicabut: buat kode pendaftaran baru; atur kata sandi baru bila perlu.",
                    "is enabled again. Old phones stay revoked: make a new enrollment code; set a new password if needed.",
                ),
            )
        }
        Change::Areas => {
            let areas = parse_areas(lang, &form.areas)
                .map_err(|t| Outcome::Refused(StatusCode::BAD_REQUEST, t))?;
            let moved = User {
                areas: areas.clone(),
                ..target.clone()
            };
            if !may_enroll(&viewer.user, &moved) {
                return Err(out_of_scope(lang));
            }
            if target.disabled {
                return Err(Outcome::Refused(
                    StatusCode::BAD_REQUEST,
                    lang.t(
                        "Aktifkan pengguna ini dulu sebelum mengubah wilayahnya.",
                        "Enable this user before changing their areas.",
                    )
                    .into(),
                ));
            }
            if let Err(e) = admin::set_areas(storage, &target.id, &areas).await {
                return Err(failed(lang, e));
            }
            (
                "user-areas-changed",
                format!(
                    "areas {} -> {}",
                    join_areas(&target.areas),
                    join_areas(&areas)
                ),
                lang.t(
                    "pindah wilayah: HP-nya tersambung ulang dan menghapus dokumen di luar wilayah barunya.",
                    "has new areas: their phones reconnect and drop the documents outside them.",
                ),
            )
        }
    };
    audit(state, viewer, &target.id, action, detail)
        .await
        .map_err(|e| failed(lang, e))?;
    Ok(Outcome::Done(format!("{} {done}", target.id)))
}

fn already(lang: Lang, id: &str) -> String {
    format!(
        "{id} {}",
        lang.t(
            "sudah dalam keadaan itu; tidak ada yang berubah.",
            "was already so; nothing changed."
        )
    )
}

fn out_of_scope(lang: Lang) -> Outcome {
    Outcome::Refused(
        StatusCode::FORBIDDEN,
        lang.t(
            "Anda hanya dapat mengelola Peksos di wilayah Anda sendiri; admin dikelola lewat fieldsync user.",
            "You may manage only the field workers of your own areas; administrators are managed with fieldsync user.",
        )
        .into(),
    )
}

fn failed(lang: Lang, cause: impl std::fmt::Display) -> Outcome {
    tracing::error!("people page: {cause}");
    Outcome::Refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang.t(
            "Terjadi kesalahan; tidak ada yang berubah. Coba lagi.",
            "Something went wrong; nothing changed. Try again.",
        )
        .into(),
    )
}

/// `32.77.01.1001, 32.77.02` as area scopes, or what is wrong with it in the viewer's language.
fn parse_areas(lang: Lang, list: &str) -> Result<Vec<RegionCode>, String> {
    let mut areas = Vec::new();
    for typed in list
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        match RegionCode::parse_prefix(typed) {
            Ok(area) => areas.push(area),
            Err(_) => {
                let shown: String = typed.chars().take(20).collect();
                return Err(format!(
                    "«{shown}» {}",
                    lang.t(
                        "bukan kode wilayah Kemendagri (mis. 32.77.01.1001 atau 32.77).",
                        "is not a Kemendagri region code (e.g. 32.77.01.1001 or 32.77).",
                    )
                ));
            }
        }
    }
    if areas.is_empty() {
        return Err(lang
            .t(
                "Isi minimal satu kode wilayah, mis. 32.77.01.1001.",
                "Enter at least one region code, e.g. 32.77.01.1001.",
            )
            .into());
    }
    Ok(areas)
}

async fn audit(
    state: &AppState,
    viewer: &Viewer,
    target: &str,
    action: &str,
    detail: String,
) -> crate::storage::StorageResult<()> {
    let by = format!("by {}", viewer.user.id);
    let line = AuditEntry {
        at: now_millis(),
        device_id: format!("web:{}", viewer.user.id),
        user_id: target.to_owned(),
        document_id: String::new(),
        action: action.to_owned(),
        detail: if detail.is_empty() {
            by
        } else {
            format!("{detail}; {by}")
        },
    };
    state.storage.audit_now(&line).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    outcome: Outcome,
    typed: Option<&AddForm>,
) -> Response {
    let lang = viewer.lang;
    let people = match listed(state, viewer).await {
        Ok(people) => people,
        Err(e) => return layout::internal_error_page(lang, "people page", e),
    };
    let csrf = viewer.csrf.as_deref().unwrap_or_default();
    let status = match &outcome {
        Outcome::Refused(status, _) => *status,
        _ => StatusCode::OK,
    };
    let body = html! {
        h1 { (lang.t("Pengguna", "People")) }
        @match &outcome {
            Outcome::Done(text) => p.notice role="status" { (text) },
            Outcome::Refused(_, text) => p.alert role="alert" { (text) },
            Outcome::Shown => {},
        }
        (add_form(lang, viewer, csrf, typed))
        (area_options(viewer))
        h2 { (lang.t("Daftar pengguna", "Everyone")) " (" (people.len()) ")" }
        @if people.is_empty() {
            p.muted { (lang.t("Belum ada petugas di wilayah Anda.", "No field workers in your areas yet.")) }
        }
        ul.people #people {
            @for (person, manages) in &people {
                (card(viewer, person, *manages, csrf))
            }
        }
    };
    (
        status,
        layout::page(lang, Some(viewer), lang.t("Pengguna", "People"), PATH, body),
    )
        .into_response()
}

/// The people the viewer sees, each with whether the viewer may manage them: administrators
/// see everyone (administrators without buttons), coordinators only the people they look
/// after.
pub(super) async fn listed(
    state: &AppState,
    viewer: &Viewer,
) -> crate::storage::StorageResult<Vec<(ListedPerson, bool)>> {
    Ok(state
        .storage
        .people()
        .await?
        .into_iter()
        .map(|p| {
            let manages = may_enroll(&viewer.user, &p.user);
            (p, manages)
        })
        .filter(|(_, manages)| *manages || viewer.user.role == Role::Admin)
        .collect())
}

fn add_form(lang: Lang, viewer: &Viewer, csrf: &str, typed: Option<&AddForm>) -> Markup {
    let value = |field: fn(&AddForm) -> &str| typed.map(field).unwrap_or_default();
    let roles: &[Role] = if viewer.user.role == Role::Admin {
        &[Role::Peksos, Role::Coordinator, Role::Supervisor]
    } else {
        &[Role::Peksos]
    };
    html! {
        details.card open[typed.is_some()] {
            summary { strong { (lang.t("Tambah pengguna", "Add a person")) } }
            form.stacked method="post" action=(PATH) {
                input type="hidden" name="csrf" value=(csrf);
                label for="new-name" { (lang.t("Nama", "Name")) }
                input #new-name name="name" value=(value(|f| f.name.as_str())) required autocomplete="off";
                label for="new-id" { (lang.t("ID pengguna (mis. NIP; kosong: dibuat dari nama)", "User id (e.g. employee number; empty: made from the name)")) }
                input #new-id name="id" value=(value(|f| f.id.as_str())) autocapitalize="none" autocomplete="off" spellcheck="false";
                label for="new-role" { (lang.t("Peran", "Role")) }
                select #new-role name="role" {
                    @for role in roles {
                        option value=(role.as_str()) selected[value(|f| f.role.as_str()) == role.as_str()] { (layout::role_name(lang, *role)) }
                    }
                }
                label for="new-areas" { (lang.t("Wilayah (kode Kemendagri, pisahkan dengan koma)", "Areas (Kemendagri codes, separated by commas)")) }
                input #new-areas name="areas" list="area-options" value=(value(|f| f.areas.as_str())) required autocomplete="off" placeholder="32.77.01.1001";
                label for="new-password" { (lang.t("Kata sandi awal (wajib untuk koordinator dan supervisor)", "Initial password (required for coordinators and supervisors)")) }
                input #new-password name="password" type="password" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS);
                button type="submit" { (lang.t("Tambah", "Add")) }
            }
        }
    }
}

/// The areas the viewer may give, by name, offered as the area fields are typed in: a
/// suggestion shows the name beside its code.
fn area_options(viewer: &Viewer) -> Markup {
    const MAX_OPTIONS: usize = 3000;
    let names = &viewer.area_names;
    let mut options: Vec<(String, String)> = Vec::new();
    for scope in &viewer.user.areas {
        options.push((
            scope.as_str().to_owned(),
            names.label_in_parent(scope.as_str()),
        ));
        for (code, _) in names.within(scope.as_str(), MAX_OPTIONS) {
            let label = names.label_in_parent(&code);
            options.push((code, label));
        }
    }
    options.sort();
    options.dedup_by(|a, b| a.0 == b.0);
    options.truncate(MAX_OPTIONS);
    html! {
        datalist #area-options {
            @for (code, label) in &options {
                option value=(code) label=(label) {}
            }
        }
    }
}

fn card(viewer: &Viewer, person: &ListedPerson, manages: bool, csrf: &str) -> Markup {
    let lang = viewer.lang;
    let user = &person.user;
    let areas = join_areas(&user.areas).replace(',', ", ");
    html! {
        li.card data-user=(user.id) {
            div.heading {
                strong { (user.name) }
                span.muted.wrap { (user.id) }
                span.badge { (layout::role_name(lang, user.role)) }
                @if user.disabled {
                    span.badge.disabled { (lang.t("Nonaktif", "Disabled")) }
                } @else {
                    span.badge.enabled { (lang.t("Aktif", "Enabled")) }
                }
            }
            dl.facts {
                dt { (lang.t("Wilayah", "Areas")) }
                dd.wrap {
                    @for (i, area) in user.areas.iter().enumerate() {
                        @if i > 0 { ", " }
                        (labels::area(&viewer.area_names, area.as_str()))
                    }
                }
                dt { (lang.t("HP terakhir tersambung", "Phone last connected")) }
                dd { @if let Some(at) = person.last_seen_at { (lang.datetime(at)) } @else { "—" } }
            }
            @if manages {
                @if !user.disabled {
                    form method="post" action={(PATH) "/areas"} {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="user" value=(user.id);
                        label { (lang.t("Wilayah baru", "New areas"))
                            input name="areas" list="area-options" value=(areas) required autocomplete="off";
                        }
                        button.secondary type="submit" { (lang.t("Ubah wilayah", "Change areas")) }
                    }
                    form method="post" action={(PATH) "/disable"}
                        data-confirm=(lang.t("Nonaktifkan pengguna ini? Sesi dan HP-nya berhenti sekarang, dan HP-nya menghapus datanya.", "Disable this person? Their sessions and phones stop now, and the phones delete their data.")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="user" value=(user.id);
                        button.danger type="submit" { (lang.t("Nonaktifkan", "Disable")) }
                    }
                } @else {
                    form method="post" action={(PATH) "/enable"} {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="user" value=(user.id);
                        button.secondary type="submit" { (lang.t("Aktifkan lagi", "Enable again")) }
                    }
                }
            }
        }
    }
}
