//! Unit tests for loading and validating the configuration.

use std::collections::HashMap;
use std::io::Write;

use super::*;

const DOCS: &str = include_str!("../../../docs/operators/configuration.md");

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A config file holding `text`; kept alive by the caller.
fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load(None, &env(pairs))
}

/// Loads `text` as a file with `pairs` as the environment.
fn load_text(text: &str, pairs: &[(&str, &str)]) -> (tempfile::NamedTempFile, Result<Config, ConfigError>) {
    let file = file(text);
    let result = load(Some(file.path()), &env(pairs));
    (file, result)
}

/// The problems' displayed lines, which is what operators read.
fn problems(result: Result<Config, ConfigError>) -> Vec<String> {
    result.unwrap_err().problems.iter().map(ToString::to_string).collect()
}

fn env_problem(pairs: &[(&str, &str)]) -> String {
    let lines = problems(load_env(pairs));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    lines.into_iter().next().unwrap()
}

/// The one problem of a file; `{file}` in the expectation stands for its path.
fn file_problem(text: &str) -> (String, String) {
    let (file, result) = load_text(text, &[]);
    let lines = problems(result);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    (lines[0].clone(), file.path().display().to_string())
}

#[test]
fn defaults_apply_without_file_or_env() {
    let config = load_env(&[]).unwrap();
    assert_eq!(
        config,
        Config {
            listen: "127.0.0.1:8080".parse().unwrap(),
            clusters: vec![],
            watch: WatchConfig {
                streams: Sourced {
                    value: String::new(),
                    origin: Origin::Default,
                },
                per_user_limit: 60,
                linger: Duration::from_secs(30),
                heartbeat: Duration::from_secs(15),
                write_timeout: Duration::from_secs(10),
                queue: 256,
                ring: 1024,
                max_stream_duration: Duration::from_secs(300),
                upstreams_per_user: 16,
                cold_polls_per_user: 10,
                upstreams_per_cluster: 256,
                outage_grace: Duration::from_secs(60),
                request_timeout: Duration::from_secs(30),
                silence_timeout: Duration::from_secs(90),
                list_page_size: 500,
                initial_list: InitialList::Auto,
            },
            plugins: PluginsConfig {
                dir: None,
                cache_dir: None,
                call_deadline: Duration::from_secs(1),
                memory_cap: 64 << 20,
                quarantine_for: Duration::from_secs(30),
                strict: false,
                overrides: Vec::new(),
            },
            log: LogConfig {
                filter: "warn,periscope=info".to_string(),
                format: LogFormat::Plain,
            },
            auth: AuthConfig {
                mode: AuthMode::None,
                issuer: None,
                audience: None,
                algorithms: vec!["RS256".to_string()],
                secret_file: None,
                public_key_files: vec![],
                jwks_file: None,
                leeway: Duration::from_secs(30),
                cookie: "periscope_token".to_string(),
                query_token: false,
                groups_claim: "groups".to_string(),
                admin_group: None,
                username_prefix: String::new(),
                groups_prefix: String::new(),
                allow_system_groups: false,
                revocation_file: None,
                username_claim: "sub".to_string(),
                rbac: RbacMode::SubjectAccessReview,
                rbac_ttl: Duration::from_secs(30),
                protect_metrics: false,
            },
            graphql: GraphqlConfig {
                init_timeout: Duration::from_secs(3),
                max_operation_duration: Duration::from_secs(5 * 60),
                ping_interval: Duration::from_secs(30),
                restart_window: Duration::from_secs(600),
            },
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: vec![],
            header_timeout: Duration::from_secs(10),
            max_connections: 0,
        }
    );
}

#[test]
fn graphql_timings_come_from_the_file_or_the_environment() {
    let (_file, config) = load_text(
        "[graphql]\ninit_timeout = \"500ms\"\nmax_operation_duration = \"0s\"\n",
        &[],
    );
    let config = config.unwrap();
    assert_eq!(config.graphql.init_timeout, Duration::from_millis(500));
    assert_eq!(config.graphql.max_operation_duration, Duration::ZERO);
    let config = load_env(&[(ENV_GRAPHQL_MAX_OPERATION_DURATION, "2s")]).unwrap();
    assert_eq!(config.graphql.max_operation_duration, Duration::from_secs(2));
    assert_eq!(
        env_problem(&[(ENV_GRAPHQL_INIT_TIMEOUT, "0s")]),
        "graphql.init_timeout = \"0s\" (from PERISCOPE_GRAPHQL_INIT_TIMEOUT): must be longer than 0s; clients get \
         this long to send connection_init (default 3s)"
    );
}

const FULL: &str = r#"
[server]
listen = "0.0.0.0:9090"
shutdown_grace = "20s"

[[clusters]]
name = "prod"
kubeconfig = "/etc/periscope/kubeconfig"
context = "prod-eu"

[[clusters]]
name = "dev"
context = "kind-dev"

[[clusters]]
name = "staging"
in_cluster = true

[[clusters]]
name = "sim-1"
server = "http://127.0.0.1:6443"

[[clusters]]
name = "demo"
sim = "empty"

[watch]
streams = "pods, workloads"
per_user_limit = 0
linger = "1m"
heartbeat = "5s"
queue = 512
ring = 2048
max_stream_duration = "0s"

[plugins]
dir = "/opt/periscope/plugins"
cache_dir = "/var/cache/periscope"
call_deadline = "250ms"
memory_cap_mib = 128

[log]
filter = "debug"
format = "json"
"#;

#[test]
fn a_full_file_sets_every_key() {
    let (file, result) = load_text(FULL, &[]);
    let config = result.unwrap();
    let from_file = Origin::File(file.path().to_path_buf());
    assert_eq!(config.listen, "0.0.0.0:9090".parse().unwrap());
    assert_eq!(config.shutdown_grace, Duration::from_secs(20));
    assert_eq!(
        config.clusters,
        vec![
            ClusterConfig {
                name: "prod".to_string(),
                source: ClusterSource::Kubeconfig {
                    path: Some("/etc/periscope/kubeconfig".into()),
                    context: Some("prod-eu".to_string()),
                },
            },
            ClusterConfig {
                name: "dev".to_string(),
                source: ClusterSource::Kubeconfig {
                    path: None,
                    context: Some("kind-dev".to_string()),
                },
            },
            ClusterConfig {
                name: "staging".to_string(),
                source: ClusterSource::InCluster,
            },
            ClusterConfig {
                name: "sim-1".to_string(),
                source: ClusterSource::Server("http://127.0.0.1:6443".to_string()),
            },
            ClusterConfig {
                name: "demo".to_string(),
                source: ClusterSource::Sim("empty".to_string()),
            },
        ]
    );
    assert_eq!(
        config.watch,
        WatchConfig {
            streams: Sourced {
                value: "pods, workloads".to_string(),
                origin: from_file,
            },
            per_user_limit: 0,
            linger: Duration::from_secs(60),
            heartbeat: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            queue: 512,
            ring: 2048,
            max_stream_duration: Duration::ZERO,
            upstreams_per_user: 16,
            cold_polls_per_user: 10,
            upstreams_per_cluster: 256,
            outage_grace: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            silence_timeout: Duration::from_secs(90),
            list_page_size: 500,
            initial_list: InitialList::Auto,
        }
    );
    assert_eq!(
        config.plugins,
        PluginsConfig {
            dir: Some("/opt/periscope/plugins".into()),
            cache_dir: Some("/var/cache/periscope".into()),
            call_deadline: Duration::from_millis(250),
            memory_cap: 128 << 20,
            quarantine_for: Duration::from_secs(30),
            strict: false,
            overrides: Vec::new(),
        }
    );
    assert_eq!(
        config.log,
        LogConfig {
            filter: "debug".to_string(),
            format: LogFormat::Json,
        }
    );
}

#[test]
fn env_overrides_the_file() {
    let (_file, result) = load_text(
        FULL,
        &[
            (ENV_LISTEN, "[::1]:8081"),
            (ENV_SHUTDOWN_GRACE, "1s"),
            (ENV_WATCH_STREAMS, "off"),
            (ENV_WATCH_PER_USER_LIMIT, "7"),
            (ENV_WATCH_LINGER, "0s"),
            (ENV_WATCH_HEARTBEAT, "1m"),
            (ENV_WATCH_QUEUE, "1"),
            (ENV_WATCH_RING, "3"),
            (ENV_WATCH_MAX_STREAM_DURATION, "1h"),
            (ENV_PLUGINS_DIR, "/env/plugins"),
            (ENV_PLUGINS_CACHE_DIR, "/env/cache"),
            (ENV_PLUGINS_CALL_DEADLINE, "2s"),
            (ENV_PLUGINS_MEMORY_CAP_MIB, "32"),
            (ENV_LOG, "trace"),
            (ENV_LOG_FORMAT, "plain"),
        ],
    );
    let config = result.unwrap();
    assert_eq!(config.listen, "[::1]:8081".parse().unwrap());
    assert_eq!(config.shutdown_grace, Duration::from_secs(1));
    assert_eq!(
        config.watch.streams,
        Sourced {
            value: "off".to_string(),
            origin: Origin::Env(ENV_WATCH_STREAMS),
        }
    );
    assert_eq!(config.watch.per_user_limit, 7);
    assert_eq!(config.watch.linger, Duration::ZERO);
    assert_eq!(config.watch.heartbeat, Duration::from_secs(60));
    assert_eq!(config.watch.queue, 1);
    assert_eq!(config.watch.ring, 3);
    assert_eq!(config.watch.max_stream_duration, Duration::from_secs(3600));
    assert_eq!(config.plugins.dir, Some("/env/plugins".into()));
    assert_eq!(config.plugins.cache_dir, Some("/env/cache".into()));
    assert_eq!(config.plugins.call_deadline, Duration::from_secs(2));
    assert_eq!(config.plugins.memory_cap, 32 << 20);
    assert_eq!(config.log.filter, "trace");
    assert_eq!(config.log.format, LogFormat::Plain);
    // Clusters are TOML-only and unaffected.
    assert_eq!(config.clusters.len(), 5);
}

#[test]
fn an_empty_variable_is_set_not_absent() {
    let config = load_env(&[(ENV_WATCH_STREAMS, "")]).unwrap();
    assert_eq!(config.watch.streams.origin, Origin::Env(ENV_WATCH_STREAMS));
    assert_eq!(
        env_problem(&[(ENV_PLUGINS_DIR, "")]),
        "plugins.dir = \"\" (from PERISCOPE_PLUGINS_DIR): is empty; set a path, or leave the setting out to use \
         the default"
    );
}

#[test]
fn origins_display_as_operators_know_them() {
    assert_eq!(Origin::Default.to_string(), "default");
    assert_eq!(
        Origin::File("/etc/periscope.toml".into()).to_string(),
        "/etc/periscope.toml"
    );
    assert_eq!(Origin::Env(ENV_WATCH_STREAMS).to_string(), "PERISCOPE_WATCH_STREAMS");
}

#[test]
fn a_bad_listen_address_is_a_problem() {
    assert_eq!(
        env_problem(&[(ENV_LISTEN, "localhost:8080")]),
        "server.listen = \"localhost:8080\" (from PERISCOPE_LISTEN): must be an IP address and port such as \
         \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::]:8080\" (host names are not resolved)"
    );
    let (line, path) = file_problem("[server]\nlisten = 8080\n");
    assert_eq!(
        line,
        format!("server.listen = \"8080\" (from {path}): must be a string; put the value in quotes")
    );
}

/// The issue overrides dtos.md 3.1: a malformed limit stops start-up instead of
/// falling back to 60.
#[test]
fn a_malformed_per_user_limit_stops_start_up() {
    for bad in ["-3", "abc", "1.5", "", " 5"] {
        assert_eq!(
            env_problem(&[(ENV_WATCH_PER_USER_LIMIT, bad)]),
            format!(
                "watch.per_user_limit = {bad:?} (from PERISCOPE_WATCH_PER_USER_LIMIT): must be a whole number >= 0 \
                 (0 disables the cap)"
            )
        );
    }
    assert_eq!(
        env_problem(&[(ENV_WATCH_PER_USER_LIMIT, "4294967296")]),
        "watch.per_user_limit = \"4294967296\" (from PERISCOPE_WATCH_PER_USER_LIMIT): must be a whole number >= 0 \
         (0 disables the cap); at most 4294967295"
    );
    for bad in [
        "per_user_limit = -3",
        "per_user_limit = 1.5",
        "per_user_limit = \"abc\"",
    ] {
        let (line, path) = file_problem(&format!("[watch]\n{bad}\n"));
        assert!(
            line.starts_with("watch.per_user_limit = ")
                && line.ends_with(&format!(
                    "(from {path}): must be a whole number >= 0 (0 disables the cap)"
                )),
            "{line}"
        );
    }
}

#[test]
fn per_user_limit_zero_means_unlimited() {
    assert_eq!(
        load_env(&[(ENV_WATCH_PER_USER_LIMIT, "0")])
            .unwrap()
            .watch
            .per_user_limit,
        0
    );
    let (_file, result) = load_text("[watch]\nper_user_limit = \"25\"\n", &[]);
    assert_eq!(result.unwrap().watch.per_user_limit, 25);
}

#[test]
fn queue_and_ring_need_at_least_one() {
    assert_eq!(
        env_problem(&[(ENV_WATCH_QUEUE, "0")]),
        "watch.queue = \"0\" (from PERISCOPE_WATCH_QUEUE): must be a whole number >= 1 (events buffered per \
         subscriber before it is dropped as slow; default 256)"
    );
    let (line, path) = file_problem("[watch]\nring = 0\n");
    assert_eq!(
        line,
        format!(
            "watch.ring = \"0\" (from {path}): must be a whole number >= 1 (recent events kept for Last-Event-ID \
             resume; default 1024)"
        )
    );
}

#[test]
fn heartbeat_and_call_deadline_must_not_be_zero() {
    assert_eq!(
        env_problem(&[(ENV_WATCH_HEARTBEAT, "0s")]),
        "watch.heartbeat = \"0s\" (from PERISCOPE_WATCH_HEARTBEAT): must be longer than 0s; a heartbeat keeps idle \
         streams open through proxies (default 15s)"
    );
    assert_eq!(
        env_problem(&[(ENV_PLUGINS_CALL_DEADLINE, "0ms")]),
        "plugins.call_deadline = \"0ms\" (from PERISCOPE_PLUGINS_CALL_DEADLINE): must be longer than 0s; it bounds \
         how long one plugin call may run (default 1s)"
    );
}

#[test]
fn zero_disables_max_stream_duration_and_linger() {
    let config = load_env(&[(ENV_WATCH_MAX_STREAM_DURATION, "0s"), (ENV_WATCH_LINGER, "0s")]).unwrap();
    assert_eq!(config.watch.max_stream_duration, Duration::ZERO);
    assert_eq!(config.watch.linger, Duration::ZERO);
}

/// humantime accepts long unit names ("5 minutes" is "5m"); what it rejects is a
/// number without a unit, words for numbers, and non-strings in the file.
#[test]
fn durations_are_humantime_strings() {
    for same in ["5m", "5min", "5 minutes", "300s", "4m 60s"] {
        let config = load_env(&[(ENV_WATCH_LINGER, same)]).unwrap();
        assert_eq!(config.watch.linger, Duration::from_secs(300), "{same}");
    }
    assert_eq!(
        env_problem(&[(ENV_WATCH_LINGER, "30")]),
        "watch.linger = \"30\" (from PERISCOPE_WATCH_LINGER): must be a duration such as \"30s\", \"1m30s\" or \
         \"500ms\" (time unit needed, for example 30sec or 30ms)"
    );
    assert_eq!(
        env_problem(&[(ENV_SHUTDOWN_GRACE, "five minutes")]),
        "server.shutdown_grace = \"five minutes\" (from PERISCOPE_SHUTDOWN_GRACE): must be a duration such as \
         \"30s\", \"1m30s\" or \"500ms\" (expected number at 0)"
    );
    let (line, path) = file_problem("[watch]\nmax_stream_duration = 300\n");
    assert_eq!(
        line,
        format!(
            "watch.max_stream_duration = \"300\" (from {path}): must be a duration with a unit, in quotes, such as \
             \"30s\", \"1m30s\" or \"500ms\""
        )
    );
}

#[test]
fn memory_cap_is_given_in_mib() {
    assert_eq!(
        env_problem(&[(ENV_PLUGINS_MEMORY_CAP_MIB, "0")]),
        "plugins.memory_cap_mib = \"0\" (from PERISCOPE_PLUGINS_MEMORY_CAP_MIB): must be a whole number of MiB >= 1 \
         (default 64)"
    );
    assert_eq!(
        env_problem(&[(ENV_PLUGINS_MEMORY_CAP_MIB, "5000")]),
        "plugins.memory_cap_mib = \"5000\" (from PERISCOPE_PLUGINS_MEMORY_CAP_MIB): must be a whole number of MiB \
         >= 1 (default 64); at most 4096"
    );
}

#[test]
fn log_settings_are_checked() {
    assert_eq!(
        env_problem(&[(ENV_LOG_FORMAT, "JSON-lines")]),
        "log.format = \"JSON-lines\" (from PERISCOPE_LOG_FORMAT): must be \"plain\" or \"json\""
    );
    let line = env_problem(&[(ENV_LOG, "periscope=loud")]);
    assert!(
        line.starts_with("log.filter = \"periscope=loud\" (from PERISCOPE_LOG): is not a valid log filter ("),
        "{line}"
    );
    assert!(
        line.ends_with("); write comma-separated directives such as \"warn,periscope=debug\""),
        "{line}"
    );
}

#[test]
fn duplicate_cluster_names_are_a_problem() {
    let (line, path) = file_problem(
        "[[clusters]]\nname = \"prod\"\nin_cluster = true\n\
         [[clusters]]\nname = \"dev\"\nsim = \"demo\"\n\
         [[clusters]]\nname = \"prod\"\ncontext = \"prod\"\n",
    );
    assert_eq!(
        line,
        format!(
            "clusters[2].name = \"prod\" (from {path}): is already the name of clusters[0]; cluster names must be \
             unique"
        )
    );
}

#[test]
fn cluster_names_are_dns_labels() {
    for bad in ["Prod", "prod_eu", "-prod", "prod-", "", "a.b"] {
        let (line, path) = file_problem(&format!("[[clusters]]\nname = {bad:?}\nin_cluster = true\n"));
        assert_eq!(
            line,
            format!(
                "clusters[0].name = {bad:?} (from {path}): must be 1 to 63 lowercase letters, digits or '-', \
                 starting and ending with a letter or digit, such as \"prod-eu\""
            )
        );
    }
    // An invalid name still identifies the cluster in its other problems.
    let (_file, result) = load_text("[[clusters]]\nname = \"Prod\"\n", &[]);
    let lines = problems(result);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[1].starts_with("clusters[0] = \"Prod\" ("), "{}", lines[1]);
    let (line, path) = file_problem("[[clusters]]\nin_cluster = true\n");
    assert_eq!(
        line,
        format!(
            "clusters[0].name = \"\" (from {path}): is missing; give every cluster a unique name such as \"prod\" \
             (it appears in URLs)"
        )
    );
}

#[test]
fn a_cluster_with_two_sources_names_both() {
    let (line, path) =
        file_problem("[[clusters]]\nname = \"prod\"\ncontext = \"prod\"\nserver = \"https://k8s.example.com\"\n");
    assert_eq!(
        line,
        format!(
            "clusters[0] = \"prod\" (from {path}): sets more than one source (context, server); keep exactly one of \
             kubeconfig and/or context, in_cluster = true, server = \"https://…\" or sim = \"demo\""
        )
    );
    let (line, _) = file_problem(
        "[[clusters]]\nname = \"x\"\nkubeconfig = \"/k\"\ncontext = \"c\"\nin_cluster = true\nsim = \"demo\"\n",
    );
    assert!(
        line.contains("sets more than one source (kubeconfig/context, in_cluster, sim)"),
        "{line}"
    );
}

#[test]
fn a_cluster_without_a_source_says_which_to_set() {
    let (line, path) = file_problem("[[clusters]]\nname = \"prod\"\n");
    let expected = format!(
        "clusters[0] = \"prod\" (from {path}): has no source; set one of kubeconfig and/or context, \
         in_cluster = true, server = \"https://…\" or sim = \"demo\""
    );
    assert_eq!(line, expected);
    // `in_cluster = false` chooses nothing.
    let (line, _) = file_problem("[[clusters]]\nname = \"prod\"\nin_cluster = false\n");
    assert!(line.contains("has no source"), "{line}");
    // ...but with another source it is harmless.
    let (_file, result) = load_text("[[clusters]]\nname = \"a\"\nin_cluster = false\nsim = \"demo\"\n", &[]);
    assert_eq!(
        result.unwrap().clusters[0].source,
        ClusterSource::Sim("demo".to_string())
    );
}

#[test]
fn an_unknown_scenario_lists_the_known_ones() {
    let (line, path) = file_problem("[[clusters]]\nname = \"a\"\nsim = \"busy\"\n");
    assert_eq!(
        line,
        format!("clusters[0].sim = \"busy\" (from {path}): is not a simulated scenario; use \"demo\" or \"empty\"")
    );
}

#[test]
fn a_server_must_be_an_http_url() {
    for bad in [
        "127.0.0.1:6443",
        "localhost:6443",
        "ftp://example.com",
        "https://",
        "http://a b",
        "",
    ] {
        let (line, path) = file_problem(&format!("[[clusters]]\nname = \"a\"\nserver = {bad:?}\n"));
        assert_eq!(
            line,
            format!(
                "clusters[0].server = {bad:?} (from {path}): must be an http:// or https:// URL such as \
                 \"http://127.0.0.1:6443\"; for a kubeconfig use kubeconfig = \"…\" instead"
            )
        );
    }
    for good in ["https://k8s.example.com", "http://[::1]:6443/prefix"] {
        let (_file, result) = load_text(&format!("[[clusters]]\nname = \"a\"\nserver = {good:?}\n"), &[]);
        assert_eq!(
            result.unwrap().clusters[0].source,
            ClusterSource::Server(good.to_string())
        );
    }
}

#[test]
fn an_invalid_source_value_is_reported_once() {
    let (line, path) = file_problem("[[clusters]]\nname = \"a\"\nin_cluster = \"yes\"\n");
    assert_eq!(
        line,
        format!("clusters[0].in_cluster = \"yes\" (from {path}): must be true or false (without quotes)")
    );
}

#[test]
fn unknown_keys_are_problems_with_suggestions() {
    let (line, path) = file_problem("[watch]\nstream = \"pods\"\n");
    assert_eq!(
        line,
        format!(
            "watch.stream = \"pods\" (from {path}): unknown key; did you mean streams? ([watch] accepts streams, \
             per_user_limit, linger, heartbeat, write_timeout, queue, ring, max_stream_duration, upstreams_per_user, cold_polls_per_user, upstreams_per_cluster, outage_grace, request_timeout, silence_timeout, list_page_size, initial_list)"
        )
    );
    let (line, path) = file_problem("[[clusters]]\nname = \"a\"\nsim = \"demo\"\nkube_config = \"/k\"\n");
    assert_eq!(
        line,
        format!(
            "clusters[0].kube_config = \"/k\" (from {path}): unknown key; did you mean kubeconfig? (a cluster \
             accepts name, kubeconfig, context, in_cluster, server, sim)"
        )
    );
    let (line, path) = file_problem("[wach]\nqueue = 1\n");
    assert_eq!(
        line,
        format!(
            "wach = \"{{...}}\" (from {path}): unknown section; did you mean watch? (the sections are [server], \
             [[clusters]], [watch], [plugins], [log], [auth] and [graphql])"
        )
    );
    let (line, path) = file_problem("listen = \"0.0.0.0:8080\"\n");
    assert_eq!(
        line,
        format!("listen = \"0.0.0.0:8080\" (from {path}): unknown section; `listen` belongs under [server]")
    );
}

#[test]
fn misshapen_sections_are_problems() {
    let (line, path) = file_problem("watch = 5\n");
    assert_eq!(
        line,
        format!("watch = \"5\" (from {path}): must be a table; put its settings under a [watch] header")
    );
    let (line, path) = file_problem("[clusters]\nname = \"a\"\n");
    assert_eq!(
        line,
        format!(
            "clusters = \"{{...}}\" (from {path}): must be an array of tables; write one [[clusters]] section per \
             cluster"
        )
    );
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let (line, path) = file_problem("[watch]\nqueue = 5\nstreams = pods\n");
    assert_eq!(
        line,
        format!("{path}: not valid TOML at line 3, column 11: string values must be quoted, expected literal string")
    );
    let (line, path) = file_problem("[watch]\nqueue = 5\nqueue = 6\n");
    assert_eq!(
        line,
        format!("{path}: not valid TOML at line 3, column 1: duplicate key")
    );
}

#[test]
fn an_unreadable_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("periscope.toml");
    let lines = problems(load(Some(&missing), &env(&[])));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("{}: cannot read the file (", missing.display())),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("); check the path given with --config or PERISCOPE_CONFIG"),
        "{}",
        lines[0]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let (file, result) = load_text(
        "[watch]\nqueue = 0\nheartbeat = \"0s\"\nbogus = 1\n\
         [[clusters]]\nname = \"a\"\n\
         [[clusters]]\nname = \"a\"\nsim = \"demo\"\nserver = \"http://x\"\n",
        &[
            (ENV_WATCH_PER_USER_LIMIT, "-3"),
            (ENV_LISTEN, "nope"),
            (ENV_LOG_FORMAT, "xml"),
        ],
    );
    let path = file.path().display();
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid configuration (9 problems)
  - watch.bogus = \"1\" (from {path}): unknown key; [watch] accepts streams, per_user_limit, linger, heartbeat, write_timeout, queue, ring, max_stream_duration, upstreams_per_user, cold_polls_per_user, upstreams_per_cluster, outage_grace, request_timeout, silence_timeout, list_page_size, initial_list
  - server.listen = \"nope\" (from PERISCOPE_LISTEN): must be an IP address and port such as \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::]:8080\" (host names are not resolved)
  - clusters[0] = \"a\" (from {path}): has no source; set one of kubeconfig and/or context, in_cluster = true, server = \"https://…\" or sim = \"demo\"
  - clusters[1] = \"a\" (from {path}): sets more than one source (server, sim); keep exactly one of kubeconfig and/or context, in_cluster = true, server = \"https://…\" or sim = \"demo\"
  - clusters[1].name = \"a\" (from {path}): is already the name of clusters[0]; cluster names must be unique
  - watch.per_user_limit = \"-3\" (from PERISCOPE_WATCH_PER_USER_LIMIT): must be a whole number >= 0 (0 disables the cap)
  - watch.heartbeat = \"0s\" (from {path}): must be longer than 0s; a heartbeat keeps idle streams open through proxies (default 15s)
  - watch.queue = \"0\" (from {path}): must be a whole number >= 1 (events buffered per subscriber before it is dropped as slow; default 256)
  - log.format = \"xml\" (from PERISCOPE_LOG_FORMAT): must be \"plain\" or \"json\""
        )
    );
    let first = &error.problems[5];
    assert_eq!(first.key, "watch.per_user_limit");
    assert_eq!(first.value, "-3");
    assert_eq!(first.origin, Origin::Env(ENV_WATCH_PER_USER_LIMIT));
}

#[test]
fn a_broken_file_still_reports_env_problems() {
    let (file, result) = load_text("[watch\n", &[(ENV_WATCH_QUEUE, "x")]);
    let path = file.path().display();
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "invalid configuration (2 problems)
  - {path}: not valid TOML at line 1, column 7: unclosed table, expected `]`
  - watch.queue = \"x\" (from PERISCOPE_WATCH_QUEUE): must be a whole number >= 1 (events buffered per subscriber before it is dropped as slow; default 256)"
        )
    );
}

#[test]
fn one_problem_is_singular() {
    let error = load_env(&[(ENV_WATCH_RING, "-1")]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid configuration (1 problem)\n  - watch.ring = \"-1\"")
    );
}

#[test]
fn unknown_variables_get_the_closest_name() {
    let vars = [
        "PERISCOPE_WATCH_STREAM",
        "PERISCOPE_WATCH_STREAMS",
        "PERISCOPE_LOG_FORMT",
        "PERISCOPE_XYZZY_PLUGH",
        "PERISCOPE_BLESS",
        "HOME",
    ];
    assert_eq!(
        unknown_env_warnings(vars.iter().map(ToString::to_string)),
        vec![
            "unknown variable PERISCOPE_LOG_FORMT; did you mean PERISCOPE_LOG_FORMAT?".to_string(),
            "unknown variable PERISCOPE_WATCH_STREAM; did you mean PERISCOPE_WATCH_STREAMS?".to_string(),
            "unknown variable PERISCOPE_XYZZY_PLUGH; it is ignored (docs/operators/configuration.md lists every \
             variable)"
                .to_string(),
        ]
    );
    assert!(unknown_env_warnings(ALL.iter().map(ToString::to_string)).is_empty());
}

#[test]
fn the_process_env_source_reads_std_env() {
    // PATH is set in any test environment; a name nobody sets is absent.
    assert_eq!(ProcessEnv.get("PATH"), std::env::var("PATH").ok());
    assert_eq!(ProcessEnv.get("PERISCOPE_SURELY_UNSET_IN_TESTS"), None);
    assert!(env_vars().all(|name| name.starts_with("PERISCOPE_")));
}

#[test]
fn the_docs_list_every_variable() {
    for var in ALL {
        assert!(
            DOCS.contains(&format!("`{var}`")),
            "{var} is missing from docs/operators/configuration.md"
        );
    }
}

/// The key table in the docs is [`settings::docs_table`]; with `PERISCOPE_BLESS=1` a
/// mismatch rewrites the docs instead of failing.
#[test]
fn the_docs_table_follows_the_settings() {
    let expected = settings::docs_table();
    let start = DOCS.find("| Key | Variable |").expect("the docs have the key table");
    let end = start + DOCS[start..].find("\n\n").expect("a blank line ends the table") + 1;
    let actual = &DOCS[start..end];
    if actual == expected {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operators/configuration.md");
    if std::env::var_os("PERISCOPE_BLESS").is_some() {
        let text = format!("{}{expected}{}", &DOCS[..start], &DOCS[end..]);
        std::fs::write(&path, text).unwrap();
        return;
    }
    let differ: Vec<String> = expected
        .lines()
        .zip(actual.lines().chain(std::iter::repeat("")))
        .filter(|(want, got)| want != got)
        .map(|(want, got)| format!("-  {got}\n+  {want}"))
        .collect();
    panic!(
        "the key table of docs/operators/configuration.md is not the settings' table:\n{}\n\
         If the settings are right, run: PERISCOPE_BLESS=1 cargo test -p periscope --lib config",
        differ.join("\n")
    );
}

#[test]
fn every_default_parses_and_matches_its_type() {
    for meta in SETTINGS {
        let Some(value) = meta.default_toml() else {
            continue;
        };
        let fits = match meta.ty {
            settings::Type::String | settings::Type::Duration => value.is_str(),
            settings::Type::Integer { min, max } => value
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .is_some_and(|n| n >= min && max.is_none_or(|max| n <= max)),
            settings::Type::Boolean => value.is_bool(),
            settings::Type::Strings => value.as_array().is_some_and(|items| items.iter().all(|i| i.is_str())),
        };
        assert!(fits, "the default of {} does not fit its type {:?}", meta.key, meta.ty);
    }
    // The typed defaults are what a config without file or variables holds.
    let config = load_env(&[]).unwrap();
    assert_eq!(config.watch.queue, settings::WATCH_QUEUE.default());
    assert_eq!(config.plugins.memory_cap, settings::PLUGINS_MEMORY_CAP_MIB.default());
    assert_eq!(settings::PLUGINS_DIR.default_value(), None);
}

#[test]
fn every_variable_is_named_after_its_key() {
    for meta in SETTINGS {
        let section = meta.section().to_uppercase();
        let name = meta.name().to_uppercase();
        // `[server]` keys and `[log] filter` drop the section or the key, as operators
        // know them from other services (PERISCOPE_LISTEN, PERISCOPE_LOG).
        let allowed = [
            format!("PERISCOPE_{section}_{name}"),
            format!("PERISCOPE_{name}"),
            format!("PERISCOPE_{section}"),
        ];
        assert!(allowed.contains(&meta.env.to_string()), "{} for {}", meta.env, meta.key);
    }
}

#[test]
fn the_docs_example_is_valid() {
    let start = DOCS.find("```toml\n").expect("the docs have a TOML example") + "```toml\n".len();
    let end = start + DOCS[start..].find("```").unwrap();
    let (_file, result) = load_text(&DOCS[start..end], &[]);
    let config = result.unwrap();
    assert_eq!(config.clusters.len(), 2);
}

// === [auth] ===

const FULL_AUTH: &str = r#"
[auth]
mode = "jwt"
issuer = "https://login.example.com/"
audience = "periscope"
algorithms = ["HS256", "RS256", "EdDSA"]
secret_file = "/etc/periscope/hmac.secret"
public_key_files = ["/etc/periscope/a.pem", "/etc/periscope/b.pem"]
jwks_file = "/etc/periscope/jwks.json"
leeway = "1m"
cookie = "__Host-periscope"
query_token = true
groups_claim = "roles"
admin_group = "periscope-admins"
username_prefix = "oidc:"
groups_prefix = "oidc:"
allow_system_groups = true
revocation_file = "/var/lib/periscope/revoked"
username_claim = "email"
rbac = "off"
rbac_ttl = "10s"
protect_metrics = true
"#;

#[test]
fn a_full_auth_section_sets_every_key() {
    let (_file, result) = load_text(FULL_AUTH, &[]);
    assert_eq!(
        result.unwrap().auth,
        AuthConfig {
            mode: AuthMode::Jwt,
            issuer: Some("https://login.example.com/".to_string()),
            audience: Some("periscope".to_string()),
            algorithms: vec!["HS256".to_string(), "RS256".to_string(), "EdDSA".to_string()],
            secret_file: Some("/etc/periscope/hmac.secret".into()),
            public_key_files: vec!["/etc/periscope/a.pem".into(), "/etc/periscope/b.pem".into()],
            jwks_file: Some("/etc/periscope/jwks.json".into()),
            leeway: Duration::from_secs(60),
            cookie: "__Host-periscope".to_string(),
            query_token: true,
            groups_claim: "roles".to_string(),
            admin_group: Some("periscope-admins".to_string()),
            username_prefix: "oidc:".to_string(),
            groups_prefix: "oidc:".to_string(),
            allow_system_groups: true,
            revocation_file: Some("/var/lib/periscope/revoked".into()),
            username_claim: "email".to_string(),
            rbac: RbacMode::Off,
            rbac_ttl: Duration::from_secs(10),
            protect_metrics: true,
        }
    );
}

#[test]
fn env_overrides_the_auth_section() {
    let (_file, result) = load_text(
        FULL_AUTH,
        &[
            (ENV_AUTH_MODE, "none"),
            (ENV_AUTH_ISSUER, "https://other.example.com/"),
            (ENV_AUTH_AUDIENCE, "api"),
            (ENV_AUTH_ALGORITHMS, "ES256, PS512,RS384,"),
            (ENV_AUTH_SECRET_FILE, "/env/secret"),
            (ENV_AUTH_PUBLIC_KEY_FILES, "/env/a.pem, /env/b.pem"),
            (ENV_AUTH_JWKS_FILE, "/env/jwks.json"),
            (ENV_AUTH_LEEWAY, "0s"),
            (ENV_AUTH_COOKIE, "token"),
            (ENV_AUTH_QUERY_TOKEN, "false"),
            (ENV_AUTH_GROUPS_CLAIM, "teams"),
            (ENV_AUTH_ADMIN_GROUP, "ops"),
            (ENV_AUTH_USERNAME_PREFIX, "u:"),
            (ENV_AUTH_GROUPS_PREFIX, ""),
            (ENV_AUTH_ALLOW_SYSTEM_GROUPS, "false"),
            (ENV_AUTH_REVOCATION_FILE, "/env/revoked"),
            (ENV_AUTH_USERNAME_CLAIM, "preferred_username"),
            (ENV_AUTH_RBAC, "subjectaccessreview"),
            (ENV_AUTH_RBAC_TTL, "5s"),
            (ENV_AUTH_PROTECT_METRICS, "false"),
        ],
    );
    assert_eq!(
        result.unwrap().auth,
        AuthConfig {
            mode: AuthMode::None,
            issuer: Some("https://other.example.com/".to_string()),
            audience: Some("api".to_string()),
            algorithms: vec!["ES256".to_string(), "PS512".to_string(), "RS384".to_string()],
            secret_file: Some("/env/secret".into()),
            public_key_files: vec!["/env/a.pem".into(), "/env/b.pem".into()],
            jwks_file: Some("/env/jwks.json".into()),
            leeway: Duration::ZERO,
            cookie: "token".to_string(),
            query_token: false,
            groups_claim: "teams".to_string(),
            admin_group: Some("ops".to_string()),
            username_prefix: "u:".to_string(),
            groups_prefix: String::new(),
            allow_system_groups: false,
            revocation_file: Some("/env/revoked".into()),
            username_claim: "preferred_username".to_string(),
            rbac: RbacMode::SubjectAccessReview,
            rbac_ttl: Duration::from_secs(5),
            protect_metrics: false,
        }
    );
    let config = load_env(&[
        (ENV_AUTH_MODE, "jwt"),
        (ENV_AUTH_ALGORITHMS, "HS512"),
        (ENV_AUTH_SECRET_FILE, "/run/secrets/hmac"),
        (ENV_AUTH_QUERY_TOKEN, "true"),
    ])
    .unwrap();
    assert_eq!(config.auth.mode, AuthMode::Jwt);
    assert_eq!(config.auth.algorithms, vec!["HS512".to_string()]);
    assert!(config.auth.query_token);
}

/// With mode "none" nothing is verified, so key settings that would not fit are
/// accepted and ignored.
#[test]
fn mode_none_ignores_the_key_settings() {
    let config = load_env(&[(ENV_AUTH_ALGORITHMS, "HS256"), (ENV_AUTH_JWKS_FILE, "/j.json")]).unwrap();
    assert_eq!(config.auth.mode, AuthMode::None);
    let (_file, result) = load_text("[auth]\nmode = \"none\"\nsecret_file = \"/s\"\n", &[]);
    assert_eq!(result.unwrap().auth.secret_file, Some("/s".into()));
}

#[test]
fn auth_mode_is_none_or_jwt() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_MODE, "oidc")]),
        "auth.mode = \"oidc\" (from PERISCOPE_AUTH_MODE): must be \"none\" (no authentication) or \"jwt\" (JSON Web \
         Tokens)"
    );
}

#[test]
fn the_none_algorithm_is_refused() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_ALGORITHMS, "RS256,none")]),
        "auth.algorithms = \"RS256,none\" (from PERISCOPE_AUTH_ALGORITHMS): \"none\" is refused: a token with alg \
         \"none\" carries no signature, so anyone could forge one; list signing algorithms such as \"RS256\" or \
         \"HS256\""
    );
    let (line, path) = file_problem("[auth]\nalgorithms = [\"none\"]\n");
    assert!(
        line.starts_with(&format!(
            "auth.algorithms = \"none\" (from {path}): \"none\" is refused: "
        )),
        "{line}"
    );
}

#[test]
fn an_unknown_algorithm_gets_the_closest_one() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_ALGORITHMS, "RS257")]),
        "auth.algorithms = \"RS257\" (from PERISCOPE_AUTH_ALGORITHMS): \"RS257\" is not a JWT algorithm; did you \
         mean \"RS256\"? (use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
    );
    let (line, path) = file_problem("[auth]\nalgorithms = [\"RS256\", \"rs512\"]\n");
    assert_eq!(
        line,
        format!(
            "auth.algorithms = \"RS256, rs512\" (from {path}): \"rs512\" is not a JWT algorithm; names are \
             case-sensitive, as in JWT headers: write \"RS512\""
        )
    );
    assert_eq!(
        env_problem(&[(ENV_AUTH_ALGORITHMS, "XYZZY")]),
        "auth.algorithms = \"XYZZY\" (from PERISCOPE_AUTH_ALGORITHMS): \"XYZZY\" is not a JWT algorithm; use HS256, \
         HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
    );
    assert_eq!(
        env_problem(&[(ENV_AUTH_ALGORITHMS, " , ")]),
        "auth.algorithms = \" , \" (from PERISCOPE_AUTH_ALGORITHMS): must name at least one signing algorithm, such \
         as \"RS256\" (the default)"
    );
    let (line, path) = file_problem("[auth]\nalgorithms = \"RS256\"\npublic_key_files = [1]\n");
    assert_eq!(
        line,
        format!(
            "auth.public_key_files = \"1\" (from {path}): must be a list of strings such as [\"a\", \"b\"] (a \
             variable holds \"a,b\")"
        )
    );
}

#[test]
fn jwt_without_keys_says_which_to_set() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_MODE, "jwt")]),
        "auth.mode = \"jwt\" (from PERISCOPE_AUTH_MODE): needs a key to verify tokens; set secret_file \
         (PERISCOPE_AUTH_SECRET_FILE) for HS256/HS384/HS512, or public_key_files (PERISCOPE_AUTH_PUBLIC_KEY_FILES) \
         or jwks_file (PERISCOPE_AUTH_JWKS_FILE) for the RS*, PS*, ES* and EdDSA algorithms"
    );
    // An empty list names no key.
    let line = env_problem(&[(ENV_AUTH_MODE, "jwt"), (ENV_AUTH_PUBLIC_KEY_FILES, "")]);
    assert!(
        line.starts_with("auth.mode = \"jwt\" (from PERISCOPE_AUTH_MODE): needs a key to verify tokens; "),
        "{line}"
    );
    let (line, _) = file_problem("[auth]\nmode = \"jwt\"\npublic_key_files = []\n");
    assert!(line.contains("needs a key to verify tokens"), "{line}");
}

#[test]
fn an_hs_algorithm_needs_secret_file() {
    let (line, path) =
        file_problem("[auth]\nmode = \"jwt\"\nalgorithms = [\"HS256\", \"RS256\"]\njwks_file = \"/j.json\"\n");
    assert_eq!(
        line,
        format!(
            "auth.algorithms = \"HS256, RS256\" (from {path}): HS256 needs secret_file (PERISCOPE_AUTH_SECRET_FILE), \
             the file holding the HMAC secret; set it, or remove the HS algorithms"
        )
    );
}

#[test]
fn a_public_key_algorithm_needs_public_keys_or_jwks() {
    assert_eq!(
        env_problem(&[
            (ENV_AUTH_MODE, "jwt"),
            (ENV_AUTH_ALGORITHMS, "HS256,RS256,ES384"),
            (ENV_AUTH_SECRET_FILE, "/s"),
        ]),
        "auth.algorithms = \"HS256,RS256,ES384\" (from PERISCOPE_AUTH_ALGORITHMS): RS256, ES384 need \
         public_key_files (PERISCOPE_AUTH_PUBLIC_KEY_FILES) or jwks_file (PERISCOPE_AUTH_JWKS_FILE) to verify \
         signatures; set one, or use HS256 with secret_file"
    );
}

/// The classic HS/RS confusion: a secret, and the default RS256.
#[test]
fn a_secret_without_an_hs_algorithm_is_a_problem() {
    let (file, result) = load_text("[auth]\nmode = \"jwt\"\nsecret_file = \"/etc/periscope/secret\"\n", &[]);
    let path = file.path().display();
    assert_eq!(
        problems(result),
        vec![
            format!(
                "auth.algorithms = \"RS256\" (from default): RS256 needs public_key_files \
                 (PERISCOPE_AUTH_PUBLIC_KEY_FILES) or jwks_file (PERISCOPE_AUTH_JWKS_FILE) to verify signatures; set \
                 one, or use HS256 with secret_file"
            ),
            format!(
                "auth.secret_file = \"/etc/periscope/secret\" (from {path}): is never used: algorithms (RS256) has no \
                 HS algorithm; an HMAC secret next to public-key algorithms hints at HS/RS confusion. Add HS256 to \
                 algorithms if tokens are signed with this secret, or remove secret_file"
            ),
        ]
    );
    let line = env_problem(&[
        (ENV_AUTH_MODE, "jwt"),
        (ENV_AUTH_SECRET_FILE, "/s"),
        (ENV_AUTH_PUBLIC_KEY_FILES, "/k.pem"),
    ]);
    assert!(
        line.starts_with("auth.secret_file = \"/s\" (from PERISCOPE_AUTH_SECRET_FILE): is never used: "),
        "{line}"
    );
}

/// An invalid key setting is reported as itself, not again as missing.
#[test]
fn an_invalid_key_path_is_reported_once() {
    assert_eq!(
        env_problem(&[
            (ENV_AUTH_MODE, "jwt"),
            (ENV_AUTH_ALGORITHMS, "HS256"),
            (ENV_AUTH_SECRET_FILE, ""),
        ]),
        "auth.secret_file = \"\" (from PERISCOPE_AUTH_SECRET_FILE): is empty; set a path, or leave the setting out \
         to use the default"
    );
    let (line, path) = file_problem("[auth]\nmode = \"jwt\"\npublic_key_files = [\"/a.pem\", \"\"]\n");
    assert_eq!(
        line,
        format!("auth.public_key_files = \"/a.pem, \" (from {path}): has an empty path; remove it, or set a path")
    );
}

#[test]
fn leeway_is_at_most_five_minutes() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_LEEWAY, "10m")]),
        "auth.leeway = \"10m\" (from PERISCOPE_AUTH_LEEWAY): must be at most 5m; leeway only absorbs clock skew \
         between the token issuer and periscope (default 30s)"
    );
    assert_eq!(
        load_env(&[(ENV_AUTH_LEEWAY, "5m")]).unwrap().auth.leeway,
        Duration::from_secs(300)
    );
}

#[test]
fn the_cookie_must_be_a_cookie_name() {
    for bad in ["my cookie", "", "a;b", "tök"] {
        assert_eq!(
            env_problem(&[(ENV_AUTH_COOKIE, bad)]),
            format!(
                "auth.cookie = {bad:?} (from PERISCOPE_AUTH_COOKIE): must be a cookie name: letters, digits and \
                 !#$%&'*+-.^_`|~, without spaces or ()<>@,;:\\\"/[]?={{}} (default \"periscope_token\")"
            )
        );
    }
}

#[test]
fn query_token_is_true_or_false() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_QUERY_TOKEN, "yes")]),
        "auth.query_token = \"yes\" (from PERISCOPE_AUTH_QUERY_TOKEN): must be true or false (whether a token is \
         also accepted as ?access_token= in the URL; default false)"
    );
    let (_file, result) = load_text("[auth]\nquery_token = true\n", &[]);
    assert!(result.unwrap().auth.query_token);
}

#[test]
fn empty_auth_strings_are_problems() {
    assert_eq!(
        env_problem(&[(ENV_AUTH_GROUPS_CLAIM, "")]),
        "auth.groups_claim = \"\" (from PERISCOPE_AUTH_GROUPS_CLAIM): is empty; set a value, or leave the key out"
    );
}

/// Every ```toml block of the Authentication section loads.
#[test]
fn the_docs_auth_examples_are_valid() {
    let section = &DOCS[DOCS
        .find("## Authentication")
        .expect("the docs have an Authentication section")..];
    let mut modes = Vec::new();
    for block in section.split("```toml\n").skip(1) {
        let text = &block[..block.find("```").unwrap()];
        let (_file, result) = load_text(text, &[]);
        let config = result.unwrap_or_else(|e| panic!("{e}\n{text}"));
        modes.push(config.auth.algorithms);
    }
    assert_eq!(modes, vec![vec!["HS256".to_string()], vec!["RS256".to_string()]]);
}
