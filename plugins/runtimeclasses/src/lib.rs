//! Kind plugin for node.k8s.io/v1 `RuntimeClass` → the SPA's RuntimeClass summary
//! (`spec/dtos.md` 4.22).
//!
//! A RuntimeClass has no `spec`: `handler` and `overhead` sit at the top level. It is
//! cluster-scoped, so the DTO has no `namespace` key. The overhead quantities pass
//! through verbatim (the apiserver already writes them in canonical form, spec 1.3) and,
//! unlike most optional DTO fields, are always present: `""` when absent.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The runtimeclasses mapper.
pub struct RuntimeClasses;

/// The fields of a RuntimeClass this plugin reads.
#[object]
#[derive(Debug)]
pub struct RuntimeClass {
    metadata: Meta,
    handler: String,
    overhead: Overhead,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct Overhead {
    pod_fixed: PodFixed,
}

/// `overhead.podFixed`; only CPU and memory are summarised.
#[object]
#[derive(Debug)]
struct PodFixed {
    cpu: String,
    memory: String,
}

/// The RuntimeClass summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeClassDto {
    name: String,
    created_at: Timestamp,
    handler: String,
    cpu_overhead: String,
    memory_overhead: String,
}

impl Mapper for RuntimeClasses {
    type Object = RuntimeClass;
    type Dto = RuntimeClassDto;

    fn info() -> KindInfo {
        KindInfo::cluster_scoped("cluster", "node.k8s.io/v1", "RuntimeClass", "runtimeclasses")
            .with_list_key("runtimeClasses")
    }

    fn map(class: RuntimeClass, _ctx: &Context) -> Result<RuntimeClassDto, MapError> {
        let PodFixed { cpu, memory } = class.overhead.pod_fixed;
        Ok(RuntimeClassDto {
            name: class.metadata.name,
            created_at: class.metadata.creation_timestamp,
            handler: class.handler,
            cpu_overhead: cpu,
            memory_overhead: memory,
        })
    }
}

export_mapper!(RuntimeClasses);

periscope_plugin_sdk::golden_tests!(RuntimeClasses);
