//! Kind plugin for storage.k8s.io/v1 `StorageClass` → the SPA's StorageClass summary
//! (`spec/dtos.md` 4.18).
//!
//! A StorageClass has no `spec`: its fields sit at the top level of the object. It is
//! cluster-scoped, so the DTO has no `namespace` key. The default-class annotation is
//! deliberately not surfaced.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::{Deserialize, Serialize};

/// The storageclasses mapper.
pub struct StorageClasses;

/// The fields of a StorageClass this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StorageClass {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    provisioner: String,
    #[serde(deserialize_with = "nullable")]
    reclaim_policy: String,
    #[serde(deserialize_with = "nullable")]
    volume_binding_mode: String,
    /// Absent or `null` is false; Periscope applies no API defaulting (spec 1.3).
    #[serde(deserialize_with = "nullable")]
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
        KindInfo {
            token: "storageclasses",
            group_alias: "storage",
            api_group: "storage.k8s.io",
            api_version: "v1",
            kind: "StorageClass",
            plural: "storageclasses",
            namespaced: false,
            list_key: "storageClasses",
            snapshot: None,
            fields: &[
                "metadata",
                "provisioner",
                "reclaimPolicy",
                "volumeBindingMode",
                "allowVolumeExpansion",
            ],
        }
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
