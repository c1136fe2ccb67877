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
async fn workload_status_follows_a_rollout_a_crash_loop_and_a_scale_to_zero() {
    let served = serve(&[("PERISCOPE_GRAPHQL_RESTART_WINDOW", "3s")]).await;
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

#[tokio::test]
async fn pod_logs_backfill_follow_and_end_with_one_shared_tail_per_container() {
    let served = serve(&[]).await;
    let (ws, sim) = (ws_url(&served), served.sim.url());
    let script = tokio::spawn(async move { run_script("logs.mjs", &[&ws, &sim]).await });
    // While the script runs, never more than one live tail at a time, though two
    // followers of one container overlap in one step.
    let mut most = 0;
    while !script.is_finished() {
        most = most.max(served.hub.logs().tail_keys().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    script.await.unwrap().assert_success();
    assert_eq!(most, 1, "one live tail served both followers");
    served.shutdown().await;
}

const HELM_CHART: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const HELM_VALUES: &str = "x: one\n";
const HELM_CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  x: {{ .Values.x | quote }}
";

#[tokio::test]
async fn helm_install_upgrade_uninstall_and_a_corrupt_release_secret() {
    let helm = periscope_build_support::scripts::tool("helm", "PERISCOPE_HELM").unwrap_or_else(|m| panic!("{m}"));
    let served = serve(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    served.sim.write_kubeconfig(&kubeconfig).unwrap();
    let chart = dir.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), HELM_CHART).unwrap();
    std::fs::write(chart.join("values.yaml"), HELM_VALUES).unwrap();
    std::fs::write(chart.join("templates/configmap.yaml"), HELM_CONFIG_MAP).unwrap();
    let home = dir.path().join("helm");
    let path = |p: &std::path::Path| p.display().to_string();
    run_script(
        "helm.mjs",
        &[
            &ws_url(&served),
            &served.sim.url(),
            &path(&helm),
            &path(&kubeconfig),
            &path(&chart),
            &path(&home),
        ],
    )
    .await
    .assert_success();
    // One upstream per release scope, selected by its labels.
    let selectors: Vec<Option<String>> = served
        .hub
        .upstream_keys()
        .into_iter()
        .filter(|k| k.kind == "helm:releases")
        .map(|k| k.selector)
        .collect();
    assert!(
        selectors.contains(&Some("owner=helm,name=broken".to_string())),
        "{selectors:?}"
    );
    served.shutdown().await;
}

#[tokio::test]
async fn pod_logs_tail_lines_and_follow_default_when_omitted_or_null() {
    let served = serve(&[]).await;
    run_script("clients.mjs", &["defaults", &ws_url(&served), &served.sim.url()])
        .await
        .assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn pods_workloads_and_releases_named_with_dots_stream() {
    let served = serve(&[]).await;
    run_script("clients.mjs", &["names", &ws_url(&served), &served.sim.url()])
        .await
        .assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn a_message_past_the_limit_closes_once_with_4400_and_no_reconnect() {
    let served = serve(&[]).await;
    run_script("clients.mjs", &["size", &ws_url(&served)])
        .await
        .assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn a_token_inside_the_leeway_is_accepted_alike_at_init_subscribe_and_mid_stream() {
    let (served, _dir) = serve_jwt(&[("PERISCOPE_AUTH_LEEWAY", "8s")]).await;
    let in_leeway = token("alice", &["admins"], now() - 2);
    let past_leeway = token("alice", &["admins"], now() - 60);
    run_script("clients.mjs", &["leeway", &ws_url(&served), &in_leeway, &past_leeway])
        .await
        .assert_success();
    served.shutdown().await;
}

#[tokio::test]
async fn idle_sockets_are_pinged_and_silent_peers_closed() {
    let served = serve(&[("PERISCOPE_GRAPHQL_PING_INTERVAL", "1s")]).await;
    run_script("clients.mjs", &["pings", &ws_url(&served)])
        .await
        .assert_success();
    served.shutdown().await;
}
