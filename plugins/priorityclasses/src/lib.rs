//! Kind plugin for scheduling.k8s.io/v1 `PriorityClass` → the SPA's PriorityClass summary
//! (`spec/dtos.md` 4.21).
//!
//! A PriorityClass has no `spec`: its fields sit at the top level of the object. It is
//! cluster-scoped, so the DTO has no `namespace` key.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// What an absent `preemptionPolicy` means (the Kubernetes default, applied here because
/// the summary always carries a policy).
const DEFAULT_PREEMPTION_POLICY: &str = "PreemptLowerPriority";

/// The priorityclasses mapper.
pub struct PriorityClasses;

/// The fields of a PriorityClass this plugin reads.
#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
pub struct PriorityClass {
    metadata: Meta,
    value: i32,
    global_default: bool,
    /// `None` when absent or `null`, which takes the default.
    preemption_policy: Option<String>,
}

/// The PriorityClass summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriorityClassDto {
    name: String,
    created_at: Timestamp,
    value: i32,
    global_default: bool,
    preemption_policy: String,
}

impl Mapper for PriorityClasses {
    type Object = PriorityClass;
    type Dto = PriorityClassDto;

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("cluster", "scheduling.k8s.io/v1", "PriorityClass", "priorityclasses")
            .with_list_key("priorityClasses")
    }

    fn map(class: PriorityClass, _ctx: &Context) -> Result<PriorityClassDto, MapError> {
        Ok(PriorityClassDto {
            name: class.metadata.name,
            created_at: class.metadata.creation_timestamp,
            value: class.value,
            global_default: class.global_default,
            preemption_policy: class
                .preemption_policy
                .unwrap_or_else(|| DEFAULT_PREEMPTION_POLICY.to_string()),
        })
    }
}

export_mapper!(PriorityClasses);

periscope_plugin_sdk::golden_tests!(PriorityClasses);
