//! The HTTP API: Periscope's routes (`spec/dtos.md`), health checks, and the JSON error
//! body every other failure gets.
//!
//! Every route that returns cluster data or identity sits behind one authentication
//! layer applied by the router ([`require_actor`]), so a new route cannot forget it; only
//! health checks, `/api/auth/config` (the SPA reads it on its sign-in screen) and
//! `/metrics` unless `auth.protect_metrics` are public. Path and
//! query parameters are validated before anything reaches a hub or an apiserver
//! ([`Scope`]), and every refusal is a JSON body with a stable code.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/features` | build info and the enabled watch streams |
//! | `GET /api/auth/whoami` | the caller's identity (the SPA shell, `spec/spa-shell.md`) |
//! | `GET /api/auth/config` | public: the auth mode the SPA's sign-in screen uses |
//! | `GET /api/clusters` | configured clusters, their backend, `execEnabled: false` |
//! | `GET /api/fleet` | every cluster's health (the SPA's home page) |
//! | `GET /api/clusters/{cluster}/dashboard` | one cluster's overview |
//! | `GET /api/clusters/{cluster}/{kind}` | polling list (every registered kind) |
//! | `GET /api/clusters/{cluster}/{kind}/watch` | SSE stream (enabled kinds only) |
//! | `GET /graphqlws` | GraphQL over WebSocket (graphql-transport-ws, [`crate::transport::graphql`]) |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness |
//! | `GET /debug/streams` | active streams (admins: all; others: their own) |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET`, `POST /api/admin/revocations` | revoked subjects (admins) |
//! | `GET /`, `GET /assets/*` | the live page ([`crate::web`]) |

mod debug;
pub mod direct;
pub mod listen;
mod rest;
mod shell;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::auth::rbac::{Access, Authorizer, Resource, ReviewError};
use crate::auth::{Actor, AuthError, Authenticator};
use crate::cluster::Cluster;
use crate::hub::Hub;
use crate::hub::SubscribeError;
use crate::kinds::LiveKinds;
use crate::limits::Streams;
use crate::metrics::Metrics;
use crate::plugin::KindInfo;

pub use sse::encode as encode_sse;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The watch hub (and through it, clusters and kinds).
    pub hub: Arc<Hub>,
    /// Kinds with a watch route; follows plugin reloads (the hub's [`LiveKinds`]).
    pub enabled: Arc<LiveKinds>,
    /// Time between `: ping` comments on idle SSE streams.
    pub heartbeat: Duration,
    /// How long a polling request waits for a cold upstream's first list.
    pub list_timeout: Duration,
    /// Longest life of one stream; zero means no cap.
    pub max_stream_duration: Duration,
    /// Token verification and revocations.
    pub auth: Arc<Authenticator>,
    /// Each user's Kubernetes RBAC on what the shared watches hold.
    pub authorizer: Arc<Authorizer>,
    /// Whether `/metrics` needs a token (in `jwt` mode).
    pub protect_metrics: bool,
    /// Proxies whose `X-Forwarded-For` names the client (caps per client with auth off).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Per-actor caps and the active-stream registry.
    pub streams: Arc<Streams>,
    /// Per-actor rate of polls that need the apiserver.
    pub cold_polls: Arc<crate::limits::ColdPolls>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown: every stream sends `server_shutdown` and ends.
    pub shutdown: CancellationToken,
    /// `/graphqlws`: the schema and its timings.
    pub graphql: crate::transport::graphql::GraphqlOptions,
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
    let mut protected = Router::new()
        .route("/api/features", get(rest::features))
        .route("/api/auth/whoami", get(shell::whoami))
        .route("/api/clusters", get(shell::clusters))
        .route("/api/fleet", get(shell::fleet))
        .route("/api/clusters/{cluster}/dashboard", get(shell::dashboard))
        .route(
            "/api/clusters/{cluster}/{kind}",
            get(rest::list).fallback(rest::other_method),
        )
        .route("/api/clusters/{cluster}/{kind}/watch", get(sse::watch))
        .route("/debug/streams", get(debug::streams))
        .route("/api/admin/revocations", get(debug::revocations).post(debug::revoke));
    let mut public = Router::new()
        .route("/api/auth/config", get(shell::auth_config))
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        // Public: the token travels in `connection_init`, refused with close code 4403.
        .route("/graphqlws", get(crate::transport::graphql::upgrade));
    if state.protect_metrics {
        protected = protected.route("/metrics", get(debug::metrics));
    } else {
        public = public.route("/metrics", get(debug::metrics));
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), require_actor));
    public
        .merge(crate::web::routes())
        .merge(protected)
        .method_not_allowed_fallback(|| async { method_not_allowed() })
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

/// 405 JSON: a route this host serves, with another method.
fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The authentication layer of every protected route: the request's [`Actor`] goes
/// into its extensions, or the request ends with 401 JSON.
async fn require_actor(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match authenticate(&state, &parts) {
        Ok(mut actor) => {
            if state.auth.is_disabled()
                && let Some(client) = client_address(&parts, &state.trusted_proxies)
            {
                actor = Actor::anonymous_from(client);
            }
            parts.extensions.insert(actor);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    }
}

/// The client's address: the first `X-Forwarded-For` hop when the peer is a trusted
/// proxy, else the peer (absent when the router is served without connect info).
pub(crate) fn client_address(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?
        .0
        .ip();
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|hop| hop.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// The actor [`require_actor`] put in the request.
#[derive(Debug, Clone)]
struct Authenticated(Actor);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "no actor for this route"))
    }
}

/// The scope of a list or watch request: `{cluster}/{kind}` and a validated
/// `?namespace=` (empty means all namespaces). Malformed input is 400 JSON naming the
/// parameter; nothing reaches an apiserver URL unchecked (cluster and kind are looked
/// up, a namespace must be a DNS-1123 label).
#[derive(Debug)]
struct Scope {
    cluster: String,
    kind: String,
    namespace: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((cluster, kind)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text()))?;
        Ok(Scope {
            cluster,
            kind,
            namespace: namespace_param(parts.uri.query())?,
        })
    }
}

/// Longest `Last-Event-ID` accepted; ids are resourceVersions, far shorter.
const MAX_LAST_EVENT_ID: usize = 256;

/// The `Last-Event-ID` header of a resuming stream: visible ASCII of at most 256 bytes,
/// else 400 JSON.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("last-event-id").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(id)) if id.len() <= MAX_LAST_EVENT_ID => Ok(Some(id.to_string())),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Last-Event-ID: must be visible ASCII of at most {MAX_LAST_EVENT_ID} bytes"),
        )),
    }
}

/// The `namespace` query parameter, validated; other parameters are ignored.
pub fn namespace_param(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| bad("the query string is not valid form encoding".to_string()))?;
    let mut namespaces = pairs.into_iter().filter(|(key, _)| key == "namespace").map(|(_, v)| v);
    let namespace = namespaces.next();
    if namespaces.next().is_some() {
        return Err(bad("namespace: give it at most once".to_string()));
    }
    match namespace.filter(|ns| !ns.is_empty()) {
        None => Ok(None),
        Some(ns) => dns_label(&ns)
            .map(|()| Some(ns))
            .map_err(|why| bad(format!("namespace: {why}"))),
    }
}

/// Checks a Kubernetes namespace or name segment: a DNS-1123 label (lowercase
/// letters, digits and `-`, starting and ending with a letter or digit, at most 63).
pub fn dns_label(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!("must be at most 63 characters, not {}", value.len()));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let edges_ok =
        value.starts_with(|c: char| c.is_ascii_alphanumeric()) && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if value.chars().all(allowed) && edges_ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
            value.chars().take(80).collect::<String>()
        ))
    }
}

/// Checks a DNS-1123 subdomain, the rule Kubernetes applies to the names of most
/// objects (pods, deployments, jobs…): at most `max` characters (253 for objects,
/// fewer where a kind derives names from it), dot-separated DNS-1123 labels.
pub fn dns_subdomain(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("must be at most {max} characters, not {}", value.len()));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && label.starts_with(|c: char| c.is_ascii_alphanumeric())
            && label.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if value.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit)",
            value.chars().take(80).collect::<String>()
        ))
    }
}

/// What `actor` may see of `info`'s kind in `namespace`, needing every one of `verbs`;
/// a refusal is 403 JSON, a review the cluster cannot answer 503 JSON.
async fn authorize(
    state: &AppState,
    cluster: &Cluster,
    actor: &Actor,
    info: &KindInfo,
    namespace: Option<&str>,
    verbs: &[&'static str],
) -> Result<Access, ApiError> {
    match review(state, cluster, actor, info, namespace, verbs).await {
        Ok(Access::Denied) => {
            let place = match namespace.filter(|_| info.namespaced) {
                Some(ns) => format!("in namespace {ns:?}"),
                None if info.namespaced => "in any namespace".to_string(),
                None => "(cluster-scoped)".to_string(),
            };
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "user {:?} may not {} {} {place} on cluster {:?}",
                    actor.username,
                    verbs.join(" and "),
                    info.plural,
                    cluster.name
                ),
            ))
        }
        Ok(access) => Ok(access),
        Err(error) => Err(review_failed(&error)),
    }
}

/// Like [`authorize`], but a refusal is [`Access::Denied`] rather than an error, for
/// routes that report it as data (the SPA shell's `accessibility`). A refusal is
/// counted and logged here, whichever way the route reports it.
async fn review(
    state: &AppState,
    cluster: &Cluster,
    actor: &Actor,
    info: &KindInfo,
    namespace: Option<&str>,
    verbs: &[&'static str],
) -> Result<Access, ReviewError> {
    let resource = Resource {
        group: &info.api_group,
        plural: &info.plural,
        namespaced: info.namespaced,
    };
    let access = state
        .authorizer
        .access(cluster, actor, resource, namespace, verbs)
        .await?;
    if access == Access::Denied {
        state.metrics.rbac_denied(&cluster.name, &info.token);
        tracing::info!(actor = %actor.subject, user = %actor.username, cluster = %cluster.name, kind = %info.token, namespace = namespace.unwrap_or("*"), "request refused by RBAC");
    }
    Ok(access)
}

/// The 503 JSON of an access review the cluster could not answer.
fn review_failed(error: &ReviewError) -> ApiError {
    tracing::warn!(%error, "access review failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "access_review_failed",
        error.to_string(),
    )
}

/// A JSON error: `{"error": "<stable code>", "message": "<short text>"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The longest message an error body carries: messages may quote the request (an
/// unknown kind, a parameter), and a 10 KB path must not come back whole.
const MAX_MESSAGE: usize = 300;

impl ApiError {
    /// An error with its status, stable code and message (cut at [`MAX_MESSAGE`]
    /// characters).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let message = if message.len() > MAX_MESSAGE {
            crate::auth::truncate(&message, MAX_MESSAGE)
        } else {
            message
        };
        ApiError { status, code, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The response to a refused subscription: the spec's plain `cluster not found`, or
/// JSON (429 with `Retry-After` at the per-user upstream cap, 503 at the cluster's).
fn subscribe_error(error: SubscribeError) -> Response {
    match error {
        SubscribeError::UnknownCluster => plain(StatusCode::NOT_FOUND, "cluster not found"),
        SubscribeError::UnknownKind(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_kind", error.to_string()).into_response()
        }
        SubscribeError::UpstreamLimit { scope, .. } => {
            let status = if scope == "user" {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut response = ApiError::new(status, "upstream_limit", error.to_string()).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            response
        }
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
