//! Integration tests for the simulated cluster, over real HTTP on loopback, with real
//! clients: kubectl and helm (installed by `scripts/install-tools.sh`) and kube-rs.
//!
//! Run with: `cargo test -p periscope-sim --test all`

mod apply;
mod crd;
mod helm;
mod kubectl;
mod protocol;
mod support;
mod watcher;
