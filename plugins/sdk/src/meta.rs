//! `metadata`: the part of every object that most DTOs read.

use std::collections::BTreeMap;

use crate::{Timestamp, object};

/// The `metadata` fields plugins read. Missing and `null` values become defaults.
#[object]
#[derive(Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.creationTimestamp`; the zero time when absent.
    pub creation_timestamp: Timestamp,
    /// `metadata.deletionTimestamp`; the zero time when absent (not being deleted).
    pub deletion_timestamp: Timestamp,
    /// `metadata.labels`, sorted by key.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`, sorted by key.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.ownerReferences`, in order.
    pub owner_references: Vec<OwnerReference>,
}

/// One entry of `metadata.ownerReferences`.
#[object]
#[derive(Debug, Clone)]
pub struct OwnerReference {
    /// The owner's kind (`Deployment`).
    pub kind: String,
    /// The owner's name.
    pub name: String,
}

impl Meta {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The value of annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// True when `metadata.deletionTimestamp` is set.
    pub fn is_deleting(&self) -> bool {
        !self.deletion_timestamp.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_missing_keys_become_defaults() {
        let meta: Meta =
            serde_json::from_str(r#"{"name":"a","namespace":null,"labels":null,"creationTimestamp":null,"unknown":1}"#)
                .unwrap();
        assert_eq!(meta.name, "a");
        assert_eq!(meta.namespace, "");
        assert!(meta.labels.is_empty());
        assert!(meta.creation_timestamp.is_zero());
        assert!(!meta.is_deleting());
    }

    #[test]
    fn labels_and_owners_are_read() {
        let meta: Meta = serde_json::from_str(
            r#"{"labels":{"b":"2","a":"1"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-1","uid":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(meta.label("a"), Some("1"));
        assert_eq!(meta.owner_references[0].kind, "ReplicaSet");
    }
}
