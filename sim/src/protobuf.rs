//! Decoding the Kubernetes protobuf encoding of request bodies into JSON, for the kinds
//! whose typed clients send it.
//!
//! kubectl's typed commands (`kubectl create rolebinding`, `kubectl auth can-i`) send
//! `Content-Type: application/vnd.kubernetes.protobuf` and do not fall back to JSON,
//! while they accept JSON answers. The body is the magic `k8s\0` and a
//! `runtime.Unknown` (`typeMeta`, `raw`) whose `raw` is the object in the field numbers
//! of `k8s.io/api`'s `generated.proto`. Only the RBAC kinds and the access reviews are
//! known; fields outside their schemas are skipped. Empty strings, zero numbers and
//! unset times are left out, as the JSON encoding's `omitempty` does.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The media type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed Kubernetes protobuf envelope.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// The envelope names a kind the sim cannot decode.
    #[error("protobuf bodies of kind {0:?} are not supported by the simulated cluster; send JSON")]
    UnsupportedKind(String),
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Time,
    StrMap,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn one(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn many(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    one(1, "kind", Ty::Str),
    one(3, "name", Ty::Str),
    one(4, "uid", Ty::Str),
    one(5, "apiVersion", Ty::Str),
    one(6, "controller", Ty::Bool),
    one(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    one(1, "name", Ty::Str),
    one(2, "generateName", Ty::Str),
    one(3, "namespace", Ty::Str),
    one(5, "uid", Ty::Str),
    one(6, "resourceVersion", Ty::Str),
    one(7, "generation", Ty::Int),
    one(8, "creationTimestamp", Ty::Time),
    one(9, "deletionTimestamp", Ty::Time),
    one(10, "deletionGracePeriodSeconds", Ty::Int),
    one(11, "labels", Ty::StrMap),
    one(12, "annotations", Ty::StrMap),
    many(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    many(14, "finalizers", Ty::Str),
];

const SUBJECT: &[Field] = &[
    one(1, "kind", Ty::Str),
    one(2, "apiGroup", Ty::Str),
    one(3, "name", Ty::Str),
    one(4, "namespace", Ty::Str),
];

const ROLE_REF: &[Field] = &[
    one(1, "apiGroup", Ty::Str),
    one(2, "kind", Ty::Str),
    one(3, "name", Ty::Str),
];

const BINDING: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    many(2, "subjects", Ty::Msg(SUBJECT)),
    one(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const POLICY_RULE: &[Field] = &[
    many(1, "verbs", Ty::Str),
    many(2, "apiGroups", Ty::Str),
    many(3, "resources", Ty::Str),
    many(4, "resourceNames", Ty::Str),
    many(5, "nonResourceURLs", Ty::Str),
];

const REQUIREMENT: &[Field] = &[
    one(1, "key", Ty::Str),
    one(2, "operator", Ty::Str),
    many(3, "values", Ty::Str),
];

const LABEL_SELECTOR: &[Field] = &[
    one(1, "matchLabels", Ty::StrMap),
    many(2, "matchExpressions", Ty::Msg(REQUIREMENT)),
];

const AGGREGATION_RULE: &[Field] = &[many(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))];

const ROLE: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    many(2, "rules", Ty::Msg(POLICY_RULE)),
];

const CLUSTER_ROLE: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    many(2, "rules", Ty::Msg(POLICY_RULE)),
    one(3, "aggregationRule", Ty::Msg(AGGREGATION_RULE)),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    one(1, "namespace", Ty::Str),
    one(2, "verb", Ty::Str),
    one(3, "group", Ty::Str),
    one(4, "version", Ty::Str),
    one(5, "resource", Ty::Str),
    one(6, "subresource", Ty::Str),
    one(7, "name", Ty::Str),
];

const NON_RESOURCE_ATTRIBUTES: &[Field] = &[one(1, "path", Ty::Str), one(2, "verb", Ty::Str)];

const SELF_ACCESS_SPEC: &[Field] = &[
    one(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    one(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];

const ACCESS_SPEC: &[Field] = &[
    one(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    one(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    one(3, "user", Ty::Str),
    many(4, "groups", Ty::Str),
    one(6, "uid", Ty::Str),
];

const RULES_SPEC: &[Field] = &[one(1, "namespace", Ty::Str)];

const SELF_ACCESS_REVIEW: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    one(2, "spec", Ty::Msg(SELF_ACCESS_SPEC)),
];

const ACCESS_REVIEW: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    one(2, "spec", Ty::Msg(ACCESS_SPEC)),
];

const RULES_REVIEW: &[Field] = &[
    one(1, "metadata", Ty::Msg(OBJECT_META)),
    one(2, "spec", Ty::Msg(RULES_SPEC)),
];

const SELF_REVIEW: &[Field] = &[one(1, "metadata", Ty::Msg(OBJECT_META))];

/// The kinds whose protobuf bodies can be decoded, by `apiVersion` and `kind`.
const KINDS: &[(&str, &str, &[Field])] = &[
    ("authentication.k8s.io/v1", "SelfSubjectReview", SELF_REVIEW),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", BINDING),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", BINDING),
    ("rbac.authorization.k8s.io/v1", "Role", ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", CLUSTER_ROLE),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", SELF_ACCESS_REVIEW),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", RULES_REVIEW),
    ("authorization.k8s.io/v1", "SubjectAccessReview", ACCESS_REVIEW),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", ACCESS_REVIEW),
];

/// Whether a `Content-Type` header names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().map(str::trim) == Some(CONTENT_TYPE)
}

/// Decodes a protobuf request body into the object's JSON form.
pub fn to_json(body: &[u8]) -> Result<Value, Error> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or(Error::Malformed("missing the k8s magic prefix"))?;
    let mut type_meta = &[][..];
    let mut raw = &[][..];
    for item in Reader(envelope) {
        match item? {
            (1, Wire::Bytes(b)) => type_meta = b,
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut api_version = String::new();
    let mut kind = String::new();
    for item in Reader(type_meta) {
        match item? {
            (1, Wire::Bytes(b)) => api_version = utf8(b)?,
            (2, Wire::Bytes(b)) => kind = utf8(b)?,
            _ => {}
        }
    }
    let schema = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, s)| *s)
        .ok_or_else(|| Error::UnsupportedKind(kind.clone()))?;
    let mut object = message(raw, schema)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

/// One field's payload on the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the `(field number, payload)` pairs of one message.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or(Error::Malformed("truncated varint"))?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed("truncated field"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Wire<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut step = || -> Result<(u64, Wire<'a>), Error> {
            let tag = self.varint()?;
            let wire = match tag & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Wire::Fixed
                }
                2 => {
                    let n = usize::try_from(self.varint()?).map_err(|_| Error::Malformed("field too long"))?;
                    let bytes: &'a [u8] = {
                        if self.0.len() < n {
                            return Err(Error::Malformed("truncated field"));
                        }
                        let (head, rest) = self.0.split_at(n);
                        self.0 = rest;
                        head
                    };
                    Wire::Bytes(bytes)
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed
                }
                _ => return Err(Error::Malformed("unsupported wire type")),
            };
            Ok((tag >> 3, wire))
        };
        let item = step();
        if item.is_err() {
            // Stop after an error rather than reading garbage.
            self.0 = &[];
        }
        Some(item)
    }
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed("a string is not UTF-8"))
}

fn message(bytes: &[u8], schema: &[Field]) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for item in Reader(bytes) {
        let (num, wire) = item?;
        let Some(field) = schema.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Str, Wire::Bytes(b)) => Some(json!(utf8(b)?)),
            (Ty::Int, Wire::Varint(v)) => Some(json!(v as i64)),
            (Ty::Bool, Wire::Varint(v)) => Some(json!(v != 0)),
            (Ty::Time, Wire::Bytes(b)) => time(b)?,
            (Ty::Msg(inner), Wire::Bytes(b)) => Some(Value::Object(message(b, inner)?)),
            (Ty::StrMap, Wire::Bytes(b)) => {
                let (key, value) = entry(b)?;
                let map = out.entry(field.name).or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = map.as_object_mut() {
                    map.insert(key, json!(value));
                }
                continue;
            }
            _ => return Err(Error::Malformed("a field has the wrong wire type")),
        };
        let Some(value) = value else { continue };
        if field.repeated {
            if let Some(list) = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                list.push(value);
            }
        } else if !is_empty(&value) || matches!(field.ty, Ty::Msg(_)) {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(out)
}

/// Zero values the JSON encoding leaves out.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// A map entry: `key = 1`, `value = 2`.
fn entry(bytes: &[u8]) -> Result<(String, String), Error> {
    let (mut key, mut value) = (String::new(), String::new());
    for item in Reader(bytes) {
        match item? {
            (1, Wire::Bytes(b)) => key = utf8(b)?,
            (2, Wire::Bytes(b)) => value = utf8(b)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// A `metav1.Time` (`seconds = 1`, `nanos = 2`); an empty one is unset.
fn time(bytes: &[u8]) -> Result<Option<Value>, Error> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut seconds = 0i64;
    for item in Reader(bytes) {
        if let (1, Wire::Varint(v)) = item? {
            seconds = v as i64;
        }
    }
    let at = OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| Error::Malformed("a time is out of range"))?;
    Ok(Some(json!(crate::meta::timestamp(at))))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rejects_other_kinds_and_garbage() {
        let pod = b"k8s\x00\n\x09\n\x02v1\x12\x03Pod\x12\x00";
        assert_eq!(to_json(pod), Err(Error::UnsupportedKind("Pod".into())));
        assert!(matches!(to_json(b"{}"), Err(Error::Malformed(_))));
        assert!(matches!(to_json(&ROLE_BINDING[..40]), Err(Error::Malformed(_))));
        assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(!is_protobuf("application/json"));
    }
}
