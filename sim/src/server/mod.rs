//! The HTTP side: routing, discovery and the fault middleware.
//!
//! Kubernetes paths (`/api/v1/namespaces/{ns}/pods/{name}/log`,
//! `/apis/apps/v1/deployments`) are parsed by hand in one fallback handler
//! ([`rest::handle`]) rather than spelled out as dozens of routes, because the shape of
//! a path depends on the resource table (is `namespaces/x/status` the status of a
//! namespace or a list of a resource called `status`?). Fixed paths (discovery,
//! health, admin, access reviews) are ordinary routes. Every API request first goes
//! through [`authz::authorize`], which decides who it acts as and enforces RBAC on
//! impersonated users; `/sim/admin` is outside the API and never checked.

mod admin;
mod apply;
mod authz;
mod discovery;
mod logs;
mod openapi;
mod request;
mod rest;
mod scale;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio_util::sync::CancellationToken;

use crate::fault::Faults;
use crate::protobuf;
use crate::status::ApiError;
use crate::store::Store;

/// Everything a handler needs; cloned per request.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub shutdown: CancellationToken,
    pub bookmark_interval: Duration,
    pub seed: u64,
    pub server_address: String,
}

/// Builds the router for one sim.
pub(crate) fn router(ctx: Ctx) -> Router {
    let api = Router::new()
        .route("/version", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/apis", get(discovery::groups))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_resources))
        .route("/openapi/v3", get(openapi::index))
        .route("/openapi/v3/api/{version}", get(openapi::core))
        .route("/openapi/v3/apis/{group}/{version}", get(openapi::group))
        .route("/healthz", get(discovery::ok))
        .route("/livez", get(discovery::ok))
        .route("/readyz", get(discovery::ok))
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            any(authz::subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews",
            any(authz::local_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            any(authz::self_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            any(authz::self_subject_rules_review),
        )
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            any(authz::self_subject_review),
        )
        .fallback(rest::handle)
        .layer(middleware::from_fn_with_state(ctx.clone(), authz::authorize))
        .layer(middleware::from_fn(protobuf_bodies))
        .layer(middleware::from_fn_with_state(ctx.clone(), faulty));
    Router::new()
        .nest("/sim/admin", admin::router())
        .merge(api)
        .with_state(ctx)
}

/// Rewrites protobuf request bodies (from client-go's typed clients: helm, kubectl's
/// typed commands) as JSON, which is all the handlers read; kinds the sim has no schema
/// for get `415`.
async fn protobuf_bodies(request: Request, next: Next) -> Response {
    let is_protobuf = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(protobuf::is_protobuf);
    if !is_protobuf {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => return ApiError::bad_request(format!("cannot read the request body: {error}")).into_response(),
    };
    let json = match protobuf::to_json(&bytes) {
        Ok(object) => object.to_string(),
        Err(error @ protobuf::Error::UnsupportedKind { .. }) => {
            let error = ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: error.to_string(),
                details: None,
            };
            return error.into_response();
        }
        Err(error) => return ApiError::bad_request(error.to_string()).into_response(),
    };
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, Body::from(json))).await
}

/// Applies the pause and latency faults to every Kubernetes API request.
async fn faulty(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    if ctx.faults.is_paused() {
        tracing::debug!(path = %request.uri().path(), "request held while paused");
        tokio::select! {
            _ = ctx.faults.wait_unpaused() => {}
            _ = ctx.shutdown.cancelled() => {}
        }
    }
    let latency = ctx.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(request).await
}
