//! Admission of streams: the per-actor cap shared by every transport, and the registry
//! of active streams that `/debug/streams` shows.
//!
//! A stream is admitted before it opens and holds an [`Admission`] for its whole life;
//! dropping the admission (however the stream ends: client gone, error, shutdown,
//! lifetime cap, revocation) releases the actor's slot, so counts cannot leak.
//!
//! Polls that need the apiserver (a list, and access reviews) are rated per actor
//! ([`ColdPolls`]): one client varying `?namespace=` could otherwise send the apiserver
//! a list and a review per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::auth::Actor;
use crate::hub::{StreamKey, UpstreamHealth};
use crate::metrics::Metrics;

/// Per-actor token buckets for polls the hub cannot answer from memory.
pub struct ColdPolls {
    limiter: Option<governor::DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for ColdPolls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdPolls")
            .field("limited", &self.limiter.is_some())
            .finish()
    }
}

/// Actors whose buckets are kept before idle (full) ones are dropped.
const COLD_POLL_KEYS: usize = 4096;

/// Seconds a refused client is told to wait: at a rate of at least one a second, a
/// token is back within it.
const COLD_POLL_RETRY_SECS: u64 = 1;

impl ColdPolls {
    /// `per_second` polls a second per actor with bursts of ten times that; 0: no limit.
    pub fn new(per_second: u32) -> ColdPolls {
        let limiter = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::new(10).expect("10 is not zero"));
            governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
        });
        ColdPolls { limiter }
    }

    /// Takes one poll from `actor`'s bucket; `Err` is the seconds to wait.
    pub fn take(&self, actor: &Actor) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > COLD_POLL_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(&actor.quota).map_err(|_| COLD_POLL_RETRY_SECS)
    }
}

/// The cap was reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream limit reached: user {actor} has {open} open streams (watch.per_user_limit = {limit})")]
pub struct LimitError {
    /// The actor.
    pub actor: String,
    /// Streams open now.
    pub open: u32,
    /// The configured cap.
    pub limit: u32,
}

/// One active stream, as `/debug/streams` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    /// Process-unique id.
    pub id: u64,
    /// The actor's subject.
    pub actor: String,
    /// `sse` or `graphql-ws`.
    pub transport: &'static str,
    /// Cluster name.
    pub cluster: String,
    /// Kind token.
    pub kind: String,
    /// Namespace, or `null` for all.
    pub namespace: Option<String>,
    /// RFC 3339 UTC.
    pub opened_at: String,
    /// Frames written to the client.
    pub events_sent: AtomicU64,
    /// Frames waiting for this stream in the hub's queue.
    pub queue_depth: AtomicUsize,
    /// Its upstream's left-out count and outage (`objectsLeftOut`,
    /// `upstreamOutageSince`), linked once the stream has subscribed.
    #[serde(flatten)]
    pub upstream: UpstreamLink,
    /// What its writer reports (`bytesUnsent`, `sinceLastWriteMs`): a reader that
    /// stopped reading shows bytes held and a growing time, where `queueDepth` stays 0.
    #[serde(flatten)]
    pub writer: WriteProgress,
}

/// A stream writer's progress: bytes it holds that the socket has not taken, and when
/// the socket last took some. The writer of a fresh SSE connection (`http::direct`)
/// counts bytes; others report when they handed a frame on.
#[derive(Debug)]
pub struct WriteProgress {
    unsent: AtomicU64,
    /// Milliseconds since [`epoch`] of the last write the socket took.
    last_write: AtomicU64,
    /// Set when the writer closed the stream at `watch.write_timeout`.
    stalled: std::sync::atomic::AtomicBool,
}

impl Default for WriteProgress {
    fn default() -> Self {
        WriteProgress {
            unsent: AtomicU64::new(0),
            last_write: AtomicU64::new(since_epoch_ms()),
            stalled: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl WriteProgress {
    /// `bytes` are waiting for the socket.
    pub fn pending(&self, bytes: u64) {
        self.unsent.store(bytes, Ordering::Relaxed);
    }

    /// The socket took `bytes` of what was pending.
    pub fn wrote(&self, bytes: u64) {
        let _ = self
            .unsent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(bytes)));
        self.last_write.store(since_epoch_ms(), Ordering::Relaxed);
    }

    /// The writer gave up: the socket took nothing for `watch.write_timeout`.
    pub fn stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Whether the writer gave up on a stalled socket.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }
}

impl Serialize for WriteProgress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let since = since_epoch_ms().saturating_sub(self.last_write.load(Ordering::Relaxed));
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("bytesUnsent", &self.unsent.load(Ordering::Relaxed))?;
        map.serialize_entry("sinceLastWriteMs", &since)?;
        map.end()
    }
}

/// Milliseconds since the first call: a monotonic clock cheap to keep in an atomic.
fn since_epoch_ms() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A stream's link to its upstream's health; empty until it subscribed.
#[derive(Debug, Default)]
pub struct UpstreamLink(OnceLock<Arc<UpstreamHealth>>);

impl UpstreamLink {
    /// Links the stream to its upstream.
    pub fn set(&self, health: Arc<UpstreamHealth>) {
        let _ = self.0.set(health);
    }
}

impl Serialize for UpstreamLink {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.get() {
            Some(health) => health.serialize(serializer),
            None => UpstreamHealth::default().serialize(serializer),
        }
    }
}

#[derive(Default)]
struct Inner {
    per_actor: HashMap<String, u32>,
    active: BTreeMap<u64, Arc<StreamInfo>>,
}

/// Per-actor caps and the registry of active streams.
pub struct Streams {
    limit: u32,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// A stream's slot; dropping it releases the slot and unregisters the stream.
#[derive(Debug)]
pub struct Admission {
    /// The stream's registry entry (counters are updated through it).
    pub info: Arc<StreamInfo>,
    /// The [`Actor::quota`] the slot is counted against.
    quota: String,
    streams: Arc<Streams>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut inner = self.streams.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.active.remove(&self.info.id);
        if let Some(count) = inner.per_actor.get_mut(&self.quota) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.per_actor.remove(&self.quota);
            }
        }
        self.streams.metrics.stream_closed(self.info.transport, &self.info.kind);
    }
}

impl Streams {
    /// A registry with `limit` streams per actor (0: unlimited).
    pub fn new(limit: u32, metrics: Arc<Metrics>) -> Arc<Streams> {
        Arc::new(Streams {
            limit,
            next_id: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
            metrics,
        })
    }

    /// Admits a stream of `actor` on `key`, or refuses it at the cap.
    pub fn admit(
        self: &Arc<Self>,
        actor: &Actor,
        transport: &'static str,
        key: &StreamKey,
    ) -> Result<Admission, LimitError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let open = inner.per_actor.get(&actor.quota).copied().unwrap_or(0);
        if self.limit > 0 && open >= self.limit {
            self.metrics.rate_limited(transport);
            return Err(LimitError {
                actor: actor.quota.clone(),
                open,
                limit: self.limit,
            });
        }
        let info = Arc::new(StreamInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            actor: actor.subject.clone(),
            transport,
            cluster: key.cluster.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            opened_at: now_rfc3339(),
            events_sent: AtomicU64::new(0),
            queue_depth: AtomicUsize::new(0),
            upstream: UpstreamLink::default(),
            writer: WriteProgress::default(),
        });
        *inner.per_actor.entry(actor.quota.clone()).or_default() += 1;
        inner.active.insert(info.id, info.clone());
        self.metrics.stream_opened(transport, &key.kind);
        Ok(Admission {
            info,
            quota: actor.quota.clone(),
            streams: self.clone(),
        })
    }

    /// Open streams counted against `quota` (an [`Actor::quota`]: the subject, or
    /// `anonymous@<client address>` with auth off).
    pub fn open_for(&self, quota: &str) -> u32 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.per_actor.get(quota).copied().unwrap_or(0)
    }

    /// Open streams of every actor.
    pub fn open_total(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).active.len()
    }

    /// The streams `viewer` may see: all for admins, their own otherwise.
    pub fn visible_to(&self, viewer: &Actor) -> Vec<Arc<StreamInfo>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .active
            .values()
            .filter(|s| viewer.admin || s.actor == viewer.subject)
            .cloned()
            .collect()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
