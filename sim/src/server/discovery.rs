//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}[/{version}]`.
//!
//! The legacy (unaggregated) JSON documents are served whatever the `Accept` header
//! asks for: client-go asks for aggregated discovery
//! (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`) first and
//! falls back to the legacy documents when the response's `Content-Type` is plain
//! `application/json`, which is what kubectl 1.35 and helm do here.
//!
//! Every document is read from the current resource table, so a custom resource is
//! discovered from the moment its definition is written until it is deleted.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use crate::resource::{ResourceType, Table, reviews};
use crate::status::ApiError;

/// The Kubernetes version the sim reports.
pub(crate) const MINOR_VERSION: &str = "35";

pub(super) async fn ok() -> &'static str {
    "ok"
}

pub(super) async fn version() -> Json<Value> {
    Json(json!({
        "major": "1",
        "minor": MINOR_VERSION,
        "emulationMajor": "1",
        "emulationMinor": MINOR_VERSION,
        "gitVersion": format!("v1.{MINOR_VERSION}.0-periscope-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

pub(super) async fn core_versions(State(ctx): State<Ctx>) -> Json<Value> {
    Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            { "clientCIDR": "0.0.0.0/0", "serverAddress": ctx.server_address }
        ],
    }))
}

fn group_doc(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

pub(super) async fn groups(State(ctx): State<Ctx>) -> Json<Value> {
    let groups: Vec<Value> = ctx
        .store
        .table()
        .groups()
        .iter()
        .map(|(g, versions)| group_doc(g, versions))
        .collect();
    Json(json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }))
}

pub(super) async fn group(State(ctx): State<Ctx>, Path(group): Path<String>) -> Response {
    let table = ctx.store.table();
    match table.groups().into_iter().find(|(g, _)| *g == group) {
        Some((g, versions)) => {
            let mut doc = group_doc(g, &versions);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Json(doc).into_response()
        }
        None => ApiError::no_route(&format!("/apis/{group}")).into_response(),
    }
}

fn resource_list(table: &Table, group: &str, version: &str) -> Option<Value> {
    let in_gv = |r: &&ResourceType| r.group == group && r.version == version;
    let members: Vec<&ResourceType> = table.iter().map(|(_, r)| &**r).filter(in_gv).collect();
    let reviews: Vec<&ResourceType> = reviews().iter().filter(in_gv).collect();
    if members.is_empty() && reviews.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in reviews {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create"],
        }));
    }
    for r in members {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": r.short_names,
            "storageVersionHash": "",
        }));
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.hooks.scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.hooks.logs {
            resources.push(json!({
                "name": format!("{}/log", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

pub(super) async fn core_resources(State(ctx): State<Ctx>) -> Response {
    match resource_list(&ctx.store.table(), "", "v1") {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::no_route("/api/v1").into_response(),
    }
}

pub(super) async fn group_resources(
    State(ctx): State<Ctx>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    match resource_list(&ctx.store.table(), &group, &version) {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::no_route(&format!("/apis/{group}/{version}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_carry_verbs_short_names_and_subresources() {
        let table = Table::new();
        let resource_list = |group, version| resource_list(&table, group, version);
        let doc = resource_list("apps", "v1").unwrap();
        assert_eq!(doc["groupVersion"], "apps/v1");
        let resources = doc["resources"].as_array().unwrap();
        let deploy = resources.iter().find(|r| r["name"] == "deployments").unwrap();
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["singularName"], "deployment");
        assert!(resources.iter().any(|r| r["name"] == "deployments/status"));
        let core = resource_list("", "v1").unwrap();
        assert!(
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/log")
        );
        assert!(resource_list("apps", "v9").is_none());
        let authz = resource_list("authorization.k8s.io", "v1").unwrap();
        let sar = authz["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "subjectaccessreviews")
            .unwrap();
        assert_eq!(sar["verbs"], json!(["create"]));
    }
}
