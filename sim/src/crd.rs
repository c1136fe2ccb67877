//! CustomResourceDefinitions: which resource a definition serves, and the status a
//! real apiserver gives it.
//!
//! A definition (`apiextensions.k8s.io/v1`, cluster-scoped, named
//! `<plural>.<group>`) is an ordinary stored object; the store turns each one into a
//! row of the resource table as it is written ([`row`]) and drops the row, and every
//! object of it, when the definition is deleted. The row is served at the storage
//! version (or, if that one is not served, the first served version): other served
//! versions are not served, as there is no conversion. Custom objects are stored as
//! given; there is no schema validation, defaulting or pruning.
//!
//! A real apiserver answers a new definition at once and then marks it
//! `NamesAccepted` and `Established` a moment later; clients such as `kubectl wait
//! --for condition=established` read those conditions. The sim serves the resource
//! as the definition is created, so the conditions are set on creation ([`admit`]).

use serde_json::{Value, json};

use crate::meta;
use crate::resource::{Hooks, ResourceType};
use crate::store::Store;

/// The resource a definition serves, or why it cannot serve one, worded like the
/// apiserver's validation (`spec.group: Required value`).
pub(crate) fn row(crd: &Value) -> Result<ResourceType, String> {
    let text = |pointer: &str| crd.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let group = text("/spec/group");
    let plural = text("/spec/names/plural");
    let kind = text("/spec/names/kind");
    if group.is_empty() {
        return Err("spec.group: Required value".into());
    }
    if !group.contains('.') {
        return Err(format!(
            "spec.group: Invalid value: \"{group}\": should be a domain with at least one dot"
        ));
    }
    if plural.is_empty() {
        return Err("spec.names.plural: Required value".into());
    }
    if kind.is_empty() {
        return Err("spec.names.kind: Required value".into());
    }
    let name = meta::name(crd);
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let namespaced = match text("/spec/scope") {
        "Namespaced" => true,
        "Cluster" => false,
        "" => return Err("spec.scope: Required value".into()),
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let flag = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
    let served = versions
        .iter()
        .find(|v| flag(v, "storage") && flag(v, "served"))
        .or_else(|| versions.iter().find(|v| flag(v, "served")))
        .ok_or("spec.versions: Invalid value: must have at least one served version")?;
    let version = served.get("name").and_then(Value::as_str).unwrap_or_default();
    if version.is_empty() {
        return Err("spec.versions[].name: Required value".into());
    }
    let singular = match text("/spec/names/singular") {
        "" => kind.to_ascii_lowercase(),
        s => s.to_string(),
    };
    let short_names = crd
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Ok(ResourceType {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
        singular,
        namespaced,
        short_names,
        has_status: served.pointer("/subresources/status").is_some(),
        hooks: Hooks::PLAIN,
    })
}

/// Sets the status a real apiserver reports once a new definition's names are
/// accepted and its resource is established.
pub(crate) fn admit(_store: &Store, crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({}));
    let text = |key: &str| names.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = text("kind");
    let mut accepted = json!({
        "plural": text("plural"),
        "singular": match text("singular") {
            s if s.is_empty() => kind.to_ascii_lowercase(),
            s => s,
        },
        "kind": kind,
        "listKind": match text("listKind") {
            s if s.is_empty() => format!("{kind}List"),
            s => s,
        },
    });
    for key in ["shortNames", "categories"] {
        if let Some(list) = names.get(key) {
            accepted[key] = list.clone();
        }
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let now = meta::now_timestamp();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": "True",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })
    };
    crd["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widgets() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget", "shortNames": ["wd"] },
                "versions": [
                    { "name": "v1alpha1", "served": true, "storage": false },
                    { "name": "v1", "served": true, "storage": true, "subresources": { "status": {} } },
                ],
            },
        })
    }

    #[test]
    fn a_definition_serves_its_storage_version() {
        let r = row(&widgets()).unwrap();
        assert_eq!(r.api_version(), "example.com/v1");
        assert_eq!(
            (r.kind.as_str(), r.plural.as_str(), r.singular.as_str()),
            ("Widget", "widgets", "widget")
        );
        assert!(r.namespaced && r.has_status);
        assert_eq!(r.short_names, ["wd"]);
        assert_eq!(r.qualified(), "widgets.example.com");

        let mut cluster = widgets();
        cluster["spec"]["scope"] = json!("Cluster");
        cluster["spec"]["versions"] = json!([{ "name": "v2", "served": true, "storage": false }]);
        let r = row(&cluster).unwrap();
        assert!(!r.namespaced && !r.has_status);
        assert_eq!(r.version, "v2");
    }

    #[test]
    fn invalid_definitions_say_which_field_is_wrong() {
        let broken = |pointer: &str, value: Value| {
            let mut crd = widgets();
            *crd.pointer_mut(pointer).unwrap() = value;
            row(&crd).unwrap_err()
        };
        assert_eq!(
            broken("/metadata/name", json!("widgets")),
            "metadata.name: Invalid value: \"widgets\": must be spec.names.plural+\".\"+spec.group"
        );
        assert!(broken("/spec/group", json!("example")).starts_with("spec.group: Invalid value"));
        assert!(broken("/spec/scope", json!("Global")).starts_with("spec.scope: Unsupported value"));
        assert!(broken("/spec/names/kind", json!("")).starts_with("spec.names.kind: Required"));
        assert!(broken("/spec/versions", json!([{ "name": "v1", "served": false }])).contains("served version"));
    }

    #[test]
    fn admitted_definitions_are_established_with_accepted_names() {
        let mut crd = widgets();
        admit(&Store::new(10, 0), &mut crd);
        let status = &crd["status"];
        assert_eq!(status["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(status["acceptedNames"]["singular"], "widget");
        assert_eq!(status["acceptedNames"]["shortNames"], json!(["wd"]));
        assert_eq!(status["storedVersions"], json!(["v1"]));
        let conditions = status["conditions"].as_array().unwrap();
        for kind in ["NamesAccepted", "Established"] {
            assert!(
                conditions.iter().any(|c| c["type"] == kind && c["status"] == "True"),
                "{kind}"
            );
        }
    }
}
