//! The accept loop: each TCP connection in a task of its own (its TLS handshake too), served
//! by hyper's HTTP/1 with a time limit on the request head, within caps on open connections
//! per address and in total.
//!
//! `axum::serve` cannot limit how long a client takes to send a request's head, so a client
//! that sends half a header and waits held a socket forever, and enough of them used up the
//! process's open files (slowloris). Here a connection that has not sent a whole request head
//! within [`Limits::header_read_timeout`] (counted from accept under TLS, handshake included,
//! and again between keep-alive requests) is closed, and one over a cap is closed at once,
//! before it costs anything but the accept.
//!
//! A connection counts against the caps from accept until its socket closes, including after
//! an upgrade to a WebSocket: [`Counted`] carries the slot with the socket.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::Limits;

/// How long open HTTP connections get to finish their request at shutdown. WebSockets and
/// event streams watch the shutdown signal themselves and end at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Refusals are logged at most this often, so that a flood does not also flood the log.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `tcp` (HTTPS when `tls` is given) until `stop` turns true, then stops
/// accepting, lets every open HTTP connection finish its request (closing idle ones at once)
/// and returns when all have closed, or after [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    tcp: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) {
    let gate = Arc::new(Gate::new(limits));
    let tls = tls.map(TlsAcceptor::from);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let head_limit = limits.header_read_timeout;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            // Reaps finished connections, so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = tcp.accept() => {
                let (stream, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                let Some(slot) = gate.admit(addr.ip()) else {
                    // Closed before reading a byte: it costs the other clients nothing.
                    drop(stream);
                    continue;
                };
                let io = Counted { _slot: slot, io: stream };
                let (app, http, stop) = (app.clone(), http.clone(), stop.clone());
                match &tls {
                    None => connections.spawn(serve_http(io, addr, app, http, stop)),
                    Some(tls) => {
                        let tls = tls.clone();
                        connections.spawn(async move {
                            if let Some(io) = crate::tls::handshake(&tls, io, addr, head_limit).await {
                                serve_http(io, addr, app, http, stop).await;
                            }
                        })
                    }
                };
            }
        }
    }
    drop(tcp);
    let closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, closed).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections still open after {} s, closing them",
            SHUTDOWN_GRACE.as_secs()
        );
        connections.shutdown().await;
    }
}

/// One connection's HTTP/1, WebSocket upgrades included. The address reaches handlers as
/// axum's `ConnectInfo<SocketAddr>`.
async fn serve_http<I>(
    io: I,
    addr: SocketAddr,
    app: Router,
    http: http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Requests being answered on this connection, until their response body has been sent.
    let (busy, mut in_progress) = watch::channel(0usize);
    let busy = Arc::new(busy);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        let busy = Busy::start(&busy);
        // A router is always ready, so `call` needs no `poll_ready` first.
        let answer = app.clone().call(request);
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut stop) => {
            // Ends the connection after the request under way; one that is idle or still
            // sending a request head is closed at once.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                _ = async { let _ = in_progress.wait_for(|n| *n == 0).await; } => Ok(()),
            }
        }
    };
    // A timed-out header, a reset, a malformed request: the client's business.
    if let Err(e) = result {
        tracing::debug!(%addr, "HTTP connection ended: {e}");
    }
}

/// One request in progress on a connection, from the call until its response body is sent
/// (or dropped).
#[derive(Debug)]
struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    fn start(busy: &Arc<watch::Sender<usize>>) -> Self {
        busy.send_modify(|n| *n += 1);
        Self(busy.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// A response body that keeps its request counted as in progress until it is done.
#[derive(Debug)]
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Completes when the stop flag is set, or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Not `wait_for` in `select!` directly: its guard would be held across the handler.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Connections the caps let in, by address and in total.
#[derive(Debug)]
struct Gate {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
    refused: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Gate {
    fn new(limits: &Limits) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            open: Mutex::default(),
            refused: AtomicU64::new(0),
            last_report: Mutex::new(None),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("gate lock poisoned");
        let from_ip = open.by_address.get(&ip).copied().unwrap_or(0);
        let why = if open.total >= self.max_total {
            Some((
                "total",
                format!("{} connections open in total", self.max_total),
            ))
        } else if from_ip >= self.max_per_address {
            Some((
                "per_address",
                format!(
                    "{} connections open from this address",
                    self.max_per_address
                ),
            ))
        } else {
            None
        };
        if let Some((reason, why)) = why {
            drop(open);
            crate::metrics::tcp_refused(reason);
            self.refused(ip, &why);
            return None;
        }
        open.total += 1;
        *open.by_address.entry(ip).or_default() += 1;
        Some(Slot {
            gate: self.clone(),
            ip,
            _open: crate::metrics::tcp_connection(),
        })
    }

    fn refused(&self, ip: IpAddr, why: &str) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_report.lock().expect("gate lock poisoned");
        if last.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(addr = %ip, refused, "connection refused: {why}");
        }
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().expect("gate lock poisoned");
        open.total -= 1;
        if let Some(n) = open.by_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&ip);
            }
        }
    }
}

/// One admitted connection; frees its place when dropped.
#[derive(Debug)]
struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
    _open: crate::metrics::Open,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.release(self.ip);
    }
}

/// A socket that holds its [`Slot`] until it is dropped, wherever it goes (into TLS, into a
/// WebSocket after an upgrade).
#[derive(Debug)]
pub(crate) struct Counted<I> {
    // Before `io`, so dropped first: the place is free by the time the client sees the close.
    _slot: Slot,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// As axum's own loop does: a connection that failed before we took it is its client's
/// business; anything else (out of open files) is logged and waited out, since retrying at
/// once would spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How many connections the kernel holds for the accept loop (capped by
/// `net.core.somaxconn`, 4096 on current Linux). The 128 that Rust's and tokio's `bind` ask
/// for overflowed when 200 phones connected at once on loopback: the kernel dropped the rest
/// and those phones tried again a second later (a TCP retransmission), so a storm reached the
/// server spread out and its p99 gained a second.
pub const BACKLOG: u32 = 4096;

/// Listens on `addr` (`HOST:PORT`; a name is resolved and its addresses tried in turn) with
/// [`BACKLOG`].
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let listener = socket.and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)
        });
        match listener {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// Raises the process's soft limit on open files to its hard limit, so that the connection
/// caps, not the file limit, decide who is refused. Returns the limit now in force.
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_address: usize) -> Arc<Gate> {
        Arc::new(Gate::new(&Limits {
            max_connections: total,
            max_connections_per_address: per_address,
            ..crate::Config::default().limits
        }))
    }

    #[test]
    fn an_address_over_its_cap_is_refused_and_others_are_not() {
        let gate = gate(10, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none());
        assert!(gate.admit(b).is_some());
        drop(first);
        assert!(
            gate.admit(a).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn the_total_cap_refuses_everybody() {
        let gate = gate(2, 10);
        let _a = gate.admit("10.0.0.1".parse().unwrap()).unwrap();
        let _b = gate.admit("10.0.0.2".parse().unwrap()).unwrap();
        assert!(gate.admit("10.0.0.3".parse().unwrap()).is_none());
        assert_eq!(gate.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let gate = gate(10, 1);
        let _a = gate.admit("10.0.0.1".parse().unwrap()).unwrap();
        assert!(gate.admit("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }
}
