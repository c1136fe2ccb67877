//! Host views: compact projections of a kind that no plugin's DTO carries, served by
//! the hub exactly like a kind (one upstream per scope, fan-out, store, ring).
//!
//! A plugin's DTO is the SPA's frozen wire format (spec/dtos.md section 4); it has no
//! selector, image or conditions, so a workload's status cannot be derived from it.
//! A view maps the same raw objects natively into a status record (`status:<kind>`),
//! so every `k8sWorkloadStatus` subscriber of a scope shares one upstream watch, as
//! SSE subscribers of a kind do. Views are hub data, not transport data: they know no
//! GraphQL.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::plugin::{CallError, Fields, KindInfo, Plugin};

/// The prefix of view tokens (`status:deployments`).
pub const STATUS_PREFIX: &str = "status:";

/// What maps an upstream's objects: a kind's plugin or a host view.
#[derive(Debug, Clone)]
pub enum Mapper {
    /// A WebAssembly kind plugin (the kind's DTO).
    Plugin(Arc<Plugin>),
    /// A host view.
    View(Arc<View>),
}

impl Mapper {
    /// The kind the mapper reads (token, API resource, scope).
    pub fn info(&self) -> &KindInfo {
        match self {
            Mapper::Plugin(plugin) => plugin.info(),
            Mapper::View(view) => &view.info,
        }
    }

    /// How long the plugin still rests, when it is quarantined (views never are).
    pub fn quarantined_for(&self) -> Option<std::time::Duration> {
        match self {
            Mapper::Plugin(plugin) => plugin.quarantined_for(),
            Mapper::View(_) => None,
        }
    }

    /// Maps one raw object.
    pub fn to_dto(&self, object: &str, now: time::OffsetDateTime) -> Result<String, CallError> {
        match self {
            Mapper::Plugin(plugin) => plugin.to_dto(object, now),
            Mapper::View(view) => view.map(object),
        }
    }

    /// Maps many raw objects, one result each, in order.
    pub fn to_dto_batch(&self, objects: &[String], now: time::OffsetDateTime) -> Vec<Result<String, CallError>> {
        match self {
            Mapper::Plugin(plugin) => plugin.to_dto_batch(objects, now),
            Mapper::View(view) => objects.iter().map(|o| view.map(o)).collect(),
        }
    }
}

/// A host view of one kind.
#[derive(Debug)]
pub struct View {
    /// The view's token (`status:pods`) and the API resource it reads.
    pub info: KindInfo,
    map: fn(&Value) -> Value,
}

impl View {
    fn map(&self, object: &str) -> Result<String, CallError> {
        let rejected = |message: String| CallError::Rejected {
            token: self.info.token.clone(),
            message,
        };
        let value: Value = serde_json::from_str(object).map_err(|e| rejected(format!("malformed object: {e}")))?;
        serde_json::to_string(&(self.map)(&value)).map_err(|e| rejected(e.to_string()))
    }
}

/// The view named `token`, given the plugin of the kind it reads (`status:deployments`
/// reads what the `deployments` plugin reads).
pub fn find(token: &str, base: Option<&Arc<Plugin>>) -> Option<Arc<View>> {
    let map = status_mapper(token.strip_prefix(STATUS_PREFIX)?)?;
    Some(Arc::new(View {
        info: KindInfo {
            token: token.to_string(),
            snapshot: None,
            fields: Fields::default(),
            ..base?.info().clone()
        },
        map,
    }))
}

/// The kind a view token reads (`status:pods` → `pods`).
pub fn base_kind(token: &str) -> Option<&str> {
    token.strip_prefix(STATUS_PREFIX)
}

/// A view of a resource no plugin serves (`helm:releases` reads core/v1 Secrets).
///
/// Such resources are hub sources only: they are not kinds, so the SPA's registry,
/// `/api/features` and the SSE routes never see them; only operations that name the
/// view (with RBAC on the resource it reads) do.
pub fn builtin(token: &str) -> Option<Arc<View>> {
    let (kind, plural, map): (&str, &str, fn(&Value) -> Value) = match token {
        super::helm::RELEASES => ("Secret", "secrets", super::helm::release_record),
        _ => return None,
    };
    Some(Arc::new(View {
        info: KindInfo {
            token: token.to_string(),
            group_alias: "core".to_string(),
            api_group: String::new(),
            api_version: "v1".to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced: true,
            list_key: plural.to_string(),
            snapshot: None,
            fields: Fields::default(),
        },
        map,
    }))
}

fn status_mapper(kind: &str) -> Option<fn(&Value) -> Value> {
    Some(match kind {
        "pods" => pod_status,
        "deployments" | "statefulsets" | "daemonsets" | "replicasets" | "jobs" | "cronjobs" => workload_status,
        _ => return None,
    })
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn labels(object: &Value) -> Value {
    match &object["metadata"]["labels"] {
        Value::Object(map) => Value::Object(map.clone()),
        _ => Value::Object(Map::new()),
    }
}

/// True when `conditions` has one of `kind` whose status is `status` (and, when given,
/// whose reason is `reason`).
fn condition(object: &Value, kind: &str, status: &str, reason: Option<&str>) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == kind && c["status"] == status && reason.is_none_or(|r| c["reason"] == r))
    })
}

/// A pod's part of a workload's status: labels (for selectors), restarts, readiness,
/// whether a container is crash-looping, and when a container last ended before a
/// restart (the newest `lastState.terminated.finishedAt`, RFC 3339, or null).
fn pod_status(pod: &Value) -> Value {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
    let all = || {
        statuses
            .iter()
            .chain(pod["status"]["initContainerStatuses"].as_array().into_iter().flatten())
    };
    let crash_loop = all().any(|s| s["state"]["waiting"]["reason"] == "CrashLoopBackOff");
    // RFC 3339 UTC timestamps of one format order as strings.
    let last_restart = all()
        .filter(|s| int(&s["restartCount"]) > 0)
        .filter_map(|s| s["lastState"]["terminated"]["finishedAt"].as_str())
        .max();
    let ready = !statuses.is_empty() && statuses.iter().all(|s| s["ready"] == true);
    json!({
        "name": pod["metadata"]["name"],
        "namespace": pod["metadata"]["namespace"],
        "labels": labels(pod),
        "restarts": restarts,
        "ready": ready,
        "crashLoop": crash_loop,
        "lastRestart": last_restart,
        "terminating": !pod["metadata"]["deletionTimestamp"].is_null(),
    })
}

/// A workload's status record: desired and ready replicas, the first container's image,
/// the pod selector, and the conditions the status rules read.
fn workload_status(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let spec = &object["spec"];
    let status = &object["status"];
    let template = match kind {
        "CronJob" => &spec["jobTemplate"]["spec"]["template"],
        _ => &spec["template"],
    };
    let image = template["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
    // The API server defaults spec.replicas to 1; objects written without it (the sim)
    // mean the same.
    let replicas = || spec["replicas"].as_i64().unwrap_or(1);
    let (desired, ready) = match kind {
        "DaemonSet" => (int(&status["desiredNumberScheduled"]), int(&status["numberReady"])),
        "Job" => (spec["completions"].as_i64().unwrap_or(1), int(&status["succeeded"])),
        // A cron job has no replicas: its runs in progress are what it wants done, none
        // of them done yet (each run is a Job of its own).
        "CronJob" => (status["active"].as_array().map_or(0, |a| a.len() as i64), 0),
        _ => (replicas(), int(&status["readyReplicas"])),
    };
    let updated = match kind {
        "DaemonSet" => int(&status["updatedNumberScheduled"]),
        "Job" | "CronJob" => desired,
        "ReplicaSet" => int(&status["replicas"]),
        _ => int(&status["updatedReplicas"]),
    };
    let observed = status["observedGeneration"]
        .as_i64()
        .is_none_or(|observed| observed >= int(&object["metadata"]["generation"]));
    json!({
        "kind": kind,
        "name": object["metadata"]["name"],
        "namespace": object["metadata"]["namespace"],
        "labels": labels(object),
        "selector": spec["selector"]["matchLabels"],
        "image": image,
        "desired": desired,
        "ready": ready,
        "updated": updated,
        "observed": observed,
        "progressDeadlineExceeded": condition(object, "Progressing", "False", Some("ProgressDeadlineExceeded")),
        "failed": condition(object, "Failed", "True", None) || (kind == "Job" && int(&status["failed"]) > 0 && spec["backoffLimit"].as_i64().is_some_and(|limit| int(&status["failed"]) > limit)),
        "complete": condition(object, "Complete", "True", None),
        "active": int(&status["active"]),
        "lastScheduleTime": status["lastScheduleTime"],
        "lastSuccessfulTime": status["lastSuccessfulTime"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_status_sums_restarts_and_sees_crash_loops() {
        let pod = json!({
            "metadata": {"name": "a", "namespace": "shop", "labels": {"app": "a"}},
            "status": {"containerStatuses": [
                {"restartCount": 2, "ready": false, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"restartCount": 1, "ready": true, "state": {"running": {}}}
            ]}
        });
        let status = pod_status(&pod);
        assert_eq!(status["restarts"], 3);
        assert_eq!(status["crashLoop"], true);
        assert_eq!(status["ready"], false);
        assert_eq!(status["labels"]["app"], "a");
    }

    #[test]
    fn a_deployment_status_reads_replicas_image_and_deadline() {
        let deployment = json!({
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"image": "web:2"}]}}},
            "status": {"readyReplicas": 0, "observedGeneration": 2, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
            ]}
        });
        let status = workload_status(&deployment);
        assert_eq!(status["desired"], 1);
        assert_eq!(status["ready"], 0);
        assert_eq!(status["image"], "web:2");
        assert_eq!(status["selector"]["app"], "web");
        assert_eq!(status["progressDeadlineExceeded"], true);
        assert_eq!(status["observed"], true);
    }
}
