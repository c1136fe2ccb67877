//! Kind plugin for core/v1 `PersistentVolumeClaim` → the SPA's PVC summary
//! (`spec/dtos.md` 4.17).
//!
//! `capacity` prefers what the claim actually got (`status.capacity.storage`) over what it
//! asked for (`spec.resources.requests.storage`), and passes the quantity through
//! verbatim: the apiserver already writes it in canonical form (spec 1.3).
//! `accessModes` are the requested ones from `spec`, not the bound volume's from `status`.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::{Deserialize, Serialize};

/// The pvcs mapper.
pub struct Pvcs;

/// The fields of a PersistentVolumeClaim this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PersistentVolumeClaim {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: PersistentVolumeClaimSpec,
    #[serde(deserialize_with = "nullable")]
    status: PersistentVolumeClaimStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PersistentVolumeClaimSpec {
    #[serde(deserialize_with = "nullable")]
    storage_class_name: String,
    #[serde(deserialize_with = "nullable")]
    access_modes: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    resources: ResourceRequirements,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResourceRequirements {
    #[serde(deserialize_with = "nullable")]
    requests: Resources,
}

/// A resource list (`requests`, `capacity`); only `storage` matters here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resources {
    /// `None` when absent or `null`, so a missing status capacity falls back to requests.
    storage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PersistentVolumeClaimStatus {
    #[serde(deserialize_with = "nullable")]
    phase: String,
    #[serde(deserialize_with = "nullable")]
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
        KindInfo {
            token: "pvcs",
            group_alias: "storage",
            api_group: "",
            api_version: "v1",
            kind: "PersistentVolumeClaim",
            plural: "persistentvolumeclaims",
            namespaced: true,
            list_key: "pvcs",
            snapshot: None,
            fields: &["metadata", "spec", "status"],
        }
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
