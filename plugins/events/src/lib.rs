//! Kind plugin for core/v1 `Event` → the SPA's ClusterEvent summary (`spec/dtos.md` 4.2).
//!
//! Events are read through the `v1` API, so modern events.k8s.io events arrive with
//! their deprecated fields empty. The mapping deliberately has no fallbacks: `first` and
//! `last` never borrow `eventTime` or `series`, and only the count gets a default (1).
//! Snapshots are sorted by `last`, newest first, and capped at 500 (spec 3.5).

use periscope_plugin_sdk::{
    Context, KindInfo, MapError, Mapper, Meta, SnapshotPolicy, Timestamp, export_mapper, object,
};
use serde::Serialize;

/// The events mapper.
pub struct Events;

/// The fields of an Event this plugin reads.
#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    metadata: Meta,
    involved_object: InvolvedObject,
    #[serde(rename = "type")]
    event_type: String,
    reason: String,
    message: String,
    count: i32,
    first_timestamp: Timestamp,
    last_timestamp: Timestamp,
    source: EventSource,
    reporting_component: String,
}

#[object]
#[derive(Debug)]
struct InvolvedObject {
    kind: String,
    name: String,
}

#[object]
#[derive(Debug)]
struct EventSource {
    component: String,
    host: String,
}

/// The ClusterEvent summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
pub struct ClusterEventDto {
    uid: String,
    namespace: String,
    kind: String,
    name: String,
    #[serde(rename = "type")]
    event_type: String,
    reason: String,
    message: String,
    count: i32,
    first: Timestamp,
    last: Timestamp,
    source: String,
}

impl Mapper for Events {
    type Object = Event;
    type Dto = ClusterEventDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("core", "v1", "Event", "events").with_snapshot(SnapshotPolicy {
            sort_field: "last",
            descending: true,
            cap: Some(500),
        })
    }

    fn map(event: Event, _ctx: &Context) -> Result<ClusterEventDto, MapError> {
        let source = source(&event);
        Ok(ClusterEventDto {
            uid: event.metadata.uid,
            namespace: event.metadata.namespace,
            kind: event.involved_object.kind,
            name: event.involved_object.name,
            event_type: event.event_type,
            reason: event.reason,
            message: event.message,
            count: if event.count == 0 { 1 } else { event.count },
            first: event.first_timestamp,
            last: event.last_timestamp,
            source,
        })
    }
}

/// `reportingComponent` when set; otherwise `source.component`, plus `"/" + source.host`
/// when the host is set, even after an empty component (`"/node-b"`).
fn source(event: &Event) -> String {
    if !event.reporting_component.is_empty() {
        return event.reporting_component.clone();
    }
    let EventSource { component, host } = &event.source;
    if host.is_empty() {
        component.clone()
    } else {
        format!("{component}/{host}")
    }
}

export_mapper!(Events);

periscope_plugin_sdk::golden_tests!(Events);
