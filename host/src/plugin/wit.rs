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
