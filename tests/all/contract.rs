use periscope::plugin::wit;
use periscope_tests::workspace_root;

/// The contract version is written in one place per side and they must agree: the
/// frozen `wit/since_v<X>/` folders each declare `periscope:plugin@<X>`, the newest is
/// the SDK's version (`WIT_VERSION` is its `CARGO_PKG_VERSION`) and the host's
/// `MAX_VERSION`, and both generate their bindings from that folder.
#[test]
fn wit_versions_agree() {
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("wit")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(folder) = name.strip_prefix("since_v") else {
            continue;
        };
        let text = std::fs::read_to_string(path.join("plugin.wit")).unwrap();
        assert!(
            text.contains(&format!("package {}@{folder};", wit::PACKAGE)),
            "wit/{name}/plugin.wit must declare package {}@{folder}",
            wit::PACKAGE
        );
        versions.push(wit::Version::parse(folder).unwrap());
    }
    let newest = versions.into_iter().max().expect("at least one wit/since_v* folder");
    assert_eq!(
        newest.to_string(),
        periscope_plugin_sdk::WIT_VERSION,
        "the SDK builds the newest contract"
    );
    assert_eq!(newest, wit::MAX_VERSION, "the host supports the newest contract");
    assert!(wit::MIN_VERSION <= wit::MAX_VERSION);
    for (file, path) in [
        ("plugins/sdk/src/lib.rs", format!("../../wit/since_v{newest}")),
        ("host/src/plugin/wit.rs", format!("../wit/since_v{newest}")),
    ] {
        let source = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        assert!(source.contains(&path), "{file} must generate bindings from {path}");
    }
}
