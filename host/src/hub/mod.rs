//! The watch hub: one upstream list-then-watch per [`StreamKey`], whatever the number
//! of subscribers, fanned out to all of them.
//!
//! - **One upstream per key.** The first subscriber of a `(cluster, kind, namespace)`
//!   starts its loop; the last one leaving stops it after [`HubOptions::linger`], so a
//!   reconnect storm does not relist. A namespaced subscription gets its own upstream
//!   (a namespaced watch): its resume ids are the apiserver's own. New upstreams are
//!   capped per user and per cluster, so no client can multiply the apiserver's load.
//! - **Partitions.** A subscriber may be limited to a set of namespaces (what RBAC
//!   lets its user list): its snapshot holds only those, and its transport skips
//!   deltas of other namespaces (each delta frame carries its object's namespace).
//! - **Polls leave nothing behind.** A poll is served from a warm upstream of its
//!   scope, or of the cluster-wide scope filtered to its namespace; a namespaced poll
//!   with neither is a plain list, so polls of many namespaces open no watches.
//! - **Stages.** Each upstream is `source` (the list-then-watch loop, as raw events)
//!   → `map` (raw objects to DTOs) → `store` (DTOs, snapshot, resume ring; pure),
//!   glued by `upstream`, which broadcasts what the store says changed.
//! - **List, then watch** with bookmarks. A `410 Expired` sends `relist` to every
//!   subscriber, then a fresh snapshot. A watch that ends or breaks is resumed from the
//!   last resourceVersion without a relist. Failing lists and watches back off
//!   (client-go's exponential backoff with jitter, 0.8 s to 30 s) and send each
//!   subscriber an `error` frame, which ends its stream.
//! - **Map once, encode once.** Each object goes through its kind's plugin once (on the
//!   blocking pool), each frame's payload is built once and shared by all subscribers.
//! - **Resume.** The hub keeps the deltas since the last snapshot (at most
//!   [`HubOptions::ring`]). A subscriber whose `Last-Event-ID` is the snapshot's id or a
//!   delta in that ring gets only the deltas after it; any other id gets a snapshot.
//! - **Label-selector scopes.** A key may carry a label selector
//!   ([`StreamKey::selector`]), passed to the apiserver's list and watch: one Helm
//!   release's Secrets are one shared upstream. SSE and polls never set one.
//! - **Other sources.** Host views ([`view`]) of kinds and of resources no plugin
//!   serves (`helm:releases`, decoded by [`helm`]), and container logs ([`logs`]):
//!   one live tail per container shared by its followers, a backfill per subscriber.
//! - **Slow subscribers never slow the hub.** Frames go through a broadcast channel of
//!   [`HubOptions::queue`] entries; a subscriber that falls that far behind sees
//!   `Lagged` and is closed with `backpressure` by its transport. The hub never waits.

mod frame;
pub mod helm;
pub mod logs;
mod map;
mod source;
mod store;
mod upstream;
pub mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use frame::{Frame, FrameKind, write_json_array};
pub use upstream::Initial;
pub use view::Mapper;

use crate::cluster::Clusters;
pub use crate::config::InitialList;
use crate::kinds::{LiveKinds, Registry};
use crate::metrics::Metrics;
use upstream::Upstream;

/// Which objects a stream carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Configured cluster name.
    pub cluster: String,
    /// Kind token (`pods`).
    pub kind: String,
    /// Namespace, or `None` for all namespaces (and for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// A label selector narrowing the scope (`owner=helm,name=web`), passed to the
    /// apiserver's list and watch; `None` for every object (SSE and polls).
    pub selector: Option<String>,
}

impl StreamKey {
    /// The namespace for logs and debug output: `*` for all.
    pub fn namespace_label(&self) -> &str {
        self.namespace.as_deref().unwrap_or("*")
    }
}

/// What `/debug/streams` shows of a stream's upstream.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    /// Objects or changes left out because their plugin failed on them, since start.
    pub left_out: AtomicU64,
    /// When the current outage began (RFC 3339), while the upstream is unreachable.
    pub outage_since: Mutex<Option<String>>,
}

impl UpstreamHealth {
    fn lock_outage(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.outage_since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl serde::Serialize for UpstreamHealth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("objectsLeftOut", &self.left_out.load(Ordering::Relaxed))?;
        map.serialize_entry("upstreamOutageSince", &*self.lock_outage())?;
        map.end()
    }
}

/// Tunables of the hub.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// How long an upstream outlives its last subscriber.
    pub linger: Duration,
    /// Frames a subscriber may fall behind before it is closed with `backpressure`.
    pub queue: usize,
    /// Deltas kept for `Last-Event-ID` resume.
    pub ring: usize,
    /// Running upstreams one user's subscriptions may have started; 0: no cap.
    pub upstreams_per_user: u32,
    /// Running upstreams per cluster; 0: no cap.
    pub upstreams_per_cluster: u32,
    /// How long a failing upstream with a last good state holds its subscribers'
    /// streams before they get `error`; zero publishes failures at once.
    pub outage_grace: Duration,
    /// Longest wait for one list page or for a watch to be established.
    pub request_timeout: Duration,
    /// A watch silent (not even a bookmark) this long is re-opened.
    pub watch_silence: Duration,
    /// Objects per list page; the first list holds about two pages at a time.
    pub list_page_size: u32,
    /// How the first state is got: WatchList, paged lists, or WatchList with fallback.
    pub initial_list: InitialList,
}

/// The defaults of the `[watch]` settings, declared once in [`crate::config::settings`].
impl Default for HubOptions {
    fn default() -> Self {
        use crate::config::settings::{
            WATCH_INITIAL_LIST, WATCH_LINGER, WATCH_LIST_PAGE_SIZE, WATCH_OUTAGE_GRACE, WATCH_QUEUE,
            WATCH_REQUEST_TIMEOUT, WATCH_RING, WATCH_SILENCE_TIMEOUT, WATCH_UPSTREAMS_PER_CLUSTER,
            WATCH_UPSTREAMS_PER_USER,
        };
        HubOptions {
            linger: WATCH_LINGER.default(),
            queue: WATCH_QUEUE.default(),
            ring: WATCH_RING.default(),
            upstreams_per_user: WATCH_UPSTREAMS_PER_USER.default(),
            upstreams_per_cluster: WATCH_UPSTREAMS_PER_CLUSTER.default(),
            outage_grace: WATCH_OUTAGE_GRACE.default(),
            request_timeout: WATCH_REQUEST_TIMEOUT.default(),
            watch_silence: WATCH_SILENCE_TIMEOUT.default(),
            list_page_size: WATCH_LIST_PAGE_SIZE.default(),
            initial_list: WATCH_INITIAL_LIST.default(),
        }
    }
}

/// Why a subscription could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// No cluster of that name is configured.
    #[error("cluster not found")]
    UnknownCluster,
    /// No plugin serves that kind.
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    /// Starting another upstream would pass a cap.
    #[error(
        "too many upstream watches {}: {limit} are running (watch.upstreams_per_{scope})",
        if *.scope == "user" { "started by this user" } else { "on this cluster" }
    )]
    UpstreamLimit {
        /// `user` or `cluster`.
        scope: &'static str,
        /// The cap.
        limit: u32,
    },
}

/// Why a polling list failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The subscription could not be made.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// The upstream failed.
    #[error("{message}")]
    Upstream {
        /// The error frame's message.
        message: String,
        /// The HTTP status class of the apiserver's failure.
        status: u16,
    },
    /// The first list did not arrive in time.
    #[error("timed out waiting for the first list")]
    Timeout,
}

/// The running upstream of a key and its task.
struct Entry {
    upstream: Arc<Upstream>,
    task: JoinHandle<()>,
    /// The subject whose subscription started it (for the per-user cap).
    started_by: String,
}

/// The hub. Cheap to share behind an `Arc`.
pub struct Hub {
    clusters: Clusters,
    kinds: Arc<LiveKinds>,
    options: HubOptions,
    metrics: Arc<Metrics>,
    upstreams: Mutex<HashMap<StreamKey, Entry>>,
    logs: Arc<logs::LogStreams>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A live subscription: the first frames, then every frame after them. Dropping it
/// leaves the upstream (which stops after the linger if it was the last).
pub struct Subscription {
    /// What to send first (a session takes it, so it is not kept for the stream's life).
    pub initial: Initial,
    /// Every frame published after `initial`.
    pub frames: broadcast::Receiver<Arc<Frame>>,
    guard: SubscriberGuard,
}

impl Subscription {
    /// The key this subscription follows.
    pub fn key(&self) -> &StreamKey {
        &self.guard.upstream.key
    }

    /// A snapshot of only `only`'s namespaces, once the upstream is warm (for a
    /// partitioned subscriber whose allowed set changed).
    pub fn snapshot_of(&self, only: &BTreeSet<String>) -> Option<Arc<Frame>> {
        self.guard.upstream.snapshot_of(only)
    }

    /// The shared snapshot of the whole scope, once the upstream is warm (for a
    /// subscriber whose partition was lifted).
    pub fn snapshot_of_all(&self) -> Option<Arc<Frame>> {
        self.guard.upstream.full_snapshot()
    }

    /// The upstream's left-out count and outage, for `/debug/streams`.
    pub fn health(&self) -> Arc<UpstreamHealth> {
        self.guard.upstream.health.clone()
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("key", self.key())
            .finish_non_exhaustive()
    }
}

struct SubscriberGuard {
    hub: Arc<Hub>,
    upstream: Arc<Upstream>,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        if self.upstream.subscribers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let hub = self.hub.clone();
            let key = self.upstream.key.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    tokio::time::sleep(hub.options.linger).await;
                    hub.stop_if_idle(&key);
                });
            }
        }
    }
}

impl Hub {
    /// A hub over `clusters`, mapping with the plugins `kinds` holds at each moment.
    pub fn new(clusters: Clusters, kinds: Arc<LiveKinds>, options: HubOptions, metrics: Arc<Metrics>) -> Arc<Hub> {
        let logs = logs::LogStreams::new(clusters.clone(), options.queue, options.request_timeout);
        Arc::new(Hub {
            clusters,
            kinds,
            options,
            metrics,
            upstreams: Mutex::new(HashMap::new()),
            logs,
        })
    }

    /// Container logs: shared live tails and per-subscriber backfills ([`logs`]).
    pub fn logs(&self) -> &Arc<logs::LogStreams> {
        &self.logs
    }

    /// The configured clusters.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// The kinds registry as it is now (plugin reloads replace it).
    pub fn registry(&self) -> Arc<Registry> {
        self.kinds.registry()
    }

    /// The live kinds (registry and enabled set) the hub serves.
    pub fn kinds(&self) -> &Arc<LiveKinds> {
        &self.kinds
    }

    /// Ends the running upstreams of `kind` after its plugin was replaced or removed:
    /// each subscriber gets an `error` frame (it reconnects and is served by the new
    /// plugin, or gets 404), and the next subscription starts a fresh upstream.
    pub fn retire(&self, kind: &str) {
        let mut upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<StreamKey> = upstreams.keys().filter(|k| k.kind == kind).cloned().collect();
        for key in keys {
            if let Some(entry) = upstreams.remove(&key) {
                entry.task.abort();
                entry.upstream.close(&format!("the plugin of {kind} was reloaded"));
                self.metrics.upstream_changed(&key.cluster, &key.kind, -1);
                tracing::info!(cluster = %key.cluster, kind = %key.kind, namespace = key.namespace_label(), "upstream stopped: plugin reloaded");
            }
        }
    }

    /// What maps `kind`'s objects: its plugin, or a host view (`status:<kind>`, see
    /// [`view`]) of a registered kind.
    pub fn mapper(&self, kind: &str) -> Option<Mapper> {
        let registry = self.kinds.registry();
        match registry.get(kind) {
            Some(plugin) => Some(Mapper::Plugin(plugin.clone())),
            None => {
                let base = view::base_kind(kind).and_then(|base| registry.get(base));
                view::find(kind, base).or_else(|| view::builtin(kind)).map(Mapper::View)
            }
        }
    }

    /// Subscribes `subject` to `key`, starting its upstream if it is not running and
    /// the caps allow. `resume_from` is the client's `Last-Event-ID`; `only` limits the
    /// subscriber to those namespaces.
    pub fn subscribe(
        self: &Arc<Self>,
        key: StreamKey,
        resume_from: Option<&str>,
        only: Option<&BTreeSet<String>>,
        subject: &str,
    ) -> Result<Subscription, SubscribeError> {
        let cluster = self.clusters.get(&key.cluster).ok_or(SubscribeError::UnknownCluster)?;
        let plugin = self
            .mapper(&key.kind)
            .ok_or_else(|| SubscribeError::UnknownKind(key.kind.clone()))?;
        // Cluster-scoped kinds have one scope whatever the query says.
        let key = StreamKey {
            namespace: key.namespace.filter(|ns| !ns.is_empty() && plugin.info().namespaced),
            ..key
        };
        let mut upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let upstream = match upstreams.get(&key) {
            Some(entry) => entry.upstream.clone(),
            None => {
                self.check_caps(&upstreams, &key.cluster, subject)?;
                let upstream = Arc::new(Upstream::new(
                    key.clone(),
                    plugin.clone(),
                    self.options.clone(),
                    self.metrics.clone(),
                ));
                self.metrics.upstream_changed(&key.cluster, &key.kind, 1);
                let task = tokio::spawn(upstream.clone().run(cluster.client.clone()));
                tracing::info!(cluster = %key.cluster, kind = %key.kind, namespace = key.namespace_label(), "upstream started");
                upstreams.insert(
                    key,
                    Entry {
                        upstream: upstream.clone(),
                        task,
                        started_by: subject.to_string(),
                    },
                );
                upstream
            }
        };
        upstream.subscribers.fetch_add(1, Ordering::AcqRel);
        drop(upstreams);
        let (initial, frames) = upstream.join(resume_from, only);
        Ok(Subscription {
            initial,
            frames,
            guard: SubscriberGuard {
                hub: self.clone(),
                upstream,
            },
        })
    }

    /// Refuses a new upstream past the per-cluster or per-user cap.
    fn check_caps(
        &self,
        upstreams: &HashMap<StreamKey, Entry>,
        cluster: &str,
        subject: &str,
    ) -> Result<(), SubscribeError> {
        let over = |limit: u32, running: usize| limit > 0 && running >= limit as usize;
        let on_cluster = upstreams.keys().filter(|k| k.cluster == cluster).count();
        if over(self.options.upstreams_per_cluster, on_cluster) {
            self.metrics.upstream_refused("cluster");
            return Err(SubscribeError::UpstreamLimit {
                scope: "cluster",
                limit: self.options.upstreams_per_cluster,
            });
        }
        let by_user = upstreams.values().filter(|e| e.started_by == subject).count();
        if over(self.options.upstreams_per_user, by_user) {
            self.metrics.upstream_refused("user");
            return Err(SubscribeError::UpstreamLimit {
                scope: "user",
                limit: self.options.upstreams_per_user,
            });
        }
        Ok(())
    }

    /// Whether a poll of `key` is answered from a running upstream (of its scope, or
    /// the cluster-wide one for a namespace), so it sends the apiserver nothing.
    pub fn polls_warm(&self, key: &StreamKey) -> bool {
        let upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let wide = StreamKey {
            namespace: None,
            ..key.clone()
        };
        upstreams.contains_key(key) || upstreams.contains_key(&wide)
    }

    /// The current DTOs of `key` (of `only`'s namespaces, when given) for a polling
    /// request by `subject`.
    ///
    /// From the store of a running upstream of `key`, or, for a namespace, of the
    /// cluster-wide upstream filtered to it. Otherwise a namespaced poll is a plain
    /// list (no watch is left behind), and a cluster-wide poll starts the upstream,
    /// waits for its first list (within `timeout`) and leaves it lingering, so a client
    /// polling every few seconds is served from memory.
    pub async fn list(
        self: &Arc<Self>,
        key: StreamKey,
        timeout: Duration,
        only: Option<&BTreeSet<String>>,
        subject: &str,
    ) -> Result<Vec<Bytes>, ListError> {
        let cluster = self.clusters.get(&key.cluster).ok_or(SubscribeError::UnknownCluster)?;
        let plugin = self
            .mapper(&key.kind)
            .ok_or_else(|| SubscribeError::UnknownKind(key.kind.clone()))?;
        let namespace = key
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty() && plugin.info().namespaced);
        let mut only = only.cloned();
        let key = match namespace {
            None => StreamKey { namespace: None, ..key },
            Some(ns) => {
                let (exact, wide) = {
                    let upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
                    let wide = StreamKey {
                        namespace: None,
                        ..key.clone()
                    };
                    (
                        upstreams.contains_key(&key),
                        upstreams.contains_key(&wide).then_some(wide),
                    )
                };
                match (exact, wide) {
                    (true, _) => key,
                    (false, Some(wide)) => {
                        only = Some(BTreeSet::from([ns]));
                        wide
                    }
                    (false, None) => {
                        let once = Upstream::new(key, plugin.clone(), self.options.clone(), self.metrics.clone());
                        let list = once.list_once(cluster.client.clone());
                        return tokio::time::timeout(timeout, list)
                            .await
                            .unwrap_or(Err(ListError::Timeout));
                    }
                }
            }
        };
        let mut subscription = self.subscribe(key, None, only.as_ref(), subject)?;
        let wait = async {
            loop {
                let upstream = &subscription.guard.upstream;
                let failed = |frame: &Frame| ListError::Upstream {
                    message: error_message(frame),
                    status: upstream.failure_status().unwrap_or(500),
                };
                // A published failure wins over the last good state: within the outage
                // grace nothing is published and the store still answers.
                if let Initial::Failed(frame) = &subscription.initial {
                    return Err(failed(frame));
                }
                if let Some(items) = upstream.items(only.as_ref()) {
                    return Ok(items);
                }
                match subscription.frames.recv().await {
                    Ok(frame) if frame.kind == FrameKind::Error => return Err(failed(&frame)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(ListError::Timeout),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(ListError::Timeout))
    }

    /// Keys with a running upstream (debug and tests).
    pub fn upstream_keys(&self) -> Vec<StreamKey> {
        let upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<StreamKey> = upstreams.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn stop_if_idle(&self, key: &StreamKey) {
        let mut upstreams = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let idle = upstreams
            .get(key)
            .is_some_and(|entry| entry.upstream.subscribers.load(Ordering::Acquire) == 0);
        if idle && let Some(entry) = upstreams.remove(key) {
            entry.task.abort();
            self.metrics.upstream_changed(&key.cluster, &key.kind, -1);
            tracing::info!(cluster = %key.cluster, kind = %key.kind, namespace = key.namespace_label(), "upstream stopped after linger");
        }
    }
}

/// The `message` of an error frame.
pub fn error_message(frame: &Frame) -> String {
    serde_json::from_slice::<serde_json::Value>(&frame.data)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}
