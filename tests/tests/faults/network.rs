//! Network faults between phones and the server, through `common::proxy`: every connection
//! cut, a 2G link, bit flips, a black hole. Each runs on SQLite and on PostgreSQL.

use std::time::Duration;

use automerge::ROOT;
use fieldsync_client::DocStatus;
use fieldsync_client::automerge::transaction::Transactable;
use tokio::time::Instant;

use super::fleet::{Fleet, Phone, health, log_names_one_of, peers, server, server_on_postgres};
use crate::common::proxy::{Faults, Proxy};
use crate::common::{TestServer, WAIT};

#[tokio::test]
async fn phones_editing_while_every_connection_is_cut_lose_nothing() {
    cuts(&server().await).await;
}

#[tokio::test]
async fn phones_editing_while_every_connection_is_cut_lose_nothing_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        cuts(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn cuts(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(server, &proxy.sync_url(), (3, 3), WAIT).await;
    let cutter = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            proxy.cut_all();
        }
    };
    tokio::join!(fleet.edit(40, Duration::from_millis(50)), cutter);
    assert!(
        proxy.accepted() >= 3 * 5,
        "every phone reconnected after every cut: {} connections",
        proxy.accepted()
    );
    fleet.settle(server, WAIT).await;
    log_names_one_of("cuts", &["disconnected: connection lost"], &peers(&fleet));
}

#[tokio::test]
async fn five_phones_on_2g_have_twenty_documents_each_acknowledged_in_time() {
    slow_link(&server().await).await;
}

#[tokio::test]
async fn five_phones_on_2g_have_twenty_documents_each_acknowledged_in_time_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        slow_link(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn slow_link(server: &TestServer) {
    // 20 new visits each way at 50 kbit/s and a few 600 ms round trips: about 20 s here; the
    // bound leaves room for a loaded test machine.
    const BOUND: Duration = Duration::from_secs(60);
    let proxy = Proxy::start(server.addr).await;
    proxy.set(Faults::gprs());
    let started = Instant::now();
    let fleet = Fleet::start(server, &proxy.sync_url(), (5, 20), BOUND).await;
    let took = started.elapsed();
    eprintln!("2G: 5 phones × 20 documents acknowledged in {took:?}");
    fleet.edit(5, Duration::from_millis(200)).await;
    fleet.settle(server, BOUND).await;
    // A slow link is not a fault: nothing to log.
}

#[tokio::test]
async fn a_corrupted_stream_is_disconnected_and_nothing_corrupt_is_stored() {
    corruption(&server().await).await;
}

#[tokio::test]
async fn a_corrupted_stream_is_disconnected_and_nothing_corrupt_is_stored_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        corruption(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn corruption(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(server, &proxy.sync_url(), (2, 2), WAIT).await;
    proxy.set(Faults {
        corrupt_up_every: Some(97),
        ..Faults::default()
    });
    // Keep editing until the server has thrown out each phone's corrupted connection.
    let deadline = Instant::now() + WAIT;
    let mut round = 0;
    while fleet.phones.iter().any(|p| p.handle.is_connected()) {
        for phone in &fleet.phones {
            phone
                .edit(phone.own[0], format!("Kunjungan rusak ke-{round}"))
                .await;
        }
        round += 1;
        assert!(
            Instant::now() < deadline,
            "the server disconnects a corrupted stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.flipped() > 0);
    // A clean network again; connections begun while corrupt start afresh.
    proxy.heal();
    proxy.cut_all();
    fleet.settle(server, WAIT).await;
    log_names_one_of("corruption", &["WARN", "disconnected"], &peers(&fleet));
}

#[tokio::test]
async fn a_black_holed_phone_holds_up_nobody_and_catches_up_afterwards() {
    black_hole(&server().await).await;
}

#[tokio::test]
async fn a_black_holed_phone_holds_up_nobody_and_catches_up_afterwards_on_postgres() {
    if let Some((server, db)) = server_on_postgres().await {
        black_hole(&server).await;
        server.stop().await;
        db.drop_database().await;
    }
}

async fn black_hole(server: &TestServer) {
    let proxy = Proxy::start(server.addr).await;
    let mut fleet = Fleet::start(server, &proxy.sync_url(), (1, 2), WAIT).await;
    // Another phone, straight to the server, with the silent phone's documents open too.
    let mut other = Phone::through(server, server.plain_url()).await;
    other.create().await;
    for id in fleet.phones[0].own.clone() {
        other.replica.find(id).await;
        other
            .replica
            .wait_doc(id, WAIT, |d| !d.get_heads().is_empty())
            .await
            .unwrap();
    }
    fleet.phones.push(other);
    let (silent, other) = (&fleet.phones[0], &fleet.phones[1]);
    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    // The silent phone's edits go nowhere; the other phone's, on its own document and on a
    // shared one the server relays into the void, are acknowledged as quickly as ever.
    for round in 0..5 {
        silent
            .edit(silent.own[round % 2], format!("Tanpa sinyal {round}"))
            .await;
        let started = Instant::now();
        other.edit(other.own[0], format!("Catatan {round}")).await;
        other
            .replica
            .change(silent.own[0], |tx| {
                tx.put(ROOT, "notes", format!("Catatan {round}"))
            })
            .await
            .unwrap();
        other.note_made(silent.own[0]).await;
        for id in [other.own[0], silent.own[0]] {
            other.replica.wait_acknowledged(id, WAIT).await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other phone is not held up: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(health(server).await, 200);
    assert_eq!(
        silent.replica.status(silent.own[0]).await,
        Some(DocStatus::Pending),
        "nothing got through the black hole"
    );
    // The network comes back (the old connection's stream lost bytes, so it is cut).
    proxy.heal();
    proxy.cut_all();
    fleet.settle(server, WAIT).await;
}

/// The phone's side of the same: a link that swallows everything without a reset looks
/// connected until the phone notices that the server has gone quiet (its pings unanswered),
/// gives the connection up and tries again, and its edit made meanwhile gets through once
/// the link works, with nobody cutting anything.
#[tokio::test]
async fn a_phone_notices_a_black_hole_and_reconnects_by_itself() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    // The first retry waits at least 0.5 s: by then the link is healed (a handshake into
    // the black hole would only time out after 20 s).
    let mut phone = Phone::through_with(&server, proxy.sync_url(), |mut options| {
        options.min_backoff = Duration::from_secs(1);
        options.max_backoff = Duration::from_secs(2);
        options.with_keepalive(Duration::from_millis(200), Duration::from_millis(1500))
    })
    .await;
    assert!(phone.handle.wait_connected(WAIT).await);
    phone.create().await;
    let id = phone.own[0];
    phone.replica.wait_acknowledged(id, WAIT).await.unwrap();
    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    phone.edit(id, "Tanpa sinyal".into()).await;
    assert!(
        phone
            .handle
            .wait_disconnected(Duration::from_secs(10))
            .await,
        "a phone whose server went silent gives the connection up"
    );
    let why = phone.handle.last_error().unwrap_or_default();
    assert!(
        why.contains("no word from the server") || why.contains("sending stalled"),
        "{why}"
    );
    proxy.heal();
    phone.replica.wait_acknowledged(id, WAIT).await.unwrap();
    assert_eq!(
        phone.replica.status(id).await,
        Some(DocStatus::Acknowledged)
    );
}

/// The server pings every 20 s and gives up on a peer silent for more than 60 s
/// (`server/src/connection.rs`, not configurable): this test waits for that, about 80 s.
#[tokio::test]
async fn the_server_drops_a_silent_peer_after_its_silence_limit() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (1, 1), WAIT).await;
    let silent = &fleet.phones[0];
    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    silent.edit(silent.own[0], "Tanpa sinyal".into()).await;
    let deadline = Instant::now() + Duration::from_secs(100);
    while proxy.closed_by_server() == 0 {
        assert!(
            Instant::now() < deadline,
            "the server drops a peer silent for longer than its limit"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    log_names_one_of(
        "black hole",
        &["disconnected: no frame for 60 s"],
        &peers(&fleet),
    );
    proxy.heal();
    proxy.cut_all();
    fleet.settle(&server, WAIT).await;
}
