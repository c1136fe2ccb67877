//! `periscope serve`: builds the whole service from a [`Config`] and runs it until
//! SIGTERM or ctrl-c, then sends every stream `server_shutdown` and drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::rbac::Authorizer;
use crate::auth::{self, Authenticator};
use crate::cluster::{Cluster, Clusters};
use crate::config::{ClusterSource, Config, Origin, RbacMode};
use crate::http::{self, AppState};
use crate::hub::{Hub, HubOptions};
use crate::kinds::reload::{self, Reloader};
use crate::kinds::{self, ExprError, LiveKinds, Registry};
use crate::limits::Streams;
use crate::metrics::Metrics;
use crate::plugin::{self, CallObserver, PluginRuntime, RuntimeOptions};

/// The name of the embedded demo cluster served when none is configured.
pub const DEMO_CLUSTER: &str = "demo";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin runtime could not start.
    #[error("cannot start the plugin runtime")]
    Runtime(#[source] plugin::BoxError),
    /// A plugin failed to load.
    #[error(transparent)]
    Plugin(#[from] plugin::LoadError),
    /// The plugins do not form a registry.
    #[error(transparent)]
    Registry(#[from] kinds::Error),
    /// `watch.streams` does not parse (a configuration error).
    #[error("invalid configuration: watch.streams = {value:?} (from {origin})")]
    Streams {
        /// The expression.
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What is wrong.
        #[source]
        error: ExprError,
    },
    /// Authentication could not be set up (a configuration problem).
    #[error(transparent)]
    Auth(#[from] auth::SetupError),
    /// A cluster's client could not be built.
    #[error("cluster {name:?}: cannot build a client ({what})")]
    Cluster {
        /// The cluster.
        name: String,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An embedded simulated cluster could not start.
    #[error("cannot start the embedded simulated cluster {name:?}")]
    Sim {
        /// The cluster.
        name: String,
        /// The cause.
        #[source]
        source: periscope_sim::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}; is another process using it? (set server.listen or --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}

impl StartError {
    /// True for errors an operator fixes in the configuration (exit 64).
    pub fn is_config(&self) -> bool {
        matches!(self, StartError::Streams { .. } | StartError::Auth(_))
    }
}

/// The built service, bound and ready to serve.
pub struct App {
    state: AppState,
    listener: TcpListener,
    shutdown_grace: Duration,
    header_timeout: Duration,
    write_timeout: Duration,
    max_connections: u32,
    // Embedded simulated clusters live as long as the app.
    _sims: Vec<periscope_sim::Sim>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Loads plugins, resolves the enabled kinds, connects clusters and binds.
    pub async fn build(config: Config) -> Result<App, StartError> {
        let metrics = Arc::new(Metrics::new());
        let auth = Authenticator::new(&config.auth)?;
        if auth.is_disabled() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %config.listen,
                "AUTHENTICATION IS OFF (auth.mode = \"none\") and periscope listens beyond loopback: \
                 anyone who can reach it reads your clusters as an admin; set auth.mode = \"jwt\""
            );
        }
        auth.watch_revocations();
        let rbac = !auth.is_disabled() && config.auth.rbac == RbacMode::SubjectAccessReview;
        if !auth.is_disabled() && !rbac {
            tracing::warn!(
                "auth.rbac = \"off\": every authenticated user sees everything the service account can read"
            );
        }
        let observer = metrics.clone();
        let runtime_options = RuntimeOptions {
            call_observer: Some(CallObserver(Arc::new(move |kind, elapsed, fault| {
                observer.plugin_call(kind, elapsed, fault);
            }))),
            call_deadline: config.plugins.call_deadline,
            memory_cap: usize::try_from(config.plugins.memory_cap).unwrap_or(usize::MAX),
            quarantine_for: config.plugins.quarantine_for,
            cache_dir: config.plugins.cache_dir.clone().or_else(plugin::cache::default_dir),
            ..RuntimeOptions::default()
        };
        let plugin_dir = config.plugins.dir.clone();
        let loaded_dir = plugin_dir.clone();
        let strict = config.plugins.strict;
        let overrides = config.plugins.overrides.clone();
        let loading_overrides = overrides.clone();
        let (runtime, bundled, from_dir, loaded) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let runtime = Arc::new(PluginRuntime::new(runtime_options).map_err(StartError::Runtime)?);
            let to_compile = runtime.bundled_to_compile();
            if to_compile > 0 {
                let cache = runtime.options().cache_dir.as_ref().map_or_else(
                    || "no cache directory: every start compiles".to_string(),
                    |dir| format!("cached in {} for later starts", dir.display()),
                );
                tracing::info!("compiling {to_compile} plugin components (first start; {cache})…");
            }
            let bundled = runtime.load_bundled()?;
            let (from_dir, loaded) =
                load_plugins(&runtime, &bundled, loaded_dir.as_deref(), &loading_overrides, strict)?;
            let stats = runtime.cache_stats();
            tracing::info!(
                "{} plugins loaded in {:.1?} ({} compiled, {} from cache)",
                loaded.plugins.len(),
                started.elapsed(),
                stats.compiled(),
                stats.loaded_from_cache()
            );
            Ok::<_, StartError>((runtime, bundled, from_dir, loaded))
        })
        .await
        .map_err(|e| StartError::Runtime(e.into()))??;
        let Loaded { plugins, failed } = loaded;
        let registry = Registry::new(plugins)?;
        let streams = &config.watch.streams;
        let resolved = if failed.is_empty() {
            registry.resolve(&streams.value)
        } else {
            kinds::resolve_without_missing(&registry, &streams.value)
        };
        let enabled = resolved.map_err(|error| StartError::Streams {
            value: streams.value.clone(),
            origin: streams.origin.clone(),
            error,
        })?;
        let streamed = enabled.tokens();
        let total = registry.plugins().len();
        if streamed.len() == total {
            tracing::info!("watch streams: all {total} kinds ({})", streamed.join(", "));
        } else {
            tracing::info!(
                "watch streams: {} of {total} kinds ({}); the others are served by polling only",
                streamed.len(),
                if streamed.is_empty() {
                    "none".to_string()
                } else {
                    streamed.join(", ")
                }
            );
        }
        tracing::debug!("watch streams enabled: {}", enabled.summary());
        let kinds = LiveKinds::new(registry, enabled);
        for (path, problem) in &failed {
            kinds.set_problem(path.clone(), Some(problem.clone()));
        }

        let (clusters, sims) = connect(&config).await?;
        let hub = Hub::new(
            clusters,
            kinds.clone(),
            HubOptions {
                linger: config.watch.linger,
                queue: config.watch.queue,
                ring: config.watch.ring,
                upstreams_per_user: config.watch.upstreams_per_user,
                upstreams_per_cluster: config.watch.upstreams_per_cluster,
                outage_grace: config.watch.outage_grace,
                request_timeout: config.watch.request_timeout,
                watch_silence: config.watch.silence_timeout,
                list_page_size: config.watch.list_page_size,
                initial_list: config.watch.initial_list,
            },
            metrics.clone(),
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let state = AppState {
            hub,
            enabled: kinds.clone(),
            heartbeat: config.watch.heartbeat,
            list_timeout: Duration::from_secs(30),
            max_stream_duration: config.watch.max_stream_duration,
            authorizer: Authorizer::new(rbac, config.auth.rbac_ttl),
            protect_metrics: config.auth.protect_metrics && !auth.is_disabled(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            auth,
            streams: Streams::new(config.watch.per_user_limit, metrics.clone()),
            cold_polls: Arc::new(crate::limits::ColdPolls::new(config.watch.cold_polls_per_user)),
            metrics,
            shutdown: CancellationToken::new(),
            graphql: crate::transport::graphql::GraphqlOptions::new(&config.graphql),
        };
        if let Some(dir) = plugin_dir {
            let failed_files: Vec<PathBuf> = failed.iter().map(|(path, _)| path.clone()).collect();
            let reloader = Reloader::new(
                runtime,
                dir,
                streams.value.clone(),
                bundled,
                (&from_dir, &failed_files),
                overrides,
                kinds,
            );
            watch_plugin_dir(reloader, state.hub.clone(), state.shutdown.clone());
        }
        Ok(App {
            state,
            listener,
            shutdown_grace: config.shutdown_grace,
            header_timeout: config.header_timeout,
            write_timeout: config.watch.write_timeout,
            max_connections: config.max_connections,
            _sims: sims,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    /// The shared state (hub, enabled kinds).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this token shuts the service down as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains within the grace
    /// period. Every SSE stream ends with `server_shutdown`.
    pub async fn serve(self) -> Result<(), StartError> {
        let shutdown = self.state.shutdown.clone();
        let clusters: Vec<&str> = self.state.hub.clusters().iter().map(|c| c.name.as_str()).collect();
        let addr = self.local_addr();
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        tracing::info!(
            "listening on {addr}: open http://{}:{}/ (clusters: {})",
            if host.contains(':') { format!("[{host}]") } else { host },
            addr.port(),
            clusters.join(", ")
        );
        let fd_limit = http::listen::raise_fd_limit();
        let max_connections = match self.max_connections {
            0 => http::listen::default_max_connections(fd_limit),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        tracing::info!(
            max_connections,
            probe_reserve = http::listen::RESERVE,
            header_timeout = ?self.header_timeout,
            write_timeout = ?self.write_timeout,
            "connection limits"
        );
        let options = http::listen::Options {
            header_timeout: self.header_timeout,
            write_timeout: self.write_timeout,
            max_connections,
        };
        let metrics = self.state.metrics.clone();
        let router = http::router(self.state);
        // Every connection is a task of `tracker`: fresh watch requests are served off
        // hyper (`http::direct`), the rest by hyper (`http::listen`).
        let tracker = TaskTracker::new();
        http::listen::spawn(
            self.listener,
            router,
            options,
            metrics,
            shutdown.clone(),
            tracker.clone(),
        );
        let drained = shutdown.clone();
        let server = async move {
            drained.cancelled().await;
            tracker.close();
            tracker.wait().await;
            Ok::<(), std::io::Error>(())
        };
        let grace = self.shutdown_grace;
        tokio::select! {
            result = server => result.map_err(StartError::Serve),
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "connections still open after the shutdown grace period; exiting");
                Ok(())
            }
        }
    }
}

/// What start-up loaded: the registry's plugins, and the plugin files (or the
/// directory) left out, with why.
struct Loaded {
    plugins: Vec<Arc<plugin::Plugin>>,
    failed: Vec<(PathBuf, String)>,
}

/// Loads the plugin directory beside the bundled plugins. With `strict`, the first
/// failure stops start-up; otherwise each broken file (or an unreadable directory) is
/// logged as an error naming the file, the reason and the fix, its kind is not served,
/// and every other kind is (issue 22). Returns every plugin that loaded from the
/// directory (the reloader's starting point) and the merged set.
fn load_plugins(
    runtime: &PluginRuntime,
    bundled: &[Arc<plugin::Plugin>],
    dir: Option<&std::path::Path>,
    overrides: &[String],
    strict: bool,
) -> Result<(Vec<Arc<plugin::Plugin>>, Loaded), StartError> {
    let mut failed = Vec::new();
    let mut fail = |path: PathBuf, error: &dyn std::error::Error| {
        let problem = crate::cli::error_chain(error);
        tracing::error!(
            source = %path.display(),
            error = %problem,
            "plugin not loaded: its kind is not served, every other kind is (set [plugins] strict = true to stop start-up instead)"
        );
        failed.push((path, problem));
    };
    let from_dir = match dir {
        None => Vec::new(),
        Some(dir) if strict => runtime.load_dir(dir)?,
        Some(dir) => match runtime.load_dir_each(dir) {
            Ok(each) => each
                .into_iter()
                .filter_map(|(path, loaded)| loaded.map_err(|error| fail(path, &error)).ok())
                .collect(),
            Err(error) => {
                fail(dir.to_path_buf(), &error);
                Vec::new()
            }
        },
    };
    let merged = plugin::merge(bundled.to_vec(), from_dir.clone(), overrides);
    let plugins = if strict {
        merged.into_result()?
    } else {
        for (source, error) in &merged.refused {
            fail(PathBuf::from(source.to_string()), error);
        }
        let mut plugins = merged.plugins;
        // A directory plugin whose token is a reserved word or another plugin's
        // group alias: leave it out, as any other broken one.
        while let Err(error @ kinds::Error::Ambiguous { .. }) = Registry::new(plugins.clone()) {
            let kinds::Error::Ambiguous { source_name, .. } = &error;
            let Some(at) = plugins
                .iter()
                .position(|p| matches!(p.source(), plugin::Source::File(_)) && p.source().to_string() == *source_name)
            else {
                break;
            };
            plugins.remove(at);
            fail(PathBuf::from(source_name), &error);
        }
        plugins
    };
    Ok((from_dir, Loaded { plugins, failed }))
}

/// Polls the plugin directory until shutdown ([`reload`]); closes the streams of kinds
/// whose plugin was replaced or removed.
fn watch_plugin_dir(reloader: Reloader, hub: Arc<Hub>, shutdown: CancellationToken) {
    let reloader = Arc::new(std::sync::Mutex::new(reloader));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(reload::POLL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let reloader = reloader.clone();
            // Loading compiles components: off the async workers.
            let polled =
                tokio::task::spawn_blocking(move || reloader.lock().unwrap_or_else(|p| p.into_inner()).poll()).await;
            match polled {
                Ok(reload) => {
                    for kind in &reload.retired {
                        hub.retire(kind);
                    }
                }
                Err(error) => tracing::error!(%error, "polling the plugin directory failed"),
            }
        }
    });
}

/// Cancels `token` on SIGTERM or ctrl-c.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only ctrl-c shuts down gracefully");
                let _ = ctrl_c.await;
                token.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: closing every stream with server_shutdown");
        token.cancel();
    });
}

/// Builds a client per configured cluster; with none configured, embeds the demo sim.
async fn connect(config: &Config) -> Result<(Clusters, Vec<periscope_sim::Sim>), StartError> {
    let mut clusters = Vec::new();
    let mut sims = Vec::new();
    let demo = [crate::config::ClusterConfig {
        name: DEMO_CLUSTER.to_string(),
        source: ClusterSource::Sim("demo".to_string()),
    }];
    let configured = if config.clusters.is_empty() {
        tracing::info!("no cluster configured: serving the embedded simulated demo cluster as {DEMO_CLUSTER:?}");
        &demo[..]
    } else {
        &config.clusters[..]
    };
    for cluster in configured {
        let name = cluster.name.clone();
        let failed = |what: &str| {
            let name = name.clone();
            let what = what.to_string();
            move |source: Box<dyn std::error::Error + Send + Sync>| StartError::Cluster { name, what, source }
        };
        let kube_config = match &cluster.source {
            ClusterSource::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                match path {
                    Some(path) => {
                        let kubeconfig = kube::config::Kubeconfig::read_from(path)
                            .map_err(|e| failed("reading the kubeconfig")(e.into()))?;
                        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                            .await
                            .map_err(|e| failed("loading the kubeconfig")(e.into()))?
                    }
                    None => kube::Config::from_kubeconfig(&options)
                        .await
                        .map_err(|e| failed("loading the kubeconfig")(e.into()))?,
                }
            }
            ClusterSource::InCluster => {
                kube::Config::incluster().map_err(|e| failed("reading the in-cluster service account")(e.into()))?
            }
            ClusterSource::Server(url) => {
                let uri = url
                    .parse()
                    .map_err(|e: axum::http::uri::InvalidUri| failed("parsing the server URL")(e.into()))?;
                kube::Config::new(uri)
            }
            ClusterSource::Sim(scenario) => {
                let scenario = scenario.parse().map_err(|source| StartError::Sim {
                    name: name.clone(),
                    source,
                })?;
                let sim = periscope_sim::Sim::start(periscope_sim::SimOptions {
                    scenario,
                    ..periscope_sim::SimOptions::default()
                })
                .await
                .map_err(|source| StartError::Sim {
                    name: name.clone(),
                    source,
                })?;
                tracing::info!(cluster = %name, url = %sim.url(), "embedded simulated cluster started");
                let uri = sim
                    .url()
                    .parse()
                    .map_err(|e: axum::http::uri::InvalidUri| failed("parsing the sim URL")(e.into()))?;
                sims.push(sim);
                kube::Config::new(uri)
            }
        };
        let backend = match &cluster.source {
            ClusterSource::Kubeconfig { .. } => "kubeconfig",
            ClusterSource::InCluster => "in-cluster",
            ClusterSource::Server(_) => "server",
            ClusterSource::Sim(_) => "sim",
        };
        let client = kube::Client::try_from(kube_config).map_err(|e| failed("creating the client")(e.into()))?;
        clusters.push(Cluster { name, backend, client });
    }
    Ok((Clusters::new(clusters), sims))
}
