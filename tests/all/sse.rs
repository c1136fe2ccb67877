use std::time::Duration;

use periscope_sim::FaultCount;
use periscope_tests::served::{SseClient, patience, pod, serve};
use serde_json::Value;

/// The `name` of each item of a snapshot, in order.
pub(crate) fn names(snapshot: &Value) -> Vec<String> {
    snapshot["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until `check` holds, polling; for states nothing can be awaited on.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + patience();
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_sends_a_snapshot_then_deltas_for_creates_updates_and_deletes() {
    let served = serve(&[]).await;
    served.sim.apply(pod("shop", "one")).unwrap();
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    assert_eq!(client.status, 200);
    assert_eq!(client.headers["content-type"], "text/event-stream");
    assert_eq!(client.headers["cache-control"], "no-cache, no-transform");
    assert_eq!(client.headers["x-accel-buffering"], "no");

    let snapshot = client.expect("snapshot").await;
    let data: Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(names(&data), ["one"]);
    assert_eq!(snapshot.id, data["resourceVersion"].as_str().unwrap());
    assert_eq!(data["items"][0]["ready"], "0/1");

    let created = served.sim.apply(pod("shop", "two")).unwrap();
    let added = client.expect("added").await;
    assert_eq!(added.id, created["metadata"]["resourceVersion"].as_str().unwrap());
    let added: Value = serde_json::from_str(&added.data).unwrap();
    assert_eq!(added["object"]["name"], "two");
    assert_eq!(added["object"]["namespace"], "shop");

    let mut changed = pod("shop", "one");
    changed["metadata"]["labels"]["tier"] = "web".into();
    served.sim.apply(changed).unwrap();
    assert_eq!(client.expect_json("modified").await["object"]["name"], "one");

    served.sim.delete("pods", Some("shop"), "two").unwrap();
    assert_eq!(client.expect_json("deleted").await["object"]["name"], "two");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_parameter_filters_the_stream() {
    let served = serve(&[]).await;
    served.sim.apply(pod("shop", "a")).unwrap();
    served.sim.apply(pod("blog", "b")).unwrap();
    let mut shop = SseClient::connect(&served.url("pods/watch?namespace=shop"), None).await;
    assert_eq!(names(&shop.expect_json("snapshot").await), ["a"]);
    served.sim.apply(pod("blog", "c")).unwrap();
    served.sim.apply(pod("shop", "d")).unwrap();
    assert_eq!(shop.expect_json("added").await["object"]["name"], "d");

    let mut all = SseClient::connect(&served.url("pods/watch"), None).await;
    assert_eq!(names(&all.expect_json("snapshot").await), ["b", "c", "a", "d"]);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn last_event_id_within_the_ring_resumes_without_a_snapshot() {
    let served = serve(&[]).await;
    let mut first = SseClient::connect(&served.url("pods/watch"), None).await;
    first.expect("snapshot").await;
    served.sim.apply(pod("shop", "a")).unwrap();
    let seen = first.expect("added").await;
    drop(first);
    served.sim.apply(pod("shop", "b")).unwrap();
    served.sim.apply(pod("shop", "c")).unwrap();
    // Wait until the hub has both (a third subscriber sees them in its snapshot).
    let mut probe = SseClient::connect(&served.url("pods/watch"), None).await;
    let mut snapshot = probe.expect_json("snapshot").await;
    while names(&snapshot).len() < 3 {
        probe.next().await;
        probe = SseClient::connect(&served.url("pods/watch"), None).await;
        snapshot = probe.expect_json("snapshot").await;
    }

    let mut resumed = SseClient::connect(&served.url("pods/watch"), Some(&seen.id)).await;
    assert_eq!(resumed.expect_json("added").await["object"]["name"], "b");
    assert_eq!(resumed.expect_json("added").await["object"]["name"], "c");

    let mut unknown = SseClient::connect(&served.url("pods/watch"), Some("no-such-version")).await;
    assert_eq!(names(&unknown.expect_json("snapshot").await).len(), 3);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_from_a_snapshot_replays_no_delta_the_snapshot_held() {
    let served = serve(&[]).await;
    // The upstream lists (empty namespace), then a, b and c arrive as deltas.
    let mut first = SseClient::connect(&served.url("pods/watch?namespace=shop"), None).await;
    first.expect("snapshot").await;
    for name in ["a", "b", "c"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    let mut last = String::new();
    for _ in 0..3 {
        last = first.expect("added").await.id;
    }
    // A late joiner gets a snapshot holding all three, named after the newest change.
    let mut late = SseClient::connect(&served.url("pods/watch?namespace=shop"), None).await;
    let snapshot = late.expect("snapshot").await;
    let data: serde_json::Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(names(&data), ["a", "b", "c"]);
    assert_eq!(snapshot.id, last, "the snapshot's id is its newest delta's");
    assert_eq!(data["resourceVersion"], last.as_str());
    drop(late);
    served.sim.apply(pod("shop", "d")).unwrap();
    first.expect("added").await;
    // Resuming from the snapshot's id: only d, none of a, b, c again.
    let mut resumed = SseClient::connect(&served.url("pods/watch?namespace=shop"), Some(&snapshot.id)).await;
    let event = resumed.next().await.expect("a frame");
    assert_eq!(event.event, "added", "{}", event.data);
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["object"]["name"], "d");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_watch_sends_relist_then_a_new_snapshot() {
    let served = serve(&[]).await;
    served.sim.apply(pod("shop", "a")).unwrap();
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    client.expect("snapshot").await;
    eventually("the upstream watch", || served.sim.open_watches("pods").unwrap() == 1).await;
    served.sim.expire_watches(FaultCount::Times(1));
    served.sim.drop_watches(Some("pods")).unwrap();
    let relist = client.expect_json("relist").await;
    assert_eq!(relist, serde_json::json!({ "reason": "gone_410" }));
    let snapshot = client.expect_json("snapshot").await;
    assert_eq!(names(&snapshot), ["a"]);
    served.sim.apply(pod("shop", "b")).unwrap();
    assert_eq!(client.expect_json("added").await["object"]["name"], "b");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_dropped_watches_the_client_view_equals_the_cluster() {
    let served = serve(&[]).await;
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    let mut view: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    let snapshot = client.expect_json("snapshot").await;
    assert!(names(&snapshot).is_empty());
    for round in 0..5 {
        for i in 0..4 {
            served.sim.apply(pod("shop", &format!("p{round}-{i}"))).unwrap();
        }
        served.sim.delete("pods", Some("shop"), &format!("p{round}-0")).unwrap();
        served.sim.drop_watches(Some("pods")).unwrap();
    }
    let expected: Vec<String> = served
        .sim
        .objects("pods", None)
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    while view.keys().cloned().collect::<Vec<_>>() != expected {
        let event = client.next().await.expect("the stream stays open");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        match event.event.as_str() {
            "snapshot" => {
                view = data["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| (i["name"].as_str().unwrap().to_string(), i.clone()))
                    .collect();
            }
            "added" | "modified" => {
                view.insert(
                    data["object"]["name"].as_str().unwrap().to_string(),
                    data["object"].clone(),
                );
            }
            "deleted" => {
                view.remove(data["object"]["name"].as_str().unwrap());
            }
            other => panic!("unexpected {other}: {}", event.data),
        }
    }
    assert_eq!(view.len(), 15);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_sends_server_shutdown_to_every_stream() {
    let served = serve(&[]).await;
    let mut a = SseClient::connect(&served.url("pods/watch"), None).await;
    let mut b = SseClient::connect(&served.url("nodes/watch"), None).await;
    a.expect("snapshot").await;
    b.expect("snapshot").await;
    served.begin_shutdown();
    assert_eq!(a.expect("server_shutdown").await.data, "{}");
    assert_eq!(b.expect("server_shutdown").await.data, "{}");
    assert!(a.next().await.is_none());
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_kind_has_no_watch_route_but_polls() {
    let served = serve(&[("PERISCOPE_WATCH_STREAMS", "core")]).await;
    let response = reqwest::get(served.url("deployments/watch")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let response = reqwest::get(served.url("deployments")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{\"deployments\":[]}\n");
    let features: Value = reqwest::get(format!("{}/api/features", served.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(features["watchStreams"], serde_json::json!(["pods", "events"]));
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_cluster_is_404_cluster_not_found() {
    let served = serve(&[]).await;
    for path in ["pods", "pods/watch"] {
        let response = reqwest::get(format!("{}/api/clusters/nope/{path}", served.base))
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(response.text().await.unwrap(), "cluster not found");
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_and_streaming_return_identical_dtos() {
    let served = serve(&[]).await;
    for name in ["a", "b", "c"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    let mut client = SseClient::connect(&served.url("pods/watch?namespace=shop"), None).await;
    let snapshot = client.expect_json("snapshot").await;
    let response = reqwest::get(served.url("pods?namespace=shop")).await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'));
    let polled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(polled["pods"], snapshot["items"]);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_subscribers_share_one_upstream_watch_which_stops_after_the_linger() {
    let served = serve(&[
        ("PERISCOPE_WATCH_LINGER", "1s"),
        ("PERISCOPE_WATCH_PER_USER_LIMIT", "0"),
    ])
    .await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(SseClient::connect(&served.url("pods/watch"), None).await);
    }
    for client in &mut clients {
        client.expect("snapshot").await;
    }
    eventually("one upstream watch", || served.sim.open_watches("pods").unwrap() == 1).await;
    served.sim.apply(pod("shop", "x")).unwrap();
    for client in &mut clients {
        assert_eq!(client.expect_json("added").await["object"]["name"], "x");
    }
    assert_eq!(served.sim.open_watches("pods").unwrap(), 1);
    assert_eq!(served.hub.upstream_keys().len(), 1);
    drop(clients);
    eventually("no upstream watch after the linger", || {
        served.sim.open_watches("pods").unwrap() == 0
    })
    .await;
    assert!(served.hub.upstream_keys().is_empty());
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_reader_gets_backpressure_while_another_keeps_receiving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let served = serve(&[("PERISCOPE_WATCH_QUEUE", "64")]).await;
    let addr = served.base.trim_start_matches("http://").to_string();
    // A raw connection with a tiny receive buffer that stops reading after the headers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr.parse().unwrap()).await.unwrap();
    stalled
        .write_all(
            format!("GET /api/clusters/test/pods/watch HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    let mut healthy = SseClient::connect(&served.url("pods/watch"), None).await;
    healthy.expect("snapshot").await;
    // The healthy reader reads concurrently until it sees the last pod.
    let reader = tokio::spawn(async move {
        let mut added = 0;
        loop {
            let event = healthy.expect("added").await;
            added += 1;
            if event.data.contains("\"last\"") {
                return added;
            }
        }
    });
    // A long node name makes large frames (4 KB), so the stalled socket's buffers (a
    // few MB on loopback) fill well before the last change.
    let long = "x".repeat(4000);
    for i in 0..3000 {
        let mut object = pod("shop", &format!("p-{i}"));
        object["spec"]["nodeName"] = long.clone().into();
        served.sim.apply(object).map_err(|e| e.to_string().len()).unwrap();
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    served.sim.apply(pod("shop", "last")).unwrap();
    assert_eq!(reader.await.unwrap(), 3001, "the healthy reader saw every change");
    // The stalled reader now reads everything it was sent: it ends with backpressure.
    let mut received = Vec::new();
    tokio::time::timeout(patience(), stalled.read_to_end(&mut received))
        .await
        .expect("the stalled stream is closed")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("event: backpressure\ndata: {}\n\n"),
        "no backpressure frame in {} bytes",
        text.len()
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_snapshot_is_newest_first_after_changes() {
    let served = serve(&[]).await;
    let event = |name: &str, last: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": name, "namespace": "shop" },
            "involvedObject": { "kind": "Pod", "name": name, "namespace": "shop" },
            "reason": "Test", "message": name, "type": "Normal",
            "lastTimestamp": last,
        })
    };
    served.sim.apply(event("b", "2026-05-01T10:00:00Z")).unwrap();
    served.sim.apply(event("a", "2026-05-01T12:00:00Z")).unwrap();
    let mut first = SseClient::connect(&served.url("events/watch"), None).await;
    let snapshot = first.expect_json("snapshot").await;
    let order = |s: &Value| {
        s["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&snapshot), ["a", "b"]);
    served.sim.apply(event("c", "2026-05-01T11:00:00Z")).unwrap();
    first.expect("added").await;
    // A new subscriber's snapshot is rebuilt from the stored sort keys.
    let mut second = SseClient::connect(&served.url("events/watch"), None).await;
    assert_eq!(order(&second.expect_json("snapshot").await), ["a", "c", "b"]);
    served.shutdown().await;
}

/// Periscope's SPA's error budget, exactly as spec 3.4 states it: every closed or
/// failed connection and every `error` frame adds one, at most once a second; only a
/// snapshot or a delta resets it; at 4 the page stops streaming for good.
struct SpaBudget {
    count: u32,
    last_bump: Option<std::time::Instant>,
}

impl SpaBudget {
    fn bump(&mut self) {
        let now = std::time::Instant::now();
        if self
            .last_bump
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.count += 1;
            self.last_bump = Some(now);
        }
    }

    fn see(&mut self, event: &str) {
        match event {
            "snapshot" | "added" | "modified" | "deleted" => self.count = 0,
            "error" => self.bump(),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_kind_stays_live_under_a_two_second_lifetime_cap() {
    let served = serve(&[("PERISCOPE_WATCH_MAX_STREAM_DURATION", "2s")]).await;
    served.sim.apply(pod("shop", "a")).unwrap();
    let mut budget = SpaBudget {
        count: 0,
        last_bump: None,
    };
    let mut last_event_id: Option<String> = None;
    let mut reconnects = 0;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < until {
        let mut client = SseClient::connect(&served.url("pods/watch"), last_event_id.as_deref()).await;
        assert_eq!(client.status, 200);
        while let Some(event) = client.next().await {
            budget.see(&event.event);
            if !event.id.is_empty() {
                last_event_id = Some(event.id.clone());
            }
        }
        // The server closed the stream (the lifetime cap): one unit, then reconnect
        // with Last-Event-ID as EventSource does.
        budget.bump();
        reconnects += 1;
        assert!(budget.count < 4, "the SPA would poll after {reconnects} reconnects");
    }
    assert!(reconnects >= 10, "the cap closed the stream {reconnects} times in 30 s");
    assert!(last_event_id.is_some());
    served.shutdown().await;
}

/// A watch on a new connection is written off hyper, close-delimited (architecture
/// decision 62); one on a connection that already served a poll stays with hyper,
/// chunked. Both carry the same stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_streams_on_a_fresh_connection_and_on_a_reused_one() {
    async fn first_event(response: reqwest::Response) -> String {
        let mut body = Vec::new();
        let mut response = response;
        while !body.windows(2).any(|w| w == b"\n\n") {
            let chunk = tokio::time::timeout(patience(), response.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).unwrap()
    }
    let served = serve(&[]).await;
    served.sim.apply(pod("shop", "one")).unwrap();

    let fresh = reqwest::get(served.url("pods/watch")).await.unwrap();
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.headers()["connection"], "close");
    assert!(fresh.headers().get("transfer-encoding").is_none());
    assert!(fresh.headers().get("date").is_some());
    assert!(first_event(fresh).await.starts_with("event: snapshot\nid: "));

    let client = reqwest::Client::new();
    let poll = client.get(served.url("pods")).send().await.unwrap();
    assert_eq!(poll.status(), 200);
    poll.bytes().await.unwrap();
    let reused = client.get(served.url("pods/watch")).send().await.unwrap();
    assert_eq!(reused.status(), 200);
    assert_eq!(reused.headers()["transfer-encoding"], "chunked");
    assert!(first_event(reused).await.starts_with("event: snapshot\nid: "));

    // A refusal on the direct path is the same JSON as anywhere else.
    let refused = reqwest::get(served.url("pods/watch?namespace=Shop")).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.headers()["connection"], "close");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    served.shutdown().await;
}
