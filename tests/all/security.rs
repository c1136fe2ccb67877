use std::time::{Duration, Instant};

use periscope_sim::Scenario;
use periscope_tests::served::{CLUSTER, Served, SseClient, patience, serve};
use periscope_tests::tools::kubectl_run;
use serde_json::{Value, json};

use super::auth::{claims, hs256, serve_jwt, serve_jwt_scenario};

/// Status and JSON body of a GET, with an optional bearer token and extra headers.
pub(crate) async fn get(url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(patience(), request.send()).await.unwrap().unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    (status, body)
}

/// The `{"message": …}` of a watch refused by RBAC: a 200 event stream of one `error`
/// event that then ends, as Periscope's own backend answers (the SPA counts it and
/// falls back to polling, whose 403 shows its forbidden state).
pub(crate) async fn refused_watch(url: &str, token: &str) -> Value {
    let (status, body) = get(url, Some(token), &[]).await;
    assert_eq!(status, 200, "{body}");
    let text = body["text"].as_str().unwrap_or_default();
    let data = text
        .strip_prefix("event: error\ndata: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("one error event, then the end: {text:?}"));
    serde_json::from_str(data).unwrap()
}

/// The data routes of the API (one of each shape).
fn data_routes(served: &Served) -> Vec<String> {
    vec![
        format!("{}/api/features", served.base),
        format!("{}/api/clusters", served.base),
        served.url("pods"),
        served.url("pods?namespace=default"),
        served.url("pods/watch"),
        served.url("nodes/watch"),
        format!("{}/debug/streams", served.base),
        format!("{}/api/admin/revocations", served.base),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_data_route_needs_a_valid_token() {
    let (served, _dir) = serve_jwt(&[]).await;
    for url in data_routes(&served) {
        for token in [None, Some("garbage"), Some("a.b.c")] {
            let (status, body) = get(&url, token, &[]).await;
            assert_eq!(status, 401, "{url} with {token:?}: {body}");
            assert_eq!(body["error"], "unauthenticated", "{url}: {body}");
        }
    }
    // The cookie a browser's EventSource sends counts like the header.
    let token = hs256(&claims("alice"));
    let (status, body) = get(
        &served.url("pods"),
        None,
        &[("cookie", &format!("periscope_token={token}"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for public in ["/healthz", "/readyz", "/metrics"] {
        let response = reqwest::get(format!("{}{public}", served.base)).await.unwrap();
        assert_eq!(response.status(), 200, "{public} is public");
    }
    assert!(
        served.hub.upstream_keys().len() <= 1,
        "only the one valid poll reached the hub"
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_require_a_token() {
    let (served, _dir) = serve_jwt(&[("PERISCOPE_AUTH_PROTECT_METRICS", "true")]).await;
    let url = format!("{}/metrics", served.base);
    assert_eq!(get(&url, None, &[]).await.0, 401);
    assert_eq!(get(&url, Some(&hs256(&claims("alice"))), &[]).await.0, 200);
    served.shutdown().await;
}

/// One bad request: its URL, extra headers, the status it gets and a word its message
/// mentions.
type BadInput<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_right_status_and_a_json_body_and_opens_nothing() {
    let served = serve(&[("PERISCOPE_WATCH_STREAMS", "pods")]).await;
    let long = "a".repeat(64);
    let huge_id = "1".repeat(10_000);
    let cases: Vec<BadInput> = vec![
        (served.url("pods?namespace=../../etc"), vec![], 400, "namespace"),
        (served.url("pods/watch?namespace=../../etc"), vec![], 400, "namespace"),
        (served.url("pods?namespace=%00"), vec![], 400, "namespace"),
        (served.url("pods/watch?namespace=%00"), vec![], 400, "namespace"),
        (served.url("pods?namespace=Shop"), vec![], 400, "namespace"),
        (served.url("pods?namespace=-shop"), vec![], 400, "namespace"),
        (served.url(&format!("pods?namespace={long}")), vec![], 400, "namespace"),
        (served.url("pods?namespace=a&namespace=b"), vec![], 400, "namespace"),
        (served.url("pods?namespace=%ZZ"), vec![], 400, "namespace"),
        (served.url("bananas"), vec![], 404, "bananas"),
        (served.url("bananas/watch"), vec![], 404, "bananas"),
        (served.url("nodes/watch"), vec![], 404, "nodes"),
        (
            format!("{}/api/clusters/nope/pods", served.base),
            vec![],
            404,
            "cluster not found",
        ),
        (
            served.url("pods/watch"),
            vec![("last-event-id", huge_id.as_str())],
            400,
            "Last-Event-ID",
        ),
        (
            served.url("pods/watch"),
            vec![("last-event-id", "caf\u{e9}")],
            400,
            "Last-Event-ID",
        ),
        (
            format!("{}/api/clusters/test/pods/watch/extra", served.base),
            vec![],
            404,
            "route",
        ),
    ];
    for (url, headers, status, mentions) in cases {
        let mut request = reqwest::Client::new().get(&url);
        for (name, value) in &headers {
            request = request.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{url}: {text}");
        assert!(text.contains(mentions), "{url}: {text} should mention {mentions}");
        if status != 404 || !text.starts_with("cluster not found") {
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}"));
            assert!(
                body["error"].is_string() && body["message"].is_string(),
                "{url}: {body}"
            );
        }
    }
    let response = reqwest::Client::new().post(served.url("pods")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    // A route the SPA calls that this host does not serve is 404 JSON, whatever the
    // method (spec/spa-shell.md), not the 405 of the kind route it resembles.
    for (method, route) in [("POST", "can-i"), ("GET", "can-i"), ("POST", "pods/shop/web/yaml")] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = reqwest::Client::new()
            .request(method.clone(), served.url(route))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {route}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{method} {route}: {body}"
        );
    }
    // Oversized headers are refused by the HTTP layer before any handler runs.
    let response = reqwest::Client::new()
        .get(served.url("pods"))
        .header("x-padding", "x".repeat(1 << 20))
        .send()
        .await;
    assert!(response.is_err() || response.unwrap().status().is_client_error());
    assert!(
        served.hub.upstream_keys().is_empty(),
        "{:?}",
        served.hub.upstream_keys()
    );
    assert_eq!(served.sim.open_watches_total(), 0);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_of_a_hundred_namespaces_leave_no_watches_behind() {
    let served = serve(&[]).await;
    for i in 0..100 {
        let response = reqwest::get(served.url(&format!("services?namespace=ns-{i}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["services"].is_array(), "{body}");
    }
    assert!(
        served.hub.upstream_keys().is_empty(),
        "{:?}",
        served.hub.upstream_keys()
    );
    assert_eq!(served.sim.open_watches_total(), 0);

    // With the cluster-wide scope warm, namespaced polls are served from it, filtered.
    served.sim.apply(periscope_tests::served::pod("shop", "web-0")).unwrap();
    served
        .sim
        .apply(periscope_tests::served::pod("payments", "api-0"))
        .unwrap();
    let mut stream = SseClient::connect(&served.url("pods/watch"), None).await;
    stream.expect("snapshot").await;
    for i in 0..100 {
        let namespace = if i % 2 == 0 { "shop" } else { "payments" };
        let body: Value = reqwest::get(served.url(&format!("pods?namespace={namespace}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pods = body["pods"].as_array().unwrap();
        assert_eq!(pods.len(), 1, "{body}");
        assert_eq!(pods[0]["namespace"], namespace);
    }
    assert_eq!(served.hub.upstream_keys().len(), 1, "{:?}", served.hub.upstream_keys());
    assert_eq!(served.sim.open_watches("pods").unwrap(), 1);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_watches_are_capped_per_user() {
    let served = serve(&[("PERISCOPE_WATCH_UPSTREAMS_PER_USER", "2")]).await;
    let mut open = Vec::new();
    for namespace in ["a", "b"] {
        let mut client = SseClient::connect(&served.url(&format!("pods/watch?namespace={namespace}")), None).await;
        assert_eq!(client.status, 200);
        client.expect("snapshot").await;
        open.push(client);
    }
    let (status, body) = get(&served.url("pods/watch?namespace=c"), None, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "upstream_limit");
    assert!(
        body["message"].as_str().unwrap().contains("watch.upstreams_per_user"),
        "{body}"
    );
    // Joining a running upstream is not a new one.
    let mut again = SseClient::connect(&served.url("pods/watch?namespace=a"), None).await;
    assert_eq!(again.status, 200);
    again.expect("snapshot").await;
    served.shutdown().await;
}

pub(crate) fn cluster_role_binding(name: &str, role: &str, user: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": { "name": name },
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
            ("PERISCOPE_WATCH_STREAMS", "pods"),
        ],
    )
    .await
}

fn namespaces_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["namespace"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_bound_in_one_namespace_sees_only_that_namespace() {
    let (served, dir) = serve_rbac().await;
    // The binding is made as an operator would: with real kubectl against the cluster.
    let kubeconfig = dir.path().join("kubeconfig");
    served.sim.write_kubeconfig(&kubeconfig).unwrap();
    kubectl_run(
        &kubeconfig,
        &[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "shop",
        ],
    )
    .await;
    let alice = hs256(&claims("alice"));

    let (status, body) = get(&served.url("pods?namespace=shop"), Some(&alice), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["pods"].as_array().unwrap().is_empty());
    let (status, body) = get(&served.url("pods?namespace=payments"), Some(&alice), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    let refused = refused_watch(&served.url("pods/watch?namespace=payments"), &alice).await;
    assert!(refused["message"].as_str().unwrap().contains("alice"), "{refused}");
    let (status, body) = get(&served.url("nodes"), Some(&alice), &[]).await;
    assert_eq!(status, 403, "a RoleBinding grants nothing cluster-scoped: {body}");

    // A cluster-wide poll and stream are partitioned to shop.
    let (status, body) = get(&served.url("pods"), Some(&alice), &[]).await;
    assert_eq!(status, 200, "{body}");
    let polled = namespaces_of(&body["pods"]);
    assert!(!polled.is_empty() && polled.iter().all(|ns| ns == "shop"), "{polled:?}");
    let mut stream = SseClient::connect_as(&served.url("pods/watch"), &alice).await;
    assert_eq!(stream.status, 200);
    let snapshot = stream.expect_json("snapshot").await;
    let seen = namespaces_of(&snapshot["items"]);
    assert!(!seen.is_empty() && seen.iter().all(|ns| ns == "shop"), "{seen:?}");

    // While the demo churns in every namespace, only shop's deltas arrive.
    let mut deltas = 0;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let event = stream.next().await.expect("the stream stays open");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        match event.event.as_str() {
            "added" | "modified" | "deleted" => {
                assert_eq!(data["object"]["namespace"], "shop", "{data}");
                deltas += 1;
            }
            "snapshot" => assert!(namespaces_of(&data["items"]).iter().all(|ns| ns == "shop")),
            other => panic!("unexpected {other}: {data}"),
        }
    }
    assert!(deltas > 0, "the demo churns shop too");

    // Deleting the binding ends the stream within the TTL, and the reconnect is refused.
    kubectl_run(&kubeconfig, &["delete", "rolebinding", "alice-view", "-n", "shop"]).await;
    let ended = Instant::now();
    let message = loop {
        let event = stream.next().await.expect("the stream ends with an error frame");
        if event.event == "error" {
            break event.data;
        }
        assert!(ended.elapsed() < Duration::from_secs(5), "not revoked in time");
    };
    assert!(message.contains("access revoked"), "{message}");
    assert!(stream.next().await.is_none(), "the stream closes after the error");
    refused_watch(&served.url("pods/watch"), &alice).await;
    let (status, _) = get(&served.url("pods"), Some(&alice), &[]).await;
    assert_eq!(status, 403, "the poll stays 403");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_bound_cluster_wide_sees_everything() {
    let (served, _dir) = serve_rbac().await;
    served
        .sim
        .apply(cluster_role_binding("bob-view", "view", "bob"))
        .unwrap();
    let bob = hs256(&claims("bob"));
    let mut stream = SseClient::connect_as(&served.url("pods/watch"), &bob).await;
    assert_eq!(stream.status, 200);
    let snapshot = stream.expect_json("snapshot").await;
    let seen = namespaces_of(&snapshot["items"]);
    for namespace in ["shop", "payments"] {
        assert!(
            seen.iter().any(|ns| ns == namespace),
            "{namespace} missing from {seen:?}"
        );
    }
    // Someone bound nowhere gets 403 for the cluster-wide stream too.
    let refused = refused_watch(&served.url("pods/watch"), &hs256(&claims("mallory"))).await;
    assert!(refused["message"].as_str().unwrap().contains("mallory"), "{refused}");
    assert_eq!(served.hub.upstream_keys().len(), 1, "one shared upstream for {CLUSTER}");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_failing_on_every_object_is_an_error_never_an_empty_snapshot() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(
        plugins.path().join("podtrap.wasm"),
        periscope_tests::fixtures::get("podtrap"),
    )
    .unwrap();
    let dir = plugins.path().display().to_string();
    let served = serve(&[
        ("PERISCOPE_PLUGINS_DIR", dir.as_str()),
        ("PERISCOPE_PLUGINS_OVERRIDE", "pods"),
    ])
    .await;
    served.sim.apply(periscope_tests::served::pod("shop", "web-0")).unwrap();
    let mut stream = SseClient::connect(&served.url("pods/watch"), None).await;
    assert_eq!(stream.status, 200);
    let event = stream.next().await.expect("a frame");
    assert_eq!(event.event, "error", "not a snapshot: {}", event.data);
    assert!(
        event.data.contains("map pods: the plugin failed on every object"),
        "{}",
        event.data
    );
    assert!(stream.next().await.is_none(), "the stream ends after the error");
    // Polls answer an error too, never an empty list.
    let response = reqwest::get(served.url("pods")).await.unwrap();
    assert_eq!(response.status(), 500);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_logs_and_helm_releases_need_the_users_rbac() {
    use periscope_tests::graphql::run_script;
    let (served, dir) = serve_rbac().await;
    let kubeconfig = dir.path().join("kubeconfig");
    served.sim.write_kubeconfig(&kubeconfig).unwrap();
    let pods = served.sim.objects("pods", Some("shop")).unwrap();
    let pod = pods
        .iter()
        .find(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
        .and_then(|p| p["metadata"]["name"].as_str())
        .expect("a running pod in shop")
        .to_string();
    let mut admin = claims("carol");
    admin["groups"] = json!(["admins"]);
    let token = hs256(&admin);
    let ws = format!("{}/graphqlws", served.base.replacen("http://", "ws://", 1));
    run_script("rbac.mjs", &["before", &ws, &token, &pod])
        .await
        .assert_success();
    for args in [
        &[
            "create",
            "role",
            "logs",
            "--verb=get",
            "--resource=pods/log",
            "-n",
            "shop",
        ][..],
        &[
            "create",
            "rolebinding",
            "carol-logs",
            "--role=logs",
            "--user=carol",
            "-n",
            "shop",
        ],
    ] {
        kubectl_run(&kubeconfig, args).await;
    }
    // Past the review cache's TTL (1 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    run_script("rbac.mjs", &["after", &ws, &token, &pod])
        .await
        .assert_success();
    served.shutdown().await;
}
