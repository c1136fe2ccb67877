//! Kind plugin for apps/v1 `StatefulSet` → the SPA's StatefulSet summary
//! (`spec/dtos.md` 4.4).
//!
//! `replicas` is the desired count, `spec.replicas`, and **0** when absent: Periscope does
//! not apply the API default of 1. The status counters are passed through, 0 when absent.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The statefulsets mapper.
pub struct StatefulSets;

/// The fields of a StatefulSet this plugin reads.
#[object]
#[derive(Debug)]
pub struct StatefulSet {
    metadata: Meta,
    spec: StatefulSetSpec,
    status: StatefulSetStatus,
}

#[object]
#[derive(Debug)]
struct StatefulSetSpec {
    replicas: i32,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct StatefulSetStatus {
    ready_replicas: i32,
    updated_replicas: i32,
    current_replicas: i32,
}

/// The StatefulSet summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetDto {
    name: String,
    namespace: String,
    replicas: i32,
    ready_replicas: i32,
    updated_replicas: i32,
    current_replicas: i32,
    created_at: Timestamp,
}

impl Mapper for StatefulSets {
    type Object = StatefulSet;
    type Dto = StatefulSetDto;

    // Not the pod template or the volume claim templates.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "spec.replicas",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "apps/v1", "StatefulSet", "statefulsets").with_list_key("statefulSets")
    }

    fn map(set: StatefulSet, _ctx: &Context) -> Result<StatefulSetDto, MapError> {
        let StatefulSet { metadata, spec, status } = set;
        Ok(StatefulSetDto {
            name: metadata.name,
            namespace: metadata.namespace,
            replicas: spec.replicas,
            ready_replicas: status.ready_replicas,
            updated_replicas: status.updated_replicas,
            current_replicas: status.current_replicas,
            created_at: metadata.creation_timestamp,
        })
    }
}

export_mapper!(StatefulSets);

periscope_plugin_sdk::golden_tests!(StatefulSets);
