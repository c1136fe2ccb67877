//! Stage one: the TOML file as the operator wrote it.
//!
//! Every setting is kept as a [`toml::Value`] so that a value of the wrong type is a
//! problem reported by stage two (with the key, the value and a fix), not a serde
//! error that stops at the first mistake. [`parse`] checks the file's shape against
//! the declared settings ([`settings`](super::settings)) and removes what does not
//! belong, so that *every* unknown key is reported, each with the closest known one,
//! and the rest of the file is still validated. Clusters, a list of tables that has no
//! variables, are the one section with a struct: `deny_unknown_fields` stays on it as a
//! backstop, so a field missing from `RawCluster::FIELDS` fails the tests instead of
//! being silently ignored.

use std::path::Path;

use std::collections::HashMap;

use serde::Deserialize;
use toml::{Table, Value};

use super::{Origin, Problem, settings};

/// The whole file: each settings section as its table of known keys (checked against
/// [`settings`](super::settings)), and the clusters.
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    /// Section name → its keys, only the keys some setting declares.
    pub sections: HashMap<String, Table>,
    pub clusters: Option<Vec<RawCluster>>,
}

impl RawConfig {
    /// The file's value of the setting with dotted key `key`, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let (section, name) = key.split_once('.')?;
        self.sections.get(section)?.get(name)
    }
}

/// One `[[clusters]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub name: Option<Value>,
    pub kubeconfig: Option<Value>,
    pub context: Option<Value>,
    pub in_cluster: Option<Value>,
    pub server: Option<Value>,
    pub sim: Option<Value>,
}

impl RawCluster {
    const FIELDS: &[&str] = &["name", "kubeconfig", "context", "in_cluster", "server", "sim"];
}

/// The plain tables: section name and its keys, from the declared settings.
fn tables() -> Vec<(&'static str, Vec<&'static str>)> {
    settings::sections()
        .into_iter()
        .map(|section| (section, settings::in_section(section).map(|meta| meta.name()).collect()))
        .collect()
}

const CLUSTERS: &str = "clusters";

const SECTIONS_HINT: &str = "the sections are [server], [[clusters]], [watch], [plugins], [log], [auth] and [graphql]";

/// Reads and parses `path`; problems are appended, and what could not be read is left
/// at its default so the rest can still be validated.
pub(super) fn read(path: &Path, problems: &mut Vec<Problem>) -> RawConfig {
    let origin = Origin::File(path.to_path_buf());
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin, problems),
        Err(error) => {
            problems.push(Problem::whole_file(
                origin,
                format!(
                    "cannot read the file ({error}); check the path given with --config or {}",
                    super::ENV_CONFIG
                ),
            ));
            RawConfig::default()
        }
    }
}

/// Parses the text of a config file that came from `origin`.
pub(super) fn parse(text: &str, origin: &Origin, problems: &mut Vec<Problem>) -> RawConfig {
    let mut table: Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let position = match error.span() {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    format!(" at line {line}, column {column}")
                }
                None => String::new(),
            };
            // toml's messages can span lines ("…\nexpected `]`"); keep ours on one.
            let detail = error.message().trim().replace('\n', "; ");
            problems.push(Problem::whole_file(
                origin.clone(),
                format!("not valid TOML{position}: {detail}"),
            ));
            return RawConfig::default();
        }
    };
    check_shape(&mut table, origin, problems);
    let clusters = match table.remove(CLUSTERS).map(Value::try_into).transpose() {
        Ok(clusters) => clusters,
        Err(error) => {
            // Unreachable while RawCluster::FIELDS matches the struct (a test checks that).
            problems.push(Problem::whole_file(origin.clone(), error.message().trim().to_string()));
            None
        }
    };
    let sections = table
        .into_iter()
        .filter_map(|(section, value)| match value {
            Value::Table(keys) => Some((section, keys)),
            _ => None,
        })
        .collect();
    RawConfig { sections, clusters }
}

/// Reports and removes unknown sections and keys, and sections of the wrong type.
fn check_shape(table: &mut Table, origin: &Origin, problems: &mut Vec<Problem>) {
    let tables = tables();
    let mut problem = |key: String, value: &Value, message: String| {
        problems.push(Problem {
            key,
            value: render(value),
            origin: origin.clone(),
            message,
        });
    };
    table.retain(|section, value| {
        if section == CLUSTERS {
            return check_clusters(value, &mut problem);
        }
        let Some((_, fields)) = tables.iter().find(|(name, _)| *name == section) else {
            let message = unknown_top_level(section);
            problem(section.to_string(), value, message);
            return false;
        };
        let Value::Table(keys) = value else {
            problem(
                section.to_string(),
                value,
                format!("must be a table; put its settings under a [{section}] header"),
            );
            return false;
        };
        keys.retain(|key, value| {
            let known = fields.contains(&key);
            if !known {
                problem(
                    format!("{section}.{key}"),
                    value,
                    unknown_key(&format!("[{section}]"), key, fields),
                );
            }
            known
        });
        true
    });
}

/// Checks `clusters` is an array of tables with known keys; false drops it whole
/// (dropping single entries would renumber the others in later messages).
fn check_clusters(value: &mut Value, problem: &mut impl FnMut(String, &Value, String)) -> bool {
    const AS_TABLES: &str = "write one [[clusters]] section per cluster";
    let Value::Array(entries) = value else {
        problem(
            CLUSTERS.to_string(),
            value,
            format!("must be an array of tables; {AS_TABLES}"),
        );
        return false;
    };
    let mut keep = true;
    for (i, entry) in entries.iter_mut().enumerate() {
        let Value::Table(keys) = entry else {
            problem(
                format!("{CLUSTERS}[{i}]"),
                entry,
                format!("must be a table; {AS_TABLES}"),
            );
            keep = false;
            continue;
        };
        keys.retain(|key, value| {
            let known = RawCluster::FIELDS.contains(&key);
            if !known {
                let message = unknown_key("a cluster", key, RawCluster::FIELDS);
                problem(format!("{CLUSTERS}[{i}].{key}"), value, message);
            }
            known
        });
    }
    keep
}

/// The message for an unknown top-level key: often a setting written above its
/// section header, so point at the section that has it.
fn unknown_top_level(name: &str) -> String {
    if let Some(meta) = settings::SETTINGS.iter().find(|meta| meta.name() == name) {
        return format!("unknown section; `{name}` belongs under [{}]", meta.section());
    }
    let sections = settings::sections().into_iter().chain([CLUSTERS]);
    match closest(name, sections) {
        Some(section) => format!("unknown section; did you mean {section}? ({SECTIONS_HINT})"),
        None => format!("unknown section; {SECTIONS_HINT}"),
    }
}

/// The message for an unknown key in `place` (`[watch]`, `a cluster`).
fn unknown_key(place: &str, key: &str, fields: &[&str]) -> String {
    let accepted = fields.join(", ");
    match closest(key, fields.iter().copied()) {
        Some(known) => format!("unknown key; did you mean {known}? ({place} accepts {accepted})"),
        None => format!("unknown key; {place} accepts {accepted}"),
    }
}

/// The candidate most like `name`, if close enough to be a typo.
pub(super) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (strsim::normalized_damerau_levenshtein(name, candidate), candidate))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// A value as the operator would recognise it: strings without quotes (the problem
/// list quotes them), other scalars as written, lists of scalars comma-separated, and
/// tables and nested arrays abridged.
pub(super) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        // A list of plain values reads as its variable would be written: "RS256, HS256".
        Value::Array(items)
            if items
                .iter()
                .all(|item| !matches!(item, Value::Array(_) | Value::Table(_))) =>
        {
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        }
        Value::Array(_) => "[...]".to_string(),
        Value::Table(_) => "{...}".to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster that sets every field must deserialize: `RawCluster::FIELDS` and the
    /// struct agree.
    #[test]
    fn cluster_fields_match_the_struct() {
        let mut text = String::from("[[clusters]]\n");
        for field in RawCluster::FIELDS {
            text.push_str(&format!("{field} = 1\n"));
        }
        let mut problems = Vec::new();
        let raw = parse(&text, &Origin::Default, &mut problems);
        assert_eq!(problems, vec![]);
        assert!(raw.clusters.unwrap()[0].sim.is_some());
    }

    /// Every declared setting is a key its section accepts.
    #[test]
    fn every_setting_is_an_accepted_key() {
        let mut text = String::new();
        for section in settings::sections() {
            text.push_str(&format!("[{section}]\n"));
            for meta in settings::in_section(section) {
                text.push_str(&format!("{} = 1\n", meta.name()));
            }
        }
        let mut problems = Vec::new();
        let raw = parse(&text, &Origin::Default, &mut problems);
        assert_eq!(problems, vec![]);
        for meta in settings::SETTINGS {
            assert!(raw.get(meta.key).is_some(), "{}", meta.key);
        }
    }

    #[test]
    fn line_column_counts_from_one_in_characters() {
        assert_eq!(line_column("a = 1\nb = \"é\" x", 14), (2, 8));
        assert_eq!(line_column("abc", 0), (1, 1));
    }
}
