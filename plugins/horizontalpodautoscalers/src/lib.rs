//! Kind plugin for autoscaling/v2 `HorizontalPodAutoscaler` → the SPA's HPA summary
//! (`spec/dtos.md` 4.9).
//!
//! `minReplicas` falls back to 1 when absent, and `ready` reflects only the
//! `AbleToScale` condition (`ScalingActive` is irrelevant).

use periscope_plugin_sdk::{Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The horizontalpodautoscalers mapper.
pub struct HorizontalPodAutoscalers;

/// The fields of a HorizontalPodAutoscaler this plugin reads.
#[object]
#[derive(Debug)]
pub struct HorizontalPodAutoscaler {
    metadata: Meta,
    spec: HpaSpec,
    status: HpaStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct HpaSpec {
    scale_target_ref: ScaleTargetRef,
    min_replicas: Option<i32>,
    max_replicas: i32,
}

#[object]
#[derive(Debug)]
struct ScaleTargetRef {
    kind: String,
    name: String,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct HpaStatus {
    current_replicas: i32,
    desired_replicas: i32,
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
        KindInfo::namespaced(
            "workloads",
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        )
        .with_list_key("hpas")
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
