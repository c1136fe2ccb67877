//! Golden-file checks for a [`Mapper`], run natively from a plugin's unit tests.
//!
//! Each case is `golden/<case>.k8s.json` (a raw object, as the apiserver returns it)
//! beside `golden/<case>.dto.json` (the expected DTO). Cases map with
//! [`GOLDEN_NOW`] as the current time. `…List` inputs (snapshot order and cap) are
//! checked by the host's golden test, which runs every case through the real
//! component; here they are skipped. Set `PERISCOPE_BLESS=1` to write the actual
//! output as the new expectation.

use std::path::Path;

use crate::{Context, Mapper, Timestamp};

/// The current time every golden case is mapped at.
pub const GOLDEN_NOW: &str = "2026-05-01T12:00:00Z";

/// Maps every single-object case in `dir` and panics with a readable diff listing each
/// mismatch; panics too when `dir` holds no case at all.
pub fn check<M: Mapper>(dir: &Path) {
    let ctx = Context {
        now: Timestamp::parse(GOLDEN_NOW).expect("GOLDEN_NOW is valid RFC 3339"),
    };
    let bless = std::env::var_os("PERISCOPE_BLESS").is_some_and(|v| v == "1");
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read golden directory {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".k8s.json"))
        .collect();
    entries.sort();
    for input_path in entries {
        let input = std::fs::read_to_string(&input_path).expect("golden input is readable");
        let value: serde_json::Value =
            serde_json::from_str(&input).unwrap_or_else(|e| panic!("{}: not JSON: {e}", input_path.display()));
        if value
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k.ends_with("List"))
        {
            continue;
        }
        cases += 1;
        let expected_path = input_path.with_file_name(
            input_path
                .file_name()
                .expect("has a name")
                .to_string_lossy()
                .replace(".k8s.json", ".dto.json"),
        );
        let actual = match M::map_json(&input, &ctx) {
            Ok(json) => serde_json::from_str::<serde_json::Value>(&json).expect("DTO is JSON"),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let actual_text = serde_json::to_string_pretty(&actual).expect("a Value serializes") + "\n";
        if bless {
            std::fs::write(&expected_path, &actual_text).expect("golden output is writable");
            continue;
        }
        let expected: serde_json::Value = std::fs::read_to_string(&expected_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(serde_json::Value::Null);
        if expected != actual {
            let expected_text = serde_json::to_string_pretty(&expected).expect("a Value serializes");
            failures.push(format!(
                "golden mismatch: {}\n--- expected\n{expected_text}\n+++ actual\n{actual_text}",
                expected_path.display()
            ));
        }
    }
    assert!(cases > 0, "no golden cases in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{}\nIf the new output is correct, run: PERISCOPE_BLESS=1 cargo test -p <plugin crate>",
        failures.join("\n")
    );
}
