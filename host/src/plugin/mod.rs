//! The plugin runtime: loads kind plugins (WebAssembly components) and runs their
//! mappings safely and fast.
//!
//! - **One [`wasmtime::Engine`] per runtime**, with epoch interruption: a ticker thread
//!   bumps the epoch every [`EPOCH_TICK`], and every call re-arms its deadline, so a
//!   plugin that loops is interrupted and fails that call.
//! - **Compiled once.** Components are compiled through the [`cache`] on disk (content
//!   hash × engine hash), then linked into an `InstancePre` so instantiation does no
//!   import resolution or type checking.
//! - **Checked before instantiation.** The export `periscope:plugin/mapper@<v>` must be
//!   in the supported range ([`wit::MIN_VERSION`]..=[`wit::MAX_VERSION`]); imports of
//!   filesystem, sockets or HTTP are refused; every other import (the `wasi:io` and
//!   `wasi:cli` interfaces a std guest mentions) is linked to a trap, so a plugin has
//!   no capabilities at all.
//! - **Pooled instances.** Each plugin keeps a few idle instances, each with its own
//!   `Store` and a memory cap. An instance that fails (trap, timeout, memory cap, bad
//!   output) is discarded, as is one whose memory grew past the recycle threshold.
//! - **Quarantine.** After [`RuntimeOptions::quarantine_after`] consecutive plugin
//!   faults, calls fail fast for [`RuntimeOptions::quarantine_for`].
//!
//! Calls are **synchronous** and run on the calling thread. Async callers run them on
//! tokio's blocking pool (`spawn_blocking`), batching objects per call, so a mapping
//! never blocks a tokio worker; the deadline bounds how long a call can hold a thread.

mod bundled;
pub mod cache;
mod error;
mod golden;
mod instance;
mod output;
pub mod wit;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

pub use bundled::BUNDLED;
pub use cache::CacheStats;
pub use error::{BoxError, CallError, LoadError};
pub use instance::{Fields, KindInfo, Plugin, PluginHealth, SnapshotPolicy};

use instance::StoreState;

/// How often the epoch advances; deadlines are rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Import prefixes no plugin may have: plugins get no filesystem, network or HTTP.
const FORBIDDEN_IMPORTS: &[&str] = &["wasi:filesystem/", "wasi:sockets/", "wasi:http/"];

/// Called after every plugin call with the kind token, the call's duration and whether
/// it was a plugin fault; how metrics see plugins without this module knowing them.
#[derive(Clone)]
pub struct CallObserver(pub Arc<ObserveCall>);

/// The observer's signature: kind token, call duration, whether it was a fault.
pub type ObserveCall = dyn Fn(&str, Duration, bool) + Send + Sync;

impl std::fmt::Debug for CallObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallObserver")
    }
}

/// Tunables of the runtime; the defaults suit production.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Deadline of one call (one object, or one chunk of a batch).
    pub call_deadline: Duration,
    /// Most linear memory one instance may have.
    pub memory_cap: usize,
    /// An instance whose memory grew past this is discarded after its call.
    pub recycle_above: usize,
    /// Idle instances kept per plugin.
    pub max_idle_instances: usize,
    /// Objects per call when mapping a batch.
    pub batch_chunk: usize,
    /// Consecutive plugin faults that quarantine a plugin.
    pub quarantine_after: u32,
    /// How long a quarantined plugin rests before calls are tried again.
    pub quarantine_for: Duration,
    /// Where compiled components are cached; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// Told about every call (metrics).
    pub call_observer: Option<CallObserver>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            // Declared once with the `[plugins]` settings.
            call_deadline: crate::config::settings::PLUGINS_CALL_DEADLINE.default(),
            memory_cap: usize::try_from(crate::config::settings::PLUGINS_MEMORY_CAP_MIB.default())
                .unwrap_or(usize::MAX),
            recycle_above: 32 << 20,
            max_idle_instances: 4,
            batch_chunk: 256,
            quarantine_after: 5,
            quarantine_for: crate::config::settings::PLUGINS_QUARANTINE_FOR.default(),
            cache_dir: cache::default_dir(),
            call_observer: None,
        }
    }
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary, built from `plugins/<name>`.
    Bundled(String),
    /// Loaded from a file in the plugin directory.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Bundled(name) => write!(f, "bundled:{name}"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Loads and runs kind plugins. Cheap to share behind an `Arc`.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: cache::ComponentCache,
    options: RuntimeOptions,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Creates the engine and starts its epoch ticker (a thread that ends with the engine).
    pub fn new(options: RuntimeOptions) -> Result<PluginRuntime, BoxError> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine)?;
        let linker = Linker::new(&engine);
        if let Some(dir) = &options.cache_dir {
            cache::check_dir(dir)?;
        }
        let cache = cache::ComponentCache::new(&engine, options.cache_dir.clone());
        Ok(PluginRuntime {
            engine,
            linker,
            cache,
            options,
        })
    }

    /// The options the runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Compile and cache counters (a warm start compiles nothing).
    pub fn cache_stats(&self) -> &CacheStats {
        self.cache.stats()
    }

    /// Loads one component from its bytes.
    pub fn load(&self, source: Source, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let source_name = source.to_string();
        let component = self
            .cache
            .component(&self.engine, bytes)
            .map_err(|e| LoadError::Compile {
                source_name: source_name.clone(),
                source: e.into(),
            })?;
        let version = check_exports(&self.engine, &component, &source_name)?;
        check_imports(&self.engine, &component, &source_name)?;
        let mut linker = self.linker.clone();
        let pre = output::link(&mut linker, &component)
            .and_then(|()| linker.define_unknown_imports_as_traps(&component))
            .and_then(|()| linker.instantiate_pre(&component))
            .and_then(|pre| wit::Pre::new(version, pre))
            .map_err(|e| LoadError::Instantiate {
                source_name: source_name.clone(),
                source: e.into(),
            })?;
        let plugin = Plugin::new(self.engine.clone(), pre, source, self.options.clone())?;
        tracing::debug!(
            kind = %plugin.info().token,
            group = %plugin.info().group_alias,
            api_version = %plugin.info().api_version_string(),
            source = %plugin.source(),
            "loaded plugin"
        );
        Ok(Arc::new(plugin))
    }

    /// How many bundled components are not in the compiled-component cache yet (a first
    /// start compiles them, which takes a few seconds).
    pub fn bundled_to_compile(&self) -> usize {
        BUNDLED.iter().filter(|(_, bytes)| self.cache.is_cold(bytes)).count()
    }

    /// Loads every bundled plugin, in registry order.
    pub fn load_bundled(&self) -> Result<Vec<Arc<Plugin>>, LoadError> {
        BUNDLED
            .iter()
            .map(|(name, bytes)| self.load(Source::Bundled((*name).to_string()), bytes))
            .collect()
    }

    /// Loads every `*.wasm` file in `dir`, sorted by file name; the first file that
    /// fails to load fails the whole directory (`[plugins] strict`).
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<Arc<Plugin>>, LoadError> {
        self.load_dir_each(dir)?.into_iter().map(|(_, loaded)| loaded).collect()
    }

    /// Loads every `*.wasm` file in `dir`, sorted by file name, each on its own: one
    /// broken file does not stop the others. Only an unreadable directory is an error.
    pub fn load_dir_each(&self, dir: &Path) -> Result<Vec<FileLoad>, LoadError> {
        let read_error = |source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        paths.retain(|p| p.extension().is_some_and(|ext| ext == "wasm"));
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| {
                let loaded = std::fs::read(&path)
                    .map_err(|source| LoadError::Read {
                        path: path.clone(),
                        source,
                    })
                    .and_then(|bytes| self.load(Source::File(path.clone()), &bytes));
                (path, loaded)
            })
            .collect())
    }

    /// Loads the bundled plugins, then those in `dir` (if any), which add kinds or
    /// replace the bundled kinds `overrides` names ([`merge`]); any failure is an error.
    pub fn load_all(&self, dir: Option<&Path>, overrides: &[String]) -> Result<Vec<Arc<Plugin>>, LoadError> {
        let plugins = self.load_bundled()?;
        match dir {
            None => Ok(plugins),
            Some(dir) => merge(plugins, self.load_dir(dir)?, overrides).into_result(),
        }
    }
}

/// One plugin file and what loading it gave.
pub type FileLoad = (PathBuf, Result<Arc<Plugin>, LoadError>);

/// What [`merge`] made: the registry's plugins, and the plugin files it refused.
#[derive(Debug)]
pub struct Merged {
    /// Bundled plugins (some replaced), then new kinds in file order.
    pub plugins: Vec<Arc<Plugin>>,
    /// Plugins left out, each with why (a clash, naming both plugins).
    pub refused: Vec<(Source, LoadError)>,
}

impl Merged {
    /// The plugins, or the first refusal (`[plugins] strict`).
    pub fn into_result(self) -> Result<Vec<Arc<Plugin>>, LoadError> {
        match self.refused.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(self.plugins),
        }
    }
}

/// Bundled plugins followed by a plugin directory's. A directory plugin adds its kind,
/// or replaces the bundled kind with its token when `overrides` names that token;
/// otherwise a clash with a bundled token or group alias refuses the directory plugin,
/// naming both (issue 22: a silent replacement turned `/pods` into widgets). Two
/// directory plugins with one token: the second is refused. Registry order: bundled
/// order, then new kinds from the directory in file order.
pub fn merge(bundled: Vec<Arc<Plugin>>, from_dir: Vec<Arc<Plugin>>, overrides: &[String]) -> Merged {
    let aliases: Vec<String> = bundled.iter().map(|p| p.info().group_alias.clone()).collect();
    let mut plugins = bundled;
    let mut refused = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for plugin in from_dir {
        let token = plugin.info().token.clone();
        let source_name = plugin.source().to_string();
        let refuse = |error: LoadError| (plugin.source().clone(), error);
        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == token) {
            refused.push(refuse(LoadError::DuplicateKind {
                token,
                first: first.clone(),
                second: source_name,
            }));
            continue;
        }
        if let Some(clash) = bundled_clash(&token, &plugins, &aliases, overrides) {
            refused.push(refuse(LoadError::Clash {
                source_name,
                token,
                what: clash,
            }));
            continue;
        }
        seen.push((token.clone(), source_name));
        match plugins.iter_mut().find(|p| p.info().token == token) {
            Some(existing) => {
                tracing::info!(kind = %token, source = %plugin.source(), replaces = %existing.source(), "plugin overrides a bundled kind ([plugins] override)");
                *existing = plugin;
            }
            None => plugins.push(plugin),
        }
    }
    Merged { plugins, refused }
}

/// What a directory plugin's `token` clashes with among the bundled kinds, unless
/// `overrides` allows replacing that kind: the text of the refusal.
pub fn bundled_clash(token: &str, plugins: &[Arc<Plugin>], aliases: &[String], overrides: &[String]) -> Option<String> {
    if let Some(bundled) = plugins
        .iter()
        .find(|p| p.info().token == token && matches!(p.source(), Source::Bundled(_)))
    {
        if overrides.iter().any(|o| o == token) {
            return None;
        }
        return Some(format!(
            "the bundled plugin {} already serves; to replace it, add {token:?} to [plugins] override \
             (PERISCOPE_PLUGINS_OVERRIDE), or give the plugin another token",
            bundled.source()
        ));
    }
    aliases
        .iter()
        .any(|a| a == token)
        .then(|| "is the group alias of bundled kinds; give the plugin another token".to_string())
}

/// Checks the component exports `periscope:plugin/mapper@<v>` with a supported `v`,
/// and returns `v`.
fn check_exports(engine: &Engine, component: &Component, source_name: &str) -> Result<wit::Version, LoadError> {
    let prefix = format!("{}/{}@", wit::PACKAGE, wit::INTERFACE);
    let ty = component.component_type();
    let Some(found) = ty
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
    else {
        return Err(LoadError::MissingExport {
            source_name: source_name.to_string(),
            package: wit::PACKAGE,
            interface: wit::INTERFACE,
        });
    };
    match wit::Version::parse(&found) {
        Some(version) if wit::is_supported(version) => Ok(version),
        _ => Err(LoadError::IncompatibleVersion {
            source_name: source_name.to_string(),
            found,
            min: wit::MIN_VERSION,
            max: wit::MAX_VERSION,
        }),
    }
}

/// Refuses components that import filesystem, sockets or HTTP interfaces.
fn check_imports(engine: &Engine, component: &Component, source_name: &str) -> Result<(), LoadError> {
    let ty = component.component_type();
    let forbidden = ty
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| FORBIDDEN_IMPORTS.iter().any(|prefix| name.starts_with(prefix)));
    match forbidden {
        Some(import) => Err(LoadError::ForbiddenImport {
            source_name: source_name.to_string(),
            import: import.to_string(),
        }),
        None => Ok(()),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}
