//! Wire-protocol details checked with kube-rs's typed API and raw requests.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use periscope_sim::{Scenario, SimOptions};
use serde_json::json;

use crate::support::{client, empty_sim, start, within};

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name }, "data": { "k": "v" } })).expect("a ConfigMap")
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_410_expired() {
    let sim = start(SimOptions {
        scenario: Scenario::Empty,
        history_window: 5,
        ..SimOptions::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), "default");
    for i in 0..20 {
        api.create(&PostParams::default(), &configmap(&format!("cm-{i}")))
            .await
            .expect("create");
    }
    let mut events = api
        .watch(&WatchParams::default(), "2")
        .await
        .expect("the watch starts")
        .boxed();
    let first = within("the first watch event", events.try_next())
        .await
        .expect("a decodable event");
    match first {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(
                status.message.starts_with("too old resource version: 2"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        within("the end of the expired watch", events.try_next())
            .await
            .expect("clean end")
            .is_none()
    );

    // A recent version replays exactly the changes after it.
    let rv = sim.resource_version();
    api.create(&PostParams::default(), &configmap("late"))
        .await
        .expect("create");
    let mut events = api
        .watch(&WatchParams::default(), &(rv).to_string())
        .await
        .expect("watch")
        .boxed();
    match within("the replayed event", events.try_next())
        .await
        .expect("decodable")
    {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("late")),
        other => panic!("expected ADDED late, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_and_initial_events_end() {
    let sim = empty_sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), "default");
    api.create(&PostParams::default(), &configmap("one"))
        .await
        .expect("create");
    let params = WatchParams::default().initial_events();
    let mut events = api.watch(&params, "").await.expect("watch").boxed();
    let added = within("the initial ADDED", events.try_next()).await.expect("decodable");
    assert!(matches!(added, Some(WatchEvent::Added(_))), "{added:?}");
    match within("the initial-events-end bookmark", events.try_next())
        .await
        .expect("decodable")
    {
        Some(WatchEvent::Bookmark(b)) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
            assert_eq!(b.metadata.resource_version, sim.resource_version().to_string());
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // Periodic bookmarks follow (every 200 ms in these tests).
    let next = within("a periodic bookmark", events.try_next())
        .await
        .expect("decodable");
    assert!(matches!(next, Some(WatchEvent::Bookmark(_))), "{next:?}");
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_under_one_resource_version() {
    let sim = start(SimOptions {
        scenario: Scenario::Empty,
        pods: 1234,
        ..SimOptions::default()
    })
    .await;
    let api: Api<Pod> = Api::all(client(&sim));
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(500);
    let mut versions = Vec::new();
    loop {
        let page = api.list(&params).await.expect("a page");
        versions.push(page.metadata.resource_version.clone());
        names.extend(page.items.iter().filter_map(|p| p.metadata.name.clone()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                assert!(page.metadata.remaining_item_count.is_some_and(|n| n > 0));
                params = params.continue_token(&token);
            }
            _ => break,
        }
    }
    assert_eq!(versions.len(), 3);
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!((names.len(), unique.len()), (1234, 1234));
}

#[tokio::test]
async fn selectors_filter_lists() {
    let sim = start(SimOptions {
        scenario: Scenario::Empty,
        pods: 300,
        ..SimOptions::default()
    })
    .await;
    let api: Api<Pod> = Api::all(client(&sim));
    let all = sim.objects("pods", None).expect("pods");
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| all.iter().filter(|p| f(p)).count();
    let db = api.list(&ListParams::default().labels("tier=db")).await.expect("list");
    assert_eq!(db.items.len(), count(&|p| p["metadata"]["labels"]["tier"] == "db"));
    let set = api
        .list(&ListParams::default().labels("app in (load-1,load-2),tier!=db"))
        .await
        .expect("list");
    assert_eq!(
        set.items.len(),
        count(
            &|p| ["load-1", "load-2"].contains(&p["metadata"]["labels"]["app"].as_str().unwrap_or_default())
                && p["metadata"]["labels"]["tier"] != "db"
        )
    );
    let on_node = api
        .list(&ListParams::default().fields("spec.nodeName=bench-node-2"))
        .await
        .expect("list");
    assert_eq!(on_node.items.len(), count(&|p| p["spec"]["nodeName"] == "bench-node-2"));
    let one = api
        .list(&ListParams::default().fields("metadata.namespace=bench-3,metadata.name=load-3-000003"))
        .await
        .expect("list");
    assert_eq!(one.items.len(), 1);
    let ns: Api<Pod> = Api::namespaced(client(&sim), "bench-3");
    assert_eq!(ns.list(&ListParams::default()).await.expect("list").items.len(), 30);
}

#[tokio::test]
async fn writes_answer_with_kubernetes_status_errors() {
    let sim = empty_sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), "default");
    let created = api
        .create(&PostParams::default(), &configmap("cm"))
        .await
        .expect("create");
    let err = |e: kube::Error| match e {
        kube::Error::Api(status) => status,
        other => panic!("expected an API status, got {other:?}"),
    };
    let exists = err(api
        .create(&PostParams::default(), &configmap("cm"))
        .await
        .expect_err("duplicate"));
    assert_eq!((exists.code, exists.reason.as_str()), (409, "AlreadyExists"));
    let missing = err(api.get("nope").await.expect_err("missing"));
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    let invalid = err(api
        .create(&PostParams::default(), &configmap("Bad_Name"))
        .await
        .expect_err("invalid"));
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));

    // Replace with the current version works once; the stale version then conflicts.
    let mut update = created.clone();
    update.data = Some([("k".to_string(), "v2".to_string())].into());
    let replaced = api
        .replace("cm", &PostParams::default(), &update)
        .await
        .expect("replace");
    assert_ne!(replaced.metadata.resource_version, created.metadata.resource_version);
    let stale = err(api
        .replace("cm", &PostParams::default(), &update)
        .await
        .expect_err("stale"));
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));

    // Merge and strategic merge patches.
    let patched = api
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "a": "1" } } })),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("a"))
            .map(String::as_str),
        Some("1")
    );
    let patched = api
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Strategic(json!({ "data": { "k": null, "x": "y" } })),
        )
        .await
        .expect("strategic patch");
    assert_eq!(patched.data, Some([("x".to_string(), "y".to_string())].into()));

    api.delete("cm", &DeleteParams::default()).await.expect("delete");
    assert!(api.get_opt("cm").await.expect("get").is_none());
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let sim = empty_sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim), "default");
    let mut cm = configmap("held");
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &cm).await.expect("create");
    api.delete("held", &DeleteParams::default()).await.expect("delete");
    let held = api.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .expect("remove finalizers");
    assert!(api.get_opt("held").await.expect("get").is_none());
}

async fn post(client: &Client, path: &str) -> String {
    let request = http::Request::post(path).body(Vec::new()).expect("a request");
    client.request_text(request).await.expect("the admin endpoint answers")
}

#[tokio::test]
async fn admin_endpoint_injects_faults_and_counts_watches() {
    let sim = empty_sim().await;
    let client = client(&sim);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // kube's client retries 429 by itself, so a 500 shows the fault most directly.
    post(&client, "/sim/admin/lists/fail?code=500&count=1").await;
    let status = match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected 500, got {other:?}"),
    };
    assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"));
    api.list(&ListParams::default()).await.expect("the fault was used up");

    let watch = api.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let counts = client
        .request_text(
            http::Request::get("/sim/admin/watches")
                .body(Vec::new())
                .expect("a request"),
        )
        .await
        .expect("counts");
    let counts: serde_json::Value = serde_json::from_str(&counts).expect("JSON");
    assert_eq!(counts["resources"]["configmaps"], 1);
    assert_eq!(sim.open_watches("configmaps").expect("known"), 1);
    drop(watch);
    // Nothing to await for a closed connection: poll the counter briefly.
    within("the watch to be counted closed", async {
        while sim.open_watches_total() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    post(&client, "/sim/admin/watches/expire?count=1").await;
    let mut events = api.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    match within("the injected 410", events.try_next()).await.expect("decodable") {
        Some(WatchEvent::Error(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}
