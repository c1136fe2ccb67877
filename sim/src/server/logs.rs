//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: `container`, `follow`, `tailLines`,
//! `timestamps` and `sinceSeconds`, like the kubelet's log endpoint behind the
//! apiserver.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::Ctx;
use super::request::{Params, Target, flag, number};
use crate::logs::ContainerLog;
use crate::meta;
use crate::status::ApiError;
use crate::store::ObjKey;

pub(super) async fn logs(ctx: Ctx, target: Target, params: Params) -> Response {
    match start(ctx, target, params) {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain")], body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Finds the container's current log, or the error the kubelet would give.
fn container_log(ctx: &Ctx, pod: &Value, container: Option<&str>) -> Result<ContainerLog, ApiError> {
    let pod_name = meta::name(pod);
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let container = match container {
        Some(c) => c,
        None if names.len() == 1 => names[0],
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let init_names = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(container))
        })
        .unwrap_or(false);
    if !names.contains(&container) && !init_names {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    }
    let status = ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let time = |v: Option<&Value>| v.and_then(Value::as_str).and_then(meta::parse_timestamp);
    let state = status.and_then(|s| s.get("state"));
    let (start, end) = if let Some(running) = state.and_then(|s| s.get("running")) {
        (time(running.get("startedAt")), None)
    } else if let Some(terminated) = state.and_then(|s| s.get("terminated")) {
        (time(terminated.get("startedAt")), time(terminated.get("finishedAt")))
    } else {
        let reason = state
            .and_then(|s| s.pointer("/waiting/reason"))
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )));
    };
    let start = start
        .or_else(|| time(pod.pointer("/status/startTime")))
        .or_else(|| time(pod.pointer("/metadata/creationTimestamp")))
        .unwrap_or_else(OffsetDateTime::now_utc);
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    Ok(ContainerLog::new(ctx.seed, uid, container, start).ending_at(end))
}

fn render(log: &ContainerLog, i: u64, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", meta::log_timestamp(log.time_of(i)), log.line(i))
    } else {
        format!("{}\n", log.line(i))
    }
}

fn start(ctx: Ctx, target: Target, params: Params) -> Result<Body, ApiError> {
    let rt = target.rt();
    let name = target.name.clone().unwrap_or_default();
    let key = ObjKey {
        namespace: target.namespace.clone().unwrap_or_default(),
        name: name.clone(),
    };
    let pod = ctx
        .store
        .get(target.resource, &key)
        .ok_or_else(|| ApiError::not_found(rt, &name))?;
    let log = container_log(&ctx, &pod, params.get("container").map(String::as_str))?;
    let tail: Option<i64> = number(&params, "tailLines")?;
    let since: Option<i64> = number(&params, "sinceSeconds")?;
    let timestamps = flag(&params, "timestamps");
    let follow = flag(&params, "follow");
    let now = OffsetDateTime::now_utc();
    let range = log.selection(
        now,
        tail.map(|t| u64::try_from(t).unwrap_or(0)),
        since.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))),
    );
    let mut backlog = String::new();
    for i in range.clone() {
        backlog.push_str(&render(&log, i, timestamps));
    }
    if !follow || log.ended(now) {
        return Ok(Body::from(backlog));
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let uid = pod.pointer("/metadata/uid").cloned();
    let resource = target.resource;
    let store = ctx.store.clone();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        if !backlog.is_empty() && tx.send(Bytes::from(backlog)).await.is_err() {
            return;
        }
        let mut next = range.end;
        loop {
            let due = log.time_of(next);
            let wait = (due - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            let wait = Duration::try_from(wait).unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
            // The stream ends when the pod is gone or replaced, as the kubelet's does.
            let same_pod = store
                .get(resource, &key)
                .is_some_and(|p| p.pointer("/metadata/uid").cloned() == uid);
            if !same_pod || log.ended(OffsetDateTime::now_utc()) {
                return;
            }
            if tx.send(Bytes::from(render(&log, next, timestamps))).await.is_err() {
                return;
            }
            next += 1;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|line| line.map(Ok::<_, Infallible>)));
    Ok(Body::from_stream(stream))
}
