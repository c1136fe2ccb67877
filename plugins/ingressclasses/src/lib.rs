//! Kind plugin for networking.k8s.io/v1 `IngressClass` → the SPA's IngressClass summary
//! (`spec/dtos.md` 4.15).
//!
//! Cluster-scoped, so the DTO has no `namespace` key. `isDefault` reflects the
//! `ingressclass.kubernetes.io/is-default-class` annotation, compared case-sensitively.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The annotation that marks the cluster's default IngressClass.
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The ingressclasses mapper.
pub struct IngressClasses;

/// The fields of an IngressClass this plugin reads.
#[object]
#[derive(Debug)]
pub struct IngressClass {
    metadata: Meta,
    spec: IngressClassSpec,
}

#[object]
#[derive(Debug)]
struct IngressClassSpec {
    controller: String,
}

/// The IngressClass summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassDto {
    name: String,
    created_at: Timestamp,
    controller: String,
    is_default: bool,
}

impl Mapper for IngressClasses {
    type Object = IngressClass;
    type Dto = IngressClassDto;

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("networking", "networking.k8s.io/v1", "IngressClass", "ingressclasses")
            .with_list_key("ingressClasses")
    }

    fn map(class: IngressClass, _ctx: &Context) -> Result<IngressClassDto, MapError> {
        // Exactly "true": "True", "TRUE" or "1" do not make a class the default.
        let is_default = class.metadata.annotation(DEFAULT_CLASS_ANNOTATION) == Some("true");
        Ok(IngressClassDto {
            name: class.metadata.name,
            created_at: class.metadata.creation_timestamp,
            controller: class.spec.controller,
            is_default,
        })
    }
}

export_mapper!(IngressClasses);

periscope_plugin_sdk::golden_tests!(IngressClasses);
