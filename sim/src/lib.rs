//! A simulated Kubernetes API server.
//!
//! `periscope-sim` speaks the real Kubernetes API wire protocol for the kinds periscope
//! serves: discovery, list with `resourceVersion`/`limit`/`continue` and selectors,
//! watch as newline-delimited JSON with bookmarks and `410 Expired`, create, replace,
//! merge and strategic-merge patch, server-side apply (`application/apply-patch+yaml`
//! with `fieldManager` and `force`: field ownership in `metadata.managedFields` and
//! kube-apiserver's conflicts, see the `managed` module), the `scale` subresource of
//! deployments, stateful sets and replica sets, `dryRun=All` on every write, delete (with
//! finalizers and graceful pod termination), and pod logs with `follow`, `tailLines`,
//! `timestamps` and `sinceSeconds`. Real clients (`kubectl`, `helm`, kube-rs) talk to it
//! over plain HTTP with their defaults. Request bodies may be JSON (YAML for apply) or,
//! for every built-in kind it serves, the Kubernetes protobuf encoding that client-go's
//! typed clients send (helm's release Secrets, `kubectl create …`; see [`protobuf`]);
//! answers are always JSON, which those clients accept. `helm install`, `upgrade`,
//! `rollback`, `uninstall`, `list` and `status` work against it as they are (helm 4
//! applies server-side).
//!
//! Objects written through the API are run by the control plane's loops (the
//! `controllers` module): a Deployment gets its ReplicaSet, a ReplicaSet its pods, a Job
//! a pod that completes, deleted owners take their dependents with them, and each
//! transition leaves the Event kube-controller-manager, the scheduler or the kubelet
//! would (`ScalingReplicaSet`, `SuccessfulCreate`, `Scheduled`, `Started`, `Killing`…),
//! repeats aggregated by `count`.
//!
//! It serves custom resources: an `apiextensions.k8s.io/v1` CustomResourceDefinition
//! created with `kubectl apply` (or [`Sim::apply`]) is served at once, in its scope and
//! at its storage version, by discovery, list, watch and every write, and deleting it
//! deletes its objects and stops serving them (see [`resource`] for the table every
//! kind lives in). Custom objects are stored as given, without schema validation.
//!
//! It speaks Kubernetes RBAC ([`rbac`]): Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings are ordinary resources, every scenario starts with the bootstrap
//! policy (`cluster-admin` bound to `system:masters`, `admin`, `edit`, `view`), and
//! `authorization.k8s.io/v1` answers SubjectAccessReviews (and the local and self
//! variants) from the stored bindings; `kubectl auth whoami` works too. There is no
//! authentication: a request acts as the administrator (in `system:masters`) and is
//! never refused, unless it carries `Impersonate-User`/`Impersonate-Group` (`kubectl
//! --as alice`); then it acts as that user and RBAC is enforced, with the apiserver's
//! `403 Forbidden` Status.
//!
//! It has three users: `periscope serve` embeds it as a demo cluster when no cluster is
//! configured, tests use it as the oracle (it knows nothing of periscope's hub) and
//! inject faults through [`Sim`], and benchmarks seed it with tens of thousands of pods.
//!
//! It is not a conformant apiserver: there is no authentication, admission, OpenAPI
//! schema (server-side apply knows the list types of the built-in kinds from a table),
//! defaulting beyond pods, ClusterRole aggregation, Table output, protobuf responses or
//! CRD version conversion, and paged lists are not snapshots (see the `store` module).
//!
//! ```no_run
//! # async fn demo() -> Result<(), periscope_sim::Error> {
//! use periscope_sim::{Scenario, Sim, SimOptions};
//!
//! let sim = Sim::start(SimOptions { scenario: Scenario::Empty, ..SimOptions::default() }).await?;
//! println!("apiserver at {}", sim.url());
//! sim.apply(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": { "name": "settings", "namespace": "default" },
//!     "data": { "mode": "fast" },
//! }))?;
//! sim.fail_lists(periscope_sim::ListFailure::InternalError, periscope_sim::FaultCount::Times(2));
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod controllers;
mod crd;
mod events;
mod fault;
mod kubelet;
pub mod logs;
mod managed;
mod meta;
pub mod paging;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod resource;
mod scenario;
pub mod selector;
mod server;
pub mod status;
mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use fault::{FaultCount, ListFailure};
pub use meta::{log_timestamp, now_timestamp, timestamp};
pub use status::ApiError;
pub use store::{EventType, ObjKey};

use store::{Store, UpdateMode};

/// Which objects the sim starts with and whether they change on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scenario {
    /// A small realistic cluster (namespaces, nodes, workloads, services, ingresses,
    /// storage, helm releases, events) that keeps changing a few times per second:
    /// rollouts, scaling, crash loops, jobs, helm upgrades.
    #[default]
    Demo,
    /// Only what every cluster has: the namespaces `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`, and the bootstrap RBAC roles and bindings
    /// (`cluster-admin`, `admin`, `edit`, `view`…). Nothing changes unless asked to.
    Empty,
}

impl std::str::FromStr for Scenario {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "demo" => Ok(Self::Demo),
            "empty" => Ok(Self::Empty),
            other => Err(Error::UnknownScenario(other.to_string())),
        }
    }
}

/// Options for [`Sim::start`].
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Starting objects and churn.
    pub scenario: Scenario,
    /// Seed for every random choice (uids, names, churn, logs); the same seed gives the
    /// same cluster and the same sequence of changes.
    pub seed: u64,
    /// Extra pods to create in namespaces `bench-0`…`bench-9`, for benchmarks.
    pub pods: usize,
    /// How often watches that allow bookmarks get one. Default 5 s.
    pub bookmark_interval: Duration,
    /// How many past changes are kept for watches to resume from; a watch from an older
    /// resourceVersion gets `410 Expired`. Default 10 000 (plus `pods`).
    pub history_window: usize,
    /// Time between two steps of the demo churn. Default 400 ms.
    pub churn_interval: Duration,
    /// Whether the control plane's loops run the objects written through the API
    /// (deployments, replica sets, jobs, pod events, garbage collection). Default on;
    /// off is an apiserver without kube-controller-manager, for tests that script
    /// statuses themselves.
    pub controllers: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            scenario: Scenario::Demo,
            seed: 1,
            pods: 0,
            bookmark_interval: Duration::from_secs(5),
            history_window: 10_000,
            churn_interval: Duration::from_millis(400),
            controllers: true,
        }
    }
}

/// Errors from starting, running or driving the sim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("simulated cluster: cannot listen on {addr}; pick another address with --listen")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("simulated cluster: server failed")]
    Serve(#[source] std::io::Error),
    /// Writing a kubeconfig file failed.
    #[error("simulated cluster: cannot write kubeconfig {path}")]
    WriteKubeconfig {
        /// The file.
        path: String,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for ctrl-c failed.
    #[error("simulated cluster: cannot wait for ctrl-c")]
    Signal(#[source] std::io::Error),
    /// A scenario name that does not exist.
    #[error("unknown scenario {0:?}; use \"demo\" or \"empty\"")]
    UnknownScenario(String),
    /// An object given to [`Sim::apply`] names no served kind.
    #[error("object of kind {kind:?} (apiVersion {api_version:?}) is not served by the simulated cluster")]
    UnknownKind {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// A plural given to the direct API names no served resource.
    #[error("resource {0:?} is not served by the simulated cluster")]
    UnknownResource(String),
    /// The store refused a direct write, as the API would have.
    #[error("simulated cluster refused the write")]
    Api(#[source] ApiError),
}

/// How many lists a sim served, by shape ([`Sim::list_requests`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRequests {
    /// `GET` list requests (each page is one).
    pub pages: usize,
    /// Watches with `sendInitialEvents=true`.
    pub streaming: usize,
}

/// A running simulated cluster. Dropping it without [`Sim::shutdown`] stops it too,
/// without waiting.
pub struct Sim {
    addr: SocketAddr,
    store: Arc<Store>,
    faults: Arc<fault::Faults>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), std::io::Error>>>,
}

impl Sim {
    /// Seeds the scenario, binds the listener and starts serving.
    pub async fn start(opts: SimOptions) -> Result<Self, Error> {
        let began = Instant::now();
        let store = Arc::new(Store::new(opts.history_window + opts.pods, opts.seed));
        let faults = Arc::new(fault::Faults::new());
        let shutdown = CancellationToken::new();
        scenario::seed(&store, &opts);
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
        let ctx = server::Ctx {
            store: store.clone(),
            faults: faults.clone(),
            shutdown: shutdown.clone(),
            bookmark_interval: opts.bookmark_interval,
            seed: opts.seed,
            server_address: addr.to_string(),
        };
        let app = server::router(ctx);
        let stop = shutdown.clone();
        // Watch events are small writes: TCP_NODELAY keeps Nagle's algorithm from
        // holding them back for a delayed ACK (up to 40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        if opts.controllers {
            controllers::spawn(store.clone(), shutdown.clone(), opts.seed);
        }
        if opts.scenario == Scenario::Demo {
            scenario::spawn_churn(store.clone(), shutdown.clone(), &opts);
        }
        tracing::info!(
            %addr,
            scenario = ?opts.scenario,
            seed = opts.seed,
            objects = store.current_rv(),
            elapsed_ms = began.elapsed().as_millis() as u64,
            "simulated cluster listening"
        );
        Ok(Self {
            addr,
            store,
            faults,
            shutdown,
            server: Some(server),
        })
    }

    /// The address the sim listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The apiserver URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at the sim (plain HTTP, no
    /// credentials: kubectl acts as the administrator unless given `--as`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: periscope-sim\n  cluster:\n    server: {url}\n\
             contexts:\n- name: periscope-sim\n  context:\n    cluster: periscope-sim\n    user: periscope-sim\n    namespace: default\n\
             current-context: periscope-sim\nusers:\n- name: periscope-sim\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`Sim::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.current_rv()
    }

    fn resource(&self, plural: &str) -> Result<usize, Error> {
        self.store
            .table()
            .by_name(plural)
            .map(|(id, _)| id)
            .ok_or_else(|| Error::UnknownResource(plural.to_string()))
    }

    /// Creates the object, or replaces it if one with its name exists (status
    /// included; no resourceVersion check unless the object carries one). Returns the
    /// stored object.
    pub fn apply(&self, object: Value) -> Result<Value, Error> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let (id, _) = self
            .store
            .table()
            .by_kind(api_version, kind)
            .ok_or_else(|| Error::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })?;
        let stored = if self.store.get(id, &ObjKey::of(&object)).is_some() {
            self.store.update(id, object, UpdateMode::Raw)
        } else {
            self.store.create(id, object)
        };
        stored.map(|o| (*o).clone()).map_err(Error::Api)
    }

    /// Deletes an object at once (no grace period, finalizers ignored). `plural` names
    /// the resource (`pods`) or, for a custom resource, also `plural.group`
    /// (`widgets.example.com`); `namespace` is `None` for cluster-scoped resources.
    /// Returns its last state.
    pub fn delete(&self, plural: &str, namespace: Option<&str>, name: &str) -> Result<Value, Error> {
        let key = ObjKey {
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        self.store
            .remove(self.resource(plural)?, &key)
            .map(|o| (*o).clone())
            .map_err(Error::Api)
    }

    /// One object, if it exists.
    pub fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Result<Option<Value>, Error> {
        let key = ObjKey {
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        Ok(self.store.get(self.resource(plural)?, &key).map(|o| (*o).clone()))
    }

    /// Every object of a resource, optionally in one namespace, in key order.
    pub fn objects(&self, plural: &str, namespace: Option<&str>) -> Result<Vec<Value>, Error> {
        let page = self.store.list(self.resource(plural)?, namespace, None, None, None);
        Ok(page.items.iter().map(|o| (**o).clone()).collect())
    }

    /// Whether `user` may make the request, by the stored RBAC policy, as a
    /// SubjectAccessReview would answer.
    pub fn authorize(&self, user: &rbac::UserInfo, attributes: &rbac::Attributes) -> rbac::Decision {
        rbac::authorize(&*self.store, user, attributes)
    }

    /// Ends every open watch of `plural`, or every open watch when `None`.
    pub fn drop_watches(&self, plural: Option<&str>) -> Result<(), Error> {
        let resource = plural.map(|p| self.resource(p)).transpose()?;
        tracing::info!(resource = plural.unwrap_or("*"), "dropping watches");
        self.faults.drop_watches(resource);
        Ok(())
    }

    /// Makes new watches answer with a `410 Expired` ERROR event, `count` times or
    /// until [`Sim::clear_faults`].
    pub fn expire_watches(&self, count: FaultCount) {
        self.faults.expire_watches(Some(count));
    }

    /// Makes list pages asked for with a `continue` token answer `410 Expired`, as an
    /// apiserver does once the first page's resourceVersion was compacted, `count`
    /// times or until [`Sim::clear_faults`]. First pages are not affected.
    pub fn expire_continues(&self, count: FaultCount) {
        self.faults.expire_continues(Some(count));
    }

    /// Makes lists fail with `failure`, `count` times or until cleared.
    pub fn fail_lists(&self, failure: ListFailure, count: FaultCount) {
        self.faults.fail_lists(Some((failure, count)));
    }

    /// Makes watches with `sendInitialEvents` (WatchList, KEP-3157) answer `422
    /// Invalid` as an apiserver without the feature does, or serves them again.
    /// Cleared by [`Sim::clear_faults`].
    pub fn refuse_watch_list(&self, refuse: bool) {
        self.faults.refuse_watch_list(refuse);
    }

    /// List requests (pages) and streaming lists (watches with `sendInitialEvents`)
    /// served so far, over every resource.
    pub fn list_requests(&self) -> ListRequests {
        let (pages, streaming) = self.faults.requests();
        ListRequests { pages, streaming }
    }

    /// Delays every API response by `latency` (zero to stop).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.set_latency(latency);
    }

    /// Holds every new API request, and event delivery on open watches, until
    /// [`Sim::unpause`].
    pub fn pause(&self) {
        self.faults.set_paused(true);
    }

    /// Releases held requests and watches.
    pub fn unpause(&self) {
        self.faults.set_paused(false);
    }

    /// Clears every fault: latency, pause, pending list failures, watch and continue
    /// expiries.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Open watch connections on `plural`.
    pub fn open_watches(&self, plural: &str) -> Result<usize, Error> {
        Ok(self.faults.open_watches(self.resource(plural)?))
    }

    /// Open watch connections on every resource.
    pub fn open_watches_total(&self) -> usize {
        self.faults.open_watches_total()
    }

    /// Stops the churn, ends open watches and log streams, and waits for the server
    /// to finish.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops serving, stays down for `down` (connections are refused), then serves
    /// again on the same address from a fresh store seeded by `opts` (its `listen` is
    /// ignored): as an apiserver restarted on an empty or restored etcd, every object
    /// and resourceVersion is new and resourceVersions went backwards.
    pub async fn restart(&mut self, opts: SimOptions, down: Duration) -> Result<(), Error> {
        self.stop().await;
        tokio::time::sleep(down).await;
        let fresh = Sim::start(SimOptions {
            listen: self.addr,
            ..opts
        })
        .await?;
        *self = fresh;
        Ok(())
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "simulated cluster stopped with an error"),
                Err(error) => tracing::warn!(%error, "simulated cluster task failed"),
            }
        }
        tracing::info!(addr = %self.addr, "simulated cluster stopped");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs a sim until ctrl-c: prints its URL and how to point kubectl at it. This is
/// what `periscope sim` calls.
pub async fn run_standalone(opts: SimOptions) -> Result<(), Error> {
    let sim = Sim::start(opts).await?;
    let kubeconfig = std::env::temp_dir().join(format!("periscope-sim-{}.kubeconfig", sim.addr().port()));
    sim.write_kubeconfig(&kubeconfig)?;
    println!("simulated cluster listening on {}", sim.url());
    println!("point kubectl at it:");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get pods -A");
    println!("or: kubectl --server {} get pods -A", sim.url());
    println!("press ctrl-c to stop");
    let signal = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    // Best effort: the file is in the temp directory anyway.
    let _ = std::fs::remove_file(&kubeconfig);
    signal.map_err(Error::Signal)
}
