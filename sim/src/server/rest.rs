//! Resource requests: list, get, create, replace, patch and delete, dispatching
//! watches and logs to their modules. What differs per kind comes from the resource
//! table's hooks (admission, deletion, subresources).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use super::request::{Filter, Params, Target, flag, number, parse_path};
use super::scale;
use crate::fault::ListFailure;
use crate::managed;
use crate::meta;
use crate::paging::ContinueToken;
use crate::patch::{self, PatchType};
use crate::resource::{self, Deletion, ResourceId, ResourceType};
use crate::status::ApiError;
use crate::store::{ObjKey, UpdateMode, Write};

/// How long a deleted pod stays `Terminating` before the simulated kubelet confirms.
const POD_TERMINATION: Duration = Duration::from_millis(300);

/// The fallback handler: every `/api` and `/apis` resource request.
pub(super) async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(target) = parse_path(&ctx.store.table(), path) else {
        return ApiError::no_route(path).into_response();
    };
    tracing::debug!(%method, path, "request");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let options = match WriteOptions::from_params(&params, user_agent) {
        Ok(options) => options,
        Err(error) => return error.into_response(),
    };
    let result = match (&method, &target.name, target.subresource.as_deref()) {
        (&Method::GET, None, None) if flag(&params, "watch") => {
            return super::watch::watch(ctx, target, params).await;
        }
        (&Method::GET, None, None) => list(&ctx, &target, &params),
        (&Method::POST, None, None) => create(&ctx, &target, &options, &body),
        (&Method::GET, Some(_), Some("log")) if target.rt().hooks.logs => {
            return super::logs::logs(ctx, target, params).await;
        }
        (&Method::GET, Some(name), Some("scale")) => scale::get(&ctx, &target, name),
        (&Method::PUT, Some(name), Some("scale")) => scale::replace(&ctx, &target, name, &options, &body),
        (&Method::PATCH, Some(name), Some("scale")) => scale::patch(&ctx, &target, name, &options, content_type, &body),
        (&Method::GET, Some(name), None | Some("status")) => get(&ctx, &target, name),
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => {
            replace(&ctx, &target, name, sub.is_some(), &options, &body)
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) if is_apply(content_type) => {
            super::apply::apply(&ctx, &target, name, sub.is_some(), &options, &params, &body)
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            patch(&ctx, &target, name, sub.is_some(), &options, content_type, &body)
        }
        (&Method::DELETE, Some(name), None) => delete(&ctx, &target, name, &options, &params, &body),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        ))),
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%method, path, code = error.code, reason = error.reason, "request failed");
            error.into_response()
        }
    }
}

fn list(ctx: &Ctx, target: &Target, params: &Params) -> Result<Response, ApiError> {
    ctx.faults.count_list();
    if let Some(failure) = ctx.faults.take_list_failure() {
        tracing::debug!(resource = %target.rt().plural, ?failure, "injected list failure");
        return Err(match failure {
            ListFailure::InternalError => ApiError::internal("injected fault: list failed"),
            ListFailure::TooManyRequests => ApiError::too_many_requests(),
        });
    }
    let rt = target.rt();
    let filter = Filter::from_params(target, params)?;
    let limit: Option<usize> = number(params, "limit")?;
    let token = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(ContinueToken::decode(c).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    if let Some(token) = &token
        && (token.rv < ctx.store.compacted_rv() || ctx.faults.take_continue_expiry())
    {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter.",
        ));
    }
    let page = ctx.store.list(
        target.resource,
        filter.namespace.as_deref(),
        token.as_ref().map(|t| &t.after),
        limit,
        filter.selector().as_ref().map(|f| f as &dyn Fn(&Value) -> bool),
    );
    let list_rv = token.as_ref().map_or(page.rv, |t| t.rv);
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if let Some(after) = page.next_after {
        metadata["continue"] = json!(ContinueToken { rv: list_rv, after }.encode());
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    // Written by hand rather than through `json!`, which would deep-copy every item
    // into a new `Value` before serializing it.
    let mut body = Vec::with_capacity(page.items.len() * 2048 + 256);
    let head = json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": metadata,
    });
    let write = |body: &mut Vec<u8>, value: &Value| {
        serde_json::to_writer(body, value).map_err(|e| ApiError::internal(format!("cannot encode the list: {e}")))
    };
    write(&mut body, &head)?;
    body.pop(); // the closing brace of `head`
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write(&mut body, item)?;
    }
    body.extend_from_slice(b"]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub(super) fn key(target: &Target, name: &str) -> ObjKey {
    ObjKey {
        namespace: target.namespace.clone().unwrap_or_default(),
        name: name.to_string(),
    }
}

fn get(ctx: &Ctx, target: &Target, name: &str) -> Result<Response, ApiError> {
    let obj = ctx
        .store
        .get(target.resource, &key(target, name))
        .ok_or_else(|| ApiError::not_found(target.rt(), name))?;
    Ok(Json(&*obj).into_response())
}

fn parse_body(rt: &ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    let obj: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request is not a valid JSON {} object: {e}",
            rt.kind
        ))
    })?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({})",
            rt.qualified()
        )));
    }
    Ok(obj)
}

/// Puts the object in the path's namespace, or fails if it names another one.
pub(super) fn place(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if let Some(ns) = &target.namespace {
        let given = meta::namespace(obj);
        if !given.is_empty() && given != ns {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object does not match the namespace sent on the request ({given} != {ns})"
            )));
        }
        meta::metadata_mut(obj).insert("namespace".into(), json!(ns));
    }
    Ok(())
}

/// Whether a PATCH is a server-side apply (`application/apply-patch+yaml`; kubectl and
/// helm send JSON under that type, which is YAML too).
fn is_apply(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/apply-patch+yaml"))
}

/// What every write request carries besides its body: who manages the fields it
/// writes, and whether it is a dry run.
pub(super) struct WriteOptions {
    /// `fieldManager`, else the product of the User-Agent (`kubectl`, `Helm`), as
    /// kube-apiserver names the manager of an `Update`.
    pub manager: String,
    /// Whether `fieldManager` was given (server-side apply requires it).
    pub manager_given: bool,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl WriteOptions {
    fn from_params(params: &Params, user_agent: &str) -> Result<Self, ApiError> {
        let dry_run = match params.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
                )));
            }
        };
        let given = params.get("fieldManager").filter(|m| !m.is_empty());
        if given.is_some_and(|m| m.chars().count() > 128) {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        let manager = match given {
            Some(m) => m.clone(),
            None => user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .chars()
                .take(128)
                .collect(),
        };
        Ok(Self {
            manager,
            manager_given: given.is_some(),
            dry_run,
        })
    }

    /// The store's record of a non-apply write in `scope`.
    pub fn write(&self, scope: managed::Scope) -> Write {
        Write {
            manager: Some(managed::Manager {
                name: self.manager.clone(),
                scope,
            }),
            dry_run: self.dry_run,
        }
    }
}

fn main_scope(rt: &ResourceType, status: bool) -> managed::Scope {
    if status {
        managed::Scope::Status
    } else {
        managed::Scope::Main {
            has_status: rt.has_status,
        }
    }
}

fn create(ctx: &Ctx, target: &Target, options: &WriteOptions, body: &[u8]) -> Result<Response, ApiError> {
    let rt = target.rt();
    if rt.namespaced && target.namespace.is_none() {
        return Err(ApiError::method_not_allowed(format!(
            "{} must be created in a namespace",
            rt.qualified()
        )));
    }
    let mut obj = parse_body(rt, body)?;
    place(target, &mut obj)?;
    if let Some(ns) = &target.namespace {
        namespace_accepts_writes(ctx, ns)?;
    }
    if let Some(admit) = rt.hooks.admit {
        admit(&ctx.store, &mut obj);
    }
    let write = options.write(main_scope(rt, false));
    let created = ctx.store.create_with(target.resource, obj, &write)?;
    tracing::debug!(resource = %rt.plural, name = meta::name(&created), "created");
    Ok((StatusCode::CREATED, Json(&*created)).into_response())
}

pub(super) fn namespace_accepts_writes(ctx: &Ctx, ns: &str) -> Result<(), ApiError> {
    let namespaces =
        resource::builtin_id("namespaces").ok_or_else(|| ApiError::internal("the resource table has no namespaces"))?;
    let rt = &resource::builtin()[namespaces];
    let key = ObjKey {
        namespace: String::new(),
        name: ns.to_string(),
    };
    match ctx.store.get(namespaces, &key) {
        None => Err(ApiError::not_found(rt, ns)),
        Some(n) if meta::is_deleting(&n) => Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!("unable to create new content in namespace {ns} because it is being terminated"),
            details: None,
        }),
        Some(_) => Ok(()),
    }
}

fn replace(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    status: bool,
    options: &WriteOptions,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rt = target.rt();
    let mut obj = parse_body(rt, body)?;
    place(target, &mut obj)?;
    if meta::name(&obj) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&obj)
        )));
    }
    let mode = if status { UpdateMode::Status } else { UpdateMode::Main };
    let write = options.write(main_scope(rt, status));
    let updated = ctx.store.update_with(target.resource, obj, mode, &write)?;
    Ok(Json(&*updated).into_response())
}

fn patch(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    status: bool,
    options: &WriteOptions,
    content_type: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let patch_type =
        PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    let mode = if status { UpdateMode::Status } else { UpdateMode::Main };
    let write = options.write(main_scope(target.rt(), status));
    let updated = ctx
        .store
        .mutate_with(target.resource, &key(target, name), mode, &write, |obj| {
            patch::apply(obj, patch_type, body).map_err(|e| {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                ApiError::bad_request(format!("{e}: {detail}"))
            })
        })?;
    Ok(Json(&*updated).into_response())
}

fn delete(
    ctx: &Ctx,
    target: &Target,
    name: &str,
    request: &WriteOptions,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rt = target.rt();
    let key = key(target, name);
    let options: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let grace: Option<i64> = match number(params, "gracePeriodSeconds")? {
        Some(g) => Some(g),
        None => options.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let current = ctx
        .store
        .get(target.resource, &key)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Some(uid) = options.pointer("/preconditions/uid").and_then(Value::as_str)
        && current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
    {
        return Err(ApiError::conflict(rt, name));
    }
    if let Some(rv) = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        && meta::resource_version(&current) != rv
    {
        return Err(ApiError::conflict(rt, name));
    }
    let dry_run = request.dry_run
        || options
            .pointer("/dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    if dry_run {
        // Validated (the object exists, the preconditions hold), not carried out.
        return Ok(Json(&*current).into_response());
    }
    let graceful = rt.hooks.deletion == Deletion::Graceful
        && grace
            .or_else(|| {
                current
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            > 0
        && !matches!(
            current.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
    let obj = if rt.hooks.deletion == Deletion::Namespace {
        let marked = ctx.store.mutate(target.resource, &key, UpdateMode::Raw, |ns| {
            if !meta::is_deleting(ns) {
                meta::metadata_mut(ns).insert("deletionTimestamp".into(), json!(meta::now_timestamp()));
            }
            ns["status"] = json!({ "phase": "Terminating" });
            Ok(())
        })?;
        spawn_namespace_cleanup(ctx, name.to_string());
        marked
    } else if graceful {
        let marked = ctx.store.mark_deleting(target.resource, &key, grace.or(Some(30)))?;
        spawn_pod_termination(ctx, target.resource, key);
        marked
    } else if meta::has_finalizers(&current) {
        ctx.store.mark_deleting(target.resource, &key, grace)?
    } else {
        ctx.store.remove(target.resource, &key)?
    };
    Ok(Json(&*obj).into_response())
}

/// Removes a terminating pod shortly after, as the kubelet does once its containers
/// have stopped (unless finalizers still hold it).
fn spawn_pod_termination(ctx: &Ctx, resource: ResourceId, key: ObjKey) {
    let store = ctx.store.clone();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(POD_TERMINATION) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Some(pod) = store.get(resource, &key)
            && meta::is_deleting(&pod)
            && !meta::has_finalizers(&pod)
        {
            // Already gone is fine: someone else finished the deletion.
            let _ = store.remove(resource, &key);
        }
    });
}

/// Deletes everything in a terminating namespace, then the namespace itself.
fn spawn_namespace_cleanup(ctx: &Ctx, namespace: String) {
    let store = ctx.store.clone();
    tokio::spawn(async move {
        let table = store.table();
        for (resource, rt) in table.iter().filter(|(_, r)| r.namespaced) {
            let page = store.list(resource, Some(&namespace), None, None, None);
            for obj in page.items {
                let _ = store.remove(resource, &ObjKey::of(&obj));
            }
            tracing::trace!(resource = %rt.plural, %namespace, "namespace content removed");
        }
        if let Some(namespaces) = resource::builtin_id("namespaces") {
            let _ = store.remove(
                namespaces,
                &ObjKey {
                    namespace: String::new(),
                    name: namespace,
                },
            );
        }
    });
}
