//! CustomResourceDefinitions with a real kubectl and kube-rs: a definition applied with
//! `kubectl apply` is served at once (discovery, list, watch, create, patch, delete, in
//! its scope), and deleting it deletes its objects and stops serving them.

use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, WatchEvent, WatchParams};
use serde_json::Value;

use crate::support::{Kubectl, client, empty_sim, within};

const WIDGETS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

const GADGETS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names:
    plural: gadgets
    kind: Gadget
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

fn widget(name: &str, size: u32) -> String {
    format!(
        "apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
  labels:
    app: demo
spec:
  size: {size}
"
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}): {text}"))
}

fn condition<'a>(crd: &'a Value, kind: &str) -> Option<&'a Value> {
    crd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[tokio::test]
async fn a_crd_applied_with_kubectl_is_served_until_deleted() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    // Warm kubectl's discovery cache first, so the new group must be discovered anew.
    kubectl.run(&["api-resources"]).await;
    let crd_file = kubectl.file("widgets-crd.yaml", WIDGETS);
    let out = kubectl.run(&["apply", "-f", &crd_file]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{out}"
    );

    let crd = json(&kubectl.run(&["get", "crd", "widgets.example.com", "-o", "json"]).await);
    for kind in ["Established", "NamesAccepted"] {
        assert_eq!(
            condition(&crd, kind).map(|c| c["status"].clone()),
            Some("True".into()),
            "{kind}: {crd}"
        );
    }
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    kubectl
        .run(&[
            "wait",
            "--for",
            "condition=established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ])
        .await;

    let resources = kubectl.run(&["api-resources", "--api-group=example.com"]).await;
    let line = resources.lines().find(|l| l.starts_with("widgets")).unwrap_or_default();
    assert!(
        line.split_whitespace().collect::<Vec<_>>() == ["widgets", "wd", "example.com/v1", "true", "Widget"],
        "{resources}"
    );

    // Create, read by short name, patch (main resource and status), delete.
    let file = kubectl.file("w1.yaml", &widget("w1", 1));
    let out = kubectl.run(&["apply", "-f", &file]).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let list = kubectl.run(&["get", "widgets"]).await;
    assert!(list.lines().nth(1).is_some_and(|l| l.starts_with("w1 ")), "{list}");
    let w1 = json(&kubectl.run(&["get", "wd", "w1", "-o", "json"]).await);
    assert_eq!(
        (w1["spec"]["size"].clone(), w1["metadata"]["namespace"].clone()),
        (1.into(), "default".into())
    );
    assert_eq!(w1["metadata"]["generation"], 1);

    kubectl
        .run(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":3}}"#,
        ])
        .await;
    kubectl
        .run(&[
            "patch",
            "widget",
            "w1",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"ready":true}}"#,
        ])
        .await;
    let w1 = json(&kubectl.run(&["get", "widget.example.com", "w1", "-o", "json"]).await);
    assert_eq!(w1["spec"]["size"], 3);
    assert_eq!(w1["metadata"]["generation"], 2);
    assert_eq!(w1["status"]["ready"], true);
    let again = kubectl.file("w1-again.yaml", &widget("w1", 4));
    assert!(
        kubectl
            .run(&["apply", "-f", &again])
            .await
            .contains("widget.example.com/w1 configured")
    );
    let w1 = json(&kubectl.run(&["get", "widget", "w1", "-o", "json"]).await);
    assert_eq!(w1["spec"]["size"], 4);
    assert_eq!(w1["status"]["ready"], true, "the main resource keeps the status");

    kubectl.run(&["delete", "widget", "w1"]).await;
    let output = kubectl.output(&["get", "widgets"]).await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("No resources found"));

    // Deleting the definition deletes its objects and stops serving the resource.
    kubectl.run(&["apply", "-f", &file]).await;
    kubectl.run(&["delete", "crd", "widgets.example.com"]).await;
    assert!(sim.objects("widgets.example.com", None).is_err(), "no longer served");
    let raw = kubectl
        .output(&["get", "--raw", "/apis/example.com/v1/namespaces/default/widgets"])
        .await;
    assert!(!raw.status.success());
    assert!(String::from_utf8_lossy(&raw.stderr).contains("NotFound"), "{raw:?}");
    // kubectl's discovery cache still lists widgets, so it asks and is told 404, as a
    // real apiserver would answer it.
    let output = kubectl.output(&["get", "widgets"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the server could not find the requested resource")
            || stderr.contains(r#"the server doesn't have a resource type "widgets""#),
        "{stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_cluster_scoped_crd_serves_objects_outside_namespaces() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    kubectl
        .run(&["apply", "-f", &kubectl.file("gadgets-crd.yaml", GADGETS)])
        .await;
    let gadget = "apiVersion: example.com/v1beta1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  colour: red\n";
    kubectl.run(&["apply", "-f", &kubectl.file("g1.yaml", gadget)]).await;
    let g1 = json(&kubectl.run(&["get", "gadget", "g1", "-o", "json"]).await);
    assert_eq!(g1["apiVersion"], "example.com/v1beta1");
    assert!(g1["metadata"].get("namespace").is_none(), "{g1}");
    let resources = kubectl
        .run(&["api-resources", "--namespaced=false", "--api-group=example.com"])
        .await;
    assert!(resources.contains("gadgets"), "{resources}");
    assert!(kubectl.run(&["get", "gadgets", "-A"]).await.contains("g1"));
    // A definition whose name does not match its names is refused, as by a real
    // apiserver.
    let wrong = GADGETS.replace("name: gadgets.example.com", "name: gizmos.example.com");
    let output = kubectl
        .output(&["apply", "-f", &kubectl.file("wrong.yaml", &wrong)])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("must be spec.names.plural+\".\"+spec.group"),
        "{stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_kube_watch_on_a_custom_resource_sees_changes_and_ends_with_the_crd() {
    let sim = empty_sim().await;
    let kubectl = Kubectl::new(&sim);
    kubectl
        .run(&["apply", "-f", &kubectl.file("widgets-crd.yaml", WIDGETS)])
        .await;
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client(&sim), "default", &resource);
    let list = api.list(&Default::default()).await.expect("custom resources list");
    assert!(list.items.is_empty());
    let version = list.metadata.resource_version.unwrap_or_default();
    let mut events = api
        .watch(&WatchParams::default(), &version)
        .await
        .expect("custom resources watch")
        .boxed();
    // The next event other than a bookmark, as (type, name).
    let mut next = async || -> Option<(String, String)> {
        loop {
            let event = within("a watch event", events.try_next())
                .await
                .expect("the watch stream is sound")?;
            return Some(match event {
                WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.unwrap_or_default()),
                WatchEvent::Modified(o) => ("MODIFIED".into(), o.metadata.name.unwrap_or_default()),
                WatchEvent::Deleted(o) => ("DELETED".into(), o.metadata.name.unwrap_or_default()),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watch error: {e:?}"),
            });
        }
    };
    kubectl
        .run(&["apply", "-f", &kubectl.file("w1.yaml", &widget("w1", 1))])
        .await;
    assert_eq!(next().await, Some(("ADDED".into(), "w1".into())));
    kubectl.run(&["label", "widget", "w1", "tier=gold"]).await;
    assert_eq!(next().await, Some(("MODIFIED".into(), "w1".into())));
    kubectl.run(&["delete", "crd", "widgets.example.com"]).await;
    assert_eq!(next().await, Some(("DELETED".into(), "w1".into())));
    assert_eq!(
        next().await,
        None,
        "the watch ends when its resource is no longer served"
    );
    let gone = api.list(&Default::default()).await.expect_err("no longer served");
    assert!(matches!(gone, kube::Error::Api(ref s) if s.code == 404), "{gone:?}");
    sim.shutdown().await;
}
