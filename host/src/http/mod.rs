//! The HTTP API: Periscope's routes (`spec/dtos.md`), health checks, and the JSON error
//! body every other failure gets.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/features` | build info and the enabled watch streams |
//! | `GET /api/clusters` | configured clusters |
//! | `GET /api/clusters/{cluster}/{kind}` | polling list (every registered kind) |
//! | `GET /api/clusters/{cluster}/{kind}/watch` | SSE stream (enabled kinds only) |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness |
//! | `GET /debug/streams` | active streams (admins: all; others: their own) |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET`, `POST /api/admin/revocations` | revoked subjects (admins) |
//! | `GET /`, `GET /assets/*` | the live page ([`crate::web`]) |

mod debug;
mod rest;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::auth::{Actor, AuthError, Authenticator};
use crate::hub::Hub;
use crate::kinds::Enabled;
use crate::limits::Streams;
use crate::metrics::Metrics;

pub use sse::encode as encode_sse;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The watch hub (and through it, clusters and kinds).
    pub hub: Arc<Hub>,
    /// Kinds with a watch route.
    pub enabled: Arc<Enabled>,
    /// Time between `: ping` comments on idle SSE streams.
    pub heartbeat: Duration,
    /// How long a polling request waits for a cold upstream's first list.
    pub list_timeout: Duration,
    /// Longest life of one stream; zero means no cap.
    pub max_stream_duration: Duration,
    /// Token verification and revocations.
    pub auth: Arc<Authenticator>,
    /// Per-actor caps and the active-stream registry.
    pub streams: Arc<Streams>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown: every stream sends `server_shutdown` and ends.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

/// The router, without a listener, so tests can serve it on port 0.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/features", get(rest::features))
        .route("/api/clusters", get(rest::clusters))
        .route("/api/clusters/{cluster}/{kind}", get(rest::list))
        .route("/api/clusters/{cluster}/{kind}/watch", get(sse::watch))
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/debug/streams", get(debug::streams))
        .route("/metrics", get(debug::metrics))
        .route("/api/admin/revocations", get(debug::revocations).post(debug::revoke))
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

/// `?namespace=` of watch and list requests; empty means all namespaces.
#[derive(Debug, Deserialize)]
struct NamespaceQuery {
    namespace: Option<String>,
}

impl NamespaceQuery {
    fn namespace(self) -> Option<String> {
        self.namespace.filter(|ns| !ns.is_empty())
    }
}

/// A JSON error: `{"error": "<stable code>", "message": "<short text>"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with its status, stable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The spec's plain-text errors (`cluster not found`, `operation failed`).
fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The actor of a request, or the 401 JSON error.
fn authenticate(state: &AppState, parts: &axum::http::request::Parts) -> Result<Actor, ApiError> {
    state
        .auth
        .authenticate(&parts.headers, parts.uri.query())
        .map_err(|error| {
            let message = error.to_string();
            if !matches!(error, AuthError::Missing { .. }) {
                tracing::info!(reason = %message, "request refused: authentication failed");
            }
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        })
}
