//! The server's side of one connection: handshake, then a check of every frame.
//!
//! A connection starts with the peer's `join`. The session negotiates the version, answers
//! with `peer` (or with an error naming the versions we speak), and from then on checks that
//! each frame's `senderId` is the peer that joined and its `targetId` is us. Anything else is a
//! [`SessionError`]: the caller sends [`SessionError::reply`] where the socket allows and
//! closes the connection. A session that returned an error accepts nothing more
//! ([`SessionError::Closed`]), so a caller that reads on cannot act on a frame after a violation.

use crate::ids::PeerId;
use crate::message::{DecodeError, Message, PeerMetadata};
use crate::version::{NoCommonVersion, ProtocolVersion, negotiate};

/// What a valid inbound frame means for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The handshake completed: send `reply` to the peer.
    Joined {
        peer: PeerId,
        metadata: PeerMetadata,
        version: ProtocolVersion,
        reply: Message,
    },
    /// A message for the sync engine: `request`, `sync`, `doc-unavailable`, `ephemeral`,
    /// `remote-subscription-change` or `remote-heads-changed`.
    Message(Message),
    /// The peer said it is leaving.
    Leave,
    /// An `ephemeral` message another peer sent, echoed back: automerge-repo clients pass
    /// every ephemeral message they receive on to their other peers, keeping its original
    /// sender. It was already delivered; it is dropped, not treated as a forgery.
    Echo,
}

/// Why a connection must end. The text is safe to send to the peer and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Version(#[from] NoCommonVersion),
    #[error("expected a join message first, got {0:?}")]
    BeforeHandshake(&'static str),
    #[error("unexpected {0:?} message after the handshake")]
    Unexpected(&'static str),
    #[error("senderId {got:?} does not match the peer that joined ({expected:?})")]
    WrongSender { expected: String, got: String },
    #[error("targetId {got:?} is not this server ({expected:?})")]
    WrongTarget { expected: String, got: String },
    #[error("peer reported an error: {0}")]
    PeerError(String),
    #[error("the session already ended with an error")]
    Closed,
}

impl SessionError {
    /// The `error` message to send before closing, if one should be sent.
    pub fn reply(&self) -> Option<Message> {
        match self {
            // The peer told us about its own failure; answering would only echo it. A closed
            // session has answered already.
            Self::PeerError(_) | Self::Closed => None,
            other => Some(Message::Error {
                message: other.to_string(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    AwaitingJoin,
    Open {
        peer: PeerId,
        version: ProtocolVersion,
    },
}

/// One connection's protocol state, server side.
#[derive(Debug, Clone)]
pub struct Session {
    ours: PeerId,
    our_metadata: PeerMetadata,
    state: State,
    /// An error ended the session; the peer that joined (if any) is still known, for the log.
    closed: bool,
}

impl Session {
    pub fn new(ours: PeerId, our_metadata: PeerMetadata) -> Self {
        Self {
            ours,
            our_metadata,
            state: State::AwaitingJoin,
            closed: false,
        }
    }

    /// The peer that joined, once the handshake completed.
    pub fn peer(&self) -> Option<&PeerId> {
        match &self.state {
            State::Open { peer, .. } => Some(peer),
            State::AwaitingJoin => None,
        }
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        match &self.state {
            State::Open { version, .. } => Some(*version),
            State::AwaitingJoin => None,
        }
    }

    /// Reads one binary frame. After an error, every frame is refused with
    /// [`SessionError::Closed`].
    pub fn receive(&mut self, frame: &[u8]) -> Result<Inbound, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let result = self.read(frame);
        self.closed = result.is_err();
        result
    }

    fn read(&mut self, frame: &[u8]) -> Result<Inbound, SessionError> {
        let message = match &self.state {
            // The handshake itself is the same in every version.
            State::AwaitingJoin => Message::decode(frame)?,
            State::Open { version, .. } => match version {
                ProtocolVersion::V1 => Message::decode(frame)?,
            },
        };
        match &self.state {
            State::AwaitingJoin => self.join(message),
            State::Open { peer, .. } => self.check(peer, message),
        }
    }

    fn join(&mut self, message: Message) -> Result<Inbound, SessionError> {
        let Message::Join {
            sender,
            metadata,
            supported_versions,
        } = message
        else {
            return Err(SessionError::BeforeHandshake(message.kind()));
        };
        let version = negotiate(&supported_versions)?;
        self.state = State::Open {
            peer: sender.clone(),
            version,
        };
        Ok(Inbound::Joined {
            reply: Message::Peer {
                sender: self.ours.clone(),
                target: sender.clone(),
                metadata: Some(self.our_metadata.clone()),
                selected_version: version.as_str().to_owned(),
            },
            peer: sender,
            metadata: metadata.unwrap_or_default(),
            version,
        })
    }

    fn check(&self, peer: &PeerId, message: Message) -> Result<Inbound, SessionError> {
        match &message {
            Message::Join { .. } | Message::Peer { .. } => {
                return Err(SessionError::Unexpected(message.kind()));
            }
            Message::Error { message } => {
                return Err(SessionError::PeerError(message.chars().take(200).collect()));
            }
            _ => {}
        }
        if let Message::Ephemeral { sender, .. } = &message
            && sender != peer
        {
            return Ok(Inbound::Echo);
        }
        if let Some(sender) = message.sender()
            && sender != peer
        {
            return Err(SessionError::WrongSender {
                expected: peer.to_string(),
                got: sender.to_string(),
            });
        }
        if let Some(target) = message.target()
            && target != &self.ours
        {
            return Err(SessionError::WrongTarget {
                expected: self.ours.to_string(),
                got: target.to_string(),
            });
        }
        Ok(match message {
            Message::Leave { .. } => Inbound::Leave,
            other => Inbound::Message(other),
        })
    }
}
