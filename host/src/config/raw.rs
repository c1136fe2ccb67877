//! Stage one: the TOML file as the operator wrote it.
//!
//! Every setting is kept as a [`toml::Value`] so that a value of the wrong type is a
//! problem reported by stage two (with the key, the value and a fix), not a serde
//! error that stops at the first mistake. Before deserializing, [`parse`] checks the
//! file's shape against the `FIELDS` lists and removes what does not belong, so that
//! *every* unknown key is reported, each with the closest known one, and the rest of
//! the file is still validated. `deny_unknown_fields` stays on as a backstop: a field
//! missing from a `FIELDS` list fails the tests instead of being silently ignored.

use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::{Origin, Problem};

/// The whole file, one struct per section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub server: Option<RawServer>,
    pub clusters: Option<Vec<RawCluster>>,
    pub watch: Option<RawWatch>,
    pub plugins: Option<RawPlugins>,
    pub log: Option<RawLog>,
    pub auth: Option<RawAuth>,
    pub graphql: Option<RawGraphql>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<Value>,
    pub shutdown_grace: Option<Value>,
    pub trusted_proxies: Option<Value>,
}

impl RawServer {
    const FIELDS: &[&str] = &["listen", "shutdown_grace", "trusted_proxies"];
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

/// `[watch]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub streams: Option<Value>,
    pub per_user_limit: Option<Value>,
    pub linger: Option<Value>,
    pub heartbeat: Option<Value>,
    pub queue: Option<Value>,
    pub ring: Option<Value>,
    pub max_stream_duration: Option<Value>,
    pub upstreams_per_user: Option<Value>,
    pub upstreams_per_cluster: Option<Value>,
    pub outage_grace: Option<Value>,
    pub request_timeout: Option<Value>,
    pub silence_timeout: Option<Value>,
}

impl RawWatch {
    const FIELDS: &[&str] = &[
        "streams",
        "per_user_limit",
        "linger",
        "heartbeat",
        "queue",
        "ring",
        "max_stream_duration",
        "upstreams_per_user",
        "upstreams_per_cluster",
        "outage_grace",
        "request_timeout",
        "silence_timeout",
    ];
}

/// `[plugins]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugins {
    pub dir: Option<Value>,
    pub cache_dir: Option<Value>,
    pub call_deadline: Option<Value>,
    pub memory_cap_mib: Option<Value>,
}

impl RawPlugins {
    const FIELDS: &[&str] = &["dir", "cache_dir", "call_deadline", "memory_cap_mib"];
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub filter: Option<Value>,
    pub format: Option<Value>,
}

impl RawLog {
    const FIELDS: &[&str] = &["filter", "format"];
}

/// `[graphql]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGraphql {
    pub init_timeout: Option<Value>,
    pub max_operation_duration: Option<Value>,
}

impl RawGraphql {
    const FIELDS: &[&str] = &["init_timeout", "max_operation_duration"];
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub mode: Option<Value>,
    pub issuer: Option<Value>,
    pub audience: Option<Value>,
    pub algorithms: Option<Value>,
    pub secret_file: Option<Value>,
    pub public_key_files: Option<Value>,
    pub jwks_file: Option<Value>,
    pub leeway: Option<Value>,
    pub cookie: Option<Value>,
    pub query_token: Option<Value>,
    pub groups_claim: Option<Value>,
    pub admin_group: Option<Value>,
    pub revocation_file: Option<Value>,
    pub username_claim: Option<Value>,
    pub rbac: Option<Value>,
    pub rbac_ttl: Option<Value>,
    pub protect_metrics: Option<Value>,
}

impl RawAuth {
    const FIELDS: &[&str] = &[
        "mode",
        "issuer",
        "audience",
        "algorithms",
        "secret_file",
        "public_key_files",
        "jwks_file",
        "leeway",
        "cookie",
        "query_token",
        "groups_claim",
        "admin_group",
        "revocation_file",
        "username_claim",
        "rbac",
        "rbac_ttl",
        "protect_metrics",
    ];
}

/// The plain tables: section name and its keys. `clusters` is an array of tables.
const TABLES: &[(&str, &[&str])] = &[
    ("server", RawServer::FIELDS),
    ("watch", RawWatch::FIELDS),
    ("plugins", RawPlugins::FIELDS),
    ("log", RawLog::FIELDS),
    ("auth", RawAuth::FIELDS),
    ("graphql", RawGraphql::FIELDS),
];

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
    match Value::Table(table).try_into() {
        Ok(raw) => raw,
        Err(error) => {
            // Unreachable while the FIELDS lists match the structs (a test checks that).
            problems.push(Problem::whole_file(origin.clone(), error.message().trim().to_string()));
            RawConfig::default()
        }
    }
}

/// Reports and removes unknown sections and keys, and sections of the wrong type.
fn check_shape(table: &mut Table, origin: &Origin, problems: &mut Vec<Problem>) {
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
        let Some((_, fields)) = TABLES.iter().find(|(name, _)| *name == section) else {
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
    if let Some((section, _)) = TABLES.iter().find(|(_, fields)| fields.contains(&name)) {
        return format!("unknown section; `{name}` belongs under [{section}]");
    }
    let sections = TABLES.iter().map(|(section, _)| *section).chain([CLUSTERS]);
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

    /// A table that sets every field of every section must deserialize: the FIELDS
    /// lists and the structs agree.
    #[test]
    fn fields_lists_match_the_structs() {
        let mut text = String::new();
        for (section, fields) in TABLES {
            text.push_str(&format!("[{section}]\n"));
            for field in *fields {
                text.push_str(&format!("{field} = 1\n"));
            }
        }
        text.push_str("[[clusters]]\n");
        for field in RawCluster::FIELDS {
            text.push_str(&format!("{field} = 1\n"));
        }
        let table: Table = text.parse().unwrap();
        let raw: RawConfig = Value::Table(table).try_into().unwrap();
        assert!(raw.server.unwrap().shutdown_grace.is_some());
        assert!(raw.watch.unwrap().max_stream_duration.is_some());
        assert!(raw.plugins.unwrap().memory_cap_mib.is_some());
        assert!(raw.log.unwrap().format.is_some());
        assert!(raw.auth.unwrap().revocation_file.is_some());
        assert!(raw.clusters.unwrap()[0].sim.is_some());
    }

    #[test]
    fn line_column_counts_from_one_in_characters() {
        assert_eq!(line_column("a = 1\nb = \"é\" x", 14), (2, 8));
        assert_eq!(line_column("abc", 0), (1, 1));
    }
}
