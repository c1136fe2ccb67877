//! The kinds a running host serves, swappable as one unit: the [`Registry`] and the
//! [`Enabled`] set resolved from it (`watch.streams`) change together, so
//! `/api/features`, the watch routes and the hub never disagree about a kind.
//!
//! Readers take a snapshot ([`LiveKinds::registry`], [`LiveKinds::enabled`]) and keep
//! it for the rest of their request; a reload ([`LiveKinds::replace`]) affects only
//! requests that start after it. A call already running on a replaced plugin finishes
//! on it: its `Arc<Plugin>` keeps it alive.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use super::{Enabled, Registry};

/// One consistent generation of kinds.
#[derive(Debug)]
struct Generation {
    registry: Arc<Registry>,
    enabled: Arc<Enabled>,
}

/// The current kinds, replaced whole when the plugin directory changes.
#[derive(Debug)]
pub struct LiveKinds {
    current: RwLock<Arc<Generation>>,
    problems: Mutex<BTreeMap<PathBuf, String>>,
}

impl LiveKinds {
    /// The kinds of `registry`, of which `enabled` have watch routes.
    pub fn new(registry: Registry, enabled: Enabled) -> Arc<LiveKinds> {
        Arc::new(LiveKinds {
            current: RwLock::new(Arc::new(Generation {
                registry: Arc::new(registry),
                enabled: Arc::new(enabled),
            })),
            problems: Mutex::new(BTreeMap::new()),
        })
    }

    fn generation(&self) -> Arc<Generation> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current registry.
    pub fn registry(&self) -> Arc<Registry> {
        self.generation().registry.clone()
    }

    /// The kinds with a watch route now.
    pub fn enabled(&self) -> Arc<Enabled> {
        self.generation().enabled.clone()
    }

    /// Whether kind `token` has a watch route now.
    pub fn contains(&self, token: &str) -> bool {
        self.generation().enabled.contains(token)
    }

    /// The kinds with a watch route now, in registry order (`/api/features`).
    pub fn tokens(&self) -> Vec<String> {
        self.generation().enabled.tokens().to_vec()
    }

    /// Makes `registry` and `enabled` current, atomically for readers.
    pub fn replace(&self, registry: Registry, enabled: Enabled) {
        let next = Arc::new(Generation {
            registry: Arc::new(registry),
            enabled: Arc::new(enabled),
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Plugin files the last reloads refused, with the reason (one line each).
    pub fn problems(&self) -> BTreeMap<PathBuf, String> {
        self.problems.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records (`Some`) or clears (`None`) the problem of one plugin file.
    pub(crate) fn set_problem(&self, path: PathBuf, problem: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(problem) => problems.insert(path, problem),
            None => problems.remove(&path),
        };
    }
}
