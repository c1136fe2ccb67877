//! Kind plugin for apps/v1 `Deployment` → the SPA's Deployment summary
//! (`spec/dtos.md` 4.3).
//!
//! `replicas` is the desired count, `spec.replicas`, and **0** when absent: Periscope does
//! not apply the API default of 1. `status.replicas`, which exceeds the desired count
//! during a surge, is not shown.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The deployments mapper.
pub struct Deployments;

/// The fields of a Deployment this plugin reads.
#[object]
#[derive(Debug)]
pub struct Deployment {
    metadata: Meta,
    spec: DeploymentSpec,
    status: DeploymentStatus,
}

#[object]
#[derive(Debug)]
struct DeploymentSpec {
    replicas: i32,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct DeploymentStatus {
    ready_replicas: i32,
    updated_replicas: i32,
    available_replicas: i32,
}

/// The Deployment summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentDto {
    name: String,
    namespace: String,
    replicas: i32,
    ready_replicas: i32,
    updated_replicas: i32,
    available_replicas: i32,
    created_at: Timestamp,
}

impl Mapper for Deployments {
    type Object = Deployment;
    type Dto = DeploymentDto;

    // Not the pod template, nor labels and annotations (last-applied-configuration).
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "spec.replicas",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "apps/v1", "Deployment", "deployments")
    }

    fn map(deployment: Deployment, _ctx: &Context) -> Result<DeploymentDto, MapError> {
        let Deployment { metadata, spec, status } = deployment;
        Ok(DeploymentDto {
            name: metadata.name,
            namespace: metadata.namespace,
            replicas: spec.replicas,
            ready_replicas: status.ready_replicas,
            updated_replicas: status.updated_replicas,
            available_replicas: status.available_replicas,
            created_at: metadata.creation_timestamp,
        })
    }
}

export_mapper!(Deployments);

periscope_plugin_sdk::golden_tests!(Deployments);
