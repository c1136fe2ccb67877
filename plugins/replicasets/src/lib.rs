//! Kind plugin for apps/v1 `ReplicaSet` → the SPA's ReplicaSet summary
//! (`spec/dtos.md` 4.6).
//!
//! Unlike the other workloads, `createdAt` comes third. `owner` names only a Deployment
//! owner (`Deployment/<name>`); other owners, such as an Argo `Rollout`, give `""`.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The replicasets mapper.
pub struct ReplicaSets;

/// The fields of a ReplicaSet this plugin reads.
#[object]
#[derive(Debug)]
pub struct ReplicaSet {
    metadata: Meta,
    spec: ReplicaSetSpec,
    status: ReplicaSetStatus,
}

#[object]
#[derive(Debug)]
struct ReplicaSetSpec {
    replicas: i32,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct ReplicaSetStatus {
    replicas: i32,
    ready_replicas: i32,
}

/// The ReplicaSet summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetDto {
    name: String,
    namespace: String,
    created_at: Timestamp,
    desired: i32,
    current: i32,
    ready: i32,
    owner: String,
}

impl Mapper for ReplicaSets {
    type Object = ReplicaSet;
    type Dto = ReplicaSetDto;

    // Not the pod template; the owner column needs the owner references.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "metadata.ownerReferences[].kind",
        "metadata.ownerReferences[].name",
        "spec.replicas",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "apps/v1", "ReplicaSet", "replicasets").with_list_key("replicaSets")
    }

    fn map(set: ReplicaSet, _ctx: &Context) -> Result<ReplicaSetDto, MapError> {
        let ReplicaSet { metadata, spec, status } = set;
        let owner = metadata
            .owner_references
            .iter()
            .find(|owner| owner.kind == "Deployment")
            .map(|owner| format!("Deployment/{}", owner.name))
            .unwrap_or_default();
        Ok(ReplicaSetDto {
            name: metadata.name,
            namespace: metadata.namespace,
            created_at: metadata.creation_timestamp,
            desired: spec.replicas,
            current: status.replicas,
            ready: status.ready_replicas,
            owner,
        })
    }
}

export_mapper!(ReplicaSets);

periscope_plugin_sdk::golden_tests!(ReplicaSets);
