//! Conversions between the generated WIT types and the SDK's Rust types; called by the
//! code [`export_mapper!`](crate::export_mapper) expands to.

use crate::bindings::exports::periscope::plugin::mapper as wit;
use crate::{Context, MapError, Mapper, Timestamp};

/// Hands a panic's message to the host, then lets the panic trap. std's default hook
/// reads `RUST_BACKTRACE` (an environment import plugins are not given, so the trap
/// would name a missing `wasi:cli` import instead of the panic); this one only writes
/// `panicked at <file>:<line>:<col>:` and the message to stderr, which the host
/// captures per call and puts in the trap's error (`plugins map`, the host's log).
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            use std::io::Write;
            let message = info.payload_as_str().unwrap_or("(a panic without a message)");
            let text = match info.location() {
                Some(at) => format!("panicked at {}:{}:{}:\n{message}\n", at.file(), at.line(), at.column()),
                None => format!("panicked:\n{message}\n"),
            };
            // Nothing to do if the host refuses the write: the trap still follows.
            let _ = std::io::stderr().write_all(text.as_bytes());
        }))
    });
}

/// `info` export.
pub fn info<M: Mapper>() -> wit::KindInfo {
    quiet_panics();
    let info = M::info();
    wit::KindInfo {
        token: info.token.into(),
        group_alias: info.group_alias.into(),
        api_group: info.api_group.into(),
        api_version: info.api_version.into(),
        kind: info.kind.into(),
        plural: info.plural.into(),
        namespaced: info.namespaced,
        list_key: info.list_key.into(),
        snapshot: info.snapshot.map(|s| wit::SnapshotPolicy {
            sort_field: s.sort_field.into(),
            descending: s.descending,
            cap: s.cap,
        }),
        fields: M::FIELDS.iter().map(|f| (*f).into()).collect(),
    }
}

/// `to-dto` export.
pub fn to_dto<M: Mapper>(object: &str, ctx: wit::Context) -> Result<String, wit::MapError> {
    quiet_panics();
    M::map_json(object, &context(ctx)).map_err(into_wit)
}

/// `to-dto-batch` export.
pub fn to_dto_batch<M: Mapper>(objects: &[String], ctx: wit::Context) -> Vec<Result<String, wit::MapError>> {
    quiet_panics();
    let ctx = context(ctx);
    objects
        .iter()
        .map(|object| M::map_json(object, &ctx).map_err(into_wit))
        .collect()
}

fn context(ctx: wit::Context) -> Context {
    Context {
        now: Timestamp::from_unix(ctx.now_seconds, ctx.now_nanos),
    }
}

fn into_wit(error: MapError) -> wit::MapError {
    match error {
        MapError::Malformed(m) => wit::MapError::Malformed(m),
        MapError::Unsupported(m) => wit::MapError::Unsupported(m),
    }
}
