//! One loaded plugin: its description, its pool of instances and its health.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::{Engine, ResourceLimiter, Store, Trap};

use super::error::{CallError, LoadError};
use super::output::Captured;
use super::wit::latest::exports::periscope::plugin::mapper as wit;
use super::wit::{Bindings, Pre};
use super::{EPOCH_TICK, RuntimeOptions, Source};

/// How the host orders and trims snapshots of a kind (events: newest first, 500);
/// shared with the golden runner.
pub use periscope_golden::SnapshotPolicy;

/// Parsed `kind-info.fields`, applied by the host's stripping; shared with the golden
/// runner.
pub use periscope_golden::Fields;

/// What a plugin says about its kind (the WIT `kind-info`, validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindInfo {
    /// URL token and watch kind name (`pods`).
    pub token: String,
    /// Group alias (`core`, `workloads`, …).
    pub group_alias: String,
    /// Kubernetes API group; empty for core.
    pub api_group: String,
    /// Kubernetes API version.
    pub api_version: String,
    /// Kubernetes kind.
    pub kind: String,
    /// Resource plural in the API path.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Key of the polling response wrapper.
    pub list_key: String,
    /// Snapshot order and cap.
    pub snapshot: Option<SnapshotPolicy>,
    /// What of an object the mapping reads (top-level keys or nested paths), parsed
    /// once at load; the host's stripping drops the rest. Empty means all.
    pub fields: Fields,
}

impl KindInfo {
    /// `group/version`, or just `version` for the core group (`apps/v1`, `v1`).
    pub fn api_version_string(&self) -> String {
        if self.api_group.is_empty() {
            self.api_version.clone()
        } else {
            format!("{}/{}", self.api_group, self.api_version)
        }
    }

    fn from_wit(info: wit::KindInfo, source_name: &str) -> Result<KindInfo, LoadError> {
        let invalid = |reason: String| LoadError::InvalidInfo {
            source_name: source_name.to_string(),
            reason,
        };
        let is_token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !is_token(&info.token) {
            return Err(invalid(format!(
                "token {:?} must be lowercase letters, digits and dashes",
                info.token
            )));
        }
        if !is_token(&info.group_alias) {
            return Err(invalid(format!(
                "group alias {:?} must be lowercase letters, digits and dashes",
                info.group_alias
            )));
        }
        for (field, value) in [
            ("api-version", &info.api_version),
            ("kind", &info.kind),
            ("plural", &info.plural),
            ("list-key", &info.list_key),
        ] {
            if value.is_empty() {
                return Err(invalid(format!("{field} is empty")));
            }
        }
        let fields = Fields::parse(&info.fields).map_err(|error| invalid(format!("kind-info fields: {error}")))?;
        Ok(KindInfo {
            token: info.token,
            group_alias: info.group_alias,
            api_group: info.api_group,
            api_version: info.api_version,
            kind: info.kind,
            plural: info.plural,
            namespaced: info.namespaced,
            list_key: info.list_key,
            snapshot: info.snapshot.map(|s| SnapshotPolicy {
                sort_field: s.sort_field,
                descending: s.descending,
                cap: s.cap,
            }),
            fields,
        })
    }
}

/// Counters of one plugin, for health checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginHealth {
    /// Calls made (a batch chunk counts once).
    pub calls: u64,
    /// Calls that failed because of the plugin (traps, timeouts, memory, bad output).
    pub faults: u64,
    /// Objects the plugin rejected as malformed or unsupported.
    pub rejected: u64,
    /// Faults in a row, reset by a successful call.
    pub consecutive_faults: u32,
    /// Whether calls currently fail fast.
    pub quarantined: bool,
}

/// Per-store state: the memory limiter and what the guest wrote to stderr.
pub(super) struct StoreState {
    limits: MemoryLimits,
    /// The current call's stderr and stdout ([`super::output`]).
    pub(super) output: Captured,
}

/// Caps linear memory and remembers how large it grew and whether growth was denied.
struct MemoryLimits {
    cap: usize,
    size: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryLimits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            return Ok(false);
        }
        self.size = self.size.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A live instance with its own store.
struct Instance {
    store: Store<StoreState>,
    bindings: Bindings,
}

/// A loaded kind plugin. Shared behind an `Arc`; calls from many threads each take an
/// idle instance (or make one) and give it back when the call went well.
pub struct Plugin {
    engine: Engine,
    pre: Pre<StoreState>,
    info: KindInfo,
    source: Source,
    options: RuntimeOptions,
    idle: Mutex<Vec<Instance>>,
    calls: AtomicU64,
    faults: AtomicU64,
    rejected: AtomicU64,
    consecutive_faults: AtomicU32,
    quarantined_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Instantiates once and asks the plugin to describe itself.
    pub(super) fn new(
        engine: Engine,
        pre: Pre<StoreState>,
        source: Source,
        options: RuntimeOptions,
    ) -> Result<Plugin, LoadError> {
        let source_name = source.to_string();
        let instantiate_error = |e: wasmtime::Error| LoadError::Instantiate {
            source_name: source_name.clone(),
            source: e.into(),
        };
        let mut instance = new_instance(&engine, &pre, &options).map_err(instantiate_error)?;
        let info = instance.bindings.info(&mut instance.store).map_err(instantiate_error)?;
        let plugin = Plugin {
            info: KindInfo::from_wit(info, &source_name)?,
            engine,
            pre,
            source,
            options,
            idle: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            consecutive_faults: AtomicU32::new(0),
            quarantined_until: Mutex::new(None),
        };
        plugin.release(instance);
        Ok(plugin)
    }

    /// The kind this plugin maps.
    pub fn info(&self) -> &KindInfo {
        &self.info
    }

    /// Where the plugin came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Current counters.
    pub fn health(&self) -> PluginHealth {
        PluginHealth {
            calls: self.calls.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            consecutive_faults: self.consecutive_faults.load(Ordering::Relaxed),
            quarantined: self.quarantine_left().is_some(),
        }
    }

    /// How long calls still fail fast, when the plugin is quarantined.
    pub fn quarantined_for(&self) -> Option<Duration> {
        self.quarantine_left()
    }

    /// Maps one raw object (JSON) to its DTO (a JSON object), at time `now`.
    pub fn to_dto(&self, object: &str, now: time::OffsetDateTime) -> Result<String, CallError> {
        let ctx = context(now);
        self.call(|bindings, store| bindings.to_dto(store, object, ctx))
            .and_then(|result| self.check_result(result))
    }

    /// Maps many objects, one result per object, in order. Objects go to the plugin in
    /// chunks; when a chunk fails as a whole (a trap, a timeout), its objects are
    /// retried one by one so a bad object fails only itself. The chunk's own failure
    /// is not counted: each bad object is, once, by its retry (issue 23: counting
    /// both made one poisonous object weigh double toward quarantine).
    pub fn to_dto_batch(&self, objects: &[String], now: time::OffsetDateTime) -> Vec<Result<String, CallError>> {
        let ctx = context(now);
        let mut results = Vec::with_capacity(objects.len());
        for chunk in objects.chunks(self.options.batch_chunk.max(1)) {
            let whole = if chunk.len() > 1 {
                self.attempt(|bindings, store| bindings.to_dto_batch(store, chunk, ctx))
            } else {
                self.call(|bindings, store| bindings.to_dto_batch(store, chunk, ctx))
            };
            match whole {
                Ok(outputs) if outputs.len() == chunk.len() => {
                    results.extend(outputs.into_iter().map(|result| self.check_result(result)));
                }
                Ok(outputs) => {
                    let reason = format!("returned {} results for {} objects", outputs.len(), chunk.len());
                    self.record_fault();
                    results.extend(chunk.iter().map(|_| {
                        Err(CallError::InvalidOutput {
                            token: self.info.token.clone(),
                            reason: reason.clone(),
                        })
                    }));
                }
                Err(error @ CallError::Quarantined { .. }) => {
                    results.push(Err(error));
                    results.extend(chunk[1..].iter().map(|_| Err(self.quarantined_error())));
                }
                Err(error) if chunk.len() > 1 => {
                    tracing::debug!(kind = %self.info.token, %error, objects = chunk.len(), "a chunk failed; mapping its objects one by one");
                    results.extend(chunk.iter().map(|object| self.to_dto(object, now)));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        results
    }

    /// Runs `f` on an instance under the deadline and classifies failures, counting a
    /// failure as a fault of the plugin (toward quarantine).
    fn call<R>(
        &self,
        f: impl FnOnce(&Bindings, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.attempt(f).map_err(|error| match error {
            CallError::Quarantined { .. } => error,
            error => self.fault(error),
        })
    }

    /// [`Plugin::call`] without counting a failure: the caller decides.
    fn attempt<R>(
        &self,
        f: impl FnOnce(&Bindings, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.quarantine_left().is_some() {
            return Err(self.quarantined_error());
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut instance = match self.take_instance() {
            Ok(instance) => instance,
            Err(error) => return Err(self.classify(error, false, None)),
        };
        instance.store.set_epoch_deadline(self.deadline_ticks());
        instance.store.data_mut().output.clear();
        let started = Instant::now();
        let result = f(&instance.bindings, &mut instance.store);
        if let Some(observer) = &self.options.call_observer {
            (observer.0)(&self.info.token, started.elapsed(), result.is_err());
        }
        match result {
            Ok(value) => {
                self.consecutive_faults.store(0, Ordering::Relaxed);
                self.release(instance);
                Ok(value)
            }
            Err(error) => {
                let denied = instance.store.data().limits.denied;
                let said = instance.store.data().output.text();
                // The instance may be mid-call or corrupt: never reuse it.
                drop(instance);
                Err(self.classify(error, denied, said))
            }
        }
    }

    fn classify(&self, error: wasmtime::Error, memory_denied: bool, said: Option<String>) -> CallError {
        let token = self.info.token.clone();
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            CallError::Timeout {
                token,
                deadline: self.options.call_deadline,
            }
        } else if memory_denied {
            CallError::OutOfMemory {
                token,
                cap_bytes: self.options.memory_cap,
            }
        } else if error.downcast_ref::<Trap>().is_some() {
            CallError::Trap {
                token,
                panic: said.map(|text| panic_message(&text)),
                source: error.into(),
            }
        } else {
            CallError::Failed {
                token,
                source: error.into(),
            }
        }
    }

    /// Checks one returned DTO: the plugin's own error, or a JSON object.
    fn check_result(&self, result: Result<String, wit::MapError>) -> Result<String, CallError> {
        match result {
            Ok(dto) => match validate_dto(&dto) {
                Ok(()) => Ok(dto),
                Err(reason) => Err(self.fault(CallError::InvalidOutput {
                    token: self.info.token.clone(),
                    reason,
                })),
            },
            Err(error) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let message = match error {
                    wit::MapError::Malformed(m) => format!("malformed object: {m}"),
                    wit::MapError::Unsupported(m) => format!("unsupported object: {m}"),
                };
                Err(CallError::Rejected {
                    token: self.info.token.clone(),
                    message,
                })
            }
        }
    }

    /// Counts a plugin fault, quarantining the plugin when they come in a row.
    fn fault(&self, error: CallError) -> CallError {
        let in_a_row = self.record_fault();
        tracing::warn!(kind = %self.info.token, error = %error, consecutive = in_a_row, "plugin call failed");
        if in_a_row >= self.options.quarantine_after {
            let mut until = self.quarantined_until.lock().unwrap_or_else(|p| p.into_inner());
            if until.is_none() {
                tracing::error!(kind = %self.info.token, source = %self.source, "plugin quarantined after {in_a_row} consecutive faults");
            }
            *until = Some(Instant::now() + self.options.quarantine_for);
        }
        error
    }

    fn record_fault(&self) -> u32 {
        self.faults.fetch_add(1, Ordering::Relaxed);
        self.consecutive_faults.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Time left in quarantine; `None` when calls may run. A lapsed quarantine lets the
    /// next call through as a probe: it succeeds and resets, or faults and re-arms.
    fn quarantine_left(&self) -> Option<Duration> {
        let mut until = self.quarantined_until.lock().unwrap_or_else(|p| p.into_inner());
        let left = (*until)?.checked_duration_since(Instant::now());
        if left.is_none() {
            *until = None;
        }
        left
    }

    fn quarantined_error(&self) -> CallError {
        CallError::Quarantined {
            token: self.info.token.clone(),
            failures: self.consecutive_faults.load(Ordering::Relaxed),
            retry_in: self.quarantine_left().unwrap_or_default(),
        }
    }

    fn take_instance(&self) -> wasmtime::Result<Instance> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(instance) => Ok(instance),
            None => self.instantiate(),
        }
    }

    fn instantiate(&self) -> wasmtime::Result<Instance> {
        new_instance(&self.engine, &self.pre, &self.options)
    }

    /// Returns a healthy instance to the pool unless its memory grew too large.
    fn release(&self, instance: Instance) {
        if instance.store.data().limits.size > self.options.recycle_above {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.options.max_idle_instances {
            idle.push(instance);
        }
    }

    fn deadline_ticks(&self) -> u64 {
        deadline_ticks(self.options.call_deadline)
    }
}

/// A fresh instance in its own store, with the memory cap and a deadline armed.
fn new_instance(engine: &Engine, pre: &Pre<StoreState>, options: &RuntimeOptions) -> wasmtime::Result<Instance> {
    let limits = MemoryLimits {
        cap: options.memory_cap,
        size: 0,
        denied: false,
    };
    let mut store = Store::new(
        engine,
        StoreState {
            limits,
            output: Captured::default(),
        },
    );
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(deadline_ticks(options.call_deadline));
    let bindings = pre.instantiate(&mut store)?;
    Ok(Instance { store, bindings })
}

/// The panic message in what a guest wrote: the SDK's hook writes
/// `panicked at <file>:<line>:<col>:\n<message>`, as std's own hook does; other text is
/// kept whole (one line).
fn panic_message(text: &str) -> String {
    let (location, message) = match text
        .strip_prefix("panicked at ")
        .and_then(|rest| rest.split_once(":\n"))
    {
        Some((location, message)) => (Some(location), message),
        None => (None, text.strip_prefix("panicked:\n").unwrap_or(text)),
    };
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match location {
        Some(location) => format!("{message} (at {location})"),
        None => message,
    }
}

/// Whole epoch ticks covering `deadline` (at least one).
fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(deadline.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .max(1)
}

fn context(now: time::OffsetDateTime) -> wit::Context {
    wit::Context {
        now_seconds: now.unix_timestamp(),
        now_nanos: now.nanosecond(),
    }
}

/// A DTO must be one JSON object.
fn validate_dto(dto: &str) -> Result<(), String> {
    if !dto.trim_start().starts_with('{') {
        let start: String = dto.chars().take(40).collect();
        return Err(format!("expected an object, got {start:?}"));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(dto)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(fields: &[&str]) -> wit::KindInfo {
        wit::KindInfo {
            token: "pods".into(),
            group_alias: "core".into(),
            api_group: String::new(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
            namespaced: true,
            list_key: "pods".into(),
            snapshot: None,
            fields: fields.iter().map(|f| (*f).to_string()).collect(),
        }
    }

    #[test]
    fn field_paths_are_parsed_at_load() {
        let parsed = KindInfo::from_wit(info(&["spec.containers[].name", "status"]), "pods.wasm");
        let fields = parsed.map(|i| i.fields).unwrap_or_default();
        assert_eq!(fields.declared(), ["spec.containers[].name", "status"]);
    }

    #[test]
    fn an_invalid_field_path_fails_the_load_naming_plugin_and_path() {
        let Err(error) = KindInfo::from_wit(info(&["status", "spec.containers[]"]), "my-pods.wasm") else {
            panic!("an invalid path loaded");
        };
        let message = error.to_string();
        assert!(message.starts_with("plugin my-pods.wasm: invalid kind info: kind-info fields: field path \"spec.containers[]\": ends in `[]`"), "{message}");
    }
}
