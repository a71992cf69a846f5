//! A faulty network between phones and the server: a TCP proxy on 127.0.0.1 that the test
//! steers while traffic flows. It can cut every connection, delay each direction, throttle to a
//! bit rate, flip bits, and turn into a black hole (accept, forward nothing).
//!
//! Each connection runs two pipes (phone → server "up", server → phone "down"). A pipe reads
//! what arrives, stamps it with the time it may leave (now + that direction's delay), and a
//! second task writes it out no earlier than that, no faster than the bit rate: a delay is
//! latency, not a pause of the whole stream, and a rate is a bottleneck link.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the network does to traffic, as the test sets it; read afresh for every chunk.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added to every chunk from the phone to the server.
    pub delay_up: Duration,
    /// Added to every chunk from the server to the phone.
    pub delay_down: Duration,
    /// Bits per second of each direction (`None`: as fast as loopback).
    pub bits_per_second: Option<u64>,
    /// Flip one bit in every this many bytes from the phone (`None`: none).
    pub corrupt_up_every: Option<u64>,
    /// Flip one bit in every this many bytes from the server (`None`: none).
    pub corrupt_down_every: Option<u64>,
    /// Accept connections and read what arrives, but forward nothing either way.
    pub black_hole: bool,
}

impl Faults {
    /// A 2G link: 50 kbit/s each way, 600 ms round trip.
    pub fn gprs() -> Self {
        Self {
            delay_up: Duration::from_millis(300),
            delay_down: Duration::from_millis(300),
            bits_per_second: Some(50_000),
            ..Self::default()
        }
    }
}

/// A running proxy; stops (and drops every connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
    accepted: AtomicU64,
    /// Bits flipped (for the test to check the fault happened).
    flipped: AtomicU64,
    /// Connections whose server side ended first: the server closed them.
    closed_by_server: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 in front of `upstream`, passing traffic unchanged.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults::default()),
            cuts: watch::channel(0).0,
            accepted: AtomicU64::new(0),
            flipped: AtomicU64::new(0),
            closed_by_server: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Self { addr, shared, task }
    }

    /// The sync URL through this proxy (no token).
    pub fn sync_url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// Replaces the faults; applies to data read from now on.
    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    /// Back to a clean network.
    pub fn heal(&self) {
        self.set(Faults::default());
    }

    /// Closes every open connection now (both sides see the socket close).
    pub fn cut_all(&self) {
        self.shared.cuts.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Bits flipped so far.
    pub fn flipped(&self) -> u64 {
        self.shared.flipped.load(Ordering::Relaxed)
    }

    /// Connections the server closed (its side ended first); the proxy then closes the phone's
    /// side too, as the phone would find out once the network lets anything through.
    pub fn closed_by_server(&self) -> u64 {
        self.shared.closed_by_server.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut_all();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((phone, _)) = listener.accept().await else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(relay(phone, shared.clone()));
    }
}

/// One connection, until either side closes or the test cuts it.
async fn relay(phone: TcpStream, shared: Arc<Shared>) {
    let mut cuts = shared.cuts.subscribe();
    cuts.mark_unchanged();
    let black_hole = shared.faults.lock().unwrap().black_hole;
    let (phone_r, phone_w) = phone.into_split();
    if black_hole {
        // Accepted, and then nothing: read and forget until cut.
        tokio::select! {
            _ = swallow(phone_r) => {}
            _ = cuts.changed() => {}
        }
        drop(phone_w);
        return;
    }
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (server_r, server_w) = server.into_split();
    let up = pipe(phone_r, server_w, &shared, Direction::Up);
    let down = pipe(server_r, phone_w, &shared, Direction::Down);
    // Either direction ending ends the connection: dropping both halves of both sockets closes
    // them, which is what a cut looks like to both ends.
    tokio::select! {
        _ = up => {}
        _ = down => {
            shared.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
        _ = cuts.changed() => {}
    }
}

async fn swallow(mut from: OwnedReadHalf) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Reads from `from`, applies the faults, writes to `to`; returns when either side closes.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: &Shared, dir: Direction) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async {
        // Owned by the reader, so that its end closes the queue.
        let tx = tx;
        let mut buf = vec![0u8; 16 * 1024];
        let mut position: u64 = 0;
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let faults = shared.faults.lock().unwrap().clone();
            if faults.black_hole {
                continue;
            }
            let mut chunk = buf[..n].to_vec();
            let (delay, every) = match dir {
                Direction::Up => (faults.delay_up, faults.corrupt_up_every),
                Direction::Down => (faults.delay_down, faults.corrupt_down_every),
            };
            if let Some(every) = every.filter(|e| *e > 0) {
                for (i, byte) in chunk.iter_mut().enumerate() {
                    let at = position + i as u64;
                    if at % every == every - 1 {
                        // Which bit varies with the position, so every bit gets its turn.
                        *byte ^= 1 << (at / every % 8);
                        shared.flipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            position += n as u64;
            if tx.send((Instant::now() + delay, chunk)).await.is_err() {
                return;
            }
        }
    };
    let writer = async {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let rate = shared.faults.lock().unwrap().bits_per_second;
            match rate {
                None => {
                    if to.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                Some(bps) => {
                    // Small pieces, each taking its time on the wire, as a slow link sends.
                    for piece in chunk.chunks(256) {
                        let on_wire =
                            Duration::from_secs_f64(piece.len() as f64 * 8.0 / bps as f64);
                        let done = Instant::now() + on_wire;
                        if to.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep_until(done).await;
                    }
                }
            }
        }
    };
    // The reader ending (the sender closed) lets the writer deliver what is still delayed; the
    // writer failing drops the queue, so the reader stops at its next chunk.
    tokio::join!(reader, writer);
}
