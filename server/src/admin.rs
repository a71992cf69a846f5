//! What the administration commands do (`fieldsync user …`, `fieldsync device …`), apart from
//! parsing and printing: usable from tests and, later, from the web.

use anyhow::{Context, bail};
use fieldsync_core::schema::{RegionCode, Role};

use crate::auth;
use crate::storage::directory::{Device, User};
use crate::storage::{Storage, now_millis};

/// Parses `32.77,32.73.01` into area scopes.
pub fn parse_areas(list: &str) -> anyhow::Result<Vec<RegionCode>> {
    let areas = list
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| RegionCode::parse_prefix(a).map_err(|e| anyhow::anyhow!("--area {a}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if areas.is_empty() {
        bail!("give at least one area, e.g. --area 32.77.01");
    }
    Ok(areas)
}

fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        bail!("user id {id:?}: use 1-64 of a-z, 0-9, '.', '_', '-' (e.g. an employee number)");
    }
    Ok(())
}

/// A readable id from a name: `Ani Suryani` → `ani-suryani-3f9a`.
fn id_from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    let suffix = &auth::new_id("x")[2..6];
    if slug.is_empty() {
        format!("user-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    }
}

/// Adds a user with a role and area scopes; the id is generated from the name unless given.
pub async fn add_user(
    storage: &dyn Storage,
    id: Option<String>,
    name: &str,
    role: Role,
    areas: Vec<RegionCode>,
) -> anyhow::Result<User> {
    let name = name.trim();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    let id = match id {
        Some(id) => {
            check_id(&id)?;
            id
        }
        None => id_from_name(name),
    };
    let user = User {
        id,
        name: name.to_owned(),
        role,
        areas,
        disabled: false,
    };
    if !storage.add_user(&user).await? {
        bail!("a user with id {:?} already exists", user.id);
    }
    Ok(user)
}

/// Enrolls a device for a user; returns it with its token, which is shown only now.
pub async fn enroll_device(
    storage: &dyn Storage,
    user_id: &str,
    label: Option<&str>,
    expires_in_days: Option<u32>,
) -> anyhow::Result<(Device, String)> {
    let user = storage
        .user(user_id)
        .await?
        .with_context(|| format!("no user {user_id:?}"))?;
    if user.disabled {
        bail!("user {user_id:?} is disabled");
    }
    let now = now_millis();
    let device = Device {
        id: auth::new_id("dev"),
        user_id: user.id,
        label: label.unwrap_or("").to_owned(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
        revoked_at: None,
        last_seen_at: None,
    };
    let token = auth::new_token();
    if !storage
        .enroll_device(&device, &auth::token_hash(&token))
        .await?
    {
        bail!("user {user_id:?} cannot enroll devices");
    }
    Ok((device, token))
}

/// The URL of the user's index document: the list of their caseload, which a phone opens to
/// restore every document it should hold (`crate::caseload`).
pub async fn index_url(storage: &dyn Storage, user_id: &str) -> anyhow::Result<String> {
    let secret = crate::caseload::index_secret(storage).await?;
    Ok(crate::caseload::index_id(&secret, user_id)
        .url()
        .to_string())
}

/// Gives a user new area scopes. Their connected devices are told to reconnect, and then
/// to drop the documents that left their areas.
pub async fn set_areas(
    storage: &dyn Storage,
    user_id: &str,
    areas: &[RegionCode],
) -> anyhow::Result<()> {
    if !storage.set_areas(user_id, areas).await? {
        bail!("no enabled user {user_id:?}");
    }
    Ok(())
}

/// Gives a device a new token; the old one stops working at once.
pub async fn rotate_token(storage: &dyn Storage, device_id: &str) -> anyhow::Result<String> {
    let token = auth::new_token();
    if !storage
        .rotate_token(device_id, &auth::token_hash(&token))
        .await?
    {
        bail!("no active device {device_id:?}");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_areas() {
        assert!(id_from_name("Ani Suryani, S.Sos").starts_with("ani-suryani-s-sos-"));
        assert!(id_from_name("  ").starts_with("user-"));
        assert!(check_id("198503122010012003").is_ok());
        assert!(check_id("Ani").is_err());
        assert_eq!(parse_areas("32.77, 32.73.01").unwrap().len(), 2);
        assert!(parse_areas("Cimahi").is_err());
        assert!(parse_areas("").is_err());
    }
}
