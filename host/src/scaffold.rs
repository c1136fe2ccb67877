//! `periscope plugins new`: writes a kind plugin crate that builds on its own, outside
//! this repository, with `cargo build --release --target wasm32-wasip2`.
//!
//! **How the crate finds the SDK.** It depends on `periscope-plugin-sdk` by path, into
//! a checkout of this repository: by default the one this binary was built from
//! (`CARGO_MANIFEST_DIR/../plugins/sdk`, compiled in), or `--sdk <dir>`. The SDK is
//! small and versioned with the WIT contract, but it is not on crates.io yet, and a
//! path keeps the plugin on exactly the contract the checkout's host loads. The
//! checkout's `Cargo.lock` and `rust-toolchain.toml` are copied into the crate, so it
//! resolves the versions the checkout was tested with from the local registry cache
//! (`cargo build --offline` works once the checkout has been built) and uses the
//! toolchain that has the `wasm32-wasip2` target. Moving the crate elsewhere means
//! editing one `path`; a git dependency works the same way (see the README it writes).
//!
//! What it is not: a general project generator. It writes one sample mapping (name,
//! namespace, creation time and the `Ready` condition) that builds, passes its golden
//! case and is meant to be edited.

use std::path::{Path, PathBuf};

/// What `periscope plugins new` was asked for.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// Resource plural, the URL token (`certificates`).
    pub plural: String,
    /// Kubernetes API group; empty for the core group (`cert-manager.io`).
    pub group: String,
    /// Kubernetes API version (`v1`).
    pub version: String,
    /// Kubernetes kind (`Certificate`).
    pub kind: String,
    /// Whether objects live outside namespaces.
    pub cluster_scoped: bool,
    /// Group alias the kind joins (`custom`).
    pub alias: String,
    /// The crate's directory, created (it may exist if empty).
    pub dir: PathBuf,
    /// The SDK crate directory the new crate depends on.
    pub sdk: PathBuf,
}

/// Why the crate could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// An argument is not usable.
    #[error("{0}")]
    Invalid(String),
    /// Writing failed.
    #[error("cannot write {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The SDK of the checkout this binary was built from, if it is still there.
pub fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Writes the crate; returns the files written, relative to `new.dir`.
pub fn write(new: &NewPlugin) -> Result<Vec<PathBuf>, ScaffoldError> {
    validate(new)?;
    let sdk = new.sdk.canonicalize().map_err(|_| {
        ScaffoldError::Invalid(format!(
            "no periscope-plugin-sdk at {}; pass --sdk <checkout>/plugins/sdk",
            new.sdk.display()
        ))
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::Invalid(format!(
            "{} is not the periscope-plugin-sdk crate (no Cargo.toml); pass --sdk <checkout>/plugins/sdk",
            sdk.display()
        )));
    }
    if new.dir.exists()
        && std::fs::read_dir(&new.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Invalid(format!(
            "{} exists and is not empty; pick another --dir",
            new.dir.display()
        )));
    }
    let checkout = sdk.parent().and_then(Path::parent);
    let mut files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), cargo_toml(new, &sdk)),
        ("src/lib.rs".into(), lib_rs(new)),
        ("golden/sample.k8s.json".into(), sample_object(new)),
        ("golden/sample.dto.json".into(), sample_dto(new)),
        ("README.md".into(), readme(new, &sdk)),
        (".gitignore".into(), "/target\n".into()),
    ];
    for name in ["Cargo.lock", "rust-toolchain.toml"] {
        if let Some(text) = checkout.and_then(|c| std::fs::read_to_string(c.join(name)).ok()) {
            files.push((name.into(), text));
        }
    }
    for (path, text) in &files {
        let full = new.dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&full, text).map_err(|source| ScaffoldError::Write { path: full, source })?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// The component file `cargo build --release --target wasm32-wasip2` produces.
pub fn component_path(new: &NewPlugin) -> PathBuf {
    new.dir
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name(&new.plural).replace('-', "_")))
}

fn crate_name(plural: &str) -> String {
    format!("periscope-plugin-{plural}")
}

fn validate(new: &NewPlugin) -> Result<(), ScaffoldError> {
    let token = |s: &str| {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !token(&new.plural) {
        return Err(ScaffoldError::Invalid(format!(
            "plural {:?} must be lowercase letters, digits and dashes, starting with a letter (the resource's plural, e.g. certificates)",
            new.plural
        )));
    }
    if !token(&new.alias) {
        return Err(ScaffoldError::Invalid(format!(
            "--alias {:?} must be lowercase letters, digits and dashes",
            new.alias
        )));
    }
    if new.alias == new.plural {
        return Err(ScaffoldError::Invalid(format!(
            "--alias {:?} equals the plural; a kind token cannot also be a group alias",
            new.alias
        )));
    }
    let kind_ok =
        new.kind.starts_with(|c: char| c.is_ascii_uppercase()) && new.kind.bytes().all(|b| b.is_ascii_alphanumeric());
    if !kind_ok {
        return Err(ScaffoldError::Invalid(format!(
            "--kind {:?} must be the Kubernetes kind in PascalCase (letters and digits), e.g. Certificate",
            new.kind
        )));
    }
    let version_ok = new.version.starts_with('v') && new.version.bytes().all(|b| b.is_ascii_alphanumeric());
    if !version_ok {
        return Err(ScaffoldError::Invalid(format!(
            "--version {:?} must be a Kubernetes API version such as v1 or v1beta1",
            new.version
        )));
    }
    let group_ok = new
        .group
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !group_ok {
        return Err(ScaffoldError::Invalid(format!(
            "--group {:?} must be an API group such as cert-manager.io (empty for the core group)",
            new.group
        )));
    }
    Ok(())
}

fn api_version(new: &NewPlugin) -> String {
    if new.group.is_empty() {
        new.version.clone()
    } else {
        format!("{}/{}", new.group, new.version)
    }
}

fn cargo_toml(new: &NewPlugin, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "Periscope kind plugin: {api_version} {kind}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# The cdylib is the component; the rlib lets unit tests call the mapping natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
# A checkout of Periscope; see README.md for other ways to get the SDK.
periscope-plugin-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
serde_json = "1"

# Not part of any enclosing workspace.
[workspace]

# Small and fast; a panic aborts, which the host sees as a trap it survives.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"#,
        name = crate_name(&new.plural),
        api_version = api_version(new),
        kind = new.kind,
        sdk = sdk.display().to_string().replace('\\', "/"),
    )
}

fn lib_rs(new: &NewPlugin) -> String {
    let kind = &new.kind;
    let ctor = if new.cluster_scoped {
        "cluster_scoped"
    } else {
        "namespaced"
    };
    format!(
        r#"//! Kind plugin for `{api_version}` `{kind}` ({plural}): maps a raw object to the summary
//! Periscope's clients receive. Written by `periscope plugins new`; edit freely.

use periscope_plugin_sdk::{{Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object}};
use serde::Serialize;

/// The {plural} mapper.
pub struct {kind}Mapper;

/// The fields of a {kind} this plugin reads. `#[object]` makes every field default
/// when absent or `null`, and tells the host which top-level keys to pass (here
/// `metadata` and `status`; the rest of the object never crosses).
#[object]
#[derive(Debug)]
pub struct {kind} {{
    metadata: Meta,
    status: {kind}Status,
}}

#[object]
#[derive(Debug)]
struct {kind}Status {{
    conditions: Vec<Condition>,
}}

/// The {kind} summary, keys in this order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct {kind}Dto {{
    name: String,
    namespace: String,
    created_at: Timestamp,
    /// The `Ready` condition's status (`True`, `False`, `Unknown`), empty when absent.
    ready: String,
}}

impl Mapper for {kind}Mapper {{
    type Object = {kind};
    type Dto = {kind}Dto;

    fn info() -> KindInfo {{
        // Token and polling list key default to the plural.
        KindInfo::{ctor}("{alias}", "{api_version}", "{kind}", "{plural}")
    }}

    fn map(object: {kind}, _ctx: &Context) -> Result<{kind}Dto, MapError> {{
        let ready = object
            .status
            .conditions
            .iter()
            .find(|c| c.kind == "Ready")
            .map(|c| c.status.clone())
            .unwrap_or_default();
        Ok({kind}Dto {{
            name: object.metadata.name,
            namespace: object.metadata.namespace,
            created_at: object.metadata.creation_timestamp,
            ready,
        }})
    }}
}}

export_mapper!({kind}Mapper);

periscope_plugin_sdk::golden_tests!({kind}Mapper);
"#,
        api_version = api_version(new),
        plural = new.plural,
        alias = new.alias,
    )
}

fn sample_object(new: &NewPlugin) -> String {
    let mut metadata = serde_json::json!({
        "name": "example",
        "creationTimestamp": "2026-04-30T12:00:00Z",
        "managedFields": [{ "manager": "kubectl", "operation": "Apply" }]
    });
    if !new.cluster_scoped {
        metadata["namespace"] = "default".into();
    }
    let object = serde_json::json!({
        "apiVersion": api_version(new),
        "kind": new.kind,
        "metadata": metadata,
        "spec": {},
        "status": { "conditions": [{ "type": "Ready", "status": "True" }] }
    });
    serde_json::to_string_pretty(&object).unwrap_or_default() + "\n"
}

fn sample_dto(new: &NewPlugin) -> String {
    let dto = serde_json::json!({
        "name": "example",
        "namespace": if new.cluster_scoped { "" } else { "default" },
        "createdAt": "2026-04-30T12:00:00Z",
        "ready": "True"
    });
    serde_json::to_string_pretty(&dto).unwrap_or_default() + "\n"
}

fn readme(new: &NewPlugin, sdk: &Path) -> String {
    let wasm = format!("{}.wasm", crate_name(&new.plural).replace('-', "_"));
    format!(
        r#"# {name}

A [Periscope](https://github.com/) kind plugin for `{api_version}` `{kind}`, written by
`periscope plugins new`. It maps each raw `{kind}` to a small DTO; Periscope streams
those to browsers at `/api/clusters/<cluster>/{plural}/watch`.

## Build, test, check

```sh
cargo test                                             # golden cases, natively
cargo build --release --target wasm32-wasip2           # the component
periscope plugins check target/wasm32-wasip2/release/{wasm} golden
```

`plugins check` loads the component with the host's rules (contract version,
forbidden imports, `info`) and runs `golden/` through it exactly as the host maps
objects (only the keys the `#[object]` struct reads cross). Each problem is one line.

## Install

Copy the `.wasm` into the host's plugin directory (`plugins.dir`,
`PERISCOPE_PLUGINS_DIR`, `--plugin-dir`). A running host picks it up within a
couple of seconds; replacing or removing the file reloads or unloads the kind.

## Golden cases

`golden/<case>.k8s.json` (a raw object, or a `…List` for snapshot order) beside
`golden/<case>.dto.json`. Cases map at `2026-05-01T12:00:00Z`.
`PERISCOPE_BLESS=1 cargo test` rewrites the expectations; read the diff.

## Where the SDK comes from

`Cargo.toml` points at `periscope-plugin-sdk` in a checkout of Periscope
(`{sdk}`). `Cargo.lock` and `rust-toolchain.toml` are the checkout's, so the build
uses the versions and toolchain it was tested with and works offline once the
checkout has been built. To build elsewhere, change the `path`, or use git:

```toml
periscope-plugin-sdk = {{ git = "<periscope repository URL>", tag = "<release>" }}
```

The SDK's version is the plugin contract version (`periscope:plugin@…`); a host
refuses a component outside its supported range with a message naming both.
"#,
        name = crate_name(&new.plural),
        api_version = api_version(new),
        kind = new.kind,
        plural = new.plural,
        sdk = sdk.display(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn widgets(dir: PathBuf) -> NewPlugin {
        NewPlugin {
            plural: "widgets".into(),
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            cluster_scoped: false,
            alias: "custom".into(),
            dir,
            sdk: default_sdk().unwrap(),
        }
    }

    #[test]
    fn bad_arguments_are_refused_with_the_fix() {
        let dir = std::env::temp_dir().join("periscope-scaffold-never-written");
        let mut new = widgets(dir);
        new.kind = "widget".into();
        let error = write(&new).unwrap_err().to_string();
        assert!(error.contains("PascalCase"), "{error}");
        new.kind = "Widget".into();
        new.plural = "Widgets".into();
        let error = write(&new).unwrap_err().to_string();
        assert!(error.contains("lowercase"), "{error}");
    }

    #[test]
    fn the_crate_has_its_manifest_sample_case_and_readme() {
        let dir = tempfile::tempdir().unwrap();
        let new = widgets(dir.path().join("widgets"));
        let files = write(&new).unwrap();
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "golden/sample.k8s.json",
            "README.md",
            "Cargo.lock",
        ] {
            assert!(files.contains(&PathBuf::from(file)), "{file} missing from {files:?}");
        }
        let manifest = std::fs::read_to_string(new.dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"periscope-plugin-widgets\""));
        assert!(manifest.contains("[workspace]"));
        let again = write(&new).unwrap_err().to_string();
        assert!(again.contains("not empty"), "{again}");
    }
}
