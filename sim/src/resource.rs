//! The resource table: every kind the simulated cluster serves, in one place.
//!
//! Discovery, routing, storage and the scenarios all read this table, so adding a kind
//! is adding a row. A resource is identified inside the sim by its plural (`pods`,
//! `deployments`); the plurals in the table are unique.

/// One served resource type: its API group/version, kind and how it is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; `""` for the core (legacy) group served under `/api/v1`.
    pub group: &'static str,
    /// API version inside the group (`v1`, `v2`).
    pub version: &'static str,
    /// Kind, as in the object's `kind` field.
    pub kind: &'static str,
    /// Lowercase plural used in URLs; unique in the table.
    pub plural: &'static str,
    /// Lowercase singular, as reported by discovery.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `deploy`).
    pub short_names: &'static [&'static str],
    /// Whether the resource has a `status` subresource (main-resource writes keep the
    /// stored status, `/status` writes change only the status).
    pub has_status: bool,
}

impl ResourceType {
    /// The `apiVersion` field of this kind's objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name used in messages and Status details (`pods`, `deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

// Positional arguments keep each row of the table on one line.
#[allow(clippy::too_many_arguments)]
const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        has_status,
    }
}

/// Every resource the sim serves. Order is the discovery order within a group.
#[rustfmt::skip]
pub static RESOURCES: &[ResourceType] = &[
    row("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], true),
    row("", "v1", "Node", "nodes", "node", false, &["no"], true),
    row("", "v1", "Pod", "pods", "pod", true, &["po"], true),
    row("", "v1", "Event", "events", "event", true, &["ev"], false),
    row("", "v1", "Service", "services", "service", true, &["svc"], true),
    row("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], false),
    row("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], false),
    row("", "v1", "Secret", "secrets", "secret", true, &[], false),
    row("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], false),
    row("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"], true),
    row("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, &["pvc"], true),
    row("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], true),
    row("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, &["sts"], true),
    row("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, &["ds"], true),
    row("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], true),
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
];

/// The access reviews of `authorization.k8s.io/v1` and `authentication.k8s.io/v1`'s
/// SelfSubjectReview (`kubectl auth whoami`): created and answered at once, never
/// stored, so they are listed by discovery but are not in [`RESOURCES`].
#[rustfmt::skip]
pub static REVIEWS: &[ResourceType] = &[
    row("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, &[], false),
    row("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", "localsubjectaccessreview", true, &[], false),
    row("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false, &[], false),
    row("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", false, &[], false),
    row("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", false, &[], false),
];

/// Index of a resource in [`RESOURCES`]; the store keeps one map per index.
pub(crate) type ResourceId = usize;

/// Looks a resource up by plural (`pods`).
pub fn by_plural(plural: &str) -> Option<(ResourceId, &'static ResourceType)> {
    RESOURCES.iter().enumerate().find(|(_, r)| r.plural == plural)
}

/// Looks a resource up by group, version and plural, as found in a URL.
pub(crate) fn by_path(group: &str, version: &str, plural: &str) -> Option<(ResourceId, &'static ResourceType)> {
    RESOURCES
        .iter()
        .enumerate()
        .find(|(_, r)| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<(ResourceId, &'static ResourceType)> {
    RESOURCES
        .iter()
        .enumerate()
        .find(|(_, r)| r.kind == kind && r.api_version() == api_version)
}

/// The API groups other than core (stored kinds, then the access reviews), each with
/// its versions, in first-seen order.
pub(crate) fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().chain(REVIEWS).filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_unique() {
        for (i, r) in RESOURCES.iter().enumerate() {
            assert_eq!(by_plural(r.plural).map(|(id, _)| id), Some(i), "{}", r.plural);
        }
    }

    #[test]
    fn api_version_of_core_and_grouped_kinds() {
        assert_eq!(by_kind("v1", "Pod").map(|(_, r)| r.plural), Some("pods"));
        assert_eq!(
            by_kind("apps/v1", "Deployment").map(|(_, r)| r.qualified()),
            Some("deployments.apps".to_string())
        );
        assert!(by_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn groups_list_each_group_once() {
        let groups = groups();
        assert!(groups.iter().any(|(g, v)| *g == "apps" && v == &["v1"]));
        assert_eq!(groups.iter().filter(|(g, _)| *g == "apps").count(), 1);
        assert!(
            groups
                .iter()
                .any(|(g, v)| *g == "rbac.authorization.k8s.io" && v == &["v1"])
        );
        assert!(groups.iter().any(|(g, v)| *g == "authorization.k8s.io" && v == &["v1"]));
    }

    #[test]
    fn rbac_kinds_are_served_and_reviews_are_not_stored() {
        assert_eq!(
            by_kind("rbac.authorization.k8s.io/v1", "RoleBinding").map(|(_, r)| r.namespaced),
            Some(true)
        );
        assert_eq!(by_plural("clusterroles").map(|(_, r)| r.namespaced), Some(false));
        assert!(by_plural("subjectaccessreviews").is_none());
    }
}
