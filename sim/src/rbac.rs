//! Kubernetes RBAC: deciding whether a user may make a request, from the stored Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings, the way the apiserver's RBAC
//! authorizer (`plugin/pkg/auth/authorizer/rbac`) decides.
//!
//! - A rule allows a resource request when its `verbs`, `apiGroups`, `resources` and
//!   `resourceNames` all match. `*` matches anything, `*/log` matches the `log`
//!   subresource of every resource, and empty `resourceNames` match every name (a list,
//!   which has no name, matches only rules without `resourceNames`). A non-resource
//!   request (`/healthz`) matches `nonResourceURLs`, where a trailing `*` is a prefix.
//! - ClusterRoleBindings grant everywhere and are read first, in name order; then the
//!   RoleBindings of the request's namespace, which grant only there. A request without
//!   a namespace (a cluster-wide list, a cluster-scoped object) is decided by
//!   ClusterRoleBindings alone. A RoleBinding may reference a ClusterRole.
//! - Subjects are a `User`, a `Group`, or a `ServiceAccount`, which is the user
//!   `system:serviceaccount:<namespace>:<name>` (the binding's namespace when the subject
//!   names none).
//! - Members of `system:masters` may do anything before RBAC is asked, like the
//!   apiserver's privileged-group authorizer, so deleting the `cluster-admin` binding
//!   does not lock the administrator out.
//!
//! ClusterRole aggregation is not run: an `aggregationRule` is kept but does not
//! change `rules`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::resource;
use crate::status::ApiError;
use crate::store::{ObjKey, Store};

/// The group whose members may do anything.
pub const MASTERS: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of unauthenticated requests on a real apiserver.
pub const ANONYMOUS: &str = "system:anonymous";
/// The user requests without impersonation act as.
pub const ADMIN: &str = "kubernetes-admin";

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// A user as authorization sees it: a name and groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// User name (`alice`, `system:serviceaccount:shop:deployer`).
    pub name: String,
    /// Groups, used as given.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user with exactly these groups (what a SubjectAccessReview spec names).
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }

    /// The sim's administrator, which requests without impersonation headers act as:
    /// the sim has no authentication, and every caller is trusted as cluster admin.
    pub fn admin() -> Self {
        Self::new(ADMIN, [MASTERS, AUTHENTICATED])
    }

    /// The user a request with `Impersonate-User`/`Impersonate-Group` acts as, with the
    /// groups the apiserver's impersonation filter adds: a service account's groups
    /// when none are given, and `system:authenticated` (or `system:unauthenticated`
    /// for `system:anonymous`).
    pub fn impersonated(name: &str, mut groups: Vec<String>) -> Self {
        if groups.is_empty()
            && let Some((namespace, _)) = service_account(name)
        {
            groups = vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
            ];
        }
        let has = |groups: &[String], g: &str| groups.iter().any(|x| x == g);
        if name == ANONYMOUS {
            if !has(&groups, UNAUTHENTICATED) {
                groups.push(UNAUTHENTICATED.to_string());
            }
        } else if !has(&groups, AUTHENTICATED) && !has(&groups, UNAUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        Self {
            name: name.to_string(),
            groups,
        }
    }

    fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The namespace and name of a service account user name.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// What a resource request asks to do; `""` for what it does not name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAttributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`…
    pub verb: String,
    /// API group; `""` for core.
    pub group: String,
    /// Plural resource (`pods`).
    pub resource: String,
    /// Subresource (`log`, `status`).
    pub subresource: String,
    /// Namespace; `""` for cluster scope or every namespace.
    pub namespace: String,
    /// Object name; `""` for collections.
    pub name: String,
}

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request on an API resource.
    Resource(ResourceAttributes),
    /// A request on another path (`/healthz`, `/apis`), with the lower-case HTTP
    /// method as verb.
    NonResource {
        /// `get`, `post`, …
        verb: String,
        /// The URL path.
        path: String,
    },
}

impl Attributes {
    /// The attributes of an HTTP request, derived like the apiserver's
    /// `RequestInfoFactory`: `/api/v1/…` and `/apis/<group>/<version>/…` are resource
    /// requests; GET without a name is `list` (`watch` with `watch=true`); DELETE
    /// without a name is `deletecollection`; a list or watch whose field selector
    /// requires `metadata.name=x` is about the object `x`; a namespace's own path
    /// (`/api/v1/namespaces/shop`) is in that namespace.
    pub fn from_request(method: &str, path: &str, query: &HashMap<String, String>) -> Self {
        let non_resource = || Self::NonResource {
            verb: method.to_ascii_lowercase(),
            path: path.to_string(),
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
        let (group, rest) = match parts.as_slice() {
            ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
            ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
            _ => return non_resource(),
        };
        let mut rest = rest;
        let mut verb = match rest {
            [special @ ("watch" | "proxy"), tail @ ..] if !tail.is_empty() => {
                rest = tail;
                special.to_string()
            }
            _ => match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string(),
        };
        let mut namespace = "";
        if let ["namespaces", ns, tail @ ..] = rest {
            namespace = ns;
            if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
                rest = tail;
            }
        }
        let at = |i: usize| rest.get(i).copied().unwrap_or_default().to_string();
        let mut attrs = ResourceAttributes {
            group: group.to_string(),
            resource: at(0),
            name: at(1),
            subresource: if verb == "proxy" { String::new() } else { at(2) },
            namespace: namespace.to_string(),
            verb: String::new(),
        };
        if attrs.name.is_empty() && verb == "get" {
            let watch = query
                .get("watch")
                .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "True" | "TRUE"));
            verb = if watch { "watch" } else { "list" }.to_string();
            if let Some(name) = query.get("fieldSelector").and_then(|s| selected_name(s)) {
                attrs.name = name.to_string();
            }
        }
        if attrs.name.is_empty() && verb == "delete" {
            verb = "deletecollection".to_string();
        }
        attrs.verb = verb;
        Self::Resource(attrs)
    }

    /// The verb asked for.
    pub fn verb(&self) -> &str {
        match self {
            Self::Resource(r) => &r.verb,
            Self::NonResource { verb, .. } => verb,
        }
    }

    /// The namespace RoleBindings are read from; `""` when only ClusterRoleBindings
    /// apply.
    fn namespace(&self) -> &str {
        match self {
            Self::Resource(r) => &r.namespace,
            Self::NonResource { .. } => "",
        }
    }
}

/// The name a field selector requires with `metadata.name=x` (or `==`), if any.
fn selected_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let value = term.trim().strip_prefix("metadata.name")?;
        let value = value.strip_prefix("==").or_else(|| value.strip_prefix('='))?;
        (!value.is_empty() && value != "." && value != ".." && !value.contains(['/', '%'])).then_some(value)
    })
}

/// The outcome of authorizing one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Why, worded like the apiserver (`RBAC: allowed by RoleBinding "x/shop" of
    /// ClusterRole "view" to User "alice"`); empty when there is nothing to say.
    pub reason: String,
}

/// Where the authorizer reads policy from: the store, or a fixed set in unit tests.
pub(crate) trait Policy {
    /// Every ClusterRoleBinding, in name order.
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>>;
    /// The RoleBindings of one namespace, in name order.
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>>;
    /// A ClusterRole by name.
    fn cluster_role(&self, name: &str) -> Option<Arc<Value>>;
    /// A Role by namespace and name.
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>>;
}

impl Store {
    fn rbac_list(&self, plural: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        match resource::builtin_id(plural) {
            Some(id) => self.list(id, namespace, None, None, None).items,
            None => Vec::new(),
        }
    }

    fn rbac_get(&self, plural: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let id = resource::builtin_id(plural)?;
        let key = ObjKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.get(id, &key)
    }
}

impl Policy for Store {
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
        self.rbac_list("clusterrolebindings", None)
    }

    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.rbac_list("rolebindings", Some(namespace))
    }

    fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
        self.rbac_get("clusterroles", "", name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.rbac_get("roles", namespace, name)
    }
}

fn strings<'a>(obj: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    obj.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn str_field<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Whether one policy rule allows the request.
pub(crate) fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verb_ok = strings(rule, "verbs").any(|v| v == "*" || v == attrs.verb());
    match attrs {
        Attributes::Resource(r) => {
            let combined = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            verb_ok
                && strings(rule, "apiGroups").any(|g| g == "*" || g == r.group)
                && strings(rule, "resources").any(|res| {
                    res == "*"
                        || res == combined
                        || (!r.subresource.is_empty() && res.strip_prefix("*/") == Some(&r.subresource))
                })
                && {
                    let mut names = strings(rule, "resourceNames").peekable();
                    names.peek().is_none() || names.any(|n| n == r.name)
                }
        }
        Attributes::NonResource { path, .. } => {
            verb_ok
                && strings(rule, "nonResourceURLs").any(|url| {
                    url == "*" || url == path || url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
                })
        }
    }
}

/// The index of the first subject of `binding` that is `user`. `namespace` is the
/// binding's namespace (`""` for a ClusterRoleBinding), the default for
/// ServiceAccount subjects.
fn subject_for(user: &UserInfo, binding: &Value, namespace: &str) -> Option<usize> {
    let subjects = binding.get("subjects").and_then(Value::as_array)?;
    subjects.iter().position(|s| {
        let name = str_field(s, "/name");
        match str_field(s, "/kind") {
            "User" => user.name == name,
            "Group" => user.in_group(name),
            "ServiceAccount" => {
                let ns = match str_field(s, "/namespace") {
                    "" => namespace,
                    given => given,
                };
                !ns.is_empty() && service_account(&user.name) == Some((ns, name))
            }
            _ => false,
        }
    })
}

/// How the apiserver names a binding's subject in reasons.
fn describe_subject(subject: &Value, namespace: &str) -> String {
    let kind = str_field(subject, "/kind");
    let name = str_field(subject, "/name");
    if kind == "ServiceAccount" {
        let ns = match str_field(subject, "/namespace") {
            "" => namespace,
            given => given,
        };
        format!("{kind} {:?}", format!("{name}/{ns}"))
    } else {
        format!("{kind} {name:?}")
    }
}

/// The rules of the role a binding references, or the error RBAC reports for it.
fn referenced_rules(policy: &impl Policy, binding: &Value, namespace: &str) -> Result<Arc<Value>, String> {
    let kind = str_field(binding, "/roleRef/kind");
    let name = str_field(binding, "/roleRef/name");
    match kind {
        "ClusterRole" => policy
            .cluster_role(name)
            .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {name:?} not found")),
        "Role" => policy
            .role(namespace, name)
            .ok_or_else(|| format!("role.rbac.authorization.k8s.io {name:?} not found")),
        other => Err(format!("unsupported role reference kind: {other:?}")),
    }
}

/// One binding that applies to a user, with the role it grants.
struct Grant {
    binding: Arc<Value>,
    /// `""` for a ClusterRoleBinding.
    namespace: String,
    subject: usize,
    role: Result<Arc<Value>, String>,
}

impl Grant {
    fn rules(&self) -> impl Iterator<Item = &Value> {
        self.role
            .as_ref()
            .ok()
            .and_then(|r| r.get("rules"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    fn describe(&self) -> String {
        let subject = self
            .binding
            .pointer(&format!("/subjects/{}", self.subject))
            .unwrap_or(&Value::Null);
        let name = str_field(&self.binding, "/metadata/name");
        let name = if self.namespace.is_empty() {
            format!("ClusterRoleBinding {name:?}")
        } else {
            format!("RoleBinding {:?}", format!("{name}/{}", self.namespace))
        };
        format!(
            "{name} of {} {:?} to {}",
            str_field(&self.binding, "/roleRef/kind"),
            str_field(&self.binding, "/roleRef/name"),
            describe_subject(subject, &self.namespace)
        )
    }
}

/// The bindings that apply to `user`: ClusterRoleBindings, then the RoleBindings of
/// `namespace` when it is not empty.
fn grants(policy: &impl Policy, user: &UserInfo, namespace: &str) -> impl Iterator<Item = Grant> {
    let cluster = policy.cluster_role_bindings().into_iter().map(|b| (b, String::new()));
    let local = if namespace.is_empty() {
        Vec::new()
    } else {
        policy.role_bindings(namespace)
    };
    let local = local.into_iter().map(move |b| (b, namespace.to_string()));
    cluster.chain(local).filter_map(|(binding, ns)| {
        let subject = subject_for(user, &binding, &ns)?;
        let role = referenced_rules(policy, &binding, &ns);
        Some(Grant {
            binding,
            namespace: ns,
            subject,
            role,
        })
    })
}

/// Joins errors like Kubernetes' `utilerrors.NewAggregate`: one as is, several
/// deduplicated in brackets.
fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Decides whether `user` may make the request.
pub(crate) fn authorize(policy: &impl Policy, user: &UserInfo, attrs: &Attributes) -> Decision {
    if user.in_group(MASTERS) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut errors = Vec::new();
    for grant in grants(policy, user, attrs.namespace()) {
        if let Err(e) = &grant.role {
            errors.push(e.clone());
            continue;
        }
        if grant.rules().any(|rule| rule_allows(rule, attrs)) {
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {}", grant.describe()),
            };
        }
    }
    Decision {
        allowed: false,
        reason: if errors.is_empty() {
            String::new()
        } else {
            format!("RBAC: {}", aggregate(&errors))
        },
    }
}

/// What `user` may do in `namespace`, as a SelfSubjectRulesReview `status`:
/// `resourceRules`, `nonResourceRules`, `incomplete` and any `evaluationError`.
pub(crate) fn rules_review(policy: &impl Policy, user: &UserInfo, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    if user.in_group(MASTERS) {
        resource_rules.push(json!({ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }));
        non_resource_rules.push(json!({ "verbs": ["*"], "nonResourceURLs": ["*"] }));
    }
    let mut errors = Vec::new();
    for grant in grants(policy, user, namespace) {
        if let Err(e) = &grant.role {
            errors.push(e.clone());
        }
        for rule in grant.rules() {
            let list = |key| Value::Array(strings(rule, key).map(|s| json!(s)).collect());
            if strings(rule, "resources").next().is_some() {
                let mut r =
                    json!({ "verbs": list("verbs"), "apiGroups": list("apiGroups"), "resources": list("resources") });
                if strings(rule, "resourceNames").next().is_some() {
                    r["resourceNames"] = list("resourceNames");
                }
                resource_rules.push(r);
            }
            if strings(rule, "nonResourceURLs").next().is_some() {
                non_resource_rules.push(json!({ "verbs": list("verbs"), "nonResourceURLs": list("nonResourceURLs") }));
            }
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(aggregate(&errors));
    }
    status
}

/// The 403 the apiserver answers a request RBAC did not allow with.
pub(crate) fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let (message, details) = match attrs {
        Attributes::NonResource { verb, path } => (
            format!("forbidden: User {:?} cannot {verb} path {path:?}", user.name),
            json!({}),
        ),
        Attributes::Resource(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {:?}", r.namespace)
            };
            let what = if r.group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.group)
            };
            let what = if r.name.is_empty() {
                what
            } else {
                format!("{what} {:?}", r.name)
            };
            let mut details = json!({ "kind": r.resource });
            if !r.group.is_empty() {
                details["group"] = json!(r.group);
            }
            if !r.name.is_empty() {
                details["name"] = json!(r.name);
            }
            (
                format!(
                    "{what} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
                    user.name, r.verb, r.group
                ),
                details,
            )
        }
    };
    let message = if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    };
    ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fixed {
        objects: Vec<Arc<Value>>,
    }

    impl Fixed {
        fn with(mut self, obj: Value) -> Self {
            self.objects.push(Arc::new(obj));
            self
        }

        fn of_kind(&self, kind: &str, namespace: &str) -> Vec<Arc<Value>> {
            self.objects
                .iter()
                .filter(|o| o["kind"] == kind && str_field(o, "/metadata/namespace") == namespace)
                .cloned()
                .collect()
        }

        fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
            self.of_kind(kind, namespace)
                .into_iter()
                .find(|o| o["metadata"]["name"] == name)
        }
    }

    impl Policy for Fixed {
        fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
            self.of_kind("ClusterRoleBinding", "")
        }
        fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>> {
            self.of_kind("RoleBinding", namespace)
        }
        fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
            self.find("ClusterRole", "", name)
        }
        fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
            self.find("Role", namespace, name)
        }
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({ "kind": "ClusterRole", "metadata": { "name": name }, "rules": rules })
    }

    fn role(ns: &str, name: &str, rules: Value) -> Value {
        json!({ "kind": "Role", "metadata": { "name": name, "namespace": ns }, "rules": rules })
    }

    fn binding(ns: Option<&str>, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
        let (kind, metadata) = match ns {
            Some(ns) => ("RoleBinding", json!({ "name": name, "namespace": ns })),
            None => ("ClusterRoleBinding", json!({ "name": name })),
        };
        json!({
            "kind": kind, "metadata": metadata,
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role },
            "subjects": subjects,
        })
    }

    fn user(name: &str) -> Value {
        json!([{ "kind": "User", "name": name }])
    }

    fn res(verb: &str, group: &str, resource: &str, namespace: &str) -> Attributes {
        Attributes::Resource(ResourceAttributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            ..ResourceAttributes::default()
        })
    }

    fn named(attrs: Attributes, name: &str, subresource: &str) -> Attributes {
        match attrs {
            Attributes::Resource(mut r) => {
                r.name = name.into();
                r.subresource = subresource.into();
                Attributes::Resource(r)
            }
            other => other,
        }
    }

    fn view() -> Value {
        cluster_role(
            "view",
            json!([
                { "apiGroups": [""], "resources": ["pods", "pods/log", "configmaps"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"] },
            ]),
        )
    }

    fn alice() -> UserInfo {
        UserInfo::impersonated("alice", vec![])
    }

    #[test]
    fn a_rule_matches_verbs_groups_resources_and_names() {
        let rule = json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"] });
        assert!(rule_allows(&rule, &res("list", "", "pods", "shop")));
        assert!(!rule_allows(&rule, &res("delete", "", "pods", "shop")));
        assert!(!rule_allows(&rule, &res("list", "apps", "pods", "shop")));
        assert!(!rule_allows(&rule, &res("list", "", "secrets", "shop")));
        // A subresource needs its own entry.
        assert!(!rule_allows(
            &rule,
            &named(res("get", "", "pods", "shop"), "web", "log")
        ));

        let named_rule = json!({ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "list"] });
        assert!(rule_allows(
            &named_rule,
            &named(res("get", "", "configmaps", "shop"), "settings", "")
        ));
        assert!(!rule_allows(
            &named_rule,
            &named(res("get", "", "configmaps", "shop"), "other", "")
        ));
        // A list has no name, so resourceNames never allow it.
        assert!(!rule_allows(&named_rule, &res("list", "", "configmaps", "shop")));
    }

    #[test]
    fn wildcards_match_everything_and_star_slash_matches_a_subresource() {
        let all = json!({ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] });
        assert!(rule_allows(&all, &res("deletecollection", "apps", "deployments", "")));
        assert!(rule_allows(&all, &named(res("get", "", "pods", "x"), "p", "log")));
        let logs = json!({ "apiGroups": [""], "resources": ["*/log"], "verbs": ["get"] });
        assert!(rule_allows(&logs, &named(res("get", "", "pods", "x"), "p", "log")));
        assert!(!rule_allows(&logs, &named(res("get", "", "pods", "x"), "p", "status")));
        assert!(!rule_allows(&logs, &named(res("get", "", "pods", "x"), "p", "")));
        // A resource rule never allows a path, nor a path rule a resource.
        let path = Attributes::NonResource {
            verb: "get".into(),
            path: "/healthz".into(),
        };
        assert!(!rule_allows(&all, &path));
        assert!(!rule_allows(
            &json!({ "nonResourceURLs": ["*"], "verbs": ["*"] }),
            &res("get", "", "pods", "")
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_trailing_star() {
        let rule = json!({ "nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"] });
        let get = |path: &str| Attributes::NonResource {
            verb: "get".into(),
            path: path.into(),
        };
        assert!(rule_allows(&rule, &get("/healthz")));
        assert!(!rule_allows(&rule, &get("/healthz/etcd")));
        assert!(rule_allows(&rule, &get("/apis/apps/v1")));
        assert!(!rule_allows(&rule, &get("/apis")));
        let post = Attributes::NonResource {
            verb: "post".into(),
            path: "/healthz".into(),
        };
        assert!(!rule_allows(&rule, &post));
    }

    #[test]
    fn a_role_binding_grants_only_in_its_namespace() {
        let policy = Fixed::default().with(view()).with(binding(
            Some("shop"),
            "alice-view",
            "ClusterRole",
            "view",
            user("alice"),
        ));
        let allowed = authorize(&policy, &alice(), &res("list", "", "pods", "shop"));
        assert!(allowed.allowed);
        assert_eq!(
            allowed.reason,
            r#"RBAC: allowed by RoleBinding "alice-view/shop" of ClusterRole "view" to User "alice""#
        );
        assert!(!authorize(&policy, &alice(), &res("list", "", "pods", "payments")).allowed);
        // A cluster-wide list needs a ClusterRoleBinding.
        assert!(!authorize(&policy, &alice(), &res("list", "", "pods", "")).allowed);
        assert!(!authorize(&policy, &alice(), &res("list", "", "secrets", "shop")).allowed);
        assert!(
            !authorize(
                &policy,
                &UserInfo::impersonated("bob", vec![]),
                &res("list", "", "pods", "shop")
            )
            .allowed
        );
    }

    #[test]
    fn a_cluster_role_binding_grants_everywhere() {
        let policy = Fixed::default()
            .with(view())
            .with(binding(None, "bob-view", "ClusterRole", "view", user("bob")));
        let bob = UserInfo::impersonated("bob", vec![]);
        for ns in ["", "shop", "payments"] {
            assert!(
                authorize(&policy, &bob, &res("watch", "apps", "deployments", ns)).allowed,
                "{ns}"
            );
        }
        assert_eq!(
            authorize(&policy, &bob, &res("list", "", "pods", "")).reason,
            r#"RBAC: allowed by ClusterRoleBinding "bob-view" of ClusterRole "view" to User "bob""#
        );
    }

    #[test]
    fn groups_and_service_accounts_are_subjects() {
        let policy = Fixed::default()
            .with(role(
                "shop",
                "deployer",
                json!([{ "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"] }]),
            ))
            .with(binding(
                Some("shop"),
                "devs",
                "Role",
                "deployer",
                json!([{ "kind": "Group", "name": "devs" }]),
            ))
            .with(binding(
                Some("shop"),
                "ci",
                "Role",
                "deployer",
                json!([{ "kind": "ServiceAccount", "name": "ci" }]),
            ))
            .with(binding(
                None,
                "all-sa",
                "ClusterRole",
                "view",
                json!([{ "kind": "Group", "name": "system:serviceaccounts:tools" }]),
            ))
            .with(view());
        let patch = res("patch", "apps", "deployments", "shop");
        let dev = UserInfo::impersonated("carol", vec!["devs".into()]);
        assert!(authorize(&policy, &dev, &patch).allowed);
        assert!(!authorize(&policy, &alice(), &patch).allowed);

        // The subject's namespace defaults to the binding's.
        let ci = UserInfo::impersonated("system:serviceaccount:shop:ci", vec![]);
        let decision = authorize(&policy, &ci, &patch);
        assert!(decision.allowed);
        assert!(
            decision.reason.ends_with(r#"to ServiceAccount "ci/shop""#),
            "{}",
            decision.reason
        );
        let elsewhere = UserInfo::impersonated("system:serviceaccount:other:ci", vec![]);
        assert!(!authorize(&policy, &elsewhere, &patch).allowed);

        // Impersonating a service account adds its groups.
        let tool = UserInfo::impersonated("system:serviceaccount:tools:bot", vec![]);
        assert_eq!(
            tool.groups,
            ["system:serviceaccounts", "system:serviceaccounts:tools", AUTHENTICATED]
        );
        assert!(authorize(&policy, &tool, &res("list", "", "pods", "")).allowed);
    }

    #[test]
    fn masters_may_do_anything_and_missing_roles_are_reported() {
        let policy = Fixed::default().with(binding(Some("shop"), "broken", "Role", "gone", user("alice")));
        let everything = res("delete", "", "nodes", "");
        assert!(authorize(&policy, &UserInfo::admin(), &everything).allowed);
        let denied = authorize(&policy, &alice(), &res("get", "", "pods", "shop"));
        assert!(!denied.allowed);
        assert_eq!(
            denied.reason,
            r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#
        );
        assert_eq!(
            aggregate(&["a".into(), "b".into(), "a".into()]),
            "[a, b]",
            "errors are deduplicated and bracketed"
        );
    }

    #[test]
    fn impersonation_adds_the_authenticated_group() {
        assert_eq!(alice().groups, [AUTHENTICATED]);
        let given = UserInfo::impersonated("alice", vec!["devs".into(), AUTHENTICATED.into()]);
        assert_eq!(given.groups, ["devs", AUTHENTICATED]);
        assert_eq!(UserInfo::impersonated(ANONYMOUS, vec![]).groups, [UNAUTHENTICATED]);
    }

    #[test]
    fn request_attributes_follow_the_apiserver() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let none = q(&[]);
        let attrs = |method, path, query: &HashMap<String, String>| match Attributes::from_request(method, path, query)
        {
            Attributes::Resource(r) => (r.verb, r.group, r.resource, r.subresource, r.namespace, r.name),
            other => panic!("{other:?} is not a resource request"),
        };
        let s = |x: &str| x.to_string();
        assert_eq!(
            attrs("GET", "/api/v1/namespaces/shop/pods", &none),
            (s("list"), s(""), s("pods"), s(""), s("shop"), s(""))
        );
        assert_eq!(attrs("GET", "/api/v1/pods", &q(&[("watch", "true")])).0, "watch");
        assert_eq!(
            attrs("GET", "/api/v1/namespaces/shop/pods/web/log", &none),
            (s("get"), s(""), s("pods"), s("log"), s("shop"), s("web"))
        );
        assert_eq!(
            attrs("DELETE", "/apis/apps/v1/namespaces/shop/deployments", &none),
            (
                s("deletecollection"),
                s("apps"),
                s("deployments"),
                s(""),
                s("shop"),
                s("")
            )
        );
        assert_eq!(
            attrs("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", &none).0,
            "patch"
        );
        assert_eq!(attrs("PUT", "/api/v1/nodes/n1", &none).0, "update");
        assert_eq!(attrs("POST", "/api/v1/namespaces/shop/configmaps", &none).0, "create");
        // A namespace is in itself, and its status is a subresource.
        assert_eq!(
            attrs("GET", "/api/v1/namespaces/shop", &none),
            (s("get"), s(""), s("namespaces"), s(""), s("shop"), s("shop"))
        );
        assert_eq!(attrs("PUT", "/api/v1/namespaces/shop/status", &none).3, "status");
        // kubectl waits for a deletion with a watch on one name.
        let one = q(&[("watch", "1"), ("fieldSelector", "metadata.name=web")]);
        assert_eq!(attrs("GET", "/api/v1/namespaces/shop/pods", &one).5, "web");
        for path in ["/api", "/api/v1", "/apis/apps/v1", "/healthz", "/version"] {
            assert_eq!(
                Attributes::from_request("GET", path, &none),
                Attributes::NonResource {
                    verb: "get".into(),
                    path: path.into()
                }
            );
        }
    }

    #[test]
    fn forbidden_reads_like_the_apiserver() {
        let status = forbidden(&alice(), &res("list", "", "pods", "payments"), "").to_status();
        assert_eq!(
            status,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"payments\"",
                "reason": "Forbidden", "details": { "kind": "pods" }, "code": 403,
            })
        );
        let logs = forbidden(
            &alice(),
            &named(res("get", "apps", "deployments", ""), "web", "scale"),
            "",
        )
        .to_status();
        assert_eq!(
            logs["message"],
            "deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource \"deployments/scale\" in API group \"apps\" at the cluster scope"
        );
        assert_eq!(
            logs["details"],
            json!({ "kind": "deployments", "group": "apps", "name": "web" })
        );
    }

    #[test]
    fn rules_review_lists_what_applies() {
        let policy = Fixed::default().with(view()).with(binding(
            Some("shop"),
            "alice-view",
            "ClusterRole",
            "view",
            user("alice"),
        ));
        let status = rules_review(&policy, &alice(), "shop");
        assert_eq!(status["resourceRules"].as_array().map(Vec::len), Some(2));
        assert_eq!(status["incomplete"], false);
        let elsewhere = rules_review(&policy, &alice(), "payments");
        assert_eq!(elsewhere["resourceRules"], json!([]));
    }
}
