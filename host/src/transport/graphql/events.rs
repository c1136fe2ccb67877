//! `k8sEvents`: the hub's `events` frames of one scope as `Event` records.
//!
//! Only events observed after subscribe are sent: snapshots (the first one and those
//! after a relist) are skipped, `added` and `modified` (a repeated event's count grows)
//! are records, `deleted` is not. The subscription shares the scope's one upstream
//! watch with every other subscriber, SSE's included.

use futures::{Stream, StreamExt};
use serde_json::Value;

use super::schema::{Event, EventLevel, end_error};
use crate::hub::{Frame, FrameKind};
use crate::transport::session::{Item, Session};

/// Reasons of Warning events that mean something failed.
const ERROR_REASONS: &[&str] = &["Failed", "BackOff", "FailedCreate", "FailedMount", "FailedScheduling"];

/// The operation's records: one per new or repeated event, then the session's end.
pub fn stream(session: Session) -> impl Stream<Item = async_graphql::Result<Event>> + Send {
    session.into_stream().filter_map(|item| async move {
        match item {
            Item::Frame(frame) if matches!(frame.kind, FrameKind::Added | FrameKind::Modified) => {
                record(&frame).map(Ok)
            }
            Item::Frame(_) | Item::Ping => None,
            Item::End(end) => end_error(end).map(Err),
        }
    })
}

/// The record of a delta frame's event DTO (spec/dtos.md 4.2).
pub fn record(frame: &Frame) -> Option<Event> {
    let value: Value = serde_json::from_slice(&frame.data).ok()?;
    let dto = value.get("object")?;
    let text = |key: &str| dto[key].as_str().unwrap_or_default().to_string();
    let reason = text("reason");
    let level = match dto["type"].as_str() {
        Some("Warning") if ERROR_REASONS.contains(&reason.as_str()) => EventLevel::Error,
        Some("Warning") => EventLevel::Warn,
        _ => EventLevel::Info,
    };
    let zero = |ts: &str| ts.is_empty() || ts.starts_with("0001-01-01");
    let timestamp = [text("last"), text("first")]
        .into_iter()
        .find(|ts| !zero(ts))
        .unwrap_or_else(|| text("last"));
    Some(Event {
        id: text("uid").into(),
        level,
        timestamp,
        namespace: text("namespace"),
        involved_object: format!("{}/{}", text("kind"), text("name")),
        reason,
        message: text("message"),
        count: i32::try_from(dto["count"].as_i64().unwrap_or(1)).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_backoff_is_an_error_and_names_its_object() {
        let dto = br#"{"uid":"u1","namespace":"shop","kind":"Pod","name":"web-1","type":"Warning","reason":"BackOff","message":"restarting","count":3,"first":"2026-05-01T11:00:00Z","last":"2026-05-01T12:00:00Z","source":"kubelet"}"#;
        let frame = Frame::delta(FrameKind::Added, "5".into(), "shop", dto);
        let event = record(&frame).unwrap();
        assert_eq!(event.level, EventLevel::Error);
        assert_eq!(event.involved_object, "Pod/web-1");
        assert_eq!(event.timestamp, "2026-05-01T12:00:00Z");
        assert_eq!(event.count, 3);
    }

    #[test]
    fn normal_is_info_and_a_zero_last_falls_back_to_first() {
        let dto = br#"{"uid":"u2","namespace":"shop","kind":"Deployment","name":"web","type":"Normal","reason":"ScalingReplicaSet","message":"m","count":1,"first":"2026-05-01T11:00:00Z","last":"0001-01-01T00:00:00Z"}"#;
        let event = record(&Frame::delta(FrameKind::Added, "6".into(), "shop", dto)).unwrap();
        assert_eq!(event.level, EventLevel::Info);
        assert_eq!(event.timestamp, "2026-05-01T11:00:00Z");
    }
}
