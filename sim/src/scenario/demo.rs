//! The demo scenario.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Writer;
use crate::store::Store;

pub(super) fn seed(_w: &mut Writer) {}

pub(super) fn spawn(
    _store: Arc<Store>,
    _shutdown: CancellationToken,
    _seed: u64,
    _interval: Duration,
) {
}
