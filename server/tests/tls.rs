//! HTTPS and WSS: a phone syncs over `wss://`, health answers over TLS, plain HTTP on the TLS
//! port gets nothing, and a bad certificate or key stops the start with an error that says
//! which file and what is wrong. A test CA and a certificate for `localhost` and 127.0.0.1 are
//! made fresh by every test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fieldsync_client::{ConnectOptions, Replica};
use fieldsync_core::schema::{Author, FieldDocument, RegionCode, Role, examples};
use fieldsync_server::{Config, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "peksos-ani";

/// A test CA and a server certificate it signed, as PEM files in `dir`.
struct Pki {
    ca: CertificateDer<'static>,
    tls: TlsConfig,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let tls = TlsConfig {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&tls.cert, cert.pem()).unwrap();
    std::fs::write(&tls.key, key.serialize_pem()).unwrap();
    Pki {
        ca: ca.der().clone(),
        tls,
    }
}

struct Server {
    addr: SocketAddr,
    token: String,
    ca: CertificateDer<'static>,
    config: Config,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// A TLS server on a random loopback port, with one field worker and a device of theirs.
async fn start() -> Server {
    start_with(|_| {}).await
}

async fn start_with(adjust: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut config = Config {
        tls: Some(pki.tls),
        ..Config::sqlite_in(dir.path())
    };
    adjust(&mut config);
    let storage = fieldsync_server::storage::open(&config.database_url)
        .await
        .unwrap();
    fieldsync_server::admin::add_user(
        storage.as_ref(),
        Some(USER.into()),
        "Ani",
        Role::Peksos,
        vec![area()],
    )
    .await
    .unwrap();
    let (_, token) = fieldsync_server::admin::enroll_device(storage.as_ref(), USER, None, None)
        .await
        .unwrap();
    storage.close().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(fieldsync_server::serve(listener, config.clone(), async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        token,
        ca: pki.ca,
        config,
        stop,
        task,
        _dir: dir,
    }
}

fn area() -> RegionCode {
    RegionCode::parse("32.77.01.1001").unwrap()
}

/// A TLS client trusting only the test CA.
fn connector(ca: &CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET /healthz` over TLS; the whole response as text.
async fn healthz_over_tls(server: &Server) -> String {
    get_over_tls(server, "/healthz").await
}

/// `GET path` over TLS; the whole response as text.
async fn get_over_tls(server: &Server, path: &str) -> String {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector(&server.ca).connect(name, tcp).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn the_web_over_tls_marks_its_cookies_secure() {
    let server = start().await;
    let page = get_over_tls(&server, "/login").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let cookie = page
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: fieldsync_login=")
        })
        .unwrap_or_else(|| panic!("the sign-in form sets its cookie: {page}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn a_phone_syncs_over_wss_and_the_server_stores_the_document() {
    let server = start().await;
    let phone = Replica::in_memory().await;
    phone
        .set_author(Author::user(USER, Role::Peksos, vec![area()]))
        .await;
    let id = phone
        .create(|tx| FieldDocument::Visit(examples::visit(&area(), USER)).write(tx))
        .await
        .unwrap();
    let url = format!("wss://localhost:{}/sync", server.addr.port());
    let options = ConnectOptions::new(url)
        .with_token(&server.token)
        .with_root_certificate(server.ca.to_vec());
    let handle = phone.connect(options);
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    handle.stop().await;

    // A graceful stop with TLS connections, then the document is in the database.
    let _ = server.stop.send(());
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let stored = storage
        .load(id)
        .await
        .unwrap()
        .expect("the document is stored");
    let stored = automerge::Automerge::load(&stored.bytes).unwrap();
    assert_eq!(stored.get_heads(), phone.heads(id).await.unwrap());
    storage.close().await.unwrap();
}

#[tokio::test]
async fn health_answers_over_tls_while_another_handshake_is_stuck() {
    let server = start().await;
    // A client that connects and never says anything must not hold up anyone else: the
    // answer comes well before the server gives up on the silent one (10 s).
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), healthz_over_tls(&server))
        .await
        .expect("health answers while a handshake is stuck");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
}

/// Whether the server ends the stream (end or error) within `WAIT`.
async fn closed_in_time(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_silent_or_half_sent_client_is_closed_after_the_header_timeout() {
    let server = start_with(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    // No handshake at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // A handshake, then half a request head (slowloris over TLS).
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut half = connector(&server.ca).connect(name, tcp).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(closed_in_time(&mut silent).await, "no handshake");
    assert!(closed_in_time(&mut half).await, "half a request head");
    let response = healthz_over_tls(&server).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn plain_http_and_ws_on_the_tls_port_get_no_answer() {
    let server = start().await;

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // The server ends the connection; at most a TLS alert comes back, never HTTP.
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    assert!(
        !String::from_utf8_lossy(&response).contains("HTTP/"),
        "{response:?}"
    );

    let url = format!("ws://{}/sync?token={}", server.addr, server.token);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());

    // The failed handshakes did not disturb the listener.
    let response = healthz_over_tls(&server).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn a_missing_certificate_stops_the_start_before_the_database_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let config = Config {
        tls: Some(TlsConfig {
            cert: missing.clone(),
            key: dir.path().join("key.pem"),
        }),
        ..Config::sqlite_in(dir.path())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = fieldsync_server::serve(listener, config, std::future::pending())
        .await
        .unwrap_err();
    let message = format!("{e:#}");
    assert!(
        message.starts_with(&format!(
            "cannot read the TLS certificate {}: ",
            missing.display()
        )),
        "{message}"
    );
    assert!(!dir.path().join("fieldsync.db").exists());
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let other = dir.path().join("other-key.pem");
    std::fs::write(&other, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let config = TlsConfig {
        key: other.clone(),
        ..pki.tls
    };
    let e = config.load().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "the TLS key {} does not match the certificate {}",
            other.display(),
            config.cert.display()
        )
    );
}

#[test]
fn files_swapped_or_without_pem_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let swapped = TlsConfig {
        cert: pki.tls.key.clone(),
        key: pki.tls.cert.clone(),
    };
    let e = swapped.load().unwrap_err().to_string();
    assert!(e.starts_with("no certificate (BEGIN CERTIFICATE)"), "{e}");
    assert!(e.ends_with(&pki.tls.key.display().to_string()), "{e}");

    let no_key = TlsConfig {
        key: pki.tls.cert.clone(),
        ..pki.tls.clone()
    };
    let e = no_key.load().unwrap_err().to_string();
    assert!(e.starts_with("no private key"), "{e}");
    assert!(e.ends_with(&pki.tls.cert.display().to_string()), "{e}");

    assert!(pki.tls.load().is_ok());
}
