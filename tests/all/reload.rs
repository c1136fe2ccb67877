use std::path::Path;
use std::time::{Duration, Instant};

use periscope_tests::fixtures;
use periscope_tests::served::{Served, patience, serve};
use serde_json::Value;

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

/// Whether the polling route knows the kind (the sim has no widgets CRD, so a known
/// kind's poll fails upstream; an unknown one is `unknown_kind` JSON).
async fn polling_knows(served: &Served, kind: &str) -> bool {
    let response = reqwest::get(served.url(kind)).await.unwrap();
    let body = response.text().await.unwrap();
    !body.contains("\"unknown_kind\"")
}

/// Waits until `condition` holds, or fails naming `what`.
async fn eventually<F: AsyncFn() -> bool>(what: &str, condition: F) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < patience(), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// TODO(#16): once the sim serves CRDs, stream `certificates` end to end: drop
// examples/certificates into the directory, apply a Certificate, read it on the watch.
#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_directory_is_watched_while_the_host_runs() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&[("PERISCOPE_PLUGINS_DIR", dir.path().to_str().unwrap())]).await;
    assert!(!watch_streams(&served).await.contains(&"widgets".to_string()));
    assert!(!polling_knows(&served, "widgets").await);

    // A new component: loaded, and /api/features and the polling route follow.
    let file = dir.path().join("widgets.wasm");
    copy_in(fixtures::get("widgets"), &file);
    eventually("widgets in /api/features", async || {
        watch_streams(&served).await.contains(&"widgets".to_string())
    })
    .await;
    assert!(polling_knows(&served, "widgets").await);
    let widgets = served.hub.registry().get("widgets").cloned().unwrap();

    // A broken replacement: reported and ignored; the old version keeps serving.
    copy_in(b"\0asm but not really a component", &file);
    eventually("the broken file reported", async || {
        served.hub.kinds().problems().contains_key(&file)
    })
    .await;
    let problem = &served.hub.kinds().problems()[&file];
    assert!(problem.contains("not a valid WebAssembly component"), "{problem}");
    assert!(watch_streams(&served).await.contains(&"widgets".to_string()));
    assert!(polling_knows(&served, "widgets").await);
    let serving = served.hub.registry().get("widgets").cloned().unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&widgets, &serving),
        "the old widgets plugin keeps serving"
    );

    // Removed: unloaded.
    std::fs::remove_file(&file).unwrap();
    eventually("widgets gone from /api/features", async || {
        !watch_streams(&served).await.contains(&"widgets".to_string())
    })
    .await;
    assert!(!polling_knows(&served, "widgets").await);
    assert!(served.hub.kinds().problems().is_empty());
    // The bundled kinds never moved.
    assert_eq!(watch_streams(&served).await.len(), 22);
    served.shutdown().await;
}

/// Writes `bytes` to a temporary name and renames it into place, as `cp` to a
/// directory then `mv` would: the watcher must also cope with in-place writes, but a
/// rename makes the test's three steps unambiguous.
fn copy_in(bytes: &[u8], to: &Path) {
    let partial = to.with_extension("partial");
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, to).unwrap();
}
