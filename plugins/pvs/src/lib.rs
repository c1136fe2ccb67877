//! Kind plugin for core/v1 `PersistentVolume` → the SPA's PV summary (`spec/dtos.md` 4.16).
//!
//! Cluster-scoped, so the DTO has no `namespace` key. `capacity` passes
//! `spec.capacity.storage` through verbatim: the apiserver already writes quantities in
//! canonical form (spec 1.3).

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The pvs mapper.
pub struct Pvs;

/// The fields of a PersistentVolume this plugin reads.
#[object]
#[derive(Debug)]
pub struct PersistentVolume {
    metadata: Meta,
    spec: PersistentVolumeSpec,
    status: PersistentVolumeStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct PersistentVolumeSpec {
    storage_class_name: String,
    capacity: Resources,
    access_modes: Vec<String>,
    persistent_volume_reclaim_policy: String,
}

/// A resource list (`spec.capacity`); only `storage` matters here.
#[object]
#[derive(Debug)]
struct Resources {
    storage: String,
}

#[object]
#[derive(Debug)]
struct PersistentVolumeStatus {
    phase: String,
}

/// The PV summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvDto {
    name: String,
    status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    storage_class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    capacity: String,
    access_modes: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    reclaim_policy: String,
    created_at: Timestamp,
}

impl Mapper for Pvs {
    type Object = PersistentVolume;
    type Dto = PvDto;

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("storage", "v1", "PersistentVolume", "persistentvolumes")
            .with_token("pvs")
            .with_list_key("pvs")
    }

    fn map(pv: PersistentVolume, _ctx: &Context) -> Result<PvDto, MapError> {
        Ok(PvDto {
            name: pv.metadata.name,
            status: pv.status.phase,
            storage_class: pv.spec.storage_class_name,
            capacity: pv.spec.capacity.storage,
            access_modes: pv.spec.access_modes,
            reclaim_policy: pv.spec.persistent_volume_reclaim_policy,
            created_at: pv.metadata.creation_timestamp,
        })
    }
}

export_mapper!(Pvs);

periscope_plugin_sdk::golden_tests!(Pvs);
