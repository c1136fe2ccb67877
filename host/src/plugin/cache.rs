//! The on-disk cache of compiled components.
//!
//! Compiling a component with cranelift takes hundreds of milliseconds; loading a
//! precompiled one takes about one. Entries are keyed by the SHA-256 of the component
//! bytes and by the engine's compatibility hash (wasmtime version, target, settings),
//! so a new periscope or a changed plugin never loads a stale artifact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How many components were compiled and how many came from the cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    compiled: AtomicUsize,
    loaded: AtomicUsize,
}

impl CacheStats {
    /// Components compiled with cranelift since start.
    pub fn compiled(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }

    /// Components deserialized from the disk cache since start.
    pub fn loaded_from_cache(&self) -> usize {
        self.loaded.load(Ordering::Relaxed)
    }
}

/// Compiles components, through the disk cache when there is one.
#[derive(Debug)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
    stats: CacheStats,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write); `None` compiles every time.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> ComponentCache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            stats: CacheStats::default(),
        }
    }

    /// The cache directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Counters of compiled and cached loads.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The compiled component for `bytes`, from the cache when present, else compiled
    /// and written back. A cache that cannot be read or written only costs a compile.
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(path) = self.entry_path(bytes) else {
            return self.compile(engine, bytes);
        };
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => {
                    self.stats.loaded.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Err(error) => tracing::warn!(path = %path.display(), %error, "discarding unreadable cached component"),
            }
        }
        let component = self.compile(engine, bytes)?;
        if let Err(error) = write_entry(&path, &component) {
            tracing::warn!(path = %path.display(), %error, "cannot write component cache entry");
        }
        Ok(component)
    }

    /// True when `bytes` would be compiled rather than loaded from the cache.
    pub fn is_cold(&self, bytes: &[u8]) -> bool {
        self.entry_path(bytes).is_none_or(|path| !path.is_file())
    }

    fn compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let component = Component::new(engine, bytes)?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        Ok(component)
    }

    fn entry_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(bytes));
        Some(dir.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }
}

/// Loads a precompiled artifact written by [`write_entry`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts precompiled artifacts, so only files this process wrote
    // may be loaded. Entries are named by the content hash of the component they were
    // compiled from and written atomically into a directory owned by the periscope
    // user (created 0700); wasmtime itself rejects artifacts from another engine
    // configuration or version.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_entry(path: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = path.parent().expect("cache entries live in the cache directory");
    create_private_dir(dir)?;
    let serialized = component.serialize()?;
    let name = path.file_name().expect("entries have a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Refuses a cache directory that another user could write into: wasmtime trusts the
/// artifacts it deserializes, so a planted file would run as native code. A directory
/// that does not exist yet is fine (it is created 0700 on first write).
pub fn check_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(format!(
                "cannot read the component cache directory {}: {error}",
                dir.display()
            ));
        }
    };
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "the component cache directory {} belongs to uid {}, not to this user (uid {me}); \
             compiled components are loaded as native code, so only their own user may write them: \
             use a directory of this user (plugins.cache_dir / PERISCOPE_PLUGINS_CACHE_DIR)",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the component cache directory {} is writable by group or others (mode {:o}); \
             compiled components are loaded as native code: run `chmod go-w {}` or choose another \
             plugins.cache_dir",
            dir.display(),
            meta.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// The default cache directory: `$XDG_CACHE_HOME/periscope/components`, else
/// `$HOME/.cache/periscope/components`; `None` when neither is set.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("periscope").join("components"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_cache_directory_others_can_write_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("components");
        assert_eq!(check_dir(&cache), Ok(()), "not created yet is fine");
        create_private_dir(&cache).unwrap();
        assert_eq!(check_dir(&cache), Ok(()));
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_dir(&cache).unwrap_err();
        assert!(error.contains(&cache.display().to_string()), "{error}");
        assert!(error.contains("mode 777") && error.contains("chmod go-w"), "{error}");
    }
}
