//! The `scale` subresource of deployments, stateful sets and replica sets: an
//! `autoscaling/v1` `Scale` of the object's `spec.replicas` (what `kubectl scale` and
//! horizontal pod autoscalers read and write).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use super::request::Target;
use super::rest::{WriteOptions, key};
use crate::managed::Scope;
use crate::meta;
use crate::patch::{self, PatchType};
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::store::UpdateMode;

/// The `Scale` of a scalable object (kube-apiserver's registry: replicas default to 1,
/// `status.selector` is the label selector as a string).
fn scale_of(obj: &Value) -> Value {
    let mut metadata = json!({});
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = obj.pointer(&format!("/metadata/{field}")) {
            metadata[field] = v.clone();
        }
    }
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let mut spec = json!({});
    if replicas != 0 {
        spec["replicas"] = json!(replicas);
    }
    let mut status = json!({
        "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
    });
    let selector = obj.pointer("/spec/selector").map(selector_string).unwrap_or_default();
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    })
}

/// A `LabelSelector` as its string form (`metav1.FormatLabelSelector`).
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match expr.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        });
    }
    parts.sort();
    parts.join(",")
}

pub(super) fn get(ctx: &Ctx, target: &Target, name: &str) -> Result<Response, ApiError> {
    let obj = ctx
        .store
        .get(target.resource, &key(target, name))
        .ok_or_else(|| ApiError::not_found(target.rt(), name))?;
    Ok(Json(scale_of(&obj)).into_response())
}

/// Validates the replicas a `Scale` asks for.
fn replicas(rt: &ResourceType, name: &str, scale: &Value) -> Result<i64, ApiError> {
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::invalid(
                rt,
                name,
                format!("spec.replicas: Invalid value: {v}: must be an integer"),
            )
        })?,
    };
    if replicas < 0 {
        return Err(ApiError {
            message: format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
            ..ApiError::invalid(
                rt,
                name,
                format!("spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
            )
        });
    }
    Ok(replicas)
}

/// Writes the replicas a changed `Scale` asks for to the object.
fn write_scale(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    options: &WriteOptions,
    change: impl FnOnce(Value) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let rt = target.rt();
    let write = options.write(Scope::Scale);
    let updated = ctx
        .store
        .mutate_with(target.resource, &key(target, name), UpdateMode::Main, &write, |obj| {
            let wanted = change(scale_of(obj))?;
            let rv = wanted.pointer("/metadata/resourceVersion").and_then(Value::as_str);
            if rv.is_some_and(|rv| !rv.is_empty() && rv != meta::resource_version(obj)) {
                return Err(ApiError::conflict(rt, name));
            }
            obj["spec"]["replicas"] = json!(replicas(rt, name, &wanted)?);
            Ok(())
        })?;
    Ok(Json(scale_of(&updated)).into_response())
}

pub(super) fn replace(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    options: &WriteOptions,
    body: &[u8],
) -> Result<Response, ApiError> {
    let wanted: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request is not a valid Scale: {e}")))?;
    write_scale(ctx, target, name, options, |_| Ok(wanted))
}

pub(super) fn patch(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    options: &WriteOptions,
    content_type: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let patch_type =
        PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    write_scale(ctx, target, name, options, |mut scale| {
        patch::apply(&mut scale, patch_type, body).map_err(|e| {
            let detail = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            ApiError::bad_request(format!("{e}: {detail}"))
        })?;
        Ok(scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_of_a_deployment() {
        let d = json!({
            "metadata": { "name": "web", "namespace": "a", "uid": "u", "resourceVersion": "7", "labels": { "x": "y" } },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web", "tier": "fe" } } },
            "status": { "replicas": 2 },
        });
        assert_eq!(
            scale_of(&d),
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": { "name": "web", "namespace": "a", "uid": "u", "resourceVersion": "7" },
                "spec": { "replicas": 3 },
                "status": { "replicas": 2, "selector": "app=web,tier=fe" },
            })
        );
    }
}
