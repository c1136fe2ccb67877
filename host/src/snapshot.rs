//! Snapshot order and cap: what a plugin's [`SnapshotPolicy`](crate::plugin::SnapshotPolicy)
//! asks of a list of DTOs. The rules live in `periscope-golden`, so the golden runner
//! orders snapshots with the very code the hub uses.

pub use periscope_golden::snapshot::{apply, apply_keyed, sort_key};
