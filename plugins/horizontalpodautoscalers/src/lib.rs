//! Kind plugin for autoscaling/v2 `HorizontalPodAutoscaler` → the SPA's HPA summary
//! (`spec/dtos.md` 4.9).
//!
//! `minReplicas` falls back to 1 when absent, and `ready` reflects only the
//! `AbleToScale` condition (`ScalingActive` is irrelevant).

use periscope_plugin_sdk::{Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::{Deserialize, Serialize};

/// The horizontalpodautoscalers mapper.
pub struct HorizontalPodAutoscalers;

/// The fields of a HorizontalPodAutoscaler this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HorizontalPodAutoscaler {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: HpaSpec,
    #[serde(deserialize_with = "nullable")]
    status: HpaStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HpaSpec {
    #[serde(deserialize_with = "nullable")]
    scale_target_ref: ScaleTargetRef,
    min_replicas: Option<i32>,
    #[serde(deserialize_with = "nullable")]
    max_replicas: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ScaleTargetRef {
    #[serde(deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HpaStatus {
    #[serde(deserialize_with = "nullable")]
    current_replicas: i32,
    #[serde(deserialize_with = "nullable")]
    desired_replicas: i32,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

/// The HPA summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaDto {
    name: String,
    namespace: String,
    created_at: Timestamp,
    target: String,
    min_replicas: i32,
    max_replicas: i32,
    current_replicas: i32,
    desired_replicas: i32,
    ready: bool,
}

impl Mapper for HorizontalPodAutoscalers {
    type Object = HorizontalPodAutoscaler;
    type Dto = HpaDto;

    fn info() -> KindInfo {
        KindInfo {
            token: "horizontalpodautoscalers",
            group_alias: "workloads",
            api_group: "autoscaling",
            api_version: "v2",
            kind: "HorizontalPodAutoscaler",
            plural: "horizontalpodautoscalers",
            namespaced: true,
            list_key: "hpas",
            snapshot: None,
            fields: &["metadata", "spec", "status"],
        }
    }

    fn map(hpa: HorizontalPodAutoscaler, _ctx: &Context) -> Result<HpaDto, MapError> {
        let target = &hpa.spec.scale_target_ref;
        let ready = Condition::is_true(&hpa.status.conditions, "AbleToScale");
        Ok(HpaDto {
            target: format!("{}/{}", target.kind, target.name),
            name: hpa.metadata.name,
            namespace: hpa.metadata.namespace,
            created_at: hpa.metadata.creation_timestamp,
            min_replicas: hpa.spec.min_replicas.unwrap_or(1),
            max_replicas: hpa.spec.max_replicas,
            current_replicas: hpa.status.current_replicas,
            desired_replicas: hpa.status.desired_replicas,
            ready,
        })
    }
}

export_mapper!(HorizontalPodAutoscalers);

periscope_plugin_sdk::golden_tests!(HorizontalPodAutoscalers);
