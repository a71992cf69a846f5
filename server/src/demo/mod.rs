//! `fieldsync serve --demo`: a living Kota Cimahi for trying fieldsync out, never for real data.
//!
//! On the first start with an empty database, before the server listens, the demo signs up
//! people of every role ([`cimahi`]) with random passwords and announces them (by default a
//! table on standard output; the database keeps only hashes, so it is shown only then). Once
//! the server listens, [`seed`] has each field worker's phone connect to it over WebSocket and
//! write six weeks of records ([`records`], about the households of [`households`]) like any
//! phone, then adds supervisors' decisions through the hub, as the web does. A `server_meta`
//! key claimed at the start keeps a second start from seeding again, and another is set when
//! the records are all in.

mod cimahi;
mod households;
mod records;
mod seed;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use fieldsync_core::schema::Role;

pub use cimahi::{PersonSpec, area_rows};

use crate::hub::Hub;
use crate::storage::{Storage, now_millis};

/// Claimed when seeding starts: a database is seeded once.
pub const SEEDED_KEY: &str = "demo_seeded";
/// Set when every record is stored.
pub const READY_KEY: &str = "demo_ready";

/// A person the demo signed up, with the password they sign in with.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub areas: Vec<String>,
    pub place: String,
    pub password: String,
}

/// How a demo server tells who can sign in: called once, on the first start, with the web
/// address and everyone's credentials.
pub type Announce = Arc<dyn Fn(&str, &[Credential]) + Send + Sync>;

/// The demo's settings.
#[derive(Clone)]
pub struct Demo {
    pub announce: Announce,
}

impl Default for Demo {
    /// Prints the table on standard output.
    fn default() -> Self {
        Self {
            announce: Arc::new(|url, people| print!("{}", table(url, people))),
        }
    }
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").finish_non_exhaustive()
    }
}

/// Before the server listens: on an empty database, signs everyone up and announces them.
/// Returns whether the records are to be seeded once the server listens.
pub(crate) async fn prepare(
    demo: &Demo,
    storage: &dyn Storage,
    addr: SocketAddr,
    tls: bool,
) -> anyhow::Result<bool> {
    if tls {
        bail!(
            "--demo is for trying fieldsync out on this machine, over plain HTTP; start it without TLS"
        );
    }
    if !storage.documents().await?.is_empty() {
        tracing::info!("demo: the database already holds documents, so nothing is seeded");
        return Ok(false);
    }
    let claim = format!("{} {}", now_millis(), uuid::Uuid::new_v4());
    if storage.meta(SEEDED_KEY, &claim).await? != claim {
        tracing::info!("demo: this database was seeded before, so nothing is seeded again");
        return Ok(false);
    }
    storage
        .import_areas(cimahi::area_rows(), now_millis())
        .await?;
    let people = sign_up(storage, &cimahi::people()).await?;
    (demo.announce)(&format!("http://{addr}/"), &people);
    Ok(true)
}

/// Once the server listens: writes the records, then marks the database ready.
pub(crate) fn spawn(
    addr: SocketAddr,
    hub: Hub,
    storage: Arc<dyn Storage>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        tracing::info!("demo: seeding six weeks of field records for Kota Cimahi");
        let outcome = async {
            let seeded = seed::seed(addr, hub, storage.clone()).await?;
            storage.meta(READY_KEY, &now_millis().to_string()).await?;
            anyhow::Ok(seeded)
        };
        match outcome.await {
            Ok(seeded) => tracing::info!(
                documents = seeded.documents,
                decisions = seeded.decisions,
                secs = started.elapsed().as_secs_f32(),
                "demo: Kota Cimahi is ready"
            ),
            Err(e) => tracing::error!(
                "demo: seeding failed: {e:#}; delete the database to seed a new demo"
            ),
        }
    })
}

/// Adds people, each with a random web password (stored as a hash); returns their
/// credentials. Fails if one of them exists already.
pub async fn sign_up(
    storage: &dyn Storage,
    people: &[PersonSpec],
) -> anyhow::Result<Vec<Credential>> {
    for p in people {
        crate::admin::add_user(storage, Some(p.id.clone()), p.name, p.role, p.areas.clone())
            .await?;
    }
    let passwords: Vec<String> = people.iter().map(|_| password()).collect();
    let hashed = people
        .iter()
        .zip(&passwords)
        .map(|(p, password)| crate::web::session::set_password(storage, &p.id, password));
    for result in futures_util::future::join_all(hashed).await {
        result?;
    }
    Ok(people
        .iter()
        .zip(passwords)
        .map(|(p, password)| Credential {
            id: p.id.clone(),
            name: p.name.to_owned(),
            role: p.role,
            areas: p.areas.iter().map(|a| a.as_str().to_owned()).collect(),
            place: p.place.clone(),
            password,
        })
        .collect())
}

/// Three groups of four from letters and digits that are not mistaken for each other
/// (about 62 bits, from the OS-seeded generator).
fn password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut out = String::new();
    for group in 0..3 {
        if group > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
        }
    }
    out
}

/// The table printed on the first start.
pub fn table(url: &str, people: &[Credential]) -> String {
    let mut out = String::new();
    out.push_str("\nfieldsync --demo: Kota Cimahi. --demo is for trying fieldsync out, never for real data.\n");
    out.push_str(&format!(
        "Open {url} and sign in with a user id and password below. Passwords are shown only now\n\
         (the database keeps hashes); `fieldsync user password --user ID` sets a new one.\n\n"
    ));
    out.push_str(&format!(
        "  {:<28} {:<12} {:<14} {:<26} {}\n",
        "USER ID", "ROLE", "AREA", "WHERE", "PASSWORD"
    ));
    for p in people {
        out.push_str(&format!(
            "  {:<28} {:<12} {:<14} {:<26} {}\n",
            p.id,
            p.role.as_str(),
            p.areas.join(","),
            p.place,
            p.password
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_enough_and_differ() {
        let (a, b) = (password(), password());
        assert_eq!(a.len(), 14);
        assert!(a.len() >= crate::web::session::MIN_PASSWORD_CHARS);
        assert_ne!(a, b);
    }

    /// Two processes started with `--demo` at once on one empty database: one signs people
    /// up and seeds, the other sees the claim and does nothing.
    #[tokio::test]
    async fn two_processes_starting_at_once_seed_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let announced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let demo = Demo {
            announce: Arc::new({
                let announced = announced.clone();
                move |_, _| {
                    announced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }),
        };
        let first = crate::storage::open(&url).await.unwrap();
        let second = crate::storage::open(&url).await.unwrap();
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let (a, b) = tokio::join!(
            prepare(&demo, first.as_ref(), addr, false),
            prepare(&demo, second.as_ref(), addr, false)
        );
        let seeding = [a.unwrap(), b.unwrap()];
        assert_eq!(seeding.iter().filter(|s| **s).count(), 1, "{seeding:?}");
        assert_eq!(announced.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            first.users().await.unwrap().len(),
            cimahi::people().len(),
            "everyone signed up once"
        );
    }
}
