//! Fault harness: upstream outages and watch faults, seen by clients that keep the SPA's
//! exact bookkeeping.
//!
//! For each fault it starts a fresh simulated cluster and periscope (both in this
//! process, over loopback), opens `--clients` SSE clients on the cluster-wide pods
//! stream that behave like a browser's `EventSource` in Periscope's SPA (reconnect
//! after `--retry` with `Last-Event-ID`; the error budget of spec 3.4: one unit per
//! closed connection or `error` frame, at most once a second, reset by a snapshot or a
//! delta, polling the list route every 5 s for good at 4, as the SPA does), writes
//! `--rate` pod changes per second (create,
//! modify `spec.nodeName`, delete) while the fault runs, stops writing, and waits for
//! every client's reconstructed list to equal the sim's pods.
//!
//! It reports per fault: divergent objects (missing, extra or stale rows, summed over
//! clients, at the end), `error` frames seen, clients that fell back to polling, and the
//! time from the end of the fault until every client converged.
//!
//! ```sh
//! cargo run --release -p periscope-tests --bin faults -- --clients 20 --rate 20
//! cargo run --release -p periscope-tests --bin faults -- --only pause60,restart --scale 0.2
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use futures::StreamExt;
use periscope_sim::{FaultCount, ListFailure, Scenario, SimOptions};
use periscope_tests::served::{Served, serve};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Runs every fault (or `--only` some) and prints a Markdown table.
#[derive(Debug, Parser)]
#[command(name = "faults")]
struct Args {
    /// SPA-rule SSE clients per fault.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Pod changes per second written during each fault.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Multiplies every fault's duration (1.0: the documented durations).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// `watch.outage_grace` of the host.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// `EventSource` reconnection delay.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    retry: Duration,
    /// Longest wait for every client to converge after a fault.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// The host's log filter (`PERISCOPE_LOG`).
    #[arg(long, default_value = "error")]
    log: String,
    /// Comma-separated fault names (restart, pause60, pause90, drops, storm410, burst5xx, slow).
    #[arg(long)]
    only: Option<String>,
}

const FAULTS: &[&str] = &["restart", "pause60", "pause90", "drops", "storm410", "burst5xx", "slow"];

/// What one client saw.
#[derive(Debug, Default, Clone)]
struct ClientState {
    rows: BTreeMap<String, Value>,
    errors: u32,
    budget: u32,
    worst_budget: u32,
    last_bump: Option<Instant>,
    polling: bool,
}

impl ClientState {
    fn bump(&mut self) {
        let now = Instant::now();
        if self
            .last_bump
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.budget += 1;
            self.last_bump = Some(now);
            self.worst_budget = self.worst_budget.max(self.budget);
            if self.budget >= 4 {
                self.polling = true;
            }
        }
    }

    fn apply(&mut self, event: &str, data: &str) {
        let Ok(data) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let key = |v: &Value| {
            format!(
                "{}/{}",
                v["namespace"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or("")
            )
        };
        match event {
            "snapshot" => {
                self.rows = data["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| (key(i), i.clone()))
                    .collect();
                self.budget = 0;
            }
            "added" | "modified" => {
                self.rows.insert(key(&data["object"]), data["object"].clone());
                self.budget = 0;
            }
            "deleted" => {
                self.rows.remove(&key(&data["object"]));
                self.budget = 0;
            }
            "error" => {
                self.errors += 1;
                self.bump();
            }
            _ => {}
        }
    }
}

/// A browser-like client: reconnects with `Last-Event-ID` until told to stop or until
/// the SPA's budget sends it to polling; publishes its state after every frame.
async fn run_client(
    url: String,
    retry: Duration,
    tx: watch::Sender<ClientState>,
    stop: tokio_util::sync::CancellationToken,
) {
    let http = reqwest::Client::new();
    let mut state = ClientState::default();
    let mut last_id: Option<String> = None;
    let list_url = url.trim_end_matches("/watch").to_string();
    while !stop.is_cancelled() {
        if state.polling {
            // The SPA after four failures: polls the list route every 5 s for good.
            if let Ok(response) = http.get(&list_url).send().await
                && response.status().is_success()
                && let Ok(body) = response.json::<Value>().await
            {
                let items = json!({ "items": body["pods"].clone() }).to_string();
                let budget = state.budget;
                state.apply("snapshot", &items);
                state.budget = budget;
                let _ = tx.send(state.clone());
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        }
        let mut request = http.get(&url);
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        if let Ok(response) = request.send().await
            && response.status().is_success()
        {
            let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => match event {
                        Some(Ok(event)) => {
                            if !event.id.is_empty() {
                                last_id = Some(event.id.clone());
                            }
                            state.apply(&event.event, &event.data);
                            let _ = tx.send(state.clone());
                        }
                        _ => break,
                    },
                }
            }
        }
        state.bump();
        let _ = tx.send(state.clone());
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// The churn: a model of the pods this writer made, so it can modify and delete them.
struct Writer {
    pods: BTreeMap<String, u64>,
    n: u64,
}

impl Writer {
    fn step(&mut self, served: &Served) {
        self.n += 1;
        let n = self.n;
        let namespace = ["shop", "payments", "batch", "web"][(n % 4) as usize];
        let pod = |name: &str, node: u64| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": name, "namespace": namespace },
                "spec": { "nodeName": format!("node-{node}"), "containers": [{ "name": "app", "image": "example/app:1" }] },
                "status": { "phase": "Running" },
            })
        };
        let existing: Vec<String> = self.pods.keys().filter(|k| k.starts_with(namespace)).cloned().collect();
        match n % 5 {
            0 | 1 if existing.len() < 60 => {
                let name = format!("p-{n}");
                if served.sim.apply(pod(&name, n)).is_ok() {
                    self.pods.insert(format!("{namespace}/{name}"), n);
                }
            }
            4 if !existing.is_empty() => {
                let key = &existing[(n as usize / 5) % existing.len()];
                let name = key.split('/').nth(1).unwrap_or_default().to_string();
                if served.sim.delete("pods", Some(namespace), &name).is_ok() {
                    self.pods.remove(key);
                }
            }
            _ if !existing.is_empty() => {
                let key = &existing[(n as usize / 3) % existing.len()];
                let name = key.split('/').nth(1).unwrap_or_default().to_string();
                let _ = served.sim.apply(pod(&name, n));
            }
            _ => {}
        }
    }
}

/// The sim's pods as the DTO fields the churn changes: `namespace/name` → nodeName.
fn truth(served: &Served) -> BTreeMap<String, String> {
    served
        .sim
        .objects("pods", None)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or("")
            );
            (key, p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Missing, extra and stale rows of one client's view.
fn divergence(view: &ClientState, truth: &BTreeMap<String, String>) -> usize {
    let missing_or_stale = truth
        .iter()
        .filter(|(key, node)| view.rows.get(*key).and_then(|row| row["nodeName"].as_str()) != Some(node.as_str()))
        .count();
    let extra = view.rows.keys().filter(|key| !truth.contains_key(*key)).count();
    missing_or_stale + extra
}

struct Outcome {
    fault: &'static str,
    length: Duration,
    divergent: usize,
    errors: u32,
    polling: usize,
    worst_budget: u32,
    converged_in: Option<Duration>,
}

async fn run_fault(fault: &'static str, args: &Args) -> Result<Outcome> {
    let grace = humantime::format_duration(args.grace).to_string();
    // Against the sim (bookmarks every 5 s) a silent watch is noticed after 10 s.
    let mut served = serve(&[
        ("PERISCOPE_WATCH_OUTAGE_GRACE", grace.as_str()),
        ("PERISCOPE_WATCH_SILENCE_TIMEOUT", "10s"),
        ("PERISCOPE_WATCH_REQUEST_TIMEOUT", "5s"),
        ("PERISCOPE_WATCH_PER_USER_LIMIT", "0"),
        ("PERISCOPE_WATCH_MAX_STREAM_DURATION", "0s"),
        ("PERISCOPE_LOG", args.log.as_str()),
    ])
    .await;
    let scaled = |secs: f64| Duration::from_secs_f64(secs * args.scale);
    let length = match fault {
        "restart" => scaled(10.0),
        "pause60" => scaled(60.0),
        "pause90" => scaled(90.0),
        "drops" => scaled(120.0),
        "storm410" | "burst5xx" => scaled(60.0),
        "slow" => scaled(30.0),
        other => bail!("unknown fault {other:?}; known: {}", FAULTS.join(", ")),
    };
    let mut writer = Writer {
        pods: BTreeMap::new(),
        n: 0,
    };
    for _ in 0..40 {
        writer.step(&served);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let mut views = Vec::new();
    for _ in 0..args.clients {
        let (tx, rx) = watch::channel(ClientState::default());
        tokio::spawn(run_client(served.url("pods/watch"), args.retry, tx, stop.clone()));
        views.push(rx);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let tick = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let began = Instant::now();
    let mut next_action = Duration::ZERO;
    match fault {
        "pause60" | "pause90" => served.sim.pause(),
        "slow" => served.sim.set_latency(Duration::from_secs(3)),
        _ => {}
    }
    while began.elapsed() < length {
        writer.step(&served);
        if began.elapsed() >= next_action {
            match fault {
                "restart" if next_action.is_zero() => {
                    let fresh = SimOptions {
                        scenario: Scenario::Empty,
                        ..SimOptions::default()
                    };
                    served.sim.restart(fresh, scaled(5.0)).await?;
                    writer.pods.clear();
                    next_action = Duration::MAX;
                }
                "drops" => {
                    let _ = served.sim.drop_watches(None);
                    next_action += Duration::from_secs(3);
                }
                "storm410" => {
                    served.sim.expire_watches(FaultCount::Times(3));
                    let _ = served.sim.drop_watches(None);
                    next_action += Duration::from_secs(5);
                }
                "burst5xx" => {
                    // A relist that fails three times in a row, every 20 s.
                    served.sim.fail_lists(ListFailure::InternalError, FaultCount::Times(3));
                    served.sim.expire_watches(FaultCount::Times(1));
                    let _ = served.sim.drop_watches(None);
                    next_action += Duration::from_secs(20);
                }
                "slow" if next_action.is_zero() => {
                    served.sim.expire_watches(FaultCount::Times(1));
                    let _ = served.sim.drop_watches(None);
                    next_action = Duration::MAX;
                }
                _ => next_action = Duration::MAX,
            }
        }
        tokio::time::sleep(tick).await;
    }
    served.sim.clear_faults();
    let ended = Instant::now();
    let truth_now = truth(&served);
    let mut converged_in = None;
    while ended.elapsed() < args.settle {
        if views.iter().all(|v| divergence(&v.borrow(), &truth_now) == 0) {
            converged_in = Some(ended.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let states: Vec<ClientState> = views.iter().map(|v| v.borrow().clone()).collect();
    served.shutdown().await;
    Ok(Outcome {
        fault,
        length,
        divergent: states.iter().map(|s| divergence(s, &truth_now)).sum(),
        errors: states.iter().map(|s| s.errors).sum(),
        polling: states.iter().filter(|s| s.polling).count(),
        worst_budget: states.iter().map(|s| s.worst_budget).max().unwrap_or(0),
        converged_in,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let only: Vec<&str> = args
        .only
        .as_deref()
        .map_or(FAULTS.to_vec(), |s| s.split(',').map(str::trim).collect());
    println!(
        "clients {} · {} changes/s · outage_grace {} · EventSource retry {}\n",
        args.clients,
        args.rate,
        humantime::format_duration(args.grace),
        humantime::format_duration(args.retry)
    );
    println!(
        "| fault | length | divergent objects | error frames | clients polling | worst SPA budget | converged after |"
    );
    println!("|---|---|---|---|---|---|---|");
    for fault in FAULTS.iter().filter(|f| only.contains(f)) {
        let outcome = run_fault(fault, &args).await?;
        println!(
            "| {} | {:.0?} | {} | {} | {} of {} | {} | {} |",
            outcome.fault,
            outcome.length,
            outcome.divergent,
            outcome.errors,
            outcome.polling,
            args.clients,
            outcome.worst_budget,
            outcome
                .converged_in
                .map_or_else(|| "did not".to_string(), |d| format!("{:.1?}", d))
        );
    }
    Ok(())
}
