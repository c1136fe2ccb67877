//! Server-side apply and field ownership: `metadata.managedFields`.
//!
//! This is the subset of Kubernetes' structured-merge-diff that real clients exercise
//! (helm 4, `kubectl apply --server-side`, GitOps tools). There is no maintained Rust
//! port on crates.io, so the sim implements it over `serde_json::Value`:
//!
//! - A field set is a set of paths ([`Path`]) of the leaves a manager owns, encoded as
//!   `FieldsV1` (`{"f:spec":{"f:replicas":{}}}`, `k:{"name":"web"}` for an item of a
//!   keyed list with its `.` member mark, `v:"x"` for a set item).
//! - List semantics come from a small table in [`list_kind`] instead of the OpenAPI
//!   schema: the `listType=map` lists of the built-in kinds that charts write
//!   (containers, env, volumes, imagePullSecrets by `name`; container ports by
//!   `containerPort`+`protocol`; service ports by `port`+`protocol`; volumeMounts by
//!   `mountPath`; conditions by `type`; ownerReferences by `uid`…), `finalizers` as a
//!   set, and every other list atomic, which is also what a custom resource without
//!   `x-kubernetes-list-type` gets.
//! - Apply merges the applied configuration into the live object, removes what the
//!   manager applied last time and no longer applies (unless someone else owns it),
//!   and refuses (409, `FieldManagerConflict` causes worded like kube-apiserver's) to
//!   change a field another manager owns, unless forced; forcing takes the field over.
//! - Every other write through the API (create, update, patch) records an `Update`
//!   entry for its manager (`fieldManager`, else the User-Agent's product) owning what
//!   it changed, taking those fields from the others.
//!
//! Maps and structs the schema marks atomic are known by field name (label selectors,
//! `nodeSelector`, env key selectors; see [`atomic_map`]). Left out: unions, version conversion of field sets, defaulting of the applied
//! configuration beyond port protocols, the manager cap (10 `Update` entries upstream)
//! and duplicate-key validation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::status::ApiError;

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Element {
    /// A field of a map or struct.
    Field(String),
    /// An item of a keyed list, by its key fields (sorted, values as JSON text).
    Key(Vec<(String, String)>),
    /// An item of a set, by its value (JSON text).
    Value(String),
    /// An item of a list by position (unused for writes, decoded for completeness).
    Index(usize),
}

/// A path from the object's root to a field or list item.
pub(crate) type Path = Vec<Element>;

/// The paths a manager owns.
pub(crate) type FieldSet = BTreeSet<Path>;

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars, merged as a set.
    Set,
    /// Items are objects identified by these key fields.
    Map(&'static [&'static str]),
}

/// Which part of an object a write owns fields in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource; `status` is left out when the kind has a status subresource.
    Main { has_status: bool },
    /// The `status` subresource.
    Status,
    /// The `scale` subresource: only `spec.replicas`.
    Scale,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Self::Main { .. } => None,
            Self::Status => Some("status"),
            Self::Scale => Some("scale"),
        }
    }

    fn keeps(self, top: &str) -> bool {
        match self {
            Self::Main { has_status } => !(matches!(top, "apiVersion" | "kind") || has_status && top == "status"),
            Self::Status => top == "status",
            Self::Scale => top == "spec",
        }
    }
}

/// What a write is, for the managed fields it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manager {
    /// The manager's name.
    pub name: String,
    /// Which part of the object it writes.
    pub scope: Scope,
}

/// Metadata no manager owns (as kube-apiserver's strip list).
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The list semantics of the list at `field` holding `items` (see the module docs).
fn list_kind(builtin: bool, field: &str, items: &[Value]) -> ListKind {
    if !builtin {
        return ListKind::Atomic;
    }
    let objects = items.iter().all(Value::is_object);
    let kind = match field {
        "finalizers" if items.iter().all(Value::is_string) => ListKind::Set,
        _ if !objects => ListKind::Atomic,
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => ListKind::Map(&["name"]),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            ListKind::Map(&["containerPort", "protocol"])
        }
        "ports" if items.iter().all(|i| i.get("port").is_some()) => ListKind::Map(&["port", "protocol"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "volumeDevices" => ListKind::Map(&["devicePath"]),
        "conditions" => ListKind::Map(&["type"]),
        "hostAliases" => ListKind::Map(&["ip"]),
        "ownerReferences" => ListKind::Map(&["uid"]),
        "topologySpreadConstraints" => ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
        _ => ListKind::Atomic,
    };
    match kind {
        // An item without its key cannot be addressed: such a list is replaced whole.
        ListKind::Map(keys) if !items.iter().all(|i| item_key(i, keys).is_some()) => ListKind::Atomic,
        kind => kind,
    }
}

/// Whether the map at `field` is atomic in the built-in kinds' schemas (replaced and
/// owned whole): label selectors (`+structType=atomic`), the `selector` of a Service and
/// a pod's `nodeSelector` (`+mapType=atomic`), and the key selectors of env values.
fn atomic_map(builtin: bool, field: &str) -> bool {
    builtin
        && matches!(
            field,
            "selector"
                | "nodeSelector"
                | "podSelector"
                | "namespaceSelector"
                | "labelSelector"
                | "secretKeyRef"
                | "configMapKeyRef"
                | "fieldRef"
                | "resourceFieldRef"
        )
}

/// The key of a keyed list's item, with the schema's default protocol filled in.
fn item_key(item: &Value, keys: &[&str]) -> Option<Vec<(String, String)>> {
    let mut key: Vec<(String, String)> = keys
        .iter()
        .map(|k| match item.get(*k) {
            Some(v) => Some((k.to_string(), v.to_string())),
            None if *k == "protocol" => Some((k.to_string(), "\"TCP\"".to_string())),
            None => None,
        })
        .collect::<Option<_>>()?;
    key.sort();
    Some(key)
}

/// The fields an object (or an applied configuration) sets, in `scope`.
pub(crate) fn field_set(obj: &Value, builtin: bool, scope: Scope) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = obj.as_object() else { return set };
    for (key, value) in map.iter().filter(|(k, _)| scope.keeps(k)) {
        let path = vec![Element::Field(key.clone())];
        if key == "metadata"
            && let Some(meta) = value.as_object()
        {
            for (k, v) in meta.iter().filter(|(k, _)| !UNOWNED_METADATA.contains(&k.as_str())) {
                walk(v, k, path_with(&path, Element::Field(k.clone())), builtin, &mut set);
            }
        } else if scope == Scope::Scale {
            if let Some(replicas) = value.get("replicas") {
                walk(
                    replicas,
                    "replicas",
                    path_with(&path, Element::Field("replicas".into())),
                    builtin,
                    &mut set,
                );
            }
        } else {
            walk(value, key, path, builtin, &mut set);
        }
    }
    set
}

fn path_with(path: &[Element], element: Element) -> Path {
    let mut p = path.to_vec();
    p.push(element);
    p
}

fn walk(value: &Value, field: &str, path: Path, builtin: bool, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() && !atomic_map(builtin, field) => {
            for (k, v) in map {
                walk(v, k, path_with(&path, Element::Field(k.clone())), builtin, set);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_kind(builtin, field, items) {
            ListKind::Atomic => {
                set.insert(path);
            }
            ListKind::Set => {
                for item in items {
                    set.insert(path_with(&path, Element::Value(item.to_string())));
                }
            }
            ListKind::Map(keys) => {
                for item in items {
                    let Some(key) = item_key(item, keys) else { continue };
                    let item_path = path_with(&path, Element::Key(key));
                    if let Some(fields) = item.as_object() {
                        for (k, v) in fields {
                            walk(v, k, path_with(&item_path, Element::Field(k.clone())), builtin, set);
                        }
                    }
                    set.insert(item_path);
                }
            }
        },
        _ => {
            set.insert(path);
        }
    }
}

/// Whether a set item is the one a `Value` element names.
fn is_value(item: &Value, text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v == *item)
}

/// The value at `path`, if present.
fn lookup<'a>(obj: &'a Value, path: &[Element]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, e| match e {
        Element::Field(f) => v.get(f),
        Element::Index(i) => v.get(i),
        Element::Value(text) => v.as_array()?.iter().find(|i| is_value(i, text)),
        Element::Key(key) => {
            let keys: Vec<&str> = key.iter().map(|(k, _)| k.as_str()).collect();
            v.as_array()?.iter().find(|i| item_key(i, &keys).as_ref() == Some(key))
        }
    })
}

/// Removes the field or item at `path`; absent is fine.
fn remove(obj: &mut Value, path: &[Element]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let parent = parent.iter().try_fold(obj, |v, e| match e {
        Element::Field(f) => v.get_mut(f),
        Element::Index(i) => v.get_mut(i),
        Element::Value(text) => v.as_array_mut()?.iter_mut().find(|i| is_value(i, text)),
        Element::Key(key) => {
            let keys: Vec<&str> = key.iter().map(|(k, _)| k.as_str()).collect();
            v.as_array_mut()?
                .iter_mut()
                .find(|i| item_key(i, &keys).as_ref() == Some(key))
        }
    });
    match (parent, last) {
        (Some(Value::Object(map)), Element::Field(f)) => {
            map.remove(f);
        }
        (Some(Value::Array(items)), Element::Value(text)) => items.retain(|i| !is_value(i, text)),
        (Some(Value::Array(items)), Element::Key(key)) => {
            let keys: Vec<&str> = key.iter().map(|(k, _)| k.as_str()).collect();
            items.retain(|i| item_key(i, &keys).as_ref() != Some(key));
        }
        (Some(Value::Array(items)), Element::Index(i)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// Merges an applied configuration into the live object: maps by key, keyed lists by
/// item key, sets by value, everything else replaced.
fn merge(live: &mut Value, config: &Value, field: &str, builtin: bool) {
    match (live, config) {
        (Value::Object(live), Value::Object(config)) if !atomic_map(builtin, field) => {
            for (k, v) in config {
                match live.get_mut(k) {
                    Some(slot) => merge(slot, v, k, builtin),
                    None => {
                        live.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(config)) => {
            let mut all = live.clone();
            all.extend(config.iter().cloned());
            match list_kind(builtin, field, &all) {
                ListKind::Atomic => live.clone_from(config),
                ListKind::Set => {
                    for item in config {
                        if !live.contains(item) {
                            live.push(item.clone());
                        }
                    }
                }
                ListKind::Map(keys) => {
                    for item in config {
                        let key = item_key(item, keys);
                        match live.iter_mut().find(|i| item_key(i, keys) == key) {
                            Some(existing) => merge(existing, item, field, builtin),
                            None => live.push(item.clone()),
                        }
                    }
                }
            }
        }
        (live, config) => live.clone_from(config),
    }
}

/// The `FieldsV1` key of one path element.
fn element_key(e: &Element) -> String {
    match e {
        Element::Field(f) => format!("f:{f}"),
        Element::Value(v) => format!("v:{v}"),
        Element::Index(i) => format!("i:{i}"),
        Element::Key(key) => {
            let fields: Vec<String> = key
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            format!("k:{{{}}}", fields.join(","))
        }
    }
}

fn parse_element(key: &str) -> Option<Element> {
    let (prefix, rest) = key.split_once(':')?;
    match prefix {
        "f" => Some(Element::Field(rest.to_string())),
        "i" => rest.parse().ok().map(Element::Index),
        "v" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| Element::Value(v.to_string())),
        "k" => {
            let fields: Map<String, Value> = serde_json::from_str(rest).ok()?;
            let mut key: Vec<(String, String)> = fields.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            key.sort();
            Some(Element::Key(key))
        }
        _ => None,
    }
}

/// Encodes a field set as `FieldsV1`.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn encode(node: &Node) -> Value {
        let mut map = Map::new();
        if node.member && !node.children.is_empty() {
            map.insert(".".into(), json!({}));
        }
        for (k, child) in &node.children {
            map.insert(k.clone(), encode(child));
        }
        Value::Object(map)
    }
    let mut root = Node::default();
    for path in set {
        let node = path
            .iter()
            .fold(&mut root, |n, e| n.children.entry(element_key(e)).or_default());
        node.member = true;
    }
    encode(&root)
}

/// Decodes `FieldsV1`; keys it cannot read are skipped.
pub(crate) fn from_fields_v1(fields: &Value) -> FieldSet {
    fn decode(node: &Value, path: &Path, set: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        for (k, child) in map {
            if k == "." {
                set.insert(path.clone());
                continue;
            }
            let Some(e) = parse_element(k) else { continue };
            let p = path_with(path, e);
            if child.as_object().is_some_and(Map::is_empty) {
                set.insert(p);
            } else {
                decode(child, &p, set);
            }
        }
    }
    let mut set = FieldSet::new();
    decode(fields, &Vec::new(), &mut set);
    set
}

/// A path as kube-apiserver prints it (`.spec.containers[name="web"].image`).
pub(crate) fn path_string(path: &[Element]) -> String {
    path.iter()
        .map(|e| match e {
            Element::Field(f) => format!(".{f}"),
            Element::Value(v) => format!("[={v}]"),
            Element::Index(i) => format!("[{i}]"),
            Element::Key(key) => {
                let fields: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", fields.join(","))
            }
        })
        .collect()
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    apply: bool,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, apply: bool, subresource: Option<&str>) -> bool {
        self.manager == manager && self.apply == apply && self.subresource.as_deref() == subresource
    }

    fn read(v: &Value) -> Option<Self> {
        Some(Self {
            manager: v.get("manager")?.as_str()?.to_string(),
            apply: v.get("operation").and_then(Value::as_str) == Some("Apply"),
            api_version: v
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: v.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: v
                .get("subresource")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            set: v.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
    }

    fn write(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": if self.apply { "Apply" } else { "Update" },
            "apiVersion": self.api_version,
        });
        if let Some(time) = &self.time {
            v["time"] = json!(time);
        }
        v["fieldsType"] = json!("FieldsV1");
        v["fieldsV1"] = to_fields_v1(&self.set);
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        v
    }

    /// How kube-apiserver names this manager in a conflict message.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {sub:?}");
        }
        if !self.apply {
            s = match &self.time {
                Some(time) => format!("{s} using {} at {time}", self.api_version),
                None => format!("{s} using {}", self.api_version),
            };
        }
        s
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(Entry::read).collect())
        .unwrap_or_default()
}

/// Writes the entries in kube-apiserver's order (`Apply` before `Update`, then by time
/// and manager); none removes the field.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (!a.apply, &a.time, &a.manager, &a.subresource).cmp(&(!b.apply, &b.time, &b.manager, &b.subresource))
    });
    let m = crate::meta::metadata_mut(obj);
    if entries.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::write).collect()),
        );
    }
}

/// What changed between two states, in leaf paths.
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare(old: &Value, new: &Value, builtin: bool, scope: Scope) -> Comparison {
    let before = field_set(old, builtin, scope);
    let after = field_set(new, builtin, scope);
    let modified = before
        .intersection(&after)
        .filter(|p| !matches!(p.last(), Some(Element::Key(_) | Element::Value(_))))
        .filter(|p| lookup(old, p) != lookup(new, p))
        .cloned()
        .collect();
    Comparison {
        added: after.difference(&before).cloned().collect(),
        removed: before.difference(&after).cloned().collect(),
        modified,
    }
}

/// The API version and time an entry written now carries.
pub(crate) struct Stamp<'a> {
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Records a non-apply write (create, update, patch) by `manager`: it owns what it
/// changed, and the others lose those fields. `old` is `None` for a create. A write
/// whose body sets `managedFields` to something else than the live value keeps what it
/// sent, as kube-apiserver does.
pub(crate) fn track_update(old: Option<&Value>, new: &mut Value, manager: &Manager, builtin: bool, stamp: &Stamp) {
    let live_fields = old.and_then(|o| o.pointer("/metadata/managedFields")).cloned();
    let sent = new.pointer("/metadata/managedFields").cloned();
    if sent.is_some() && sent != live_fields {
        return;
    }
    let empty = Value::Object(Map::new());
    let diff = compare(old.unwrap_or(&empty), new, builtin, manager.scope);
    if diff.added.is_empty() && diff.modified.is_empty() && diff.removed.is_empty() {
        // Nothing this manager could own changed: the entries stay as they were.
        let m = crate::meta::metadata_mut(new);
        match live_fields {
            Some(fields) => m.insert("managedFields".into(), fields),
            None => m.remove("managedFields"),
        };
        return;
    }
    let mut entries = old.map(read_entries).unwrap_or_default();
    let subresource = manager.scope.subresource();
    let changed: FieldSet = diff.modified.union(&diff.added).cloned().collect();
    for e in entries
        .iter_mut()
        .filter(|e| !e.same_owner(&manager.name, false, subresource))
    {
        e.set.retain(|p| !changed.contains(p) && !diff.removed.contains(p));
    }
    let own = match entries
        .iter()
        .position(|e| e.same_owner(&manager.name, false, subresource))
    {
        Some(i) => entries.remove(i).set,
        None => FieldSet::new(),
    };
    let own: FieldSet = own
        .union(&changed)
        .filter(|p| !diff.removed.contains(*p))
        .cloned()
        .collect();
    entries.push(Entry {
        manager: manager.name.clone(),
        apply: false,
        api_version: stamp.api_version.to_string(),
        time: Some(stamp.now.to_string()),
        subresource: subresource.map(str::to_string),
        set: own,
    });
    write_entries(new, entries);
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: the object does not
/// exist yet). Returns the object to store, its `managedFields` set, or the conflict.
pub(crate) fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    builtin: bool,
    scope: Scope,
    stamp: &Stamp,
) -> Result<Value, ApiError> {
    let subresource = scope.subresource();
    // Only what the scope writes is applied: the main resource without a status that
    // has its own subresource, or only the status.
    let mut config = match scope {
        Scope::Main { .. } => config.clone(),
        Scope::Status => json!({ "status": config.get("status").cloned().unwrap_or_else(|| json!({})) }),
        Scope::Scale => json!({ "spec": { "replicas": config.pointer("/spec/replicas") } }),
    };
    if scope == (Scope::Main { has_status: true })
        && let Some(map) = config.as_object_mut()
    {
        map.remove("status");
    }
    if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let applied = field_set(&config, builtin, scope);
    let Some(live) = live else {
        let mut created = config;
        write_entries(
            &mut created,
            vec![Entry {
                manager: manager.to_string(),
                apply: true,
                api_version: stamp.api_version.to_string(),
                time: Some(stamp.now.to_string()),
                subresource: subresource.map(str::to_string),
                set: applied,
            }],
        );
        return Ok(created);
    };
    let mut entries = read_entries(live);
    if live.pointer("/metadata/managedFields").is_none() {
        // An object no write was tracked for: everything in it belongs to one manager,
        // so the first apply cannot silently take fields nobody declared.
        entries.push(Entry {
            manager: "before-first-apply".into(),
            apply: false,
            api_version: stamp.api_version.to_string(),
            time: None,
            subresource: None,
            set: field_set(live, builtin, scope),
        });
    }
    let previous = entries
        .iter()
        .position(|e| e.same_owner(manager, true, subresource))
        .map(|i| entries.remove(i));
    let last = previous.as_ref().map(|e| e.set.clone()).unwrap_or_default();

    let mut merged = live.clone();
    merge(&mut merged, &config, "", builtin);
    // Prune what this manager applied before and no longer applies, unless another
    // manager (or its new configuration) still owns it or something under it.
    let owned_by_someone = |p: &Path| {
        applied.iter().any(|q| q.starts_with(p)) || entries.iter().any(|e| e.set.iter().any(|q| q.starts_with(p)))
    };
    let mut dropped: Vec<&Path> = last.difference(&applied).filter(|p| !owned_by_someone(p)).collect();
    // Outermost first: a removed item takes its fields with it, and its key is still
    // there to find it by.
    dropped.sort_by_key(|p| p.len());
    for p in dropped {
        remove(&mut merged, p);
    }

    let diff = compare(live, &merged, builtin, scope);
    let changed: FieldSet = diff.modified.union(&diff.added).cloned().collect();
    let mut conflicts: Vec<(String, Path)> = Vec::new();
    for e in &entries {
        for p in e.set.intersection(&changed) {
            conflicts.push((e.describe(), p.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict(conflicts));
    }
    for e in entries.iter_mut() {
        e.set.retain(|p| !changed.contains(p) && !diff.removed.contains(p));
    }
    // An apply that changes nothing keeps its entry's time, so it is not a write.
    let time = match previous {
        Some(p) if p.set == applied && changed.is_empty() && diff.removed.is_empty() => p.time,
        _ => Some(stamp.now.to_string()),
    };
    entries.push(Entry {
        manager: manager.to_string(),
        apply: true,
        api_version: stamp.api_version.to_string(),
        time,
        subresource: subresource.map(str::to_string),
        set: applied,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// The 409 kube-apiserver answers an apply that would change fields other managers
/// own (`internal/fieldmanager`'s `NewConflictError`).
fn conflict(conflicts: Vec<(String, Path)>) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(who, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {who}"),
                "field": path_string(path),
            })
        })
        .collect();
    let message = if let [(who, path)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            path_string(path)
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (who, path) in &conflicts {
            by_manager.entry(who).or_default().push(path_string(path));
        }
        let mut lines = Vec::new();
        for (who, paths) in by_manager {
            lines.push(format!("conflicts with {who}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(json!({ "causes": causes })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Scope = Scope::Main { has_status: true };

    const NOW: Stamp = Stamp {
        api_version: "v1",
        now: "2026-05-01T12:00:00Z",
    };

    /// The ConfigMap of the "Server-Side Apply" page of the Kubernetes documentation
    /// (concepts/overview/working-with-objects/server-side-apply, "Field management"):
    /// its `managedFields` entry, as kube-apiserver records it.
    #[test]
    fn the_documented_configmap_gets_the_documented_managed_fields() {
        let config = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "test-cm", "namespace": "default", "labels": { "test-label": "test" } },
            "data": { "key": "some value" },
        });
        let stored = apply(
            None,
            &config,
            "kubectl",
            false,
            true,
            Scope::Main { has_status: false },
            &NOW,
        )
        .unwrap();
        assert_eq!(
            stored["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": "2026-05-01T12:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": { "f:labels": { "f:test-label": {} } },
                    "f:data": { "f:key": {} },
                },
            }])
        );
    }

    fn deployment(image: &str, replicas: Option<i64>) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "web", "image": image, "ports": [{ "containerPort": 80 }] }] },
                },
            },
        });
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn keyed_lists_encode_their_keys_with_defaults() {
        let set = field_set(&deployment("nginx", Some(2)), true, Scope::Main { has_status: true });
        let fields = to_fields_v1(&set);
        assert_eq!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({ "k:{\"name\":\"web\"}": {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": { "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": { ".": {}, "f:containerPort": {} } },
            }})
        );
        assert_eq!(from_fields_v1(&fields), set);
        assert_eq!(fields["f:spec"]["f:selector"], json!({}), "a label selector is atomic");
    }

    #[test]
    fn a_second_manager_conflicts_until_forced() {
        let live = apply(None, &deployment("nginx:1", Some(2)), "a", false, true, MAIN, &NOW).unwrap();
        // The same values are shared, not a conflict.
        let shared = apply(
            Some(&live),
            &deployment("nginx:1", Some(2)),
            "b",
            false,
            true,
            MAIN,
            &NOW,
        )
        .unwrap();
        assert_eq!(shared["metadata"]["managedFields"].as_array().map(Vec::len), Some(2));
        let err = apply(
            Some(&live),
            &deployment("nginx:2", Some(3)),
            "b",
            false,
            true,
            MAIN,
            &NOW,
        )
        .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        assert_eq!(
            err.message,
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
        );
        assert_eq!(
            err.details.as_ref().unwrap()["causes"][0],
            json!({ "reason": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".spec.replicas" })
        );
        let forced = apply(
            Some(&live),
            &deployment("nginx:2", Some(3)),
            "b",
            true,
            true,
            MAIN,
            &NOW,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let a = &forced["metadata"]["managedFields"][0];
        assert_eq!(a["manager"], "a");
        assert!(a["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    }

    #[test]
    fn a_status_apply_owns_only_status_fields() {
        let live = apply(None, &deployment("nginx", Some(2)), "a", false, true, MAIN, &NOW).unwrap();
        let mut config = deployment("other", Some(9));
        config["status"] = json!({ "replicas": 2, "conditions": [{ "type": "Available", "status": "True" }] });
        let updated = apply(Some(&live), &config, "ctl", false, true, Scope::Status, &NOW).unwrap();
        assert_eq!(updated["spec"], live["spec"], "only the status is applied");
        assert_eq!(updated["status"]["replicas"], 2);
        let entry = &updated["metadata"]["managedFields"][1];
        assert_eq!(
            (&entry["manager"], &entry["subresource"]),
            (&json!("ctl"), &json!("status"))
        );
        assert_eq!(
            entry["fieldsV1"],
            json!({ "f:status": { "f:replicas": {}, "f:conditions": {
                "k:{\"type\":\"Available\"}": { ".": {}, "f:type": {}, "f:status": {} } } } })
        );
    }

    #[test]
    fn an_apply_that_changes_nothing_keeps_its_time() {
        let live = apply(None, &deployment("nginx", Some(2)), "a", false, true, MAIN, &NOW).unwrap();
        let later = Stamp {
            api_version: "v1",
            now: "2026-05-01T13:00:00Z",
        };
        let same = apply(
            Some(&live),
            &deployment("nginx", Some(2)),
            "a",
            false,
            true,
            MAIN,
            &later,
        )
        .unwrap();
        assert_eq!(same, live);
        let changed = apply(
            Some(&live),
            &deployment("nginx", Some(3)),
            "a",
            false,
            true,
            MAIN,
            &later,
        )
        .unwrap();
        assert_eq!(changed["metadata"]["managedFields"][0]["time"], "2026-05-01T13:00:00Z");
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_by_another() {
        let live = apply(None, &deployment("nginx", Some(2)), "a", false, true, MAIN, &NOW).unwrap();
        let dropped = apply(Some(&live), &deployment("nginx", None), "a", false, true, MAIN, &NOW).unwrap();
        assert!(dropped["spec"].get("replicas").is_none());
        // Owned by an updater too: kept.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        let manager = Manager {
            name: "kubectl".into(),
            scope: Scope::Scale,
        };
        track_update(Some(&live), &mut scaled, &manager, true, &NOW);
        let kept = apply(Some(&scaled), &deployment("nginx", None), "a", false, true, MAIN, &NOW).unwrap();
        assert_eq!(kept["spec"]["replicas"], 5);
    }

    #[test]
    fn updates_record_what_they_changed() {
        let manager = Manager {
            name: "kubectl-edit".into(),
            scope: Scope::Main { has_status: false },
        };
        let old = json!({ "metadata": { "name": "c" }, "data": { "a": "1" } });
        let mut created = old.clone();
        track_update(None, &mut created, &manager, true, &NOW);
        assert_eq!(
            created["metadata"]["managedFields"][0]["fieldsV1"],
            json!({ "f:data": { "f:a": {} } })
        );
        let err = apply(
            Some(&created),
            &json!({ "metadata": { "name": "c" }, "data": { "a": "2" } }),
            "kubectl",
            false,
            true,
            Scope::Main { has_status: false },
            &NOW,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1 at 2026-05-01T12:00:00Z: .data.a"
        );
    }

    #[test]
    fn sets_merge_by_value_and_atomic_lists_are_replaced() {
        let mut live = json!({ "metadata": { "finalizers": ["a"] }, "spec": { "args": ["x", "y"] } });
        merge(
            &mut live,
            &json!({ "metadata": { "finalizers": ["b"] }, "spec": { "args": ["z"] } }),
            "",
            true,
        );
        assert_eq!(
            live,
            json!({ "metadata": { "finalizers": ["a", "b"] }, "spec": { "args": ["z"] } })
        );
    }
}
