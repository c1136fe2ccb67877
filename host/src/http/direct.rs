//! SSE connections written directly to the socket, without hyper's per-connection
//! buffers.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB header buffer for the whole life of
//! every HTTP/1 connection (`INIT_BUFFER_SIZE`, not configurable): most of what an open
//! event stream would cost. So the accept loop looks at the request line of each new
//! connection (a `peek`, nothing consumed): a `GET …/watch` is taken here, its head
//! parsed with `httparse`, the request run through the same router (authentication,
//! validation, the session), and the event stream's bytes written straight to the
//! socket, close-delimited. The head's buffer is dropped before the stream starts.
//! Every other connection — and a watch request that arrives on a connection already
//! used for something else — goes to hyper untouched (architecture decision 62).

use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::ApiError;

/// The longest request head taken here (hyper's own limit is about 400 KiB; a watch
/// request carries a path, a token and a `Last-Event-ID`).
const MAX_HEAD: usize = 64 * 1024;
/// Headers per request, as hyper's default.
const MAX_HEADERS: usize = 100;
/// How long a new connection may take to send its request line, and then its head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames ready together are written with one `writev`, at most this many.
const BATCH: usize = 16;

/// The connections hyper serves: everything that is not a fresh watch request.
pub struct HyperConnections {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for HyperConnections {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(connection) => connection,
            // The accept loop stopped (shutdown): hand out nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Accepts connections until `stop`, serving fresh watch requests directly and passing
/// the rest to the returned listener. Every task it starts is in `tracker`.
pub fn accept(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    tracker: TaskTracker,
) -> io::Result<HyperConnections> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(1024);
    let spawner = tracker.clone();
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
            let (tx, router, stop) = (tx.clone(), router.clone(), stop.clone());
            spawner.spawn(async move {
                let direct = tokio::select! {
                    () = stop.cancelled() => return,
                    direct = is_watch_request(&tcp) => direct,
                };
                if direct {
                    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold a
                    // frame back up to 40 ms.
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    serve_watch(tcp, addr, router).await;
                } else {
                    let _ = tx.send((tcp, addr)).await;
                }
            });
        }
    });
    Ok(HyperConnections { rx, local })
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

/// Whether the connection's first request line is `GET /api/clusters/…/watch[?…]`,
/// looked at without consuming it. Anything unclear goes to hyper.
async fn is_watch_request(tcp: &TcpStream) -> bool {
    const PREFIX: &[u8] = b"GET /api/clusters/";
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + HEAD_TIMEOUT;
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false,
        };
        let seen = &buf[..n];
        if !seen.starts_with(&PREFIX[..n.min(PREFIX.len())]) {
            return false;
        }
        if let Some(end) = seen.iter().position(|&b| b == b'\n') {
            return is_watch_line(&seen[..end]);
        }
        if n == buf.len() {
            return false;
        }
        // The line is still arriving; `peek` would return the same bytes at once.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

/// Serves one watch request on its own connection, then closes it.
async fn serve_watch(mut tcp: TcpStream, addr: SocketAddr, router: Router) {
    // Boxed, so the routing futures are not part of the state every open stream keeps.
    let Some(response) = Box::pin(respond(&mut tcp, addr, router)).await else {
        return;
    };
    let written = if is_event_stream(&response) {
        write_stream(&tcp, response).await
    } else {
        write_whole(&tcp, response).await
    };
    if written.is_ok() {
        // Shut the write side so the client reads to the end, then wait briefly for it
        // to close: closing with its input unread would reset the connection.
        if tcp.shutdown().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), peer_closed(&tcp)).await;
        }
    }
}

/// The router's response to the connection's request, or the refusal of a head that
/// does not parse; `None` when the client left before sending one.
async fn respond(tcp: &mut TcpStream, addr: SocketAddr, router: Router) -> Option<Response<Body>> {
    match read_head(tcp).await {
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

/// Reads and parses the request head. `Err(None)`: the client went away or never
/// finished; `Err(Some(_))`: a refusal to send.
async fn read_head(tcp: &mut TcpStream) -> Result<Request<Body>, Option<ApiError>> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut buf = Vec::with_capacity(2048);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Err(None),
            Ok(Ok(_)) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => return build_request(&parsed).map_err(Some),
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(Some(ApiError::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large",
                    format!("the request head is over {MAX_HEAD} bytes or {MAX_HEADERS} headers"),
                )));
            }
            Err(error) => {
                return Err(Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("malformed HTTP request: {error}"),
                )));
            }
        }
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
async fn write_whole(tcp: &TcpStream, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_HEAD).await.map_err(io::Error::other)?;
    let head = head(&Response::from_parts(parts, Body::empty()), Some(body.len()));
    write_all(tcp, &mut [io::IoSlice::new(&head), io::IoSlice::new(&body)]).await
}

/// The event stream: the head, then every chunk the session yields as it comes, the
/// chunks ready together in one `writev`, until the session ends (`Ok`) or the client
/// leaves.
async fn write_stream(tcp: &TcpStream, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let head = head(&Response::from_parts(parts, Body::empty()), None);
    write_all(tcp, &mut [io::IoSlice::new(&head)]).await?;
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
        write_all(tcp, &mut slices[..ready.len()]).await?;
        ready.clear();
    }
    Ok(())
}

/// Writes every slice, vectored, waiting for the socket when it is full.
async fn write_all(tcp: &TcpStream, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match tcp.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
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
