//! Kind plugin for core/v1 `Service` → the SPA's Service summary (`spec/dtos.md` 4.11).
//!
//! `clusterIP` is passed through verbatim (`"None"` for headless services, absent for
//! ExternalName ones), and `externalIP` looks only at the first load-balancer ingress,
//! preferring its `ip` over its `hostname` (the reverse of Ingress).

use periscope_plugin_sdk::{
    Context, IntOrString, KindInfo, LoadBalancerStatus, MapError, Mapper, Meta, Timestamp, export_mapper, object,
};
use serde::Serialize;

/// The services mapper.
pub struct Services;

/// The fields of a Service this plugin reads.
#[object]
#[derive(Debug)]
pub struct Service {
    metadata: Meta,
    spec: ServiceSpec,
    status: ServiceStatus,
}

#[object]
#[derive(Debug)]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "clusterIP")]
    cluster_ip: String,
    ports: Vec<ServicePort>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct ServicePort {
    name: String,
    protocol: String,
    port: i32,
    target_port: Option<IntOrString>,
    node_port: i32,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus {
    load_balancer: LoadBalancerStatus,
}

/// The Service summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDto {
    name: String,
    namespace: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "clusterIP", skip_serializing_if = "String::is_empty")]
    cluster_ip: String,
    #[serde(rename = "externalIP", skip_serializing_if = "String::is_empty")]
    external_ip: String,
    ports: Vec<PortDto>,
    created_at: Timestamp,
}

/// One entry of [`ServiceDto`]'s `ports`, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortDto {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    protocol: String,
    port: i32,
    target_port: String,
    #[serde(skip_serializing_if = "is_zero")]
    node_port: i32,
}

/// For `skip_serializing_if`: omit-empty for an int.
fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl Mapper for Services {
    type Object = Service;
    type Dto = ServiceDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("networking", "v1", "Service", "services")
    }

    fn map(svc: Service, _ctx: &Context) -> Result<ServiceDto, MapError> {
        // Only the first ingress counts: its ip, else its hostname.
        let external_ip = svc
            .status
            .load_balancer
            .ingress
            .into_iter()
            .next()
            .map(|first| if first.ip.is_empty() { first.hostname } else { first.ip })
            .unwrap_or_default();
        let ports = svc
            .spec
            .ports
            .into_iter()
            .map(|p| PortDto {
                target_port: IntOrString::render(p.target_port.as_ref(), "0"),
                name: p.name,
                protocol: p.protocol,
                port: p.port,
                node_port: p.node_port,
            })
            .collect();
        Ok(ServiceDto {
            name: svc.metadata.name,
            namespace: svc.metadata.namespace,
            kind: svc.spec.kind,
            cluster_ip: svc.spec.cluster_ip,
            external_ip,
            ports,
            created_at: svc.metadata.creation_timestamp,
        })
    }
}

export_mapper!(Services);

periscope_plugin_sdk::golden_tests!(Services);
