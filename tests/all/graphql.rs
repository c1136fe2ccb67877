//! `/graphqlws` against the sim, driven by the reference client (`graphql-ws`) and raw
//! frames (`ws`): the node scripts in `tests/graphql/` print one `ok:` line per step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use periscope_tests::graphql::run_script;
use periscope_tests::served::{Served, SseClient, patience, serve};
use serde_json::json;

use crate::auth::{hs256, serve_jwt};

fn ws_url(served: &Served) -> String {
    format!("{}/graphqlws", served.base.replacen("http://", "ws://", 1))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + patience();
    while !check() {
        assert!(tokio::time::Instant::now() < until, "{what} within {:?}", patience());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_protocol_follows_graphql_transport_ws_to_the_letter() {
    let served = serve(&[("PERISCOPE_GRAPHQL_INIT_TIMEOUT", "1s")]).await;
    run_script("protocol.mjs", &[&ws_url(&served)]).await.assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn ten_event_subscribers_share_one_upstream_watch_with_sse() {
    let served = serve(&[]).await;
    let mut sse = SseClient::connect(&served.url("events/watch?namespace=shop"), None).await;
    assert_eq!(sse.status, 200);
    sse.expect("snapshot").await;
    let sim = served.sim.url();
    run_script("events.mjs", &[&ws_url(&served), &served.base, &sim])
        .await
        .assert_success();
    // The SSE subscriber of the scope saw the same writes, through the same watch.
    let mut reasons = Vec::new();
    while reasons.len() < 4 {
        let event = sse.expect("added").await;
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        reasons.push(data["object"]["reason"].as_str().unwrap().to_string());
    }
    assert_eq!(reasons, ["Scheduled", "BackOff", "Unhealthy", "ScalingReplicaSet"]);
    assert_eq!(served.sim.open_watches("events").unwrap(), 1);
    served.shutdown().await;
}

#[tokio::test]
async fn workload_status_follows_a_rollout_and_a_crash_loop() {
    let served = serve(&[]).await;
    run_script("workload.mjs", &[&ws_url(&served), &served.sim.url()])
        .await
        .assert_success();
    // One upstream per view of the namespace, however many operations used them.
    let kinds: Vec<String> = served.hub.upstream_keys().into_iter().map(|k| k.kind).collect();
    assert!(kinds.contains(&"status:deployments".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"status:pods".to_string()), "{kinds:?}");
    served.shutdown().await;
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(sub: &str, groups: &[&str], exp: u64) -> String {
    hs256(&json!({
        "sub": sub, "iss": "https://id.example.com/", "aud": "periscope", "exp": exp, "groups": groups,
    }))
}

#[tokio::test]
async fn tokens_are_checked_at_init_and_a_revocation_ends_the_operation() {
    let (served, _dir) = serve_jwt(&[("PERISCOPE_WATCH_HEARTBEAT", "1s")]).await;
    let admin = token("alice", &["admins"], now() + 3600);
    let user = token("bob", &["dev"], now() + 3600);
    let expired = token("alice", &["admins"], now() - 3600);
    let root = token("root", &["admins"], now() + 3600);
    run_script(
        "auth.mjs",
        &[&ws_url(&served), &served.base, &admin, &user, &expired, &root],
    )
    .await
    .assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn too_many_streams_counts_sse_and_graphql_together() {
    let served = serve(&[("PERISCOPE_WATCH_PER_USER_LIMIT", "3")]).await;
    let mut first = SseClient::connect(&served.url("pods/watch"), None).await;
    let mut second = SseClient::connect(&served.url("services/watch"), None).await;
    first.expect("snapshot").await;
    second.expect("snapshot").await;
    eventually("two SSE streams", || served.streams.open_total() == 2).await;
    run_script("limits.mjs", &["cap", &ws_url(&served), &served.base, "3"])
        .await
        .assert_success();
    drop((first, second));
    served.shutdown().await;
}

#[tokio::test]
async fn an_operation_completes_at_the_duration_cap() {
    let served = serve(&[("PERISCOPE_GRAPHQL_MAX_OPERATION_DURATION", "2s")]).await;
    run_script("limits.mjs", &["duration", &ws_url(&served)])
        .await
        .assert_success();
    served.shutdown().await;
}
