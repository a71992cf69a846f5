//! Peers waiting for a document that does not exist yet: they asked for it (`request`), were
//! told `doc-unavailable`, and are given it if some peer creates it while they stay connected.
//! The core decides who waits ([`Effect::Wait`](fieldsync_core::actor::Effect::Wait): not
//! administrators, who read everything and would be remembered for every id they ever tried);
//! this registry keeps them. Part of the document actor task.
//!
//! Each connection may wait for at most [`crate::Limits::max_waiting_per_connection`]
//! documents ([`Waits`]); a request beyond it is answered `doc-unavailable` like any other
//! and not remembered. An actor whose only peers are waiting ones ends, and leaves them with
//! the hub ([`Parked`]) for the document's next actor: a waiting document costs one small
//! map entry per peer, not a task and an Automerge document (30,000 requests for missing
//! documents on one connection took 650 MB before).

use std::collections::HashMap;

use fieldsync_core::actor::{Event, Who};
use fieldsync_protocol::{DocumentId, PeerId};

use super::task::Actor;
use super::{Hub, PeerLink};
use crate::link::WaitSlot;

/// Waiting peers of documents without an actor.
pub(super) type Parked = HashMap<DocumentId, HashMap<PeerId, Waiting>>;

/// A peer waiting for the document.
#[derive(Debug)]
pub(super) struct Waiting {
    link: PeerLink,
    _slot: WaitSlot,
}

impl Actor {
    /// Remembers a peer the core says waits for the document (it asked before the document
    /// existed), within its connection's limit.
    pub(super) fn wait(&mut self, who: &Who) {
        let Some(link) = self.links.get(&(who.peer.clone(), who.conn)) else {
            return;
        };
        if self
            .waiting
            .get(&who.peer)
            .is_some_and(|w| w.link.conn == who.conn)
        {
            return;
        }
        match link.waits.take() {
            Some(slot) => {
                let link = link.clone();
                self.waiting
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

    /// Once the document exists, it is pushed to the waiting peers (the core gives it to
    /// those that may read it).
    pub(super) fn waiting_pushes(&mut self) -> Vec<Event> {
        if self.waiting.is_empty() || !self.core.exists() {
            return Vec::new();
        }
        let waiting = std::mem::take(&mut self.waiting);
        waiting
            .into_values()
            .map(|w| Event::Push {
                to: self.remember(w.link),
            })
            .collect()
    }

    /// The peer's connection `conn` closed.
    pub(super) fn stop_waiting(&mut self, peer: &PeerId, conn: u64) {
        if self.waiting.get(peer).is_some_and(|w| w.link.conn == conn) {
            self.waiting.remove(peer);
        }
    }
}

impl Hub {
    /// Keeps an ending actor's waiting peers. Called with the `docs` lock held.
    pub(super) fn park_waiting(&self, doc: DocumentId, waiting: HashMap<PeerId, Waiting>) {
        if waiting.is_empty() {
            return;
        }
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        parked.insert(doc, waiting);
    }

    /// The waiting peers of a document whose actor starts. Called with the `docs` lock held.
    pub(super) fn unpark_waiting(&self, doc: DocumentId) -> HashMap<PeerId, Waiting> {
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        parked.remove(&doc).unwrap_or_default()
    }

    /// A waiting peer's connection closed while the document has no actor. Called with the
    /// `docs` lock held.
    pub(super) fn forget_waiting(&self, doc: DocumentId, peer: &PeerId, conn: u64) {
        let mut parked = self.0.waiting.lock().expect("waiting lock poisoned");
        if let Some(waiting) = parked.get_mut(&doc) {
            if waiting.get(peer).is_some_and(|w| w.link.conn == conn) {
                waiting.remove(peer);
            }
            if waiting.is_empty() {
                parked.remove(&doc);
            }
        }
    }
}
