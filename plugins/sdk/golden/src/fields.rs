//! `kind-info.fields`, parsed once per plugin: which parts of an object cross into it.
//!
//! A field is a dotted path of object keys; `[]` after a key steps into every element
//! of the array there:
//!
//! ```text
//! status                          the whole `status` (a plain key means what it always did)
//! spec.nodeName                   only `nodeName` of `spec`
//! spec.containers[].name          each container reduced to its `name`
//! status.containerStatuses[].state.waiting.reason
//! ```
//!
//! The first keys of all paths are the top-level keys kept (`apiVersion`, `kind` and
//! `metadata` always stay; `metadata` is reduced only when a path names a key in it,
//! and loses `managedFields` regardless). Where a path ends, the value is kept whole;
//! above it, an object keeps only the keys named and an array keeps every element,
//! each reduced the same way. A value of another shape than the path expects (`null`,
//! a string where an object was named) is kept as it is, so pruning never turns a
//! value the mapping would reject into one it accepts. No fields at all keep
//! everything. Keys containing `.`, `[` or `]` cannot be named (no Kubernetes field
//! the bundled plugins read has them).

use std::fmt;

use serde::{Serialize, Serializer};

/// Parsed `kind-info.fields`: the paths as declared and the tree they describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    declared: Vec<String>,
    /// `None` keeps every top-level key.
    top: Option<Keys>,
}

/// What of one value crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// All of it.
    Whole,
    /// Of an object, these keys only.
    Keys(Keys),
    /// Of an array, every element, each reduced by the inner node.
    Items(Box<Node>),
}

/// The keys of an object that cross, each with what of its value crosses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys(Vec<(String, Node)>);

impl Keys {
    /// What of `key` crosses; `None` drops it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, node)| node)
    }
}

/// A path in `kind-info.fields` that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldsError {
    /// The path as declared.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for FieldsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field path {:?}: {}", self.path, self.reason)
    }
}

impl std::error::Error for FieldsError {}

impl Fields {
    /// Parses declared paths; the first invalid one is the error.
    pub fn parse<S: AsRef<str>>(declared: &[S]) -> Result<Fields, FieldsError> {
        let mut top: Option<Keys> = None;
        for path in declared {
            let path = path.as_ref();
            let error = |reason: &str| FieldsError {
                path: path.to_string(),
                reason: reason.to_string(),
            };
            let steps = steps(path).map_err(error)?;
            insert(top.get_or_insert_with(Keys::default), &steps).map_err(error)?;
        }
        Ok(Fields {
            declared: declared.iter().map(|p| p.as_ref().to_string()).collect(),
            top,
        })
    }

    /// The paths as declared.
    pub fn declared(&self) -> &[String] {
        &self.declared
    }

    /// True when nothing is dropped but `metadata.managedFields`.
    pub fn is_empty(&self) -> bool {
        self.top.is_none()
    }

    /// What of top-level `key` crosses; `None` drops it.
    pub(crate) fn top(&self, key: &str) -> Option<&Node> {
        match &self.top {
            None => Some(&Node::Whole),
            Some(keys) => keys
                .get(key)
                .or_else(|| crate::ALWAYS_KEPT.contains(&key).then_some(&Node::Whole)),
        }
    }
}

/// Serialized as declared (the list `kind-info.fields` carries).
impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.declared.serialize(serializer)
    }
}

/// One key of a path and how many `[]` follow it.
struct Step<'a> {
    key: &'a str,
    arrays: usize,
}

fn steps(path: &str) -> Result<Vec<Step<'_>>, &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    let steps = path
        .split('.')
        .map(|segment| {
            let mut key = segment;
            let mut arrays = 0;
            while let Some(rest) = key.strip_suffix("[]") {
                key = rest;
                arrays += 1;
            }
            if key.is_empty() {
                return Err("has an empty key (write `a.b` or `a[].b`)");
            }
            if key.contains(['[', ']']) || key.contains(char::is_whitespace) {
                return Err("a key may hold no `[`, `]` or spaces; `[]` goes right after a key");
            }
            Ok(Step { key, arrays })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if steps.last().is_some_and(|s| s.arrays > 0) {
        return Err(
            "ends in `[]`: name the element keys to keep (`a[].name`), or drop the `[]` to keep the array whole",
        );
    }
    Ok(steps)
}

fn insert(keys: &mut Keys, steps: &[Step<'_>]) -> Result<(), &'static str> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(());
    };
    let index = match keys.0.iter().position(|(k, _)| k == step.key) {
        Some(index) => index,
        None => {
            keys.0.push((step.key.to_string(), Node::Keys(Keys::default())));
            keys.0.len() - 1
        }
    };
    let mut node = &mut keys.0[index].1;
    if rest.is_empty() {
        // Where a path ends the value crosses whole, whatever longer paths say.
        *node = Node::Whole;
        return Ok(());
    }
    for _ in 0..step.arrays {
        if let Node::Keys(k) = node
            && k.0.is_empty()
        {
            *node = Node::Items(Box::new(Node::Keys(Keys::default())));
        }
        node = match node {
            Node::Whole => return Ok(()),
            Node::Items(inner) => inner,
            Node::Keys(_) => return Err("steps into an object another path names as an array (`[]`)"),
        };
    }
    match node {
        Node::Whole => Ok(()),
        Node::Keys(inner) => insert(inner, rest),
        Node::Items(_) => Err("names an array (another path has `[]` there) as an object"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys(entries: Vec<(&str, Node)>) -> Node {
        Node::Keys(Keys(entries.into_iter().map(|(k, n)| (k.to_string(), n)).collect()))
    }

    #[test]
    fn paths_build_one_tree_and_a_shorter_path_wins() {
        let fields = Fields::parse(&[
            "spec.containers[].name",
            "status",
            "status.phase",
            "spec.nodeName",
            "metadata.name",
        ])
        .unwrap();
        assert_eq!(
            fields.top.clone().map(Node::Keys),
            Some(keys(vec![
                (
                    "spec",
                    keys(vec![
                        ("containers", Node::Items(Box::new(keys(vec![("name", Node::Whole)])))),
                        ("nodeName", Node::Whole),
                    ])
                ),
                ("status", Node::Whole),
                ("metadata", keys(vec![("name", Node::Whole)])),
            ]))
        );
        assert_eq!(fields.top("kind"), Some(&Node::Whole));
        assert_eq!(fields.top("data"), None);
        assert_eq!(fields.declared().len(), 5);
    }

    #[test]
    fn plain_keys_mean_what_they_always_did() {
        let fields = Fields::parse(&["spec", "status"]).unwrap();
        assert_eq!(fields.top("spec"), Some(&Node::Whole));
        assert_eq!(fields.top("metadata"), Some(&Node::Whole));
        assert_eq!(fields.top("data"), None);
        assert!(Fields::parse(&[] as &[&str]).unwrap().is_empty());
    }

    #[test]
    fn nested_arrays_step_in_twice() {
        let fields = Fields::parse(&["a[][].b"]).unwrap();
        assert_eq!(
            fields.top("a"),
            Some(&Node::Items(Box::new(Node::Items(Box::new(keys(vec![(
                "b",
                Node::Whole
            )]))))))
        );
    }

    #[test]
    fn invalid_paths_say_what_is_wrong() {
        let reason = |paths: &[&str]| Fields::parse(paths).unwrap_err().to_string();
        assert!(reason(&[""]).contains("is empty"));
        assert!(reason(&["spec..name"]).contains("empty key"));
        assert!(reason(&["spec.containers[]"]).contains("ends in `[]`"));
        assert!(reason(&["spec.con[tainers"]).contains("no `[`"));
        assert!(reason(&["spec. name"]).contains("spaces"));
        assert!(reason(&["a[].b", "a.c"]).contains("as an object"));
        assert!(reason(&["a.c", "a[].b"]).contains("as an array"));
        assert_eq!(
            reason(&["ok", "[]x"]),
            "field path \"[]x\": a key may hold no `[`, `]` or spaces; `[]` goes right after a key"
        );
    }
}
