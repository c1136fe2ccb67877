//! The first list of an upstream, paged (`watch.list_page_size`) and mapped page by
//! page, as subscribers see it over SSE and polling.

use periscope_sim::FaultCount;
use periscope_tests::served::{SseClient, pod, serve};
use serde_json::Value;

use super::sse::names;

#[tokio::test(flavor = "multi_thread")]
async fn a_first_list_paged_across_an_expired_continue_token_is_one_snapshot() {
    let served = serve(&[("PERISCOPE_WATCH_LIST_PAGE_SIZE", "2")]).await;
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
