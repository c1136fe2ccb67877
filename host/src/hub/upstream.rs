//! One upstream: the list-then-watch loop of one [`StreamKey`] and the state it keeps
//! (current DTOs, recent deltas), shared by every subscriber of that key.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
use super::{HubOptions, ListError, StreamKey};
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
}

impl Stored {
    fn new(dto: String, info: &KindInfo) -> Stored {
        let sort_key = info
            .snapshot
            .as_ref()
            .and_then(|policy| snapshot::sort_key(&dto, &policy.sort_field));
        Stored {
            dto: dto.into(),
            sort_key,
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
    /// Objects left out of the store because their mapping failed, since start.
    pub(super) left_out: Arc<AtomicU64>,
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
            left_out: Arc::new(AtomicU64::new(0)),
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

    fn apply_delta(&self, kind: FrameKind, key: ObjectKey, resource_version: String, stored: Stored) {
        let frame = Arc::new(Frame::delta(kind, resource_version, &key.0, &stored.dto));
        let mut state = self.lock();
        if kind == FrameKind::Deleted {
            state.objects.remove(&key);
        } else {
            state.objects.insert(key, stored);
        }
        state.snapshot = None;
        if state.ring.len() >= self.options.ring.max(1)
            && let Some(evicted) = state.ring.pop_front()
        {
            state.ring_base.clone_from(&evicted.id);
        }
        state.ring.push_back(frame.clone());
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
        let (list_rv, objects) = list_all(&self.api(client)).await.map_err(|error| ListError::Upstream {
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
    pub(super) async fn run(self: Arc<Self>, client: kube::Client) {
        let api = self.api(client);
        let kind = &self.key.kind;
        let mut backoff = DefaultBackoff::default();
        'list: loop {
            let (list_rv, objects) = match list_all(&api).await {
                Ok(listed) => listed,
                Err(error) => {
                    self.publish_failure(format!("list {kind}: {error}"), &error);
                    tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
                    continue;
                }
            };
            let count = objects.len();
            let mapped = map_all(&self.plugin, &self.key, objects).await;
            if !self.publish_list(list_rv.clone(), mapped) {
                tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
                continue;
            }
            tracing::debug!(cluster = %self.key.cluster, %kind, count, rv = %list_rv, "listed");
            let mut rv = list_rv;
            loop {
                let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
                params.bookmarks = true;
                let stream = match api.watch(&params, &rv).await {
                    Ok(stream) => stream,
                    Err(kube::Error::Api(status)) if status.code == 410 => {
                        tracing::warn!(cluster = %self.key.cluster, %kind, %rv, "watch expired, relisting");
                        self.publish_relist();
                        continue 'list;
                    }
                    Err(error) => {
                        self.publish_failure(format!("watch {kind}: {error}"), &error);
                        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
                        continue 'list;
                    }
                };
                futures::pin_mut!(stream);
                while let Some(event) = stream.next().await {
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
                            continue 'list;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            let message = format!("watch error: {}", status.message);
                            self.publish_failure(message, &kube::Error::Api(status));
                            tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
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

    /// Publishes a mapped list as the new snapshot, or its failure as an `error` frame
    /// (never as an empty snapshot). True when the list was published.
    fn publish_list(&self, list_rv: String, mapped: Result<Mapped, MapFailure>) -> bool {
        match mapped {
            Ok(mapped) => {
                self.count_left_out(&mapped);
                self.replace_all(list_rv, mapped.objects);
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
            self.left_out.fetch_add(mapped.left_out, Ordering::Relaxed);
            self.metrics
                .objects_left_out(&self.key.cluster, &self.key.kind, mapped.left_out);
        }
    }

    async fn map_delta(&self, kind: FrameKind, object: DynamicObject) {
        let plugin = self.plugin.clone();
        let object_key = object_key(&object);
        let rv = object.metadata.resource_version.clone().unwrap_or_default();
        let result = tokio::task::spawn_blocking(move || {
            let json = object_json(object, &plugin.info().fields);
            plugin
                .to_dto(&json, time::OffsetDateTime::now_utc())
                .map(|dto| Stored::new(dto, plugin.info()))
        })
        .await;
        match result {
            Ok(Ok(stored)) => self.apply_delta(kind, object_key, rv, stored),
            Ok(Err(error)) => {
                self.left_out.fetch_add(1, Ordering::Relaxed);
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

/// Lists every object in pages; returns the list's resourceVersion.
pub(super) async fn list_all(api: &Api<DynamicObject>) -> kube::Result<(String, Vec<DynamicObject>)> {
    let mut params = ListParams::default().limit(PAGE_SIZE);
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
                    mapped.objects.insert(object_key, Stored::new(dto, plugin.info()));
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
fn object_json(mut object: DynamicObject, fields: &[String]) -> String {
    object.metadata.managed_fields = None;
    if !fields.is_empty()
        && let Some(data) = object.data.as_object_mut()
    {
        data.retain(|key, _| fields.iter().any(|f| f == key));
    }
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
        assert!(!upstream.publish_list("7".into(), Err(MapFailure::Task(panicked))));
        let frame = rx.recv().await.unwrap();
        assert_eq!(frame.kind, FrameKind::Error);
        assert!(super::super::error_message(&frame).contains("mapping task failed"));
        assert!(upstream.items(None).is_none(), "no snapshot was published");
        assert!(matches!(upstream.join(None, None).0, Initial::Failed(_)));
    }
}
