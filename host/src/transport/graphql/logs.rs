//! `k8sPodLogs`: one container's log through the hub's log streams
//! ([`crate::hub::logs`]): the last `tailLines` lines, then (with `follow`) the live
//! tail shared by every follower of that container, until the log ends.
//!
//! The operation needs `get` on `pods/log` in the namespace (a SubjectAccessReview
//! when RBAC is on) and counts against the per-user cap; its policies (expiry,
//! revocation, lifetime, shutdown, RBAC re-checks) are a [`Lease`]'s. An unknown pod
//! or container is `NOT_FOUND`, naming it; the end of the log (`follow: false` after
//! the backfill, a deleted pod, a finished container) is `complete`.

use async_graphql::futures_util::stream::BoxStream;
use futures::StreamExt;

use super::schema::{self, EventLevel, LogLine, OperationContext, TRANSPORT, coded, end_error};
use crate::hub::StreamKey;
use crate::hub::logs::{Level, LogError, LogEvent};
use crate::transport::session::{Lease, LeaseScope};

/// The most lines one operation may backfill.
pub const MAX_TAIL_LINES: i32 = 10_000;

/// What a log operation asks for.
#[derive(Debug, Clone)]
pub struct LogRequest {
    /// The configured cluster.
    pub cluster: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container; `None`: the first of the pod's spec.
    pub container: Option<String>,
    /// Lines to backfill.
    pub tail_lines: i32,
    /// Whether to follow the live tail after the backfill.
    pub follow: bool,
}

fn level(level: Level) -> EventLevel {
    match level {
        Level::Info => EventLevel::Info,
        Level::Warn => EventLevel::Warn,
        Level::Error => EventLevel::Error,
    }
}

fn log_error(error: LogError) -> async_graphql::Error {
    let code = match &error {
        LogError::UnknownCluster | LogError::UnknownPod { .. } | LogError::UnknownContainer { .. } => "NOT_FOUND",
        LogError::Upstream { .. } => "UPSTREAM_ERROR",
        LogError::Timeout { .. } => "UNAVAILABLE",
    };
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    coded(code, message)
}

/// Validates the request, opens the lease and the log, and returns the records.
pub async fn stream(
    context: &OperationContext,
    request: LogRequest,
) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<LogLine>>> {
    if !(0..=MAX_TAIL_LINES).contains(&request.tail_lines) {
        return Err(coded(
            "BAD_REQUEST",
            format!("tailLines: must be between 0 and {MAX_TAIL_LINES}"),
        ));
    }
    let tail = u32::try_from(request.tail_lines).unwrap_or(0);
    let scope = LeaseScope {
        key: StreamKey {
            cluster: request.cluster.clone(),
            kind: "pods/log".to_string(),
            namespace: Some(request.namespace.clone()),
            selector: None,
        },
        group: String::new(),
        plural: "pods/log".to_string(),
        verbs: &["get"],
    };
    let mut lease = Lease::open(
        &context.state,
        context.actor.clone(),
        TRANSPORT,
        scope,
        context.max_duration,
    )
    .await
    .map_err(schema::open_error)?;
    let logs = context.state.hub.logs().clone();
    let key = logs
        .resolve(
            &request.cluster,
            &request.namespace,
            &request.pod,
            request.container.as_deref(),
        )
        .await
        .map_err(log_error)?;
    let lines = lease
        .guard(logs.open(key.clone(), tail, request.follow))
        .await
        .map_err(|end| end_error(end).unwrap_or_else(|| coded("UNAVAILABLE", "the operation ended")))?
        .map_err(log_error)?;
    let (pod, container) = (key.pod, key.container);
    Ok(futures::stream::unfold(Some((lease, lines)), move |state| {
        let (pod, container) = (pod.clone(), container.clone());
        async move {
            let (mut lease, mut lines) = state?;
            match lease.guard(lines.next()).await {
                Ok(Some(LogEvent::Line(line))) => {
                    lease.sent();
                    let record = LogLine {
                        pod,
                        container,
                        timestamp: line.timestamp.clone(),
                        level: level(line.level),
                        message: line.message.clone(),
                    };
                    Some((Ok(record), Some((lease, lines))))
                }
                Ok(Some(LogEvent::Lagged)) => {
                    lease.close("backpressure");
                    Some((
                        Err(coded("BACKPRESSURE", "the client fell behind; subscribe again")),
                        None,
                    ))
                }
                Ok(Some(LogEvent::Failed(message))) => {
                    lease.close("error");
                    Some((Err(coded("UPSTREAM_ERROR", message)), None))
                }
                Ok(None) => {
                    lease.close("log_ended");
                    None
                }
                Err(end) => end_error(end).map(|error| (Err(error), None)),
            }
        }
    })
    .boxed())
}
