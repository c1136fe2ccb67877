//! periscope's integration tests, in one binary (one link, one shared component cache).
//! One module per area.

// Helpers of tests, too: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

/// Authentication, per-user caps, stream lifetime, /debug/streams and /metrics.
mod auth;
/// The live page at `/` in headless chromium (playwright-core scripts in tests/browser).
mod browser;
/// The helm chart with the real helm: generated files, lint, template matrix, schemas,
/// install into the sim.
mod chart;
/// The contract version agrees across wit/, the SDK and the host.
mod contract;
/// A new CRD kind end to end: scaffold, build, check, kubectl apply, hot reload, SSE.
mod crd;
/// Every golden case of every bundled plugin, through the real components.
mod golden;
/// GraphQL over WebSocket at /graphqlws, driven by the graphql-ws client (tests/graphql).
mod graphql;
/// A plugin's failure stays its kind's: broken files at start, clashes, one trapping
/// object, quarantine and recovery.
mod isolation;

/// Hostile clients and tokens: truncated heads, idle and trickling connections, stalled
/// readers, shutdown with them, claims that must not panic or widen access (issue 23).
mod hostile;
/// First lists, paged (page size, an expired `continue` token mid-list) and streamed (WatchList, its fallback).
mod lists;
/// Upstream outages: restarts with a fresh store, pauses within and past the grace.
mod outage;
/// The plugin runtime against hostile components, the version check and the cache.
mod plugin_runtime;
/// The kinds registry built from plugins, and group aliases that grow with them.
mod registry;
/// Hot reload of the plugin directory over real HTTP.
mod reload;
/// kubectl scale against the sim's controllers, seen on SSE and k8sEvents.
mod scale_events;
/// Authentication on every route, Kubernetes RBAC per subscriber, bounded upstreams
/// and the bad-input matrix.
mod security;
/// The SPA's session shell: whoami, auth config, clusters, fleet and overview, in both
/// auth modes and under RBAC.
mod shell;
/// SSE streams and polling over real HTTP against the sim.
mod sse;
