//! The object store: current objects, one global resourceVersion and a bounded history.
//!
//! Invariants:
//! - Every write takes the next value of one global, strictly increasing resourceVersion
//!   (like etcd's revision) and stamps it on the object.
//! - Every write appends one [`Change`] to the history. The history keeps the last
//!   `history_window` changes; older ones are compacted away and a watch that asks for
//!   a version before the oldest retained change gets `410 Expired`, as with etcd
//!   compaction.
//! - A watch channel carries the current resourceVersion; it is updated while the state
//!   lock is held, so a watcher that reads the history after seeing a version has every
//!   change up to it.
//!
//! - The resource table lives in the same state, so a CustomResourceDefinition and the
//!   resource it defines change in one step: a written definition is served before
//!   the write returns, and deleting one removes every object of its resource (each a
//!   `DELETED` change after the definition's own) and stops serving it.
//!
//! Lists are served from the current state. A paged list reports the first page's
//! resourceVersion on every page but later pages show objects as they are when that
//! page is read; a client that lists then watches from the list's version still ends
//! with the right state, because the watch replays every change after that version.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::crd;
use crate::managed;
use crate::meta;
use crate::resource::{ResourceId, ResourceType, Table};
use crate::status::ApiError;

/// Identity of an object inside one resource: namespace (`""` when cluster-scoped) and
/// name. Ordered by namespace then name, like etcd keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// Namespace, or `""` for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjKey {
    /// The key of an object, read from its metadata.
    pub(crate) fn of(obj: &Value) -> Self {
        Self {
            namespace: meta::namespace(obj).to_string(),
            name: meta::name(obj).to_string(),
        }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One write, as kept in the history and replayed to watches.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub resource: ResourceId,
    pub kind: EventType,
    /// The object after the change (for a deletion: its last state, with the deletion's
    /// resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, so a filtered watch can tell an object that
    /// stopped matching (sent as DELETED) from one that started to (sent as ADDED).
    pub previous: Option<Arc<Value>>,
}

/// A watch asked for changes older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub requested: u64,
    pub oldest: u64,
}

/// How an update treats the stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// A write to the main resource: a resource with a status subresource keeps its
    /// stored status.
    Main,
    /// A write to the `status` subresource: only the status changes.
    Status,
    /// The sim's own controllers and the direct test API: take the object as given.
    Raw,
}

/// How a write through the API is recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Write {
    /// The manager whose `Update` entry in `managedFields` records the write. `None`
    /// stores the object's `managedFields` as given: the sim's own controllers write a
    /// copy of the stored object, and server-side apply computes them itself.
    pub manager: Option<managed::Manager>,
    /// `dryRun=All`: validated, defaulted and answered, never stored.
    pub dry_run: bool,
}

impl Write {
    fn track(&self, rt: &ResourceType, old: Option<&Value>, obj: &mut Value) {
        if let Some(manager) = &self.manager {
            let api_version = rt.api_version();
            let now = meta::now_timestamp();
            let stamp = managed::Stamp {
                api_version: &api_version,
                now: &now,
            };
            managed::track_update(old, obj, manager, rt.is_builtin(), &stamp);
        }
    }
}

/// One page of a list.
pub(crate) struct Page {
    pub rv: u64,
    pub items: Vec<Arc<Value>>,
    /// Key of the last item when more items follow.
    pub next_after: Option<ObjKey>,
    /// Number of objects after this page, when the list was not filtered.
    pub remaining: Option<usize>,
}

struct State {
    rv: u64,
    /// Replaced as a whole when a definition changes, so readers keep a consistent
    /// snapshot.
    table: Arc<Table>,
    objects: HashMap<ResourceId, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    history_window: usize,
    compacted: u64,
    rng: ChaCha8Rng,
}

/// The shared object store. Cheap to share through an `Arc`.
pub(crate) struct Store {
    state: Mutex<State>,
    rv_tx: watch::Sender<u64>,
}

impl Store {
    pub fn new(history_window: usize, seed: u64) -> Self {
        let (rv_tx, _) = watch::channel(0);
        Self {
            state: Mutex::new(State {
                rv: 0,
                table: Arc::new(Table::new()),
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_window: history_window.max(1),
                compacted: 0,
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f057_1300),
            }),
            rv_tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every write is applied
        // in one step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// The resources served now.
    pub fn table(&self) -> Arc<Table> {
        self.lock().table.clone()
    }

    /// Whether the resource is still served (a custom resource stops being served
    /// when its definition is deleted).
    pub fn serves(&self, resource: ResourceId) -> bool {
        self.lock().table.get(resource).is_some()
    }

    /// A receiver that changes whenever the resourceVersion advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.rv_tx.subscribe()
    }

    /// The object with this key, if present.
    pub fn get(&self, resource: ResourceId, key: &ObjKey) -> Option<Arc<Value>> {
        self.lock().objects.get(&resource)?.get(key).cloned()
    }

    /// Number of objects of a resource.
    pub fn count(&self, resource: ResourceId) -> usize {
        self.lock().objects.get(&resource).map_or(0, BTreeMap::len)
    }

    /// A page of objects of one resource, in key order, optionally in one namespace,
    /// starting after `after`, keeping those `filter` accepts (all when `None`).
    ///
    /// Without a filter the page says how many objects follow; with one it only says
    /// whether one more matches, as the real apiserver gives `remainingItemCount` only
    /// for unfiltered lists (counting matches would read every remaining object).
    pub fn list(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
        after: Option<&ObjKey>,
        limit: Option<usize>,
        filter: Option<&dyn Fn(&Value) -> bool>,
    ) -> Page {
        let state = self.lock();
        let empty = BTreeMap::new();
        let map = state.objects.get(&resource).unwrap_or(&empty);
        let lower = match (after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included(ObjKey {
                namespace: ns.to_string(),
                name: String::new(),
            }),
            (None, None) => Bound::Unbounded,
        };
        let accept = |v: &Value| filter.is_none_or(|f| f(v));
        let mut iter = map
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns));
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last = None;
        for (key, value) in iter.by_ref() {
            if !accept(value) {
                continue;
            }
            items.push(value.clone());
            if items.len() == limit {
                last = Some(key.clone());
                break;
            }
        }
        let (more, remaining) = match (&last, filter) {
            (None, _) => (false, Some(0)),
            (Some(_), None) => {
                let n = iter.count();
                (n > 0, Some(n))
            }
            (Some(_), Some(_)) => (iter.any(|(_, v)| accept(v)), None),
        };
        Page {
            rv: state.rv,
            items,
            next_after: if more { last } else { None },
            remaining,
        }
    }

    /// The history after `cursor` together with the current resourceVersion, or
    /// [`Compacted`] when changes after `cursor` have been dropped.
    pub fn changes_since(&self, cursor: u64) -> Result<(Vec<Arc<Change>>, u64), Compacted> {
        let state = self.lock();
        if cursor < state.compacted {
            return Err(Compacted {
                requested: cursor,
                oldest: state.compacted + 1,
            });
        }
        let start = state.history.partition_point(|c| c.rv <= cursor);
        Ok((state.history.range(start..).cloned().collect(), state.rv))
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn compacted_rv(&self) -> u64 {
        self.lock().compacted
    }

    fn commit(
        state: &mut State,
        rv_tx: &watch::Sender<u64>,
        resource: ResourceId,
        kind: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let key = ObjKey::of(&object);
        let objects = state.objects.entry(resource).or_default();
        match kind {
            EventType::Deleted => {
                objects.remove(&key);
            }
            EventType::Added | EventType::Modified => {
                objects.insert(key, object.clone());
            }
        }
        let defines = state.table.get(resource).is_some_and(|r| r.hooks.defines_resources);
        state.history.push_back(Arc::new(Change {
            rv: state.rv,
            resource,
            kind,
            object: object.clone(),
            previous,
        }));
        if defines {
            Self::sync_definition(state, kind, &object);
        }
        while state.history.len() > state.history_window {
            if let Some(old) = state.history.pop_front() {
                state.compacted = old.rv;
            }
        }
        rv_tx.send_replace(state.rv);
    }

    /// Keeps the table in step with a written CustomResourceDefinition: serves what it
    /// defines, or, once it is deleted (or no longer valid, after a raw write), stops
    /// serving it and deletes its objects.
    fn sync_definition(state: &mut State, kind: EventType, definition: &Value) {
        let name = meta::name(definition);
        let row = match kind {
            EventType::Deleted => None,
            EventType::Added | EventType::Modified => crd::row(definition)
                .inspect_err(|problem| tracing::warn!(name, problem, "definition not served"))
                .ok(),
        };
        let table = Arc::make_mut(&mut state.table);
        match row {
            Some(row) => {
                let id = table.define(name, row);
                tracing::debug!(name, id, "definition served");
            }
            None => {
                let Some(id) = table.undefine(name) else { return };
                let objects = state.objects.remove(&id).unwrap_or_default();
                tracing::debug!(name, id, objects = objects.len(), "definition removed");
                for object in objects.into_values() {
                    state.rv += 1;
                    let mut last = (*object).clone();
                    meta::metadata_mut(&mut last).insert("resourceVersion".into(), Value::String(state.rv.to_string()));
                    state.history.push_back(Arc::new(Change {
                        rv: state.rv,
                        resource: id,
                        kind: EventType::Deleted,
                        object: Arc::new(last),
                        previous: Some(object),
                    }));
                }
            }
        }
    }

    /// The row of a served resource, or the 404 of one that is no longer served.
    fn row(state: &State, resource: ResourceId) -> Result<Arc<ResourceType>, ApiError> {
        state.table.get(resource).cloned().ok_or_else(ApiError::not_served)
    }

    /// For a CustomResourceDefinition: what it would serve must not clash with another
    /// served resource.
    fn check_definition(state: &State, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
        if !rt.hooks.defines_resources {
            return Ok(());
        }
        let name = meta::name(obj);
        let row = crd::row(obj).map_err(|message| ApiError::invalid(rt, name, message))?;
        let own = state.table.defined_by(name);
        let clash = state
            .table
            .iter()
            .find(|(id, r)| Some(*id) != own && r.group == row.group && (r.plural == row.plural || r.kind == row.kind));
        match clash {
            Some((_, other)) => Err(ApiError::invalid(
                rt,
                name,
                format!(
                    "spec.names: Invalid value: \"{}\": {} {} is already served",
                    row.plural,
                    other.api_version(),
                    other.kind
                ),
            )),
            None => Ok(()),
        }
    }

    /// Creates an object. Sets uid, resourceVersion, creationTimestamp and generation;
    /// fills `metadata.name` from `generateName`.
    pub fn create(&self, resource: ResourceId, obj: Value) -> Result<Arc<Value>, ApiError> {
        self.create_with(resource, obj, &Write::default())
    }

    /// [`Store::create`] of a write through the API: its manager's managed fields are
    /// recorded, and a dry run returns the object without storing it.
    pub fn create_with(&self, resource: ResourceId, mut obj: Value, write: &Write) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        let state = &mut *state;
        let rt = &*Self::row(state, resource)?;
        stamp_type(rt, &mut obj);
        if meta::name(&obj).is_empty() {
            let generate = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .map(str::to_string);
            match generate {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix = random_suffix(&mut state.rng);
                    meta::metadata_mut(&mut obj).insert("name".into(), Value::String(format!("{prefix}{suffix}")));
                }
                _ => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        validate_name(rt, &obj)?;
        let key = ObjKey::of(&obj);
        if state.objects.get(&resource).is_some_and(|o| o.contains_key(&key)) {
            return Err(ApiError::already_exists(rt, &key.name));
        }
        Self::check_definition(state, rt, &obj)?;
        let rv = state.rv + 1;
        let uid = meta::uid(&mut state.rng);
        // Like the real registries: objects with a desired state track its generation,
        // unless the kind's spec is not reconciled.
        let has_spec = obj.get("spec").is_some() && rt.hooks.generation;
        let m = meta::metadata_mut(&mut obj);
        m.insert("uid".into(), Value::String(uid));
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if !m.contains_key("creationTimestamp") || m["creationTimestamp"].is_null() {
            m.insert("creationTimestamp".into(), Value::String(meta::now_timestamp()));
        }
        if has_spec {
            m.insert("generation".into(), json!(1));
        }
        if !rt.namespaced {
            m.remove("namespace");
        }
        if write.dry_run {
            m.remove("resourceVersion");
        }
        write.track(rt, None, &mut obj);
        let obj = Arc::new(obj);
        if !write.dry_run {
            state.rv = rv;
            Self::commit(state, &self.rv_tx, resource, EventType::Added, obj.clone(), None);
        }
        Ok(obj)
    }

    /// Replaces an object. A `metadata.resourceVersion` in `obj` is a precondition
    /// (409 when stale); immutable metadata is kept; `generation` is bumped when
    /// anything outside `metadata` and `status` changed. An update that changes nothing
    /// is not a write. An object being deleted whose last finalizer this update removes
    /// is removed.
    pub fn update(&self, resource: ResourceId, obj: Value, mode: UpdateMode) -> Result<Arc<Value>, ApiError> {
        self.update_with(resource, obj, mode, &Write::default())
    }

    /// [`Store::update`] of a write through the API (see [`Store::create_with`]).
    pub fn update_with(
        &self,
        resource: ResourceId,
        mut obj: Value,
        mode: UpdateMode,
        write: &Write,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        let state = &mut *state;
        let rt = &*Self::row(state, resource)?;
        stamp_type(rt, &mut obj);
        if !rt.namespaced {
            meta::metadata_mut(&mut obj).remove("namespace");
        }
        let key = ObjKey::of(&obj);
        let Some(current) = state.objects.get(&resource).and_then(|o| o.get(&key)).cloned() else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        let wanted_rv = meta::resource_version(&obj);
        if !wanted_rv.is_empty() && wanted_rv != meta::resource_version(&current) {
            return Err(ApiError::conflict(rt, &key.name));
        }
        match mode {
            UpdateMode::Main if rt.has_status => match current.get("status") {
                Some(status) => obj["status"] = status.clone(),
                None => {
                    if let Some(map) = obj.as_object_mut() {
                        map.remove("status");
                    }
                }
            },
            UpdateMode::Status => {
                let status = obj.get("status").cloned();
                obj = (*current).clone();
                match status {
                    Some(status) => obj["status"] = status,
                    None => {
                        if let Some(map) = obj.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            UpdateMode::Main | UpdateMode::Raw => {}
        }
        // Immutable and server-owned metadata.
        {
            let cur = current.get("metadata").cloned().unwrap_or_default();
            let m = meta::metadata_mut(&mut obj);
            for field in ["uid", "creationTimestamp", "generation"] {
                match cur.get(field) {
                    Some(v) => {
                        m.insert(field.into(), v.clone());
                    }
                    None => {
                        m.remove(field);
                    }
                }
            }
            if let Some(ts) = cur.get("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), ts.clone());
            }
            m.insert(
                "resourceVersion".into(),
                cur.get("resourceVersion").cloned().unwrap_or_default(),
            );
        }
        write.track(rt, Some(&current), &mut obj);
        if spec_of(&obj) != spec_of(&current)
            && let Some(generation) = current.pointer("/metadata/generation").and_then(Value::as_i64)
        {
            meta::metadata_mut(&mut obj).insert("generation".into(), json!(generation + 1));
        }
        if obj == *current {
            return Ok(current);
        }
        Self::check_definition(state, rt, &obj)?;
        if write.dry_run {
            return Ok(Arc::new(obj));
        }
        state.rv += 1;
        let rv = state.rv.to_string();
        meta::metadata_mut(&mut obj).insert("resourceVersion".into(), Value::String(rv));
        // Clearing the last finalizer of a deleting object completes its deletion.
        let finished = meta::is_deleting(&obj) && !meta::has_finalizers(&obj) && meta::has_finalizers(&current);
        let kind = if finished {
            EventType::Deleted
        } else {
            EventType::Modified
        };
        let obj = Arc::new(obj);
        Self::commit(state, &self.rv_tx, resource, kind, obj.clone(), Some(current));
        Ok(obj)
    }

    /// Reads, changes and writes back one object under the store lock, as a PATCH does.
    /// The closure may fail the update (for example with a bad patch).
    pub fn mutate(
        &self,
        resource: ResourceId,
        key: &ObjKey,
        mode: UpdateMode,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        self.mutate_with(resource, key, mode, &Write::default(), f)
    }

    /// [`Store::mutate`] of a write through the API (see [`Store::create_with`]).
    pub fn mutate_with(
        &self,
        resource: ResourceId,
        key: &ObjKey,
        mode: UpdateMode,
        write: &Write,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = Self::row(&self.lock(), resource)?;
        let Some(current) = self.get(resource, key) else {
            return Err(ApiError::not_found(&rt, &key.name));
        };
        let mut obj = (*current).clone();
        f(&mut obj)?;
        if ObjKey::of(&obj) != *key {
            return Err(ApiError::invalid(
                &rt,
                &key.name,
                "metadata.name: Invalid value: the name and namespace of an object cannot change",
            ));
        }
        // The read and the write are two lock scopes; a concurrent write in between
        // makes the resourceVersion check fail with a conflict, which is what an
        // apiserver does on a racing patch (clients retry).
        self.update_with(resource, obj, mode, write)
    }

    /// Starts a graceful deletion: sets `deletionTimestamp` (and the grace period).
    /// Returns the updated object, or the unchanged one if it was already deleting.
    pub fn mark_deleting(
        &self,
        resource: ResourceId,
        key: &ObjKey,
        grace_seconds: Option<i64>,
    ) -> Result<Arc<Value>, ApiError> {
        self.mutate(resource, key, UpdateMode::Raw, |obj| {
            if meta::is_deleting(obj) {
                return Ok(());
            }
            let m = meta::metadata_mut(obj);
            m.insert("deletionTimestamp".into(), Value::String(meta::now_timestamp()));
            if let Some(grace) = grace_seconds {
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            Ok(())
        })
    }

    /// Removes an object at once and returns its last state.
    pub fn remove(&self, resource: ResourceId, key: &ObjKey) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        let state = &mut *state;
        let rt = Self::row(state, resource)?;
        let Some(current) = state.objects.get(&resource).and_then(|o| o.get(key)).cloned() else {
            return Err(ApiError::not_found(&rt, &key.name));
        };
        state.rv += 1;
        let mut last = (*current).clone();
        meta::metadata_mut(&mut last).insert("resourceVersion".into(), Value::String(state.rv.to_string()));
        let last = Arc::new(last);
        Self::commit(
            state,
            &self.rv_tx,
            resource,
            EventType::Deleted,
            last.clone(),
            Some(current),
        );
        Ok(last)
    }
}

/// Everything that counts as the object's desired state for `generation`: all
/// top-level fields except `metadata` and `status`.
fn spec_of(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "metadata" && k.as_str() != "status")
                .collect()
        })
        .unwrap_or_default()
}

fn stamp_type(rt: &ResourceType, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(rt.api_version()));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
    }
}

fn validate_name(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = meta::name(obj);
    if rt.group == "rbac.authorization.k8s.io" {
        // RBAC names only have to be usable as a path segment, so the bootstrap
        // `system:…` names are valid.
        let problem = match name {
            "." | ".." => Some(format!("may not be '{name}'")),
            _ => ["/", "%"]
                .into_iter()
                .find(|c| name.contains(c))
                .map(|c| format!("may not contain '{c}'")),
        };
        return match problem {
            Some(problem) => Err(ApiError::invalid(
                rt,
                name,
                format!("metadata.name: Invalid value: \"{name}\": {problem}"),
            )),
            None if rt.namespaced && meta::namespace(obj).is_empty() => {
                Err(ApiError::invalid(rt, name, "metadata.namespace: Required value"))
            }
            None => Ok(()),
        };
    }
    let valid = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(ApiError::invalid(
            rt,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and \
                 end with an alphanumeric character"
            ),
        ));
    }
    if rt.namespaced && meta::namespace(obj).is_empty() {
        return Err(ApiError::invalid(rt, name, "metadata.namespace: Required value"));
    }
    Ok(())
}

/// Five characters from the alphabet Kubernetes uses for generated names.
pub(crate) fn random_suffix(rng: &mut impl rand::RngCore) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::builtin_id;

    fn pods() -> ResourceId {
        builtin_id("pods").unwrap()
    }

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "x"}},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn writes_take_increasing_versions_and_conflict_on_stale_ones() {
        let store = Store::new(100, 1);
        let a = store.create(pods(), pod("a")).unwrap();
        assert_eq!(meta::resource_version(&a), "1");
        assert_eq!(a["kind"], "Pod");
        assert_eq!(a["metadata"]["generation"], 1);
        let mut changed = (*a).clone();
        changed["spec"]["containers"][0]["image"] = json!("nginx:2");
        let b = store.update(pods(), changed.clone(), UpdateMode::Main).unwrap();
        assert_eq!(meta::resource_version(&b), "2");
        assert_eq!(b["metadata"]["generation"], 2);
        assert_eq!(b["metadata"]["uid"], a["metadata"]["uid"]);
        let err = store.update(pods(), changed, UpdateMode::Main).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(store.create(pods(), pod("a")).unwrap_err().reason, "AlreadyExists");
    }

    #[test]
    fn an_update_that_changes_nothing_is_not_a_write() {
        let store = Store::new(100, 1);
        let a = store.create(pods(), pod("a")).unwrap();
        let same = store.update(pods(), (*a).clone(), UpdateMode::Main).unwrap();
        assert_eq!(meta::resource_version(&same), "1");
        assert_eq!(store.current_rv(), 1);
    }

    #[test]
    fn main_resource_writes_keep_the_status() {
        let store = Store::new(100, 1);
        let mut p = pod("a");
        p["status"] = json!({"phase": "Running"});
        let a = store.create(pods(), p).unwrap();
        let mut w = (*a).clone();
        w["status"] = json!({"phase": "Failed"});
        w["metadata"]["labels"]["new"] = json!("1");
        let b = store.update(pods(), w.clone(), UpdateMode::Main).unwrap();
        assert_eq!(b["status"]["phase"], "Running");
        assert_eq!(b["metadata"]["labels"]["new"], "1");
        w["metadata"]["resourceVersion"] = json!(meta::resource_version(&b));
        let c = store.update(pods(), w, UpdateMode::Status).unwrap();
        assert_eq!(c["status"]["phase"], "Failed");
        assert_eq!(c["metadata"]["generation"], 1);
    }

    #[test]
    fn history_is_compacted_to_its_window() {
        let store = Store::new(3, 1);
        for i in 0..5 {
            store.create(pods(), pod(&format!("p{i}"))).unwrap();
        }
        assert_eq!(store.compacted_rv(), 2);
        assert_eq!(
            store.changes_since(1).unwrap_err(),
            Compacted {
                requested: 1,
                oldest: 3
            }
        );
        let (changes, rv) = store.changes_since(2).unwrap();
        assert_eq!(changes.iter().map(|c| c.rv).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(rv, 5);
    }

    #[test]
    fn lists_page_in_key_order() {
        let store = Store::new(100, 1);
        for i in [3, 1, 2, 5, 4] {
            store.create(pods(), pod(&format!("p{i}"))).unwrap();
        }
        let first = store.list(pods(), Some("default"), None, Some(2), None);
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.remaining, Some(3));
        let after = first.next_after.unwrap();
        assert_eq!(after.name, "p2");
        let second = store.list(pods(), Some("default"), Some(&after), Some(10), None);
        assert_eq!(
            second
                .items
                .iter()
                .map(|o| meta::name(o).to_string())
                .collect::<Vec<_>>(),
            ["p3", "p4", "p5"]
        );
        assert!(second.next_after.is_none());
        assert!(store.list(pods(), Some("other"), None, None, None).items.is_empty());
    }

    #[test]
    fn finalizers_hold_a_deletion_until_cleared() {
        let store = Store::new(100, 1);
        let mut p = pod("a");
        p["metadata"]["finalizers"] = json!(["example.com/hold"]);
        store.create(pods(), p).unwrap();
        let key = ObjKey {
            namespace: "default".into(),
            name: "a".into(),
        };
        let deleting = store.mark_deleting(pods(), &key, Some(0)).unwrap();
        assert!(meta::is_deleting(&deleting));
        store
            .mutate(pods(), &key, UpdateMode::Main, |o| {
                o["metadata"]["finalizers"] = json!([]);
                Ok(())
            })
            .unwrap();
        assert!(store.get(pods(), &key).is_none());
    }

    fn definitions() -> ResourceId {
        builtin_id("customresourcedefinitions").unwrap()
    }

    fn widget_definition() -> Value {
        json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget" },
                "versions": [{ "name": "v1", "served": true, "storage": true }],
            },
        })
    }

    #[test]
    fn a_definition_serves_its_resource_until_deleted_with_its_objects() {
        let store = Store::new(100, 1);
        store.create(definitions(), widget_definition()).unwrap();
        let (widgets, _) = store
            .table()
            .by_path("example.com", "v1", "widgets")
            .map(|(id, r)| (id, r.clone()))
            .unwrap();
        let w = store
            .create(
                widgets,
                json!({"metadata": {"name": "w", "namespace": "a"}, "spec": {"size": 1}}),
            )
            .unwrap();
        assert_eq!(w["apiVersion"], "example.com/v1");
        assert_eq!(w["kind"], "Widget");
        assert_eq!(w["metadata"]["generation"], 1);
        let before = store.current_rv();

        let key = ObjKey {
            namespace: String::new(),
            name: "widgets.example.com".into(),
        };
        store.remove(definitions(), &key).unwrap();
        assert!(!store.serves(widgets));
        assert!(store.table().by_path("example.com", "v1", "widgets").is_none());
        assert_eq!(store.count(widgets), 0);
        let (changes, _) = store.changes_since(before).unwrap();
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.resource, c.kind, meta::name(&c.object).to_string()))
            .collect();
        assert_eq!(
            seen,
            [
                (definitions(), EventType::Deleted, "widgets.example.com".to_string()),
                (widgets, EventType::Deleted, "w".to_string()),
            ]
        );
        assert_eq!(
            store
                .create(widgets, json!({"metadata": {"name": "x", "namespace": "a"}}))
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn definitions_that_clash_or_are_invalid_are_refused() {
        let store = Store::new(100, 1);
        let mut ingresses = widget_definition();
        ingresses["metadata"]["name"] = json!("ingresses.networking.k8s.io");
        ingresses["spec"]["group"] = json!("networking.k8s.io");
        ingresses["spec"]["names"] = json!({ "plural": "ingresses", "kind": "Ingress" });
        let err = store.create(definitions(), ingresses).unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        assert!(
            err.message.contains("networking.k8s.io/v1 Ingress is already served"),
            "{}",
            err.message
        );
        let mut unnamed = widget_definition();
        unnamed["metadata"]["name"] = json!("widgets");
        assert_eq!(store.create(definitions(), unnamed).unwrap_err().code, 422);
        // Changing a served definition keeps its resource.
        let created = store.create(definitions(), widget_definition()).unwrap();
        let id = store.table().defined_by("widgets.example.com").unwrap();
        let mut changed = (*created).clone();
        changed["spec"]["names"]["shortNames"] = json!(["wd"]);
        store.update(definitions(), changed, UpdateMode::Main).unwrap();
        assert_eq!(
            store.table().get(id).map(|r| r.short_names.clone()),
            Some(vec!["wd".to_string()])
        );
    }
}
