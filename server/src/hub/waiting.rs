//! Peers waiting for a document that does not exist yet: they asked for it (`request`), were
//! told `doc-unavailable`, and are given it if some peer creates it while they stay connected.
//! The core decides who waits ([`Effect::Wait`](fieldsync_core::actor::Effect::Wait): not
//! administrators, who read everything and would be remembered for every id they ever tried);
//! this registry keeps them, for the document actor task and, between actors, for the hub.
//!
//! Each connection may wait for at most [`crate::Limits::max_waiting_per_connection`]
//! documents ([`Waits`]); a request beyond it is answered `doc-unavailable` like any other
//! and not remembered. An actor whose only peers are waiting ones ends, and leaves them with
//! the hub ([`Parked`]) for the document's next actor: a waiting document costs one small
//! map entry per peer, not a task and an Automerge document (30,000 requests for missing
//! documents on one connection took 650 MB before).

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync_core::actor::Who;
use fieldsync_protocol::{DocumentId, PeerId};

use super::{Hub, PeerLink};
use crate::link::WaitSlot;

/// Waiting peers of documents without an actor.
pub(super) type Parked = HashMap<DocumentId, WaitingPeers>;

/// The peers waiting for one document, each holding one of its connection's waiting slots.
#[derive(Debug, Default)]
pub(super) struct WaitingPeers(HashMap<PeerId, Waiting>);

#[derive(Debug)]
struct Waiting {
    link: Arc<PeerLink>,
    _slot: WaitSlot,
}

impl WaitingPeers {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Remembers a peer the core says waits for the document (it asked before the document
    /// existed), over `link`, within its connection's limit.
    pub(super) fn add(&mut self, who: &Who, link: &Arc<PeerLink>) {
        if self
            .0
            .get(&who.peer)
            .is_some_and(|w| w.link.conn == who.conn)
        {
            return;
        }
        match link.waits.take() {
            Some(slot) => {
                let link = link.clone();
                self.0
                    .insert(who.peer.clone(), Waiting { link, _slot: slot });
            }
            None => {
                if link.waits.first_time_full() {
                    tracing::info!(
                        peer = %who.peer,
                        "peer waits for {} documents that do not exist; further ones are not remembered",
                        link.waits.max()
                    );
                }
            }
        }
    }

    /// Every waiting peer's link, leaving none waiting (the document now exists).
    pub(super) fn take(&mut self) -> Vec<Arc<PeerLink>> {
        std::mem::take(&mut self.0)
            .into_values()
            .map(|w| w.link)
            .collect()
    }

    /// The peer's connection `conn` closed.
    pub(super) fn stop(&mut self, peer: &PeerId, conn: u64) {
        if self.0.get(peer).is_some_and(|w| w.link.conn == conn) {
            self.0.remove(peer);
        }
    }
}

impl Hub {
    /// Keeps an ending actor's waiting peers. Called with the `docs` lock held.
    pub(super) fn park_waiting(&self, doc: DocumentId, waiting: WaitingPeers) {
        if waiting.is_empty() {
            return;
        }
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        parked.insert(doc, waiting);
    }

    /// The waiting peers of a document whose actor starts. Called with the `docs` lock held.
    pub(super) fn unpark_waiting(&self, doc: DocumentId) -> WaitingPeers {
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        parked.remove(&doc).unwrap_or_default()
    }

    /// A waiting peer's connection closed while the document has no actor. Called with the
    /// `docs` lock held.
    pub(super) fn forget_waiting(&self, doc: DocumentId, peer: &PeerId, conn: u64) {
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        if let Some(waiting) = parked.get_mut(&doc) {
            waiting.stop(peer, conn);
            if waiting.is_empty() {
                parked.remove(&doc);
            }
        }
    }
}
