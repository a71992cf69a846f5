//! Every log line at debug level, in text and in JSON, through a full sync and a web session:
//! each request and sync connection carries its id, and no line holds a token, a password, a
//! session cookie, a NIK, a KK number or a beneficiary's name.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use fieldsync_client::{ConnectOptions, Replica};
use fieldsync_core::schema::{FieldDocument, Kk, Nik, Role, examples};
use futures_util::SinkExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::common::{DEFAULT_USER, TestServer, WAIT, area, default_author};
use crate::support::{Client, password_of, person};

/// Everything the process logged, from the first call of [`capture`] on.
#[derive(Debug, Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

impl Sink {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Logs everything at debug level, as text and as JSON (`--log-format json`), into one sink.
pub fn capture() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Sink::default();
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("debug"))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(sink.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(sink.clone()),
            )
            .init();
        sink
    })
}

/// 16 digits, valid as a NIK, appearing nowhere else.
const NIK: &str = "3277016508910004";
const KK: &str = "3277010101230009";
const NAME: &str = "Ratna Kusumawati";
const COORDINATOR: &str = "koor-log";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_personal_data_reaches_the_debug_log_and_every_line_has_its_id() {
    let sink = capture();
    let server = TestServer::start().await;
    person(&server, COORDINATOR, Role::Coordinator, &["32.77.01"]).await;

    // A full sync: a phone with its token in the header writes a visit and a referral about
    // one beneficiary, with NIK, KK and name; a second phone with its token in the query
    // follows them; a third has a change refused.
    let (_, header_token) = server.enroll(DEFAULT_USER).await;
    let phone = Replica::in_memory().await;
    phone.set_author(default_author()).await;
    let mut handle =
        phone.connect(ConnectOptions::new(server.plain_url()).with_token(&header_token));
    assert!(handle.wait_connected(WAIT).await);
    let mut visit = examples::visit(&area(), DEFAULT_USER);
    visit.beneficiary.nik = Nik::parse(NIK).unwrap();
    visit.beneficiary.kk = Some(Kk::parse(KK).unwrap());
    visit.beneficiary.name = NAME.into();
    let visit_id = crate::stored(&phone, FieldDocument::Visit(visit.clone())).await;
    let mut referral = examples::referral(&area(), DEFAULT_USER);
    referral.beneficiary = visit.beneficiary.clone();
    referral.consent.by = NAME.into();
    let referral_id = crate::stored(&phone, FieldDocument::Referral(referral)).await;
    let (follower, _follows) = server.phone().await;
    follower.find(visit_id).await;
    follower.wait_doc(visit_id, WAIT, |_| true).await.unwrap();
    crate::refused_approval(&server, referral_id).await;

    // A socket that breaks the protocol is disconnected for cause, in one line.
    let url = server.url();
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            "hello".into(),
        ))
        .await
        .unwrap();
    let closed =
        async { while let Some(Ok(_)) = futures_util::StreamExt::next(&mut socket).await {} };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the server closes the socket");

    // A web session: a wrong password, a password typed as the user id, a sign-in, a page,
    // the beneficiary's timeline (the NIK is in its path), an export, and signing out.
    let password = password_of(COORDINATOR);
    let mut stranger = Client::anonymous(&server);
    stranger.sign_in(COORDINATOR, "salah-sandi-1").await;
    stranger.sign_in(&password, "salah-sandi-2").await;
    let mut browser = Client::browser(&server, COORDINATOR).await;
    let cookies: Vec<String> = browser.cookies.iter().map(|(_, v)| v.clone()).collect();
    let csrf = browser.csrf.clone().unwrap();
    assert_eq!(browser.get("/activity").await.status, 200);
    let timeline = browser.get(&format!("/beneficiaries/{NIK}")).await;
    assert_eq!(timeline.status, 200);
    assert!(
        timeline.text().contains(NAME),
        "the timeline shows the visit"
    );
    // Searches by name, NIK and KK, and the household: their words are in the query string
    // and the path.
    for q in ["Ratna+Kusuma", &NIK[..12], &KK[..12]] {
        let found = browser.get(&format!("/search?q={q}")).await;
        assert!(found.text().contains(NAME), "search {q} finds the visit");
    }
    assert_eq!(browser.get(&format!("/households/{KK}")).await.status, 200);
    let export = browser
        .get("/api/exports/visits.csv?area=32.77.01&from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(export.status, 200, "{}", export.text());
    assert!(export.text().contains(KK) || export.text().contains(NIK));
    browser.post_form("/logout", &[]).await;
    drop(handle);

    let lines = sink.lines();
    let secrets: Vec<(&str, &str)> = [
        ("a device token", server.token.as_str()),
        ("a device token", header_token.as_str()),
        ("a password", password.as_str()),
        ("a wrong password", "salah-sandi-1"),
        ("a wrong password", "salah-sandi-2"),
        ("the CSRF token", csrf.as_str()),
        ("the NIK", NIK),
        ("the KK number", KK),
        ("the beneficiary's name", NAME),
    ]
    .into_iter()
    .chain(cookies.iter().map(|c| ("a session cookie", c.as_str())))
    .collect();
    for line in &lines {
        for (what, secret) in &secrets {
            assert!(!line.contains(secret), "{what} in the log: {line}");
        }
    }

    // Ids: the request's, and the connection's, down to the line that ended it for cause.
    let failed_sign_in = lines
        .iter()
        .find(|l| l.contains("web sign-in failed") && !l.starts_with('{'))
        .expect("a failed sign-in is logged");
    assert!(failed_sign_in.contains("request{id="), "{failed_sign_in}");
    assert!(failed_sign_in.contains("route=/login"), "{failed_sign_in}");
    let disconnected = lines
        .iter()
        .find(|l| l.contains("disconnected: text frames") && !l.starts_with('{'))
        .expect("the disconnect for cause is logged");
    assert!(disconnected.contains("sync{conn="), "{disconnected}");
    let json = lines
        .iter()
        .find(|l| l.starts_with('{') && l.contains("disconnected: text frames"))
        .expect("the JSON log has it too");
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert!(json["span"]["conn"].is_number(), "{json}");
    let received = lines
        .iter()
        .find(|l| l.contains(" received") && l.contains("doc="))
        .expect("the actors log at debug level");
    assert!(received.contains("conn="), "{received}");
}
