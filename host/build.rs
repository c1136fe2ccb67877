//! Builds every kind plugin under `plugins/` (but the SDK) for `wasm32-wasip2` and embeds
//! the components in the host (`plugin::BUNDLED`), in the registry order of
//! `plugins/order.txt`, so one binary works out of the box.

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir).parent().expect("host/ sits in the workspace");
    let plugins = workspace.join("plugins");
    let found = periscope_build_support::guests_in(&plugins, "periscope-plugin-", &["sdk"]);
    let order_file = plugins.join("order.txt");
    let order =
        std::fs::read_to_string(&order_file).unwrap_or_else(|e| panic!("cannot read {}: {e}", order_file.display()));
    let order: Vec<&str> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut guests = Vec::new();
    for name in &order {
        match found.iter().find(|g| g.name == *name) {
            Some(guest) => guests.push(guest.clone()),
            None => panic!("plugins/order.txt lists {name:?} but there is no plugins/{name}/Cargo.toml"),
        }
    }
    if let Some(missing) = found.iter().find(|g| !order.contains(&g.name.as_str())) {
        panic!(
            "plugins/{} is not listed in plugins/order.txt; add it where /api/features should list it",
            missing.name
        );
    }
    periscope_build_support::build_and_embed(
        workspace,
        &guests,
        &[plugins, workspace.join("wit")],
        "BUNDLED",
        "bundled_plugins.rs",
    );
}
