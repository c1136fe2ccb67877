//! Kind plugin for core/v1 `Namespace` → the SPA's Namespace summary
//! (`spec/dtos.md` 4.20).
//!
//! Cluster-scoped, so the DTO has no `namespace` key; `phase` is the raw
//! `status.phase` (`Active`, `Terminating`, or `""` when absent).

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::{Deserialize, Serialize};

/// The namespaces mapper.
pub struct Namespaces;

/// The fields of a Namespace this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    status: NamespaceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamespaceStatus {
    #[serde(deserialize_with = "nullable")]
    phase: String,
}

/// The Namespace summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDto {
    name: String,
    phase: String,
    created_at: Timestamp,
}

impl Mapper for Namespaces {
    type Object = Namespace;
    type Dto = NamespaceDto;

    fn info() -> KindInfo {
        KindInfo {
            token: "namespaces",
            group_alias: "cluster",
            api_group: "",
            api_version: "v1",
            kind: "Namespace",
            plural: "namespaces",
            namespaced: false,
            list_key: "namespaces",
            snapshot: None,
            fields: &["metadata", "status"],
        }
    }

    fn map(namespace: Namespace, _ctx: &Context) -> Result<NamespaceDto, MapError> {
        Ok(NamespaceDto {
            name: namespace.metadata.name,
            phase: namespace.status.phase,
            created_at: namespace.metadata.creation_timestamp,
        })
    }
}

export_mapper!(Namespaces);

periscope_plugin_sdk::golden_tests!(Namespaces);
