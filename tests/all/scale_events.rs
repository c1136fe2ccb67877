//! What a user does with kubectl reaches periscope's event streams: against the sim's
//! controllers, `kubectl scale` leaves the `ScalingReplicaSet` Event a real
//! kube-controller-manager leaves, and it arrives on the SSE events stream and on
//! `k8sEvents` (driven by `tests/graphql/scale.mjs`, with real kubectl).

use periscope_sim::{Scenario, SimOptions};
use periscope_tests::graphql::run_script;
use periscope_tests::served::{SseClient, serve_sim};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

#[tokio::test]
async fn kubectl_scale_is_a_scaling_replica_set_event_on_sse_and_k8s_events() {
    let kubectl =
        periscope_build_support::scripts::tool("kubectl", "PERISCOPE_KUBECTL").unwrap_or_else(|m| panic!("{m}"));
    let options = SimOptions {
        scenario: Scenario::Empty,
        ..SimOptions::default()
    };
    let served = serve_sim(options, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    served.sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();

    let mut sse = SseClient::connect(&served.url("events/watch?namespace=default"), None).await;
    assert_eq!(sse.status, 200);
    sse.expect("snapshot").await;

    let ws = format!("{}/graphqlws", served.base.replacen("http://", "ws://", 1));
    let path = |p: &std::path::Path| p.display().to_string();
    run_script(
        "scale.mjs",
        &[&ws, &path(&kubectl), &path(&kubeconfig), &path(&manifest)],
    )
    .await
    .assert_success();

    // The SSE subscriber saw the same Events: the creation's scale-up, then kubectl's.
    let mut scaled = Vec::new();
    while scaled.len() < 2 {
        let event = tokio::time::timeout(periscope_tests::served::patience(), sse.next())
            .await
            .expect("the Events within patience")
            .expect("the stream stays open");
        if event.event != "added" {
            continue;
        }
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        if data["object"]["reason"] == "ScalingReplicaSet" {
            scaled.push(data["object"]["message"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(scaled[0].ends_with(" from 0 to 1"), "{scaled:?}");
    assert!(
        scaled[1].starts_with("Scaled up replica set web-") && scaled[1].ends_with(" from 1 to 4"),
        "{scaled:?}"
    );
    served.shutdown().await;
}
