//! Hot reload of the plugin directory: a new, changed or removed `*.wasm` is loaded,
//! replaced or unloaded while the host runs.
//!
//! The directory is **polled** (every [`POLL_EVERY`]): one `read_dir` and a `stat` per
//! file, compared by modification time and size (see docs/architecture.md, decision
//! 24, for why not inotify). A file is loaded once its stamp is the same on two polls
//! in a row, so a component still being copied is not loaded half-written.
//!
//! - **Broken files are reported and ignored.** A file that fails to load (not a
//!   component, wrong contract version, forbidden import, bad `info`) is logged as a
//!   warning and recorded in [`LiveKinds::problems`]; the version loaded before, if
//!   any, keeps serving. So does the whole previous generation when the new set of
//!   plugins is not a valid registry or no longer satisfies `watch.streams`.
//! - **One swap per change.** The registry and the enabled set are rebuilt from the
//!   bundled plugins and every loaded file and swapped together ([`LiveKinds`]).
//! - **Running streams of a replaced or removed kind end.** [`Reload::retired`] names
//!   the kinds whose plugin changed; the caller has the hub close their upstreams, so
//!   subscribers reconnect and are served by the new plugin (or get 404). Calls already
//!   in flight finish on the old plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{LiveKinds, Registry};
use crate::plugin::{self, Plugin, PluginRuntime, Source};

/// How often the plugin directory is looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        meta.is_file().then(|| Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// A file of the directory as last seen.
#[derive(Debug)]
struct Seen {
    stamp: Stamp,
    /// The version serving (the last one that loaded), if any.
    plugin: Option<Arc<Plugin>>,
}

/// What one poll changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reload {
    /// Kinds whose plugin was replaced or removed: their running streams must end.
    pub retired: Vec<String>,
}

/// Watches one plugin directory and keeps [`LiveKinds`] in step with it.
pub struct Reloader {
    runtime: Arc<PluginRuntime>,
    dir: PathBuf,
    expression: String,
    bundled: Vec<Arc<Plugin>>,
    overrides: Vec<String>,
    files: BTreeMap<PathBuf, Seen>,
    settling: BTreeMap<PathBuf, Stamp>,
    kinds: Arc<LiveKinds>,
    dir_unreadable: bool,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `dir`, whose plugins `from_dir` were loaded at start-up beside
    /// `bundled` (and whose files `failed` did not load: they are tried again once
    /// they change); `expression` is `watch.streams`, re-resolved at every reload;
    /// `overrides` names the bundled kinds a file may replace.
    pub fn new(
        runtime: Arc<PluginRuntime>,
        dir: PathBuf,
        expression: String,
        bundled: Vec<Arc<Plugin>>,
        (from_dir, failed): (&[Arc<Plugin>], &[PathBuf]),
        overrides: Vec<String>,
        kinds: Arc<LiveKinds>,
    ) -> Reloader {
        let broken = failed
            .iter()
            .filter_map(|path| Stamp::of(path).map(|stamp| (path.clone(), Seen { stamp, plugin: None })));
        let files = from_dir
            .iter()
            .filter_map(|plugin| match plugin.source() {
                Source::File(path) => Stamp::of(path).map(|stamp| {
                    (
                        path.clone(),
                        Seen {
                            stamp,
                            plugin: Some(plugin.clone()),
                        },
                    )
                }),
                Source::Bundled(_) => None,
            })
            .chain(broken)
            .collect();
        Reloader {
            runtime,
            dir,
            expression,
            bundled,
            overrides,
            files,
            settling: BTreeMap::new(),
            kinds,
            dir_unreadable: false,
        }
    }

    /// Looks at the directory once; loads, replaces or unloads what changed and swaps
    /// the kinds. Blocking (it compiles components): run it off the async workers.
    pub fn poll(&mut self) -> Reload {
        let listing = match self.listing() {
            Ok(listing) => {
                self.dir_unreadable = false;
                listing
            }
            Err(error) => {
                if !self.dir_unreadable {
                    tracing::warn!(dir = %self.dir.display(), %error, "cannot read the plugin directory; keeping the loaded plugins");
                    self.dir_unreadable = true;
                }
                return Reload::default();
            }
        };
        let mut changed = false;
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| !listing.contains_key(*path))
            .cloned()
            .collect();
        for path in gone {
            self.files.remove(&path);
            self.kinds.set_problem(path.clone(), None);
            tracing::info!(file = %path.display(), "plugin file removed");
            changed = true;
        }
        self.settling.retain(|path, _| listing.contains_key(path));
        for (path, stamp) in listing {
            if self.files.get(&path).is_some_and(|seen| seen.stamp == stamp) {
                continue;
            }
            // Load only what stood still for a whole poll (a copy may be under way).
            if self.settling.get(&path) != Some(&stamp) {
                self.settling.insert(path, stamp);
                continue;
            }
            self.settling.remove(&path);
            let loaded = std::fs::read(&path)
                .map_err(|source| plugin::LoadError::Read {
                    path: path.clone(),
                    source,
                })
                .and_then(|bytes| self.runtime.load(Source::File(path.clone()), &bytes));
            match loaded {
                Ok(plugin) => {
                    tracing::info!(file = %path.display(), kind = %plugin.info().token, "plugin file loaded");
                    self.kinds.set_problem(path.clone(), None);
                    self.files.insert(
                        path,
                        Seen {
                            stamp,
                            plugin: Some(plugin),
                        },
                    );
                    changed = true;
                }
                Err(error) => {
                    let problem = crate::cli::error_chain(&error);
                    let previous = self.files.remove(&path).and_then(|seen| seen.plugin);
                    tracing::warn!(
                        file = %path.display(),
                        error = %problem,
                        "plugin file ignored; {}",
                        if previous.is_some() { "the version loaded before keeps serving" } else { "its kind is not served" }
                    );
                    self.kinds.set_problem(path.clone(), Some(problem));
                    self.files.insert(
                        path,
                        Seen {
                            stamp,
                            plugin: previous,
                        },
                    );
                }
            }
        }
        if changed { self.swap() } else { Reload::default() }
    }

    /// `*.wasm` files of the directory and their stamps.
    fn listing(&self) -> std::io::Result<BTreeMap<PathBuf, Stamp>> {
        let mut listing = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "wasm")
                && let Some(stamp) = Stamp::of(&path)
            {
                listing.insert(path, stamp);
            }
        }
        Ok(listing)
    }

    /// Rebuilds the registry and the enabled set and swaps them in, unless they are
    /// invalid (then the previous generation keeps serving).
    fn swap(&mut self) -> Reload {
        let mut from_dir: Vec<Arc<Plugin>> = Vec::new();
        for (path, seen) in &self.files {
            let Some(plugin) = &seen.plugin else { continue };
            if let Some(first) = from_dir.iter().find(|p| p.info().token == plugin.info().token) {
                let problem = format!(
                    "declares kind {:?} like {}; remove one of them",
                    plugin.info().token,
                    first.source()
                );
                tracing::warn!(file = %path.display(), "plugin file ignored: {problem}");
                self.kinds.set_problem(path.clone(), Some(problem));
                continue;
            }
            from_dir.push(plugin.clone());
        }
        let refused = |what: String| {
            tracing::error!("plugin reload refused, the previous kinds keep serving: {what}");
            Reload::default()
        };
        let merged = plugin::merge(self.bundled.clone(), from_dir, &self.overrides);
        for (source, error) in &merged.refused {
            let problem = crate::cli::error_chain(error);
            tracing::warn!(file = %source, "plugin file ignored: {problem}");
            if let Source::File(path) = source {
                self.kinds.set_problem(path.clone(), Some(problem));
            }
        }
        let plugins = merged.plugins;
        let registry = match Registry::new(plugins) {
            Ok(registry) => registry,
            Err(error) => return refused(crate::cli::error_chain(&error)),
        };
        let resolved = if self.kinds.problems().is_empty() {
            registry.resolve(&self.expression)
        } else {
            super::resolve_without_missing(&registry, &self.expression)
        };
        let enabled = match resolved {
            Ok(enabled) => enabled,
            Err(error) => {
                return refused(format!(
                    "watch.streams = {:?} no longer resolves ({error})",
                    self.expression
                ));
            }
        };
        let old = self.kinds.registry();
        let retired: Vec<String> = old
            .plugins()
            .iter()
            .filter(|before| {
                registry
                    .get(&before.info().token)
                    .is_none_or(|after| !Arc::ptr_eq(before, after))
            })
            .map(|p| p.info().token.clone())
            .collect();
        let added: Vec<&str> = registry
            .plugins()
            .iter()
            .map(|p| p.info().token.as_str())
            .filter(|token| old.get(token).is_none())
            .collect();
        tracing::info!(
            added = ?added,
            replaced_or_removed = ?retired,
            "plugins reloaded; watch streams enabled: {}",
            enabled.summary()
        );
        self.kinds.replace(registry, enabled);
        Reload { retired }
    }
}
