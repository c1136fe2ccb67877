//! Wire-protocol details checked with kube-rs's typed API and raw requests.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use periscope_sim::{Scenario, SimOptions};
use serde_json::json;

use crate::support::{client, client_as, empty_sim, start, within};

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
async fn an_expired_continue_token_is_a_410_and_a_fresh_list_works() {
    let sim = start(SimOptions {
        scenario: Scenario::Empty,
        pods: 30,
        ..SimOptions::default()
    })
    .await;
    let api: Api<Pod> = Api::all(client(&sim));
    sim.expire_continues(periscope_sim::FaultCount::Times(1));
    let first = api
        .list(&ListParams::default().limit(10))
        .await
        .expect("the first page is not affected");
    let token = first.metadata.continue_.expect("a continue token");
    let expired = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect_err("the continue token expired");
    assert!(
        matches!(&expired, kube::Error::Api(s) if s.code == 410 && s.reason == "Expired"),
        "{expired:?}"
    );
    let again = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect("the fault cleared itself");
    assert_eq!(again.items.len(), 10);
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

fn namespaces(sim: &periscope_sim::Sim, names: &[&str]) {
    for name in names {
        sim.apply(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } }))
            .expect("the namespace is stored");
    }
}

fn alice_views_shop() -> serde_json::Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "alice-view", "namespace": "shop" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice" }],
    })
}

/// POSTs a SubjectAccessReview as JSON, the way the host asks, and returns the answer.
async fn review(
    client: &Client,
    user: &str,
    groups: &[&str],
    verb: &str,
    resource: &str,
    namespace: &str,
) -> serde_json::Value {
    let body = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": user, "groups": groups,
            "resourceAttributes": { "verb": verb, "group": "", "resource": resource, "namespace": namespace },
        },
    });
    let request = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).expect("JSON"))
        .expect("a request");
    client.request(request).await.expect("the review is answered")
}

#[tokio::test]
async fn subject_access_reviews_answer_from_the_stored_bindings() {
    let sim = empty_sim().await;
    namespaces(&sim, &["shop", "payments"]);
    let client = client(&sim);
    let denied = review(&client, "alice", &[], "list", "pods", "shop").await;
    assert_eq!(denied["status"], json!({ "allowed": false }));

    sim.apply(alice_views_shop()).expect("the binding is stored");
    let allowed = review(&client, "alice", &[], "list", "pods", "shop").await;
    assert_eq!(allowed["kind"], "SubjectAccessReview");
    assert_eq!(allowed["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(allowed["spec"]["user"], "alice");
    assert_eq!(allowed["spec"]["resourceAttributes"]["namespace"], "shop");
    assert_eq!(
        allowed["status"],
        json!({
            "allowed": true,
            "reason": "RBAC: allowed by RoleBinding \"alice-view/shop\" of ClusterRole \"view\" to User \"alice\"",
        })
    );
    for (verb, resource, namespace) in [
        ("list", "pods", "payments"),
        ("list", "secrets", "shop"),
        ("list", "pods", ""),
    ] {
        let answer = review(&client, "alice", &[], verb, resource, namespace).await;
        assert_eq!(answer["status"]["allowed"], false, "{verb} {resource} in {namespace:?}");
    }
    // Groups are taken as given; system:masters may do anything.
    assert_eq!(
        review(&client, "root", &["system:masters"], "delete", "nodes", "").await["status"]["allowed"],
        true
    );

    sim.delete("rolebindings", Some("shop"), "alice-view")
        .expect("the binding is deleted");
    assert_eq!(
        review(&client, "alice", &[], "list", "pods", "shop").await["status"]["allowed"],
        false
    );
}

#[tokio::test]
async fn typed_subject_access_reviews_and_the_direct_api_agree() {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    use periscope_sim::rbac::{Attributes, UserInfo};

    let sim = empty_sim().await;
    sim.apply(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": "ops-edit" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops" }],
    }))
    .expect("the binding is stored");
    let api: Api<SubjectAccessReview> = Api::all(client(&sim));
    let ask = |groups: Vec<String>| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("dave".into()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some("patch".into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                namespace: Some("default".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = api
        .create(&PostParams::default(), &ask(vec!["ops".into()]))
        .await
        .expect("created");
    let status = answer.status.expect("a status");
    assert!(status.allowed);
    assert_eq!(
        status.reason.as_deref(),
        Some("RBAC: allowed by ClusterRoleBinding \"ops-edit\" of ClusterRole \"edit\" to Group \"ops\"")
    );
    let answer = api.create(&PostParams::default(), &ask(vec![])).await.expect("created");
    assert!(!answer.status.expect("a status").allowed);

    let attrs = Attributes::from_request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        &Default::default(),
    );
    assert!(sim.authorize(&UserInfo::new("dave", ["ops"]), &attrs).allowed);
    assert!(
        !sim.authorize(&UserInfo::new("dave", Vec::<String>::new()), &attrs)
            .allowed
    );

    // A review that names nobody is invalid, as on a real apiserver.
    let mut nobody = ask(vec![]);
    nobody.spec.user = None;
    match api.create(&PostParams::default(), &nobody).await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (422, "Invalid")),
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test]
async fn impersonated_requests_get_403_forbidden_like_a_real_apiserver() {
    let sim = empty_sim().await;
    namespaces(&sim, &["shop", "payments"]);
    sim.apply(alice_views_shop()).expect("the binding is stored");
    let alice = client_as(&sim, "alice", &[]);

    let shop: Api<ConfigMap> = Api::namespaced(alice.clone(), "shop");
    shop.list(&ListParams::default()).await.expect("alice may list in shop");
    let payments: Api<Pod> = Api::namespaced(alice.clone(), "payments");
    let status = match payments.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected 403, got {other:?}"),
    };
    assert_eq!(
        serde_json::to_value(&*status).expect("JSON"),
        json!({
            "status": "Failure",
            "message": "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"payments\"",
            "reason": "Forbidden", "details": { "kind": "pods" }, "code": 403,
            "metadata": {},
        })
    );
    match payments.watch(&WatchParams::default(), "0").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        Err(other) => panic!("expected 403, got {other:?}"),
        Ok(_) => panic!("expected 403, the watch started"),
    }
    match shop.create(&PostParams::default(), &configmap("mine")).await {
        Err(kube::Error::Api(status)) => assert_eq!(
            status.message,
            "configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"shop\""
        ),
        other => panic!("expected 403, got {other:?}"),
    }
    match shop.delete("absent", &DeleteParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.details.map(|d| d.name)),
            (403, Some("absent".into()))
        ),
        other => panic!("expected 403, got {other:?}"),
    }

    // The same user in a group that may do more.
    sim.apply(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "writers-edit", "namespace": "shop" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "writers" }],
    }))
    .expect("the binding is stored");
    let writer: Api<ConfigMap> = Api::namespaced(client_as(&sim, "alice", &["writers"]), "shop");
    writer
        .create(&PostParams::default(), &configmap("mine"))
        .await
        .expect("writers may create");

    // Requests without impersonation are the administrator's, and never checked.
    let admin: Api<Pod> = Api::namespaced(client(&sim), "payments");
    admin.list(&ListParams::default()).await.expect("the admin may list");
}
