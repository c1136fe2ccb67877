use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use periscope_sim::{Scenario, SimOptions};
use periscope_tests::served::{SseClient, patience, pod, serve};
use serde_json::Value;

/// A client's view of a stream as Periscope's SPA keeps it: the snapshot replaces it,
/// deltas patch it by name.
#[derive(Default)]
struct View {
    rows: BTreeMap<String, Value>,
    errors: usize,
}

impl View {
    fn apply(&mut self, event: &str, data: &str) {
        let data: Value = serde_json::from_str(data).unwrap();
        let name = |v: &Value| v["name"].as_str().unwrap().to_string();
        match event {
            "snapshot" => {
                self.rows = data["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| (name(i), i.clone()))
                    .collect();
            }
            "added" | "modified" => {
                self.rows.insert(name(&data["object"]), data["object"].clone());
            }
            "deleted" => {
                self.rows.remove(&name(&data["object"]));
            }
            "error" => self.errors += 1,
            _ => {}
        }
    }

    fn names(&self) -> Vec<&str> {
        self.rows.keys().map(String::as_str).collect()
    }
}

/// Reads `client` into `view` until `done` holds (panics after `within`); false if the
/// stream ended first.
async fn follow(client: &mut SseClient, view: &mut View, within: Duration, done: impl Fn(&View) -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done(view) {
        assert!(
            Instant::now() < deadline,
            "the view did not converge: {:?}",
            view.names()
        );
        match client.next().await {
            Some(event) => view.apply(&event.event, &event.data),
            None => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_apiserver_with_a_fresh_store_is_invisible_to_open_streams() {
    let mut served = serve(&[
        ("PERISCOPE_WATCH_OUTAGE_GRACE", "30s"),
        ("PERISCOPE_WATCH_REQUEST_TIMEOUT", "2s"),
    ])
    .await;
    for name in ["a", "b", "c"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    // History the restarted store will not have: its resourceVersions start lower.
    for i in 0..20 {
        served
            .sim
            .apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": format!("history-{i}"), "namespace": "default" },
            }))
            .unwrap();
    }
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
        let mut view = View::default();
        assert!(follow(&mut client, &mut view, patience(), |v| v.rows.len() == 3).await);
        clients.push((client, view));
    }
    let before_rv = served.sim.resource_version();

    // Down for two seconds, back with an empty store: resourceVersions start over.
    let fresh = SimOptions {
        scenario: Scenario::Empty,
        ..SimOptions::default()
    };
    served.sim.restart(fresh, Duration::from_secs(2)).await.unwrap();
    for name in ["b", "c", "d"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    assert!(served.sim.resource_version() < before_rv, "the new store starts over");

    for (client, view) in &mut clients {
        let converged = follow(client, view, patience(), |v| v.names() == ["b", "c", "d"]).await;
        assert!(converged, "a stream ended during the restart");
        assert_eq!(view.errors, 0, "no client sees an error");
    }
    // A Last-Event-ID from before the restart gets a snapshot of the new state, not a
    // replay from the old store.
    let mut late = SseClient::connect(&served.url("pods/watch"), Some(&before_rv.to_string())).await;
    let mut view = View::default();
    assert!(follow(&mut late, &mut view, patience(), |v| v.names() == ["b", "c", "d"]).await);
    served.shutdown().await;
}

/// Settings that notice a paused apiserver within about two seconds.
const FAST: [(&str, &str); 2] = [
    ("PERISCOPE_WATCH_SILENCE_TIMEOUT", "1s"),
    ("PERISCOPE_WATCH_REQUEST_TIMEOUT", "1s"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_shorter_than_the_grace_goes_unnoticed() {
    let served = serve(&[FAST[0], FAST[1], ("PERISCOPE_WATCH_OUTAGE_GRACE", "20s")]).await;
    served.sim.apply(pod("shop", "a")).unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
        let mut view = View::default();
        assert!(follow(&mut client, &mut view, patience(), |v| v.rows.len() == 1).await);
        clients.push((client, view));
    }
    served.sim.pause();
    served.sim.apply(pod("shop", "during-pause")).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // In the outage: polls and new subscribers get the last good state.
    let body: Value = reqwest::get(served.url("pods")).await.unwrap().json().await.unwrap();
    assert_eq!(body["pods"].as_array().unwrap().len(), 1, "{body}");
    let mut newcomer = SseClient::connect(&served.url("pods/watch"), None).await;
    assert_eq!(
        newcomer.expect_json("snapshot").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let debug: Value = reqwest::get(format!("{}/debug/streams", served.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(debug[0]["upstreamOutageSince"].is_string(), "{debug}");
    served.sim.unpause();
    for (client, view) in &mut clients {
        assert!(follow(client, view, patience(), |v| v.rows.len() == 2).await);
        assert_eq!(view.errors, 0);
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_longer_than_the_grace_ends_every_stream_with_one_error() {
    let served = serve(&[FAST[0], FAST[1], ("PERISCOPE_WATCH_OUTAGE_GRACE", "2s")]).await;
    served.sim.apply(pod("shop", "a")).unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
        client.expect("snapshot").await;
        clients.push(client);
    }
    served.sim.pause();
    for client in &mut clients {
        let mut view = View::default();
        let ended = !follow(client, &mut view, patience(), |_| false).await;
        assert!(ended, "the stream ends");
        assert_eq!(view.errors, 1, "exactly one error frame");
    }
    let response = reqwest::get(served.url("pods")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unavailable", "{body}");
    served.sim.unpause();
    served.shutdown().await;
}
