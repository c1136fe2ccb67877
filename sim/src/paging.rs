//! `continue` tokens for paged lists.
//!
//! The token has the real apiserver's shape: URL-safe base64 of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<namespace>/<name>\u0000"}`, where `rv` is the
//! resourceVersion of the first page and `start` the key after which the next page
//! begins. Clients treat it as opaque.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::store::ObjKey;

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Where the next page of a list starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// resourceVersion of the list's first page; every page reports it.
    pub rv: u64,
    /// Key of the last object returned; the next page starts after it.
    pub after: ObjKey,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: String,
    rv: u64,
    start: String,
}

/// A `continue` value that this server did not issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("continue key is not valid: {0}")]
pub struct InvalidToken(&'static str);

impl ContinueToken {
    /// Encodes the token for the list's `metadata.continue`.
    pub fn encode(&self) -> String {
        let wire = Wire {
            v: TOKEN_VERSION.to_string(),
            rv: self.rv,
            start: format!("{}/{}\u{0}", self.after.namespace, self.after.name),
        };
        // Serializing a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a `continue` query value.
    pub fn decode(token: &str) -> Result<Self, InvalidToken> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| InvalidToken("not base64"))?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| InvalidToken("not JSON"))?;
        if wire.v != TOKEN_VERSION {
            return Err(InvalidToken("unknown version"));
        }
        let start = wire
            .start
            .strip_suffix('\u{0}')
            .ok_or(InvalidToken("malformed start key"))?;
        let (namespace, name) = start.split_once('/').ok_or(InvalidToken("malformed start key"))?;
        Ok(Self {
            rv: wire.rv,
            after: ObjKey {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let token = ContinueToken {
            rv: 42,
            after: ObjKey {
                namespace: "shop".into(),
                name: "web-1".into(),
            },
        };
        assert_eq!(ContinueToken::decode(&token.encode()), Ok(token.clone()));
        let cluster_scoped = ContinueToken {
            rv: 7,
            after: ObjKey {
                namespace: String::new(),
                name: "node-1".into(),
            },
        };
        assert_eq!(ContinueToken::decode(&cluster_scoped.encode()), Ok(cluster_scoped));
    }

    #[test]
    fn rejects_foreign_tokens() {
        assert!(ContinueToken::decode("not base64!").is_err());
        assert!(ContinueToken::decode(&URL_SAFE_NO_PAD.encode(b"{}")).is_err());
        let wrong_version = URL_SAFE_NO_PAD.encode(br#"{"v":"x","rv":1,"start":"a/b\u0000"}"#);
        assert!(ContinueToken::decode(&wrong_version).is_err());
    }
}
