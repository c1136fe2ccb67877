//! The kinds grammar (`watch.streams`, `periscope kinds resolve`): never panics, and
//! whatever it enables is a registered kind.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use periscope::kinds::Registry;
use periscope::plugin::{PluginRuntime, RuntimeOptions};

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).expect("the runtime starts");
    Registry::new(runtime.load_bundled().expect("bundled plugins load")).expect("a registry")
});

fuzz_target!(|expression: &str| {
    if let Ok(enabled) = REGISTRY.resolve(expression) {
        for token in enabled.tokens() {
            assert!(
                REGISTRY.get(token).is_some(),
                "{expression:?} enabled unknown {token:?}"
            );
        }
    }
});
