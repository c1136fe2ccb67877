//! Load harness: SSE fan-out of one shared watch to many clients, measured end to end.
//!
//! Starts the simulated cluster in this process (scenario `empty` plus `--pods` seeded
//! pods in `bench-0`…`bench-9`), starts the release `periscope` binary as a separate
//! process in front of it (so its RSS and CPU are its own), opens `--streams` SSE
//! connections to `/api/clusters/load/<kind>/watch`, waits for every snapshot, then
//! modifies `--rate` pods per second for `--duration` directly in the sim's store.
//!
//! It measures:
//!
//! - connect-to-snapshot latency of every stream (from sending the request to the end
//!   of the `snapshot` frame; at most `--connect-concurrency` requests are in flight);
//! - delivery latency: for every write, the instant just before `Sim::apply` and the
//!   resourceVersion it returned; for every client, the instant each `id:` arrived.
//!   Latency is receipt minus write, over every client and every write;
//! - missed events (a write whose resourceVersion a client never saw), `backpressure`
//!   frames and streams that ended early;
//! - the host's RSS (`VmRSS`) and CPU (`utime + stime`, as % of one core), sampled
//!   every second from `/proc`, and this harness's own CPU.
//!
//! The clients, the sim and the host share one machine: the harness's CPU is reported
//! so that its share can be judged, and latencies include client-side scheduling.
//!
//! Run with (build the host first; the harness starts `periscope` from its own
//! directory):
//!
//! ```sh
//! cargo build --release -p periscope -p periscope-tests
//! target/release/load --streams 1000 --rate 100 --duration 60s --pods 1000 --kind pods --csv raw.csv
//! ```
//!
//! After the host's run, the same run repeats against the fan-out floor (the `floor`
//! binary, which relays one host stream to as many clients with the least possible
//! work per frame) and reports the host's CPU per delivered frame as a ratio to the
//! floor's (`--no-floor` skips it).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use periscope_sim::{Scenario, Sim, SimOptions};
use periscope_tests::process::{Host, append_csv_row, rss_kib};
use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

/// The cluster name the host is configured with.
const CLUSTER: &str = "load";

/// Drives the sim and a release `periscope serve` and reports SSE fan-out figures.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// Concurrent SSE streams.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Pod updates per second written to the sim.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// How long updates are written (e.g. `60s`, `2m`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Pods seeded in the sim (the updates cycle through them).
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// The watched kind; updates modify pods, so only `pods` is supported.
    #[arg(long, default_value = "pods", value_parser = ["pods"])]
    kind: String,
    /// Requests in flight while streams are opened.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// How long to wait for every snapshot, and for the host to become healthy.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    setup_timeout: Duration,
    /// How long after the last write clients may take to receive it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// The `periscope` binary; default: next to this harness.
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// Append a CSV row per target (header first if the file is new) to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Skip the second run against the fan-out floor (the `floor` binary next to the
    /// host, relaying one host stream to the same number of clients).
    #[arg(long)]
    no_floor: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let command = command_line();
    let host_bin = Host::bin(args.host_bin.as_deref())?;

    eprintln!("load: starting the sim with {} pods", args.pods);
    // The sim runs on a runtime (and thread) of its own: on the harness's, its watch
    // responses would queue behind thousands of client tasks, and that wait would be
    // counted as the host's latency.
    let sim_runtime = OwnRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sim")
            .enable_all()
            .build()
            .context("cannot start the sim's runtime")?,
    ));
    let sim = sim_runtime
        .handle()
        .spawn(Sim::start(SimOptions {
            scenario: Scenario::Empty,
            pods: args.pods,
            ..SimOptions::default()
        }))
        .await
        .context("the sim's start panicked")?
        .context("the simulated cluster does not start")?;
    let pods = sim.objects("pods", None).context("cannot list the seeded pods")?;
    if pods.is_empty() {
        bail!("no pods to update; pass --pods 1 or more");
    }
    let mut updates = Updates { pods, n: 0 };

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    // One client plays every user here, so the per-user cap is off; the run is shorter
    // than any lifetime cap worth measuring, so that is off too.
    let config = format!(
        "[watch]\nper_user_limit = 0\nmax_stream_duration = \"0s\"\n\n[[clusters]]\nname = \"{CLUSTER}\"\nserver = \"{}\"\n",
        sim.url()
    );
    let host = Host::start(&host_bin, &config, dir.path(), args.setup_timeout).await?;
    let base = host.base.clone();
    eprintln!("load: host pid {} serving on {base}", host.pid);

    let url = format!("{base}/api/clusters/{CLUSTER}/{}/watch", args.kind);
    let host_summary = phase(&args, &sim, &mut updates, "host", host.pid, &url, &command).await;
    let host_summary = match host_summary {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("load: host log {}", host.log.display());
            return Err(error);
        }
    };
    println!("{}", host_summary.text());
    let mut summaries = vec![host_summary];

    if !args.no_floor {
        let floor_bin = std::env::current_exe()
            .context("cannot locate the harness binary")?
            .with_file_name("floor");
        let floor = Floor::start(&floor_bin, &url, args.setup_timeout).await?;
        eprintln!("load: floor pid {} serving on {}", floor.pid, floor.url);
        let floor_url = floor.url.clone();
        let floor_summary = phase(&args, &sim, &mut updates, "floor", floor.pid, &floor_url, &command).await;
        floor.stop().await;
        let floor_summary = floor_summary?;
        println!("{}", floor_summary.text());
        let (host_us, floor_us) = (summaries[0].us_per_frame(), floor_summary.us_per_frame());
        println!(
            "host / floor CPU per delivered frame  {host_us:.2} / {floor_us:.2} µs = {:.2}x",
            host_us / floor_us
        );
        summaries.push(floor_summary);
    }
    host.stop().await;
    let _ = sim_runtime.handle().spawn(sim.shutdown()).await;

    if let Some(path) = &args.csv {
        for summary in &summaries {
            summary.append_csv(path)?;
        }
        eprintln!("load: appended {} rows to {}", summaries.len(), path.display());
    }
    Ok(())
}

/// One measured run against `target` (the host, or the floor in front of it): opens
/// the streams of `url`, waits for every snapshot, writes the updates, collects what
/// every client saw and samples `pid`'s RSS and CPU.
async fn phase(
    args: &Args,
    sim: &Sim,
    updates: &mut Updates,
    target: &'static str,
    pid: u32,
    url: &str,
    command: &str,
) -> Result<Summary> {
    let load_start = read_loadavg();
    let clock = Instant::now();
    let sampler = Sampler::spawn(pid, clock);
    let rss_start = rss_kib(pid).unwrap_or(0);

    // Open every stream and wait for its snapshot.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .context("cannot build the HTTP client")?;
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut clients = Vec::with_capacity(args.streams);
    let mut snapshots = Vec::with_capacity(args.streams);
    let opened = Instant::now();
    for _ in 0..args.streams {
        let (tx, rx) = oneshot::channel();
        let last = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run_client(
            client.clone(),
            url.to_string(),
            clock,
            gate.clone(),
            tx,
            last.clone(),
            stop.clone(),
        ));
        clients.push((task, last));
        snapshots.push(rx);
    }
    let mut snapshot_ms = Vec::with_capacity(args.streams);
    let mut snapshot_failures = 0usize;
    let deadline = tokio::time::Instant::now() + args.setup_timeout;
    for rx in snapshots {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(latency)) => snapshot_ms.push(latency.as_secs_f64() * 1e3),
            _ => snapshot_failures += 1,
        }
    }
    let all_open = opened.elapsed();
    if snapshot_failures > 0 {
        bail!(
            "{snapshot_failures} of {} streams of the {target} got no snapshot within {:?}",
            args.streams,
            args.setup_timeout,
        );
    }
    let rss_open = rss_kib(pid).unwrap_or(0);
    eprintln!(
        "load: {target}: {} snapshots in {:.1}s; writing {} updates/s for {:?}",
        args.streams,
        all_open.as_secs_f64(),
        args.rate,
        args.duration
    );

    // Drive updates.
    let drive_start = Instant::now();
    let cpu_start = read_cpu_ticks(pid).unwrap_or(0);
    let self_cpu_start = read_cpu_ticks(std::process::id()).unwrap_or(0);
    let writes = drive(sim, updates, args.rate, args.duration, clock).await?;
    let drive_wall = drive_start.elapsed();
    let cpu_end = read_cpu_ticks(pid).unwrap_or(0);
    let self_cpu_end = read_cpu_ticks(std::process::id()).unwrap_or(0);
    let last_rv = writes.iter().map(|(rv, _)| *rv).max().unwrap_or(0);

    // Let clients catch up, then stop them.
    let drain_deadline = Instant::now() + args.drain;
    while Instant::now() < drain_deadline
        && clients
            .iter()
            .any(|(task, last)| !task.is_finished() && last.load(Ordering::Relaxed) < last_rv)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let mut results = Vec::with_capacity(clients.len());
    for (task, _) in clients {
        results.push(task.await.context("a client task panicked")?);
    }
    let rss_end = rss_kib(pid).unwrap_or(0);
    let load_end = read_loadavg();
    let samples = sampler.finish().await;

    // Join receipts with writes.
    let written: HashMap<u64, u64> = writes.iter().copied().collect();
    let mut latencies = Vec::with_capacity(writes.len() * results.len());
    let mut missed = 0u64;
    let mut clients_missing = 0usize;
    let mut out_of_order = 0u64;
    let mut backpressure = 0usize;
    let mut ended_early = 0usize;
    let mut errors = Vec::new();
    for result in &results {
        let mut matched = 0u64;
        let mut previous = 0u64;
        for &(rv, at) in &result.receipts {
            if rv <= previous {
                out_of_order += 1;
            }
            previous = previous.max(rv);
            if let Some(&wrote) = written.get(&rv) {
                matched += 1;
                latencies.push(at.saturating_sub(wrote));
            }
        }
        let lost = (writes.len() as u64).saturating_sub(matched);
        missed += lost;
        clients_missing += usize::from(lost > 0);
        backpressure += usize::from(result.backpressure);
        ended_early += usize::from(result.ended);
        if let Some(error) = &result.error {
            errors.push(error.clone());
        }
    }
    for error in errors.iter().take(5) {
        eprintln!("load: {target}: client error: {error}");
    }
    latencies.sort_unstable();
    snapshot_ms.sort_by(f64::total_cmp);

    let ticks = clock_ticks();
    let host_cpu_s = (cpu_end.saturating_sub(cpu_start)) as f64 / ticks;
    let host_cpu = host_cpu_s / drive_wall.as_secs_f64() * 100.0;
    let self_cpu = (self_cpu_end.saturating_sub(self_cpu_start)) as f64 / ticks / drive_wall.as_secs_f64() * 100.0;
    let host_cpu_peak = samples
        .windows(2)
        .map(|w| {
            (w[1].cpu_ticks.saturating_sub(w[0].cpu_ticks)) as f64 / ticks / (w[1].at - w[0].at).as_secs_f64() * 100.0
        })
        .fold(0.0, f64::max);
    let rss_peak = samples
        .iter()
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0)
        .max(rss_end)
        .max(rss_open);

    let ms = |nanos: u64| nanos as f64 / 1e6;
    Ok(Summary {
        target,
        streams: args.streams,
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        pods: args.pods,
        kind: args.kind.clone(),
        writes: writes.len(),
        achieved_rate: writes.len() as f64 / drive_wall.as_secs_f64(),
        expected: writes.len() as u64 * args.streams as u64,
        delivered: latencies.len() as u64,
        missed,
        clients_missing,
        out_of_order,
        backpressure,
        ended_early,
        all_open_s: all_open.as_secs_f64(),
        snapshot_p50_ms: percentile_f(&snapshot_ms, 50.0),
        snapshot_p99_ms: percentile_f(&snapshot_ms, 99.0),
        snapshot_max_ms: snapshot_ms.last().copied().unwrap_or(0.0),
        p50_ms: ms(percentile(&latencies, 50.0)),
        p90_ms: ms(percentile(&latencies, 90.0)),
        p99_ms: ms(percentile(&latencies, 99.0)),
        p999_ms: ms(percentile(&latencies, 99.9)),
        max_ms: ms(latencies.last().copied().unwrap_or(0)),
        rss_start_mib: rss_start as f64 / 1024.0,
        rss_open_mib: rss_open as f64 / 1024.0,
        rss_peak_mib: rss_peak as f64 / 1024.0,
        rss_end_mib: rss_end as f64 / 1024.0,
        host_cpu_s,
        host_cpu_avg_pct: host_cpu,
        host_cpu_peak_pct: host_cpu_peak,
        harness_cpu_avg_pct: self_cpu,
        loadavg_start: load_start,
        loadavg_end: load_end,
        command: command.to_string(),
    })
}

/// The command as typed through cargo, so a CSV row can be re-run as is.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line = String::from("cargo run --release -p periscope-tests --bin load --");
    for arg in args {
        line.push(' ');
        line.push_str(&arg);
    }
    line
}

/// The `floor` child process, relaying one host stream to the clients.
struct Floor {
    child: tokio::process::Child,
    pid: u32,
    url: String,
}

impl Floor {
    /// Starts the floor on a free loopback port in front of `upstream` and waits
    /// until it accepts connections.
    async fn start(bin: &Path, upstream: &str, timeout: Duration) -> Result<Floor> {
        if !bin.exists() {
            bail!(
                "no floor binary at {}; build it with `cargo build --release -p periscope-tests` or pass --no-floor",
                bin.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free loopback port")?
            .port();
        let mut child = tokio::process::Command::new(bin)
            .arg("--upstream")
            .arg(upstream)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("the floor exited at once")?;
        let deadline = Instant::now() + timeout;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = child.try_wait().context("cannot poll the floor")? {
                bail!("the floor exited with {status} before serving");
            }
            if Instant::now() > deadline {
                bail!("the floor did not listen within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Its relay must have the host's snapshot before clients ask for it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Floor {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}/"),
        })
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientResult {
    /// `(resourceVersion, nanoseconds since the clock)` of every delta with an id.
    receipts: Vec<(u64, u64)>,
    backpressure: bool,
    /// The stream ended before the harness stopped it.
    ended: bool,
    error: Option<String>,
}

/// One SSE client: reports its snapshot latency, then records deltas until `stop`.
async fn run_client(
    client: reqwest::Client,
    url: String,
    clock: Instant,
    gate: Arc<Semaphore>,
    snapshot: oneshot::Sender<Duration>,
    last: Arc<AtomicU64>,
    stop: CancellationToken,
) -> ClientResult {
    let mut result = ClientResult::default();
    let permit = gate.acquire_owned().await;
    let began = Instant::now();
    let response = match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            result.error = Some(format!("status {}", response.status()));
            return result;
        }
        Err(error) => {
            result.error = Some(error.to_string());
            return result;
        }
    };
    let mut body = response.bytes_stream();
    let mut snapshot = Some(snapshot);
    let mut permit = Some(permit);
    let mut parser = SseParser::default();
    loop {
        let chunk = tokio::select! {
            () = stop.cancelled() => break,
            chunk = body.next() => chunk,
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                result.error = Some(error.to_string());
                result.ended = true;
                break;
            }
            None => {
                result.ended = true;
                break;
            }
        };
        let at = clock.elapsed().as_nanos() as u64;
        parser.feed(&chunk, |event, id| match event {
            b"snapshot" => {
                if let Some(tx) = snapshot.take() {
                    let _ = tx.send(began.elapsed());
                    permit = None;
                }
            }
            b"added" | b"modified" | b"deleted" => {
                if let Some(rv) = id.and_then(|id| std::str::from_utf8(id).ok()?.parse().ok()) {
                    result.receipts.push((rv, at));
                    last.fetch_max(rv, Ordering::Relaxed);
                }
            }
            b"backpressure" => result.backpressure = true,
            _ => {}
        });
    }
    drop(permit);
    result
}

/// A runtime owned inside another, which may be dropped there (it is shut down in the
/// background; dropping a runtime in an async context would panic).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the runtime lives until dropped").handle()
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A minimal SSE parser: only `event:` and `id:` lines matter here.
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
    event: Vec<u8>,
    id: Option<Vec<u8>>,
}

impl SseParser {
    /// Appends `chunk` and calls `on_event(event, id)` for each complete event.
    fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&[u8], Option<&[u8]>)) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(offset) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[start..start + offset];
            if line.is_empty() {
                if !self.event.is_empty() {
                    on_event(&self.event, self.id.as_deref());
                }
                self.event.clear();
                self.id = None;
            } else if let Some(value) = line.strip_prefix(b"event: ") {
                self.event = value.to_vec();
            } else if let Some(value) = line.strip_prefix(b"id: ") {
                self.id = Some(value.to_vec());
            }
            start += offset + 1;
        }
        self.buf.drain(..start);
    }
}

/// Writes `rate` pod updates per second for `duration`; returns `(resourceVersion,
/// nanoseconds since the clock just before the write)` for each.
///
/// `updates` carries on from the last run, so each write of a second run changes what
/// the plugin maps (a repeated DTO is not sent).
async fn drive(
    sim: &Sim,
    updates: &mut Updates,
    rate: u32,
    duration: Duration,
    clock: Instant,
) -> Result<Vec<(u64, u64)>> {
    let Updates { pods, n } = updates;
    let mut writes = Vec::with_capacity((f64::from(rate) * duration.as_secs_f64()) as usize + 1);
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    // Burst (the default): a write delayed by a busy machine is caught up, so the
    // average rate holds; the achieved rate is reported.
    let end = tokio::time::Instant::now() + duration;
    loop {
        interval.tick().await;
        if tokio::time::Instant::now() >= end {
            break;
        }
        let index = *n % pods.len();
        *n += 1;
        let pod = &mut pods[index];
        bump(pod, *n);
        let at = clock.elapsed().as_nanos() as u64;
        let stored = sim.apply(pod.clone()).context("the sim rejected an update")?;
        let rv = stored["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .context("the sim returned no numeric resourceVersion")?;
        writes.push((rv, at));
    }
    Ok(writes)
}

/// The pods as last written and how many writes were made, across runs.
struct Updates {
    pods: Vec<Value>,
    n: usize,
}

/// Changes what the pods plugin maps (the first container's restartCount) and a label,
/// and drops the resourceVersion so the sim does not check it.
fn bump(pod: &mut Value, n: usize) {
    if let Some(metadata) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("periscope-load/seq".into(), n.to_string().into());
        }
    }
    if let Some(status) = pod.pointer_mut("/status/containerStatuses/0")
        && let Some(status) = status.as_object_mut()
    {
        let restarts = status.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        status.insert("restartCount".into(), (restarts + 1).into());
    }
}

/// One `/proc` sample of the host.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    cpu_ticks: u64,
}

/// Samples the host's RSS and CPU every second.
struct Sampler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn spawn(pid: u32, clock: Instant) -> Sampler {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = interval.tick() => {}
                }
                if let (Some(rss_kib), Some(cpu_ticks)) = (rss_kib(pid), read_cpu_ticks(pid)) {
                    samples.push(Sample {
                        at: clock.elapsed(),
                        rss_kib,
                        cpu_ticks,
                    });
                }
            }
            samples
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// `utime + stime` of `pid` in clock ticks.
fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's 1-minute load average: other work on the machine shows here.
fn read_loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `CLK_TCK`, from `getconf` (no libc call: the workspace denies unsafe code).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Nearest-rank percentile of sorted nanoseconds.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nearest-rank percentile of sorted values.
fn percentile_f(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of one run.
#[derive(Debug)]
struct Summary {
    /// `host` or `floor`.
    target: &'static str,
    streams: usize,
    rate: u32,
    duration_s: f64,
    pods: usize,
    kind: String,
    writes: usize,
    achieved_rate: f64,
    expected: u64,
    delivered: u64,
    missed: u64,
    clients_missing: usize,
    out_of_order: u64,
    backpressure: usize,
    ended_early: usize,
    all_open_s: f64,
    snapshot_p50_ms: f64,
    snapshot_p99_ms: f64,
    snapshot_max_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    rss_start_mib: f64,
    rss_open_mib: f64,
    rss_peak_mib: f64,
    rss_end_mib: f64,
    /// CPU seconds the target used while updates were written.
    host_cpu_s: f64,
    host_cpu_avg_pct: f64,
    host_cpu_peak_pct: f64,
    harness_cpu_avg_pct: f64,
    loadavg_start: f64,
    loadavg_end: f64,
    command: String,
}

impl Summary {
    /// Target CPU per delivered frame, in microseconds.
    fn us_per_frame(&self) -> f64 {
        self.host_cpu_s * 1e6 / self.delivered.max(1) as f64
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ==", self.target);
        let _ = writeln!(
            out,
            "streams {} | kind {} | pods {} | rate {}/s (achieved {:.1}/s) | duration {:.0}s",
            self.streams, self.kind, self.pods, self.rate, self.achieved_rate, self.duration_s
        );
        let _ = writeln!(
            out,
            "events   delivered {} of {} expected ({} writes x {} streams); missed {} on {} streams; out of order {}",
            self.delivered,
            self.expected,
            self.writes,
            self.streams,
            self.missed,
            self.clients_missing,
            self.out_of_order
        );
        let _ = writeln!(
            out,
            "streams  backpressure closes {}; ended early {}",
            self.backpressure, self.ended_early
        );
        let _ = writeln!(
            out,
            "delivery latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        let _ = writeln!(
            out,
            "snapshot latency ms  p50 {:.1}  p99 {:.1}  max {:.1}  (all streams open in {:.2}s)",
            self.snapshot_p50_ms, self.snapshot_p99_ms, self.snapshot_max_ms, self.all_open_s
        );
        let _ = writeln!(
            out,
            "host RSS MiB  start {:.1}  streams open {:.1}  peak {:.1}  end {:.1}",
            self.rss_start_mib, self.rss_open_mib, self.rss_peak_mib, self.rss_end_mib
        );
        let _ = write!(
            out,
            "CPU % of one core during writes  {} avg {:.1} (peak 1s {:.1})  harness (sim + clients) avg {:.1}",
            self.target, self.host_cpu_avg_pct, self.host_cpu_peak_pct, self.harness_cpu_avg_pct
        );
        let _ = write!(
            out,
            "\n{} CPU per delivered frame {:.2} µs; RSS per open stream {:.1} KiB",
            self.target,
            self.us_per_frame(),
            (self.rss_open_mib - self.rss_start_mib) * 1024.0 / self.streams.max(1) as f64
        );
        let _ = write!(
            out,
            "\nmachine 1-min load average  start {:.2}  end {:.2}",
            self.loadavg_start, self.loadavg_end
        );
        out
    }

    const HEADER: &'static str = "target,us_per_frame,streams,kind,pods,rate,duration_s,writes,achieved_rate,expected,delivered,missed,clients_missing,out_of_order,backpressure,ended_early,all_open_s,snapshot_p50_ms,snapshot_p99_ms,snapshot_max_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,rss_start_mib,rss_open_mib,rss_peak_mib,rss_end_mib,host_cpu_avg_pct,host_cpu_peak_pct,harness_cpu_avg_pct,loadavg_start,loadavg_end,command";

    fn append_csv(&self, path: &Path) -> Result<()> {
        let row = format!(
            "{},{:.3},{},{},{},{},{:.0},{},{:.2},{},{},{},{},{},{},{},{:.3},{:.2},{:.2},{:.2},{:.3},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.2},{:.2},\"{}\"",
            self.target,
            self.us_per_frame(),
            self.streams,
            self.kind,
            self.pods,
            self.rate,
            self.duration_s,
            self.writes,
            self.achieved_rate,
            self.expected,
            self.delivered,
            self.missed,
            self.clients_missing,
            self.out_of_order,
            self.backpressure,
            self.ended_early,
            self.all_open_s,
            self.snapshot_p50_ms,
            self.snapshot_p99_ms,
            self.snapshot_max_ms,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.rss_start_mib,
            self.rss_open_mib,
            self.rss_peak_mib,
            self.rss_end_mib,
            self.host_cpu_avg_pct,
            self.host_cpu_peak_pct,
            self.harness_cpu_avg_pct,
            self.loadavg_start,
            self.loadavg_end,
            self.command.replace('"', "\"\"")
        );
        append_csv_row(path, Self::HEADER, &row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_reports_events_split_across_chunks() {
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        let stream = b"event: snapshot\nid: 7\ndata: {}\n\n: ping\n\nevent: modified\nid: 8\ndata: {\"a\":1}\n\nevent: backpressure\ndata: {}\n\n";
        for chunk in stream.chunks(5) {
            parser.feed(chunk, |event, id| {
                seen.push((
                    String::from_utf8_lossy(event).into_owned(),
                    id.map(|i| String::from_utf8_lossy(i).into_owned()),
                ));
            });
        }
        assert_eq!(
            seen,
            [
                ("snapshot".to_string(), Some("7".to_string())),
                ("modified".to_string(), Some("8".to_string())),
                ("backpressure".to_string(), None),
            ]
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
