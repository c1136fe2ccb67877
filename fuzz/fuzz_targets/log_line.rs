//! Log lines (`k8sPodLogs`): the kubelet-prefix parser and the level inference never
//! panic on any line, keep the text, and the level ignores ASCII case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope::hub::logs::{infer_level, parse_line};

fuzz_target!(|raw: &str| {
    let line = parse_line(raw);
    let text = raw.strip_suffix('\r').unwrap_or(raw);
    assert!(text.ends_with(&line.message), "{raw:?}: the message is the line's text");
    assert_eq!(line.timestamp.is_some(), line.at.is_some(), "{raw:?}");
    if line.timestamp.is_none() {
        assert_eq!(line.message, text, "{raw:?}: a line without a prefix keeps its text");
    }
    assert_eq!(line.level, infer_level(&line.message), "{raw:?}");
    assert_eq!(
        infer_level(&line.message.to_ascii_uppercase()),
        line.level,
        "{raw:?}: levels are case-insensitive"
    );
});
