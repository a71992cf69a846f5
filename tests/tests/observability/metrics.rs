//! `/metrics` after a real phone sync, a web request and a refused change.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::TestServer;
use crate::support::Client;

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value
                    .parse()
                    .unwrap_or_else(|_| panic!("a number in {line:?}")),
            }
        })
        .collect()
}

/// The value of the series `name` whose labels include `labels`; panics if there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no series {name} {labels:?}"))
        .value
}

/// A label value that could name someone or something: long digit runs (NIK, KK), long hex
/// or base58 words (tokens, document ids), user and device names.
fn looks_like_an_id(v: &str) -> bool {
    let longest_digits = v
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let longest_word = v
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::len)
        .max()
        .unwrap_or(0);
    longest_digits >= 6 || longest_word > 24 || v.contains("peksos") || v.contains("dev_")
}

/// Every `fieldsync_…` name in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("fieldsync_") && w.len() > "fieldsync_".len())
        .map(str::to_owned)
        .collect()
}

/// A histogram's series name without its `_bucket`, `_sum` or `_count`.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_sync_a_web_request_and_a_refusal_without_ids() {
    crate::logs::capture();
    let side = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let side_addr = side.local_addr().unwrap();
    let server = TestServer::start_with(|c| c.metrics_listener = Some(Arc::new(side))).await;

    // A phone syncs a referral; another phone's approval of it is refused.
    let (phone, _handle) = server.phone().await;
    let id = crate::stored(&phone, crate::referral()).await;
    crate::refused_approval(&server, id).await;
    // A web page, and a sync attempt with a token nobody issued.
    let mut web = Client::anonymous(&server);
    assert_eq!(web.get("/login").await.status, 200);
    assert_eq!(web.get("/sync?token=not-a-token").await.status, 401);
    // The route template counts, not the path: the NIK stays out.
    web.get("/beneficiaries/3277015204800002").await;

    // With --metrics-listen, only that address serves them.
    assert_eq!(web.get("/metrics").await.status, 404);
    let mut side = Client {
        addr: side_addr,
        ..Client::anonymous(&server)
    };
    let reply = side.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.headers
    );
    let text = reply.text();
    let s = parse(&text);

    assert!(
        value(&s, "fieldsync_sync_connections", &[]) >= 1.0,
        "{text}"
    );
    assert!(value(&s, "fieldsync_tcp_connections", &[]) >= 2.0, "{text}");
    assert!(
        value(
            &s,
            "fieldsync_sync_messages_received_total",
            &[("type", "join")]
        ) >= 2.0
    );
    assert!(
        value(
            &s,
            "fieldsync_sync_messages_received_total",
            &[("type", "sync")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "fieldsync_sync_messages_sent_total",
            &[("type", "sync")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "fieldsync_sync_messages_sent_total",
            &[("type", "peer")]
        ) >= 2.0
    );
    // The refusal notice is an ephemeral message.
    assert!(
        value(
            &s,
            "fieldsync_sync_messages_sent_total",
            &[("type", "ephemeral")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "fieldsync_changes_refused_total",
            &[("reason", "rules")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "fieldsync_security_events_total",
            &[("event", "token_unknown")]
        ) >= 1.0
    );
    assert!(value(&s, "fieldsync_documents_loaded", &[]) >= 1.0);
    assert!(value(&s, "fieldsync_documents_open", &[]) >= 1.0);
    assert!(value(&s, "fieldsync_document_loads_total", &[]) >= 1.0);
    assert!(value(&s, "fieldsync_document_cache_bytes", &[]) > 0.0);
    assert_eq!(
        value(&s, "fieldsync_document_cache_budget_bytes", &[]),
        256.0 * 1024.0 * 1024.0
    );
    assert_eq!(value(&s, "fieldsync_db_pool_max_connections", &[]), 4.0);
    assert!(value(&s, "fieldsync_db_pool_connections", &[("state", "idle")]) >= 0.0);
    assert_eq!(value(&s, "fieldsync_build_info", &[]), 1.0);

    // Durations and batch sizes are histograms with buckets (they add up across processes).
    let commits = value(&s, "fieldsync_change_commit_seconds_count", &[]);
    assert!(commits >= 1.0, "{text}");
    assert_eq!(
        value(
            &s,
            "fieldsync_change_commit_seconds_bucket",
            &[("le", "+Inf")]
        ),
        commits
    );
    assert!(value(&s, "fieldsync_change_commit_seconds_sum", &[]) > 0.0);
    assert!(
        value(
            &s,
            "fieldsync_change_commit_seconds_bucket",
            &[("le", "30")]
        ) <= commits
    );
    let batches = value(&s, "fieldsync_write_batch_writes_count", &[]);
    assert!(batches >= 1.0);
    // Every batch holds at least one write.
    assert!(value(&s, "fieldsync_write_batch_writes_sum", &[]) >= batches);
    assert_eq!(
        value(&s, "fieldsync_write_batch_writes_bucket", &[("le", "512")]),
        batches
    );
    // Its duration is a second histogram, recorded just after: other tests of this binary
    // commit meanwhile, so the two counts may differ by a batch in flight.
    assert!(value(&s, "fieldsync_write_batch_seconds_count", &[]) >= 1.0);
    assert!(
        !text.contains("quantile="),
        "summaries, not histograms:\n{text}"
    );

    // HTTP by route template and status.
    let login = [("route", "/login"), ("method", "GET"), ("status", "200")];
    assert!(value(&s, "fieldsync_http_requests_total", &login) >= 1.0);
    let sync = [("route", "/sync"), ("status", "401")];
    assert!(value(&s, "fieldsync_http_requests_total", &sync) >= 1.0);
    let timeline = [("route", "/beneficiaries/{nik}")];
    assert!(value(&s, "fieldsync_http_requests_total", &timeline) >= 1.0);
    assert!(
        value(
            &s,
            "fieldsync_http_request_seconds_count",
            &[("route", "/login")]
        ) >= 1.0
    );

    // No label value names anyone or anything.
    let phone_id = id.to_string();
    for sample in &s {
        for (k, v) in &sample.labels {
            assert!(
                !looks_like_an_id(v) && !v.contains(&phone_id) && !v.contains(&server.token),
                "label {k}={v:?} of {} looks like an id",
                sample.name
            );
        }
    }

    // Every series is documented, and the dashboard draws only documented ones.
    let documented = metric_names(include_str!("../../../docs/operations.md"));
    for sample in &s {
        let base = base_name(&sample.name);
        assert!(
            documented.contains(base),
            "{base} is not in docs/operations.md"
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/grafana-dashboard.json")).unwrap();
    let drawn = metric_names(&dashboard.to_string());
    assert!(drawn.len() >= 15, "{drawn:?}");
    for name in &drawn {
        assert!(
            documented.contains(base_name(name)),
            "the dashboard draws {name}, which docs/operations.md does not list"
        );
    }

    // --metrics-listen serves nothing else.
    let reply = side.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .text()
            .contains("fieldsync_sync_messages_received_total")
    );
    assert_eq!(side.get("/login").await.status, 404);
    assert_eq!(side.get("/healthz").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_listener_serves_metrics_only_to_this_machine_without_a_proxy() {
    crate::logs::capture();
    let server = TestServer::start().await;
    let mut web = Client::anonymous(&server);
    assert_eq!(web.get("/metrics").await.status, 200);
    // Through a proxy on this machine, anyone on the internet would look local.
    for header in [
        "X-Forwarded-For",
        "Forwarded",
        "X-Real-IP",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
    ] {
        let reply = web
            .send(
                "GET",
                "/metrics",
                "",
                Vec::new(),
                &[(header, "203.0.113.9")],
            )
            .await;
        assert_eq!(reply.status, 404, "{header}");
        assert!(!reply.text().contains("fieldsync_"), "{header}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_kept_when_plain_and_replaced_otherwise() {
    crate::logs::capture();
    let server = TestServer::start().await;
    let mut web = Client::anonymous(&server);
    let kept = web
        .send(
            "GET",
            "/login",
            "",
            Vec::new(),
            &[("X-Request-Id", "proxy-7f3a-01")],
        )
        .await;
    assert_eq!(kept.header("x-request-id"), Some("proxy-7f3a-01"));
    for bad in ["a b", "x\"}{y", &"a".repeat(65)] {
        let reply = web
            .send("GET", "/login", "", Vec::new(), &[("X-Request-Id", bad)])
            .await;
        let id = reply.header("x-request-id").expect("an id is always sent");
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    let fresh = web.get("/healthz").await;
    assert!(fresh.header("x-request-id").is_some());
}
