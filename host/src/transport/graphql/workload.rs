//! `k8sWorkloadStatus`: one workload and its pods, through two hub views of its
//! namespace (`status:<kind>` and `status:pods`, see [`crate::hub::view`]), shared by
//! every subscriber of that scope and counted once against the per-user cap.
//!
//! The first record is the status at subscribe (once both views have their
//! snapshot); later ones are sent only when ready, desired, status, restarts or image
//! change. Changes that arrive together (a pod and its workload, within
//! [`SETTLE`]) make one record, not one per frame. A workload deleted (or gone after a
//! relist) completes the operation; one that does not exist at subscribe is
//! `NOT_FOUND`.
//!
//! Status rules (`spec/streams.md`, decision 95), first match wins:
//! 1. ERROR, the workload failed: its job failed, or the deployment exceeded its
//!    progress deadline (failures the controller declares, which stay until fixed).
//! 2. WARN, pods restart: a selected pod's container restarted within
//!    `[graphql] restart_window` (its `lastState.terminated.finishedAt`, or a restart
//!    count seen rising), or waits in CrashLoopBackOff. It stays WARN until the window
//!    passes with no restart, then the record after it follows the other rules: a crash
//!    loop, whose pods alternate between running, ready and backing off every few
//!    seconds, reads as one steady WARN instead of flapping.
//! 3. PENDING, progressing: the controller has not observed the latest spec, fewer
//!    replicas are updated than desired, a job is running, or a cron job's run is.
//! 4. WARN, replicas unavailable: the rollout is done but ready < desired; or a cron
//!    job's last scheduled run did not succeed.
//! 5. OK, the desired state is reached: ready = desired (0/0 included: a workload
//!    scaled to zero is where it was asked to be), a job completed, a cron job idle
//!    after a successful run (or before its first).

use std::collections::BTreeMap;
use std::time::Duration;

use async_graphql::futures_util::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::schema::{self, OperationContext, Workload, WorkloadKind, WorkloadStatus, coded, end_error};
use crate::hub::view::STATUS_PREFIX;
use crate::hub::{Frame, FrameKind, StreamKey};
use crate::transport::session::Item;

/// Opens both views and returns the operation's records.
pub async fn stream(
    context: &OperationContext,
    cluster: String,
    namespace: String,
    kind: WorkloadKind,
    name: String,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Workload>>> {
    let key = |token: &str| StreamKey {
        cluster: cluster.clone(),
        kind: format!("{STATUS_PREFIX}{token}"),
        namespace: Some(namespace.clone()),
        selector: None,
    };
    let workloads = schema::open(context, key(kind.token())).await?;
    let pods = schema::companion(context, &workloads, key("pods")).await?;
    let merged = futures::stream::select(
        workloads.into_stream().map(Side::Workload),
        pods.into_stream().map(Side::Pods),
    );
    let tracker = Tracker {
        id: format!("{cluster}/{namespace}/{}/{name}", kind.token()),
        kind,
        name,
        namespace,
        workload: None,
        workload_seen: false,
        pods: BTreeMap::new(),
        pods_seen: false,
        rises: BTreeMap::new(),
        window: context.restart_window,
        last: None,
    };
    Ok(
        futures::stream::unfold(Some((merged.boxed(), tracker)), |state| async move {
            let (mut merged, mut tracker) = state?;
            loop {
                // Wait for a frame, or for a restart to leave the window (a change of
                // status with no frame).
                let side = match tracker.window_end() {
                    Some(end) => tokio::select! {
                        side = merged.next() => Some(side?),
                        () = tokio::time::sleep(end) => None,
                    },
                    None => Some(merged.next().await?),
                };
                if let Some(side) = side {
                    if let Some(end) = tracker.apply(side) {
                        return finish(end);
                    }
                    // What arrives with it (the workload after its pod, or the reverse)
                    // joins the same record.
                    let settle = tokio::time::sleep(SETTLE);
                    tokio::pin!(settle);
                    loop {
                        tokio::select! {
                            side = merged.next() => match side {
                                Some(side) => if let Some(end) = tracker.apply(side) {
                                    return finish(end);
                                },
                                None => return None,
                            },
                            () = &mut settle => break,
                        }
                    }
                }
                if let Some(record) = tracker.emit(OffsetDateTime::now_utc()) {
                    return Some((Ok(*record), Some((merged, tracker))));
                }
            }
        })
        .boxed(),
    )
}

/// How long changes that arrive after one another still make one record.
const SETTLE: Duration = Duration::from_millis(50);

type Merged = BoxStream<'static, Side>;
type Yield = (async_graphql::Result<Workload>, Option<(Merged, Tracker)>);

/// The operation's last item for `end`: an error, or nothing (complete).
fn finish(end: End) -> Option<Yield> {
    match end {
        End::Fail(error) => Some((Err(error), None)),
        End::Complete => None,
    }
}

/// An item of one of the two sessions.
enum Side {
    Workload(Item),
    Pods(Item),
}

/// How an operation ends.
enum End {
    Fail(async_graphql::Error),
    Complete,
}

/// What changes a record: ready, desired, status, restarts, image.
type Fingerprint = (i32, i32, WorkloadStatus, i32, String);

struct Tracker {
    id: String,
    kind: WorkloadKind,
    name: String,
    namespace: String,
    workload: Option<Value>,
    workload_seen: bool,
    pods: BTreeMap<String, Value>,
    pods_seen: bool,
    /// Per pod: its restart count when last seen, and when it was seen rising.
    rises: BTreeMap<String, (i64, Option<OffsetDateTime>)>,
    /// How long a restart keeps the workload WARN.
    window: Duration,
    last: Option<Fingerprint>,
}

/// The items of a snapshot frame, or the object of a delta frame.
fn payload(frame: &Frame) -> Value {
    serde_json::from_slice(&frame.data).unwrap_or(Value::Null)
}

impl Tracker {
    /// Takes one item in; `Some` when the operation ends.
    fn apply(&mut self, side: Side) -> Option<End> {
        match side {
            Side::Workload(Item::Frame(frame)) | Side::Pods(Item::Frame(frame)) if frame.kind == FrameKind::Relist => {}
            Side::Workload(Item::Frame(frame)) => {
                let data = payload(&frame);
                match frame.kind {
                    FrameKind::Snapshot => {
                        let found = data["items"]
                            .as_array()
                            .and_then(|items| items.iter().find(|w| w["name"] == self.name.as_str()))
                            .cloned();
                        let existed = self.workload.is_some();
                        self.workload_seen = true;
                        match found {
                            Some(workload) => self.workload = Some(workload),
                            None if existed => return Some(End::Complete),
                            None => {
                                return Some(End::Fail(coded(
                                    "NOT_FOUND",
                                    format!(
                                        "{} {}/{} not found",
                                        self.kind.token().trim_end_matches('s'),
                                        self.namespace,
                                        self.name
                                    ),
                                )));
                            }
                        }
                    }
                    _ if data["object"]["name"] != self.name.as_str() => {}
                    FrameKind::Deleted => return Some(End::Complete),
                    _ => self.workload = Some(data["object"].clone()),
                }
            }
            Side::Pods(Item::Frame(frame)) => {
                let data = payload(&frame);
                match frame.kind {
                    FrameKind::Snapshot => {
                        self.pods_seen = true;
                        self.pods = data["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|pod| (pod["name"].as_str().unwrap_or_default().to_string(), pod.clone()))
                            .collect();
                        let pods = std::mem::take(&mut self.pods);
                        self.rises.retain(|name, _| pods.contains_key(name));
                        for (name, pod) in &pods {
                            self.count(name, pod);
                        }
                        self.pods = pods;
                    }
                    kind => {
                        let pod = &data["object"];
                        let name = pod["name"].as_str().unwrap_or_default().to_string();
                        if kind == FrameKind::Deleted {
                            self.pods.remove(&name);
                            self.rises.remove(&name);
                        } else {
                            self.count(&name, pod);
                            self.pods.insert(name, pod.clone());
                        }
                    }
                }
            }
            Side::Workload(Item::Ping) | Side::Pods(Item::Ping) => {}
            Side::Workload(Item::End(end)) | Side::Pods(Item::End(end)) => {
                return Some(match end_error(end) {
                    Some(error) => End::Fail(error),
                    None => End::Complete,
                });
            }
        }
        None
    }

    /// Notes a pod's restart count, and when it is seen rising (a restart whose
    /// `finishedAt` the pod may not carry).
    fn count(&mut self, name: &str, pod: &Value) {
        let restarts = pod["restarts"].as_i64().unwrap_or(0);
        let entry = self.rises.entry(name.to_string()).or_insert((restarts, None));
        if restarts > entry.0 {
            entry.1 = Some(OffsetDateTime::now_utc());
        }
        entry.0 = restarts;
    }

    /// When `pod` last restarted, as far as anyone can tell.
    fn last_restart(&self, name: &str, pod: &Value) -> Option<OffsetDateTime> {
        let finished = pod["lastRestart"]
            .as_str()
            .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok());
        let seen = self.rises.get(name).and_then(|(_, at)| *at);
        finished.max(seen)
    }

    /// The selected pods, by name.
    fn selected(&self) -> Vec<(&String, &Value)> {
        let Some(workload) = &self.workload else {
            return Vec::new();
        };
        self.pods.iter().filter(|(_, pod)| selects(workload, pod)).collect()
    }

    /// Whether a selected pod restarts: in CrashLoopBackOff, or restarted within the
    /// window before `now`.
    fn restarting(&self, now: OffsetDateTime) -> bool {
        self.selected().into_iter().any(|(name, pod)| {
            pod["crashLoop"] == true || self.last_restart(name, pod).is_some_and(|at| now - at < self.window)
        })
    }

    /// How long until the newest restart leaves the window (while one is in it).
    fn window_end(&self) -> Option<Duration> {
        let now = OffsetDateTime::now_utc();
        self.selected()
            .into_iter()
            .filter_map(|(name, pod)| self.last_restart(name, pod))
            .map(|at| at + self.window - now)
            .filter(|left| left.is_positive())
            .max()
            .map(|left| left.unsigned_abs() + Duration::from_millis(1))
    }

    /// The record at `now`, unless it is the one last sent (or both views are not in).
    fn emit(&mut self, now: OffsetDateTime) -> Option<Box<Workload>> {
        if !(self.workload_seen && self.pods_seen) {
            return None;
        }
        let workload = self.workload.as_ref()?;
        let pods: Vec<&Value> = self.selected().into_iter().map(|(_, pod)| pod).collect();
        let clamp = |v: &Value| i32::try_from(v.as_i64().unwrap_or(0)).unwrap_or(i32::MAX);
        let restarts = pods
            .iter()
            .map(|pod| clamp(&pod["restarts"]))
            .fold(0i32, i32::saturating_add);
        let record = Workload {
            id: self.id.clone().into(),
            kind: self.kind,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            ready: clamp(&workload["ready"]),
            desired: clamp(&workload["desired"]),
            status: status(workload, self.restarting(now)),
            restarts,
            image: workload["image"].as_str().unwrap_or_default().to_string(),
            labels: Some(async_graphql::Json(workload["labels"].clone())),
        };
        let fingerprint = (
            record.ready,
            record.desired,
            record.status,
            record.restarts,
            record.image.clone(),
        );
        if self.last.as_ref() == Some(&fingerprint) {
            return None;
        }
        self.last = Some(fingerprint);
        Some(Box::new(record))
    }
}

/// Whether the workload's selector picks `pod`: every `matchLabels` pair is among the
/// pod's labels. A job without one picks its pods by `job-name`; a cron job none.
fn selects(workload: &Value, pod: &Value) -> bool {
    match workload["selector"].as_object() {
        Some(selector) if !selector.is_empty() => selector.iter().all(|(k, v)| &pod["labels"][k] == v),
        _ => workload["kind"] == "Job" && pod["labels"]["job-name"] == workload["name"],
    }
}

/// The status rules of the module docs; `restarting`: a selected pod restarted within
/// the window or is in CrashLoopBackOff.
fn status(workload: &Value, restarting: bool) -> WorkloadStatus {
    let int = |key: &str| workload[key].as_i64().unwrap_or(0);
    let flag = |key: &str| workload[key] == true;
    if flag("failed") || flag("progressDeadlineExceeded") {
        return WorkloadStatus::Error;
    }
    if restarting {
        return WorkloadStatus::Warn;
    }
    let (desired, ready) = (int("desired"), int("ready"));
    match workload["kind"].as_str().unwrap_or_default() {
        "Job" if flag("complete") => WorkloadStatus::Ok,
        "Job" => WorkloadStatus::Pending,
        "CronJob" => {
            let time = |key: &str| {
                workload[key]
                    .as_str()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            };
            let last_run_failed = match (time("lastScheduleTime"), time("lastSuccessfulTime")) {
                (Some(scheduled), Some(succeeded)) => succeeded < scheduled,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if desired > 0 {
                WorkloadStatus::Pending
            } else if last_run_failed {
                WorkloadStatus::Warn
            } else {
                WorkloadStatus::Ok
            }
        }
        _ if !(flag("observed") && int("updated") >= desired) => WorkloadStatus::Pending,
        _ if ready < desired => WorkloadStatus::Warn,
        _ => WorkloadStatus::Ok,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(desired: i64, ready: i64, updated: i64) -> Value {
        json!({"kind": "Deployment", "name": "web", "desired": desired, "ready": ready, "updated": updated,
               "observed": true, "selector": {"app": "web"}, "image": "web:1"})
    }

    #[test]
    fn a_rollout_is_pending_then_ok_and_zero_of_zero_is_ok() {
        assert_eq!(status(&deployment(2, 1, 1), false), WorkloadStatus::Pending);
        assert_eq!(status(&deployment(2, 2, 2), false), WorkloadStatus::Ok);
        assert_eq!(
            status(&deployment(0, 0, 0), false),
            WorkloadStatus::Ok,
            "scaled to zero"
        );
    }

    #[test]
    fn unavailable_after_the_rollout_is_warn_and_so_are_restarts() {
        assert_eq!(status(&deployment(2, 1, 2), false), WorkloadStatus::Warn);
        assert_eq!(status(&deployment(2, 2, 2), true), WorkloadStatus::Warn);
        assert_eq!(status(&deployment(0, 0, 0), true), WorkloadStatus::Warn);
    }

    #[test]
    fn a_failed_job_and_an_exceeded_deadline_are_errors() {
        let job = json!({"kind": "Job", "failed": true, "desired": 1});
        assert_eq!(status(&job, false), WorkloadStatus::Error);
        let mut stuck = deployment(1, 0, 1);
        stuck["progressDeadlineExceeded"] = json!(true);
        assert_eq!(status(&stuck, true), WorkloadStatus::Error);
        let done = json!({"kind": "Job", "complete": true, "desired": 1, "ready": 1});
        assert_eq!(status(&done, false), WorkloadStatus::Ok);
    }

    #[test]
    fn a_cron_job_is_pending_while_a_run_is_active_and_warn_after_a_failed_run() {
        let cron = |active: i64, scheduled: Option<&str>, succeeded: Option<&str>| {
            json!({"kind": "CronJob", "desired": active, "ready": 0,
                   "lastScheduleTime": scheduled, "lastSuccessfulTime": succeeded})
        };
        assert_eq!(status(&cron(0, None, None), false), WorkloadStatus::Ok, "never ran");
        assert_eq!(
            status(&cron(1, Some("2026-05-01T12:00:00Z"), None), false),
            WorkloadStatus::Pending
        );
        let ok = cron(0, Some("2026-05-01T12:00:00Z"), Some("2026-05-01T12:00:09Z"));
        assert_eq!(status(&ok, false), WorkloadStatus::Ok);
        let failed = cron(0, Some("2026-05-01T13:00:00Z"), Some("2026-05-01T12:00:09Z"));
        assert_eq!(status(&failed, false), WorkloadStatus::Warn);
    }

    fn tracker(window: Duration) -> Tracker {
        Tracker {
            id: "test/shop/deployments/web".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
            namespace: "shop".into(),
            workload: Some(deployment(1, 1, 1)),
            workload_seen: true,
            pods: BTreeMap::new(),
            pods_seen: true,
            rises: BTreeMap::new(),
            window,
            last: None,
        }
    }

    #[test]
    fn a_restart_is_warn_for_the_window_then_ok() {
        let mut tracker = tracker(Duration::from_secs(60));
        let at = OffsetDateTime::now_utc();
        let restarted = (at - time::Duration::seconds(5)).format(&Rfc3339).unwrap();
        let pod = json!({"name": "web-a", "labels": {"app": "web"}, "restarts": 3, "ready": true,
                         "crashLoop": false, "lastRestart": restarted});
        tracker.pods.insert("web-a".into(), pod);
        assert_eq!(tracker.emit(at).unwrap().status, WorkloadStatus::Warn);
        assert!(
            tracker.emit(at + time::Duration::seconds(30)).is_none(),
            "no change, no record"
        );
        let end = tracker.window_end().unwrap();
        assert!(end <= Duration::from_secs(56), "{end:?}");
        let after = tracker.emit(at + time::Duration::seconds(56)).unwrap();
        assert_eq!((after.status, after.restarts), (WorkloadStatus::Ok, 3));
    }

    #[test]
    fn selectors_match_label_subsets() {
        let pod = json!({"labels": {"app": "web", "pod-template-hash": "x"}});
        assert!(selects(&deployment(1, 1, 1), &pod));
        assert!(!selects(&deployment(1, 1, 1), &json!({"labels": {"app": "db"}})));
    }
}
