//! `k8sHelmReleaseStatus`: one Helm release through the hub's view of its storage
//! Secrets ([`crate::hub::helm`]), one shared upstream per (cluster, namespace,
//! release) scope, selected with the label selector `owner=helm,name=<release>`.
//!
//! - At subscribe: the latest revision's state (nothing while the release has no
//!   Secret yet: a subscription made before `helm install` sees the install).
//! - Then a record whenever a revision is written or a revision's status changes (each
//!   record is that revision's state).
//! - When every Secret of the release is deleted (a plain `helm uninstall`): the latest
//!   revision as `UNINSTALLED`, then `complete`.
//! - A Secret that cannot be decoded ends the operation with an `error`
//!   (`INVALID_RELEASE`) naming the Secret; the server carries on.
//!
//! Status mapping: `deployed`, `failed`, `superseded`, `uninstalled` map to themselves;
//! `pending-install`, `pending-upgrade`, `pending-rollback`, `uninstalling`,
//! `unknown` and anything else are `PENDING`.

use std::collections::BTreeMap;

use async_graphql::futures_util::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;

use super::schema::{self, HelmRelease, HelmStatus, OperationContext, coded, end_error};
use crate::hub::{Frame, FrameKind, StreamKey, helm};
use crate::transport::session::Item;

/// The GraphQL status of a release's `info.status`.
pub fn status(raw: &str) -> HelmStatus {
    match raw {
        "deployed" => HelmStatus::Deployed,
        "failed" => HelmStatus::Failed,
        "superseded" => HelmStatus::Superseded,
        "uninstalled" => HelmStatus::Uninstalled,
        _ => HelmStatus::Pending,
    }
}

/// Opens the release's view and returns the operation's records.
pub async fn stream(
    context: &OperationContext,
    cluster: String,
    namespace: String,
    name: String,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<HelmRelease>>> {
    let key = StreamKey {
        cluster,
        kind: helm::RELEASES.to_string(),
        namespace: Some(namespace.clone()),
        selector: Some(helm::selector(&name)),
    };
    let session = schema::open(context, key).await?;
    let tracker = Tracker {
        namespace,
        name,
        revisions: BTreeMap::new(),
        seen: false,
        latest: None,
    };
    let steps = futures::stream::unfold(Some((session.into_stream(), tracker)), |state| async move {
        let (mut items, mut tracker) = state?;
        loop {
            let item = items.next().await?;
            let (records, end) = tracker.apply(item);
            let out: Vec<async_graphql::Result<HelmRelease>> = records.into_iter().map(Ok).collect();
            match end {
                None if out.is_empty() => continue,
                None => return Some((out, Some((items, tracker)))),
                Some(None) => return Some((out, None)),
                Some(Some(error)) => {
                    let mut out = out;
                    out.push(Err(error));
                    return Some((out, None));
                }
            }
        }
    });
    Ok(steps.flat_map(futures::stream::iter).boxed())
}

/// `(revision, status)`: what makes a revision's record new (the status as clients
/// see it: `pending-upgrade` → `uninstalling` is no change to them).
type Fingerprint = (i64, HelmStatus);

struct Tracker {
    namespace: String,
    name: String,
    /// The release's Secrets by name: their release fields.
    revisions: BTreeMap<String, Value>,
    /// True once a Secret of the release was seen.
    seen: bool,
    /// The last record of the highest revision (for UNINSTALLED).
    latest: Option<Value>,
}

/// What one item does: records to send, and the end (`Some(None)`: complete,
/// `Some(Some(e))`: error).
type Outcome = (Vec<HelmRelease>, Option<Option<async_graphql::Error>>);

fn fingerprint(release: &Value) -> Fingerprint {
    (
        release["revision"].as_i64().unwrap_or(0),
        status(release["status"].as_str().unwrap_or_default()),
    )
}

fn payload(frame: &Frame) -> Value {
    serde_json::from_slice(&frame.data).unwrap_or(Value::Null)
}

impl Tracker {
    fn apply(&mut self, item: Item) -> Outcome {
        let frame = match item {
            Item::Frame(frame) => frame,
            Item::Ping => return (Vec::new(), None),
            Item::End(end) => return (Vec::new(), Some(end_error(end))),
        };
        let data = payload(&frame);
        match frame.kind {
            FrameKind::Snapshot => {
                let items: Vec<Value> = data["items"].as_array().cloned().unwrap_or_default();
                if let Some(error) = items.iter().find_map(|item| self.undecodable(item)) {
                    return (Vec::new(), Some(Some(error)));
                }
                let first = !self.seen;
                let before = std::mem::take(&mut self.revisions);
                for item in items {
                    let secret = item["secret"].as_str().unwrap_or_default().to_string();
                    self.revisions.insert(secret, item["release"].clone());
                }
                if self.revisions.is_empty() {
                    return if self.seen {
                        self.uninstalled()
                    } else {
                        (Vec::new(), None)
                    };
                }
                self.seen = true;
                if first {
                    let latest = self.latest_revision();
                    return (latest.into_iter().map(|r| self.record(&r)).collect(), None);
                }
                // After a relist: whatever changed meanwhile, oldest revision first.
                let mut changed: Vec<Value> = self
                    .revisions
                    .iter()
                    .filter(|(secret, release)| before.get(*secret).map(fingerprint) != Some(fingerprint(release)))
                    .map(|(_, release)| release.clone())
                    .collect();
                changed.sort_by_key(|r| r["revision"].as_i64().unwrap_or(0));
                self.note_latest();
                (changed.iter().map(|r| self.record(r)).collect(), None)
            }
            FrameKind::Added | FrameKind::Modified => {
                let item = &data["object"];
                if let Some(error) = self.undecodable(item) {
                    return (Vec::new(), Some(Some(error)));
                }
                let secret = item["secret"].as_str().unwrap_or_default().to_string();
                let release = item["release"].clone();
                let unchanged = self.revisions.get(&secret).map(fingerprint) == Some(fingerprint(&release));
                self.revisions.insert(secret, release.clone());
                self.seen = true;
                self.note_latest();
                if unchanged {
                    (Vec::new(), None)
                } else {
                    (vec![self.record(&release)], None)
                }
            }
            FrameKind::Deleted => {
                let secret = data["object"]["secret"].as_str().unwrap_or_default();
                self.revisions.remove(secret);
                if self.revisions.is_empty() && self.seen {
                    return self.uninstalled();
                }
                self.note_latest();
                (Vec::new(), None)
            }
            FrameKind::Relist | FrameKind::Error => (Vec::new(), None),
        }
    }

    /// The error for a view record of a Secret that could not be decoded.
    fn undecodable(&self, item: &Value) -> Option<async_graphql::Error> {
        let why = item["error"].as_str()?;
        let secret = item["secret"].as_str().unwrap_or_default();
        Some(coded(
            "INVALID_RELEASE",
            format!("release secret {}/{secret} cannot be decoded: {why}", self.namespace),
        ))
    }

    fn latest_revision(&self) -> Option<Value> {
        self.revisions
            .values()
            .max_by_key(|r| r["revision"].as_i64().unwrap_or(0))
            .cloned()
    }

    fn note_latest(&mut self) {
        if let Some(latest) = self.latest_revision() {
            self.latest = Some(latest);
        }
    }

    /// Every Secret is gone: the latest revision as UNINSTALLED, then complete.
    fn uninstalled(&mut self) -> Outcome {
        let mut last = self.latest.clone().unwrap_or_default();
        last["status"] = Value::from("uninstalled");
        (vec![self.record(&last)], Some(None))
    }

    fn record(&self, release: &Value) -> HelmRelease {
        let text = |key: &str| release[key].as_str().unwrap_or_default().to_string();
        let optional = |key: &str| release[key].as_str().map(str::to_string);
        let name = Some(text("name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.name.clone());
        let namespace = Some(text("namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.namespace.clone());
        HelmRelease {
            id: format!("{namespace}/{name}").into(),
            name,
            namespace,
            chart: text("chart"),
            chart_version: text("chartVersion"),
            app_version: text("appVersion"),
            revision: i32::try_from(release["revision"].as_i64().unwrap_or(0)).unwrap_or(i32::MAX),
            status: status(&text("status")),
            first_deployed: optional("firstDeployed"),
            last_deployed: optional("lastDeployed"),
            description: text("description"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn tracker() -> Tracker {
        Tracker {
            namespace: "shop".into(),
            name: "web".into(),
            revisions: BTreeMap::new(),
            seen: false,
            latest: None,
        }
    }

    fn item(revision: i64, status: &str) -> Value {
        json!({"secret": format!("sh.helm.release.v1.web.v{revision}"), "namespace": "shop",
               "release": {"name": "web", "namespace": "shop", "revision": revision, "status": status,
                           "chart": "demo", "chartVersion": "0.1.0", "appVersion": "1.0", "description": ""}})
    }

    fn delta(kind: FrameKind, value: &Value) -> Item {
        Item::Frame(Arc::new(Frame::delta(
            kind,
            "1".into(),
            "shop",
            value.to_string().as_bytes(),
        )))
    }

    fn snapshot(items: &[Value]) -> Item {
        let items: Vec<bytes::Bytes> = items.iter().map(|i| i.to_string().into()).collect();
        Item::Frame(Arc::new(Frame::snapshot("1".into(), &items)))
    }

    fn statuses(outcome: &Outcome) -> Vec<(i32, HelmStatus)> {
        outcome.0.iter().map(|r| (r.revision, r.status)).collect()
    }

    #[test]
    fn the_status_mapping_folds_transitions_into_pending() {
        for raw in [
            "pending-install",
            "pending-upgrade",
            "pending-rollback",
            "uninstalling",
            "unknown",
            "x",
        ] {
            assert_eq!(status(raw), HelmStatus::Pending, "{raw}");
        }
        assert_eq!(status("deployed"), HelmStatus::Deployed);
        assert_eq!(status("superseded"), HelmStatus::Superseded);
        assert_eq!(status("failed"), HelmStatus::Failed);
        assert_eq!(status("uninstalled"), HelmStatus::Uninstalled);
    }

    #[test]
    fn subscribe_sends_the_latest_then_each_change_then_uninstalled() {
        let mut t = tracker();
        let first = t.apply(snapshot(&[item(1, "superseded"), item(2, "deployed")]));
        assert_eq!(statuses(&first), [(2, HelmStatus::Deployed)]);
        let same = t.apply(delta(FrameKind::Modified, &item(2, "deployed")));
        assert!(same.0.is_empty() && same.1.is_none());
        let v3 = t.apply(delta(FrameKind::Added, &item(3, "pending-upgrade")));
        assert_eq!(statuses(&v3), [(3, HelmStatus::Pending)]);
        let uninstalling = t.apply(delta(FrameKind::Modified, &item(3, "uninstalling")));
        assert!(uninstalling.0.is_empty(), "PENDING to PENDING is no change to clients");
        for revision in [1, 2] {
            assert!(t.apply(delta(FrameKind::Deleted, &item(revision, "x"))).1.is_none());
        }
        let gone = t.apply(delta(FrameKind::Deleted, &item(3, "uninstalling")));
        assert_eq!(statuses(&gone), [(3, HelmStatus::Uninstalled)]);
        assert!(matches!(gone.1, Some(None)), "complete after UNINSTALLED");
    }

    #[test]
    fn an_empty_release_waits_and_an_undecodable_secret_is_an_error_naming_it() {
        let mut t = tracker();
        let empty = t.apply(snapshot(&[]));
        assert!(empty.0.is_empty() && empty.1.is_none());
        let bad = json!({"secret": "sh.helm.release.v1.web.v1", "namespace": "shop", "error": "not JSON"});
        let outcome = t.apply(delta(FrameKind::Added, &bad));
        let Some(Some(error)) = outcome.1 else {
            panic!("an error")
        };
        assert!(error.message.contains("sh.helm.release.v1.web.v1"), "{}", error.message);
    }
}
