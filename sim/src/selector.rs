//! Label and field selectors, parsed from query strings and matched against objects.
//!
//! Label selectors follow the Kubernetes grammar: comma-separated requirements, each
//! `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)` or
//! `key notin (a,b)`. Field selectors accept `path=value`, `path==value` and
//! `path!=value`, where the path is a dotted field path (`metadata.name`,
//! `spec.nodeName`, `status.phase`); a missing field compares as `""`, as the real
//! apiserver's field sets do.

use serde_json::Value;

/// A selector string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement {requirement:?}: {problem}")]
pub struct ParseError {
    /// The requirement that failed.
    pub requirement: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let mut requirements = Vec::new();
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_label_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        let labels = object.get("metadata").and_then(|m| m.get("labels"));
        self.requirements.iter().all(|(key, op)| {
            let value = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
            match op {
                LabelOp::Exists => value.is_some(),
                LabelOp::NotExists => value.is_none(),
                LabelOp::Equals(v) => value == Some(v.as_str()),
                LabelOp::NotEquals(v) => value != Some(v.as_str()),
                LabelOp::In(set) => value.is_some_and(|x| set.iter().any(|v| v == x)),
                LabelOp::NotIn(set) => !value.is_some_and(|x| set.iter().any(|v| v == x)),
            }
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn parse_label_requirement(part: &str) -> Result<(String, LabelOp), ParseError> {
    let err = |problem| ParseError {
        requirement: part.to_string(),
        problem,
    };
    if let Some(key) = part.strip_prefix('!') {
        return Ok((valid_key(key.trim()).map_err(err)?, LabelOp::NotExists));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok((
            valid_key(key.trim()).map_err(err)?,
            LabelOp::NotEquals(value.trim().to_string()),
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok((
            valid_key(key.trim()).map_err(err)?,
            LabelOp::Equals(value.trim().to_string()),
        ));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    if rest.is_empty() {
        return Ok((valid_key(key).map_err(err)?, LabelOp::Exists));
    }
    let (negated, set) = if let Some(set) = rest.strip_prefix("notin") {
        (true, set)
    } else if let Some(set) = rest.strip_prefix("in") {
        (false, set)
    } else {
        return Err(err("expected one of =, ==, !=, in, notin"));
    };
    let set = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| err("expected a parenthesised set of values"))?;
    let values: Vec<String> = set
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let key = valid_key(key).map_err(err)?;
    Ok(if negated {
        (key, LabelOp::NotIn(values))
    } else {
        (key, LabelOp::In(values))
    })
}

fn valid_key(key: &str) -> Result<String, &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return Err("invalid character in key");
    }
    Ok(key.to_string())
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(Vec<String>, bool, String)>,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let mut requirements = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, true, v)
            } else {
                return Err(ParseError {
                    requirement: part.to_string(),
                    problem: "expected =, == or !=",
                });
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
            requirements.push((path, equal, value.trim().to_string()));
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value required for `metadata.name`, if the selector pins one (kubectl
    /// watches a single object that way).
    pub fn pinned_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|(path, equal, _)| *equal && path.len() == 2 && path[0] == "metadata" && path[1] == "name")
            .map(|(_, _, value)| value.as_str())
    }

    /// Whether the object satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(path, equal, want)| {
            let mut cur = Some(object);
            for segment in path {
                cur = cur.and_then(|v| v.get(segment));
            }
            let actual = match cur {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == *want) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({ "metadata": { "name": "p", "namespace": "ns", "labels": labels },
                "spec": { "nodeName": "node-1" } })
    }

    #[test]
    fn equality_and_inequality() {
        let s = LabelSelector::parse("app=web,tier!=db").unwrap();
        assert!(s.matches(&pod(json!({"app": "web"}))));
        assert!(s.matches(&pod(json!({"app": "web", "tier": "fe"}))));
        assert!(!s.matches(&pod(json!({"app": "web", "tier": "db"}))));
        assert!(!s.matches(&pod(json!({"app": "api"}))));
        assert!(
            LabelSelector::parse("app==web")
                .unwrap()
                .matches(&pod(json!({"app": "web"})))
        );
    }

    #[test]
    fn set_based_requirements() {
        let s = LabelSelector::parse("env in (prod, staging),tier notin (db)").unwrap();
        assert!(s.matches(&pod(json!({"env": "prod"}))));
        assert!(s.matches(&pod(json!({"env": "staging", "tier": "web"}))));
        assert!(!s.matches(&pod(json!({"env": "dev"}))));
        assert!(!s.matches(&pod(json!({"env": "prod", "tier": "db"}))));
    }

    #[test]
    fn existence() {
        let s = LabelSelector::parse("owner,!canary").unwrap();
        assert!(s.matches(&pod(json!({"owner": "helm"}))));
        assert!(!s.matches(&pod(json!({"owner": "helm", "canary": "1"}))));
        assert!(!s.matches(&pod(json!({}))));
    }

    #[test]
    fn empty_selector_matches_objects_without_labels() {
        let s = LabelSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&json!({"metadata": {"name": "x"}})));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let p = pod(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=p,metadata.namespace=ns")
                .unwrap()
                .matches(&p)
        );
        assert!(FieldSelector::parse("spec.nodeName==node-1").unwrap().matches(&p));
        assert!(!FieldSelector::parse("spec.nodeName!=node-1").unwrap().matches(&p));
        assert!(FieldSelector::parse("status.phase=").unwrap().matches(&p));
        assert_eq!(
            FieldSelector::parse("metadata.name=p").unwrap().pinned_name(),
            Some("p")
        );
    }
}
