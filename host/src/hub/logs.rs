//! Container logs: a hub source beside the list-then-watch upstreams.
//!
//! - **One live tail per container.** Followers of the same (cluster, namespace, pod,
//!   container) share one upstream `GET …/pods/{pod}/log?follow=true&tailLines=0&
//!   timestamps=true`, whose lines are parsed once (kubelet timestamp, level) and fanned
//!   out over a broadcast channel of [`HubOptions::queue`](super::HubOptions) lines. The
//!   first follower starts it; the last one leaving stops it.
//! - **Every subscriber backfills for itself.** A subscriber joins the live tail first,
//!   waits until it is connected, then makes its own `tailLines=N` request (no
//!   follow). Lines of the live tail up to the backfill's last timestamp are dropped,
//!   so nothing is missed between the two and nothing is repeated. `follow: false` is
//!   the backfill alone.
//! - **The end of the log is the end of the stream.** When the live tail ends, the pod
//!   is read: deleted, replaced (another uid) or its container no longer running means
//!   the log is over and followers complete; otherwise (a dropped connection) the tail
//!   resumes with `sinceSeconds` from its last line, dropping what it already sent.
//! - **A slow follower never slows the tail.** One that falls a whole queue behind gets
//!   [`LogEvent::Lagged`] and its transport ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::cluster::Clusters;

/// The inferred severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Anything else.
    Info,
    /// `warn`, `warning`.
    Warn,
    /// `error`, `fatal`, `panic`, `critical`.
    Error,
}

/// One parsed line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The kubelet's timestamp, RFC 3339 UTC with nine fractional digits; `None` for a
    /// line without a valid prefix.
    pub timestamp: Option<String>,
    /// The same instant as Unix nanoseconds (for ordering and de-duplication).
    pub at: Option<i128>,
    /// The inferred level.
    pub level: Level,
    /// The line without its timestamp prefix.
    pub message: String,
}

/// Which container's log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    /// Configured cluster name.
    pub cluster: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (resolved: never empty).
    pub container: String,
}

/// What a log stream yields; the stream ends when the log does.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A line.
    Line(Arc<LogLine>),
    /// The subscriber fell a whole queue behind the live tail.
    Lagged,
    /// The upstream failed; the message says how.
    Failed(String),
}

/// Why a log stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No cluster of that name is configured.
    #[error("cluster not found")]
    UnknownCluster,
    /// The pod does not exist.
    #[error("pod {namespace}/{pod} not found")]
    UnknownPod {
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
    },
    /// The pod has no container of that name.
    #[error("container {container:?} not found in pod {namespace}/{pod} (containers: {known})")]
    UnknownContainer {
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The container asked for.
        container: String,
        /// The pod's containers, comma-separated.
        known: String,
    },
    /// The apiserver refused or failed the request.
    #[error("{step} of pod {namespace}/{pod}")]
    Upstream {
        /// `read` (the pod) or `log` (its log).
        step: &'static str,
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The apiserver did not answer in time.
    #[error("no answer for the log of pod {namespace}/{pod} within {timeout:?} (watch.request_timeout)")]
    Timeout {
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The bound.
        timeout: Duration,
    },
}

/// The state of a live tail.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// The request is in flight.
    Connecting,
    /// Lines flow.
    Live,
    /// The log ended or the tail failed.
    Done,
}

/// What a live tail publishes.
#[derive(Debug, Clone)]
enum TailEvent {
    Line(Arc<LogLine>),
    /// The log is over (pod deleted or replaced, container finished).
    End,
    Failed(String),
}

/// A shared live tail.
struct Tail {
    tx: broadcast::Sender<TailEvent>,
    phase: watch::Sender<Phase>,
    subscribers: std::sync::atomic::AtomicUsize,
}

struct TailEntry {
    tail: Arc<Tail>,
    task: JoinHandle<()>,
}

/// The live tails of every container somebody follows.
pub struct LogStreams {
    clusters: Clusters,
    queue: usize,
    timeout: Duration,
    tails: Mutex<HashMap<LogKey, TailEntry>>,
}

impl std::fmt::Debug for LogStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStreams").finish_non_exhaustive()
    }
}

/// A follower's hold on a live tail: dropping it stops the tail when it was the last.
struct TailGuard {
    streams: Arc<LogStreams>,
    key: LogKey,
    tail: Arc<Tail>,
}

impl Drop for TailGuard {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.tail.subscribers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut tails = self.streams.lock();
            let same = tails.get(&self.key).is_some_and(|e| Arc::ptr_eq(&e.tail, &self.tail));
            if same
                && self.tail.subscribers.load(Ordering::Acquire) == 0
                && let Some(entry) = tails.remove(&self.key)
            {
                entry.task.abort();
                tracing::debug!(cluster = %self.key.cluster, namespace = %self.key.namespace, pod = %self.key.pod, container = %self.key.container, "log tail stopped");
            }
        }
    }
}

impl LogStreams {
    /// Log streams of `clusters`; `queue` lines a follower may fall behind, `timeout`
    /// for each request to be answered.
    pub fn new(clusters: Clusters, queue: usize, timeout: Duration) -> Arc<LogStreams> {
        Arc::new(LogStreams {
            clusters,
            queue: queue.max(1),
            timeout,
            tails: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LogKey, TailEntry>> {
        self.tails.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Containers with a running live tail (debug and tests).
    pub fn tail_keys(&self) -> Vec<LogKey> {
        self.lock().keys().cloned().collect()
    }

    fn client(&self, cluster: &str) -> Result<kube::Client, LogError> {
        self.clusters
            .get(cluster)
            .map(|c| c.client.clone())
            .ok_or(LogError::UnknownCluster)
    }

    /// The key of `pod`'s log: `container`, or the first container of the pod's spec.
    pub async fn resolve(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<LogKey, LogError> {
        let api: Api<Pod> = Api::namespaced(self.client(cluster)?, namespace);
        let found = self
            .timed(namespace, pod, api.get_opt(pod))
            .await?
            .map_err(|source| LogError::Upstream {
                step: "read",
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                source: Box::new(source),
            })?;
        let Some(found) = found else {
            return Err(LogError::UnknownPod {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            });
        };
        let spec = found.spec.unwrap_or_default();
        let names: Vec<String> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect();
        let container = match container.filter(|c| !c.is_empty()) {
            Some(wanted) if names.iter().any(|n| n == wanted) => wanted.to_string(),
            None if !spec.containers.is_empty() => spec.containers[0].name.clone(),
            wanted => {
                return Err(LogError::UnknownContainer {
                    namespace: namespace.to_string(),
                    pod: pod.to_string(),
                    container: wanted.unwrap_or_default().to_string(),
                    known: names.join(", "),
                });
            }
        };
        Ok(LogKey {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container,
        })
    }

    async fn timed<T>(
        &self,
        namespace: &str,
        pod: &str,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, LogError> {
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| LogError::Timeout {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                timeout: self.timeout,
            })
    }

    /// The log of `key`: its last `tail` lines, then, with `follow`, the shared live
    /// tail, until the log ends.
    pub async fn open(
        self: &Arc<Self>,
        key: LogKey,
        tail: u32,
        follow: bool,
    ) -> Result<futures::stream::BoxStream<'static, LogEvent>, LogError> {
        let live = if follow { Some(self.follow(&key)?) } else { None };
        if let Some((guard, _)) = &live {
            // Wait for the tail to be connected, so the backfill starts no earlier than
            // the live tail: nothing falls between them.
            let mut phase = guard.tail.phase.subscribe();
            let connected = phase.wait_for(|p| *p != Phase::Connecting);
            // The tail bounds its own request; a closed sender means it was stopped.
            let _ = tokio::time::timeout(self.timeout, connected).await;
        }
        let backfill = self.backfill(&key, tail).await?;
        let cut = backfill.iter().rev().find_map(|line| line.at);
        let lines = futures::stream::iter(backfill.into_iter().map(|line| LogEvent::Line(Arc::new(line))));
        let Some((guard, rx)) = live else {
            return Ok(lines.boxed());
        };
        // The tail may have ended or failed before this subscriber's backfill was read;
        // its receiver still holds that event, which ends the stream below.
        let live = futures::stream::unfold(Some((rx, guard)), move |state| async move {
            let (mut rx, guard) = state?;
            loop {
                match rx.recv().await {
                    Ok(TailEvent::Line(line)) if cut.is_some() && line.at.is_some_and(|at| Some(at) <= cut) => {}
                    Ok(TailEvent::Line(line)) => return Some((LogEvent::Line(line), Some((rx, guard)))),
                    Ok(TailEvent::End) | Err(broadcast::error::RecvError::Closed) => return None,
                    // A failure or a lag ends the stream once it is reported.
                    Ok(TailEvent::Failed(message)) => return Some((LogEvent::Failed(message), None)),
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some((LogEvent::Lagged, None)),
                }
            }
        });
        Ok(lines.chain(live).boxed())
    }

    /// Joins (or starts) the live tail of `key`.
    fn follow(self: &Arc<Self>, key: &LogKey) -> Result<(TailGuard, broadcast::Receiver<TailEvent>), LogError> {
        use std::sync::atomic::Ordering;
        let client = self.client(&key.cluster)?;
        let mut tails = self.lock();
        let running = tails
            .get(key)
            .filter(|entry| !matches!(&*entry.tail.phase.borrow(), Phase::Done))
            .map(|entry| entry.tail.clone());
        let (tail, rx) = match running {
            Some(tail) => {
                let rx = tail.tx.subscribe();
                (tail, rx)
            }
            None => {
                let (tx, _) = broadcast::channel(self.queue);
                let tail = Arc::new(Tail {
                    tx,
                    phase: watch::Sender::new(Phase::Connecting),
                    subscribers: std::sync::atomic::AtomicUsize::new(0),
                });
                // Subscribed before the task runs: its first event cannot be missed.
                let rx = tail.tx.subscribe();
                let task = tokio::spawn(run_tail(tail.clone(), client, key.clone(), self.timeout));
                tracing::debug!(cluster = %key.cluster, namespace = %key.namespace, pod = %key.pod, container = %key.container, "log tail started");
                if let Some(old) = tails.insert(
                    key.clone(),
                    TailEntry {
                        tail: tail.clone(),
                        task,
                    },
                ) {
                    old.task.abort();
                }
                (tail, rx)
            }
        };
        tail.subscribers.fetch_add(1, Ordering::AcqRel);
        drop(tails);
        Ok((
            TailGuard {
                streams: self.clone(),
                key: key.clone(),
                tail,
            },
            rx,
        ))
    }

    /// The last `tail` lines of `key`'s log, without following.
    async fn backfill(&self, key: &LogKey, tail: u32) -> Result<Vec<LogLine>, LogError> {
        if tail == 0 {
            return Ok(Vec::new());
        }
        let api: Api<Pod> = Api::namespaced(self.client(&key.cluster)?, &key.namespace);
        let params = LogParams {
            container: Some(key.container.clone()),
            tail_lines: Some(i64::from(tail)),
            timestamps: true,
            ..LogParams::default()
        };
        let upstream = |source| LogError::Upstream {
            step: "log",
            namespace: key.namespace.clone(),
            pod: key.pod.clone(),
            source: Box::new(source),
        };
        let read = async {
            let reader = api.log_stream(&key.pod, &params).await?;
            Box::pin(reader.lines())
                .map_ok(|line| parse_line(&line))
                .try_collect::<Vec<LogLine>>()
                .await
                .map_err(kube::Error::ReadEvents)
        };
        self.timed(&key.namespace, &key.pod, read).await?.map_err(upstream)
    }
}

/// The live tail's loop: follow the log, publish each line, and on the end of the
/// body decide whether the log is over or the connection merely dropped.
async fn run_tail(tail: Arc<Tail>, client: kube::Client, key: LogKey, timeout: Duration) {
    let api: Api<Pod> = Api::namespaced(client, &key.namespace);
    let mut last: Option<i128> = None;
    let mut uid: Option<String> = None;
    let mut retries = 0u32;
    loop {
        let since = last.map(|at| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
            // Whole seconds, rounded up: the lines already sent are dropped below.
            i64::try_from((now - at) / 1_000_000_000 + 1).unwrap_or(i64::MAX)
        });
        let params = LogParams {
            container: Some(key.container.clone()),
            follow: true,
            tail_lines: if since.is_none() { Some(0) } else { None },
            since_seconds: since,
            timestamps: true,
            ..LogParams::default()
        };
        let reader = match tokio::time::timeout(timeout, api.log_stream(&key.pod, &params)).await {
            Ok(Ok(reader)) => reader,
            Ok(Err(error)) => {
                return fail(
                    &tail,
                    &key,
                    format!("log of pod {}/{}: {error}", key.namespace, key.pod),
                );
            }
            Err(_) => {
                return fail(
                    &tail,
                    &key,
                    format!("log of pod {}/{}: no answer within {timeout:?}", key.namespace, key.pod),
                );
            }
        };
        tail.phase.send_replace(Phase::Live);
        let mut lines = Box::pin(reader.lines());
        while let Some(line) = lines.next().await {
            let Ok(line) = line else { break };
            let line = parse_line(&line);
            if let (Some(at), Some(before)) = (line.at, last)
                && at <= before
            {
                continue;
            }
            if line.at.is_some() {
                last = line.at;
            }
            retries = 0;
            let _ = tail.tx.send(TailEvent::Line(Arc::new(line)));
        }
        // The body ended: over, unless the same pod still runs this container.
        let running = match tokio::time::timeout(timeout, api.get_opt(&key.pod)).await {
            Ok(Ok(Some(pod))) => {
                let this_uid = pod.metadata.uid.clone();
                let same = uid.is_none() || uid == this_uid;
                uid = this_uid;
                same && container_running(&pod, &key.container)
            }
            _ => false,
        };
        if !running || retries >= 3 {
            tracing::debug!(cluster = %key.cluster, namespace = %key.namespace, pod = %key.pod, container = %key.container, "log ended");
            tail.phase.send_replace(Phase::Done);
            let _ = tail.tx.send(TailEvent::End);
            return;
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(200 * u64::from(retries))).await;
    }
}

fn fail(tail: &Tail, key: &LogKey, message: String) {
    tracing::warn!(cluster = %key.cluster, namespace = %key.namespace, pod = %key.pod, container = %key.container, %message, "log tail failed");
    let _ = tail.tx.send(TailEvent::Failed(message));
    tail.phase.send_replace(Phase::Done);
}

fn container_running(pod: &Pod, container: &str) -> bool {
    pod.status
        .as_ref()
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .any(|s| s.name == container && s.state.as_ref().is_some_and(|st| st.running.is_some()))
}

/// One raw log line as the kubelet writes it with `timestamps=true`: an RFC 3339
/// timestamp, a space, the text. A line without a valid prefix keeps its whole text
/// and has no timestamp.
pub fn parse_line(raw: &str) -> LogLine {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let parsed = raw.split_once(' ').and_then(|(prefix, rest)| {
        // Only digits, `T`, `Z`, `:`, `-`, `+` and `.` belong in the prefix; a quick
        // check keeps the parser off arbitrary first words.
        let plausible = prefix.len() >= 20 && prefix.as_bytes()[0].is_ascii_digit();
        let at = time::OffsetDateTime::parse(prefix, &Rfc3339)
            .ok()
            .filter(|_| plausible)?;
        Some((at, rest))
    });
    let (at, message) = match parsed {
        Some((at, rest)) => (Some(at.to_offset(time::UtcOffset::UTC)), rest),
        None => (None, raw),
    };
    LogLine {
        timestamp: at.map(format_nanos),
        at: at.map(time::OffsetDateTime::unix_timestamp_nanos),
        level: infer_level(message),
        message: message.to_string(),
    }
}

/// `2026-05-01T12:00:00.000000500Z`: RFC 3339 UTC with nine fractional digits.
fn format_nanos(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond()
    )
}

/// Keys whose value is a level, in JSON (`"level": "warn"`) or key-value form
/// (`level=warn`).
const LEVEL_KEYS: &[&str] = &["level", "lvl", "severity"];

/// The level of a level value (`error`, `WARN`…); other values are INFO.
fn level_of(value: &str) -> Level {
    const ERRORS: &[&str] = &["error", "fatal", "panic", "critical"];
    const WARNINGS: &[&str] = &["warn", "warning"];
    if ERRORS.iter().any(|e| value.eq_ignore_ascii_case(e)) {
        Level::Error
    } else if WARNINGS.iter().any(|w| value.eq_ignore_ascii_case(w)) {
        Level::Warn
    } else {
        Level::Info
    }
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Byte offsets of case-insensitive occurrences of the ASCII `needle` in `hay`.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..(hay.len() + 1).saturating_sub(needle.len()))
        .filter(move |&i| hay.len() >= i + needle.len() && hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// The value of a JSON-ish `"key"` (any case, spaces around the colon allowed) when it
/// is a string: `"level" : "warn"` → `warn`.
fn json_value<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    let bytes = message.as_bytes();
    let quoted = format!("\"{key}\"");
    find_all(bytes, quoted.as_bytes()).find_map(|at| {
        let rest = message.get(at + quoted.len()..)?.trim_start();
        let rest = rest.strip_prefix(':')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        Some(&rest[..rest.find('"')?])
    })
}

/// The value of a `key=value` pair (any case; the key starts a word, the value may be
/// quoted and ends at the first non-word character): `level=warn` → `warn`.
fn pair_value<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    let bytes = message.as_bytes();
    let needle = format!("{key}=");
    find_all(bytes, needle.as_bytes()).find_map(|at| {
        if at > 0 && is_word(bytes[at - 1]) {
            return None;
        }
        let rest = message.get(at + needle.len()..)?;
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest.bytes().position(|b| !is_word(b)).unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

/// The level of a log message, best effort, by the first rule that applies
/// (`spec/streams.md`):
///
/// 1. a JSON-ish `"level"`, `"lvl"` or `"severity"` string (case-insensitive, spaces
///    around the colon allowed) decides: error/fatal/panic/critical → ERROR,
///    warn/warning → WARN, anything else INFO;
/// 2. so does a `level=`, `lvl=` or `severity=` pair whose key starts a word;
/// 3. a bracketed `[ERROR]`, `[FATAL]` (ERROR), `[WARN]`, `[WARNING]` (WARN);
/// 4. the message starts with `panic:`, `fatal:`, `error:` (ERROR) or `warn:`,
///    `warning:` (WARN), each a whole word: `errors=0` is not an error;
/// 5. otherwise INFO.
pub fn infer_level(message: &str) -> Level {
    for key in LEVEL_KEYS {
        if let Some(value) = json_value(message, key) {
            return level_of(value);
        }
    }
    for key in LEVEL_KEYS {
        if let Some(value) = pair_value(message, key) {
            return level_of(value);
        }
    }
    let bytes = message.as_bytes();
    for (marker, level) in [
        ("[error]", Level::Error),
        ("[fatal]", Level::Error),
        ("[warn]", Level::Warn),
        ("[warning]", Level::Warn),
    ] {
        if find_all(bytes, marker.as_bytes()).next().is_some() {
            return level;
        }
    }
    let start = message.trim_start().as_bytes();
    for (marker, level) in [
        ("panic:", Level::Error),
        ("fatal:", Level::Error),
        ("error:", Level::Error),
        ("warn:", Level::Warn),
        ("warning:", Level::Warn),
    ] {
        if start.len() >= marker.len() && start[..marker.len()].eq_ignore_ascii_case(marker.as_bytes()) {
            return level;
        }
    }
    Level::Info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_spec_rules_case_by_case() {
        use Level::{Error as E, Info as I, Warn as W};
        let cases: &[(&str, Level)] = &[
            // JSON-ish keys, any case, spaces around the colon.
            (r#"{"level":"error","msg":"x"}"#, E),
            (r#"{"level" : "WARN","msg":"x"}"#, W),
            (r#"{"Level":"Warning"}"#, W),
            (r#"{"lvl":"fatal"}"#, E),
            (r#"{"severity": "CRITICAL"}"#, E),
            (r#"{"severity":"panic"}"#, E),
            (r#"{"level":"info","msg":"error: not this"}"#, I),
            (r#"{"level":"debug","msg":"cache hit"}"#, I),
            (r#"{"loglevel":"error"}"#, I),
            (r#"{"level":"errors"}"#, I),
            // key=value pairs, the key at a word start, the value a whole word.
            ("level=error msg=\"boom\"", E),
            ("ts=1 LEVEL=warn msg=x", W),
            ("lvl=WARNING", W),
            ("severity=\"fatal\" x", E),
            ("level=info msg=\"error: no\"", I),
            ("loglevel=error", I),
            ("level=errors", I),
            ("sublvl=warn", I),
            // brackets.
            ("[ERROR] upstream timed out", E),
            ("2026 [fatal] gone", E),
            ("[WARN] slow query", W),
            ("[WARNING] slow", W),
            ("[ERR] short", I),
            ("[INFO] fine", I),
            ("[DEBUG] cache", I),
            // word-start markers at the start only.
            ("panic: runtime error: index out of range", E),
            ("fatal: cannot start", E),
            ("Error: bad input", E),
            ("  warn: leading spaces", W),
            ("warning: deprecated", W),
            ("errors=0 all good", I),
            ("warnings: 0", I),
            ("GET /api 200 (errors=0, line 4)", I),
            ("an error: in the middle", I),
            ("panicked at main.rs", I),
            // nothing.
            ("", I),
            ("plain text", I),
            ("ünïcode [ERROR] ok", E),
        ];
        for (message, level) in cases {
            assert_eq!(infer_level(message), *level, "{message:?}");
        }
    }

    #[test]
    fn the_kubelet_prefix_is_parsed_and_a_line_without_one_keeps_its_text() {
        let line = parse_line("2026-05-01T12:00:00.000000500Z [WARN] slow");
        assert_eq!(line.timestamp.as_deref(), Some("2026-05-01T12:00:00.000000500Z"));
        assert_eq!(line.message, "[WARN] slow");
        assert_eq!(line.level, Level::Warn);
        assert!(line.at.is_some());
        let offset = parse_line("2026-05-01T14:00:00.123456789+02:00 x");
        assert_eq!(offset.timestamp.as_deref(), Some("2026-05-01T12:00:00.123456789Z"));
        for raw in [
            "no prefix here",
            "2026-13-01T00:00:00Z bad month",
            "",
            "x y",
            "2026-05-01T12:00:00Z",
        ] {
            let line = parse_line(raw);
            assert_eq!(line.timestamp, None, "{raw:?}");
            assert_eq!(line.message, raw);
        }
        assert_eq!(parse_line("error: x\r").message, "error: x");
    }
}
