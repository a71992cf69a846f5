//! `fieldsim --watch-index URL --watch-token TOKEN`: a coordinator's phone with its caseload
//! index open through the storm. It measures what a large index costs the phone and whether
//! keeping it current holds back the storm: how long the index took to arrive and how large it
//! is, then how long after the storm's last acknowledgement it listed every new document.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fieldsync_client::{ConnectOptions, Replica, SyncHandle, index_entries};
use fieldsync_core::index::listed_as;
use fieldsync_protocol::{AutomergeUrl, DocumentId};

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
    /// The index saved whole, as a phone stores it.
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
    loop {
        // Asked again while its user's index is being built (unavailable until then).
        replica.find(index).await;
        let listed = |doc: &automerge::Automerge| {
            index_entries(doc).is_some_and(|e| e.len() >= entries.max(1))
        };
        if replica
            .wait_doc(index, Duration::from_secs(1), listed)
            .await
            .is_ok()
        {
            break;
        }
        if start.elapsed() > limit {
            bail!("the index did not arrive within {} s", limit.as_secs());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (entries, bytes) = replica
        .read(index, |doc| {
            (index_entries(doc).map_or(0, |e| e.len()), doc.save().len())
        })
        .await
        .unwrap_or_default();
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
        let wanted: Vec<String> = docs.iter().map(ToString::to_string).collect();
        let all = |doc: &automerge::Automerge| wanted.iter().all(|d| listed_as(doc, d).is_some());
        let done = self.replica.wait_doc(self.index, limit, all).await.is_ok();
        self.handle.stop().await;
        done.then(|| start.elapsed().as_secs_f64())
    }
}
