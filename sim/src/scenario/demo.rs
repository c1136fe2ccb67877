//! The demo scenario: a small cluster that keeps changing.
//!
//! Seeding builds nodes, namespaces, deployments with their replica sets, pods,
//! services and endpoint slices, stateful sets with volumes, daemon sets, cron jobs
//! and jobs, an HPA, PDBs, an ingress, network policies, storage/priority/runtime/
//! ingress classes, helm release secrets and a few events.
//!
//! The churn runs one step per tick (default 400 ms), driven by a seeded RNG so a seed
//! always replays the same story: rolling updates (new replica set, pods created,
//! become ready, old ones terminate), scaling, a crash-looping worker, cron jobs that
//! run and complete (or fail), helm upgrades moving through `pending-upgrade` to
//! `deployed`/`failed` and `superseded`, a node that goes `NotReady` and back, and the
//! events that go with all of it. Every step re-reads the store, so objects changed or
//! deleted by a test are tolerated (the step is skipped).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::objects::{Owner, PodPhase, Writer, node_conditions, pod_status};
use crate::kubelet::{self, ContainerState};
use crate::meta;
use crate::resource;
use crate::store::{ObjKey, Store, UpdateMode};

/// At most this many demo events are kept; older ones are deleted.
const MAX_EVENTS: usize = 200;
/// Revisions kept per helm release.
const MAX_HELM_REVISIONS: u32 = 5;
/// Finished jobs kept per cron job.
const MAX_JOBS: usize = 3;

const NODES: &[(&str, &str)] = &[
    ("control-plane-1", "control-plane"),
    ("worker-1", "worker"),
    ("worker-2", "worker"),
    ("worker-3", "worker"),
];
const WORKERS: &[&str] = &["worker-1", "worker-2", "worker-3"];

struct DeploymentSpec {
    ns: &'static str,
    name: &'static str,
    replicas: i64,
    image: &'static str,
    sidecar: Option<&'static str>,
    service: Option<(&'static str, i64)>,
}

#[rustfmt::skip]
const DEPLOYMENTS: &[DeploymentSpec] = &[
    DeploymentSpec { ns: "shop", name: "frontend", replicas: 3, image: "registry.example.com/shop/frontend:1.4.0", sidecar: Some("envoyproxy/envoy:v1.31.0"), service: Some(("ClusterIP", 80)) },
    DeploymentSpec { ns: "shop", name: "cart", replicas: 2, image: "registry.example.com/shop/cart:2.1.3", sidecar: None, service: Some(("ClusterIP", 8080)) },
    DeploymentSpec { ns: "payments", name: "api", replicas: 2, image: "registry.example.com/payments/api:0.9.12", sidecar: None, service: Some(("ClusterIP", 8443)) },
    DeploymentSpec { ns: "payments", name: "ledger-worker", replicas: 1, image: "registry.example.com/payments/ledger:0.3.1", sidecar: None, service: None },
    DeploymentSpec { ns: "monitoring", name: "grafana", replicas: 1, image: "grafana/grafana:11.2.0", sidecar: None, service: Some(("ClusterIP", 3000)) },
    DeploymentSpec { ns: "kube-system", name: "coredns", replicas: 2, image: "registry.k8s.io/coredns/coredns:v1.11.3", sidecar: None, service: Some(("ClusterIP", 53)) },
    DeploymentSpec { ns: "ingress-nginx", name: "ingress-nginx-controller", replicas: 1, image: "registry.k8s.io/ingress-nginx/controller:v1.11.2", sidecar: None, service: Some(("LoadBalancer", 443)) },
];

/// Deployments the churn scales and rolls (not the crash looper or system ones).
const CHURNED: &[(&str, &str)] = &[
    ("shop", "frontend"),
    ("shop", "cart"),
    ("payments", "api"),
    ("monitoring", "grafana"),
];

const CRASH_LOOPER: (&str, &str) = ("payments", "ledger-worker");

const HELM_RELEASES: &[(&str, &str, (&str, &str, &str))] = &[
    ("shop", "storefront", ("storefront", "1.4.0", "1.4.0")),
    (
        "monitoring",
        "kube-prometheus-stack",
        ("kube-prometheus-stack", "65.1.0", "v0.77.1"),
    ),
    ("ingress-nginx", "ingress-nginx", ("ingress-nginx", "4.11.2", "1.11.2")),
];

const CRON_JOBS: &[(&str, &str, &str)] = &[
    ("batch-jobs", "nightly-report", "*/2 * * * *"),
    ("batch-jobs", "cache-warmer", "*/5 * * * *"),
];

fn plural(p: &str) -> usize {
    resource::builtin_id(p).unwrap_or(0)
}

/// A pod-template-hash-like string for an image.
fn template_hash(image: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = kubelet::hash(image);
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

pub(super) fn seed(w: &mut Writer) {
    for (name, role) in NODES {
        w.node(name, role);
    }
    for ns in ["shop", "payments", "monitoring", "batch-jobs", "ingress-nginx"] {
        w.namespace(ns);
    }
    seed_classes(w);
    for d in DEPLOYMENTS {
        seed_deployment(w, d);
    }
    seed_statefulset(
        w,
        "monitoring",
        "prometheus",
        2,
        "quay.io/prometheus/prometheus:v2.54.1",
        "fast-ssd",
    );
    seed_statefulset(w, "payments", "postgres", 1, "postgres:16.4", "standard");
    seed_daemonset(
        w,
        "kube-system",
        "kube-proxy",
        "registry.k8s.io/kube-proxy:v1.35.0",
        true,
    );
    seed_daemonset(
        w,
        "monitoring",
        "node-exporter",
        "quay.io/prometheus/node-exporter:v1.8.2",
        false,
    );
    for (ns, name, schedule) in CRON_JOBS {
        let created = w.past();
        w.put(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": name, "namespace": ns, "creationTimestamp": created },
            "spec": { "schedule": schedule, "suspend": false, "concurrencyPolicy": "Forbid",
                      "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                      "jobTemplate": { "spec": { "backoffLimit": 0, "template": { "spec": {
                          "restartPolicy": "Never",
                          "containers": [{ "name": "job", "image": "registry.example.com/batch/tools:1.2" }] } } } } },
            "status": {},
        }));
    }
    let created = w.past();
    w.put(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": { "name": "legacy-export", "namespace": "batch-jobs", "creationTimestamp": created },
        "spec": { "schedule": "0 3 * * *", "suspend": true,
                  "jobTemplate": { "spec": { "template": { "spec": { "restartPolicy": "Never",
                      "containers": [{ "name": "job", "image": "registry.example.com/batch/export:0.1" }] } } } } },
        "status": { "lastScheduleTime": created },
    }));
    seed_policies(w);
    let first_deployed = w.past();
    for (ns, release, chart) in HELM_RELEASES {
        w.helm_release(ns, release, *chart, 1, "superseded", &first_deployed);
        w.helm_release(ns, release, *chart, 2, "deployed", &first_deployed);
    }
    for ns in [
        "default",
        "kube-system",
        "shop",
        "payments",
        "monitoring",
        "batch-jobs",
        "ingress-nginx",
    ] {
        let created = w.past();
        w.put(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "kube-root-ca.crt", "namespace": ns, "creationTimestamp": created },
            "data": { "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBsimulated\n-----END CERTIFICATE-----\n" },
        }));
    }
    w.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "frontend-config", "namespace": "shop", "labels": { "app": "frontend" } },
        "data": { "FEATURE_FLAGS": "new-checkout,dark-mode", "LOG_LEVEL": "info" },
    }));
    w.put(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": { "name": "api-credentials", "namespace": "payments" },
        "data": { "token": "c2ltdWxhdGVk" },
    }));
    if let Some(node) = w.store().get(
        plural("nodes"),
        &ObjKey {
            namespace: String::new(),
            name: "worker-1".into(),
        },
    ) {
        w.event(
            "default",
            &node,
            "Normal",
            "Starting",
            "Starting kubelet.",
            "kubelet",
            1,
        );
    }
}

fn seed_classes(w: &mut Writer) {
    let t = w.past();
    w.put(json!({ "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": { "name": "standard", "creationTimestamp": t,
                      "annotations": { "storageclass.kubernetes.io/is-default-class": "true" } },
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer" }));
    w.put(json!({ "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": { "name": "fast-ssd", "creationTimestamp": t },
        "provisioner": "pd.csi.storage.gke.io", "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": true, "parameters": { "type": "pd-ssd" } }));
    w.put(json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": { "name": "system-cluster-critical", "creationTimestamp": t },
        "value": 2_000_000_000, "globalDefault": false, "description": "Used for system critical pods." }));
    w.put(json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": { "name": "high-priority", "creationTimestamp": t },
        "value": 1000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority" }));
    w.put(json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": { "name": "batch-low", "creationTimestamp": t },
        "value": -10, "globalDefault": false, "preemptionPolicy": "Never" }));
    w.put(json!({ "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": { "name": "runc", "creationTimestamp": t }, "handler": "runc" }));
    w.put(json!({ "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": { "name": "gvisor", "creationTimestamp": t }, "handler": "runsc",
        "overhead": { "podFixed": { "cpu": "250m", "memory": "120Mi" } } }));
    w.put(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": { "name": "nginx", "creationTimestamp": t,
                      "annotations": { "ingressclass.kubernetes.io/is-default-class": "true" } },
        "spec": { "controller": "k8s.io/ingress-nginx" } }));
}

fn seed_deployment(w: &mut Writer, d: &DeploymentSpec) {
    let created = w.past();
    let hash = template_hash(d.image);
    let mut containers = vec![json!({ "name": "app", "image": d.image,
        "ports": [{ "containerPort": 8080, "protocol": "TCP" }] })];
    if let Some(sidecar) = d.sidecar {
        containers.push(json!({ "name": "proxy", "image": sidecar }));
    }
    let Some(deploy) = w.put(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": d.name, "namespace": d.ns, "creationTimestamp": created,
                      "labels": { "app": d.name }, "annotations": { "deployment.kubernetes.io/revision": "1" } },
        "spec": { "replicas": d.replicas, "selector": { "matchLabels": { "app": d.name } },
                  "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
                  "template": { "metadata": { "labels": { "app": d.name } }, "spec": { "containers": containers } } },
        "status": {},
    })) else {
        return;
    };
    ensure_replicaset(w, &deploy, &hash, d.replicas, Some(created.clone()));
    for i in 0..d.replicas {
        create_pod(w, &deploy, &hash, PodPhase::Running, Some(created.clone()), i as usize);
    }
    if let Some((svc_type, port)) = d.service {
        let mut svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": d.name, "namespace": d.ns, "creationTimestamp": created, "labels": { "app": d.name } },
            "spec": { "type": svc_type, "selector": { "app": d.name },
                      "clusterIP": format!("10.96.{}.{}", kubelet::hash(d.name) % 200, kubelet::hash(d.ns) % 250 + 1),
                      "ports": [{ "name": "http", "port": port, "targetPort": 8080, "protocol": "TCP" }] },
            "status": { "loadBalancer": {} },
        });
        if svc_type == "LoadBalancer" {
            svc["spec"]["ports"][0]["nodePort"] = json!(31443);
            svc["status"]["loadBalancer"] = json!({ "ingress": [{ "ip": "203.0.113.10" }] });
        }
        w.put(svc);
        w.put(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": { "name": format!("{}-{}", d.name, &hash[..5]), "namespace": d.ns, "creationTimestamp": created,
                          "labels": { "kubernetes.io/service-name": d.name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" } },
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
            "endpoints": [],
        }));
    }
    reconcile(w, d.ns, d.name);
}

fn ensure_replicaset(
    w: &mut Writer,
    deploy: &Value,
    hash: &str,
    replicas: i64,
    created: Option<String>,
) -> Option<Arc<Value>> {
    let ns = meta::namespace(deploy);
    let name = format!("{}-{hash}", meta::name(deploy));
    if let Some(rs) = w.store().get(
        plural("replicasets"),
        &ObjKey {
            namespace: ns.into(),
            name: name.clone(),
        },
    ) {
        return Some(rs);
    }
    let app = meta::name(deploy);
    let revision = deploy
        .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .cloned()
        .unwrap_or(json!("1"));
    let mut template = deploy.pointer("/spec/template").cloned().unwrap_or_default();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    w.put(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": { "name": name, "namespace": ns, "creationTimestamp": created.unwrap_or_else(meta::now_timestamp),
                      "labels": { "app": app, "pod-template-hash": hash },
                      "annotations": { "deployment.kubernetes.io/revision": revision,
                                       "deployment.kubernetes.io/desired-replicas": replicas.to_string() },
                      "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                          "uid": deploy.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true }] },
        "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": app, "pod-template-hash": hash } },
                  "template": template },
        "status": { "replicas": 0 },
    }))
}

fn create_pod(
    w: &mut Writer,
    deploy: &Value,
    hash: &str,
    phase: PodPhase,
    created: Option<String>,
    index: usize,
) -> Option<Arc<Value>> {
    let ns = meta::namespace(deploy).to_string();
    let app = meta::name(deploy).to_string();
    let rs = w.store().get(
        plural("replicasets"),
        &ObjKey {
            namespace: ns.clone(),
            name: format!("{app}-{hash}"),
        },
    )?;
    let containers = meta::containers(&deploy["spec"]["template"]["spec"]);
    let containers: Vec<(&str, &str)> = containers.iter().map(|(n, i)| (n.as_str(), i.as_str())).collect();
    let name = format!("{app}-{hash}-{}", w.suffix());
    let node = WORKERS[(kubelet::hash(&name) as usize + index) % WORKERS.len()];
    let labels = json!({ "app": app, "pod-template-hash": hash });
    w.pod(
        &ns,
        &name,
        &labels,
        Some(&Owner::of(&rs)),
        &containers,
        node,
        &phase,
        created,
    )
}

fn seed_statefulset(w: &mut Writer, ns: &str, name: &str, replicas: i64, image: &str, class: &str) {
    let created = w.past();
    let Some(sts) = w.put(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": { "name": name, "namespace": ns, "creationTimestamp": created, "labels": { "app": name } },
        "spec": { "replicas": replicas, "serviceName": name, "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } }, "spec": { "containers": [{ "name": name, "image": image }] } },
                  "volumeClaimTemplates": [{ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"],
                      "storageClassName": class, "resources": { "requests": { "storage": "10Gi" } } } }] },
        "status": { "replicas": replicas, "readyReplicas": replicas, "currentReplicas": replicas, "updatedReplicas": replicas,
                    "availableReplicas": replicas, "observedGeneration": 1, "currentRevision": format!("{name}-7d9f8b6c5d"),
                    "updateRevision": format!("{name}-7d9f8b6c5d") },
    })) else {
        return;
    };
    for i in 0..replicas {
        let pod_name = format!("{name}-{i}");
        let pvc_name = format!("data-{pod_name}");
        let uid = meta_uid(&sts);
        let pv_name = format!("pvc-{}-{i}", uid.get(..8).unwrap_or(&uid));
        w.put(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": { "name": pv_name, "creationTimestamp": created },
            "spec": { "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                      "persistentVolumeReclaimPolicy": if class == "fast-ssd" { "Retain" } else { "Delete" },
                      "claimRef": { "kind": "PersistentVolumeClaim", "namespace": ns, "name": pvc_name },
                      "hostPath": { "path": format!("/var/lib/sim/{pv_name}") } },
            "status": { "phase": "Bound" },
        }));
        w.put(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": { "name": pvc_name, "namespace": ns, "creationTimestamp": created, "labels": { "app": name } },
            "spec": { "accessModes": ["ReadWriteOnce"], "storageClassName": class, "volumeName": pv_name,
                      "resources": { "requests": { "storage": "10Gi" } } },
            "status": { "phase": "Bound", "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"] },
        }));
        let node = WORKERS[i as usize % WORKERS.len()];
        w.pod(
            ns,
            &pod_name,
            &json!({ "app": name, "statefulset.kubernetes.io/pod-name": pod_name }),
            Some(&Owner::of(&sts)),
            &[(name, image)],
            node,
            &PodPhase::Running,
            Some(created.clone()),
        );
    }
}

fn meta_uid(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("00000000")
        .to_string()
}

fn seed_daemonset(w: &mut Writer, ns: &str, name: &str, image: &str, on_control_plane: bool) {
    let created = w.past();
    let nodes: Vec<&str> = NODES
        .iter()
        .filter(|(_, role)| on_control_plane || *role == "worker")
        .map(|(n, _)| *n)
        .collect();
    let count = nodes.len() as i64;
    let Some(ds) = w.put(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": name, "namespace": ns, "creationTimestamp": created, "labels": { "app": name } },
        "spec": { "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } }, "spec": { "containers": [{ "name": name, "image": image }] } } },
        "status": { "desiredNumberScheduled": count, "currentNumberScheduled": count, "numberReady": count,
                    "updatedNumberScheduled": count, "numberAvailable": count, "numberMisscheduled": 0, "observedGeneration": 1 },
    })) else {
        return;
    };
    for node in nodes {
        let pod_name = format!("{name}-{}", w.suffix());
        w.pod(
            ns,
            &pod_name,
            &json!({ "app": name }),
            Some(&Owner::of(&ds)),
            &[(name, image)],
            node,
            &PodPhase::Running,
            Some(created.clone()),
        );
    }
}

fn seed_policies(w: &mut Writer) {
    let t = w.past();
    w.put(json!({ "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "frontend", "namespace": "shop", "creationTimestamp": t },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend" },
                  "minReplicas": 2, "maxReplicas": 6,
                  "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }] },
        "status": { "currentReplicas": 3, "desiredReplicas": 3,
                    "conditions": [{ "type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": t },
                                   { "type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": t }] } }));
    w.put(json!({ "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": { "name": "frontend", "namespace": "shop", "creationTimestamp": t },
        "spec": { "minAvailable": 2, "selector": { "matchLabels": { "app": "frontend" } } },
        "status": { "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1, "observedGeneration": 1 } }));
    w.put(json!({ "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": { "name": "api", "namespace": "payments", "creationTimestamp": t },
        "spec": { "maxUnavailable": "50%", "selector": { "matchLabels": { "app": "api" } } },
        "status": { "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": 1, "observedGeneration": 1 } }));
    w.put(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": "storefront", "namespace": "shop", "creationTimestamp": t },
        "spec": { "ingressClassName": "nginx",
                  "rules": [{ "host": "shop.example.com", "http": { "paths": [{ "path": "/", "pathType": "Prefix",
                      "backend": { "service": { "name": "frontend", "port": { "number": 80 } } } }] } },
                            { "host": "api.shop.example.com", "http": { "paths": [{ "path": "/cart", "pathType": "Prefix",
                      "backend": { "service": { "name": "cart", "port": { "number": 8080 } } } }] } }],
                  "tls": [{ "hosts": ["shop.example.com", "www.shop.example.com"], "secretName": "shop-tls" }] },
        "status": { "loadBalancer": { "ingress": [{ "hostname": "lb.shop.example.com", "ip": "203.0.113.10" }] } } }));
    w.put(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": { "name": "default-deny", "namespace": "payments", "creationTimestamp": t },
        "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"] } }));
    w.put(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": { "name": "allow-api", "namespace": "payments", "creationTimestamp": t },
        "spec": { "podSelector": { "matchLabels": { "app": "api" } }, "policyTypes": ["Ingress"],
                  "ingress": [{ "from": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "shop" } } }] }] } }));
}

/// Recomputes replica set, deployment, endpoint slice, HPA and PDB status of a
/// deployment from its pods, as the controllers would.
fn reconcile(w: &mut Writer, ns: &str, app: &str) {
    let store = w.store();
    let Some(deploy) = store.get(
        plural("deployments"),
        &ObjKey {
            namespace: ns.into(),
            name: app.into(),
        },
    ) else {
        return;
    };
    let selector = |o: &Value| o.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app);
    let pods = store.list(plural("pods"), Some(ns), None, None, Some(&selector)).items;
    let is_ready = |p: &Value| {
        !meta::is_deleting(p)
            && p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
            && p.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().all(|c| c["ready"] == json!(true)))
    };
    let image = deploy
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let current_hash = template_hash(image);
    let hash_of = |p: &Value| {
        p.pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let live: Vec<&Arc<Value>> = pods.iter().filter(|p| !meta::is_deleting(p)).collect();
    let replica_sets = store
        .list(plural("replicasets"), Some(ns), None, None, Some(&selector))
        .items;
    for rs in &replica_sets {
        let hash = rs
            .pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mine: Vec<&&Arc<Value>> = live.iter().filter(|p| hash_of(p) == hash).collect();
        let ready = mine.iter().filter(|p| is_ready(p)).count();
        let mut rs = (**rs).clone();
        rs["status"] = json!({ "replicas": mine.len(), "fullyLabeledReplicas": mine.len(), "readyReplicas": ready,
                               "availableReplicas": ready, "observedGeneration": rs.pointer("/metadata/generation") });
        w.put(rs);
    }
    let desired = deploy.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let ready = live.iter().filter(|p| is_ready(p)).count() as i64;
    let updated = live
        .iter()
        .filter(|p| hash_of(p).as_deref() == Some(current_hash.as_str()))
        .count() as i64;
    let now = meta::now_timestamp();
    let available = if ready >= desired - 1 && ready > 0 {
        "True"
    } else {
        "False"
    };
    let mut deploy = (*deploy).clone();
    deploy["status"] = json!({
        "observedGeneration": deploy.pointer("/metadata/generation"),
        "replicas": live.len(), "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
        "unavailableReplicas": (desired - ready).max(0),
        "conditions": [
            { "type": "Available", "status": available, "reason": if available == "True" { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
              "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now },
            { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
              "message": format!("ReplicaSet \"{app}-{current_hash}\" has successfully progressed."), "lastUpdateTime": now, "lastTransitionTime": now },
        ],
    });
    w.put(deploy);
    let slice_selector = |o: &Value| {
        o.pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
            == Some(app)
    };
    for slice in w
        .store()
        .list(plural("endpointslices"), Some(ns), None, None, Some(&slice_selector))
        .items
    {
        let endpoints: Vec<Value> = live
            .iter()
            .filter_map(|p| {
                let ip = p.pointer("/status/podIP")?.as_str()?;
                Some(json!({ "addresses": [ip], "conditions": { "ready": is_ready(p), "serving": is_ready(p), "terminating": false },
                             "nodeName": p.pointer("/spec/nodeName"),
                             "targetRef": { "kind": "Pod", "namespace": ns, "name": meta::name(p), "uid": p.pointer("/metadata/uid") } }))
            })
            .collect();
        let mut slice = (*slice).clone();
        slice["endpoints"] = Value::Array(endpoints);
        w.put(slice);
    }
    let key = ObjKey {
        namespace: ns.into(),
        name: app.into(),
    };
    if let Some(hpa) = w.store().get(plural("horizontalpodautoscalers"), &key) {
        let mut hpa = (*hpa).clone();
        hpa["status"]["currentReplicas"] = json!(live.len());
        hpa["status"]["desiredReplicas"] = json!(desired);
        w.put(hpa);
    }
    if let Some(pdb) = w.store().get(plural("poddisruptionbudgets"), &key) {
        let mut pdb = (*pdb).clone();
        let min = pdb
            .pointer("/spec/minAvailable")
            .and_then(Value::as_i64)
            .unwrap_or(desired / 2);
        pdb["status"]["currentHealthy"] = json!(ready);
        pdb["status"]["desiredHealthy"] = json!(min);
        pdb["status"]["expectedPods"] = json!(desired);
        pdb["status"]["disruptionsAllowed"] = json!((ready - min).max(0));
        w.put(pdb);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Scale {
        ns: &'static str,
        app: &'static str,
    },
    Rollout {
        ns: &'static str,
        app: &'static str,
    },
    RolloutContinue {
        ns: &'static str,
        app: &'static str,
    },
    PodReady {
        ns: String,
        pod: String,
    },
    PodTerminate {
        ns: String,
        pod: String,
    },
    PodRemove {
        ns: String,
        pod: String,
    },
    Crash,
    CrashBackOff {
        pod: String,
    },
    CrashRecover {
        pod: String,
    },
    CronFire {
        ns: &'static str,
        cron: &'static str,
    },
    JobRunning {
        ns: String,
        job: String,
        pod: String,
    },
    JobFinish {
        ns: String,
        job: String,
        pod: String,
        cron: &'static str,
    },
    HelmUpgrade {
        ns: &'static str,
        release: &'static str,
        chart: (&'static str, &'static str, &'static str),
    },
    HelmSettle {
        ns: &'static str,
        release: &'static str,
        chart: (&'static str, &'static str, &'static str),
        revision: u32,
    },
    NodeDown,
    NodeUp,
}

struct Demo {
    w: Writer,
    tick: u64,
    queue: Vec<(u64, Step)>,
    events: VecDeque<ObjKey>,
    backoff_events: HashMap<String, ObjKey>,
    first_deployed: String,
    busy: HashMap<&'static str, bool>,
}

pub(super) fn spawn(store: Arc<Store>, shutdown: CancellationToken, seed: u64, interval: Duration) {
    let mut demo = Demo {
        w: Writer::new(store, seed.wrapping_add(1)),
        tick: 0,
        queue: vec![
            (3, Step::Crash),
            (
                5,
                Step::CronFire {
                    ns: CRON_JOBS[0].0,
                    cron: CRON_JOBS[0].1,
                },
            ),
        ],
        events: VecDeque::new(),
        backoff_events: HashMap::new(),
        first_deployed: meta::now_timestamp(),
        busy: HashMap::new(),
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => demo.step(),
            }
        }
    });
}

impl Demo {
    fn at(&mut self, delay: u64, step: Step) {
        self.queue.push((self.tick + delay.max(1), step));
    }

    fn step(&mut self) {
        self.tick += 1;
        let due: Vec<Step> = {
            let tick = self.tick;
            let (due, later): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|(t, _)| *t <= tick);
            self.queue = later;
            due.into_iter().map(|(_, s)| s).collect()
        };
        let idle = due.is_empty();
        for step in due {
            self.run(step);
        }
        if idle {
            self.start_story();
        }
    }

    fn start_story(&mut self) {
        let roll = self.w.rng.random_range(0..100);
        match roll {
            0..=29 => {
                let (ns, app) = CHURNED[self.w.rng.random_range(0..CHURNED.len())];
                if !self.busy.get(app).copied().unwrap_or(false) {
                    self.at(1, Step::Scale { ns, app });
                }
            }
            30..=41 => {
                let (ns, app) = CHURNED[self.w.rng.random_range(0..CHURNED.len())];
                if !self.busy.get(app).copied().unwrap_or(false) {
                    self.busy.insert(app, true);
                    self.at(1, Step::Rollout { ns, app });
                }
            }
            42..=53 => {
                let (ns, cron, _) = CRON_JOBS[self.w.rng.random_range(0..CRON_JOBS.len())];
                self.at(1, Step::CronFire { ns, cron });
            }
            54..=63 => {
                let (ns, release, chart) = HELM_RELEASES[self.w.rng.random_range(0..HELM_RELEASES.len())];
                if !self.busy.get(release).copied().unwrap_or(false) {
                    self.busy.insert(release, true);
                    self.at(1, Step::HelmUpgrade { ns, release, chart });
                }
            }
            64..=66 if !self.busy.get("node").copied().unwrap_or(false) => {
                self.busy.insert("node", true);
                self.at(1, Step::NodeDown);
            }
            _ => {}
        }
    }

    fn get(&self, plural_name: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.w.store().get(
            plural(plural_name),
            &ObjKey {
                namespace: ns.into(),
                name: name.into(),
            },
        )
    }

    fn modify(&self, plural_name: &str, ns: &str, name: &str, f: impl FnOnce(&mut Value)) -> Option<Arc<Value>> {
        let key = ObjKey {
            namespace: ns.into(),
            name: name.into(),
        };
        self.w
            .store()
            .mutate(plural(plural_name), &key, UpdateMode::Raw, |o| {
                f(o);
                Ok(())
            })
            .ok()
    }

    fn event(
        &mut self,
        involved: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
        component: &str,
    ) -> Option<ObjKey> {
        let ns = match meta::namespace(involved) {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        let created = self.w.event(&ns, involved, event_type, reason, message, component, 1)?;
        let key = ObjKey::of(&created);
        self.events.push_back(key.clone());
        while self.events.len() > MAX_EVENTS {
            if let Some(old) = self.events.pop_front() {
                let _ = self.w.store().remove(plural("events"), &old);
            }
        }
        Some(key)
    }

    fn pods_of(&self, ns: &str, app: &str) -> Vec<Arc<Value>> {
        let selector =
            |o: &Value| o.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app) && !meta::is_deleting(o);
        self.w
            .store()
            .list(plural("pods"), Some(ns), None, None, Some(&selector))
            .items
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Scale { ns, app } => self.scale(ns, app),
            Step::Rollout { ns, app } => self.rollout(ns, app),
            Step::RolloutContinue { ns, app } => self.rollout_step(ns, app),
            Step::PodReady { ns, pod } => {
                let now = meta::now_timestamp();
                if let Some(p) = self.modify("pods", &ns, &pod, |p| {
                    if !meta::is_deleting(p) {
                        p["status"] = pod_status(p, &PodPhase::Running, &now);
                    }
                }) {
                    let image = p
                        .pointer("/spec/containers/0/image")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    self.event(
                        &p,
                        "Normal",
                        "Pulled",
                        &format!("Container image \"{image}\" already present on machine"),
                        "kubelet",
                    );
                    self.event(&p, "Normal", "Started", "Started container app", "kubelet");
                    self.reconcile_pod_owner(&p);
                }
            }
            Step::PodTerminate { ns, pod } => {
                if let Ok(p) = self.w.store().mark_deleting(
                    plural("pods"),
                    &ObjKey {
                        namespace: ns.clone(),
                        name: pod.clone(),
                    },
                    Some(30),
                ) {
                    self.event(&p, "Normal", "Killing", "Stopping container app", "kubelet");
                    self.reconcile_pod_owner(&p);
                    self.at(2, Step::PodRemove { ns, pod });
                }
            }
            Step::PodRemove { ns, pod } => {
                if let Ok(p) = self.w.store().remove(
                    plural("pods"),
                    &ObjKey {
                        namespace: ns,
                        name: pod,
                    },
                ) {
                    self.reconcile_pod_owner(&p);
                }
            }
            Step::Crash => self.crash(),
            Step::CrashBackOff { pod } => {
                let (ns, _) = CRASH_LOOPER;
                if let Some(p) = self.modify("pods", ns, &pod, |p| {
                    if let Some(cs) = p.pointer_mut("/status/containerStatuses/0") {
                        cs["state"] = ContainerState::Waiting("CrashLoopBackOff").to_json();
                    }
                }) {
                    self.backoff_event(&p);
                    self.at(5, Step::CrashRecover { pod });
                } else {
                    self.at(2, Step::Crash);
                }
            }
            Step::CrashRecover { pod } => {
                let (ns, app) = CRASH_LOOPER;
                let now = meta::now_timestamp();
                if let Some(p) = self.modify("pods", ns, &pod, |p| {
                    if let Some(cs) = p.pointer_mut("/status/containerStatuses/0") {
                        cs["state"] = ContainerState::Running(now.clone()).to_json();
                        cs["ready"] = json!(true);
                        cs["started"] = json!(true);
                    }
                    p["status"]["conditions"] = kubelet::pod_conditions(true, &now);
                }) {
                    self.event(&p, "Normal", "Started", "Started container app", "kubelet");
                }
                reconcile(&mut self.w, ns, app);
                self.at(8, Step::Crash);
            }
            Step::CronFire { ns, cron } => self.cron_fire(ns, cron),
            Step::JobRunning { ns, job, pod } => {
                let now = meta::now_timestamp();
                self.modify("pods", &ns, &pod, |p| {
                    p["status"] = pod_status(p, &PodPhase::Running, &now)
                });
                self.modify("jobs", &ns, &job, |j| {
                    j["status"]["active"] = json!(1);
                    j["status"]["ready"] = json!(1);
                });
                let cron = CRON_JOBS
                    .iter()
                    .find(|(_, c, _)| job.starts_with(c))
                    .map_or("", |(_, c, _)| *c);
                let delay = self.w.rng.random_range(4..10);
                self.at(delay, Step::JobFinish { ns, job, pod, cron });
            }
            Step::JobFinish { ns, job, pod, cron } => self.job_finish(&ns, &job, &pod, cron),
            Step::HelmUpgrade { ns, release, chart } => {
                let revision = self.helm_revisions(ns, release).last().copied().unwrap_or(0) + 1;
                let first = self.first_deployed.clone();
                self.w
                    .helm_release(ns, release, chart, revision, "pending-upgrade", &first);
                let delay = self.w.rng.random_range(3..8);
                self.at(
                    delay,
                    Step::HelmSettle {
                        ns,
                        release,
                        chart,
                        revision,
                    },
                );
            }
            Step::HelmSettle {
                ns,
                release,
                chart,
                revision,
            } => self.helm_settle(ns, release, chart, revision),
            Step::NodeDown => {
                self.set_node_ready(false);
                let delay = self.w.rng.random_range(10..25);
                self.at(delay, Step::NodeUp);
            }
            Step::NodeUp => {
                self.set_node_ready(true);
                self.busy.insert("node", false);
            }
        }
    }

    /// Flips worker-3's Ready condition and records the event a real cluster would.
    fn set_node_ready(&mut self, ready: bool) {
        let now = meta::now_timestamp();
        let updated = self.modify("nodes", "", "worker-3", |n| {
            n["status"]["conditions"] = node_conditions(ready, &now)
        });
        if let Some(n) = updated {
            let (reason, source) = if ready {
                ("NodeReady", "kubelet")
            } else {
                ("NodeNotReady", "node-controller")
            };
            let message = format!("Node worker-3 status is now: {reason}");
            self.event(&n, "Normal", reason, &message, source);
        }
    }

    fn reconcile_pod_owner(&mut self, pod: &Value) {
        if let Some(app) = pod.pointer("/metadata/labels/app").and_then(Value::as_str) {
            let ns = meta::namespace(pod).to_string();
            let app = app.to_string();
            reconcile(&mut self.w, &ns, &app);
        }
    }

    fn scale(&mut self, ns: &'static str, app: &'static str) {
        let Some(deploy) = self.get("deployments", ns, app) else {
            return;
        };
        let replicas = deploy.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let up = if replicas <= 1 {
            true
        } else if replicas >= 5 {
            false
        } else {
            self.w.rng.random_bool(0.5)
        };
        let target = if up { replicas + 1 } else { replicas - 1 };
        let Some(deploy) = self.modify("deployments", ns, app, |d| d["spec"]["replicas"] = json!(target)) else {
            return;
        };
        let image = deploy
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hash = template_hash(image);
        let rs_name = format!("{app}-{hash}");
        self.modify("replicasets", ns, &rs_name, |rs| rs["spec"]["replicas"] = json!(target));
        self.event(
            &deploy,
            "Normal",
            "ScalingReplicaSet",
            &format!(
                "Scaled {} replica set {rs_name} from {replicas} to {target}",
                if up { "up" } else { "down" }
            ),
            "deployment-controller",
        );
        if up {
            if let Some(pod) = create_pod(&mut self.w, &deploy, &hash, PodPhase::Creating, None, target as usize) {
                if let Some(rs) = self.get("replicasets", ns, &rs_name) {
                    self.event(
                        &rs,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("Created pod: {}", meta::name(&pod)),
                        "replicaset-controller",
                    );
                }
                self.event(
                    &pod,
                    "Normal",
                    "Scheduled",
                    &format!(
                        "Successfully assigned {ns}/{} to {}",
                        meta::name(&pod),
                        pod.pointer("/spec/nodeName")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                    "default-scheduler",
                );
                self.at(
                    2,
                    Step::PodReady {
                        ns: ns.into(),
                        pod: meta::name(&pod).into(),
                    },
                );
            }
        } else if let Some(victim) = self.pods_of(ns, app).last() {
            if let Some(rs) = self.get("replicasets", ns, &rs_name) {
                self.event(
                    &rs,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", meta::name(victim)),
                    "replicaset-controller",
                );
            }
            self.at(
                1,
                Step::PodTerminate {
                    ns: ns.into(),
                    pod: meta::name(victim).into(),
                },
            );
        }
        reconcile(&mut self.w, ns, app);
    }

    fn rollout(&mut self, ns: &'static str, app: &'static str) {
        let patch_level = self.w.rng.random_range(0..50);
        let Some(deploy) = self.modify("deployments", ns, app, |d| {
            let image = d
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap_or("app:1.0.0")
                .to_string();
            let base = image.rsplit_once(':').map_or(image.as_str(), |(b, _)| b).to_string();
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!(format!("{base}:1.{}.{patch_level}", patch_level % 7));
            let revision = d
                .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str)
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(1);
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!((revision + 1).to_string());
        }) else {
            self.busy.insert(app, false);
            return;
        };
        let image = deploy
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hash = template_hash(image);
        ensure_replicaset(&mut self.w, &deploy, &hash, 0, None);
        self.event(
            &deploy,
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled up replica set {app}-{hash} from 0 to 1"),
            "deployment-controller",
        );
        self.at(1, Step::RolloutContinue { ns, app });
    }

    fn rollout_step(&mut self, ns: &'static str, app: &'static str) {
        let Some(deploy) = self.get("deployments", ns, app) else {
            self.busy.insert(app, false);
            return;
        };
        let image = deploy
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hash = template_hash(image);
        let desired = deploy.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) as usize;
        let pods = self.pods_of(ns, app);
        let is_new = |p: &Arc<Value>| {
            p.pointer("/metadata/labels/pod-template-hash").and_then(Value::as_str) == Some(hash.as_str())
        };
        let new_count = pods.iter().filter(|p| is_new(p)).count();
        let old: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_new(p)).collect();
        if new_count < desired {
            self.modify("replicasets", ns, &format!("{app}-{hash}"), |rs| {
                rs["spec"]["replicas"] = json!(new_count + 1)
            });
            if let Some(pod) = create_pod(&mut self.w, &deploy, &hash, PodPhase::Creating, None, new_count) {
                self.event(
                    &pod,
                    "Normal",
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{}", meta::name(&pod)),
                    "default-scheduler",
                );
                self.at(
                    2,
                    Step::PodReady {
                        ns: ns.into(),
                        pod: meta::name(&pod).into(),
                    },
                );
            }
            reconcile(&mut self.w, ns, app);
            self.at(3, Step::RolloutContinue { ns, app });
        } else if let Some(victim) = old.first() {
            if let Some(old_hash) = victim
                .pointer("/metadata/labels/pod-template-hash")
                .and_then(Value::as_str)
            {
                let remaining = old.len() - 1;
                self.modify("replicasets", ns, &format!("{app}-{old_hash}"), |rs| {
                    rs["spec"]["replicas"] = json!(remaining)
                });
            }
            self.at(
                1,
                Step::PodTerminate {
                    ns: ns.into(),
                    pod: meta::name(victim).into(),
                },
            );
            self.at(2, Step::RolloutContinue { ns, app });
        } else {
            // Done: keep the two newest old replica sets, as revisionHistoryLimit would.
            let selector = |o: &Value| o.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app);
            let mut old_sets: Vec<Arc<Value>> = self
                .w
                .store()
                .list(plural("replicasets"), Some(ns), None, None, Some(&selector))
                .items
                .into_iter()
                .filter(|rs| !meta::name(rs).ends_with(&hash))
                .collect();
            old_sets.sort_by_key(|rs| meta::resource_version(rs).parse::<u64>().unwrap_or(0));
            while old_sets.len() > 2 {
                let rs = old_sets.remove(0);
                let _ = self.w.store().remove(plural("replicasets"), &ObjKey::of(&rs));
            }
            reconcile(&mut self.w, ns, app);
            self.busy.insert(app, false);
        }
    }

    fn crash(&mut self) {
        let (ns, app) = CRASH_LOOPER;
        let Some(pod) = self.pods_of(ns, app).first().cloned() else {
            self.at(5, Step::Crash);
            return;
        };
        let now = meta::now_timestamp();
        let name = meta::name(&pod).to_string();
        let crashed = self.modify("pods", ns, &name, |p| {
            if let Some(cs) = p.pointer_mut("/status/containerStatuses/0") {
                let started = cs.pointer("/state/running/startedAt").cloned().unwrap_or(json!(now));
                let restarts = cs["restartCount"].as_i64().unwrap_or(0) + 1;
                let last = json!({ "terminated": { "exitCode": 2, "reason": "Error", "startedAt": started, "finishedAt": now } });
                cs["restartCount"] = json!(restarts);
                cs["lastState"] = last.clone();
                cs["state"] = last;
                cs["ready"] = json!(false);
                cs["started"] = json!(false);
            }
            p["status"]["conditions"] = kubelet::pod_conditions(false, &now);
        });
        if crashed.is_some() {
            reconcile(&mut self.w, ns, app);
            self.at(3, Step::CrashBackOff { pod: name });
        } else {
            self.at(3, Step::Crash);
        }
    }

    fn backoff_event(&mut self, pod: &Value) {
        let name = meta::name(pod).to_string();
        let now = meta::now_timestamp();
        if let Some(key) = self.backoff_events.get(&name).cloned()
            && self
                .modify("events", &key.namespace, &key.name, |e| {
                    e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
                    e["lastTimestamp"] = json!(now);
                })
                .is_some()
        {
            return;
        }
        let message = format!(
            "Back-off restarting failed container app in pod {name}_{}({})",
            meta::namespace(pod),
            meta_uid(pod)
        );
        if let Some(key) = self.event(pod, "Warning", "BackOff", &message, "kubelet") {
            self.backoff_events.insert(name, key);
        }
    }

    fn cron_fire(&mut self, ns: &'static str, cron: &'static str) {
        let Some(cronjob) = self.get("cronjobs", ns, cron) else {
            return;
        };
        if cronjob
            .pointer("/status/active")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        let now = meta::now_timestamp();
        let job_name = format!("{cron}-{}", 29_000_000 + self.tick);
        let template = cronjob.pointer("/spec/jobTemplate/spec").cloned().unwrap_or_default();
        let Some(job) = self.w.put(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": job_name, "namespace": ns, "creationTimestamp": now,
                          "labels": { "job-name": job_name, "cronjob": cron },
                          "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "CronJob", "name": cron,
                              "uid": cronjob.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true }] },
            "spec": template,
            "status": { "startTime": now, "active": 0 },
        })) else {
            return;
        };
        let pod_name = format!("{job_name}-{}", self.w.suffix());
        let node = WORKERS[self.w.rng.random_range(0..WORKERS.len())];
        self.w.pod(
            ns,
            &pod_name,
            &json!({ "job-name": job_name, "batch.kubernetes.io/job-name": job_name }),
            Some(&Owner::of(&job)),
            &[("job", "registry.example.com/batch/tools:1.2")],
            node,
            &PodPhase::Creating,
            None,
        );
        self.modify("cronjobs", ns, cron, |c| {
            c["status"]["lastScheduleTime"] = json!(now);
            c["status"]["active"] = json!([{ "apiVersion": "batch/v1", "kind": "Job", "name": job_name, "namespace": ns,
                                              "uid": job.pointer("/metadata/uid") }]);
        });
        self.event(
            &cronjob,
            "Normal",
            "SuccessfulCreate",
            &format!("Created job {job_name}"),
            "cronjob-controller",
        );
        self.event(
            &job,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {pod_name}"),
            "job-controller",
        );
        self.at(
            2,
            Step::JobRunning {
                ns: ns.into(),
                job: job_name,
                pod: pod_name,
            },
        );
    }

    fn job_finish(&mut self, ns: &str, job: &str, pod: &str, cron: &'static str) {
        let failed = self.w.rng.random_range(0..10) == 0;
        let now = meta::now_timestamp();
        self.modify("pods", ns, pod, |p| {
            if failed {
                p["status"]["phase"] = json!("Failed");
                if let Some(cs) = p.pointer_mut("/status/containerStatuses/0") {
                    cs["state"] = json!({ "terminated": { "exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now } });
                    cs["ready"] = json!(false);
                }
            } else {
                p["status"] = pod_status(p, &PodPhase::Succeeded, &now);
            }
        });
        let Some(job_obj) = self.modify("jobs", ns, job, |j| {
            j["status"]["active"] = json!(0);
            j["status"]["ready"] = json!(0);
            if failed {
                j["status"]["failed"] = json!(1);
                j["status"]["conditions"] = json!([
                    { "type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now },
                    { "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                      "message": "Job has reached the specified backoff limit", "lastTransitionTime": now },
                ]);
            } else {
                j["status"]["succeeded"] = json!(1);
                j["status"]["completionTime"] = json!(now);
                j["status"]["conditions"] = json!([
                    { "type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now },
                    { "type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now },
                ]);
            }
        }) else {
            return;
        };
        if failed {
            self.event(
                &job_obj,
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                "job-controller",
            );
        } else {
            self.event(&job_obj, "Normal", "Completed", "Job completed", "job-controller");
        }
        if let Some(cronjob) = self.modify("cronjobs", ns, cron, |c| {
            c["status"]["active"] = json!([]);
            if !failed {
                c["status"]["lastSuccessfulTime"] = json!(now);
            }
        }) {
            self.event(
                &cronjob,
                "Normal",
                "SawCompletedJob",
                &format!(
                    "Saw completed job: {job}, status: {}",
                    if failed { "Failed" } else { "Complete" }
                ),
                "cronjob-controller",
            );
        }
        // Keep the newest jobs of this cron job, with their pods.
        let owned = |o: &Value| o.pointer("/metadata/labels/cronjob").and_then(Value::as_str) == Some(cron);
        let mut jobs = self
            .w
            .store()
            .list(plural("jobs"), Some(ns), None, None, Some(&owned))
            .items;
        jobs.sort_by_key(|j| meta::resource_version(j).parse::<u64>().unwrap_or(0));
        while jobs.len() > MAX_JOBS {
            let old = jobs.remove(0);
            let old_name = meta::name(&old).to_string();
            let of_job =
                |o: &Value| o.pointer("/metadata/labels/job-name").and_then(Value::as_str) == Some(old_name.as_str());
            for p in self
                .w
                .store()
                .list(plural("pods"), Some(ns), None, None, Some(&of_job))
                .items
            {
                let _ = self.w.store().remove(plural("pods"), &ObjKey::of(&p));
            }
            let _ = self.w.store().remove(plural("jobs"), &ObjKey::of(&old));
        }
    }

    fn helm_revisions(&self, ns: &str, release: &str) -> Vec<u32> {
        let selector = |o: &Value| {
            o.pointer("/metadata/labels/owner").and_then(Value::as_str) == Some("helm")
                && o.pointer("/metadata/labels/name").and_then(Value::as_str) == Some(release)
        };
        let mut revisions: Vec<u32> = self
            .w
            .store()
            .list(plural("secrets"), Some(ns), None, None, Some(&selector))
            .items
            .iter()
            .filter_map(|s| {
                s.pointer("/metadata/labels/version")
                    .and_then(Value::as_str)?
                    .parse()
                    .ok()
            })
            .collect();
        revisions.sort_unstable();
        revisions
    }

    fn helm_settle(
        &mut self,
        ns: &'static str,
        release: &'static str,
        chart: (&'static str, &'static str, &'static str),
        revision: u32,
    ) {
        let failed = self.w.rng.random_range(0..6) == 0;
        let first = self.first_deployed.clone();
        self.w.helm_release(
            ns,
            release,
            chart,
            revision,
            if failed { "failed" } else { "deployed" },
            &first,
        );
        if !failed {
            for older in self.helm_revisions(ns, release).into_iter().filter(|r| *r < revision) {
                let name = format!("sh.helm.release.v1.{release}.v{older}");
                let deployed = self
                    .get("secrets", ns, &name)
                    .is_some_and(|s| s.pointer("/metadata/labels/status").and_then(Value::as_str) == Some("deployed"));
                if deployed {
                    self.w.helm_release(ns, release, chart, older, "superseded", &first);
                }
            }
        }
        let revisions = self.helm_revisions(ns, release);
        let excess = revisions.len().saturating_sub(MAX_HELM_REVISIONS as usize);
        for old in revisions.into_iter().take(excess) {
            let _ = self.w.store().remove(
                plural("secrets"),
                &ObjKey {
                    namespace: ns.into(),
                    name: format!("sh.helm.release.v1.{release}.v{old}"),
                },
            );
        }
        self.busy.insert(release, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_distinct() {
        assert_eq!(template_hash("nginx:1"), template_hash("nginx:1"));
        assert_ne!(template_hash("nginx:1"), template_hash("nginx:2"));
        assert_eq!(template_hash("nginx:1").len(), 10);
    }
}
