//! Host bindings of the `periscope:plugin` WIT contract, one module per supported
//! version (zed's layout), and the supported range in one place.
//!
//! Only 0.1 exists today. When 0.2 ships, `since_v0_2_0` joins, `latest` moves to it,
//! and calls on 0.1 plugins convert their results with `From` impls.

/// Bindings generated from the frozen `wit/since_v0.1.0` folder.
#[allow(missing_docs)] // generated
pub mod since_v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "kind-plugin",
    });
}

pub use since_v0_1_0 as latest;

use latest::exports::periscope::plugin::mapper;
use wasmtime::AsContextMut;
use wasmtime::component::InstancePre;

/// A component linked and type-checked once, by the contract version it exports.
///
/// The seam for a second contract version (zed's `Extension` enum): `since_v0_2_0`
/// adds a variant here and in [`Bindings`], [`Pre::new`] picks it by the export's
/// version, and [`Bindings`]' methods convert the older results into `latest` types
/// with `From`, so nothing outside this module knows there are two.
pub(crate) enum Pre<T: 'static> {
    /// `periscope:plugin@0.1.x`.
    V0_1(since_v0_1_0::KindPluginPre<T>),
}

/// One instance's typed exports; see [`Pre`].
pub(crate) enum Bindings {
    /// `periscope:plugin@0.1.x`.
    V0_1(since_v0_1_0::KindPlugin),
}

impl<T: Send + 'static> Pre<T> {
    /// The bindings of `version` (already checked by [`is_supported`]) over `pre`.
    pub(crate) fn new(version: Version, pre: InstancePre<T>) -> wasmtime::Result<Pre<T>> {
        match (version.major, version.minor) {
            (0, 1) => Ok(Pre::V0_1(since_v0_1_0::KindPluginPre::new(pre)?)),
            _ => Err(wasmtime::Error::msg(format!(
                "this host has no bindings for {PACKAGE}@{version}"
            ))),
        }
    }

    /// A new instance in `store`.
    pub(crate) fn instantiate(&self, store: impl AsContextMut<Data = T>) -> wasmtime::Result<Bindings> {
        match self {
            Pre::V0_1(pre) => pre.instantiate(store).map(Bindings::V0_1),
        }
    }
}

impl Bindings {
    /// `info`.
    pub(crate) fn info(&self, store: impl AsContextMut) -> wasmtime::Result<mapper::KindInfo> {
        match self {
            Bindings::V0_1(b) => b.periscope_plugin_mapper().call_info(store),
        }
    }

    /// `to-dto`.
    pub(crate) fn to_dto(
        &self,
        store: impl AsContextMut,
        object: &str,
        ctx: mapper::Context,
    ) -> wasmtime::Result<Result<String, mapper::MapError>> {
        match self {
            Bindings::V0_1(b) => b.periscope_plugin_mapper().call_to_dto(store, object, ctx),
        }
    }

    /// `to-dto-batch`.
    pub(crate) fn to_dto_batch(
        &self,
        store: impl AsContextMut,
        objects: &[String],
        ctx: mapper::Context,
    ) -> wasmtime::Result<Vec<Result<String, mapper::MapError>>> {
        match self {
            Bindings::V0_1(b) => b.periscope_plugin_mapper().call_to_dto_batch(store, objects, ctx),
        }
    }
}

/// The WIT package every kind plugin must export.
pub const PACKAGE: &str = "periscope:plugin";
/// The interface, whose versioned export name (`periscope:plugin/mapper@0.1.0`) the host
/// reads before instantiating anything.
pub const INTERFACE: &str = "mapper";

/// A `major.minor.patch` version of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl Version {
    /// Parses `X.Y.Z`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
        let version = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest contract version this host loads.
pub const MIN_VERSION: Version = Version {
    major: 0,
    minor: 1,
    patch: 0,
};
/// The newest contract version this host loads.
pub const MAX_VERSION: Version = Version {
    major: 0,
    minor: 1,
    patch: 0,
};

/// True when a plugin built against `version` can be loaded.
pub fn is_supported(version: Version) -> bool {
    (MIN_VERSION..=MAX_VERSION).contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(Version::parse("0.1.0"), Some(MIN_VERSION));
        assert_eq!(Version::parse("0.1"), None);
        assert_eq!(Version::parse("0.1.0.1"), None);
        assert!(is_supported(Version::parse("0.1.0").unwrap()));
        assert!(!is_supported(Version::parse("0.2.0").unwrap()));
    }
}
