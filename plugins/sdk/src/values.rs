//! Small Kubernetes value types and renderings shared by many kinds (spec 1.3).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

/// Deserializes a missing-or-`null` value as its default, for
/// `#[serde(default, deserialize_with = "nullable")]` fields: the apiserver writes
/// `null` for many empty fields and the spec treats `null` like absence.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A Kubernetes IntOrString (`targetPort`, `minAvailable`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number, rendered in decimal.
    Int(i64),
    /// A string, rendered as-is (`"http"`, `"25%"`).
    String(String),
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl IntOrString {
    /// Renders an optional value, `absent` when there is none (spec: `"0"` for ports,
    /// `"N/A"` for disruption budgets).
    pub fn render(value: Option<&IntOrString>, absent: &str) -> String {
        value.map_or_else(|| absent.to_string(), ToString::to_string)
    }
}

/// Renders a label map the way `labels.Set.String()` does: keys in byte order,
/// `key=value` pairs joined with `,`; empty for an empty map.
pub fn label_selector(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_string_renders_both_forms() {
        let v: IntOrString = serde_json::from_str("8080").unwrap();
        assert_eq!(v.to_string(), "8080");
        let v: IntOrString = serde_json::from_str("\"25%\"").unwrap();
        assert_eq!(v.to_string(), "25%");
        assert_eq!(IntOrString::render(None, "0"), "0");
    }

    #[test]
    fn label_selector_sorts_by_key_and_joins_without_spaces() {
        let mut labels = BTreeMap::new();
        labels.insert("tier".to_string(), "web".to_string());
        labels.insert("app".to_string(), "shop".to_string());
        assert_eq!(label_selector(&labels), "app=shop,tier=web");
        assert_eq!(label_selector(&BTreeMap::new()), "");
    }

    #[test]
    fn nullable_turns_null_into_default() {
        #[derive(Deserialize)]
        struct S {
            #[serde(default, deserialize_with = "nullable")]
            items: Vec<u32>,
        }
        let s: S = serde_json::from_str(r#"{"items":null}"#).unwrap();
        assert!(s.items.is_empty());
        let s: S = serde_json::from_str("{}").unwrap();
        assert!(s.items.is_empty());
    }
}
