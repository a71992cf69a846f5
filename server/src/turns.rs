//! Turns at syncing: at most `--max-syncing` connections have their messages handled at once;
//! the others wait, first come first served, holding one read frame each.
//!
//! Without turns, a storm larger than the document places (`--max-loaded-docs`) made every
//! connected phone's documents take turns at the places instead: a document was unloaded
//! between two messages of its exchange and loaded again, so 1,000 phones at once loaded each
//! document four times and their sync states and buffers all grew together. With turns, a
//! phone that has its turn keeps its documents loaded until its exchange is over, and one that
//! waits costs its socket and one frame.
//!
//! A connection takes a turn when a message arrives that goes to a document, and gives it back
//! once it has been quiet for [`QUIET`] with nothing of its own waiting at the documents; it
//! also yields, at its next message, after [`TURN`] while others wait, so that no connection
//! keeps its turn for ever. Joining and pings need no turn: a waiting phone is answered
//! `peer` at once and hears from the server while it waits (`connection.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A turn is given back after this long without a message from its phone, once nothing of
/// the phone's waits at the documents.
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// A turn held this long is given up at the next message while other connections wait.
pub(crate) const TURN: Duration = Duration::from_secs(5);

/// The turns of one process.
#[derive(Debug)]
pub(crate) struct Turns {
    slots: Arc<Semaphore>,
    waiting: Arc<Count>,
}

/// One connection's turn, held while the value lives.
#[derive(Debug)]
pub(crate) struct Turn {
    _slot: OwnedSemaphorePermit,
    _held: crate::metrics::Open,
    since: Instant,
}

impl Turns {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.max(1))),
            waiting: Arc::default(),
        }
    }

    /// A turn, at once if one is free, else after the connections that asked before.
    pub(crate) async fn take(&self) -> Turn {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                crate::metrics::turn_waited();
                // Counted also when the wait is cancelled: the connection closed.
                let _waiting = (crate::metrics::turn_waiting(), self.waiting.hold());
                let slot = self.slots.clone().acquire_owned().await;
                slot.expect("the semaphore is never closed")
            }
        };
        Turn {
            _slot: slot,
            _held: crate::metrics::turn_held(),
            since: Instant::now(),
        }
    }

    /// Whether a connection waits for a turn.
    pub(crate) fn others_wait(&self) -> bool {
        self.waiting.count() > 0
    }
}

impl Turn {
    /// Held for [`TURN`] while others wait: to be given up.
    pub(crate) fn overdue(&self, turns: &Turns) -> bool {
        self.since.elapsed() >= TURN && turns.others_wait()
    }
}

/// A count of things in progress, each counted while its [`Held`] lives: the connections
/// waiting for a turn, and a connection's messages at document actors from when an actor
/// takes one until its writes are stored and its replies sent (`PeerLink::busy`: while any
/// is, the connection's exchange is not over and it keeps its turn).
#[derive(Debug, Default)]
pub struct Count(AtomicUsize);

impl Count {
    /// One more while the value lives.
    pub(crate) fn hold(self: &Arc<Self>) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(self.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// See [`Count::hold`].
#[derive(Debug)]
pub(crate) struct Held(Arc<Count>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_waits_for_one_given_back_first_come_first_served() {
        let turns = Arc::new(Turns::new(1));
        let first = turns.take().await;
        assert!(!turns.others_wait());

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..2 {
            let (turns, tx) = (turns.clone(), tx.clone());
            tokio::spawn(async move {
                let turn = turns.take().await;
                tx.send(n).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(turn);
            });
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        assert!(turns.others_wait());
        assert!(rx.try_recv().is_err(), "no turn while the only one is held");
        assert!(!first.overdue(&turns), "held for less than a turn");

        drop(first);
        assert_eq!(rx.recv().await, Some(0));
        assert_eq!(rx.recv().await, Some(1));
        assert!(!turns.others_wait());
    }

    #[tokio::test]
    async fn a_cancelled_wait_is_not_counted() {
        let turns = Turns::new(1);
        let held = turns.take().await;
        let wait = tokio::time::timeout(Duration::from_millis(5), turns.take()).await;
        assert!(wait.is_err());
        assert!(!turns.others_wait());
        drop(held);
        let _again = turns.take().await;
    }
}
