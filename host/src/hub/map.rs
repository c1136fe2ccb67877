//! The map stage: raw objects from the [`source`](super::source) to [`Stored`] DTOs,
//! through the kind's plugin or a host view, on the blocking pool (a plugin call may
//! take milliseconds; the tokio workers never wait for one).
//!
//! A list is mapped page by page while the source fetches the next page, so about
//! two pages are held at a time, and items stay JSON text until the plugin parses
//! them. Objects the plugin fails on alone are left out (counted and logged); a list
//! whose every object failed is a [`MapFailure`], never an empty snapshot.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::value::RawValue;
use tokio::task::JoinHandle;

use super::StreamKey;
use super::store::{ObjectKey, Stored};
use super::view::Mapper;
use crate::plugin::{CallError, Fields};

/// The result of mapping a list: the DTOs, and how many objects were left out
/// because the plugin failed on them. The default is a list of no pages.
#[derive(Default)]
pub(super) struct Mapped {
    pub(super) objects: BTreeMap<ObjectKey, Stored>,
    pub(super) left_out: u64,
}

/// Why a list could not be mapped. Never published as an (empty) snapshot.
#[derive(Debug, thiserror::Error)]
pub(super) enum MapFailure {
    /// The blocking task panicked or was cancelled.
    #[error("the mapping task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The plugin failed every object (faulting on all of them).
    #[error("the plugin failed on every object ({0})")]
    Plugin(String),
    /// The plugin is quarantined: objects it did not map would be silently missing
    /// from the snapshot, so the list fails whole and is retried.
    #[error("{0}")]
    Quarantined(String),
}

impl MapFailure {
    /// The HTTP status a poll answers: 503 while the plugin rests (it comes back by
    /// itself), 500 otherwise.
    pub(super) fn status(&self) -> u16 {
        match self {
            MapFailure::Quarantined(_) => 503,
            MapFailure::Task(_) | MapFailure::Plugin(_) => 500,
        }
    }
}

/// One page, mapped.
struct PageMapped {
    stored: Vec<(ObjectKey, Stored)>,
    /// Items in the page.
    total: usize,
    left_out: u64,
    /// The last fault (not a plugin's rejection) among the page's objects.
    last_fault: Option<String>,
    /// Set when the plugin was quarantined while mapping the page.
    quarantined: Option<String>,
}

/// A list being mapped page by page, all at one mapping time.
pub(super) struct Listing {
    plugin: Mapper,
    key: StreamKey,
    now: time::OffsetDateTime,
    /// The page being mapped while the source fetches the next one.
    mapping: Option<JoinHandle<PageMapped>>,
    objects: BTreeMap<ObjectKey, Stored>,
    total: usize,
    left_out: u64,
    last_fault: Option<String>,
    quarantined: Option<String>,
}

impl Listing {
    /// A list of `key`'s objects, mapped by `plugin` as of `now`.
    pub(super) fn new(plugin: Mapper, key: StreamKey, now: time::OffsetDateTime) -> Listing {
        Listing {
            plugin,
            key,
            now,
            mapping: None,
            objects: BTreeMap::new(),
            total: 0,
            left_out: 0,
            last_fault: None,
            quarantined: None,
        }
    }

    /// Starts mapping a page, once the page before it is mapped.
    pub(super) async fn push(&mut self, items: Vec<Box<RawValue>>) -> Result<(), MapFailure> {
        self.absorb().await?;
        let (plugin, key, now) = (self.plugin.clone(), self.key.clone(), self.now);
        self.mapping = Some(tokio::task::spawn_blocking(move || map_page(&plugin, &key, items, now)));
        Ok(())
    }

    async fn absorb(&mut self) -> Result<(), MapFailure> {
        let Some(task) = self.mapping.take() else {
            return Ok(());
        };
        let page = task.await?;
        self.total += page.total;
        self.left_out += page.left_out;
        if page.last_fault.is_some() {
            self.last_fault = page.last_fault;
        }
        if page.quarantined.is_some() {
            self.quarantined = page.quarantined;
        }
        self.objects.extend(page.stored);
        Ok(())
    }

    /// The mapped list, or an error when the plugin failed on every object or was
    /// quarantined on the way.
    pub(super) async fn finish(mut self) -> Result<Mapped, MapFailure> {
        self.absorb().await?;
        if let Some(quarantined) = self.quarantined {
            return Err(MapFailure::Quarantined(quarantined));
        }
        match self.last_fault {
            Some(fault) if self.total > 0 && self.objects.is_empty() => Err(MapFailure::Plugin(fault)),
            _ => Ok(Mapped {
                objects: self.objects,
                left_out: self.left_out,
            }),
        }
    }
}

/// Strips each item as JSON text and maps them in plugin batches; the page's items
/// are dropped when it returns.
fn map_page(plugin: &Mapper, key: &StreamKey, items: Vec<Box<RawValue>>, now: time::OffsetDateTime) -> PageMapped {
    let fields = &plugin.info().fields;
    let mut mapped = PageMapped {
        stored: Vec::with_capacity(items.len()),
        total: items.len(),
        left_out: 0,
        last_fault: None,
        quarantined: None,
    };
    let mut identities = Vec::with_capacity(items.len());
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        // Items were validated as JSON when the page was parsed; a failure here is an
        // object that is not one, which no plugin could map.
        match periscope_golden::strip_raw(item.get(), fields) {
            Ok(stripped) => {
                identities.push(stripped.identity);
                objects.push(stripped.json);
            }
            Err(error) => {
                mapped.left_out += 1;
                tracing::warn!(cluster = %key.cluster, kind = %key.kind, %error, "object left out: not a JSON object");
            }
        }
    }
    let results = plugin.to_dto_batch(&objects, now);
    drop(objects);
    let policy = plugin.info().snapshot.as_ref();
    for (identity, result) in identities.into_iter().zip(results) {
        let object_key = (identity.namespace, identity.name);
        match result {
            Ok(dto) => mapped
                .stored
                .push((object_key, Stored::new(dto, identity.resource_version, policy))),
            Err(error @ CallError::Quarantined { .. }) => {
                mapped.left_out += 1;
                mapped.quarantined.get_or_insert_with(|| error.to_string());
            }
            Err(error) => {
                mapped.left_out += 1;
                tracing::warn!(cluster = %key.cluster, kind = %key.kind, namespace = %object_key.0, name = %object_key.1, %error, "object left out: plugin failed");
                if !matches!(error, CallError::Rejected { .. }) {
                    mapped.last_fault = Some(error.to_string());
                }
            }
        }
    }
    mapped
}

/// Maps one watched object (call it on the blocking pool).
pub(super) fn map_object(
    plugin: &Mapper,
    object: &DynamicObject,
    now: time::OffsetDateTime,
) -> Result<Stored, CallError> {
    let json = object_json(object, &plugin.info().fields).map_err(|error| CallError::Rejected {
        token: plugin.info().token.clone(),
        message: format!("malformed object: {error}"),
    })?;
    let rv = object.metadata.resource_version.clone().unwrap_or_default();
    plugin
        .to_dto(&json, now)
        .map(|dto| Stored::new(dto, rv, plugin.info().snapshot.as_ref()))
}

/// `(namespace, name)` of a watched object.
pub(super) fn object_key(object: &DynamicObject) -> ObjectKey {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// The object as the plugin gets it: `managedFields` stripped and, when the plugin
/// declares the fields it reads, everything else dropped; by the rule the golden
/// runner applies (`periscope_golden::strip_raw`), on the object's JSON text.
fn object_json(object: &DynamicObject, fields: &Fields) -> serde_json::Result<String> {
    let text = serde_json::to_string(object)?;
    Ok(periscope_golden::strip_raw(&text, fields)?.json)
}
