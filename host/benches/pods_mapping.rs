//! Pods mapping: native Rust against the bundled WebAssembly component, single objects
//! and batches, in one run, so the ratio is measured on the same machine at the same
//! time. Both sides start from the raw pod the apiserver sends and include the host's
//! stripping (`periscope_golden::strip_raw`, what the hub runs on every list item):
//!
//! - `native`: stripping by the top-level keys the mapping reads, then the plugin's
//!   `Mapper::map_json` compiled for the host;
//! - `wasm`: stripping by the plugin's declared paths (parsed at load, as the hub
//!   uses them), then the component call, so pruning's cost counts on the wasm side;
//! - `wasm-unpruned`: the component fed what the host passed before field paths
//!   (top-level keys only), the "before" of the same run.
//!
//! Also the issue-4 figure: a List of 10,000 realistic pods stripped and mapped through
//! the component and written as the snapshot array.
//!
//! Run with: `cargo bench -p periscope --bench pods_mapping`
//! (results are recorded in docs/benchmarks.md).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use periscope::plugin::{Fields, Plugin, PluginRuntime, RuntimeOptions};
use periscope_plugin_pods::{Pod, Pods};
use periscope_plugin_sdk::{Context, Mapper, Object, Timestamp};
use serde_json::json;

/// A realistic pod as the apiserver returns it (about 5 KB of JSON, `managedFields`
/// included): two containers with images, ports, env, resources, probes and mounts,
/// an init container, volumes with the projected service-account token, tolerations,
/// statuses and conditions. Varied by `i` so batches are not one object repeated.
fn pod(i: usize) -> String {
    let phase = ["Running", "Pending", "Succeeded"][i % 3];
    let state = if i.is_multiple_of(7) {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container app"}})
    } else {
        json!({"running": {"startedAt": "2026-05-01T10:00:05Z"}})
    };
    let name = format!("web-7d9f8b6c5d-{i:05}");
    let mounts = json!([
        {"name": "config", "mountPath": "/etc/web", "readOnly": true},
        {"name": "cache", "mountPath": "/var/cache/web"},
        {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
    ]);
    let probe = |path: &str, delay: u32| {
        json!({"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": delay,
               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": "web-7d9f8b6c5d-",
            "namespace": format!("shop-{}", i % 10),
            "uid": format!("3f1c2a4e-8b7d-4c6e-9a1f-{i:012}"),
            "resourceVersion": (1000 + i).to_string(),
            "creationTimestamp": "2026-05-01T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "frontend", "version": "1.42.0"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-04-30T09:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5d", "uid": "1b2c3d4e-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:tier": {}},
                              "f:ownerReferences": {".": {}, "k:{\"uid\":\"1b2c3d4e-0000-4000-8000-000000000001\"}": {}}},
                              "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {}, "f:image": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-05-01T10:00:06Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}}
            ]
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "initContainers": [
                {"name": "migrate", "image": "registry.example.com/shop/web:1.42.0", "command": ["/app/migrate", "--wait"],
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}, "volumeMounts": mounts,
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
            ],
            "containers": [
                {"name": "app", "image": "registry.example.com/shop/web:1.42.0", "args": ["--port=8080", "--metrics-port=9090"],
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                 "env": [
                     {"name": "LOG_LEVEL", "value": "info"},
                     {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "url"}}},
                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                     {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                     {"name": "CACHE_DIR", "value": "/var/cache/web"},
                     {"name": "FEATURE_FLAGS", "value": "checkout-v2,search-beta"}
                 ],
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                 "livenessProbe": probe("/healthz", 10), "readinessProbe": probe("/ready", 5),
                 "volumeMounts": mounts, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"},
                {"name": "proxy", "image": "registry.example.com/mesh/proxy:2.1.0", "args": ["proxy", "sidecar"],
                 "ports": [{"name": "proxy-admin", "containerPort": 15000, "protocol": "TCP"}],
                 "env": [{"name": "PROXY_LOG_LEVEL", "value": "warn"}, {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "readinessProbe": probe("/healthz/ready", 1),
                 "volumeMounts": [{"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
            ],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "web", "serviceAccount": "web", "nodeName": format!("node-{}", i % 50),
            "securityContext": {"runAsNonRoot": true, "fsGroup": 2000}, "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-05-01T10:00:02Z"},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-05-01T10:00:03Z"},
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-05-01T10:00:09Z"},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-05-01T10:00:09Z"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-05-01T10:00:00Z"}
            ],
            "hostIP": format!("192.168.0.{}", i % 50),
            "hostIPs": [{"ip": format!("192.168.0.{}", i % 50)}],
            "podIP": format!("10.244.{}.{}", i % 50, i % 250),
            "podIPs": [{"ip": format!("10.244.{}.{}", i % 50, i % 250)}],
            "startTime": "2026-05-01T10:00:01Z",
            "initContainerStatuses": [
                {"name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-05-01T10:00:02Z", "finishedAt": "2026-05-01T10:00:03Z", "containerID": "containerd://0a1b"}},
                 "lastState": {}, "ready": true, "restartCount": 0, "image": "registry.example.com/shop/web:1.42.0", "imageID": "registry.example.com/shop/web@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "containerID": "containerd://0a1b", "started": false}
            ],
            "containerStatuses": [
                {"name": "app", "state": state, "lastState": {}, "ready": true, "restartCount": i % 4,
                 "image": "registry.example.com/shop/web:1.42.0", "imageID": "registry.example.com/shop/web@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "containerID": "containerd://2c3d", "started": true},
                {"name": "proxy", "state": {"running": {"startedAt": "2026-05-01T10:00:04Z"}}, "lastState": {}, "ready": true, "restartCount": 0,
                 "image": "registry.example.com/mesh/proxy:2.1.0", "imageID": "registry.example.com/mesh/proxy@sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", "containerID": "containerd://4e5f", "started": true}
            ],
            "qosClass": "Burstable"
        }
    })
    .to_string()
}

fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-05-01 12:00 UTC)
}

/// What the host passes to a plugin: the raw pod stripped by `fields`.
fn strip(object: &str, fields: &Fields) -> String {
    periscope_golden::strip_raw(object, fields).expect("a pod").json
}

fn bench(c: &mut Criterion) {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).expect("runtime starts");
    let plugin: std::sync::Arc<Plugin> = runtime
        .load_bundled()
        .expect("bundled plugins load")
        .into_iter()
        .find(|p| p.info().token == "pods")
        .expect("the pods plugin is bundled");
    let ctx = Context {
        now: Timestamp::from_unix(now().unix_timestamp(), 0),
    };
    // The plugin's declared paths, as the hub holds them; and the top-level keys the
    // mapping reads, what the host stripped by before paths.
    let paths = plugin.info().fields.clone();
    assert!(
        paths.declared().len() > <Pod as Object>::FIELDS.len(),
        "pods declares paths"
    );
    let top = Fields::parse(<Pod as Object>::FIELDS).expect("top-level keys");
    let one = pod(1);
    eprintln!(
        "pod: {} bytes raw, {} stripped by top-level keys, {} pruned by the plugin's paths",
        one.len(),
        strip(&one, &top).len(),
        strip(&one, &paths).len()
    );

    let native = |object: &str| Pods::map_json(&strip(object, &top), &ctx).expect("maps");
    let wasm = |object: &str, fields: &Fields| plugin.to_dto(&strip(object, fields), now()).expect("maps");
    let wasm_batch = |objects: &[String], fields: &Fields| {
        let stripped: Vec<String> = objects.iter().map(|o| strip(o, fields)).collect();
        plugin.to_dto_batch(&stripped, now())
    };
    assert_eq!(native(&one), wasm(&one, &paths), "both sides map the pod the same");

    let mut single = c.benchmark_group("pods/single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("native", |b| b.iter(|| native(black_box(&one))));
    single.bench_function("wasm", |b| b.iter(|| wasm(black_box(&one), &paths)));
    single.bench_function("wasm-unpruned", |b| b.iter(|| wasm(black_box(&one), &top)));
    // For the record: what the paths would do for native code.
    single.bench_function("native-pruned", |b| {
        b.iter(|| Pods::map_json(&strip(black_box(&one), &paths), &ctx).expect("maps"))
    });
    // The fixed cost of a call: an empty object maps to an all-defaults DTO.
    single.bench_function("wasm-empty-object", |b| {
        b.iter(|| plugin.to_dto(black_box("{}"), now()).expect("maps"))
    });
    single.finish();

    let mut batch = c.benchmark_group("pods/batch");
    for size in [100usize, 1000] {
        let objects: Vec<String> = (0..size).map(pod).collect();
        batch.throughput(Throughput::Elements(size as u64));
        batch.bench_with_input(BenchmarkId::new("native", size), &objects, |b, objects| {
            b.iter(|| objects.iter().map(|o| native(o)).collect::<Vec<_>>())
        });
        batch.bench_with_input(BenchmarkId::new("wasm", size), &objects, |b, objects| {
            b.iter(|| wasm_batch(black_box(objects), &paths))
        });
        batch.bench_with_input(BenchmarkId::new("wasm-unpruned", size), &objects, |b, objects| {
            b.iter(|| wasm_batch(black_box(objects), &top))
        });
    }
    // What one more object costs in a batch apart from its mapping (the canonical-ABI
    // lift and lower of its string, the host's check of the DTO): the most a single
    // array in and out could save.
    let empties: Vec<String> = vec!["{}".to_string(); 1000];
    batch.throughput(Throughput::Elements(1000));
    batch.bench_function("wasm-empty-objects/1000", |b| {
        b.iter(|| plugin.to_dto_batch(black_box(&empties), now()))
    });
    batch.finish();

    let mut list = c.benchmark_group("pods/list-10000-to-snapshot-array");
    list.sample_size(10);
    let objects: Vec<String> = (0..10_000).map(pod).collect();
    list.throughput(Throughput::Elements(10_000));
    list.bench_function("wasm", |b| {
        b.iter(|| {
            let dtos: Vec<String> = wasm_batch(&objects, &paths)
                .into_iter()
                .map(|r| r.expect("maps"))
                .collect();
            format!("[{}]", dtos.join(","))
        })
    });
    list.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
