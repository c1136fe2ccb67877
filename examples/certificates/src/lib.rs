//! Example kind plugin for a custom resource: cert-manager's `Certificate`
//! (`cert-manager.io/v1`), outside the bundled set. It is what
//! `docs/plugin-authors/README.md` walks through: drop the component in the plugin
//! directory and `certificates` streams like any bundled kind.
//!
//! The summary says whether the certificate is ready (the `Ready` condition, with its
//! reason), when it expires and is due for renewal, who issues it and which Secret
//! holds it.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The certificates mapper.
pub struct Certificates;

/// The fields of a Certificate this plugin reads; the host passes nothing else.
#[object]
#[derive(Debug)]
pub struct Certificate {
    metadata: Meta,
    spec: CertificateSpec,
    status: CertificateStatus,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    issuer_ref: IssuerRef,
    dns_names: Vec<String>,
}

#[object]
#[derive(Debug)]
struct IssuerRef {
    name: String,
    kind: String,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct CertificateStatus {
    conditions: Vec<Condition>,
    not_after: Timestamp,
    renewal_time: Timestamp,
}

/// cert-manager's conditions carry a reason worth showing (`Issuing`, `Failed`…).
#[object]
#[derive(Debug)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
    reason: String,
}

/// The Certificate summary, keys in this order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDto {
    name: String,
    namespace: String,
    created_at: Timestamp,
    /// The `Ready` condition's status: `True`, `False`, or `Unknown` when absent.
    ready: String,
    /// The `Ready` condition's reason; empty when absent.
    reason: String,
    /// `<kind>/<name>` of the issuer; cert-manager's default kind is `Issuer`.
    issuer: String,
    secret_name: String,
    dns_names: Vec<String>,
    /// Expiry of the current certificate; the zero time before one is issued.
    not_after: Timestamp,
    renewal_time: Timestamp,
}

impl Mapper for Certificates {
    type Object = Certificate;
    type Dto = CertificateDto;

    fn info() -> KindInfo {
        KindInfo::namespaced("cert-manager", "cert-manager.io/v1", "Certificate", "certificates")
    }

    fn map(cert: Certificate, _ctx: &Context) -> Result<CertificateDto, MapError> {
        let Certificate { metadata, spec, status } = cert;
        let ready = status.conditions.into_iter().find(|c| c.kind == "Ready");
        let issuer_kind = if spec.issuer_ref.kind.is_empty() {
            "Issuer"
        } else {
            spec.issuer_ref.kind.as_str()
        };
        Ok(CertificateDto {
            name: metadata.name,
            namespace: metadata.namespace,
            created_at: metadata.creation_timestamp,
            ready: ready
                .as_ref()
                .map_or_else(|| "Unknown".to_string(), |c| c.status.clone()),
            reason: ready.map(|c| c.reason).unwrap_or_default(),
            issuer: format!("{issuer_kind}/{}", spec.issuer_ref.name),
            secret_name: spec.secret_name,
            dns_names: spec.dns_names,
            not_after: status.not_after,
            renewal_time: status.renewal_time,
        })
    }
}

export_mapper!(Certificates);

periscope_plugin_sdk::golden_tests!(Certificates);
