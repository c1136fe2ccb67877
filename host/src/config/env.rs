//! The `PERISCOPE_*` environment variables: one constant per variable, the
//! [`EnvSource`] they are read through, and warnings for unknown names.
//!
//! Variables are named `PERISCOPE_<SECTION>_<KEY>` after the TOML key they override
//! (`[watch] per_user_limit` → `PERISCOPE_WATCH_PER_USER_LIMIT`). List settings such as
//! `[auth] algorithms` take a comma-separated value. The set is fixed and
//! listed in [`ALL`], so an underscore inside a key name is never ambiguous and a typo
//! can be caught ([`unknown_env_warnings`]). Lists such as `[[clusters]]` have no
//! variable: they are TOML-only.

use std::collections::HashMap;

/// Path of the TOML file; read by the caller (`main`), which passes it to [`super::load`].
pub const ENV_CONFIG: &str = "PERISCOPE_CONFIG";
/// `[server] listen`.
pub const ENV_LISTEN: &str = "PERISCOPE_LISTEN";
/// `[server] shutdown_grace`.
pub const ENV_SHUTDOWN_GRACE: &str = "PERISCOPE_SHUTDOWN_GRACE";
/// `[server] trusted_proxies`.
pub const ENV_TRUSTED_PROXIES: &str = "PERISCOPE_TRUSTED_PROXIES";
/// `[watch] streams`.
pub const ENV_WATCH_STREAMS: &str = "PERISCOPE_WATCH_STREAMS";
/// `[watch] per_user_limit`.
pub const ENV_WATCH_PER_USER_LIMIT: &str = "PERISCOPE_WATCH_PER_USER_LIMIT";
/// `[watch] linger`.
pub const ENV_WATCH_LINGER: &str = "PERISCOPE_WATCH_LINGER";
/// `[watch] heartbeat`.
pub const ENV_WATCH_HEARTBEAT: &str = "PERISCOPE_WATCH_HEARTBEAT";
/// `[watch] queue`.
pub const ENV_WATCH_QUEUE: &str = "PERISCOPE_WATCH_QUEUE";
/// `[watch] ring`.
pub const ENV_WATCH_RING: &str = "PERISCOPE_WATCH_RING";
/// `[watch] max_stream_duration`.
pub const ENV_WATCH_MAX_STREAM_DURATION: &str = "PERISCOPE_WATCH_MAX_STREAM_DURATION";
/// `[watch] upstreams_per_user`.
pub const ENV_WATCH_UPSTREAMS_PER_USER: &str = "PERISCOPE_WATCH_UPSTREAMS_PER_USER";
/// `[watch] upstreams_per_cluster`.
pub const ENV_WATCH_UPSTREAMS_PER_CLUSTER: &str = "PERISCOPE_WATCH_UPSTREAMS_PER_CLUSTER";
/// `[watch] outage_grace`.
pub const ENV_WATCH_OUTAGE_GRACE: &str = "PERISCOPE_WATCH_OUTAGE_GRACE";
/// `[watch] request_timeout`.
pub const ENV_WATCH_REQUEST_TIMEOUT: &str = "PERISCOPE_WATCH_REQUEST_TIMEOUT";
/// `[watch] silence_timeout`.
pub const ENV_WATCH_SILENCE_TIMEOUT: &str = "PERISCOPE_WATCH_SILENCE_TIMEOUT";
/// `[plugins] dir`.
pub const ENV_PLUGINS_DIR: &str = "PERISCOPE_PLUGINS_DIR";
/// `[plugins] cache_dir`.
pub const ENV_PLUGINS_CACHE_DIR: &str = "PERISCOPE_PLUGINS_CACHE_DIR";
/// `[plugins] call_deadline`.
pub const ENV_PLUGINS_CALL_DEADLINE: &str = "PERISCOPE_PLUGINS_CALL_DEADLINE";
/// `[plugins] memory_cap_mib`.
pub const ENV_PLUGINS_MEMORY_CAP_MIB: &str = "PERISCOPE_PLUGINS_MEMORY_CAP_MIB";
/// `[log] filter`.
pub const ENV_LOG: &str = "PERISCOPE_LOG";
/// `[log] format`.
pub const ENV_LOG_FORMAT: &str = "PERISCOPE_LOG_FORMAT";
/// `[auth] mode`.
pub const ENV_AUTH_MODE: &str = "PERISCOPE_AUTH_MODE";
/// `[auth] issuer`.
pub const ENV_AUTH_ISSUER: &str = "PERISCOPE_AUTH_ISSUER";
/// `[auth] audience`.
pub const ENV_AUTH_AUDIENCE: &str = "PERISCOPE_AUTH_AUDIENCE";
/// `[auth] algorithms`.
pub const ENV_AUTH_ALGORITHMS: &str = "PERISCOPE_AUTH_ALGORITHMS";
/// `[auth] secret_file`.
pub const ENV_AUTH_SECRET_FILE: &str = "PERISCOPE_AUTH_SECRET_FILE";
/// `[auth] public_key_files`.
pub const ENV_AUTH_PUBLIC_KEY_FILES: &str = "PERISCOPE_AUTH_PUBLIC_KEY_FILES";
/// `[auth] jwks_file`.
pub const ENV_AUTH_JWKS_FILE: &str = "PERISCOPE_AUTH_JWKS_FILE";
/// `[auth] leeway`.
pub const ENV_AUTH_LEEWAY: &str = "PERISCOPE_AUTH_LEEWAY";
/// `[auth] cookie`.
pub const ENV_AUTH_COOKIE: &str = "PERISCOPE_AUTH_COOKIE";
/// `[auth] query_token`.
pub const ENV_AUTH_QUERY_TOKEN: &str = "PERISCOPE_AUTH_QUERY_TOKEN";
/// `[auth] groups_claim`.
pub const ENV_AUTH_GROUPS_CLAIM: &str = "PERISCOPE_AUTH_GROUPS_CLAIM";
/// `[auth] admin_group`.
pub const ENV_AUTH_ADMIN_GROUP: &str = "PERISCOPE_AUTH_ADMIN_GROUP";
/// `[auth] revocation_file`.
pub const ENV_AUTH_REVOCATION_FILE: &str = "PERISCOPE_AUTH_REVOCATION_FILE";

/// `[auth] username_claim`.
pub const ENV_AUTH_USERNAME_CLAIM: &str = "PERISCOPE_AUTH_USERNAME_CLAIM";
/// `[auth] rbac`.
pub const ENV_AUTH_RBAC: &str = "PERISCOPE_AUTH_RBAC";
/// `[auth] rbac_ttl`.
pub const ENV_AUTH_RBAC_TTL: &str = "PERISCOPE_AUTH_RBAC_TTL";
/// `[auth] protect_metrics`.
pub const ENV_AUTH_PROTECT_METRICS: &str = "PERISCOPE_AUTH_PROTECT_METRICS";

/// `[graphql] init_timeout`.
pub const ENV_GRAPHQL_INIT_TIMEOUT: &str = "PERISCOPE_GRAPHQL_INIT_TIMEOUT";
/// `[graphql] max_operation_duration`.
pub const ENV_GRAPHQL_MAX_OPERATION_DURATION: &str = "PERISCOPE_GRAPHQL_MAX_OPERATION_DURATION";

/// Every variable periscope's configuration reads, [`ENV_CONFIG`] included.
pub const ALL: &[&str] = &[
    ENV_CONFIG,
    ENV_LISTEN,
    ENV_SHUTDOWN_GRACE,
    ENV_TRUSTED_PROXIES,
    ENV_WATCH_STREAMS,
    ENV_WATCH_PER_USER_LIMIT,
    ENV_WATCH_LINGER,
    ENV_WATCH_HEARTBEAT,
    ENV_WATCH_QUEUE,
    ENV_WATCH_RING,
    ENV_WATCH_MAX_STREAM_DURATION,
    ENV_WATCH_UPSTREAMS_PER_USER,
    ENV_WATCH_UPSTREAMS_PER_CLUSTER,
    ENV_WATCH_OUTAGE_GRACE,
    ENV_WATCH_REQUEST_TIMEOUT,
    ENV_WATCH_SILENCE_TIMEOUT,
    ENV_PLUGINS_DIR,
    ENV_PLUGINS_CACHE_DIR,
    ENV_PLUGINS_CALL_DEADLINE,
    ENV_PLUGINS_MEMORY_CAP_MIB,
    ENV_LOG,
    ENV_LOG_FORMAT,
    ENV_AUTH_MODE,
    ENV_AUTH_ISSUER,
    ENV_AUTH_AUDIENCE,
    ENV_AUTH_ALGORITHMS,
    ENV_AUTH_SECRET_FILE,
    ENV_AUTH_PUBLIC_KEY_FILES,
    ENV_AUTH_JWKS_FILE,
    ENV_AUTH_LEEWAY,
    ENV_AUTH_COOKIE,
    ENV_AUTH_QUERY_TOKEN,
    ENV_AUTH_GROUPS_CLAIM,
    ENV_AUTH_ADMIN_GROUP,
    ENV_AUTH_REVOCATION_FILE,
    ENV_AUTH_USERNAME_CLAIM,
    ENV_AUTH_RBAC,
    ENV_AUTH_RBAC_TTL,
    ENV_AUTH_PROTECT_METRICS,
    ENV_GRAPHQL_INIT_TIMEOUT,
    ENV_GRAPHQL_MAX_OPERATION_DURATION,
];

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
