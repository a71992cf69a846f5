//! Writing the demo's records the way the field does: each worker's phone (an in-memory
//! `fieldsync_client::Replica` with an enrolled device) connects to this server over WebSocket
//! and creates its documents, which the server judges, stores and acknowledges like any
//! phone's; then the supervisors' decisions go in through the hub, as the web writes them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use fieldsync_client::{ConnectOptions, Replica};
use fieldsync_core::schema::{Author, Event, FieldDocument, Role, add_event};
use fieldsync_protocol::DocumentId;

use super::cimahi::{self, PersonSpec};
use super::records::{WorkerRecords, worker_records};
use crate::admin;
use crate::hub::{Editor, Hub};
use crate::storage::{Storage, now_millis};

const HOUR: i64 = 3_600_000;

/// How long a phone may take to have every document acknowledged.
const ACK_WAIT: Duration = Duration::from_secs(120);

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub documents: usize,
    pub decisions: usize,
}

/// Writes every worker's records through their phone, then the decisions.
pub async fn seed(addr: SocketAddr, hub: Hub, storage: Arc<dyn Storage>) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let now = now_millis();
    let url = sync_url(addr);
    let people = cimahi::people();
    let phones = people
        .iter()
        .filter(|p| p.role == Role::Peksos)
        .zip(cimahi::kelurahan())
        .enumerate()
        .map(|(number, (worker, place))| {
            let records = worker_records(number, worker, &place, now);
            write_as_phone(storage.clone(), url.clone(), worker.clone(), records)
        });
    let mut seeded = Seeded::default();
    let mut pending = Vec::new();
    for result in futures_util::future::join_all(phones).await {
        let (documents, decisions) = result?;
        seeded.documents += documents;
        pending.extend(decisions);
    }
    let decision_count = pending.len();
    tracing::info!(
        documents = seeded.documents,
        secs = started.elapsed().as_secs_f32(),
        "demo: the field workers' phones wrote their records"
    );
    // One task per referral, its decisions in order: the writer commits them together.
    let mut by_referral: Vec<(DocumentId, Vec<(usize, Event)>)> = Vec::new();
    for (doc, supervisor, event) in pending {
        match by_referral.last_mut() {
            Some((last, events)) if *last == doc => events.push((supervisor, event)),
            _ => by_referral.push((doc, vec![(supervisor, event)])),
        }
    }
    let supervisors: Vec<&PersonSpec> = people
        .iter()
        .filter(|p| p.role == Role::Supervisor)
        .collect();
    let decide = by_referral.into_iter().map(|(doc, events)| {
        let hub = hub.clone();
        let supervisors = &supervisors;
        async move {
            for (supervisor, event) in events {
                let person = supervisors[supervisor];
                let editor = Editor::web(Author::user(
                    person.id.clone(),
                    person.role,
                    person.areas.clone(),
                ));
                hub.edit(
                    doc,
                    &editor,
                    Box::new(move |tx| add_event(tx, &event).map(|_| ())),
                )
                .await
                .with_context(|| format!("{} deciding on {doc}", person.id))?;
            }
            anyhow::Ok(())
        }
    });
    for result in futures_util::future::join_all(decide).await {
        result?;
    }
    seeded.decisions = decision_count;
    // The phones above synced six weeks at once; a real caseload arrived as it was written,
    // but for one phone that was out of signal for days (the workbench lists its visits).
    let late_worker = &people
        .iter()
        .find(|p| p.role == Role::Peksos)
        .expect("the demo has field workers")
        .id;
    storage
        .settle_demo_receipts(now_millis(), 2 * HOUR, late_worker)
        .await?;
    Ok(seeded)
}

/// The server's own address for the phones: loopback when it listens on every address.
fn sync_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("ws://{addr}/sync")
}

type Decision = (DocumentId, usize, Event);

/// One worker's phone: enrolls a device, connects, creates the records and waits until the
/// server has stored every one. Returns how many, and the decisions to add to its referrals.
async fn write_as_phone(
    storage: Arc<dyn Storage>,
    url: String,
    worker: PersonSpec,
    records: WorkerRecords,
) -> anyhow::Result<(usize, Vec<Decision>)> {
    let label = format!("HP demo {}", worker.name);
    let (_, token) = admin::enroll_device(storage.as_ref(), &worker.id, Some(&label), None).await?;
    let replica = Replica::in_memory().await;
    replica
        .set_author(Author::user(
            worker.id.clone(),
            worker.role,
            worker.areas.clone(),
        ))
        .await;
    let handle = replica.connect(ConnectOptions::new(url).with_token(token));

    let mut created = Vec::new();
    let mut visit_ids = Vec::new();
    for visit in records.visits {
        let id = create(&replica, FieldDocument::Visit(visit)).await?;
        visit_ids.push(id);
        created.push(id);
    }
    let mut decisions = Vec::new();
    for planned in records.referrals {
        let mut referral = planned.referral;
        referral.visit = visit_ids.get(planned.visit).copied();
        let id = create(&replica, FieldDocument::Referral(referral)).await?;
        created.push(id);
        decisions.extend(planned.decisions.into_iter().map(|(s, e)| (id, s, e)));
    }
    for note in records.outreach {
        created.push(create(&replica, FieldDocument::Outreach(note)).await?);
    }
    for id in &created {
        replica
            .wait_acknowledged(*id, ACK_WAIT)
            .await
            .with_context(|| format!("{}'s phone: {id} not acknowledged", worker.id))?;
    }
    handle.stop().await;
    Ok((created.len(), decisions))
}

async fn create(replica: &Replica, doc: FieldDocument) -> anyhow::Result<DocumentId> {
    replica
        .create(|tx| doc.write(tx))
        .await
        .map_err(|e| anyhow::anyhow!("a demo record was refused: {e}"))
}
