//! The messages of protocol version "1" and their CBOR encoding.
//!
//! Decoding follows what real clients send rather than what an ideal encoder would: the JS
//! client (cbor-x) writes non-minimal map headers, `undefined` for absent values and float64
//! timestamps, and newer clients add keys. Unknown keys are skipped; unknown message types are
//! refused, because acting on a message we do not understand could lose data.

use minicbor::Encoder;

use crate::ids::{DocumentId, PeerId, StorageId};

/// `peerMetadata` of `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The store the sender persists documents in, when it has one.
    pub storage_id: Option<StorageId>,
    /// True when the sender will not reconnect with the same storage: nothing is worth
    /// persisting about it.
    pub is_ephemeral: bool,
}

/// The fields shared by `sync` and `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMessage {
    pub document_id: DocumentId,
    pub sender: PeerId,
    pub target: PeerId,
    /// An encoded automerge sync message; this crate does not look inside.
    pub data: Vec<u8>,
}

/// What one storage id's copy of a document looks like, in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadsInfo {
    /// Change hashes, as the sender wrote them.
    pub heads: Vec<String>,
    /// Milliseconds since the Unix epoch on the sender's clock.
    pub timestamp: f64,
}

/// One message of protocol version "1": exactly one binary WebSocket frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Opens the handshake (client → server).
    Join {
        sender: PeerId,
        metadata: Option<PeerMetadata>,
        supported_versions: Vec<String>,
    },
    /// Completes the handshake (server → client).
    Peer {
        sender: PeerId,
        target: PeerId,
        metadata: Option<PeerMetadata>,
        selected_version: String,
    },
    /// The sender is about to disconnect (advisory).
    Leave { sender: PeerId },
    /// A fatal protocol error; the sender closes the connection after it.
    Error { message: String },
    /// Like `sync`, from a peer that does not have the document yet: "tell me if you don't
    /// have it either".
    Request(DocMessage),
    /// One automerge sync message for one document.
    Sync(DocMessage),
    /// The sender does not have the document (or will not share it).
    DocUnavailable {
        document_id: DocumentId,
        sender: PeerId,
        target: PeerId,
    },
    /// Application data relayed to the peers that have the document open; never stored.
    Ephemeral {
        document_id: DocumentId,
        sender: PeerId,
        target: PeerId,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
    /// Which storage ids' heads the sender wants to hear about.
    RemoteSubscriptionChange {
        sender: PeerId,
        target: PeerId,
        add: Vec<StorageId>,
        remove: Vec<StorageId>,
    },
    /// Heads of a document on other stores.
    RemoteHeadsChanged {
        document_id: DocumentId,
        sender: PeerId,
        target: PeerId,
        new_heads: Vec<(StorageId, HeadsInfo)>,
    },
}

/// Why a frame could not be read as a message. The text is safe to send back to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid CBOR: {0}")]
    NotCbor(String),
    #[error("frame is not a CBOR map")]
    NotAMap,
    #[error("frame has bytes after the message")]
    TrailingBytes,
    #[error("message has no \"type\"")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("{kind} message lacks \"{field}\"")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("field \"{field}\" is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl Message {
    /// The `type` string of this message on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Leave { .. } => "leave",
            Self::Error { .. } => "error",
            Self::Request(_) => "request",
            Self::Sync(_) => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Self::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    /// The `senderId`, for every message that carries one.
    pub fn sender(&self) -> Option<&PeerId> {
        match self {
            Self::Join { sender, .. }
            | Self::Peer { sender, .. }
            | Self::Leave { sender }
            | Self::DocUnavailable { sender, .. }
            | Self::Ephemeral { sender, .. }
            | Self::RemoteSubscriptionChange { sender, .. }
            | Self::RemoteHeadsChanged { sender, .. } => Some(sender),
            Self::Request(m) | Self::Sync(m) => Some(&m.sender),
            Self::Error { .. } => None,
        }
    }

    /// The `targetId`, for every message that carries one.
    pub fn target(&self) -> Option<&PeerId> {
        match self {
            Self::Peer { target, .. }
            | Self::DocUnavailable { target, .. }
            | Self::Ephemeral { target, .. }
            | Self::RemoteSubscriptionChange { target, .. }
            | Self::RemoteHeadsChanged { target, .. } => Some(target),
            Self::Request(m) | Self::Sync(m) => Some(&m.target),
            Self::Join { .. } | Self::Leave { .. } | Self::Error { .. } => None,
        }
    }

    /// Writes one frame, with minimal CBOR headers.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::with_capacity(64 + self.payload_len()));
        self.write(&mut e)
            .expect("writing CBOR into a Vec cannot fail");
        e.into_writer()
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Request(m) | Self::Sync(m) => m.data.len(),
            Self::Ephemeral { data, .. } => data.len(),
            _ => 0,
        }
    }

    fn write(
        &self,
        e: &mut Encoder<Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        match self {
            Self::Join {
                sender,
                metadata,
                supported_versions,
            } => {
                e.map(3 + u64::from(metadata.is_some()))?;
                e.str("type")?.str("join")?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("supportedProtocolVersions")?
                    .array(supported_versions.len() as u64)?;
                for v in supported_versions {
                    e.str(v)?;
                }
                if let Some(m) = metadata {
                    e.str("peerMetadata")?;
                    write_metadata(e, m)?;
                }
            }
            Self::Peer {
                sender,
                target,
                metadata,
                selected_version,
            } => {
                e.map(4 + u64::from(metadata.is_some()))?;
                e.str("type")?.str("peer")?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("targetId")?.str(target.as_str())?;
                e.str("selectedProtocolVersion")?.str(selected_version)?;
                if let Some(m) = metadata {
                    e.str("peerMetadata")?;
                    write_metadata(e, m)?;
                }
            }
            Self::Leave { sender } => {
                e.map(2)?;
                e.str("type")?.str("leave")?;
                e.str("senderId")?.str(sender.as_str())?;
            }
            Self::Error { message } => {
                e.map(2)?;
                e.str("type")?.str("error")?;
                e.str("message")?.str(message)?;
            }
            Self::Request(m) | Self::Sync(m) => {
                e.map(5)?;
                e.str("type")?.str(self.kind())?;
                e.str("documentId")?.str(&m.document_id.to_string())?;
                e.str("senderId")?.str(m.sender.as_str())?;
                e.str("targetId")?.str(m.target.as_str())?;
                e.str("data")?.bytes(&m.data)?;
            }
            Self::DocUnavailable {
                document_id,
                sender,
                target,
            } => {
                e.map(4)?;
                e.str("type")?.str("doc-unavailable")?;
                e.str("documentId")?.str(&document_id.to_string())?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("targetId")?.str(target.as_str())?;
            }
            Self::Ephemeral {
                document_id,
                sender,
                target,
                count,
                session_id,
                data,
            } => {
                e.map(7)?;
                e.str("type")?.str("ephemeral")?;
                e.str("documentId")?.str(&document_id.to_string())?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("targetId")?.str(target.as_str())?;
                e.str("count")?.u64(*count)?;
                e.str("sessionId")?.str(session_id)?;
                e.str("data")?.bytes(data)?;
            }
            Self::RemoteSubscriptionChange {
                sender,
                target,
                add,
                remove,
            } => {
                e.map(5)?;
                e.str("type")?.str("remote-subscription-change")?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("targetId")?.str(target.as_str())?;
                e.str("add")?.array(add.len() as u64)?;
                for s in add {
                    e.str(s.as_str())?;
                }
                e.str("remove")?.array(remove.len() as u64)?;
                for s in remove {
                    e.str(s.as_str())?;
                }
            }
            Self::RemoteHeadsChanged {
                document_id,
                sender,
                target,
                new_heads,
            } => {
                e.map(5)?;
                e.str("type")?.str("remote-heads-changed")?;
                e.str("documentId")?.str(&document_id.to_string())?;
                e.str("senderId")?.str(sender.as_str())?;
                e.str("targetId")?.str(target.as_str())?;
                e.str("newHeads")?.map(new_heads.len() as u64)?;
                for (storage, info) in new_heads {
                    e.str(storage.as_str())?.map(2)?;
                    e.str("heads")?.array(info.heads.len() as u64)?;
                    for h in &info.heads {
                        e.str(h)?;
                    }
                    e.str("timestamp")?;
                    if info.timestamp.fract() == 0.0
                        && info.timestamp >= 0.0
                        && info.timestamp < 2f64.powi(53)
                    {
                        e.u64(info.timestamp as u64)?;
                    } else {
                        e.f64(info.timestamp)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn write_metadata(
    e: &mut Encoder<Vec<u8>>,
    m: &PeerMetadata,
) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    e.map(1 + u64::from(m.storage_id.is_some()))?;
    if let Some(s) = &m.storage_id {
        e.str("storageId")?.str(s.as_str())?;
    }
    e.str("isEphemeral")?.bool(m.is_ephemeral)?;
    Ok(())
}
