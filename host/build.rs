//! Builds every kind plugin under `plugins/` (but the SDK) for `wasm32-wasip2` and embeds
//! the components in the host (`plugin::bundled`), so one binary works out of the box.

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir)
        .parent()
        .expect("host/ sits in the workspace");
    let plugins = workspace.join("plugins");
    let guests = periscope_build_support::guests_in(&plugins, "periscope-plugin-", &["sdk"]);
    periscope_build_support::build_and_embed(
        workspace,
        &guests,
        &[plugins, workspace.join("wit")],
        "BUNDLED",
        "bundled_plugins.rs",
    );
}
