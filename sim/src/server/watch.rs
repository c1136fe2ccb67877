//! Watches: newline-delimited `{"type","object"}` events over a chunked response.
//!
//! Start semantics follow the real apiserver:
//! - `resourceVersion` unset, `""` or `"0"`: synthetic `ADDED` events for the current
//!   state, then changes after it.
//! - an explicit version: the changes after it, replayed from the history; a version
//!   older than the retained history gets one `ERROR` event carrying a 410 `Expired`
//!   Status, then the stream ends.
//! - `sendInitialEvents=true`: synthetic `ADDED` events, then (with
//!   `allowWatchBookmarks`) a `BOOKMARK` annotated `k8s.io/initial-events-end: "true"`.
//!
//! A watch sends `BOOKMARK` events every `bookmark_interval` when
//! `allowWatchBookmarks` is set, ends after `timeoutSeconds`, when dropped by a fault,
//! at shutdown, when the client goes away, or when its resource stops being served
//! (after the `DELETED` events of a deleted definition's objects). A watch that falls behind the history
//! window gets 410 like a slow etcd watcher.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::Ctx;
use super::request::{Filter, Params, Target, flag, number};
use crate::fault::{ListFailure, OpenWatch};
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::store::{Change, Compacted, EventType};

/// Encodes one watch event line.
pub(crate) fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut line, object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    event_line(
        "BOOKMARK",
        &json!({ "kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata }),
    )
}

fn expired(compacted: Compacted) -> Bytes {
    let status = ApiError::expired(format!(
        "too old resource version: {} ({})",
        compacted.requested, compacted.oldest
    ));
    event_line("ERROR", &status.to_status())
}

/// What a filtered watch sends for one change, if anything.
fn translate<'a>(change: &'a Change, filter: &Filter) -> Option<(EventType, &'a Value)> {
    let now = filter.matches(&change.object);
    let before = change.previous.as_deref().is_some_and(|p| filter.matches(p));
    let kind = match (change.kind, before, now) {
        (EventType::Added, _, true) => EventType::Added,
        (EventType::Deleted, _, true) => EventType::Deleted,
        (EventType::Modified, true, true) => EventType::Modified,
        (EventType::Modified, false, true) => EventType::Added,
        (EventType::Modified, true, false) => EventType::Deleted,
        _ => return None,
    };
    Some((kind, &change.object))
}

/// Serves a watch request.
pub(super) async fn watch(ctx: Ctx, target: Target, params: Params) -> Response {
    match start(ctx, target, params) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache, private"),
            ],
            body,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

fn start(ctx: Ctx, target: Target, params: Params) -> Result<Body, ApiError> {
    let filter = Filter::from_params(&target, &params)?;
    let timeout: Option<u64> = number(&params, "timeoutSeconds")?;
    let bookmarks = flag(&params, "allowWatchBookmarks");
    let send_initial = flag(&params, "sendInitialEvents");
    if send_initial {
        streaming_list_allowed(&ctx, &params)?;
    }
    let rv = params.get("resourceVersion").map(String::as_str).unwrap_or("");
    let start_rv: Option<u64> = match rv {
        "" | "0" => None,
        v => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion for watch: {v:?}")))?,
        ),
    };
    let rt = target.rt.clone();
    let guard = ctx.faults.watch_opened(target.resource);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    if ctx.faults.take_watch_expiry() {
        tracing::debug!(resource = %rt.plural, "injected watch expiry");
        let requested = start_rv.unwrap_or_default();
        let line = expired(Compacted {
            requested,
            oldest: ctx.store.current_rv() + 1,
        });
        return Ok(body(rx_from(line), guard));
    }
    let session = Session {
        ctx,
        target,
        filter,
        bookmarks,
        initial: start_rv.is_none() || send_initial,
        initial_end_marker: send_initial && bookmarks,
        start_rv,
        deadline: timeout.map(|t| Instant::now() + Duration::from_secs(t)),
        tx,
    };
    tracing::debug!(resource = %rt.plural, rv, bookmarks, send_initial, "watch opened");
    tokio::spawn(session.run());
    Ok(body(rx, guard))
}

/// Validates a streaming list (WatchList) as kube-apiserver's `ValidateListOptions`
/// does, counts it, and applies the faults a list would get: its first state is a
/// list.
fn streaming_list_allowed(ctx: &Ctx, params: &Params) -> Result<(), ApiError> {
    let invalid = ApiError::forbidden_list_option;
    if ctx.faults.refuses_watch_list() {
        // An apiserver without the WatchList feature (before 1.27, or the gate off).
        return Err(invalid(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch",
        ));
    }
    if params.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
        return Err(invalid(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    ctx.faults.count_watch_list();
    if let Some(failure) = ctx.faults.take_list_failure() {
        tracing::debug!(?failure, "injected list failure on a streaming list");
        return Err(match failure {
            ListFailure::InternalError => ApiError::internal("injected fault: list failed"),
            ListFailure::TooManyRequests => ApiError::too_many_requests(),
        });
    }
    Ok(())
}

fn rx_from(line: Bytes) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(1);
    // A fresh channel with capacity 1 always has room.
    let _ = tx.try_send(line);
    rx
}

/// The response body: the channel's lines; the open-watch guard lives as long as it.
fn body(rx: mpsc::Receiver<Bytes>, guard: OpenWatch) -> Body {
    let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), (rx, guard)))
    });
    Body::from_stream(stream)
}

struct Session {
    ctx: Ctx,
    target: Target,
    filter: Filter,
    bookmarks: bool,
    initial: bool,
    initial_end_marker: bool,
    start_rv: Option<u64>,
    deadline: Option<Instant>,
    tx: mpsc::Sender<Bytes>,
}

impl Session {
    async fn send(&self, line: Bytes) -> bool {
        self.tx.send(line).await.is_ok()
    }

    async fn run(self) {
        let rt = self.target.rt();
        let store = self.ctx.store.clone();
        let mut drops = self.ctx.faults.drop_signal();
        let mut rv_rx = store.subscribe();
        rv_rx.borrow_and_update();
        let mut cursor = match self.start_rv {
            Some(rv) if !self.initial => rv,
            _ => {
                let filter = &self.filter;
                let page = store.list(
                    self.target.resource,
                    filter.namespace.as_deref(),
                    None,
                    None,
                    filter.selector().as_ref().map(|f| f as &dyn Fn(&Value) -> bool),
                );
                for obj in &page.items {
                    if !self.send(event_line("ADDED", obj)).await {
                        return;
                    }
                }
                if self.initial_end_marker && !self.send(bookmark(rt, page.rv, true)).await {
                    return;
                }
                page.rv
            }
        };
        let interval = self.ctx.bookmark_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let deadline = self.deadline.unwrap_or(far);
        loop {
            if self.ctx.faults.is_paused() {
                tokio::select! {
                    _ = self.ctx.faults.wait_unpaused() => {}
                    _ = self.ctx.shutdown.cancelled() => return,
                    _ = self.tx.closed() => return,
                }
            }
            rv_rx.borrow_and_update();
            match store.changes_since(cursor) {
                Err(compacted) => {
                    tracing::debug!(resource = %rt.plural, cursor, "watch expired");
                    self.send(expired(compacted)).await;
                    return;
                }
                Ok((changes, rv)) => {
                    for change in changes.iter().filter(|c| c.resource == self.target.resource) {
                        if let Some((kind, obj)) = translate(change, &self.filter)
                            && !self.send(event_line(kind.as_str(), obj)).await
                        {
                            return;
                        }
                    }
                    cursor = cursor.max(rv);
                }
            }
            if !store.serves(self.target.resource) {
                tracing::debug!(resource = %rt.plural, "watch ended: the resource is no longer served");
                return;
            }
            tokio::select! {
                biased;
                _ = self.ctx.shutdown.cancelled() => return,
                _ = self.tx.closed() => return,
                signal = drops.recv() => match signal {
                    Ok(Some(resource)) if resource != self.target.resource => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::debug!(resource = %rt.plural, "watch dropped by fault");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep_until(deadline) => return,
                changed = rv_rx.changed() => if changed.is_err() { return },
                _ = ticker.tick(), if self.bookmarks => {
                    if !self.send(bookmark(rt, cursor, false)).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::{FieldSelector, LabelSelector};
    use std::sync::Arc;

    fn change(kind: EventType, object: Value, previous: Option<Value>) -> Change {
        Change {
            rv: 1,
            resource: 0,
            kind,
            object: Arc::new(object),
            previous: previous.map(Arc::new),
        }
    }

    #[test]
    fn objects_moving_across_a_selector_become_added_or_deleted() {
        let filter = Filter {
            namespace: Some("a".into()),
            labels: LabelSelector::parse("app=web").unwrap(),
            fields: FieldSelector::default(),
        };
        let web = json!({"metadata": {"name": "x", "namespace": "a", "labels": {"app": "web"}}});
        let db = json!({"metadata": {"name": "x", "namespace": "a", "labels": {"app": "db"}}});
        let other_ns = json!({"metadata": {"name": "x", "namespace": "b", "labels": {"app": "web"}}});
        let kind = |c: Change| translate(&c, &filter).map(|(k, _)| k);
        assert_eq!(
            kind(change(EventType::Modified, web.clone(), Some(db.clone()))),
            Some(EventType::Added)
        );
        assert_eq!(
            kind(change(EventType::Modified, db.clone(), Some(web.clone()))),
            Some(EventType::Deleted)
        );
        assert_eq!(
            kind(change(EventType::Modified, web.clone(), Some(web.clone()))),
            Some(EventType::Modified)
        );
        assert_eq!(kind(change(EventType::Modified, db.clone(), Some(db))), None);
        assert_eq!(kind(change(EventType::Added, other_ns, None)), None);
        assert_eq!(kind(change(EventType::Deleted, web, None)), Some(EventType::Deleted));
    }

    #[test]
    fn event_lines_are_newline_terminated_json() {
        let line = event_line("ADDED", &json!({"kind": "Pod"}));
        assert_eq!(&line[..], b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"}}\n");
        let status: Value = serde_json::from_slice(&expired(Compacted {
            requested: 3,
            oldest: 9,
        }))
        .unwrap();
        assert_eq!(status["type"], "ERROR");
        assert_eq!(status["object"]["code"], 410);
        assert_eq!(status["object"]["reason"], "Expired");
        assert_eq!(status["object"]["message"], "too old resource version: 3 (9)");
    }
}
