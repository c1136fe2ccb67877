//! Kind plugin for networking.k8s.io/v1 `Ingress` → the SPA's Ingress summary
//! (`spec/dtos.md` 4.12).
//!
//! `hosts` collects rule hosts then TLS hosts, deduplicated in first-seen order, and
//! `address` prefers the first load-balancer ingress's `hostname` over its `ip` (the
//! reverse of Service).

use periscope_plugin_sdk::{
    Context, KindInfo, LoadBalancerStatus, MapError, Mapper, Meta, Timestamp, export_mapper, object,
};
use serde::Serialize;

/// The ingresses mapper.
pub struct Ingresses;

/// The fields of an Ingress this plugin reads.
#[object]
#[derive(Debug)]
pub struct Ingress {
    metadata: Meta,
    spec: IngressSpec,
    status: IngressStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct IngressSpec {
    ingress_class_name: String,
    rules: Vec<IngressRule>,
    tls: Vec<IngressTls>,
}

#[object]
#[derive(Debug)]
struct IngressRule {
    host: String,
}

#[object]
#[derive(Debug)]
struct IngressTls {
    hosts: Vec<String>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct IngressStatus {
    load_balancer: LoadBalancerStatus,
}

/// The Ingress summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressDto {
    name: String,
    namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    address: String,
    created_at: Timestamp,
}

impl Mapper for Ingresses {
    type Object = Ingress;
    type Dto = IngressDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("networking", "networking.k8s.io/v1", "Ingress", "ingresses")
    }

    fn map(ing: Ingress, _ctx: &Context) -> Result<IngressDto, MapError> {
        // Only the first ingress counts: its hostname, else its ip.
        let address = ing
            .status
            .load_balancer
            .ingress
            .into_iter()
            .next()
            .map(|first| {
                if first.hostname.is_empty() {
                    first.ip
                } else {
                    first.hostname
                }
            })
            .unwrap_or_default();
        Ok(IngressDto {
            hosts: hosts(&ing.spec),
            name: ing.metadata.name,
            namespace: ing.metadata.namespace,
            class: ing.spec.ingress_class_name,
            address,
            created_at: ing.metadata.creation_timestamp,
        })
    }
}

/// Non-empty rule hosts, then every TLS host (empty ones included), each kept at its
/// first occurrence.
fn hosts(spec: &IngressSpec) -> Vec<String> {
    let rule_hosts = spec.rules.iter().map(|r| &r.host).filter(|h| !h.is_empty());
    let tls_hosts = spec.tls.iter().flat_map(|t| &t.hosts);
    let mut hosts: Vec<String> = Vec::new();
    for host in rule_hosts.chain(tls_hosts) {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    hosts
}

export_mapper!(Ingresses);

periscope_plugin_sdk::golden_tests!(Ingresses);
