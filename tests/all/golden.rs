use std::path::{Path, PathBuf};

use periscope::plugin::{BUNDLED, Plugin};
use periscope::snapshot;
use periscope_tests::{golden_now, runtime, workspace_root};

/// Runs every `golden/*.k8s.json` of every bundled plugin through its component (a
/// `…List` input gives the ordered, capped snapshot array) and compares with the
/// `.dto.json` beside it. A plugin without golden cases fails the test.
#[test]
fn every_bundled_plugin_reproduces_its_golden_cases() {
    let runtime = runtime();
    let plugins = runtime.load_bundled().expect("bundled plugins load");
    assert_eq!(plugins.len(), BUNDLED.len());
    let bless = std::env::var_os("PERISCOPE_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for plugin in &plugins {
        let dir = workspace_root()
            .join("plugins")
            .join(&plugin.info().token)
            .join("golden");
        let cases = golden_cases(&dir);
        assert!(
            !cases.is_empty(),
            "plugin {} has no golden cases in {}",
            plugin.info().token,
            dir.display()
        );
        for input_path in cases {
            let expected_path = PathBuf::from(input_path.to_string_lossy().replace(".k8s.json", ".dto.json"));
            let actual = map_case(plugin, &input_path);
            if bless {
                std::fs::write(&expected_path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
                continue;
            }
            let expected: serde_json::Value = std::fs::read_to_string(&expected_path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            if expected != actual {
                failures.push(format!(
                    "golden mismatch: {}\n--- expected\n{}\n+++ actual\n{}",
                    expected_path.display(),
                    serde_json::to_string_pretty(&expected).unwrap(),
                    serde_json::to_string_pretty(&actual).unwrap()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the new output is correct, run: PERISCOPE_BLESS=1 cargo test -p periscope-tests golden",
        failures.join("\n")
    );
}

fn golden_cases(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    cases.retain(|p| p.to_string_lossy().ends_with(".k8s.json"));
    cases.sort();
    cases
}

/// The DTO (or snapshot array) of one case, or `{"error": …}` when mapping fails.
fn map_case(plugin: &Plugin, input_path: &Path) -> serde_json::Value {
    let input = std::fs::read_to_string(input_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&input).unwrap();
    let is_list = value["kind"].as_str().is_some_and(|k| k.ends_with("List"));
    if !is_list {
        return match plugin.to_dto(&input, golden_now()) {
            Ok(dto) => serde_json::from_str(&dto).unwrap(),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
    }
    let objects: Vec<String> = value["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let dtos: Vec<String> = plugin
        .to_dto_batch(&objects, golden_now())
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string()))
        .collect();
    let ordered = snapshot::apply(plugin.info().snapshot.as_ref(), dtos, String::as_str);
    ordered
        .iter()
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap())
        .collect()
}
