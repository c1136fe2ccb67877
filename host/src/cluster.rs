//! Connections to Kubernetes clusters, by configured name.

use std::sync::Arc;

/// One cluster the host serves.
#[derive(Clone)]
pub struct Cluster {
    /// The configured name (`/api/clusters/{name}/…`).
    pub name: String,
    /// Where its connection comes from, as the SPA's `/api/clusters` names it:
    /// `kubeconfig`, `in-cluster`, `server` (a plain URL) or `sim` (embedded demo).
    pub backend: &'static str,
    /// A kube client for its apiserver.
    pub client: kube::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Every configured cluster, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    list: Arc<Vec<Cluster>>,
}

impl Clusters {
    /// Clusters in configuration order (names are unique, as config validation ensures).
    pub fn new(list: Vec<Cluster>) -> Clusters {
        Clusters { list: Arc::new(list) }
    }

    /// The cluster named `name`.
    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.list.iter().find(|c| c.name == name)
    }

    /// All clusters.
    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.list.iter()
    }
}
