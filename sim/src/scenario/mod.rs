//! Starting objects and churn: the `empty` and `demo` scenarios and benchmark pods.

mod demo;
mod objects;
mod policy;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::resource;
use crate::store::Store;
use crate::{Scenario, SimOptions};

pub(crate) use objects::Writer;

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Namespaces holding benchmark pods.
const BENCH_NAMESPACES: usize = 10;

/// Creates the scenario's starting objects (every scenario has the system namespaces
/// and the bootstrap RBAC policy) and the benchmark pods.
pub(crate) fn seed(store: &Arc<Store>, opts: &SimOptions) {
    let mut w = Writer::new(store.clone(), opts.seed);
    for ns in SYSTEM_NAMESPACES {
        w.namespace(ns);
    }
    policy::seed(&mut w);
    if opts.scenario == Scenario::Demo {
        demo::seed(&mut w);
    }
    if opts.pods > 0 {
        seed_bench(&mut w, opts.pods);
    }
}

fn seed_bench(w: &mut Writer, pods: usize) {
    let nodes = resource::builtin_id("nodes").map_or(0, |id| w.store().count(id));
    if nodes == 0 {
        for i in 1..=3 {
            w.node(&format!("bench-node-{i}"), "worker");
        }
    }
    let namespaces = BENCH_NAMESPACES.min(pods.max(1));
    for n in 0..namespaces {
        w.namespace(&format!("bench-{n}"));
    }
    for i in 0..pods {
        let ns = format!("bench-{}", i % namespaces);
        let app = format!("load-{}", i % 50);
        w.bench_pod(&ns, &format!("{app}-{i:06}"), &app, i);
    }
}

/// Starts the demo churn in the background until `shutdown`.
pub(crate) fn spawn_churn(store: Arc<Store>, shutdown: CancellationToken, opts: &SimOptions) {
    demo::spawn(store, shutdown, opts.seed, opts.churn_interval);
}
