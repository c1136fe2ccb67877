//! The `PERISCOPE_*` environment variables: the [`EnvSource`] they are read through,
//! and warnings for unknown names. Each variable is declared with its setting
//! ([`super::settings`]), which gives it an `ENV_*` constant and a place in [`ALL`].
//!
//! Variables are named `PERISCOPE_<SECTION>_<KEY>` after the TOML key they override
//! (`[watch] per_user_limit` → `PERISCOPE_WATCH_PER_USER_LIMIT`). List settings such as
//! `[auth] algorithms` take a comma-separated value. The set is fixed and
//! listed in [`ALL`], so an underscore inside a key name is never ambiguous and a typo
//! can be caught ([`unknown_env_warnings`]). Lists such as `[[clusters]]` have no
//! variable: they are TOML-only.

use std::collections::HashMap;

use super::settings::ALL;

/// `PERISCOPE_*` variables read by tests and scripts, not by the service. A developer's
/// shell often exports them, so they are not worth a warning at start-up.
const TOOLING: &[&str] = &[
    "PERISCOPE_BLESS",
    "PERISCOPE_HELM",
    "PERISCOPE_KUBECTL",
    "PERISCOPE_TEST_PATIENCE_MS",
    "PERISCOPE_TOOLS_DIR",
];

const PREFIX: &str = "PERISCOPE_";

/// Reads environment variables. Tests pass a `HashMap` instead of calling `set_var`,
/// which races in multi-threaded code (and `clippy.toml` bans it).
pub trait EnvSource {
    /// The variable's value, or `None` when it is not set. A variable set to the empty
    /// string is `Some("")`.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        // Lossy rather than `None`: a value that is not UTF-8 still gets validated and
        // reported instead of being silently ignored.
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Names of the process's `PERISCOPE_*` variables, for [`unknown_env_warnings`].
pub fn env_vars() -> impl Iterator<Item = String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with(PREFIX))
}

/// One warning per `PERISCOPE_*` name in `vars` that periscope does not read, with the
/// closest known name when there is a plausible one, sorted. Names without the prefix
/// are skipped, so the whole environment can be passed.
pub fn unknown_env_warnings(vars: impl Iterator<Item = String>) -> Vec<String> {
    let mut warnings: Vec<String> = vars
        .filter(|name| name.starts_with(PREFIX))
        .filter(|name| !ALL.contains(&name.as_str()) && !TOOLING.contains(&name.as_str()))
        .map(|name| match closest(&name) {
            Some(known) => format!("unknown variable {name}; did you mean {known}?"),
            None => {
                format!("unknown variable {name}; it is ignored (docs/operators/configuration.md lists every variable)")
            }
        })
        .collect();
    warnings.sort();
    warnings.dedup();
    warnings
}

/// The known variable most like `name`, if it is close enough to be a typo.
fn closest(name: &str) -> Option<&'static str> {
    // Compare without the shared prefix, which would make every pair look alike.
    let suffix = name.strip_prefix(PREFIX).unwrap_or(name);
    ALL.iter()
        .map(|known| {
            let known_suffix = known.strip_prefix(PREFIX).unwrap_or(known);
            (strsim::normalized_damerau_levenshtein(suffix, known_suffix), *known)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}
