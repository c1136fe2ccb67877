//! The rules a kind plugin's golden cases are checked by, in one place.
//!
//! A golden case is `golden/<case>.k8s.json` (a raw object as the apiserver returns it,
//! or a `…List` with `items`) beside `golden/<case>.dto.json` (the expected DTO, or the
//! snapshot array). Three runners used to exist (the SDK's native unit test, the host's
//! integration test, the CLI); now all of them call [`run`], which
//!
//! - **strips each object exactly as the host does** before it reaches the plugin
//!   ([`strip_raw`]: `metadata.managedFields` and everything the plugin's `fields`
//!   do not name go), so a stale `fields` list fails here instead of silently
//!   dropping data in production;
//! - maps at [`GOLDEN_NOW`], orders and caps `…List` cases with the hub's own
//!   [`snapshot`] code;
//! - maps every case a second time without the `fields` filter and reports a
//!   difference ([`Problem::FieldsDropData`]), which names the key to add even when the
//!   expectation was blessed from the wrong output.
//!
//! What it is not: a mapper. Callers adapt theirs with [`CaseMapper`]: the SDK runs the
//! plugin's Rust code natively, the host and `periscope plugins check` run the
//! compiled component.

mod fields;
mod raw;
pub mod snapshot;

pub use fields::{Fields, FieldsError};
pub use raw::{Identity, Stripped, strip_raw};

use fields::Node;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// The current time every golden case is mapped at.
pub const GOLDEN_NOW: &str = "2026-05-01T12:00:00Z";

/// [`GOLDEN_NOW`] as a time.
pub fn golden_now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-05-01 12:00:00 UTC)
}

/// The environment variable that makes [`run`] write actual outputs as expectations.
pub const BLESS_VAR: &str = "PERISCOPE_BLESS";

/// True when `PERISCOPE_BLESS=1`.
pub fn bless_requested() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1")
}

/// How the host orders and trims a snapshot of a kind (events: newest first, 500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPolicy {
    /// Top-level DTO key holding an RFC 3339 timestamp to sort by.
    pub sort_field: String,
    /// Newest first when true; the zero time always sorts last.
    pub descending: bool,
    /// Keep at most this many items.
    pub cap: Option<u32>,
}

/// Top-level keys the host never drops, whatever a plugin's `fields` say.
pub const ALWAYS_KEPT: &[&str] = &["apiVersion", "kind", "metadata"];

/// What the host does to every object before it crosses into a plugin: removes
/// `metadata.managedFields` and keeps only what `fields` name ([`Fields`]: top-level
/// keys, or nested paths such as `spec.containers[].name`; [`ALWAYS_KEPT`] stay).
/// Anything but a JSON object is left alone. The host applies this rule to JSON text
/// with [`strip_raw`], which builds no tree; a test holds the two equal.
pub fn strip(object: &mut Value, fields: &Fields) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    map.retain(|key, value| match fields.top(key) {
        Some(node) => {
            prune(value, node);
            true
        }
        None => false,
    });
}

/// Reduces `value` to what `node` keeps; a value of another shape stays as it is.
fn prune(value: &mut Value, node: &Node) {
    match (node, value) {
        (Node::Keys(keys), Value::Object(map)) => map.retain(|key, value| match keys.get(key) {
            Some(node) => {
                prune(value, node);
                true
            }
            None => false,
        }),
        (Node::Items(inner), Value::Array(items)) => items.iter_mut().for_each(|item| prune(item, inner)),
        _ => {}
    }
}

/// A mapping under test: a plugin's native Rust code, or a loaded component.
pub trait CaseMapper {
    /// The fields the mapping reads (`kind-info.fields`: keys or paths); empty means all.
    fn fields(&self) -> Vec<String>;
    /// The snapshot policy `…List` cases are ordered and capped by.
    fn snapshot(&self) -> Option<SnapshotPolicy>;
    /// Maps objects (JSON), one result per object in order; an error is the plugin's
    /// own message (`malformed object: …`) or the host's reason for a fault.
    fn map(&self, objects: &[String]) -> Vec<Result<String, String>>;
}

/// One golden case: its input and the expectation beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `<case>.k8s.json`.
    pub input: PathBuf,
    /// `<case>.dto.json`.
    pub expected: PathBuf,
}

/// The cases in `dir`, sorted by file name.
pub fn cases(dir: &Path) -> std::io::Result<Vec<Case>> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    inputs.retain(|p| p.to_string_lossy().ends_with(".k8s.json"));
    inputs.sort();
    Ok(inputs
        .into_iter()
        .map(|input| Case {
            expected: PathBuf::from(input.to_string_lossy().replace(".k8s.json", ".dto.json")),
            input,
        })
        .collect())
}

/// What is wrong with a plugin's golden cases; each displays as one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The plugin's `fields` hold a path that cannot be applied.
    InvalidFields(FieldsError),
    /// The directory holds no case at all.
    NoCases {
        /// The golden directory.
        dir: PathBuf,
    },
    /// A file could not be read or is not JSON.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output differs from the expectation.
    Mismatch {
        /// The `.dto.json` file.
        expected_path: PathBuf,
        /// What it holds (`null` when it is missing).
        expected: Value,
        /// What the plugin produced.
        actual: Value,
    },
    /// Mapping the whole object gives something else than mapping what the host
    /// passes: the plugin reads a key or path its `fields` leave out.
    FieldsDropData {
        /// The `.k8s.json` file.
        case: PathBuf,
        /// The plugin's `fields`.
        fields: Vec<String>,
        /// The output with the host's stripping.
        stripped: Value,
        /// The output from the whole object.
        whole: Value,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoCases { dir } => write!(
                f,
                "{}: no golden cases (add <case>.k8s.json beside <case>.dto.json)",
                dir.display()
            ),
            Problem::InvalidFields(error) => write!(f, "kind-info fields: {error}"),
            Problem::Unreadable { path, reason } => write!(f, "{}: {reason}", path.display()),
            Problem::Mismatch {
                expected_path,
                expected,
                actual,
            } if expected.is_null() => write!(
                f,
                "{}: missing or not JSON; the plugin produced {} (run with {BLESS_VAR}=1 to write it)",
                expected_path.display(),
                short(actual)
            ),
            Problem::Mismatch {
                expected_path,
                expected,
                actual,
            } => {
                let (at, want, got) = first_difference(expected, actual);
                write!(
                    f,
                    "{}: at {at} expected {} but the plugin produced {}",
                    expected_path.display(),
                    want.map_or_else(|| "nothing".to_string(), short),
                    got.map_or_else(|| "nothing".to_string(), short)
                )
            }
            Problem::FieldsDropData {
                case,
                fields,
                stripped,
                whole,
            } => {
                let (at, with_all, with_fields) = first_difference(whole, stripped);
                write!(
                    f,
                    "{}: kind-info fields [{}] drop data the mapping reads: at {at} the whole object gives {} \
                     but what the host passes gives {}; add the missing key or path to fields",
                    case.display(),
                    fields.join(", "),
                    with_all.map_or_else(|| "nothing".to_string(), short),
                    with_fields.map_or_else(|| "nothing".to_string(), short)
                )
            }
        }
    }
}

/// The outcome of [`run`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Cases mapped.
    pub cases: usize,
    /// Everything wrong, in case order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when every case matched.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem with the full expected and actual output of mismatches, for a
    /// failing test.
    pub fn details(&self) -> String {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&problem.to_string());
            out.push('\n');
            if let Problem::Mismatch { expected, actual, .. } = problem {
                out.push_str(&format!(
                    "--- expected\n{}\n+++ actual\n{}\n",
                    pretty(expected),
                    pretty(actual)
                ));
            }
        }
        out
    }
}

/// Maps every case in `dir` through `mapper` with the host's stripping and compares
/// with the expectations; with `bless`, writes the outputs as the new expectations
/// instead (the fields check still runs).
pub fn run(dir: &Path, mapper: &dyn CaseMapper, bless: bool) -> Report {
    let mut report = Report::default();
    let cases = match cases(dir) {
        Ok(cases) => cases,
        Err(e) => {
            report.problems.push(Problem::Unreadable {
                path: dir.to_path_buf(),
                reason: format!("cannot read the golden directory: {e}"),
            });
            return report;
        }
    };
    if cases.is_empty() {
        report.problems.push(Problem::NoCases { dir: dir.to_path_buf() });
        return report;
    }
    let fields = match Fields::parse(&mapper.fields()) {
        Ok(fields) => fields,
        Err(error) => {
            report.problems.push(Problem::InvalidFields(error));
            return report;
        }
    };
    for case in cases {
        let input = match read_json(&case.input) {
            Ok(input) => input,
            Err(problem) => {
                report.problems.push(problem);
                continue;
            }
        };
        report.cases += 1;
        let actual = map_case(mapper, &input, &fields);
        if !fields.is_empty() {
            let whole = map_case(mapper, &input, &Fields::default());
            if whole != actual {
                report.problems.push(Problem::FieldsDropData {
                    case: case.input.clone(),
                    fields: fields.declared().to_vec(),
                    stripped: actual.clone(),
                    whole,
                });
            }
        }
        if bless {
            let text = serde_json::to_string_pretty(&actual).unwrap_or_else(|_| actual.to_string()) + "\n";
            if let Err(e) = std::fs::write(&case.expected, text) {
                report.problems.push(Problem::Unreadable {
                    path: case.expected.clone(),
                    reason: format!("cannot write the expectation: {e}"),
                });
            }
            continue;
        }
        let expected = read_json(&case.expected).unwrap_or(Value::Null);
        if expected != actual {
            report.problems.push(Problem::Mismatch {
                expected_path: case.expected,
                expected,
                actual,
            });
        }
    }
    report
}

/// Runs [`run`] (blessing with `PERISCOPE_BLESS=1`) and panics with [`Report::details`]
/// unless every case passed; `rerun` is the command the message suggests.
pub fn check(dir: &Path, mapper: &dyn CaseMapper, rerun: &str) {
    let report = run(dir, mapper, bless_requested());
    assert!(
        report.passed(),
        "{}\nIf the new output is correct, run: {BLESS_VAR}=1 {rerun}",
        report.details()
    );
}

/// The DTO of a single-object case, or the snapshot array of a `…List`; a failed
/// object maps to `{"error": <message>}`.
pub fn map_case(mapper: &dyn CaseMapper, input: &Value, fields: &Fields) -> Value {
    let is_list = input
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    let objects: Vec<Value> = if is_list {
        input
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    } else {
        vec![input.clone()]
    };
    // The text path the hub runs on every list and watch event; a `Value` always
    // prints as JSON, so only a non-object could be left as it is.
    let objects: Vec<String> = objects
        .iter()
        .map(|object| {
            let text = object.to_string();
            strip_raw(&text, fields).map_or(text, |stripped| stripped.json)
        })
        .collect();
    let dtos: Vec<String> = mapper
        .map(&objects)
        .into_iter()
        .map(|result| result.unwrap_or_else(|error| serde_json::json!({ "error": error }).to_string()))
        .collect();
    let parse = |dto: &str| {
        serde_json::from_str(dto).unwrap_or_else(|e| serde_json::json!({ "error": format!("output is not JSON: {e}") }))
    };
    if !is_list {
        return dtos.first().map_or(Value::Null, |dto| parse(dto));
    }
    let ordered = snapshot::apply(mapper.snapshot().as_ref(), dtos, String::as_str);
    Value::Array(ordered.iter().map(|dto| parse(dto)).collect())
}

fn read_json(path: &Path) -> Result<Value, Problem> {
    let unreadable = |reason: String| Problem::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| unreadable(format!("not JSON: {e}")))
}

/// The JSON pointer of the first place `a` and `b` differ, and the values there.
fn first_difference<'a>(a: &'a Value, b: &'a Value) -> (String, Option<&'a Value>, Option<&'a Value>) {
    fn walk<'a>(a: &'a Value, b: &'a Value, at: &mut String) -> Option<(Option<&'a Value>, Option<&'a Value>)> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    match (x.get(key), y.get(key)) {
                        (Some(p), Some(q)) if p == q => {}
                        (Some(p), Some(q)) => {
                            at.push('/');
                            at.push_str(key);
                            return walk(p, q, at);
                        }
                        (p, q) => {
                            at.push('/');
                            at.push_str(key);
                            return Some((p, q));
                        }
                    }
                }
                None
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                let (i, (p, q)) = x.iter().zip(y).enumerate().find(|(_, (p, q))| p != q)?;
                at.push_str(&format!("/{i}"));
                walk(p, q, at)
            }
            _ if a == b => None,
            _ => Some((Some(a), Some(b))),
        }
    }
    let mut at = String::new();
    let (x, y) = walk(a, b, &mut at).unwrap_or((Some(a), Some(b)));
    if at.is_empty() {
        at.push('/');
    }
    (at, x, y)
}

/// A value on one line, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        text
    } else {
        text.chars().take(77).collect::<String>() + "..."
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn strip_drops_managed_fields_and_unlisted_keys_but_keeps_identity() {
        let mut object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "managedFields": [{}]},
            "spec": {"x": 1}, "status": {"y": 2}
        });
        strip(&mut object, &Fields::parse(&["spec"]).unwrap());
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": 1}})
        );
    }

    #[test]
    fn paths_prune_nested_objects_and_array_elements_and_leave_other_shapes() {
        let mut object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "labels": {"x": "1"}, "managedFields": [{}]},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}, "odd"], "volumes": []},
            "status": {"phase": "Running", "conditions": null}
        });
        let fields = Fields::parse(&[
            "metadata.name",
            "spec.nodeName",
            "spec.containers[].name",
            "status.conditions[].type",
        ])
        .unwrap();
        strip(&mut object, &fields);
        assert_eq!(
            object,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a"},
                "spec": {"nodeName": "n", "containers": [{"name": "c"}, "odd"]},
                "status": {"conditions": null}
            })
        );
    }

    #[test]
    fn empty_fields_keep_every_key() {
        let mut object = json!({"metadata": {"managedFields": []}, "spec": {}, "data": {}});
        strip(&mut object, &Fields::default());
        assert_eq!(object, json!({"metadata": {}, "spec": {}, "data": {}}));
    }

    #[test]
    fn first_difference_names_the_json_pointer() {
        let a = json!({"a": {"b": [1, 2]}, "c": 1});
        let b = json!({"a": {"b": [1, 3]}, "c": 1});
        let (at, x, y) = first_difference(&a, &b);
        assert_eq!(at, "/a/b/1");
        assert_eq!((x, y), (Some(&json!(2)), Some(&json!(3))));
    }

    /// Reads `spec.size` but declares only `status`.
    struct Stale;

    impl CaseMapper for Stale {
        fn fields(&self) -> Vec<String> {
            vec!["status".into()]
        }
        fn snapshot(&self) -> Option<SnapshotPolicy> {
            None
        }
        fn map(&self, objects: &[String]) -> Vec<Result<String, String>> {
            objects
                .iter()
                .map(|o| {
                    let v: Value = serde_json::from_str(o).unwrap();
                    Ok(json!({ "size": v["spec"]["size"] }).to_string())
                })
                .collect()
        }
    }

    #[test]
    fn a_stale_fields_list_fails_even_when_blessed_from_the_wrong_output() {
        let dir = std::env::temp_dir().join(format!("periscope-golden-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.k8s.json"), r#"{"kind":"Widget","spec":{"size":3}}"#).unwrap();
        std::fs::write(dir.join("a.dto.json"), r#"{"size":null}"#).unwrap();
        let report = run(&dir, &Stale, false);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(report.cases, 1);
        assert_eq!(report.problems.len(), 1, "{}", report.details());
        let line = report.problems[0].to_string();
        assert!(line.contains("kind-info fields [status] drop data"), "{line}");
        assert!(line.contains("at /size the whole object gives 3"), "{line}");
    }
}
