//! Kind plugin for apps/v1 `DaemonSet` → the SPA's DaemonSet summary
//! (`spec/dtos.md` 4.5).
//!
//! Every number is a `status` counter passed through as-is, 0 when absent; nothing is
//! derived from `spec`.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The daemonsets mapper.
pub struct DaemonSets;

/// The fields of a DaemonSet this plugin reads.
#[object]
#[derive(Debug)]
pub struct DaemonSet {
    metadata: Meta,
    status: DaemonSetStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct DaemonSetStatus {
    desired_number_scheduled: i32,
    number_ready: i32,
    updated_number_scheduled: i32,
    number_available: i32,
    number_misscheduled: i32,
}

/// The DaemonSet summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetDto {
    name: String,
    namespace: String,
    desired_number_scheduled: i32,
    number_ready: i32,
    updated_number_scheduled: i32,
    number_available: i32,
    number_misscheduled: i32,
    created_at: Timestamp,
}

impl Mapper for DaemonSets {
    type Object = DaemonSet;
    type Dto = DaemonSetDto;

    // The spec (with its pod template) is not read at all; of metadata only these.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "apps/v1", "DaemonSet", "daemonsets").with_list_key("daemonSets")
    }

    fn map(set: DaemonSet, _ctx: &Context) -> Result<DaemonSetDto, MapError> {
        let DaemonSet { metadata, status } = set;
        Ok(DaemonSetDto {
            name: metadata.name,
            namespace: metadata.namespace,
            desired_number_scheduled: status.desired_number_scheduled,
            number_ready: status.number_ready,
            updated_number_scheduled: status.updated_number_scheduled,
            number_available: status.number_available,
            number_misscheduled: status.number_misscheduled,
            created_at: metadata.creation_timestamp,
        })
    }
}

export_mapper!(DaemonSets);

periscope_plugin_sdk::golden_tests!(DaemonSets);
