//! Kind plugin for batch/v1 `CronJob` → the SPA's CronJob summary (`spec/dtos.md` 4.8).
//!
//! A straight projection; the one wire quirk is `lastScheduleTime`, the only summary
//! timestamp that is omitted (not the zero time) when the source lacks it.

use periscope_plugin_sdk::{Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;
use serde::de::IgnoredAny;

/// The cronjobs mapper.
pub struct CronJobs;

/// The fields of a CronJob this plugin reads.
#[object]
#[derive(Debug)]
pub struct CronJob {
    metadata: Meta,
    spec: CronJobSpec,
    status: CronJobStatus,
}

#[object]
#[derive(Debug)]
struct CronJobSpec {
    schedule: String,
    suspend: bool,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct CronJobStatus {
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

    // Not the job template.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "spec.schedule",
        "spec.suspend",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "batch/v1", "CronJob", "cronjobs").with_list_key("cronJobs")
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
