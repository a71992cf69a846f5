//! `GET /api/activity/stream`: server-sent events naming each document that became durable
//! and that the viewer may read, so an open feed can refresh itself: changes this process
//! committed ([`crate::hub::Hub::changes`]) and those other processes sharing the database
//! did ([`crate::hub::OtherProcesses`]).
//!
//! Events carry ids, types and areas only, never content: the page fetches what changed
//! through the same filtered query as always. A stream that falls behind the hub's broadcast
//! gets one `reload` event, and so does one when changes of other processes were missed. Streams end when the server shuts down, after [`MAX_STREAM`], and
//! within [`RECHECK`] (plus a query) once the viewer's session or API token no longer holds
//! for the same person with the same areas: signed out, revoked, expired, user disabled or
//! given other areas (`Viewer::still_holds`, a read of one row every [`RECHECK`]). The
//! browser's EventSource then reconnects and is refused, or gets a stream with the new areas.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use fieldsync_core::schema::{Author, DocKind, RegionCode};
use futures_util::{Stream, StreamExt, stream};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::super::error::ApiError;
use super::super::session::{ApiUser, Viewer, require_role};
use super::{FEED_ROLES, readable_kinds};
use crate::AppState;
use crate::hub::{Changed, Heard};

/// Longest life of one stream; the browser reconnects on its own.
const MAX_STREAM: Duration = Duration::from_secs(10 * 60);
/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon a browser reconnects after the stream ends.
const RETRY: Duration = Duration::from_secs(3);
/// How often a stream checks that its viewer may still hear it: the sync sockets are cut
/// within 2 s of a revocation (`crate::live`), and so are streams.
const RECHECK: Duration = Duration::from_secs(1);

/// What one stream listens to, and for whom.
struct Listener {
    changes: broadcast::Receiver<Changed>,
    elsewhere: broadcast::Receiver<Heard>,
    shutdown: watch::Receiver<bool>,
    author: Author,
    kinds: &'static [DocKind],
    ends_at: Instant,
    /// Who is listening, re-checked at `next_check`; `None` in unit tests.
    viewer: Option<(Viewer, Arc<AppState>)>,
    next_check: Instant,
    /// Counts the stream in the metrics while it lives.
    _open: crate::metrics::Open,
}

impl Listener {
    /// What the viewer may know of a change: its type and area now if they may read it, else
    /// as they were before it (a document moved out of their areas leaves their feed, and
    /// they learn no more than that); `None` if neither, or not a field document.
    fn visible(&self, c: &Changed) -> Option<(DocKind, RegionCode)> {
        let readable = |kind: &DocKind, area: &RegionCode| {
            self.kinds.contains(kind) && self.author.in_scope(area)
        };
        c.kind
            .zip(c.area.clone())
            .filter(|(k, a)| readable(k, a))
            .or_else(|| c.before.clone().filter(|(k, a)| readable(k, a)))
    }

    /// Whether the viewer may still hear the stream; a failed check counts as no (the
    /// browser reconnects and is asked again).
    async fn still_holds(&self) -> bool {
        let Some((viewer, state)) = &self.viewer else {
            return true;
        };
        match viewer.still_holds(state.storage.as_ref()).await {
            Ok(holds) => holds,
            Err(e) => {
                tracing::warn!("cannot re-check a live stream's viewer: {e}");
                false
            }
        }
    }

    /// The next event for this viewer; `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        if *self.shutdown.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                _ = self.shutdown.changed() => return None,
                () = tokio::time::sleep_until(self.ends_at) => return None,
                () = tokio::time::sleep_until(self.next_check), if self.viewer.is_some() => {
                    if !self.still_holds().await {
                        return None;
                    }
                    self.next_check = Instant::now() + RECHECK;
                }
                received = self.changes.recv() => match received {
                    Ok(c) => {
                        if let Some(event) = self.event(&c) {
                            return Some(event);
                        }
                    }
                    // Some changes were missed: the page reloads what it shows.
                    Err(RecvError::Lagged(_)) => return Some(reload()),
                    Err(RecvError::Closed) => return None,
                },
                received = self.elsewhere.recv() => match received {
                    Ok(Heard::Changed(c)) => {
                        if let Some(event) = self.event(&c) {
                            return Some(event);
                        }
                    }
                    Ok(Heard::Missed) | Err(RecvError::Lagged(_)) => return Some(reload()),
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The `change` event for `c`, if the viewer may know of it.
    fn event(&self, c: &Changed) -> Option<Event> {
        let (kind, area) = self.visible(c)?;
        let data = json!({
            "document": c.doc.to_string(),
            "kind": kind.as_str(),
            "area": area.as_str(),
        });
        Some(Event::default().event("change").data(data.to_string()))
    }
}

fn reload() -> Event {
    Event::default().event("reload").data("{}")
}

/// `GET /api/activity/stream`
pub async fn stream(
    State(state): State<Arc<AppState>>,
    ApiUser(viewer): ApiUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require_role(&viewer, FEED_ROLES)?;
    // Subscribed before the answer's headers leave: whatever becomes durable after the
    // client sees the stream open is delivered.
    let listener = Listener {
        changes: state.hub.changes(),
        elsewhere: state.others.subscribe(),
        shutdown: state.shutdown.clone(),
        author: viewer.author(),
        kinds: readable_kinds(viewer.user.role),
        ends_at: Instant::now() + MAX_STREAM,
        // The viewer was just checked.
        next_check: Instant::now() + RECHECK,
        viewer: Some((viewer, state.clone())),
        _open: crate::metrics::sse_listener(),
    };
    let hello = Event::default().retry(RETRY).comment("fieldsync live");
    let events = stream::unfold(
        listener,
        |mut l| async move { l.next().await.map(|e| (e, l)) },
    );
    let all = stream::once(async move { hello })
        .chain(events)
        .map(Ok::<_, Infallible>);
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[cfg(test)]
mod tests {
    use fieldsync_core::schema::Role;
    use fieldsync_protocol::DocumentId;

    use super::*;

    fn listener(role: Role, area: &str) -> Listener {
        Listener {
            changes: broadcast::channel(1).1,
            elsewhere: broadcast::channel(1).1,
            shutdown: watch::channel(false).1,
            author: Author::user("x", role, vec![RegionCode::parse_prefix(area).unwrap()]),
            kinds: readable_kinds(role),
            ends_at: Instant::now(),
            viewer: None,
            next_check: Instant::now(),
            _open: crate::metrics::sse_listener(),
        }
    }

    fn change(kind: Option<DocKind>, area: &str) -> Changed {
        Changed {
            doc: DocumentId::from_bytes([1; 16]),
            kind,
            area: Some(RegionCode::parse(area).unwrap()),
            before: None,
        }
    }

    fn sees(l: &Listener, c: &Changed) -> bool {
        l.visible(c).is_some()
    }

    #[test]
    fn streams_follow_the_read_rule() {
        let kecamatan = listener(Role::Coordinator, "32.77.01");
        assert!(sees(
            &kecamatan,
            &change(Some(DocKind::Outreach), "32.77.01.1001")
        ));
        assert!(!sees(
            &kecamatan,
            &change(Some(DocKind::Visit), "32.77.02.1001")
        ));
        assert!(!sees(&kecamatan, &change(None, "32.77.01.1001")));
        let supervisor = listener(Role::Supervisor, "32.77");
        assert!(sees(
            &supervisor,
            &change(Some(DocKind::Referral), "32.77.02.1001")
        ));
        assert!(!sees(
            &supervisor,
            &change(Some(DocKind::Outreach), "32.77.02.1001")
        ));
        let admin = listener(Role::Admin, "32");
        assert!(!sees(
            &admin,
            &change(Some(DocKind::Visit), "32.77.01.1001")
        ));
    }

    #[test]
    fn a_document_moved_out_of_the_area_is_announced_as_it_was() {
        let kecamatan = listener(Role::Coordinator, "32.77.01");
        let moved = Changed {
            before: Some((DocKind::Visit, RegionCode::parse("32.77.01.1001").unwrap())),
            ..change(Some(DocKind::Visit), "32.77.02.1001")
        };
        let (_, area) = kecamatan.visible(&moved).expect("the feed must drop it");
        assert_eq!(area.as_str(), "32.77.01.1001", "the new area is not told");
    }
}
