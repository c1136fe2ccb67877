//! Guest SDK for Periscope kind plugins.
//!
//! A kind plugin is a WebAssembly component (`wasm32-wasip2`) that implements the
//! `periscope:plugin/mapper` interface of `wit/since_v0.1.0`: it describes one
//! Kubernetes kind and maps its raw objects (apiserver JSON) to the summary DTO that
//! Periscope's clients consume. This crate hides the generated bindings: a plugin
//! implements [`Mapper`] as plain Rust (testable natively) and calls
//! [`export_mapper!`].
//!
//! It also carries the helpers every kind needs, written to the wire rules of
//! `spec/dtos.md` section 1: [`Meta`] for `metadata`, [`Timestamp`] for RFC 3339 UTC
//! times with the zero-time rule, [`quantity`] for Kubernetes quantities,
//! [`IntOrString`], [`label_selector`] and the null-tolerant [`nullable`] deserializer.
//!
//! What it is not: a Kubernetes client or a type library. Plugins deserialize only the
//! fields they map, into small local structs, so unknown fields cost nothing.
//!
//! Plugins get no capabilities (no clock, randomness, files or network). Avoid
//! `std::collections::HashMap` with its default hasher (it asks the host for random
//! seeds) and `SystemTime::now`: use `BTreeMap` and [`Context::now`].

// The generated bindings and the export macro refer to this crate by name.
extern crate self as periscope_plugin_sdk;

mod meta;
pub mod quantity;
mod status;
mod timestamp;
mod values;

#[doc(hidden)]
pub mod glue;
#[cfg(not(target_arch = "wasm32"))]
pub mod golden;

pub use meta::{Meta, OwnerReference};
pub use status::{Condition, LoadBalancerIngress, LoadBalancerStatus};
pub use timestamp::Timestamp;
pub use values::{IntOrString, label_selector, nullable};

/// Marks a struct of raw-object fields: every field defaults when it is absent **or
/// `null`**, and the struct records which top-level keys it reads ([`Object::FIELDS`]).
///
/// It derives `Default` and `Deserialize` (unless the struct does already), adds
/// `#[serde(default)]`, and gives every field [`nullable`] unless it has its own
/// `deserialize_with`. serde's `rename`, `rename_all` and `alias` are honoured when
/// naming the keys; a `#[serde(flatten)]` field means the struct reads every key.
/// Put it above the struct's other attributes.
///
/// ```
/// use periscope_plugin_sdk::{Meta, Object, object};
///
/// #[object]
/// #[derive(Debug)]
/// #[serde(rename_all = "camelCase")]
/// pub struct Widget {
///     metadata: Meta,
///     spec: WidgetSpec,
///     last_seen: String,
/// }
///
/// #[object]
/// #[derive(Debug)]
/// struct WidgetSpec {
///     size: i64,
/// }
///
/// let w: Widget = serde_json::from_str(r#"{"spec": null, "lastSeen": null}"#).unwrap();
/// assert_eq!(w.spec.size, 0);
/// assert_eq!(Widget::FIELDS, ["metadata", "spec", "lastSeen"]);
/// ```
pub use periscope_plugin_sdk_macros::object;

/// What [`object`] expands to refers to serde through this path, so a plugin needs no
/// particular serde import for it.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

/// A raw object a [`Mapper`] deserializes, and the top-level keys it reads.
///
/// [`object`] implements it. Unless [`Mapper::FIELDS`] says more precisely, the host
/// drops every other top-level key (`apiVersion`, `kind` and `metadata` always stay)
/// before an object crosses into the plugin, which saves copying large `status` or
/// `data` blocks a kind never shows.
pub trait Object: serde::de::DeserializeOwned {
    /// The top-level keys read; empty means every key (nothing is dropped).
    const FIELDS: &'static [&'static str];
}

/// A mapping that wants the whole object.
impl Object for serde_json::Value {
    const FIELDS: &'static [&'static str] = &[];
}

/// A mapping that reads nothing of the object (it is passed whole).
impl Object for serde::de::IgnoredAny {
    const FIELDS: &'static [&'static str] = &[];
}

/// The version of the `periscope:plugin` WIT package this SDK builds: the SDK's own
/// version, by rule (the `wit_versions_agree` integration test ties it to
/// `wit/since_v<version>/plugin.wit` and to the host's supported range).
pub const WIT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Generated WIT bindings; plugins use [`Mapper`] and [`export_mapper!`] instead.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code)] // generated code: raw canonical-ABI glue, no docs
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "kind-plugin",
        pub_export_macro: true,
        export_macro_name: "export_kind_plugin",
        default_bindings_module: "periscope_plugin_sdk::bindings",
        runtime_path: "periscope_plugin_sdk::bindings::wit_bindgen_rt::rt",
    });
    pub use wit_bindgen as wit_bindgen_rt;
}

/// How the host orders and trims a snapshot of this kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Top-level DTO key holding an RFC 3339 timestamp to sort by.
    pub sort_field: &'static str,
    /// True to put the newest first; the zero time always sorts last.
    pub descending: bool,
    /// Keep at most this many items after sorting.
    pub cap: Option<u32>,
}

/// Which Kubernetes kind a plugin maps and how the host serves it.
///
/// Start from [`KindInfo::namespaced`] or [`KindInfo::cluster_scoped`], which use the
/// plural as the URL token and the polling list key, and override what differs:
///
/// ```
/// use periscope_plugin_sdk::KindInfo;
///
/// let info = KindInfo::namespaced("workloads", "apps/v1", "ReplicaSet", "replicasets").with_list_key("replicaSets");
/// assert_eq!((info.token, info.api_group, info.api_version), ("replicasets", "apps", "v1"));
/// ```
///
/// The keys the mapping reads (`kind-info.fields` on the wire) are not written here:
/// they come from the [`Mapper::Object`] type ([`Object::FIELDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    /// URL token and watch kind name, the lowercase plural (`pods`).
    pub token: &'static str,
    /// Group alias operators enable it by (`core`, `workloads`, …).
    pub group_alias: &'static str,
    /// Kubernetes API group; empty for the core group.
    pub api_group: &'static str,
    /// Kubernetes API version (`v1`).
    pub api_version: &'static str,
    /// Kubernetes kind (`Pod`).
    pub kind: &'static str,
    /// Resource plural in the API path (`pods`).
    pub plural: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Key of the polling response wrapper (`pods`, `replicaSets`).
    pub list_key: &'static str,
    /// Snapshot ordering and cap; `None` keeps list order and every item.
    pub snapshot: Option<SnapshotPolicy>,
}

impl KindInfo {
    /// A namespaced kind in group alias `group_alias`; `api_version` is `group/version`
    /// (`apps/v1`), or just the version for the core group (`v1`). Token and list key
    /// are the plural; there is no snapshot policy.
    pub fn namespaced(
        group_alias: &'static str,
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> KindInfo {
        let (api_group, api_version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        KindInfo {
            token: plural,
            group_alias,
            api_group,
            api_version,
            kind,
            plural,
            namespaced: true,
            list_key: plural,
            snapshot: None,
        }
    }

    /// A cluster-scoped kind; otherwise as [`KindInfo::namespaced`].
    pub fn cluster_scoped(
        group_alias: &'static str,
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> KindInfo {
        KindInfo {
            namespaced: false,
            ..KindInfo::namespaced(group_alias, api_version, kind, plural)
        }
    }

    /// Another URL token than the plural.
    #[must_use]
    pub fn with_token(self, token: &'static str) -> KindInfo {
        KindInfo { token, ..self }
    }

    /// Another polling list key than the plural (`replicaSets`, `hpas`).
    #[must_use]
    pub fn with_list_key(self, list_key: &'static str) -> KindInfo {
        KindInfo { list_key, ..self }
    }

    /// A snapshot order and cap.
    #[must_use]
    pub fn with_snapshot(self, snapshot: SnapshotPolicy) -> KindInfo {
        KindInfo {
            snapshot: Some(snapshot),
            ..self
        }
    }
}

/// What the host passes to every mapping call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The current time, from the host: plugins have no clock.
    pub now: Timestamp,
}

/// Why an object could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The input was not the JSON object this plugin expects.
    Malformed(String),
    /// The object is valid but this plugin cannot represent it.
    Unsupported(String),
}

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapError::Malformed(m) => write!(f, "malformed object: {m}"),
            MapError::Unsupported(m) => write!(f, "unsupported object: {m}"),
        }
    }
}

impl std::error::Error for MapError {}

/// The mapping of one Kubernetes kind, as plain Rust.
pub trait Mapper {
    /// The fields of the raw object this mapping reads; everything else is ignored
    /// (and dropped by the host before the call). Mark it with [`object`].
    type Object: Object;
    /// The summary DTO, serialized in field order.
    type Dto: serde::Serialize;

    /// What of the raw object crosses into the plugin (`kind-info.fields`): by default
    /// the top-level keys [`Self::Object`] reads. A mapping that reads little of large
    /// values names nested paths instead (`spec.containers[].name`; grammar in
    /// `wit/since_v0.1.0/plugin.wit`), and the host drops the rest before the call, so
    /// the guest parses less. Every key and helper (such as [`Meta`]) the mapping reads
    /// must be covered; [`golden_tests!`] checks the top-level keys against
    /// [`Self::Object`] and that every golden case maps the same with and without
    /// pruning.
    const FIELDS: &'static [&'static str] = <Self::Object as Object>::FIELDS;

    /// Describes the kind.
    fn info() -> KindInfo;

    /// Maps one object.
    fn map(object: Self::Object, ctx: &Context) -> Result<Self::Dto, MapError>;

    /// Parses and maps one object from JSON to JSON; what the component export calls.
    fn map_json(object: &str, ctx: &Context) -> Result<String, MapError> {
        let object: Self::Object = serde_json::from_str(object).map_err(|e| MapError::Malformed(e.to_string()))?;
        let dto = Self::map(object, ctx)?;
        serde_json::to_string(&dto).map_err(|e| MapError::Unsupported(e.to_string()))
    }
}

/// Adds the test that maps every case in the crate's `golden/` directory natively,
/// through the host's stripping, and compares it with the expected DTO
/// ([`golden::check`]).
///
/// ```ignore
/// periscope_plugin_sdk::golden_tests!(Pods);
/// ```
#[macro_export]
macro_rules! golden_tests {
    ($mapper:ident) => {
        #[cfg(test)]
        mod golden_tests {
            #[test]
            fn golden_cases_match() {
                $crate::golden::check::<super::$mapper>(
                    &::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden"),
                );
            }

            #[test]
            fn declared_fields_cover_the_object() {
                $crate::golden::check_fields::<super::$mapper>();
            }
        }
    };
}

/// Exports a [`Mapper`] as the component's `periscope:plugin/mapper` interface.
///
/// ```ignore
/// struct Pods;
/// impl periscope_plugin_sdk::Mapper for Pods { /* … */ }
/// periscope_plugin_sdk::export_mapper!(Pods);
/// ```
#[macro_export]
macro_rules! export_mapper {
    ($mapper:ty) => {
        // Only the component needs the exports; a native build (unit tests) would fail
        // to link symbols named like `periscope:plugin/mapper@0.1.0#to-dto`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __periscope_export {
        #[allow(unused_imports)]
        use super::*;

        pub struct __PeriscopeExport;

        impl $crate::bindings::exports::periscope::plugin::mapper::Guest for __PeriscopeExport {
            fn info() -> $crate::bindings::exports::periscope::plugin::mapper::KindInfo {
                $crate::glue::info::<$mapper>()
            }
            fn to_dto(
                object: ::std::string::String,
                ctx: $crate::bindings::exports::periscope::plugin::mapper::Context,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::exports::periscope::plugin::mapper::MapError,
            > {
                $crate::glue::to_dto::<$mapper>(&object, ctx)
            }
            fn to_dto_batch(
                objects: ::std::vec::Vec<::std::string::String>,
                ctx: $crate::bindings::exports::periscope::plugin::mapper::Context,
            ) -> ::std::vec::Vec<
                ::std::result::Result<
                    ::std::string::String,
                    $crate::bindings::exports::periscope::plugin::mapper::MapError,
                >,
            > {
                $crate::glue::to_dto_batch::<$mapper>(&objects, ctx)
            }
        }

        $crate::bindings::export_kind_plugin!(__PeriscopeExport with_types_in $crate::bindings);
        }
    };
}
