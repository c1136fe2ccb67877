//! Runs the workspace's install scripts (`scripts/*.sh`) on first use, for tests that
//! need tools from outside Cargo: kubectl and helm (`install-tools.sh`), chromium and
//! playwright-core (`install-browser.sh`), the npm packages of the Node-driven tests
//! (`install-node-tools.sh`).
//!
//! Each script runs at most once per process, whatever the number of tests asking, so
//! `cargo test --workspace` works on a fresh clone without a separate setup step.
//! Concurrent callers wait for the first one's run and get its outcome. The script's
//! output goes straight to the terminal, so a test run shows what it installs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// The outcome of each script run so far, by file name.
static RUNS: Mutex<Option<HashMap<String, Result<(), String>>>> = Mutex::new(None);

/// `<workspace>/scripts/<name>`.
pub fn path(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new(".."));
    workspace.join("scripts").join(name)
}

/// Runs `bash scripts/<name>` unless this process already has, and returns its outcome;
/// the error says how it failed and names the script, so the caller can show it.
pub fn run_once(name: &str) -> Result<(), String> {
    let mut runs = RUNS.lock().unwrap_or_else(PoisonError::into_inner);
    let runs = runs.get_or_insert_with(HashMap::new);
    if let Some(outcome) = runs.get(name) {
        return outcome.clone();
    }
    let script = path(name);
    eprintln!("running {} (once per test process)", script.display());
    let outcome = match Command::new("bash").arg(&script).status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!(
            "{} failed with {status}; see its output above",
            script.display()
        )),
        Err(error) => Err(format!("cannot run {}: {error}", script.display())),
    };
    if let Err(message) = &outcome {
        eprintln!("{message}");
    }
    runs.insert(name.to_string(), outcome.clone());
    outcome
}

/// A tool `scripts/install-tools.sh` installs (`kubectl`, `helm`): `$<env>` when set,
/// else `<tools dir>/bin/<tool>`, running the script first when it is missing. The tools
/// dir is `$PERISCOPE_TOOLS_DIR`, else `$XDG_CACHE_HOME/periscope-tools`, else
/// `~/.cache/periscope-tools`. The error says what to do.
pub fn tool(tool: &str, env: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    let tools = std::env::var_os("PERISCOPE_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|cache| cache.join("periscope-tools"))
        })
        .ok_or_else(|| "neither HOME nor XDG_CACHE_HOME is set".to_string())?;
    let path = tools.join("bin").join(tool);
    if !path.is_file() {
        // A failure is reported by the script; the check below says what is missing.
        let _ = run_once("install-tools.sh");
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{tool} not found at {}: run scripts/install-tools.sh (or set {env})",
            path.display()
        ))
    }
}
