//! The control plane's loops for objects written through the API: the deployment,
//! replica set and job controllers, the scheduler, the kubelet's container lifecycle and
//! the garbage collector, each emitting the Events kube-controller-manager, the
//! scheduler and the kubelet emit for the same transitions (reasons and messages from
//! the upstream source: `ScalingReplicaSet` "Scaled up replica set web-5d9c7b8f6 from
//! 1 to 4", `SuccessfulCreate` "Created pod: …", `Scheduled`, `Pulled`, `Created`,
//! `Started`, `Killing`, `Completed`).
//!
//! They act on objects that carry `managedFields`, which every write through the API
//! (and every write of these controllers) leaves: the demo scenario's own objects have
//! none, and the demo churn plays their controllers. A deployment or replica set the
//! churn seeded that a client then changes (`kubectl scale`) is taken over from then on.
//!
//! Simplifications: a rollout replaces the old replica set in one step (no surge or
//! unavailability budget), pods run as soon as they are created (as
//! [`kubelet::admit_pod`] makes them), a job runs one pod that succeeds after
//! [`JOB_RUN`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::events::{Recorder, Source};
use crate::kubelet::{self, ContainerState};
use crate::managed::{Manager, Scope};
use crate::meta;
use crate::resource::{self, ResourceId};
use crate::store::{Change, EventType, ObjKey, Store, UpdateMode, Write, random_suffix};

/// How long a pod being deleted by a controller stays `Terminating`.
const POD_TERMINATION: Duration = Duration::from_millis(300);
/// How long a job's pod runs before it succeeds.
pub(crate) const JOB_RUN: Duration = Duration::from_millis(500);

const DEPLOYMENT_CONTROLLER: Source = Source {
    component: "deployment-controller",
    host: None,
};
const REPLICASET_CONTROLLER: Source = Source {
    component: "replicaset-controller",
    host: None,
};
const JOB_CONTROLLER: Source = Source {
    component: "job-controller",
    host: None,
};
const SCHEDULER: Source = Source {
    component: "default-scheduler",
    host: None,
};

/// The resources the loops read.
struct Ids {
    deployments: ResourceId,
    replicasets: ResourceId,
    jobs: ResourceId,
    pods: ResourceId,
}

impl Ids {
    fn new() -> Option<Self> {
        Some(Self {
            deployments: resource::builtin_id("deployments")?,
            replicasets: resource::builtin_id("replicasets")?,
            jobs: resource::builtin_id("jobs")?,
            pods: resource::builtin_id("pods")?,
        })
    }
}

/// Starts the loops in the background until `shutdown`.
pub(crate) fn spawn(store: Arc<Store>, shutdown: CancellationToken, seed: u64) {
    let Some(ids) = Ids::new() else { return };
    tokio::spawn(async move {
        let mut changed = store.subscribe();
        let mut cursor = store.current_rv();
        let mut loops = Loops {
            recorder: Recorder::new(store.clone(), seed),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xc0_11ec_7012),
            store,
            ids,
            shutdown: shutdown.clone(),
        };
        loop {
            tokio::select! {
                result = changed.changed() => if result.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            let changes = match loops.store.changes_since(cursor) {
                Ok((changes, rv)) => {
                    cursor = rv;
                    changes
                }
                Err(_) => {
                    cursor = loops.store.current_rv();
                    continue;
                }
            };
            let mut work = Work::default();
            for change in &changes {
                loops.observe(change, &mut work);
            }
            loops.reconcile(work);
        }
    });
}

/// What a batch of changes asks the loops to look at.
#[derive(Default)]
struct Work {
    deployments: BTreeSet<ObjKey>,
    replicasets: BTreeSet<ObjKey>,
    jobs: BTreeSet<ObjKey>,
}

struct Loops {
    store: Arc<Store>,
    ids: Ids,
    recorder: Recorder,
    rng: ChaCha8Rng,
    shutdown: CancellationToken,
}

/// Whether a client (or a controller) wrote the object through the API.
fn managed(obj: &Value) -> bool {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty())
}

fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default()
}

/// The object's controller, if any: `(kind, name, uid)`.
fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let s = |k| r.get(k).and_then(Value::as_str).unwrap_or_default();
            (s("kind"), s("name"), s("uid"))
        })
}

fn owner_reference(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
        "name": meta::name(owner), "uid": uid(owner),
        "controller": true, "blockOwnerDeletion": true,
    }])
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn controller_write(scope: Scope) -> Write {
    Write {
        manager: Some(Manager {
            name: "kube-controller-manager".into(),
            scope,
        }),
        dry_run: false,
    }
}

/// A pod-template-hash: ten characters of the alphabet of generated names.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = kubelet::hash(&template.to_string());
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A replica set's pod template without the label its deployment added.
fn template_without_hash(rs: &Value) -> Value {
    let mut template = rs.pointer("/spec/template").cloned().unwrap_or_default();
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    template
}

impl Loops {
    fn key(obj: &Value) -> ObjKey {
        ObjKey::of(obj)
    }

    fn observe(&mut self, change: &Change, work: &mut Work) {
        let obj = &change.object;
        let ids = &self.ids;
        match change.kind {
            EventType::Deleted => {
                if [ids.deployments, ids.replicasets, ids.jobs].contains(&change.resource) {
                    self.collect_garbage(obj);
                }
                if change.resource == ids.pods
                    && let Some(("ReplicaSet", name, _)) = controller_of(obj)
                {
                    work.replicasets.insert(ObjKey {
                        namespace: meta::namespace(obj).into(),
                        name: name.into(),
                    });
                }
                return;
            }
            EventType::Added | EventType::Modified => {}
        }
        if !managed(obj) {
            return;
        }
        let r = change.resource;
        if r == ids.deployments {
            work.deployments.insert(Self::key(obj));
        } else if r == ids.replicasets {
            work.replicasets.insert(Self::key(obj));
            if let Some(("Deployment", name, _)) = controller_of(obj) {
                work.deployments.insert(ObjKey {
                    namespace: meta::namespace(obj).into(),
                    name: name.into(),
                });
            }
        } else if r == ids.jobs && change.kind == EventType::Added {
            work.jobs.insert(Self::key(obj));
        } else if r == ids.pods {
            let was_deleting = change.previous.as_deref().is_some_and(meta::is_deleting);
            if change.kind == EventType::Added {
                self.pod_started(obj);
            } else if meta::is_deleting(obj) && !was_deleting {
                self.pod_killed(obj);
                if let Some(("ReplicaSet", name, _)) = controller_of(obj) {
                    work.replicasets.insert(ObjKey {
                        namespace: meta::namespace(obj).into(),
                        name: name.into(),
                    });
                }
            }
        }
    }

    fn reconcile(&mut self, work: Work) {
        for key in &work.deployments {
            self.deployment(key);
        }
        for key in &work.replicasets {
            self.replicaset(key);
        }
        for key in &work.jobs {
            self.job(key);
        }
    }

    fn owned(&self, resource: ResourceId, owner: &Value) -> Vec<Arc<Value>> {
        let owner_uid = uid(owner);
        let owned = |o: &Value| controller_of(o).is_some_and(|(_, _, u)| u == owner_uid);
        self.store
            .list(resource, Some(meta::namespace(owner)), None, None, Some(&owned))
            .items
    }

    /// The deployment controller: one replica set per pod template, the current one
    /// scaled to the deployment's replicas and the others to zero.
    fn deployment(&mut self, key: &ObjKey) {
        let Some(d) = self.store.get(self.ids.deployments, key) else {
            return;
        };
        if meta::is_deleting(&d) {
            return;
        }
        let want = replicas(&d);
        let template = d.pointer("/spec/template").cloned().unwrap_or_default();
        let owned = self.owned(self.ids.replicasets, &d);
        let current = owned.iter().find(|rs| template_without_hash(rs) == template).cloned();
        let current = match current {
            Some(rs) => {
                let had = replicas(&rs);
                if had != want {
                    self.scale_replicaset(&d, &rs, want);
                }
                rs
            }
            None => match self.new_replicaset(&d, &template, want) {
                Some(rs) => rs,
                None => return,
            },
        };
        for old in owned.iter().filter(|rs| uid(rs) != uid(&current) && replicas(rs) > 0) {
            self.scale_replicaset(&d, old, 0);
        }
        self.deployment_status(key);
    }

    fn scale_replicaset(&mut self, d: &Value, rs: &Value, to: i64) {
        let from = replicas(rs);
        let write = controller_write(Scope::Main { has_status: true });
        let scaled = self
            .store
            .mutate_with(self.ids.replicasets, &Self::key(rs), UpdateMode::Main, &write, |o| {
                o["spec"]["replicas"] = json!(to);
                Ok(())
            });
        if scaled.is_ok() {
            let direction = if to > from { "up" } else { "down" };
            let message = format!("Scaled {direction} replica set {} from {from} to {to}", meta::name(rs));
            self.recorder
                .normal(d, DEPLOYMENT_CONTROLLER, "ScalingReplicaSet", &message);
        }
    }

    fn new_replicaset(&mut self, d: &Value, template: &Value, want: i64) -> Option<Arc<Value>> {
        let hash = template_hash(template);
        let name = format!("{}-{hash}", meta::name(d));
        let mut template = template.clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        labels["pod-template-hash"] = json!(hash);
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": name, "namespace": meta::namespace(d), "labels": labels,
                "annotations": { "deployment.kubernetes.io/desired-replicas": want.to_string(),
                                 "deployment.kubernetes.io/max-replicas": want.to_string() },
                "ownerReferences": owner_reference(d),
            },
            "spec": { "replicas": want, "selector": selector, "template": template },
        });
        let write = controller_write(Scope::Main { has_status: true });
        match self.store.create_with(self.ids.replicasets, rs, &write) {
            Ok(rs) => {
                let message = format!("Scaled up replica set {name} from 0 to {want}");
                self.recorder
                    .normal(d, DEPLOYMENT_CONTROLLER, "ScalingReplicaSet", &message);
                Some(rs)
            }
            Err(error) => {
                tracing::debug!(%error, name, "replica set not created");
                None
            }
        }
    }

    fn deployment_status(&mut self, key: &ObjKey) {
        let Some(d) = self.store.get(self.ids.deployments, key) else {
            return;
        };
        let owned = self.owned(self.ids.replicasets, &d);
        let template = d.pointer("/spec/template").cloned().unwrap_or_default();
        let sum = |field: &str, only_current: bool| -> i64 {
            owned
                .iter()
                .filter(|rs| !only_current || template_without_hash(rs) == template)
                .filter_map(|rs| rs.pointer(&format!("/status/{field}")).and_then(Value::as_i64))
                .sum()
        };
        let ready = sum("readyReplicas", false);
        let total = sum("replicas", false);
        let available = ready.min(replicas(&d));
        let now = meta::now_timestamp();
        let condition = |t: &str, ok: bool, reason: &str, message: String| {
            json!({ "type": t, "status": if ok { "True" } else { "False" }, "reason": reason,
                    "message": message, "lastUpdateTime": now, "lastTransitionTime": now })
        };
        let want = replicas(&d);
        let (available_reason, availability) = if available >= want {
            ("MinimumReplicasAvailable", "has minimum availability")
        } else {
            ("MinimumReplicasUnavailable", "does not have minimum availability")
        };
        let current = owned
            .iter()
            .find(|rs| template_without_hash(rs) == template)
            .map(|rs| meta::name(rs))
            .unwrap_or_default();
        let status = json!({
            "observedGeneration": d.pointer("/metadata/generation"),
            "replicas": total,
            "updatedReplicas": sum("replicas", true),
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": (want - available).max(0),
            "conditions": [
                condition("Available", available >= want, available_reason, format!("Deployment {availability}.")),
                condition("Progressing", true, "NewReplicaSetAvailable",
                          format!("ReplicaSet \"{current}\" has successfully progressed.")),
            ],
        });
        self.write_status(self.ids.deployments, key, status);
    }

    /// Writes a status, keeping the conditions' times when nothing else changed.
    fn write_status(&self, resource: ResourceId, key: &ObjKey, mut status: Value) {
        let write = controller_write(Scope::Status);
        let _ = self.store.mutate_with(resource, key, UpdateMode::Status, &write, |o| {
            if let (Some(old), Some(new)) = (
                o.pointer("/status/conditions").and_then(Value::as_array),
                status.get_mut("conditions").and_then(Value::as_array_mut),
            ) {
                for c in new.iter_mut() {
                    let same = old.iter().find(|p| {
                        p.get("type") == c.get("type")
                            && p.get("status") == c.get("status")
                            && p.get("reason") == c.get("reason")
                            && p.get("message") == c.get("message")
                    });
                    if let Some(previous) = same {
                        *c = previous.clone();
                    }
                }
            }
            o["status"] = status;
            Ok(())
        });
    }

    /// The replica set controller: as many running pods as `spec.replicas`.
    fn replicaset(&mut self, key: &ObjKey) {
        let Some(rs) = self.store.get(self.ids.replicasets, key) else {
            return;
        };
        if meta::is_deleting(&rs) || !managed(&rs) {
            return;
        }
        let want = replicas(&rs);
        let pods: Vec<Arc<Value>> = self
            .owned(self.ids.pods, &rs)
            .into_iter()
            .filter(|p| !meta::is_deleting(p))
            .collect();
        let have = pods.len() as i64;
        if have < want {
            for _ in have..want {
                if let Some(pod) = self.create_pod(&rs, meta::name(&rs), &[]) {
                    let message = format!("Created pod: {}", meta::name(&pod));
                    self.recorder
                        .normal(&rs, REPLICASET_CONTROLLER, "SuccessfulCreate", &message);
                }
            }
        } else if have > want {
            let mut newest_first = pods.clone();
            newest_first.sort_by(|a, b| {
                let ts = |p: &Value| p.pointer("/metadata/creationTimestamp").cloned().unwrap_or_default();
                ts(b).to_string().cmp(&ts(a).to_string())
            });
            for pod in newest_first.iter().take((have - want) as usize) {
                self.delete_pod(pod);
                let message = format!("Deleted pod: {}", meta::name(pod));
                self.recorder
                    .normal(&rs, REPLICASET_CONTROLLER, "SuccessfulDelete", &message);
            }
        }
        let running = have.min(want);
        let status = json!({
            "replicas": running,
            "fullyLabeledReplicas": running,
            "readyReplicas": running,
            "availableReplicas": running,
            "observedGeneration": rs.pointer("/metadata/generation"),
        });
        self.write_status(self.ids.replicasets, key, status);
    }

    /// Creates a pod from `owner`'s template, scheduled and running.
    fn create_pod(&mut self, owner: &Value, prefix: &str, extra_labels: &[(&str, &str)]) -> Option<Arc<Value>> {
        let template = owner.pointer("/spec/template").cloned().unwrap_or_default();
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        for (k, v) in extra_labels {
            labels[*k] = json!(v);
        }
        let name = format!("{prefix}-{}", random_suffix(&mut self.rng));
        let mut metadata = template.get("metadata").cloned().unwrap_or_else(|| json!({}));
        metadata["name"] = json!(name);
        metadata["namespace"] = json!(meta::namespace(owner));
        metadata["labels"] = labels;
        metadata["ownerReferences"] = owner_reference(owner);
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        });
        kubelet::admit_pod(&self.store, &mut pod);
        let write = controller_write(Scope::Main { has_status: true });
        match self.store.create_with(self.ids.pods, pod, &write) {
            Ok(pod) => Some(pod),
            Err(error) => {
                tracing::debug!(%error, name, "pod not created");
                None
            }
        }
    }

    /// Deletes a pod gracefully: `Terminating`, then gone once its containers stopped.
    fn delete_pod(&self, pod: &Value) {
        let key = Self::key(pod);
        if self.store.mark_deleting(self.ids.pods, &key, Some(30)).is_err() {
            return;
        }
        let store = self.store.clone();
        let pods = self.ids.pods;
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(POD_TERMINATION) => {}
                _ = shutdown.cancelled() => return,
            }
            if store.get(pods, &key).is_some_and(|p| !meta::has_finalizers(&p)) {
                let _ = store.remove(pods, &key);
            }
        });
    }

    /// Deletes what a deleted object controlled (the garbage collector's background
    /// cascade): a deployment's replica sets, a replica set's or a job's pods.
    fn collect_garbage(&self, owner: &Value) {
        let owner_uid = uid(owner);
        if owner_uid.is_empty() {
            return;
        }
        for resource in [self.ids.replicasets, self.ids.pods] {
            for dependent in self.owned(resource, owner) {
                if controller_of(&dependent).is_some_and(|(_, _, u)| u == owner_uid) {
                    let _ = self.store.remove(resource, &Self::key(&dependent));
                }
            }
        }
    }

    /// The job controller: one pod, which succeeds after [`JOB_RUN`]; then the job
    /// completes.
    fn job(&mut self, key: &ObjKey) {
        let Some(job) = self.store.get(self.ids.jobs, key) else {
            return;
        };
        if meta::is_deleting(&job) || job.pointer("/status/startTime").is_some() {
            return;
        }
        let job_name = meta::name(&job).to_string();
        let job_uid = uid(&job).to_string();
        let labels = [
            ("batch.kubernetes.io/controller-uid", job_uid.as_str()),
            ("batch.kubernetes.io/job-name", job_name.as_str()),
            ("controller-uid", job_uid.as_str()),
            ("job-name", job_name.as_str()),
        ];
        let mut owner = (*job).clone();
        if let Some(spec) = owner.pointer_mut("/spec/template/spec")
            && spec.get("restartPolicy").is_none()
        {
            spec["restartPolicy"] = json!("Never");
        }
        let Some(pod) = self.create_pod(&owner, &job_name, &labels) else {
            return;
        };
        self.recorder.normal(
            &job,
            JOB_CONTROLLER,
            "SuccessfulCreate",
            &format!("Created pod: {}", meta::name(&pod)),
        );
        let started = meta::now_timestamp();
        self.write_status(
            self.ids.jobs,
            key,
            json!({ "startTime": started, "active": 1, "ready": 1, "terminating": 0, "uncountedTerminatedPods": {} }),
        );
        let store = self.store.clone();
        let ids = (self.ids.jobs, self.ids.pods);
        let shutdown = self.shutdown.clone();
        let key = key.clone();
        let mut recorder = Recorder::new(store.clone(), kubelet::hash(&job_uid));
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(JOB_RUN) => {}
                _ = shutdown.cancelled() => return,
            }
            finish_job(&store, ids, &key, &pod, &started, &mut recorder);
        });
    }

    /// The scheduler's and the kubelet's events for a pod that starts.
    fn pod_started(&mut self, pod: &Value) {
        let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) else {
            return;
        };
        let message = format!(
            "Successfully assigned {}/{} to {node}",
            meta::namespace(pod),
            meta::name(pod)
        );
        self.recorder.normal(pod, SCHEDULER, "Scheduled", &message);
        let kubelet = Source {
            component: "kubelet",
            host: Some(node),
        };
        for (name, image) in meta::containers(&pod["spec"]) {
            let pulled = format!("Container image \"{image}\" already present on machine");
            self.recorder.container(pod, &name, kubelet, "Pulled", &pulled);
            let created = format!("Created container: {name}");
            self.recorder.container(pod, &name, kubelet, "Created", &created);
            let started = format!("Started container {name}");
            self.recorder.container(pod, &name, kubelet, "Started", &started);
        }
    }

    /// The kubelet's events for a pod whose deletion began.
    fn pod_killed(&mut self, pod: &Value) {
        let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) else {
            return;
        };
        let kubelet = Source {
            component: "kubelet",
            host: Some(node),
        };
        for (name, _) in meta::containers(&pod["spec"]) {
            let stopping = format!("Stopping container {name}");
            self.recorder.container(pod, &name, kubelet, "Killing", &stopping);
        }
    }
}

/// A job's pod exits 0; the job is complete.
fn finish_job(
    store: &Store,
    (jobs, pods): (ResourceId, ResourceId),
    key: &ObjKey,
    pod: &Value,
    started: &str,
    recorder: &mut Recorder,
) {
    let now = meta::now_timestamp();
    let pod_key = ObjKey::of(pod);
    let _ = store.mutate(pods, &pod_key, UpdateMode::Raw, |p| {
        let statuses: Vec<Value> = meta::containers(&p["spec"])
            .iter()
            .map(|(name, image)| {
                let done = ContainerState::Terminated {
                    exit_code: 0,
                    reason: "Completed",
                    started: started.to_string(),
                    finished: now.clone(),
                };
                kubelet::container_status(name, image, &done, 0, None)
            })
            .collect();
        p["status"]["phase"] = json!("Succeeded");
        p["status"]["containerStatuses"] = json!(statuses);
        p["status"]["conditions"] = kubelet::pod_conditions(false, &now);
        Ok(())
    });
    let write = controller_write(Scope::Status);
    let completed = store.mutate_with(jobs, key, UpdateMode::Status, &write, |job| {
        job["status"] = json!({
            "startTime": started, "completionTime": now, "succeeded": 1, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                { "type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                  "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now },
                { "type": "Complete", "status": "True", "reason": "CompletionsReached",
                  "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now },
            ],
        });
        Ok(())
    });
    if let Ok(job) = completed {
        recorder.normal(&job, JOB_CONTROLLER, "Completed", "Job completed");
    }
}
