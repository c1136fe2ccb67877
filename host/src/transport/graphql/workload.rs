//! `k8sWorkloadStatus`: one workload and its pods, through two hub views of its
//! namespace (`status:<kind>` and `status:pods`, see [`crate::hub::view`]), shared by
//! every subscriber of that scope and counted once against the per-user cap.
//!
//! The first record is the status at subscribe (once both views have their
//! snapshot); later ones are sent only when ready, desired, status, restarts or image
//! change. A workload deleted (or gone after a relist) completes the operation; one
//! that does not exist at subscribe is `NOT_FOUND`.
//!
//! Status rules (`spec/streams.md`), first match wins:
//! 1. ERROR: the job failed, the deployment exceeded its progress deadline, or a
//!    selected pod is in CrashLoopBackOff.
//! 2. OK: the job completed; a cron job (its runs are jobs of their own); or ready =
//!    desired > 0 with the rollout done.
//! 3. PENDING: progressing (the controller has not observed the latest spec, or fewer
//!    replicas are updated than desired), or nothing is desired yet.
//! 4. WARN: otherwise: replicas unavailable although the rollout is done, or pods
//!    restarting while not ready.

use std::collections::BTreeMap;

use async_graphql::futures_util::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;

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
        last: None,
    };
    Ok(futures::stream::unfold(Some((merged, tracker)), |state| async move {
        let (mut merged, mut tracker) = state?;
        loop {
            let side = merged.next().await?;
            match tracker.apply(side) {
                Step::Continue => {}
                Step::Emit(record) => return Some((Ok(*record), Some((merged, tracker)))),
                Step::Fail(error) => return Some((Err(error), None)),
                Step::Complete => return None,
            }
        }
    })
    .boxed())
}

/// An item of one of the two sessions.
enum Side {
    Workload(Item),
    Pods(Item),
}

enum Step {
    Continue,
    Emit(Box<Workload>),
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
    last: Option<Fingerprint>,
}

/// The items of a snapshot frame, or the object of a delta frame.
fn payload(frame: &Frame) -> Value {
    serde_json::from_slice(&frame.data).unwrap_or(Value::Null)
}

impl Tracker {
    fn apply(&mut self, side: Side) -> Step {
        match side {
            Side::Workload(Item::Frame(frame)) | Side::Pods(Item::Frame(frame)) if frame.kind == FrameKind::Relist => {
                return Step::Continue;
            }
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
                            None if existed => return Step::Complete,
                            None => {
                                return Step::Fail(coded(
                                    "NOT_FOUND",
                                    format!(
                                        "{} {}/{} not found",
                                        self.kind.token().trim_end_matches('s'),
                                        self.namespace,
                                        self.name
                                    ),
                                ));
                            }
                        }
                    }
                    _ if data["object"]["name"] != self.name.as_str() => return Step::Continue,
                    FrameKind::Deleted => return Step::Complete,
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
                    }
                    kind => {
                        let pod = &data["object"];
                        let name = pod["name"].as_str().unwrap_or_default().to_string();
                        if kind == FrameKind::Deleted {
                            self.pods.remove(&name);
                        } else {
                            self.pods.insert(name, pod.clone());
                        }
                    }
                }
            }
            Side::Workload(Item::Ping) | Side::Pods(Item::Ping) => return Step::Continue,
            Side::Workload(Item::End(end)) | Side::Pods(Item::End(end)) => {
                return match end_error(end) {
                    Some(error) => Step::Fail(error),
                    None => Step::Complete,
                };
            }
        }
        self.emit()
    }

    fn emit(&mut self) -> Step {
        if !(self.workload_seen && self.pods_seen) {
            return Step::Continue;
        }
        let Some(workload) = &self.workload else {
            return Step::Continue;
        };
        let pods: Vec<&Value> = self.pods.values().filter(|pod| selects(workload, pod)).collect();
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
            status: status(workload, &pods),
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
            return Step::Continue;
        }
        self.last = Some(fingerprint);
        Step::Emit(Box::new(record))
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

/// The status rules of the module docs.
fn status(workload: &Value, pods: &[&Value]) -> WorkloadStatus {
    let int = |key: &str| workload[key].as_i64().unwrap_or(0);
    let flag = |key: &str| workload[key] == true;
    let kind = workload["kind"].as_str().unwrap_or_default();
    if flag("failed") || flag("progressDeadlineExceeded") || pods.iter().any(|p| p["crashLoop"] == true) {
        return WorkloadStatus::Error;
    }
    let (desired, ready) = (int("desired"), int("ready"));
    match kind {
        "Job" if flag("complete") => return WorkloadStatus::Ok,
        "Job" => return WorkloadStatus::Pending,
        "CronJob" => return WorkloadStatus::Ok,
        _ => {}
    }
    let rolled_out = flag("observed") && int("updated") >= desired;
    if desired > 0 && ready >= desired && rolled_out {
        return WorkloadStatus::Ok;
    }
    let restarting = pods
        .iter()
        .any(|p| p["ready"] != true && p["restarts"].as_i64().unwrap_or(0) > 0);
    if !restarting && (!rolled_out || desired == 0) {
        return WorkloadStatus::Pending;
    }
    WorkloadStatus::Warn
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
    fn a_rollout_is_pending_then_ok() {
        assert_eq!(status(&deployment(2, 1, 1), &[]), WorkloadStatus::Pending);
        assert_eq!(status(&deployment(2, 2, 2), &[]), WorkloadStatus::Ok);
    }

    #[test]
    fn unavailable_after_the_rollout_is_warn_and_a_crash_loop_is_error() {
        assert_eq!(status(&deployment(2, 1, 2), &[]), WorkloadStatus::Warn);
        let looping = json!({"labels": {"app": "web"}, "crashLoop": true, "restarts": 4, "ready": false});
        assert_eq!(status(&deployment(2, 2, 2), &[&looping]), WorkloadStatus::Error);
    }

    #[test]
    fn a_failed_job_and_an_exceeded_deadline_are_errors() {
        let job = json!({"kind": "Job", "failed": true, "desired": 1});
        assert_eq!(status(&job, &[]), WorkloadStatus::Error);
        let mut stuck = deployment(1, 0, 1);
        stuck["progressDeadlineExceeded"] = json!(true);
        assert_eq!(status(&stuck, &[]), WorkloadStatus::Error);
        let done = json!({"kind": "Job", "complete": true, "desired": 1, "ready": 1});
        assert_eq!(status(&done, &[]), WorkloadStatus::Ok);
    }

    #[test]
    fn selectors_match_label_subsets() {
        let pod = json!({"labels": {"app": "web", "pod-template-hash": "x"}});
        assert!(selects(&deployment(1, 1, 1), &pod));
        assert!(!selects(&deployment(1, 1, 1), &json!({"labels": {"app": "db"}})));
    }
}
