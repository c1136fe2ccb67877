//! Soak: many SSE streams for a long time, with churn and random reconnects, while the
//! host's resident memory, open file descriptors, threads and tokio tasks are sampled
//! every second. After the warm-up none of them may keep growing.
//!
//! The sim runs in this process (scenario `empty` plus `--pods` pods), the release
//! `periscope` binary as a separate process (so `/proc/<pid>` is its own). Every second
//! `--reconnects` random streams are dropped and reopened with their `Last-Event-ID`,
//! and `--rate` pods are modified. Samples go to `--csv` (one row per second); the
//! summary compares the second half of the run with the end of the warm-up.
//!
//! ```sh
//! cargo build --release -p periscope -p periscope-tests
//! target/release/soak --streams 10000 --duration 10m --rate 20 --reconnects 20 --csv soak.csv
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use periscope_sim::{Scenario, Sim, SimOptions};
use periscope_tests::process::{Host, fd_count, status_kib};
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Runs the soak and prints whether anything grew.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// Concurrent SSE streams.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// How long the soak runs after every stream is open.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Of which the first part is warm-up, not judged.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Pods seeded in the sim.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Pod modifications per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Streams dropped and reopened (with Last-Event-ID) per second.
    #[arg(long, default_value_t = 20)]
    reconnects: usize,
    /// Requests in flight while streams are opened.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// The `periscope` binary; default: next to this harness.
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// Write one row per second here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// One second of the host's resources.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    tasks: u64,
    events: u64,
}

/// A stream that reconnects when told to, resuming from the last id it saw.
async fn run_stream(
    client: reqwest::Client,
    url: String,
    gate: Arc<Semaphore>,
    mut reconnect: tokio::sync::mpsc::Receiver<()>,
    events: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut last_id: Option<String> = None;
    while !stop.is_cancelled() {
        let response = {
            let _permit = gate.acquire().await;
            let mut request = client.get(&url);
            if let Some(id) = &last_id {
                request = request.header("Last-Event-ID", id);
            }
            request.send().await
        };
        let Ok(response) = response else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut frames = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                Some(()) = reconnect.recv() => break,
                frame = frames.next() => match frame {
                    Some(Ok(frame)) => {
                        if !frame.id.is_empty() {
                            last_id = Some(frame.id);
                        }
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                },
            }
        }
    }
}

async fn tasks(base: &str) -> u64 {
    let Ok(response) = reqwest::get(format!("{base}/metrics")).await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("periscope_runtime_tasks "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Least-squares slope of `values` over `times`, per minute.
fn slope_per_min(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let host_bin = Host::bin(args.host_bin.as_deref())?;
    let sim = Sim::start(SimOptions {
        scenario: Scenario::Empty,
        pods: args.pods,
        ..SimOptions::default()
    })
    .await
    .context("the simulated cluster does not start")?;
    let mut pods = sim.objects("pods", None)?;
    let dir = tempfile::tempdir()?;
    // One client plays every user, so the per-user cap is off; so is the lifetime cap.
    let config = format!(
        "[watch]\nper_user_limit = 0\nmax_stream_duration = \"0s\"\n\n[[clusters]]\nname = \"soak\"\nserver = \"{}\"\n",
        sim.url()
    );
    let host = Host::start(&host_bin, &config, dir.path(), Duration::from_secs(120)).await?;
    let url = format!("{}/api/clusters/soak/pods/watch", host.base);
    eprintln!("soak: host pid {}; opening {} streams", host.pid, args.streams);

    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let stop = CancellationToken::new();
    let events = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(run_stream(
            client.clone(),
            url.clone(),
            gate.clone(),
            rx,
            events.clone(),
            stop.clone(),
        ));
        handles.push(tx);
    }
    // Every stream has sent at least its snapshot when the event count reaches it.
    let opening = Instant::now();
    while events.load(Ordering::Relaxed) < args.streams as u64 {
        if opening.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {} snapshots after 5 minutes",
                events.load(Ordering::Relaxed),
                args.streams
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "soak: all open in {:.1?}; running {:?}",
        opening.elapsed(),
        args.duration
    );

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let began = Instant::now();
    let mut samples = Vec::new();
    let mut csv = match &args.csv {
        Some(path) => {
            let mut file = std::fs::File::create(path)?;
            writeln!(file, "seconds,rss_kib,fds,threads,tasks,events")?;
            Some(file)
        }
        None => None,
    };
    let mut n = 0u64;
    while began.elapsed() < args.duration {
        let second = Instant::now();
        for _ in 0..args.rate {
            n += 1;
            let pod = &mut pods[(n as usize) % args.pods.max(1)];
            pod["metadata"]["labels"]["soak"] = serde_json::json!(n.to_string());
            // Keep the stored object (its new resourceVersion): a stale one is a conflict.
            *pod = sim.apply(pod.clone()).context("the sim rejected a pod update")?;
        }
        for _ in 0..args.reconnects {
            let _ = handles[rng.random_range(0..handles.len())].try_send(());
        }
        let sample = Sample {
            at_s: began.elapsed().as_secs_f64(),
            rss_kib: status_kib(host.pid, "VmRSS").unwrap_or(0),
            fds: fd_count(host.pid),
            threads: status_kib(host.pid, "Threads").unwrap_or(0),
            tasks: tasks(&host.base).await,
            events: events.load(Ordering::Relaxed),
        };
        if let Some(file) = &mut csv {
            writeln!(
                file,
                "{:.0},{},{},{},{},{}",
                sample.at_s, sample.rss_kib, sample.fds, sample.threads, sample.tasks, sample.events
            )?;
        }
        samples.push(sample);
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(second.elapsed())).await;
    }
    stop.cancel();
    host.stop().await;
    sim.shutdown().await;

    let judged: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= args.warmup.as_secs_f64()).collect();
    let Some(first) = judged.first() else {
        bail!("the run is not longer than the warm-up");
    };
    let last = judged.last().copied().unwrap_or(first);
    let series = |f: fn(&Sample) -> u64| judged.iter().map(|s| (s.at_s, f(s) as f64)).collect::<Vec<_>>();
    let max = |f: fn(&Sample) -> u64| judged.iter().map(|s| f(s)).max().unwrap_or(0);
    println!(
        "soak: {} streams, {:?} ({:?} warm-up), {} changes/s, {} reconnects/s",
        args.streams, args.duration, args.warmup, args.rate, args.reconnects
    );
    println!("| resource | after warm-up | end | max | trend after warm-up |");
    println!("|---|---|---|---|---|");
    println!(
        "| RSS | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:+.2} MiB/min |",
        first.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        max(|s| s.rss_kib) as f64 / 1024.0,
        slope_per_min(&series(|s| s.rss_kib)) / 1024.0
    );
    println!(
        "| open fds | {} | {} | {} | {:+.1}/min |",
        first.fds,
        last.fds,
        max(|s| s.fds),
        slope_per_min(&series(|s| s.fds))
    );
    println!(
        "| threads | {} | {} | {} | {:+.1}/min |",
        first.threads,
        last.threads,
        max(|s| s.threads),
        slope_per_min(&series(|s| s.threads))
    );
    println!(
        "| tokio tasks | {} | {} | {} | {:+.1}/min |",
        first.tasks,
        last.tasks,
        max(|s| s.tasks),
        slope_per_min(&series(|s| s.tasks))
    );
    println!("frames received: {}", last.events);
    Ok(())
}
