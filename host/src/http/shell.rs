//! The SPA's session shell (`spec/spa-shell.md`): who the user is, which clusters
//! exist, the fleet page and a cluster's overview. Periscope's SPA asks for these
//! before any list page opens a stream; without them it stays on its sign-in screen.
//!
//! - **From the hub, nothing cached here.** Fleet and overview read the hub's live
//!   stores of the kinds they count ([`Hub::list`](crate::hub::Hub::list)): a warm
//!   upstream answers from memory, a cold one is started cluster-wide, answers after
//!   its first list and lingers, so the next page load is served from memory too.
//!   Kinds are read concurrently, and so are the fleet's clusters.
//! - **RBAC like a poll.** Each kind is reviewed as a cluster-wide `list` by the user
//!   ([`review`]): refused, it is `forbidden` and counts 0; allowed in some
//!   namespaces, only those are counted. A kind no plugin serves is `unavailable`.
//! - **The shell's upstreams are not the user's.** They are cluster-wide watches of a
//!   fixed set of kinds, which no user can multiply, so they count against a
//!   per-cluster shell subject ([`shell_subject`]) rather than the user's
//!   `watch.upstreams_per_user`; an overview would otherwise spend 10 of a user's 16
//!   before their first list page. The per-cluster cap still applies.
//! - **A cluster that cannot be read** is `unreachable` in the fleet, with the first
//!   failure as `error`; its overview marks each failed kind `unavailable` and is a 503
//!   only when nothing at all could be read.

mod tally;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ApiError, AppState, Authenticated, plain, review};
use crate::auth::Actor;
use crate::auth::rbac::Access;
use crate::cluster::Cluster;
use crate::hub::{ListError, StreamKey};
use tally::{Health, HotSignal, PodPhases};

/// `lastContact` of a cluster that could not be read: Go's zero time, as Periscope
/// writes an unset timestamp (`spec/dtos.md` 1.2).
const NEVER: &str = "0001-01-01T00:00:00Z";

// === identity ===

/// `GET /api/auth/whoami`: the caller's identity (401 before this, without a token).
pub(super) async fn whoami(State(state): State<AppState>, Authenticated(actor): Authenticated) -> Json<Value> {
    Json(json!({
        "subject": actor.subject,
        "email": actor.email,
        "groups": actor.groups,
        "mode": auth_mode(&state),
        "authzMode": "",
        "auditEnabled": false,
        "expiresAt": actor.expires_at.unwrap_or(0),
    }))
}

/// `GET /api/auth/config` (public): how the SPA's sign-in screen should behave.
pub(super) async fn auth_config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "authMode": auth_mode(&state) }))
}

/// `dev` with auth off, `oidc` with JWT auth: the SPA's names for the two.
fn auth_mode(state: &AppState) -> &'static str {
    if state.auth.is_disabled() { "dev" } else { "oidc" }
}

/// `GET /api/clusters`: every configured cluster; `execEnabled` is always false, as
/// this host serves no exec and the SPA offers a shell when the key is missing.
pub(super) async fn clusters(State(state): State<AppState>) -> Json<Value> {
    let clusters: Vec<Value> = state
        .hub
        .clusters()
        .iter()
        .map(|c| json!({ "name": c.name, "backend": c.backend, "execEnabled": false }))
        .collect();
    Json(json!({ "clusters": clusters }))
}

// === reading the hub ===

/// Why a kind could not be read: the `error` of a fleet entry.
#[derive(Debug, Clone, Serialize)]
struct Failure {
    code: &'static str,
    message: String,
}

/// What the shell could read of one kind on one cluster.
#[derive(Debug)]
enum Read<T> {
    /// What the user may list: everything, or the namespaces RBAC allows.
    Rows(Vec<T>),
    /// RBAC lets the user list none of it.
    Forbidden,
    /// No plugin serves the kind.
    Unavailable,
    /// The cluster (or its access review) failed.
    Failed(Failure),
}

impl<T> Read<T> {
    /// The rows; none unless the kind was read.
    fn rows(&self) -> &[T] {
        match self {
            Read::Rows(rows) => rows,
            Read::Forbidden | Read::Unavailable | Read::Failed(_) => &[],
        }
    }

    /// The overview's `accessibility` value.
    fn accessibility(&self) -> &'static str {
        match self {
            Read::Rows(_) => "ok",
            Read::Forbidden => "forbidden",
            Read::Unavailable | Read::Failed(_) => "unavailable",
        }
    }

    fn failure(&self) -> Option<&Failure> {
        match self {
            Read::Failed(failure) => Some(failure),
            Read::Rows(_) | Read::Forbidden | Read::Unavailable => None,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, Read::Rows(_))
    }
}

/// The subject the shell's upstreams on `cluster` are started by (see the module docs).
fn shell_subject(cluster: &Cluster) -> String {
    format!("periscope:shell/{}", cluster.name)
}

/// `token`'s DTOs on `cluster` that `actor` may list, parsed as `T`.
async fn read<T: DeserializeOwned>(state: &AppState, cluster: &Cluster, actor: &Actor, token: &str) -> Read<T> {
    let Some(plugin) = state.hub.registry().get(token).cloned() else {
        return Read::Unavailable;
    };
    let access = match review(state, cluster, actor, plugin.info(), None, &["list"]).await {
        Ok(Access::Denied) => return Read::Forbidden,
        Ok(access) => access,
        Err(error) => {
            tracing::warn!(%error, cluster = %cluster.name, kind = token, "access review failed");
            return Read::Failed(Failure {
                code: "access_review_failed",
                message: error.to_string(),
            });
        }
    };
    let key = StreamKey {
        cluster: cluster.name.clone(),
        kind: token.to_string(),
        namespace: None,
        selector: None,
    };
    let subject = shell_subject(cluster);
    let failed = |code: &'static str, message: String| {
        tracing::warn!(cluster = %cluster.name, kind = token, %message, "cannot read a kind for the SPA shell");
        Read::Failed(Failure { code, message })
    };
    match state.hub.list(key, state.list_timeout, access.only(), &subject).await {
        Ok(items) => match items.iter().map(|item| serde_json::from_slice(item)).collect() {
            Ok(rows) => Read::Rows(rows),
            Err(error) => failed(
                "bad_dto",
                format!("a {token} DTO does not have the fields of spec/dtos.md: {error}"),
            ),
        },
        Err(ListError::Upstream { message, .. }) => failed("upstream_failed", format!("{token}: {message}")),
        Err(ListError::Timeout) => failed(
            "timeout",
            format!("{token}: no first list within {:?}", state.list_timeout),
        ),
        Err(ListError::Subscribe(error)) => failed("upstream_refused", format!("{token}: {error}")),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| NEVER.to_string())
}

// === the fleet ===

/// `GET /api/fleet`: every cluster's health, as far as the user may see it.
pub(super) async fn fleet(State(state): State<AppState>, Authenticated(actor): Authenticated) -> Json<Value> {
    let now = OffsetDateTime::now_utc();
    let entries =
        futures::future::join_all(state.hub.clusters().iter().map(|c| fleet_entry(&state, c, &actor, now))).await;
    let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
    for entry in &entries {
        *by_status.entry(entry.status).or_default() += 1;
    }
    Json(json!({
        "rollup": {
            "totalClusters": entries.len(),
            "byStatus": by_status,
            "byEnvironment": {},
            "generatedAt": rfc3339(now),
        },
        "clusters": entries,
    }))
}

/// One cluster of the fleet page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetEntry {
    name: String,
    backend: &'static str,
    status: &'static str,
    last_contact: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Summary>,
    hot_signals: Vec<HotSignal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    nodes: Ready,
    pods: PodSummary,
    namespaces: u64,
    stuck_or_failed: u64,
}

#[derive(Debug, Serialize)]
struct Ready {
    ready: u64,
    total: u64,
}

#[derive(Debug, Serialize)]
struct PodSummary {
    running: u64,
    pending: u64,
    failed: u64,
    total: u64,
}

async fn fleet_entry(state: &AppState, cluster: &Cluster, actor: &Actor, now: OffsetDateTime) -> FleetEntry {
    let (nodes, pods, namespaces) = futures::join!(
        read::<tally::Node>(state, cluster, actor, "nodes"),
        read::<tally::Pod>(state, cluster, actor, "pods"),
        read::<tally::Counted>(state, cluster, actor, "namespaces"),
    );
    let mut entry = FleetEntry {
        name: cluster.name.clone(),
        backend: cluster.backend,
        status: "unknown",
        last_contact: rfc3339(now),
        summary: None,
        hot_signals: Vec::new(),
        error: None,
    };
    let failure = [nodes.failure(), pods.failure(), namespaces.failure()]
        .into_iter()
        .flatten()
        .next();
    if let Some(failure) = failure {
        entry.status = "unreachable";
        entry.last_contact = NEVER.to_string();
        entry.error = Some(failure.clone());
        return entry;
    }
    if !(nodes.is_read() || pods.is_read() || namespaces.is_read()) {
        let forbidden =
            [nodes.accessibility(), pods.accessibility(), namespaces.accessibility()].contains(&"forbidden");
        entry.status = if forbidden { "denied" } else { "unknown" };
        return entry;
    }
    let ready = nodes.rows().iter().filter(|n| tally::is_ready(n)).count() as u64;
    let phases = PodPhases::of(pods.rows());
    let stuck_or_failed = phases.stuck + phases.failed;
    entry.status = if ready == nodes.rows().len() as u64 && stuck_or_failed == 0 {
        "healthy"
    } else {
        "degraded"
    };
    entry.summary = Some(Summary {
        nodes: Ready {
            ready,
            total: nodes.rows().len() as u64,
        },
        pods: PodSummary {
            running: phases.running,
            pending: phases.pending,
            failed: phases.failed,
            total: pods.rows().len() as u64,
        },
        namespaces: namespaces.rows().len() as u64,
        stuck_or_failed,
    });
    entry.hot_signals = tally::hot_signals(pods.rows());
    entry
}

// === the overview ===

/// The overview page of one cluster.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    kubernetes_version: String,
    provider: &'static str,
    node_count: u64,
    node_ready_count: u64,
    pod_count: u64,
    namespace_count: u64,
    cpu_allocatable: String,
    memory_allocatable: String,
    metrics_available: bool,
    accessibility: Accessibility,
    workloads: Workloads,
    pod_phases: PodPhases,
    needs_attention: Vec<tally::Attention>,
    storage: Storage,
}

#[derive(Debug, Serialize)]
struct Accessibility {
    nodes: &'static str,
    pods: &'static str,
    namespaces: &'static str,
    metrics: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Workloads {
    deployments: Health,
    stateful_sets: Health,
    daemon_sets: Health,
    jobs: Health,
    cron_jobs: Health,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Storage {
    pv_count: u64,
    pvc_bound: u64,
    pvc_pending: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_provisioned: Option<String>,
}

/// `GET /api/clusters/{cluster}/dashboard`: the overview, from the live stores.
pub(super) async fn dashboard(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(name): Path<String>,
) -> Response {
    let Some(cluster) = state.hub.clusters().get(&name) else {
        return plain(StatusCode::NOT_FOUND, "cluster not found");
    };
    let (s, c, a) = (&state, cluster, &actor);
    let (nodes, pods, namespaces, deployments, statefulsets, daemonsets, jobs, cronjobs, pvs, pvcs) = futures::join!(
        read::<tally::Node>(s, c, a, "nodes"),
        read::<tally::Pod>(s, c, a, "pods"),
        read::<tally::Counted>(s, c, a, "namespaces"),
        read::<tally::Replicated>(s, c, a, "deployments"),
        read::<tally::Replicated>(s, c, a, "statefulsets"),
        read::<tally::DaemonSet>(s, c, a, "daemonsets"),
        read::<tally::Status>(s, c, a, "jobs"),
        read::<tally::CronJob>(s, c, a, "cronjobs"),
        read::<tally::Status>(s, c, a, "pvs"),
        read::<tally::Status>(s, c, a, "pvcs"),
    );
    let read_any = [
        nodes.is_read(),
        pods.is_read(),
        namespaces.is_read(),
        deployments.is_read(),
        statefulsets.is_read(),
        daemonsets.is_read(),
        jobs.is_read(),
        cronjobs.is_read(),
        pvs.is_read(),
        pvcs.is_read(),
    ]
    .contains(&true);
    let failure = [
        nodes.failure(),
        pods.failure(),
        namespaces.failure(),
        deployments.failure(),
        statefulsets.failure(),
        daemonsets.failure(),
        jobs.failure(),
        cronjobs.failure(),
        pvs.failure(),
        pvcs.failure(),
    ]
    .into_iter()
    .flatten()
    .next();
    if let (false, Some(failure)) = (read_any, failure) {
        let message = format!("cluster {name:?} cannot be read: {}", failure.message);
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cluster_unreachable", message).into_response();
    }
    let pod_rows = pods.rows();
    let volume_claims = |status: &str| pvcs.rows().iter().filter(|p| p.status == status).count() as u64;
    let dashboard = Dashboard {
        kubernetes_version: tally::kubernetes_version(nodes.rows()),
        provider: if cluster.backend == "sim" { "sim" } else { "" },
        node_count: nodes.rows().len() as u64,
        node_ready_count: nodes.rows().iter().filter(|n| tally::is_ready(n)).count() as u64,
        pod_count: pod_rows.len() as u64,
        namespace_count: namespaces.rows().len() as u64,
        cpu_allocatable: tally::total_cpu(nodes.rows()),
        memory_allocatable: tally::total_memory(nodes.rows()),
        metrics_available: false,
        accessibility: Accessibility {
            nodes: nodes.accessibility(),
            pods: pods.accessibility(),
            namespaces: namespaces.accessibility(),
            metrics: "unavailable",
        },
        workloads: Workloads {
            deployments: Health::of(deployments.rows(), tally::replicas_ready),
            stateful_sets: Health::of(statefulsets.rows(), tally::replicas_ready),
            daemon_sets: Health::of(daemonsets.rows(), tally::daemons_ready),
            jobs: Health::of(jobs.rows(), tally::job_complete),
            cron_jobs: Health::of(cronjobs.rows(), tally::cron_active),
        },
        pod_phases: PodPhases::of(pod_rows),
        needs_attention: tally::needs_attention(pod_rows),
        storage: Storage {
            pv_count: pvs.rows().len() as u64,
            pvc_bound: volume_claims("Bound"),
            pvc_pending: volume_claims("Pending"),
            total_provisioned: tally::total_provisioned(pvs.rows()),
        },
    };
    Json(dashboard).into_response()
}
