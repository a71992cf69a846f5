//! Storage faults under load: SQLite's disk full and back, PostgreSQL stopped and started.

use std::time::Duration;

use tokio::time::Instant;

use super::fleet::{Fleet, doc_names, health_within, log_names_one_of, server, wait_health};
use super::log;
use crate::common::pgcluster::PgCluster;
use crate::common::proxy::Proxy;
use crate::common::{self, TestServer, WAIT};

#[tokio::test]
async fn sqlite_disk_full_under_load_then_every_phone_is_acknowledged_without_reconnecting() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (4, 3), WAIT).await;
    let connections = proxy.accepted();

    let admin = sqlx::SqlitePool::connect(&server.config.database_url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER full BEFORE INSERT ON chunks BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&admin)
    .await
    .unwrap();
    fleet.edit(6, Duration::from_millis(50)).await;
    wait_health(&server, 503, WAIT).await;
    let pending = fleet.phones[0].replica.unacknowledged().await;
    assert!(
        !pending.is_empty(),
        "nothing acknowledged while the disk is full"
    );

    sqlx::query("DROP TRIGGER full")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    fleet.settle(&server, WAIT).await;
    assert_eq!(proxy.accepted(), connections, "no phone reconnected");
    log_names_one_of("disk full", &["changes not stored"], &doc_names(&fleet));
}

#[tokio::test]
async fn postgres_restarted_under_load_loses_nothing_and_serves_again() {
    let Some(pg) = PgCluster::start().await else {
        common::skip::skipped(
            "postgres_restarted_under_load_loses_nothing_and_serves_again",
            "PostgreSQL binaries not installed",
        );
        return;
    };
    log::capture();
    let url = pg.url();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    let proxy = Proxy::start(server.addr).await;
    let fleet = Fleet::start(&server, &proxy.sync_url(), (3, 3), WAIT).await;

    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.stop_fast().await;
        let asked = Instant::now();
        let status = health_within(&server, Duration::from_secs(5)).await;
        eprintln!(
            "health while PostgreSQL is down: {status} after {:?}",
            asked.elapsed()
        );
        assert_eq!(
            status, 503,
            "/healthz answers promptly while the database is down"
        );
        // Phones keep editing into the outage, longer than a commit waits for a connection
        // (the pool's 10 s), so that commits fail and are retried.
        tokio::time::sleep(Duration::from_secs(11)).await;
        pg.start_again().await;
        wait_health(&server, 200, WAIT).await;
    };
    tokio::join!(fleet.edit(60, Duration::from_millis(50)), outage);
    fleet.settle(&server, Duration::from_secs(30)).await;
    log_names_one_of(
        "postgres restart",
        &["changes not stored"],
        &doc_names(&fleet),
    );
}
