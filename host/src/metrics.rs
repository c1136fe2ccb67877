//! Prometheus metrics (`GET /metrics`, OpenMetrics text) with `prometheus-client`.
//!
//! | metric | labels |
//! |---|---|
//! | `periscope_streams_active` | transport, kind |
//! | `periscope_upstream_watches` | cluster, kind |
//! | `periscope_events_delivered_total` | transport, kind |
//! | `periscope_relists_total` | cluster, kind |
//! | `periscope_backpressure_closes_total` | transport, kind |
//! | `periscope_rate_limited_total` | transport |
//! | `periscope_plugin_calls_total`, `periscope_plugin_faults_total` | kind |
//! | `periscope_plugin_call_duration_seconds` (histogram) | kind |
//! | `periscope_plugin_quarantined` (1 while quarantined, else 0) | kind |
//! | `periscope_plugin_load_failures`: plugin files that failed to load | (none) |
//! | `periscope_graphql_sockets` | (none): open `/graphqlws` sockets |
//! | `periscope_graphql_closes_total` | code: sockets the server closed, by close code |
//! | `periscope_connections_open` | (none): client connections holding a slot |
//! | `periscope_connections_refused_total` | reason: `busy` (503 at `server.max_connections`), `full` (closed unread) |
//! | `periscope_connection_timeouts_total` | phase: `head` (no whole request head in time), `write` (no byte accepted for `watch.write_timeout`) |
//! | `periscope_build_info` | version, commit |

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportKind {
    transport: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterKind {
    cluster: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: String,
    commit: String,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    streams_active: Family<TransportKind, Gauge>,
    upstream_watches: Family<ClusterKind, Gauge>,
    events_delivered: Family<TransportKind, Counter>,
    relists: Family<ClusterKind, Counter>,
    backpressure: Family<TransportKind, Counter>,
    rate_limited: Family<Transport, Counter>,
    plugin_calls: Family<Kind, Counter>,
    plugin_faults: Family<Kind, Counter>,
    plugin_latency: Family<Kind, Histogram>,
    plugin_quarantined: Family<Kind, Gauge>,
    plugin_load_failures: Gauge,
    objects_left_out: Family<ClusterKind, Counter>,
    mapping_failures: Family<ClusterKind, Counter>,
    rbac_denied: Family<ClusterKind, Counter>,
    upstreams_refused: Family<Scope, Counter>,
    upstream_outages: Family<ClusterKind, Gauge>,
    graphql_sockets: Gauge,
    graphql_closes: Family<Code, Counter>,
    runtime_tasks: Gauge,
    connections_open: Gauge,
    connections_refused: Family<Reason, Counter>,
    connection_timeouts: Family<Phase, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Phase {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Scope {
    scope: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("periscope");
        let streams_active = Family::<TransportKind, Gauge>::default();
        registry.register("streams_active", "Open client streams", streams_active.clone());
        let upstream_watches = Family::<ClusterKind, Gauge>::default();
        registry.register(
            "upstream_watches",
            "Running upstream list-then-watch loops",
            upstream_watches.clone(),
        );
        let events_delivered = Family::<TransportKind, Counter>::default();
        registry.register(
            "events_delivered",
            "Frames written to clients",
            events_delivered.clone(),
        );
        let relists = Family::<ClusterKind, Counter>::default();
        registry.register("relists", "Relists after 410 Expired", relists.clone());
        let backpressure = Family::<TransportKind, Counter>::default();
        registry.register(
            "backpressure_closes",
            "Streams closed because the client fell behind",
            backpressure.clone(),
        );
        let rate_limited = Family::<Transport, Counter>::default();
        registry.register(
            "rate_limited",
            "Streams refused at the per-user cap",
            rate_limited.clone(),
        );
        let plugin_calls = Family::<Kind, Counter>::default();
        registry.register(
            "plugin_calls",
            "Plugin calls (a batch chunk counts once)",
            plugin_calls.clone(),
        );
        let plugin_faults = Family::<Kind, Counter>::default();
        registry.register(
            "plugin_faults",
            "Plugin calls that trapped, timed out or misbehaved",
            plugin_faults.clone(),
        );
        let plugin_quarantined = Family::<Kind, Gauge>::default();
        registry.register(
            "plugin_quarantined",
            "1 while the kind's plugin is quarantined (its calls fail fast), else 0",
            plugin_quarantined.clone(),
        );
        let plugin_load_failures = Gauge::default();
        registry.register(
            "plugin_load_failures",
            "Plugin files that failed to load (their kinds are not served; see /readyz)",
            plugin_load_failures.clone(),
        );
        let plugin_latency =
            Family::<Kind, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_005, 4.0, 10)));
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call latency",
            plugin_latency.clone(),
        );
        let objects_left_out = Family::<ClusterKind, Counter>::default();
        registry.register(
            "objects_left_out",
            "Objects or changes left out because their plugin failed on them",
            objects_left_out.clone(),
        );
        let mapping_failures = Family::<ClusterKind, Counter>::default();
        registry.register(
            "mapping_failures",
            "Lists or changes whose mapping task panicked, was cancelled, or whose plugin failed on every object",
            mapping_failures.clone(),
        );
        let rbac_denied = Family::<ClusterKind, Counter>::default();
        registry.register(
            "rbac_denied",
            "Requests and streams refused or ended by Kubernetes RBAC",
            rbac_denied.clone(),
        );
        let upstreams_refused = Family::<Scope, Counter>::default();
        registry.register(
            "upstreams_refused",
            "New upstream watches refused at watch.upstreams_per_user or watch.upstreams_per_cluster",
            upstreams_refused.clone(),
        );
        let upstream_outages = Family::<ClusterKind, Gauge>::default();
        registry.register(
            "upstream_outages",
            "Upstreams failing within watch.outage_grace (streams held open on the last good state)",
            upstream_outages.clone(),
        );
        let graphql_sockets = Gauge::default();
        registry.register("graphql_sockets", "Open /graphqlws sockets", graphql_sockets.clone());
        let graphql_closes = Family::<Code, Counter>::default();
        registry.register(
            "graphql_closes",
            "/graphqlws sockets the server closed, by close code",
            graphql_closes.clone(),
        );
        let runtime_tasks = Gauge::<i64>::default();
        registry.register(
            "runtime_tasks",
            "Alive tokio tasks (read when /metrics is scraped; a soak watches it for leaks)",
            runtime_tasks.clone(),
        );
        let build = Family::<Build, Gauge>::default();
        build
            .get_or_create(&Build {
                version: env!("CARGO_PKG_VERSION").to_string(),
                commit: option_env!("PERISCOPE_COMMIT").unwrap_or("unknown").to_string(),
            })
            .set(1);
        registry.register("build_info", "Build information", build);
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections holding a slot of server.max_connections or of the probes' reserve",
            connections_open.clone(),
        );
        let connections_refused = Family::<Reason, Counter>::default();
        registry.register(
            "connections_refused",
            "Client connections refused at server.max_connections",
            connections_refused.clone(),
        );
        let connection_timeouts = Family::<Phase, Counter>::default();
        registry.register(
            "connection_timeouts",
            "Client connections closed by the head deadline or the write deadline",
            connection_timeouts.clone(),
        );
        Metrics {
            registry,
            streams_active,
            upstream_watches,
            events_delivered,
            relists,
            backpressure,
            rate_limited,
            plugin_calls,
            plugin_faults,
            plugin_latency,
            plugin_quarantined,
            plugin_load_failures,
            objects_left_out,
            mapping_failures,
            rbac_denied,
            upstreams_refused,
            upstream_outages,
            graphql_sockets,
            graphql_closes,
            runtime_tasks,
            connections_open,
            connections_refused,
            connection_timeouts,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = i64::try_from(runtime.metrics().num_alive_tasks()).unwrap_or(i64::MAX);
            self.runtime_tasks.set(tasks);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    fn tk(transport: &str, kind: &str) -> TransportKind {
        TransportKind {
            transport: transport.to_string(),
            kind: kind.to_string(),
        }
    }

    fn ck(cluster: &str, kind: &str) -> ClusterKind {
        ClusterKind {
            cluster: cluster.to_string(),
            kind: kind.to_string(),
        }
    }

    /// A client stream opened.
    pub fn stream_opened(&self, transport: &str, kind: &str) {
        self.streams_active.get_or_create(&Self::tk(transport, kind)).inc();
    }

    /// A client stream closed.
    pub fn stream_closed(&self, transport: &str, kind: &str) {
        self.streams_active.get_or_create(&Self::tk(transport, kind)).dec();
    }

    /// The delivered-frames counter of one transport and kind; a stream takes it once
    /// and increments it per frame, so labels are not rebuilt on the hot path.
    pub fn events_delivered(&self, transport: &str, kind: &str) -> Counter {
        self.events_delivered.get_or_create(&Self::tk(transport, kind)).clone()
    }

    /// A stream was closed for falling behind.
    pub fn backpressure_close(&self, transport: &str, kind: &str) {
        self.backpressure.get_or_create(&Self::tk(transport, kind)).inc();
    }

    /// A client connection took (`1`) or left (`-1`) a slot.
    pub fn connection(&self, delta: i64) {
        self.connections_open.inc_by(delta);
    }

    /// A client connection was refused: `busy` (answered 503) or `full` (closed unread).
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused.get_or_create(&Reason { reason }).inc();
    }

    /// A client connection was closed by a deadline: `head` or `write`.
    pub fn connection_timeout(&self, phase: &'static str) {
        self.connection_timeouts.get_or_create(&Phase { phase }).inc();
    }

    /// A stream was refused at the per-user cap.
    pub fn rate_limited(&self, transport: &str) {
        self.rate_limited
            .get_or_create(&Transport {
                transport: transport.to_string(),
            })
            .inc();
    }

    /// An upstream started (`+1`) or stopped (`-1`).
    pub fn upstream_changed(&self, cluster: &str, kind: &str, delta: i64) {
        self.upstream_watches
            .get_or_create(&Self::ck(cluster, kind))
            .inc_by(delta);
    }

    /// An upstream relisted after 410.
    pub fn relisted(&self, cluster: &str, kind: &str) {
        self.relists.get_or_create(&Self::ck(cluster, kind)).inc();
    }

    /// `count` objects or changes were left out because their plugin failed on them.
    pub fn objects_left_out(&self, cluster: &str, kind: &str, count: u64) {
        self.objects_left_out
            .get_or_create(&Self::ck(cluster, kind))
            .inc_by(count);
    }

    /// A mapping task failed as a whole (published as `error`, never as data).
    pub fn mapping_failed(&self, cluster: &str, kind: &str) {
        self.mapping_failures.get_or_create(&Self::ck(cluster, kind)).inc();
    }

    /// RBAC refused a request or ended a stream.
    pub fn rbac_denied(&self, cluster: &str, kind: &str) {
        self.rbac_denied.get_or_create(&Self::ck(cluster, kind)).inc();
    }

    /// A new upstream was refused at a cap (`user` or `cluster`).
    pub fn upstream_refused(&self, scope: &str) {
        self.upstreams_refused
            .get_or_create(&Scope {
                scope: scope.to_string(),
            })
            .inc();
    }

    /// An upstream entered (`+1`) or left (`-1`) an outage.
    pub fn outage_changed(&self, cluster: &str, kind: &str, delta: i64) {
        self.upstream_outages
            .get_or_create(&Self::ck(cluster, kind))
            .inc_by(delta);
    }

    /// A `/graphqlws` socket opened (`+1`) or closed (`-1`).
    pub fn graphql_socket(&self, delta: i64) {
        self.graphql_sockets.inc_by(delta);
    }

    /// The server closed a `/graphqlws` socket with `code`.
    pub fn graphql_close(&self, code: u16) {
        self.graphql_closes
            .get_or_create(&Code { code: code.to_string() })
            .inc();
    }

    /// The plugins' state as of now, set before each scrape: whether each kind is
    /// quarantined, and how many plugin files failed to load.
    pub fn plugin_states<'a>(&self, kinds: impl Iterator<Item = (&'a str, bool)>, load_failures: usize) {
        for (kind, quarantined) in kinds {
            let label = Kind { kind: kind.to_string() };
            self.plugin_quarantined
                .get_or_create(&label)
                .set(i64::from(quarantined));
        }
        self.plugin_load_failures
            .set(i64::try_from(load_failures).unwrap_or(i64::MAX));
    }

    /// A plugin call finished (the runtime's call observer).
    pub fn plugin_call(&self, kind: &str, elapsed: Duration, fault: bool) {
        let label = Kind { kind: kind.to_string() };
        self.plugin_calls.get_or_create(&label).inc();
        if fault {
            self.plugin_faults.get_or_create(&label).inc();
        }
        self.plugin_latency.get_or_create(&label).observe(elapsed.as_secs_f64());
    }
}
