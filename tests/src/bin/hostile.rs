//! Hostile-client harness (issue 23): attacks a release `periscope serve` (a child
//! process, so its file descriptors, CPU and RSS are its own) over loopback, and
//! reports for each attack the host's fds, CPU and RSS during and after, and the
//! latency of `/healthz` on fresh connections during.
//!
//! The host serves a simulated cluster run by this harness, with `--pods` pods whose
//! 4 KB node names make a pods snapshot of about 4 KB per pod. Attacks:
//!
//! - `truncated`: `--connections` clients send half a watch request line and hang up;
//! - `idle`: `--connections` clients connect and send nothing;
//! - `trickle`: `--tricklers` clients send a header byte every second, never a whole head;
//! - `stalled`: `--stalled` clients open the pods stream and never read.
//!
//! "During" is `--during` after the attack began; "after" is `--after` later (the
//! attack's clients still open, for the ones that hold), when the host's deadlines
//! (`server.header_timeout`, `watch.write_timeout`) should have closed them.
//!
//! ```sh
//! cargo build --release -p periscope -p periscope-tests
//! target/release/hostile                                   # every attack, ~2 minutes
//! target/release/hostile --only idle --fd-limit 512        # under `ulimit -n 512`
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use periscope_sim::{Scenario, Sim, SimOptions};
use periscope_tests::process::{Host, append_csv_row, fd_count, rss_kib};
use periscope_tests::served::pod;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Debug, Parser)]
#[command(name = "hostile")]
struct Args {
    /// Clients of the `truncated` and `idle` attacks.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Clients of the `trickle` attack.
    #[arg(long, default_value_t = 500)]
    tricklers: usize,
    /// Clients of the `stalled` attack.
    #[arg(long, default_value_t = 40)]
    stalled: usize,
    /// Pods in the simulated cluster (about 4 KB of snapshot each).
    #[arg(long, default_value_t = 2000)]
    pods: usize,
    /// When "during" is measured, after the attack began.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    during: Duration,
    /// When "after" is measured, after "during".
    #[arg(long, default_value = "12s", value_parser = humantime::parse_duration)]
    after: Duration,
    /// Sets the host's open-file limit (soft and hard, with `prlimit`) once it runs.
    #[arg(long)]
    fd_limit: Option<u64>,
    /// Extra TOML for the host's `[server]` section (`max_connections = 300`).
    #[arg(long, default_value = "")]
    server: String,
    /// Comma-separated attacks (truncated, idle, trickle, stalled).
    #[arg(long)]
    only: Option<String>,
    /// The `periscope` binary (default: next to this harness).
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// Appends one CSV row per attack to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
}

const ATTACKS: &[&str] = &["truncated", "idle", "trickle", "stalled"];

/// The host's resources at one moment, and its CPU over a window.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    fds: u64,
    rss_mib: f64,
    cpu_percent: f64,
}

/// CPU ticks (user + system) of `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(end) = stat.rfind(')') else { return 0 };
    let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// The host's fds and RSS now, and its CPU over the next second.
async fn sample(pid: u32) -> Sample {
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = cpu_ticks(pid) - before;
    Sample {
        fds: fd_count(pid),
        rss_mib: rss_kib(pid).unwrap_or(0) as f64 / 1024.0,
        cpu_percent: ticks as f64, // 100 ticks a second: ticks in one second are percent
    }
}

/// `/healthz` on a fresh connection: its latency, or `None` when it got no 200 in 5 s.
async fn healthz(addr: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(5), attempt).await.ok()??;
    Some(started.elapsed())
}

/// Probes `/healthz` every 100 ms until `until`: sorted latencies and failures.
async fn probe(addr: SocketAddr, until: Instant) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    while Instant::now() < until {
        match healthz(addr).await {
            Some(latency) => latencies.push(latency),
            None => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    (latencies, failures)
}

/// Starts an attack; what it returns holds its clients open until dropped.
async fn attack(name: &str, addr: SocketAddr, args: &Args) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    match name {
        "truncated" => {
            for _ in 0..args.connections {
                if let Ok(mut tcp) = TcpStream::connect(addr).await {
                    let _ = tcp.write_all(b"GET /api/clusters/").await;
                }
            }
        }
        "idle" => {
            let mut held = Vec::new();
            for _ in 0..args.connections {
                if let Ok(tcp) = TcpStream::connect(addr).await {
                    held.push(tcp);
                }
            }
            tasks.push(tokio::spawn(async move {
                let _held = held;
                std::future::pending::<()>().await;
            }));
        }
        "trickle" => {
            for i in 0..args.tricklers {
                let Ok(mut tcp) = TcpStream::connect(addr).await else {
                    continue;
                };
                tasks.push(tokio::spawn(async move {
                    let line: &[u8] = if i % 2 == 0 {
                        b"GET /api/clusters/demo/pods/watch HTTP/1.1\r\n"
                    } else {
                        b"GET /api/features HTTP/1.1\r\n"
                    };
                    if tcp.write_all(line).await.is_err() {
                        return;
                    }
                    loop {
                        if tcp.write_all(b"X").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }));
            }
        }
        "stalled" => {
            for _ in 0..args.stalled {
                let socket = TcpSocket::new_v4()?;
                socket.set_recv_buffer_size(4096)?;
                let mut tcp = socket.connect(addr).await?;
                tcp.write_all(b"GET /api/clusters/demo/pods/watch HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await?;
                tasks.push(tokio::spawn(async move {
                    let _tcp = tcp;
                    std::future::pending::<()>().await;
                }));
            }
        }
        other => bail!("unknown attack {other:?} (one of {})", ATTACKS.join(", ")),
    }
    Ok(tasks)
}

fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "—".to_string();
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    format!("{:.1} ms", sorted[i].as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = Host::bin(args.host_bin.as_deref())?;
    let attacks: Vec<&str> = match &args.only {
        Some(only) => only.split(',').map(str::trim).collect(),
        None => ATTACKS.to_vec(),
    };
    let sim = Sim::start(SimOptions {
        scenario: Scenario::Empty,
        ..SimOptions::default()
    })
    .await?;
    let long = "x".repeat(4000);
    for i in 0..args.pods {
        let mut object = pod("shop", &format!("p-{i}"));
        object["spec"]["nodeName"] = long.clone().into();
        sim.apply(object)?;
    }
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[server]\n{}\n\n[watch]\nstreams = \"pods\"\n\n[[clusters]]\nname = \"demo\"\nserver = \"{}\"\n",
        args.server,
        sim.url()
    );
    println!(
        "| attack | clients | host fds before / during / after | host CPU during / after | host RSS before / during / after | `/healthz` during (p50 / max, failed) |"
    );
    println!("|---|---|---|---|---|---|");
    for name in attacks {
        let host = Host::start(&bin, &config, dir.path(), Duration::from_secs(60))
            .await
            .context("starting the host")?;
        if let Some(limit) = args.fd_limit {
            let status = std::process::Command::new("prlimit")
                .args(["--pid", &host.pid.to_string(), &format!("--nofile={limit}:{limit}")])
                .status()?;
            if !status.success() {
                bail!("prlimit failed");
            }
        }
        let addr: SocketAddr = host.base.trim_start_matches("http://").parse()?;
        // Warm the pods upstream, so `stalled` measures streams, not the first list.
        let _ = reqwest::get(format!("{}/api/clusters/demo/pods?namespace=shop", host.base)).await;
        let before = sample(host.pid).await;
        let started = Instant::now();
        let probing = tokio::spawn(probe(addr, started + args.during));
        let held = attack(name, addr, &args).await?;
        tokio::time::sleep((started + args.during).saturating_duration_since(Instant::now())).await;
        let during = sample(host.pid).await;
        let (latencies, failures) = probing.await?;
        tokio::time::sleep(args.after).await;
        let after = sample(host.pid).await;
        for task in held {
            task.abort();
        }
        let clients = match name {
            "trickle" => args.tricklers,
            "stalled" => args.stalled,
            _ => args.connections,
        };
        println!(
            "| {name} | {clients} | {} / {} / {} | {:.0} % / {:.0} % | {:.0} / {:.0} / {:.0} MiB | {} / {}, {failures} of {} |",
            before.fds,
            during.fds,
            after.fds,
            during.cpu_percent,
            after.cpu_percent,
            before.rss_mib,
            during.rss_mib,
            after.rss_mib,
            percentile(&latencies, 0.5),
            percentile(&latencies, 1.0),
            latencies.len() + failures,
        );
        if let Some(csv) = &args.csv {
            append_csv_row(
                csv,
                "attack,clients,fds_before,fds_during,fds_after,cpu_during,cpu_after,rss_before_mib,rss_during_mib,rss_after_mib,healthz_p50_ms,healthz_max_ms,healthz_failed",
                &format!(
                    "{name},{clients},{},{},{},{:.0},{:.0},{:.1},{:.1},{:.1},{:.1},{:.1},{failures}",
                    before.fds,
                    during.fds,
                    after.fds,
                    during.cpu_percent,
                    after.cpu_percent,
                    before.rss_mib,
                    during.rss_mib,
                    after.rss_mib,
                    latencies
                        .get(latencies.len() / 2)
                        .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                ),
            )?;
        }
        host.stop().await;
    }
    sim.shutdown().await;
    Ok(())
}
