//! Fan-out floor: the same SSE frames to N loopback sockets with the least work per
//! frame, so the load harness can report the host's per-frame cost as a ratio to it.
//!
//! It reads one SSE stream (`--upstream`, the host's watch of the same kind), keeps the
//! last `snapshot` and an append-only tail of delta frames (the bytes exactly as the
//! host wrote them), and serves every `GET` on `--listen` with a close-delimited
//! `text/event-stream` body: the snapshot, then every delta. Each client is a cursor
//! into the shared tail; one thread per core (`--workers`) owns a share of the
//! sockets and, on each wake-up, writes every frame a socket has not seen yet in one
//! `writev`. There is no policy here (no backpressure, heartbeats, auth, metrics):
//! whatever the host spends above this is the price of its stream policies and its
//! HTTP stack.
//!
//! The load harness starts it (see `load --help`); by hand:
//!
//! ```sh
//! target/release/floor --upstream http://127.0.0.1:8080/api/clusters/demo/pods/watch \
//!     --listen 127.0.0.1:9090
//! ```

use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;

/// Serves one SSE stream to many loopback clients with the least work per frame.
#[derive(Debug, Parser)]
#[command(name = "floor")]
struct Args {
    /// The SSE stream to relay (read once).
    #[arg(long)]
    upstream: String,
    /// Where clients connect.
    #[arg(long)]
    listen: String,
    /// Writer threads; default: one per core.
    #[arg(long)]
    workers: Option<usize>,
}

/// The shared tail: the last snapshot and every delta after it.
#[derive(Default)]
struct Tail {
    snapshot: Option<Bytes>,
    frames: Vec<Bytes>,
}

/// What a writer thread is told.
enum Wake {
    /// A new client, with its cursor into the tail.
    Join(TcpStream, usize),
    /// The tail grew.
    Frames,
}

const HEADER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

fn main() -> Result<()> {
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let tail = Arc::new(Mutex::new(Tail::default()));
    let listener = TcpListener::bind(&args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;

    let mut senders = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel();
        senders.push(tx);
        let tail = tail.clone();
        std::thread::spawn(move || writer(&tail, &rx));
    }

    let accept_tail = tail.clone();
    let accept_senders = senders.clone();
    std::thread::spawn(move || accept(&listener, &accept_tail, &accept_senders));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the runtime")?;
    runtime.block_on(relay(&args.upstream, &tail, &senders))
}

/// Reads the upstream stream and appends its frames to the tail.
async fn relay(url: &str, tail: &Mutex<Tail>, senders: &[mpsc::Sender<Wake>]) -> Result<()> {
    let response = reqwest::get(url).await.with_context(|| format!("cannot open {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.context("the upstream stream broke")?);
        let mut start = 0;
        while let Some(end) = buf[start..].windows(2).position(|w| w == b"\n\n") {
            let event = Bytes::copy_from_slice(&buf[start..start + end + 2]);
            start += end + 2;
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if event.starts_with(b"event: snapshot\n") {
                tail.snapshot = Some(event);
                tail.frames.clear();
            } else if event.starts_with(b"event: ") {
                tail.frames.push(event);
                drop(tail);
                for sender in senders {
                    let _ = sender.send(Wake::Frames);
                }
            }
        }
        buf.drain(..start);
    }
    Ok(())
}

/// Accepts clients: reads the request head, writes the response head and the
/// snapshot, and hands the socket to a writer with its cursor at the tail's end.
fn accept(listener: &TcpListener, tail: &Mutex<Tail>, senders: &[mpsc::Sender<Wake>]) {
    let mut next = 0usize;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        if read_head(&mut stream).is_err() {
            continue;
        }
        let (snapshot, cursor) = {
            let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            (tail.snapshot.clone(), tail.frames.len())
        };
        let Some(snapshot) = snapshot else { continue };
        if write_all(&mut stream, &[Bytes::from_static(HEADER), snapshot]).is_err() {
            continue;
        }
        let _ = senders[next % senders.len()].send(Wake::Join(stream, cursor));
        next += 1;
    }
}

/// Reads up to the end of the request head.
fn read_head(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&byte[..n]);
    }
    Ok(())
}

/// One writer thread: on each wake-up, every socket gets every frame it has not seen
/// in one vectored write.
fn writer(tail: &Mutex<Tail>, wakes: &mpsc::Receiver<Wake>) {
    let mut clients: Vec<(TcpStream, usize)> = Vec::new();
    let mut ready: Vec<Bytes> = Vec::new();
    while let Ok(first) = wakes.recv() {
        for wake in std::iter::once(first).chain(wakes.try_iter()) {
            if let Wake::Join(stream, cursor) = wake {
                clients.push((stream, cursor));
            }
        }
        let (base, len) = {
            let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            let base = clients.iter().map(|c| c.1).min().unwrap_or(tail.frames.len());
            ready.clear();
            ready.extend_from_slice(&tail.frames[base.min(tail.frames.len())..]);
            (base, tail.frames.len())
        };
        clients.retain_mut(|(stream, cursor)| {
            let from = cursor.saturating_sub(base);
            let ok = from >= ready.len() || write_all(stream, &ready[from..]).is_ok();
            *cursor = len;
            ok
        });
    }
}

/// Writes `frames` with as few `writev` calls as the kernel allows.
fn write_all(stream: &mut TcpStream, frames: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        let n = stream.write_vectored(bufs)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}
