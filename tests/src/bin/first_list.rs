//! First-list harness: how long the first subscriber of a large kind waits for its
//! snapshot, and what the host's memory does meanwhile and after (issue 18).
//!
//! Starts the simulated cluster in this process (scenario `empty` plus `--pods` seeded
//! pods in `bench-0`…`bench-9`), starts the release `periscope` binary as a separate
//! process whose only cluster is the sim and whose only watch route is `pods` (so its
//! RSS is its own), and then:
//!
//! 1. reads the idle host's `VmRSS`;
//! 2. opens one SSE stream to `/api/clusters/bench/pods/watch`: that starts the
//!    upstream, whose first list is the whole cost. It times the first byte of the
//!    response body and the end of the `snapshot` frame, and counts the snapshot's
//!    bytes;
//! 3. reads `VmHWM` (the peak RSS since the host started) and `VmRSS` at once, and
//!    `VmRSS` again after `--settle`;
//! 4. opens a second stream: the warm snapshot, served from the store;
//! 5. with `--relist`, makes the sim answer the next watch with `410 Expired` and drops
//!    the watch, times the host's relist (until the first stream's new snapshot) and
//!    reads `VmHWM` and `VmRSS` again after `--settle`.
//!
//! With `--concurrent N` it measures something else: N hosts (N processes, so N
//! upstreams) each open one stream at once, as N watchers of a cold apiserver do; it
//! times the last snapshot and samples this process's RSS (the sim lives here) every
//! 20 ms, so `--initial-list paged` and `streaming` compare what N first lists cost
//! the apiserver.
//!
//! Run with (build the host first; the harness starts `periscope` from its own
//! directory, or `--host-bin`):
//!
//! ```sh
//! cargo build --release -p periscope -p periscope-tests
//! for i in 1 2 3; do
//!   target/release/first_list --pods 50000 --relist --csv bench/first-list.csv
//! done
//! for shape in paged streaming; do
//!   target/release/first_list --pods 50000 --initial-list $shape --concurrent 20
//! done
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use periscope_sim::{FaultCount, Scenario, Sim, SimOptions};
use periscope_tests::process::{Host, append_csv_row, rss_kib, status_kib};

/// The cluster name the host is configured with.
const CLUSTER: &str = "bench";

/// Measures a large kind's first list through a release `periscope serve`.
#[derive(Debug, Parser)]
#[command(name = "first_list")]
struct Args {
    /// Pods seeded in the sim.
    #[arg(long, default_value_t = 50_000)]
    pods: usize,
    /// How long to wait after a list before reading the settled RSS.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Also force a relist (410 on the watch) and measure it.
    #[arg(long)]
    relist: bool,
    /// `watch.list_page_size` for the host; default: the host's own.
    #[arg(long)]
    page_size: Option<u32>,
    /// `watch.initial_list` for the host (`auto`, `streaming`, `paged`); default: the
    /// host's own.
    #[arg(long)]
    initial_list: Option<String>,
    /// Measure N concurrent first lists (N hosts) instead; see the module docs.
    #[arg(long)]
    concurrent: Option<usize>,
    /// How long to wait for the host and for each snapshot.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The `periscope` binary; default: next to this harness.
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// Extra `KEY=VALUE` environment for the host (e.g. `MALLOC_ARENA_MAX=2`).
    #[arg(long = "host-env")]
    host_env: Vec<String>,
    /// Append a CSV row (header first if the file is new) to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let host_bin = Host::bin(args.host_bin.as_deref())?;

    eprintln!("first_list: starting the sim with {} pods", args.pods);
    let sim = Sim::start(SimOptions {
        scenario: Scenario::Empty,
        pods: args.pods,
        ..SimOptions::default()
    })
    .await
    .context("the simulated cluster does not start")?;

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut config = String::from("[watch]\nstreams = \"pods\"\nper_user_limit = 0\nmax_stream_duration = \"0s\"\n");
    if let Some(size) = args.page_size {
        let _ = writeln!(config, "list_page_size = {size}");
    }
    if let Some(shape) = &args.initial_list {
        let _ = writeln!(config, "initial_list = \"{shape}\"");
    }
    let _ = write!(
        config,
        "\n[[clusters]]\nname = \"{CLUSTER}\"\nserver = \"{}\"\n",
        sim.url()
    );
    let envs: Vec<(String, String)> = args
        .host_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--host-env {kv:?} is not KEY=VALUE"))
        })
        .collect::<Result<_>>()?;
    if let Some(n) = args.concurrent {
        return concurrent(&args, &sim, &host_bin, &config, &envs, n).await;
    }
    let host = Host::start_with_env(&host_bin, &config, dir.path(), args.timeout, &envs).await?;
    eprintln!("first_list: host pid {} serving on {}", host.pid, host.base);
    // Let start-up allocations settle before the idle reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(host.pid).unwrap_or(0);

    let url = format!("{}/api/clusters/{CLUSTER}/pods/watch", host.base);
    let client = reqwest::Client::new();
    let mut first = Stream::open(&client, &url).await?;
    let cold = first.until_snapshot(args.timeout).await?;
    let hwm_first = status_kib(host.pid, "VmHWM").unwrap_or(0);
    let rss_after = rss_kib(host.pid).unwrap_or(0);
    tokio::time::sleep(args.settle).await;
    let rss_settled = rss_kib(host.pid).unwrap_or(0);
    eprintln!(
        "first_list: cold snapshot {} bytes, first byte {:.0} ms, complete {:.0} ms",
        cold.bytes,
        cold.first_byte.as_secs_f64() * 1e3,
        cold.complete.as_secs_f64() * 1e3
    );

    let mut second = Stream::open(&client, &url).await?;
    let warm = second.until_snapshot(args.timeout).await?;
    drop(second);

    let relist = if args.relist {
        sim.expire_watches(FaultCount::Times(1));
        sim.drop_watches(Some("pods"))
            .context("cannot drop the sim's watches")?;
        let began = Instant::now();
        let relisted = first.until_snapshot(args.timeout).await?;
        let took = began.elapsed();
        let hwm = status_kib(host.pid, "VmHWM").unwrap_or(0);
        tokio::time::sleep(args.settle).await;
        Some((took, relisted.bytes, hwm, rss_kib(host.pid).unwrap_or(0)))
    } else {
        None
    };
    drop(first);
    host.stop().await;
    sim.shutdown().await;

    let mib = |kib: u64| kib as f64 / 1024.0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut out = String::new();
    let _ = writeln!(out, "pods {} | snapshot {} bytes", args.pods, cold.bytes);
    let _ = writeln!(
        out,
        "cold snapshot ms  first byte {:.1}  complete {:.1}",
        ms(cold.first_byte),
        ms(cold.complete)
    );
    let _ = writeln!(
        out,
        "warm snapshot ms  first byte {:.1}  complete {:.1}",
        ms(warm.first_byte),
        ms(warm.complete)
    );
    let _ = writeln!(
        out,
        "host RSS MiB  idle {:.1}  peak (VmHWM) {:.1}  after snapshot {:.1}  settled {:.1}",
        mib(rss_idle),
        mib(hwm_first),
        mib(rss_after),
        mib(rss_settled)
    );
    if let Some((took, _, hwm, settled)) = relist {
        let _ = writeln!(
            out,
            "relist after 410  snapshot in {:.1} ms  peak (VmHWM) {:.1} MiB  settled {:.1} MiB",
            ms(took),
            mib(hwm),
            mib(settled)
        );
    }
    let _ = write!(out, "machine 1-min load average {}", loadavg());
    println!("{out}");

    if let Some(path) = &args.csv {
        let (relist_ms, relist_peak, relist_settled) =
            relist.map_or((f64::NAN, f64::NAN, f64::NAN), |(t, _, h, s)| (ms(t), mib(h), mib(s)));
        let row = format!(
            "{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{},\"{}\"",
            args.pods,
            cold.bytes,
            ms(cold.first_byte),
            ms(cold.complete),
            ms(warm.first_byte),
            ms(warm.complete),
            mib(rss_idle),
            mib(hwm_first),
            mib(rss_after),
            mib(rss_settled),
            relist_ms,
            relist_peak,
            relist_settled,
            loadavg(),
            command.replace('"', "\"\"")
        );
        append_csv_row(
            path,
            "pods,snapshot_bytes,cold_first_byte_ms,cold_complete_ms,warm_first_byte_ms,warm_complete_ms,rss_idle_mib,rss_peak_mib,rss_after_mib,rss_settled_mib,relist_ms,relist_peak_mib,relist_settled_mib,loadavg,command",
            &row,
        )?;
    }
    Ok(())
}

/// `--concurrent N`: N hosts open one stream each at once; the time to the last
/// snapshot, and this process's (the sim's) RSS before and at its peak meanwhile.
async fn concurrent(
    args: &Args,
    sim: &Sim,
    host_bin: &std::path::Path,
    config: &str,
    envs: &[(String, String)],
    n: usize,
) -> Result<()> {
    let me = std::process::id();
    let mut hosts = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        hosts.push(Host::start_with_env(host_bin, config, dir.path(), args.timeout, envs).await?);
        dirs.push(dir);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (lists_before, rss_before) = (sim.list_requests(), rss_kib(me).unwrap_or(0));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(me).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let began = Instant::now();
    let waits = hosts.iter().map(|host| {
        let url = format!("{}/api/clusters/{CLUSTER}/pods/watch", host.base);
        let client = client.clone();
        async move {
            let mut stream = Stream::open(&client, &url).await?;
            stream.until_snapshot(args.timeout).await?;
            Ok::<_, anyhow::Error>(began.elapsed())
        }
    });
    let times = futures::future::try_join_all(waits).await?;
    sampler.abort();
    let lists = sim.list_requests();
    let last = times.iter().max().copied().unwrap_or_default();
    let first = times.iter().min().copied().unwrap_or_default();
    for host in hosts {
        host.stop().await;
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "pods {} | {n} concurrent first lists ({}) | snapshots in {:.0}..{:.0} ms | sim process RSS MiB before {:.1} peak {:.1} | requests: {} list pages, {} streaming lists | load {}",
        args.pods,
        args.initial_list.as_deref().unwrap_or("default"),
        first.as_secs_f64() * 1e3,
        last.as_secs_f64() * 1e3,
        mib(rss_before),
        mib(peak.load(std::sync::atomic::Ordering::Relaxed)),
        lists.pages - lists_before.pages,
        lists.streaming - lists_before.streaming,
        loadavg()
    );
    Ok(())
}

/// When a snapshot frame arrived, relative to when the wait began.
struct Snapshot {
    first_byte: Duration,
    complete: Duration,
    bytes: usize,
}

/// One SSE stream, read as raw bytes: only `event: snapshot` frames are looked for.
struct Stream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
    began: Instant,
}

impl Stream {
    async fn open(client: &reqwest::Client, url: &str) -> Result<Stream> {
        let began = Instant::now();
        let response = client.get(url).send().await.context("cannot open the stream")?;
        if !response.status().is_success() {
            bail!("the stream answered {}", response.status());
        }
        Ok(Stream {
            body: Box::pin(response.bytes_stream()),
            buf: Vec::new(),
            began,
        })
    }

    /// Reads until the next complete `snapshot` frame. The first byte is the first byte
    /// of that frame, or for a fresh stream the first byte of the body (the host
    /// writes nothing before the snapshot but comments).
    async fn until_snapshot(&mut self, timeout: Duration) -> Result<Snapshot> {
        let began = if self.buf.is_empty() && self.began.elapsed() < Duration::from_millis(50) {
            self.began
        } else {
            Instant::now()
        };
        self.buf.clear();
        let mut first_byte = None;
        // Where the search for the end of the current frame resumes.
        let mut scanned = 0;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let chunk = match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(chunk)) => chunk.context("the stream broke")?,
                Ok(None) => bail!("the stream ended before a snapshot"),
                Err(_) => bail!("no snapshot within {timeout:?}"),
            };
            self.buf.extend_from_slice(&chunk);
            // Frames before the snapshot (comments, relist) are dropped as they end.
            while let Some(end) = find(&self.buf[scanned..], b"\n\n").map(|at| at + scanned) {
                scanned = 0;
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                if frame.starts_with(b"event: snapshot") {
                    return Ok(Snapshot {
                        first_byte: first_byte.unwrap_or_else(|| began.elapsed()),
                        complete: began.elapsed(),
                        bytes: frame.len(),
                    });
                }
                first_byte = None;
            }
            scanned = self.buf.len().saturating_sub(1);
            if first_byte.is_none() && self.buf.starts_with(b"event: snapshot") {
                first_byte = Some(began.elapsed());
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}
