//! The office at work while the phones reconnect: coordinators with the activity feed open
//! (its live stream held, the first page read again every `--office-every-ms`), and
//! supervisors working through the review queue (read it, open one waiting referral, record
//! an approval on it, again and again). Each office user has an API token of their own and one HTTP/1.1
//! connection for reads and decisions, plus one for a coordinator's live stream, as a browser
//! tab keeps. The figures say what the storm costs the office and what the office costs the
//! storm.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fieldsync_core::schema::{RegionCode, Role};
use fieldsync_server::storage::Storage;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Someone in the office, with the role's work to do.
#[derive(Debug, Clone)]
pub struct OfficeUser {
    pub role: Role,
    /// `Authorization: Bearer` secret.
    pub token: String,
}

/// Coordinators and supervisors of `kota`, each with an API token.
pub async fn enroll(
    storage: &dyn Storage,
    kota: &RegionCode,
    coordinators: usize,
    supervisors: usize,
) -> anyhow::Result<Vec<OfficeUser>> {
    let mut users = Vec::with_capacity(coordinators + supervisors);
    let wanted = (0..coordinators)
        .map(|i| (Role::Coordinator, i))
        .chain((0..supervisors).map(|i| (Role::Supervisor, i)));
    for (role, i) in wanted {
        let id = format!("fieldsim-{}-{i}", role.as_str());
        // Already there from an earlier run: a new token is enough.
        let _ = fieldsync_server::admin::add_user(
            storage,
            Some(id.clone()),
            &id,
            role,
            vec![kota.clone()],
        )
        .await;
        let (_, token) =
            fieldsync_server::web::session::issue_api_token(storage, &id, "fieldsim", Some(1))
                .await?;
        users.push(OfficeUser { role, token });
    }
    Ok(users)
}

/// The host and port of a sync URL (`ws://host:port/sync`), where the office pages are too.
pub fn http_authority(sync_url: &str) -> anyhow::Result<String> {
    let Some(rest) = sync_url.strip_prefix("ws://") else {
        bail!("the office mix speaks plain HTTP: give a ws:// --url, not {sync_url:?}");
    };
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

/// What the office did during the run.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each read of the feed's first page, of the queue, of a referral opened
    /// (read through its document) and of each decision.
    pub feed: Vec<Duration>,
    pub queue: Vec<Duration>,
    pub referrals: Vec<Duration>,
    pub decisions: Vec<Duration>,
    /// Decisions refused because the referral was no longer waiting (another supervisor
    /// decided it first): the office's normal race, not an error.
    pub conflicts: usize,
    /// Events the coordinators' live streams delivered, and `reload` events among them (a
    /// stream that fell behind).
    pub live_events: usize,
    pub live_reloads: usize,
    /// Failed calls: a connection error or an unexpected status, with the first one seen.
    pub errors: usize,
    pub first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn merge(&mut self, other: Tally) {
        self.feed.extend(other.feed);
        self.queue.extend(other.queue);
        self.referrals.extend(other.referrals);
        self.decisions.extend(other.decisions);
        self.conflicts += other.conflicts;
        self.live_events += other.live_events;
        self.live_reloads += other.live_reloads;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// A GET that must answer 200: its latency and body, or the failure counted as `what`.
    async fn get(&mut self, http: &mut Http, what: &str, path: &str) -> Option<(Duration, Bytes)> {
        let started = Instant::now();
        match http.call(Method::GET, path, None).await {
            Ok((StatusCode::OK, body)) => Some((started.elapsed(), body)),
            Ok((status, body)) => {
                self.error(unexpected(what, status, &body));
                None
            }
            Err(e) => {
                self.error(format!("{what}: {e:#}"));
                None
            }
        }
    }

    /// One JSON object of the figures.
    pub fn json(&self) -> Value {
        let part = |samples: &[Duration]| {
            let (p50, p99) = crate::p50_p99(samples);
            json!({"count": samples.len(), "p50Ms": p50, "p99Ms": p99})
        };
        json!({
            "feed": part(&self.feed), "queue": part(&self.queue),
            "referrals": part(&self.referrals),
            "decisions": part(&self.decisions), "conflicts": self.conflicts,
            "liveEvents": self.live_events, "liveReloads": self.live_reloads,
            "errors": self.errors, "firstError": self.first_error,
        })
    }

    /// The figures as lines of text.
    pub fn lines(&self, coordinators: usize, supervisors: usize) -> Vec<String> {
        let part = |name: &str, samples: &[Duration]| {
            let (p50, p99) = crate::p50_p99(samples);
            format!("{} {name} p50 {p50:.0} ms p99 {p99:.0} ms", samples.len())
        };
        let mut lines = Vec::new();
        if coordinators > 0 {
            lines.push(format!(
                "office: {coordinators} coordinators: {}; live stream {} events, {} reloads",
                part("feed reads", &self.feed),
                self.live_events,
                self.live_reloads
            ));
        }
        if supervisors > 0 {
            lines.push(format!(
                "office: {supervisors} supervisors: {}; {}; {}; {} conflicts",
                part("queue reads", &self.queue),
                part("referrals opened", &self.referrals),
                part("decisions", &self.decisions),
                self.conflicts
            ));
        }
        if self.errors > 0 {
            lines.push(format!(
                "office: {} failed calls, the first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        lines
    }
}

/// The office at work until [`Mix::finish`].
#[derive(Debug)]
pub struct Mix {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Mix {
    /// Sets every user to work, user `i` on the server of `authorities[i % n]`, each step
    /// `every` apart (the users' steps spread evenly over the first interval). Returns once
    /// every coordinator's live stream is open (or failed to open, which is counted).
    pub async fn start(users: &[OfficeUser], authorities: &[String], every: Duration) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut opened = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let http = Http::new(authorities[i % authorities.len()].clone(), &user.token);
            let offset = every.mul_f64(i as f64 / users.len() as f64);
            if user.role == Role::Coordinator {
                let (open, is_open) = oneshot::channel();
                opened.push(is_open);
                tasks.push(tokio::spawn(listen(http.clone(), open, stopped.clone())));
            }
            tasks.push(tokio::spawn(work(
                http,
                user.role,
                i,
                offset,
                every,
                stopped.clone(),
            )));
        }
        for is_open in opened {
            let _ = is_open.await;
        }
        Self { stop, tasks }
    }

    /// Stops every user and adds up what they did.
    pub async fn finish(self) -> Tally {
        let _ = self.stop.send(true);
        let mut all = Tally::default();
        for task in self.tasks {
            match task.await {
                Ok(tally) => all.merge(tally),
                Err(e) => all.error(format!("an office task failed: {e}")),
            }
        }
        all
    }
}

/// A user's steps: a coordinator reads the feed's first page, a supervisor reads the queue,
/// opens one waiting referral (the `i`-th of the page, so that supervisors mostly pick
/// different ones) and approves it.
async fn work(
    mut http: Http,
    role: Role,
    i: usize,
    offset: Duration,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut next = tokio::time::Instant::now() + offset;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopped.changed() => return tally,
        }
        next += every;
        if role == Role::Coordinator {
            if let Some((took, _)) = tally.get(&mut http, "feed", "/api/activity").await {
                tally.feed.push(took);
            }
            continue;
        }
        let Some((took, body)) = tally.get(&mut http, "queue", "/api/referrals").await else {
            continue;
        };
        tally.queue.push(took);
        let page = serde_json::from_slice::<Value>(&body).unwrap_or_default();
        let ids: Vec<&str> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["id"].as_str())
            .collect();
        let Some(id) = ids.get(i % ids.len().max(1)) else {
            continue;
        };
        let opened = tally
            .get(&mut http, "referral", &format!("/api/referrals/{id}"))
            .await;
        let Some((took, _)) = opened else {
            continue;
        };
        tally.referrals.push(took);
        let path = format!("/api/referrals/{id}/events");
        let started = Instant::now();
        let body = json!({"kind": "approved", "note": "Memenuhi syarat."});
        match http.call(Method::POST, &path, Some(body)).await {
            Ok((StatusCode::OK | StatusCode::CREATED, _)) => {
                tally.decisions.push(started.elapsed())
            }
            Ok((StatusCode::CONFLICT, _)) => tally.conflicts += 1,
            Ok((status, body)) => tally.error(unexpected("decision", status, &body)),
            Err(e) => tally.error(format!("decision: {e:#}")),
        }
    }
}

/// A coordinator's live stream, held open and counted until the run ends (reopened if the
/// server ends it). `open` is told when the first attempt to open it is over.
async fn listen(
    mut http: Http,
    open: oneshot::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut open = Some(open);
    while !*stopped.borrow() {
        let opened = tokio::select! {
            opened = http.open_stream("/api/activity/stream") => opened,
            _ = stopped.changed() => return tally,
        };
        if let Some(open) = open.take() {
            let _ = open.send(());
        }
        let mut body = match opened {
            Ok(body) => body,
            Err(e) => {
                tally.error(format!("live stream: {e:#}"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stopped.changed() => return tally,
                }
            }
        };
        let mut pending = Vec::new();
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = stopped.changed() => return tally,
            };
            let Some(Ok(frame)) = frame else { break };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            // Whole lines only: an event may arrive split over frames.
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if line.starts_with(b"data:") {
                    tally.live_events += 1;
                } else if line.starts_with(b"event: reload") || line.starts_with(b"event:reload") {
                    tally.live_reloads += 1;
                }
            }
        }
    }
    tally
}

/// A TCP connection to `authority`. On loopback it comes from 127.0.0.2: the office is not
/// behind the phones' address, whose connections the server caps (`--max-connections-per-address`).
async fn connect(authority: &str) -> std::io::Result<TcpStream> {
    let addr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    if let std::net::SocketAddr::V4(v4) = addr
        && v4.ip().is_loopback()
    {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0)))?;
        return socket.connect(addr).await;
    }
    TcpStream::connect(addr).await
}

fn unexpected(what: &str, status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!("{what}: HTTP {status}: {text}")
}

/// One keep-alive HTTP/1.1 connection with a bearer token, opened again when it closes.
#[derive(Debug)]
struct Http {
    authority: String,
    bearer: String,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Clone for Http {
    /// Another connection of the same user.
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            bearer: self.bearer.clone(),
            sender: None,
        }
    }
}

impl Http {
    fn new(authority: String, token: &str) -> Self {
        Self {
            authority,
            bearer: format!("Bearer {token}"),
            sender: None,
        }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut http1::SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = connect(&self.authority)
                .await
                .with_context(|| format!("cannot connect to {}", self.authority))?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            // Ends when the connection closes.
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("opened above");
        sender.ready().await?;
        Ok(sender)
    }

    fn request(&self, method: Method, path: &str, body: Option<Value>) -> Request<Full<Bytes>> {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, &self.bearer);
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string()))),
            None => builder.body(Full::new(Bytes::new())),
        };
        request.expect("a valid request")
    }

    /// A call and its whole answer. A read whose kept-alive connection turns out closed
    /// (the server ends idle ones) is sent again on a new one, as a browser does.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        let request = self.request(method.clone(), path, body.clone());
        let response = match self.sender().await?.send_request(request).await {
            Err(e) if reused && method == Method::GET && (e.is_closed() || e.is_canceled()) => {
                self.sender = None;
                let request = self.request(method, path, body);
                self.sender().await?.send_request(request).await?
            }
            sent => sent?,
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A GET whose answer is read as it arrives.
    async fn open_stream(&mut self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let mut request = self.request(Method::GET, path, None);
        request.headers_mut().insert(
            header::ACCEPT,
            header::HeaderValue::from_static("text/event-stream"),
        );
        let response = self.sender().await?.send_request(request).await?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            bail!("{}", unexpected("live stream", status, &body));
        }
        Ok(response.into_body())
    }
}

#[cfg(test)]
mod tests {
    use fieldsync_client::{ConnectOptions, Replica};

    use super::*;

    /// One coordinator and one supervisor at work while a phone sends a referral: the
    /// supervisor approves it, the approval reaches the phone, and the coordinator's stream
    /// hears of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_office_reads_the_feed_and_approves_a_waiting_referral() {
        let dir = tempfile::tempdir().unwrap();
        let config = fieldsync_server::Config::sqlite_in(dir.path());
        let kota = RegionCode::parse_prefix("32.77").unwrap();
        let storage = fieldsync_server::storage::open(&config.database_url)
            .await
            .unwrap();
        let workers = crate::enroll(storage.as_ref(), &kota, 1, 1).await.unwrap();
        let users = enroll(storage.as_ref(), &kota, 1, 1).await.unwrap();
        storage.close().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(fieldsync_server::serve(listener, config, async {
            let _ = stopped.await;
        }));

        // At work before the referral arrives: an empty queue is no error.
        let mix = Mix::start(&users, &[addr.to_string()], Duration::from_millis(20)).await;
        let phone = Replica::in_memory().await;
        let id = phone
            .create(|tx| crate::referral(tx, &workers[0], 0, 0))
            .await
            .unwrap();
        let mut options = ConnectOptions::new(format!("ws://{addr}/sync"));
        options.token = workers[0].token.clone();
        let handle = phone.connect(options);
        phone
            .wait_acknowledged(id, Duration::from_secs(10))
            .await
            .unwrap();

        // The approval reaches the phone, which is still connected.
        use fieldsync_core::schema::FieldDocument;
        let two_events = |doc: &automerge::Automerge| match FieldDocument::read_state(doc) {
            Ok(Some(FieldDocument::Referral(r))) => r.events.len() == 2,
            _ => false,
        };
        phone
            .wait_doc(id, Duration::from_secs(10), two_events)
            .await
            .expect("the approval reaches the phone");
        let Some(Ok(Some(FieldDocument::Referral(r)))) =
            phone.read(id, FieldDocument::read_state).await
        else {
            panic!("the phone holds the referral");
        };
        assert_eq!(r.events[1].kind.as_str(), "approved");
        assert_eq!(r.events[1].by, "fieldsim-supervisor-0");
        // A few more steps with nothing left to decide.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tally = mix.finish().await;
        handle.stop().await;
        let _ = stop.send(());
        server.await.unwrap().unwrap();

        assert_eq!(tally.errors, 0, "{:?}", tally.first_error);
        assert_eq!(tally.decisions.len(), 1);
        assert_eq!(tally.conflicts, 0);
        assert!(tally.queue.len() >= 2, "{} queue reads", tally.queue.len());
        assert_eq!(
            tally.referrals.len(),
            1,
            "the referral opened before its approval"
        );
        assert!(tally.feed.len() >= 2, "{} feed reads", tally.feed.len());
        // The referral's arrival and its approval, at least.
        assert!(tally.live_events >= 2, "{} live events", tally.live_events);
        let lines = tally.lines(1, 1).join("\n");
        assert!(lines.contains("1 decisions"), "{lines}");
    }

    #[test]
    fn the_office_needs_a_plain_http_url() {
        assert_eq!(
            http_authority("ws://127.0.0.1:8080/sync").unwrap(),
            "127.0.0.1:8080"
        );
        assert!(http_authority("wss://example.org/sync").is_err());
    }
}
