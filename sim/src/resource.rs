//! The resource table: every kind the simulated cluster serves, in one place.
//!
//! Discovery, routing, storage and the scenarios all read this table, so adding a
//! built-in kind is adding a row to [`builtin`]. What is particular to a kind (pods'
//! graceful deletion and `log` subresource, namespaces' cascading deletion, the kubelet
//! filling in a new pod) is a `Hooks` value on its row, never a check of its name in
//! the handlers.
//!
//! The table is dynamic: each `apiextensions.k8s.io/v1` CustomResourceDefinition in
//! the store adds one row (see the `crd` module), served from the moment the definition
//! is written until it is deleted. A row's `ResourceId` is never reused, so a watch
//! or a request that outlived its definition cannot see the objects of a newer one.
//! Built-in plurals are unique; a custom resource may reuse a built-in plural in its
//! own group, and is then named `plural.group` by `Table::by_name`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::crd;
use crate::kubelet;
use crate::store::Store;

/// One served resource type: its API group/version, kind and how it is addressed.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; `""` for the core (legacy) group served under `/api/v1`.
    pub group: String,
    /// API version inside the group (`v1`, `v2`); for a custom resource, its
    /// definition's storage version.
    pub version: String,
    /// Kind, as in the object's `kind` field.
    pub kind: String,
    /// Lowercase plural used in URLs.
    pub plural: String,
    /// Lowercase singular, as reported by discovery.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `deploy`).
    pub short_names: Vec<String>,
    /// Whether the resource has a `status` subresource (main-resource writes keep the
    /// stored status, `/status` writes change only the status).
    pub has_status: bool,
    /// What is particular to this kind.
    pub(crate) hooks: Hooks,
}

/// Kind-specific behaviour, consulted by the store and the handlers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hooks {
    /// Fills in what the apiserver and its controllers add to a new object created
    /// through the API (pod defaults and status, a namespace's phase, a definition's
    /// conditions).
    pub admit: Option<fn(&Store, &mut Value)>,
    /// What `DELETE` does.
    pub deletion: Deletion,
    /// Whether objects have a `log` subresource (pods).
    pub logs: bool,
    /// Whether a change outside `metadata` and `status` bumps `metadata.generation`
    /// (not for kinds whose spec is not reconciled: namespaces, nodes, services,
    /// volumes).
    pub generation: bool,
    /// Whether each object defines a resource (CustomResourceDefinitions): the store
    /// keeps the table in step with these objects.
    pub defines_resources: bool,
    /// Whether objects have a `scale` subresource (`autoscaling/v1` `Scale` of
    /// `spec.replicas`).
    pub scale: bool,
}

/// What `DELETE` does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// Removed at once, or marked deleting while finalizers hold it.
    Immediate,
    /// Marked deleting with a grace period (`terminationGracePeriodSeconds`, 30 s by
    /// default) and removed shortly after, as the kubelet does once the containers
    /// stopped; at once when the grace period is 0 or the pod has finished.
    Graceful,
    /// Marked `Terminating`; everything in the namespace is removed, then the
    /// namespace.
    Namespace,
}

impl Hooks {
    /// Hooks of a kind with no particular behaviour (every custom resource).
    pub(crate) const PLAIN: Hooks = Hooks {
        admit: None,
        deletion: Deletion::Immediate,
        logs: false,
        generation: true,
        defines_resources: false,
        scale: false,
    };
}

const SCALABLE: Hooks = Hooks {
    scale: true,
    ..Hooks::PLAIN
};

const UNGENERATED: Hooks = Hooks {
    generation: false,
    ..Hooks::PLAIN
};

const POD: Hooks = Hooks {
    admit: Some(kubelet::admit_pod),
    deletion: Deletion::Graceful,
    logs: true,
    ..Hooks::PLAIN
};

const NAMESPACE: Hooks = Hooks {
    admit: Some(kubelet::admit_namespace),
    deletion: Deletion::Namespace,
    generation: false,
    ..Hooks::PLAIN
};

const DEFINITION: Hooks = Hooks {
    admit: Some(crd::admit),
    defines_resources: true,
    ..Hooks::PLAIN
};

impl ResourceType {
    /// The `apiVersion` field of this kind's objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name used in messages and Status details (`pods`, `deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether this is a built-in kind (whose list semantics the sim knows) rather
    /// than a custom resource.
    pub(crate) fn is_builtin(&self) -> bool {
        BUILTIN.iter().any(|b| b.group == self.group && b.plural == self.plural)
    }

    /// Whether `name` names this resource: its plural or `plural.group`.
    fn is_named(&self, name: &str) -> bool {
        self.plural == name || self.qualified() == name
    }

    fn with(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }
}

// Positional arguments keep each row of the table on one line.
#[allow(clippy::too_many_arguments)]
fn row(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    singular: &str,
    namespaced: bool,
    short_names: &[&str],
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
        singular: singular.to_string(),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        has_status,
        hooks: Hooks::PLAIN,
    }
}

/// Every built-in resource. Order is the discovery order within a group, and a
/// built-in's [`ResourceId`] is its index here.
#[rustfmt::skip]
static BUILTIN: LazyLock<Vec<ResourceType>> = LazyLock::new(|| vec![
    row("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], true).with(NAMESPACE),
    row("", "v1", "Node", "nodes", "node", false, &["no"], true).with(UNGENERATED),
    row("", "v1", "Pod", "pods", "pod", true, &["po"], true).with(POD),
    row("", "v1", "Event", "events", "event", true, &["ev"], false),
    row("", "v1", "Service", "services", "service", true, &["svc"], true).with(UNGENERATED),
    row("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], false),
    row("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], false),
    row("", "v1", "Secret", "secrets", "secret", true, &[], false),
    row("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], false),
    row("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"], true).with(UNGENERATED),
    row("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, &["pvc"], true).with(UNGENERATED),
    row("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], true).with(SCALABLE),
    row("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, &["sts"], true).with(SCALABLE),
    row("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, &["ds"], true),
    row("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], true).with(SCALABLE),
    row("batch", "v1", "Job", "jobs", "job", true, &[], true),
    row("batch", "v1", "CronJob", "cronjobs", "cronjob", true, &["cj"], true),
    row("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, &["hpa"], true),
    row("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, &["pdb"], true),
    row("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, &["ing"], true),
    row("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, &["netpol"], false),
    row("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false, &[], false),
    row("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, &[], false),
    row("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false, &["sc"], false),
    row("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false, &["pc"], false),
    row("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", false, &[], false),
    row("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, &[], false),
    row("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, &[], false),
    row("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, &[], false),
    row("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, &[], false),
    row("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", false, &["crd", "crds"], true).with(DEFINITION),

]);

/// The access reviews of `authorization.k8s.io/v1` and `authentication.k8s.io/v1`'s
/// SelfSubjectReview (`kubectl auth whoami`): created and answered at once, never
/// stored, so they are listed by discovery but are not in the table.
#[rustfmt::skip]
static REVIEWS: LazyLock<Vec<ResourceType>> = LazyLock::new(|| vec![
    row("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, &[], false),
    row("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", "localsubjectaccessreview", true, &[], false),
    row("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false, &[], false),
    row("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", false, &[], false),
    row("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", false, &[], false),

]);

/// The built-in resources, in discovery order.
pub fn builtin() -> &'static [ResourceType] {
    &BUILTIN
}

/// The access reviews: listed by discovery, answered by `server::authz`, never stored.
pub fn reviews() -> &'static [ResourceType] {
    &REVIEWS
}

/// Identity of a resource in the table; the store keeps one map per id. Built-ins
/// have the ids `0..builtin().len()`; custom resources get fresh ones.
pub(crate) type ResourceId = usize;

/// Looks a built-in resource up by plural (`pods`).
pub(crate) fn builtin_id(plural: &str) -> Option<ResourceId> {
    BUILTIN.iter().position(|r| r.plural == plural)
}

/// The served resources at one point in time: the built-ins and one row per
/// CustomResourceDefinition. The store replaces it as a whole when a definition
/// changes, so a reader holds a consistent table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    rows: BTreeMap<ResourceId, Arc<ResourceType>>,
    next: ResourceId,
    /// The row each CustomResourceDefinition (by name) defines.
    definitions: BTreeMap<String, ResourceId>,
}

impl Table {
    /// The built-in resources only.
    pub fn new() -> Self {
        Self {
            rows: BUILTIN.iter().cloned().map(Arc::new).enumerate().collect(),
            next: BUILTIN.len(),
            definitions: BTreeMap::new(),
        }
    }

    /// The resource with this id, if it is still served.
    pub fn get(&self, id: ResourceId) -> Option<&Arc<ResourceType>> {
        self.rows.get(&id)
    }

    /// Every served resource: built-ins in discovery order, then custom resources in
    /// the order their definitions were created.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceId, &Arc<ResourceType>)> {
        self.rows.iter().map(|(id, r)| (*id, r))
    }

    /// Looks a resource up by plural (`pods`, a built-in first) or `plural.group`
    /// (`widgets.example.com`).
    pub fn by_name(&self, name: &str) -> Option<(ResourceId, &Arc<ResourceType>)> {
        self.iter().find(|(_, r)| r.is_named(name))
    }

    /// Looks a resource up by group, version and plural, as found in a URL.
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<(ResourceId, &Arc<ResourceType>)> {
        self.iter()
            .find(|(_, r)| r.group == group && r.version == version && r.plural == plural)
    }

    /// Looks a resource up by an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<(ResourceId, &Arc<ResourceType>)> {
        self.iter()
            .find(|(_, r)| r.kind == kind && r.api_version() == api_version)
    }

    /// The API groups other than core (served kinds, then the access reviews), each
    /// with its versions, in first-seen order.
    pub fn groups(&self) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        let rows = self.rows.values().map(|r| &**r).chain(REVIEWS.iter());
        for r in rows.filter(|r| !r.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version.as_str()) => versions.push(&r.version),
                Some(_) => {}
                None => out.push((&r.group, vec![&r.version])),
            }
        }
        out
    }

    /// The row the definition `name` defines, if any.
    pub fn defined_by(&self, name: &str) -> Option<ResourceId> {
        self.definitions.get(name).copied()
    }

    /// Serves `row` for the definition `name`: a new id for a new definition, the
    /// same id (and objects) when the definition changed.
    pub fn define(&mut self, name: &str, row: ResourceType) -> ResourceId {
        let id = match self.definitions.get(name) {
            Some(id) => *id,
            None => {
                let id = self.next;
                self.next += 1;
                self.definitions.insert(name.to_string(), id);
                id
            }
        };
        self.rows.insert(id, Arc::new(row));
        id
    }

    /// Stops serving what the definition `name` defined; returns its id.
    pub fn undefine(&mut self, name: &str) -> Option<ResourceId> {
        let id = self.definitions.remove(name)?;
        self.rows.remove(&id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widgets() -> ResourceType {
        row("example.com", "v1", "Widget", "widgets", "widget", true, &["wd"], true)
    }

    #[test]
    fn plurals_are_unique() {
        let table = Table::new();
        for (i, r) in builtin().iter().enumerate() {
            assert_eq!(table.by_name(&r.plural).map(|(id, _)| id), Some(i), "{}", r.plural);
            assert_eq!(builtin_id(&r.plural), Some(i));
        }
    }

    #[test]
    fn api_version_of_core_and_grouped_kinds() {
        let table = Table::new();
        assert_eq!(table.by_kind("v1", "Pod").map(|(_, r)| r.plural.as_str()), Some("pods"));
        assert_eq!(
            table.by_kind("apps/v1", "Deployment").map(|(_, r)| r.qualified()),
            Some("deployments.apps".to_string())
        );
        assert!(table.by_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn groups_list_each_group_once() {
        let table = Table::new();
        let groups = table.groups();
        assert!(groups.iter().any(|(g, v)| *g == "apps" && v == &["v1"]));
        assert_eq!(groups.iter().filter(|(g, _)| *g == "apps").count(), 1);
        assert!(
            groups
                .iter()
                .any(|(g, v)| *g == "rbac.authorization.k8s.io" && v == &["v1"])
        );
        assert!(groups.iter().any(|(g, v)| *g == "authorization.k8s.io" && v == &["v1"]));
        assert!(groups.iter().any(|(g, v)| *g == "apiextensions.k8s.io" && v == &["v1"]));
    }

    #[test]
    fn rbac_kinds_are_served_and_reviews_are_not_stored() {
        let table = Table::new();
        assert_eq!(
            table
                .by_kind("rbac.authorization.k8s.io/v1", "RoleBinding")
                .map(|(_, r)| r.namespaced),
            Some(true)
        );
        assert_eq!(table.by_name("clusterroles").map(|(_, r)| r.namespaced), Some(false));
        assert!(table.by_name("subjectaccessreviews").is_none());
    }

    #[test]
    fn kind_behaviour_is_in_the_rows() {
        let table = Table::new();
        let hooks = |plural: &str| table.by_name(plural).map(|(_, r)| r.hooks).unwrap();
        assert_eq!(hooks("pods").deletion, Deletion::Graceful);
        assert!(hooks("pods").logs && hooks("pods").admit.is_some());
        assert_eq!(hooks("namespaces").deletion, Deletion::Namespace);
        assert!(!hooks("services").generation && hooks("deployments").generation);
        assert!(hooks("customresourcedefinitions").defines_resources);
        assert!(!hooks("configmaps").logs && hooks("configmaps").admit.is_none());
    }

    #[test]
    fn defined_rows_are_served_until_undefined_and_their_ids_never_reused() {
        let mut table = Table::new();
        let id = table.define("widgets.example.com", widgets());
        assert!(id >= builtin().len());
        assert_eq!(table.by_path("example.com", "v1", "widgets").map(|(i, _)| i), Some(id));
        assert_eq!(table.by_kind("example.com/v1", "Widget").map(|(i, _)| i), Some(id));
        assert_eq!(table.by_name("widgets.example.com").map(|(i, _)| i), Some(id));
        assert!(table.groups().iter().any(|(g, v)| *g == "example.com" && v == &["v1"]));
        assert_eq!(table.defined_by("widgets.example.com"), Some(id));

        // A changed definition keeps its id.
        let mut changed = widgets();
        changed.short_names = vec!["wdg".into()];
        assert_eq!(table.define("widgets.example.com", changed), id);
        assert_eq!(
            table.get(id).map(|r| r.short_names.clone()),
            Some(vec!["wdg".to_string()])
        );

        assert_eq!(table.undefine("widgets.example.com"), Some(id));
        assert!(table.get(id).is_none());
        assert!(table.by_path("example.com", "v1", "widgets").is_none());
        assert!(!table.groups().iter().any(|(g, _)| *g == "example.com"));
        assert_eq!(table.undefine("widgets.example.com"), None);
        assert!(table.define("widgets.example.com", widgets()) > id);
    }

    #[test]
    fn a_custom_plural_may_repeat_a_built_in_one_in_its_group() {
        let mut table = Table::new();
        let mut events = widgets();
        events.plural = "events".into();
        let id = table.define("events.example.com", events);
        assert_eq!(table.by_name("events").map(|(i, _)| i), builtin_id("events"));
        assert_eq!(table.by_name("events.example.com").map(|(i, _)| i), Some(id));
    }
}
