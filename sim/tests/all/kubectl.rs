//! Fidelity checks with a real kubectl: the sim must answer what kubectl asks.

use std::collections::BTreeSet;
use std::time::Duration;

use periscope_sim::logs::ContainerLog;
use periscope_sim::{Scenario, SimOptions, timestamp};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Kubectl, empty_sim, helm_path, start, within};

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels:
    app: hello
spec:
  containers:
  - name: app
    image: nginx:1.27
";

fn names(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn get_pods_all_namespaces_as_json_lists_every_pod() {
    let sim = start(SimOptions {
        scenario: Scenario::Empty,
        pods: 1200,
        ..SimOptions::default()
    })
    .await;
    let kubectl = Kubectl::new(&sim);
    let out = kubectl.run(&["get", "pods", "-A", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&out).expect("kubectl prints a JSON list");
    let items = list["items"].as_array().expect("a list has items");
    // kubectl pages through 500 at a time, so 1200 pods take three pages.
    assert_eq!(items.len(), 1200);
    assert_eq!(
        names(items),
        names(&sim.objects("pods", None).expect("pods are served"))
    );
    assert!(
        items
            .iter()
            .all(|p| p["status"]["containerStatuses"][0]["state"].is_object())
    );
}

#[tokio::test]
async fn get_pods_in_the_demo_cluster_shows_realistic_pods() {
    let sim = start(SimOptions::default()).await;
    let kubectl = Kubectl::new(&sim);
    let out = kubectl
        .run(&["get", "pods", "-n", "shop", "-l", "app=frontend", "-o", "json"])
        .await;
    let list: Value = serde_json::from_str(&out).expect("a JSON list");
    let pods = list["items"].as_array().expect("items");
    assert!(!pods.is_empty());
    for pod in pods {
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(pod["spec"]["nodeName"].is_string());
        assert!(pod["status"]["conditions"].is_array());
    }
    let nodes = kubectl.run(&["get", "nodes", "-o", "name"]).await;
    assert!(nodes.contains("node/worker-1"), "{nodes}");
}

#[tokio::test]
async fn get_deployments_watch_sees_an_update() {
    let sim = empty_sim().await;
    sim.apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } },
                                "spec": { "containers": [{ "name": "app", "image": "nginx" }] } } },
    }))
    .expect("the deployment is stored");
    let kubectl = Kubectl::new(&sim);
    let mut child = kubectl
        .command(&[
            "get",
            "deployments",
            "-w",
            "-o",
            "jsonpath={.metadata.name}={.spec.replicas}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let first = within("the initial list line", lines.next_line())
        .await
        .expect("stdout is readable");
    assert_eq!(first.as_deref(), Some("web=1"));
    let mut deploy = sim
        .get("deployments", Some("default"), "web")
        .expect("served")
        .expect("exists");
    deploy["spec"]["replicas"] = json!(4);
    sim.apply(deploy).expect("the update is stored");
    let next = within("the watched update", lines.next_line())
        .await
        .expect("stdout is readable");
    assert_eq!(next.as_deref(), Some("web=4"));
    child.kill().await.expect("kubectl stops");
}

#[tokio::test]
async fn create_then_apply_a_pod() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let manifest = kubectl.file("pod.yaml", POD);
    let out = kubectl.run(&["create", "-f", &manifest]).await;
    assert_eq!(out.trim(), "pod/hello created");
    let pod = sim
        .get("pods", Some("default"), "hello")
        .expect("served")
        .expect("created");
    assert_eq!(pod["status"]["phase"], "Running");

    let changed = kubectl.file("pod2.yaml", &POD.replace("nginx:1.27", "nginx:1.28"));
    let out = kubectl.run(&["apply", "-f", &changed]).await;
    assert_eq!(out.trim(), "pod/hello configured");
    let pod = sim
        .get("pods", Some("default"), "hello")
        .expect("served")
        .expect("exists");
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.28");
    assert!(pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());

    // Applying the same manifest again changes nothing.
    let rv = pod["metadata"]["resourceVersion"].clone();
    let out = kubectl.run(&["apply", "-f", &changed]).await;
    assert_eq!(out.trim(), "pod/hello unchanged");
    let pod = sim
        .get("pods", Some("default"), "hello")
        .expect("served")
        .expect("exists");
    assert_eq!(pod["metadata"]["resourceVersion"], rv);

    // Apply also creates.
    let other = kubectl.file("pod3.yaml", &POD.replace("name: hello", "name: applied"));
    let out = kubectl.run(&["apply", "-f", &other]).await;
    assert_eq!(out.trim(), "pod/applied created");
    assert!(sim.get("pods", Some("default"), "applied").expect("served").is_some());
}

#[tokio::test]
async fn label_and_delete_a_pod() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    let manifest = kubectl.file("pod.yaml", POD);
    kubectl.run(&["create", "-f", &manifest]).await;
    let out = kubectl.run(&["label", "pod", "hello", "tier=web"]).await;
    assert_eq!(out.trim(), "pod/hello labeled");
    let pod = sim
        .get("pods", Some("default"), "hello")
        .expect("served")
        .expect("exists");
    assert_eq!(pod["metadata"]["labels"], json!({ "app": "hello", "tier": "web" }));
    let selected = kubectl
        .run(&["get", "pods", "-l", "tier in (web,db),app!=other", "-o", "name"])
        .await;
    assert_eq!(selected.trim(), "pod/hello");

    // kubectl waits until the pod is really gone (graceful termination first).
    let out = kubectl.run(&["delete", "pod", "hello"]).await;
    assert!(out.contains("pod \"hello\" deleted"), "{out}");
    assert!(sim.get("pods", Some("default"), "hello").expect("served").is_none());
}

fn running_pod_started(name: &str, started: OffsetDateTime) -> Value {
    let started = timestamp(started);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "default", "uid": "0b5e2c64-1d7a-4c55-9f70-0d3c1c9f1e11",
                      "creationTimestamp": started },
        "spec": { "nodeName": "sim-node-1", "containers": [{ "name": "app", "image": "busybox" }] },
        "status": { "phase": "Running", "startTime": started,
                    "containerStatuses": [{ "name": "app", "image": "busybox", "ready": true, "restartCount": 0,
                                            "state": { "running": { "startedAt": started } } }] },
    })
}

#[tokio::test]
async fn logs_tail_returns_the_last_lines() {
    let sim = empty_sim().await;
    let started = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    let pod = sim.apply(running_pod_started("chatty", started)).expect("stored");
    let kubectl = Kubectl::new(&sim);
    let uid = pod["metadata"]["uid"].as_str().expect("a uid");
    let log = ContainerLog::new(SimOptions::default().seed, uid, "app", started_at(&pod));
    let tail = |now| -> Vec<String> { log.selection(now, Some(5), None).map(|i| log.line(i)).collect() };
    let before = tail(OffsetDateTime::now_utc());
    let out = kubectl.run(&["logs", "--tail=5", "chatty"]).await;
    let after = tail(OffsetDateTime::now_utc());
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 5, "{out}");
    // The lines are the container's last five at the time of the request.
    assert!(
        lines == before || lines == after,
        "{lines:?} is neither {before:?} nor {after:?}"
    );

    let stamped = kubectl.run(&["logs", "--tail=2", "--timestamps", "chatty"]).await;
    for line in stamped.lines() {
        let (ts, _) = line.split_once(' ').expect("a timestamp then a space");
        assert_eq!(ts.len(), "2024-01-01T00:00:00.000000000Z".len(), "{line}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{line}");
    }
}

fn started_at(pod: &Value) -> OffsetDateTime {
    let s = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        .as_str()
        .expect("startedAt");
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("an RFC 3339 time")
}

#[tokio::test]
async fn logs_follow_streams_new_lines() {
    let sim = empty_sim().await;
    sim.apply(running_pod_started(
        "chatty",
        OffsetDateTime::now_utc() - Duration::from_secs(60),
    ))
    .expect("stored");
    let kubectl = Kubectl::new(&sim);
    let mut child = kubectl
        .command(&["logs", "-f", "--tail=1", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    // One line of backlog, then lines written while we follow (one every 0.4–2 s).
    for n in 0..3 {
        let line = within(&format!("followed log line {n}"), lines.next_line())
            .await
            .expect("readable");
        assert!(line.is_some_and(|l| !l.is_empty()));
    }
    child.kill().await.expect("kubectl stops");
}

#[tokio::test]
async fn helm_lists_the_demo_releases() {
    let sim = start(SimOptions::default()).await;
    let kubectl = Kubectl::new(&sim);
    let output = within(
        "helm list",
        tokio::process::Command::new(helm_path())
            .env("KUBECONFIG", kubectl.kubeconfig())
            .args(["list", "-A", "-o", "json"])
            .output(),
    )
    .await
    .expect("helm runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let releases: Value = serde_json::from_slice(&output.stdout).expect("helm prints JSON");
    let names: BTreeSet<&str> = releases
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["ingress-nginx", "kube-prometheus-stack", "storefront"])
    );
}

#[tokio::test]
async fn the_demo_cluster_is_the_same_for_a_seed() {
    let opts = SimOptions {
        seed: 7,
        ..SimOptions::default()
    };
    let a = start(opts.clone()).await;
    let b = start(opts).await;
    let c = start(SimOptions {
        seed: 8,
        ..SimOptions::default()
    })
    .await;
    let uids = |sim: &periscope_sim::Sim| -> Vec<String> {
        sim.objects("deployments", None)
            .expect("served")
            .iter()
            .map(|d| d["metadata"]["uid"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(uids(&a), uids(&b));
    assert_ne!(uids(&a), uids(&c));
}

/// Creates namespaces in the sim, as the RBAC tests need `shop` and `payments`.
fn namespaces(sim: &periscope_sim::Sim, names: &[&str]) {
    for name in names {
        sim.apply(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } }))
            .expect("the namespace is stored");
    }
}

/// `kubectl auth can-i …`: `yes` (exit 0) or `no` (exit 1).
async fn can_i(kubectl: &Kubectl, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let output = kubectl.output(&full).await;
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match (output.status.code(), answer.as_str()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        other => panic!(
            "kubectl {} answered {other:?}: {}",
            full.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test]
async fn every_scenario_has_the_bootstrap_cluster_roles() {
    for scenario in [Scenario::Empty, Scenario::Demo] {
        let sim = start(SimOptions {
            scenario,
            ..SimOptions::default()
        })
        .await;
        let kubectl = Kubectl::new(&sim);
        let roles = kubectl.run(&["get", "clusterroles", "-o", "name"]).await;
        for role in ["cluster-admin", "admin", "edit", "view"] {
            assert!(
                roles.contains(&format!("clusterrole.rbac.authorization.k8s.io/{role}\n")),
                "{scenario:?}: {roles}"
            );
        }
        let binding = kubectl
            .run(&["get", "clusterrolebinding", "cluster-admin", "-o", "json"])
            .await;
        let binding: Value = serde_json::from_str(&binding).expect("JSON");
        assert_eq!(
            binding["subjects"],
            json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters" }])
        );
        // Without impersonation kubectl is the administrator.
        assert!(can_i(&kubectl, &["*", "*"]).await);
    }
}

#[tokio::test]
async fn a_role_binding_grants_in_its_namespace_until_deleted() {
    let sim = empty_sim().await;
    namespaces(&sim, &["shop", "payments"]);
    let kubectl = Kubectl::new(&sim);
    let manifest = kubectl.file("pod.yaml", POD);
    kubectl.run(&["create", "-n", "shop", "-f", &manifest]).await;
    let out = kubectl
        .run(&[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "shop",
        ])
        .await;
    assert_eq!(out.trim(), "rolebinding.rbac.authorization.k8s.io/alice-view created");
    let stored = sim
        .get("rolebindings", Some("shop"), "alice-view")
        .expect("served")
        .expect("created");
    assert_eq!(stored["roleRef"]["name"], "view");
    assert_eq!(stored["subjects"][0]["name"], "alice");
    let listed = kubectl.run(&["get", "rolebindings", "-n", "shop", "-o", "name"]).await;
    assert_eq!(listed.trim(), "rolebinding.rbac.authorization.k8s.io/alice-view");

    assert!(can_i(&kubectl, &["list", "pods", "-n", "shop", "--as", "alice"]).await);
    assert!(can_i(&kubectl, &["get", "pods/log", "-n", "shop", "--as", "alice"]).await);
    assert!(!can_i(&kubectl, &["list", "pods", "-n", "payments", "--as", "alice"]).await);
    assert!(!can_i(&kubectl, &["list", "secrets", "-n", "shop", "--as", "alice"]).await);
    assert!(!can_i(&kubectl, &["delete", "pods", "-n", "shop", "--as", "alice"]).await);
    assert!(!can_i(&kubectl, &["list", "pods", "--all-namespaces", "--as", "alice"]).await);

    let pods = kubectl
        .run(&["get", "pods", "-n", "shop", "--as", "alice", "-o", "name"])
        .await;
    assert_eq!(pods.trim(), "pod/hello");
    let refused = kubectl
        .output(&["get", "pods", "-n", "payments", "--as", "alice"])
        .await;
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" \
         in API group \"\" in the namespace \"payments\""
    );
    let refused = kubectl
        .output(&["delete", "pod", "hello", "-n", "shop", "--as", "alice"])
        .await;
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot delete resource \"pods\""),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let out = kubectl
        .run(&["delete", "rolebinding", "alice-view", "-n", "shop"])
        .await;
    assert!(out.contains("\"alice-view\" deleted"), "{out}");
    assert!(!can_i(&kubectl, &["list", "pods", "-n", "shop", "--as", "alice"]).await);
}

#[tokio::test]
async fn cluster_role_bindings_grant_everywhere_and_groups_are_subjects() {
    let sim = empty_sim().await;
    namespaces(&sim, &["shop", "payments"]);
    let kubectl = Kubectl::new(&sim);
    let out = kubectl
        .run(&[
            "create",
            "clusterrolebinding",
            "bob-view",
            "--clusterrole=view",
            "--user=bob",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "clusterrolebinding.rbac.authorization.k8s.io/bob-view created"
    );
    assert!(can_i(&kubectl, &["list", "pods", "--all-namespaces", "--as", "bob"]).await);
    assert!(can_i(&kubectl, &["watch", "deployments", "-n", "payments", "--as", "bob"]).await);
    assert!(!can_i(&kubectl, &["create", "deployments", "-n", "payments", "--as", "bob"]).await);
    kubectl.run(&["get", "pods", "-A", "--as", "bob", "-o", "name"]).await;

    kubectl
        .run(&[
            "create",
            "rolebinding",
            "devs-edit",
            "--clusterrole=edit",
            "--group=devs",
            "-n",
            "shop",
        ])
        .await;
    let whoami = kubectl
        .run(&["auth", "whoami", "--as", "carol", "--as-group", "devs", "-o", "json"])
        .await;
    let whoami: Value = serde_json::from_str(&whoami).expect("JSON");
    assert_eq!(
        whoami["status"]["userInfo"],
        json!({ "username": "carol", "groups": ["devs", "system:authenticated"] })
    );
    let carol_in_devs = ["-n", "shop", "--as", "carol", "--as-group", "devs"];
    assert!(can_i(&kubectl, &[&["create", "deployments"][..], &carol_in_devs].concat()).await);
    assert!(can_i(&kubectl, &[&["get", "secrets"][..], &carol_in_devs].concat()).await);
    assert!(!can_i(&kubectl, &["create", "deployments", "-n", "shop", "--as", "carol"]).await);
    assert!(
        !can_i(
            &kubectl,
            &[
                "create",
                "deployments",
                "-n",
                "payments",
                "--as",
                "carol",
                "--as-group",
                "devs"
            ]
        )
        .await
    );

    // A service account is a user in its own groups.
    kubectl
        .run(&[
            "create",
            "rolebinding",
            "ci-admin",
            "--clusterrole=admin",
            "--serviceaccount=shop:ci",
            "-n",
            "shop",
        ])
        .await;
    let ci = "system:serviceaccount:shop:ci";
    assert!(can_i(&kubectl, &["create", "rolebindings", "-n", "shop", "--as", ci]).await);
    assert!(!can_i(&kubectl, &["create", "rolebindings", "-n", "payments", "--as", ci]).await);

    kubectl.run(&["delete", "clusterrolebinding", "bob-view"]).await;
    assert!(!can_i(&kubectl, &["list", "pods", "--all-namespaces", "--as", "bob"]).await);
}

/// `kubectl create <kind>` builds the object itself and sends it with client-go's typed
/// client, so as protobuf: each one here is a real client's bytes for its kind, and the
/// sim must store the JSON a real apiserver would serve.
#[tokio::test]
async fn kubectl_create_commands_send_protobuf_and_the_sim_stores_json() {
    let sim = empty_sim().await;
    namespaces(&sim, &["shop"]);
    let kubectl = Kubectl::new(&sim);
    let commands: &[&[&str]] = &[
        &["create", "secret", "generic", "token", "--from-literal=key=s3cr3t"],
        &["create", "configmap", "settings", "--from-literal=mode=fast"],
        &["create", "serviceaccount", "builder"],
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=0",
            "--port=8080",
        ],
        &[
            "create",
            "service",
            "nodeport",
            "web",
            "--tcp=80:8080",
            "--node-port=30080",
        ],
        &["create", "job", "once", "--image=busybox", "--", "echo", "hi"],
        &[
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 3 * * *",
        ],
        &[
            "create",
            "poddisruptionbudget",
            "web",
            "--selector=app=web",
            "--min-available=50%",
        ],
        &["create", "ingress", "web", "--rule=shop.example.com/=web:80"],
        &["create", "role", "reader", "--verb=get", "--resource=pods"],
    ];
    for command in commands {
        kubectl.run(&[&["-n", "shop"][..], command].concat()).await;
    }
    kubectl.run(&["create", "priorityclass", "high", "--value=1000"]).await;
    kubectl.run(&["create", "namespace", "extra"]).await;

    let get = |plural: &str, name: &str| {
        let namespace = (!matches!(plural, "priorityclasses" | "namespaces")).then_some("shop");
        sim.get(plural, namespace, name)
            .expect("the kind is served")
            .unwrap_or_else(|| panic!("{plural}/{name} is stored"))
    };
    let secret = get("secrets", "token");
    assert_eq!(secret["data"], json!({ "key": "czNjcjN0" }), "{secret}");
    assert_eq!(get("configmaps", "settings")["data"], json!({ "mode": "fast" }));
    assert_eq!(get("serviceaccounts", "builder")["metadata"]["namespace"], "shop");

    let deployment = get("deployments", "web");
    assert_eq!(
        deployment["spec"]["replicas"], 0,
        "an explicit zero survives: {deployment}"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["resources"], json!({}));
    assert!(deployment["metadata"]["creationTimestamp"].is_string(), "{deployment}");

    let service = get("services", "web");
    assert_eq!(service["spec"]["type"], "NodePort");
    let port = &service["spec"]["ports"][0];
    assert_eq!(
        (&port["port"], &port["targetPort"], &port["nodePort"]),
        (&json!(80), &json!(8080), &json!(30080))
    );

    let job = get("jobs", "once");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["echo", "hi"]), "{job}");
    assert_eq!(get("cronjobs", "nightly")["spec"]["schedule"], "0 3 * * *");
    assert_eq!(get("poddisruptionbudgets", "web")["spec"]["minAvailable"], "50%");

    // An IngressRule embeds its IngressRuleValue inline: `http` sits on the rule.
    let ingress = get("ingresses", "web");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "shop.example.com", "{ingress}");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"],
        json!({ "name": "web", "port": { "number": 80 } })
    );

    assert_eq!(
        get("roles", "reader")["rules"],
        json!([{ "verbs": ["get"], "apiGroups": [""], "resources": ["pods"] }])
    );
    assert_eq!(get("priorityclasses", "high")["value"], 1000);
    assert_eq!(get("namespaces", "extra")["metadata"]["name"], "extra");
}
