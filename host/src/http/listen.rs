//! The accept loop and connection hygiene: every client connection holds a slot, has
//! a deadline for its request head that bytes trickling in cannot extend, a deadline
//! for each write, and ends at shutdown.
//!
//! A new connection's request line is *read* (never peeked: a peek returns the same
//! bytes forever once the peer has closed, so a closed peer looked like a slow one),
//! with one deadline counted from the accept. A fresh watch request is then served off
//! hyper ([`super::direct`]); everything else goes to hyper's HTTP/1 connection with
//! the bytes already read put back in front ([`Conn`]), its own header read timeout
//! (which hyper also applies to an idle keep-alive connection waiting for its next
//! request) and the same write deadline.
//!
//! Slots: `server.max_connections` connections are served; past it, a connection takes
//! one of [`RESERVE`] slots kept for `/healthz`, `/readyz` and `/metrics`, so probes
//! answer while the rest is full, and anything else there gets 503 JSON; a connection
//! there has 250 ms to send its request line. With the
//! reserve gone too, a connection is closed unread. The default cap is three quarters
//! of the file descriptor limit, which start-up raises to its hard limit
//! ([`raise_fd_limit`]). Architecture decision 70.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::ApiError;
use super::direct::{self, Route};
use crate::metrics::Metrics;

/// Connections kept for the probes (`/healthz`, `/readyz`, `/metrics`) past the cap.
pub const RESERVE: usize = 32;
/// The longest request line looked at; a longer one goes to hyper, which refuses it.
const MAX_LINE: usize = 2048;
/// How long a connection on the probes' reserve has to send its request line: a probe
/// sends it at once, and an idle client must not hold the reserve for long.
const RESERVE_LINE: Duration = Duration::from_millis(250);
/// Once shutdown begins, a writer blocked on a full socket gets at most this long.
const SHUTDOWN_WRITE: Duration = Duration::from_secs(1);

/// The connection settings (`[server]` and `[watch] write_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A whole request head must arrive within this long (also the idle keep-alive).
    pub header_timeout: Duration,
    /// A socket that takes no byte for this long is closed.
    pub write_timeout: Duration,
    /// Connections served at once, besides the probes' reserve.
    pub max_connections: usize,
}

/// Raises the soft limit on open files to the hard limit (a server holds a socket per
/// client), logging both, and returns the limit now in force (`None` if unknown).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current?, limit.maximum);
    let target = hard.unwrap_or(soft.max(1 << 20));
    if target <= soft {
        tracing::info!(soft, ?hard, "open file limit");
        return Some(soft);
    }
    let raised = rustix::process::Rlimit {
        current: Some(target),
        maximum: hard,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = soft, to = target, "open file limit raised to its hard limit");
            Some(target)
        }
        Err(error) => {
            tracing::warn!(soft, ?hard, %error, "cannot raise the open file limit");
            Some(soft)
        }
    }
}

/// The connection cap `server.max_connections = 0` stands for: three quarters of the
/// file descriptor limit, leaving the rest (and the probes' reserve) to upstream
/// connections, plugins and files.
pub fn default_max_connections(fd_limit: Option<u64>) -> usize {
    let limit = fd_limit.unwrap_or(1024);
    usize::try_from(limit / 4 * 3)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVE)
        .max(1)
}

/// A connection's slot: one of the cap's, or one of the probes' reserve.
struct Slot {
    _permit: OwnedSemaphorePermit,
    reserve: bool,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection(-1);
    }
}

/// Accepts connections until `stop` and serves each in a task of `tracker`: fresh
/// watch requests directly, the rest with hyper.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    options: Options,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections.min(Semaphore::MAX_PERMITS)));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let spawner = tracker.clone();
    let last_warned = Arc::new(AtomicU64::new(0));
    tracker.spawn(async move {
        loop {
            let (tcp, addr) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(connection) => connection,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                },
            };
            let (permit, in_reserve) = match slots.clone().try_acquire_owned() {
                Ok(permit) => (permit, false),
                Err(_) => match reserve.clone().try_acquire_owned() {
                    Ok(permit) => (permit, true),
                    Err(_) => {
                        // Everything is taken: closing at once keeps the descriptor free.
                        metrics.connection_refused("full");
                        warn_full(&last_warned, options.max_connections);
                        drop(tcp);
                        continue;
                    }
                },
            };
            metrics.connection(1);
            let slot = Slot {
                _permit: permit,
                reserve: in_reserve,
                metrics: metrics.clone(),
            };
            let (router, stop, metrics) = (router.clone(), stop.clone(), metrics.clone());
            spawner.spawn(serve(tcp, addr, slot, router, options, metrics, stop));
        }
    });
}

/// At most one warning a minute about a full server.
fn warn_full(last: &AtomicU64, max: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let before = last.load(Ordering::Relaxed);
    if now >= before + 60
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            max_connections = max,
            reserve = RESERVE,
            "every connection slot is taken: new connections are closed unread (server.max_connections)"
        );
    }
}

/// As axum's loop: a per-connection error is the client's; anything else (out of file
/// descriptors) is waited out.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, from its request line to its close.
async fn serve(
    mut tcp: TcpStream,
    addr: SocketAddr,
    slot: Slot,
    router: Router,
    options: Options,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let deadline = Instant::now()
        + if slot.reserve {
            options.header_timeout.min(RESERVE_LINE)
        } else {
            options.header_timeout
        };
    let mut head = Vec::with_capacity(1024);
    let route = tokio::select! {
        () = stop.cancelled() => return,
        route = read_line(&mut tcp, &mut head, deadline) => match route {
            Ok(route) => route,
            Err(timed_out) => {
                if timed_out {
                    metrics.connection_timeout("head");
                }
                return;
            }
        },
    };
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold a small frame back
    // up to 40 ms (seen in the load harness as a 33-43 ms latency band).
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let writer = direct::Writer {
        write_timeout: options.write_timeout,
        metrics: metrics.clone(),
        stop: stop.clone(),
    };
    if slot.reserve && route != Route::Probe {
        metrics.connection_refused("busy");
        let busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "the server has server.max_connections connections open; retry shortly",
        );
        let mut response = busy.into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        // A client that keeps its side open must not hold the reserve for long.
        direct::refuse(tcp, response, &writer, RESERVE_LINE).await;
        return;
    }
    if route == Route::Watch {
        direct::serve_watch(tcp, head, deadline, addr, router, writer).await;
        return;
    }
    let conn = Conn::new(tcp, head, options.write_timeout, stop.clone(), metrics);
    serve_hyper(conn, addr, router, options, stop).await;
    drop(slot);
}

/// Reads until the request line is whole (or [`MAX_LINE`] bytes are in), by the
/// deadline. `Err(true)` when the deadline passed, `Err(false)` when the client closed
/// or the socket failed.
async fn read_line(tcp: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<Route, bool> {
    loop {
        if let Some(route) = direct::classify(buf, MAX_LINE) {
            return Ok(route);
        }
        match tokio::time::timeout_at(deadline, tcp.read_buf(buf)).await {
            Err(_) => return Err(true),
            Ok(Ok(0) | Err(_)) => return Err(false),
            Ok(Ok(_)) => {}
        }
    }
}

/// Serves a connection with hyper's HTTP/1 until it closes; at shutdown it finishes
/// the request in flight and closes.
async fn serve_hyper(conn: Conn, addr: SocketAddr, router: Router, options: Options, stop: CancellationToken) {
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(addr));
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(conn), service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended");
            }
            return;
        }
        () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended");
    }
}

/// A client connection as hyper sees it: the bytes the accept loop already read come
/// first, and a write the socket takes nothing of for the write timeout fails (a
/// shorter wait once shutdown began), so a client that stops reading cannot hold its
/// connection, its stream's slot or the shutdown.
pub struct Conn {
    tcp: TcpStream,
    prefix: Vec<u8>,
    read: usize,
    write_timeout: Duration,
    stop: CancellationToken,
    stall: Option<Stall>,
    metrics: Arc<Metrics>,
}

/// A blocked write's deadline, and the shutdown it also watches.
struct Stall {
    deadline: Pin<Box<Sleep>>,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    stopping: bool,
}

impl Conn {
    fn new(
        tcp: TcpStream,
        prefix: Vec<u8>,
        write_timeout: Duration,
        stop: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Conn {
        Conn {
            tcp,
            prefix,
            read: 0,
            write_timeout,
            stop,
            stall: None,
            metrics,
        }
    }

    /// After the socket said `Pending`: fails once the deadline passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let stall = self.stall.get_or_insert_with(|| Stall {
            deadline: Box::pin(tokio::time::sleep(self.write_timeout)),
            stop: Box::pin(self.stop.clone().cancelled_owned()),
            stopping: false,
        });
        if !stall.stopping && stall.stop.as_mut().poll(cx).is_ready() {
            stall.stopping = true;
            let sooner = Instant::now() + SHUTDOWN_WRITE;
            if sooner < stall.deadline.deadline() {
                stall.deadline.as_mut().reset(sooner);
            }
        }
        ready!(stall.deadline.as_mut().poll(cx));
        self.metrics.connection_timeout("write");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no bytes (watch.write_timeout)",
        ))
    }

    fn written<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.stall = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.read);
            buf.put_slice(&this.prefix[this.read..this.read + n]);
            this.read += n;
            if this.read == this.prefix.len() {
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.tcp).poll_flush(cx);
        self.written(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_a_quarter_of_the_descriptors() {
        assert_eq!(default_max_connections(Some(1024)), 768 - RESERVE);
        assert_eq!(default_max_connections(Some(4)), 1);
        assert!(default_max_connections(Some(u64::MAX)) > 1 << 40);
    }
}
