//! Kind plugin for storage.k8s.io/v1 `StorageClass` → the SPA's StorageClass summary
//! (`spec/dtos.md` 4.18).
//!
//! A StorageClass has no `spec`: its fields sit at the top level of the object. It is
//! cluster-scoped, so the DTO has no `namespace` key. The default-class annotation is
//! deliberately not surfaced.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The storageclasses mapper.
pub struct StorageClasses;

/// The fields of a StorageClass this plugin reads.
#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
pub struct StorageClass {
    metadata: Meta,
    provisioner: String,
    reclaim_policy: String,
    volume_binding_mode: String,
    /// Absent or `null` is false; Periscope applies no API defaulting (spec 1.3).
    allow_volume_expansion: bool,
}

/// The StorageClass summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClassDto {
    name: String,
    provisioner: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    reclaim_policy: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    volume_binding_mode: String,
    allow_volume_expansion: bool,
    created_at: Timestamp,
}

impl Mapper for StorageClasses {
    type Object = StorageClass;
    type Dto = StorageClassDto;

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("storage", "storage.k8s.io/v1", "StorageClass", "storageclasses")
            .with_list_key("storageClasses")
    }

    fn map(class: StorageClass, _ctx: &Context) -> Result<StorageClassDto, MapError> {
        Ok(StorageClassDto {
            name: class.metadata.name,
            provisioner: class.provisioner,
            reclaim_policy: class.reclaim_policy,
            volume_binding_mode: class.volume_binding_mode,
            allow_volume_expansion: class.allow_volume_expansion,
            created_at: class.metadata.creation_timestamp,
        })
    }
}

export_mapper!(StorageClasses);

periscope_plugin_sdk::golden_tests!(StorageClasses);
