//! How a document actor reaches a connected peer: the peer's outbound queue and who it is.
//! Below both the hub (which sends through links) and the connections and caseloads (which
//! make and offer through them), so neither needs the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fieldsync_core::schema::Author;
use fieldsync_protocol::{DocumentId, Message, PeerId, StorageId};
use tokio::sync::{Notify, mpsc};

/// What a document actor sends to a connection.
#[derive(Debug)]
pub enum Outbound {
    /// One encoded protocol message.
    Frame(Vec<u8>),
    /// Send an `error` with this text, then close.
    Fatal(String),
    /// Start syncing this document, which the peer did not ask for (`crate::caseload`).
    Push(DocumentId),
}

/// Whether a peer's outbound queue has room for an offer (`crate::caseload`): less than half
/// full. An offer's sync messages queue behind everything else for the peer, and a storm in
/// a city offers its coordinator's phone thousands of documents at once; a peer that is
/// behind is left to find them through its index, which lists them, rather than pushed
/// towards the full queue that disconnects it.
pub(crate) fn room_for_offer(out: &mpsc::Sender<Outbound>) -> bool {
    out.capacity() * 2 > out.max_capacity()
}

/// How a document actor reaches one connected peer.
#[derive(Debug, Clone)]
pub struct PeerLink {
    pub peer: PeerId,
    /// Distinguishes a peer's successive connections: a new `join` with the same peer id
    /// replaces the old connection.
    pub conn: u64,
    /// Where to persist this peer's sync state: its storage id, unless it is ephemeral.
    pub storage: Option<StorageId>,
    pub out: mpsc::Sender<Outbound>,
    /// Notified when the peer cannot keep up and must be disconnected.
    pub kill: Arc<Notify>,
    /// Who writes through this connection: the write rules' input.
    pub author: Arc<Author>,
    /// The enrolled device behind the connection.
    pub device: Arc<str>,
    /// The documents this connection waits for (`hub/waiting.rs`).
    pub waits: Arc<Waits>,
    /// This connection's messages being worked on at document actors, until answered.
    pub busy: Arc<crate::turns::Count>,
}

impl PeerLink {
    pub(crate) fn send(&self, message: &Message) {
        crate::metrics::message_sent(message.kind());
        if self
            .out
            .try_send(Outbound::Frame(message.encode()))
            .is_err()
        {
            // The peer's queue is full: it is too slow (or gone). Dropping it protects every
            // other peer of this document from waiting on it.
            self.kill.notify_one();
        }
    }

    pub(crate) fn fatal(&self, reason: String) {
        if self.out.try_send(Outbound::Fatal(reason)).is_err() {
            self.kill.notify_one();
        }
    }
}

/// How many documents one connection waits for, against its limit; shared by the connection's
/// [`PeerLink`]s.
#[derive(Debug)]
pub struct Waits {
    count: AtomicUsize,
    max: usize,
    /// The limit was reached once: logged once per connection.
    told: AtomicBool,
}

impl Waits {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            count: AtomicUsize::new(0),
            max,
            told: AtomicBool::new(false),
        })
    }

    /// A place for one more waiting document, or `None` at the limit.
    pub(crate) fn take(self: &Arc<Self>) -> Option<WaitSlot> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitSlot(self.clone()))
    }

    /// How many documents the connection may wait for.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// True the first time the limit is reached: it is logged once per connection.
    pub(crate) fn first_time_full(&self) -> bool {
        !self.told.swap(true, Ordering::Relaxed)
    }
}

/// One waiting document of a connection; frees its place when dropped.
#[derive(Debug)]
pub(crate) struct WaitSlot(Arc<Waits>);

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_stop_at_half_the_queue() {
        let (out, _rx) = mpsc::channel(4);
        assert!(room_for_offer(&out));
        out.try_send(Outbound::Fatal(String::new())).unwrap();
        assert!(room_for_offer(&out), "a quarter full");
        out.try_send(Outbound::Fatal(String::new())).unwrap();
        assert!(!room_for_offer(&out), "half full");
    }
}
