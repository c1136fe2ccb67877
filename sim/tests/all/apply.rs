//! What kubectl does with its server-side defaults: `apply --server-side` with field
//! managers and conflicts, `apply --dry-run=server`, `scale`, and the Events the
//! controllers emit for it.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::support::{Kubectl, client, empty_sim, within};

/// The ConfigMap of the "Server-Side Apply" page of the Kubernetes documentation
/// (concepts/overview/working-with-objects/server-side-apply, "Field management").
const DOCS_CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: test-cm
  namespace: default
  labels:
    test-label: test
data:
  key: some value
";

/// The `managedFields` that page shows kube-apiserver recording for it (its `time`
/// aside, which is the time of the apply).
fn documented_managed_fields(manager: &str) -> Value {
    json!([{
        "manager": manager,
        "operation": "Apply",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": { "f:labels": { "f:test-label": {} } },
            "f:data": { "f:key": {} },
        },
    }])
}

fn without_times(entries: &Value) -> Value {
    let mut entries = entries.clone();
    for e in entries.as_array_mut().into_iter().flatten() {
        let time = e.as_object_mut().and_then(|m| m.remove("time"));
        assert!(time.is_some_and(|t| t.is_string()), "every entry has a time");
    }
    entries
}

async fn get_json(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    // kubectl hides managedFields unless asked.
    all.extend(["-o", "json", "--show-managed-fields"]);
    let out = kubectl.run(&all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {} printed no JSON ({e}): {out}", args.join(" ")))
}

#[tokio::test]
async fn apply_server_side_records_managers_and_refuses_conflicts_until_forced() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let file = kubectl.file("cm.yaml", DOCS_CONFIG_MAP);

    let out = kubectl.run(&["apply", "--server-side", "-f", &file]).await;
    assert!(out.contains("configmap/test-cm serverside-applied"), "{out}");
    let cm = get_json(&kubectl, &["get", "configmap", "test-cm"]).await;
    assert_eq!(
        without_times(&cm["metadata"]["managedFields"]),
        documented_managed_fields("kubectl")
    );

    // The same configuration again changes nothing.
    let out = kubectl.run(&["apply", "--server-side", "-f", &file]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let again = get_json(&kubectl, &["get", "configmap", "test-cm"]).await;
    assert_eq!(again["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"]);

    // Another manager changing kubectl's field is refused, with kube-apiserver's words.
    let changed = kubectl.file("changed.yaml", &DOCS_CONFIG_MAP.replace("some value", "other value"));
    let out = kubectl
        .output(&["apply", "--server-side", "--field-manager=ops", "-f", &changed])
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.key"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("--force-conflicts"),
        "kubectl explains the way out: {stderr}"
    );
    let unchanged = get_json(&kubectl, &["get", "configmap", "test-cm"]).await;
    assert_eq!(unchanged["data"]["key"], "some value");

    // Forced, the field changes hands.
    kubectl
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "-f",
            &changed,
        ])
        .await;
    let taken = get_json(&kubectl, &["get", "configmap", "test-cm"]).await;
    assert_eq!(taken["data"]["key"], "other value");
    let entries = without_times(&taken["metadata"]["managedFields"]);
    assert_eq!(
        entries,
        json!([
            { "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
              "fieldsV1": { "f:metadata": { "f:labels": { "f:test-label": {} } } } },
            { "manager": "ops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
              "fieldsV1": { "f:metadata": { "f:labels": { "f:test-label": {} } }, "f:data": { "f:key": {} } } },
        ])
    );
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
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
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
        args: [\"sleep\", \"infinity\"]
";

#[tokio::test]
async fn apply_server_side_merges_keyed_lists_and_prunes_what_is_no_longer_applied() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let first = kubectl.file("web.yaml", DEPLOYMENT);
    kubectl.run(&["apply", "--server-side", "-f", &first]).await;

    // A second manager adds an env var to one container: the list of containers merges
    // by name, so neither manager's fields are lost.
    let env = kubectl.file(
        "env.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        env:
        - name: MODE
          value: fast
",
    );
    kubectl
        .run(&["apply", "--server-side", "--field-manager=tuner", "-f", &env])
        .await;
    let d = get_json(&kubectl, &["get", "deployment", "web"]).await;
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(containers[0]["env"], json!([{ "name": "MODE", "value": "fast" }]));
    assert_eq!(containers[1]["name"], "sidecar");

    // The first manager drops its sidecar: the container is removed, the env var that
    // the other manager owns stays.
    let without_sidecar = DEPLOYMENT.split("      - name: sidecar").next().unwrap_or_default();
    let second = kubectl.file("web2.yaml", without_sidecar);
    kubectl.run(&["apply", "--server-side", "-f", &second]).await;
    let d = get_json(&kubectl, &["get", "deployment", "web"]).await;
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "{d}");
    assert_eq!(containers[0]["env"][0]["value"], "fast");
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"kubectl") && managers.contains(&"tuner"),
        "{managers:?}"
    );
}

#[tokio::test]
async fn dry_run_server_validates_and_leaves_nothing_behind() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let file = kubectl.file("web.yaml", DEPLOYMENT);
    let before = sim.resource_version();

    let out = kubectl
        .run(&["apply", "--server-side", "--dry-run=server", "-f", &file])
        .await;
    assert!(
        out.contains("deployment.apps/web serverside-applied (server dry run)"),
        "{out}"
    );
    let out = kubectl.run(&["apply", "--dry-run=server", "-f", &file]).await;
    assert!(out.contains("(server dry run)"), "{out}");
    let out = kubectl
        .run(&[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=1",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .await;
    let cm: Value = serde_json::from_str(&out).expect("the would-be object");
    assert_eq!(cm["data"]["a"], "1");
    assert!(
        sim.get("deployments", Some("default"), "web")
            .expect("served")
            .is_none()
    );
    assert!(
        sim.get("configmaps", Some("default"), "settings")
            .expect("served")
            .is_none()
    );
    assert_eq!(sim.resource_version(), before, "a dry run writes nothing");

    // Invalid objects are refused as they would be for real.
    let bad = kubectl.file("bad.yaml", &DEPLOYMENT.replace("name: web\nspec", "name: Web_1\nspec"));
    let out = kubectl
        .output(&["apply", "--server-side", "--dry-run=server", "-f", &bad])
        .await;
    assert!(!out.status.success());

    // Deleting and changing for real objects, dry: nothing happens.
    kubectl.run(&["apply", "--server-side", "-f", &file]).await;
    let stored = sim.resource_version();
    let out = kubectl.run(&["delete", "deployment", "web", "--dry-run=server"]).await;
    assert!(out.contains("(server dry run)"), "{out}");
    kubectl
        .run(&["scale", "deployment", "web", "--replicas=5", "--dry-run=server"])
        .await;
    kubectl
        .run(&["label", "deployment", "web", "tier=front", "--dry-run=server"])
        .await;
    let d = sim
        .get("deployments", Some("default"), "web")
        .expect("served")
        .expect("still there");
    assert_eq!(d["spec"]["replicas"], 1);
    assert!(d["metadata"]["labels"].get("tier").is_none());
    assert_eq!(d["metadata"]["resourceVersion"], stored.to_string());
}

#[tokio::test]
async fn kubectl_scale_scales_the_replica_set_and_emits_scaling_replica_set() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let file = kubectl.file("web.yaml", DEPLOYMENT);
    kubectl.run(&["apply", "--server-side", "-f", &file]).await;
    let rs_name = within("the deployment's replica set", async {
        loop {
            let sets = sim.objects("replicasets", Some("default")).expect("served");
            if let Some(rs) = sets.first()
                && rs["status"]["readyReplicas"] == 1
            {
                return rs["metadata"]["name"].as_str().unwrap_or_default().to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(rs_name.starts_with("web-"), "{rs_name}");

    // Watch the events from here on, as `kubectl get events -w` would.
    let events: Api<Event> = Api::namespaced(client(&sim), "default");
    let from = sim.resource_version().to_string();
    let mut watch = events
        .watch(&WatchParams::default(), &from)
        .await
        .expect("events are watched")
        .boxed();

    let out = kubectl.run(&["scale", "deployment/web", "--replicas=4"]).await;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let scale = kubectl
        .run(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"])
        .await;
    let scale: Value = serde_json::from_str(&scale).expect("a Scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");

    let expected = format!("Scaled up replica set {rs_name} from 1 to 4");
    let seen = within("the ScalingReplicaSet event on the watch", async {
        while let Some(event) = watch.next().await {
            if let Ok(WatchEvent::Added(e)) = event
                && e.reason.as_deref() == Some("ScalingReplicaSet")
            {
                return e;
            }
        }
        panic!("the event watch ended");
    })
    .await;
    assert_eq!(seen.message.as_deref(), Some(expected.as_str()));
    assert_eq!(seen.type_.as_deref(), Some("Normal"));
    assert_eq!(seen.involved_object.kind.as_deref(), Some("Deployment"));
    assert_eq!(seen.involved_object.name.as_deref(), Some("web"));
    assert_eq!(
        seen.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("deployment-controller")
    );

    // The replica set made three more pods, each scheduled and started, and says so.
    within("four running pods", async {
        while sim.objects("pods", Some("default")).expect("served").len() != 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let list = get_json(&kubectl, &["get", "events"]).await;
    let reasons: Vec<(String, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let started = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["reason"] == "Started" && e["message"] == "Started container web")
        .expect("a Started event");
    assert_eq!(started["involvedObject"]["fieldPath"], "spec.containers{web}");
    assert_eq!(started["source"]["component"], "kubelet");
    assert!(started["source"]["host"].is_string(), "{started}");
    let count = |reason: &str| reasons.iter().filter(|(r, _)| r == reason).count();
    assert_eq!(count("SuccessfulCreate"), 4, "{reasons:?}");
    assert_eq!(count("Scheduled"), 4, "{reasons:?}");
    assert!(reasons.contains(&("ScalingReplicaSet".into(), expected.clone())));
    assert!(
        reasons
            .iter()
            .any(|(r, m)| r == "Started" && m == "Started container web"),
        "{reasons:?}"
    );

    // Scaling down deletes pods: the kubelet stops their containers. With a
    // precondition kubectl reads the Scale and writes it back (GET, then PUT).
    kubectl
        .run(&["scale", "deployment/web", "--current-replicas=4", "--replicas=2"])
        .await;
    let refused = kubectl
        .output(&["scale", "deployment/web", "--current-replicas=7", "--replicas=1"])
        .await;
    assert!(!refused.status.success());

    // `spec.replicas` now belongs to kubectl's scale: applying the manifest's again is
    // the conflict a real cluster answers (the reason to drop replicas from manifests
    // that an autoscaler or `kubectl scale` drives).
    let conflict = kubectl.output(&["apply", "--server-side", "-f", &file]).await;
    assert!(!conflict.status.success());
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        stderr.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1 at "#
        ) && stderr.contains(": .spec.replicas"),
        "{stderr}"
    );
    within("the scale-down events", async {
        loop {
            let list = sim.objects("events", Some("default")).expect("served");
            let has = |reason: &str, message: &str| {
                list.iter()
                    .any(|e| e["reason"] == reason && e["message"].as_str().is_some_and(|m| m.starts_with(message)))
            };
            if has(
                "ScalingReplicaSet",
                &format!("Scaled down replica set {rs_name} from 4 to 2"),
            ) && has("SuccessfulDelete", "Deleted pod: web-")
                && has("Killing", "Stopping container web")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn kubectl_scale_of_a_demo_deployment_is_adopted_by_the_controllers() {
    let sim = crate::support::start(periscope_sim::SimOptions::default()).await;
    let kubectl = Kubectl::new(&sim);
    kubectl
        .run(&["scale", "deployment/coredns", "-n", "kube-system", "--replicas=3"])
        .await;
    let message = within("the ScalingReplicaSet event of coredns", async {
        loop {
            let events = sim.objects("events", Some("kube-system")).expect("served");
            if let Some(e) = events
                .iter()
                .find(|e| e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "coredns")
            {
                return e["message"].as_str().unwrap_or_default().to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        message.starts_with("Scaled up replica set coredns-") && message.ends_with(" from 2 to 3"),
        "{message}"
    );
    within("a third coredns pod", async {
        loop {
            let pods = sim.objects("pods", Some("kube-system")).expect("served");
            let running = pods
                .iter()
                .filter(|p| p["metadata"]["labels"]["app"] == "coredns" && p["metadata"]["deletionTimestamp"].is_null())
                .count();
            if running == 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_job_created_with_kubectl_runs_a_pod_to_completion() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    kubectl
        .run(&["create", "job", "hello", "--image=busybox:1.36", "--", "echo", "hi"])
        .await;
    kubectl
        .run(&["wait", "--for=condition=complete", "job/hello", "--timeout=20s"])
        .await;
    let job = get_json(&kubectl, &["get", "job", "hello"]).await;
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    let pods = sim.objects("pods", Some("default")).expect("served");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["status"]["phase"], "Succeeded");
    assert_eq!(pods[0]["metadata"]["labels"]["job-name"], "hello");
    let events = sim.objects("events", Some("default")).expect("served");
    let said = |reason: &str, message: &str| {
        events
            .iter()
            .any(|e| e["reason"] == reason && e["message"].as_str().is_some_and(|m| m.starts_with(message)))
    };
    assert!(said("SuccessfulCreate", "Created pod: hello-"), "{events:?}");
    assert!(said("Completed", "Job completed"), "{events:?}");
    assert!(said("Started", "Started container hello"), "{events:?}");
}

#[tokio::test]
async fn a_rollout_restart_replaces_the_replica_set_and_rollout_status_sees_it_finish() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let file = kubectl.file("web.yaml", DEPLOYMENT);
    kubectl.run(&["apply", "--server-side", "-f", &file]).await;
    let out = kubectl
        .run(&["rollout", "status", "deployment/web", "--timeout=20s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let first = sim.objects("replicasets", Some("default")).expect("served");
    let old = first[0]["metadata"]["name"].as_str().unwrap_or_default().to_string();

    kubectl.run(&["rollout", "restart", "deployment/web"]).await;
    let out = kubectl
        .run(&["rollout", "status", "deployment/web", "--timeout=20s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let sets = sim.objects("replicasets", Some("default")).expect("served");
    assert_eq!(sets.len(), 2);
    let new = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] != old.as_str())
        .expect("a new replica set");
    assert_eq!(new["spec"]["replicas"], 1);
    let new = new["metadata"]["name"].as_str().unwrap_or_default();
    let events = sim.objects("events", Some("default")).expect("served");
    let said = |message: String| {
        events
            .iter()
            .any(|e| e["reason"] == "ScalingReplicaSet" && e["message"] == message.as_str())
    };
    assert!(said(format!("Scaled up replica set {new} from 0 to 1")), "{events:?}");
    assert!(said(format!("Scaled down replica set {old} from 1 to 0")), "{events:?}");
}
