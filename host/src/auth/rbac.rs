//! Kubernetes RBAC per user on shared watches.
//!
//! A shared upstream watch reads as the host's service account, so the host must apply
//! each user's RBAC itself. It asks the cluster: a `SubjectAccessReview`
//! (`authorization.k8s.io/v1`) per (user, groups, verb, resource, namespace), cached for
//! `auth.rbac_ttl`. A user who may not list a kind cluster-wide but may list it in some
//! namespaces gets the cluster-wide stream partitioned to those namespaces (Rancher
//! Steve's idea); the namespaces come from a list the service account makes, cached
//! for the same TTL. Reviews that fail (the apiserver is unreachable) refuse new
//! requests with 503 and leave open streams as they are.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};

use super::Actor;
use crate::cluster::Cluster;

/// Reviews in flight at once when a partition is computed.
const CONCURRENT_REVIEWS: usize = 16;
/// The group Kubernetes puts every authenticated user in.
const AUTHENTICATED: &str = "system:authenticated";
/// Cached decisions above which expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// What one user may see of one kind in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything in the scope.
    All,
    /// Only objects in these namespaces (never empty).
    Namespaces(Arc<BTreeSet<String>>),
    /// Nothing.
    Denied,
}

impl Access {
    /// The namespaces a partitioned subscriber is limited to; `None` for all.
    pub fn only(&self) -> Option<&BTreeSet<String>> {
        match self {
            Access::Namespaces(set) => Some(set),
            Access::All | Access::Denied => None,
        }
    }
}

/// The resource a request reads, as RBAC names it.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// API group (`""` for core).
    pub group: &'a str,
    /// Plural (`pods`), or plural and subresource (`pods/log`).
    pub plural: &'a str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

/// The cluster could not answer an access review.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot check access with cluster {cluster:?}: {message}")]
pub struct ReviewError {
    /// The cluster.
    pub cluster: String,
    /// What failed.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    cluster: String,
    user: String,
    groups: Vec<String>,
    verb: &'static str,
    group: String,
    resource: String,
    namespace: Option<String>,
}

/// The cluster's namespace names per cluster, and when they were listed.
type NamespaceCache = HashMap<String, (Arc<Vec<String>>, Instant)>;

/// Decides, per user, what the shared watches may show; cheap to share.
pub struct Authorizer {
    enabled: bool,
    ttl: Duration,
    decisions: Mutex<HashMap<DecisionKey, (bool, Instant)>>,
    namespaces: Mutex<NamespaceCache>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("enabled", &self.enabled)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer that asks the cluster when `enabled`, else allows everything.
    pub fn new(enabled: bool, ttl: Duration) -> Arc<Authorizer> {
        Arc::new(Authorizer {
            enabled,
            ttl,
            decisions: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(HashMap::new()),
        })
    }

    /// True when decisions come from the cluster's RBAC.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// How long decisions are cached; open streams re-check at half this interval.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// What `actor` may see of `resource` in `namespace` (`None`: all namespaces), given
    /// it needs every one of `verbs` there.
    pub async fn access(
        &self,
        cluster: &Cluster,
        actor: &Actor,
        resource: Resource<'_>,
        namespace: Option<&str>,
        verbs: &[&'static str],
    ) -> Result<Access, ReviewError> {
        if !self.enabled {
            return Ok(Access::All);
        }
        let namespace = namespace.filter(|_| resource.namespaced);
        if self.allowed_all(cluster, actor, resource, namespace, verbs).await? {
            return Ok(Access::All);
        }
        if namespace.is_some() || !resource.namespaced {
            return Ok(Access::Denied);
        }
        let namespaces = self.namespaces(cluster).await?;
        // Owned names: a stream of borrowed ones trips the compiler's higher-ranked
        // lifetime check when the caller's future must be `Send`.
        let names: Vec<String> = namespaces.as_ref().clone();
        let checks: Vec<(String, Result<bool, ReviewError>)> = futures::stream::iter(names)
            .map(|ns| async move {
                let allowed = self.allowed_all(cluster, actor, resource, Some(&ns), verbs).await;
                (ns, allowed)
            })
            .buffer_unordered(CONCURRENT_REVIEWS)
            .collect()
            .await;
        let mut allowed = BTreeSet::new();
        for (ns, result) in checks {
            if result? {
                allowed.insert(ns);
            }
        }
        Ok(if allowed.is_empty() {
            Access::Denied
        } else {
            Access::Namespaces(Arc::new(allowed))
        })
    }

    async fn allowed_all(
        &self,
        cluster: &Cluster,
        actor: &Actor,
        resource: Resource<'_>,
        namespace: Option<&str>,
        verbs: &[&'static str],
    ) -> Result<bool, ReviewError> {
        for verb in verbs {
            if !self.allowed(cluster, actor, resource, namespace, verb).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One decision, from the cache or from a `SubjectAccessReview`.
    async fn allowed(
        &self,
        cluster: &Cluster,
        actor: &Actor,
        resource: Resource<'_>,
        namespace: Option<&str>,
        verb: &'static str,
    ) -> Result<bool, ReviewError> {
        let key = DecisionKey {
            cluster: cluster.name.clone(),
            user: actor.username.clone(),
            groups: actor.groups.clone(),
            verb,
            group: resource.group.to_string(),
            resource: resource.plural.to_string(),
            namespace: namespace.map(str::to_string),
        };
        if let Some((allowed, at)) = self.lock_decisions().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(*allowed);
        }
        // The apiserver's authenticators add `system:authenticated` to every user they
        // authenticate; a review on a user's behalf must say so itself.
        let mut groups = actor.groups.clone();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        // `pods/log`: a subresource is reviewed as resource `pods`, subresource `log`.
        let (plural, subresource) = match resource.plural.split_once('/') {
            Some((plural, sub)) => (plural, Some(sub)),
            None => (resource.plural, None),
        };
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(actor.username.clone()),
                groups: Some(groups),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    group: Some(resource.group.to_string()),
                    resource: Some(plural.to_string()),
                    subresource: subresource.map(str::to_string),
                    namespace: namespace.map(str::to_string),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(cluster.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| ReviewError {
                cluster: cluster.name.clone(),
                message: format!("subjectaccessreviews: {error}"),
            })?;
        let allowed = answer
            .status
            .is_some_and(|status| status.allowed && !status.denied.unwrap_or(false));
        tracing::debug!(cluster = %cluster.name, user = %actor.username, verb, resource = resource.plural, namespace = namespace.unwrap_or("*"), allowed, "access reviewed");
        let mut decisions = self.lock_decisions();
        if decisions.len() >= SWEEP_AT {
            let ttl = self.ttl;
            decisions.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        decisions.insert(key, (allowed, Instant::now()));
        Ok(allowed)
    }

    /// The cluster's namespaces, as the service account lists them (cached).
    async fn namespaces(&self, cluster: &Cluster) -> Result<Arc<Vec<String>>, ReviewError> {
        if let Some((names, at)) = self.lock_namespaces().get(&cluster.name)
            && at.elapsed() < self.ttl
        {
            return Ok(names.clone());
        }
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        let list = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|error| ReviewError {
                cluster: cluster.name.clone(),
                message: format!("list namespaces: {error}"),
            })?;
        let names: Arc<Vec<String>> = Arc::new(list.items.into_iter().filter_map(|ns| ns.metadata.name).collect());
        self.lock_namespaces()
            .insert(cluster.name.clone(), (names.clone(), Instant::now()));
        Ok(names)
    }

    fn lock_decisions(&self) -> std::sync::MutexGuard<'_, HashMap<DecisionKey, (bool, Instant)>> {
        self.decisions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_namespaces(&self) -> std::sync::MutexGuard<'_, NamespaceCache> {
        self.namespaces.lock().unwrap_or_else(|p| p.into_inner())
    }
}
