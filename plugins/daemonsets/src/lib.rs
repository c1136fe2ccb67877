//! Kind plugin for apps/v1 `DaemonSet` → the SPA's DaemonSet summary
//! (`spec/dtos.md` 4.5).
//!
//! Every number is a `status` counter passed through as-is, 0 when absent; nothing is
//! derived from `spec`.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::{Deserialize, Serialize};

/// The daemonsets mapper.
pub struct DaemonSets;

/// The fields of a DaemonSet this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DaemonSet {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    status: DaemonSetStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DaemonSetStatus {
    #[serde(deserialize_with = "nullable")]
    desired_number_scheduled: i32,
    #[serde(deserialize_with = "nullable")]
    number_ready: i32,
    #[serde(deserialize_with = "nullable")]
    updated_number_scheduled: i32,
    #[serde(deserialize_with = "nullable")]
    number_available: i32,
    #[serde(deserialize_with = "nullable")]
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

    fn info() -> KindInfo {
        KindInfo {
            token: "daemonsets",
            group_alias: "workloads",
            api_group: "apps",
            api_version: "v1",
            kind: "DaemonSet",
            plural: "daemonsets",
            namespaced: true,
            list_key: "daemonSets",
            snapshot: None,
            fields: &["metadata", "status"],
        }
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
