//! Kind plugin for core/v1 `Pod` → the SPA's Pod summary (`spec/dtos.md` 4.1).
//!
//! The interesting part is [`display_status`], a kubectl-style STATUS column frozen at
//! the older kubectl behaviour Periscope reproduces.

use periscope_plugin_sdk::{Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;
use serde::de::IgnoredAny;

/// The pods mapper.
pub struct Pods;

/// The fields of a Pod this plugin reads.
#[object]
#[derive(Debug)]
pub struct Pod {
    metadata: Meta,
    spec: PodSpec,
    status: PodStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    node_name: String,
    containers: Vec<IgnoredAny>,
    init_containers: Vec<IgnoredAny>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    phase: String,
    reason: String,
    #[serde(rename = "podIP")]
    pod_ip: String,
    conditions: Vec<Condition>,
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    ready: bool,
    restart_count: i64,
    state: ContainerState,
}

#[object]
#[derive(Debug)]
struct ContainerState {
    waiting: Option<Waiting>,
    running: Option<IgnoredAny>,
    terminated: Option<Terminated>,
}

#[object]
#[derive(Debug)]
struct Waiting {
    reason: String,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct Terminated {
    reason: String,
    signal: i64,
    exit_code: i64,
}

/// The Pod summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDto {
    name: String,
    namespace: String,
    phase: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    node_name: String,
    #[serde(rename = "podIP", skip_serializing_if = "String::is_empty")]
    pod_ip: String,
    ready: String,
    restarts: i64,
    created_at: Timestamp,
}

impl Mapper for Pods {
    type Object = Pod;
    type Dto = PodDto;

    // Not the images, resources, env, probes, volumes or mounts: the summary counts
    // containers and reads their states, so most of a pod's bytes stay on the host.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "metadata.deletionTimestamp",
        "spec.nodeName",
        "spec.containers[].name",
        "spec.initContainers[].name",
        "status.phase",
        "status.reason",
        "status.podIP",
        "status.conditions[].type",
        "status.conditions[].status",
        "status.containerStatuses[].ready",
        "status.containerStatuses[].restartCount",
        "status.containerStatuses[].state",
        "status.initContainerStatuses[].ready",
        "status.initContainerStatuses[].restartCount",
        "status.initContainerStatuses[].state",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("core", "v1", "Pod", "pods")
    }

    fn map(pod: Pod, _ctx: &Context) -> Result<PodDto, MapError> {
        let ready = pod.status.container_statuses.iter().filter(|c| c.ready).count();
        let restarts = pod.status.container_statuses.iter().map(|c| c.restart_count).sum();
        Ok(PodDto {
            phase: display_status(&pod),
            ready: format!("{ready}/{}", pod.spec.containers.len()),
            restarts,
            node_name: pod.spec.node_name,
            pod_ip: pod.status.pod_ip,
            created_at: pod.metadata.creation_timestamp,
            name: pod.metadata.name,
            namespace: pod.metadata.namespace,
        })
    }
}

/// The kubectl-style display status of spec 4.1, steps 1 to 5.
fn display_status(pod: &Pod) -> String {
    let status = &pod.status;
    // 1. Phase, overridden by a pod-level reason (Evicted, NodeLost).
    let mut reason = if status.reason.is_empty() {
        status.phase.clone()
    } else {
        status.reason.clone()
    };

    // 2. The first init container that did not exit 0 decides, and the pod is initializing.
    let mut initializing = false;
    for (i, init) in status.init_container_statuses.iter().enumerate() {
        let state = &init.state;
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = if !t.reason.is_empty() {
                format!("Init:{}", t.reason)
            } else if t.signal != 0 {
                format!("Init:Signal:{}", t.signal)
            } else {
                format!("Init:ExitCode:{}", t.exit_code)
            };
        } else if let Some(w) = state
            .waiting
            .as_ref()
            .filter(|w| !w.reason.is_empty() && w.reason != "PodInitializing")
        {
            reason = format!("Init:{}", w.reason);
        } else {
            reason = format!("Init:{i}/{}", pod.spec.init_containers.len());
        }
        initializing = true;
        break;
    }

    // 3. Otherwise app containers, last to first, so the lowest index has the final say.
    if !initializing {
        let mut has_running = false;
        for container in status.container_statuses.iter().rev() {
            let state = &container.state;
            if let Some(w) = state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
                reason = w.reason.clone();
            } else if let Some(t) = &state.terminated {
                reason = if !t.reason.is_empty() {
                    t.reason.clone()
                } else if t.signal != 0 {
                    format!("Signal:{}", t.signal)
                } else {
                    format!("ExitCode:{}", t.exit_code)
                };
            } else if container.ready && state.running.is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = Condition::is_true(&status.conditions, "Ready");
            reason = if ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    // 4. Deletion overrides everything.
    if pod.metadata.is_deleting() {
        return if status.reason == "NodeLost" {
            "Unknown"
        } else {
            "Terminating"
        }
        .to_string();
    }
    reason
}

export_mapper!(Pods);

periscope_plugin_sdk::golden_tests!(Pods);
