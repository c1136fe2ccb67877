use periscope::kinds::Registry;
use periscope_tests::{fixtures, runtime};

#[test]
fn the_bundled_registry_has_22_kinds_and_5_groups_in_spec_order() {
    let registry = Registry::new(runtime().load_bundled().unwrap()).unwrap();
    let tokens = registry.catalog().tokens.join(",");
    assert_eq!(
        tokens,
        "pods,events,deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs,horizontalpodautoscalers,\
         poddisruptionbudgets,services,ingresses,networkpolicies,endpointslices,ingressclasses,pvs,pvcs,\
         storageclasses,nodes,namespaces,priorityclasses,runtimeclasses"
    );
    let groups: Vec<&str> = registry.catalog().groups.keys().map(String::as_str).collect();
    assert_eq!(groups, ["cluster", "core", "networking", "storage", "workloads"]);
    assert_eq!(registry.resolve("core").unwrap().tokens(), ["pods", "events"]);
    assert_eq!(
        registry.resolve("storage").unwrap().tokens(),
        ["pvs", "pvcs", "storageclasses"]
    );
}

#[test]
fn a_plugin_from_the_plugin_directory_joins_the_group_it_declares() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("widgets.wasm"), fixtures::get("widgets")).unwrap();
    let registry = Registry::new(runtime().load_all(Some(dir.path()), &[]).unwrap()).unwrap();
    let workloads = registry.resolve("workloads").unwrap();
    assert_eq!(workloads.tokens().len(), 9);
    assert_eq!(workloads.tokens().last().unwrap(), "widgets");
    assert!(registry.resolve("widgets").unwrap().contains("widgets"));
    assert!(!registry.resolve("core").unwrap().contains("widgets"));
    let dto = registry
        .get("widgets")
        .unwrap()
        .to_dto(
            r#"{"metadata":{"name":"w","namespace":"n"}}"#,
            periscope_tests::golden_now(),
        )
        .unwrap();
    assert_eq!(dto, r#"{"name":"w","namespace":"n"}"#);
}
