//! What the web tests share: people with passwords signed in as browsers or scripts, and a
//! small HTTP/1.1 client (one request per connection) that keeps cookies and the CSRF token.

#![allow(dead_code)]

use std::time::Duration;

use fieldsync_core::schema::Role;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestServer, WAIT};

/// Every test user's password.
pub fn password_of(user: &str) -> String {
    format!("kata-sandi-{user}")
}

/// Adds a user with a web password.
pub async fn person(server: &TestServer, id: &str, role: Role, areas: &[&str]) {
    server.add_user(id, role, areas).await;
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    fieldsync_server::web::session::set_password(storage.as_ref(), id, &password_of(id))
        .await
        .unwrap();
    storage.close().await.unwrap();
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A browser (cookies) or a script (bearer token) talking to one server.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub cookies: Vec<(String, String)>,
    pub bearer: Option<String>,
    /// The session's CSRF token, once signed in.
    pub csrf: Option<String>,
    /// The loopback address requests come from (127.0.0.1 unless set): another address is
    /// another machine to the server.
    pub source: Option<std::net::IpAddr>,
}

impl Client {
    pub fn anonymous(server: &TestServer) -> Self {
        Self {
            addr: server.addr,
            cookies: Vec::new(),
            bearer: None,
            csrf: None,
            source: None,
        }
    }

    /// A browser at another loopback address, e.g. `127.0.0.2`.
    pub fn anonymous_from(server: &TestServer, source: &str) -> Self {
        Self {
            source: Some(source.parse().unwrap()),
            ..Self::anonymous(server)
        }
    }

    /// A new connection to the server, from [`Self::source`]; `receive_buffer` shrinks the
    /// socket's receive buffer (a reader that stops reading then stalls the sender soon).
    pub async fn connect(&self, receive_buffer: Option<u32>) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        if let Some(ip) = self.source {
            socket.bind(std::net::SocketAddr::new(ip, 0)).unwrap();
        }
        socket.connect(self.addr).await.unwrap()
    }

    /// A browser signed in as `user` (added with [`person`]).
    pub async fn browser(server: &TestServer, user: &str) -> Self {
        let mut c = Self::anonymous(server);
        c.sign_in(user, &password_of(user)).await;
        assert!(c.csrf.is_some(), "{user} signs in");
        c
    }

    /// A script with an API token of `user`.
    pub async fn script(server: &TestServer, user: &str) -> Self {
        let storage = fieldsync_server::storage::open(&server.config.database_url)
            .await
            .unwrap();
        let (_, secret) =
            fieldsync_server::web::session::issue_api_token(storage.as_ref(), user, "test", None)
                .await
                .unwrap();
        storage.close().await.unwrap();
        Self {
            bearer: Some(secret),
            ..Self::anonymous(server)
        }
    }

    /// Loads the sign-in form and posts it; returns the answer to the post.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> Reply {
        let form = self.get("/login").await;
        let page = form.text();
        let csrf = between(&page, "name=\"csrf\" value=\"", "\"").expect("the form has a token");
        let reply = self
            .send(
                "POST",
                "/login",
                "application/x-www-form-urlencoded",
                encode(&[("csrf", &csrf), ("username", user), ("password", password)]).into_bytes(),
                &[],
            )
            .await;
        if let Ok(me) = tokio::time::timeout(WAIT, self.get("/api/me")).await
            && me.status == 200
        {
            self.csrf = me.json()["csrfToken"].as_str().map(str::to_owned);
        }
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, "", Vec::new(), &[]).await
    }

    /// Posts a form as a page does, with the session's CSRF token added.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone().unwrap_or_default();
        all.push(("csrf", &csrf));
        let body = encode(&all).into_bytes();
        self.send("POST", path, "application/x-www-form-urlencoded", body, &[])
            .await
    }

    /// Calls the API with a JSON body (and the CSRF header when signed in as a browser).
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Reply {
        let csrf = self.csrf.clone();
        let extra: Vec<(&str, &str)> = csrf
            .as_deref()
            .map(|t| vec![("X-CSRF-Token", t)])
            .unwrap_or_default();
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
            &extra,
        )
        .await
    }

    fn head(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        len: usize,
        extra: &[(&str, &str)],
    ) -> String {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        if let Some(token) = &self.bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if method != "GET" {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    /// One request on a new connection; cookies the answer sets are kept.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut stream = self.connect(None).await;
        let head = self.head(method, path, content_type, body.len(), extra);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
            .await
            .unwrap_or_else(|_| panic!("{method} {path} answers within {WAIT:?}"))
            .unwrap();
        let reply = parse(&raw);
        self.keep_cookies(&reply);
        reply
    }

    /// Opens a streaming GET (server-sent events): returns the connection after the answer's
    /// headers, with its status and whatever body bytes already arrived.
    pub async fn open_stream(&mut self, path: &str) -> (u16, TcpStream, Vec<u8>) {
        let mut stream = self.connect(None).await;
        let head = self.head("GET", path, "", 0, &[("Accept", "text/event-stream")]);
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "stream closed before its headers");
            raw.extend_from_slice(&buf[..n]);
        }
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
        (status, stream, raw[end..].to_vec())
    }

    /// Sends a GET and reads no more than the answer's status line and headers: a download
    /// whose reader never reads. The connection stays open as long as the stream is kept.
    pub async fn stall(&mut self, path: &str) -> (u16, TcpStream) {
        let mut stream = self.connect(Some(4096)).await;
        let head = self.head("GET", path, "", 0, &[]);
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
                .await
                .unwrap_or_else(|_| panic!("GET {path} answers within {WAIT:?}"))
                .unwrap();
            assert!(n > 0, "closed before the headers of {path}");
            raw.push(byte[0]);
        }
        let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
        (status, stream)
    }

    fn keep_cookies(&mut self, reply: &Reply) {
        for (k, v) in &reply.headers {
            if k != "set-cookie" {
                continue;
            }
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() && !v.contains("Max-Age=0") {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
    }
}

/// Reads from a streaming connection until `needle` has arrived (or fails after `limit`).
pub async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{needle:?} within {limit:?}; got {}",
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(n > 0, "stream closed before {needle:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

/// `application/x-www-form-urlencoded`.
pub fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text between `start` and the next `end`.
pub fn between(haystack: &str, start: &str, end: &str) -> Option<String> {
    let from = haystack.find(start)? + start.len();
    let len = haystack[from..].find(end)?;
    Some(haystack[from..from + len].to_owned())
}

/// Runs `test` against a server on a fresh PostgreSQL database, then drops the database;
/// without PostgreSQL configured the test is counted as skipped and nothing runs.
pub async fn on_postgres<F: Future<Output = ()>>(test: impl FnOnce(TestServer) -> F) {
    let Some(db) = crate::common::PgDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    test(TestServer::start_with(|c| c.database_url = url).await).await;
    db.drop_database().await;
}
