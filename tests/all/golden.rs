use periscope::plugin::BUNDLED;
use periscope::plugin::Source;
use periscope_tests::{examples, runtime, workspace_root};

/// Runs every `golden/*.k8s.json` of every bundled plugin through its component, with
/// the host's stripping (`periscope_golden::run`, the runner the SDK and
/// `periscope plugins check` use), and compares with the `.dto.json` beside it. A
/// plugin without golden cases fails the test.
#[test]
fn every_bundled_plugin_reproduces_its_golden_cases() {
    let runtime = runtime();
    let plugins = runtime.load_bundled().expect("bundled plugins load");
    assert_eq!(plugins.len(), BUNDLED.len());
    let bless = periscope_golden::bless_requested();
    let mut details = String::new();
    let mut cases = 0;
    for plugin in &plugins {
        let dir = workspace_root()
            .join("plugins")
            .join(&plugin.info().token)
            .join("golden");
        let report = periscope_golden::run(&dir, plugin.as_ref(), bless);
        assert!(report.cases > 0, "plugin {} has no golden cases", plugin.info().token);
        cases += report.cases;
        details.push_str(&report.details());
    }
    assert!(
        details.is_empty(),
        "{details}\nIf the new output is correct, run: PERISCOPE_BLESS=1 cargo test -p periscope-tests golden"
    );
    assert!(cases >= BUNDLED.len(), "only {cases} golden cases");
}

/// The example plugins under `examples/` (a CRD kind) pass their golden cases through
/// their real components too.
#[test]
fn every_example_plugin_reproduces_its_golden_cases() {
    let runtime = runtime();
    assert!(!examples::EXAMPLES.is_empty());
    for (name, bytes) in examples::EXAMPLES {
        let plugin = runtime
            .load(Source::Bundled(format!("examples/{name}")), bytes)
            .expect("the example loads");
        let dir = workspace_root().join("examples").join(name).join("golden");
        let report = periscope_golden::run(&dir, plugin.as_ref(), periscope_golden::bless_requested());
        assert!(report.cases > 0, "example {name} has no golden cases");
        assert!(report.passed(), "{}", report.details());
    }
}

/// The hub strips list items as text (`strip_raw`) and the golden runner's oracle and
/// `periscope plugins map` strip a parsed `Value` (`strip`): with each bundled plugin's
/// own field paths, the two give the same object on every golden input.
#[test]
fn text_and_parsed_stripping_agree_with_every_plugins_paths() {
    let runtime = runtime();
    let mut objects = 0;
    for plugin in runtime.load_bundled().expect("bundled plugins load") {
        let fields = &plugin.info().fields;
        let dir = workspace_root()
            .join("plugins")
            .join(&plugin.info().token)
            .join("golden");
        for case in periscope_golden::cases(&dir).expect("golden directory") {
            let text = std::fs::read_to_string(&case.input).expect("readable");
            let input: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let items = match input.get("items").and_then(|i| i.as_array()) {
                Some(items) => items.clone(),
                None => vec![input],
            };
            for item in items {
                let mut parsed = item.clone();
                periscope_golden::strip(&mut parsed, fields);
                let stripped = periscope_golden::strip_raw(&item.to_string(), fields).expect("JSON");
                let from_text: serde_json::Value = serde_json::from_str(&stripped.json).expect("JSON");
                assert_eq!(from_text, parsed, "{}", case.input.display());
                objects += 1;
            }
        }
    }
    assert!(objects > 100, "only {objects} golden objects");
}
