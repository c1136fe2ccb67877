//! Kind plugin for networking.k8s.io/v1 `Ingress` → the SPA's Ingress summary
//! (`spec/dtos.md` 4.12).
//!
//! `hosts` collects rule hosts then TLS hosts, deduplicated in first-seen order, and
//! `address` prefers the first load-balancer ingress's `hostname` over its `ip` (the
//! reverse of Service).

use periscope_plugin_sdk::{
    Context, KindInfo, LoadBalancerStatus, MapError, Mapper, Meta, Timestamp, export_mapper, nullable,
};
use serde::{Deserialize, Serialize};

/// The ingresses mapper.
pub struct Ingresses;

/// The fields of an Ingress this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ingress {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: IngressSpec,
    #[serde(deserialize_with = "nullable")]
    status: IngressStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IngressSpec {
    #[serde(deserialize_with = "nullable")]
    ingress_class_name: String,
    #[serde(deserialize_with = "nullable")]
    rules: Vec<IngressRule>,
    #[serde(deserialize_with = "nullable")]
    tls: Vec<IngressTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IngressRule {
    #[serde(deserialize_with = "nullable")]
    host: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IngressTls {
    #[serde(deserialize_with = "nullable")]
    hosts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IngressStatus {
    #[serde(deserialize_with = "nullable")]
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
        KindInfo {
            token: "ingresses",
            group_alias: "networking",
            api_group: "networking.k8s.io",
            api_version: "v1",
            kind: "Ingress",
            plural: "ingresses",
            namespaced: true,
            list_key: "ingresses",
            snapshot: None,
            fields: &["metadata", "spec", "status"],
        }
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
