//! Operator endpoints: `/debug/streams`, `/metrics` and the revocation list.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState, Authenticated};
use crate::auth::Actor;

/// `GET /debug/streams`: a JSON array of active streams. Admins see every stream,
/// other users only their own; unauthenticated requests get 401.
pub(super) async fn streams(State(state): State<AppState>, Authenticated(actor): Authenticated) -> Response {
    let streams = state.streams.visible_to(&actor);
    Json(
        streams
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&crate::limits::StreamInfo>>(),
    )
    .into_response()
}

/// `GET /metrics`: OpenMetrics text.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let registry = state.hub.registry();
    state.metrics.plugin_states(
        registry
            .plugins()
            .iter()
            .map(|p| (p.info().token.as_str(), p.health().quarantined)),
        state.hub.kinds().problems().len(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /api/admin/revocations`: revoked subjects (admins only).
pub(super) async fn revocations(State(state): State<AppState>, Authenticated(actor): Authenticated) -> Response {
    match admin(&actor) {
        Ok(()) => Json(serde_json::json!({ "revoked": state.auth.revoked() })).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The body of `POST /api/admin/revocations`.
#[derive(Debug, Deserialize)]
pub(super) struct Revoke {
    subject: String,
}

/// `POST /api/admin/revocations` `{"subject": "…"}`: revokes a subject until restart;
/// its open streams end with `auth_expired` at their next frame or heartbeat.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    body: axum::body::Bytes,
) -> Response {
    if let Err(error) = admin(&actor) {
        return error.into_response();
    }
    let Ok(Revoke { subject }) = serde_json::from_slice::<Revoke>(&body) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"subject\": \"<sub claim>\"}",
        )
        .into_response();
    };
    if subject.is_empty() {
        return ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "subject is empty").into_response();
    }
    state.auth.revoke(&subject);
    (StatusCode::OK, Json(serde_json::json!({ "revoked": subject }))).into_response()
}

fn admin(actor: &Actor) -> Result<(), ApiError> {
    if actor.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admins only (auth.admin_group)",
        ))
    }
}
