//! Kind plugin for core/v1 `Node` → the SPA's Node summary (`spec/dtos.md` 4.19).
//!
//! Cluster-scoped, so the DTO has no `namespace` key. Besides plain fields it derives a
//! kubectl-style `status` from the Ready condition, `roles` from the
//! `node-role.kubernetes.io/*` labels, and human-readable CPU and memory capacities.

use periscope_plugin_sdk::{
    Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object, quantity,
};
use serde::Serialize;

/// Labels whose key starts with this name a role; the remainder is the role.
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";

/// The role list of a node without any role label.
const NO_ROLE: &str = "<none>";

/// The nodes mapper.
pub struct Nodes;

/// The fields of a Node this plugin reads.
#[object]
#[derive(Debug)]
pub struct Node {
    metadata: Meta,
    spec: NodeSpec,
    status: NodeStatus,
}

#[object]
#[derive(Debug)]
struct NodeSpec {
    unschedulable: bool,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct NodeStatus {
    conditions: Vec<Condition>,
    addresses: Vec<Address>,
    capacity: Capacity,
    node_info: NodeInfo,
}

#[object]
#[derive(Debug)]
struct Address {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

/// `status.capacity`; absent quantities format as zero.
#[object]
#[derive(Debug)]
struct Capacity {
    cpu: Option<String>,
    memory: Option<String>,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    kubelet_version: String,
}

/// The Node summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDto {
    name: String,
    status: String,
    roles: Vec<String>,
    kubelet_version: String,
    #[serde(rename = "internalIP")]
    internal_ip: String,
    cpu_capacity: String,
    memory_capacity: String,
    created_at: Timestamp,
    unschedulable: bool,
}

impl Mapper for Nodes {
    type Object = Node;
    type Dto = NodeDto;

    // Not `status.images` (every image on the node, often the largest part), the other
    // status blocks or the annotations.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.labels",
        "metadata.creationTimestamp",
        "spec.unschedulable",
        "status.conditions[].type",
        "status.conditions[].status",
        "status.addresses",
        "status.capacity.cpu",
        "status.capacity.memory",
        "status.nodeInfo.kubeletVersion",
    ];

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("cluster", "v1", "Node", "nodes")
    }

    fn map(node: Node, _ctx: &Context) -> Result<NodeDto, MapError> {
        let status = &node.status;
        let internal_ip = status
            .addresses
            .iter()
            .find(|a| a.kind == "InternalIP")
            .map(|a| a.address.clone())
            .unwrap_or_default();
        Ok(NodeDto {
            status: ready_status(&status.conditions).to_string(),
            roles: roles(&node.metadata),
            kubelet_version: status.node_info.kubelet_version.clone(),
            internal_ip,
            cpu_capacity: format_cpu(quantity::millicores(status.capacity.cpu.as_deref())),
            memory_capacity: format_memory(quantity::bytes(status.capacity.memory.as_deref())),
            unschedulable: node.spec.unschedulable,
            name: node.metadata.name,
            created_at: node.metadata.creation_timestamp,
        })
    }
}

/// The first Ready condition decides: `True` is Ready, `False` NotReady, anything else
/// (or no Ready condition at all) Unknown.
fn ready_status(conditions: &[Condition]) -> &'static str {
    match conditions.iter().find(|c| c.kind == "Ready") {
        Some(c) if c.status == "True" => "Ready",
        Some(c) if c.status == "False" => "NotReady",
        _ => "Unknown",
    }
}

/// Role names from `node-role.kubernetes.io/<role>` label keys, sorted, label values
/// ignored; `["<none>"]` when there are none. The legacy `kubernetes.io/role` label is
/// deliberately not consulted (spec 6.8).
fn roles(metadata: &Meta) -> Vec<String> {
    let mut roles: Vec<String> = metadata
        .labels
        .keys()
        .filter_map(|key| key.strip_prefix(ROLE_LABEL_PREFIX))
        .filter(|role| !role.is_empty())
        .map(str::to_string)
        .collect();
    roles.sort();
    if roles.is_empty() {
        roles.push(NO_ROLE.to_string());
    }
    roles
}

/// `"<m>m"` below one core, else cores with two decimals (`"2.00 cores"`).
fn format_cpu(millicores: i128) -> String {
    if millicores >= 1000 {
        format!("{:.2} cores", millicores as f64 / 1000.0)
    } else {
        format!("{millicores}m")
    }
}

/// The largest binary unit the value reaches, with one decimal (`"7.6 GiB"`), or plain
/// bytes below one KiB (`"0 B"`). Rust's fixed-precision formatting rounds the exact
/// binary value with ties to even, as Go's `%.1f` does.
fn format_memory(bytes: i128) -> String {
    const KIB: i128 = 1 << 10;
    const MIB: i128 = 1 << 20;
    const GIB: i128 = 1 << 30;
    let scaled = |unit: i128| bytes as f64 / unit as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", scaled(GIB))
    } else if bytes >= MIB {
        format!("{:.1} MiB", scaled(MIB))
    } else if bytes >= KIB {
        format!("{:.1} KiB", scaled(KIB))
    } else {
        format!("{bytes} B")
    }
}

export_mapper!(Nodes);

periscope_plugin_sdk::golden_tests!(Nodes);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_switches_to_cores_at_one_thousand_millicores() {
        assert_eq!(format_cpu(0), "0m");
        assert_eq!(format_cpu(999), "999m");
        assert_eq!(format_cpu(1000), "1.00 cores");
        assert_eq!(format_cpu(96_000), "96.00 cores");
    }

    #[test]
    fn memory_uses_the_largest_unit_reached() {
        assert_eq!(format_memory(0), "0 B");
        assert_eq!(format_memory(1023), "1023 B");
        assert_eq!(format_memory(1 << 10), "1.0 KiB");
        assert_eq!(format_memory((1 << 20) - 1), "1024.0 KiB");
        assert_eq!(format_memory(1 << 20), "1.0 MiB");
        assert_eq!(format_memory(1 << 30), "1.0 GiB");
    }
}
