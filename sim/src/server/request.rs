//! What a resource request names and asks for: the target parsed from its path
//! against the resource table, its query parameters, and the selectors list and watch
//! share. [`rest`](super::rest), [`watch`](super::watch) and [`logs`](super::logs)
//! all read these and not each other.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::meta;
use crate::resource::{ResourceId, ResourceType, Table};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// What a resource path names.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub resource: ResourceId,
    /// The resource's row as the request found it (it outlives a deleted definition).
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    pub fn rt(&self) -> &ResourceType {
        &self.rt
    }
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` resource paths against the
/// served resources.
pub(super) fn parse_path(table: &Table, path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let lookup = |plural: &str| table.by_path(group, version, plural).map(|(id, _)| id);
    let target = |resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Some(Target {
            resource,
            rt: table.get(resource)?.clone(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        })
    };
    match rest {
        [plural] => target(lookup(plural)?, None, None, None),
        [plural, name] => target(lookup(plural)?, None, Some(name), None),
        ["namespaces", ns, plural]
            if lookup(plural)
                .and_then(|id| table.get(id))
                .is_some_and(|r| r.namespaced) =>
        {
            target(lookup(plural)?, Some(ns), None, None)
        }
        [plural, name, sub] => target(lookup(plural)?, None, Some(name), Some(sub)),
        ["namespaces", ns, plural, name] => target(lookup(plural)?, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => target(lookup(plural)?, Some(ns), Some(name), Some(sub)),
        _ => None,
    }
    .filter(|t| {
        let rt = t.rt();
        let known_subresource = match t.subresource.as_deref() {
            None | Some("status") => true,
            Some("log") => rt.hooks.logs,
            Some("scale") => rt.hooks.scale,
            Some(_) => false,
        };
        // Namespaced objects are addressed inside their namespace; only their
        // collections may be read cluster-wide. Cluster-scoped ones never are.
        known_subresource
            && (rt.namespaced || t.namespace.is_none())
            && (!rt.namespaced || t.namespace.is_some() || t.name.is_none())
    })
}

/// Query parameters of resource requests. Everything is a string and parsed by hand
/// so that bad values get a `Status` body.
pub(super) type Params = HashMap<String, String>;

pub(super) fn flag(params: &Params, key: &str) -> bool {
    params
        .get(key)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

pub(super) fn number<T: std::str::FromStr>(params: &Params, key: &str) -> Result<Option<T>, ApiError> {
    match params.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
    }
}

/// Selectors and scope shared by list and watch.
pub(super) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_params(target: &Target, params: &Params) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
        let fields = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
        Ok(Self {
            namespace: target.namespace.clone(),
            labels,
            fields,
        })
    }

    /// The label and field selectors as a predicate, or `None` when they select
    /// everything (the namespace is handled by the store's key range).
    pub fn selector(&self) -> Option<impl Fn(&Value) -> bool + '_> {
        (!self.labels.is_empty() || !self.fields.is_empty())
            .then_some(|o: &Value| self.labels.matches(o) && self.fields.matches(o))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|ns| meta::namespace(obj) == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plural(t: &Target) -> &str {
        &t.rt().plural
    }

    fn parse_path(path: &str) -> Option<Target> {
        super::parse_path(&Table::new(), path)
    }

    #[test]
    fn parses_collection_and_object_paths() {
        let t = parse_path("/api/v1/pods").unwrap();
        assert_eq!(
            (plural(&t), t.namespace.as_deref(), t.name.as_deref()),
            ("pods", None, None)
        );
        let t = parse_path("/api/v1/namespaces/shop/pods/web-1/log").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("shop"));
        assert_eq!(t.name.as_deref(), Some("web-1"));
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let t = parse_path("/apis/apps/v1/namespaces/shop/deployments").unwrap();
        assert_eq!((plural(&t), t.name.as_deref()), ("deployments", None));
        let t = parse_path("/api/v1/namespaces/shop").unwrap();
        assert_eq!((plural(&t), t.name.as_deref()), ("namespaces", Some("shop")));
        let t = parse_path("/api/v1/namespaces/shop/status").unwrap();
        assert_eq!((plural(&t), t.subresource.as_deref()), ("namespaces", Some("status")));
        let t = parse_path("/api/v1/nodes/node-1").unwrap();
        assert_eq!((plural(&t), t.name.as_deref()), ("nodes", Some("node-1")));
    }

    #[test]
    fn rejects_paths_that_do_not_fit_the_resource_scope() {
        assert!(parse_path("/api/v1/pods/web-1").is_none());
        assert!(parse_path("/api/v1/namespaces/x/nodes").is_none());
        assert!(parse_path("/apis/apps/v2/deployments").is_none());
        assert!(parse_path("/api/v1/widgets").is_none());
        assert!(parse_path("/metrics").is_none());
        assert!(parse_path("/api/v1/namespaces/x/configmaps/c/log").is_none());
    }

    #[test]
    fn custom_resources_are_routed_while_defined() {
        let mut table = Table::new();
        let crd = serde_json::json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget" },
                "versions": [{ "name": "v1", "served": true, "storage": true }],
            },
        });
        let id = table.define("widgets.example.com", crate::crd::row(&crd).unwrap());
        let t = super::parse_path(&table, "/apis/example.com/v1/namespaces/a/widgets/w").unwrap();
        assert_eq!((t.resource, t.name.as_deref()), (id, Some("w")));
        assert!(super::parse_path(&table, "/apis/example.com/v1/widgets").is_some());
        assert!(super::parse_path(&table, "/apis/example.com/v1/namespaces/a/widgets/w/log").is_none());
        table.undefine("widgets.example.com");
        assert!(super::parse_path(&table, "/apis/example.com/v1/widgets").is_none());
    }
}
