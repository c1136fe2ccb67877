//! One stream session: every policy of a live stream, whatever carries it.
//!
//! [`Session::open`] checks, in this order, the cluster, the kind, the actor's
//! Kubernetes RBAC, the per-actor cap (shared by every transport) and the hub's
//! upstream caps, then subscribes and opens the stream's span. The session then yields
//! [`Item`]s: frames the subscriber may see (its RBAC partition applied), pings when
//! nothing happened for a heartbeat, and one last [`End`] that says why it stopped:
//!
//! - the upstream failed (its `error` frame), or closed;
//! - the actor's token expired (a timer at `exp`) or its subject was revoked (checked
//!   on every upstream read and every heartbeat);
//! - a periodic RBAC re-check (every half `auth.rbac_ttl`) refused the actor;
//! - the subscriber fell a whole queue behind (backpressure);
//! - the server is shutting down;
//! - the lifetime cap passed.
//!
//! A source that is not a hub subscription (a container's log) gets the same policies
//! from a [`Lease`]: RBAC at open and on re-checks, the cap, expiry, revocation,
//! shutdown and the lifetime, around each read of the source.
//!
//! A transport only encodes: SSE writes frames and its fixed control frames, GraphQL
//! writes `next`, `error` and `complete`. Neither re-implements a policy. The hub knows
//! nothing of sessions, and sessions know no wire format.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::auth::rbac::{Access, Authorizer, Resource, ReviewError};
use crate::auth::{Actor, Authenticator};
use crate::cluster::Cluster;
use crate::http::AppState;
use crate::hub::{Frame, FrameKind, Initial, Mapper, StreamKey, SubscribeError, Subscription};
use crate::limits::{Admission, LimitError};
use crate::metrics::Metrics;

/// What a stream's user needs, and re-checks while it runs.
pub const VERBS: &[&str] = &["list", "watch"];

/// Why a session could not open. Each transport says it in its own words (an HTTP
/// status, a GraphQL error code).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No cluster of that name is configured.
    #[error("cluster not found")]
    UnknownCluster,
    /// No plugin or view serves that kind.
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    /// The actor's RBAC refuses the stream; the message names user, verbs and place.
    #[error("{0}")]
    Forbidden(String),
    /// The cluster could not answer the access review.
    #[error(transparent)]
    Review(#[from] ReviewError),
    /// The actor is at the per-user cap.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The hub refused the subscription (an upstream cap).
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
}

/// What a session yields.
#[derive(Debug)]
pub enum Item {
    /// A frame the subscriber may see.
    Frame(Arc<Frame>),
    /// Nothing happened for a heartbeat interval.
    Ping,
    /// The last item: why the session ended.
    End(End),
}

/// Why a session ended.
#[derive(Debug, Clone)]
pub enum End {
    /// The upstream failed; its `error` frame.
    Upstream(Arc<Frame>),
    /// The upstream's channel closed (the hub stopped it).
    UpstreamClosed,
    /// A re-check found the actor may no longer see the kind; the message says so.
    AccessRevoked(String),
    /// The actor's token expired.
    AuthExpired,
    /// The actor's subject was revoked.
    Revoked,
    /// The subscriber fell a whole queue behind.
    Backpressure,
    /// The server is shutting down.
    Shutdown,
    /// The lifetime cap passed.
    Lifetime,
}

impl End {
    /// The close reason in logs and spans.
    pub fn reason(&self) -> &'static str {
        match self {
            End::Upstream(_) => "error",
            End::UpstreamClosed => "upstream_closed",
            End::AccessRevoked(_) => "access_revoked",
            // One reason for both, as SSE has always logged it.
            End::AuthExpired | End::Revoked => "auth_expired",
            End::Backpressure => "backpressure",
            End::Shutdown => "shutdown",
            End::Lifetime => "lifetime",
        }
    }
}

/// A stream's RBAC state: what its user may see, re-checked every half TTL.
struct Rbac {
    cluster: Cluster,
    mapper: Mapper,
    access: Access,
    recheck: tokio::time::Interval,
}

/// One live stream. Dropping it leaves the hub, releases the actor's slot (once every
/// session sharing the admission is gone) and logs the close reason.
pub struct Session {
    transport: &'static str,
    pending: VecDeque<Arc<Frame>>,
    end: Option<End>,
    finished: bool,
    subscription: Subscription,
    admission: Arc<Admission>,
    actor: Actor,
    auth: Arc<Authenticator>,
    authorizer: Arc<Authorizer>,
    rbac: Option<Rbac>,
    metrics: Arc<Metrics>,
    delivered: Counter,
    heartbeat: tokio::time::Interval,
    lifetime: Option<tokio::time::Instant>,
    expiry: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
    span: tracing::Span,
    /// False for a companion, which shares its primary's admission and span.
    primary: bool,
    close_reason: &'static str,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("transport", &self.transport)
            .field("key", self.subscription.key())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a stream of `key` for `actor` over `transport` (`sse`, `graphql-ws`):
    /// cluster, kind, RBAC, the per-actor cap, then the hub's subscription and the span.
    /// `resume_from` is a resume id (SSE's `Last-Event-ID`); `lifetime` caps the
    /// stream's life (zero: no cap).
    pub async fn open(
        state: &AppState,
        actor: Actor,
        transport: &'static str,
        key: StreamKey,
        resume_from: Option<&str>,
        lifetime: std::time::Duration,
    ) -> Result<Session, OpenError> {
        let (cluster, mapper, access) = authorize(state, &actor, &key).await?;
        let admission = match state.streams.admit(&actor, transport, &key) {
            Ok(admission) => Arc::new(admission),
            Err(error) => {
                tracing::info!(actor = %actor.subject, cluster = %key.cluster, kind = %key.kind, "{error}");
                return Err(error.into());
            }
        };
        let subscription = subscribe(state, &actor, key, resume_from, &access)?;
        admission.info.upstream.set(subscription.health());
        let key = subscription.key();
        let span = stream_span(admission.info.id, transport, key, &actor.subject);
        span.in_scope(|| {
            tracing::info!(
                resume = resume_from.is_some(),
                partitioned = access.only().is_some(),
                "stream opened"
            )
        });
        let lifetime = (!lifetime.is_zero()).then(|| tokio::time::Instant::now() + lifetime);
        Ok(Session::new(
            state,
            transport,
            subscription,
            admission,
            actor,
            lifetime,
            rbac(state, cluster, mapper, access),
            span,
            true,
        ))
    }

    /// A second stream of the same operation (a workload's pods beside the workload):
    /// checked by RBAC and subscribed like [`Session::open`], but counted once, under
    /// this session's admission, with its lifetime and span.
    pub async fn companion(&self, state: &AppState, key: StreamKey) -> Result<Session, OpenError> {
        let (cluster, mapper, access) = authorize(state, &self.actor, &key).await?;
        let subscription = subscribe(state, &self.actor, key, None, &access)?;
        Ok(Session::new(
            state,
            self.transport,
            subscription,
            self.admission.clone(),
            self.actor.clone(),
            self.lifetime,
            rbac(state, cluster, mapper, access),
            self.span.clone(),
            false,
        ))
    }

    #[allow(clippy::too_many_arguments)] // one private constructor, called twice
    fn new(
        state: &AppState,
        transport: &'static str,
        subscription: Subscription,
        admission: Arc<Admission>,
        actor: Actor,
        lifetime: Option<tokio::time::Instant>,
        rbac: Option<Rbac>,
        span: tracing::Span,
        primary: bool,
    ) -> Session {
        let delivered = state.metrics.events_delivered(transport, &admission.info.kind);
        let expiry = state.auth.valid_until(&actor).and_then(expiry_instant);
        let mut session = Session {
            transport,
            pending: VecDeque::new(),
            end: None,
            finished: false,
            subscription,
            admission,
            actor,
            auth: state.auth.clone(),
            authorizer: state.authorizer.clone(),
            rbac,
            metrics: state.metrics.clone(),
            delivered,
            heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + state.heartbeat, state.heartbeat),
            lifetime,
            expiry,
            shutdown: state.shutdown.clone(),
            span,
            primary,
            close_reason: "client_gone",
        };
        // Taken, not borrowed: a snapshot or replay kept in the subscription would live
        // as long as the stream, pinning frames long gone from the ring (the soak's
        // growth under churn and reconnects).
        match std::mem::replace(&mut session.subscription.initial, Initial::Pending) {
            Initial::Snapshot(frame) => session.pending.push_back(frame),
            Initial::Resume(frames) => session.pending.extend(frames),
            Initial::Pending => {}
            Initial::Failed(frame) => session.end = Some(End::Upstream(frame)),
        }
        session
    }

    /// The key this session follows.
    pub fn key(&self) -> &StreamKey {
        self.subscription.key()
    }

    /// The actor the session streams for.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The stream's span (transports log inside it).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Counts one message the transport wrote to its client (`/debug/streams` and
    /// `periscope_events_delivered_total`).
    pub fn sent(&self) {
        self.admission.info.events_sent.fetch_add(1, Ordering::Relaxed);
        self.delivered.inc();
    }

    /// The stream's registry entry, for a writer to report its progress in.
    pub fn info(&self) -> Arc<crate::limits::StreamInfo> {
        self.admission.info.clone()
    }

    /// The next item; `None` after [`Item::End`].
    pub async fn next(&mut self) -> Option<Item> {
        if let Some(frame) = self.pending.pop_front() {
            if self.pending.is_empty() && self.pending.capacity() > 4 {
                // A long replay's queue is not kept for the stream's life.
                self.pending = VecDeque::new();
            }
            return Some(Item::Frame(frame));
        }
        if self.finished {
            return None;
        }
        if let Some(end) = self.end.take() {
            return Some(self.finish(end));
        }
        loop {
            let recheck = async {
                match self.rbac.as_mut() {
                    Some(rbac) => {
                        rbac.recheck.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            return Some(tokio::select! {
                biased;
                () = self.shutdown.cancelled() => self.finish(End::Shutdown),
                () = sleep_until(self.expiry) => self.finish(End::AuthExpired),
                () = sleep_until(self.lifetime) => self.finish(End::Lifetime),
                // Boxed: the access review's request future is large, and inline it
                // would be part of every idle stream's state.
                () = recheck => match Box::pin(self.recheck()).await {
                    Some(item) => item,
                    None => continue,
                },
                received = self.subscription.frames.recv() => match received {
                    _ if self.revoked() => self.finish(End::Revoked),
                    Ok(frame) => {
                        self.admission.info.queue_depth.store(self.subscription.frames.len(), Ordering::Relaxed);
                        if frame.kind == FrameKind::Error {
                            self.finish(End::Upstream(frame))
                        } else {
                            match self.visible(frame) {
                                Some(frame) => Item::Frame(frame),
                                None => continue,
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        self.span.in_scope(|| tracing::debug!(missed, "subscriber lagged"));
                        self.metrics.backpressure_close(self.transport, &self.admission.info.kind);
                        self.finish(End::Backpressure)
                    }
                    Err(RecvError::Closed) => self.finish(End::UpstreamClosed),
                },
                _ = self.heartbeat.tick() => {
                    if self.revoked() {
                        self.finish(End::Revoked)
                    } else {
                        Item::Ping
                    }
                }
            });
        }
    }

    fn finish(&mut self, end: End) -> Item {
        self.finished = true;
        self.close_reason = end.reason();
        Item::End(end)
    }

    /// The actor was revoked since the stream opened (expiry has its own timer).
    fn revoked(&self) -> bool {
        self.auth.is_revoked(&self.actor.subject)
    }

    /// The frame as this subscriber may see it: a partitioned subscriber sees only
    /// deltas of its namespaces, and a first snapshot made for the whole scope (the
    /// upstream was still listing when it joined) is replaced by its own.
    fn visible(&self, frame: Arc<Frame>) -> Option<Arc<Frame>> {
        let only = self.rbac.as_ref().and_then(|rbac| rbac.access.only());
        match only {
            None => Some(frame),
            Some(only) if frame.is_delta() => only.contains(&frame.namespace).then_some(frame),
            Some(only) if frame.kind == FrameKind::Snapshot => self.subscription.snapshot_of(only),
            Some(_) => Some(frame),
        }
    }

    /// Re-checks the user's access. `Some` ends or resets the stream: the end when
    /// access was revoked, a fresh snapshot when the partition changed.
    async fn recheck(&mut self) -> Option<Item> {
        let rbac = self.rbac.as_mut()?;
        let info = rbac.mapper.info();
        let resource = Resource {
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
                Some(self.finish(End::AccessRevoked(message)))
            }
            Access::All => self.subscription.snapshot_of_all().map(Item::Frame),
            Access::Namespaces(only) => {
                let only = only.clone();
                self.span
                    .in_scope(|| tracing::info!(namespaces = only.len(), "partition changed"));
                self.subscription.snapshot_of(&only).map(Item::Frame)
            }
        }
    }

    /// The session as a stream of items, ending after [`Item::End`].
    pub fn into_stream(self) -> futures::stream::BoxStream<'static, Item> {
        use futures::StreamExt;
        futures::stream::unfold(self, |mut session| async move {
            let item = session.next().await?;
            Some((item, session))
        })
        .boxed()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.primary {
            return;
        }
        if self.admission.info.writer.is_stalled() {
            self.close_reason = "write_timeout";
        }
        self.span.record("close_reason", self.close_reason);
        let sent = self.admission.info.events_sent.load(Ordering::Relaxed);
        self.span
            .in_scope(|| tracing::info!(reason = self.close_reason, sent, "stream closed"));
    }
}

/// The cluster, the kind's mapper and what `actor` may see of `key`.
async fn authorize(state: &AppState, actor: &Actor, key: &StreamKey) -> Result<(Cluster, Mapper, Access), OpenError> {
    let cluster = state
        .hub
        .clusters()
        .get(&key.cluster)
        .cloned()
        .ok_or(OpenError::UnknownCluster)?;
    let mapper = state
        .hub
        .mapper(&key.kind)
        .ok_or_else(|| OpenError::UnknownKind(key.kind.clone()))?;
    let info = mapper.info();
    let resource = Resource {
        group: &info.api_group,
        plural: &info.plural,
        namespaced: info.namespaced,
    };
    let namespace = key.namespace.as_deref();
    match state
        .authorizer
        .access(&cluster, actor, resource, namespace, VERBS)
        .await
    {
        Ok(Access::Denied) => {
            state.metrics.rbac_denied(&cluster.name, &info.token);
            let place = match namespace.filter(|_| info.namespaced) {
                Some(ns) => format!("in namespace {ns:?}"),
                None if info.namespaced => "in any namespace".to_string(),
                None => "(cluster-scoped)".to_string(),
            };
            tracing::info!(actor = %actor.subject, user = %actor.username, cluster = %cluster.name, kind = %info.token, namespace = namespace.unwrap_or("*"), "request refused by RBAC");
            Err(OpenError::Forbidden(format!(
                "user {:?} may not {} {} {place} on cluster {:?}",
                actor.username,
                VERBS.join(" and "),
                info.plural,
                cluster.name
            )))
        }
        Ok(access) => Ok((cluster, mapper, access)),
        Err(error) => {
            tracing::warn!(%error, "access review failed");
            Err(error.into())
        }
    }
}

fn subscribe(
    state: &AppState,
    actor: &Actor,
    key: StreamKey,
    resume_from: Option<&str>,
    access: &Access,
) -> Result<Subscription, OpenError> {
    state
        .hub
        .subscribe(key, resume_from, access.only(), &actor.quota)
        .map_err(|error| {
            tracing::info!(actor = %actor.subject, "{error}");
            error.into()
        })
}

fn rbac(state: &AppState, cluster: Cluster, mapper: Mapper, access: Access) -> Option<Rbac> {
    let half = state.authorizer.ttl() / 2;
    state.authorizer.is_enabled().then(|| Rbac {
        cluster,
        mapper,
        access,
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + half, half),
    })
}

/// The monotonic instant of a Unix expiry time (now, if it has passed). A time too
/// far away for the clock (`exp` = `u64::MAX`) is `None`: never, as far as this
/// stream is concerned, whose life `watch.max_stream_duration` bounds anyway. The
/// arithmetic is checked: a token's claims must not be able to panic the host.
pub(crate) fn expiry_instant(exp: u64) -> Option<tokio::time::Instant> {
    let at = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(exp))?;
    let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now().checked_add(left)
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a [`Lease`] reviews: a resource (`pods/log`), its namespace and the verbs.
#[derive(Debug, Clone)]
pub struct LeaseScope {
    /// The stream's key (cluster, a kind-like label such as `pods/log`, namespace), as
    /// `/debug/streams` and the span show it.
    pub key: StreamKey,
    /// API group of the reviewed resource (`""` for core).
    pub group: String,
    /// The reviewed resource, with its subresource (`pods/log`).
    pub plural: String,
    /// The verbs the user needs (`get` for a log).
    pub verbs: &'static [&'static str],
}

/// The policies of a stream whose source is not a hub subscription (a container's
/// log): RBAC at open and every half `auth.rbac_ttl`, the per-actor cap, expiry,
/// revocation (on every read and heartbeat), shutdown and the lifetime cap, the same
/// as a [`Session`]'s. A transport wraps each read of its source in [`Lease::guard`].
pub struct Lease {
    scope: LeaseScope,
    admission: Admission,
    actor: Actor,
    cluster: Cluster,
    auth: Arc<Authenticator>,
    authorizer: Arc<Authorizer>,
    recheck: Option<tokio::time::Interval>,
    heartbeat: tokio::time::Interval,
    lifetime: Option<tokio::time::Instant>,
    expiry: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
    delivered: Counter,
    span: tracing::Span,
    close_reason: &'static str,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// Checks cluster, RBAC and the per-actor cap for `scope`, then opens the span.
    pub async fn open(
        state: &AppState,
        actor: Actor,
        transport: &'static str,
        scope: LeaseScope,
        lifetime: std::time::Duration,
    ) -> Result<Lease, OpenError> {
        let key = &scope.key;
        let cluster = state
            .hub
            .clusters()
            .get(&key.cluster)
            .cloned()
            .ok_or(OpenError::UnknownCluster)?;
        let resource = Resource {
            group: &scope.group,
            plural: &scope.plural,
            namespaced: true,
        };
        let namespace = key.namespace.as_deref();
        match state
            .authorizer
            .access(&cluster, &actor, resource, namespace, scope.verbs)
            .await
        {
            Ok(Access::Denied) => {
                state.metrics.rbac_denied(&cluster.name, &scope.plural);
                tracing::info!(actor = %actor.subject, user = %actor.username, cluster = %cluster.name, resource = %scope.plural, namespace = namespace.unwrap_or("*"), "request refused by RBAC");
                return Err(OpenError::Forbidden(format!(
                    "user {:?} may not {} {} in namespace {:?} on cluster {:?}",
                    actor.username,
                    scope.verbs.join(" and "),
                    scope.plural,
                    namespace.unwrap_or_default(),
                    cluster.name
                )));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "access review failed");
                return Err(error.into());
            }
        }
        let admission = state.streams.admit(&actor, transport, key).inspect_err(|error| {
            tracing::info!(actor = %actor.subject, cluster = %key.cluster, kind = %key.kind, "{error}");
        })?;
        let span = stream_span(admission.info.id, transport, key, &actor.subject);
        span.in_scope(|| tracing::info!("stream opened"));
        let half = state.authorizer.ttl() / 2;
        let now = tokio::time::Instant::now();
        Ok(Lease {
            delivered: state.metrics.events_delivered(transport, &key.kind),
            expiry: state.auth.valid_until(&actor).and_then(expiry_instant),
            scope,
            admission,
            actor,
            cluster,
            auth: state.auth.clone(),
            authorizer: state.authorizer.clone(),
            recheck: state
                .authorizer
                .is_enabled()
                .then(|| tokio::time::interval_at(now + half, half)),
            heartbeat: tokio::time::interval_at(now + state.heartbeat, state.heartbeat),
            lifetime: (!lifetime.is_zero()).then(|| now + lifetime),
            shutdown: state.shutdown.clone(),
            span,
            close_reason: "client_gone",
        })
    }

    /// The stream's span.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Counts one message written to the client.
    pub fn sent(&self) {
        self.admission.info.events_sent.fetch_add(1, Ordering::Relaxed);
        self.delivered.inc();
    }

    /// Records why the stream ended without a policy end (the source completed or
    /// failed).
    pub fn close(&mut self, reason: &'static str) {
        self.close_reason = reason;
    }

    /// Waits for `next` (the source's next item) unless a policy ends the stream
    /// first: `Ok(item)`, or `Err(end)` after which the stream is over.
    pub async fn guard<T>(&mut self, next: impl Future<Output = T>) -> Result<T, End> {
        futures::pin_mut!(next);
        loop {
            let recheck = async {
                match self.recheck.as_mut() {
                    Some(recheck) => {
                        recheck.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let end = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => End::Shutdown,
                () = sleep_until(self.expiry) => End::AuthExpired,
                () = sleep_until(self.lifetime) => End::Lifetime,
                () = recheck => match self.recheck_access().await {
                    Some(end) => end,
                    None => continue,
                },
                item = &mut next => {
                    if self.auth.is_revoked(&self.actor.subject) {
                        End::Revoked
                    } else {
                        return Ok(item);
                    }
                }
                _ = self.heartbeat.tick() => {
                    if self.auth.is_revoked(&self.actor.subject) {
                        End::Revoked
                    } else {
                        continue;
                    }
                }
            };
            self.close_reason = end.reason();
            return Err(end);
        }
    }

    async fn recheck_access(&mut self) -> Option<End> {
        let resource = Resource {
            group: &self.scope.group,
            plural: &self.scope.plural,
            namespaced: true,
        };
        let namespace = self.scope.key.namespace.as_deref();
        match self
            .authorizer
            .access(&self.cluster, &self.actor, resource, namespace, self.scope.verbs)
            .await
        {
            Ok(Access::Denied) => Some(End::AccessRevoked(format!(
                "access revoked: user {:?} may no longer {} {}",
                self.actor.username,
                self.scope.verbs.join(" and "),
                self.scope.plural
            ))),
            Ok(_) => None,
            Err(error) => {
                self.span
                    .in_scope(|| tracing::warn!(%error, "access re-check failed; the stream keeps its last decision"));
                None
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.span.record("close_reason", self.close_reason);
        let sent = self.admission.info.events_sent.load(Ordering::Relaxed);
        self.span
            .in_scope(|| tracing::info!(reason = self.close_reason, sent, "stream closed"));
    }
}

/// The span a stream's log lines carry, for a session and for a lease alike.
fn stream_span(id: u64, transport: &'static str, key: &StreamKey, actor: &str) -> tracing::Span {
    tracing::info_span!(
        "stream",
        stream.id = id,
        transport,
        cluster = %key.cluster,
        kind = %key.kind,
        namespace = key.namespace_label(),
        actor = %actor,
        close_reason = tracing::field::Empty,
    )
}
