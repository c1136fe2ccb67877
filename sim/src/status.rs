//! Kubernetes `Status` failures: the error every API handler returns.
//!
//! A real apiserver answers every failure with a `Status` object (`kind: Status`,
//! `status: Failure`, `reason`, `code`, `details`); clients such as kubectl and kube-rs
//! read `reason` and `code` to decide what to do (retry, relist, report). [`ApiError`]
//! carries exactly that and renders itself as such a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resource::ResourceType;

/// A failed API request, rendered as a Kubernetes `Status` body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, repeated in the body's `code`.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`…).
    pub reason: &'static str,
    /// Human-readable message, worded like the real apiserver's.
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` when the failure is about an object.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_object(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = Some(json!({ "name": name, "group": rt.group, "kind": rt.plural }));
        self
    }

    /// 404: the named object does not exist.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", rt.qualified())).with_object(rt, name)
    }

    /// 404 for a path that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 404 for a resource that stopped being served while the request ran (its
    /// CustomResourceDefinition was deleted).
    pub fn not_served() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 409: creating an object whose name is taken.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .with_object(rt, name)
    }

    /// 409: an update carried a resourceVersion that is no longer current.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .with_object(rt, name)
    }

    /// 422: the object is invalid (missing name, mismatched namespace…).
    ///
    /// A `message` of the apiserver's form `field: problem` (`metadata.name: Required
    /// value`) also becomes the one entry of `details.causes`, which is what kubectl
    /// prints.
    pub fn invalid(rt: &ResourceType, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut error =
            Self::new(422, "Invalid", format!("{} \"{name}\" is invalid: {message}", rt.kind)).with_object(rt, name);
        if let Some((field, problem)) = message.split_once(": ")
            && !field.contains(char::is_whitespace)
            && let Some(details) = error.details.as_mut()
        {
            let reason = if problem.starts_with("Required value") {
                "FieldValueRequired"
            } else if problem.starts_with("Unsupported value") {
                "FieldValueNotSupported"
            } else {
                "FieldValueInvalid"
            };
            details["causes"] = json!([{ "reason": reason, "message": problem, "field": field }]);
        }
        error
    }

    /// 422: query options kube-apiserver's `ValidateListOptions` forbids.
    pub fn forbidden_list_option(field: &str, message: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {message}"),
        )
    }

    /// 400: a malformed request (bad body, selector, continue token…).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405: the verb is not supported on this path.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415: a patch type the sim does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }

    /// 410: a requested resourceVersion is older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 injected by a fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 429 injected by a fault.
    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
    }

    /// 503: the server is shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object for this failure.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.to_status())).into_response();
        if self.code == 429 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{builtin, builtin_id};

    #[test]
    fn not_found_status_names_the_object() {
        let rt = &builtin()[builtin_id("deployments").expect("deployments is served")];
        let status = ApiError::not_found(rt, "web").to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["name"], "web");
        assert_eq!(status["details"]["group"], "apps");
    }
}
