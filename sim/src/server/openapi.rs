//! A minimal OpenAPI v3 document: just enough for `kubectl create/apply` to validate
//! without `--validate=false`.
//!
//! kubectl's default validation (`--validate=strict`) asks whether the server
//! validates fields itself: it looks in `/openapi/v3/<group-version>` for the PATCH
//! operation of the kind (tagged `x-kubernetes-group-version-kind`) and its
//! `fieldValidation` query parameter. When found, kubectl sends
//! `fieldValidation=Strict` and skips client-side schema validation. The sim lists
//! those operations and no schemas; it accepts any fields. The PATCH operations do not
//! advertise strategic merge patch bodies, so `kubectl apply` computes its patch from
//! its built-in types instead of from schemas the sim does not have.
//! `/openapi/v2` is not served (404), as on a server without it.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::resource::Table;
use crate::status::ApiError;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per group-version.
pub(super) async fn index(State(ctx): State<Ctx>) -> Json<Value> {
    let mut paths = Map::new();
    for (_, r) in ctx.store.table().iter() {
        let path = gv_path(&r.group, &r.version);
        paths
            .entry(path.clone())
            .or_insert_with(|| json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash=periscope-sim") }));
    }
    Json(json!({ "paths": paths }))
}

fn document(table: &Table, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for (_, r) in table.iter().filter(|(_, r)| r.group == group && r.version == version) {
        let prefix = format!("/{}", gv_path(group, version));
        let object_path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let operation = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": r.group, "version": r.version, "kind": r.kind },
            "parameters": [
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                { "name": "fieldManager", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
            ],
            "requestBody": { "content": {
                "application/json-patch+json": { "schema": { "type": "object" } },
                "application/merge-patch+json": { "schema": { "type": "object" } },
            }},
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(object_path, json!({ "patch": operation }));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.35.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

/// `/openapi/v3/api/{version}`
pub(super) async fn core(State(ctx): State<Ctx>, Path(version): Path<String>) -> Response {
    match document(&ctx.store.table(), "", &version) {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::no_route(&format!("/openapi/v3/api/{version}")).into_response(),
    }
}

/// `/openapi/v3/apis/{group}/{version}`
pub(super) async fn group(State(ctx): State<Ctx>, Path((group, version)): Path<(String, String)>) -> Response {
    match document(&ctx.store.table(), &group, &version) {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::no_route(&format!("/openapi/v3/apis/{group}/{version}")).into_response(),
    }
}
