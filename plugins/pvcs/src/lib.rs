//! Kind plugin for core/v1 `PersistentVolumeClaim` → the SPA's PVC summary
//! (`spec/dtos.md` 4.17).
//!
//! `capacity` prefers what the claim actually got (`status.capacity.storage`) over what it
//! asked for (`spec.resources.requests.storage`), and passes the quantity through
//! verbatim: the apiserver already writes it in canonical form (spec 1.3).
//! `accessModes` are the requested ones from `spec`, not the bound volume's from `status`.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The pvcs mapper.
pub struct Pvcs;

/// The fields of a PersistentVolumeClaim this plugin reads.
#[object]
#[derive(Debug)]
pub struct PersistentVolumeClaim {
    metadata: Meta,
    spec: PersistentVolumeClaimSpec,
    status: PersistentVolumeClaimStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PersistentVolumeClaimSpec {
    storage_class_name: String,
    access_modes: Vec<String>,
    resources: ResourceRequirements,
}

#[object]
#[derive(Debug)]
struct ResourceRequirements {
    requests: Resources,
}

/// A resource list (`requests`, `capacity`); only `storage` matters here.
#[object]
#[derive(Debug)]
struct Resources {
    /// `None` when absent or `null`, so a missing status capacity falls back to requests.
    storage: Option<String>,
}

#[object]
#[derive(Debug)]
struct PersistentVolumeClaimStatus {
    phase: String,
    capacity: Resources,
}

/// The PVC summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcDto {
    name: String,
    namespace: String,
    status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    storage_class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    capacity: String,
    access_modes: Vec<String>,
    created_at: Timestamp,
}

impl Mapper for Pvcs {
    type Object = PersistentVolumeClaim;
    type Dto = PvcDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("storage", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
            .with_token("pvcs")
            .with_list_key("pvcs")
    }

    fn map(pvc: PersistentVolumeClaim, _ctx: &Context) -> Result<PvcDto, MapError> {
        let capacity = pvc
            .status
            .capacity
            .storage
            .or(pvc.spec.resources.requests.storage)
            .unwrap_or_default();
        Ok(PvcDto {
            name: pvc.metadata.name,
            namespace: pvc.metadata.namespace,
            status: pvc.status.phase,
            // An explicit "" (bind to a class-less PV) is omitted just like an absent one.
            storage_class: pvc.spec.storage_class_name,
            capacity,
            access_modes: pvc.spec.access_modes,
            created_at: pvc.metadata.creation_timestamp,
        })
    }
}

export_mapper!(Pvcs);

periscope_plugin_sdk::golden_tests!(Pvcs);
