//! A release `periscope serve` as a child process, for the load harnesses: its own
//! RSS and CPU, read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The `periscope serve` child process.
pub struct Host {
    child: tokio::process::Child,
    /// Its process id.
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl Host {
    /// The `periscope` binary a harness runs: `given` (its `--host-bin`), else the one
    /// next to the running harness (the same target directory); an error saying how to
    /// build it when it is not there.
    pub fn bin(given: Option<&Path>) -> Result<PathBuf> {
        let bin = match given {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()
                .context("cannot locate the harness binary")?
                .with_file_name("periscope"),
        };
        if !bin.exists() {
            bail!(
                "no host binary at {}; build it with `cargo build --release -p periscope` (same CARGO_TARGET_DIR) or pass --host-bin",
                bin.display()
            );
        }
        Ok(bin)
    }

    /// Writes `config` (TOML) into `dir`, starts `bin serve` with it on a free
    /// loopback port and waits for `/healthz`.
    pub async fn start(bin: &Path, config: &str, dir: &Path, timeout: Duration) -> Result<Host> {
        Host::start_with_env(bin, config, dir, timeout, &[]).await
    }

    /// [`Host::start`] with extra environment variables for the host.
    pub async fn start_with_env(
        bin: &Path,
        config: &str,
        dir: &Path,
        timeout: Duration,
        env: &[(String, String)],
    ) -> Result<Host> {
        if !bin.exists() {
            bail!(
                "no host binary at {}; build it with `cargo build --release -p periscope` (same CARGO_TARGET_DIR) or pass --host-bin",
                bin.display()
            );
        }
        let config_path = dir.join("periscope.toml");
        std::fs::write(&config_path, config).context("cannot write the host configuration")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free loopback port")?
            .port();
        let log = dir.join("periscope.log");
        let log_file = std::fs::File::create(&log).context("cannot create the host log")?;
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("PERISCOPE_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("cannot share the host log")?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("the host exited at once")?;
        let base = format!("http://127.0.0.1:{port}");
        let mut host = Host { child, pid, base, log };
        let healthz = format!("{}/healthz", host.base);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = reqwest::get(&healthz).await
                && response.status().is_success()
            {
                return Ok(host);
            }
            if let Some(status) = host.child.try_wait().context("cannot poll the host")? {
                let log = std::fs::read_to_string(&host.log).unwrap_or_default();
                bail!("the host exited with {status} before serving:\n{log}");
            }
            if Instant::now() > deadline {
                bail!(
                    "the host did not answer {healthz} within {timeout:?}; log: {}",
                    host.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the host and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// Appends `row` (one CSV line, without its newline) to `path`, writing `header` first
/// when the file is new or empty: the benchmark harnesses' `--csv`.
pub fn append_csv_row(path: &Path, header: &str, row: &str) -> Result<()> {
    use std::io::Write as _;
    let new = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let text = if new {
        format!("{header}\n{row}\n")
    } else {
        format!("{row}\n")
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
