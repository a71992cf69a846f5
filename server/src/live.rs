//! The live connections by device and user, and the watcher that cuts them off when an
//! administrator revokes a device or disables a user (through the CLI, on any process sharing
//! the database).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldsync_protocol::DocumentId;
use tokio::sync::{mpsc, watch};

use crate::link::Outbound;

use crate::storage::Storage;

/// What a revoked device is told before its connection closes. The Rust client deletes its
/// local data when it reads this prefix (docs/protocol.md).
pub const WIPE: &str =
    "fieldsync-wipe: this device was revoked; delete every local copy of fieldsync data";
/// What a device whose token was replaced is told.
pub const REAUTH: &str =
    "fieldsync-reauth: this device's token was replaced; connect with the new token";

/// What the devices of a user whose areas changed are told: they reconnect with the same
/// token and are then told to drop what left their areas.
pub const REASSIGNED: &str =
    "fieldsync-reconnect: this user's areas changed; connect again to sync the new caseload";

/// How often the database is asked for new revocations: within the 2 s promise with room
/// for a slow query.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Live {
    device: String,
    user: String,
    close: watch::Sender<Option<String>>,
    /// Where to offer documents, once the peer has joined.
    out: Option<mpsc::Sender<Outbound>>,
}

/// Every authenticated connection, by connection number.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    live: Mutex<HashMap<u64, Live>>,
}

impl Registry {
    /// Registers a connection; the receiver yields the reason when it must close.
    pub fn register(&self, conn: u64, device: &str, user: &str) -> watch::Receiver<Option<String>> {
        let (close, closed) = watch::channel(None);
        let live = Live {
            device: device.to_owned(),
            user: user.to_owned(),
            close,
            out: None,
        };
        self.live
            .lock()
            .expect("registry lock poisoned")
            .insert(conn, live);
        closed
    }

    /// The connection's peer has joined: documents can be offered to it.
    pub fn joined(&self, conn: u64, out: mpsc::Sender<Outbound>) {
        if let Some(live) = self
            .live
            .lock()
            .expect("registry lock poisoned")
            .get_mut(&conn)
        {
            live.out = Some(out);
        }
    }

    /// The users with a joined connection here.
    pub fn joined_users(&self) -> HashSet<String> {
        let live = self.live.lock().expect("registry lock poisoned");
        live.values()
            .filter(|l| l.out.is_some())
            .map(|l| l.user.clone())
            .collect()
    }

    /// Offers a document to every joined connection of `user`; returns how many.
    pub fn offer(&self, user: &str, doc: DocumentId) -> usize {
        let live = self.live.lock().expect("registry lock poisoned");
        let mut n = 0;
        for out in live
            .values()
            .filter(|l| l.user == user)
            .filter_map(|l| l.out.as_ref())
        {
            // A peer that is behind finds the document through its index instead.
            if crate::link::room_for_offer(out) && out.try_send(Outbound::Push(doc)).is_ok() {
                n += 1;
            }
        }
        n
    }

    pub fn unregister(&self, conn: u64) {
        self.live
            .lock()
            .expect("registry lock poisoned")
            .remove(&conn);
    }

    /// Closes every connection matching `matches`, telling it `reason`; returns how many.
    fn close(&self, reason: &str, matches: impl Fn(&Live) -> bool) -> usize {
        let live = self.live.lock().expect("registry lock poisoned");
        let mut n = 0;
        for l in live.values().filter(|l| matches(l)) {
            l.close.send_replace(Some(reason.to_owned()));
            n += 1;
        }
        n
    }
}

/// Watches the database's security events until `stop` fires. `areas_changed` hears of each
/// user whose areas changed (the caseloads then reconcile that user's index).
pub(crate) async fn watch_security_events(
    storage: Arc<dyn Storage>,
    registry: Arc<Registry>,
    areas_changed: impl Fn(&str) + Send + 'static,
    mut stop: watch::Receiver<bool>,
) {
    // Events before this server started were acted on at authentication already.
    let mut watermark = match storage.security_events(0).await {
        Ok(events) => events.last().map_or(0, |e| e.seq),
        Err(e) => {
            tracing::error!("cannot read security events: {e}");
            0
        }
    };
    // PostgreSQL may commit a lower sequence number after a higher one: look back a little,
    // and remember what was already handled.
    let mut handled: HashSet<i64> = HashSet::new();
    let mut ticker = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let events = match storage.security_events((watermark - 100).max(0)).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!("cannot read security events: {e}");
                continue;
            }
        };
        for event in events {
            if event.seq <= watermark - 100 || !handled.insert(event.seq) {
                continue;
            }
            watermark = watermark.max(event.seq);
            let subject = event.subject.as_str();
            let closed = match event.kind.as_str() {
                "device-revoked" => registry.close(WIPE, |l| l.device == subject),
                "user-disabled" => registry.close(WIPE, |l| l.user == subject),
                "token-rotated" => registry.close(REAUTH, |l| l.device == subject),
                "user-areas-changed" => {
                    areas_changed(subject);
                    registry.close(REASSIGNED, |l| l.user == subject)
                }
                other => {
                    tracing::warn!("unknown security event {other:?}");
                    0
                }
            };
            tracing::info!(kind = %event.kind, subject, closed, "security event");
        }
        handled.retain(|seq| *seq > watermark - 200);
    }
}
