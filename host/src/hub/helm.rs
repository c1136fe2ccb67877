//! Helm 3 release records, read from the Secrets helm stores each revision in.
//!
//! Helm writes revision `N` of release `R` as the Secret `sh.helm.release.v1.R.vN`
//! (type `helm.sh/release.v1`, labels `owner=helm,name=R,status=…,version=N`). Its data
//! key `release` is base64 of gzip of the release JSON; through the API, where secret
//! data is base64 itself, that is base64 twice. Gzip is recognised by its magic bytes
//! (`1f 8b 08`); data without them is plain JSON.
//!
//! The view [`RELEASES`] maps each such Secret, once per change and for every
//! subscriber of the scope, into a compact record (`{"secret", "namespace",
//! "release": {…}}`). A Secret that cannot be decoded is a record too (`{"secret",
//! "namespace", "error"}`): the hub cannot end one operation, and leaving the object
//! out would hide the failure, so the operation that follows the release reports it
//! as its `error` (spec: "reported as an `error` for that operation").

use std::io::Read;

use base64::Engine;
use serde_json::{Value, json};

/// The view token of release Secrets (always with a label selector).
pub const RELEASES: &str = "helm:releases";

/// The label selector of one release's Secrets.
pub fn selector(release: &str) -> String {
    format!("owner=helm,name={release}")
}

/// Gzip's magic bytes (and deflate as the method).
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// A decompressed release larger than this is refused (a zip bomb in a Secret).
const MAX_RELEASE_BYTES: u64 = 64 << 20;

/// Why a release Secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The Secret has no `data.release`.
    #[error("no data.release key")]
    Missing,
    /// A base64 layer is not base64.
    #[error("data.release is not base64 ({layer} layer)")]
    Base64 {
        /// `api` (the Secret's own encoding) or `helm` (helm's).
        layer: &'static str,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },
    /// The gzip stream is broken.
    #[error("data.release is not valid gzip")]
    Gzip(#[source] std::io::Error),
    /// The release is not JSON.
    #[error("the release is not JSON")]
    Json(#[source] serde_json::Error),
}

/// The release JSON inside `secret`'s `data.release` (API base64, helm base64, gzip
/// by magic bytes, JSON).
pub fn decode(secret: &Value) -> Result<Value, DecodeError> {
    let data = secret["data"]["release"].as_str().ok_or(DecodeError::Missing)?;
    let engine = base64::engine::general_purpose::STANDARD;
    let helm = engine
        .decode(data.trim())
        .map_err(|source| DecodeError::Base64 { layer: "api", source })?;
    let packed = engine
        .decode(helm.trim_ascii())
        .map_err(|source| DecodeError::Base64 { layer: "helm", source })?;
    let json = if packed.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .take(MAX_RELEASE_BYTES)
            .read_to_end(&mut out)
            .map_err(DecodeError::Gzip)?;
        out
    } else {
        packed
    };
    serde_json::from_slice(&json).map_err(DecodeError::Json)
}

/// An RFC 3339 UTC timestamp from Go's time encoding; `None` for the zero time or
/// anything unparsable.
fn timestamp(value: &Value) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()?;
    if parsed.year() <= 1 {
        return None;
    }
    parsed.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
}

/// The fields of a release JSON that `k8sHelmReleaseStatus` reports.
pub fn fields(release: &Value) -> Value {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let info = &release["info"];
    let chart = &release["chart"]["metadata"];
    json!({
        "name": text(&release["name"]),
        "namespace": text(&release["namespace"]),
        "revision": release["version"].as_i64().unwrap_or(0),
        "status": text(&info["status"]),
        "firstDeployed": timestamp(&info["first_deployed"]),
        "lastDeployed": timestamp(&info["last_deployed"]),
        "description": text(&info["description"]),
        "chart": text(&chart["name"]),
        "chartVersion": text(&chart["version"]),
        "appVersion": text(&chart["appVersion"]),
    })
}

/// The view's record of one release Secret.
pub(super) fn release_record(secret: &Value) -> Value {
    let name = &secret["metadata"]["name"];
    let namespace = &secret["metadata"]["namespace"];
    match decode(secret) {
        Ok(release) => json!({"secret": name, "namespace": namespace, "release": fields(&release)}),
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            json!({"secret": name, "namespace": namespace, "error": message})
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;

    fn release_json() -> Value {
        json!({
            "name": "web", "namespace": "shop", "version": 2,
            "info": {"status": "deployed", "first_deployed": "2026-05-01T12:00:00.5+02:00",
                     "last_deployed": "2026-05-01T12:30:00Z", "deleted": "", "description": "Upgrade complete"},
            "chart": {"metadata": {"name": "demo", "version": "0.1.0", "appVersion": "1.0"}},
        })
    }

    fn secret(inner: &[u8]) -> Value {
        let engine = base64::engine::general_purpose::STANDARD;
        let helm = engine.encode(inner);
        json!({"metadata": {"name": "sh.helm.release.v1.web.v2", "namespace": "shop"},
               "data": {"release": engine.encode(helm)}})
    }

    #[test]
    fn a_gzipped_release_is_decoded_through_both_base64_layers() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release_json().to_string().as_bytes()).unwrap();
        let record = release_record(&secret(&gz.finish().unwrap()));
        let release = &record["release"];
        assert_eq!(release["revision"], 2);
        assert_eq!(release["status"], "deployed");
        assert_eq!(release["chart"], "demo");
        assert_eq!(release["chartVersion"], "0.1.0");
        assert_eq!(release["appVersion"], "1.0");
        assert_eq!(release["firstDeployed"], "2026-05-01T10:00:00.5Z");
        assert_eq!(release["lastDeployed"], "2026-05-01T12:30:00Z");
        assert_eq!(release["description"], "Upgrade complete");
        assert_eq!(record["secret"], "sh.helm.release.v1.web.v2");
    }

    #[test]
    fn plain_json_without_the_gzip_magic_is_read_as_is() {
        let record = release_record(&secret(release_json().to_string().as_bytes()));
        assert_eq!(record["release"]["name"], "web");
    }

    #[test]
    fn undecodable_secrets_are_records_that_say_why() {
        let broken = release_record(&secret(b"\x1f\x8b\x08 not really gzip"));
        assert!(broken["error"].as_str().unwrap().contains("gzip"), "{broken}");
        let not_json = release_record(&secret(b"hello"));
        assert!(not_json["error"].as_str().unwrap().contains("not JSON"), "{not_json}");
        let not_base64 = json!({"metadata": {"name": "x"}, "data": {"release": "%%%"}});
        assert!(
            release_record(&not_base64)["error"]
                .as_str()
                .unwrap()
                .contains("base64")
        );
        let missing = json!({"metadata": {"name": "x"}, "data": {}});
        assert!(
            release_record(&missing)["error"]
                .as_str()
                .unwrap()
                .contains("no data.release")
        );
    }

    #[test]
    fn the_zero_time_is_null() {
        assert_eq!(timestamp(&json!("0001-01-01T00:00:00Z")), None);
        assert_eq!(timestamp(&json!("")), None);
    }
}
