//! Stage two: overlay the environment on the raw file and check every setting.
//!
//! Each setting comes from its variable if set, else from the file, else its default.
//! A parser turns the raw value into its type or returns the message of a [`Problem`];
//! the problem is recorded, the default stands in, and validation carries on, so that
//! one run reports everything.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use super::raw::{RawCluster, RawConfig, closest, render};
use super::settings::*;
use super::{
    AuthConfig, AuthMode, ClusterConfig, ClusterSource, Config, EnvSource, GraphqlConfig, InitialList, JWT_ALGORITHMS,
    LogConfig, LogFormat, Origin, PluginsConfig, Problem, RbacMode, SIM_SCENARIOS, Sourced, WatchConfig,
};

/// Leeway only absorbs clock skew; more would let expired tokens live on.
const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

const NOT_A_STRING: &str = "must be a string; put the value in quotes";

/// Builds the [`Config`], appending a [`Problem`] for every invalid setting. Invalid
/// settings are left at their defaults in the result, which the caller discards when
/// there are problems.
pub(super) fn validate(
    mut raw: RawConfig,
    file: Option<&Path>,
    env: &dyn EnvSource,
    problems: &mut Vec<Problem>,
) -> Config {
    let clusters = raw.clusters.take().unwrap_or_default();
    let mut layers = Layers {
        file_origin: file.map_or(Origin::Default, |path| Origin::File(path.to_path_buf())),
        raw: &raw,
        env,
        problems,
    };
    let listen = layers.value(&LISTEN);
    let shutdown_grace = layers.value(&SHUTDOWN_GRACE);
    let trusted_proxies = layers.value(&TRUSTED_PROXIES);
    let header_timeout = layers.value(&HEADER_TIMEOUT);
    let max_connections = layers.value(&MAX_CONNECTIONS);
    let clusters = layers.clusters(clusters);

    let watch = WatchConfig {
        streams: layers.setting(&WATCH_STREAMS),
        per_user_limit: layers.value(&WATCH_PER_USER_LIMIT),
        linger: layers.value(&WATCH_LINGER),
        heartbeat: layers.value(&WATCH_HEARTBEAT),
        write_timeout: layers.value(&WATCH_WRITE_TIMEOUT),
        queue: layers.value(&WATCH_QUEUE),
        ring: layers.value(&WATCH_RING),
        max_stream_duration: layers.value(&WATCH_MAX_STREAM_DURATION),
        upstreams_per_user: layers.value(&WATCH_UPSTREAMS_PER_USER),
        cold_polls_per_user: layers.value(&WATCH_COLD_POLLS_PER_USER),
        upstreams_per_cluster: layers.value(&WATCH_UPSTREAMS_PER_CLUSTER),
        outage_grace: layers.value(&WATCH_OUTAGE_GRACE),
        request_timeout: layers.value(&WATCH_REQUEST_TIMEOUT),
        silence_timeout: layers.value(&WATCH_SILENCE_TIMEOUT),
        list_page_size: layers.value(&WATCH_LIST_PAGE_SIZE),
        initial_list: layers.value(&WATCH_INITIAL_LIST),
    };

    let plugins = PluginsConfig {
        dir: layers.optional(&PLUGINS_DIR),
        cache_dir: layers.optional(&PLUGINS_CACHE_DIR),
        call_deadline: layers.value(&PLUGINS_CALL_DEADLINE),
        memory_cap: layers.value(&PLUGINS_MEMORY_CAP_MIB),
        quarantine_for: layers.value(&PLUGINS_QUARANTINE_FOR),
        strict: layers.value(&PLUGINS_STRICT),
        overrides: layers.value(&PLUGINS_OVERRIDE),
    };

    let log = LogConfig {
        filter: layers.value(&LOG_FILTER),
        format: layers.value(&LOG_FORMAT),
    };

    let auth = layers.auth();

    let graphql = GraphqlConfig {
        init_timeout: layers.value(&GRAPHQL_INIT_TIMEOUT),
        max_operation_duration: layers.value(&GRAPHQL_MAX_OPERATION_DURATION),
        ping_interval: layers.value(&GRAPHQL_PING_INTERVAL),
        restart_window: layers.value(&GRAPHQL_RESTART_WINDOW),
    };

    Config {
        listen,
        clusters,
        watch,
        plugins,
        log,
        auth,
        graphql,
        shutdown_grace,
        trusted_proxies,
        header_timeout,
        max_connections,
    }
}

/// The layers a setting can come from, and the problems found so far.
struct Layers<'a> {
    file_origin: Origin,
    raw: &'a RawConfig,
    env: &'a dyn EnvSource,
    problems: &'a mut Vec<Problem>,
}

/// A raw value and where it came from.
struct Input {
    value: Value,
    origin: Origin,
}

impl Layers<'_> {
    /// The variable if set (even to ""), else the file's value.
    fn input(&self, meta: &Meta) -> Option<Input> {
        match self.env.get(meta.env) {
            Some(text) => Some(Input {
                value: Value::String(text),
                origin: Origin::Env(meta.env),
            }),
            None => self.raw.get(meta.key).map(|value| Input {
                value: value.clone(),
                origin: self.file_origin.clone(),
            }),
        }
    }

    /// A setting with a default; an invalid value is recorded and the default stands in.
    fn setting<T>(&mut self, setting: &Setting<T>) -> Sourced<T> {
        let Some(input) = self.input(&setting.meta) else {
            return Sourced {
                value: setting.default(),
                origin: Origin::Default,
            };
        };
        let value = self
            .check(setting.meta.key, &input, setting.parse)
            .unwrap_or_else(|| setting.default());
        Sourced {
            value,
            origin: input.origin,
        }
    }

    /// The value of a setting with a default.
    fn value<T>(&mut self, setting: &Setting<T>) -> T {
        self.setting(setting).value
    }

    /// A setting that is absent unless set.
    fn optional<T>(&mut self, setting: &Setting<T>) -> Option<T> {
        let input = self.input(&setting.meta)?;
        self.check(setting.meta.key, &input, setting.parse)
    }

    fn check<T>(&mut self, key: &str, input: &Input, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<T> {
        match parse(&input.value) {
            Ok(value) => Some(value),
            Err(message) => {
                self.problem(key.to_string(), render(&input.value), input.origin.clone(), message);
                None
            }
        }
    }

    fn problem(&mut self, key: String, value: String, origin: Origin, message: String) {
        self.problems.push(Problem {
            key,
            value,
            origin,
            message,
        });
    }

    /// Where a setting's value comes from, or `None` when it is not set; valid or not.
    fn origin<T>(&self, setting: &Setting<T>) -> Option<Origin> {
        self.input(&setting.meta).map(|input| input.origin)
    }

    /// `[auth]`: every setting, then (in `jwt` mode) that the algorithms have keys.
    fn auth(&mut self) -> AuthConfig {
        // Presence, valid or not: an invalid key setting is reported once, as itself,
        // not again as "missing".
        let has_secret = self.origin(&AUTH_SECRET_FILE);
        let has_jwks = self.origin(&AUTH_JWKS_FILE).is_some();
        // The algorithms as written, for problems about them as a whole.
        let algorithms_written = self
            .input(&AUTH_ALGORITHMS.meta)
            .map_or_else(|| "RS256".to_string(), |input| render(&input.value));
        let problems_before = self.problems.len();
        let algorithms = self.setting(&AUTH_ALGORITHMS);
        let algorithms_valid = self.problems.len() == problems_before;
        let mode = self.setting(&AUTH_MODE);
        let problems_before = self.problems.len();
        let public_key_files = self.value(&AUTH_PUBLIC_KEY_FILES);
        // An empty list (`[]`, or the variable set to "") names no key.
        let has_public_keys = !public_key_files.is_empty() || self.problems.len() > problems_before;
        let config = AuthConfig {
            mode: mode.value,
            issuer: self.optional(&AUTH_ISSUER),
            audience: self.optional(&AUTH_AUDIENCE),
            algorithms: algorithms.value.clone(),
            secret_file: self.optional(&AUTH_SECRET_FILE),
            public_key_files: public_key_files.clone(),
            jwks_file: self.optional(&AUTH_JWKS_FILE),
            leeway: self.value(&AUTH_LEEWAY),
            cookie: self.value(&AUTH_COOKIE),
            query_token: self.value(&AUTH_QUERY_TOKEN),
            groups_claim: self.value(&AUTH_GROUPS_CLAIM),
            admin_group: self.optional(&AUTH_ADMIN_GROUP),
            username_prefix: self.value(&AUTH_USERNAME_PREFIX),
            groups_prefix: self.value(&AUTH_GROUPS_PREFIX),
            allow_system_groups: self.value(&AUTH_ALLOW_SYSTEM_GROUPS),
            revocation_file: self.optional(&AUTH_REVOCATION_FILE),
            username_claim: self.value(&AUTH_USERNAME_CLAIM),
            rbac: self.value(&AUTH_RBAC),
            rbac_ttl: self.value(&AUTH_RBAC_TTL),
            protect_metrics: self.value(&AUTH_PROTECT_METRICS),
        };
        // With mode = "none" the key settings are ignored, so they cannot be wrong.
        if config.mode != AuthMode::Jwt {
            return config;
        }
        if has_secret.is_none() && !has_public_keys && !has_jwks {
            self.problem(
                "auth.mode".to_string(),
                "jwt".to_string(),
                mode.origin,
                format!(
                    "needs a key to verify tokens; set secret_file ({ENV_AUTH_SECRET_FILE}) for HS256/HS384/HS512, \
                     or public_key_files ({ENV_AUTH_PUBLIC_KEY_FILES}) or jwks_file ({ENV_AUTH_JWKS_FILE}) for the \
                     RS*, PS*, ES* and EdDSA algorithms"
                ),
            );
            return config;
        }
        if !algorithms_valid {
            return config;
        }
        let listed = config.algorithms.join(", ");
        let (hmac, asymmetric): (Vec<&str>, Vec<&str>) = config
            .algorithms
            .iter()
            .map(String::as_str)
            .partition(|a| a.starts_with("HS"));
        if !hmac.is_empty() && has_secret.is_none() {
            self.problem(
                "auth.algorithms".to_string(),
                algorithms_written.clone(),
                algorithms.origin.clone(),
                format!(
                    "{} {} secret_file ({ENV_AUTH_SECRET_FILE}), the file holding the HMAC secret; set it, or \
                     remove the HS algorithms",
                    hmac.join(", "),
                    if hmac.len() == 1 { "needs" } else { "need" },
                ),
            );
        }
        if !asymmetric.is_empty() && !has_public_keys && !has_jwks {
            self.problem(
                "auth.algorithms".to_string(),
                algorithms_written.clone(),
                algorithms.origin.clone(),
                format!(
                    "{} {} public_key_files ({ENV_AUTH_PUBLIC_KEY_FILES}) or jwks_file ({ENV_AUTH_JWKS_FILE}) to \
                     verify signatures; set one, or use HS256 with secret_file",
                    asymmetric.join(", "),
                    if asymmetric.len() == 1 { "needs" } else { "need" },
                ),
            );
        }
        if let Some(origin) = has_secret
            && hmac.is_empty()
        {
            let value = config
                .secret_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            self.problem(
                "auth.secret_file".to_string(),
                value,
                origin,
                format!(
                    "is never used: algorithms ({listed}) has no HS algorithm; an HMAC secret next to public-key \
                     algorithms hints at HS/RS confusion. Add HS256 to algorithms if tokens are signed with this \
                     secret, or remove secret_file"
                ),
            );
        }
        config
    }

    /// Validates every cluster, then that names are unique.
    fn clusters(&mut self, raw: Vec<RawCluster>) -> Vec<ClusterConfig> {
        let mut clusters = Vec::new();
        let mut first_use: HashMap<String, usize> = HashMap::new();
        for (i, raw) in raw.into_iter().enumerate() {
            // Duplicates are checked even when the rest of a cluster is invalid, so that
            // fixing one problem does not reveal another.
            let (name, source) = self.cluster(i, raw);
            let Some(name) = name else {
                continue;
            };
            if let Some(first) = first_use.get(&name) {
                self.problem(
                    format!("clusters[{i}].name"),
                    name,
                    self.file_origin.clone(),
                    format!("is already the name of clusters[{first}]; cluster names must be unique"),
                );
                continue;
            }
            first_use.insert(name.clone(), i);
            if let Some(source) = source {
                clusters.push(ClusterConfig { name, source });
            }
        }
        clusters
    }

    /// A key of cluster `i`: `None` when absent, `Some(None)` when present but invalid
    /// (reported; it still counts as a chosen source).
    fn field<T>(
        &mut self,
        i: usize,
        key: &str,
        value: Option<Value>,
        parse: fn(&Value) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let input = Input {
            value: value?,
            origin: self.file_origin.clone(),
        };
        Some(self.check(&format!("clusters[{i}].{key}"), &input, parse))
    }

    /// One `[[clusters]]` entry: its name and its one source, each when valid.
    fn cluster(&mut self, i: usize, raw: RawCluster) -> (Option<String>, Option<ClusterSource>) {
        // The name as written identifies the cluster in its other problems, even when
        // the name itself is invalid.
        let name_text = raw.name.as_ref().map(render).unwrap_or_default();
        if raw.name.is_none() {
            self.problem(
                format!("clusters[{i}].name"),
                String::new(),
                self.file_origin.clone(),
                "is missing; give every cluster a unique name such as \"prod\" (it appears in URLs)".to_string(),
            );
        }
        let name = self.field(i, "name", raw.name, cluster_name);
        let kubeconfig = self.field(i, "kubeconfig", raw.kubeconfig, path);
        let context = self.field(i, "context", raw.context, non_empty);
        // `in_cluster = false` chooses nothing.
        let in_cluster = self
            .field(i, "in_cluster", raw.in_cluster, boolean)
            .filter(|choice| *choice != Some(false));
        let server = self.field(i, "server", raw.server, server_url);
        let sim = self.field(i, "sim", raw.sim, scenario);

        let kubeconfig_label = match (&kubeconfig, &context) {
            (Some(_), Some(_)) => Some("kubeconfig/context"),
            (Some(_), None) => Some("kubeconfig"),
            (None, Some(_)) => Some("context"),
            (None, None) => None,
        };
        let chosen: Vec<&str> = [
            kubeconfig_label,
            in_cluster.as_ref().map(|_| "in_cluster"),
            server.as_ref().map(|_| "server"),
            sim.as_ref().map(|_| "sim"),
        ]
        .into_iter()
        .flatten()
        .collect();
        const ONE_OF: &str = "kubeconfig and/or context, in_cluster = true, server = \"https://…\" or sim = \"demo\"";
        match chosen.len() {
            0 => {
                self.problem(
                    format!("clusters[{i}]"),
                    name_text,
                    self.file_origin.clone(),
                    format!("has no source; set one of {ONE_OF}"),
                );
                return (name.flatten(), None);
            }
            1 => {}
            _ => {
                self.problem(
                    format!("clusters[{i}]"),
                    name_text,
                    self.file_origin.clone(),
                    format!(
                        "sets more than one source ({}); keep exactly one of {ONE_OF}",
                        chosen.join(", ")
                    ),
                );
                return (name.flatten(), None);
            }
        }

        // Exactly one source was chosen; it is usable only if its values are valid.
        let source = if kubeconfig_label.is_some() {
            match (kubeconfig, context) {
                (Some(None), _) | (_, Some(None)) => None,
                (path, context) => Some(ClusterSource::Kubeconfig {
                    path: path.flatten(),
                    context: context.flatten(),
                }),
            }
        } else if in_cluster.is_some() {
            in_cluster.flatten().map(|_| ClusterSource::InCluster)
        } else if let Some(server) = server {
            server.map(ClusterSource::Server)
        } else {
            sim.flatten().map(ClusterSource::Sim)
        };
        (name.flatten(), source)
    }
}

// === parsers: raw value → typed value, or the message of a problem ===

pub(super) fn string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(NOT_A_STRING.to_string()),
    }
}

pub(super) fn non_empty(value: &Value) -> Result<String, String> {
    let s = string(value)?;
    if s.is_empty() {
        return Err("is empty; set a value, or leave the key out".to_string());
    }
    Ok(s)
}

pub(super) fn path(value: &Value) -> Result<PathBuf, String> {
    let s = string(value)?;
    if s.is_empty() {
        return Err("is empty; set a path, or leave the setting out to use the default".to_string());
    }
    Ok(PathBuf::from(s))
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Boolean(b) => Ok(*b),
        _ => Err("must be true or false (without quotes)".to_string()),
    }
}

pub(super) fn socket_addr(value: &Value) -> Result<SocketAddr, String> {
    string(value)?.parse().map_err(|_| {
        "must be an IP address and port such as \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::]:8080\" \
         (host names are not resolved)"
            .to_string()
    })
}

pub(super) fn duration(value: &Value) -> Result<Duration, String> {
    const EXAMPLES: &str = "such as \"30s\", \"1m30s\" or \"500ms\"";
    match value {
        Value::String(s) => humantime::parse_duration(s).map_err(|e| format!("must be a duration {EXAMPLES} ({e})")),
        Value::Integer(_) | Value::Float(_) => Err(format!("must be a duration with a unit, in quotes, {EXAMPLES}")),
        _ => Err(format!("must be a duration {EXAMPLES}")),
    }
}

pub(super) fn nonzero_duration(value: &Value, why: &str) -> Result<Duration, String> {
    let duration = duration(value)?;
    if duration.is_zero() {
        return Err(format!("must be longer than 0s; {why}"));
    }
    Ok(duration)
}

/// A whole number in `min..=max`, written as a TOML integer or as a string of digits
/// (what an environment variable holds). Anything else gets the message `rule`.
pub(super) fn whole(value: &Value, min: u64, max: u64, rule: &str) -> Result<u64, String> {
    let n = match value {
        Value::Integer(i) => Some(i128::from(*i)),
        Value::String(s) => s.parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > i128::from(max) => Err(format!("{rule}; at most {max}")),
        Some(n) if n >= i128::from(min) => u64::try_from(n).map_err(|_| rule.to_string()),
        _ => Err(rule.to_string()),
    }
}

/// A count of at least one.
pub(super) fn count(value: &Value, what: &str) -> Result<usize, String> {
    let rule = format!("must be a whole number >= 1 ({what})");
    let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
    let n = whole(value, 1, max, &rule)?;
    usize::try_from(n).map_err(|_| rule)
}

pub(super) fn log_filter(value: &Value) -> Result<String, String> {
    let filter = string(value)?;
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(_) => Ok(filter),
        Err(e) => Err(format!(
            "is not a valid log filter ({e}); write comma-separated directives such as \"warn,periscope=debug\""
        )),
    }
}

pub(super) fn initial_list(value: &Value) -> Result<InitialList, String> {
    match string(value)?.as_str() {
        "auto" => Ok(InitialList::Auto),
        "streaming" => Ok(InitialList::Streaming),
        "paged" => Ok(InitialList::Paged),
        _ => Err("must be \"auto\", \"streaming\" or \"paged\" (default \"auto\")".to_string()),
    }
}

pub(super) fn log_format(value: &Value) -> Result<LogFormat, String> {
    match string(value)?.as_str() {
        "plain" => Ok(LogFormat::Plain),
        "json" => Ok(LogFormat::Json),
        _ => Err("must be \"plain\" or \"json\"".to_string()),
    }
}

/// DNS-label-like, as names appear in URLs and span fields.
fn cluster_name(value: &Value) -> Result<String, String> {
    let name = string(value)?;
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = !name.starts_with('-') && !name.ends_with('-');
    if name.is_empty() || name.len() > 63 || !valid_chars || !alnum_ends {
        return Err(
            "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or \
                    digit, such as \"prod-eu\""
                .to_string(),
        );
    }
    Ok(name)
}

fn server_url(value: &Value) -> Result<String, String> {
    const RULE: &str = "must be an http:// or https:// URL such as \"http://127.0.0.1:6443\"; for a kubeconfig \
                        use kubeconfig = \"…\" instead";
    let url = string(value)?;
    let uri: http::Uri = url.parse().map_err(|_| RULE.to_string())?;
    let http = matches!(uri.scheme_str(), Some("http" | "https"));
    if !http || uri.host().is_none_or(str::is_empty) {
        return Err(RULE.to_string());
    }
    Ok(url)
}

fn scenario(value: &Value) -> Result<String, String> {
    let name = string(value)?;
    if !SIM_SCENARIOS.contains(&name.as_str()) {
        let known: Vec<String> = SIM_SCENARIOS.iter().map(|s| format!("\"{s}\"")).collect();
        return Err(format!("is not a simulated scenario; use {}", known.join(" or ")));
    }
    Ok(name)
}

pub(super) fn auth_mode(value: &Value) -> Result<AuthMode, String> {
    match string(value)?.as_str() {
        "none" => Ok(AuthMode::None),
        "jwt" => Ok(AuthMode::Jwt),
        _ => Err("must be \"none\" (no authentication) or \"jwt\" (JSON Web Tokens)".to_string()),
    }
}

/// Addresses (`10.0.0.1`, a single host) or CIDR ranges (`10.0.0.0/8`).
pub(super) fn ip_networks(value: &Value) -> Result<Vec<ipnet::IpNet>, String> {
    list(value)?
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!("{item:?} is not an IP address or CIDR range; write addresses such as \"10.0.0.1\" or \"10.0.0.0/8\"")
                })
        })
        .collect()
}

pub(super) fn rbac_mode(value: &Value) -> Result<RbacMode, String> {
    match string(value)?.as_str() {
        "subjectaccessreview" => Ok(RbacMode::SubjectAccessReview),
        "off" => Ok(RbacMode::Off),
        _ => Err(
            "must be \"subjectaccessreview\" (apply each user's Kubernetes RBAC) or \"off\" (every user sees what \
             the service account sees)"
                .to_string(),
        ),
    }
}

/// A cap: a whole number >= 0 that fits a `u32`, where 0 disables it.
pub(super) fn cap(value: &Value, what: &str) -> Result<u32, String> {
    let rule = format!("must be a whole number >= 0 ({what}; 0 disables the cap)");
    let n = whole(value, 0, u64::from(u32::MAX), &rule)?;
    u32::try_from(n).map_err(|_| rule)
}

/// A list: a TOML array of strings, or a comma-separated string (what a variable
/// holds). Entries are trimmed; empty entries of a string are dropped.
fn list(value: &Value) -> Result<Vec<String>, String> {
    const RULE: &str = "must be a list of strings such as [\"a\", \"b\"] (a variable holds \"a,b\")";
    match value {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                _ => Err(RULE.to_string()),
            })
            .collect(),
        _ => Err(RULE.to_string()),
    }
}

pub(super) fn paths(value: &Value) -> Result<Vec<PathBuf>, String> {
    let items = list(value)?;
    if items.iter().any(String::is_empty) {
        return Err("has an empty path; remove it, or set a path".to_string());
    }
    Ok(items.into_iter().map(PathBuf::from).collect())
}

/// Kind tokens (`plugins.override`): lowercase letters, digits and dashes.
pub(super) fn kind_tokens(value: &Value) -> Result<Vec<String>, String> {
    let items = list(value)?;
    match items.iter().find(|t| {
        t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) {
        Some(bad) => Err(format!(
            "{bad:?} is not a kind token; list kind tokens such as [\"pods\"] (lowercase letters, digits and dashes)"
        )),
        None => Ok(items),
    }
}

pub(super) fn algorithms(value: &Value) -> Result<Vec<String>, String> {
    let items = list(value)?;
    if items.is_empty() {
        return Err("must name at least one signing algorithm, such as \"RS256\" (the default)".to_string());
    }
    for item in &items {
        if item.eq_ignore_ascii_case("none") {
            return Err(
                "\"none\" is refused: a token with alg \"none\" carries no signature, so anyone could forge one; \
                 list signing algorithms such as \"RS256\" or \"HS256\""
                    .to_string(),
            );
        }
        if JWT_ALGORITHMS.contains(&item.as_str()) {
            continue;
        }
        let accepted = JWT_ALGORITHMS.join(", ");
        if let Some(known) = JWT_ALGORITHMS.iter().find(|known| known.eq_ignore_ascii_case(item)) {
            return Err(format!(
                "{item:?} is not a JWT algorithm; names are case-sensitive, as in JWT headers: write \"{known}\""
            ));
        }
        return Err(match closest(item, JWT_ALGORITHMS.iter().copied()) {
            Some(known) => format!("{item:?} is not a JWT algorithm; did you mean \"{known}\"? (use {accepted})"),
            None => format!("{item:?} is not a JWT algorithm; use {accepted}"),
        });
    }
    Ok(items)
}

pub(super) fn leeway(value: &Value) -> Result<Duration, String> {
    let leeway = duration(value)?;
    if leeway > MAX_LEEWAY {
        return Err(
            "must be at most 5m; leeway only absorbs clock skew between the token issuer and periscope \
             (default 30s)"
                .to_string(),
        );
    }
    Ok(leeway)
}

/// A cookie name: an RFC 6265 token (visible ASCII except separators).
pub(super) fn cookie_name(value: &Value) -> Result<String, String> {
    let name = string(value)?;
    let token = name
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if name.is_empty() || !token {
        return Err(
            "must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, without spaces or ()<>@,;:\\\"/[]?={} \
             (default \"periscope_token\")"
                .to_string(),
        );
    }
    Ok(name)
}

/// `true` or `false`, as a TOML boolean or a string (what a variable holds).
pub(super) fn flag(value: &Value, what: &str) -> Result<bool, String> {
    match value {
        Value::Boolean(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(format!("must be true or false ({what})")),
    }
}
