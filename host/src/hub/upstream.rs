//! One upstream: the glue of one [`StreamKey`]'s stages, shared by every subscriber
//! of that key. Its [`Source`] lists and watches, [`map`](super::map) turns raw
//! objects into DTOs, its [`Store`] keeps them and says which frames to publish, and
//! the upstream broadcasts those frames under the store's lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kube::api::DynamicObject;
use tokio::sync::broadcast;

use super::frame::{Frame, FrameKind};
use super::map::{self, Listing, MapFailure, Mapped};
use super::source::{Event, Source};
use super::store::{ObjectKey, Store, Stored};
use super::view::Mapper;
use super::{HubOptions, ListError, StreamKey, UpstreamHealth};
use crate::metrics::Metrics;
use crate::plugin::CallError;

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

struct State {
    store: Store,
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
        let store = Store::new(options.ring, plugin.info().snapshot.clone());
        Upstream {
            key,
            plugin,
            options,
            metrics,
            state: Mutex::new(State { store, failure: None }),
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
        if let Some(after) = resume_from.and_then(|id| state.store.resume(id, only)) {
            return (Initial::Resume(after), rx);
        }
        let snapshot = match only {
            None => state.store.snapshot(),
            Some(only) => state.store.snapshot_of(only),
        };
        // No snapshot yet: the first list is in flight.
        (snapshot.map_or(Initial::Pending, Initial::Snapshot), rx)
    }

    /// A snapshot of only the objects in `only`'s namespaces, for one partitioned
    /// subscriber, if warm.
    pub(super) fn snapshot_of(&self, only: &BTreeSet<String>) -> Option<Arc<Frame>> {
        self.lock().store.snapshot_of(only)
    }

    /// The shared snapshot of the whole scope, if warm.
    pub(super) fn full_snapshot(&self) -> Option<Arc<Frame>> {
        self.lock().store.snapshot()
    }

    /// The current DTOs (of `only`'s namespaces, when given), ordered and capped as
    /// the kind says, if warm.
    pub(super) fn items(&self, only: Option<&BTreeSet<String>>) -> Option<Vec<Bytes>> {
        self.lock().store.items(only)
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
        state.failure = None;
        let frame = state.store.replace(list_rv, objects);
        self.send(&state, frame);
    }

    /// Converges a warm store to a new list by difference (see [`Store::converge`]).
    fn converge(&self, list_rv: String, objects: BTreeMap<ObjectKey, Stored>) {
        let mut state = self.lock();
        state.failure = None;
        let now = list_rv.clone();
        let converged = state.store.converge(list_rv, objects);
        if let Some(before) = &converged.rewound_from {
            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, %before, %now, "resourceVersions went backwards; resume ids restart at the new list");
        }
        tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), changes = converged.frames.len(), "relisted; sent the difference");
        for frame in converged.frames {
            self.send(&state, frame);
        }
    }

    fn apply_delta(&self, kind: FrameKind, key: ObjectKey, stored: Stored) {
        let mut state = self.lock();
        let frame = state.store.apply(kind, key, stored);
        self.send(&state, frame);
    }

    /// A source of this upstream's scope.
    fn source(&self, client: kube::Client) -> Source {
        Source::new(client, self.plugin.info(), self.key.clone(), &self.options)
    }

    /// Feeds a page to the list being mapped; a first page starts a new list, mapped
    /// as of now.
    async fn page(
        &self,
        listing: &mut Option<Listing>,
        items: Vec<Box<serde_json::value::RawValue>>,
        first: bool,
    ) -> Result<(), MapFailure> {
        if first {
            *listing = Some(Listing::new(
                self.plugin.clone(),
                self.key.clone(),
                time::OffsetDateTime::now_utc(),
            ));
        }
        match listing {
            Some(listing) => listing.push(items).await,
            None => Ok(()),
        }
    }

    /// One list, mapped, ordered and capped like a snapshot, with no watch after it:
    /// a poll of a scope nobody watches.
    pub(super) async fn list_once(&self, client: kube::Client) -> Result<Vec<Bytes>, ListError> {
        let mut source = self.source(client).paged();
        let mut listing = None;
        let mapped = loop {
            match source.next().await {
                Event::Page { items, first } => {
                    if let Err(failure) = self.page(&mut listing, items, first).await {
                        break Err(failure);
                    }
                }
                Event::Listed { rv, .. } => match listing.take() {
                    Some(listing) => break listing.finish().await.map(|mapped| (rv, mapped)),
                    None => break Ok((rv, Mapped::default())),
                },
                Event::Failed { message, status } => return Err(ListError::Upstream { message, status }),
                // A source with no stored list reports every failure at once.
                Event::Changed(..) | Event::Expired | Event::OutageStarted | Event::OutageEnded { .. } => {}
            }
        };
        let kind = &self.key.kind;
        match mapped {
            Ok((list_rv, mapped)) => {
                self.count_left_out(&mapped);
                self.replace_all(list_rv, mapped.objects);
                Ok(self.items(None).unwrap_or_default())
            }
            Err(failure) => {
                self.metrics.mapping_failed(&self.key.cluster, kind);
                tracing::error!(cluster = %self.key.cluster, %kind, %failure, "polling list failed");
                Err(ListError::Upstream {
                    message: format!("map {kind}: {failure}"),
                    status: failure.status(),
                })
            }
        }
    }

    /// The upstream's loop: the source's events, mapped, stored and published; runs
    /// until the task is aborted.
    ///
    /// Within an outage's grace nothing is published: subscribers keep their streams
    /// (heartbeats go on) and new ones get the last good snapshot. When a list
    /// succeeds again the store converges by difference: what changed goes out as
    /// ordinary deltas. A `410 Expired` sends `relist` and then a fresh snapshot, as
    /// the spec says.
    pub(super) async fn run(self: Arc<Self>, client: kube::Client) {
        let mut source = self.source(client);
        let mut listing = None;
        loop {
            match source.next().await {
                Event::Page { items, first } => {
                    if let Err(failure) = self.page(&mut listing, items, first).await {
                        listing = None;
                        self.publish_list(String::new(), Err(failure), false);
                        self.retry(&mut source);
                    }
                }
                Event::Listed { rv, converge } => {
                    let mapped = match listing.take() {
                        Some(listing) => listing.finish().await,
                        None => Ok(Mapped::default()),
                    };
                    let count = mapped.as_ref().map_or(0, |m| m.objects.len());
                    if self.publish_list(rv.clone(), mapped, converge) {
                        tracing::debug!(cluster = %self.key.cluster, kind = %self.key.kind, count, %rv, "listed");
                    } else {
                        self.retry(&mut source);
                    }
                }
                Event::Changed(kind, object) => {
                    if let Err(quarantined) = self.map_delta(kind, object).await {
                        // Changes from here on would be skipped unseen: fail the
                        // scope's streams now and relist once the plugin is back, so
                        // the store converges and no change made meanwhile is lost.
                        self.publish_failure_status(format!("map {}: {quarantined}", self.key.kind), 503);
                        self.retry(&mut source);
                    }
                }
                Event::Expired => self.publish_relist(),
                Event::Failed { message, status } => self.publish_failure_status(message, status),
                Event::OutageStarted => {
                    *self.health.lock_outage() = Some(now_rfc3339());
                    self.metrics.outage_changed(&self.key.cluster, &self.key.kind, 1);
                }
                Event::OutageEnded { after } => {
                    *self.health.lock_outage() = None;
                    self.metrics.outage_changed(&self.key.cluster, &self.key.kind, -1);
                    tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), ?after, "upstream recovered");
                }
            }
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
                if converge && self.lock().store.is_warm() {
                    self.converge(list_rv, mapped.objects);
                } else {
                    self.replace_all(list_rv, mapped.objects);
                }
                true
            }
            Err(failure) => {
                self.metrics.mapping_failed(&self.key.cluster, &self.key.kind);
                self.publish_failure_status(format!("map {}: {failure}", self.key.kind), failure.status());
                false
            }
        }
    }

    /// Lists again after a failure: when the plugin is quarantined, once its rest is
    /// over (a list before would fail again); otherwise after the source's backoff.
    fn retry(&self, source: &mut Source) {
        match self.plugin.quarantined_for() {
            Some(rest) => source.retry_after(rest + Duration::from_millis(50)),
            None => source.retry(),
        }
    }

    fn count_left_out(&self, mapped: &Mapped) {
        if mapped.left_out > 0 {
            self.health.left_out.fetch_add(mapped.left_out, Ordering::Relaxed);
            self.metrics
                .objects_left_out(&self.key.cluster, &self.key.kind, mapped.left_out);
        }
    }

    /// Maps and applies one change; a change the plugin fails on alone is skipped
    /// (counted). `Err` when the plugin is quarantined (the error's text).
    async fn map_delta(&self, kind: FrameKind, object: Box<DynamicObject>) -> Result<(), String> {
        let plugin = self.plugin.clone();
        let object_key = map::object_key(&object);
        let result =
            tokio::task::spawn_blocking(move || map::map_object(&plugin, &object, time::OffsetDateTime::now_utc()))
                .await;
        match result {
            Ok(Ok(stored)) => self.apply_delta(kind, object_key, stored),
            Ok(Err(error)) => {
                if matches!(error, CallError::Quarantined { .. }) {
                    return Err(error.to_string());
                }
                self.health.left_out.fetch_add(1, Ordering::Relaxed);
                self.metrics.objects_left_out(&self.key.cluster, &self.key.kind, 1);
                tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = %object_key.0, name = %object_key.1, %error, "change skipped: plugin failed");
                if let Some(rest) = self.plugin.quarantined_for() {
                    return Err(format!(
                        "plugin {} is quarantined after repeated failures ({error}); retrying in {rest:?}",
                        self.key.kind
                    ));
                }
            }
            Err(error) => {
                self.metrics.mapping_failed(&self.key.cluster, &self.key.kind);
                tracing::error!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = %object_key.0, name = %object_key.1, %error, "change skipped: the mapping task failed");
            }
        }
        Ok(())
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

    use std::time::Duration;

    use kube::api::ListParams;

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
        let api = super::super::source::api(client, upstream.plugin.info(), &upstream.key);
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
        let keys: Vec<ObjectKey> = objects.iter().map(map::object_key).collect();
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
            stored.insert(
                key,
                Stored::new(result.unwrap(), String::new(), plugin.info().snapshot.as_ref()),
            );
        }
        upstream.replace_all(list_rv, stored);
        upstream.full_snapshot().unwrap()
    }

    /// One list of `upstream`'s scope through its source and the map stage, mapped
    /// as of `now`.
    async fn list_mapped(upstream: &Upstream, client: kube::Client, now: time::OffsetDateTime) -> (String, Mapped) {
        let mut source = upstream.source(client);
        let mut listing = None;
        loop {
            match source.next().await {
                Event::Page { items, first } => {
                    if first {
                        listing = Some(Listing::new(upstream.plugin.clone(), upstream.key.clone(), now));
                    }
                    assert!(listing.as_mut().unwrap().push(items).await.is_ok());
                }
                Event::Listed { rv, .. } => match listing.unwrap().finish().await {
                    Ok(mapped) => return (rv, mapped),
                    Err(failure) => panic!("{failure}"),
                },
                other => panic!("the list failed: {other:?}"),
            }
        }
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
            let (list_rv, mapped) = list_mapped(&new, client(&sim), now).await;
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
