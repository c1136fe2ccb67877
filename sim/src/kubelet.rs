//! What the control plane and kubelet would add to a new object: defaults on create and
//! the status of a pod that is scheduled and running.
//!
//! Pods created through the API start `Running` and ready at once on a simulated node
//! (there is no image to pull), so a test that creates a pod can read its logs straight
//! away. The demo scenario uses the same builders to move pods through other states.

use serde_json::{Value, json};

use crate::meta;
use crate::resource;
use crate::store::Store;

/// The node a pod lands on when the cluster has none.
pub(crate) const FALLBACK_NODE: &str = "sim-node-1";

/// A container state, as it appears in `containerStatuses[].state`.
#[derive(Debug, Clone)]
pub(crate) enum ContainerState {
    /// `waiting` with a reason (`ContainerCreating`, `CrashLoopBackOff`…).
    Waiting(&'static str),
    /// `running` since the time given.
    Running(String),
    /// `terminated` with an exit code and reason, started and finished at the times given.
    Terminated {
        exit_code: i64,
        reason: &'static str,
        started: String,
        finished: String,
    },
}

impl ContainerState {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Waiting(reason) => json!({ "waiting": { "reason": reason } }),
            Self::Running(started) => json!({ "running": { "startedAt": started } }),
            Self::Terminated {
                exit_code,
                reason,
                started,
                finished,
            } => json!({ "terminated": {
                "exitCode": exit_code, "reason": reason,
                "startedAt": started, "finishedAt": finished,
            }}),
        }
    }
}

/// A `containerStatuses[]` entry.
pub(crate) fn container_status(
    name: &str,
    image: &str,
    state: &ContainerState,
    restarts: i64,
    last_state: Option<&ContainerState>,
) -> Value {
    let running = matches!(state, ContainerState::Running(_));
    json!({
        "name": name,
        "image": image,
        "imageID": format!("docker.io/library/{image}@sha256:{:064x}", 0),
        "containerID": format!("containerd://{:064x}", hash(name) ^ (restarts as u64)),
        "ready": running,
        "started": running,
        "restartCount": restarts,
        "state": state.to_json(),
        "lastState": last_state.map_or(json!({}), ContainerState::to_json),
    })
}

/// Pod conditions for a pod whose containers are (or are not) all ready.
pub(crate) fn pod_conditions(ready: bool, at: &str) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!([
        { "type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": at },
        { "type": "Initialized", "status": "True", "lastTransitionTime": at },
        { "type": "Ready", "status": ready, "lastTransitionTime": at },
        { "type": "ContainersReady", "status": ready, "lastTransitionTime": at },
        { "type": "PodScheduled", "status": "True", "lastTransitionTime": at },
    ])
}

/// A stable 64-bit hash of a string (FNV-1a).
pub(crate) fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A pod IP derived from the pod's namespace and name.
pub(crate) fn pod_ip(namespace: &str, name: &str) -> String {
    let h = hash(&format!("{namespace}/{name}"));
    format!("10.244.{}.{}", (h >> 8) % 16, h % 250 + 2)
}

/// The status of a pod whose containers all run, ready, since `started`.
pub(crate) fn running_status(pod: &Value, host_ip: &str, started: &str) -> Value {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            container_status(
                c.get("name").and_then(Value::as_str).unwrap_or("app"),
                c.get("image").and_then(Value::as_str).unwrap_or("busybox"),
                &ContainerState::Running(started.to_string()),
                0,
                None,
            )
        })
        .collect();
    let ip = pod_ip(meta::namespace(pod), meta::name(pod));
    json!({
        "phase": "Running",
        "conditions": pod_conditions(true, started),
        "hostIP": host_ip,
        "hostIPs": [{ "ip": host_ip }],
        "podIP": ip,
        "podIPs": [{ "ip": ip }],
        "startTime": started,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// Fills in what the apiserver adds to a new namespace: its name label and phase.
pub(crate) fn admit_namespace(_store: &Store, obj: &mut Value) {
    let name = meta::name(obj).to_string();
    let labels = meta::metadata_mut(obj).entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    obj["status"] = json!({ "phase": "Active" });
}

/// Fills in what the apiserver and kubelet add to a new pod: the spec's defaults, a
/// node, and a running status.
pub(crate) fn admit_pod(store: &Store, pod: &mut Value) {
    if !pod.get("spec").is_some_and(Value::is_object) {
        pod["spec"] = json!({});
    }
    let spec = &mut pod["spec"];
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
    ] {
        if spec.get(field).is_none()
            && let Some(map) = spec.as_object_mut()
        {
            map.insert(field.into(), value);
        }
    }
    if spec.get("nodeName").and_then(Value::as_str).is_none() {
        spec["nodeName"] = json!(first_node(store));
    }
    let host_ip = format!(
        "172.18.0.{}",
        hash(spec["nodeName"].as_str().unwrap_or_default()) % 200 + 2
    );
    let now = meta::now_timestamp();
    pod["status"] = running_status(pod, &host_ip, &now);
}

fn first_node(store: &Store) -> String {
    resource::builtin_id("nodes")
        .and_then(|nodes| store.list(nodes, None, None, Some(1), None).items.first().cloned())
        .map_or_else(|| FALLBACK_NODE.to_string(), |n| meta::name(&n).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admitted_pods_run_on_a_node() {
        let store = Store::new(10, 0);
        let mut pod = json!({"metadata": {"name": "p", "namespace": "default"},
                             "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
        admit_pod(&store, &mut pod);
        assert_eq!(pod["spec"]["nodeName"], FALLBACK_NODE);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
        assert!(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    }
}
