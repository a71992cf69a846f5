//! What the administration commands do (`fieldsync user …`, `fieldsync device …`), apart from
//! parsing and printing: shared by the CLI, the web (`crate::web::admin`) and tests.

use anyhow::{Context, bail};
use fieldsync_core::schema::{Nik, RegionCode, Role};

use crate::auth;
use crate::storage::directory::{Device, User};
use crate::storage::{Storage, StorageError, StorageResult, now_millis};

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

/// Why a user was not added; the web shows each in both languages.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("--name must not be empty")]
    EmptyName,
    #[error("user id {0:?}: use 1-64 of a-z, 0-9, '.', '_', '-' (e.g. an employee number)")]
    BadId(String),
    #[error("a user with id {0:?} already exists")]
    Taken(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn check_id(id: &str) -> Result<(), AddUserError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(AddUserError::BadId(id.to_owned()));
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
) -> Result<User, AddUserError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AddUserError::EmptyName);
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
        return Err(AddUserError::Taken(user.id));
    }
    Ok(user)
}

/// The user `user_id`, who must exist and not be disabled (for enrolling a device or making
/// an enrollment code).
async fn active_user(storage: &dyn Storage, user_id: &str) -> anyhow::Result<User> {
    let user = storage
        .user(user_id)
        .await?
        .with_context(|| format!("no user {user_id:?}"))?;
    if user.disabled {
        bail!("user {user_id:?} is disabled");
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
    let user = active_user(storage, user_id).await?;
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

/// Enables a disabled user again. What they had before stays ended (devices, web sessions,
/// API tokens): enroll their phone again and set a password.
pub async fn enable_user(storage: &dyn Storage, user_id: &str) -> anyhow::Result<()> {
    if !storage.enable_user(user_id).await? {
        bail!("no disabled user {user_id:?}");
    }
    Ok(())
}

/// What a question about a NIK is audited under (`nik:` and 16 hex digits): a hash of the NIK
/// keyed with a secret of this server, so that a later question about the same NIK finds the
/// earlier ones while the audit log holds no NIK. Unkeyed, the hash of a 16-digit number
/// whose digits encode a region and a birth date would be reversed by trying them all.
pub async fn nik_query_key(storage: &dyn Storage, nik: &Nik) -> StorageResult<String> {
    use sha2::{Digest, Sha256};
    let secret = storage.meta("nik_audit_key", &auth::new_token()).await?;
    let digest = Sha256::new()
        .chain_update(secret.as_bytes())
        .chain_update(b":")
        .chain_update(nik.as_str().as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("nik:{hex}"))
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

/// Letters and digits that cannot be mistaken for one another when read aloud or typed on a
/// phone: no 0/O, 1/I/L.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// How long an enrollment code works unless told otherwise.
pub const ENROLLMENT_CODE_HOURS: u32 = 24;

/// A fresh enrollment code, `XXXX-XXXX`: 8 characters from 31, about 40 bits. Guessing is
/// bounded by the per-address limiter, the expiry and single use, not by the length alone.
fn new_enrollment_code() -> String {
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        // Rejection sampling keeps every character equally likely.
        let c = loop {
            let b = rand::random::<u8>();
            if usize::from(b) < 248 {
                break CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()];
            }
        };
        code.push(char::from(c));
    }
    code
}

/// A code as typed, reduced to what is hashed: capitals, no dashes or spaces.
pub fn normalize_enrollment_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Makes a one-time enrollment code for `user_id`, made by `made_by` (a user id, or `cli`);
/// returns the code (shown only now) and when it expires.
pub async fn make_enrollment_code(
    storage: &dyn Storage,
    user_id: &str,
    made_by: &str,
    valid_hours: u32,
) -> anyhow::Result<(String, i64)> {
    let user = active_user(storage, user_id).await?;
    let code = new_enrollment_code();
    let now = now_millis();
    let expires_at = now + i64::from(valid_hours.max(1)) * 3_600_000;
    storage
        .add_enrollment_code(&crate::storage::enroll::EnrollmentCode {
            code_hash: auth::token_hash(&normalize_enrollment_code(&code)),
            user_id: user.id,
            made_by: made_by.to_owned(),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok((code, expires_at))
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

    #[test]
    fn enrollment_codes_are_short_unambiguous_and_typed_loosely() {
        let code = new_enrollment_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            code.chars()
                .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(code, new_enrollment_code());
        assert_eq!(normalize_enrollment_code(" abcd-2345 "), "ABCD2345");
    }
}
