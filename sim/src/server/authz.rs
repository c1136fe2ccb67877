//! Who a request acts as, RBAC enforcement, the `authorization.k8s.io/v1` access
//! reviews, and `authentication.k8s.io/v1` SelfSubjectReviews.
//!
//! The sim has no authentication: a request acts as the administrator
//! ([`UserInfo::admin`], in `system:masters`) and is not checked, unless it carries
//! `Impersonate-User` (and any number of `Impersonate-Group`), as `kubectl --as
//! alice --as-group devs` sends. Then it acts as that user and RBAC decides every
//! request, resource or not (discovery is allowed by the bootstrap `system:discovery`
//! binding), answering a refusal with the apiserver's 403 `Forbidden` Status. The
//! administrator may always impersonate, so that check is not made.
//!
//! | request | answers for |
//! |---|---|
//! | `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` | `spec.user` and `spec.groups`, as given |
//! | `POST /apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews` | the same, in `ns` |
//! | `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` | the requesting user (`kubectl auth can-i`) |
//! | `POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews` | the requesting user (`kubectl auth can-i --list`) |
//! | `POST /apis/authentication.k8s.io/v1/selfsubjectreviews` | who the requesting user is (`kubectl auth whoami`) |

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use crate::rbac::{self, Attributes, Decision, ResourceAttributes, UserInfo};
use crate::resource::{ResourceType, reviews};
use crate::status::ApiError;

/// The user a request acts as; every API request carries one.
#[derive(Debug, Clone)]
pub(super) struct Requester(pub UserInfo);

/// The impersonated user, `None` without impersonation headers, or the error the
/// apiserver gives for groups without a user.
fn impersonation(headers: &HeaderMap) -> Result<Option<UserInfo>, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let users = values("impersonate-user");
    let groups = values("impersonate-group");
    let others = headers.keys().any(|k| {
        let k = k.as_str();
        k == "impersonate-uid" || k.starts_with("impersonate-extra-")
    });
    match users.first() {
        Some(user) => Ok(Some(UserInfo::impersonated(user, groups))),
        None if !groups.is_empty() || others => Err(ApiError::internal(format!(
            "Internal error occurred: requested impersonation of groups {groups:?} without impersonating a user"
        ))),
        None => Ok(None),
    }
}

/// Middleware: works out who the request acts as and, for an impersonated user,
/// refuses what RBAC does not allow.
pub(super) async fn authorize(State(ctx): State<Ctx>, mut request: Request, next: Next) -> Response {
    let user = match impersonation(request.headers()) {
        Ok(Some(user)) => user,
        Ok(None) => {
            request.extensions_mut().insert(Requester(UserInfo::admin()));
            return next.run(request).await;
        }
        Err(error) => return error.into_response(),
    };
    let query: HashMap<String, String> = Query::try_from_uri(request.uri()).map(|Query(q)| q).unwrap_or_default();
    let attrs = Attributes::from_request(request.method().as_str(), request.uri().path(), &query);
    let decision = rbac::authorize(&*ctx.store, &user, &attrs);
    if !decision.allowed {
        tracing::debug!(user = %user.name, ?attrs, "forbidden");
        return rbac::forbidden(&user, &attrs, &decision.reason).into_response();
    }
    request.extensions_mut().insert(Requester(user));
    next.run(request).await
}

fn review_type(kind: &str) -> &'static ResourceType {
    let reviews = reviews();
    reviews.iter().find(|r| r.kind == kind).unwrap_or(&reviews[0])
}

fn parse_review(kind: &str, method: &Method, body: &[u8]) -> Result<Value, ApiError> {
    let rt = review_type(kind);
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            rt.plural
        )));
    }
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request is not a valid JSON {kind}: {e}")))?;
    if !review.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    if let Some(given) = review.get("kind").and_then(Value::as_str)
        && given != kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({given}) does not match the resource ({})",
            rt.qualified()
        )));
    }
    Ok(review)
}

/// The attributes a review's `spec` asks about: exactly one of `resourceAttributes`
/// and `nonResourceAttributes`.
fn spec_attributes(rt: &ResourceType, spec: &Value) -> Result<Attributes, ApiError> {
    let present = |key| spec.get(key).filter(|v| !v.is_null());
    let s = |obj: &Value, key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    match (present("resourceAttributes"), present("nonResourceAttributes")) {
        (Some(r), None) => Ok(Attributes::Resource(ResourceAttributes {
            verb: s(r, "verb"),
            group: s(r, "group"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
        })),
        (None, Some(n)) => Ok(Attributes::NonResource {
            verb: s(n, "verb"),
            path: s(n, "path"),
        }),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            rt,
            "",
            "spec.nonResourceAttributes: Invalid value: \"\": cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(ApiError::invalid(
            rt,
            "",
            "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

/// The review echoed back with its `status`, as the apiserver answers a create.
fn answer(mut review: Value, kind: &str, status: Value) -> Response {
    review["kind"] = json!(kind);
    review["apiVersion"] = json!(review_type(kind).api_version());
    if !review.get("metadata").is_some_and(Value::is_object) {
        review["metadata"] = json!({});
    }
    if let Some(m) = review["metadata"].as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    review["status"] = status;
    (StatusCode::CREATED, Json(review)).into_response()
}

fn decision_status(decision: Decision) -> Value {
    let mut status = json!({ "allowed": decision.allowed });
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The user a SubjectAccessReview's spec names.
fn spec_user(rt: &ResourceType, spec: &Value) -> Result<UserInfo, ApiError> {
    let user = spec.get("user").and_then(Value::as_str).unwrap_or_default();
    let groups: Vec<&str> = spec
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if user.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid(
            rt,
            "",
            "spec.user: Invalid value: \"\": at least one of user or group must be specified",
        ));
    }
    Ok(UserInfo::new(user, groups))
}

/// `POST …/subjectaccessreviews`: may `spec.user` (in `spec.groups`) do this?
pub(super) async fn subject_access_review(State(ctx): State<Ctx>, method: Method, body: Bytes) -> Response {
    const KIND: &str = "SubjectAccessReview";
    respond((|| {
        let review = parse_review(KIND, &method, &body)?;
        let rt = review_type(KIND);
        let spec = review.get("spec").cloned().unwrap_or(Value::Null);
        let attrs = spec_attributes(rt, &spec)?;
        let user = spec_user(rt, &spec)?;
        let decision = rbac::authorize(&*ctx.store, &user, &attrs);
        Ok(answer(review, KIND, decision_status(decision)))
    })())
}

/// `POST …/namespaces/{ns}/localsubjectaccessreviews`: a SubjectAccessReview about
/// one namespace.
pub(super) async fn local_subject_access_review(
    State(ctx): State<Ctx>,
    Path(namespace): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    const KIND: &str = "LocalSubjectAccessReview";
    respond((|| {
        let mut review = parse_review(KIND, &method, &body)?;
        let rt = review_type(KIND);
        match review.pointer("/metadata/namespace").and_then(Value::as_str) {
            None | Some("") => {
                crate::meta::metadata_mut(&mut review).insert("namespace".into(), json!(namespace));
            }
            Some(given) if given != namespace => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object does not match the namespace sent on the request ({given} != {namespace})"
                )));
            }
            Some(_) => {}
        }
        let spec = review.get("spec").cloned().unwrap_or(Value::Null);
        let attrs = spec_attributes(rt, &spec)?;
        match &attrs {
            Attributes::NonResource { .. } => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "spec.nonResourceAttributes: Invalid value: \"\": disallowed on this kind of request",
                ));
            }
            Attributes::Resource(r) if r.namespace != namespace => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    format!(
                        "spec.resourceAttributes.namespace: Invalid value: {:?}: must match metadata.namespace",
                        r.namespace
                    ),
                ));
            }
            Attributes::Resource(_) => {}
        }
        let user = spec_user(rt, &spec)?;
        let decision = rbac::authorize(&*ctx.store, &user, &attrs);
        Ok(answer(review, KIND, decision_status(decision)))
    })())
}

/// `POST …/selfsubjectaccessreviews`: may the requesting user do this?
pub(super) async fn self_subject_access_review(
    State(ctx): State<Ctx>,
    Extension(Requester(user)): Extension<Requester>,
    method: Method,
    body: Bytes,
) -> Response {
    const KIND: &str = "SelfSubjectAccessReview";
    respond((|| {
        let review = parse_review(KIND, &method, &body)?;
        let spec = review.get("spec").cloned().unwrap_or(Value::Null);
        let attrs = spec_attributes(review_type(KIND), &spec)?;
        let decision = rbac::authorize(&*ctx.store, &user, &attrs);
        Ok(answer(review, KIND, decision_status(decision)))
    })())
}

/// `POST …/selfsubjectrulesreviews`: what may the requesting user do in
/// `spec.namespace`?
pub(super) async fn self_subject_rules_review(
    State(ctx): State<Ctx>,
    Extension(Requester(user)): Extension<Requester>,
    method: Method,
    body: Bytes,
) -> Response {
    const KIND: &str = "SelfSubjectRulesReview";
    respond((|| {
        let review = parse_review(KIND, &method, &body)?;
        let namespace = review
            .pointer("/spec/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let status = rbac::rules_review(&*ctx.store, &user, namespace);
        Ok(answer(review, KIND, status))
    })())
}

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`: who am I?
pub(super) async fn self_subject_review(
    Extension(Requester(user)): Extension<Requester>,
    method: Method,
    body: Bytes,
) -> Response {
    const KIND: &str = "SelfSubjectReview";
    respond((|| {
        let review = parse_review(KIND, &method, &body)?;
        let status = json!({ "userInfo": { "username": user.name, "groups": user.groups } });
        Ok(answer(review, KIND, status))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_headers_name_the_user_and_groups() {
        let mut headers = HeaderMap::new();
        assert_eq!(impersonation(&headers), Ok(None));
        headers.append("Impersonate-Group", "devs".parse().unwrap());
        assert_eq!(impersonation(&headers).unwrap_err().code, 500);
        headers.append("Impersonate-Group", "ops".parse().unwrap());
        headers.append("Impersonate-User", "alice".parse().unwrap());
        let user = impersonation(&headers).unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["devs", "ops", rbac::AUTHENTICATED]);
    }

    #[test]
    fn a_review_needs_exactly_one_kind_of_attributes() {
        let rt = review_type("SubjectAccessReview");
        assert_eq!(spec_attributes(rt, &json!({})).unwrap_err().code, 422);
        let both = json!({ "resourceAttributes": {}, "nonResourceAttributes": {} });
        assert_eq!(spec_attributes(rt, &both).unwrap_err().code, 422);
        let path = json!({ "nonResourceAttributes": { "verb": "get", "path": "/healthz" } });
        assert_eq!(
            spec_attributes(rt, &path).unwrap(),
            Attributes::NonResource {
                verb: "get".into(),
                path: "/healthz".into()
            }
        );
        assert_eq!(spec_user(rt, &json!({})).unwrap_err().code, 422);
    }
}
