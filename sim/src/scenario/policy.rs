//! The RBAC objects every cluster starts with, after Kubernetes' bootstrap policy
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): `cluster-admin` bound to
//! `system:masters`, the user-facing `admin`, `edit` and `view` roles, and the bindings
//! that let every authenticated user run discovery and access reviews.
//!
//! `admin`, `edit` and `view` carry the rules the aggregation controller gives them on
//! a real cluster (the union of the `system:aggregate-to-*` roles, `view` inside `edit`
//! inside `admin`); the sim does not aggregate again when roles change.

use serde_json::{Value, json};

use super::Writer;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": [group], "resources": resources, "verbs": verbs })
}

fn urls(urls: &[&str], verbs: &[&str]) -> Value {
    json!({ "nonResourceURLs": urls, "verbs": verbs })
}

fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            "",
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            "",
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule("", &["namespaces"], READ),
        rule("discovery.k8s.io", &["endpointslices"], READ),
        rule(
            "apps",
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(
            "autoscaling",
            &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
            READ,
        ),
        rule("batch", &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        rule(
            "extensions",
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
            READ,
        ),
        rule("policy", &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        rule(
            "networking.k8s.io",
            &["ingresses", "ingresses/status", "networkpolicies"],
            READ,
        ),
    ]
}

fn aggregate_to_edit() -> Vec<Value> {
    vec![
        rule(
            "",
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            READ,
        ),
        rule("", &["serviceaccounts"], &["impersonate"]),
        rule(
            "",
            &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
            WRITE,
        ),
        rule("", &["pods/eviction"], &["create"]),
        rule(
            "",
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule("", &["serviceaccounts/token"], &["create"]),
        rule(
            "apps",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule("autoscaling", &["horizontalpodautoscalers"], WRITE),
        rule("batch", &["cronjobs", "jobs"], WRITE),
        rule(
            "extensions",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
            WRITE,
        ),
        rule("policy", &["poddisruptionbudgets"], WRITE),
        rule("networking.k8s.io", &["ingresses", "networkpolicies"], WRITE),
        rule("coordination.k8s.io", &["leases"], ALL),
    ]
}

fn aggregate_to_admin() -> Vec<Value> {
    vec![
        rule("authorization.k8s.io", &["localsubjectaccessreviews"], &["create"]),
        rule("rbac.authorization.k8s.io", &["rolebindings", "roles"], ALL),
    ]
}

/// Appends `more` to `rules`, skipping rules already there, as aggregation does.
fn union(mut rules: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
    for r in more {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
    rules
}

fn cluster_role(w: &mut Writer, name: &str, labels: Value, aggregates: Option<&str>, rules: Vec<Value>) {
    let created = w.past();
    let mut labels = labels;
    labels["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": name, "creationTimestamp": created, "labels": labels,
                      "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" } },
        "rules": rules,
    });
    if let Some(label) = aggregates {
        role["aggregationRule"] = json!({ "clusterRoleSelectors": [{ "matchLabels": { label: "true" } }] });
    }
    w.put(role);
}

fn cluster_role_binding(w: &mut Writer, name: &str, groups: &[&str]) {
    let created = w.past();
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g }))
        .collect();
    w.put(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": name, "creationTimestamp": created,
                      "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" },
                      "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" } },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
        "subjects": subjects,
    }));
}

/// Creates the bootstrap ClusterRoles and ClusterRoleBindings.
pub(super) fn seed(w: &mut Writer) {
    const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
    const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
    const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
    let view = aggregate_to_view();
    let edit = union(aggregate_to_edit(), view.clone());
    let admin = union(edit.clone(), aggregate_to_admin());
    cluster_role(
        w,
        "cluster-admin",
        json!({}),
        None,
        vec![rule("*", &["*"], &["*"]), urls(&["*"], &["*"])],
    );
    cluster_role(w, "admin", json!({}), Some(TO_ADMIN), admin);
    cluster_role(w, "edit", json!({ TO_ADMIN: "true" }), Some(TO_EDIT), edit);
    cluster_role(w, "view", json!({ TO_EDIT: "true" }), Some(TO_VIEW), view);
    cluster_role(
        w,
        "system:aggregate-to-admin",
        json!({ TO_ADMIN: "true" }),
        None,
        aggregate_to_admin(),
    );
    cluster_role(
        w,
        "system:aggregate-to-edit",
        json!({ TO_EDIT: "true" }),
        None,
        aggregate_to_edit(),
    );
    cluster_role(
        w,
        "system:aggregate-to-view",
        json!({ TO_VIEW: "true" }),
        None,
        aggregate_to_view(),
    );
    cluster_role(
        w,
        "system:basic-user",
        json!({}),
        None,
        vec![
            rule(
                "authorization.k8s.io",
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                &["create"],
            ),
            rule("authentication.k8s.io", &["selfsubjectreviews"], &["create"]),
        ],
    );
    cluster_role(
        w,
        "system:discovery",
        json!({}),
        None,
        vec![urls(
            &[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
            &["get"],
        )],
    );
    cluster_role(
        w,
        "system:public-info-viewer",
        json!({}),
        None,
        vec![urls(
            &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            &["get"],
        )],
    );
    cluster_role_binding(w, "cluster-admin", &[crate::rbac::MASTERS]);
    cluster_role_binding(w, "system:basic-user", &[crate::rbac::AUTHENTICATED]);
    cluster_role_binding(w, "system:discovery", &[crate::rbac::AUTHENTICATED]);
    cluster_role_binding(
        w,
        "system:public-info-viewer",
        &[crate::rbac::AUTHENTICATED, crate::rbac::UNAUTHENTICATED],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
        let attrs = crate::rbac::Attributes::Resource(crate::rbac::ResourceAttributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: "shop".into(),
            ..Default::default()
        });
        rules.iter().any(|r| crate::rbac::rule_allows(r, &attrs))
    }

    #[test]
    fn view_reads_but_not_secrets_and_edit_writes() {
        let view = aggregate_to_view();
        assert!(covers(&view, "", "pods", "list"));
        assert!(covers(&view, "apps", "deployments", "watch"));
        assert!(!covers(&view, "", "secrets", "get"));
        assert!(!covers(&view, "", "pods", "delete"));
        let edit = union(aggregate_to_edit(), view.clone());
        assert!(covers(&edit, "", "secrets", "get"));
        assert!(covers(&edit, "", "pods", "list"));
        assert!(covers(&edit, "apps", "deployments", "patch"));
        assert!(!covers(&edit, "rbac.authorization.k8s.io", "rolebindings", "create"));
        let admin = union(edit, aggregate_to_admin());
        assert!(covers(&admin, "rbac.authorization.k8s.io", "rolebindings", "create"));
    }
}
