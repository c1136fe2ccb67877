//! The first list of an upstream, paged (`watch.list_page_size`) or streamed
//! (`watch.initial_list`), mapped page by page, as subscribers see it over SSE and
//! polling.

use periscope_sim::FaultCount;
use periscope_tests::served::{SseClient, pod, serve};
use serde_json::Value;

use super::sse::names;

#[tokio::test(flavor = "multi_thread")]
async fn a_first_list_paged_across_an_expired_continue_token_is_one_snapshot() {
    let served = serve(&[
        ("PERISCOPE_WATCH_LIST_PAGE_SIZE", "2"),
        ("PERISCOPE_WATCH_INITIAL_LIST", "paged"),
    ])
    .await;
    for name in ["a", "b", "c", "d", "e"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    // A namespaced poll with no upstream running is one plain list, paged the same way.
    served.sim.expire_continues(FaultCount::Times(1));
    let polled: Value = reqwest::get(served.url("pods?namespace=shop"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        names(&serde_json::json!({ "items": polled["pods"] })),
        ["a", "b", "c", "d", "e"]
    );

    // The list's second page finds its token expired: the hub lists again from the
    // first page and publishes that list alone.
    served.sim.expire_continues(FaultCount::Times(1));
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    let snapshot = client.expect("snapshot").await;
    let data: Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(names(&data), ["a", "b", "c", "d", "e"]);
    assert_eq!(snapshot.id, served.sim.resource_version().to_string());
    // Nothing else came before the watch's first change: no error, no second snapshot.
    served.sim.apply(pod("shop", "f")).unwrap();
    assert_eq!(client.expect_json("added").await["object"]["name"], "f");

    served.shutdown().await;
}

/// WatchList (the default `auto`): the upstream's first state is one watch request
/// whose initial events make the snapshot (in pages of 2 here), and no list is sent;
/// a namespaced poll of a scope nobody watches is still a plain list, not a watch.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_list_streamed_as_watch_events_is_one_snapshot_and_no_list() {
    let served = serve(&[("PERISCOPE_WATCH_LIST_PAGE_SIZE", "2")]).await;
    for name in ["a", "b", "c", "d", "e"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    let before = served.sim.list_requests();
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    let snapshot = client.expect("snapshot").await;
    let data: Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(names(&data), ["a", "b", "c", "d", "e"]);
    assert_eq!(snapshot.id, served.sim.resource_version().to_string());
    let after = served.sim.list_requests();
    assert_eq!(after.pages, before.pages, "no paged list: {before:?} -> {after:?}");
    assert_eq!(after.streaming, before.streaming + 1);
    // The list's connection carries the watch.
    served.sim.apply(pod("shop", "f")).unwrap();
    assert_eq!(client.expect_json("added").await["object"]["name"], "f");
    assert_eq!(served.sim.list_requests().streaming, before.streaming + 1);

    // (Pods are answered from the running cluster-wide upstream; deployments are not.)
    let polled: Value = reqwest::get(served.url("deployments?namespace=shop"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["deployments"], serde_json::json!([]));
    assert_eq!(served.sim.list_requests().pages, before.pages + 1);
    served.shutdown().await;
}

/// An apiserver without WatchList refuses the streaming list; `auto` lists in pages
/// and subscribers see the same snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_streaming_list_falls_back_to_a_paged_list() {
    let served = serve(&[("PERISCOPE_WATCH_LIST_PAGE_SIZE", "2")]).await;
    served.sim.refuse_watch_list(true);
    for name in ["a", "b", "c"] {
        served.sim.apply(pod("shop", name)).unwrap();
    }
    let before = served.sim.list_requests();
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    let snapshot = client.expect("snapshot").await;
    let data: Value = serde_json::from_str(&snapshot.data).unwrap();
    assert_eq!(names(&data), ["a", "b", "c"]);
    let after = served.sim.list_requests();
    assert_eq!(after.pages, before.pages + 2, "{before:?} -> {after:?}");
    assert_eq!(after.streaming, before.streaming);
    served.sim.apply(pod("shop", "d")).unwrap();
    assert_eq!(client.expect_json("added").await["object"]["name"], "d");
    served.shutdown().await;
}
