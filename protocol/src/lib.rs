//! The bytes on the wire between phones and the fieldsync server.
//!
//! This crate owns the automerge-repo sync protocol, version "1": one CBOR map per binary
//! WebSocket frame. Data flows through it in one direction at a time:
//!
//! * inbound: a frame's bytes → [`Message::decode`] → a typed [`Message`] whose identifiers
//!   ([`DocumentId`], [`PeerId`], [`StorageId`]) are already parsed and validated;
//! * outbound: a [`Message`] → [`Message::encode`] → bytes for one binary frame.
//!
//! [`negotiate`] picks the protocol version for a connection from the versions a peer offers in
//! its `join`; [`Session`] is the per-connection handshake state machine that checks every frame
//! after the handshake belongs to the peer that joined. [`tus`] parses the headers of the
//! resumable uploads that bring attachments (`/files/`), and names blobs ([`BlobHash`]). Nothing else in the workspace knows the
//! wire format, and nothing here does IO.

mod decode;
mod ids;
mod message;
mod notice;
mod session;
pub mod tus;
mod version;

pub use ids::{AutomergeUrl, DocumentId, IdError, PeerId, StorageId};
pub use message::{DecodeError, DocMessage, HeadsInfo, Message, PeerMetadata};
pub use notice::{CHANGE_REFUSED, DROP, Notice, NoticeViolation};
pub use session::{Inbound, Session, SessionError};
pub use tus::BlobHash;
pub use version::{NoCommonVersion, ProtocolVersion, SUPPORTED_VERSIONS, negotiate};
