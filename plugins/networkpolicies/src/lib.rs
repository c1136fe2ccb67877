//! Kind plugin for networking.k8s.io/v1 `NetworkPolicy` → the SPA's NetworkPolicy
//! summary (`spec/dtos.md` 4.13).
//!
//! `podSelector` is the label-map string of `matchLabels` only (`matchExpressions` are
//! ignored), and `policyTypes` is passed through, `[]` when absent.

use std::collections::BTreeMap;

use periscope_plugin_sdk::{
    Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, label_selector, nullable,
};
use serde::{Deserialize, Serialize};

/// The networkpolicies mapper.
pub struct NetworkPolicies;

/// The fields of a NetworkPolicy this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkPolicy {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: NetworkPolicySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NetworkPolicySpec {
    #[serde(deserialize_with = "nullable")]
    pod_selector: LabelSelector,
    #[serde(deserialize_with = "nullable")]
    policy_types: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LabelSelector {
    #[serde(deserialize_with = "nullable")]
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
        KindInfo {
            token: "networkpolicies",
            group_alias: "networking",
            api_group: "networking.k8s.io",
            api_version: "v1",
            kind: "NetworkPolicy",
            plural: "networkpolicies",
            namespaced: true,
            list_key: "networkPolicies",
            snapshot: None,
            fields: &["metadata", "spec"],
        }
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
