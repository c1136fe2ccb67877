//! Small helpers for reading and writing object metadata and timestamps.
//!
//! Objects are kept as `serde_json::Value` so that the sim serves exactly the JSON it
//! was given (unknown fields included), like an apiserver storing opaque objects.

use rand::RngCore;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// `metadata.name`, or `""`.
pub(crate) fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.namespace`, or `""`.
pub(crate) fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.resourceVersion`, or `""`.
pub(crate) fn resource_version(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The `metadata` map, created if absent (an object without one gets one).
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("checked to be an object just above");
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("checked to be an object just above")
}

/// Whether `metadata.finalizers` has entries.
pub(crate) fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// The current time as a Kubernetes timestamp (`2024-05-01T12:00:00Z`, whole seconds).
pub fn now_timestamp() -> String {
    timestamp(OffsetDateTime::now_utc())
}

/// A time as a Kubernetes timestamp (whole seconds, UTC, `Z`).
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A time as a kubelet log-line prefix: RFC 3339 with nine fractional digits.
pub fn log_timestamp(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

/// Parses a Kubernetes timestamp.
pub(crate) fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A random RFC 4122 version-4 UID drawn from `rng` (deterministic for a seeded RNG).
pub(crate) fn uid(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The `(name, image)` of each container of a pod spec (a pod's `spec`, or a
/// template's `spec.template.spec`).
pub(crate) fn containers(spec: &Value) -> Vec<(String, String)> {
    spec.get("containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (s("name"), s("image"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn log_timestamps_have_nine_fraction_digits() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_500).unwrap();
        assert_eq!(log_timestamp(t), "2023-11-14T22:13:20.000000500Z");
        assert_eq!(timestamp(t), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z").map(|p| p.unix_timestamp()),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn uids_are_version_4_and_deterministic() {
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let u = uid(&mut a);
        assert_eq!(u, uid(&mut b));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
