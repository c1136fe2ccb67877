//! Kind plugin for batch/v1 `Job` → the SPA's Job summary (`spec/dtos.md` 4.7).
//!
//! Two derivations carry the logic: [`job_status`] (conditions in list order, then
//! `suspend`, `failed`, `active`) and [`format_duration`] (kubectl-like, truncated to
//! whole units, with an em dash for a job that has not started).

use periscope_plugin_sdk::{Condition, Context, KindInfo, MapError, Mapper, Meta, Timestamp, export_mapper, object};
use serde::Serialize;

/// The jobs mapper.
pub struct Jobs;

/// The fields of a Job this plugin reads.
#[object]
#[derive(Debug)]
pub struct Job {
    metadata: Meta,
    spec: JobSpec,
    status: JobStatus,
}

#[object]
#[derive(Debug)]
struct JobSpec {
    completions: Option<i32>,
    suspend: bool,
}

#[object]
#[derive(Debug)]
#[serde(rename_all = "camelCase")]
struct JobStatus {
    conditions: Vec<Condition>,
    succeeded: i32,
    failed: i32,
    active: i32,
    start_time: Timestamp,
    completion_time: Timestamp,
}

/// The Job summary DTO, keys in wire order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDto {
    name: String,
    namespace: String,
    completions: String,
    status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    duration: String,
    created_at: Timestamp,
}

impl Mapper for Jobs {
    type Object = Job;
    type Dto = JobDto;

    // Not the pod template.
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "spec.completions",
        "spec.suspend",
        "status",
    ];

    fn info() -> KindInfo {
        KindInfo::namespaced("workloads", "batch/v1", "Job", "jobs")
    }

    fn map(job: Job, ctx: &Context) -> Result<JobDto, MapError> {
        let completions = format!("{}/{}", job.status.succeeded, job.spec.completions.unwrap_or(1));
        Ok(JobDto {
            completions,
            status: job_status(&job).to_string(),
            duration: job_duration(&job.status, ctx.now),
            created_at: job.metadata.creation_timestamp,
            name: job.metadata.name,
            namespace: job.metadata.namespace,
        })
    }
}

/// The status column of spec 4.7: the first rule that applies wins.
fn job_status(job: &Job) -> &'static str {
    // 1. The first True condition of a deciding type, in list order.
    let decided = job
        .status
        .conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.kind.as_str() {
            "Failed" => Some("Failed"),
            "Complete" => Some("Complete"),
            "Suspended" => Some("Suspended"),
            _ => None,
        });
    if let Some(status) = decided {
        status
    } else if job.spec.suspend {
        "Suspended"
    } else if job.status.failed > 0 {
        "Failed"
    } else if job.status.active > 0 {
        "Running"
    } else {
        "Pending"
    }
}

/// The duration column: an em dash before the job starts, else start to completion
/// (or to `now` while the job has no completion time).
fn job_duration(status: &JobStatus, now: Timestamp) -> String {
    if status.start_time.is_zero() {
        return "\u{2014}".to_string();
    }
    let end = if status.completion_time.is_zero() {
        now
    } else {
        status.completion_time
    };
    format_duration(end.since(&status.start_time).whole_seconds())
}

/// Formats a duration given in whole seconds, in whole units truncated toward zero:
/// `1d2h`, `1d`, `1h0m`, `3m0s`, `42s`, `0s`; negative input counts as zero.
fn format_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let hours = seconds / 3600;
    let (days, h, m, s) = (hours / 24, hours % 24, (seconds / 60) % 60, seconds % 60);
    if days > 0 {
        if h > 0 {
            format!("{days}d{h}h")
        } else {
            format!("{days}d")
        }
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

export_mapper!(Jobs);

periscope_plugin_sdk::golden_tests!(Jobs);
