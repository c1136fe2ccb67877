use std::time::{Duration, Instant};

use periscope::plugin::{CallError, LoadError, PluginRuntime, RuntimeOptions, Source};
use periscope_tests::{fixtures, golden_now, runtime, test_options};

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","creationTimestamp":"2026-05-01T10:00:00Z"},"spec":{"containers":[{"name":"app"}]},"status":{"phase":"Running","containerStatuses":[{"ready":true,"restartCount":2,"state":{"running":{}}}]}}"#;

fn load_fixture(runtime: &PluginRuntime, name: &str) -> Result<std::sync::Arc<periscope::plugin::Plugin>, LoadError> {
    runtime.load(Source::Bundled(format!("fixture:{name}")), fixtures::get(name))
}

fn assert_pods_still_map(runtime: &PluginRuntime) {
    let pods = runtime
        .load_bundled()
        .unwrap()
        .into_iter()
        .find(|p| p.info().token == "pods")
        .unwrap();
    let dto: serde_json::Value = serde_json::from_str(&pods.to_dto(POD, golden_now()).unwrap()).unwrap();
    assert_eq!(dto["phase"], "Running");
    assert_eq!(dto["restarts"], 2);
}

#[test]
fn an_infinite_loop_fails_its_call_within_the_deadline_and_the_plugin_recovers() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "looping").unwrap();
    let started = Instant::now();
    let error = plugin.to_dto(r#"{"loop":true}"#, golden_now()).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, CallError::Timeout { .. }), "{error:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(error.to_string().contains("deadline"), "{error}");
    // A fresh instance replaces the interrupted one.
    assert_eq!(plugin.to_dto("{}", golden_now()).unwrap(), "{}");
    assert_pods_still_map(&runtime);
}

#[test]
fn a_memory_bomb_hits_the_cap_and_fails_only_its_call() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "membomb").unwrap();
    let error = plugin.to_dto(r#"{"bomb":true}"#, golden_now()).unwrap_err();
    assert!(
        matches!(error, CallError::OutOfMemory { cap_bytes, .. } if cap_bytes == test_options().memory_cap),
        "{error:?}"
    );
    assert!(error.to_string().contains("memory cap"), "{error}");
    assert_eq!(plugin.to_dto("{}", golden_now()).unwrap(), "{}");
    assert_pods_still_map(&runtime);
}

#[test]
fn a_trap_fails_its_call_and_the_instance_is_replaced() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "trapping").unwrap();
    let error = plugin.to_dto(r#"{"trap":true}"#, golden_now()).unwrap_err();
    assert!(matches!(error, CallError::Trap { .. }), "{error:?}");
    assert_eq!(plugin.to_dto("{}", golden_now()).unwrap(), "{}");
    assert_eq!(plugin.health().faults, 1);
    assert_eq!(plugin.health().consecutive_faults, 0);
}

#[test]
fn one_bad_object_in_a_batch_fails_alone() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "trapping").unwrap();
    let objects: Vec<String> = ["{}", r#"{"trap":1}"#, "{}"].map(String::from).to_vec();
    let results = plugin.to_dto_batch(&objects, golden_now());
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(CallError::Trap { .. })));
}

#[test]
fn invalid_utf8_output_fails_the_call_with_a_clear_error() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "badutf8").unwrap();
    let error = plugin.to_dto("{}", golden_now()).unwrap_err();
    assert!(matches!(error, CallError::Failed { .. }), "{error:?}");
    let chain = periscope::cli::error_chain(&error);
    assert!(chain.contains("utf-8") || chain.contains("UTF-8"), "{chain}");
    assert_pods_still_map(&runtime);
}

#[test]
fn output_that_is_not_json_is_refused() {
    let runtime = runtime();
    let plugin = load_fixture(&runtime, "notjson").unwrap();
    let error = plugin.to_dto("{}", golden_now()).unwrap_err();
    assert!(matches!(error, CallError::InvalidOutput { .. }), "{error:?}");
    assert!(error.to_string().contains("not a JSON object"), "{error}");
}

#[test]
fn a_plugin_importing_the_filesystem_is_refused_at_load() {
    let error = load_fixture(&runtime(), "fsreader").unwrap_err();
    assert!(matches!(error, LoadError::ForbiddenImport { .. }), "{error:?}");
    assert!(error.to_string().contains("wasi:filesystem/"), "{error}");
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_naming_both_versions() {
    let error = load_fixture(&runtime(), "wrongversion").unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, LoadError::IncompatibleVersion { .. }), "{error:?}");
    assert!(
        message.contains("periscope:plugin@0.9.0") && message.contains("0.1.0"),
        "{message}"
    );
}

#[test]
fn repeated_faults_quarantine_the_plugin_but_not_the_others() {
    let runtime = PluginRuntime::new(RuntimeOptions {
        quarantine_after: 3,
        quarantine_for: Duration::from_secs(60),
        ..test_options()
    })
    .unwrap();
    let plugin = load_fixture(&runtime, "trapping").unwrap();
    for _ in 0..3 {
        assert!(matches!(
            plugin.to_dto(r#"{"trap":1}"#, golden_now()),
            Err(CallError::Trap { .. })
        ));
    }
    let error = plugin.to_dto("{}", golden_now()).unwrap_err();
    assert!(matches!(error, CallError::Quarantined { failures: 3, .. }), "{error:?}");
    assert!(plugin.health().quarantined);
    assert_pods_still_map(&runtime);
}

#[test]
fn a_warm_cache_compiles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..test_options()
    };
    let cold = PluginRuntime::new(options.clone()).unwrap();
    let count = cold.load_bundled().unwrap().len();
    assert_eq!(cold.cache_stats().compiled(), count);
    assert_eq!(cold.cache_stats().loaded_from_cache(), 0);

    let warm = PluginRuntime::new(options).unwrap();
    warm.load_bundled().unwrap();
    assert_eq!(warm.cache_stats().compiled(), 0, "a warm start must not compile");
    assert_eq!(warm.cache_stats().loaded_from_cache(), count);
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..test_options()
    };
    let (name, bytes) = periscope::plugin::BUNDLED[0];
    PluginRuntime::new(options.clone())
        .unwrap()
        .load(Source::Bundled(name.into()), bytes)
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let runtime = PluginRuntime::new(options).unwrap();
    let plugin = runtime.load(Source::Bundled(name.into()), bytes).unwrap();
    assert_eq!(runtime.cache_stats().compiled(), 1);
    assert_eq!(runtime.cache_stats().loaded_from_cache(), 0);
    assert_eq!(plugin.info().token, name);
}

#[test]
fn a_plugin_directory_adds_kinds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trapping.wasm"), fixtures::get("trapping")).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();
    let plugins = runtime().load_all(Some(dir.path()), &[]).unwrap();
    let added = plugins.last().unwrap();
    assert_eq!(added.info().token, "trapping");
    assert_eq!(added.source(), &Source::File(dir.path().join("trapping.wasm")));
    assert!(plugins.iter().any(|p| p.info().token == "pods"));
}

#[test]
fn the_same_kind_twice_in_the_plugin_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.wasm"), fixtures::get("notjson")).unwrap();
    std::fs::write(dir.path().join("b.wasm"), fixtures::get("notjson")).unwrap();
    let error = runtime().load_all(Some(dir.path()), &[]).unwrap_err();
    assert!(matches!(error, LoadError::DuplicateKind { .. }), "{error:?}");
    assert!(
        error.to_string().contains("a.wasm") && error.to_string().contains("b.wasm"),
        "{error}"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let error = runtime()
        .load(Source::Bundled("garbage".into()), b"\0asm garbage")
        .unwrap_err();
    assert!(matches!(error, LoadError::Compile { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not a valid WebAssembly component"),
        "{error}"
    );
}
