//! Conversions between the generated WIT types and the SDK's Rust types; called by the
//! code [`export_mapper!`](crate::export_mapper) expands to.

use crate::bindings::exports::periscope::plugin::mapper as wit;
use crate::{Context, MapError, Mapper, Timestamp};

/// Makes a panic a plain trap. std's default hook reads `RUST_BACKTRACE` and writes to
/// stderr, both host imports a plugin is not given, so the trap would otherwise name
/// a missing `wasi:cli` import instead of the panic.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
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
