//! Builds the hostile fixture components under `tests/fixtures/` and the example plugins
//! under `examples/` for wasm32-wasip2 and embeds them as `FIXTURES` and `EXAMPLES`
//! (never in the host binary).

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir).parent().expect("tests/ sits in the workspace");
    println!("cargo:rerun-if-changed=build.rs");
    let fixtures = Path::new(&manifest_dir).join("fixtures");
    let guests = periscope_build_support::guests_in(&fixtures, "periscope-fixture-", &[]);
    periscope_build_support::build_and_embed(
        workspace,
        &guests,
        &[fixtures, workspace.join("wit"), workspace.join("plugins/sdk")],
        "FIXTURES",
        "fixtures.rs",
    );
    let examples = workspace.join("examples");
    let guests = periscope_build_support::guests_in(&examples, "periscope-plugin-", &[]);
    periscope_build_support::build_and_embed(
        workspace,
        &guests,
        &[examples, workspace.join("wit"), workspace.join("plugins/sdk")],
        "EXAMPLES",
        "examples.rs",
    );
}
