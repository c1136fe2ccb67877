//! Test harness for periscope's integration tests: the hostile fixture components,
//! paths into the workspace and a plugin runtime that shares one component cache
//! across tests, so each component is compiled once per test run.

use std::path::{Path, PathBuf};

use periscope::plugin::{PluginRuntime, RuntimeOptions};

/// Hostile fixture components built from `tests/fixtures/*`.
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

    /// The component of fixture `name`; panics when there is none.
    pub fn get(name: &str) -> &'static [u8] {
        FIXTURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bytes)| *bytes)
            .unwrap_or_else(|| panic!("no fixture {name:?} in tests/fixtures"))
    }
}

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
}

/// A component cache shared by every test of this run (under the target directory).
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// Runtime options for tests: the shared cache and short limits so hostile plugins
/// fail fast.
pub fn test_options() -> RuntimeOptions {
    RuntimeOptions {
        call_deadline: std::time::Duration::from_millis(300),
        memory_cap: 32 << 20,
        cache_dir: Some(shared_cache_dir()),
        ..RuntimeOptions::default()
    }
}

/// A runtime with [`test_options`].
pub fn runtime() -> PluginRuntime {
    PluginRuntime::new(test_options()).expect("the plugin runtime starts")
}

/// The instant every golden case is mapped at (`periscope_plugin_sdk::golden::GOLDEN_NOW`).
pub fn golden_now() -> time::OffsetDateTime {
    time::OffsetDateTime::parse("2026-05-01T12:00:00Z", &time::format_description::well_known::Rfc3339)
        .expect("a valid RFC 3339 literal")
}
