//! Kind plugin for discovery.k8s.io/v1 `EndpointSlice` → the SPA's EndpointSlice
//! summary (`spec/dtos.md` 4.14).
//!
//! The slice's fields are top-level (`addressType`, `ports`, `endpoints`), not under
//! `spec`. An endpoint counts as ready only when `conditions.ready` is exactly `true`:
//! an absent `ready` is *not* ready, unlike the Kubernetes convention.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The endpointslices mapper.
pub struct EndpointSlices;

/// The label naming the Service a slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The fields of an EndpointSlice this plugin reads.
#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    metadata: Meta,
    address_type: String,
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct EndpointPort {
    name: String,
    protocol: String,
    port: i32,
    app_protocol: String,
}

#[object]
#[derive(Debug)]
struct Endpoint {
    conditions: EndpointConditions,
}

#[object]
#[derive(Debug)]
struct EndpointConditions {
    ready: Option<bool>,
}

/// The EndpointSlice summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceDto {
    name: String,
    namespace: String,
    address_type: String,
    ports: Vec<PortDto>,
    #[serde(skip_serializing_if = "String::is_empty")]
    service_name: String,
    ready_count: usize,
    total_count: usize,
    created_at: Timestamp,
}

/// One entry of [`EndpointSliceDto`]'s `ports`, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortDto {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    protocol: String,
    port: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    app_protocol: String,
}

impl Mapper for EndpointSlices {
    type Object = EndpointSlice;
    type Dto = EndpointSliceDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("networking", "discovery.k8s.io/v1", "EndpointSlice", "endpointslices")
            .with_list_key("endpointSlices")
    }

    fn map(slice: EndpointSlice, _ctx: &Context) -> Result<EndpointSliceDto, MapError> {
        let ready_count = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.ready == Some(true))
            .count();
        let ports = slice
            .ports
            .into_iter()
            .map(|p| PortDto {
                name: p.name,
                protocol: p.protocol,
                port: p.port,
                app_protocol: p.app_protocol,
            })
            .collect();
        Ok(EndpointSliceDto {
            service_name: slice.metadata.label(SERVICE_NAME_LABEL).unwrap_or_default().to_string(),
            name: slice.metadata.name,
            namespace: slice.metadata.namespace,
            address_type: slice.address_type,
            ports,
            ready_count,
            total_count: slice.endpoints.len(),
            created_at: slice.metadata.creation_timestamp,
        })
    }
}

export_mapper!(EndpointSlices);

periscope_plugin_sdk::golden_tests!(EndpointSlices);
