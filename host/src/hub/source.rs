//! The list-then-watch of one [`StreamKey`] against the apiserver, as a sequence of
//! raw events ([`Source::next`]): list pages, the list's end, watched changes,
//! `410`s, failures and outages. It maps nothing and stores nothing; the caller
//! (`hub::upstream`) maps and stores each event and publishes what changed.
//!
//! - **Paged lists, as text.** Pages of `watch.list_page_size` objects are fetched as
//!   text and parsed on the blocking pool with each item left as JSON text. A `410`
//!   for an expired `continue` token lists again from the first page (up to
//!   [`CONTINUE_RESTARTS`] times), so a list never mixes two resourceVersions.
//! - **Watch** from the list's resourceVersion with bookmarks; a watch that ends,
//!   breaks or stays silent for `watch.silence_timeout` is re-opened from the last
//!   resourceVersion. A `410` is [`Event::Expired`], then a fresh list.
//! - **Failures.** One the apiserver may recover from (unreachable, 5xx, 429, a
//!   timeout) starts an *outage* once a list was stored: for `watch.outage_grace`
//!   nothing is reported (streams stay open on the last good state), after it an
//!   `error` with status 503. Any other failure is reported at once. Either way the
//!   list is retried with client-go's backoff (0.8 s to 30 s, jittered).

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::DefaultBackoff;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::frame::FrameKind;
use super::{HubOptions, StreamKey};
use crate::plugin::KindInfo;

/// How many times one list starts again from its first page after a `continue` token
/// expired before the list counts as failed (and is retried with the backoff).
const CONTINUE_RESTARTS: u32 = 3;
/// Server-side timeout of one watch request; the loop re-watches from the last
/// resourceVersion when it ends.
const WATCH_TIMEOUT_SECS: u32 = 290;

/// What happened upstream.
#[derive(Debug)]
pub(super) enum Event {
    /// A page of the list in progress, each item an object's JSON text. A `first` page
    /// begins a list; pages before it belong to a list that was abandoned.
    Page { items: Vec<Box<RawValue>>, first: bool },
    /// The list is complete at `rv`. `converge` is false after a `410`, whose relist
    /// must be a snapshot; otherwise a store with a last good state may converge.
    /// The next call to [`Source::next`] takes the list as stored, unless
    /// [`Source::retry`] said otherwise.
    Listed { rv: String, converge: bool },
    /// A change the watch saw (the object's last state for `Deleted`).
    Changed(FrameKind, Box<DynamicObject>),
    /// The watch fell out of the apiserver's window (`410`); a list follows.
    Expired,
    /// A failure subscribers hear of now; `status` is its HTTP class (spec section 2).
    Failed { message: String, status: u16 },
    /// The apiserver became unreachable while a list is stored: its streams are held
    /// open through the grace.
    OutageStarted,
    /// A list succeeded again after an outage of this long.
    OutageEnded { after: Duration },
}

/// Where the loop is.
enum Phase {
    /// Waiting out a backoff, then listing.
    Wait(Duration),
    /// Listing: the next page's `continue` token (`None`: the first page).
    List {
        token: Option<String>,
        restarts: u32,
        pages: usize,
    },
    /// The last page was yielded; [`Event::Listed`] is next.
    Complete(String),
    /// [`Event::Listed`] was yielded; the next call takes the list as stored.
    Listed(String),
    /// Watching from `rv`; `stream` once it is open.
    Watch {
        rv: String,
        stream: Option<BoxStream<'static, kube::Result<WatchEvent<DynamicObject>>>>,
    },
}

/// One scope's list-then-watch.
pub(super) struct Source {
    key: StreamKey,
    api: Api<DynamicObject>,
    pages: Pages,
    options: HubOptions,
    phase: Phase,
    backoff: DefaultBackoff,
    /// The last list ended in a `410`: the next one is a snapshot.
    expired: bool,
    /// A list was stored: transient failures are held through the grace.
    stored: bool,
    /// A failure was reported since the last stored list.
    failing: bool,
    /// When the current outage began.
    outage_since: Option<tokio::time::Instant>,
}

/// The API of `key`'s scope for objects of `info`.
pub(super) fn api(client: kube::Client, info: &KindInfo, key: &StreamKey) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: info.api_group.clone(),
        version: info.api_version.clone(),
        api_version: info.api_version_string(),
        kind: info.kind.clone(),
        plural: info.plural.clone(),
    };
    match (&key.namespace, info.namespaced) {
        (Some(ns), true) => Api::namespaced_with(client, ns, &resource),
        _ => Api::all_with(client, &resource),
    }
}

impl Source {
    /// The list-then-watch of `key`, whose objects `info` describes; nothing is
    /// requested before the first [`Source::next`].
    pub(super) fn new(client: kube::Client, info: &KindInfo, key: StreamKey, options: &HubOptions) -> Source {
        let api = api(client.clone(), info, &key);
        let pages = Pages::new(client, &api, options.list_page_size, key.selector.as_deref());
        Source {
            key,
            api,
            pages,
            options: options.clone(),
            phase: Phase::List {
                token: None,
                restarts: 0,
                pages: 0,
            },
            backoff: DefaultBackoff::default(),
            expired: false,
            stored: false,
            failing: false,
            outage_since: None,
        }
    }

    /// The caller could not use the list in progress or just listed (its mapping
    /// failed, and it reported that): back off, then list again.
    pub(super) fn retry(&mut self) {
        self.failing = true;
        self.phase = Phase::Wait(self.backoff.next().unwrap_or(Duration::from_secs(30)));
    }

    /// As [`Source::retry`], but waits `wait` (a quarantined plugin's rest): a list
    /// before it ends would fail again.
    pub(super) fn retry_after(&mut self, wait: Duration) {
        self.failing = true;
        self.phase = Phase::Wait(wait);
    }

    /// The next event; waits (backoff, grace) as the loop requires. Never ends.
    pub(super) async fn next(&mut self) -> Event {
        let kind = self.key.kind.clone();
        loop {
            let phase = std::mem::replace(&mut self.phase, Phase::Wait(Duration::ZERO));
            match phase {
                Phase::Wait(wait) => {
                    tokio::time::sleep(wait).await;
                    self.phase = Phase::List {
                        token: None,
                        restarts: 0,
                        pages: 0,
                    };
                }
                Phase::List { token, restarts, pages } => {
                    let first = token.is_none();
                    let text = match timed(self.options.request_timeout, self.pages.fetch(token)).await {
                        Ok(text) => text,
                        Err(kube::Error::Api(status))
                            if !first && is_expired(&status) && restarts < CONTINUE_RESTARTS =>
                        {
                            tracing::info!(cluster = %self.key.cluster, %kind, namespace = self.key.namespace_label(), pages, "continue token expired; listing again from the first page");
                            self.phase = Phase::List {
                                token: None,
                                restarts: restarts + 1,
                                pages: 0,
                            };
                            continue;
                        }
                        Err(error) => match self.failed(format!("list {kind}: {error}"), &error) {
                            Some(event) => return event,
                            None => continue,
                        },
                    };
                    // Parsed on the blocking pool: a page may be megabytes of JSON.
                    let page = match tokio::task::spawn_blocking(move || serde_json::from_str::<Page>(&text)).await {
                        Ok(Ok(page)) => page,
                        Ok(Err(error)) => {
                            let error = kube::Error::SerdeError(error);
                            match self.failed(format!("list {kind}: {error}"), &error) {
                                Some(event) => return event,
                                None => continue,
                            }
                        }
                        Err(error) => return self.fail(format!("list {kind}: the page task failed: {error}"), 500),
                    };
                    self.phase = match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => Phase::List {
                            token: Some(next),
                            restarts,
                            pages: pages + 1,
                        },
                        None => Phase::Complete(page.metadata.resource_version.unwrap_or_default()),
                    };
                    return Event::Page {
                        items: page.items.unwrap_or_default(),
                        first,
                    };
                }
                Phase::Complete(rv) => {
                    self.phase = Phase::Listed(rv.clone());
                    return Event::Listed {
                        rv,
                        converge: !self.expired,
                    };
                }
                Phase::Listed(rv) => {
                    self.expired = false;
                    self.stored = true;
                    self.failing = false;
                    self.phase = Phase::Watch { rv, stream: None };
                    if let Some(since) = self.outage_since.take() {
                        return Event::OutageEnded { after: since.elapsed() };
                    }
                }
                Phase::Watch { mut rv, stream } => {
                    let mut stream = match stream {
                        Some(stream) => stream,
                        None => {
                            let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
                            params.bookmarks = true;
                            if let Some(selector) = &self.key.selector {
                                params = params.labels(selector);
                            }
                            match timed(self.options.request_timeout, self.api.watch(&params, &rv)).await {
                                Ok(stream) => stream.boxed(),
                                Err(kube::Error::Api(status)) if status.code == 410 => {
                                    tracing::warn!(cluster = %self.key.cluster, %kind, %rv, "watch expired, relisting");
                                    return self.expire();
                                }
                                Err(error) => match self.failed(format!("watch {kind}: {error}"), &error) {
                                    Some(event) => return event,
                                    None => continue,
                                },
                            }
                        }
                    };
                    // A watch that says nothing, not even a bookmark, for this long is
                    // re-opened: a paused apiserver holds connections open in silence.
                    let event = match tokio::time::timeout(self.options.watch_silence, stream.next()).await {
                        Ok(Some(event)) => event,
                        Ok(None) => {
                            self.phase = Phase::Watch { rv, stream: None };
                            continue;
                        }
                        Err(_) => {
                            tracing::debug!(cluster = %self.key.cluster, %kind, "watch silent; re-watching");
                            self.phase = Phase::Watch { rv, stream: None };
                            continue;
                        }
                    };
                    let (change, object) = match event {
                        Ok(WatchEvent::Added(o)) => (FrameKind::Added, o),
                        Ok(WatchEvent::Modified(o)) => (FrameKind::Modified, o),
                        Ok(WatchEvent::Deleted(o)) => (FrameKind::Deleted, o),
                        Ok(WatchEvent::Bookmark(bookmark)) => {
                            rv = bookmark.metadata.resource_version;
                            self.phase = Phase::Watch {
                                rv,
                                stream: Some(stream),
                            };
                            continue;
                        }
                        Ok(WatchEvent::Error(status)) if is_expired(&status) => {
                            tracing::warn!(cluster = %self.key.cluster, %kind, %rv, "watch expired, relisting");
                            return self.expire();
                        }
                        Ok(WatchEvent::Error(status)) => {
                            let message = format!("watch error: {}", status.message);
                            match self.failed(message, &kube::Error::Api(status)) {
                                Some(event) => return event,
                                None => continue,
                            }
                        }
                        Err(error) => {
                            // A broken connection or a bad line: watch again from the last version.
                            tracing::debug!(cluster = %self.key.cluster, %kind, %error, "watch stream failed");
                            self.phase = Phase::Watch { rv, stream: None };
                            continue;
                        }
                    };
                    self.backoff.reset();
                    if let Some(version) = object.metadata.resource_version.clone() {
                        rv = version;
                    }
                    self.phase = Phase::Watch {
                        rv,
                        stream: Some(stream),
                    };
                    return Event::Changed(change, Box::new(object));
                }
            }
        }
    }

    /// A `410`: list again at once, and that list is a snapshot.
    fn expire(&mut self) -> Event {
        self.expired = true;
        self.phase = Phase::List {
            token: None,
            restarts: 0,
            pages: 0,
        };
        Event::Expired
    }

    /// A failed list or watch: reported at once unless it is transient and a list is
    /// stored, in which case only once the outage outlasts the grace (`None` until
    /// then). Either way the list is retried after the backoff.
    fn failed(&mut self, message: String, error: &kube::Error) -> Option<Event> {
        let wait = self.backoff.next().unwrap_or(Duration::from_secs(30));
        let grace = self.options.outage_grace;
        if !(is_transient(error) && self.stored) || grace.is_zero() {
            return Some(self.fail_after(message, status_class(error), wait));
        }
        let Some(since) = self.outage_since else {
            self.outage_since = Some(tokio::time::Instant::now());
            tracing::warn!(cluster = %self.key.cluster, kind = %self.key.kind, namespace = self.key.namespace_label(), %message, ?grace, "upstream unreachable; holding its streams open");
            // Try again when the grace ends at the latest, so the error is not late.
            self.phase = Phase::Wait(if self.failing { wait } else { wait.min(grace) });
            return Some(Event::OutageStarted);
        };
        self.phase = Phase::Wait(wait);
        if self.failing {
            return None;
        }
        let elapsed = since.elapsed();
        if elapsed >= grace {
            return Some(self.fail_after(format!("{message} (unreachable for {elapsed:.0?})"), 503, wait));
        }
        tracing::debug!(cluster = %self.key.cluster, kind = %self.key.kind, %message, "upstream still unreachable");
        self.phase = Phase::Wait(wait.min(grace - elapsed));
        None
    }

    /// Reports a failure now and retries after the backoff.
    fn fail(&mut self, message: String, status: u16) -> Event {
        let wait = self.backoff.next().unwrap_or(Duration::from_secs(30));
        self.fail_after(message, status, wait)
    }

    fn fail_after(&mut self, message: String, status: u16, wait: Duration) -> Event {
        self.failing = true;
        self.phase = Phase::Wait(wait);
        Event::Failed { message, status }
    }
}

/// `request` bounded by `watch.request_timeout`; a timeout is a transient failure. Not
/// a method: the source holds its watch stream, which is not `Sync`.
async fn timed<T>(timeout: Duration, request: impl Future<Output = kube::Result<T>>) -> kube::Result<T> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result,
        Err(_) => Err(kube::Error::Service(
            format!("no answer within {timeout:?} (watch.request_timeout)").into(),
        )),
    }
}

/// Fetches the pages of one scope's list as text.
struct Pages {
    client: kube::Client,
    url: String,
    limit: u32,
    selector: Option<String>,
}

impl Pages {
    fn new(client: kube::Client, api: &Api<DynamicObject>, limit: u32, selector: Option<&str>) -> Pages {
        Pages {
            client,
            url: api.resource_url().to_string(),
            limit: limit.max(1),
            selector: selector.map(str::to_string),
        }
    }

    /// One page: the first when `token` is `None`, else the one that token continues to.
    async fn fetch(&self, token: Option<String>) -> kube::Result<String> {
        let mut params = ListParams::default().limit(self.limit);
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        if let Some(token) = token {
            params = params.continue_token(&token);
        }
        let request = kube::core::Request::new(&self.url)
            .list(&params)
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await
    }
}

/// A list page: its metadata and each item's JSON text (no tree is built).
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Option<Vec<Box<RawValue>>>,
}

/// A list page's `metadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// Whether a failed request is the apiserver's `410`: the resourceVersion (of a watch,
/// or of a `continue` token's first page) is older than it keeps.
fn is_expired(status: &kube::core::Status) -> bool {
    status.code == 410 || status.reason == "Gone" || status.reason == "Expired"
}

/// Whether the apiserver may recover from `error` by itself: it was unreachable, slow,
/// overloaded or failing (5xx, 429), not refusing the request.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

/// The HTTP status a polling request answers for an apiserver failure (spec section 2):
/// the Kubernetes error class where there is one, else 500.
fn status_class(error: &kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => match (status.code, status.reason.as_str()) {
            (403, _) | (_, "Forbidden") => 403,
            (401, _) | (_, "Unauthorized") => 401,
            (404, _) | (_, "NotFound") => 404,
            (409, _) | (_, "Conflict") => 409,
            (504, _) | (_, "Timeout") | (_, "ServerTimeout") => 504,
            (429, _) | (_, "TooManyRequests") => 429,
            (400, _) | (_, "BadRequest") => 400,
            _ => 500,
        },
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pods() -> KindInfo {
        KindInfo {
            token: "pods".into(),
            group_alias: "core".into(),
            api_group: String::new(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
            namespaced: true,
            list_key: "pods".into(),
            snapshot: None,
            fields: Default::default(),
        }
    }

    /// A source of every pod, listing `page` at a time.
    fn source(sim: &periscope_sim::Sim, page: u32) -> Source {
        let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
        let key = StreamKey {
            cluster: "test".into(),
            kind: "pods".into(),
            namespace: None,
            selector: None,
        };
        let options = HubOptions {
            list_page_size: page,
            ..HubOptions::default()
        };
        Source::new(client, &pods(), key, &options)
    }

    async fn sim(pods: usize) -> periscope_sim::Sim {
        periscope_sim::Sim::start(periscope_sim::SimOptions {
            scenario: periscope_sim::Scenario::Empty,
            pods,
            ..periscope_sim::SimOptions::default()
        })
        .await
        .unwrap()
    }

    fn name(item: &RawValue) -> String {
        let object: serde_json::Value = serde_json::from_str(item.get()).unwrap();
        object["metadata"]["name"].as_str().unwrap().to_string()
    }

    /// A list paged across a `continue` expiry is one consistent list: after the
    /// first page the cluster changes and the token expires; the list starts again
    /// from a first page and holds exactly the cluster's state at the second list's
    /// resourceVersion (the deleted pod gone, the new one there), nothing of the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_continue_expiry_restarts_the_list_into_one_consistent_list() {
        let sim = sim(250).await;
        let mut source = source(&sim, 100);
        let first_rv = sim.resource_version();
        let victim = sim.objects("pods", None).unwrap()[0].clone();
        let victim_name = victim["metadata"]["name"].as_str().unwrap().to_string();
        let victim_ns = victim["metadata"]["namespace"].as_str().unwrap().to_string();
        let Event::Page { first: true, .. } = source.next().await else {
            panic!("no first page");
        };
        // Between the first and the second page: a change, and the token expires.
        sim.delete("pods", Some(&victim_ns), &victim_name).unwrap();
        let mut extra = victim.clone();
        extra["metadata"] = serde_json::json!({"name": "arrived-late", "namespace": victim_ns});
        sim.apply(extra).unwrap();
        sim.expire_continues(periscope_sim::FaultCount::Times(1));
        let mut firsts = Vec::new();
        let mut names = Vec::new();
        let list_rv = loop {
            match source.next().await {
                Event::Page { items, first } => {
                    firsts.push(first);
                    names.extend(items.iter().map(|item| name(item)));
                }
                Event::Listed { rv, converge } => {
                    assert!(converge);
                    break rv;
                }
                other => panic!("{other:?}"),
            }
        };
        // The expired continuation, then a whole fresh list of three pages.
        assert_eq!(firsts, [true, false, false]);
        assert_eq!(list_rv, sim.resource_version().to_string());
        assert_ne!(list_rv, first_rv.to_string());
        let expected: Vec<String> = sim
            .objects("pods", None)
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, expected);
        assert!(names.iter().any(|n| n == "arrived-late") && !names.contains(&victim_name));
        assert_eq!(names.len(), 250);
    }

    /// Past [`CONTINUE_RESTARTS`] restarts in a row the list has failed, with the
    /// apiserver's `410`.
    #[tokio::test]
    async fn continue_tokens_that_keep_expiring_fail_the_list() {
        let sim = sim(30).await;
        let mut source = source(&sim, 10);
        sim.expire_continues(periscope_sim::FaultCount::UntilCleared);
        let mut firsts = 0;
        loop {
            match source.next().await {
                Event::Page { first: true, .. } => firsts += 1,
                Event::Failed { message, status } => {
                    assert!(
                        message.starts_with("list pods: ") && message.contains("410"),
                        "{message}"
                    );
                    assert_eq!(status, 500);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(firsts, 1 + CONTINUE_RESTARTS);
    }
}
