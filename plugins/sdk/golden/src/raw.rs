//! [`strip`](crate::strip) on an object's JSON text, without building a tree.
//!
//! The host's first list of a large cluster used to turn every object into a
//! `serde_json::Value` (one allocation per key, string and array) only to drop a few
//! keys and print it again: 50,000 pods took 850 MiB. [`strip_raw`] reads only the
//! object's top-level keys and those of its `metadata`, each value kept as the bytes it
//! arrived as ([`RawValue`]), and writes the kept ones out again: one pass, one output
//! string. It drops exactly what [`strip`](crate::strip) drops (a test holds the two
//! together on every golden case), and reads the identity the hub keys objects by on
//! the way.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Fields;
use crate::fields::Node;

/// The identity of an object, read from its `metadata` by [`strip_raw`]; empty strings
/// where a field is absent or not a string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
}

/// The object as the host passes it to a plugin, and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The object's JSON with `metadata.managedFields` and the keys outside `fields`
    /// removed; every value that stays is byte for byte what the input had.
    pub json: String,
    /// What its metadata says it is.
    pub identity: Identity,
}

/// [`strip`](crate::strip) for JSON text: removes `metadata.managedFields` and keeps
/// only what `fields` name ([`Fields`]). Values kept whole are copied as they are, in
/// their order; in every object it reduces, of a key given twice the last value counts,
/// as in a `serde_json::Value`. Anything but a JSON object is returned unchanged.
/// Fails only on text that is not JSON.
pub fn strip_raw(object: &str, fields: &Fields) -> serde_json::Result<Stripped> {
    if !object.trim_start().starts_with('{') {
        // Validate, so that garbage is an error as it would be for `Value`.
        let _: &RawValue = serde_json::from_str(object)?;
        return Ok(Stripped {
            json: object.to_string(),
            identity: Identity::default(),
        });
    }
    let Entries(entries) = serde_json::from_str(object)?;
    let mut identity = Identity::default();
    let mut out = String::with_capacity(object.len());
    out.push('{');
    let mut first = true;
    for (key, value) in &entries {
        let key = key.as_ref();
        let Some(node) = fields.top(key) else {
            continue;
        };
        push_key(&mut out, key, &mut first)?;
        if key == "metadata" && value.get().starts_with('{') {
            write_metadata(&mut out, value, node, &mut identity)?;
        } else {
            write_value(&mut out, value, node)?;
        }
    }
    out.push('}');
    Ok(Stripped { json: out, identity })
}

/// `metadata` without `managedFields`, reduced by `node`; the identity is read from
/// every key, kept or not.
fn write_metadata(
    out: &mut String,
    metadata: &RawValue,
    node: &Node,
    identity: &mut Identity,
) -> serde_json::Result<()> {
    let Entries(entries) = serde_json::from_str(metadata.get())?;
    let text = |value: &RawValue| serde_json::from_str::<String>(value.get()).unwrap_or_default();
    out.push('{');
    let mut first = true;
    for (key, value) in &entries {
        match key.as_ref() {
            "managedFields" => continue,
            "namespace" => identity.namespace = text(value),
            "name" => identity.name = text(value),
            "resourceVersion" => identity.resource_version = text(value),
            _ => {}
        }
        let node = match node {
            Node::Keys(keys) => match keys.get(key) {
                Some(node) => node,
                None => continue,
            },
            _ => &Node::Whole,
        };
        push_key(out, key, &mut first)?;
        write_value(out, value, node)?;
    }
    out.push('}');
    Ok(())
}

/// `value` reduced by `node`: copied whole, or rebuilt from the kept keys or elements
/// when it has the shape `node` expects.
fn write_value(out: &mut String, value: &RawValue, node: &Node) -> serde_json::Result<()> {
    let text = value.get();
    match node {
        Node::Keys(keys) if text.starts_with('{') => {
            let Entries(entries) = serde_json::from_str(text)?;
            out.push('{');
            let mut first = true;
            for (key, value) in &entries {
                if let Some(node) = keys.get(key) {
                    push_key(out, key, &mut first)?;
                    write_value(out, value, node)?;
                }
            }
            out.push('}');
        }
        Node::Items(inner) if text.starts_with('[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            out.push('[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, inner)?;
            }
            out.push(']');
        }
        _ => out.push_str(text),
    }
    Ok(())
}

fn push_key(out: &mut String, key: &str, first: &mut bool) -> serde_json::Result<()> {
    if !std::mem::take(first) {
        out.push(',');
    }
    out.push_str(&serde_json::to_string(key)?);
    out.push(':');
    Ok(())
}

/// A JSON object's entries in order, keys decoded, values left as text; a repeated
/// key keeps its first place and its last value.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// An object key, borrowed from the input unless it had escapes to decode.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;

    /// `strip_raw`'s output, parsed, is `strip`'s.
    fn agree(object: &Value, paths: &[&str]) {
        let fields = Fields::parse(paths).unwrap();
        let mut expected = object.clone();
        crate::strip(&mut expected, &fields);
        let stripped = strip_raw(&object.to_string(), &fields).unwrap();
        let actual: Value = serde_json::from_str(&stripped.json).unwrap();
        assert_eq!(actual, expected, "fields {paths:?}");
    }

    #[test]
    fn keeps_values_byte_for_byte_and_reads_the_identity() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","resourceVersion":"42","managedFields":[{"manager":"kubectl"}],"labels":{"z":"1","a":"2"}},"spec":{"x":1.50,"y":[ 1, 2 ]},"status":{"phase":"Running"}}"#;
        let stripped = strip_raw(text, &Fields::parse(&["spec"]).unwrap()).unwrap();
        assert_eq!(
            stripped.json,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","resourceVersion":"42","labels":{"z":"1","a":"2"}},"spec":{"x":1.50,"y":[ 1, 2 ]}}"#
        );
        assert_eq!(
            stripped.identity,
            Identity {
                namespace: "shop".into(),
                name: "web-1".into(),
                resource_version: "42".into(),
            }
        );
    }

    #[test]
    fn drops_what_strip_drops() {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "managedFields": [{}]},
            "spec": {"x": 1}, "status": {"y": 2}
        });
        agree(&object, &["spec"]);
        agree(&object, &[]);
        agree(&json!({"metadata": {"managedFields": []}, "spec": {}, "data": {}}), &[]);
        agree(&json!({"metadata": null, "spec": 1}), &["spec"]);
        agree(&json!({"metadata": [1], "spec": 1}), &[]);
        agree(&json!({"spec": 1}), &["status"]);
        agree(&json!({"we\"ird": 1, "metadata": {"na\\me": "x"}}), &[]);
    }

    #[test]
    fn paths_reduce_nested_values_as_strip_does() {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}, "managedFields": [{}]},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i", "env": []}, "odd", null], "volumes": [{}]},
            "status": {"phase": "Running", "conditions": null, "containerStatuses": [{"state": {"running": {}}, "image": "i"}]}
        });
        agree(
            &object,
            &[
                "metadata.name",
                "spec.nodeName",
                "spec.containers[].name",
                "status.conditions[].type",
            ],
        );
        agree(
            &object,
            &[
                "spec.containers[].name",
                "status.containerStatuses[].state",
                "metadata.labels.x",
            ],
        );
        agree(&object, &["metadata", "spec.containers", "status.phase.deeper"]);
        agree(
            &json!({"metadata": [1, {"a": 2}], "spec": "x"}),
            &["metadata[].a", "spec.containers[].name"],
        );
    }

    #[test]
    fn pruning_reads_the_identity_from_keys_it_drops() {
        let text = r#"{"metadata":{"name":"a","namespace":"n","resourceVersion":"7","uid":"u"},"spec":{"a":1,"b":[{"c":1,"d":2}],"a":3}}"#;
        let stripped = strip_raw(text, &Fields::parse(&["metadata.uid", "spec.a", "spec.b[].d"]).unwrap()).unwrap();
        assert_eq!(
            stripped.json,
            r#"{"metadata":{"uid":"u"},"spec":{"a":3,"b":[{"d":2}]}}"#
        );
        assert_eq!(stripped.identity.resource_version, "7");
        assert_eq!(stripped.identity.name, "a");
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_a_value_would() {
        let text = r#"{"spec":1,"metadata":{"name":"a","name":"b"},"spec":2}"#;
        let stripped = strip_raw(text, &Fields::default()).unwrap();
        assert_eq!(stripped.json, r#"{"spec":2,"metadata":{"name":"b"}}"#);
        assert_eq!(stripped.identity.name, "b");
    }

    #[test]
    fn anything_but_an_object_is_left_alone_and_garbage_is_an_error() {
        let spec = Fields::parse(&["spec"]).unwrap();
        assert_eq!(strip_raw("[1, 2]", &spec).unwrap().json, "[1, 2]");
        assert!(strip_raw("{\"a\":", &spec).is_err());
        assert!(strip_raw("nope", &spec).is_err());
    }

    /// Nested paths touching objects, arrays and scalars the golden inputs have.
    const NESTED: &[&str] = &[
        "metadata.name",
        "metadata.ownerReferences[].kind",
        "spec.containers[].name",
        "spec.template.spec",
        "spec.replicas",
        "spec.rules[].http.paths[].path",
        "status.conditions[].type",
        "status.containerStatuses[].state",
        "data.key",
    ];

    /// Every golden input of every bundled plugin and example, stripped by both, with
    /// no `fields` filter, the two filters the bundled plugins use most and a set of
    /// nested paths (the host's golden test adds each plugin's own).
    #[test]
    fn agrees_with_strip_on_every_golden_case() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let mut cases = 0;
        for group in ["plugins", "examples"] {
            for plugin in std::fs::read_dir(root.join(group)).unwrap() {
                let dir = plugin.unwrap().path().join("golden");
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries {
                    let path = entry.unwrap().path();
                    if !path.to_string_lossy().ends_with(".k8s.json") {
                        continue;
                    }
                    let input: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                    let items = match input.get("items").and_then(Value::as_array) {
                        Some(items) => items.clone(),
                        None => vec![input],
                    };
                    for item in &items {
                        for fields in [&[][..], &["spec", "status"][..], &["data"][..], NESTED] {
                            agree(item, fields);
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 50, "only {cases} golden objects found");
    }
}
