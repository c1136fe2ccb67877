//! [`strip`](crate::strip) on an object's JSON text, without building a tree.
//!
//! The host's first list of a large cluster used to turn every object into a
//! `serde_json::Value` (one allocation per key, string and array) only to drop a few
//! keys and print it again: 50,000 pods took 850 MiB. [`strip_raw`] walks the text
//! once, guided by the plugin's [`Fields`]: values kept whole are copied as the bytes
//! they arrived as ([`RawValue`]), values reduced by a path are rebuilt on the way,
//! dropped ones are skipped; one pass, one output string. (A first version parsed each
//! reduced level into raw entries and parsed those again, scanning nested bytes once
//! per level: it made pruning cost more than it saved.) It drops exactly what
//! [`strip`](crate::strip) drops (a test holds the two together on every golden case,
//! and the host's golden test with every plugin's paths), and reads the identity the
//! hub keys objects by on the way.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
/// only what `fields` name ([`Fields`]). One pass over the text: a value kept whole is
/// copied as it is, one reduced is rebuilt from the parts kept, one dropped is skipped
/// without building anything. In every object it rebuilds, of a key given twice the
/// last value counts, in the first one's place, as in a `serde_json::Value`. A scalar
/// where a path expected an object or array is printed again (equal, not always the
/// same bytes: `1.50` becomes `1.5`). Anything but a JSON object is returned unchanged.
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
    let mut identity = Identity::default();
    let mut out = String::with_capacity(object.len());
    let mut deserializer = serde_json::Deserializer::from_str(object);
    deserializer.deserialize_map(Reduce {
        out: &mut out,
        level: Level::Top(fields),
        identity: &mut identity,
    })?;
    deserializer.end()?;
    Ok(Stripped { json: out, identity })
}

/// Which keys of an object being rebuilt stay, and what of their values.
#[derive(Clone, Copy)]
enum Level<'n> {
    /// The object itself: `fields`' top-level keys.
    Top(&'n Fields),
    /// `metadata`: never `managedFields`; the identity is read on the way.
    Metadata(&'n Node),
    /// Anything else, reduced by a node.
    Node(&'n Node),
}

/// Writes the part of one value its [`Level`] keeps; `identity` is filled from
/// `metadata`.
struct Reduce<'a, 'n> {
    out: &'a mut String,
    level: Level<'n>,
    identity: &'a mut Identity,
}

impl<'de> DeserializeSeed<'de> for Reduce<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.level {
            // Copied as it arrived: the common case costs one scan and one copy.
            Level::Node(Node::Whole) => {
                let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
                self.out.push_str(raw.get());
                Ok(())
            }
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Reduce<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Reduce { out, level, identity } = self;
        // Each kept key and where its value is in `out`, to put a repeated key's last
        // value in its first place.
        let mut written: Vec<(Cow<'de, str>, std::ops::Range<usize>)> = Vec::new();
        out.push('{');
        while let Some(Key(key)) = map.next_key()? {
            let node = match level {
                Level::Top(fields) => fields.top(&key),
                Level::Metadata(_) if key == "managedFields" => None,
                Level::Metadata(Node::Keys(keys)) | Level::Node(Node::Keys(keys)) => keys.get(&key),
                // A map where an array was named is kept whole.
                Level::Metadata(_) | Level::Node(_) => Some(&Node::Whole),
            };
            if matches!(level, Level::Top(_)) && key == "metadata" && written.iter().any(|(k, _)| k == "metadata") {
                // A repeated `metadata`: its last value is the identity, as in a `Value`.
                *identity = Identity::default();
            }
            // The identity is read whether or not the key is kept.
            let identity_value = if matches!(level, Level::Metadata(_))
                && matches!(key.as_ref(), "namespace" | "name" | "resourceVersion")
            {
                let raw: &'de RawValue = map.next_value()?;
                let text = serde_json::from_str::<String>(raw.get()).unwrap_or_default();
                match key.as_ref() {
                    "namespace" => identity.namespace = text,
                    "name" => identity.name = text,
                    _ => identity.resource_version = text,
                }
                Some(raw)
            } else {
                None
            };
            let Some(node) = node else {
                if identity_value.is_none() {
                    map.next_value::<IgnoredAny>()?;
                }
                continue;
            };
            let previous = written.iter().position(|(k, _)| *k == key);
            if previous.is_none() {
                if !written.is_empty() {
                    out.push(',');
                }
                push_key(out, &key);
            }
            let start = out.len();
            match identity_value {
                Some(raw) if matches!(node, Node::Whole) => out.push_str(raw.get()),
                // Only a path under, say, `metadata.name` gets here; reduce the text read.
                Some(raw) => Reduce {
                    out: &mut *out,
                    level: Level::Node(node),
                    identity: &mut *identity,
                }
                .deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
                .map_err(de::Error::custom)?,
                None => {
                    let level = match (level, key.as_ref()) {
                        (Level::Top(_), "metadata") => Level::Metadata(node),
                        _ => Level::Node(node),
                    };
                    map.next_value_seed(Reduce {
                        out: &mut *out,
                        level,
                        identity: &mut *identity,
                    })?;
                }
            }
            match previous {
                None => written.push((key, start..out.len())),
                Some(index) => {
                    // Rare (the apiserver never repeats a key): move the new value over
                    // the old one and shift what follows.
                    let value = out.split_off(start);
                    let old = written[index].1.clone();
                    out.replace_range(old.clone(), &value);
                    let shift = value.len() as isize - old.len() as isize;
                    written[index].1 = old.start..old.start + value.len();
                    for (_, range) in &mut written[index + 1..] {
                        *range = range.start.saturating_add_signed(shift)..range.end.saturating_add_signed(shift);
                    }
                }
            }
        }
        out.push('}');
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Reduce { out, level, identity } = self;
        let inner = match level {
            Level::Node(Node::Items(inner)) | Level::Metadata(Node::Items(inner)) => inner,
            // An array where an object was named is kept whole.
            _ => &Node::Whole,
        };
        out.push('[');
        let mut first = true;
        loop {
            let comma = out.len();
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            let seed = Reduce {
                out: &mut *out,
                level: Level::Node(inner),
                identity: &mut *identity,
            };
            if seq.next_element_seed(seed)?.is_none() {
                out.truncate(comma);
                break;
            }
        }
        out.push(']');
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.out.push_str(&v.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.out.push_str(&v.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        push_json(self.out, &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        push_json(self.out, v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
}

fn push_key(out: &mut String, key: &str) {
    // Serializing a `str` cannot fail.
    let _ = push_json::<serde_json::Error, str>(out, key);
    out.push(':');
}

fn push_json<E: de::Error, T: serde::Serialize + ?Sized>(out: &mut String, value: &T) -> Result<(), E> {
    let text = serde_json::to_string(value).map_err(E::custom)?;
    out.push_str(&text);
    Ok(())
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
            &json!({"metadata": [1, {"a": 2, "b": 3}], "spec": "x"}),
            &["metadata[].a", "spec.containers[].name"],
        );
    }

    #[test]
    fn a_reduced_object_keeps_a_repeated_keys_last_value_and_reprints_odd_scalars() {
        let text = r#"{"spec":{"a":1,"b":{"x":1,"y":2},"a":{"z":3},"c":0},"status":1.50}"#;
        let fields = Fields::parse(&["spec.a", "spec.b.x", "spec.c", "status.phase"]).unwrap();
        let stripped = strip_raw(text, &fields).unwrap();
        assert_eq!(
            stripped.json,
            r#"{"spec":{"a":{"z":3},"b":{"x":1},"c":0},"status":1.5}"#
        );
    }

    #[test]
    fn odd_shapes_under_metadata_are_reduced_as_strip_does() {
        let object = json!({"metadata": {"name": {"a": 1, "b": 2}, "namespace": "n"}});
        agree(&object, &["metadata.name.a", "metadata.namespace"]);
        let text = r#"{"metadata":{"name":"a","namespace":"n"},"metadata":{"name":"b"}}"#;
        let stripped = strip_raw(text, &Fields::default()).unwrap();
        assert_eq!(
            stripped.identity,
            Identity {
                name: "b".into(),
                ..Identity::default()
            }
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
