//! Documents and the deterministic sync engine of fieldsync.
//!
//! [`DocumentSync`] holds one automerge document and one automerge sync state per peer that has
//! it open. The runtime around it (the server's document actor, the phone-side client) feeds
//! it what arrives and carries out what it returns:
//!
//! 1. [`DocumentSync::receive`] (a peer's `sync`/`request`) or [`DocumentSync::change`] (a local
//!    edit) applies changes in memory and marks them *uncommitted*;
//! 2. [`DocumentSync::take_commit`] hands the runtime the new changes' bytes to make durable;
//! 3. [`DocumentSync::committed`] (or [`DocumentSync::rolled_back`] if storage failed) settles
//!    them;
//! 4. only then does [`DocumentSync::generate`] return the sync messages for every peer.
//!
//! [`actor::DocumentActor`] holds the document actor's decisions on top of it, without
//! IO: events in (a peer's message, storage's answer, another process's changes, a tick),
//! effects out (write these, send that), so a whole network of phones and server processes
//! can be simulated in a test. [`index`] is the format of each user's index document;
//! [`attachments`] reads which blobs a document references.
//!
//! Because `generate` refuses to run while changes are uncommitted, no reply can tell a peer
//! "I have it" before it is stored. The crate does no IO, reads no clock and draws no
//! randomness: everything comes in as arguments, so the same inputs give the same outputs on
//! the server, on a phone and in a test.

pub mod actor;
pub mod attachments;
mod document;
pub mod index;
pub mod limits;
pub mod schema;

pub use automerge;
pub use document::{Commit, DocumentSync, Kind, ParkedPeer, Receipt, SyncError, Uncommitted};
pub use limits::{LimitError, Limits, Size};
