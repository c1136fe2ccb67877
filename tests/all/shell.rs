use std::time::{Duration, Instant};

use periscope_sim::Scenario;
use periscope_tests::served::{CLUSTER, Served, SseClient, patience, serve_scenario};
use serde_json::{Value, json};

use super::auth::{claims, hs256, serve_jwt, serve_jwt_scenario};
use super::security::{cluster_role_binding, get};

/// The JSON type a key must hold.
#[derive(Debug, Clone, Copy)]
enum Type {
    Str,
    Int,
    Bool,
    Array,
    Object,
}

/// Asserts `value` is an object with exactly `keys` (each of its type), plus any of
/// `optional` that are present.
fn shape(what: &str, value: &Value, keys: &[(&str, Type)], optional: &[(&str, Type)]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    for (key, kind) in keys {
        let field = object
            .get(*key)
            .unwrap_or_else(|| panic!("{what} lacks {key:?}: {value}"));
        check(what, key, field, *kind);
    }
    for (key, field) in object {
        match optional.iter().find(|(k, _)| k == key) {
            Some((_, kind)) => check(what, key, field, *kind),
            None => assert!(
                keys.iter().any(|(k, _)| k == key),
                "{what} has an unexpected key {key:?}: {value}"
            ),
        }
    }
}

fn check(what: &str, key: &str, field: &Value, kind: Type) {
    let ok = match kind {
        Type::Str => field.is_string(),
        Type::Int => field.is_u64(),
        Type::Bool => field.is_boolean(),
        Type::Array => field.is_array(),
        Type::Object => field.is_object(),
    };
    assert!(ok, "{what}.{key} should be {kind:?}: {field}");
}

fn rfc3339(what: &str, value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what} = {text:?} is not RFC 3339: {e}"));
    assert!(text.ends_with('Z'), "{what} = {text:?} is not UTC");
}

/// GETs `url` until `done` holds for its 200 body, within [`patience`].
async fn until(url: &str, token: Option<&str>, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = get(url, token, &[]).await;
        assert_eq!(status, 200, "{url}: {body}");
        if done(&body) {
            return body;
        }
        assert!(start.elapsed() < patience(), "{what} within {:?}: {body}", patience());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn whoami_shape(body: &Value) {
    use Type::*;
    shape(
        "whoami",
        body,
        &[
            ("subject", Str),
            ("email", Str),
            ("groups", Array),
            ("mode", Str),
            ("authzMode", Str),
            ("auditEnabled", Bool),
            ("expiresAt", Int),
        ],
        &[],
    );
    assert_eq!(body["authzMode"], "");
    assert_eq!(body["auditEnabled"], false);
}

fn clusters_shape(body: &Value) {
    shape("clusters", body, &[("clusters", Type::Array)], &[]);
    let clusters = body["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{body}");
    for cluster in clusters {
        use Type::*;
        shape(
            "cluster",
            cluster,
            &[("name", Str), ("backend", Str), ("execEnabled", Bool)],
            &[],
        );
        assert_eq!(cluster["execEnabled"], false, "this host serves no exec: {cluster}");
    }
    assert_eq!(clusters[0]["name"], CLUSTER);
    // The tests' cluster is the sim behind a plain URL.
    assert_eq!(clusters[0]["backend"], "server");
}

fn podphase_sum(phases: &Value) -> u64 {
    ["running", "pending", "succeeded", "failed", "unknown", "stuck"]
        .iter()
        .map(|k| phases[*k].as_u64().unwrap())
        .sum()
}

fn dashboard_shape(body: &Value) {
    use Type::*;
    shape(
        "dashboard",
        body,
        &[
            ("kubernetesVersion", Str),
            ("provider", Str),
            ("nodeCount", Int),
            ("nodeReadyCount", Int),
            ("podCount", Int),
            ("namespaceCount", Int),
            ("cpuAllocatable", Str),
            ("memoryAllocatable", Str),
            ("metricsAvailable", Bool),
            ("accessibility", Object),
            ("workloads", Object),
            ("podPhases", Object),
            ("needsAttention", Array),
            ("storage", Object),
        ],
        &[],
    );
    assert_eq!(body["metricsAvailable"], false);
    shape(
        "accessibility",
        &body["accessibility"],
        &[("nodes", Str), ("pods", Str), ("namespaces", Str), ("metrics", Str)],
        &[],
    );
    for key in ["nodes", "pods", "namespaces", "metrics"] {
        let value = body["accessibility"][key].as_str().unwrap();
        assert!(["ok", "forbidden", "unavailable"].contains(&value), "{key}: {value}");
    }
    assert_eq!(body["accessibility"]["metrics"], "unavailable");
    let workloads = &body["workloads"];
    shape(
        "workloads",
        workloads,
        &[
            ("deployments", Object),
            ("statefulSets", Object),
            ("daemonSets", Object),
            ("jobs", Object),
            ("cronJobs", Object),
        ],
        &[],
    );
    for (key, health) in workloads.as_object().unwrap() {
        shape(key, health, &[("total", Int), ("healthy", Int)], &[]);
        assert!(
            health["healthy"].as_u64() <= health["total"].as_u64(),
            "{key}: {health}"
        );
    }
    shape(
        "podPhases",
        &body["podPhases"],
        &[
            ("running", Int),
            ("pending", Int),
            ("succeeded", Int),
            ("failed", Int),
            ("unknown", Int),
            ("stuck", Int),
        ],
        &[],
    );
    assert_eq!(
        podphase_sum(&body["podPhases"]),
        body["podCount"].as_u64().unwrap(),
        "podPhases sum to podCount: {}",
        body["podPhases"]
    );
    let attention = body["needsAttention"].as_array().unwrap();
    assert!(attention.len() <= 20, "{} pods need attention", attention.len());
    for pod in attention {
        shape(
            "needsAttention[]",
            pod,
            &[("name", Str), ("namespace", Str), ("reason", Str), ("phase", Str)],
            &[("container", Str), ("message", Str), ("restartCount", Int)],
        );
    }
    shape(
        "storage",
        &body["storage"],
        &[("pvCount", Int), ("pvcBound", Int), ("pvcPending", Int)],
        &[("totalProvisioned", Str)],
    );
}

fn fleet_shape(body: &Value) {
    use Type::*;
    shape("fleet", body, &[("rollup", Object), ("clusters", Array)], &[]);
    let rollup = &body["rollup"];
    shape(
        "rollup",
        rollup,
        &[
            ("totalClusters", Int),
            ("byStatus", Object),
            ("byEnvironment", Object),
            ("generatedAt", Str),
        ],
        &[],
    );
    rfc3339("generatedAt", &rollup["generatedAt"]);
    let clusters = body["clusters"].as_array().unwrap();
    assert_eq!(rollup["totalClusters"].as_u64(), Some(clusters.len() as u64));
    let by_status: u64 = rollup["byStatus"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_status, clusters.len() as u64, "{rollup}");
    for cluster in clusters {
        shape(
            "fleet cluster",
            cluster,
            &[
                ("name", Str),
                ("backend", Str),
                ("status", Str),
                ("lastContact", Str),
                ("hotSignals", Array),
            ],
            &[
                ("region", Str),
                ("environment", Str),
                ("tags", Object),
                ("summary", Object),
                ("error", Object),
            ],
        );
        rfc3339("lastContact", &cluster["lastContact"]);
        let status = cluster["status"].as_str().unwrap();
        assert!(
            ["healthy", "degraded", "unreachable", "unknown", "denied"].contains(&status),
            "{cluster}"
        );
        assert_eq!(rollup["byStatus"][status].as_u64().map(|n| n >= 1), Some(true));
        if let Some(summary) = cluster.get("summary") {
            shape(
                "summary",
                summary,
                &[
                    ("nodes", Object),
                    ("pods", Object),
                    ("namespaces", Int),
                    ("stuckOrFailed", Int),
                ],
                &[],
            );
            shape(
                "summary.nodes",
                &summary["nodes"],
                &[("ready", Int), ("total", Int)],
                &[],
            );
            shape(
                "summary.pods",
                &summary["pods"],
                &[("running", Int), ("pending", Int), ("failed", Int), ("total", Int)],
                &[],
            );
        }
        let signals = cluster["hotSignals"].as_array().unwrap();
        for signal in signals {
            shape("hotSignals[]", signal, &[("kind", Str), ("count", Int)], &[]);
        }
        let keys: Vec<(u64, &str)> = signals
            .iter()
            .map(|s| (s["count"].as_u64().unwrap(), s["kind"].as_str().unwrap()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        assert_eq!(keys, sorted, "hotSignals: largest count first, then by name");
    }
}

/// Every shell route's shape, as `token` (or anonymously).
async fn every_shape(served: &Served, token: Option<&str>) {
    let base = &served.base;
    let (status, body) = get(&format!("{base}/api/auth/whoami"), token, &[]).await;
    assert_eq!(status, 200, "{body}");
    whoami_shape(&body);
    let (status, body) = get(&format!("{base}/api/auth/config"), None, &[]).await;
    assert_eq!(status, 200, "{body}");
    shape(
        "auth/config",
        &body,
        &[("authMode", Type::Str)],
        &[("providerName", Type::Str)],
    );
    let (status, body) = get(&format!("{base}/api/clusters"), token, &[]).await;
    assert_eq!(status, 200, "{body}");
    clusters_shape(&body);
    let (status, body) = get(&served.url("dashboard"), token, &[]).await;
    assert_eq!(status, 200, "{body}");
    dashboard_shape(&body);
    let (status, body) = get(&format!("{base}/api/fleet"), token, &[]).await;
    assert_eq!(status, 200, "{body}");
    fleet_shape(&body);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shell_route_has_the_spec_shape_with_auth_off() {
    let served = serve_scenario(Scenario::Demo, &[]).await;
    every_shape(&served, None).await;
    let (_, whoami) = get(&format!("{}/api/auth/whoami", served.base), None, &[]).await;
    assert_eq!(
        whoami,
        json!({ "subject": "anonymous", "email": "", "groups": [], "mode": "dev", "authzMode": "",
                "auditEnabled": false, "expiresAt": 0 })
    );
    let (_, config) = get(&format!("{}/api/auth/config", served.base), None, &[]).await;
    assert_eq!(config, json!({ "authMode": "dev" }));
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shell_route_has_the_spec_shape_with_jwt_auth() {
    let (served, _dir) = serve_jwt_scenario(Scenario::Demo, &[]).await;
    every_shape(&served, Some(&hs256(&claims("alice")))).await;
    let (_, config) = get(&format!("{}/api/auth/config", served.base), None, &[]).await;
    assert_eq!(config, json!({ "authMode": "oidc" }), "public in JWT mode");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_needs_a_token_and_follows_it() {
    let (served, _dir) = serve_jwt(&[]).await;
    let base = &served.base;
    for route in ["/api/auth/whoami", "/api/clusters", "/api/fleet"] {
        let (status, body) = get(&format!("{base}{route}"), None, &[]).await;
        assert_eq!(status, 401, "{route}: {body}");
        assert_eq!(body["error"], "unauthenticated");
    }
    assert_eq!(get(&served.url("dashboard"), None, &[]).await.0, 401);

    let mut alice = claims("alice");
    alice["email"] = json!("alice@example.com");
    let (status, body) = get(&format!("{base}/api/auth/whoami"), Some(&hs256(&alice)), &[]).await;
    assert_eq!(status, 200, "{body}");
    whoami_shape(&body);
    assert_eq!(body["subject"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["groups"], json!(["dev"]));
    assert_eq!(body["mode"], "oidc");
    assert_eq!(body["expiresAt"], alice["exp"]);

    let (_, body) = get(&format!("{base}/api/auth/whoami"), Some(&hs256(&claims("bob"))), &[]).await;
    assert_eq!((&body["subject"], &body["email"]), (&json!("bob"), &json!("")));
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_counts_the_demo_and_finds_its_crash_looper() {
    let served = serve_scenario(Scenario::Demo, &[]).await;
    // payments/ledger-worker crash-loops on a cycle of a few seconds.
    let body = until(&served.url("dashboard"), None, "a stuck pod", |body| {
        body["podPhases"]["stuck"].as_u64() > Some(0)
    })
    .await;
    dashboard_shape(&body);
    let attention = body["needsAttention"].as_array().unwrap();
    assert!(
        attention.iter().any(|pod| pod["namespace"] == "payments"
            && pod["name"].as_str().unwrap().starts_with("ledger-worker")
            && pod["reason"] == "CrashLoopBackOff"),
        "{attention:?}"
    );
    assert_eq!(body["accessibility"]["pods"], "ok");
    assert_eq!(body["nodeCount"], 4);
    assert!(body["namespaceCount"].as_u64() >= Some(7), "{body}");
    assert_eq!(body["kubernetesVersion"], "v1.35.0");
    assert_eq!(body["provider"], "", "the tests reach the sim by URL, not embedded");
    let cpu: f64 = body["cpuAllocatable"].as_str().unwrap().parse().unwrap();
    assert!(cpu >= 16.0, "four nodes of at least 4 cores: {cpu}");
    assert!(body["memoryAllocatable"].as_str().unwrap().ends_with("Gi"), "{body}");
    assert!(body["workloads"]["deployments"]["total"].as_u64() >= Some(7), "{body}");
    assert_eq!(body["storage"]["pvCount"], 3, "prometheus 2 and postgres 1: {body}");
    assert_eq!(body["storage"]["pvcBound"], 3);
    assert_eq!(body["storage"]["totalProvisioned"], "30Gi");
    // The page reads the hub's cluster-wide upstreams, which linger for the next load.
    let keys = served.hub.upstream_keys();
    assert!(keys.iter().all(|k| k.namespace.is_none()), "{keys:?}");
    assert_eq!(keys.len(), 10, "{keys:?}");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_ranks_the_demo_s_hot_signals() {
    let served = serve_scenario(Scenario::Demo, &[]).await;
    let body = until(&format!("{}/api/fleet", served.base), None, "a hot signal", |body| {
        body["clusters"][0]["hotSignals"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    fleet_shape(&body);
    let cluster = &body["clusters"][0];
    assert_eq!(
        cluster["status"], "degraded",
        "a failing pod degrades the cluster: {cluster}"
    );
    assert!(cluster["summary"]["stuckOrFailed"].as_u64() > Some(0));
    assert_eq!(cluster["summary"]["nodes"]["total"], 4);
    assert_eq!(body["rollup"]["byStatus"], json!({ "degraded": 1 }));
    served.shutdown().await;
}

/// A RoleBinding of ClusterRole `role` to `user` in `namespace`.
fn role_binding(namespace: &str, name: &str, role: &str, user: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": { "name": name, "namespace": namespace },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    })
}

async fn serve_rbac() -> (Served, tempfile::TempDir) {
    serve_jwt_scenario(
        Scenario::Demo,
        &[
            ("PERISCOPE_AUTH_RBAC", "subjectaccessreview"),
            ("PERISCOPE_AUTH_RBAC_TTL", "1s"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_bound_nowhere_sees_forbidden_kinds_and_a_denied_fleet() {
    let (served, _dir) = serve_rbac().await;
    let mallory = hs256(&claims("mallory"));
    let (status, body) = get(&served.url("dashboard"), Some(&mallory), &[]).await;
    assert_eq!(status, 200, "{body}");
    dashboard_shape(&body);
    for kind in ["nodes", "pods", "namespaces"] {
        assert_eq!(body["accessibility"][kind], "forbidden", "{kind}: {body}");
    }
    for count in ["nodeCount", "podCount", "namespaceCount"] {
        assert_eq!(body[count], 0, "{count}: {body}");
    }
    assert_eq!(body["workloads"]["deployments"]["total"], 0);
    assert_eq!(body["storage"]["pvCount"], 0);

    let (status, body) = get(&format!("{}/api/fleet", served.base), Some(&mallory), &[]).await;
    assert_eq!(status, 200, "{body}");
    fleet_shape(&body);
    assert_eq!(body["clusters"][0]["status"], "denied", "{body}");
    assert!(body["clusters"][0].get("summary").is_none(), "{body}");
    assert_eq!(body["rollup"]["byStatus"], json!({ "denied": 1 }));
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_counts_only_what_rbac_lets_the_user_list() {
    let (served, _dir) = serve_rbac().await;
    served
        .sim
        .apply(role_binding("payments", "alice-view", "view", "alice"))
        .unwrap();
    served
        .sim
        .apply(cluster_role_binding("bob-view", "view", "bob"))
        .unwrap();
    let alice = hs256(&claims("alice"));
    let bob = hs256(&claims("bob"));

    // Alice may list pods in payments only: the overview counts those and nothing else.
    let body = until(&served.url("dashboard"), Some(&alice), "alice's stuck pod", |body| {
        body["podPhases"]["stuck"].as_u64() > Some(0)
    })
    .await;
    dashboard_shape(&body);
    assert_eq!(body["accessibility"]["pods"], "ok", "{body}");
    assert_eq!(body["accessibility"]["nodes"], "forbidden", "{body}");
    let attention = body["needsAttention"].as_array().unwrap();
    assert!(
        attention.iter().all(|pod| pod["namespace"] == "payments"),
        "{attention:?}"
    );
    let (_, all) = get(&served.url("pods?namespace=payments"), Some(&alice), &[]).await;
    let payments = all["pods"].as_array().unwrap().len() as u64;
    let counted = body["podCount"].as_u64().unwrap();
    // The demo churns, so allow a pod or two of drift between the two reads.
    assert!(counted.abs_diff(payments) <= 2, "{counted} vs {payments} in payments");

    // Bob may view everything namespaced, but `view` grants no nodes.
    let (_, body) = get(&served.url("dashboard"), Some(&bob), &[]).await;
    assert_eq!(body["accessibility"]["pods"], "ok", "{body}");
    assert_eq!(body["accessibility"]["namespaces"], "ok", "{body}");
    assert_eq!(body["accessibility"]["nodes"], "forbidden", "{body}");
    assert!(body["podCount"].as_u64() > Some(counted), "{body}");
    let (_, fleet) = get(&format!("{}/api/fleet", served.base), Some(&bob), &[]).await;
    let status = fleet["clusters"][0]["status"].as_str().unwrap();
    assert!(["healthy", "degraded"].contains(&status), "{fleet}");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shell_does_not_spend_the_user_s_upstream_budget() {
    let served = serve_scenario(Scenario::Demo, &[("PERISCOPE_WATCH_UPSTREAMS_PER_USER", "10")]).await;
    let (status, body) = get(&served.url("dashboard"), None, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(served.hub.upstream_keys().len(), 10);
    // The overview's ten upstreams are the shell's: the user may still start ten more.
    for kind in ["services", "ingresses"] {
        let mut stream = SseClient::connect(&served.url(&format!("{kind}/watch")), None).await;
        assert_eq!(stream.status, 200, "{kind}");
        stream.expect("snapshot").await;
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_cluster_s_overview_is_404() {
    let served = serve_scenario(Scenario::Empty, &[]).await;
    let (status, body) = get(&format!("{}/api/clusters/nope/dashboard", served.base), None, &[]).await;
    assert_eq!((status, body), (404, json!({ "text": "cluster not found" })));
    served.shutdown().await;
}
