//! Polling lists, discovery and health.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, Authenticated, Scope, authorize, plain, subscribe_error};
use crate::auth::rbac::Access;
use crate::hub::{ListError, StreamKey, write_json_array};

/// `GET /api/features` (spec section 5).
pub(super) async fn features(State(state): State<AppState>) -> Json<serde_json::Value> {
    let version = option_env!("PERISCOPE_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"));
    let channel = if version == "dev" {
        "dev"
    } else if version.contains('-') {
        "prerelease"
    } else {
        "stable"
    };
    Json(serde_json::json!({
        "channel": channel,
        "commit": option_env!("PERISCOPE_COMMIT").unwrap_or("unknown"),
        "version": version,
        "watchStreams": state.enabled.tokens(),
    }))
}

/// Another method on `/api/clusters/{cluster}/{kind}`: 405 for a kind this host lists,
/// else 404 JSON, as for every route the SPA calls that this host does not serve
/// (`POST …/can-i`, spec/spa-shell.md).
pub(super) async fn other_method(
    State(state): State<AppState>,
    axum::extract::Path((_, kind)): axum::extract::Path<(String, String)>,
) -> Response {
    if state.hub.registry().get(&kind).is_some() {
        return super::method_not_allowed().into_response();
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

/// `GET /api/clusters/{cluster}/{kind}[?namespace=]`: `{"<listKey>":[…]}` and a
/// trailing newline, from the hub's store when the upstream is warm. The user must be
/// allowed to `list` the kind there; a cluster-wide poll by a user allowed only some
/// namespaces lists only those.
pub(super) async fn list(State(state): State<AppState>, Authenticated(actor): Authenticated, scope: Scope) -> Response {
    let Some(plugin) = state.hub.registry().get(&scope.kind).cloned() else {
        let kind = &scope.kind;
        let kind = crate::auth::truncate(kind, 100);
        return ApiError::new(StatusCode::NOT_FOUND, "unknown_kind", format!("unknown kind {kind:?}")).into_response();
    };
    let Some(cluster) = state.hub.clusters().get(&scope.cluster) else {
        return plain(StatusCode::NOT_FOUND, "cluster not found");
    };
    let info = plugin.info();
    let key = StreamKey {
        cluster: scope.cluster.clone(),
        kind: scope.kind.clone(),
        namespace: scope.namespace.clone(),
        selector: None,
    };
    // Before the access review: a cold poll costs the apiserver a review and a list.
    if !state.hub.polls_warm(&key)
        && let Err(wait) = state.cold_polls.take(&actor)
    {
        state.metrics.rate_limited("poll");
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "poll_rate",
            format!(
                "too many polls that need the cluster; retry in {wait}s (watch.cold_polls_per_user), or stream the kind"
            ),
        )
        .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return response;
    }
    let access = match authorize(&state, cluster, &actor, info, scope.namespace.as_deref(), &["list"]).await {
        Ok(access) => access,
        Err(error) => return error.into_response(),
    };
    let list_key = info.list_key.clone();
    let only = match &access {
        Access::Namespaces(set) => Some(set.as_ref()),
        Access::All | Access::Denied => None,
    };
    match state.hub.list(key, state.list_timeout, only, &actor.quota).await {
        Ok(items) => {
            let key = serde_json::to_string(&list_key).expect("strings serialize");
            let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + key.len() + 8);
            body.push(b'{');
            body.extend_from_slice(key.as_bytes());
            body.push(b':');
            write_json_array(&mut body, &items);
            body.extend_from_slice(b"}\n");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(ListError::Subscribe(error)) => subscribe_error(error),
        // An outage past watch.outage_grace: a JSON 503 that says so.
        Err(ListError::Upstream { message, status: 503 }) => {
            tracing::warn!(%message, "polling list failed: upstream unavailable");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable", message).into_response()
        }
        Err(ListError::Upstream { message, status }) => {
            tracing::warn!(%message, status, "polling list failed");
            plain(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "operation failed",
            )
        }
        // The cluster did not answer in time: an outage, as above.
        Err(ListError::Timeout) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            format!(
                "the cluster did not answer within {}s; retry shortly",
                state.list_timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

/// `GET /healthz`: the process serves requests.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: ready while the host can serve, which a broken plugin never
/// changes: one bad kind must not take every replica out of the Service. Quarantined
/// kinds and plugin files that failed to load are named in the body (`degraded`) and
/// in the `periscope_plugin_quarantined` and `periscope_plugin_load_failures` gauges.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let registry = state.hub.registry();
    let quarantined: Vec<&str> = registry
        .plugins()
        .iter()
        .filter(|p| p.health().quarantined)
        .map(|p| p.info().token.as_str())
        .collect();
    let failed: Vec<serde_json::Value> = state
        .hub
        .kinds()
        .problems()
        .into_iter()
        .map(|(source, error)| serde_json::json!({ "source": source, "error": error }))
        .collect();
    let status = if quarantined.is_empty() && failed.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    Json(serde_json::json!({
        "status": status,
        "quarantinedKinds": quarantined,
        "failedPlugins": failed,
    }))
    .into_response()
}
