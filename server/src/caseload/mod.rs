//! Each user's caseload: the documents in their areas that their role may read.
//!
//! Two things follow it. **Index documents**: every user with a phone has a read-only index,
//! written only by the server, listing the URLs of the documents in their caseload, so that a
//! replacement phone finds its whole caseload from one URL (printed by `fieldsync device
//! enroll`). The index is in pages, one per kelurahan of the caseload, listed by its root
//! (`fieldsync_core::index`): an edit touches the pages of the documents that changed. A
//! user without a phone (a coordinator working on the web) has none kept: a city's index
//! would grow with every visit of the city, loaded and rewritten for nobody (docs/soak.md). It is built when their first phone is enrolled on the web, or
//! else at its first connection. **Push**: when a document enters a user's caseload (a
//! colleague's new visit in the same kelurahan, a referral moved into their area), it is
//! offered at once to that user's connected devices, which sync it as if they had asked for it.
//!
//! The task follows the hub's durable changes, and those of other processes sharing the
//! database (`crate::hub::OtherProcesses`). Several processes would fight over an index if
//! each wrote every change into it, so only the process that committed a change writes the
//! index entries it calls for; every process offers it to its own connected devices. Entries
//! are keyed by document id, so an index never lists a document twice, even when two
//! processes write one entry at once (a reconciliation racing a change): Automerge keeps
//! one value per key; and every page starts with the same first change wherever it is made,
//! so two processes making it at once make one map of entries. An index is also reconciled
//! against the query tables the first time its user connects to this server process (and
//! after their areas change), which repairs anything missed while a server was down.
//!
//! Index edits never hold up the task that follows the changes: each user's entries wait in a
//! queue of their own ([`Pending`]), written by one edit at a time, and those that arrive
//! while an edit is in flight go together into the next. A city's index of 100,000 entries in
//! one document was slow to edit; before, every batch waited for it, the task fell behind the
//! hub's changes, and every connected phone missed entries and offers (docs/benchmarks.md,
//! "A city's index").
//! Should the task fall behind anyway, the indexes of the users connected here are reconciled
//! at once rather than at their next connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldsync_core::index::IndexEntry;
use fieldsync_core::schema::{Author, DocKind, RegionCode, Role, may_read_placed};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::hub::{Changed, Heard, Hub, OtherProcesses};
use crate::live::Registry;
use crate::storage::Storage;
use crate::storage::directory::User;

mod pages;

pub use pages::{index_id, index_secret, page_id};

/// How long the list of users is trusted before it is read again.
const USERS_FRESH: Duration = Duration::from_secs(5);
/// Most changes taken together.
const BATCH: usize = 512;
/// Index reconciliations running at once: a reconnect storm must not become a query storm.
const RECONCILING: usize = 2;
/// How long a user's index writer rests after a round of edits, in multiples of the round's
/// time, so that the entries of a storm gather into fewer edits of each page. (Four times, up
/// to 5 s, when the whole index was one document and an edit cost in proportion to all of
/// it; with pages, a round costs in proportion to the pages it touches, and resting that
/// long only made a city's index list a storm's records 13 s after it.)
const REST_PER_EDIT: u32 = 1;
/// How long a stopping server waits for the queued index entries to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// The longest rest between two rounds of edits of one index.
const MAX_REST: Duration = Duration::from_secs(1);
/// Follows caseloads: keeps index documents and offers new documents to devices.
#[derive(Debug)]
pub(crate) struct Caseloads {
    hub: Hub,
    storage: Arc<dyn Storage>,
    live: Arc<Registry>,
    secret: String,
    /// The users with a device (`Storage::device_holders`), and when they were read.
    users: Mutex<(Vec<User>, Option<Instant>)>,
    /// Users whose index was reconciled by this process, and since when. Their indexes are
    /// kept even before the list of device holders, read every few seconds, has them.
    reconciled: Mutex<HashMap<String, (User, Instant)>>,
    reconciling: Semaphore,
    /// Index entries waiting to be written, per user id.
    pending: Mutex<HashMap<String, Pending>>,
    /// The pages each user's root is known to list (written or read by this process): a
    /// page's first entries list it in the root, later ones need not look.
    known_pages: Mutex<HashMap<String, BTreeSet<String>>>,
    /// The server is stopping: the queued entries are written by `run`, not by their writers.
    stopped: AtomicBool,
}

/// One user's index entries waiting to be written: for each page (kelurahan) and document,
/// the entry it should have (`None`: none). A later change of a document replaces an earlier
/// one's entry.
#[derive(Debug)]
struct Pending {
    user: User,
    entries: BTreeMap<(String, String), Option<IndexEntry>>,
}

/// Entries for pages, in the order of the changes that call for them: by (area, document id),
/// the entry to write, or `None` to remove it.
type Entries = Vec<((String, String), Option<IndexEntry>)>;

impl Caseloads {
    pub async fn new(
        hub: Hub,
        storage: Arc<dyn Storage>,
        live: Arc<Registry>,
    ) -> crate::storage::StorageResult<Arc<Self>> {
        let secret = index_secret(storage.as_ref()).await?;
        Ok(Arc::new(Self {
            hub,
            storage,
            live,
            secret,
            users: Mutex::new((Vec::new(), None)),
            reconciled: Mutex::default(),
            reconciling: Semaphore::new(RECONCILING),
            pending: Mutex::default(),
            known_pages: Mutex::default(),
            stopped: AtomicBool::new(false),
        }))
    }

    /// Follows the hub's durable changes, and those other processes made (`others`), until
    /// `stop`. Changes that queued up meanwhile are taken together, so that a burst costs one
    /// index edit per user, not one per document. Indexes follow this process's own changes
    /// only: the process that commits a change writes the index entries it calls for, and
    /// the others only offer the document to their devices of the users who gain it.
    /// When the server stops, the entries still queued are written at once (within
    /// [`FLUSH_LIMIT`]) rather than left to the next reconcile, so that a phone restoring
    /// from its index after a restart finds what was acknowledged before it.
    pub async fn run(self: Arc<Self>, others: OtherProcesses, stop: watch::Receiver<bool>) {
        self.follow_changes(others, stop).await;
        self.stopped.store(true, Ordering::Relaxed);
        let queued: Vec<Pending> = self
            .pending
            .lock()
            .expect("caseload lock poisoned")
            .drain()
            .map(|(_, queued)| queued)
            .collect();
        let all = futures_util::future::join_all(queued.into_iter().map(|q| self.write_queued(q)));
        if tokio::time::timeout(FLUSH_LIMIT, all).await.is_err() {
            tracing::warn!(
                "index entries not all written before stopping; reconciled at next start"
            );
        }
    }

    async fn follow_changes(
        self: &Arc<Self>,
        others: OtherProcesses,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut changes = self.hub.changes();
        let mut heard = others.subscribe();
        loop {
            let (mut batch, mut elsewhere) = (Vec::new(), Vec::new());
            tokio::select! {
                c = changes.recv() => match c {
                    Ok(change) => batch.push(change),
                    Err(broadcast::error::RecvError::Lagged(missed)) => self.lagged(missed),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                h = heard.recv() => match h {
                    Ok(Heard::Changed(change)) => elsewhere.push(change),
                    // Missed offers: the phones find those documents through their indexes,
                    // which the processes that made the changes wrote.
                    Ok(Heard::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
            while batch.len() < BATCH {
                match changes.try_recv() {
                    Ok(change) => batch.push(change),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => self.lagged(missed),
                    Err(_) => break,
                }
            }
            while elsewhere.len() < BATCH {
                match heard.try_recv() {
                    Ok(Heard::Changed(change)) => elsewhere.push(change),
                    Ok(Heard::Missed) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            self.placed(&batch, Writes::Indexes).await;
            self.placed(&elsewhere, Writes::Nothing).await;
        }
    }

    /// Some changes were missed: the indexes of the users connected here are reconciled now,
    /// so that their phones find what they missed, and every other one when its user next
    /// connects.
    fn lagged(self: &Arc<Self>, missed: u64) {
        tracing::warn!(missed, "caseload fell behind; indexes will be reconciled");
        self.reconciled
            .lock()
            .expect("caseload lock poisoned")
            .clear();
        let this = self.clone();
        tokio::spawn(async move {
            let here = this.live.joined_users();
            for user in this.users().await {
                if here.contains(&user.id) && this.follow(&user) {
                    this.reconcile_followed(&user).await;
                }
            }
        });
    }

    /// A device of `user` connected: their index is reconciled once per process.
    pub fn connected(self: &Arc<Self>, user: &User) {
        if !self.follow(user) {
            return;
        }
        let this = self.clone();
        let user = user.clone();
        tokio::spawn(async move { this.reconcile_followed(&user).await });
    }

    /// A phone was enrolled for `user` (on the web): their index is built before the phone
    /// first asks for it, so that the phone never finds it missing and then arriving.
    pub async fn enrolled(self: &Arc<Self>, user: &User) {
        if self.follow(user) {
            self.reconcile_followed(user).await;
        }
    }

    /// Marks `user`'s index as an index document and follows it from now on: `true` if it is
    /// to be reconciled (the first time in this process).
    fn follow(&self, user: &User) -> bool {
        // Before the device can ask for it: the index is loaded without the document limits.
        self.hub.index_document(index_id(&self.secret, &user.id));
        if user.role == Role::Admin {
            return false;
        }
        let mut reconciled = self.reconciled.lock().expect("caseload lock poisoned");
        if reconciled.contains_key(&user.id) {
            return false;
        }
        reconciled.insert(user.id.clone(), (user.clone(), Instant::now()));
        true
    }

    async fn reconcile_followed(&self, user: &User) {
        let _permit = self.reconciling.acquire().await;
        if let Err(e) = self.reconcile(user).await {
            tracing::warn!(user = %user.id, "index not reconciled: {e}");
            self.reconciled
                .lock()
                .expect("caseload lock poisoned")
                .remove(&user.id);
        }
    }

    /// The user's areas changed: reconcile their index when they next connect.
    pub fn forget(&self, user: &str) {
        self.reconciled
            .lock()
            .expect("caseload lock poisoned")
            .remove(user);
        self.known_pages
            .lock()
            .expect("caseload lock poisoned")
            .remove(user);
        self.users.lock().expect("caseload lock poisoned").1 = None;
    }

    /// The users whose caseloads are followed: those with a device, and those reconciled here
    /// since (a phone enrolled a moment ago).
    async fn users(&self) -> Vec<User> {
        let cached = {
            let cached = self.users.lock().expect("caseload lock poisoned");
            cached
                .1
                .is_some_and(|at| at.elapsed() < USERS_FRESH)
                .then(|| cached.0.clone())
        };
        let holders = match cached {
            Some(users) => users,
            None => {
                let asked = Instant::now();
                match self.storage.device_holders().await {
                    Ok(users) => {
                        // A user who lost every device loses their index too; a new phone
                        // reconciles it again.
                        self.reconciled
                            .lock()
                            .expect("caseload lock poisoned")
                            .retain(|id, (_, since)| {
                                *since >= asked || users.iter().any(|u| &u.id == id)
                            });
                        *self.users.lock().expect("caseload lock poisoned") =
                            (users.clone(), Some(asked));
                        users
                    }
                    Err(e) => {
                        tracing::warn!("cannot read users: {e}");
                        self.users.lock().expect("caseload lock poisoned").0.clone()
                    }
                }
            }
        };
        let reconciled = self.reconciled.lock().expect("caseload lock poisoned");
        let mut users = holders;
        for (user, _) in reconciled.values() {
            if !users.iter().any(|u| u.id == user.id) {
                users.push(user.clone());
            }
        }
        users
    }

    /// Documents whose type or area changed (or that were created): users who gain one are
    /// offered it, and with [`Writes::Indexes`] index entries follow (queued, [`Pending`]).
    async fn placed(self: &Arc<Self>, batch: &[Changed], writes: Writes) {
        let moved: Vec<Moved<'_>> = batch
            .iter()
            .map(|c| (c, c.kind.zip(c.area.clone())))
            .filter(|(c, after)| *after != c.before)
            .collect();
        if moved.is_empty() {
            return;
        }
        let mut users = self.users().await;
        if writes == Writes::Nothing {
            // Only offers to make: to the users connected here.
            let here = self.live.joined_users();
            users.retain(|u| here.contains(&u.id));
        }
        for (user, changes) in concerned(&users, &moved) {
            let author = author(user);
            let sees = |p: &Option<(DocKind, RegionCode)>| {
                p.as_ref()
                    .is_some_and(|(kind, area)| may_read_placed(&author, *kind, area))
            };
            let mut entries: Entries = Vec::new();
            for (change, after) in changes {
                let (had, has) = (sees(&change.before), sees(after));
                let before_area = change.before.as_ref().map(|(_, area)| area.as_str());
                if let (true, Some((kind, area))) = (has, after) {
                    let entry = IndexEntry {
                        url: change.doc.url().to_string(),
                        kind: kind.as_str().to_owned(),
                        area: area.to_string(),
                    };
                    if !had {
                        self.live.offer(&user.id, change.doc);
                    } else if let Some(old) = before_area.filter(|old| *old != area.as_str()) {
                        // Moved between two of the user's kelurahan: off the old page.
                        entries.push(((old.to_owned(), change.doc.to_string()), None));
                    }
                    entries.push(((area.to_string(), change.doc.to_string()), Some(entry)));
                } else if let (true, Some(old)) = (had, before_area) {
                    entries.push(((old.to_owned(), change.doc.to_string()), None));
                }
            }
            if writes == Writes::Indexes && !entries.is_empty() {
                self.queue_entries(user, entries);
            }
        }
    }

    /// Queues index entries for `user`, and starts their writer unless one is running.
    fn queue_entries(self: &Arc<Self>, user: &User, entries: Entries) {
        let mut pending = self.pending.lock().expect("caseload lock poisoned");
        let start = !pending.contains_key(&user.id) && !self.stopped.load(Ordering::Relaxed);
        let queued = pending.entry(user.id.clone()).or_insert_with(|| Pending {
            user: user.clone(),
            entries: BTreeMap::new(),
        });
        // Their areas may have changed since the first entry was queued.
        queued.user = user.clone();
        queued.entries.extend(entries);
        if start {
            tokio::spawn(self.clone().write_entries(user.id.clone()));
        }
    }

    /// Writes `user`'s queued entries, one round of page edits at a time, until none are
    /// left. The users' writers run at once, so that the storage writer commits many pages
    /// together. After each round the writer rests [`REST_PER_EDIT`] times as long as it took
    /// (at most [`MAX_REST`]), so that a storm's entries gather into fewer edits; a small
    /// index's entries still follow at once.
    async fn write_entries(self: Arc<Self>, user: String) {
        loop {
            let taken = {
                let mut pending = self.pending.lock().expect("caseload lock poisoned");
                let Some(queued) = pending.get_mut(&user) else {
                    return;
                };
                if queued.entries.is_empty() || self.stopped.load(Ordering::Relaxed) {
                    pending.remove(&user);
                    return;
                }
                Pending {
                    user: queued.user.clone(),
                    entries: std::mem::take(&mut queued.entries),
                }
            };
            let started = Instant::now();
            self.write_queued(taken).await;
            let rest = started.elapsed().saturating_mul(REST_PER_EDIT);
            tokio::time::sleep(rest.min(MAX_REST)).await;
        }
    }
}

/// Whether a batch of changes is this process's to write into indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// Changes this process committed.
    Indexes,
    /// Changes another process committed, and writes the indexes for.
    Nothing,
}

/// A document whose place changed: the change, and its type and place after it.
type Moved<'a> = (&'a Changed, Option<(DocKind, RegionCode)>);

/// The users whose areas cover a moved document's place before or after the change, each
/// with those changes in batch order: those listed under one of the place's
/// [`RegionCode::scopes`], looked up rather than asking every user with a device about every
/// document (a storm's batches asked 1,000 users about 512 documents each).
fn concerned<'u, 'm, 'c>(
    users: &'u [User],
    moved: &'m [Moved<'c>],
) -> Vec<(&'u User, Vec<&'m Moved<'c>>)> {
    let mut by_scope: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        for scope in &user.areas {
            by_scope.entry(scope.as_str()).or_default().push(i);
        }
    }
    let mut concerned: BTreeMap<usize, Vec<&Moved<'c>>> = BTreeMap::new();
    let mut found = Vec::new();
    for m in moved {
        let (change, after) = m;
        let places = change.before.iter().chain(after).map(|(_, area)| area);
        found.clear();
        for scope in places.flat_map(RegionCode::scopes) {
            found.extend(by_scope.get(scope).into_iter().flatten().copied());
        }
        found.sort_unstable();
        found.dedup();
        for &user in &found {
            concerned.entry(user).or_default().push(m);
        }
    }
    concerned
        .into_iter()
        .map(|(user, changes)| (&users[user], changes))
        .collect()
}

fn author(user: &User) -> Author {
    Author::user(user.id.clone(), user.role, user.areas.clone())
}

#[cfg(test)]
mod tests {
    use fieldsync_protocol::DocumentId;

    use super::*;

    fn user(id: &str, areas: &[&str]) -> User {
        User {
            id: id.into(),
            name: id.into(),
            role: Role::Coordinator,
            areas: areas
                .iter()
                .map(|a| RegionCode::parse_prefix(a).unwrap())
                .collect(),
            disabled: false,
        }
    }

    fn moved(n: u8, before: Option<&str>, after: &str) -> Changed {
        let place = |a: &str| (DocKind::Visit, RegionCode::parse(a).unwrap());
        Changed {
            doc: DocumentId::from_bytes([n; 16]),
            kind: Some(DocKind::Visit),
            area: Some(RegionCode::parse(after).unwrap()),
            before: before.map(place),
        }
    }

    /// Each user is asked about exactly the documents whose place, before or after, their
    /// areas cover, in batch order.
    #[test]
    fn a_moved_document_concerns_the_users_whose_areas_cover_either_place() {
        let users = [
            user("kelurahan-a", &["32.77.01.1001"]),
            user("kelurahan-b", &["32.77.01.1002"]),
            user("kecamatan", &["32.77.01"]),
            user("kota", &["32.77"]),
            user("province", &["32"]),
            user("elsewhere", &["32.01", "33"]),
            user("kelurahan-c", &["32.77.01.1010"]),
            user("both", &["32.77.01.1001", "32.77.01.1002"]),
        ];
        let batch = [
            moved(1, None, "32.77.01.1001"),
            moved(2, Some("32.77.01.1001"), "32.77.01.1002"),
            moved(3, None, "32.01.02.2001"),
        ];
        let batch: Vec<Moved<'_>> = batch
            .iter()
            .map(|c| (c, c.kind.zip(c.area.clone())))
            .collect();
        let asked: Vec<(&str, Vec<u8>)> = concerned(&users, &batch)
            .into_iter()
            .map(|(u, changes)| {
                let docs = changes.iter().map(|(c, _)| c.doc.as_bytes()[0]).collect();
                (u.id.as_str(), docs)
            })
            .collect();
        assert_eq!(
            asked,
            [
                ("kelurahan-a", vec![1, 2]),
                ("kelurahan-b", vec![2]),
                ("kecamatan", vec![1, 2]),
                ("kota", vec![1, 2]),
                ("province", vec![1, 2, 3]),
                ("elsewhere", vec![3]),
                ("both", vec![1, 2]),
            ]
        );
    }
}
