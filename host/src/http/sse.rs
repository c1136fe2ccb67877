//! Server-Sent Events, exactly as `spec/dtos.md` section 3 frames them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState, Authenticated, Scope, authorize, last_event_id, plain, subscribe_error};
use crate::auth::rbac::{Access, Authorizer};
use crate::auth::{Actor, Authenticator};
use crate::cluster::Cluster;
use crate::hub::{Frame, FrameKind, Initial, StreamKey, Subscription};
use crate::limits::Admission;
use crate::metrics::Metrics;
use crate::plugin::Plugin;
use prometheus_client::metrics::counter::Counter;

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
/// then the cluster (404 `cluster not found`), the user's RBAC (403 JSON), the actor's
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
    let Some(cluster) = state.hub.clusters().get(&scope.cluster).cloned() else {
        return plain(StatusCode::NOT_FOUND, "cluster not found");
    };
    let Some(plugin) = state.hub.registry().get(&scope.kind).cloned() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_kind",
            format!("unknown kind {:?}", scope.kind),
        )
        .into_response();
    };
    let access = match authorize(
        &state,
        &cluster,
        &actor,
        plugin.info(),
        scope.namespace.as_deref(),
        VERBS,
    )
    .await
    {
        Ok(access) => access,
        Err(error) => return error.into_response(),
    };
    let key = StreamKey {
        cluster: scope.cluster,
        kind: scope.kind,
        namespace: scope.namespace,
    };
    let admission = match state.streams.admit(&actor, TRANSPORT, &key) {
        Ok(admission) => admission,
        Err(error) => {
            tracing::info!(actor = %actor.subject, cluster = %key.cluster, kind = %key.kind, "{error}");
            let mut response = plain(
                StatusCode::TOO_MANY_REQUESTS,
                "too many concurrent watch streams for this user",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
    };
    let subscription = match state
        .hub
        .subscribe(key, resume_from.as_deref(), access.only(), &actor.quota)
    {
        Ok(subscription) => subscription,
        Err(error) => {
            tracing::info!(actor = %actor.subject, "{error}");
            return subscribe_error(error);
        }
    };
    admission.info.upstream.set(subscription.health());
    let key = subscription.key();
    let span = tracing::info_span!(
        "stream",
        stream.id = admission.info.id,
        transport = TRANSPORT,
        cluster = %key.cluster,
        kind = %key.kind,
        namespace = key.namespace_label(),
        actor = %actor.subject,
        close_reason = tracing::field::Empty,
    );
    span.in_scope(|| {
        tracing::info!(
            resume = resume_from.is_some(),
            partitioned = access.only().is_some(),
            "stream opened"
        )
    });
    let lifetime =
        (!state.max_stream_duration.is_zero()).then(|| tokio::time::Instant::now() + state.max_stream_duration);
    let rbac = state.authorizer.is_enabled().then(|| Rbac {
        cluster,
        plugin,
        access,
        recheck: tokio::time::interval_at(
            tokio::time::Instant::now() + state.authorizer.ttl() / 2,
            state.authorizer.ttl() / 2,
        ),
    });
    let body = Body::from_stream(stream(Stream::new(
        subscription,
        admission,
        actor,
        lifetime,
        rbac,
        &state,
        span,
    )));
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

/// What a stream's user needs, and re-checks while it runs.
const VERBS: &[&str] = &["list", "watch"];

/// A stream's RBAC state: what its user may see, re-checked every half TTL.
struct Rbac {
    cluster: Cluster,
    plugin: Arc<Plugin>,
    access: Access,
    recheck: tokio::time::Interval,
}

/// The state of one SSE body. Dropping it (the client went away, or the stream ended)
/// leaves the hub, releases the actor's slot and logs the close reason.
struct Stream {
    pending: VecDeque<Bytes>,
    subscription: Subscription,
    admission: Admission,
    actor: Actor,
    auth: Arc<Authenticator>,
    authorizer: Arc<Authorizer>,
    rbac: Option<Rbac>,
    metrics: Arc<Metrics>,
    delivered: Counter,
    heartbeat: tokio::time::Interval,
    lifetime: Option<tokio::time::Instant>,
    /// When the actor's token expires: the stream then ends with `auth_expired`.
    expiry: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
    span: tracing::Span,
    done: bool,
    close_reason: &'static str,
}

impl Stream {
    fn new(
        subscription: Subscription,
        admission: Admission,
        actor: Actor,
        lifetime: Option<tokio::time::Instant>,
        rbac: Option<Rbac>,
        state: &AppState,
        span: tracing::Span,
    ) -> Stream {
        let delivered = state.metrics.events_delivered(TRANSPORT, &admission.info.kind);
        let expiry = actor.expires_at.map(expiry_instant);
        let mut stream = Stream {
            pending: VecDeque::new(),
            subscription,
            admission,
            actor,
            auth: state.auth.clone(),
            authorizer: state.authorizer.clone(),
            rbac,
            metrics: state.metrics.clone(),
            delivered,
            expiry,
            heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + state.heartbeat, state.heartbeat),
            lifetime,
            shutdown: state.shutdown.clone(),
            span,
            done: false,
            close_reason: "client_gone",
        };
        match &stream.subscription.initial {
            Initial::Snapshot(frame) => stream.pending.push_back(encode(frame)),
            Initial::Resume(frames) => stream.pending.extend(frames.iter().map(|f| encode(f))),
            Initial::Pending => {}
            Initial::Failed(frame) => {
                stream.pending.push_back(encode(frame));
                stream.finish("error");
            }
        }
        stream
    }

    fn finish(&mut self, reason: &'static str) {
        self.done = true;
        self.close_reason = reason;
    }

    /// The actor was revoked since the stream opened (expiry has its own timer).
    fn revoked(&self) -> bool {
        self.auth.is_revoked(&self.actor.subject)
    }

    /// Whether this subscriber may see `frame`: a partitioned subscriber sees only
    /// deltas of its namespaces, and a first snapshot made for the whole scope (the
    /// upstream was still listing when it joined) is replaced by its own.
    fn visible(&self, frame: &Arc<Frame>) -> Option<Bytes> {
        let only = self.rbac.as_ref().and_then(|rbac| rbac.access.only());
        match only {
            None => Some(encode(frame)),
            Some(only) if frame.is_delta() => only.contains(&frame.namespace).then(|| encode(frame)),
            Some(only) if frame.kind == FrameKind::Snapshot => {
                self.subscription.snapshot_of(only).map(|own| encode(&own))
            }
            Some(_) => Some(encode(frame)),
        }
    }

    /// Re-checks the user's access. `Some` ends or resets the stream: an `error` frame
    /// when access was revoked, a fresh snapshot when the partition changed.
    async fn recheck(&mut self) -> Option<Bytes> {
        let rbac = self.rbac.as_mut()?;
        let info = rbac.plugin.info();
        let resource = crate::auth::rbac::Resource {
            group: &info.api_group,
            plural: &info.plural,
            namespaced: info.namespaced,
        };
        let namespace = self.subscription.key().namespace.clone();
        let access = match self
            .authorizer
            .access(&rbac.cluster, &self.actor, resource, namespace.as_deref(), VERBS)
            .await
        {
            Ok(access) => access,
            Err(error) => {
                self.span
                    .in_scope(|| tracing::warn!(%error, "access re-check failed; the stream keeps its last decision"));
                return None;
            }
        };
        if access == rbac.access {
            return None;
        }
        rbac.access = access;
        match &rbac.access {
            Access::Denied => {
                self.metrics.rbac_denied(&rbac.cluster.name, &info.token);
                let message = format!(
                    "access revoked: user {:?} may no longer list and watch {}",
                    self.actor.username, info.plural
                );
                self.span.in_scope(|| tracing::info!("{message}"));
                self.finish("access_revoked");
                Some(encode(&Frame::error(&message)))
            }
            Access::All => self.subscription.snapshot_of_all().map(|frame| encode(&frame)),
            Access::Namespaces(only) => {
                let only = only.clone();
                self.span
                    .in_scope(|| tracing::info!(namespaces = only.len(), "partition changed"));
                self.subscription.snapshot_of(&only).map(|frame| encode(&frame))
            }
        }
    }

    /// The next bytes to write, or `None` at the end.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(bytes) = self.pending.pop_front() {
            return Some(bytes);
        }
        if self.done {
            return None;
        }
        let bytes = loop {
            let recheck = async {
                match self.rbac.as_mut() {
                    Some(rbac) => {
                        rbac.recheck.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            break tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.finish("shutdown");
                    Bytes::from_static(SERVER_SHUTDOWN)
                }
                () = sleep_until(self.expiry) => {
                    self.finish("auth_expired");
                    Bytes::from_static(AUTH_EXPIRED)
                }
                () = sleep_until(self.lifetime) => {
                    self.close_reason = "lifetime";
                    return None;
                }
                () = recheck => match self.recheck().await {
                    Some(bytes) => bytes,
                    None => continue,
                },
                received = self.subscription.frames.recv() => match received {
                    _ if self.revoked() => {
                        self.finish("auth_expired");
                        Bytes::from_static(AUTH_EXPIRED)
                    }
                    Ok(frame) => {
                        if frame.kind == FrameKind::Error {
                            self.finish("error");
                        }
                        self.admission.info.queue_depth.store(self.subscription.frames.len(), Ordering::Relaxed);
                        match self.visible(&frame) {
                            Some(bytes) => bytes,
                            None => continue,
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        self.span.in_scope(|| tracing::debug!(missed, "subscriber lagged"));
                        self.metrics.backpressure_close(TRANSPORT, &self.admission.info.kind);
                        self.finish("backpressure");
                        Bytes::from_static(BACKPRESSURE)
                    }
                    Err(RecvError::Closed) => {
                        self.close_reason = "upstream_closed";
                        return None;
                    }
                },
                _ = self.heartbeat.tick() => {
                    if self.revoked() {
                        self.finish("auth_expired");
                        Bytes::from_static(AUTH_EXPIRED)
                    } else {
                        Bytes::from_static(PING)
                    }
                }
            };
        };
        self.admission.info.events_sent.fetch_add(1, Ordering::Relaxed);
        self.delivered.inc();
        Some(bytes)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.span.record("close_reason", self.close_reason);
        let sent = self.admission.info.events_sent.load(Ordering::Relaxed);
        self.span
            .in_scope(|| tracing::info!(reason = self.close_reason, sent, "stream closed"));
    }
}

/// The monotonic instant of a Unix expiry time (now, if it has passed).
fn expiry_instant(exp: u64) -> tokio::time::Instant {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp);
    let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The body: initial frames, live frames, pings, and a final frame when the stream ends
/// for a reason the client must know.
fn stream(state: Stream) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        let bytes = state.next().await?;
        Some((Ok(bytes), state))
    })
}

#[cfg(test)]
mod tests {
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
