//! Errors of the plugin runtime: loading a component and calling it.

use std::path::PathBuf;
use std::time::Duration;

use super::wit::Version;

/// A boxed source error (wasmtime's error does not implement `std::error::Error`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a plugin component could not be loaded. Loading happens at start-up, so each
/// of these stops start-up with a message naming the plugin and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plugin directory or a file in it could not be read.
    #[error("cannot read plugin {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component wasmtime accepts.
    #[error("plugin {source_name}: not a valid WebAssembly component (build it for wasm32-wasip2)")]
    Compile {
        /// Where the plugin came from.
        source_name: String,
        /// wasmtime's reason.
        #[source]
        source: BoxError,
    },
    /// The component does not export the mapper interface at all.
    #[error("plugin {source_name} does not export {package}/{interface}@<version>; build it with periscope-plugin-sdk")]
    MissingExport {
        /// Where the plugin came from.
        source_name: String,
        /// `periscope:plugin`.
        package: &'static str,
        /// `mapper`.
        interface: &'static str,
    },
    /// The component targets a contract version this host does not support.
    #[error(
        "plugin {source_name} targets periscope:plugin@{found}, but this periscope supports \
         {min} through {max}; rebuild the plugin against periscope-plugin-sdk {max} or upgrade periscope"
    )]
    IncompatibleVersion {
        /// Where the plugin came from.
        source_name: String,
        /// The version the plugin exports.
        found: String,
        /// Oldest supported.
        min: Version,
        /// Newest supported.
        max: Version,
    },
    /// The component imports a capability plugins are never given.
    #[error(
        "plugin {source_name} imports {import}, but plugins get no filesystem, network or HTTP access; \
         remove the code that uses it"
    )]
    ForbiddenImport {
        /// Where the plugin came from.
        source_name: String,
        /// The import name.
        import: String,
    },
    /// Instantiating the component or calling `info` failed.
    #[error("plugin {source_name}: cannot instantiate or describe itself")]
    Instantiate {
        /// Where the plugin came from.
        source_name: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// `info` returned a description the host cannot serve.
    #[error("plugin {source_name}: invalid kind info: {reason}")]
    InvalidInfo {
        /// Where the plugin came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plugin's token is a bundled kind's (not listed in `[plugins] override`) or a
    /// bundled group alias.
    #[error("plugin {source_name} declares kind {token:?}: {what}")]
    Clash {
        /// The refused plugin.
        source_name: String,
        /// Its token.
        token: String,
        /// What it clashes with, and the fix.
        what: String,
    },
    /// Two plugins from the plugin directory declare the same token.
    #[error("plugins {first} and {second} both declare kind {token:?}; remove one of them")]
    DuplicateKind {
        /// The clashing token.
        token: String,
        /// The first plugin.
        first: String,
        /// The second plugin.
        second: String,
    },
}

/// Why one mapping call failed. A failure never takes down the host or other kinds.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin rejected the object (its own, expected error).
    #[error("plugin {token}: {message}")]
    Rejected {
        /// The kind token.
        token: String,
        /// `malformed object: …` or `unsupported object: …`.
        message: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("plugin {token} did not finish within its {deadline:?} deadline")]
    Timeout {
        /// The kind token.
        token: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The instance tried to grow its memory past the cap.
    #[error("plugin {token} exceeded its memory cap of {cap_bytes} bytes")]
    OutOfMemory {
        /// The kind token.
        token: String,
        /// The cap.
        cap_bytes: usize,
    },
    /// The instance trapped (a panic, `unreachable`, an out-of-bounds access).
    #[error("plugin {token} {}", match panic { Some(message) => format!("panicked: {message}"), None => "trapped".to_string() })]
    Trap {
        /// The kind token.
        token: String,
        /// The guest's panic message, when its SDK handed it over (written to stderr).
        panic: Option<String>,
        /// wasmtime's trap with its backtrace.
        #[source]
        source: BoxError,
    },
    /// The call failed in the canonical ABI (for example a string that is not UTF-8).
    #[error("plugin {token} call failed")]
    Failed {
        /// The kind token.
        token: String,
        /// wasmtime's reason.
        #[source]
        source: BoxError,
    },
    /// The plugin returned something that is not a JSON object.
    #[error("plugin {token} returned a DTO that is not a JSON object: {reason}")]
    InvalidOutput {
        /// The kind token.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The plugin failed too often in a row and is resting.
    #[error("plugin {token} is quarantined after {failures} consecutive failures; retrying in {retry_in:?}")]
    Quarantined {
        /// The kind token.
        token: String,
        /// Consecutive failures that triggered the quarantine.
        failures: u32,
        /// Time left before calls are tried again.
        retry_in: Duration,
    },
}

impl CallError {
    /// True for failures of the plugin itself (not of one object), which count
    /// towards quarantine and discard the instance.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, CallError::Rejected { .. } | CallError::Quarantined { .. })
    }
}
