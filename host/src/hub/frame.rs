//! What the hub hands to subscribers: frames whose JSON payload is encoded once and
//! shared by every subscriber (and every transport).

use std::sync::OnceLock;

use bytes::Bytes;

/// What a frame says, in the wire vocabulary of `spec/dtos.md` section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The full current list; replaces the client's cache.
    Snapshot,
    /// An object appeared.
    Added,
    /// An object changed.
    Modified,
    /// An object went away (the DTO is its last state).
    Deleted,
    /// The upstream fell out of the watch window (410); a new snapshot follows.
    Relist,
    /// The upstream failed; subscribers end their stream and reconnect.
    Error,
}

impl FrameKind {
    /// The SSE `event:` name.
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Snapshot => "snapshot",
            FrameKind::Added => "added",
            FrameKind::Modified => "modified",
            FrameKind::Deleted => "deleted",
            FrameKind::Relist => "relist",
            FrameKind::Error => "error",
        }
    }
}

/// One frame of a stream. Immutable once published; shared behind an `Arc`.
#[derive(Debug)]
pub struct Frame {
    /// What it says.
    pub kind: FrameKind,
    /// The resume id: the list resourceVersion of a snapshot, the object's
    /// resourceVersion of a delta, empty otherwise.
    pub id: String,
    /// The JSON payload (`{"object":…}`, `{"resourceVersion":…,"items":[…]}`, …).
    pub data: Bytes,
    /// The namespace of a delta's object (empty for cluster-scoped objects and other
    /// frames), so a subscriber partitioned by RBAC can skip what it may not see.
    pub namespace: String,
    /// The SSE encoding, made by the first SSE subscriber and reused by the others.
    pub sse: OnceLock<Bytes>,
}

impl Frame {
    /// A frame with its payload.
    pub fn new(kind: FrameKind, id: String, data: Bytes) -> Frame {
        Frame {
            kind,
            id,
            data,
            namespace: String::new(),
            sse: OnceLock::new(),
        }
    }

    /// A delta frame for one DTO of an object in `namespace` (`""`: cluster-scoped).
    pub fn delta(kind: FrameKind, resource_version: String, namespace: &str, dto: &[u8]) -> Frame {
        let mut data = Vec::with_capacity(dto.len() + 12);
        data.extend_from_slice(b"{\"object\":");
        data.extend_from_slice(dto);
        data.push(b'}');
        Frame {
            namespace: namespace.to_string(),
            ..Frame::new(kind, resource_version, data.into())
        }
    }

    /// True for `added`, `modified` and `deleted`.
    pub fn is_delta(&self) -> bool {
        matches!(self.kind, FrameKind::Added | FrameKind::Modified | FrameKind::Deleted)
    }

    /// A snapshot frame of `items` (DTO JSON objects, already ordered and capped).
    pub fn snapshot(resource_version: String, items: &[Bytes]) -> Frame {
        let rv = serde_json::to_string(&resource_version).expect("strings serialize");
        let size = items.iter().map(|i| i.len() + 1).sum::<usize>() + rv.len() + 32;
        let mut data = Vec::with_capacity(size);
        data.extend_from_slice(b"{\"resourceVersion\":");
        data.extend_from_slice(rv.as_bytes());
        data.extend_from_slice(b",\"items\":");
        write_json_array(&mut data, items);
        data.push(b'}');
        Frame::new(FrameKind::Snapshot, resource_version, data.into())
    }

    /// The `relist` frame (410 Gone).
    pub fn relist() -> Frame {
        Frame::new(
            FrameKind::Relist,
            String::new(),
            Bytes::from_static(b"{\"reason\":\"gone_410\"}"),
        )
    }

    /// An `error` frame with `message`.
    pub fn error(message: &str) -> Frame {
        let data = serde_json::to_vec(&serde_json::json!({ "message": message })).expect("JSON values serialize");
        Frame::new(FrameKind::Error, String::new(), data.into())
    }
}

/// Appends `[item,item,…]` to `out`; items are JSON values already.
pub fn write_json_array(out: &mut Vec<u8>, items: &[Bytes]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_payload_wraps_items_in_order() {
        let frame = Frame::snapshot(
            "42".into(),
            &[Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{\"b\":2}")],
        );
        assert_eq!(
            &frame.data[..],
            br#"{"resourceVersion":"42","items":[{"a":1},{"b":2}]}"#
        );
        assert_eq!(frame.id, "42");
        let empty = Frame::snapshot(String::new(), &[]);
        assert_eq!(&empty.data[..], br#"{"resourceVersion":"","items":[]}"#);
    }

    #[test]
    fn delta_and_error_payloads() {
        let frame = Frame::delta(FrameKind::Added, "7".into(), "shop", b"{\"name\":\"x\"}");
        assert_eq!(&frame.data[..], br#"{"object":{"name":"x"}}"#);
        assert_eq!(
            &Frame::error("list pods: \"boom\"").data[..],
            br#"{"message":"list pods: \"boom\""}"#
        );
    }
}
