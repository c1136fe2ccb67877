//! A plugin's failure is its kind's, never the service's (issue 22 item 4, issue 23
//! item 6): a broken plugin file at start, a token clash with a bundled kind, a
//! plugin that traps on one object of a list, and one quarantined while its scope is
//! watched, all over real HTTP against the sim.

use std::time::{Duration, Instant};

use periscope_tests::fixtures;
use periscope_tests::served::{Served, SseClient, patience, serve};
use serde_json::{Value, json};

const CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "flakies.example.com"},
  "spec": {
    "group": "example.com",
    "scope": "Namespaced",
    "names": {"plural": "flakies", "singular": "flaky", "kind": "Flaky"},
    "versions": [{"name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
  }
}"#;

fn flaky(name: &str, value: &str, trap: bool) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Flaky",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"value": value, "trap": trap},
    })
}

/// A plugin directory holding `files` (name, fixture).
fn plugin_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, fixture) in files {
        std::fs::write(dir.path().join(name), fixtures::get(fixture)).unwrap();
    }
    dir
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn features(served: &Served) -> Vec<String> {
    let (_, body) = get_json(&format!("{}/api/features", served.base)).await;
    body["watchStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Names of the items of a snapshot or poll of flakies, with their values.
fn named(items: &Value) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    named.sort();
    named
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_plugin_file_at_start_disables_only_its_kind() {
    let dir = plugin_dir(&[("wrongversion.wasm", "wrongversion"), ("widgets.wasm", "widgets")]);
    let path = dir.path().to_str().unwrap();
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", path)]).await;
    // Every other kind serves, the good plugin beside the broken one included.
    let kinds = features(&served).await;
    assert!(
        kinds.contains(&"widgets".to_string()) && kinds.contains(&"pods".to_string()),
        "{kinds:?}"
    );
    served.sim.apply(periscope_tests::served::pod("shop", "web-0")).unwrap();
    let (status, pods) = get_json(&served.url("pods")).await;
    assert_eq!(status, 200, "{pods}");
    assert_eq!(pods["pods"].as_array().unwrap().len(), 1);
    // Ready, naming the broken file, its reason and the fix.
    let (status, ready) = get_json(&format!("{}/readyz", served.base)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded");
    let failed = ready["failedPlugins"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{ready}");
    assert!(
        failed[0]["source"].as_str().unwrap().ends_with("wrongversion.wasm"),
        "{ready}"
    );
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("targets periscope:plugin@") && error.contains("rebuild the plugin"),
        "{error}"
    );
    let metrics = reqwest::get(format!("{}/metrics", served.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("periscope_plugin_load_failures 1"), "{metrics}");
    served.shutdown().await;

    // `strict` keeps the fail-fast start.
    let env: std::collections::HashMap<String, String> = [
        ("PERISCOPE_PLUGINS_DIR".to_string(), path.to_string()),
        ("PERISCOPE_PLUGINS_STRICT".to_string(), "true".to_string()),
        (
            "PERISCOPE_PLUGINS_CACHE_DIR".to_string(),
            periscope_tests::shared_cache_dir().display().to_string(),
        ),
    ]
    .into();
    let mut config = periscope::config::load(None, &env).unwrap();
    config.listen = ([127, 0, 0, 1], 0).into();
    config.clusters = vec![periscope::config::ClusterConfig {
        name: "test".into(),
        source: periscope::config::ClusterSource::Sim("empty".into()),
    }];
    let error = periscope::serve::App::build(config).await.unwrap_err();
    let message = periscope::cli::error_chain(&error);
    assert!(
        message.contains("wrongversion.wasm") && message.contains("targets periscope:plugin@"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_claiming_a_bundled_kind_is_refused_unless_overridden() {
    let dir = plugin_dir(&[("podtrap.wasm", "podtrap")]);
    let path = dir.path().to_str().unwrap();
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", path)]).await;
    served.sim.apply(periscope_tests::served::pod("shop", "web-0")).unwrap();
    // The bundled pods plugin still serves.
    let (status, pods) = get_json(&served.url("pods")).await;
    assert_eq!(status, 200, "{pods}");
    assert_eq!(pods["pods"][0]["name"], "web-0");
    let (_, ready) = get_json(&format!("{}/readyz", served.base)).await;
    let error = ready["failedPlugins"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("podtrap.wasm") && error.contains("bundled:pods") && error.contains("[plugins] override"),
        "{error}"
    );
    served.shutdown().await;
    // Overridden explicitly: the plugin replaces the bundled kind.
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", path), ("PERISCOPE_PLUGINS_OVERRIDE", "pods")]).await;
    let source = served.hub.registry().get("pods").unwrap().source().to_string();
    assert!(source.ends_with("podtrap.wasm"), "{source}");
    served.shutdown().await;
}

/// Issue 23 item 6: one object that traps in a first list is left out alone, its
/// panic message in the log's error; the others are in the snapshot; the plugin is
/// not quarantined.
#[tokio::test(flavor = "multi_thread")]
async fn one_trapping_object_of_a_first_list_is_left_out_alone() {
    let dir = plugin_dir(&[("flaky.wasm", "flaky")]);
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", dir.path().to_str().unwrap())]).await;
    served.sim.apply(serde_json::from_str(CRD).unwrap()).unwrap();
    for i in 0..12 {
        served.sim.apply(flaky(&format!("f{i:02}"), "ok", i == 5)).unwrap();
    }
    let mut stream = SseClient::connect(&served.url("flakies/watch"), None).await;
    assert_eq!(stream.status, 200);
    let snapshot = stream.expect_json("snapshot").await;
    let names: Vec<String> = named(&snapshot["items"]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 11, "{snapshot}");
    assert!(!names.contains(&"f05".to_string()), "{names:?}");
    let plugin = served.hub.registry().get("flakies").cloned().unwrap();
    let health = plugin.health();
    assert_eq!(health.faults, 1, "the bad object counts once: {health:?}");
    assert!(!health.quarantined);
    // The panic message reaches the host's error.
    let error = plugin
        .to_dto(&flaky("bad", "x", true).to_string(), time::OffsetDateTime::now_utc())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("plugin flakies panicked: flaky bad has spec.trap set (at ") && message.contains("lib.rs:"),
        "{message}"
    );
    served.shutdown().await;
}

/// A plugin quarantined while its scope is watched: the stream gets an `error` frame
/// naming the plugin, every other kind keeps streaming, `/readyz` stays 200 naming
/// the kind, and once the quarantine lifts the scope relists, so a change made
/// during it is in the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn a_quarantined_kind_fails_its_streams_and_loses_no_change() {
    let dir = plugin_dir(&[("flaky.wasm", "flaky")]);
    let served = serve(&[
        ("PERISCOPE_PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("PERISCOPE_PLUGINS_QUARANTINE_FOR", "2s"),
    ])
    .await;
    served.sim.apply(serde_json::from_str(CRD).unwrap()).unwrap();
    served.sim.apply(flaky("keep", "before", false)).unwrap();
    let mut stream = SseClient::connect(&served.url("flakies/watch"), None).await;
    let snapshot = stream.expect_json("snapshot").await;
    assert_eq!(named(&snapshot["items"]), [("keep".to_string(), "before".to_string())]);
    let mut pods = SseClient::connect(&served.url("pods/watch"), None).await;
    pods.expect_json("snapshot").await;

    // Five changes in a row the plugin traps on: quarantined.
    for i in 0..5 {
        served.sim.apply(flaky(&format!("bad{i}"), "x", true)).unwrap();
    }
    let error = loop {
        let event = stream.next().await.expect("an error frame before the end");
        if event.event == "error" {
            break event.data;
        }
    };
    assert!(error.contains("plugin flakies is quarantined"), "{error}");
    assert!(stream.next().await.is_none(), "the stream ends after the error");
    let (status, ready) = get_json(&format!("{}/readyz", served.base)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["quarantinedKinds"], json!(["flakies"]), "{ready}");
    let metrics = reqwest::get(format!("{}/metrics", served.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("periscope_plugin_quarantined{kind=\"flakies\"} 1"),
        "{metrics}"
    );

    // Changes during the quarantine; other kinds keep streaming.
    served.sim.apply(flaky("keep", "during", false)).unwrap();
    served.sim.apply(flaky("new", "during", false)).unwrap();
    for i in 0..5 {
        served
            .sim
            .delete("flakies.example.com", Some("default"), &format!("bad{i}"))
            .unwrap();
    }
    served.sim.apply(periscope_tests::served::pod("shop", "web-0")).unwrap();
    pods.expect_json("added").await;

    // After the rest, the scope relisted: a new stream sees every change.
    let started = Instant::now();
    let expected = vec![
        ("keep".to_string(), "during".to_string()),
        ("new".to_string(), "during".to_string()),
    ];
    loop {
        assert!(started.elapsed() < patience(), "the scope never recovered");
        let mut stream = SseClient::connect(&served.url("flakies/watch"), None).await;
        let event = stream.next().await.expect("a frame");
        if event.event == "snapshot" {
            let snapshot: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(named(&snapshot["items"]), expected, "{snapshot}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, ready) = get_json(&format!("{}/readyz", served.base)).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    served.shutdown().await;
}

/// Runs the command line in-process, as `main` does, and returns its error.
async fn cli(args: &[&str]) -> Result<(), (u8, String)> {
    let line: Vec<String> = std::iter::once("periscope")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    let cli = <periscope::cli::Cli as clap::Parser>::try_parse_from(&line).unwrap();
    tokio::task::spawn_blocking(move || periscope::cli::run(cli))
        .await
        .unwrap()
        .map_err(|error| (error.exit_code(), periscope::cli::error_chain(&error)))
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_check_and_new_refuse_a_bundled_token_unless_told_to_override() {
    let dir = plugin_dir(&[("podtrap.wasm", "podtrap")]);
    let file = dir.path().join("podtrap.wasm");
    let file = file.to_str().unwrap();
    let cache = periscope_tests::shared_cache_dir();
    let cache = cache.to_str().unwrap();
    let (code, message) = cli(&["plugins", "check", file, "--plugin-cache-dir", cache])
        .await
        .unwrap_err();
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("1 problem(s)"), "{message}");
    cli(&[
        "plugins",
        "check",
        file,
        "--plugin-cache-dir",
        cache,
        "--override",
        "pods",
    ])
    .await
    .unwrap();

    let scaffolds = tempfile::tempdir().unwrap();
    let target = scaffolds.path().join("pods");
    let target = target.to_str().unwrap();
    let new = |extra: &'static [&'static str]| {
        let mut args = vec![
            "plugins",
            "new",
            "pods",
            "--group",
            "",
            "--version",
            "v1",
            "--kind",
            "Pod",
        ];
        args.extend(["--dir", target, "--plugin-cache-dir", cache]);
        args.extend(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let args = new(&[]);
    let (code, message) = cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .unwrap_err();
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains("bundled:pods") && message.contains("--override"),
        "{message}"
    );
    assert!(!scaffolds.path().join("pods").exists());
    let args = new(&["--override"]);
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
    assert!(scaffolds.path().join("pods/Cargo.toml").exists());
}
