//! The direct watch path's request-head handling (`periscope::http::direct`): the
//! request-line classification the accept loop runs on every new connection's first
//! bytes, and the head parser a watch request then goes through. Never panics; a head
//! that parses is a `GET` with no body; only a line ending in `/watch` under
//! `/api/clusters/` is taken off hyper; a refusal is 400 or 431.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope::http::direct::{MAX_HEAD, Route, classify, parse_head};

fuzz_target!(|input: &[u8]| {
    // The accept loop looks at most 2048 bytes for the line; try a short limit too.
    for max_line in [16, 2048] {
        if let Some(Route::Watch) = classify(input, max_line) {
            let end = input.iter().position(|&b| b == b'\n').expect("a watch line is whole");
            let line = &input[..end];
            assert!(line.starts_with(b"GET /api/clusters/"), "{line:?}");
        }
    }
    match parse_head(input) {
        Ok(Some(request)) => {
            assert!(request.headers().get("content-length").is_none_or(|v| v == "0"));
        }
        Ok(None) => assert!(input.len() < MAX_HEAD),
        Err(refusal) => {
            use axum::response::IntoResponse;
            let status = refusal.into_response().status().as_u16();
            assert!(status == 400 || status == 431, "{status}");
        }
    }
});
