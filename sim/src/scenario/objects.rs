//! Builders for realistic objects, shaped after what a real cluster returns and what
//! periscope's DTO mappers read (`spec/dtos.md` section 4): container statuses with
//! states, conditions, owner references, load balancer ingress, capacity.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::kubelet::{self, ContainerState};
use crate::meta;
use crate::store::{ObjKey, Store, UpdateMode, random_suffix};

/// Writes objects into the store through the sim's own (unchecked) path.
pub(crate) struct Writer {
    store: Arc<Store>,
    pub rng: ChaCha8Rng,
}

/// A reference to an owner, for `ownerReferences`.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    pub fn of(obj: &Value) -> Self {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        Self {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
        }
    }

    fn to_json(&self) -> Value {
        json!([{
            "apiVersion": self.api_version, "kind": self.kind, "name": self.name,
            "uid": self.uid, "controller": true, "blockOwnerDeletion": true,
        }])
    }
}

/// How a pod being built looks.
#[derive(Debug, Clone)]
pub(crate) enum PodPhase {
    /// Scheduled, containers being created.
    Creating,
    /// Running and ready.
    Running,
    /// Crash-looping with this many restarts.
    CrashLoop(i64),
    /// Completed (a job's pod).
    Succeeded,
}

impl Writer {
    pub fn new(store: Arc<Store>, seed: u64) -> Self {
        Self {
            store,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xdead_beef),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A creation time some hours or days in the past, for seeded objects.
    pub fn past(&mut self) -> String {
        let secs = self.rng.random_range(3_600..14 * 86_400);
        meta::timestamp(OffsetDateTime::now_utc() - Duration::from_secs(secs))
    }

    pub fn suffix(&mut self) -> String {
        random_suffix(&mut self.rng)
    }

    /// Creates `obj` (kind from its apiVersion/kind), or replaces it if it exists.
    pub fn put(&self, obj: Value) -> Option<Arc<Value>> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let (id, _) = self.store.table().by_kind(api_version, kind)?;
        let result = if self.store.get(id, &ObjKey::of(&obj)).is_some() {
            self.store.update(id, obj, UpdateMode::Raw)
        } else {
            self.store.create(id, obj)
        };
        match result {
            Ok(o) => Some(o),
            Err(error) => {
                tracing::debug!(%error, "scenario write refused");
                None
            }
        }
    }

    pub fn namespace(&mut self, name: &str) -> Option<Arc<Value>> {
        let created = self.past();
        self.put(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": name, "creationTimestamp": created,
                          "labels": { "kubernetes.io/metadata.name": name } },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        }))
    }

    pub fn node(&mut self, name: &str, role: &str) -> Option<Arc<Value>> {
        let created = self.past();
        let ip = format!("172.18.0.{}", kubelet::hash(name) % 200 + 2);
        let cpu = ["4", "8", "16"][self.rng.random_range(0..3)];
        let memory = ["16393520Ki", "32781000Ki", "65842336Ki"][self.rng.random_range(0..3)];
        let mut labels = json!({
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": format!("zone-{}", kubelet::hash(name) % 3),
        });
        labels[format!("node-role.kubernetes.io/{role}")] = json!("");
        self.put(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "creationTimestamp": created, "labels": labels },
            "spec": { "podCIDR": format!("10.244.{}.0/24", kubelet::hash(name) % 16),
                      "providerID": format!("sim://{name}") },
            "status": {
                "capacity": { "cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "102626232Ki" },
                "allocatable": { "cpu": cpu, "memory": memory, "pods": "110" },
                "conditions": node_conditions(true, &created),
                "addresses": [ { "type": "InternalIP", "address": ip }, { "type": "Hostname", "address": name } ],
                "nodeInfo": {
                    "kubeletVersion": "v1.35.0", "kubeProxyVersion": "v1.35.0",
                    "containerRuntimeVersion": "containerd://2.1.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.8.0-sim", "operatingSystem": "linux", "architecture": "amd64",
                    "machineID": format!("{:032x}", kubelet::hash(name)), "systemUUID": "", "bootID": "",
                },
            },
        }))
    }

    /// A pod owned by `owner` with one container per image, in the given phase.
    #[allow(clippy::too_many_arguments)]
    pub fn pod(
        &mut self,
        ns: &str,
        name: &str,
        labels: &Value,
        owner: Option<&Owner>,
        containers: &[(&str, &str)],
        node: &str,
        phase: &PodPhase,
        created: Option<String>,
    ) -> Option<Arc<Value>> {
        let created = created.unwrap_or_else(meta::now_timestamp);
        let spec_containers: Vec<Value> = containers
            .iter()
            .map(|(cname, image)| {
                json!({
                    "name": cname, "image": image, "imagePullPolicy": "IfNotPresent",
                    "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
                    "resources": { "requests": { "cpu": "50m", "memory": "64Mi" } },
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                })
            })
            .collect();
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": ns, "labels": labels, "creationTimestamp": created },
            "spec": {
                "containers": spec_containers, "nodeName": node, "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
                "priority": 0, "enableServiceLinks": true,
            },
        });
        if let Some(owner) = owner {
            pod["metadata"]["ownerReferences"] = owner.to_json();
            if owner.kind == "Job" {
                pod["spec"]["restartPolicy"] = json!("Never");
            }
        }
        pod["status"] = pod_status(&pod, phase, &created);
        self.put(pod)
    }

    pub fn bench_pod(&mut self, ns: &str, name: &str, app: &str, i: usize) -> Option<Arc<Value>> {
        let node = format!("bench-node-{}", i % 3 + 1);
        let labels = json!({ "app": app, "tier": if i.is_multiple_of(3) { "db" } else { "web" } });
        let phase = if i.is_multiple_of(97) {
            PodPhase::CrashLoop((i % 7) as i64 + 1)
        } else {
            PodPhase::Running
        };
        let created = meta::timestamp(OffsetDateTime::now_utc() - Duration::from_secs(3_600 + (i as u64 % 86_400)));
        self.pod(
            ns,
            name,
            &labels,
            None,
            &[("app", "registry.example.com/load:1.0")],
            &node,
            &phase,
            Some(created),
        )
    }

    /// A core/v1 Event about `involved`.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        ns: &str,
        involved: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
        component: &str,
        count: i64,
    ) -> Option<Arc<Value>> {
        let now = meta::now_timestamp();
        let involved_name = meta::name(involved);
        let name = format!("{involved_name}.{:016x}", self.rng.random::<u64>());
        self.put(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": name, "namespace": ns, "creationTimestamp": now },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": involved_name, "namespace": meta::namespace(involved),
                "uid": involved.pointer("/metadata/uid"),
                "resourceVersion": meta::resource_version(involved),
            },
            "reason": reason, "message": message, "type": event_type,
            "source": { "component": component },
            "firstTimestamp": now, "lastTimestamp": now, "count": count,
            "reportingComponent": component, "reportingInstance": "",
        }))
    }

    /// A helm release revision secret (`sh.helm.release.v1.<name>.v<rev>`).
    pub fn helm_release(
        &mut self,
        ns: &str,
        release: &str,
        chart: (&str, &str, &str),
        revision: u32,
        status: &str,
        first_deployed: &str,
    ) -> Option<Arc<Value>> {
        let now = meta::now_timestamp();
        let (chart_name, chart_version, app_version) = chart;
        let body = json!({
            "name": release, "namespace": ns, "version": revision,
            "info": { "status": status, "first_deployed": first_deployed, "last_deployed": now,
                      "description": if revision == 1 { "Install complete" } else { "Upgrade complete" } },
            "chart": { "metadata": { "name": chart_name, "version": chart_version, "appVersion": app_version,
                                      "apiVersion": "v2" } },
            "config": {}, "manifest": "", "hooks": [],
        });
        let data = helm_encode(&body);
        self.put(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": { "name": format!("sh.helm.release.v1.{release}.v{revision}"), "namespace": ns,
                          "labels": { "owner": "helm", "name": release, "status": status,
                                      "version": revision.to_string() } },
            "data": { "release": data },
        }))
    }
}

/// Secret data for a helm release: gzip of the JSON, base64 (helm's encoding), then
/// base64 again because secret data is base64 on the wire.
pub(crate) fn helm_encode(release: &Value) -> String {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let json = serde_json::to_vec(release).unwrap_or_default();
    let zipped = match gz.write_all(&json).and_then(|()| gz.finish()) {
        Ok(z) => z,
        Err(_) => json,
    };
    STANDARD.encode(STANDARD.encode(zipped))
}

pub(crate) fn node_conditions(ready: bool, at: &str) -> Value {
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    json!([
        { "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": at, "lastTransitionTime": at },
        { "type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": at, "lastTransitionTime": at },
        { "type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": at, "lastTransitionTime": at },
        { "type": "Ready", "status": status, "reason": reason, "message": message, "lastHeartbeatTime": at, "lastTransitionTime": at },
    ])
}

/// A pod status for `phase`, derived from the pod's spec.
pub(crate) fn pod_status(pod: &Value, phase: &PodPhase, since: &str) -> Value {
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or(kubelet::FALLBACK_NODE);
    let host_ip = format!("172.18.0.{}", kubelet::hash(node) % 200 + 2);
    let mut status = kubelet::running_status(pod, &host_ip, since);
    let containers: Vec<(String, String)> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (s("name"), s("image"))
                })
                .collect()
        })
        .unwrap_or_default();
    let now = meta::now_timestamp();
    let set = |status: &mut Value, state: ContainerState, restarts: i64, last: Option<ContainerState>| {
        status["containerStatuses"] = Value::Array(
            containers
                .iter()
                .map(|(n, i)| kubelet::container_status(n, i, &state, restarts, last.as_ref()))
                .collect(),
        );
    };
    match phase {
        PodPhase::Running => {}
        PodPhase::Creating => {
            status["phase"] = json!("Pending");
            status["conditions"] = kubelet::pod_conditions(false, since);
            if let Some(map) = status.as_object_mut() {
                map.remove("podIP");
                map.remove("podIPs");
            }
            set(&mut status, ContainerState::Waiting("ContainerCreating"), 0, None);
        }
        PodPhase::CrashLoop(restarts) => {
            status["conditions"] = kubelet::pod_conditions(false, since);
            let last = ContainerState::Terminated {
                exit_code: 1,
                reason: "Error",
                started: since.to_string(),
                finished: now.clone(),
            };
            set(
                &mut status,
                ContainerState::Waiting("CrashLoopBackOff"),
                *restarts,
                Some(last),
            );
        }
        PodPhase::Succeeded => {
            status["phase"] = json!("Succeeded");
            status["conditions"] = kubelet::pod_conditions(false, since);
            let done = ContainerState::Terminated {
                exit_code: 0,
                reason: "Completed",
                started: since.to_string(),
                finished: now,
            };
            set(&mut status, done, 0, None);
            for cs in status["containerStatuses"].as_array_mut().into_iter().flatten() {
                cs["ready"] = json!(false);
            }
        }
    }
    status
}
