//! Periscope: streams live Kubernetes state to browsers and tools.
//!
//! This library is the whole service; `main.rs` only parses arguments and maps errors
//! to exit codes. Every Kubernetes kind is a WebAssembly component loaded by
//! [`plugin`]; the host itself knows no kind. Data flows one way: [`cluster`] clients
//! feed the [`hub`]'s upstreams, which map objects through [`plugin`]s and fan frames
//! out to the [`transport`]s ([`http`] serves them). [`serve`] builds it all from a [`config::Config`].
//! [`web`] is the live page at `/`.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod hub;
pub mod kinds;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod plugin;
pub mod scaffold;
pub mod serve;
pub mod snapshot;
pub mod transport;
pub mod web;
