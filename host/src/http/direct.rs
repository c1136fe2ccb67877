//! SSE connections written directly to the socket, without hyper's per-connection
//! buffers.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB header buffer for the whole life of
//! every HTTP/1 connection (`INIT_BUFFER_SIZE`, not configurable): most of what an open
//! event stream would cost. So the accept loop ([`super::listen`]) reads the request
//! line of each new connection and [`classify`]es it: a `GET …/watch` is taken here,
//! its head parsed with `httparse`, the request run through the same router
//! (authentication, validation, the session), and the event stream's bytes written
//! straight to the socket, close-delimited. The head's buffer is dropped before the
//! stream starts. Every other connection — and a watch request that arrives on a
//! connection already used for something else — goes to hyper (architecture decision
//! 62). Every write has a deadline ([`Writer`], decision 71).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::ApiError;
use crate::limits::StreamInfo;
use crate::metrics::Metrics;

/// The longest request head taken here (hyper's own limit is about 400 KiB; a watch
/// request carries a path, a token and a `Last-Event-ID`).
pub const MAX_HEAD: usize = 64 * 1024;
/// Headers per request, as hyper's default.
const MAX_HEADERS: usize = 100;
/// Frames ready together are written with one `writev`, at most this many.
const BATCH: usize = 16;
/// Once shutdown begins, a write blocked on a full socket gets at most this long.
const SHUTDOWN_WRITE: Duration = Duration::from_secs(1);

/// What a connection's first request line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/clusters/…/watch`: served here.
    Watch,
    /// `GET /healthz`, `/readyz` or `/metrics`: served even past the connection cap.
    Probe,
    /// Anything else, whole or not: hyper's.
    Other,
}

/// The route of a connection whose first bytes are `buf`, or `None` while its request
/// line is still arriving (and shorter than `max_line`).
pub fn classify(buf: &[u8], max_line: usize) -> Option<Route> {
    let seen = &buf[..buf.len().min(max_line)];
    let Some(end) = seen.iter().position(|&b| b == b'\n') else {
        return (buf.len() >= max_line).then_some(Route::Other);
    };
    let line = &seen[..end];
    Some(if is_watch_line(line) {
        Route::Watch
    } else if is_probe_line(line) {
        Route::Probe
    } else {
        Route::Other
    })
}

/// How a stream's writes are bounded: the write deadline, shutdown, and where a
/// stalled writer is counted.
#[derive(Clone)]
pub struct Writer {
    /// A socket that takes no byte for this long is closed (`watch.write_timeout`).
    pub write_timeout: Duration,
    /// Where write timeouts are counted.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown: a blocked write then gets [`SHUTDOWN_WRITE`] at most.
    pub stop: CancellationToken,
}

/// The request line of a probe: `GET`/`HEAD` of `/healthz`, `/readyz` or `/metrics`.
fn is_probe_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b"GET" | b"HEAD"), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    matches!(path, b"/healthz" | b"/readyz" | b"/metrics") && version.starts_with(b"HTTP/1.")
}

/// `GET <path>[?query] HTTP/1.x` with a path under `/api/clusters/` ending in `/watch`.
fn is_watch_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b"GET"), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    path.starts_with(b"/api/clusters/") && path.ends_with(b"/watch") && version.starts_with(b"HTTP/1.")
}

/// Serves one watch request on its own connection, then closes it. `head` holds what
/// was read of the request so far; the rest of it must arrive by `deadline`.
pub async fn serve_watch(
    mut tcp: TcpStream,
    head: Vec<u8>,
    deadline: Instant,
    addr: SocketAddr,
    router: Router,
    writer: Writer,
) {
    // Boxed, so the routing futures are not part of the state every open stream keeps.
    let Some(response) = Box::pin(respond(&mut tcp, head, deadline, addr, router, &writer.metrics)).await else {
        return;
    };
    let written = if is_event_stream(&response) {
        write_stream(&tcp, response, &writer).await
    } else {
        write_whole(&tcp, response, &writer).await
    };
    finish(tcp, written, Duration::from_secs(2)).await;
}

/// Writes a refusal (a whole response) and closes the connection, waiting at most
/// `linger` for the client to close first.
pub async fn refuse(tcp: TcpStream, response: Response<Body>, writer: &Writer, linger: Duration) {
    let written = write_whole(&tcp, response, writer).await;
    finish(tcp, written, linger).await;
}

/// After a response: shut the write side so the client reads to the end, then wait
/// up to `linger` for it to close (closing with its input unread would reset the
/// connection).
async fn finish(mut tcp: TcpStream, written: io::Result<()>, linger: Duration) {
    if written.is_ok() && tcp.shutdown().await.is_ok() {
        let _ = tokio::time::timeout(linger, peer_closed(&tcp)).await;
    }
}

/// The router's response to the connection's request, or the refusal of a head that
/// does not parse; `None` when the client left or the deadline passed first.
async fn respond(
    tcp: &mut TcpStream,
    head: Vec<u8>,
    deadline: Instant,
    addr: SocketAddr,
    router: Router,
    metrics: &Metrics,
) -> Option<Response<Body>> {
    match read_head(tcp, head, deadline, metrics).await {
        Ok(mut request) => {
            request.extensions_mut().insert(ConnectInfo(addr));
            match router.oneshot(request).await {
                Ok(response) => Some(response),
                Err(never) => match never {},
            }
        }
        Err(Some(refusal)) => Some(refusal.into_response()),
        Err(None) => None,
    }
}

/// Reads and parses the request head by the deadline. `Err(None)`: the client went
/// away or never finished; `Err(Some(_))`: a refusal to send.
async fn read_head(
    tcp: &mut TcpStream,
    mut buf: Vec<u8>,
    deadline: Instant,
    metrics: &Metrics,
) -> Result<Request<Body>, Option<ApiError>> {
    loop {
        if let Some(request) = parse_head(&buf).map_err(Some)? {
            return Ok(request);
        }
        match tokio::time::timeout_at(deadline, tcp.read_buf(&mut buf)).await {
            Err(_) => {
                metrics.connection_timeout("head");
                return Err(None);
            }
            Ok(Ok(0) | Err(_)) => return Err(None),
            Ok(Ok(_)) => {}
        }
    }
}

/// Parses a watch request's head: `Ok(None)` while it is incomplete (and within
/// [`MAX_HEAD`]), `Err(refusal)` for a head that is too large or malformed.
pub fn parse_head(buf: &[u8]) -> Result<Option<Request<Body>>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(_)) => build_request(&parsed).map(Some),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request head is over {MAX_HEAD} bytes or {MAX_HEADERS} headers"),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("malformed HTTP request: {error}"),
        )),
    }
}

fn build_request(parsed: &httparse::Request<'_, '_>) -> Result<Request<Body>, ApiError> {
    let bad = |what: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", what.to_string());
    let mut request = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    for h in parsed.headers.iter() {
        let is_body = h.name.eq_ignore_ascii_case("content-length") || h.name.eq_ignore_ascii_case("transfer-encoding");
        if is_body && h.value != b"0" {
            return Err(bad("a watch request has no body"));
        }
        request = request.header(h.name, h.value);
    }
    request
        .body(Body::empty())
        .map_err(|error| bad(&format!("malformed HTTP request: {error}")))
}

fn is_event_stream(response: &Response<Body>) -> bool {
    response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// The status line and headers, ending with `Connection: close` (the body is
/// close-delimited, or `Content-Length` long when given).
fn head(response: &Response<Body>, content_length: Option<usize>) -> Vec<u8> {
    let status = response.status();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in response.headers() {
        if [header::CONNECTION, header::CONTENT_LENGTH, header::TRANSFER_ENCODING].contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"date: ");
    out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(length) = content_length {
        out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// A refusal or any other whole response: head and body.
async fn write_whole(tcp: &TcpStream, response: Response<Body>, writer: &Writer) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_HEAD).await.map_err(io::Error::other)?;
    let head = head(&Response::from_parts(parts, Body::empty()), Some(body.len()));
    write_all(
        tcp,
        &mut [io::IoSlice::new(&head), io::IoSlice::new(&body)],
        writer,
        None,
    )
    .await
}

/// The event stream: the head, then every chunk the session yields as it comes, the
/// chunks ready together in one `writev`, until the session ends (`Ok`) or the client
/// leaves or stops reading.
async fn write_stream(tcp: &TcpStream, response: Response<Body>, writer: &Writer) -> io::Result<()> {
    let info = response.extensions().get::<Arc<StreamInfo>>().cloned();
    let (parts, body) = response.into_parts();
    let head = head(&Response::from_parts(parts, Body::empty()), None);
    write_all(tcp, &mut [io::IoSlice::new(&head)], writer, info.as_deref()).await?;
    drop(head);
    let mut chunks = body.into_data_stream();
    let left = peer_closed(tcp);
    tokio::pin!(left);
    let mut ready: Vec<bytes::Bytes> = Vec::new();
    let mut ended = false;
    while !ended {
        // Everything the session has ready, in one pass: the poll that finds nothing
        // more is also the one that registers the next wake-up, so a frame costs no
        // extra poll of the session.
        std::future::poll_fn(|cx| {
            if left.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionAborted)));
            }
            while ready.len() < BATCH {
                match chunks.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(chunk))) => ready.push(chunk),
                    Poll::Ready(_) => {
                        ended = true;
                        break;
                    }
                    Poll::Pending if ready.is_empty() => return Poll::Pending,
                    Poll::Pending => break,
                }
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        let mut slices = [io::IoSlice::new(&[]); BATCH];
        for (slice, chunk) in slices.iter_mut().zip(&ready) {
            *slice = io::IoSlice::new(chunk);
        }
        let written = write_all(tcp, &mut slices[..ready.len()], writer, info.as_deref()).await;
        if let (Err(error), Some(info)) = (&written, &info)
            && error.kind() == io::ErrorKind::TimedOut
        {
            // A reader that stopped reading is closed as one that fell behind.
            info.writer.stalled();
            writer.metrics.backpressure_close("sse", &info.kind);
        }
        written?;
        ready.clear();
    }
    Ok(())
}

/// Writes every slice, vectored, waiting for the socket when it is full — but not for
/// longer than the write timeout without progress (a shorter wait once shutdown
/// began). Progress is reported in the stream's `/debug/streams` entry.
async fn write_all(
    tcp: &TcpStream,
    mut slices: &mut [io::IoSlice<'_>],
    writer: &Writer,
    info: Option<&StreamInfo>,
) -> io::Result<()> {
    if let Some(info) = info {
        info.writer.pending(slices.iter().map(|s| s.len() as u64).sum());
    }
    let mut deadline = Instant::now() + writer.write_timeout;
    let mut stopping = false;
    while !slices.is_empty() {
        match tcp.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                io::IoSlice::advance_slices(&mut slices, n);
                if let Some(info) = info {
                    info.writer.wrote(n as u64);
                }
                deadline = Instant::now() + if stopping { SHUTDOWN_WRITE } else { writer.write_timeout };
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    ready = tcp.writable() => ready?,
                    () = tokio::time::sleep_until(deadline) => {
                        writer.metrics.connection_timeout("write");
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "the client took no bytes"));
                    }
                    () = writer.stop.cancelled(), if !stopping => {
                        stopping = true;
                        deadline = deadline.min(Instant::now() + SHUTDOWN_WRITE);
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Resolves when the client closes its side (or the socket fails); bytes it sends
/// after its request are read and dropped.
async fn peer_closed(tcp: &TcpStream) {
    let mut sink = [0u8; 64];
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        match tcp.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_watch_request_lines_are_taken() {
        for (line, taken) in [
            (&b"GET /api/clusters/demo/pods/watch HTTP/1.1\r"[..], true),
            (b"GET /api/clusters/demo/pods/watch?namespace=shop HTTP/1.1\r", true),
            (b"GET /api/clusters/demo/pods/watch HTTP/1.0", true),
            (b"GET /api/clusters/demo/pods HTTP/1.1\r", false),
            (b"GET /api/clusters/demo/pods/watch/extra HTTP/1.1\r", false),
            (b"POST /api/clusters/demo/pods/watch HTTP/1.1\r", false),
            (b"GET /api/clusters/demo/pods/watch HTTP/2.0\r", false),
            (b"GET /api/clusters/demo/pods/watch\r", false),
            (b"GET /api/clusters/demo/pods/watch HTTP/1.1 extra\r", false),
        ] {
            assert_eq!(is_watch_line(line), taken, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn a_stream_head_is_close_delimited_and_keeps_the_handlers_headers() {
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let text = String::from_utf8(head(&response, None)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-type: text/event-stream\r\n"), "{text}");
        assert!(!text.contains("keep-alive"), "{text}");
        assert!(!text.contains("content-length"), "{text}");
        assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
    }
}
