//! A new kind end to end, as a plugin author meets it: scaffold a plugin crate outside
//! the repository, build it offline for `wasm32-wasip2`, check it, apply its
//! CustomResourceDefinition and an object with the real kubectl, drop the component
//! into the plugin directory of a running periscope, and read the object on its SSE
//! stream, then a change to it.
//!
//! Each phase's time goes to standard error (`cargo test … -- --nocapture`); the goal
//! is under ten minutes for a new author, most of it the first build. The build's
//! target directory is kept between runs (shared with the host's scaffold test), so
//! only the first run pays for compiling the SDK and its dependencies; the line for
//! the build says whether it started cold.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use periscope_tests::served::{Served, SseClient, patience, serve};
use periscope_tests::tools::kubectl_run;
use serde_json::Value;

const PLURAL: &str = "gizmos";
const GROUP: &str = "e2e.example.com";

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.e2e.example.com
spec:
  group: e2e.example.com
  scope: Namespaced
  names:
    plural: gizmos
    singular: gizmo
    kind: Gizmo
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

const GIZMO: &str = "apiVersion: e2e.example.com/v1
kind: Gizmo
metadata:
  name: first
  namespace: default
spec:
  size: 1
";

/// Prints how long a phase took, and the time since the start.
struct Clock {
    start: Instant,
    phase: Instant,
}

impl Clock {
    fn new() -> Self {
        let now = Instant::now();
        Self { start: now, phase: now }
    }

    fn lap(&mut self, what: &str) {
        let now = Instant::now();
        eprintln!(
            "[new kind e2e] {what}: {:.1?} (total {:.1?})",
            now - self.phase,
            now - self.start
        );
        self.phase = now;
    }
}

/// Runs a `periscope` command line through the library's CLI, as the binary would.
async fn periscope(args: &[&str]) {
    let line: Vec<String> = std::iter::once("periscope")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    let cli = periscope::cli::Cli::try_parse_from(&line).unwrap();
    tokio::task::spawn_blocking(move || periscope::cli::run(cli))
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("{} failed: {}", line.join(" "), periscope::cli::error_chain(&error)));
}

async fn watch_streams(served: &Served) -> Vec<String> {
    let features: Value = reqwest::get(format!("{}/api/features", served.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    features["watchStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scaffolded_crd_kind_streams_from_the_sim_after_a_hot_reload() {
    let mut clock = Clock::new();
    let work = tempfile::tempdir().unwrap();
    let crate_dir = work.path().join(PLURAL);
    assert!(!crate_dir.starts_with(periscope_tests::workspace_root()));

    // 1. Scaffold.
    let crate_path = crate_dir.to_str().unwrap();
    let new = [
        "plugins",
        "new",
        PLURAL,
        "--group",
        GROUP,
        "--version",
        "v1",
        "--kind",
        "Gizmo",
        "--dir",
        crate_path,
    ];
    periscope(&new).await;
    clock.lap("scaffold");

    // 2. Build, offline, outside the workspace.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let cold = !target.join("wasm32-wasip2/release/deps").is_dir();
    let build = tokio::process::Command::new("cargo")
        .current_dir(&crate_dir)
        .args(["build", "--offline", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        // The crate's rust-toolchain.toml decides, not the toolchain running this test.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .await
        .unwrap();
    assert!(
        build.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    clock.lap(if cold {
        "build (cold target)"
    } else {
        "build (warm target)"
    });
    let wasm = target.join("wasm32-wasip2/release/periscope_plugin_gizmos.wasm");

    // 3. Check it with the host's rules and its golden case.
    let golden = crate_dir.join("golden");
    periscope(&["plugins", "check", wasm.to_str().unwrap(), golden.to_str().unwrap()]).await;
    clock.lap("plugins check");

    // 4. A running periscope in front of a sim, with an empty plugin directory; the
    // CRD and an object applied with kubectl.
    let plugins = tempfile::tempdir().unwrap();
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", plugins.path().to_str().unwrap())]).await;
    assert!(!watch_streams(&served).await.contains(&PLURAL.to_string()));
    clock.lap("start the sim and periscope");
    let kubeconfig = work.path().join("kubeconfig");
    served.sim.write_kubeconfig(&kubeconfig).unwrap();
    let cache = work.path().join("kube-cache");
    let kubectl = async |args: &[&str]| {
        let mut all = vec!["--cache-dir", cache.to_str().unwrap()];
        all.extend_from_slice(args);
        kubectl_run(&kubeconfig, &all).await
    };
    std::fs::write(work.path().join("crd.yaml"), CRD).unwrap();
    std::fs::write(work.path().join("gizmo.yaml"), GIZMO).unwrap();
    let crd_file = work.path().join("crd.yaml");
    kubectl(&["apply", "-f", crd_file.to_str().unwrap()]).await;
    let gizmo_file = work.path().join("gizmo.yaml");
    kubectl(&["apply", "-f", gizmo_file.to_str().unwrap()]).await;
    assert!(kubectl(&["get", PLURAL]).await.contains("first"));
    clock.lap("kubectl apply the CRD and an object");

    // 5. Hot reload: copy the component in; the kind appears.
    let partial = plugins.path().join("gizmos.wasm.partial");
    std::fs::copy(&wasm, &partial).unwrap();
    std::fs::rename(&partial, plugins.path().join("gizmos.wasm")).unwrap();
    let waiting = Instant::now();
    while !watch_streams(&served).await.contains(&PLURAL.to_string()) {
        assert!(
            waiting.elapsed() < patience(),
            "{PLURAL} never appeared in /api/features"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    clock.lap("hot reload until /api/features lists the kind");

    // 6. The stream: a snapshot with the object, then a change made with kubectl.
    let mut client = SseClient::connect(&served.url(&format!("{PLURAL}/watch")), None).await;
    assert_eq!(client.status, 200);
    let snapshot = client.expect_json("snapshot").await;
    let items = snapshot["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{snapshot}");
    assert_eq!(items[0]["name"], "first", "{snapshot}");
    assert_eq!(items[0]["namespace"], "default", "{snapshot}");
    assert_eq!(items[0]["ready"], "", "{snapshot}");
    clock.lap("SSE snapshot");
    let ready = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    kubectl(&[
        "patch",
        "gizmo",
        "first",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        ready,
    ])
    .await;
    let modified = client.expect_json("modified").await;
    assert_eq!(modified["object"]["name"], "first", "{modified}");
    assert_eq!(modified["object"]["ready"], "True", "{modified}");
    clock.lap("kubectl patch status, SSE modified");

    served.shutdown().await;
    clock.lap("shutdown");
}
