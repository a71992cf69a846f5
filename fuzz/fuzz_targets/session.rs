//! The server's `Session` fed a sequence of arbitrary frames (the input split at
//! `fieldsync_fuzz::FRAME_SEPARATOR`). It never panics, and it keeps its promises:
//!
//! - before the handshake only `join` is accepted, and a handshake happens once;
//! - after it, every accepted frame comes from the peer that joined and is addressed to us;
//! - after an error nothing more is accepted.
#![no_main]

use fieldsync_fuzz::{SESSION_SERVER_PEER, frames};
use fieldsync_protocol::{Inbound, Message, PeerId, PeerMetadata, Session, SessionError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ours = PeerId::parse(SESSION_SERVER_PEER).expect("a valid peer id");
    let mut session = Session::new(ours.clone(), PeerMetadata::default());
    let mut joined: Option<PeerId> = None;
    let mut failed = false;
    for frame in frames(data) {
        let result = session.receive(frame);
        if failed {
            assert_eq!(result, Err(SessionError::Closed), "after an error");
            continue;
        }
        match result {
            Err(e) => {
                failed = true;
                // The reply, when there is one, must be a frame we can send.
                if let Some(reply) = e.reply() {
                    assert_eq!(Message::decode(&reply.encode()).as_ref(), Ok(&reply));
                }
                // The peer stays known (the server logs it as it disconnects).
                assert_eq!(session.peer(), joined.as_ref(), "an error changed the peer");
            }
            Ok(Inbound::Joined { peer, reply, .. }) => {
                assert!(joined.is_none(), "a second handshake was accepted");
                assert_eq!(reply.target(), Some(&peer));
                assert_eq!(reply.sender(), Some(&ours));
                assert_eq!(Message::decode(&reply.encode()).as_ref(), Ok(&reply));
                assert_eq!(session.peer(), Some(&peer));
                assert!(session.version().is_some());
                joined = Some(peer);
            }
            Ok(Inbound::Message(message)) => {
                let peer = joined
                    .as_ref()
                    .expect("a message accepted before the handshake");
                assert!(
                    !matches!(
                        message,
                        Message::Join { .. } | Message::Peer { .. } | Message::Error { .. }
                    ),
                    "{} passed the session",
                    message.kind()
                );
                if let Some(sender) = message.sender() {
                    assert_eq!(sender, peer, "a message from another peer was accepted");
                }
                if let Some(target) = message.target() {
                    assert_eq!(target, &ours, "a message for another peer was accepted");
                }
            }
            Ok(Inbound::Leave) => {
                assert!(joined.is_some(), "leave accepted before the handshake");
            }
            // Another peer's ephemeral message echoed back: dropped, nothing acted on.
            Ok(Inbound::Echo) => {
                assert!(joined.is_some(), "an echo accepted before the handshake");
            }
        }
    }
});
