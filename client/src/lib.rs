//! The phone side of fieldsync: an offline replica that syncs with a server over protocol v1.
//!
//! A [`Replica`] holds documents and persists them locally (in a directory, or only in memory
//! for simulations). Edits work with no connection. [`Replica::connect`] starts a background
//! task that connects, syncs every local document and every document asked for with
//! [`Replica::find`], relays local edits as they happen, and reconnects with backoff when the
//! link drops. [`Replica::is_acknowledged`] tells whether the server has durably stored all of
//! a document's local changes: the server only reports heads it has committed, so "the server's
//! heads cover ours" means "stored".
//!
//! The same engine as the server's ([`fieldsync_core::DocumentSync`]) runs here, with the server
//! as the only peer; received changes are stored locally before they are acknowledged back.

mod connect;
mod store;
mod tls;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transaction;
use automerge::{Automerge, AutomergeError, ChangeHash};
use fieldsync_core::DocumentSync;
use fieldsync_core::schema::{Author, FieldDocument, Role, Violation, check_change};
use fieldsync_protocol::{DocumentId, PeerId, StorageId};
use tokio::sync::{Mutex, Notify, watch};

pub use connect::{ConnectOptions, SyncHandle};
pub use fieldsync_core::automerge;
pub use fieldsync_core::index::{self, index_entries};
pub use store::Store;

/// What can go wrong on the phone side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("local storage: {0}")]
    Store(#[from] std::io::Error),
    #[error("document {0} is not on this replica")]
    UnknownDocument(DocumentId),
    #[error("edit failed: {0}")]
    Edit(#[from] AutomergeError),
    #[error("stored document {0} cannot be read: {1}")]
    Corrupt(DocumentId, String),
    #[error("timed out")]
    Timeout,
    #[error("change refused: {}", list(.0))]
    Refused(Vec<Violation>),
}

/// Where a document stands with the server.
fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocStatus {
    /// Asked for with `find`, not received yet.
    Wanted,
    /// The server does not have it (or will not share it).
    Unavailable,
    /// Local changes the server has not yet confirmed as stored.
    Pending,
    /// The server has durably stored every local change.
    Acknowledged,
    /// The server refused the local changes (see [`Replica::refusal`]): they stay on this
    /// phone only, and the document is not synced until the next local change, which may
    /// repair it.
    Refused,
}

struct Entry {
    sync: DocumentSync,
    unavailable: bool,
    /// Heads the server last confirmed it holds.
    acked: Option<Vec<ChangeHash>>,
    /// Why the server refused our changes, until the next local change.
    refused: Option<Vec<Violation>>,
}

impl Entry {
    /// An empty document, syncing with `server` when connected.
    fn new(id: DocumentId, server: Option<PeerId>) -> Self {
        let mut sync = DocumentSync::new(id);
        sync.set_limits(fieldsync_core::Limits::NONE);
        if let Some(server) = server {
            sync.add_peer(server, None);
        }
        Self::from_sync(sync)
    }

    fn from_sync(sync: DocumentSync) -> Self {
        Self {
            sync,
            unavailable: false,
            acked: None,
            refused: None,
        }
    }

    fn status(&self) -> DocStatus {
        if !self.sync.exists() {
            return if self.unavailable {
                DocStatus::Unavailable
            } else {
                DocStatus::Wanted
            };
        }
        if self.refused.is_some() {
            return DocStatus::Refused;
        }
        match &self.acked {
            Some(heads) if self.sync.doc().get_changes(heads).is_empty() => DocStatus::Acknowledged,
            _ => DocStatus::Pending,
        }
    }
}

pub(crate) struct State {
    docs: HashMap<DocumentId, Entry>,
    /// The server peer id of the current connection, once joined.
    server: Option<PeerId>,
    /// The storage id the server advertised, under which sync states are kept.
    server_storage: Option<StorageId>,
    /// Whose edits this replica makes: the write rules' input.
    author: Author,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    store: Store,
    peer_id: PeerId,
    storage_id: StorageId,
    /// Woken by local edits and `find`, so the sync task sends them.
    local_change: Notify,
    /// Bumped on every change of any document's status, for waiters.
    version: watch::Sender<u64>,
}

/// An offline replica of documents; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Replica(Arc<Inner>);

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("peer_id", &self.0.peer_id)
            .field("storage_id", &self.0.storage_id)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (or creates) a replica persisted in `store`, loading every stored document.
    pub async fn open(store: Store) -> Result<Self, ClientError> {
        let storage_id = store.storage_id().await?;
        let mut docs = HashMap::new();
        for (id, bytes) in store.load_documents().await? {
            let sync = DocumentSync::load(id, &bytes, 1, fieldsync_core::Limits::NONE)
                .map_err(|e| ClientError::Corrupt(id, e.to_string()))?;
            docs.insert(id, Entry::from_sync(sync));
        }
        let peer_id = PeerId::parse(&format!("phone-{}", uuid::Uuid::new_v4()))
            .expect("a uuid makes a valid peer id");
        Ok(Self(Arc::new(Inner {
            state: Mutex::new(State {
                docs,
                server: None,
                server_storage: None,
                author: Author::anonymous(Role::Peksos),
            }),
            store,
            peer_id,
            storage_id,
            local_change: Notify::new(),
            version: watch::Sender::new(0),
        })))
    }

    /// A replica that keeps nothing on disk (simulations, tests).
    pub async fn in_memory() -> Self {
        Self::open(Store::Memory)
            .await
            .expect("memory storage cannot fail")
    }

    pub fn peer_id(&self) -> &PeerId {
        &self.0.peer_id
    }

    pub fn storage_id(&self) -> &StorageId {
        &self.0.storage_id
    }

    /// Creates a document with a random id and the edit `f`, stored locally before this
    /// returns.
    pub async fn create(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<DocumentId, ClientError> {
        let id = DocumentId::from_bytes(rand::random());
        let mut state = self.0.state.lock().await;
        let entry = Entry::new(id, state.server.clone());
        state.docs.insert(id, entry);
        drop(state);
        if let Err(e) = self.change(id, f).await {
            self.0.state.lock().await.docs.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// Sets whose edits this replica makes (by default an anonymous field worker): the
    /// write rules judge every local change for this author before it is made.
    pub async fn set_author(&self, author: Author) {
        self.0.state.lock().await.author = author;
    }

    /// Deletes a document from this replica and its local storage (the server said it is no
    /// longer ours to hold).
    pub(crate) async fn drop_document(&self, id: DocumentId) -> std::io::Result<()> {
        self.0.state.lock().await.docs.remove(&id);
        self.0.store.remove(id).await?;
        self.bump();
        Ok(())
    }

    /// Deletes every document from this replica and its local storage (the device was
    /// revoked).
    pub(crate) async fn wipe(&self) -> std::io::Result<()> {
        self.0.state.lock().await.docs.clear();
        self.0.store.wipe().await?;
        self.bump();
        Ok(())
    }

    /// Why the server refused this document's local changes, while it is
    /// [`DocStatus::Refused`].
    pub async fn refusal(&self, id: DocumentId) -> Option<Vec<Violation>> {
        let state = self.0.state.lock().await;
        state.docs.get(&id).and_then(|e| e.refused.clone())
    }

    /// Edits a document; the edit is stored locally before this returns and sent to the
    /// server when connected.
    pub async fn change<O>(
        &self,
        id: DocumentId,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    ) -> Result<O, ClientError> {
        let mut state = self.0.state.lock().await;
        let State {
            docs,
            server,
            author,
            ..
        } = &mut *state;
        let entry = docs.get_mut(&id).ok_or(ClientError::UnknownDocument(id))?;
        // A stored document that is not valid counts as empty, as on the server.
        let before = FieldDocument::read_state(entry.sync.doc()).ok().flatten();
        let out = entry.sync.change(|tx| {
            let out = f(tx).map_err(ClientError::Edit)?;
            let after = FieldDocument::read_state(tx).map_err(ClientError::Refused)?;
            check_change(before.as_ref(), after.as_ref(), author).map_err(ClientError::Refused)?;
            Ok::<_, ClientError>(out)
        })?;
        if entry.refused.take().is_some()
            && let Some(server) = server
        {
            // A new attempt after a refusal: start the exchange afresh, so that the server is
            // sent every change it lacks, the refused ones with the repair.
            entry.sync.remove_peer(server);
            entry.sync.add_peer(server.clone(), None);
        }
        self.commit_locally(id, entry).await?;
        drop(state);
        self.0.local_change.notify_one();
        self.bump();
        Ok(out)
    }

    /// Stores a document's uncommitted changes on this device.
    async fn commit_locally(&self, id: DocumentId, entry: &mut Entry) -> Result<(), ClientError> {
        if let Some(commit) = entry.sync.take_commit() {
            match self.0.store.append(id, &commit.bytes).await {
                Ok(()) => entry.sync.committed(&commit),
                Err(e) => {
                    let _ = entry.sync.rolled_back();
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Asks the server for a document this replica does not have.
    pub async fn find(&self, id: DocumentId) {
        let mut state = self.0.state.lock().await;
        let server = state.server.clone();
        let entry = state
            .docs
            .entry(id)
            .or_insert_with(|| Entry::new(id, server));
        entry.unavailable = false;
        drop(state);
        self.0.local_change.notify_one();
    }

    /// Reads a document, if this replica has it.
    pub async fn read<R>(&self, id: DocumentId, f: impl FnOnce(&Automerge) -> R) -> Option<R> {
        let state = self.0.state.lock().await;
        state
            .docs
            .get(&id)
            .filter(|e| e.sync.exists())
            .map(|e| f(e.sync.doc()))
    }

    pub async fn heads(&self, id: DocumentId) -> Option<Vec<ChangeHash>> {
        self.read(id, |d| d.get_heads()).await
    }

    pub async fn status(&self, id: DocumentId) -> Option<DocStatus> {
        self.0.state.lock().await.docs.get(&id).map(Entry::status)
    }

    /// Whether the server has durably stored every local change of the document.
    pub async fn is_acknowledged(&self, id: DocumentId) -> bool {
        self.status(id).await == Some(DocStatus::Acknowledged)
    }

    /// Documents with local changes the server has not confirmed.
    pub async fn unacknowledged(&self) -> Vec<DocumentId> {
        let state = self.0.state.lock().await;
        state
            .docs
            .iter()
            .filter(|(_, e)| e.status() == DocStatus::Pending)
            .map(|(id, _)| *id)
            .collect()
    }

    pub async fn documents(&self) -> Vec<DocumentId> {
        let state = self.0.state.lock().await;
        state
            .docs
            .iter()
            .filter(|(_, e)| e.sync.exists())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Waits until `check` holds for the document's status (or `limit` passes).
    pub async fn wait_status(
        &self,
        id: DocumentId,
        limit: Duration,
        check: impl Fn(Option<DocStatus>) -> bool,
    ) -> Result<(), ClientError> {
        let mut version = self.0.version.subscribe();
        tokio::time::timeout(limit, async {
            loop {
                if check(self.status(id).await) {
                    return;
                }
                if version.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)
    }

    /// Waits until the server has durably stored every local change of the document.
    pub async fn wait_acknowledged(
        &self,
        id: DocumentId,
        limit: Duration,
    ) -> Result<(), ClientError> {
        self.wait_status(id, limit, |s| s == Some(DocStatus::Acknowledged))
            .await
    }

    /// Restores a caseload from the user's index (its URL comes with the device's
    /// enrollment): finds the index and its pages, then every document they list. Returns how
    /// many they list; the documents arrive in the background like any found document.
    pub async fn restore_from_index(
        &self,
        index: DocumentId,
        limit: Duration,
    ) -> Result<usize, ClientError> {
        let listed = self.wait_index(index, limit, |_| true).await?;
        for id in &listed {
            self.find(*id).await;
        }
        Ok(listed.len())
    }

    /// What the index `index` lists, from its root and pages as this replica holds them:
    /// `None` until the root and every page it lists are here. Pages not here yet are asked
    /// for. A schema 1 index (its entries in the root) is read as well.
    pub async fn index_listing(&self, index: DocumentId) -> Option<Vec<DocumentId>> {
        let (pages, own) = self
            .read(index, |d| (index::pages(d), index_entries(d)))
            .await?;
        if pages.is_none() && own.is_none() {
            return None;
        }
        let pages = pages.unwrap_or_default();
        // Every page first, cheaply: a city's pages arrive one by one, and the list is read
        // once they are all here.
        let mut complete = true;
        for page in pages.values() {
            if self.read(*page, |_| ()).await.is_none() {
                self.find(*page).await;
                complete = false;
            }
        }
        if !complete {
            return None;
        }
        let mut listed: BTreeSet<DocumentId> = own.unwrap_or_default().into_iter().collect();
        for page in pages.values() {
            listed.extend(self.read(*page, index_entries).await.flatten()?);
        }
        Some(listed.into_iter().collect())
    }

    /// Asks for the index `index` and waits until what it lists ([`Self::index_listing`])
    /// passes `check`; returns that list.
    pub async fn wait_index(
        &self,
        index: DocumentId,
        limit: Duration,
        check: impl Fn(&[DocumentId]) -> bool,
    ) -> Result<Vec<DocumentId>, ClientError> {
        let mut version = self.0.version.subscribe();
        self.find(index).await;
        tokio::time::timeout(limit, async {
            loop {
                if let Some(listed) = self.index_listing(index).await
                    && check(&listed)
                {
                    return listed;
                }
                if version.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)
    }

    /// Waits until `check` holds for the document's contents.
    pub async fn wait_doc(
        &self,
        id: DocumentId,
        limit: Duration,
        check: impl Fn(&Automerge) -> bool,
    ) -> Result<(), ClientError> {
        let mut version = self.0.version.subscribe();
        tokio::time::timeout(limit, async {
            loop {
                if self.read(id, &check).await == Some(true) {
                    return;
                }
                if version.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)
    }

    fn bump(&self) {
        self.0.version.send_modify(|v| *v += 1);
    }
}
