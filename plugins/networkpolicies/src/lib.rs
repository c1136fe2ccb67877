//! Kind plugin for networking.k8s.io/v1 `NetworkPolicy` → the SPA's NetworkPolicy
//! summary (`spec/dtos.md` 4.13).
//!
//! `podSelector` is the label-map string of `matchLabels` only (`matchExpressions` are
//! ignored), and `policyTypes` is passed through, `[]` when absent.

use std::collections::BTreeMap;

use periscope_plugin_sdk::{
    Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, label_selector, object,
};
use serde::Serialize;

/// The networkpolicies mapper.
pub struct NetworkPolicies;

/// The fields of a NetworkPolicy this plugin reads.
#[object]
#[derive(Debug)]
pub struct NetworkPolicy {
    metadata: Meta,
    spec: NetworkPolicySpec,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct NetworkPolicySpec {
    pod_selector: LabelSelector,
    policy_types: Vec<String>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    match_labels: BTreeMap<String, String>,
}

/// The NetworkPolicy summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyDto {
    name: String,
    namespace: String,
    created_at: Timestamp,
    pod_selector: String,
    policy_types: Vec<String>,
}

impl Mapper for NetworkPolicies {
    type Object = NetworkPolicy;
    type Dto = NetworkPolicyDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("networking", "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
            .with_list_key("networkPolicies")
    }

    fn map(np: NetworkPolicy, _ctx: &Context) -> Result<NetworkPolicyDto, MapError> {
        Ok(NetworkPolicyDto {
            name: np.metadata.name,
            namespace: np.metadata.namespace,
            created_at: np.metadata.creation_timestamp,
            pod_selector: label_selector(&np.spec.pod_selector.match_labels),
            policy_types: np.spec.policy_types,
        })
    }
}

export_mapper!(NetworkPolicies);

periscope_plugin_sdk::golden_tests!(NetworkPolicies);
