//! The kinds grammar operators write in `PERISCOPE_WATCH_STREAMS`, the TOML config,
//! helm's `watchStreams.kinds` and `periscope kinds resolve`: one parser for all.
//!
//! | expression | enables |
//! |---|---|
//! | unset, empty, `all` | every registered kind |
//! | `off`, `none` | nothing |
//! | `pods, workloads, NODES` | the listed kinds and the kinds of the listed group aliases |
//!
//! Entries are separated by commas; whitespace around them and letter case are
//! ignored, duplicates are harmless, and `all` may appear with other entries (it wins).
//! Unlike Periscope, which silently drops what it does not know, every mistake is an
//! error that names the entry: an unknown kind (with the closest valid one), `off`/`none`
//! combined with anything, an empty entry (`pods,,events` or a trailing comma), and
//! characters other than letters, digits and dashes (`pods;events`, `pods events`).

use std::collections::BTreeSet;

use super::Catalog;

/// Words with a meaning of their own; no kind or group may use them.
pub const RESERVED: &[&str] = &["all", "off", "none"];

/// A mistake in a kinds expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// An entry that is neither a kind nor a group alias.
    #[error("unknown kind {entry:?}{hint}; valid: {valid}")]
    Unknown {
        /// The entry as written (trimmed).
        entry: String,
        /// `; did you mean "pods"?` or empty.
        hint: String,
        /// `all, off, none`, the group aliases, then the kinds.
        valid: String,
    },
    /// `off` or `none` together with other entries.
    #[error(
        "{word:?} cannot be combined with other entries; use {word:?} alone to disable every stream, or list only the kinds to enable"
    )]
    OffWithOthers {
        /// `off` or `none`.
        word: String,
    },
    /// Nothing between two commas, or a leading or trailing comma.
    #[error("empty entry at position {position} of {expression:?}; remove the extra comma")]
    EmptyEntry {
        /// 1-based position of the empty entry.
        position: usize,
        /// The whole expression.
        expression: String,
    },
    /// A character that cannot appear in a kind or group name.
    #[error("invalid character {character:?} in {entry:?}; separate kinds with commas, e.g. \"pods,events\"")]
    InvalidCharacter {
        /// The entry as written (trimmed).
        entry: String,
        /// The offending character.
        character: char,
    },
}

/// The kinds an expression enables, in registry order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enabled {
    all: Vec<String>,
    enabled: Vec<String>,
}

impl Enabled {
    /// Enabled kind tokens, in registry order.
    pub fn tokens(&self) -> &[String] {
        &self.enabled
    }

    /// Whether kind `token` is enabled.
    pub fn contains(&self, token: &str) -> bool {
        self.enabled.iter().any(|t| t == token)
    }

    /// `pods=true events=false …` over every registered kind: the start-up log line's body.
    pub fn summary(&self) -> String {
        self.all
            .iter()
            .map(|token| format!("{token}={}", self.contains(token)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Resolves `expression` against the kinds and groups of `catalog`.
pub fn resolve(catalog: &Catalog, expression: &str) -> Result<Enabled, ExprError> {
    let all = catalog.tokens.clone();
    let enable = |selected: &BTreeSet<String>| Enabled {
        enabled: all.iter().filter(|t| selected.contains(*t)).cloned().collect(),
        all: all.clone(),
    };
    let everything: BTreeSet<String> = all.iter().cloned().collect();
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Ok(enable(&everything));
    }
    let entries: Vec<String> = trimmed.split(',').map(|e| e.trim().to_ascii_lowercase()).collect();
    let mut selected = BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(ExprError::EmptyEntry {
                position: i + 1,
                expression: expression.to_string(),
            });
        }
        if let Some(character) = entry.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(ExprError::InvalidCharacter {
                entry: entry.clone(),
                character,
            });
        }
        match entry.as_str() {
            "off" | "none" if entries.len() > 1 => return Err(ExprError::OffWithOthers { word: entry.clone() }),
            "off" | "none" => return Ok(enable(&BTreeSet::new())),
            "all" => selected.extend(everything.iter().cloned()),
            _ => {
                if let Some(kinds) = catalog.groups.get(entry) {
                    selected.extend(kinds.iter().cloned());
                } else if everything.contains(entry) {
                    selected.insert(entry.clone());
                } else {
                    return Err(unknown(catalog, entry));
                }
            }
        }
    }
    Ok(enable(&selected))
}

fn unknown(catalog: &Catalog, entry: &str) -> ExprError {
    let valid: Vec<&str> = RESERVED
        .iter()
        .copied()
        .chain(catalog.groups.keys().map(String::as_str))
        .chain(catalog.tokens.iter().map(String::as_str))
        .collect();
    let closest = valid
        .iter()
        .map(|candidate| (strsim::jaro_winkler(entry, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    ExprError::Unknown {
        entry: entry.to_string(),
        hint: closest
            .map(|(_, c)| format!("; did you mean {c:?}?"))
            .unwrap_or_default(),
        valid: valid.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 22 bundled kinds and 5 groups of spec section 5.
    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        for (group, kinds) in [
            ("core", "pods events"),
            (
                "workloads",
                "deployments statefulsets daemonsets replicasets jobs cronjobs horizontalpodautoscalers poddisruptionbudgets",
            ),
            (
                "networking",
                "services ingresses networkpolicies endpointslices ingressclasses",
            ),
            ("storage", "pvs pvcs storageclasses"),
            ("cluster", "nodes namespaces priorityclasses runtimeclasses"),
        ] {
            for kind in kinds.split(' ') {
                catalog.push(kind, group);
            }
        }
        catalog
    }

    fn enabled(expression: &str) -> Vec<String> {
        resolve(&catalog(), expression).unwrap().tokens().to_vec()
    }

    fn error(expression: &str) -> String {
        resolve(&catalog(), expression).unwrap_err().to_string()
    }

    const VALID: &str = "all, off, none, cluster, core, networking, storage, workloads, pods, events, deployments, \
        statefulsets, daemonsets, replicasets, jobs, cronjobs, horizontalpodautoscalers, poddisruptionbudgets, \
        services, ingresses, networkpolicies, endpointslices, ingressclasses, pvs, pvcs, storageclasses, nodes, \
        namespaces, priorityclasses, runtimeclasses";

    #[test]
    fn empty_blank_and_all_enable_every_kind() {
        for expression in ["", "   ", "all", " ALL ", "all,pods"] {
            assert_eq!(enabled(expression).len(), 22, "{expression:?}");
        }
        assert_eq!(enabled("all")[0], "pods");
        assert_eq!(enabled("all")[21], "runtimeclasses");
    }

    #[test]
    fn off_and_none_enable_nothing() {
        for expression in ["off", "none", " Off ", "NONE"] {
            assert!(enabled(expression).is_empty(), "{expression:?}");
        }
    }

    #[test]
    fn kinds_and_groups_mix_in_registry_order() {
        assert_eq!(enabled("nodes, core"), ["pods", "events", "nodes"]);
        assert_eq!(enabled("storage"), ["pvs", "pvcs", "storageclasses"]);
        assert_eq!(enabled("Pods,EVENTS"), ["pods", "events"]);
        assert_eq!(enabled("pods,pods,core"), ["pods", "events"]);
        assert_eq!(enabled("workloads").len(), 8);
        assert_eq!(enabled("networking,cluster").len(), 9);
    }

    #[test]
    fn the_summary_lists_every_kind_with_its_state() {
        let summary = resolve(&catalog(), "core").unwrap().summary();
        assert!(
            summary.starts_with("pods=true events=true deployments=false"),
            "{summary}"
        );
        assert!(summary.ends_with("runtimeclasses=false"), "{summary}");
    }

    #[test]
    fn a_misspelt_kind_names_it_and_suggests_the_closest() {
        assert_eq!(
            error("podz"),
            format!("unknown kind \"podz\"; did you mean \"pods\"?; valid: {VALID}")
        );
        assert_eq!(
            error("pods,deployment"),
            format!("unknown kind \"deployment\"; did you mean \"deployments\"?; valid: {VALID}")
        );
        assert_eq!(
            error("workload"),
            format!("unknown kind \"workload\"; did you mean \"workloads\"?; valid: {VALID}")
        );
        assert_eq!(
            error("Ingress"),
            format!("unknown kind \"ingress\"; did you mean \"ingresses\"?; valid: {VALID}")
        );
    }

    #[test]
    fn an_unknown_kind_without_a_close_match_lists_the_valid_ones() {
        assert_eq!(
            error("configmaps"),
            format!("unknown kind \"configmaps\"; valid: {VALID}")
        );
        assert_eq!(error("hpa"), format!("unknown kind \"hpa\"; valid: {VALID}"));
    }

    #[test]
    fn off_with_other_entries_is_an_error() {
        let message = "cannot be combined with other entries; use {w} alone to disable every stream, or list only the kinds to enable";
        assert_eq!(
            error("off,pods"),
            format!("\"off\" {}", message.replace("{w}", "\"off\""))
        );
        assert_eq!(
            error("pods, none"),
            format!("\"none\" {}", message.replace("{w}", "\"none\""))
        );
    }

    #[test]
    fn empty_entries_are_errors() {
        assert_eq!(
            error("pods,,events"),
            "empty entry at position 2 of \"pods,,events\"; remove the extra comma"
        );
        assert_eq!(
            error("pods,"),
            "empty entry at position 2 of \"pods,\"; remove the extra comma"
        );
        assert_eq!(
            error(",pods"),
            "empty entry at position 1 of \",pods\"; remove the extra comma"
        );
        assert_eq!(
            error(" , "),
            "empty entry at position 1 of \" , \"; remove the extra comma"
        );
    }

    #[test]
    fn stray_characters_are_errors() {
        assert_eq!(
            error("pods;events"),
            "invalid character ';' in \"pods;events\"; separate kinds with commas, e.g. \"pods,events\""
        );
        assert_eq!(
            error("pods events"),
            "invalid character ' ' in \"pods events\"; separate kinds with commas, e.g. \"pods,events\""
        );
        assert_eq!(
            error(r#""pods""#),
            r#"invalid character '"' in "\"pods\""; separate kinds with commas, e.g. "pods,events""#
        );
        assert_eq!(
            error("pods/v1"),
            "invalid character '/' in \"pods/v1\"; separate kinds with commas, e.g. \"pods,events\""
        );
    }
}
