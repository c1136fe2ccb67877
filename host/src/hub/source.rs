//! The list-then-watch of one [`StreamKey`] against the apiserver, as a sequence of
//! raw events ([`Source::next`]): list pages, the list's end, watched changes,
//! `410`s, failures and outages. It maps nothing and stores nothing; the caller
//! (`hub::upstream`) maps and stores each event and publishes what changed.
//!
//! - **Streaming lists** (WatchList, KEP-3157; `watch.initial_list`): the first
//!   state comes as a watch with `sendInitialEvents=true`, whose `ADDED` events are
//!   gathered into pages of `watch.list_page_size` and whose bookmark annotated
//!   `k8s.io/initial-events-end` ends the list at its resourceVersion; the same
//!   connection then carries the watch. The apiserver serves it from its watch cache
//!   with about 2 MB per watcher instead of a page per lister. In `auto` mode an
//!   apiserver that refuses it (older than 1.27, or the feature off) or ignores it is
//!   listed in pages from then on.
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
use super::{HubOptions, InitialList, StreamKey};
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
    /// Listing as a stream of events (WatchList): `events` once it is open; `items`
    /// gathered for the next page; `first` until a page was yielded.
    Stream {
        events: Option<Lines>,
        items: Vec<Box<RawValue>>,
        first: bool,
    },
    /// The last page was yielded; [`Event::Listed`] is next. A streaming list's
    /// connection goes on as the watch.
    Complete(String, Option<Lines>),
    /// [`Event::Listed`] was yielded; the next call takes the list as stored.
    Listed(String, Option<Lines>),
    /// Watching from `rv`; `stream` once it is open.
    Watch {
        rv: String,
        stream: Option<BoxStream<'static, kube::Result<WatchEvent<DynamicObject>>>>,
    },
}

/// The lines of a watch response.
type Lines = BoxStream<'static, std::io::Result<String>>;

/// How the next list is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListShape {
    /// A watch with `sendInitialEvents`; `fallback`: paged when the apiserver refuses.
    Streaming { fallback: bool },
    /// `limit`/`continue` pages.
    Paged,
}

/// One scope's list-then-watch.
pub(super) struct Source {
    key: StreamKey,
    api: Api<DynamicObject>,
    pages: Pages,
    shape: ListShape,
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
        let shape = match options.initial_list {
            InitialList::Auto => ListShape::Streaming { fallback: true },
            InitialList::Streaming => ListShape::Streaming { fallback: false },
            InitialList::Paged => ListShape::Paged,
        };
        Source {
            key,
            api,
            pages,
            shape,
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

    /// Lists in pages whatever `watch.initial_list` says: for a one-off list, which
    /// should not open a watch.
    pub(super) fn paged(mut self) -> Source {
        self.shape = ListShape::Paged;
        self
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
                Phase::List { token: None, .. } if self.shape != ListShape::Paged => {
                    self.phase = Phase::Stream {
                        events: None,
                        items: Vec::new(),
                        first: true,
                    };
                }
                Phase::Stream { events, items, first } => {
                    if let Some(event) = self.stream_list(events, items, first).await {
                        return event;
                    }
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
                        None => Phase::Complete(page.metadata.resource_version.unwrap_or_default(), None),
                    };
                    return Event::Page {
                        items: page.items.unwrap_or_default(),
                        first,
                    };
                }
                Phase::Complete(rv, events) => {
                    self.phase = Phase::Listed(rv.clone(), events);
                    return Event::Listed {
                        rv,
                        converge: !self.expired,
                    };
                }
                Phase::Listed(rv, events) => {
                    self.expired = false;
                    self.stored = true;
                    self.failing = false;
                    self.phase = Phase::Watch {
                        rv,
                        stream: events.map(watch_events),
                    };
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

    /// One step of a streaming list: opens it, or reads its next line. Returns the
    /// event to yield, or `None` to go on with the phase it set.
    async fn stream_list(
        &mut self,
        events: Option<Lines>,
        mut items: Vec<Box<RawValue>>,
        first: bool,
    ) -> Option<Event> {
        let kind = self.key.kind.clone();
        let mut events = match events {
            Some(events) => events,
            None => match timed(self.options.request_timeout, self.pages.stream()).await {
                Ok(events) => events,
                Err(kube::Error::Api(status)) if is_refusal(&status) && self.can_fall_back(&status.message) => {
                    return None;
                }
                Err(error) => return self.failed(format!("list {kind}: {error}"), &error),
            },
        };
        let line = match tokio::time::timeout(self.options.watch_silence, events.next()).await {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(error))) => {
                return self.failed(format!("list {kind}: {error}"), &kube::Error::Service(error.into()));
            }
            Ok(None) => {
                let error = kube::Error::Service("the stream ended before its initial events did".into());
                return self.failed(format!("list {kind}: {error}"), &error);
            }
            Err(_) => {
                let error = kube::Error::Service(format!("no event within {:?}", self.options.watch_silence).into());
                return self.failed(format!("list {kind}: {error}"), &error);
            }
        };
        let event = match serde_json::from_str::<RawEvent>(&line) {
            Ok(event) => event,
            Err(_) if line.trim().is_empty() => {
                self.phase = Phase::Stream {
                    events: Some(events),
                    items,
                    first,
                };
                return None;
            }
            Err(error) => return self.failed(format!("list {kind}: {error}"), &kube::Error::SerdeError(error)),
        };
        match event.kind.as_str() {
            "ADDED" => {
                items.push(event.object);
                if items.len() >= self.options.list_page_size.max(1) as usize {
                    self.phase = Phase::Stream {
                        events: Some(events),
                        items: Vec::new(),
                        first: false,
                    };
                    return Some(Event::Page { items, first });
                }
                self.phase = Phase::Stream {
                    events: Some(events),
                    items,
                    first,
                };
                None
            }
            "BOOKMARK" => {
                let bookmark = match serde_json::from_str::<Bookmark>(event.object.get()) {
                    Ok(bookmark) => bookmark,
                    Err(error) => {
                        return self.failed(format!("list {kind}: {error}"), &kube::Error::SerdeError(error));
                    }
                };
                if !bookmark.ends_initial_events() {
                    // An apiserver that ignored `sendInitialEvents` sends its usual
                    // bookmarks and never ends the initial events.
                    self.can_fall_back("a bookmark came before the initial events ended");
                    return self.shape_failure(&kind);
                }
                self.phase = Phase::Complete(bookmark.metadata.resource_version, Some(events));
                (first || !items.is_empty()).then_some(Event::Page { items, first })
            }
            "ERROR" => {
                let status = match serde_json::from_str::<kube::core::Status>(event.object.get()) {
                    Ok(status) => status,
                    Err(error) => {
                        return self.failed(format!("list {kind}: {error}"), &kube::Error::SerdeError(error));
                    }
                };
                if is_refusal(&status) && self.can_fall_back(&status.message) {
                    return None;
                }
                let message = format!("list {kind}: {}", status.message);
                self.failed(message, &kube::Error::Api(status.boxed()))
            }
            other => {
                self.can_fall_back(&format!("a {other} event came before the initial events ended"));
                self.shape_failure(&kind)
            }
        }
    }

    /// Lists in pages from now on when the shape allows it (`auto`), saying why;
    /// false when streaming is required.
    fn can_fall_back(&mut self, why: &str) -> bool {
        if self.shape != (ListShape::Streaming { fallback: true }) {
            return false;
        }
        tracing::info!(cluster = %self.key.cluster, kind = %self.key.kind, reason = why, "the apiserver does not serve streaming lists; listing in pages");
        self.shape = ListShape::Paged;
        self.phase = Phase::List {
            token: None,
            restarts: 0,
            pages: 0,
        };
        true
    }

    /// After [`Source::can_fall_back`] for an apiserver that ignored the request:
    /// nothing to yield when it fell back, else a failure (streaming was required).
    fn shape_failure(&mut self, kind: &str) -> Option<Event> {
        if self.shape == ListShape::Paged {
            return None;
        }
        Some(self.fail(
            format!(
                "list {kind}: the apiserver does not serve streaming lists (watch.initial_list = \"streaming\"); \
                 set it to \"auto\" or \"paged\""
            ),
            500,
        ))
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

/// Whether a failed streaming list is the apiserver refusing the request itself (a
/// 4xx other than throttling or expiry), which paged lists may not meet.
fn is_refusal(status: &kube::core::Status) -> bool {
    (400..500).contains(&status.code) && !matches!(status.code, 401 | 403 | 410 | 429)
}

/// The watch events of a streaming list's connection once its initial events ended.
fn watch_events(lines: Lines) -> BoxStream<'static, kube::Result<WatchEvent<DynamicObject>>> {
    lines
        .filter(|line| std::future::ready(!matches!(line, Ok(l) if l.trim().is_empty())))
        .map(|line| {
            let line = line.map_err(kube::Error::ReadEvents)?;
            serde_json::from_str::<WatchEvent<DynamicObject>>(&line).map_err(|error| {
                match serde_json::from_str::<kube::core::Status>(&line) {
                    Ok(status) => kube::Error::Api(status.boxed()),
                    Err(_) => kube::Error::SerdeError(error),
                }
            })
        })
        .boxed()
}

/// One line of a watch response, its object left as text.
#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    object: Box<RawValue>,
}

/// A `BOOKMARK` event's object.
#[derive(Deserialize)]
struct Bookmark {
    metadata: BookmarkMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

impl Bookmark {
    /// The bookmark that ends a streaming list's initial events.
    fn ends_initial_events(&self) -> bool {
        self.metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str)
            == Some("true")
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

    /// A streaming list (a watch with `sendInitialEvents`) of the scope, as lines.
    async fn stream(&self) -> kube::Result<Lines> {
        let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS).initial_events();
        params.bookmarks = true;
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        let mut request = kube::core::Request::new(&self.url)
            .watch(&params, "")
            .map_err(kube::Error::BuildRequest)?;
        // As kube's own watches: one gzip member per event is not decoded past the first.
        request.headers_mut().insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
        let body = self.client.request_stream(request).await?;
        Ok(futures::AsyncBufReadExt::lines(body).boxed())
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
/// the Kubernetes error class where there is one, else 500 — except an outage (the
/// apiserver unreachable, or answering 502/503), which is 503 (answered as JSON,
/// `upstream_unavailable`, like an outage past the grace).
fn status_class(error: &kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) if matches!(status.code, 502 | 503) => 503,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => 503,
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

    /// A source of every pod, listing `page` at a time in pages.
    fn source(sim: &periscope_sim::Sim, page: u32) -> Source {
        source_of(sim, page, InitialList::Paged)
    }

    /// A source of every pod, listing `page` at a time, as `initial_list` says.
    fn source_of(sim: &periscope_sim::Sim, page: u32, initial_list: InitialList) -> Source {
        let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
        let key = StreamKey {
            cluster: "test".into(),
            kind: "pods".into(),
            namespace: None,
            selector: None,
        };
        let options = HubOptions {
            list_page_size: page,
            initial_list,
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

    /// Pages until the list is complete: each page's `first`, every name, the rv.
    async fn whole_list(source: &mut Source) -> (Vec<bool>, Vec<String>, String) {
        let mut firsts = Vec::new();
        let mut names = Vec::new();
        loop {
            match source.next().await {
                Event::Page { items, first } => {
                    firsts.push(first);
                    names.extend(items.iter().map(|item| name(item)));
                }
                Event::Listed { rv, .. } => return (firsts, names, rv),
                other => panic!("{other:?}"),
            }
        }
    }

    /// WatchList: the first state arrives as the events of one watch request, in pages
    /// of the configured size, equal to a paged list of the same state; the same
    /// connection then carries the watch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streaming_list_is_the_paged_list_in_one_request_that_goes_on_as_the_watch() {
        let sim = sim(250).await;
        let mut streaming = source_of(&sim, 100, InitialList::Auto);
        let (firsts, streamed, streamed_rv) = whole_list(&mut streaming).await;
        let requests = sim.list_requests();
        assert_eq!((requests.pages, requests.streaming), (0, 1), "{requests:?}");
        assert_eq!(firsts, [true, false, false]);

        let (_, paged, paged_rv) = whole_list(&mut source(&sim, 100)).await;
        assert_eq!(sim.list_requests().pages, 3);
        assert_eq!(streamed.len(), 250);
        assert_eq!(streamed, paged);
        assert_eq!(streamed_rv, paged_rv);
        assert_eq!(streamed_rv, sim.resource_version().to_string());

        let mut pod = sim.objects("pods", None).unwrap()[0].clone();
        pod["metadata"] = serde_json::json!({"name": "after-the-list", "namespace": pod["metadata"]["namespace"]});
        sim.apply(pod).unwrap();
        match streaming.next().await {
            Event::Changed(FrameKind::Added, object) => {
                assert_eq!(object.metadata.name.as_deref(), Some("after-the-list"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.list_requests().streaming, 1);
        assert_eq!(
            sim.open_watches("pods").unwrap(),
            1,
            "the list's connection is the watch"
        );
    }

    /// An empty scope streams one empty first page, as a paged list does.
    #[tokio::test]
    async fn an_empty_streaming_list_is_one_empty_first_page() {
        let sim = sim(0).await;
        let (firsts, names, rv) = whole_list(&mut source_of(&sim, 100, InitialList::Streaming)).await;
        assert_eq!(firsts, [true]);
        assert!(names.is_empty());
        assert_eq!(rv, sim.resource_version().to_string());
    }

    /// An apiserver without WatchList (422 on `sendInitialEvents`): `auto` lists in
    /// pages from then on; `streaming` fails the list naming the setting's choices.
    #[tokio::test]
    async fn a_refused_streaming_list_falls_back_to_pages_unless_streaming_is_required() {
        let sim = sim(30).await;
        sim.refuse_watch_list(true);
        let (firsts, names, _) = whole_list(&mut source_of(&sim, 10, InitialList::Auto)).await;
        assert_eq!(firsts, [true, false, false]);
        assert_eq!(names.len(), 30);
        let requests = sim.list_requests();
        assert_eq!((requests.pages, requests.streaming), (3, 0), "{requests:?}");

        match source_of(&sim, 10, InitialList::Streaming).next().await {
            Event::Failed { message, .. } => {
                assert!(
                    message.starts_with("list pods: ")
                        && message.contains("resourceVersionMatch is forbidden for watch"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
