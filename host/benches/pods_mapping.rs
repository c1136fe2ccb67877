//! Pods mapping: native Rust against the bundled WebAssembly component, single objects
//! and batches, in one run, so the ratio is measured on the same machine at the same
//! time. Also the issue-4 figure: a List of 10,000 realistic pods mapped through the
//! component and written as the snapshot array.
//!
//! Run with: `cargo bench -p periscope --bench pods_mapping`
//! (results are recorded in docs/benchmarks.md).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use periscope::plugin::{PluginRuntime, RuntimeOptions};
use periscope_plugin_pods::Pods;
use periscope_plugin_sdk::{Context, Mapper, Timestamp};

/// A realistic pod as the apiserver returns it (managedFields already stripped), about
/// 1.5 KB of JSON, varied by `i` so batches are not one object repeated.
fn pod(i: usize) -> String {
    let phase = ["Running", "Pending", "Succeeded"][i % 3];
    let waiting = if i.is_multiple_of(7) {
        r#""waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container"}"#
    } else {
        r#""running":{"startedAt":"2026-05-01T10:00:05Z"}"#
    };
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-7d9f8b6c5d-{i:05}","generateName":"web-7d9f8b6c5d-","namespace":"shop-{ns}","uid":"3f1c2a4e-8b7d-4c6e-9a1f-{i:012}","resourceVersion":"{rv}","creationTimestamp":"2026-05-01T10:00:00Z","labels":{{"app":"web","pod-template-hash":"7d9f8b6c5d","tier":"frontend"}},"annotations":{{"kubectl.kubernetes.io/restartedAt":"2026-04-30T09:00:00Z"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d9f8b6c5d","uid":"1b2c3d4e","controller":true,"blockOwnerDeletion":true}}]}},"spec":{{"nodeName":"node-{node}","serviceAccountName":"default","restartPolicy":"Always","containers":[{{"name":"app","image":"registry.example.com/shop/web:1.42.0","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"resources":{{"requests":{{"cpu":"250m","memory":"256Mi"}},"limits":{{"memory":"512Mi"}}}}}},{{"name":"sidecar","image":"registry.example.com/mesh/proxy:2.1.0"}}]}},"status":{{"phase":"{phase}","podIP":"10.244.{node}.{ip}","hostIP":"192.168.0.{node}","startTime":"2026-05-01T10:00:01Z","conditions":[{{"type":"Initialized","status":"True"}},{{"type":"Ready","status":"True"}},{{"type":"ContainersReady","status":"True"}},{{"type":"PodScheduled","status":"True"}}],"containerStatuses":[{{"name":"app","ready":true,"restartCount":{restarts},"image":"registry.example.com/shop/web:1.42.0","imageID":"sha256:abc","containerID":"containerd://def","started":true,"state":{{{waiting}}}}},{{"name":"sidecar","ready":true,"restartCount":0,"started":true,"state":{{"running":{{"startedAt":"2026-05-01T10:00:04Z"}}}}}}]}}}}"#,
        ns = i % 10,
        rv = 1000 + i,
        node = i % 50,
        ip = i % 250,
        restarts = i % 4,
    )
}

fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-05-01 12:00 UTC)
}

fn bench(c: &mut Criterion) {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).expect("runtime starts");
    let plugin = runtime
        .load_bundled()
        .expect("bundled plugins load")
        .into_iter()
        .find(|p| p.info().token == "pods")
        .expect("the pods plugin is bundled");
    let ctx = Context {
        now: Timestamp::from_unix(now().unix_timestamp(), 0),
    };
    let one = pod(1);

    let mut single = c.benchmark_group("pods/single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("native", |b| {
        b.iter(|| Pods::map_json(black_box(&one), &ctx).expect("maps"))
    });
    single.bench_function("wasm", |b| {
        b.iter(|| plugin.to_dto(black_box(&one), now()).expect("maps"))
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
            b.iter(|| {
                objects
                    .iter()
                    .map(|o| Pods::map_json(o, &ctx).expect("maps"))
                    .collect::<Vec<_>>()
            })
        });
        batch.bench_with_input(BenchmarkId::new("wasm", size), &objects, |b, objects| {
            b.iter(|| plugin.to_dto_batch(black_box(objects), now()))
        });
    }
    batch.finish();

    let mut list = c.benchmark_group("pods/list-10000-to-snapshot-array");
    list.sample_size(10);
    let objects: Vec<String> = (0..10_000).map(pod).collect();
    list.throughput(Throughput::Elements(10_000));
    list.bench_function("wasm", |b| {
        b.iter(|| {
            let dtos: Vec<String> = plugin
                .to_dto_batch(&objects, now())
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
