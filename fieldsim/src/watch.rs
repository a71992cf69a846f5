//! `fieldsim --watch-index URL --watch-token TOKEN`: a coordinator's phone with its caseload
//! index open through the storm. It measures what a large index costs the phone and whether
//! keeping it current holds back the storm: how long the index (its root and pages) took to
//! arrive and how large it is, then how long after the storm's last acknowledgement it listed
//! every new document.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fieldsync_client::{ConnectOptions, Replica, SyncHandle, index};
use fieldsync_protocol::{AutomergeUrl, DocumentId};

/// How often the watcher reads the index: reading a city's 100,000 entries from its pages at
/// every change the phone receives would take the cores from the storm it measures.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// The watching phone, connected.
pub struct Watcher {
    replica: Replica,
    handle: SyncHandle,
    index: DocumentId,
}

/// What the phone saw when it opened the index.
#[derive(Debug)]
pub struct Opened {
    pub seconds: f64,
    pub entries: usize,
    /// The index saved whole (its root and pages), as a phone stores it.
    pub bytes: usize,
}

/// Connects to `url` with `token` and waits until the index at `index_url` lists at least
/// `entries` documents (it is built when its user's phone first connects).
pub async fn open(
    url: &str,
    token: &str,
    index_url: &str,
    entries: usize,
    limit: Duration,
) -> anyhow::Result<(Watcher, Opened)> {
    let index = AutomergeUrl::parse(index_url)
        .context("--watch-index must be an automerge: URL")?
        .document_id();
    let replica = Replica::in_memory().await;
    let mut options = ConnectOptions::new(url);
    options.token = Some(token.to_owned());
    let start = Instant::now();
    let handle = replica.connect(options);
    let listed = loop {
        // Asked again while its user's index is being built (unavailable until then).
        replica.find(index).await;
        if let Some(listed) = replica.index_listing(index).await
            && listed.len() >= entries.max(1)
        {
            break listed;
        }
        if start.elapsed() > limit {
            bail!("the index did not arrive within {} s", limit.as_secs());
        }
        tokio::time::sleep(LOOK_EVERY).await;
    };
    let seconds = start.elapsed().as_secs_f64();
    let entries = listed.len();
    let pages = replica
        .read(index, index::pages)
        .await
        .flatten()
        .unwrap_or_default();
    let mut bytes = replica.read(index, |d| d.save().len()).await.unwrap_or(0);
    for page in pages.into_values() {
        bytes += replica.read(page, |d| d.save().len()).await.unwrap_or(0);
    }
    let watcher = Watcher {
        replica,
        handle,
        index,
    };
    Ok((
        watcher,
        Opened {
            seconds,
            entries,
            bytes,
        },
    ))
}

impl Watcher {
    /// Waits until the index lists every one of `docs`: the time it took, or `None` if it did
    /// not within `limit`. Then disconnects.
    pub async fn listed(self, docs: &[DocumentId], limit: Duration) -> Option<f64> {
        let start = Instant::now();
        // Each look reads only the pages that changed since the last one.
        let mut missing: HashSet<DocumentId> = docs.iter().copied().collect();
        let mut seen: HashMap<DocumentId, Vec<automerge::ChangeHash>> = HashMap::new();
        let done = loop {
            let pages = self.replica.read(self.index, index::pages).await.flatten();
            for page in pages.unwrap_or_default().into_values() {
                let Some(heads) = self.replica.heads(page).await else {
                    self.replica.find(page).await;
                    continue;
                };
                if seen.get(&page) == Some(&heads) {
                    continue;
                }
                let listed = self.replica.read(page, index::index_entries).await;
                for id in listed.flatten().unwrap_or_default() {
                    missing.remove(&id);
                }
                seen.insert(page, heads);
            }
            if missing.is_empty() {
                break true;
            }
            if start.elapsed() > limit {
                break false;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        };
        self.handle.stop().await;
        done.then(|| start.elapsed().as_secs_f64())
    }
}
