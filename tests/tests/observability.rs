//! What an operator watches: the Prometheus metrics at `/metrics` (and on `--metrics-listen`),
//! and the log, where every request and sync connection carries its id and no line names a
//! person or holds a secret, even at debug level.
//!
//! One binary, because both the metrics recorder and the log subscriber belong to the
//! process: every test here shares them.

mod common;
#[path = "web/support.rs"]
mod support;

#[path = "observability/logs.rs"]
mod logs;
#[path = "observability/metrics.rs"]
mod metrics;

use automerge::ROOT;
use automerge::ReadDoc;
use fieldsync_client::{DocStatus, Replica};
use fieldsync_core::schema::{Author, Event, EventKind, FieldDocument, Role, add_event, examples};
use fieldsync_protocol::DocumentId;

use common::{TestServer, WAIT};

/// A field worker's phone whose app does not check its own edits approves the referral
/// `id`: the server refuses it (a `rules` refusal), and the phone hears why.
async fn refused_approval(server: &TestServer, id: DocumentId) {
    let (careless, _handle) = server.phone().await;
    careless
        .set_author(Author::anonymous(Role::Supervisor))
        .await;
    careless.find(id).await;
    careless
        .wait_doc(id, WAIT, |d| d.get(ROOT, "events").unwrap().is_some())
        .await
        .unwrap();
    careless
        .change(id, |tx| {
            let event = Event {
                kind: EventKind::Approved,
                at: "2026-11-22T10:00:00Z".into(),
                by: "supervisor-budi".into(),
                note: None,
                id: None,
            };
            add_event(tx, &event).map(|_| ())
        })
        .await
        .unwrap();
    careless
        .wait_status(id, WAIT, |s| s == Some(DocStatus::Refused))
        .await
        .unwrap();
}

/// Writes `doc` from `phone` and waits until the server acknowledged it.
async fn stored(phone: &Replica, doc: FieldDocument) -> DocumentId {
    let id = phone.create(|tx| doc.write(tx)).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    id
}

/// The sample referral of docs/schema.md in the default area.
fn referral() -> FieldDocument {
    FieldDocument::Referral(examples::referral(&common::area(), common::DEFAULT_USER))
}
