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
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, oneshot};

use super::frame::{Frame, FrameKind};
use super::view::Mapper;
use super::{HubOptions, ListError, StreamKey, UpstreamHealth};
use crate::metrics::Metrics;
use crate::plugin::{Fields, KindInfo};
use crate::snapshot;

/// How many times one list starts again from its first page after a `continue` token
/// expired before the list counts as failed (and is retried with the backoff).
const CONTINUE_RESTARTS: u32 = 3;
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
        let pages = Pages::new(
            client.clone(),
            &self.api(client),
            self.options.list_page_size,
            self.key.selector.as_deref(),
        );
        match self
            .list_mapped(|token| pages.fetch(token), time::OffsetDateTime::now_utc())
            .await
        {
            Ok((list_rv, mapped)) => {
                self.count_left_out(&mapped);
                self.replace_all(list_rv, mapped.objects);
                Ok(self.items(None).unwrap_or_default())
            }
            Err(ListFailed::Upstream(error)) => Err(ListError::Upstream {
                message: format!("list {kind}: {error}"),
                status: status_class(&error),
            }),
            Err(ListFailed::Mapping(failure)) => {
                self.metrics.mapping_failed(&self.key.cluster, kind);
                tracing::error!(cluster = %self.key.cluster, %kind, %failure, "polling list failed");
                Err(ListError::Upstream {
                    message: format!("map {kind}: {failure}"),
                    status: 500,
                })
            }
        }
    }

    /// Lists the scope page by page (`fetch` gets each page's `continue` token, `None`
    /// for the first) and maps each page on the blocking pool while the next one is
    /// fetched, so at most two pages are held at a time, and no page is ever a tree:
    /// items stay JSON text until the plugin parses them. Nothing is published: the
    /// caller publishes the whole list, so subscribers get one snapshot at the list's
    /// resourceVersion. A `410` for an expired `continue` token drops what was mapped
    /// and starts again from the first page (up to [`CONTINUE_RESTARTS`] times), so a
    /// snapshot never mixes two resourceVersions. Each page is bounded by
    /// `watch.request_timeout`; `now` is the mapping time of the whole list.
    async fn list_mapped<F, Fut>(&self, mut fetch: F, now: time::OffsetDateTime) -> Result<(String, Mapped), ListFailed>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = kube::Result<String>>,
    {
        let mut restarts = 0;
        'restart: loop {
            let mut listing = Listing::default();
            let mut token: Option<String> = None;
            let mut mapping: Option<tokio::task::JoinHandle<serde_json::Result<PageMapped>>> = None;
            loop {
                let fetched = self.timed(fetch(token.clone())).await;
                // The previous page was mapped while this one was fetched.
                if let Some(task) = mapping.take() {
                    listing.absorb(task.await)?;
                }
                let text = match fetched {
                    Ok(text) => text,
                    Err(kube::Error::Api(status)) if token.is_some() && is_expired(&status) => {
                        restarts += 1;
                        if restarts > CONTINUE_RESTARTS {
                            return Err(ListFailed::Upstream(kube::Error::Api(status)));
                        }
                        tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), pages = listing.pages, "continue token expired; listing again from the first page");
                        continue 'restart;
                    }
                    Err(error) => return Err(ListFailed::Upstream(error)),
                };
                let (meta_tx, meta_rx) = oneshot::channel();
                let plugin = self.plugin.clone();
                let key = self.key.clone();
                let task = tokio::task::spawn_blocking(move || map_page(&plugin, &key, &text, meta_tx, now));
                let Ok(meta) = meta_rx.await else {
                    // The page is not a list (or the task died before reading it).
                    return Err(match task.await {
                        Ok(Err(error)) => ListFailed::Upstream(kube::Error::SerdeError(error)),
                        Ok(Ok(_)) => ListFailed::Upstream(kube::Error::Service("a list page had no metadata".into())),
                        Err(error) => ListFailed::Mapping(MapFailure::Task(error)),
                    });
                };
                listing.list_rv = meta.resource_version.unwrap_or_default();
                listing.pages += 1;
                match meta.continue_.filter(|c| !c.is_empty()) {
                    Some(next) => {
                        token = Some(next);
                        mapping = Some(task);
                    }
                    None => {
                        listing.absorb(task.await)?;
                        return listing.finish();
                    }
                }
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
        let api = self.api(client.clone());
        let pages = Pages::new(client, &api, self.options.list_page_size, self.key.selector.as_deref());
        let kind = &self.key.kind;
        let mut backoff = DefaultBackoff::default();
        let mut expired = false;
        'list: loop {
            let listed = self
                .list_mapped(|token| pages.fetch(token), time::OffsetDateTime::now_utc())
                .await;
            let (list_rv, mapped) = match listed {
                Ok((list_rv, mapped)) => (list_rv, Ok(mapped)),
                Err(ListFailed::Upstream(error)) => {
                    let wait = self.failed(format!("list {kind}: {error}"), &error, &mut backoff);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(ListFailed::Mapping(failure)) => (String::new(), Err(failure)),
            };
            let count = mapped.as_ref().map_or(0, |m| m.objects.len());
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
            let json =
                object_json(&object, &plugin.info().fields).map_err(|error| crate::plugin::CallError::Rejected {
                    token: plugin.info().token.clone(),
                    message: format!("malformed object: {error}"),
                })?;
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

/// Fetches the pages of one scope's list as text.
struct Pages {
    client: kube::Client,
    url: String,
    limit: u32,
    selector: Option<String>,
}

impl Pages {
    fn new(client: kube::Client, api: &Api<DynamicObject>, limit: u32, selector: Option<&str>) -> Pages {
        Pages {
            client,
            url: api.resource_url().to_string(),
            limit: limit.max(1),
            selector: selector.map(str::to_string),
        }
    }

    /// One page: the first when `token` is `None`, else the one that token continues to.
    async fn fetch(&self, token: Option<String>) -> kube::Result<String> {
        let mut params = ListParams::default().limit(self.limit);
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        if let Some(token) = token {
            params = params.continue_token(&token);
        }
        let request = kube::core::Request::new(&self.url)
            .list(&params)
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await
    }
}

/// A list page as the apiserver sends it: the list's metadata and each item's JSON
/// text, borrowed from the response (no tree is built).
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

/// A list page's `metadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// Why a list gave no snapshot.
enum ListFailed {
    /// A page was not answered, refused, or not a list.
    Upstream(kube::Error),
    /// Mapping failed; never published as an (empty) snapshot.
    Mapping(MapFailure),
}

impl From<MapFailure> for ListFailed {
    fn from(failure: MapFailure) -> Self {
        ListFailed::Mapping(failure)
    }
}

/// One page, mapped.
struct PageMapped {
    stored: Vec<(ObjectKey, Stored)>,
    /// Items in the page.
    total: usize,
    left_out: u64,
    /// The last fault (not a plugin's rejection) among the page's objects.
    last_fault: Option<String>,
}

/// A list being mapped page by page.
#[derive(Default)]
struct Listing {
    list_rv: String,
    objects: BTreeMap<ObjectKey, Stored>,
    pages: usize,
    total: usize,
    left_out: u64,
    last_fault: Option<String>,
}

impl Listing {
    fn absorb(
        &mut self,
        page: Result<serde_json::Result<PageMapped>, tokio::task::JoinError>,
    ) -> Result<(), ListFailed> {
        let page = page
            .map_err(MapFailure::Task)?
            .map_err(|error| ListFailed::Upstream(kube::Error::SerdeError(error)))?;
        self.total += page.total;
        self.left_out += page.left_out;
        if page.last_fault.is_some() {
            self.last_fault = page.last_fault;
        }
        self.objects.extend(page.stored);
        Ok(())
    }

    /// The mapped list, or an error when the plugin failed on every object.
    fn finish(self) -> Result<(String, Mapped), ListFailed> {
        match self.last_fault {
            Some(fault) if self.total > 0 && self.objects.is_empty() => {
                Err(ListFailed::Mapping(MapFailure::Plugin(fault)))
            }
            _ => Ok((
                self.list_rv,
                Mapped {
                    objects: self.objects,
                    left_out: self.left_out,
                },
            )),
        }
    }
}

/// Parses one page, sends its metadata on `meta` as soon as it is read (so the next
/// page can be fetched while this one is mapped), strips each item as JSON text and
/// maps them in plugin batches. Objects that fail alone are left out (counted and
/// logged). Runs on the blocking pool; the page's text is dropped when it returns.
fn map_page(
    plugin: &Mapper,
    key: &StreamKey,
    text: &str,
    meta: oneshot::Sender<PageMeta>,
    now: time::OffsetDateTime,
) -> serde_json::Result<PageMapped> {
    let page: Page<'_> = serde_json::from_str(text)?;
    // The receiver is gone only when the list was abandoned.
    let _ = meta.send(page.metadata);
    let items = page.items.unwrap_or_default();
    let fields = &plugin.info().fields;
    let mut mapped = PageMapped {
        stored: Vec::with_capacity(items.len()),
        total: items.len(),
        left_out: 0,
        last_fault: None,
    };
    let mut identities = Vec::with_capacity(items.len());
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        // Items were validated as JSON when the page was parsed; a failure here is an
        // object that is not one, which no plugin could map.
        match periscope_golden::strip_raw(item.get(), fields) {
            Ok(stripped) => {
                identities.push(stripped.identity);
                objects.push(stripped.json);
            }
            Err(error) => {
                mapped.left_out += 1;
                tracing::warn!(cluster = %key.cluster, kind = %key.kind, %error, "object left out: not a JSON object");
            }
        }
    }
    let results = plugin.to_dto_batch(&objects, now);
    drop(objects);
    for (identity, result) in identities.into_iter().zip(results) {
        let object_key = (identity.namespace, identity.name);
        match result {
            Ok(dto) => {
                let stored = Stored::new(dto, identity.resource_version, plugin.info());
                mapped.stored.push((object_key, stored));
            }
            Err(error) => {
                mapped.left_out += 1;
                tracing::warn!(cluster = %key.cluster, kind = %key.kind, namespace = %object_key.0, name = %object_key.1, %error, "object left out: plugin failed");
                if !matches!(error, crate::plugin::CallError::Rejected { .. }) {
                    mapped.last_fault = Some(error.to_string());
                }
            }
        }
    }
    Ok(mapped)
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

/// Whether a failed request is the apiserver's `410`: the resourceVersion (of a watch,
/// or of a `continue` token's first page) is older than it keeps.
fn is_expired(status: &kube::core::Status) -> bool {
    status.code == 410 || status.reason == "Gone" || status.reason == "Expired"
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
/// declares the fields it reads, everything else dropped; by the rule the golden
/// runner applies (`periscope_golden::strip_raw`), on the object's JSON text.
fn object_json(object: &DynamicObject, fields: &Fields) -> serde_json::Result<String> {
    let text = serde_json::to_string(object)?;
    Ok(periscope_golden::strip_raw(&text, fields)?.json)
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
    use crate::plugin::{Plugin, PluginRuntime, RuntimeOptions};

    fn bundled() -> Vec<Arc<Plugin>> {
        PluginRuntime::new(RuntimeOptions::default())
            .unwrap()
            .load_bundled()
            .unwrap()
    }

    fn upstream_of(plugin: Arc<Plugin>, options: HubOptions) -> Upstream {
        let key = StreamKey {
            cluster: "test".into(),
            kind: plugin.info().token.clone(),
            namespace: None,
            selector: None,
        };
        Upstream::new(key, Mapper::Plugin(plugin), options, Arc::new(Metrics::new()))
    }

    fn pods_upstream() -> Upstream {
        let plugin = bundled().into_iter().find(|p| p.info().token == "pods").unwrap();
        upstream_of(plugin, HubOptions::default())
    }

    fn client(sim: &periscope_sim::Sim) -> kube::Client {
        kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap()
    }

    /// A seeded demo cluster that holds still: its churn steps once at start and then
    /// not for an hour.
    async fn still_sim(pods: usize) -> periscope_sim::Sim {
        let sim = periscope_sim::Sim::start(periscope_sim::SimOptions {
            seed: 18,
            pods,
            churn_interval: Duration::from_secs(3600),
            ..periscope_sim::SimOptions::default()
        })
        .await
        .unwrap();
        // Wait out the first churn step and what it sets off (pods terminating).
        let mut rv = sim.resource_version();
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let now = sim.resource_version();
            if now == rv {
                return sim;
            }
            rv = now;
        }
    }

    /// How the hub mapped a list before issue 18: kube's `Api::list` per page into
    /// `DynamicObject`s, each rebuilt as a `serde_json::Value`, stripped with
    /// `periscope_golden::strip` and printed, then one `to_dto_batch` for the list.
    /// Kept here as the oracle the streaming list must match byte for byte.
    async fn snapshot_the_old_way(upstream: &Upstream, client: kube::Client, now: time::OffsetDateTime) -> Arc<Frame> {
        let api = upstream.api(client);
        let mut params = ListParams::default().limit(500);
        let mut objects = Vec::new();
        let list_rv = loop {
            let page = api.list(&params).await.unwrap();
            objects.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break page.metadata.resource_version.unwrap_or_default(),
            }
        };
        let plugin = &upstream.plugin;
        let keys: Vec<ObjectKey> = objects.iter().map(object_key).collect();
        let json: Vec<String> = objects
            .into_iter()
            .map(|object| {
                let DynamicObject { types, metadata, data } = object;
                let mut map = match data {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                if let Some(types) = types {
                    map.insert("apiVersion".into(), types.api_version.into());
                    map.insert("kind".into(), types.kind.into());
                }
                map.insert("metadata".into(), serde_json::to_value(metadata).unwrap());
                let mut object = serde_json::Value::Object(map);
                periscope_golden::strip(&mut object, &plugin.info().fields);
                serde_json::to_string(&object).unwrap()
            })
            .collect();
        let mut stored = BTreeMap::new();
        for (key, result) in keys.into_iter().zip(plugin.to_dto_batch(&json, now)) {
            stored.insert(key, Stored::new(result.unwrap(), String::new(), plugin.info()));
        }
        upstream.replace_all(list_rv, stored);
        upstream.full_snapshot().unwrap()
    }

    /// The golden comparison of issue 18: on a seeded cluster, every bundled kind's
    /// snapshot from the streaming list (pages of 100, items never a tree) is byte for
    /// byte the snapshot of the old `DynamicObject` path, at the same mapping time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_streaming_list_gives_the_old_snapshots_byte_for_byte() {
        let sim = still_sim(1500).await;
        let now = time::macros::datetime!(2026-05-01 12:00:00 UTC);
        let options = HubOptions {
            list_page_size: 100,
            ..HubOptions::default()
        };
        let before = sim.resource_version();
        let mut kinds = 0;
        let mut objects = 0;
        for plugin in bundled() {
            let token = plugin.info().token.clone();
            let old = upstream_of(plugin.clone(), options.clone());
            let expected = snapshot_the_old_way(&old, client(&sim), now).await;
            let new = upstream_of(plugin, options.clone());
            let api = new.api(client(&sim));
            let pages = Pages::new(client(&sim), &api, new.options.list_page_size, None);
            let (list_rv, mapped) = match new.list_mapped(|t| pages.fetch(t), now).await {
                Ok(listed) => listed,
                Err(_) => panic!("{token}: the streaming list failed"),
            };
            assert_eq!(mapped.left_out, 0, "{token}");
            objects += mapped.objects.len();
            new.replace_all(list_rv, mapped.objects);
            let actual = new.full_snapshot().unwrap();
            assert_eq!(actual.id, expected.id, "{token}: resourceVersion");
            assert!(
                actual.data == expected.data,
                "{token}: snapshots differ\nold: {}\nnew: {}",
                String::from_utf8_lossy(&expected.data[..expected.data.len().min(600)]),
                String::from_utf8_lossy(&actual.data[..actual.data.len().min(600)]),
            );
            kinds += 1;
        }
        assert_eq!(
            sim.resource_version(),
            before,
            "the cluster changed during the comparison"
        );
        assert_eq!(kinds, 22);
        assert!(objects > 1500, "{objects} objects compared");
    }

    /// A list paged across a `continue` expiry ends in one consistent snapshot: after
    /// the first page the cluster changes and the token expires; the list starts
    /// again and holds exactly the cluster's state at the second list's
    /// resourceVersion (the deleted pod gone, the new one there), nothing of the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_continue_expiry_restarts_the_list_into_one_consistent_snapshot() {
        let sim = periscope_sim::Sim::start(periscope_sim::SimOptions {
            scenario: periscope_sim::Scenario::Empty,
            pods: 250,
            ..periscope_sim::SimOptions::default()
        })
        .await
        .unwrap();
        let plugin = bundled().into_iter().find(|p| p.info().token == "pods").unwrap();
        let upstream = upstream_of(
            plugin,
            HubOptions {
                list_page_size: 100,
                ..HubOptions::default()
            },
        );
        let api = upstream.api(client(&sim));
        let pages = Pages::new(client(&sim), &api, 100, None);
        let first_rv = sim.resource_version();
        let victim = sim.objects("pods", None).unwrap()[0].clone();
        let victim_name = victim["metadata"]["name"].as_str().unwrap().to_string();
        let victim_ns = victim["metadata"]["namespace"].as_str().unwrap().to_string();
        let mut requests: Vec<Option<String>> = Vec::new();
        let fetch = |token: Option<String>| {
            if requests.len() == 1 {
                // Between the first and the second page: a change, and the token expires.
                sim.delete("pods", Some(&victim_ns), &victim_name).unwrap();
                let mut extra = victim.clone();
                extra["metadata"] = serde_json::json!({"name": "arrived-late", "namespace": victim_ns});
                sim.apply(extra).unwrap();
                sim.expire_continues(periscope_sim::FaultCount::Times(1));
            }
            requests.push(token.clone());
            pages.fetch(token)
        };
        let (list_rv, mapped) = match upstream.list_mapped(fetch, time::OffsetDateTime::now_utc()).await {
            Ok(listed) => listed,
            Err(_) => panic!("the list failed"),
        };
        // First page, its expired continuation, then a whole fresh list of three pages.
        assert_eq!(requests.len(), 5, "{requests:?}");
        assert!(requests[0].is_none() && requests[1].is_some() && requests[2].is_none());
        assert_eq!(list_rv, sim.resource_version().to_string());
        assert_ne!(list_rv, first_rv.to_string());
        let names: Vec<&str> = mapped.objects.keys().map(|(_, name)| name.as_str()).collect();
        let expected: Vec<String> = sim
            .objects("pods", None)
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, expected);
        assert!(names.contains(&"arrived-late") && !names.contains(&victim_name.as_str()));
        assert_eq!(mapped.objects.len(), 250);
    }

    #[tokio::test]
    async fn continue_tokens_that_keep_expiring_fail_the_list() {
        let sim = periscope_sim::Sim::start(periscope_sim::SimOptions {
            scenario: periscope_sim::Scenario::Empty,
            pods: 30,
            ..periscope_sim::SimOptions::default()
        })
        .await
        .unwrap();
        let upstream = pods_upstream();
        let api = upstream.api(client(&sim));
        let pages = Pages::new(client(&sim), &api, 10, None);
        sim.expire_continues(periscope_sim::FaultCount::UntilCleared);
        match upstream
            .list_mapped(|t| pages.fetch(t), time::OffsetDateTime::now_utc())
            .await
        {
            Err(ListFailed::Upstream(kube::Error::Api(status))) => assert_eq!(status.code, 410),
            Err(_) => panic!("another failure"),
            Ok(_) => panic!("the list succeeded"),
        }
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
