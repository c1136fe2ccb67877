//! The store of one upstream: the current DTOs of its scope, their snapshot, and the
//! ring of recent deltas that a `Last-Event-ID` resumes from.
//!
//! Pure and synchronous (no I/O, clock or channel), so its resume rules are tested
//! against a model. Each change returns the frames to publish; the caller broadcasts
//! them under the lock that guards the store, so a joining subscriber sees a
//! consistent cut.
//!
//! Resume ids: a delta's id is the object's resourceVersion (a `deleted` made by
//! converging takes the list's); a snapshot's is the id of the newest change it holds
//! (the newest delta in the ring, else the list's resourceVersion), so a resume from
//! it replays only what came after the snapshot (decision 99). The ring holds the deltas since
//! the last snapshot, at most `ring` of them; an id is resumable when it is the id
//! just before the ring (`ring_base`) or that of a delta in it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use periscope_golden::SnapshotPolicy;

use super::frame::{Frame, FrameKind};
use crate::snapshot;

/// `(namespace, name)`: the identity of an object within a kind.
pub(super) type ObjectKey = (String, String);

/// A stored DTO and, for kinds with a snapshot order, its sort key (computed once,
/// when the DTO arrives).
pub(super) struct Stored {
    dto: Bytes,
    sort_key: Option<time::OffsetDateTime>,
    /// The object's resourceVersion: the id of a delta made for it.
    rv: String,
}

impl Stored {
    pub(super) fn new(dto: String, rv: String, policy: Option<&SnapshotPolicy>) -> Stored {
        let sort_key = policy.and_then(|policy| snapshot::sort_key(&dto, &policy.sort_field));
        Stored {
            dto: dto.into(),
            sort_key,
            rv,
        }
    }
}

/// What converging to a list published.
pub(super) struct Converged {
    /// The difference, as deltas (none when nothing changed).
    pub(super) frames: Vec<Arc<Frame>>,
    /// The list's resourceVersion before, when the new one is older (resume ids then
    /// restarted at the new list).
    pub(super) rewound_from: Option<String>,
}

/// The objects of one scope and the frames a subscriber can resume from.
pub(super) struct Store {
    /// Most deltas kept for resume (at least one).
    ring_len: usize,
    policy: Option<SnapshotPolicy>,
    /// True once a list was stored.
    warm: bool,
    /// Current DTOs, in apiserver list order (namespace, then name).
    objects: BTreeMap<ObjectKey, Stored>,
    /// resourceVersion of the last list.
    list_rv: String,
    /// The snapshot of `objects`, built on demand and dropped by the next change.
    snapshot: Option<Arc<Frame>>,
    /// Deltas since the last snapshot, oldest first.
    ring: VecDeque<Arc<Frame>>,
    /// The id just before the first ring entry: the snapshot id, or the id of the
    /// newest delta evicted from the ring.
    ring_base: String,
    /// `ring_base` also names another delta, evicted before it or still at the ring's
    /// front (a converge's deletions all carry the list's resourceVersion): a client
    /// holding it may have seen only part of that group, so it gets a snapshot.
    base_shared: bool,
}

impl Store {
    /// An empty (cold) store keeping `ring` deltas, ordering snapshots by `policy`.
    pub(super) fn new(ring: usize, policy: Option<SnapshotPolicy>) -> Store {
        Store {
            ring_len: ring.max(1),
            policy,
            warm: false,
            objects: BTreeMap::new(),
            list_rv: String::new(),
            snapshot: None,
            ring: VecDeque::new(),
            ring_base: String::new(),
            base_shared: false,
        }
    }

    pub(super) fn is_warm(&self) -> bool {
        self.warm
    }

    /// Replaces everything with a list; returns its snapshot, and resume ids restart
    /// at it.
    pub(super) fn replace(&mut self, list_rv: String, objects: BTreeMap<ObjectKey, Stored>) -> Arc<Frame> {
        self.objects = objects;
        self.warm = true;
        self.ring.clear();
        self.ring_base.clone_from(&list_rv);
        self.base_shared = false;
        self.list_rv = list_rv;
        self.snapshot = None;
        self.full_snapshot()
    }

    /// Brings the store to a new list by difference: `added` for what is new,
    /// `modified` for what changed, `deleted` for what is gone, each an ordinary delta
    /// in the ring (nothing at all when nothing changed). When the resourceVersions
    /// went backwards (a restored or restarted apiserver store), ids from before could
    /// name different states now, so the ring restarts at the new list: an old
    /// `Last-Event-ID` then gets a snapshot, never a stale replay.
    pub(super) fn converge(&mut self, list_rv: String, objects: BTreeMap<ObjectKey, Stored>) -> Converged {
        let went_back = match (self.list_rv.parse::<u64>(), list_rv.parse::<u64>()) {
            (Ok(before), Ok(now)) => now < before,
            _ => self.list_rv != list_rv,
        };
        let old = std::mem::replace(&mut self.objects, objects);
        let mut frames = Vec::new();
        for (key, stored) in &self.objects {
            let kind = match old.get(key) {
                None => FrameKind::Added,
                Some(before) if before.dto != stored.dto => FrameKind::Modified,
                Some(_) => continue,
            };
            frames.push(Arc::new(Frame::delta(kind, stored.rv.clone(), &key.0, &stored.dto)));
        }
        for (key, before) in &old {
            if !self.objects.contains_key(key) {
                frames.push(Arc::new(Frame::delta(
                    FrameKind::Deleted,
                    list_rv.clone(),
                    &key.0,
                    &before.dto,
                )));
            }
        }
        self.snapshot = None;
        if went_back {
            self.ring.clear();
            self.ring_base.clone_from(&list_rv);
            self.base_shared = false;
        }
        let before = std::mem::replace(&mut self.list_rv, list_rv);
        for frame in &frames {
            self.push_ring(frame.clone());
        }
        Converged {
            frames,
            rewound_from: went_back.then_some(before),
        }
    }

    /// Applies one watched change (`stored` is the deleted object's last state for a
    /// `deleted`); returns its delta.
    pub(super) fn apply(&mut self, kind: FrameKind, key: ObjectKey, stored: Stored) -> Arc<Frame> {
        let frame = Arc::new(Frame::delta(kind, stored.rv.clone(), &key.0, &stored.dto));
        if kind == FrameKind::Deleted {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, stored);
        }
        self.snapshot = None;
        self.push_ring(frame.clone());
        frame
    }

    fn push_ring(&mut self, frame: Arc<Frame>) {
        if self.ring.len() >= self.ring_len
            && let Some(evicted) = self.ring.pop_front()
        {
            let next = self.ring.front().unwrap_or(&frame);
            self.base_shared = self.ring_base == evicted.id || next.id == evicted.id;
            self.ring_base.clone_from(&evicted.id);
        }
        self.ring.push_back(frame);
    }

    /// The deltas after `id` (of `only`'s namespaces, when given), or `None` when the
    /// subscriber needs a snapshot: `id` is not resumable, or nothing follows it.
    /// Nothing to replay gets a snapshot too: Periscope's SPA resets its error budget
    /// only on a snapshot or a delta (spec 3.4), so a quiet kind resumed with no frame
    /// after each server-side close would drift into polling.
    pub(super) fn resume(&self, id: &str, only: Option<&BTreeSet<String>>) -> Option<Vec<Arc<Frame>>> {
        if !self.warm || id.is_empty() {
            return None;
        }
        let from = if id == self.ring_base {
            if self.base_shared {
                return None;
            }
            0
        } else {
            self.ring.iter().position(|f| f.id == id)? + 1
        };
        let visible = |f: &&Arc<Frame>| only.is_none_or(|only| only.contains(&f.namespace));
        let after: Vec<Arc<Frame>> = self.ring.iter().skip(from).filter(visible).cloned().collect();
        (!after.is_empty()).then_some(after)
    }

    /// The shared snapshot of the whole scope, if warm.
    pub(super) fn snapshot(&mut self) -> Option<Arc<Frame>> {
        self.warm.then(|| self.full_snapshot())
    }

    /// The id of the newest change the objects hold: the newest delta's, else the id
    /// just before the ring (the list's resourceVersion, or an evicted delta's).
    fn newest_id(&self) -> String {
        self.ring.back().map_or(&self.ring_base, |frame| &frame.id).clone()
    }

    fn full_snapshot(&mut self) -> Arc<Frame> {
        if let Some(frame) = &self.snapshot {
            return frame.clone();
        }
        let frame = Arc::new(Frame::snapshot(self.newest_id(), &self.ordered_items(None)));
        self.snapshot = Some(frame.clone());
        frame
    }

    /// A snapshot of only the objects in `only`'s namespaces, for one partitioned
    /// subscriber (not cached: partitions differ per user), if warm.
    pub(super) fn snapshot_of(&self, only: &BTreeSet<String>) -> Option<Arc<Frame>> {
        self.warm
            .then(|| Arc::new(Frame::snapshot(self.newest_id(), &self.ordered_items(Some(only)))))
    }

    /// The current DTOs (of `only`'s namespaces, when given), ordered and capped as
    /// the kind says, if warm.
    pub(super) fn items(&self, only: Option<&BTreeSet<String>>) -> Option<Vec<Bytes>> {
        self.warm.then(|| self.ordered_items(only))
    }

    fn ordered_items(&self, only: Option<&BTreeSet<String>>) -> Vec<Bytes> {
        let visible = self
            .objects
            .iter()
            .filter(|((namespace, _), _)| only.is_none_or(|only| only.contains(namespace)))
            .map(|(_, stored)| stored);
        match &self.policy {
            None => visible.map(|s| s.dto.clone()).collect(),
            Some(policy) => snapshot::apply_keyed(policy, visible.map(|s| (s.sort_key, s.dto.clone())).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn dto(ns: &str, name: &str, v: u64) -> String {
        serde_json::json!({"ns": ns, "name": name, "v": v}).to_string()
    }

    fn stored(ns: &str, name: &str, v: u64, rv: &str) -> Stored {
        Stored::new(dto(ns, name, v), rv.into(), None)
    }

    fn key(ns: &str, name: &str) -> ObjectKey {
        (ns.into(), name.into())
    }

    /// `(namespace, name, version, resourceVersion)` as a listed set.
    fn list(objects: &[(&str, &str, u64, &str)]) -> BTreeMap<ObjectKey, Stored> {
        objects
            .iter()
            .map(|&(ns, name, v, rv)| (key(ns, name), stored(ns, name, v, rv)))
            .collect()
    }

    /// Each frame as `kind@id`.
    fn summary(frames: &[Arc<Frame>]) -> Vec<String> {
        frames.iter().map(|f| format!("{}@{}", f.kind.name(), f.id)).collect()
    }

    fn ids(store: &Store, id: &str) -> Option<Vec<String>> {
        store.resume(id, None).map(|frames| summary(&frames))
    }

    /// A warm store listed at `10` with `a/x`, holding `ring` deltas.
    fn listed(ring: usize) -> Store {
        let mut store = Store::new(ring, None);
        store.replace("10".into(), list(&[("a", "x", 1, "5")]));
        store
    }

    #[test]
    fn a_cold_store_has_no_snapshot_and_resumes_nothing() {
        let mut store = Store::new(4, None);
        assert!(store.snapshot().is_none());
        assert!(store.snapshot_of(&BTreeSet::from(["a".to_string()])).is_none());
        assert!(store.items(None).is_none());
        assert!(store.resume("", None).is_none());
        assert!(!store.is_warm());
    }

    #[test]
    fn the_snapshot_is_the_list_at_its_resource_version_and_cached_until_a_change() {
        let mut store = Store::new(4, None);
        let first = store.replace("10".into(), list(&[("b", "y", 1, "6"), ("a", "x", 1, "5")]));
        assert_eq!(first.id, "10");
        assert_eq!(
            String::from_utf8_lossy(&first.data),
            format!(
                r#"{{"resourceVersion":"10","items":[{},{}]}}"#,
                dto("a", "x", 1),
                dto("b", "y", 1)
            )
        );
        assert!(Arc::ptr_eq(&first, &store.snapshot().unwrap()));
        store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", 2, "11"));
        let after = store.snapshot().unwrap();
        assert!(!Arc::ptr_eq(&first, &after));
        assert_eq!(after.id, "11", "a snapshot's id is the newest change it holds");
        assert!(String::from_utf8_lossy(&after.data).contains(r#""resourceVersion":"11""#));
        assert!(String::from_utf8_lossy(&after.data).contains(r#""v":2"#));
    }

    #[test]
    fn a_resume_after_a_snapshot_replays_nothing_the_snapshot_held() {
        let mut store = listed(8);
        for (v, rv) in [(2, "11"), (3, "12"), (4, "13")] {
            store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", v, rv));
        }
        // A client that saw 11 resumes; with its id evicted (or unknown) it would get
        // a snapshot: that snapshot holds 12 and 13, and is named after 13.
        let snapshot = store.snapshot().unwrap();
        assert_eq!(snapshot.id, "13");
        store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", 5, "14"));
        assert_eq!(
            ids(&store, &snapshot.id).unwrap(),
            ["modified@14"],
            "the next resume starts after everything the snapshot contains"
        );
        let partition = store.snapshot_of(&BTreeSet::from(["a".to_string()])).unwrap();
        assert_eq!(partition.id, "14");
        // Past ring evictions, the id is still the newest change.
        let mut small = listed(1);
        for (v, rv) in [(2, "11"), (3, "12")] {
            small.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", v, rv));
        }
        assert_eq!(small.snapshot().unwrap().id, "12");
    }

    #[test]
    fn a_resume_within_the_ring_replays_exactly_the_deltas_after_its_id() {
        let mut store = listed(4);
        for (v, rv) in [(2, "11"), (3, "12"), (4, "13")] {
            store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", v, rv));
        }
        assert_eq!(
            ids(&store, "10").unwrap(),
            ["modified@11", "modified@12", "modified@13"]
        );
        assert_eq!(ids(&store, "11").unwrap(), ["modified@12", "modified@13"]);
        assert_eq!(ids(&store, "12").unwrap(), ["modified@13"]);
        assert_eq!(ids(&store, "13"), None, "nothing to replay gets a snapshot");
        assert_eq!(ids(&store, "7"), None, "an id the store never sent gets a snapshot");
    }

    #[test]
    fn the_ring_evicts_its_oldest_deltas_and_their_ids_then_get_a_snapshot() {
        let mut store = listed(2);
        for (v, rv) in [(2, "11"), (3, "12"), (4, "13")] {
            store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", v, rv));
        }
        assert_eq!(ids(&store, "10"), None, "the snapshot id is no longer resumable");
        assert_eq!(
            ids(&store, "11").unwrap(),
            ["modified@12", "modified@13"],
            "the newest evicted id replays the whole ring"
        );
        assert_eq!(ids(&store, "12").unwrap(), ["modified@13"]);
    }

    #[test]
    fn a_relist_restarts_resume_ids_at_its_snapshot() {
        let mut store = listed(4);
        store.apply(FrameKind::Added, key("a", "y"), stored("a", "y", 1, "11"));
        store.apply(FrameKind::Deleted, key("a", "x"), stored("a", "x", 1, "12"));
        let snapshot = store.replace("20".into(), list(&[("a", "z", 1, "19")]));
        assert_eq!(snapshot.id, "20");
        assert_eq!(ids(&store, "10"), None);
        assert_eq!(ids(&store, "11"), None, "a delta from before the relist");
        store.apply(FrameKind::Added, key("a", "w"), stored("a", "w", 1, "21"));
        assert_eq!(ids(&store, "20").unwrap(), ["added@21"]);
    }

    #[test]
    fn converging_sends_exactly_the_difference_as_resumable_deltas() {
        let mut store = Store::new(8, None);
        store.replace(
            "10".into(),
            list(&[
                ("a", "kept", 1, "3"),
                ("a", "touched", 1, "4"),
                ("a", "changed", 1, "5"),
                ("a", "gone", 1, "6"),
            ]),
        );
        let converged = store.converge(
            "20".into(),
            list(&[
                ("a", "kept", 1, "3"),
                // A new resourceVersion with the same DTO is no change a client sees.
                ("a", "touched", 1, "14"),
                ("a", "changed", 2, "15"),
                ("a", "new", 1, "16"),
            ]),
        );
        assert!(converged.rewound_from.is_none());
        assert_eq!(summary(&converged.frames), ["modified@15", "added@16", "deleted@20"]);
        let gone = &converged.frames[2];
        assert_eq!(gone.namespace, "a");
        assert_eq!(
            &gone.data[..],
            format!(r#"{{"object":{}}}"#, dto("a", "gone", 1)).as_bytes()
        );
        assert_eq!(
            ids(&store, "10").unwrap(),
            ["modified@15", "added@16", "deleted@20"],
            "a subscriber of the old list resumes across the convergence"
        );
        assert_eq!(store.snapshot().unwrap().id, "20");
        assert_eq!(store.items(None).unwrap().len(), 4);
        let again = store.converge("21".into(), list(&[("a", "kept", 1, "3")]));
        assert_eq!(summary(&again.frames), ["deleted@21", "deleted@21", "deleted@21"]);
        let quiet = store.converge("22".into(), list(&[("a", "kept", 1, "3")]));
        assert!(quiet.frames.is_empty(), "nothing changed, nothing sent");
    }

    #[test]
    fn resource_versions_going_backwards_restart_resume_ids_at_the_new_list() {
        let mut store = listed(8);
        store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", 2, "11"));
        let converged = store.converge("3".into(), list(&[("a", "x", 3, "2")]));
        assert_eq!(converged.rewound_from.as_deref(), Some("10"));
        assert_eq!(summary(&converged.frames), ["modified@2"]);
        assert_eq!(
            ids(&store, "10"),
            None,
            "an id from before could name another state now"
        );
        assert_eq!(ids(&store, "11"), None);
        assert_eq!(ids(&store, "3").unwrap(), ["modified@2"]);
        // Ids that are not numbers restart whenever they change.
        let renamed = store.converge("x9".into(), list(&[("a", "x", 3, "2")]));
        assert_eq!(renamed.rewound_from.as_deref(), Some("3"));
        assert_eq!(ids(&store, "3"), None);
    }

    #[test]
    fn partial_snapshots_and_replays_hold_only_the_allowed_namespaces() {
        let mut store = Store::new(8, None);
        store.replace(
            "10".into(),
            list(&[("a", "x", 1, "5"), ("b", "y", 1, "6"), ("", "node", 1, "7")]),
        );
        let only = BTreeSet::from(["b".to_string()]);
        let partial = store.snapshot_of(&only).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&partial.data),
            format!(r#"{{"resourceVersion":"10","items":[{}]}}"#, dto("b", "y", 1))
        );
        assert_eq!(store.items(Some(&only)).unwrap().len(), 1);
        store.apply(FrameKind::Modified, key("a", "x"), stored("a", "x", 2, "11"));
        assert!(store.resume("10", Some(&only)).is_none(), "nothing visible to replay");
        store.apply(FrameKind::Deleted, key("b", "y"), stored("b", "y", 1, "12"));
        let replay = store.resume("10", Some(&only)).unwrap();
        assert_eq!(summary(&replay), ["deleted@12"]);
        assert_eq!(store.items(None).unwrap().len(), 2);
    }

    /// The store against a model: random changes, relists, convergences (some to
    /// older resourceVersions) and resumes. A model client follows every frame, and
    /// clients resume with `Last-Event-ID`s from any earlier point, partitioned or
    /// not: each replay is exactly the model's frames after that id (or a snapshot),
    /// and every client ends with exactly the model's objects.
    mod model {
        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::*;

        const NAMESPACES: [&str; 3] = ["", "a", "b"];
        const KEYS: usize = 8;

        fn object_key(k: usize) -> ObjectKey {
            (NAMESPACES[k % NAMESPACES.len()].to_string(), format!("o{k}"))
        }

        /// How a listed object compares with the model's: 0 unchanged, 1 changed,
        /// 2 a new resourceVersion with the same DTO.
        type Listed = Vec<(usize, u8)>;

        #[derive(Debug, Clone)]
        enum Op {
            /// A watched change of object `key`: added when absent, else modified
            /// (deleted with `delete`).
            Change { key: usize, delete: bool },
            /// A list after a 410: replaced, with a snapshot.
            Relist(Listed),
            /// A list after an outage, converged; `rewind` lists at an older
            /// resourceVersion.
            Converge { listed: Listed, rewind: bool },
            /// A client that saw the frames up to `at` resumes with that id, seeing
            /// the namespaces of `only` (a mask of [`NAMESPACES`]) or all.
            Resume { at: Index, only: Option<[bool; 3]> },
            /// A client joins with a snapshot.
            Join,
        }

        fn op() -> impl Strategy<Value = Op> {
            let listed = || prop::collection::vec((0..KEYS, 0..3u8), 0..KEYS);
            prop_oneof![
                4 => (0..KEYS, any::<bool>()).prop_map(|(key, delete)| Op::Change { key, delete }),
                1 => listed().prop_map(Op::Relist),
                2 => (listed(), prop::bool::weighted(0.2)).prop_map(|(listed, rewind)| Op::Converge { listed, rewind }),
                3 => (any::<Index>(), prop::option::of(any::<[bool; 3]>())).prop_map(|(at, only)| Op::Resume { at, only }),
                1 => Just(Op::Join),
            ]
        }

        /// A frame as the model expects it.
        #[derive(Debug, Clone, PartialEq)]
        struct Expected {
            kind: FrameKind,
            id: String,
            namespace: String,
            data: String,
        }

        impl Expected {
            fn of(frame: &Frame) -> Expected {
                Expected {
                    kind: frame.kind,
                    id: frame.id.clone(),
                    namespace: frame.namespace.clone(),
                    data: String::from_utf8(frame.data.to_vec()).unwrap(),
                }
            }
        }

        /// The model: the objects, and every delta since the last reset (a relist, or
        /// resourceVersions going back) with the id a resume of all of them names.
        struct Model {
            ring: usize,
            objects: BTreeMap<ObjectKey, (String, String)>,
            next_rv: u64,
            reset_id: String,
            log: Vec<Expected>,
        }

        impl Model {
            fn fresh_rv(&mut self) -> String {
                self.next_rv += 1;
                self.next_rv.to_string()
            }

            fn delta(kind: FrameKind, id: &str, key: &ObjectKey, dto: &str) -> Expected {
                Expected {
                    kind,
                    id: id.to_string(),
                    namespace: key.0.clone(),
                    data: format!(r#"{{"object":{dto}}}"#),
                }
            }

            /// The listed set `listed` describes, as the model's objects and the store's.
            fn list(&mut self, listed: &Listed) -> BTreeMap<ObjectKey, (String, String)> {
                let mut out = BTreeMap::new();
                for &(k, how) in listed {
                    let key = object_key(k);
                    let object = match (self.objects.get(&key).cloned(), how) {
                        (Some(kept), 0) => kept,
                        (Some((dto, _)), 2) => (dto, self.fresh_rv()),
                        _ => {
                            let rv = self.fresh_rv();
                            (super::dto(&key.0, &key.1, self.next_rv), rv)
                        }
                    };
                    out.insert(key, object);
                }
                out
            }

            /// What a resume from `id` replays, like the store's rule but over the
            /// whole log: the ring is its last `ring` deltas.
            fn resume(&self, id: &str, only: Option<&BTreeSet<String>>) -> Option<Vec<Expected>> {
                let start = self.log.len().saturating_sub(self.ring);
                let base = if start == 0 {
                    &self.reset_id
                } else {
                    &self.log[start - 1].id
                };
                // Shared with the delta before it or after it: part of a group the
                // ring split, so a holder may have seen only some of it.
                let before = if start >= 2 {
                    &self.log[start - 2].id
                } else {
                    &self.reset_id
                };
                let shared = start > 0 && (before == base || self.log.get(start).is_some_and(|f| f.id == *base));
                let from = if id == base {
                    if shared {
                        return None;
                    }
                    start
                } else {
                    start + self.log[start..].iter().position(|f| f.id == id)? + 1
                };
                let after: Vec<Expected> = self.log[from..]
                    .iter()
                    .filter(|f| only.is_none_or(|only| only.contains(&f.namespace)))
                    .cloned()
                    .collect();
                (!after.is_empty()).then_some(after)
            }

            fn visible(&self, only: Option<&BTreeSet<String>>) -> Client {
                self.objects
                    .iter()
                    .filter(|(key, _)| only.is_none_or(|only| only.contains(&key.0)))
                    .map(|(key, (dto, _))| (key.clone(), dto.clone()))
                    .collect()
            }
        }

        fn to_store(objects: &BTreeMap<ObjectKey, (String, String)>) -> BTreeMap<ObjectKey, Stored> {
            objects
                .iter()
                .map(|(key, (dto, rv))| (key.clone(), Stored::new(dto.clone(), rv.clone(), None)))
                .collect()
        }

        /// What a client holds: each object's DTO text.
        type Client = BTreeMap<ObjectKey, String>;

        fn key_of(dto: &serde_json::Value) -> ObjectKey {
            (dto["ns"].as_str().unwrap().into(), dto["name"].as_str().unwrap().into())
        }

        /// Applies a frame as a client does: a snapshot replaces, a delta sets or removes.
        fn apply(client: &mut Client, frame: &Frame) {
            let data: serde_json::Value = serde_json::from_slice(&frame.data).unwrap();
            match frame.kind {
                FrameKind::Snapshot => {
                    *client = data["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|dto| (key_of(dto), dto.to_string()))
                        .collect();
                }
                FrameKind::Deleted => {
                    client.remove(&key_of(&data["object"]));
                }
                FrameKind::Added | FrameKind::Modified => {
                    client.insert(key_of(&data["object"]), data["object"].to_string());
                }
                other => panic!("the store published {other:?}"),
            }
        }

        fn run(ring: usize, first: &Listed, ops: &[Op]) -> Result<(), TestCaseError> {
            let mut store = Store::new(ring, None);
            let mut model = Model {
                ring,
                objects: BTreeMap::new(),
                next_rv: 1_000_000,
                reset_id: String::new(),
                log: Vec::new(),
            };
            // The client that sees every frame, and the points others resume from.
            let mut live = Client::new();
            let mut history: Vec<(String, Client)> = Vec::new();
            // The first list makes the store warm.
            let ops = std::iter::once(Op::Relist(first.clone())).chain(ops.iter().cloned());
            for op in ops {
                let published: Vec<Arc<Frame>> = match &op {
                    Op::Change { key, delete } => {
                        let key = object_key(*key);
                        let rv = model.fresh_rv();
                        let dto = dto(&key.0, &key.1, model.next_rv);
                        let kind = match (model.objects.contains_key(&key), delete) {
                            (false, _) => FrameKind::Added,
                            (true, false) => FrameKind::Modified,
                            (true, true) => FrameKind::Deleted,
                        };
                        if kind == FrameKind::Deleted {
                            model.objects.remove(&key);
                        } else {
                            model.objects.insert(key.clone(), (dto.clone(), rv.clone()));
                        }
                        model.log.push(Model::delta(kind, &rv, &key, &dto));
                        let frame = store.apply(kind, key, Stored::new(dto, rv, None));
                        prop_assert_eq!(Expected::of(&frame), model.log.last().unwrap().clone());
                        vec![frame]
                    }
                    Op::Relist(listed) => {
                        model.objects = model.list(listed);
                        let list_rv = model.fresh_rv();
                        model.log.clear();
                        model.reset_id.clone_from(&list_rv);
                        let frame = store.replace(list_rv.clone(), to_store(&model.objects));
                        prop_assert_eq!(&frame.id, &list_rv);
                        vec![frame]
                    }
                    Op::Converge { listed, rewind } => {
                        if *rewind {
                            model.next_rv -= 100_000;
                        }
                        let objects = model.list(listed);
                        let list_rv = model.fresh_rv();
                        let mut expected = Vec::new();
                        for (key, (dto, rv)) in &objects {
                            match model.objects.get(key) {
                                None => expected.push(Model::delta(FrameKind::Added, rv, key, dto)),
                                Some((before, _)) if before != dto => {
                                    expected.push(Model::delta(FrameKind::Modified, rv, key, dto));
                                }
                                Some(_) => {}
                            }
                        }
                        for (key, (dto, _)) in &model.objects {
                            if !objects.contains_key(key) {
                                expected.push(Model::delta(FrameKind::Deleted, &list_rv, key, dto));
                            }
                        }
                        if *rewind {
                            model.log.clear();
                            model.reset_id.clone_from(&list_rv);
                        }
                        model.log.extend(expected.iter().cloned());
                        model.objects = objects;
                        let converged = store.converge(list_rv, to_store(&model.objects));
                        prop_assert_eq!(converged.rewound_from.is_some(), *rewind);
                        let actual: Vec<Expected> = converged.frames.iter().map(|f| Expected::of(f)).collect();
                        prop_assert_eq!(actual, expected);
                        converged.frames
                    }
                    Op::Resume { at, only } => {
                        let only: Option<BTreeSet<String>> = only.map(|mask| {
                            NAMESPACES
                                .iter()
                                .zip(mask)
                                .filter(|(_, on)| *on)
                                .map(|(ns, _)| ns.to_string())
                                .collect()
                        });
                        let only = only.as_ref();
                        let (id, seen) = at.get(&history).clone();
                        let mut client: Client = seen
                            .into_iter()
                            .filter(|(key, _)| only.is_none_or(|only| only.contains(&key.0)))
                            .collect();
                        let replay = store.resume(&id, only);
                        let actual = replay
                            .as_ref()
                            .map(|frames| frames.iter().map(|f| Expected::of(f)).collect());
                        prop_assert_eq!(actual, model.resume(&id, only), "resume from {}", id);
                        match replay {
                            Some(frames) => frames.iter().for_each(|f| apply(&mut client, f)),
                            None => {
                                let snapshot = match only {
                                    Some(only) => store.snapshot_of(only),
                                    None => store.snapshot(),
                                };
                                apply(&mut client, &snapshot.unwrap());
                            }
                        }
                        prop_assert_eq!(client, model.visible(only), "resumed from {}", id);
                        Vec::new()
                    }
                    Op::Join => {
                        let snapshot = store.snapshot().unwrap();
                        let mut client = Client::new();
                        apply(&mut client, &snapshot);
                        prop_assert_eq!(&client, &model.visible(None));
                        history.push((snapshot.id.clone(), client));
                        Vec::new()
                    }
                };
                for frame in &published {
                    apply(&mut live, frame);
                    history.push((frame.id.clone(), live.clone()));
                }
                prop_assert_eq!(&live, &model.visible(None), "after {:?}", op);
                let items: Vec<String> = store
                    .items(None)
                    .unwrap()
                    .iter()
                    .map(|dto| String::from_utf8(dto.to_vec()).unwrap())
                    .collect();
                prop_assert_eq!(items, model.visible(None).into_values().collect::<Vec<_>>());
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn clients_rebuild_exactly_the_model_from_snapshots_deltas_and_resumes(
                ring in 1..6usize,
                first in prop::collection::vec((0..KEYS, 0..3u8), 0..KEYS),
                ops in prop::collection::vec(op(), 1..48),
            ) {
                run(ring, &first, &ops)?;
            }
        }
    }
}
