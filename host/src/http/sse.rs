//! Server-Sent Events, exactly as `spec/dtos.md` section 3 frames them: an encoder of a
//! [`Session`], which owns every policy of the stream.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{ApiError, AppState, Authenticated, Scope, last_event_id, plain, subscribe_error};
use crate::hub::{Frame, FrameKind, StreamKey};
use crate::transport::session::{End, Item, OpenError, Session};

const PING: &[u8] = b": ping\n\n";
const BACKPRESSURE: &[u8] = b"event: backpressure\ndata: {}\n\n";
const SERVER_SHUTDOWN: &[u8] = b"event: server_shutdown\ndata: {}\n\n";
const AUTH_EXPIRED: &[u8] = b"event: auth_expired\ndata: {}\n\n";

/// The SSE bytes of a frame: `event:`, `id:` (snapshots and deltas with a non-empty
/// resourceVersion only) and one `data:` line. Cached in the frame, so every
/// subscriber writes the same bytes.
pub fn encode(frame: &Frame) -> Bytes {
    frame
        .sse
        .get_or_init(|| {
            let mut out = Vec::with_capacity(frame.data.len() + frame.id.len() + 32);
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(frame.kind.name().as_bytes());
            out.push(b'\n');
            let has_id = !matches!(frame.kind, FrameKind::Relist | FrameKind::Error);
            if has_id && !frame.id.is_empty() {
                out.extend_from_slice(b"id: ");
                out.extend_from_slice(frame.id.as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&frame.data);
            out.extend_from_slice(b"\n\n");
            out.into()
        })
        .clone()
}

/// `GET /api/clusters/{cluster}/{kind}/watch`: a disabled kind has no route (404);
/// then the cluster (404 `cluster not found`), the user's RBAC (an event stream of one
/// `error` event, see [`forbidden`]), the actor's
/// cap (429 `too many concurrent watch streams for this user`) and the upstream caps
/// (429/503 JSON) are checked before the stream opens. Authentication (401) comes
/// first, in the router's layer.
pub(super) async fn watch(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    scope: Scope,
    parts: Parts,
) -> Response {
    if !state.enabled.contains(&scope.kind) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no watch stream for kind {:?}", scope.kind),
        )
        .into_response();
    }
    let resume_from = match last_event_id(&parts.headers) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let key = StreamKey {
        cluster: scope.cluster,
        kind: scope.kind,
        namespace: scope.namespace,
        selector: None,
    };
    let session = match Session::open(
        &state,
        actor,
        TRANSPORT,
        key,
        resume_from.as_deref(),
        state.max_stream_duration,
    )
    .await
    {
        Ok(session) => session,
        Err(error) => return refusal(error),
    };
    let info = session.info();
    let mut response = event_stream(Body::from_stream(stream(session)));
    // The direct writer reports its progress in the stream's `/debug/streams` entry.
    response.extensions_mut().insert(info);
    response
}

/// An RBAC refusal, answered as Periscope's own backend answers it: the event stream
/// opens (200) and carries one `event: error` with `{"message": …}`, then ends.
/// `EventSource` gives up for good on a non-200, so a 403 here would leave the SPA
/// "reconnecting" forever; an `error` event is counted, and after a few the SPA polls,
/// where the list route's 403 shows its forbidden state (decision 98).
fn forbidden(message: &str) -> Response {
    tracing::info!(%message, "watch refused by RBAC");
    event_stream(Body::from(encode(&Frame::error(message))))
}

/// `body` as an event stream: the SSE content type and no caching or buffering on the
/// way.
fn event_stream(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The transport name in metrics, logs and `/debug/streams`.
const TRANSPORT: &str = "sse";

/// The HTTP answer to a session that could not open (spec 3.1 and decision 20).
fn refusal(error: OpenError) -> Response {
    match error {
        OpenError::UnknownCluster => plain(StatusCode::NOT_FOUND, "cluster not found"),
        OpenError::UnknownKind(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_kind", error.to_string()).into_response()
        }
        OpenError::Forbidden(message) => forbidden(&message),
        OpenError::Review(error) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "access_review_failed",
            error.to_string(),
        )
        .into_response(),
        OpenError::Limit(_) => {
            let mut response = plain(
                StatusCode::TOO_MANY_REQUESTS,
                "too many concurrent watch streams for this user",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        OpenError::Subscribe(error) => subscribe_error(error),
    }
}

/// The SSE bytes of a session item; `None` for an end the client is not told about
/// (the lifetime cap, a closed upstream), so the body ends with no final frame.
fn bytes_of(item: Item) -> Option<Bytes> {
    Some(match item {
        Item::Frame(frame) => encode(&frame),
        Item::Ping => Bytes::from_static(PING),
        Item::End(End::Upstream(frame)) => encode(&frame),
        Item::End(End::AccessRevoked(message)) => encode(&Frame::error(&message)),
        Item::End(End::AuthExpired | End::Revoked) => Bytes::from_static(AUTH_EXPIRED),
        Item::End(End::Backpressure) => Bytes::from_static(BACKPRESSURE),
        Item::End(End::Shutdown) => Bytes::from_static(SERVER_SHUTDOWN),
        Item::End(End::Lifetime | End::UpstreamClosed) => return None,
    })
}

/// The body: the session's items as SSE bytes, until it ends. A writer asks for the
/// next item only once the previous ones were taken (hyper's buffer, or the socket
/// in `http::direct`), so asking counts as progress in `/debug/streams`.
fn stream(session: Session) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    let info = session.info();
    futures::stream::unfold(session, move |mut session| {
        info.writer.wrote(0);
        async move {
            let bytes = bytes_of(session.next().await?)?;
            session.sent();
            Some((Ok(bytes), session))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn deltas_and_snapshots_carry_ids_others_do_not() {
        let added = Frame::delta(FrameKind::Added, "12".into(), "", br#"{"name":"a"}"#);
        assert_eq!(
            &encode(&added)[..],
            b"event: added\nid: 12\ndata: {\"object\":{\"name\":\"a\"}}\n\n"
        );
        let snapshot = Frame::snapshot("10".into(), &[]);
        assert_eq!(
            &encode(&snapshot)[..],
            b"event: snapshot\nid: 10\ndata: {\"resourceVersion\":\"10\",\"items\":[]}\n\n"
        );
        assert_eq!(
            &encode(&Frame::relist())[..],
            b"event: relist\ndata: {\"reason\":\"gone_410\"}\n\n"
        );
        assert_eq!(
            &encode(&Frame::error("x"))[..],
            b"event: error\ndata: {\"message\":\"x\"}\n\n"
        );
    }

    #[test]
    fn an_empty_resource_version_gives_no_id_line() {
        let snapshot = Frame::snapshot(String::new(), &[]);
        assert!(!encode(&snapshot).starts_with(b"event: snapshot\nid:"));
    }

    #[test]
    fn the_encoding_is_made_once() {
        let frame = Arc::new(Frame::delta(FrameKind::Modified, "1".into(), "", b"{}"));
        let a = encode(&frame);
        let b = encode(&frame);
        assert_eq!(a.as_ptr(), b.as_ptr());
    }
}
