//! The administration commands: parse → `fieldsync_server::admin` → print (text, or one JSON
//! object with `--json`). They open the database directly, so they work while a server runs.

use std::sync::Arc;

use anyhow::Context;
use fieldsync_core::schema::{Role, format_millis};
use fieldsync_server::admin;
use fieldsync_server::storage::directory::AuditFilter;
use fieldsync_server::storage::{self, Storage};
use fieldsync_server::web::session;
use serde_json::json;

use crate::{AdminArgs, AreasCommand, AuditArgs, BackupArgs, DeviceCommand, UserCommand};

async fn open(args: &AdminArgs) -> anyhow::Result<Arc<dyn Storage>> {
    let url = args.db.url();
    storage::open(&url)
        .await
        .with_context(|| format!("cannot open database {}", fieldsync_server::redact(&url)))
}

fn print(args: &AdminArgs, value: serde_json::Value, text: String) {
    if args.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

pub(crate) async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            area,
            id,
            admin: args,
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let areas = admin::parse_areas(&area)?;
            let storage = open(&args).await?;
            let user = admin::add_user(storage.as_ref(), id, &name, role, areas).await?;
            let areas: Vec<&str> = user.areas.iter().map(|a| a.as_str()).collect();
            print(
                &args,
                json!({"id": user.id, "name": user.name, "role": user.role.as_str(), "areas": areas}),
                format!(
                    "added {} ({}, {}, areas {})",
                    user.id,
                    user.name,
                    user.role.as_str(),
                    areas.join(",")
                ),
            );
            storage.close().await?;
        }
        UserCommand::Disable { user, admin: args } => {
            let storage = open(&args).await?;
            if !storage.disable_user(&user).await? {
                anyhow::bail!("no enabled user {user:?}");
            }
            print(
                &args,
                json!({"id": user, "disabled": true}),
                format!("disabled {user}: its devices are cut off and told to delete their data"),
            );
            storage.close().await?;
        }
        UserCommand::Enable { user, admin: args } => {
            let storage = open(&args).await?;
            admin::enable_user(storage.as_ref(), &user).await?;
            print(
                &args,
                json!({"id": user, "disabled": false}),
                format!("enabled {user}: enroll their phone again; old devices stay revoked"),
            );
            storage.close().await?;
        }
        UserCommand::Show { user, admin: args } => {
            let storage = open(&args).await?;
            let found = storage
                .user(&user)
                .await?
                .with_context(|| format!("no user {user:?}"))?;
            let devices = storage.devices(&user).await?;
            let index = admin::index_url(storage.as_ref(), &user).await?;
            let areas: Vec<&str> = found.areas.iter().map(|a| a.as_str()).collect();
            let list: Vec<serde_json::Value> = devices
                .iter()
                .map(|d| {
                    json!({"id": d.id, "label": d.label, "createdAt": d.created_at,
                           "expiresAt": d.expires_at, "revokedAt": d.revoked_at,
                           "lastSeenAt": d.last_seen_at})
                })
                .collect();
            let mut text = format!(
                "{} ({}, {}, areas {}){}",
                found.id,
                found.name,
                found.role.as_str(),
                areas.join(","),
                if found.disabled { ", disabled" } else { "" }
            );
            text.push_str(&format!("\n  caseload index {index}"));
            for d in &devices {
                let state = if d.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                text.push_str(&format!("\n  device {} {state} {}", d.id, d.label));
            }
            print(
                &args,
                json!({"id": found.id, "name": found.name, "role": found.role.as_str(),
                       "areas": areas, "disabled": found.disabled, "devices": list,
                       "indexUrl": index}),
                text,
            );
            storage.close().await?;
        }
        UserCommand::Password { user, admin: args } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let storage = open(&args).await?;
            session::set_password(storage.as_ref(), &user, password).await?;
            print(
                &args,
                json!({"id": user, "password": "set"}),
                format!("password set for {user}; they sign in on the web with the id {user}"),
            );
            storage.close().await?;
        }
        UserCommand::ApiToken {
            user,
            label,
            expires_in_days,
            admin: args,
        } => {
            let storage = open(&args).await?;
            let (token, secret) =
                session::issue_api_token(storage.as_ref(), &user, &label, expires_in_days).await?;
            print(
                &args,
                json!({"id": token.id, "user": token.user_id, "token": secret,
                       "expiresAt": token.expires_at}),
                format!(
                    "API token {} for {user} (shown only now):\n{secret}\nsend it as Authorization: Bearer",
                    token.id
                ),
            );
            storage.close().await?;
        }
        UserCommand::SetAreas {
            user,
            area,
            admin: args,
        } => {
            let areas = admin::parse_areas(&area)?;
            let storage = open(&args).await?;
            admin::set_areas(storage.as_ref(), &user, &areas).await?;
            let list: Vec<&str> = areas.iter().map(|a| a.as_str()).collect();
            print(
                &args,
                json!({"id": user, "areas": list}),
                format!(
                    "{user} now serves {}; their devices reconnect and drop what left their areas",
                    list.join(",")
                ),
            );
            storage.close().await?;
        }
        UserCommand::RevokeApiToken { token, admin: args } => {
            let storage = open(&args).await?;
            if !storage.revoke_api_token(&token).await? {
                anyhow::bail!("no active API token {token:?}");
            }
            print(
                &args,
                json!({"id": token, "revoked": true}),
                format!("revoked API token {token}"),
            );
            storage.close().await?;
        }
    }
    Ok(())
}

pub(crate) async fn device(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Enroll {
            user,
            label,
            expires_in_days,
            admin: args,
        } => {
            let storage = open(&args).await?;
            let (device, token) =
                admin::enroll_device(storage.as_ref(), &user, label.as_deref(), expires_in_days)
                    .await?;
            let index = admin::index_url(storage.as_ref(), &device.user_id).await?;
            print(
                &args,
                json!({"id": device.id, "user": device.user_id, "token": token,
                       "expiresAt": device.expires_at, "indexUrl": index}),
                format!(
                    "enrolled {} for {}\ntoken (shown only now; give it to the device): {token}\ncaseload index: {index}",
                    device.id, device.user_id
                ),
            );
            storage.close().await?;
        }
        DeviceCommand::Code {
            user,
            hours,
            admin: args,
        } => {
            let storage = open(&args).await?;
            let (code, expires_at) =
                admin::make_enrollment_code(storage.as_ref(), &user, "cli", hours).await?;
            print(
                &args,
                json!({"user": user, "code": code, "expiresAt": expires_at}),
                format!(
                    "enrollment code for {user} (shown only now; works once, for {hours} h): {code}\nopen /app/ on the phone and type it in"
                ),
            );
            storage.close().await?;
        }
        DeviceCommand::Rotate {
            device,
            admin: args,
        } => {
            let storage = open(&args).await?;
            let token = admin::rotate_token(storage.as_ref(), &device).await?;
            print(
                &args,
                json!({"id": device, "token": token}),
                format!("new token for {device} (shown only now): {token}"),
            );
            storage.close().await?;
        }
        DeviceCommand::Revoke {
            device,
            admin: args,
        } => {
            let storage = open(&args).await?;
            if !storage.revoke_device(&device).await? {
                anyhow::bail!("no active device {device:?}");
            }
            print(
                &args,
                json!({"id": device, "revoked": true}),
                format!("revoked {device}: cut off within 2 seconds and told to delete its data"),
            );
            storage.close().await?;
        }
    }
    Ok(())
}

pub(crate) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let storage = open(&args.admin).await?;
    if let Some(device) = &args.held_by {
        let held = storage.held_by_device(device).await?;
        let records: Vec<serde_json::Value> = held
            .iter()
            .map(|h| {
                json!({"document": h.document_id, "type": h.kind, "nik": h.nik,
                       "name": h.name, "firstAt": h.first_at, "lastAt": h.last_at})
            })
            .collect();
        let mut text = format!("device {device} held {} documents", held.len());
        for h in &held {
            text.push_str(&format!(
                "\n  {} {} {} {} (first {}, last {})",
                h.document_id,
                if h.kind.is_empty() { "-" } else { &h.kind },
                h.nik.as_deref().unwrap_or("-"),
                h.name.as_deref().unwrap_or("-"),
                format_millis(h.first_at),
                format_millis(h.last_at)
            ));
        }
        print(
            &args.admin,
            json!({"device": device, "records": records}),
            text,
        );
    } else {
        let filter = AuditFilter {
            device_id: args.device.clone(),
            user_id: args.user.clone(),
            document_id: args.document.clone(),
            limit: args.limit.clamp(1, 100_000),
        };
        let entries = storage.audit(&filter).await?;
        let lines: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                json!({"at": e.at, "device": e.device_id, "user": e.user_id,
                       "document": e.document_id, "action": e.action, "detail": e.detail})
            })
            .collect();
        let text = entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {} {} {}",
                    format_millis(e.at),
                    e.action,
                    e.device_id,
                    e.user_id,
                    e.document_id,
                    e.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        print(&args.admin, json!({"entries": lines}), text);
    }
    storage.close().await?;
    Ok(())
}

pub(crate) async fn areas(command: AreasCommand) -> anyhow::Result<()> {
    let AreasCommand::Import { dir, admin } = command;
    // Every row is checked before the database is opened: a bad file changes nothing.
    let rows = fieldsync_server::areas::read_dataset(&dir)?;
    let storage = open(&admin).await?;
    let done = storage
        .import_areas(&rows, storage::now_millis())
        .await
        .context("cannot store the areas")?;
    storage.close().await?;
    print(
        &admin,
        json!({"read": rows.len(), "added": done.added, "renamed": done.renamed, "total": done.total}),
        format!(
            "read {} areas: {} added, {} renamed, {} in the database",
            rows.len(),
            done.added,
            done.renamed,
            done.total
        ),
    );
    Ok(())
}

pub(crate) async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let report = fieldsync_server::ops::backup::backup(&args.admin.db.url(), &args.to).await?;
    print(
        &args.admin,
        serde_json::to_value(&report)?,
        format!(
            "backed up {} documents to {} ({} bytes, integrity ok) in {:.1} s",
            report.documents,
            report.file.display(),
            report.bytes,
            report.took.as_secs_f64()
        ),
    );
    Ok(())
}

pub(crate) async fn check(args: AdminArgs) -> anyhow::Result<()> {
    let url = args.db.url();
    let storage = open(&args).await?;
    let report = fieldsync_server::ops::check::check(storage.as_ref(), &url).await?;
    storage.close().await?;
    let mut text = format!(
        "checked {} documents ({} caseload indexes), {} chunks, {} query rows",
        report.documents, report.indexes, report.chunks, report.rows
    );
    if report.changing > 0 {
        text.push_str(&format!(
            "; {} changed while being checked and were not judged",
            report.changing
        ));
    }
    if report.is_clean() {
        text.push_str(": no damage");
    } else {
        text.push_str(&format!(": {} damaged", report.damaged.len()));
        for d in &report.damaged {
            text.push_str(&format!("\n  {} {}", d.document, d.problem.describe()));
        }
    }
    print(&args, serde_json::to_value(&report)?, text);
    if !report.is_clean() {
        anyhow::bail!("{} damaged documents", report.damaged.len());
    }
    Ok(())
}
