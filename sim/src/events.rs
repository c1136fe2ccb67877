//! Events as client-go's recorder writes them: `core/v1` Events about an involved
//! object, from a source component (and host, for the kubelet), with repeats of the
//! same event aggregated into one whose `count` and `lastTimestamp` grow (client-go's
//! `EventCorrelator` does this by patching the first one).

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::meta;
use crate::resource;
use crate::store::{ObjKey, Store, UpdateMode};

/// How many distinct events are remembered for aggregation before starting afresh
/// (client-go keeps an LRU of 4096).
const MAX_SEEN: usize = 4096;

/// Who reports an event (`source.component`, and `source.host` for the kubelet).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub component: &'a str,
    pub host: Option<&'a str>,
}

/// Writes events to the store, aggregating repeats.
pub(crate) struct Recorder {
    store: Arc<Store>,
    rng: ChaCha8Rng,
    /// The event written for each aggregation key.
    seen: HashMap<String, ObjKey>,
}

impl Recorder {
    pub fn new(store: Arc<Store>, seed: u64) -> Self {
        Self {
            store,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xe7e7_0001),
            seen: HashMap::new(),
        }
    }

    /// Records a `Normal` event about `involved`.
    pub fn normal(&mut self, involved: &Value, source: Source, reason: &str, message: &str) {
        self.record(involved, None, source, "Normal", reason, message);
    }

    /// Records a `Normal` event about one container of a pod, as the kubelet does
    /// (`involvedObject.fieldPath: spec.containers{web}`).
    pub fn container(&mut self, pod: &Value, container: &str, source: Source, reason: &str, message: &str) {
        let field_path = format!("spec.containers{{{container}}}");
        self.record(pod, Some(&field_path), source, "Normal", reason, message);
    }

    /// Records an event; the same event again (same source, object, type, reason and
    /// message) bumps the first one's `count` instead.
    pub fn record(
        &mut self,
        involved: &Value,
        field_path: Option<&str>,
        source: Source,
        event_type: &str,
        reason: &str,
        message: &str,
    ) {
        let Some(events) = resource::builtin_id("events") else {
            return;
        };
        let ns = match meta::namespace(involved) {
            "" => "default",
            ns => ns,
        };
        let uid = involved
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = [
            source.component,
            source.host.unwrap_or_default(),
            involved.get("kind").and_then(Value::as_str).unwrap_or_default(),
            ns,
            meta::name(involved),
            uid,
            field_path.unwrap_or_default(),
            event_type,
            reason,
            message,
        ]
        .join("\u{1f}");
        let now = meta::now_timestamp();
        if let Some(existing) = self.seen.get(&key) {
            let bumped = self.store.mutate(events, existing, UpdateMode::Raw, |event| {
                let count = event.get("count").and_then(Value::as_i64).unwrap_or(1);
                event["count"] = json!(count + 1);
                event["lastTimestamp"] = json!(now);
                Ok(())
            });
            if bumped.is_ok() {
                return;
            }
        }
        let mut source_json = json!({ "component": source.component });
        if let Some(host) = source.host {
            source_json["host"] = json!(host);
        }
        let name = format!(
            "{}.{:016x}",
            meta::name(involved),
            rand::RngCore::next_u64(&mut self.rng)
        );
        let mut event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": name, "namespace": ns },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": meta::name(involved), "namespace": meta::namespace(involved),
                "uid": uid, "resourceVersion": meta::resource_version(involved),
            },
            "reason": reason, "message": message, "type": event_type,
            "source": source_json,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": source.component, "reportingInstance": source.host.unwrap_or_default(),
        });
        if let Some(path) = field_path {
            event["involvedObject"]["fieldPath"] = json!(path);
        }
        match self.store.create(events, event) {
            Ok(created) => {
                if self.seen.len() >= MAX_SEEN {
                    self.seen.clear();
                }
                self.seen.insert(key, ObjKey::of(&created));
            }
            Err(error) => tracing::debug!(%error, reason, "event not recorded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_aggregated_into_one_event_with_a_count() {
        let store = Arc::new(Store::new(100, 1));
        let mut recorder = Recorder::new(store.clone(), 1);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "shop", "uid": "u-1" },
        });
        let source = Source {
            component: "deployment-controller",
            host: None,
        };
        let up = "Scaled up replica set web-abc from 1 to 4";
        recorder.normal(&deployment, source, "ScalingReplicaSet", up);
        recorder.normal(
            &deployment,
            source,
            "ScalingReplicaSet",
            "Scaled down replica set web-abc from 4 to 1",
        );
        recorder.normal(&deployment, source, "ScalingReplicaSet", up);
        let events = resource::builtin_id("events").unwrap();
        let page = store.list(events, Some("shop"), None, None, None);
        assert_eq!(page.items.len(), 2);
        let scaled_up = page.items.iter().find(|e| e["message"] == up).unwrap();
        assert_eq!(scaled_up["count"], 2);
        assert_eq!(scaled_up["involvedObject"]["kind"], "Deployment");
        assert_eq!(scaled_up["involvedObject"]["uid"], "u-1");
        assert_eq!(scaled_up["source"], json!({ "component": "deployment-controller" }));
        assert_eq!(scaled_up["type"], "Normal");
    }
}
