//! Test harness for periscope's integration tests: the hostile fixture components,
//! paths into the workspace, a plugin runtime that shares one component cache
//! across tests, so each component is compiled once per test run, a served host in
//! front of a sim, and browser scripts run against it.

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

/// Example plugins built from `examples/*` (kinds outside the bundle, such as a CRD).
pub mod examples {
    include!(concat!(env!("OUT_DIR"), "/examples.rs"));
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

pub mod process;

/// A served periscope in front of a simulated cluster, on loopback ports.
pub mod served {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::time::Duration;

    use eventsource_stream::{Event, Eventsource};
    use futures::{Stream, StreamExt};
    use periscope::config::{ClusterConfig, ClusterSource};
    use periscope::hub::Hub;
    use periscope::serve::App;
    use periscope_sim::{Scenario, Sim, SimOptions};
    use tokio_util::sync::CancellationToken;

    /// How long a test waits for something it expects (stretch with
    /// `PERISCOPE_TEST_PATIENCE_MS` on slow machines).
    pub fn patience() -> Duration {
        let ms = std::env::var("PERISCOPE_TEST_PATIENCE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15_000);
        Duration::from_millis(ms)
    }

    /// The cluster name tests use.
    pub const CLUSTER: &str = "test";

    /// A running sim and periscope serving it.
    pub struct Served {
        /// The simulated cluster (fault injection, direct writes).
        pub sim: Sim,
        /// `http://127.0.0.1:<port>` of periscope.
        pub base: String,
        /// The hub (upstream keys).
        pub hub: Arc<Hub>,
        /// Active streams and per-actor counts.
        pub streams: Arc<periscope::limits::Streams>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    /// Starts an empty sim and periscope in front of it; `env` are `PERISCOPE_*`
    /// settings (e.g. `PERISCOPE_WATCH_STREAMS`).
    pub async fn serve(env: &[(&str, &str)]) -> Served {
        serve_scenario(Scenario::Empty, env).await
    }

    /// Like [`serve`], with a sim scenario. The sim runs without its controllers: the
    /// tests script the statuses and events they assert on.
    pub async fn serve_scenario(scenario: Scenario, env: &[(&str, &str)]) -> Served {
        serve_sim(
            SimOptions {
                scenario,
                controllers: false,
                ..SimOptions::default()
            },
            env,
        )
        .await
    }

    /// Like [`serve`], with every sim option (e.g. its controllers on).
    pub async fn serve_sim(options: SimOptions, env: &[(&str, &str)]) -> Served {
        let sim = Sim::start(options).await.expect("the sim starts");
        let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        let mut config = periscope::config::load(None, &env).expect("test configuration is valid");
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.clusters = vec![ClusterConfig {
            name: CLUSTER.to_string(),
            source: ClusterSource::Server(sim.url()),
        }];
        config.plugins.cache_dir = Some(crate::shared_cache_dir());
        let app = App::build(config).await.expect("periscope starts");
        let base = format!("http://{}", app.local_addr());
        let hub = app.state().hub.clone();
        let streams = app.state().streams.clone();
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(async move {
            app.serve().await.expect("periscope serves");
        });
        Served {
            sim,
            base,
            hub,
            streams,
            shutdown,
            task,
        }
    }

    impl Served {
        /// `<base>/api/clusters/test/<path>`.
        pub fn url(&self, path: &str) -> String {
            format!("{}/api/clusters/{CLUSTER}/{path}", self.base)
        }

        /// Shuts periscope down as SIGTERM would and waits for it to finish.
        pub async fn shutdown(self) {
            self.shutdown.cancel();
            let _ = tokio::time::timeout(patience(), self.task).await;
            self.sim.shutdown().await;
        }

        /// Starts shutdown without waiting.
        pub fn begin_shutdown(&self) {
            self.shutdown.cancel();
        }
    }

    /// A real SSE client (reqwest + eventsource-stream).
    pub struct SseClient {
        /// The response status.
        pub status: reqwest::StatusCode,
        /// The response headers.
        pub headers: reqwest::header::HeaderMap,
        events: Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>,
    }

    impl SseClient {
        /// Opens a stream, with a `Last-Event-ID` header when given.
        pub async fn connect(url: &str, last_event_id: Option<&str>) -> SseClient {
            SseClient::connect_with(url, last_event_id, None).await
        }

        /// Opens a stream with a bearer token.
        pub async fn connect_as(url: &str, token: &str) -> SseClient {
            SseClient::connect_with(url, None, Some(token)).await
        }

        /// Opens a stream with an optional `Last-Event-ID` and bearer token.
        pub async fn connect_with(url: &str, last_event_id: Option<&str>, token: Option<&str>) -> SseClient {
            let mut request = reqwest::Client::new().get(url);
            if let Some(id) = last_event_id {
                request = request.header("Last-Event-ID", id);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("the request is sent");
            let status = response.status();
            let headers = response.headers().clone();
            let events = response
                .bytes_stream()
                .eventsource()
                .map(|r| r.map_err(|e| e.to_string()))
                .boxed();
            SseClient {
                status,
                headers,
                events,
            }
        }

        /// The next event, or `None` when the stream ended; panics after [`patience`].
        pub async fn next(&mut self) -> Option<Event> {
            match tokio::time::timeout(patience(), self.events.next()).await {
                Ok(Some(Ok(event))) => Some(event),
                Ok(Some(Err(error))) => panic!("SSE stream failed: {error}"),
                Ok(None) => None,
                Err(_) => panic!("no SSE event within {:?}", patience()),
            }
        }

        /// The next event; panics if the stream ended.
        pub async fn expect(&mut self, kind: &str) -> Event {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended while waiting for {kind}"));
            assert_eq!(event.event, kind, "expected {kind}, got {} {}", event.event, event.data);
            event
        }

        /// The JSON data of the next event, which must be `kind`.
        pub async fn expect_json(&mut self, kind: &str) -> serde_json::Value {
            let event = self.expect(kind).await;
            serde_json::from_str(&event.data).expect("SSE data is JSON")
        }
    }

    /// A pod object for the sim.
    pub fn pod(namespace: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "namespace": namespace, "labels": { "app": name } },
            "spec": { "containers": [{ "name": "app", "image": "example/app:1" }] },
        })
    }
}

/// The real Kubernetes clients the project installs (`scripts/install-tools.sh`).
pub mod tools {
    use std::path::{Path, PathBuf};

    /// The kubectl binary; fails the test (never skips it) when it cannot be had.
    pub fn kubectl() -> PathBuf {
        periscope_build_support::scripts::tool("kubectl", "PERISCOPE_KUBECTL")
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// Runs kubectl against the cluster of `kubeconfig` and returns its stdout; panics
    /// with its stderr when it fails.
    pub async fn kubectl_run(kubeconfig: &Path, args: &[&str]) -> String {
        let output = tokio::process::Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Node scripts the tests run: a script prints one `ok: <step>` line per step and exits
/// non-zero with a message naming the step that failed.
pub mod node {
    use std::process::{ExitStatus, Stdio};
    use std::time::Duration;

    /// How long one script may run: each of its steps waits up to [`patience`], and a
    /// script has a handful of them.
    ///
    /// [`patience`]: crate::served::patience
    pub fn deadline() -> Duration {
        crate::served::patience() * 8 + Duration::from_secs(30)
    }

    /// What a script printed and how it ended.
    #[derive(Debug)]
    pub struct ScriptRun {
        /// The script, as run (`node tests/<dir>/<name> <args>`).
        pub command: String,
        /// Its exit status; `None` when it overran [`deadline`] and was killed.
        pub status: Option<ExitStatus>,
        /// Its standard output (one `ok: <step>` line per step).
        pub stdout: String,
        /// Its standard error (the failure).
        pub stderr: String,
    }

    impl ScriptRun {
        /// Prints the script's output, then fails the test unless it exited 0.
        pub fn assert_success(&self) {
            println!("$ {}\n{}", self.command, self.stdout);
            eprint!("{}", self.stderr);
            match self.status {
                Some(status) if status.success() => {}
                Some(status) => panic!("{} failed ({status}):\n{}{}", self.command, self.stdout, self.stderr),
                None => panic!(
                    "{} did not finish within {:?} and was killed:\n{}{}",
                    self.command,
                    deadline(),
                    self.stdout,
                    self.stderr
                ),
            }
        }
    }

    /// Runs `node <dir>/<script> <args>` from `<dir>` (a workspace path such as
    /// `tests/graphql`) and returns what it printed; `PERISCOPE_TEST_PATIENCE_MS` and
    /// the rest of the environment pass through to it.
    pub async fn run(dir: &str, script: &str, args: &[&str]) -> ScriptRun {
        let dir = crate::workspace_root().join(dir);
        let command = format!("node {}/{script} {}", dir.display(), args.join(" "));
        let child = tokio::process::Command::new("node")
            .current_dir(&dir)
            .arg(dir.join(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run node for {command}: {error}"));
        match tokio::time::timeout(deadline(), child.wait_with_output()).await {
            Ok(output) => {
                let output = output.unwrap_or_else(|error| panic!("{command}: {error}"));
                ScriptRun {
                    command,
                    status: Some(output.status),
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                }
            }
            // The child is killed on drop; its output is lost with it.
            Err(_) => ScriptRun {
                command,
                status: None,
                stdout: String::new(),
                stderr: String::new(),
            },
        }
    }
}

/// Browser tests: Playwright scripts in `tests/browser/` (playwright-core, never a
/// downloaded browser) driving Debian's chromium against a served periscope.
///
/// [`run_script`] installs both on first use with `scripts/install-browser.sh`, the way
/// the sim's kubectl tests install kubectl, and runs `node tests/browser/<script> <url>`.
pub mod browser {
    pub use crate::node::{ScriptRun, deadline};

    /// Installs chromium and playwright-core when this process has not checked yet;
    /// panics with the install script's verdict when that fails.
    pub fn ensure_installed() {
        if let Err(message) = periscope_build_support::scripts::run_once("install-browser.sh") {
            panic!("the browser tests need chromium and playwright-core: {message}");
        }
    }

    /// Runs `node tests/browser/<script> <url> <args>` (after [`ensure_installed`]) and
    /// returns what it printed; `PERISCOPE_CHROMIUM` and `PERISCOPE_TEST_PATIENCE_MS`
    /// pass through to it.
    pub async fn run_script(script: &str, url: &str, args: &[&str]) -> ScriptRun {
        ensure_installed();
        let mut all = vec![url];
        all.extend_from_slice(args);
        crate::node::run("tests/browser", script, &all).await
    }
}

/// `/graphqlws` tests: scripts in `tests/graphql/` driving the server with the
/// reference client (`graphql-ws`) and raw frames (`ws`), installed on first use by
/// `scripts/install-node-tools.sh`.
pub mod graphql {
    pub use crate::node::ScriptRun;

    /// Installs the pinned npm packages when this process has not checked yet.
    pub fn ensure_installed() {
        if let Err(message) = periscope_build_support::scripts::run_once("install-node-tools.sh") {
            panic!("the graphql tests need graphql-ws, ws and graphql: {message}");
        }
    }

    /// Runs `node tests/graphql/<script> <args>` (after [`ensure_installed`]).
    pub async fn run_script(script: &str, args: &[&str]) -> ScriptRun {
        ensure_installed();
        crate::node::run("tests/graphql", script, args).await
    }
}
