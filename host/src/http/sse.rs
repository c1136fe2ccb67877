//! Server-Sent Events, exactly as `spec/dtos.md` section 3 frames them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState, plain};
use crate::hub::{Frame, FrameKind, Initial, StreamKey, SubscribeError, Subscription};

const PING: &[u8] = b": ping\n\n";
const BACKPRESSURE: &[u8] = b"event: backpressure\ndata: {}\n\n";
const SERVER_SHUTDOWN: &[u8] = b"event: server_shutdown\ndata: {}\n\n";

/// `?namespace=` of watch and list requests; empty means all namespaces.
#[derive(Debug, Deserialize)]
pub(super) struct NamespaceQuery {
    namespace: Option<String>,
}

impl NamespaceQuery {
    pub(super) fn namespace(self) -> Option<String> {
        self.namespace.filter(|ns| !ns.is_empty())
    }
}

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

/// `GET /api/clusters/{cluster}/{kind}/watch`.
pub(super) async fn watch(
    State(state): State<AppState>,
    Path((cluster, kind)): Path<(String, String)>,
    Query(query): Query<NamespaceQuery>,
    headers: HeaderMap,
) -> Response {
    if !state.enabled.contains(&kind) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no watch stream for kind {kind:?}"),
        )
        .into_response();
    }
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let key = StreamKey {
        cluster,
        kind,
        namespace: query.namespace(),
    };
    let subscription = match state.hub.subscribe(key, resume_from.as_deref()) {
        Ok(subscription) => subscription,
        Err(SubscribeError::UnknownCluster) => return plain(StatusCode::NOT_FOUND, "cluster not found"),
        Err(error @ SubscribeError::UnknownKind(_)) => {
            return ApiError::new(StatusCode::NOT_FOUND, "unknown_kind", error.to_string()).into_response();
        }
    };
    tracing::debug!(key = ?subscription.key(), resume = ?resume_from, "sse stream opened");
    let body = Body::from_stream(stream(subscription, state.heartbeat, state.shutdown.clone()));
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

/// The state of one SSE body.
struct Stream {
    pending: VecDeque<Bytes>,
    subscription: Subscription,
    heartbeat: tokio::time::Interval,
    shutdown: CancellationToken,
    done: bool,
}

/// The frames of a stream: the initial frames, then live frames, pings every
/// `heartbeat`, and a final `backpressure`, `server_shutdown` or `error` frame when
/// the stream ends for one of those reasons. Dropping it (client gone) leaves the hub.
fn stream(
    subscription: Subscription,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    let mut pending = VecDeque::new();
    let mut done = false;
    match &subscription.initial {
        Initial::Snapshot(frame) => pending.push_back(encode(frame)),
        Initial::Resume(frames) => pending.extend(frames.iter().map(|f| encode(f))),
        Initial::Pending => {}
        Initial::Failed(frame) => {
            pending.push_back(encode(frame));
            done = true;
        }
    }
    let state = Stream {
        pending,
        subscription,
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat),
        shutdown,
        done,
    };
    futures::stream::unfold(state, |mut state| async move {
        if let Some(bytes) = state.pending.pop_front() {
            return Some((Ok(bytes), state));
        }
        if state.done {
            return None;
        }
        let bytes = tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                state.done = true;
                Bytes::from_static(SERVER_SHUTDOWN)
            }
            received = state.subscription.frames.recv() => match received {
                Ok(frame) => {
                    state.done = frame.kind == FrameKind::Error;
                    encode(&frame)
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(key = ?state.subscription.key(), missed, "subscriber lagged, closing with backpressure");
                    state.done = true;
                    Bytes::from_static(BACKPRESSURE)
                }
                Err(RecvError::Closed) => return None,
            },
            _ = state.heartbeat.tick() => Bytes::from_static(PING),
        };
        Some((Ok(bytes), state))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn deltas_and_snapshots_carry_ids_others_do_not() {
        let added = Frame::delta(FrameKind::Added, "12".into(), br#"{"name":"a"}"#);
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
        let frame = Arc::new(Frame::delta(FrameKind::Modified, "1".into(), b"{}"));
        let a = encode(&frame);
        let b = encode(&frame);
        assert_eq!(a.as_ptr(), b.as_ptr());
    }
}
