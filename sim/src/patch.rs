//! PATCH bodies: JSON merge patch, JSON patch and a strategic-merge subset.
//!
//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) come from the `json-patch`
//! crate. Strategic merge patch is what `kubectl apply`, `kubectl label` and friends
//! send for built-in kinds; the sim implements the part of it those clients use:
//! it is a merge patch, except that lists of objects that all carry a `name` (the
//! merge key of containers, env, ports, volumes, volumeMounts…) are merged by name,
//! and the `$patch`, `$setElementOrder/…`, `$retainKeys` and `$deleteFromPrimitiveList/…`
//! directives are honoured or dropped. Server-side apply is the `managed` module's.

use serde_json::{Map, Value};

/// The patch formats a PATCH request can carry, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/json-patch+json`
    Json,
}

impl PatchType {
    /// The patch type for a `Content-Type` value, if supported.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A patch body that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON of the expected shape.
    #[error("the patch body is not valid JSON for its content type")]
    Malformed(#[source] serde_json::Error),
    /// A JSON patch operation failed (missing path, failed test…).
    #[error("the JSON patch could not be applied")]
    Apply(#[source] json_patch::PatchError),
}

/// Applies `body` (the raw PATCH body) of the given type to `target`.
pub fn apply(target: &mut Value, patch_type: PatchType, body: &[u8]) -> Result<(), PatchError> {
    match patch_type {
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(PatchError::Malformed)?;
            json_patch::merge(target, &patch);
        }
        PatchType::Strategic => {
            let patch: Value = serde_json::from_slice(body).map_err(PatchError::Malformed)?;
            strategic_merge(target, &patch);
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(PatchError::Malformed)?;
            json_patch::patch(target, &patch).map_err(PatchError::Apply)?;
        }
    }
    Ok(())
}

/// Applies a strategic merge patch (the subset described in the module docs).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(_) => {
                let slot = target.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value);
            }
            Value::Array(items) if is_named_list(items) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                merge_named_list(slot, items);
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("name").and_then(Value::as_str).is_some())
}

fn merge_named_list(target: &mut Value, items: &[Value]) {
    let Value::Array(list) = target else {
        *target = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                .cloned()
                .collect(),
        );
        return;
    };
    for item in items {
        let name = item.get("name").and_then(Value::as_str);
        let position = list.iter().position(|e| e.get("name").and_then(Value::as_str) == name);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::Strategic)
        );
        assert_eq!(PatchType::from_content_type("application/apply-patch+yaml"), None);
    }

    #[test]
    fn merge_patch_sets_and_removes_fields() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        apply(
            &mut obj,
            PatchType::Merge,
            br#"{"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3}}"#,
        )
        .unwrap();
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        apply(
            &mut obj,
            PatchType::Merge,
            br#"{"spec": {"containers": [{"name": "a", "image": "y"}]}}"#,
        )
        .unwrap();
        assert_eq!(obj["spec"]["containers"], json!([{"name": "a", "image": "y"}]));
    }

    #[test]
    fn strategic_merge_merges_named_lists_by_name() {
        let mut obj = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "z"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "y"}, {"name": "c", "image": "w"}]
        }});
        strategic_merge(&mut obj, &patch);
        assert_eq!(
            obj["spec"]["containers"],
            json!([
                {"name": "a", "image": "y", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "z"},
                {"name": "c", "image": "w"}
            ])
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let mut obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                             "metadata": {"finalizers": ["x", "y"]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]},
                           "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}});
        strategic_merge(&mut obj, &patch);
        assert_eq!(obj["spec"]["containers"], json!([{"name": "a"}]));
        assert_eq!(obj["metadata"]["finalizers"], json!(["y"]));
        strategic_merge(&mut obj, &json!({"spec": {"$patch": "replace", "x": 1}}));
        assert_eq!(obj["spec"], json!({"x": 1}));
    }

    #[test]
    fn json_patch_operations() {
        let mut obj = json!({"metadata": {"labels": {"a": "1"}}});
        apply(
            &mut obj,
            PatchType::Json,
            br#"[{"op": "add", "path": "/metadata/labels/b", "value": "2"}]"#,
        )
        .unwrap();
        assert_eq!(obj["metadata"]["labels"]["b"], "2");
        assert!(apply(&mut obj, PatchType::Json, br#"[{"op": "remove", "path": "/nope"}]"#).is_err());
        assert!(apply(&mut obj, PatchType::Merge, b"not json").is_err());
    }
}
