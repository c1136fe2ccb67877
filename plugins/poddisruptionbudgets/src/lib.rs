//! Kind plugin for policy/v1 `PodDisruptionBudget` → the SPA's PDB summary
//! (`spec/dtos.md` 4.10).
//!
//! `minAvailable` and `maxUnavailable` are IntOrString text (`"2"`, `"50%"`), or `"N/A"`
//! when the budget does not set them.

use periscope_plugin_sdk::{Context, IntOrString, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The poddisruptionbudgets mapper.
pub struct PodDisruptionBudgets;

/// The fields of a PodDisruptionBudget this plugin reads.
#[object]
#[derive(Debug)]
pub struct PodDisruptionBudget {
    metadata: Meta,
    spec: PdbSpec,
    status: PdbStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PdbSpec {
    min_available: Option<IntOrString>,
    max_unavailable: Option<IntOrString>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PdbStatus {
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disruptions_allowed: i32,
}

/// The PDB summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbDto {
    name: String,
    namespace: String,
    created_at: Timestamp,
    min_available: String,
    max_unavailable: String,
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disruptions_allowed: i32,
}

/// What an unset `minAvailable` or `maxUnavailable` renders as.
const NOT_SET: &str = "N/A";

impl Mapper for PodDisruptionBudgets {
    type Object = PodDisruptionBudget;
    type Dto = PdbDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
            .with_list_key("pdbs")
    }

    fn map(pdb: PodDisruptionBudget, _ctx: &Context) -> Result<PdbDto, MapError> {
        Ok(PdbDto {
            name: pdb.metadata.name,
            namespace: pdb.metadata.namespace,
            created_at: pdb.metadata.creation_timestamp,
            min_available: IntOrString::render(pdb.spec.min_available.as_ref(), NOT_SET),
            max_unavailable: IntOrString::render(pdb.spec.max_unavailable.as_ref(), NOT_SET),
            current_healthy: pdb.status.current_healthy,
            desired_healthy: pdb.status.desired_healthy,
            expected_pods: pdb.status.expected_pods,
            disruptions_allowed: pdb.status.disruptions_allowed,
        })
    }
}

export_mapper!(PodDisruptionBudgets);

periscope_plugin_sdk::golden_tests!(PodDisruptionBudgets);
