//! Periscope: streams live Kubernetes state to browsers and tools.
//!
//! This library is the whole service; `main.rs` only parses arguments, installs
//! tracing and maps errors to exit codes. Every Kubernetes kind is a WebAssembly
//! component loaded by [`plugin`]; the host itself knows no kind.

pub mod cli;
pub mod config;
pub mod kinds;
pub mod plugin;
pub mod snapshot;
