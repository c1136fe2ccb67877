//! Kind plugin for batch/v1 `CronJob` → the SPA's CronJob summary (`spec/dtos.md` 4.8).
//!
//! A straight projection; the one wire quirk is `lastScheduleTime`, the only summary
//! timestamp that is omitted (not the zero time) when the source lacks it.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, nullable};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// The cronjobs mapper.
pub struct CronJobs;

/// The fields of a CronJob this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CronJob {
    #[serde(deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    spec: CronJobSpec,
    #[serde(deserialize_with = "nullable")]
    status: CronJobStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CronJobSpec {
    #[serde(deserialize_with = "nullable")]
    schedule: String,
    #[serde(deserialize_with = "nullable")]
    suspend: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CronJobStatus {
    #[serde(deserialize_with = "nullable")]
    active: Vec<IgnoredAny>,
    last_schedule_time: Timestamp,
}

/// The CronJob summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronJobDto {
    name: String,
    namespace: String,
    schedule: String,
    suspend: bool,
    active: usize,
    #[serde(skip_serializing_if = "Timestamp::is_zero")]
    last_schedule_time: Timestamp,
    created_at: Timestamp,
}

impl Mapper for CronJobs {
    type Object = CronJob;
    type Dto = CronJobDto;

    fn info() -> KindInfo {
        KindInfo {
            token: "cronjobs",
            group_alias: "workloads",
            api_group: "batch",
            api_version: "v1",
            kind: "CronJob",
            plural: "cronjobs",
            namespaced: true,
            list_key: "cronJobs",
            snapshot: None,
            fields: &["metadata", "spec", "status"],
        }
    }

    fn map(cron: CronJob, _ctx: &Context) -> Result<CronJobDto, MapError> {
        Ok(CronJobDto {
            name: cron.metadata.name,
            namespace: cron.metadata.namespace,
            schedule: cron.spec.schedule,
            suspend: cron.spec.suspend,
            active: cron.status.active.len(),
            last_schedule_time: cron.status.last_schedule_time,
            created_at: cron.metadata.creation_timestamp,
        })
    }
}

export_mapper!(CronJobs);

periscope_plugin_sdk::golden_tests!(CronJobs);
