//! Decoding the Kubernetes protobuf encoding of request bodies into the JSON the sim
//! stores.
//!
//! client-go's typed clients (helm's release storage, `kubectl create secret`,
//! `kubectl create rolebinding`, `kubectl auth can-i`) send built-in kinds as
//! `Content-Type: application/vnd.kubernetes.protobuf` and do not fall back to JSON on
//! `415`; they do read JSON answers (they pick the decoder by the response's
//! `Content-Type`), so only request bodies need decoding. A body is the magic `k8s\0`
//! followed by a `runtime.Unknown` envelope whose `typeMeta` names the kind and whose
//! `raw` holds the object as the kind's message from `k8s.io/api`'s `generated.proto`.
//!
//! # How
//!
//! The schemas are not written out here: `sim/proto/` vendors upstream's
//! `generated.proto` files for every API group the sim serves, `build.rs` compiles them
//! with protox, and this module reads the descriptors with prost-reflect, decodes the
//! envelope and the object as dynamic messages and walks them into JSON. The kind's
//! message is `k8s.io.api.<group's first label, or core>.<version>.<Kind>`; kinds of
//! `meta/v1` (DeleteOptions, which client-go sends with typed deletes) are found too.
//!
//! The walk prints what Go's `encoding/json` prints for the typed object:
//!
//! - `metav1.Time` is an RFC 3339 string in whole seconds, `metav1.MicroTime` has six
//!   fraction digits, and a zero time is left out (Go writes `null`);
//! - `IntOrString` is a number or a string, `Quantity` is its string;
//! - `bytes` fields (Secret `data`, ConfigMap `binaryData`) are base64 strings;
//! - `FieldsV1` and `RawExtension` hold JSON, which is embedded as it is;
//! - `Verbs` and `ExtraValue` (named string lists) are plain arrays;
//! - nested messages are printed even when empty (`status: {}`, `resources: {}`), as Go
//!   prints structs; empty lists and maps are left out.
//!
//! Two things only Go's struct tags know, so `sim/proto/fields.txt` carries them,
//! generated from upstream's `types.go` with the schemas. Field names: proto names are
//! the JSON names but for Go embeddings with `json:",inline"` (a Volume's VolumeSource,
//! a Probe's ProbeHandler), which the encoding nests and JSON flattens, and two
//! renames. Zero values: client-go writes every value field on the wire, zero or not,
//! and a pointer only when set, so the wire cannot tell an unset `minReadySeconds` from
//! `replicas: 0`; a zero scalar is printed for pointers and fields without `omitempty`
//! and left out otherwise, as Go does. Fields the schemas do not know (a newer
//! client's) are skipped.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage as _, Value as Field};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// The media type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// The compiled schemas of `sim/proto/` (see `build.rs`).
static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.binpb"));

/// The schemas, read once. The bytes were checked when the build compiled them, so
/// failing to read them is a broken build, not a bad request.
static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).expect("build.rs writes a valid descriptor set"));

/// What Go's struct tags say about a field, where it differs from the defaults (the
/// proto name is the JSON name; a zero scalar is left out, as `omitempty` does).
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// The JSON name; `None` for a Go embedding whose fields JSON flattens into the
    /// parent.
    json: Option<&'static str>,
    /// Whether a zero scalar is printed: pointers and fields without `omitempty`.
    keep_zero: bool,
}

/// The rules by message and field number, generated from upstream's `types.go` with the
/// schemas (`sim/proto/update.sh`, `sim/proto/fields.txt`).
static RULES: LazyLock<HashMap<(&'static str, u32), Rule>> = LazyLock::new(|| {
    include_str!("../proto/fields.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (message, number) = (words.next()?, words.next()?.parse().ok()?);
            let json = words.next()?;
            let rule = Rule {
                json: (json != "*").then_some(json),
                keep_zero: words.next()? == "keep",
            };
            Some(((message, number), rule))
        })
        .collect()
});

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a Kubernetes protobuf envelope.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// The envelope or the object in it does not decode as its message.
    #[error("malformed protobuf body: cannot decode the {message} in it ({reason})")]
    Decode {
        /// The message being decoded (`runtime.Unknown`, `k8s.io.api.core.v1.Secret`).
        message: String,
        /// What prost-reflect reported.
        reason: String,
    },
    /// The envelope names a kind the sim has no schema for.
    #[error("protobuf bodies of kind {kind:?} ({api_version}) are not supported by the simulated cluster; send JSON")]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
}

/// Whether a `Content-Type` header names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().map(str::trim) == Some(CONTENT_TYPE)
}

/// Decodes a protobuf request body into the object's JSON form, with `apiVersion` and
/// `kind` from the envelope.
pub fn to_json(body: &[u8]) -> Result<Value, Error> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or(Error::Malformed("missing the k8s magic prefix"))?;
    let unknown = decode(message_named(UNKNOWN)?, envelope)?;
    let text = |field: &str| match unknown.get_field_by_name(field).as_deref() {
        Some(Field::String(s)) => s.clone(),
        _ => String::new(),
    };
    if !text("contentEncoding").is_empty() {
        return Err(Error::Malformed("the envelope's raw object is content-encoded"));
    }
    let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(Field::Message(m)) => m.clone(),
        _ => return Err(Error::Malformed("the envelope has no typeMeta")),
    };
    let type_field = |field: &str| match type_meta.get_field_by_name(field).as_deref() {
        Some(Field::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (api_version, kind) = (type_field("apiVersion"), type_field("kind"));
    let raw = match unknown.get_field_by_name("raw").as_deref() {
        Some(Field::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let descriptor = kind_message(&api_version, &kind).ok_or_else(|| Error::UnsupportedKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let object = decode(descriptor, &raw)?;
    let mut json = match message(&object) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    json.insert("apiVersion".into(), json!(api_version));
    json.insert("kind".into(), json!(kind));
    Ok(Value::Object(json))
}

/// The message of a kind: `k8s.io.api.<package>.<version>.<Kind>`, where the package is
/// the group's first label (`rbac` for `rbac.authorization.k8s.io`, `core` for the
/// legacy group), else the `meta/v1` message of that name (`DeleteOptions`).
fn kind_message(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    if kind.is_empty() || kind.contains('.') {
        return None;
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    POOL.get_message_by_name(&format!("k8s.io.api.{package}.{version}.{kind}"))
        .or_else(|| POOL.get_message_by_name(&format!("{META}.{kind}")))
}

fn message_named(name: &str) -> Result<MessageDescriptor, Error> {
    POOL.get_message_by_name(name)
        .ok_or(Error::Malformed("the sim's schemas lack a message"))
}

fn decode(descriptor: MessageDescriptor, bytes: &[u8]) -> Result<DynamicMessage, Error> {
    DynamicMessage::decode(descriptor.clone(), bytes).map_err(|e| Error::Decode {
        message: descriptor.full_name().to_string(),
        reason: e.to_string(),
    })
}

/// A message as JSON; `None` for a value Go leaves out or writes as `null` (a zero
/// time, an empty `RawExtension`).
fn message(m: &DynamicMessage) -> Option<Value> {
    let descriptor = m.descriptor();
    let name = descriptor.full_name();
    let field = |field: &str| m.get_field_by_name(field);
    match name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => return time(m, false),
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => return time(m, true),
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            let is_string = matches!(field("type").as_deref(), Some(Field::I64(1)));
            return Some(if is_string {
                scalar(field("strVal").as_deref()?)
            } else {
                scalar(field("intVal").as_deref()?)
            });
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity" | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            return Some(scalar(field("string").as_deref()?));
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => return embedded_json(field("Raw").as_deref()?),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => return embedded_json(field("raw").as_deref()?),
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs"
        | "k8s.io.api.authentication.v1.ExtraValue"
        | "k8s.io.api.authorization.v1.ExtraValue" => {
            return Some(value(field("items").as_deref()?, true).unwrap_or_else(|| json!([])));
        }
        _ => {}
    }
    let mut out = Map::new();
    for (field, v) in m.fields() {
        let rule = RULES.get(&(name, field.number()));
        let Some(converted) = value(v, rule.is_some_and(|r| r.keep_zero)) else {
            continue;
        };
        match rule.map(|r| r.json) {
            Some(None) => {
                if let Value::Object(inlined) = converted {
                    out.extend(inlined);
                }
            }
            Some(Some(json_name)) => {
                out.insert(json_name.to_string(), converted);
            }
            None => {
                out.insert(field.name().to_string(), converted);
            }
        }
    }
    Some(Value::Object(out))
}

/// A field's value as JSON; `None` when it is left out (empty lists and maps, and the
/// messages [`message`] leaves out).
fn value(v: &Field, keep_zero: bool) -> Option<Value> {
    match v {
        Field::Message(m) => message(m),
        Field::List(items) if items.is_empty() => None,
        // A list element is written even when zero: `[0, ""]` keeps its length.
        Field::List(items) => Some(Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Field::Message(m) => message(m).unwrap_or(Value::Null),
                    other => scalar(other),
                })
                .collect(),
        )),
        Field::Map(entries) if entries.is_empty() => None,
        Field::Map(entries) => {
            let mut out = Map::new();
            for (key, item) in entries {
                let item = match item {
                    Field::Message(m) => message(m).unwrap_or(Value::Null),
                    other => scalar(other),
                };
                out.insert(map_key(key), item);
            }
            Some(Value::Object(out))
        }
        other if is_zero(other, keep_zero) => None,
        other => Some(scalar(other)),
    }
}

/// Whether a scalar is left out: a zero value (`""`, `0`, `false`, empty bytes) unless
/// `keep_zero`.
fn is_zero(v: &Field, keep_zero: bool) -> bool {
    !keep_zero
        && match v {
            Field::String(s) => s.is_empty(),
            Field::Bytes(b) => b.is_empty(),
            Field::Bool(b) => !b,
            Field::I32(n) | Field::EnumNumber(n) => *n == 0,
            Field::I64(n) => *n == 0,
            Field::U32(n) => *n == 0,
            Field::U64(n) => *n == 0,
            Field::F32(n) => *n == 0.0,
            Field::F64(n) => *n == 0.0,
            Field::Message(_) | Field::List(_) | Field::Map(_) => false,
        }
}

/// A scalar as JSON (bytes as base64, like Go's `[]byte`).
fn scalar(v: &Field) -> Value {
    match v {
        Field::Bool(b) => json!(b),
        Field::I32(n) | Field::EnumNumber(n) => json!(n),
        Field::I64(n) => json!(n),
        Field::U32(n) => json!(n),
        Field::U64(n) => json!(n),
        Field::F32(n) => json!(n),
        Field::F64(n) => json!(n),
        Field::String(s) => json!(s),
        Field::Bytes(b) => json!(BASE64.encode(b)),
        Field::Message(m) => message(m).unwrap_or(Value::Null),
        Field::List(_) | Field::Map(_) => value(v, true).unwrap_or(Value::Null),
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

/// `metav1.Time` (whole seconds) or `metav1.MicroTime` (six fraction digits), UTC; a
/// zero time is unset.
fn time(m: &DynamicMessage, micro: bool) -> Option<Value> {
    let seconds = match m.get_field_by_name("seconds").as_deref() {
        Some(Field::I64(s)) => *s,
        _ => 0,
    };
    let nanos = match m.get_field_by_name("nanos").as_deref() {
        Some(Field::I32(n)) => *n,
        _ => 0,
    };
    if seconds == 0 && nanos == 0 {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(seconds) * 1_000_000_000 + i128::from(nanos)).ok()?;
    if micro {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
        at.format(&format).ok().map(Value::String)
    } else {
        Some(json!(crate::meta::timestamp(at)))
    }
}

/// The JSON held by a `FieldsV1` or `RawExtension`; bytes that are not JSON are kept as
/// base64, which is how Go would print them.
fn embedded_json(v: &Field) -> Option<Value> {
    let Field::Bytes(bytes) = v else { return None };
    if bytes.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(bytes).unwrap_or_else(|_| json!(BASE64.encode(bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::prost::Message as _;

    /// What `kubectl create rolebinding x --clusterrole=view --user=alice -n shop` sends.
    const ROLE_BINDING: &[u8] = b"k8s\x00\n+\n\x1crbac.authorization.k8s.io/v1\x12\x0bRoleBinding\x12s\n\x15\n\x01x\x12\x00\x1a\x04shop\"\x00*\x002\x008\x00B\x00\x12*\n\x04User\x12\x19rbac.authorization.k8s.io\x1a\x05alice\"\x00\x1a.\n\x19rbac.authorization.k8s.io\x12\x0bClusterRole\x1a\x04view\x1a\x00\"\x00";

    #[test]
    fn decodes_what_kubectl_create_rolebinding_sends() {
        assert_eq!(
            to_json(ROLE_BINDING).unwrap(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": { "name": "x", "namespace": "shop" },
                "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice" }],
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
            })
        );
    }

    #[test]
    fn rejects_unknown_kinds_and_garbage() {
        let widget = envelope("example.com/v1", "Widget", &[]);
        assert_eq!(
            to_json(&widget),
            Err(Error::UnsupportedKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into()
            })
        );
        assert!(matches!(to_json(b"{}"), Err(Error::Malformed(_))));
        assert!(matches!(to_json(&ROLE_BINDING[..40]), Err(Error::Decode { .. })));
        assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(!is_protobuf("application/json"));
    }

    #[test]
    fn every_built_in_kind_has_a_schema() {
        use crate::resource::{builtin, reviews};
        // CustomResourceDefinitions (like the custom objects they define) reach the sim
        // as JSON: kubectl and helm send them through the unstructured client, so the
        // apiextensions schemas are not vendored.
        let typed = builtin().iter().filter(|r| r.group != "apiextensions.k8s.io");
        for r in typed.chain(reviews()) {
            let object = to_json(&envelope(&r.api_version(), &r.kind, b"\n\x03\n\x01x"))
                .unwrap_or_else(|e| panic!("{}: {e}", r.kind));
            assert_eq!(
                object,
                json!({ "apiVersion": r.api_version(), "kind": r.kind, "metadata": { "name": "x" } }),
                "{}",
                r.kind
            );
        }
    }

    /// A release as helm's storage driver writes it: `data.release` is bytes, so JSON
    /// has it in base64 (helm's own payload is base64 of gzip, so base64 twice).
    #[test]
    fn decodes_a_helm_release_secret() {
        let text = r#"
            metadata {
              name: "sh.helm.release.v1.demo.v1" generateName: "" namespace: "default" selfLink: "" uid: ""
              resourceVersion: "" generation: 0 creationTimestamp {}
              labels { key: "owner" value: "helm" } labels { key: "name" value: "demo" }
              labels { key: "status" value: "deployed" } labels { key: "version" value: "1" }
            }
            data { key: "release" value: "H4sI\x00\xff" }
            type: "helm.sh/release.v1"
        "#;
        assert_eq!(
            to_json(&body("v1", "Secret", "k8s.io.api.core.v1.Secret", text)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": "sh.helm.release.v1.demo.v1", "namespace": "default",
                    "labels": { "owner": "helm", "name": "demo", "status": "deployed", "version": "1" },
                },
                "data": { "release": BASE64.encode(b"H4sI\x00\xff") },
                "type": "helm.sh/release.v1",
            })
        );
    }

    #[test]
    fn decodes_times_and_prints_zero_pointers_only() {
        // `generation` is a value field with omitempty; the other zeros are pointers.
        let text = r#"
            metadata { name: "settings" namespace: "default" generation: 0 creationTimestamp { seconds: 1700000000 }
                       deletionTimestamp { seconds: 1700000060 nanos: 0 } deletionGracePeriodSeconds: 0 }
            immutable: false
            data { key: "mode" value: "fast" }
            binaryData { key: "blob" value: "\x01\x02" }
        "#;
        assert_eq!(
            to_json(&body("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap", text)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "settings", "namespace": "default",
                    "creationTimestamp": "2023-11-14T22:13:20Z",
                    "deletionTimestamp": "2023-11-14T22:14:20Z",
                    "deletionGracePeriodSeconds": 0,
                },
                "immutable": false,
                "data": { "mode": "fast" },
                "binaryData": { "blob": "AQI=" },
            })
        );
    }

    #[test]
    fn decodes_a_service_with_int_and_string_target_ports() {
        let text = r#"
            metadata { name: "web" namespace: "shop" }
            spec {
              ports { name: "http" protocol: "TCP" port: 80 targetPort { type: 1 intVal: 0 strVal: "http" } }
              ports { name: "metrics" protocol: "TCP" port: 9090 targetPort { type: 0 intVal: 9090 strVal: "" } }
              selector { key: "app" value: "web" }
              type: "ClusterIP" clusterIP: ""
            }
            status { loadBalancer {} }
        "#;
        assert_eq!(
            to_json(&body("v1", "Service", "k8s.io.api.core.v1.Service", text)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "web", "namespace": "shop" },
                "spec": {
                    "ports": [
                        { "name": "http", "protocol": "TCP", "port": 80, "targetPort": "http" },
                        { "name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090 },
                    ],
                    "selector": { "app": "web" },
                    "type": "ClusterIP",
                },
                "status": { "loadBalancer": {} },
            })
        );
    }

    /// A Deployment with what charts set: quantities, int-or-string surges, a volume and
    /// a probe (whose sources Go embeds inline), an env var from a Secret, and the zeros
    /// client-go writes: pointers (`replicas: 0`, `allowPrivilegeEscalation: false`) are
    /// printed, value fields (`minReadySeconds`, `hostNetwork`, the status) are not.
    #[test]
    fn decodes_a_deployment_as_charts_write_it() {
        let text = r#"
            metadata { name: "web" namespace: "shop" labels { key: "app" value: "web" } }
            spec {
              replicas: 0 minReadySeconds: 0 paused: false
              selector { matchLabels { key: "app" value: "web" } }
              template {
                metadata { labels { key: "app" value: "web" } creationTimestamp {} }
                spec {
                  hostNetwork: false hostPID: false restartPolicy: "" dnsPolicy: ""
                  volumes { name: "config" volumeSource { configMap { localObjectReference { name: "web" } defaultMode: 420 } } }
                  containers {
                    name: "web" image: "nginx:1.27" stdin: false tty: false workingDir: ""
                    ports { name: "http" containerPort: 8080 protocol: "TCP" }
                    env { name: "TOKEN" valueFrom { secretKeyRef { localObjectReference { name: "web" } key: "token" } } }
                    resources {
                      limits { key: "cpu" value { string: "500m" } }
                      limits { key: "memory" value { string: "1Gi" } }
                      requests { key: "cpu" value { string: "100m" } }
                    }
                    readinessProbe { handler { httpGet { path: "/healthz" port { type: 1 strVal: "http" } } } periodSeconds: 5 }
                    securityContext { allowPrivilegeEscalation: false runAsUser: 0 }
                  }
                }
              }
              strategy {
                type: "RollingUpdate"
                rollingUpdate { maxUnavailable { type: 0 intVal: 0 } maxSurge { type: 1 strVal: "25%" } }
              }
            }
            status { observedGeneration: 0 replicas: 0 updatedReplicas: 0 readyReplicas: 0 availableReplicas: 0 unavailableReplicas: 0 }
        "#;
        assert_eq!(
            to_json(&body("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment", text)).unwrap(),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "namespace": "shop", "labels": { "app": "web" } },
                "spec": {
                    "replicas": 0,
                    "selector": { "matchLabels": { "app": "web" } },
                    "template": {
                        "metadata": { "labels": { "app": "web" } },
                        "spec": {
                            "volumes": [{ "name": "config", "configMap": { "name": "web", "defaultMode": 420 } }],
                            "containers": [{
                                "name": "web", "image": "nginx:1.27",
                                "ports": [{ "name": "http", "containerPort": 8080, "protocol": "TCP" }],
                                "env": [{ "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "web", "key": "token" } } }],
                                "resources": {
                                    "limits": { "cpu": "500m", "memory": "1Gi" },
                                    "requests": { "cpu": "100m" },
                                },
                                "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" }, "periodSeconds": 5 },
                                "securityContext": { "allowPrivilegeEscalation": false, "runAsUser": 0 },
                            }],
                        },
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": { "maxUnavailable": 0, "maxSurge": "25%" },
                    },
                },
                "status": {},
            })
        );
    }

    #[test]
    fn decodes_a_service_account_and_a_cluster_role() {
        let text = r#"
            metadata { name: "web" namespace: "shop" }
            secrets { name: "web-token" }
            automountServiceAccountToken: false
        "#;
        assert_eq!(
            to_json(&body("v1", "ServiceAccount", "k8s.io.api.core.v1.ServiceAccount", text)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": "web", "namespace": "shop" },
                "secrets": [{ "name": "web-token" }],
                "automountServiceAccountToken": false,
            })
        );
        let text = r#"
            metadata { name: "monitoring" }
            rules { verbs: "get" verbs: "list" apiGroups: "" resources: "pods" }
            aggregationRule { clusterRoleSelectors { matchLabels { key: "rbac.example.com/aggregate" value: "true" } } }
        "#;
        let role = "rbac.authorization.k8s.io/v1";
        assert_eq!(
            to_json(&body(role, "ClusterRole", "k8s.io.api.rbac.v1.ClusterRole", text)).unwrap(),
            json!({
                "apiVersion": role, "kind": "ClusterRole",
                "metadata": { "name": "monitoring" },
                // A list keeps its empty strings: `apiGroups: [""]` is the core group.
                "rules": [{ "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"] }],
                "aggregationRule": { "clusterRoleSelectors": [{ "matchLabels": { "rbac.example.com/aggregate": "true" } }] },
            })
        );
    }

    #[test]
    fn decodes_micro_times_managed_fields_and_extra_values() {
        let text = r#"
            metadata {
              name: "web.1" namespace: "shop"
              managedFields { manager: "kubectl" operation: "Update" apiVersion: "v1" time { seconds: 1700000000 }
                              fieldsType: "FieldsV1" fieldsV1 { Raw: "{\"f:reason\":{}}" } }
            }
            involvedObject { kind: "Pod" name: "web" }
            reason: "Started" count: 1
            eventTime { seconds: 1700000000 nanos: 123456789 }
        "#;
        assert_eq!(
            to_json(&body("v1", "Event", "k8s.io.api.core.v1.Event", text)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {
                    "name": "web.1", "namespace": "shop",
                    "managedFields": [{
                        "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                        "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1",
                        "fieldsV1": { "f:reason": {} },
                    }],
                },
                "involvedObject": { "kind": "Pod", "name": "web" },
                "reason": "Started", "count": 1,
                "eventTime": "2023-11-14T22:13:20.123456Z",
            })
        );
        let text = r#"
            spec {
              resourceAttributes { namespace: "shop" verb: "get" resource: "pods" }
              user: "alice" groups: "dev" extra { key: "scopes" value { items: "a" items: "b" } }
            }
        "#;
        let review = "authorization.k8s.io/v1";
        assert_eq!(
            to_json(&body(
                review,
                "SubjectAccessReview",
                "k8s.io.api.authorization.v1.SubjectAccessReview",
                text
            ))
            .unwrap(),
            json!({
                "apiVersion": review, "kind": "SubjectAccessReview",
                "spec": {
                    "resourceAttributes": { "namespace": "shop", "verb": "get", "resource": "pods" },
                    "user": "alice", "groups": ["dev"], "extra": { "scopes": ["a", "b"] },
                },
            })
        );
    }

    /// Names from Go's struct tags: an IngressRule embeds its IngressRuleValue inline, and
    /// a parameters reference's `aPIGroup` is `apiGroup` in JSON.
    #[test]
    fn uses_the_json_names_of_go_struct_tags() {
        let text = r#"
            metadata { name: "web" namespace: "shop" }
            spec {
              ingressClassName: "nginx"
              rules { host: "shop.example.com" ingressRuleValue { http { paths {
                path: "/" pathType: "Prefix" backend { service { name: "web" port { number: 80 } } }
              } } } }
            }
        "#;
        let networking = "networking.k8s.io/v1";
        assert_eq!(
            to_json(&body(networking, "Ingress", "k8s.io.api.networking.v1.Ingress", text)).unwrap()["spec"],
            json!({
                "ingressClassName": "nginx",
                "rules": [{ "host": "shop.example.com", "http": { "paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": { "service": { "name": "web", "port": { "number": 80 } } },
                }] } }],
            })
        );
        let text = r#"metadata { name: "nginx" } spec { controller: "k8s.io/ingress-nginx" parameters { aPIGroup: "example.com" kind: "Params" name: "p" } }"#;
        assert_eq!(
            to_json(&body(
                networking,
                "IngressClass",
                "k8s.io.api.networking.v1.IngressClass",
                text
            ))
            .unwrap()["spec"]["parameters"],
            json!({ "apiGroup": "example.com", "kind": "Params", "name": "p" })
        );
    }

    /// client-go's typed deletes (helm uninstall) send DeleteOptions in the request's
    /// group version.
    #[test]
    fn decodes_delete_options_of_any_group() {
        for api_version in ["v1", "apps/v1"] {
            let text = r#"gracePeriodSeconds: 0 propagationPolicy: "Background""#;
            let message = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";
            assert_eq!(
                to_json(&body(api_version, "DeleteOptions", message, text)).unwrap(),
                json!({
                    "apiVersion": api_version, "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0, "propagationPolicy": "Background",
                })
            );
        }
    }

    /// Encodes `text` (the protobuf text format) as `message` and wraps it in an envelope,
    /// as client-go does.
    fn body(api_version: &str, kind: &str, message: &str, text: &str) -> Vec<u8> {
        let descriptor = POOL
            .get_message_by_name(message)
            .expect("the message is in the schemas");
        let object = DynamicMessage::parse_text_format(descriptor, text).expect("the test object parses");
        envelope(api_version, kind, &object.encode_to_vec())
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let unknown = POOL
            .get_message_by_name(UNKNOWN)
            .expect("runtime.Unknown is in the schemas");
        let text = format!(
            "typeMeta {{ apiVersion: {api_version:?} kind: {kind:?} }} contentEncoding: \"\" contentType: \"\""
        );
        let mut envelope = DynamicMessage::parse_text_format(unknown.clone(), &text).expect("the envelope parses");
        envelope.set_field_by_name("raw", Field::Bytes(raw.to_vec().into()));
        [MAGIC, &envelope.encode_to_vec()].concat()
    }
}
