//! Group commit: one task applies the writes of many documents in one transaction.
//!
//! Thousands of phones reconnecting at once each bring a few changes. Committing each on its
//! own would cost one fsync per change; the writer instead takes everything queued while the
//! previous transaction was committing and commits it together. Every caller still learns
//! whether *its* write is durable before it replies to anyone.
//!
//! When another process had stored changes of a document that this one's state lacks, storage
//! keeps the document's query rows as they were rather than write them from an incomplete
//! state ([`Written::behind`]); the writer then rebuilds them from everything stored, in a task
//! of its own so that the next batch does not wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::storage::{Storage, StorageError, StorageResult, Write, Written};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

type Request = (Vec<Write>, oneshot::Sender<StorageResult<()>>);

/// A handle to the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    /// The last transaction failed (and none has succeeded since): health reports it.
    failing: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer task; it ends when every handle is dropped and the queue is empty.
    pub fn spawn(storage: Arc<dyn Storage>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let failing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(storage, rx, failing.clone()));
        (Self { tx, failing }, task)
    }

    /// Whether the last transaction failed: changes are not being stored.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Queues a write and waits until it is durable (or failed).
    pub async fn write(&self, write: Write) -> StorageResult<()> {
        self.write_all(vec![write]).await
    }

    /// Queues writes that must land in the same transaction, and waits until they are
    /// durable (or failed).
    pub async fn write_all(&self, writes: Vec<Write>) -> StorageResult<()> {
        let (done, result) = oneshot::channel();
        self.tx
            .send((writes, done))
            .await
            .map_err(|_| StorageError("writer stopped".into()))?;
        result
            .await
            .map_err(|_| StorageError("writer stopped".into()))?
    }
}

async fn run(storage: Arc<dyn Storage>, mut rx: mpsc::Receiver<Request>, failing: Arc<AtomicBool>) {
    let mut writes = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    while let Some((mut first, done)) = rx.recv().await {
        writes.append(&mut first);
        waiters.push(done);
        while writes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((mut more, done)) => {
                    writes.append(&mut more);
                    waiters.push(done);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = storage.write(&writes).await;
        crate::metrics::write_batch(writes.len(), started.elapsed(), result.is_ok());
        match &result {
            Ok(Written { behind }) if !behind.is_empty() => {
                tokio::spawn(rebuild(storage.clone(), behind.clone()));
            }
            Ok(_) => {}
            Err(e) => tracing::error!(writes = writes.len(), "write batch failed: {e}"),
        }
        failing.store(result.is_err(), Ordering::Relaxed);
        for done in waiters.drain(..) {
            let _ = done.send(result.clone().map(|_| ()));
        }
        writes.clear();
    }
}

/// Rebuilds the query rows of documents that another process also changed.
async fn rebuild(storage: Arc<dyn Storage>, docs: Vec<fieldsync_protocol::DocumentId>) {
    for doc in docs {
        if let Err(e) = crate::reindex::rebuild(storage.as_ref(), doc).await {
            // `fieldsync reindex` repairs what is left; the document itself is stored.
            tracing::warn!(%doc, "query rows not rebuilt: {e}");
        }
    }
}
