//! Periscope's configuration: one typed [`Config`], built from an optional TOML file
//! overlaid with `PERISCOPE_*` environment variables.
//!
//! Loading happens in two stages, like ripgrep's low and high arguments:
//!
//! 0. **Declared** ([`settings`]): each setting once — key, variable, default, parser,
//!    type, helm value and doc. The keys each section accepts, the `ENV_*` names, the
//!    defaults other modules use, the docs table and the chart all follow from it.
//! 1. **Raw** (`raw.rs`): the file as written, each section (`[server]`, `[watch]`,
//!    `[plugins]`, `[log]`, `[auth]`) a table of the declared keys and `[[clusters]]` a
//!    struct with `deny_unknown_fields`, every setting still an untyped TOML value.
//! 2. **Validated** (`validate.rs`): each setting is taken from its variable if set,
//!    else from the file, else its default, then checked. Every setting is checked
//!    before anything fails, so one run reports every problem, each naming the key,
//!    the value, where it came from and how to fix it ([`ConfigError`]).
//!
//! Variables are read through [`EnvSource`], so tests pass a map and never mutate the
//! process environment. `[[clusters]]` is TOML-only; list settings such as
//! `[auth] algorithms` take a TOML array or a comma-separated variable. The module knows no
//! sockets, kube or wasmtime: it hands plain values to the code that builds those.
//! `docs/operators/configuration.md` documents every key in a table a test regenerates
//! from [`settings`].
//!
//! The configuration holds no secrets, only the paths of files that do (`[auth]
//! secret_file` and friends, read by the auth module), so the derived `Debug` of
//! [`Config`] is safe to log. Keep it so: a secret added later is read from a file
//! named in the configuration, or its type gets a `Debug` that redacts it.
//!
//! ```no_run
//! use periscope::config::{self, ProcessEnv};
//!
//! let path = std::env::var_os(config::ENV_CONFIG).map(std::path::PathBuf::from);
//! for warning in config::unknown_env_warnings(config::env_vars()) {
//!     eprintln!("warning: {warning}");
//! }
//! match config::load(path.as_deref(), &ProcessEnv) {
//!     Ok(config) => println!("listening on {}", config.listen),
//!     Err(error) => {
//!         eprintln!("error: {error}");
//!         std::process::exit(64);
//!     }
//! }
//! ```

mod env;
mod raw;
pub mod settings;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{EnvSource, ProcessEnv, env_vars, unknown_env_warnings};
pub use settings::{
    ALL, ENV_AUTH_ADMIN_GROUP, ENV_AUTH_ALGORITHMS, ENV_AUTH_ALLOW_SYSTEM_GROUPS, ENV_AUTH_AUDIENCE, ENV_AUTH_COOKIE,
    ENV_AUTH_GROUPS_CLAIM, ENV_AUTH_GROUPS_PREFIX, ENV_AUTH_ISSUER, ENV_AUTH_JWKS_FILE, ENV_AUTH_LEEWAY, ENV_AUTH_MODE,
    ENV_AUTH_PROTECT_METRICS, ENV_AUTH_PUBLIC_KEY_FILES, ENV_AUTH_QUERY_TOKEN, ENV_AUTH_RBAC, ENV_AUTH_RBAC_TTL,
    ENV_AUTH_REVOCATION_FILE, ENV_AUTH_SECRET_FILE, ENV_AUTH_USERNAME_CLAIM, ENV_AUTH_USERNAME_PREFIX, ENV_CONFIG,
    ENV_GRAPHQL_INIT_TIMEOUT, ENV_GRAPHQL_MAX_OPERATION_DURATION, ENV_GRAPHQL_PING_INTERVAL,
    ENV_GRAPHQL_RESTART_WINDOW, ENV_HEADER_TIMEOUT, ENV_LISTEN, ENV_LOG, ENV_LOG_FORMAT, ENV_MAX_CONNECTIONS,
    ENV_PLUGINS_CACHE_DIR, ENV_PLUGINS_CALL_DEADLINE, ENV_PLUGINS_DIR, ENV_PLUGINS_MEMORY_CAP_MIB, ENV_SHUTDOWN_GRACE,
    ENV_TRUSTED_PROXIES, ENV_WATCH_COLD_POLLS_PER_USER, ENV_WATCH_HEARTBEAT, ENV_WATCH_INITIAL_LIST, ENV_WATCH_LINGER,
    ENV_WATCH_LIST_PAGE_SIZE, ENV_WATCH_MAX_STREAM_DURATION, ENV_WATCH_OUTAGE_GRACE, ENV_WATCH_PER_USER_LIMIT,
    ENV_WATCH_QUEUE, ENV_WATCH_REQUEST_TIMEOUT, ENV_WATCH_RING, ENV_WATCH_SILENCE_TIMEOUT, ENV_WATCH_STREAMS,
    ENV_WATCH_UPSTREAMS_PER_CLUSTER, ENV_WATCH_UPSTREAMS_PER_USER, ENV_WATCH_WRITE_TIMEOUT, SETTINGS,
};

/// Scenario names a `sim = "…"` cluster accepts: those `periscope_sim::Scenario` parses.
pub const SIM_SCENARIOS: &[&str] = &["demo", "empty"];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing set it; the built-in default applies.
    Default,
    /// The configuration file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => f.write_str(name),
        }
    }
}

/// A value together with where it came from, for settings that are checked later
/// (after start-up has resolved something they refer to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from; name this in any error about the value.
    pub origin: Origin,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address the HTTP server binds (`[server] listen`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Clusters to serve, in file order (`[[clusters]]`, TOML only). Empty means none
    /// configured: the caller embeds the demo sim as cluster `demo`.
    pub clusters: Vec<ClusterConfig>,
    /// Watch streams: which kinds, caps and timings.
    pub watch: WatchConfig,
    /// Kind plugins: where they come from and their limits.
    pub plugins: PluginsConfig,
    /// Logging.
    pub log: LogConfig,
    /// How requests are authenticated.
    pub auth: AuthConfig,
    /// GraphQL over WebSocket (`/graphqlws`).
    pub graphql: GraphqlConfig,
    /// How long open streams get to finish on shutdown (`[server] shutdown_grace`,
    /// default 10s).
    pub shutdown_grace: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (`[server] trusted_proxies`,
    /// addresses or CIDR ranges; default none).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client has to send a request head, and an idle keep-alive
    /// connection stays open (`[server] header_timeout`, default 10s).
    pub header_timeout: Duration,
    /// Open client connections; 0 sizes it from the file descriptor limit
    /// (`[server] max_connections`, default 0).
    pub max_connections: u32,
}

/// One cluster to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Unique, DNS-label-like name (lowercase letters, digits, `-`); it appears in URLs
    /// (`/api/clusters/<name>/…`).
    pub name: String,
    /// How to reach the cluster's API server.
    pub source: ClusterSource,
}

/// How to reach a cluster's API server; a cluster has exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSource {
    /// A kubeconfig file (`kubeconfig = "…"`) and/or one of its contexts
    /// (`context = "…"`).
    Kubeconfig {
        /// The file; `None` means the default resolution (`$KUBECONFIG`, then
        /// `~/.kube/config`).
        path: Option<PathBuf>,
        /// The context; `None` means the file's current context.
        context: Option<String>,
    },
    /// The service account of the pod periscope runs in (`in_cluster = true`).
    InCluster,
    /// A plain `http(s)://` URL without credentials (`server = "…"`), such as a
    /// standalone `periscope sim`.
    Server(String),
    /// A simulated cluster embedded in the process (`sim = "demo"`); one of
    /// [`SIM_SCENARIOS`].
    Sim(String),
}

/// `[watch]`: watch streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Which kinds get watch routes, as a kinds expression (`""` = all). Kept raw: it is
    /// resolved against the plugin registry later, and errors name `streams.origin`.
    pub streams: Sourced<String>,
    /// Concurrent streams per user; 0 = unlimited (default 60).
    pub per_user_limit: u32,
    /// How long an upstream watch outlives its last subscriber (default 30s).
    pub linger: Duration,
    /// Interval of `: ping` frames on idle streams (default 15s; never 0).
    pub heartbeat: Duration,
    /// A client whose connection accepts no byte for this long is closed (default 10s).
    pub write_timeout: Duration,
    /// Events buffered per subscriber before it is dropped as slow (default 256, >= 1).
    pub queue: usize,
    /// Recent events kept per upstream for `Last-Event-ID` resume (default 1024, >= 1).
    pub ring: usize,
    /// Streams are closed after this long, so clients reconnect and spread load
    /// (default 5m); [`Duration::ZERO`] disables the limit.
    pub max_stream_duration: Duration,
    /// Upstream watches one user's requests may have started and that still run;
    /// 0 = unlimited (default 16).
    pub upstreams_per_user: u32,
    /// Polls per second one user may send that need the apiserver (bursts of ten
    /// times that); 0 = unlimited (default 10).
    pub cold_polls_per_user: u32,
    /// Upstream watches per cluster; 0 = unlimited (default 256).
    pub upstreams_per_cluster: u32,
    /// How long streams are held open on the last good state while their upstream is
    /// unreachable (default 60s; 0 sends `error` at once).
    pub outage_grace: Duration,
    /// Longest wait for a list page or a watch to be established (default 30s).
    pub request_timeout: Duration,
    /// A watch silent this long, not even a bookmark, is re-opened (default 90s).
    pub silence_timeout: Duration,
    /// Objects per list page (default 500, >= 1).
    pub list_page_size: u32,
    /// How upstreams get their first state (default [`InitialList::Auto`]).
    pub initial_list: InitialList,
}

/// How an upstream gets its first state (`watch.initial_list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialList {
    /// Streaming, and paged lists for a cluster whose apiserver refuses it.
    #[default]
    Auto,
    /// Always a watch with `sendInitialEvents` (WatchList); a refusal is a failure.
    Streaming,
    /// Always `limit`/`continue` lists.
    Paged,
}

/// `[graphql]`: GraphQL over WebSocket (`/graphqlws`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlConfig {
    /// How long a client has to send `connection_init` before the socket is closed
    /// with 4408 (default 3s; never 0).
    pub init_timeout: Duration,
    /// Each operation ends with `complete` after this long, and clients subscribe
    /// again (default 5m); [`Duration::ZERO`] disables the limit.
    pub max_operation_duration: Duration,
    /// How often a WebSocket ping goes to each socket; a peer that has not answered
    /// one by the next is closed (default 30s); [`Duration::ZERO`] sends none.
    pub ping_interval: Duration,
    /// `k8sWorkloadStatus` is WARN this long after a pod's last restart (default 10m;
    /// never 0).
    pub restart_window: Duration,
}

/// `[plugins]`: kind plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// A directory of extra `*.wasm` kind plugins; `None` loads only the bundled ones.
    pub dir: Option<PathBuf>,
    /// Where compiled components are cached; `None` means
    /// [`crate::plugin::cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Deadline of one plugin call (default 1s; never 0).
    pub call_deadline: Duration,
    /// Most linear memory one plugin instance may have, in bytes (configured in MiB as
    /// `memory_cap_mib`; default 64 MiB).
    pub memory_cap: u64,
    /// How long a plugin that faulted 5 calls in a row rests (default 30s).
    pub quarantine_for: Duration,
    /// A plugin file that cannot be loaded stops start-up (default: its kind is not
    /// served, the others are).
    pub strict: bool,
    /// Bundled kinds a plugin file may replace (`override`).
    pub overrides: Vec<String>,
}

/// `[log]`: logging, installed by `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive string (default
    /// `warn,periscope=info`).
    pub filter: String,
    /// Output format (default plain).
    pub format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (`plain`).
    Plain,
    /// One JSON object per line (`json`).
    Json,
}

/// `[auth]`: how requests are authenticated.
///
/// Only paths are stored: the auth module reads the key files, so `Debug` shows no
/// secret. With [`AuthMode::None`] the other settings are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// How requests are authenticated (default [`AuthMode::None`]).
    pub mode: AuthMode,
    /// When set, a token's `iss` claim must equal it.
    pub issuer: Option<String>,
    /// When set, a token's `aud` claim must contain it.
    pub audience: Option<String>,
    /// Accepted signing algorithms, as written in JWT headers (case-sensitive); each
    /// one of [`JWT_ALGORITHMS`], never `none` (default `["RS256"]`).
    pub algorithms: Vec<String>,
    /// The file whose contents are the HMAC secret of the `HS*` algorithms.
    pub secret_file: Option<PathBuf>,
    /// PEM RSA or EC public keys for the `RS*`, `PS*`, `ES*` and `EdDSA` algorithms.
    pub public_key_files: Vec<PathBuf>,
    /// A JSON Web Key Set file.
    pub jwks_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp`/`nbf` (default 30s, at most 5m).
    pub leeway: Duration,
    /// Cookie a token may be sent in (default `periscope_token`); a valid RFC 6265
    /// cookie name.
    pub cookie: String,
    /// Whether a token is also accepted as `?access_token=` (default false).
    pub query_token: bool,
    /// The claim that lists a user's groups (default `groups`).
    pub groups_claim: String,
    /// Members of this group are administrators.
    pub admin_group: Option<String>,
    /// Put before the username claim (default `""`).
    pub username_prefix: String,
    /// Put before every group (default `""`).
    pub groups_prefix: String,
    /// Accept `system:` users and groups from tokens (default false).
    pub allow_system_groups: bool,
    /// One revoked subject per line; the auth module re-reads it when it changes.
    pub revocation_file: Option<PathBuf>,
    /// The claim that names the Kubernetes user (default `sub`).
    pub username_claim: String,
    /// How each user's Kubernetes RBAC is applied in `jwt` mode (default
    /// [`RbacMode::SubjectAccessReview`]).
    pub rbac: RbacMode,
    /// How long an RBAC decision is cached and how often open streams re-check it
    /// (default 30s).
    pub rbac_ttl: Duration,
    /// Whether `/metrics` needs a token in `jwt` mode (default false).
    pub protect_metrics: bool,
}

/// How the host applies users' Kubernetes RBAC to what the shared watches hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacMode {
    /// Ask the cluster with a `SubjectAccessReview` per user, verb, resource and
    /// namespace (`subjectaccessreview`).
    SubjectAccessReview,
    /// Every authenticated user sees everything the host's service account sees (`off`).
    Off,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request is anonymous and allowed (`none`).
    None,
    /// Requests carry a JSON Web Token, verified with the configured keys (`jwt`).
    Jwt,
}

/// The signing algorithms `[auth] algorithms` accepts, as written in JWT headers.
pub const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Loads the TOML file at `file` (if any; the caller takes it from `--config` or
/// [`ENV_CONFIG`]), overlays the `PERISCOPE_*` variables from `env` and validates
/// everything, returning every problem at once.
pub fn load(file: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let raw = match file {
        Some(path) => raw::read(path, &mut problems),
        None => raw::RawConfig::default(),
    };
    let config = validate::validate(raw, file, env, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { problems })
    }
}

/// The configuration is invalid; lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration ({}){}", count(.problems), list(.problems))]
pub struct ConfigError {
    /// The problems, in the order of the sections (file-level problems first).
    pub problems: Vec<Problem>,
}

fn count(problems: &[Problem]) -> String {
    match problems.len() {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    }
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// One invalid setting. Displays as
/// `watch.queue = "0" (from PERISCOPE_WATCH_QUEUE): must be a whole number >= 1 …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key (`watch.queue`, `clusters[1].server`); empty when the problem is
    /// with the file as a whole (unreadable, not TOML).
    pub key: String,
    /// The offending value as written (strings without their quotes).
    pub value: String,
    /// Where the value came from.
    pub origin: Origin,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    fn whole_file(origin: Origin, message: String) -> Problem {
        Problem {
            key: String::new(),
            value: String::new(),
            origin,
            message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{} = {:?} (from {}): {}",
                self.key, self.value, self.origin, self.message
            )
        }
    }
}

#[cfg(test)]
mod tests;
