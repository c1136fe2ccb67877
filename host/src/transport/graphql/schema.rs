//! The GraphQL schema of `spec/streams.md`, executed by async-graphql: `Query {
//! clusters, kinds }` and the four subscriptions. `k8sEvents`, `k8sWorkloadStatus` and
//! `k8sHelmReleaseStatus` stream through [`Session`]s of the hub; `k8sPodLogs` reads
//! the hub's log streams under a [`crate::transport::session::Lease`].
//!
//! Every refusal and every end a client must act on is a GraphQL error with a stable
//! `extensions.code`: `FORBIDDEN` (not an admin, RBAC), `TOO_MANY_STREAMS` (the
//! per-user cap, shared with SSE), `UNAUTHENTICATED` (expired or revoked mid-stream),
//! `NOT_FOUND`, `BAD_REQUEST`, `UPSTREAM_ERROR`, `UPSTREAM_LIMIT`, `BACKPRESSURE`,
//! `UNAVAILABLE`, `INVALID_RELEASE` (a Helm release Secret that cannot be decoded).
//! The protocol loop sends them as `error`.

use std::time::Duration;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Context, EmptyMutation, Enum, ErrorExtensions, Object, Schema, SimpleObject, Subscription};
use futures::StreamExt;

use super::{events, helm, logs, workload};
use crate::auth::Actor;
use crate::http::AppState;
use crate::hub::StreamKey;
use crate::transport::session::{End, OpenError, Session};

/// The executable schema.
pub type PeriscopeSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// The transport name in metrics, logs and `/debug/streams`.
pub const TRANSPORT: &str = "graphql-ws";

/// Builds the schema (once, at start-up).
pub fn build() -> PeriscopeSchema {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .limit_depth(16)
        .limit_complexity(512)
        .finish()
}

/// What every operation's resolvers see.
pub struct OperationContext {
    /// Everything handlers share.
    pub state: AppState,
    /// Who the socket's `connection_init` authenticated.
    pub actor: Actor,
    /// The longest life of one operation; zero: no cap.
    pub max_duration: Duration,
    /// How long a pod's restart keeps its workload WARN (`k8sWorkloadStatus`).
    pub restart_window: Duration,
}

/// A refusal before an operation runs.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `extensions.code`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

/// Checks the actor again at subscribe: an admin whose token is still valid and whose
/// subject is not revoked. Fails closed.
pub fn guard(state: &AppState, actor: &Actor) -> Result<(), Refusal> {
    if !actor.admin {
        return Err(Refusal {
            code: "FORBIDDEN",
            message: "admins only (auth.admin_group)".to_string(),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    // Verification's rule: accepted through `exp` plus the leeway (not `exp` alone, or a
    // token acked at `connection_init` inside the leeway would fail every subscribe).
    let expired = state.auth.valid_until(actor).is_some_and(|until| until < now);
    if !state.auth.is_disabled() && (expired || state.auth.is_revoked(&actor.subject)) {
        return Err(Refusal {
            code: "UNAUTHENTICATED",
            message: if expired {
                "the token expired"
            } else {
                "the subject of this token is revoked"
            }
            .to_string(),
        });
    }
    Ok(())
}

/// A GraphQL error with `extensions.code`.
pub fn coded(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

/// The error that ends an operation for `end`; `None` for an end that is a plain
/// `complete` (the lifetime cap, a stopped upstream).
pub fn end_error(end: End) -> Option<async_graphql::Error> {
    Some(match end {
        End::Lifetime | End::UpstreamClosed => return None,
        End::Upstream(frame) => coded("UPSTREAM_ERROR", crate::hub::error_message(&frame)),
        End::AccessRevoked(message) => coded("FORBIDDEN", message),
        End::AuthExpired => coded("UNAUTHENTICATED", "the token expired"),
        End::Revoked => coded("UNAUTHENTICATED", "the subject of this token is revoked"),
        End::Backpressure => coded("BACKPRESSURE", "the client fell behind; subscribe again"),
        End::Shutdown => coded("UNAVAILABLE", "the server is shutting down"),
    })
}

pub(super) fn open_error(error: OpenError) -> async_graphql::Error {
    let code = match &error {
        OpenError::UnknownCluster | OpenError::UnknownKind(_) => "NOT_FOUND",
        OpenError::Forbidden(_) => "FORBIDDEN",
        OpenError::Review(_) => "UNAVAILABLE",
        OpenError::Limit(_) => "TOO_MANY_STREAMS",
        OpenError::Subscribe(_) => "UPSTREAM_LIMIT",
    };
    coded(code, error.to_string())
}

/// Opens a session of `key` for the operation.
pub(super) async fn open(context: &OperationContext, key: StreamKey) -> async_graphql::Result<Session> {
    Session::open(
        &context.state,
        context.actor.clone(),
        TRANSPORT,
        key,
        None,
        context.max_duration,
    )
    .await
    .map_err(open_error)
}

/// A companion session (same admission) of `key` beside `session`.
pub(super) async fn companion(
    context: &OperationContext,
    session: &Session,
    key: StreamKey,
) -> async_graphql::Result<Session> {
    session.companion(&context.state, key).await.map_err(open_error)
}

fn namespace_arg(namespace: Option<String>) -> async_graphql::Result<Option<String>> {
    match namespace.filter(|ns| !ns.is_empty()) {
        None => Ok(None),
        Some(ns) => crate::http::dns_label(&ns)
            .map(|()| Some(ns))
            .map_err(|why| coded("BAD_REQUEST", format!("namespace: {why}"))),
    }
}

/// The longest Kubernetes object name (a DNS-1123 subdomain).
const OBJECT_NAME: usize = 253;
/// A CronJob's name is at most 52 characters: its jobs are named `<name>-<11 digits>`.
const CRON_JOB_NAME: usize = 52;
/// A Helm release name: at most 53 characters (helm's own rule, `chartutil`).
const RELEASE_NAME: usize = 53;

/// A name checked by the rule Kubernetes applies to it: a namespace or a container is
/// a DNS-1123 label; a pod, a workload or a Helm release is a DNS-1123 subdomain (dots
/// allowed: `etcd-ip-10-0-1-23.eu-west-1.compute.internal`), of at most `max`
/// characters.
fn name_arg(what: &str, value: &str, rule: NameRule) -> async_graphql::Result<()> {
    let checked = match rule {
        NameRule::Label => crate::http::dns_label(value),
        NameRule::Subdomain(max) => crate::http::dns_subdomain(value, max),
    };
    checked.map_err(|why| coded("BAD_REQUEST", format!("{what}: {why}")))
}

/// The naming rule of a parameter.
#[derive(Debug, Clone, Copy)]
enum NameRule {
    /// A DNS-1123 label (namespaces, containers).
    Label,
    /// A DNS-1123 subdomain of at most this many characters.
    Subdomain(usize),
}

/// A configured cluster.
#[derive(SimpleObject)]
pub struct Cluster {
    /// The configured name.
    pub name: String,
}

/// A registered kind.
#[derive(SimpleObject)]
pub struct KindInfo {
    /// The URL token (`pods`).
    pub token: String,
    /// The group alias (`core`).
    pub group_alias: String,
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The Kubernetes kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

/// The root query.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The configured clusters, in configuration order.
    async fn clusters(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Cluster>> {
        let context = ctx.data::<OperationContext>()?;
        Ok(context
            .state
            .hub
            .clusters()
            .iter()
            .map(|c| Cluster { name: c.name.clone() })
            .collect())
    }

    /// The registered kinds, in registry order.
    async fn kinds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<KindInfo>> {
        let context = ctx.data::<OperationContext>()?;
        Ok(context
            .state
            .hub
            .registry()
            .plugins()
            .iter()
            .map(|p| {
                let info = p.info();
                KindInfo {
                    token: info.token.clone(),
                    group_alias: info.group_alias.clone(),
                    api_version: info.api_version_string(),
                    kind: info.kind.clone(),
                    namespaced: info.namespaced,
                }
            })
            .collect())
    }
}

/// Severity of a log line or an event.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    /// Informational.
    Info,
    /// A warning.
    Warn,
    /// An error.
    Error,
}

/// The workload kinds `k8sWorkloadStatus` follows.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
}

impl WorkloadKind {
    /// The kind token of the hub.
    pub fn token(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::ReplicaSet => "replicasets",
            WorkloadKind::Job => "jobs",
            WorkloadKind::CronJob => "cronjobs",
        }
    }
}

/// A workload's health.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadStatus {
    /// Ready = desired > 0, or the job completed.
    Ok,
    /// Progressing.
    Pending,
    /// Replicas unavailable for a while, or pods restarting.
    Warn,
    /// Failed: a failed job, an exceeded progress deadline, pods in CrashLoopBackOff.
    Error,
}

/// A Helm release's status.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmStatus {
    /// `pending-*`, `uninstalling`, `unknown`.
    Pending,
    /// `deployed`.
    Deployed,
    /// `failed`.
    Failed,
    /// `superseded`.
    Superseded,
    /// `uninstalled`, or every secret of the release deleted.
    Uninstalled,
}

/// One line of a container's log.
#[derive(SimpleObject)]
pub struct LogLine {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// RFC 3339 UTC, or null without a valid kubelet prefix.
    pub timestamp: Option<String>,
    /// The inferred level.
    pub level: EventLevel,
    /// The line without its timestamp.
    pub message: String,
}

/// A Kubernetes event.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's uid.
    pub id: async_graphql::ID,
    /// Warning → WARN (ERROR for failures), otherwise INFO.
    pub level: EventLevel,
    /// When it last happened, RFC 3339 UTC.
    pub timestamp: String,
    /// The event's namespace.
    pub namespace: String,
    /// `Kind/name` of the involved object.
    pub involved_object: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
    /// How many times it happened.
    pub count: i32,
}

/// A workload's status record.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Workload {
    /// `<cluster>/<namespace>/<kind>/<name>`.
    pub id: async_graphql::ID,
    /// The kind.
    pub kind: WorkloadKind,
    /// The name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    /// Ready replicas (succeeded completions for a job, active jobs for a cron job).
    pub ready: i32,
    /// Desired replicas (completions for a job).
    pub desired: i32,
    /// The status rules of `spec/streams.md`.
    pub status: WorkloadStatus,
    /// Container restarts summed over the workload's pods (by its selector).
    pub restarts: i32,
    /// The first container's image.
    pub image: String,
    /// The workload's labels.
    pub labels: Option<async_graphql::Json<serde_json::Value>>,
}

/// A Helm release.
#[derive(SimpleObject)]
pub struct HelmRelease {
    /// `<namespace>/<name>`.
    pub id: async_graphql::ID,
    /// The release name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    /// The chart.
    pub chart: String,
    /// The chart version.
    pub chart_version: String,
    /// The app version.
    pub app_version: String,
    /// The revision.
    pub revision: i32,
    /// The status.
    pub status: HelmStatus,
    /// RFC 3339 UTC.
    pub first_deployed: Option<String>,
    /// RFC 3339 UTC.
    pub last_deployed: Option<String>,
    /// The description.
    pub description: String,
}

/// The root subscription.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// A container's log (the pod spec's first container by default): the last
    /// `tailLines`, then, with `follow`, the live tail until the log ends.
    #[allow(clippy::too_many_arguments)]
    #[graphql(name = "k8sPodLogs")]
    async fn k8s_pod_logs(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        pod: String,
        container: Option<String>,
        #[graphql(default_with = "Some(200)")] tail_lines: Option<i32>,
        #[graphql(default_with = "Some(true)")] follow: Option<bool>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<LogLine>>> {
        let context = ctx.data::<OperationContext>()?;
        name_arg("namespace", &namespace, NameRule::Label)?;
        name_arg("pod", &pod, NameRule::Subdomain(OBJECT_NAME))?;
        let container = container.filter(|c| !c.is_empty());
        if let Some(container) = &container {
            name_arg("container", container, NameRule::Label)?;
        }
        // `Int = 200` and `Boolean = true` (spec/streams.md): an explicit `null` means
        // the default as much as an omitted argument does.
        let tail_lines = tail_lines.unwrap_or(200);
        let follow = follow.unwrap_or(true);
        let request = logs::LogRequest {
            cluster,
            namespace,
            pod,
            container,
            tail_lines,
            follow,
        };
        logs::stream(context, request).await
    }

    /// Events observed after subscribe, of one namespace or all.
    #[graphql(name = "k8sEvents")]
    async fn k8s_events(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
        let context = ctx.data::<OperationContext>()?;
        let key = StreamKey {
            cluster,
            kind: "events".to_string(),
            namespace: namespace_arg(namespace)?,
            selector: None,
        };
        let session = open(context, key).await?;
        Ok(events::stream(session).boxed())
    }

    /// One workload's status now, then whenever ready, desired, status, restarts or
    /// image change; completes when the workload is deleted.
    #[graphql(name = "k8sWorkloadStatus")]
    async fn k8s_workload_status(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        kind: WorkloadKind,
        name: String,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Workload>>> {
        let context = ctx.data::<OperationContext>()?;
        name_arg("namespace", &namespace, NameRule::Label)?;
        let longest = match kind {
            WorkloadKind::CronJob => CRON_JOB_NAME,
            _ => OBJECT_NAME,
        };
        name_arg("name", &name, NameRule::Subdomain(longest))?;
        workload::stream(context, cluster, namespace, kind, name).await
    }

    /// A Helm release's latest revision now, then a record whenever a revision is
    /// written or its status changes; UNINSTALLED and complete when every Secret of
    /// the release is deleted.
    #[graphql(name = "k8sHelmReleaseStatus")]
    async fn k8s_helm_release_status(
        &self,
        ctx: &Context<'_>,
        cluster: String,
        namespace: String,
        name: String,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<HelmRelease>>> {
        let context = ctx.data::<OperationContext>()?;
        name_arg("namespace", &namespace, NameRule::Label)?;
        name_arg("name", &name, NameRule::Subdomain(RELEASE_NAME))?;
        helm::stream(context, cluster, namespace, name).await
    }
}
