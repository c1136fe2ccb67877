//! One upstream: the list-then-watch loop of one [`StreamKey`] and the state it keeps
//! (current DTOs, recent deltas), shared by every subscriber of that key.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::DefaultBackoff;
use tokio::sync::broadcast;

use super::frame::{Frame, FrameKind};
use super::view::Mapper;
use super::{HubOptions, ListError, StreamKey, UpstreamHealth};
use crate::metrics::Metrics;
use crate::plugin::KindInfo;
use crate::snapshot;

/// Objects per list page.
const PAGE_SIZE: u32 = 500;
/// Server-side timeout of one watch request; the loop re-watches from the last
/// resourceVersion when it ends.
const WATCH_TIMEOUT_SECS: u32 = 290;

/// `(namespace, name)`: the identity of an object within a kind.
type ObjectKey = (String, String);

/// A stored DTO and, for kinds with a snapshot order, its sort key (computed once,
/// when the DTO arrives).
struct Stored {
    dto: Bytes,
    sort_key: Option<time::OffsetDateTime>,
    /// The object's resourceVersion: the id of a delta made for it when a relist is
    /// converged by difference.
    rv: String,
}

impl Stored {
    fn new(dto: String, rv: String, info: &KindInfo) -> Stored {
        let sort_key = info
            .snapshot
            .as_ref()
            .and_then(|policy| snapshot::sort_key(&dto, &policy.sort_field));
        Stored {
            dto: dto.into(),
            sort_key,
            rv,
        }
    }
}

/// What subscribers of a key share.
pub(super) struct Upstream {
    pub(super) key: StreamKey,
    plugin: Mapper,
    options: HubOptions,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Frame>>,
    /// Live subscriptions; the upstream stops after the linger once this is zero.
    pub(super) subscribers: AtomicUsize,
    /// Left-out objects and outage, as `/debug/streams` shows them.
    pub(super) health: Arc<UpstreamHealth>,
}

#[derive(Default)]
struct State {
    /// True once the first list has been mapped.
    warm: bool,
    /// Current DTOs, in apiserver list order (namespace, then name).
    objects: BTreeMap<ObjectKey, Stored>,
    /// resourceVersion of the last list.
    list_rv: String,
    /// The snapshot of `objects`, built on demand and dropped by the next change.
    snapshot: Option<Arc<Frame>>,
    /// Deltas since the last snapshot, oldest first, at most `options.ring` of them.
    ring: VecDeque<Arc<Frame>>,
    /// The id just before the first ring entry: the snapshot id, or the id of the
    /// newest delta evicted from the ring.
    ring_base: String,
    /// The upstream's last failure and its HTTP status class, until the next
    /// successful list.
    failure: Option<(Arc<Frame>, u16)>,
    /// When the current outage began (transient failures only); its wall-clock time
    /// is in [`UpstreamHealth::outage_since`].
    outage_since: Option<tokio::time::Instant>,
}

/// What a new subscriber gets first.
pub enum Initial {
    /// The current list.
    Snapshot(Arc<Frame>),
    /// Only the deltas after the client's `Last-Event-ID` (possibly none).
    Resume(Vec<Arc<Frame>>),
    /// Nothing yet: the first list is in flight; its snapshot (or an error) arrives as
    /// an event.
    Pending,
    /// The upstream is failing; the frame says why.
    Failed(Arc<Frame>),
}

impl Upstream {
    pub(super) fn new(key: StreamKey, plugin: Mapper, options: HubOptions, metrics: Arc<Metrics>) -> Upstream {
        let (tx, _) = broadcast::channel(options.queue.max(1));
        Upstream {
            key,
            plugin,
            options,
            metrics,
            state: Mutex::new(State::default()),
            tx,
            subscribers: AtomicUsize::new(0),
            health: Arc::new(UpstreamHealth::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first frames for a new subscriber and its receiver of everything after,
    /// taken under one lock so nothing is missed or repeated. With `only`, the
    /// subscriber sees only objects in those namespaces (an RBAC partition).
    pub(super) fn join(
        &self,
        resume_from: Option<&str>,
        only: Option<&BTreeSet<String>>,
    ) -> (Initial, broadcast::Receiver<Arc<Frame>>) {
        let mut state = self.lock();
        let rx = self.tx.subscribe();
        if let Some((failure, _)) = &state.failure {
            return (Initial::Failed(failure.clone()), rx);
        }
        if !state.warm {
            return (Initial::Pending, rx);
        }
        // A resume with nothing to replay gets a snapshot instead: Periscope's SPA
        // resets its error budget only on a snapshot or a delta (spec 3.4), so a quiet
        // kind resumed with no frame after each server-side close would drift into
        // polling.
        if let Some(id) = resume_from.filter(|id| !id.is_empty()) {
            let visible = |f: &&Arc<Frame>| only.is_none_or(|only| only.contains(&f.namespace));
            let after: Option<Vec<Arc<Frame>>> = if id == state.ring_base {
                Some(state.ring.iter().filter(visible).cloned().collect())
            } else {
                state
                    .ring
                    .iter()
                    .position(|f| f.id == id)
                    .map(|at| state.ring.iter().skip(at + 1).filter(visible).cloned().collect())
            };
            if let Some(after) = after.filter(|frames| !frames.is_empty()) {
                return (Initial::Resume(after), rx);
            }
        }
        let snapshot = match only {
            None => self.snapshot(&mut state),
            Some(only) => self.partial_snapshot(&state, only),
        };
        (Initial::Snapshot(snapshot), rx)
    }

    /// A snapshot of only the objects in `only`'s namespaces, for one partitioned
    /// subscriber (not cached: partitions differ per user).
    pub(super) fn snapshot_of(&self, only: &BTreeSet<String>) -> Option<Arc<Frame>> {
        let state = self.lock();
        state.warm.then(|| self.partial_snapshot(&state, only))
    }

    /// The shared snapshot of the whole scope, if warm.
    pub(super) fn full_snapshot(&self) -> Option<Arc<Frame>> {
        let mut state = self.lock();
        state.warm.then(|| self.snapshot(&mut state))
    }

    fn partial_snapshot(&self, state: &State, only: &BTreeSet<String>) -> Arc<Frame> {
        Arc::new(Frame::snapshot(
            state.list_rv.clone(),
            &self.ordered_items(state, Some(only)),
        ))
    }

    /// The current DTOs (of `only`'s namespaces, when given), ordered and capped as
    /// the kind says, if warm.
    pub(super) fn items(&self, only: Option<&BTreeSet<String>>) -> Option<Vec<Bytes>> {
        let state = self.lock();
        state.warm.then(|| self.ordered_items(&state, only))
    }

    fn ordered_items(&self, state: &State, only: Option<&BTreeSet<String>>) -> Vec<Bytes> {
        let visible = state
            .objects
            .iter()
            .filter(|((namespace, _), _)| only.is_none_or(|only| only.contains(namespace)))
            .map(|(_, stored)| stored);
        match &self.plugin.info().snapshot {
            None => visible.map(|s| s.dto.clone()).collect(),
            Some(policy) => snapshot::apply_keyed(policy, visible.map(|s| (s.sort_key, s.dto.clone())).collect()),
        }
    }

    fn snapshot(&self, state: &mut State) -> Arc<Frame> {
        if let Some(frame) = &state.snapshot {
            return frame.clone();
        }
        let frame = Arc::new(Frame::snapshot(state.list_rv.clone(), &self.ordered_items(state, None)));
        state.snapshot = Some(frame.clone());
        frame
    }

    /// Sends a frame to every subscriber; with the state lock held, so joins see a
    /// consistent cut.
    fn send(&self, _state: &MutexGuard<'_, State>, frame: Arc<Frame>) {
        // No receivers is fine: the upstream lingers without subscribers.
        let _ = self.tx.send(frame);
    }

    /// Ends every subscriber's stream with an `error` frame (the hub retired this
    /// upstream: its kind's plugin was reloaded).
    pub(super) fn close(&self, message: &str) {
        let _ = self.tx.send(Arc::new(Frame::error(message)));
    }

    /// The HTTP status of the current failure, if the upstream is failing.
    pub(super) fn failure_status(&self) -> Option<u16> {
        self.lock().failure.as_ref().map(|(_, status)| *status)
    }

    fn publish_failure(&self, message: String, error: &kube::Error) {
        self.publish_failure_status(message, status_class(error));
    }

    /// Publishes an `error` frame; the store keeps its last good state, and new
    /// subscribers get the error until the next successful list.
    fn publish_failure_status(&self, message: String, status: u16) {
        tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), %message, "upstream failed");
        let frame = Arc::new(Frame::error(&message));
        let mut state = self.lock();
        state.failure = Some((frame.clone(), status));
        self.send(&state, frame);
    }

    fn publish_relist(&self) {
        self.metrics.relisted(&self.key.cluster, &self.key.kind);
        let state = self.lock();
        self.send(&state, Arc::new(Frame::relist()));
    }

    fn replace_all(&self, list_rv: String, objects: BTreeMap<ObjectKey, Stored>) {
        let mut state = self.lock();
        state.objects = objects;
        state.warm = true;
        state.failure = None;
        state.ring.clear();
        state.ring_base.clone_from(&list_rv);
        state.list_rv = list_rv;
        state.snapshot = None;
        let frame = self.snapshot(&mut state);
        self.send(&state, frame);
    }

    /// Brings a warm store to a new list by difference: `added` for what is new,
    /// `modified` for what changed, `deleted` for what is gone, each an ordinary delta
    /// in the ring (nothing at all when nothing changed). When the apiserver's
    /// resourceVersions went backwards (a restored or restarted store), ids from before
    /// could name different states now, so the ring restarts at the new list: an old
    /// `Last-Event-ID` then gets a snapshot, never a stale replay.
    fn converge(&self, list_rv: String, objects: BTreeMap<ObjectKey, Stored>) {
        let mut state = self.lock();
        let went_back = match (state.list_rv.parse::<u64>(), list_rv.parse::<u64>()) {
            (Ok(before), Ok(now)) => now < before,
            _ => state.list_rv != list_rv,
        };
        let old = std::mem::take(&mut state.objects);
        let mut deltas: Vec<(FrameKind, ObjectKey, String, Bytes)> = Vec::new();
        for (key, stored) in &objects {
            match old.get(key) {
                None => deltas.push((FrameKind::Added, key.clone(), stored.rv.clone(), stored.dto.clone())),
                Some(before) if before.dto != stored.dto => {
                    deltas.push((FrameKind::Modified, key.clone(), stored.rv.clone(), stored.dto.clone()));
                }
                Some(_) => {}
            }
        }
        for (key, before) in &old {
            if !objects.contains_key(key) {
                deltas.push((FrameKind::Deleted, key.clone(), list_rv.clone(), before.dto.clone()));
            }
        }
        state.objects = objects;
        state.failure = None;
        state.snapshot = None;
        if went_back {
            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, before = %state.list_rv, now = %list_rv, "resourceVersions went backwards; resume ids restart at the new list");
            state.ring.clear();
            state.ring_base.clone_from(&list_rv);
        }
        state.list_rv = list_rv;
        tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), changes = deltas.len(), "relisted; sent the difference");
        for (kind, key, rv, dto) in deltas {
            let frame = Arc::new(Frame::delta(kind, rv, &key.0, &dto));
            self.push_ring(&mut state, frame.clone());
            self.send(&state, frame);
        }
    }

    fn push_ring(&self, state: &mut State, frame: Arc<Frame>) {
        if state.ring.len() >= self.options.ring.max(1)
            && let Some(evicted) = state.ring.pop_front()
        {
            state.ring_base.clone_from(&evicted.id);
        }
        state.ring.push_back(frame);
    }

    fn apply_delta(&self, kind: FrameKind, key: ObjectKey, resource_version: String, stored: Stored) {
        let frame = Arc::new(Frame::delta(kind, resource_version, &key.0, &stored.dto));
        let mut state = self.lock();
        if kind == FrameKind::Deleted {
            state.objects.remove(&key);
        } else {
            state.objects.insert(key, stored);
        }
        state.snapshot = None;
        self.push_ring(&mut state, frame.clone());
        self.send(&state, frame);
    }

    /// The API of this upstream's scope.
    fn api(&self, client: kube::Client) -> Api<DynamicObject> {
        let info = self.plugin.info();
        let resource = ApiResource {
            group: info.api_group.clone(),
            version: info.api_version.clone(),
            api_version: info.api_version_string(),
            kind: info.kind.clone(),
            plural: info.plural.clone(),
        };
        match (&self.key.namespace, info.namespaced) {
            (Some(ns), true) => Api::namespaced_with(client, ns, &resource),
            _ => Api::all_with(client, &resource),
        }
    }

    /// One list, mapped, ordered and capped like a snapshot, with no watch after it:
    /// a poll of a scope nobody watches.
    pub(super) async fn list_once(&self, client: kube::Client) -> Result<Vec<Bytes>, ListError> {
        let kind = &self.key.kind;
        let (list_rv, objects) = list_all(&self.api(client), self.key.selector.as_deref())
            .await
            .map_err(|error| ListError::Upstream {
                message: format!("list {kind}: {error}"),
                status: status_class(&error),
            })?;
        match map_all(&self.plugin, &self.key, objects).await {
            Ok(mapped) => {
                self.count_left_out(&mapped);
                self.replace_all(list_rv, mapped.objects);
                Ok(self.items(None).unwrap_or_default())
            }
            Err(failure) => {
                self.metrics.mapping_failed(&self.key.cluster, kind);
                tracing::error!(cluster = %self.key.cluster, %kind, %failure, "polling list failed");
                Err(ListError::Upstream {
                    message: format!("map {kind}: {failure}"),
                    status: 500,
                })
            }
        }
    }

    /// The list-then-watch loop; runs until the task is aborted.
    ///
    /// A failure the apiserver may recover from (connection refused, 5xx, 429, a
    /// timeout) starts an *outage*: while it lasts less than `outage_grace` and the store
    /// is warm, subscribers keep their streams (heartbeats go on), new ones get the last
    /// good snapshot, and nothing is published; past the grace an `error` frame goes
    /// out. Any other failure (401, 403, 404…) is published at once. When a list
    /// succeeds again the store converges by difference: what changed goes out as
    /// ordinary deltas. A `410 Expired` still sends `relist` and a fresh snapshot, as
    /// the spec says.
    pub(super) async fn run(self: Arc<Self>, client: kube::Client) {
        let api = self.api(client);
        let kind = &self.key.kind;
        let mut backoff = DefaultBackoff::default();
        let mut expired = false;
        'list: loop {
            let (list_rv, objects) = match self.timed(list_all(&api, self.key.selector.as_deref())).await {
                Ok(listed) => listed,
                Err(error) => {
                    let wait = self.failed(format!("list {kind}: {error}"), &error, &mut backoff);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let count = objects.len();
            let mapped = map_all(&self.plugin, &self.key, objects).await;
            if !self.publish_list(list_rv.clone(), mapped, !expired) {
                tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
                continue;
            }
            expired = false;
            self.recovered();
            tracing::debug!(cluster = %self.key.cluster, %kind, count, rv = %list_rv, "listed");
            let mut rv = list_rv;
            loop {
                let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
                params.bookmarks = true;
                if let Some(selector) = &self.key.selector {
                    params = params.labels(selector);
                }
                let stream = match self.timed(api.watch(&params, &rv)).await {
                    Ok(stream) => stream,
                    Err(kube::Error::Api(status)) if status.code == 410 => {
                        tracing::warn!(cluster = %self.key.cluster, %kind, %rv, "watch expired, relisting");
                        self.publish_relist();
                        expired = true;
                        continue 'list;
                    }
                    Err(error) => {
                        let wait = self.failed(format!("watch {kind}: {error}"), &error, &mut backoff);
                        tokio::time::sleep(wait).await;
                        continue 'list;
                    }
                };
                futures::pin_mut!(stream);
                loop {
                    // A watch that says nothing, not even a bookmark, for this long is
                    // re-opened: a paused apiserver holds connections open in silence.
                    let event = match tokio::time::timeout(self.options.watch_silence, stream.next()).await {
                        Ok(Some(event)) => event,
                        Ok(None) => break,
                        Err(_) => {
                            tracing::debug!(cluster = %self.key.cluster, %kind, "watch silent; re-watching");
                            break;
                        }
                    };
                    let (kind, object) = match event {
                        Ok(WatchEvent::Added(o)) => (FrameKind::Added, o),
                        Ok(WatchEvent::Modified(o)) => (FrameKind::Modified, o),
                        Ok(WatchEvent::Deleted(o)) => (FrameKind::Deleted, o),
                        Ok(WatchEvent::Bookmark(bookmark)) => {
                            rv = bookmark.metadata.resource_version;
                            continue;
                        }
                        Ok(WatchEvent::Error(status))
                            if status.code == 410 || status.reason == "Gone" || status.reason == "Expired" =>
                        {
                            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, %rv, "watch expired, relisting");
                            self.publish_relist();
                            expired = true;
                            continue 'list;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            let message = format!("watch error: {}", status.message);
                            let wait = self.failed(message, &kube::Error::Api(status), &mut backoff);
                            tokio::time::sleep(wait).await;
                            continue 'list;
                        }
                        Err(error) => {
                            // A broken connection or a bad line: watch again from the last version.
                            tracing::debug!(cluster = %self.key.cluster, kind = %self.key.kind, %error, "watch stream failed");
                            break;
                        }
                    };
                    backoff.reset();
                    if let Some(version) = object.metadata.resource_version.clone() {
                        rv = version;
                    }
                    self.map_delta(kind, object).await;
                }
            }
        }
    }

    /// `request` bounded by `watch.request_timeout`; a timeout is a transient failure.
    async fn timed<T>(&self, request: impl Future<Output = kube::Result<T>>) -> kube::Result<T> {
        match tokio::time::timeout(self.options.request_timeout, request).await {
            Ok(result) => result,
            Err(_) => Err(kube::Error::Service(
                format!(
                    "no answer within {:?} (watch.request_timeout)",
                    self.options.request_timeout
                )
                .into(),
            )),
        }
    }

    /// Records a failed list or watch and returns how long to wait before retrying:
    /// published at once unless it is transient and the store has a last good state to
    /// hold, in which case it is published only once the outage outlasts the grace.
    fn failed(&self, message: String, error: &kube::Error, backoff: &mut DefaultBackoff) -> Duration {
        let wait = backoff.next().unwrap_or(Duration::from_secs(30));
        let grace = self.options.outage_grace;
        let mut state = self.lock();
        if !(is_transient(error) && state.warm) || grace.is_zero() {
            drop(state);
            self.publish_failure(message, error);
            return wait;
        }
        if state.outage_since.is_none() {
            state.outage_since = Some(tokio::time::Instant::now());
            *self.health.lock_outage() = Some(now_rfc3339());
            self.metrics.outage_changed(&self.key.cluster, &self.key.kind, 1);
            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), %message, ?grace, "upstream unreachable; holding its streams open");
        }
        if state.failure.is_some() {
            return wait;
        }
        let elapsed = state.outage_since.map(|since| since.elapsed()).unwrap_or_default();
        if elapsed >= grace {
            drop(state);
            self.publish_failure_status(format!("{message} (unreachable for {:.0?})", elapsed), 503);
            return wait;
        }
        tracing::debug!(cluster = %self.key.cluster, kind = %self.key.kind, %message, "upstream still unreachable");
        // Try again when the grace ends at the latest, so the error is not late.
        wait.min(grace - elapsed)
    }

    /// The upstream answered again: the outage, if any, is over.
    fn recovered(&self) {
        let mut state = self.lock();
        if let Some(since) = state.outage_since.take() {
            *self.health.lock_outage() = None;
            self.metrics.outage_changed(&self.key.cluster, &self.key.kind, -1);
            tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), after = ?since.elapsed(), "upstream recovered");
        }
    }

    /// Publishes a mapped list as the new snapshot, or its failure as an `error` frame
    /// (never as an empty snapshot). True when the list was published.
    /// With `converge`, a warm store sends the difference as deltas instead of a
    /// snapshot.
    fn publish_list(&self, list_rv: String, mapped: Result<Mapped, MapFailure>, converge: bool) -> bool {
        match mapped {
            Ok(mapped) => {
                self.count_left_out(&mapped);
                if converge && self.lock().warm {
                    self.converge(list_rv, mapped.objects);
                } else {
                    self.replace_all(list_rv, mapped.objects);
                }
                true
            }
            Err(failure) => {
                self.metrics.mapping_failed(&self.key.cluster, &self.key.kind);
                self.publish_failure_status(format!("map {}: {failure}", self.key.kind), 500);
                false
            }
        }
    }

    fn count_left_out(&self, mapped: &Mapped) {
        if mapped.left_out > 0 {
            self.health.left_out.fetch_add(mapped.left_out, Ordering::Relaxed);
            self.metrics
                .objects_left_out(&self.key.cluster, &self.key.kind, mapped.left_out);
        }
    }

    async fn map_delta(&self, kind: FrameKind, object: DynamicObject) {
        let plugin = self.plugin.clone();
        let object_key = object_key(&object);
        let rv = object.metadata.resource_version.clone().unwrap_or_default();
        let stored_rv = rv.clone();
        let result = tokio::task::spawn_blocking(move || {
            let json = object_json(object, &plugin.info().fields);
            plugin
                .to_dto(&json, time::OffsetDateTime::now_utc())
                .map(|dto| Stored::new(dto, stored_rv, plugin.info()))
        })
        .await;
        match result {
            Ok(Ok(stored)) => self.apply_delta(kind, object_key, rv, stored),
            Ok(Err(error)) => {
                self.health.left_out.fetch_add(1, Ordering::Relaxed);
                self.metrics.objects_left_out(&self.key.cluster, &self.key.kind, 1);
                tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = %object_key.0, name = %object_key.1, %error, "change skipped: plugin failed")
            }
            Err(error) => {
                self.metrics.mapping_failed(&self.key.cluster, &self.key.kind);
                tracing::error!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = %object_key.0, name = %object_key.1, %error, "change skipped: the mapping task failed");
            }
        }
    }
}

/// Lists every object (matching `selector`, when given) in pages; returns the list's
/// resourceVersion.
pub(super) async fn list_all(
    api: &Api<DynamicObject>,
    selector: Option<&str>,
) -> kube::Result<(String, Vec<DynamicObject>)> {
    let mut params = ListParams::default().limit(PAGE_SIZE);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let mut objects = Vec::new();
    loop {
        let page = api.list(&params).await?;
        objects.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((page.metadata.resource_version.unwrap_or_default(), objects)),
        }
    }
}

/// The result of mapping a list: the DTOs, and how many objects were left out
/// because the plugin failed on them.
pub(super) struct Mapped {
    objects: BTreeMap<ObjectKey, Stored>,
    left_out: u64,
}

/// Why a list could not be mapped. Never published as an (empty) snapshot.
#[derive(Debug, thiserror::Error)]
pub(super) enum MapFailure {
    /// The blocking task panicked or was cancelled.
    #[error("the mapping task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The plugin failed every object (quarantined, or faulting on all of them).
    #[error("the plugin failed on every object ({0})")]
    Plugin(String),
}

/// Maps a list on the blocking pool, in plugin batches. Objects that fail alone are
/// left out (counted and logged); a task failure or a plugin failing on every object
/// is an error, so a broken plugin never wipes subscribers' views.
pub(super) async fn map_all(
    plugin: &Mapper,
    key: &StreamKey,
    objects: Vec<DynamicObject>,
) -> Result<Mapped, MapFailure> {
    let plugin = plugin.clone();
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        let fields = &plugin.info().fields;
        let keys: Vec<ObjectKey> = objects.iter().map(object_key).collect();
        let rvs: std::collections::HashMap<ObjectKey, String> = objects
            .iter()
            .map(|o| (object_key(o), o.metadata.resource_version.clone().unwrap_or_default()))
            .collect();
        let json: Vec<String> = objects.into_iter().map(|o| object_json(o, fields)).collect();
        let results = plugin.to_dto_batch(&json, time::OffsetDateTime::now_utc());
        let total = results.len();
        let mut mapped = Mapped {
            objects: BTreeMap::new(),
            left_out: 0,
        };
        let mut last_fault = None;
        for (object_key, result) in keys.into_iter().zip(results) {
            match result {
                Ok(dto) => {
                    let rv = rvs.get(&object_key).cloned().unwrap_or_default();
                    mapped.objects.insert(object_key, Stored::new(dto, rv, plugin.info()));
                }
                Err(error) => {
                    mapped.left_out += 1;
                    tracing::warn!(cluster = %key.cluster, kind = %key.kind, namespace = %object_key.0, name = %object_key.1, %error, "object left out: plugin failed");
                    if !matches!(error, crate::plugin::CallError::Rejected { .. }) {
                        last_fault = Some(error.to_string());
                    }
                }
            }
        }
        match last_fault {
            Some(fault) if total > 0 && mapped.objects.is_empty() => Err(MapFailure::Plugin(fault)),
            _ => Ok(mapped),
        }
    })
    .await?
}

/// Whether the apiserver may recover from `error` by itself: it was unreachable, slow,
/// overloaded or failing (5xx, 429), not refusing the request.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The HTTP status a polling request answers for an apiserver failure (spec section 2):
/// the Kubernetes error class where there is one, else 500.
fn status_class(error: &kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => match (status.code, status.reason.as_str()) {
            (403, _) | (_, "Forbidden") => 403,
            (401, _) | (_, "Unauthorized") => 401,
            (404, _) | (_, "NotFound") => 404,
            (409, _) | (_, "Conflict") => 409,
            (504, _) | (_, "Timeout") | (_, "ServerTimeout") => 504,
            (429, _) | (_, "TooManyRequests") => 429,
            (400, _) | (_, "BadRequest") => 400,
            _ => 500,
        },
        _ => 500,
    }
}

fn object_key(object: &DynamicObject) -> ObjectKey {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// The object as the plugin gets it: `managedFields` stripped and, when the plugin
/// declares the top-level fields it reads, everything else dropped.
fn object_json(object: DynamicObject, fields: &[String]) -> String {
    // The golden runner strips with the same function, so golden cases see exactly
    // what a plugin sees here.
    let DynamicObject { types, metadata, data } = object;
    let mut map = match data {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(types) = types {
        map.insert("apiVersion".into(), types.api_version.into());
        map.insert("kind".into(), types.kind.into());
    }
    map.insert("metadata".into(), serde_json::to_value(metadata).unwrap_or_default());
    let mut object = serde_json::Value::Object(map);
    periscope_golden::strip(&mut object, fields);
    serde_json::to_string(&object).unwrap_or_default()
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::plugin::{PluginRuntime, RuntimeOptions};

    fn pods_upstream() -> Upstream {
        let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
        let plugin = runtime
            .load_bundled()
            .unwrap()
            .into_iter()
            .find(|p| p.info().token == "pods")
            .unwrap();
        let key = StreamKey {
            cluster: "test".into(),
            kind: "pods".into(),
            namespace: None,
            selector: None,
        };
        Upstream::new(
            key,
            Mapper::Plugin(plugin),
            HubOptions::default(),
            Arc::new(Metrics::new()),
        )
    }

    #[tokio::test]
    async fn a_panicked_mapping_task_is_an_error_frame_never_an_empty_snapshot() {
        let upstream = pods_upstream();
        let (_, mut rx) = upstream.join(None, None);
        let panicked = tokio::task::spawn_blocking(|| -> () { panic!("mapping bug") })
            .await
            .unwrap_err();
        assert!(!upstream.publish_list("7".into(), Err(MapFailure::Task(panicked)), true));
        let frame = rx.recv().await.unwrap();
        assert_eq!(frame.kind, FrameKind::Error);
        assert!(super::super::error_message(&frame).contains("mapping task failed"));
        assert!(upstream.items(None).is_none(), "no snapshot was published");
        assert!(matches!(upstream.join(None, None).0, Initial::Failed(_)));
    }
}
