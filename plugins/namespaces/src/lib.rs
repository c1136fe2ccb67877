//! Kind plugin for core/v1 `Namespace` → the SPA's Namespace summary
//! (`spec/dtos.md` 4.20).
//!
//! Cluster-scoped, so the DTO has no `namespace` key; `phase` is the raw
//! `status.phase` (`Active`, `Terminating`, or `""` when absent).

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The namespaces mapper.
pub struct Namespaces;

/// The fields of a Namespace this plugin reads.
#[object]
#[derive(Debug)]
pub struct Namespace {
    metadata: Meta,
    status: NamespaceStatus,
}

#[object]
#[derive(Debug)]
struct NamespaceStatus {
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
        KindInfo::cluster_scoped("cluster", "v1", "Namespace", "namespaces")
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
