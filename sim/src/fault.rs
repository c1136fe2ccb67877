//! Fault injection: the switches tests flip to make the sim misbehave like a real
//! apiserver under stress, and the open-watch counters they read.
//!
//! Every switch is shared by the server (which consults it per request) and the
//! [`Sim`](crate::Sim) handle or the admin endpoint (which sets it). Faults never apply
//! to `/sim/admin/…` requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::resource::ResourceId;

/// How many times a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultCount {
    /// The next `n` matching requests, then the fault clears itself.
    Times(u32),
    /// Every matching request until the fault is cleared.
    UntilCleared,
}

impl FaultCount {
    /// Consumes one use; returns whether the fault fires for this request.
    fn take(slot: &mut Option<Self>) -> bool {
        match slot {
            None => false,
            Some(Self::UntilCleared) => true,
            Some(Self::Times(n)) => {
                let fire = *n > 0;
                *n = n.saturating_sub(1);
                if *n == 0 {
                    *slot = None;
                }
                fire
            }
        }
    }
}

/// The failure a faulty list answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListFailure {
    /// `500 InternalError`.
    InternalError,
    /// `429 TooManyRequests` with `Retry-After: 1`.
    TooManyRequests,
}

#[derive(Default)]
struct Switches {
    expire_watches: Option<FaultCount>,
    expire_continues: Option<FaultCount>,
    fail_lists: Option<(ListFailure, FaultCount)>,
    latency: Duration,
    refuse_watch_list: bool,
}

/// Shared fault state.
pub(crate) struct Faults {
    switches: Mutex<Switches>,
    drop_tx: broadcast::Sender<Option<ResourceId>>,
    pause_tx: watch::Sender<bool>,
    /// Open watches per resource (custom resources come and go, so a map).
    open_watches: Mutex<HashMap<ResourceId, usize>>,
    /// Requests served so far, by shape (tests count what a client asked for).
    lists: AtomicUsize,
    watch_lists: AtomicUsize,
}

impl Faults {
    pub fn new() -> Self {
        let (drop_tx, _) = broadcast::channel(64);
        let (pause_tx, _) = watch::channel(false);
        Self {
            switches: Mutex::new(Switches::default()),
            drop_tx,
            pause_tx,
            open_watches: Mutex::new(HashMap::new()),
            lists: AtomicUsize::new(0),
            watch_lists: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Switches> {
        self.switches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends open watches of one resource, or of all when `None`.
    pub fn drop_watches(&self, resource: Option<ResourceId>) {
        // No receivers just means no open watches.
        let _ = self.drop_tx.send(resource);
    }

    /// A receiver told about every later [`Faults::drop_watches`] call.
    pub fn drop_signal(&self) -> broadcast::Receiver<Option<ResourceId>> {
        self.drop_tx.subscribe()
    }

    pub fn expire_watches(&self, count: Option<FaultCount>) {
        self.lock().expire_watches = count;
    }

    /// Whether this new watch must answer with 410 Expired (consumes one use).
    pub fn take_watch_expiry(&self) -> bool {
        FaultCount::take(&mut self.lock().expire_watches)
    }

    pub fn expire_continues(&self, count: Option<FaultCount>) {
        self.lock().expire_continues = count;
    }

    /// Whether this list page, asked for with a `continue` token, must answer with
    /// 410 Expired (consumes one use).
    pub fn take_continue_expiry(&self) -> bool {
        FaultCount::take(&mut self.lock().expire_continues)
    }

    pub fn fail_lists(&self, failure: Option<(ListFailure, FaultCount)>) {
        self.lock().fail_lists = failure;
    }

    /// The failure this list must answer with, if any (consumes one use).
    pub fn take_list_failure(&self) -> Option<ListFailure> {
        let mut switches = self.lock();
        let (failure, count) = switches.fail_lists?;
        let mut slot = Some(count);
        let fire = FaultCount::take(&mut slot);
        switches.fail_lists = slot.map(|c| (failure, c));
        fire.then_some(failure)
    }

    /// Makes watches with `sendInitialEvents` answer as an apiserver without the
    /// WatchList feature does (422), or serves them again.
    pub fn refuse_watch_list(&self, refuse: bool) {
        self.lock().refuse_watch_list = refuse;
    }

    pub fn refuses_watch_list(&self) -> bool {
        self.lock().refuse_watch_list
    }

    /// Counts one list request (a page) and one streaming list (a watch with
    /// `sendInitialEvents`).
    pub fn count_list(&self) {
        self.lists.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_watch_list(&self) {
        self.watch_lists.fetch_add(1, Ordering::Relaxed);
    }

    /// List pages and streaming lists served so far.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.lists.load(Ordering::Relaxed),
            self.watch_lists.load(Ordering::Relaxed),
        )
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    pub fn set_paused(&self, paused: bool) {
        self.pause_tx.send_replace(paused);
    }

    pub fn is_paused(&self) -> bool {
        *self.pause_tx.borrow()
    }

    /// Waits until the server is not paused.
    pub async fn wait_unpaused(&self) {
        let mut rx = self.pause_tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|paused| !*paused).await;
    }

    /// Clears every switch (latency, pause, pending failures and expiries).
    pub fn clear(&self) {
        *self.lock() = Switches::default();
        self.set_paused(false);
    }

    fn watches(&self) -> MutexGuard<'_, HashMap<ResourceId, usize>> {
        self.open_watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn open_watches(&self, resource: ResourceId) -> usize {
        self.watches().get(&resource).copied().unwrap_or(0)
    }

    pub fn open_watches_total(&self) -> usize {
        self.watches().values().sum()
    }

    /// Counts a watch as open until the returned guard is dropped.
    pub fn watch_opened(self: &Arc<Self>, resource: ResourceId) -> OpenWatch {
        *self.watches().entry(resource).or_default() += 1;
        OpenWatch {
            faults: self.clone(),
            resource,
        }
    }
}

/// Keeps one watch counted as open.
pub(crate) struct OpenWatch {
    faults: Arc<Faults>,
    resource: ResourceId,
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        let mut watches = self.faults.watches();
        if let Some(open) = watches.get_mut(&self.resource) {
            *open -= 1;
            if *open == 0 {
                watches.remove(&self.resource);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_clear_themselves() {
        let faults = Faults::new();
        faults.fail_lists(Some((ListFailure::TooManyRequests, FaultCount::Times(2))));
        assert_eq!(faults.take_list_failure(), Some(ListFailure::TooManyRequests));
        assert_eq!(faults.take_list_failure(), Some(ListFailure::TooManyRequests));
        assert_eq!(faults.take_list_failure(), None);
        faults.expire_watches(Some(FaultCount::UntilCleared));
        assert!(faults.take_watch_expiry());
        assert!(faults.take_watch_expiry());
        faults.expire_continues(Some(FaultCount::Times(1)));
        assert!(faults.take_continue_expiry());
        assert!(!faults.take_continue_expiry());
        faults.clear();
        assert!(!faults.take_watch_expiry());
    }

    #[test]
    fn open_watch_guards_count() {
        let faults = Arc::new(Faults::new());
        let guard = faults.watch_opened(2);
        assert_eq!(faults.open_watches(2), 1);
        assert_eq!(faults.open_watches_total(), 1);
        drop(guard);
        assert_eq!(faults.open_watches_total(), 0);
    }
}
