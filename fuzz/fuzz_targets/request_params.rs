//! The request parameters that reach apiserver URLs or the hub: `?namespace=` and
//! `Last-Event-ID`. Never panics; what is accepted is a DNS-1123 label, or a short
//! visible-ASCII id.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use periscope::http::{dns_label, last_event_id, namespace_param};

fuzz_target!(|input: (&str, &[u8])| {
    let (query, id) = input;
    if let Ok(Some(namespace)) = namespace_param(Some(query)) {
        assert!(dns_label(&namespace).is_ok(), "{namespace:?}");
        assert!(!namespace.contains(['/', '.', '%', '\0']), "{namespace:?}");
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(id) {
        headers.insert("last-event-id", value);
        if let Ok(Some(id)) = last_event_id(&headers) {
            assert!(
                id.len() <= 256 && id.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)),
                "{id:?}"
            );
        }
    }
});
