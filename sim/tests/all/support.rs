//! Shared helpers: starting sims, finding and running kubectl, waiting under a timeout.

use std::future::Future;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use periscope_sim::{Scenario, Sim, SimOptions};

/// How long any single expectation may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// Starts an empty sim with fast bookmarks.
pub async fn empty_sim() -> Sim {
    start(SimOptions {
        scenario: Scenario::Empty,
        bookmark_interval: Duration::from_millis(200),
        ..SimOptions::default()
    })
    .await
}

pub async fn start(opts: SimOptions) -> Sim {
    Sim::start(opts).await.expect("the sim starts on loopback")
}

/// A kube client for the sim.
pub fn client(sim: &Sim) -> kube::Client {
    let config = kube::Config::new(sim.url().parse().expect("the sim URL is a valid URI"));
    kube::Client::try_from(config).expect("a kube client for the sim")
}

/// A kube client that impersonates `user` in `groups`, so the sim enforces RBAC on it.
pub fn client_as(sim: &Sim, user: &str, groups: &[&str]) -> kube::Client {
    let mut config = kube::Config::new(sim.url().parse().expect("the sim URL is a valid URI"));
    config.auth_info.impersonate = Some(user.to_string());
    if !groups.is_empty() {
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    kube::Client::try_from(config).expect("a kube client for the sim")
}

/// The kubectl binary: `$PERISCOPE_KUBECTL`, else the one `scripts/install-tools.sh`
/// installs. Fails the test (never skips it) when missing.
pub fn kubectl_path() -> PathBuf {
    tool_path("kubectl", "PERISCOPE_KUBECTL")
}

/// The helm binary: `$PERISCOPE_HELM`, else the one `scripts/install-tools.sh` installs.
pub fn helm_path() -> PathBuf {
    tool_path("helm", "PERISCOPE_HELM")
}

fn tool_path(tool: &str, env: &str) -> PathBuf {
    periscope_build_support::scripts::tool(tool, env).unwrap_or_else(|message| panic!("{message}"))
}

/// Runs kubectl against one sim with its own kubeconfig and discovery cache.
pub struct Kubectl {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Kubectl {
    pub fn new(sim: &Sim) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        sim.write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("the kubeconfig is written");
        Self {
            dir,
            bin: kubectl_path(),
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .arg(format!("--cache-dir={}", self.dir.path().join("cache").display()))
            .args(args)
            .kill_on_drop(true);
        cmd
    }

    /// Writes `contents` to a file in the temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("the manifest is written");
        path.display().to_string()
    }

    /// Runs kubectl to completion, whatever its exit status.
    pub async fn output(&self, args: &[&str]) -> Output {
        within(&format!("kubectl {}", args.join(" ")), self.command(args).output())
            .await
            .expect("kubectl runs")
    }

    /// Runs kubectl to completion and returns stdout; fails the test on a non-zero exit.
    pub async fn run(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        assert!(
            output.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("kubectl prints UTF-8")
    }
}
