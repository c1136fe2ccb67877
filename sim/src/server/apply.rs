//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): create or update
//! the object from the applied configuration, with field ownership and conflicts
//! from [`managed`](crate::managed).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Ctx;
use super::request::{Params, Target, flag};
use super::rest::{WriteOptions, key, namespace_accepts_writes, place};
use crate::managed::{self, Scope, Stamp};
use crate::meta;
use crate::status::ApiError;
use crate::store::{UpdateMode, Write};

/// Answers an apply patch (to the object, or to its `status` when `status`): `201`
/// with the created object, `200` with the updated one, `409` naming the conflicting
/// managers and fields.
pub(super) fn apply(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    status: bool,
    options: &WriteOptions,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rt = target.rt();
    if !options.manager_given {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut config: Value =
        serde_norway::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request("the applied configuration must be an object"));
    }
    let api_version = rt.api_version();
    for (field, expected) in [("apiVersion", api_version.as_str()), ("kind", rt.kind.as_str())] {
        match config.get(field).and_then(Value::as_str) {
            Some(given) if given == expected => {}
            Some(given) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the applied configuration ({given}) does not match the resource ({expected})"
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "the applied configuration has no {field}; it must be {expected:?}"
                )));
            }
        }
    }
    place(target, &mut config)?;
    match meta::name(&config) {
        "" => {
            meta::metadata_mut(&mut config).insert("name".into(), Value::String(name.to_string()));
        }
        given if given != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    let force = flag(params, "force");
    let now = meta::now_timestamp();
    let stamp = Stamp {
        api_version: &api_version,
        now: &now,
    };
    let builtin = rt.is_builtin();
    // Managed fields come from the apply itself, not from an `Update` entry.
    let write = Write {
        manager: None,
        dry_run: options.dry_run,
    };
    let key = key(target, name);
    let scope = if status {
        Scope::Status
    } else {
        Scope::Main {
            has_status: rt.has_status,
        }
    };
    if ctx.store.get(target.resource, &key).is_none() {
        if status {
            return Err(ApiError::not_found(rt, name));
        }
        if let Some(ns) = &target.namespace {
            namespace_accepts_writes(ctx, ns)?;
        }
        let mut obj = managed::apply(None, &config, &options.manager, force, builtin, scope, &stamp)?;
        if let Some(admit) = rt.hooks.admit {
            admit(&ctx.store, &mut obj);
        }
        let created = ctx.store.create_with(target.resource, obj, &write)?;
        tracing::debug!(resource = %rt.plural, name, manager = %options.manager, "created by apply");
        return Ok((StatusCode::CREATED, Json(&*created)).into_response());
    }
    let mode = if status { UpdateMode::Status } else { UpdateMode::Main };
    let updated = ctx.store.mutate_with(target.resource, &key, mode, &write, |obj| {
        *obj = managed::apply(Some(obj), &config, &options.manager, force, builtin, scope, &stamp)?;
        Ok(())
    })?;
    Ok(Json(&*updated).into_response())
}
