//! kube-rs's watcher against injected faults: after each one it must end with exactly
//! the sim's objects (names and resourceVersions).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use periscope_sim::{FaultCount, ListFailure, Sim};
use serde_json::json;

use crate::support::{client, empty_sim, within};

const NS: &str = "default";

fn configmap(name: &str, value: &str) -> serde_json::Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": NS }, "data": { "value": value } })
}

fn sim_state(sim: &Sim) -> BTreeMap<String, String> {
    sim.objects("configmaps", Some(NS))
        .expect("configmaps are served")
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn reflected(store: &Store<ConfigMap>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap_or_default(),
                cm.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Drives the watcher until the reflector holds exactly the sim's objects.
async fn converge<S>(what: &str, sim: &Sim, store: &Store<ConfigMap>, stream: &mut S)
where
    S: Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    within(what, async {
        loop {
            if reflected(store) == sim_state(sim) {
                return;
            }
            // Errors are what the faults cause; the backoff retries them.
            if stream.next().await.is_none() {
                panic!("the watcher stream ended during {what}");
            }
        }
    })
    .await;
}

/// Writes that happen while a fault is active: one create, one update, one delete.
fn churn(sim: &Sim, round: usize) {
    sim.apply(configmap(&format!("round-{round}"), "new")).expect("create");
    sim.apply(configmap("stable", &format!("round-{round}")))
        .expect("update");
    if round > 0 {
        sim.delete("configmaps", Some(NS), &format!("round-{}", round - 1))
            .expect("delete");
    }
}

#[tokio::test]
async fn watcher_recovers_from_every_fault() {
    let sim = empty_sim().await;
    for i in 0..5 {
        sim.apply(configmap(&format!("seed-{i}"), "x")).expect("seed");
    }
    sim.apply(configmap("stable", "start")).expect("seed");
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), NS);
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().timeout(5);
    let mut stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .boxed();
    converge("the initial list", &sim, &store, &mut stream).await;

    churn(&sim, 0);
    converge("plain changes", &sim, &store, &mut stream).await;

    // Dropped watch connections: the watcher resumes from its last version.
    sim.drop_watches(Some("configmaps")).expect("known resource");
    churn(&sim, 1);
    converge("changes after dropped watches", &sim, &store, &mut stream).await;

    // 410 on the next watches: the watcher relists.
    sim.expire_watches(FaultCount::Times(2));
    sim.drop_watches(None).expect("all resources");
    churn(&sim, 2);
    converge("changes after 410 Expired", &sim, &store, &mut stream).await;

    // Lists failing with 500, then with 429, while a relist is forced.
    for failure in [ListFailure::InternalError, ListFailure::TooManyRequests] {
        sim.fail_lists(failure, FaultCount::Times(3));
        sim.expire_watches(FaultCount::Times(1));
        sim.drop_watches(None).expect("all resources");
        churn(&sim, 3 + failure as usize);
        converge(
            &format!("changes after failing lists ({failure:?})"),
            &sim,
            &store,
            &mut stream,
        )
        .await;
    }

    // Slow responses.
    sim.set_latency(Duration::from_millis(300));
    sim.drop_watches(None).expect("all resources");
    churn(&sim, 5);
    converge("changes under latency", &sim, &store, &mut stream).await;
    sim.clear_faults();

    // A paused apiserver: requests and events hang until it resumes.
    sim.pause();
    sim.drop_watches(None).expect("all resources");
    churn(&sim, 6);
    assert_ne!(reflected(&store), sim_state(&sim), "nothing is delivered while paused");
    sim.unpause();
    converge("changes after a pause", &sim, &store, &mut stream).await;
}

#[tokio::test]
async fn watcher_with_streaming_lists_reaches_the_same_state() {
    let sim = empty_sim().await;
    for i in 0..30 {
        sim.apply(configmap(&format!("cm-{i:02}"), "x")).expect("seed");
    }
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), NS);
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().streaming_lists();
    let mut stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .boxed();
    converge("the initial events", &sim, &store, &mut stream).await;
    churn(&sim, 0);
    converge("later changes", &sim, &store, &mut stream).await;
}
