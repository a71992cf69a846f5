//! A peer over a raw WebSocket, without the phone-side rules of the Rust client: for tests
//! that show the server itself refuses something.

use automerge::AutoCommit;
use automerge::sync::SyncDoc;
use fieldsync_protocol::{DocMessage, DocumentId, Message, Notice, PeerId, PeerMetadata};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::WAIT;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct RawPeer {
    ws: Socket,
    me: PeerId,
    server: PeerId,
}

impl RawPeer {
    /// Connects to a sync URL (with its token) and completes the handshake as `name`.
    pub async fn join(url: &str, name: &str) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let me = PeerId::parse(name).unwrap();
        let join = Message::Join {
            sender: me.clone(),
            metadata: Some(PeerMetadata::default()),
            supported_versions: vec!["1".into()],
        };
        ws.send(Ws::Binary(join.encode().into())).await.unwrap();
        let mut peer = Self {
            ws,
            me,
            server: PeerId::parse("unknown").unwrap(),
        };
        let Message::Peer { sender, .. } = peer.next().await else {
            panic!("expected peer");
        };
        peer.server = sender;
        peer
    }

    pub fn me(&self) -> &PeerId {
        &self.me
    }

    /// The server's peer id, as its handshake said.
    pub fn server(&self) -> &PeerId {
        &self.server
    }

    pub async fn send(&mut self, message: &Message) {
        self.ws
            .send(Ws::Binary(message.encode().into()))
            .await
            .unwrap();
    }

    /// An `ephemeral` message for document `id` with `data`, as this peer.
    pub async fn send_ephemeral(&mut self, id: DocumentId, count: u64, data: Vec<u8>) {
        let message = Message::Ephemeral {
            document_id: id,
            sender: self.me.clone(),
            target: self.server.clone(),
            count,
            session_id: self.me.to_string(),
            data,
        };
        self.send(&message).await;
    }

    /// Asks for document `id` and receives it; the copy and its sync state, to go on syncing.
    pub async fn fetch(&mut self, id: DocumentId) -> (AutoCommit, automerge::sync::State) {
        let mut doc = AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let first = doc.sync().generate_sync_message(&mut state).unwrap();
        let request = Message::Request(DocMessage {
            document_id: id,
            sender: self.me.clone(),
            target: self.server.clone(),
            data: first.encode(),
        });
        self.send(&request).await;
        while doc.get_heads().is_empty() {
            match self.next().await {
                Message::Sync(m) if m.document_id == id => {
                    let m = automerge::sync::Message::decode(&m.data).unwrap();
                    doc.sync().receive_sync_message(&mut state, m).unwrap();
                }
                other => panic!("expected the document, got {other:?}"),
            }
        }
        (doc, state)
    }

    /// Sends what `doc` has to say about document `id` (after a local change: the change).
    pub async fn send_sync(
        &mut self,
        id: DocumentId,
        doc: &mut AutoCommit,
        state: &mut automerge::sync::State,
    ) {
        let m = doc
            .sync()
            .generate_sync_message(state)
            .expect("something to send");
        let frame = Message::Sync(DocMessage {
            document_id: id,
            sender: self.me.clone(),
            target: self.server.clone(),
            data: m.encode(),
        });
        self.send(&frame).await;
    }

    /// The next protocol message from the server.
    pub async fn next(&mut self) -> Message {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .unwrap();
            if let Ws::Binary(b) = frame {
                return Message::decode(&b).unwrap();
            }
        }
    }

    /// Syncs `doc` as document `id` until the server sends a notice about it; returns it.
    pub async fn sync_until_notice(
        &mut self,
        id: DocumentId,
        doc: &mut AutoCommit,
    ) -> Option<Notice> {
        let mut state = automerge::sync::State::new();
        loop {
            if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                let frame = Message::Sync(DocMessage {
                    document_id: id,
                    sender: self.me.clone(),
                    target: self.server.clone(),
                    data: m.encode(),
                });
                self.ws
                    .send(Ws::Binary(frame.encode().into()))
                    .await
                    .unwrap();
            }
            match self.next().await {
                Message::Sync(m) => {
                    let m = automerge::sync::Message::decode(&m.data).unwrap();
                    doc.sync().receive_sync_message(&mut state, m).unwrap();
                }
                Message::Ephemeral { data, .. } => return Notice::decode(&data).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends a `request` for `id`, as a peer that does not have it.
    pub async fn request(&mut self, id: DocumentId) {
        let mut empty = AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let data = empty
            .sync()
            .generate_sync_message(&mut state)
            .expect("a first message")
            .encode();
        let frame = Message::Request(DocMessage {
            document_id: id,
            sender: self.me.clone(),
            target: self.server.clone(),
            data,
        });
        self.ws
            .send(Ws::Binary(frame.encode().into()))
            .await
            .unwrap();
    }
}
