//! Kind plugin for policy/v1 `PodDisruptionBudget` → the SPA's PDB summary
//! (`spec/dtos.md` 4.10).
//!
//! `minAvailable` and `maxUnavailable` are IntOrString text (`"2"`, `"50%"`), or `"N/A"`
//! when the budget does not set them.

use periscope_plugin_sdk::{
    Context, IntOrString, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable,
};
use serde::{Deserialize, Serialize};

/// The poddisruptionbudgets mapper.
pub struct PodDisruptionBudgets;

/// The fields of a PodDisruptionBudget this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodDisruptionBudget {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: PdbSpec,
    #[serde(deserialize_with = "nullable")]
    status: PdbStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PdbSpec {
    min_available: Option<IntOrString>,
    max_unavailable: Option<IntOrString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PdbStatus {
    #[serde(deserialize_with = "nullable")]
    current_healthy: i32,
    #[serde(deserialize_with = "nullable")]
    desired_healthy: i32,
    #[serde(deserialize_with = "nullable")]
    expected_pods: i32,
    #[serde(deserialize_with = "nullable")]
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
        KindInfo {
            token: "poddisruptionbudgets",
            group_alias: "workloads",
            api_group: "policy",
            api_version: "v1",
            kind: "PodDisruptionBudget",
            plural: "poddisruptionbudgets",
            namespaced: true,
            list_key: "pdbs",
            snapshot: None,
            fields: &["metadata", "spec", "status"],
        }
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
