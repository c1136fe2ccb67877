//! The kind plugins compiled from `plugins/` by `host/build.rs` and embedded in the
//! binary, so one binary works out of the box.

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
