//! One declaration per setting: its TOML key, its `PERISCOPE_*` variable, its default,
//! its parser, its type and its one-line doc.
//!
//! Everything else follows from this table, so a setting is written once:
//!
//! - the keys each TOML section accepts (`raw.rs` checks the file's shape against them),
//!   and the `ENV_*` constants and [`ALL`] (`env.rs` warns about unknown variables);
//! - the values validation falls back on, and the defaults of the components that use
//!   them ([`crate::hub::HubOptions`], [`crate::plugin::RuntimeOptions`]), read through
//!   [`Setting::default_value`];
//! - the key table of `docs/operators/configuration.md` and the helm chart's
//!   `values.yaml` block and `values.schema.json` types, which tests regenerate from
//!   [`SETTINGS`] and compare (`PERISCOPE_BLESS=1` rewrites them).
//!
//! A default is written as a TOML literal and parsed by the setting's own parser, so the
//! documented default and the one in force cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::validate::{
    algorithms, auth_mode, cap, cookie_name, count, duration, flag, initial_list, ip_networks, kind_tokens, leeway,
    log_filter, log_format, non_empty, nonzero_duration, path, paths, rbac_mode, socket_addr, string, whole,
};
use super::{AuthMode, InitialList, LogFormat, RbacMode};

const MIB: u64 = 1 << 20;

/// A 32-bit WebAssembly memory cannot grow past 4 GiB, so a larger cap means nothing.
const MAX_MEMORY_CAP_MIB: u64 = 4096;

/// Path of the TOML file; read by the caller (`main`), which passes it to
/// [`super::load`]. Not a setting: it says where the settings are.
pub const ENV_CONFIG: &str = "PERISCOPE_CONFIG";

/// What a setting is when nothing sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, written as a TOML literal (`"30s"`, `256`, `["RS256"]`).
    Value(&'static str),
    /// The setting is absent; the text says what that means, for the docs table.
    Absent(&'static str),
}

/// The shape of a setting's value in the TOML file (and so in the chart's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A string.
    String,
    /// A humantime duration in a string (`"30s"`).
    Duration,
    /// A whole number in `min..=max` (no upper bound when `max` is `None`).
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: Option<u64>,
    },
    /// `true` or `false`.
    Boolean,
    /// A list of strings (comma-separated in a variable).
    Strings,
}

/// How the helm chart sets a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// `config.<section>.<key>` in `values.yaml`, rendered into the ConfigMap's TOML;
    /// left unset (`~`) by default, so periscope's own default applies.
    Config,
    /// As [`Chart::Config`], but the chart sets this TOML literal by default, because
    /// a pod needs another value than a laptop (listening beyond loopback).
    ConfigInPod(&'static str),
    /// The value at this path (Periscope's chart keys, `watchStreams.kinds`), rendered
    /// as the setting's environment variable.
    Env(&'static str),
}

/// Everything about a setting except its parser: what the docs, the chart and the
/// shape check need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The dotted key: `watch.queue`.
    pub key: &'static str,
    /// The variable that overrides it: `PERISCOPE_WATCH_QUEUE`.
    pub env: &'static str,
    /// What applies when nothing sets it.
    pub default: DefaultValue,
    /// The shape of its value.
    pub ty: Type,
    /// How the helm chart sets it.
    pub chart: Chart,
    /// What it means, in one line of markdown (the docs table's last column).
    pub doc: &'static str,
}

impl Meta {
    /// The TOML section: `watch`.
    pub fn section(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(section, _)| section)
    }

    /// The key inside its section: `queue`.
    pub fn name(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(_, name)| name)
    }

    /// The default as a TOML value, or `None` for an absent setting.
    pub fn default_toml(&self) -> Option<Value> {
        match self.default {
            DefaultValue::Value(text) => Some(toml_literal(text)),
            DefaultValue::Absent(_) => None,
        }
    }
}

/// A setting and the parser that turns its raw value into `T`, or into the message of
/// a problem.
#[derive(Debug, Clone, Copy)]
pub struct Setting<T: 'static> {
    /// Key, variable, default, type, chart and doc.
    pub meta: Meta,
    /// Raw value → typed value, or what is wrong and how to fix it.
    pub parse: fn(&Value) -> Result<T, String>,
}

impl<T> Setting<T> {
    /// The typed default: the declared literal through the setting's parser. `None`
    /// for a setting that is absent unless set.
    pub fn default_value(&self) -> Option<T> {
        let value = self.meta.default_toml()?;
        // Every declared default is parsed by a unit test (`every_default_parses`).
        Some(
            (self.parse)(&value).unwrap_or_else(|message| {
                panic!("the declared default of {} does not parse: {message}", self.meta.key)
            }),
        )
    }

    /// The typed default of a setting declared with one.
    pub fn default(&self) -> T {
        self.default_value()
            .unwrap_or_else(|| panic!("{} is declared without a default", self.meta.key))
    }
}

/// Parses one TOML literal (`"30s"`, `256`, `["RS256"]`).
fn toml_literal(text: &str) -> Value {
    let table: toml::Table = format!("v = {text}")
        .parse()
        .unwrap_or_else(|e| panic!("the declared default {text} is not a TOML literal: {e}"));
    table
        .get("v")
        .cloned()
        .unwrap_or_else(|| panic!("the declared default {text} is not a TOML value"))
}

/// Declares the settings: one `pub const` [`Setting`] and one `ENV_*` constant each,
/// plus [`SETTINGS`] and [`ALL`] in declaration order (the order of the docs table, of
/// each section's accepted keys and of validation).
macro_rules! settings {
    ($(
        $name:ident, $env_const:ident: $ty:ty = {
            key: $key:literal,
            env: $env:literal,
            default: $default:expr,
            ty: $vty:expr,
            chart: $chart:expr,
            parse: $parse:expr,
            doc: $doc:literal $(,)?
        }
    )*) => {
        $(
            #[doc = concat!("`", $key, "` (`", $env, "`): ", $doc)]
            pub const $name: Setting<$ty> = Setting {
                meta: Meta { key: $key, env: $env, default: $default, ty: $vty, chart: $chart, doc: $doc },
                parse: $parse,
            };
            #[doc = concat!("The variable of `", $key, "`.")]
            pub const $env_const: &str = $env;
        )*

        /// Every setting, in declaration order.
        pub const SETTINGS: &[&Meta] = &[$(&$name.meta),*];

        /// Every variable periscope's configuration reads, [`ENV_CONFIG`] included.
        pub const ALL: &[&str] = &[ENV_CONFIG, $($env),*];
    };
}

const ANY: Option<u64> = None;

settings! {
    // === [server] ===
    LISTEN, ENV_LISTEN: SocketAddr = {
        key: "server.listen",
        env: "PERISCOPE_LISTEN",
        default: DefaultValue::Value("\"127.0.0.1:8080\""),
        ty: Type::String,
        chart: Chart::ConfigInPod("\"0.0.0.0:8080\""),
        parse: socket_addr,
        doc: "IP address and port the HTTP server binds (`\"0.0.0.0:8080\"` in a pod, `\"[::]:8080\"` for IPv6). \
              Host names are not resolved.",
    }
    SHUTDOWN_GRACE, ENV_SHUTDOWN_GRACE: Duration = {
        key: "server.shutdown_grace",
        env: "PERISCOPE_SHUTDOWN_GRACE",
        default: DefaultValue::Value("\"10s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "How long open streams get to finish after SIGTERM or Ctrl-C (the chart's \
              `terminationGracePeriodSeconds` is longer).",
    }
    TRUSTED_PROXIES, ENV_TRUSTED_PROXIES: Vec<ipnet::IpNet> = {
        key: "server.trusted_proxies",
        env: "PERISCOPE_TRUSTED_PROXIES",
        default: DefaultValue::Value("[]"),
        ty: Type::Strings,
        chart: Chart::Config,
        parse: ip_networks,
        doc: "Proxies (addresses or CIDR ranges, `[\"10.0.0.0/8\"]`; the variable is comma-separated) whose \
              `X-Forwarded-For` header names the client. With auth off, the per-user caps count per client \
              address: the first `X-Forwarded-For` hop when the peer is a trusted proxy, else the peer.",
    }

    HEADER_TIMEOUT, ENV_HEADER_TIMEOUT: Duration = {
        key: "server.header_timeout",
        env: "PERISCOPE_HEADER_TIMEOUT",
        default: DefaultValue::Value("\"10s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "a client gets this long to send a request head (default 10s)"),
        doc: "How long a client has to send a whole request head, counted from the connection (or the end of \
              its previous request): bytes trickling in do not extend it. It is also how long an idle \
              keep-alive connection stays open. Must be more than `\"0s\"`.",
    }
    MAX_CONNECTIONS, ENV_MAX_CONNECTIONS: u32 = {
        key: "server.max_connections",
        env: "PERISCOPE_MAX_CONNECTIONS",
        default: DefaultValue::Value("0"),
        ty: Type::Integer { min: 0, max: Some(u32::MAX as u64) },
        chart: Chart::Config,
        parse: |v| cap(v, "open client connections; 0 sizes it from the file descriptor limit"),
        doc: "Open client connections. Past it, new ones get 503 JSON, except `/healthz`, `/readyz` and \
              `/metrics`, which have 32 connections of their own. `0` (the default) is three quarters of the \
              file descriptor limit (raised to its hard limit at start; both are logged), leaving the rest to \
              upstream connections, plugins and files.",
    }

    // === [watch] ===
    WATCH_STREAMS, ENV_WATCH_STREAMS: String = {
        key: "watch.streams",
        env: "PERISCOPE_WATCH_STREAMS",
        default: DefaultValue::Value("\"\""),
        ty: Type::String,
        chart: Chart::Env("watchStreams.kinds"),
        parse: string,
        doc: "Which kinds get watch routes, as a kinds expression: comma-separated kinds and group aliases \
              (`\"pods, workloads\"`), `\"all\"` (like `\"\"`, every kind), or `\"off\"`. Check one with \
              `periscope kinds resolve \"<expression>\"`.",
    }
    WATCH_PER_USER_LIMIT, ENV_WATCH_PER_USER_LIMIT: u32 = {
        key: "watch.per_user_limit",
        env: "PERISCOPE_WATCH_PER_USER_LIMIT",
        default: DefaultValue::Value("60"),
        ty: Type::Integer { min: 0, max: Some(u32::MAX as u64) },
        chart: Chart::Env("watchStreams.perUserLimit"),
        parse: |v| {
            whole(v, 0, u64::from(u32::MAX), "must be a whole number >= 0 (0 disables the cap)")
                .and_then(|n| u32::try_from(n).map_err(|_| "is too large".to_string()))
        },
        doc: "Concurrent watch streams per user; `0` means unlimited. A negative or malformed value stops \
              start-up (it does not fall back to 60).",
    }
    WATCH_LINGER, ENV_WATCH_LINGER: Duration = {
        key: "watch.linger",
        env: "PERISCOPE_WATCH_LINGER",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "How long an upstream watch stays open after its last subscriber leaves, so a reconnecting client \
              finds it warm. `\"0s\"` closes it at once.",
    }
    WATCH_HEARTBEAT, ENV_WATCH_HEARTBEAT: Duration = {
        key: "watch.heartbeat",
        env: "PERISCOPE_WATCH_HEARTBEAT",
        default: DefaultValue::Value("\"15s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "a heartbeat keeps idle streams open through proxies (default 15s)"),
        doc: "Interval of `: ping` frames, which keep idle streams open through proxies. Must be more than \
              `\"0s\"`.",
    }
    WATCH_WRITE_TIMEOUT, ENV_WATCH_WRITE_TIMEOUT: Duration = {
        key: "watch.write_timeout",
        env: "PERISCOPE_WATCH_WRITE_TIMEOUT",
        default: DefaultValue::Value("\"10s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "a client that accepts no byte for this long is closed (default 10s)"),
        doc: "A client whose connection accepts no byte for this long is closed (a stream's close counts as \
              backpressure). Keep it under `heartbeat`, so a stalled reader is found before a ping would be \
              due. Must be more than `\"0s\"`.",
    }
    WATCH_QUEUE, ENV_WATCH_QUEUE: usize = {
        key: "watch.queue",
        env: "PERISCOPE_WATCH_QUEUE",
        default: DefaultValue::Value("256"),
        ty: Type::Integer { min: 1, max: ANY },
        chart: Chart::Config,
        parse: |v| count(v, "events buffered per subscriber before it is dropped as slow; default 256"),
        doc: "Events buffered per subscriber; a subscriber that falls further behind gets `backpressure` and is \
              disconnected. At least 1.",
    }
    WATCH_RING, ENV_WATCH_RING: usize = {
        key: "watch.ring",
        env: "PERISCOPE_WATCH_RING",
        default: DefaultValue::Value("1024"),
        ty: Type::Integer { min: 1, max: ANY },
        chart: Chart::Config,
        parse: |v| count(v, "recent events kept for Last-Event-ID resume; default 1024"),
        doc: "Recent events kept per upstream watch, so a client reconnecting with `Last-Event-ID` resumes \
              without a new snapshot. At least 1.",
    }
    WATCH_MAX_STREAM_DURATION, ENV_WATCH_MAX_STREAM_DURATION: Duration = {
        key: "watch.max_stream_duration",
        env: "PERISCOPE_WATCH_MAX_STREAM_DURATION",
        default: DefaultValue::Value("\"5m\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "Streams are closed after this long and clients reconnect, which spreads load across replicas. \
              `\"0s\"` disables the limit.",
    }
    WATCH_UPSTREAMS_PER_USER, ENV_WATCH_UPSTREAMS_PER_USER: u32 = {
        key: "watch.upstreams_per_user",
        env: "PERISCOPE_WATCH_UPSTREAMS_PER_USER",
        default: DefaultValue::Value("16"),
        ty: Type::Integer { min: 0, max: Some(u32::MAX as u64) },
        chart: Chart::Config,
        parse: |v| cap(v, "upstream watches one user may start (default 16)"),
        doc: "Upstream watches one user's streams and polls may have started that are still running; past it, a \
              stream that needs a new one gets 429 JSON (joining a running one is always fine). `0` means \
              unlimited.",
    }
    WATCH_COLD_POLLS_PER_USER, ENV_WATCH_COLD_POLLS_PER_USER: u32 = {
        key: "watch.cold_polls_per_user",
        env: "PERISCOPE_WATCH_COLD_POLLS_PER_USER",
        default: DefaultValue::Value("10"),
        ty: Type::Integer { min: 0, max: Some(u32::MAX as u64) },
        chart: Chart::Config,
        parse: |v| cap(v, "polls per second one user may send that need the apiserver (default 10)"),
        doc: "Polls per second one user may send that the hub cannot answer from a running upstream (each is \
              a list, and access reviews, sent to the apiserver), with bursts of ten times that; past it, 429 \
              JSON with `Retry-After`. Polls answered from memory are never limited. `0` means unlimited.",
    }
    WATCH_UPSTREAMS_PER_CLUSTER, ENV_WATCH_UPSTREAMS_PER_CLUSTER: u32 = {
        key: "watch.upstreams_per_cluster",
        env: "PERISCOPE_WATCH_UPSTREAMS_PER_CLUSTER",
        default: DefaultValue::Value("256"),
        ty: Type::Integer { min: 0, max: Some(u32::MAX as u64) },
        chart: Chart::Config,
        parse: |v| cap(v, "upstream watches per cluster (default 256)"),
        doc: "Upstream watches per cluster, whoever started them; past it, 503 JSON. `0` means unlimited.",
    }
    WATCH_OUTAGE_GRACE, ENV_WATCH_OUTAGE_GRACE: Duration = {
        key: "watch.outage_grace",
        env: "PERISCOPE_WATCH_OUTAGE_GRACE",
        default: DefaultValue::Value("\"60s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "While an upstream is unreachable (connection refused, 5xx, timeouts, a paused apiserver) and has a \
              last good state, its streams stay open with heartbeats and new subscribers get that state; only \
              past this grace do they get `error` (polls `503` JSON). When it answers again, clients get only \
              the difference as deltas. `\"0s\"` sends `error` at once.",
    }
    WATCH_REQUEST_TIMEOUT, ENV_WATCH_REQUEST_TIMEOUT: Duration = {
        key: "watch.request_timeout",
        env: "PERISCOPE_WATCH_REQUEST_TIMEOUT",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "it bounds one list page or watch request (default 30s)"),
        doc: "Longest wait for one list page or for a watch to be established; longer is an outage. Must be \
              more than `\"0s\"`.",
    }
    WATCH_SILENCE_TIMEOUT, ENV_WATCH_SILENCE_TIMEOUT: Duration = {
        key: "watch.silence_timeout",
        env: "PERISCOPE_WATCH_SILENCE_TIMEOUT",
        default: DefaultValue::Value("\"90s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| {
            nonzero_duration(
                v,
                "a watch silent this long is re-opened; keep it above the apiserver's bookmark interval (default 90s)",
            )
        },
        doc: "A watch that delivers nothing, not even a bookmark, for this long is re-opened (a paused apiserver \
              holds connections open in silence). Keep it above the apiserver's bookmark interval (about a \
              minute).",
    }
    WATCH_LIST_PAGE_SIZE, ENV_WATCH_LIST_PAGE_SIZE: u32 = {
        key: "watch.list_page_size",
        env: "PERISCOPE_WATCH_LIST_PAGE_SIZE",
        default: DefaultValue::Value("500"),
        ty: Type::Integer { min: 1, max: Some(u32::MAX as u64) },
        chart: Chart::Config,
        parse: |v| {
            whole(v, 1, u64::from(u32::MAX), "must be a whole number >= 1 (objects per list page; default 500)")
                .and_then(|n| u32::try_from(n).map_err(|_| "is too large".to_string()))
        },
        doc: "Objects per page of a list (`limit`/`continue`). Each page is mapped while the next is fetched \
              and dropped before the one after, so a list holds about two pages at a time whatever the \
              cluster's size; subscribers still get one snapshot at the list's resourceVersion.",
    }

    WATCH_INITIAL_LIST, ENV_WATCH_INITIAL_LIST: InitialList = {
        key: "watch.initial_list",
        env: "PERISCOPE_WATCH_INITIAL_LIST",
        default: DefaultValue::Value("\"auto\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: initial_list,
        doc: "How an upstream gets its first state. `\"streaming\"`: a watch with `sendInitialEvents` \
              (WatchList, KEP-3157), which the apiserver serves from its watch cache with about 2 MB of \
              memory per watcher; `\"paged\"`: `limit`/`continue` lists; `\"auto\"`: streaming, and paged \
              lists for a cluster whose apiserver refuses it (older than 1.27, or the feature off).",
    }

    // === [plugins] ===
    PLUGINS_DIR, ENV_PLUGINS_DIR: PathBuf = {
        key: "plugins.dir",
        env: "PERISCOPE_PLUGINS_DIR",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: path,
        doc: "A directory of extra `*.wasm` kind plugins, which add kinds or override bundled ones.",
    }
    PLUGINS_CACHE_DIR, ENV_PLUGINS_CACHE_DIR: PathBuf = {
        key: "plugins.cache_dir",
        env: "PERISCOPE_PLUGINS_CACHE_DIR",
        default: DefaultValue::Absent("`$XDG_CACHE_HOME/periscope/components` (else `~/.cache/…`)"),
        ty: Type::String,
        chart: Chart::Config,
        parse: path,
        doc: "Where compiled plugins are cached between starts.",
    }
    PLUGINS_CALL_DEADLINE, ENV_PLUGINS_CALL_DEADLINE: Duration = {
        key: "plugins.call_deadline",
        env: "PERISCOPE_PLUGINS_CALL_DEADLINE",
        default: DefaultValue::Value("\"1s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "it bounds how long one plugin call may run (default 1s)"),
        doc: "Longest one plugin call may run before it is interrupted. Must be more than `\"0s\"`.",
    }
    PLUGINS_MEMORY_CAP_MIB, ENV_PLUGINS_MEMORY_CAP_MIB: u64 = {
        key: "plugins.memory_cap_mib",
        env: "PERISCOPE_PLUGINS_MEMORY_CAP_MIB",
        default: DefaultValue::Value("64"),
        ty: Type::Integer { min: 1, max: Some(MAX_MEMORY_CAP_MIB) },
        chart: Chart::Config,
        // Typed in bytes: what the plugin runtime takes.
        parse: |v| {
            whole(v, 1, MAX_MEMORY_CAP_MIB, "must be a whole number of MiB >= 1 (default 64)").map(|mib| mib * MIB)
        },
        doc: "Most memory one plugin instance may use, in MiB (1 to 4096).",
    }
    PLUGINS_QUARANTINE_FOR, ENV_PLUGINS_QUARANTINE_FOR: Duration = {
        key: "plugins.quarantine_for",
        env: "PERISCOPE_PLUGINS_QUARANTINE_FOR",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "it is how long a plugin that failed 5 calls in a row rests (default 30s)"),
        doc: "How long a plugin that failed 5 calls in a row is quarantined: its kind's streams get an `error` \
              frame and its calls fail fast; then the scopes list again, so no change made meanwhile is lost.",
    }
    PLUGINS_STRICT, ENV_PLUGINS_STRICT: bool = {
        key: "plugins.strict",
        env: "PERISCOPE_PLUGINS_STRICT",
        default: DefaultValue::Value("false"),
        ty: Type::Boolean,
        chart: Chart::Config,
        parse: |v| flag(v, "whether a plugin that cannot be loaded stops start-up; default false"),
        doc: "Stop start-up when a plugin file cannot be loaded (`true`), instead of serving every other \
              kind and naming the broken plugin in the log, `/readyz` and metrics (`false`, the default).",
    }
    PLUGINS_OVERRIDE, ENV_PLUGINS_OVERRIDE: Vec<String> = {
        key: "plugins.override",
        env: "PERISCOPE_PLUGINS_OVERRIDE",
        default: DefaultValue::Value("[]"),
        ty: Type::Strings,
        chart: Chart::Config,
        parse: kind_tokens,
        doc: "Bundled kinds a plugin file may replace (`[\"pods\"]`). A plugin declaring a bundled kind's \
              token that is not listed here is refused, naming both plugins.",
    }

    // === [log] ===
    LOG_FILTER, ENV_LOG: String = {
        key: "log.filter",
        env: "PERISCOPE_LOG",
        default: DefaultValue::Value("\"warn,periscope=info\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: log_filter,
        doc: "Which log lines are written: [`tracing` filter \
              directives](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html), \
              for example `\"warn,periscope=debug\"`.",
    }
    LOG_FORMAT, ENV_LOG_FORMAT: LogFormat = {
        key: "log.format",
        env: "PERISCOPE_LOG_FORMAT",
        default: DefaultValue::Value("\"plain\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: log_format,
        doc: "`\"plain\"` for people, `\"json\"` for log pipelines (one object per line).",
    }

    // === [auth] ===
    AUTH_MODE, ENV_AUTH_MODE: AuthMode = {
        key: "auth.mode",
        env: "PERISCOPE_AUTH_MODE",
        default: DefaultValue::Value("\"none\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: auth_mode,
        doc: "How requests are authenticated: `\"none\"` (everyone is anonymous) or `\"jwt\"` (a JSON Web Token is \
              required); see [Authentication](#authentication). With `\"none\"` the other `[auth]` keys are \
              accepted and ignored.",
    }
    AUTH_ISSUER, ENV_AUTH_ISSUER: String = {
        key: "auth.issuer",
        env: "PERISCOPE_AUTH_ISSUER",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: non_empty,
        doc: "When set, a token's `iss` claim must equal it.",
    }
    AUTH_AUDIENCE, ENV_AUTH_AUDIENCE: String = {
        key: "auth.audience",
        env: "PERISCOPE_AUTH_AUDIENCE",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: non_empty,
        doc: "When set, a token's `aud` claim must contain it.",
    }
    AUTH_ALGORITHMS, ENV_AUTH_ALGORITHMS: Vec<String> = {
        key: "auth.algorithms",
        env: "PERISCOPE_AUTH_ALGORITHMS",
        default: DefaultValue::Value("[\"RS256\"]"),
        ty: Type::Strings,
        chart: Chart::Config,
        parse: algorithms,
        doc: "Accepted signing algorithms (the variable is comma-separated, `\"RS256,ES256\"`), case-sensitive as \
              in JWT headers: `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, \
              `ES256`, `ES384`, `EdDSA`. `none` is refused: it would accept unsigned, forgeable tokens.",
    }
    AUTH_SECRET_FILE, ENV_AUTH_SECRET_FILE: PathBuf = {
        key: "auth.secret_file",
        env: "PERISCOPE_AUTH_SECRET_FILE",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: path,
        doc: "File whose contents (less one final line ending) are the HMAC secret of the `HS*` algorithms. Required by them, and a problem \
              without them (a secret never used hints at HS/RS confusion).",
    }
    AUTH_PUBLIC_KEY_FILES, ENV_AUTH_PUBLIC_KEY_FILES: Vec<PathBuf> = {
        key: "auth.public_key_files",
        env: "PERISCOPE_AUTH_PUBLIC_KEY_FILES",
        default: DefaultValue::Value("[]"),
        ty: Type::Strings,
        chart: Chart::Config,
        parse: paths,
        doc: "PEM RSA or EC public keys for the `RS*`, `PS*`, `ES*` and `EdDSA` algorithms (the variable is \
              comma-separated). These algorithms need this or `jwks_file`.",
    }
    AUTH_JWKS_FILE, ENV_AUTH_JWKS_FILE: PathBuf = {
        key: "auth.jwks_file",
        env: "PERISCOPE_AUTH_JWKS_FILE",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: path,
        doc: "A JSON Web Key Set file, instead of or besides `public_key_files`.",
    }
    AUTH_LEEWAY, ENV_AUTH_LEEWAY: Duration = {
        key: "auth.leeway",
        env: "PERISCOPE_AUTH_LEEWAY",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: leeway,
        doc: "Clock skew tolerated when checking `exp` and `nbf`. At most `\"5m\"`.",
    }
    AUTH_COOKIE, ENV_AUTH_COOKIE: String = {
        key: "auth.cookie",
        env: "PERISCOPE_AUTH_COOKIE",
        default: DefaultValue::Value("\"periscope_token\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: cookie_name,
        doc: "Cookie a token may be sent in (besides `Authorization: Bearer`); a valid cookie name: visible ASCII \
              without spaces or any of `( ) < > @ , ; : \\ \" / [ ] ? = { }`.",
    }
    AUTH_QUERY_TOKEN, ENV_AUTH_QUERY_TOKEN: bool = {
        key: "auth.query_token",
        env: "PERISCOPE_AUTH_QUERY_TOKEN",
        default: DefaultValue::Value("false"),
        ty: Type::Boolean,
        chart: Chart::Config,
        parse: |v| flag(v, "whether a token is also accepted as ?access_token= in the URL; default false"),
        doc: "Also accept the token as `?access_token=` in the URL (for clients that cannot set headers; URLs end \
              up in logs). `true` or `false`.",
    }
    AUTH_GROUPS_CLAIM, ENV_AUTH_GROUPS_CLAIM: String = {
        key: "auth.groups_claim",
        env: "PERISCOPE_AUTH_GROUPS_CLAIM",
        default: DefaultValue::Value("\"groups\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: non_empty,
        doc: "The claim that lists a user's groups.",
    }
    AUTH_ADMIN_GROUP, ENV_AUTH_ADMIN_GROUP: String = {
        key: "auth.admin_group",
        env: "PERISCOPE_AUTH_ADMIN_GROUP",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: non_empty,
        doc: "Members of this group are administrators.",
    }
    AUTH_REVOCATION_FILE, ENV_AUTH_REVOCATION_FILE: PathBuf = {
        key: "auth.revocation_file",
        env: "PERISCOPE_AUTH_REVOCATION_FILE",
        default: DefaultValue::Absent("none"),
        ty: Type::String,
        chart: Chart::Config,
        parse: path,
        doc: "Revoked subjects (`sub`), one per line; re-read when the file changes.",
    }
    AUTH_USERNAME_CLAIM, ENV_AUTH_USERNAME_CLAIM: String = {
        key: "auth.username_claim",
        env: "PERISCOPE_AUTH_USERNAME_CLAIM",
        default: DefaultValue::Value("\"sub\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: non_empty,
        doc: "The claim that names the Kubernetes user whose RBAC applies (`\"email\"`, `\"preferred_username\"`…). \
              A token without it is refused.",
    }
    AUTH_USERNAME_PREFIX, ENV_AUTH_USERNAME_PREFIX: String = {
        key: "auth.username_prefix",
        env: "PERISCOPE_AUTH_USERNAME_PREFIX",
        default: DefaultValue::Value("\"\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: string,
        doc: "Put before the username claim to make the Kubernetes user RBAC is checked for (`\"oidc:\"`), \
              like kube-apiserver's `--oidc-username-prefix`: set the same value, so a token names only users \
              your RoleBindings give to this issuer.",
    }
    AUTH_GROUPS_PREFIX, ENV_AUTH_GROUPS_PREFIX: String = {
        key: "auth.groups_prefix",
        env: "PERISCOPE_AUTH_GROUPS_PREFIX",
        default: DefaultValue::Value("\"\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: string,
        doc: "Put before every group of the groups claim (`\"oidc:\"`), like kube-apiserver's \
              `--oidc-groups-prefix`. `admin_group` is compared with the prefixed names.",
    }
    AUTH_ALLOW_SYSTEM_GROUPS, ENV_AUTH_ALLOW_SYSTEM_GROUPS: bool = {
        key: "auth.allow_system_groups",
        env: "PERISCOPE_AUTH_ALLOW_SYSTEM_GROUPS",
        default: DefaultValue::Value("false"),
        ty: Type::Boolean,
        chart: Chart::Config,
        parse: |v| flag(v, "whether tokens may carry system: users and groups; default false"),
        doc: "Accept tokens whose user or groups (after the prefixes) start with `system:`. Off, they get 401: \
              those names are Kubernetes' own (`system:masters` is cluster-admin whatever the RoleBindings \
              say), and a token carrying one would pass every access review. `true` or `false`.",
    }
    AUTH_RBAC, ENV_AUTH_RBAC: RbacMode = {
        key: "auth.rbac",
        env: "PERISCOPE_AUTH_RBAC",
        default: DefaultValue::Value("\"subjectaccessreview\""),
        ty: Type::String,
        chart: Chart::Config,
        parse: rbac_mode,
        doc: "In `jwt` mode, how each user's Kubernetes RBAC is applied to the shared watches: \
              `\"subjectaccessreview\"` asks the cluster per user, verb, resource and namespace; `\"off\"` lets \
              every authenticated user see everything the service account reads (start-up warns). See [Who sees \
              what](#who-sees-what).",
    }
    AUTH_RBAC_TTL, ENV_AUTH_RBAC_TTL: Duration = {
        key: "auth.rbac_ttl",
        env: "PERISCOPE_AUTH_RBAC_TTL",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "RBAC decisions are cached this long (default 30s)"),
        doc: "How long an RBAC decision is cached; open streams re-check every half of it. Must be more than \
              `\"0s\"`.",
    }
    AUTH_PROTECT_METRICS, ENV_AUTH_PROTECT_METRICS: bool = {
        key: "auth.protect_metrics",
        env: "PERISCOPE_AUTH_PROTECT_METRICS",
        default: DefaultValue::Value("false"),
        ty: Type::Boolean,
        chart: Chart::Config,
        parse: |v| flag(v, "whether /metrics needs a token in jwt mode; default false"),
        doc: "In `jwt` mode, require a token on `/metrics` too (it holds counts, never cluster objects).",
    }
    GRAPHQL_INIT_TIMEOUT, ENV_GRAPHQL_INIT_TIMEOUT: Duration = {
        key: "graphql.init_timeout",
        env: "PERISCOPE_GRAPHQL_INIT_TIMEOUT",
        default: DefaultValue::Value("\"3s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "clients get this long to send connection_init (default 3s)"),
        doc: "How long a `/graphqlws` client has to send `connection_init`; past it the socket closes with 4408. \
              Must be more than `\"0s\"`.",
    }
    GRAPHQL_MAX_OPERATION_DURATION, ENV_GRAPHQL_MAX_OPERATION_DURATION: Duration = {
        key: "graphql.max_operation_duration",
        env: "PERISCOPE_GRAPHQL_MAX_OPERATION_DURATION",
        default: DefaultValue::Value("\"5m\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "Each GraphQL subscription ends with `complete` after this long, and the client subscribes again. \
              `\"0s\"` disables the limit.",
    }
    GRAPHQL_RESTART_WINDOW, ENV_GRAPHQL_RESTART_WINDOW: Duration = {
        key: "graphql.restart_window",
        env: "PERISCOPE_GRAPHQL_RESTART_WINDOW",
        default: DefaultValue::Value("\"10m\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: |v| nonzero_duration(v, "a workload stays WARN this long after a pod's last restart (default 10m)"),
        doc: "`k8sWorkloadStatus`: a workload whose pod restarted (or waits in CrashLoopBackOff) within this \
              long is `WARN`, and stays so until the window passes with no restart. Longer than Kubernetes' \
              5-minute restart back-off, so a crash loop reads as one steady `WARN`. Must be more than \
              `\"0s\"`.",
    }
    GRAPHQL_PING_INTERVAL, ENV_GRAPHQL_PING_INTERVAL: Duration = {
        key: "graphql.ping_interval",
        env: "PERISCOPE_GRAPHQL_PING_INTERVAL",
        default: DefaultValue::Value("\"30s\""),
        ty: Type::Duration,
        chart: Chart::Config,
        parse: duration,
        doc: "How often the server sends a WebSocket ping on each `/graphqlws` socket, so proxies with an idle \
              timeout keep it open; a peer that has not answered by the next ping is closed (1001). \
              `\"0s\"` sends none.",
    }
}

/// The settings of `section`, in declaration order.
pub fn in_section(section: &str) -> impl Iterator<Item = &'static Meta> + '_ {
    SETTINGS.iter().copied().filter(move |meta| meta.section() == section)
}

/// The TOML sections that hold settings, in declaration order (`[[clusters]]` is not
/// one: it is a list of tables, TOML-only).
pub fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&'static str> = Vec::new();
    for meta in SETTINGS {
        if !sections.contains(&meta.section()) {
            sections.push(meta.section());
        }
    }
    sections
}

/// The setting with dotted key `key`.
pub fn find(key: &str) -> Option<&'static Meta> {
    SETTINGS.iter().copied().find(|meta| meta.key == key)
}

/// The key table of `docs/operators/configuration.md`, generated from [`SETTINGS`]
/// (a test compares the two; `PERISCOPE_BLESS=1` rewrites the docs).
pub fn docs_table() -> String {
    let mut table = String::from(
        "| Key | Variable | Default | Helm value | Meaning |\n|---|---|---|---|---|\n\
         | — | `PERISCOPE_CONFIG` | none | — (the chart mounts its ConfigMap) | Path of the TOML file (same as \
         `--config`). |\n",
    );
    for section in sections() {
        for meta in in_section(section) {
            let default = match meta.default {
                DefaultValue::Value(text) => format!("`{text}`"),
                DefaultValue::Absent(text) => text.to_string(),
            };
            let helm = match meta.chart {
                Chart::Config => format!("`config.{}`", meta.key),
                Chart::ConfigInPod(value) => format!("`config.{}` (chart default `{value}`)", meta.key),
                Chart::Env(path) => format!("`{path}` (as the variable)"),
            };
            table.push_str(&format!(
                "| `[{section}] {}` | `{}` | {default} | {helm} | {} |\n",
                meta.name(),
                meta.env,
                meta.doc
            ));
        }
        // The clusters are TOML-only; they read best after the server.
        if section == "server" {
            table.push_str(
                "| `[[clusters]]` | — (TOML only) | none: the embedded demo cluster `demo` | `clusters` (chart \
                 default: this cluster, `in_cluster = true`) | The clusters to serve; see [Clusters](#clusters). |\n",
            );
        }
    }
    table
}
