//! The live page at `/` in a real browser (Debian's chromium through playwright-core).

use periscope_sim::Scenario;
use periscope_tests::browser;
use periscope_tests::served::serve_scenario;

/// `networking` (and with it `services`) is left out of the streams, so the page must
/// fall back to polling for services.
const STREAMS: &str = "core,workloads";

#[tokio::test(flavor = "multi_thread")]
async fn the_live_page_streams_the_demo_and_polls_a_kind_that_is_not_streamed() {
    let served = serve_scenario(Scenario::Demo, &[("PERISCOPE_WATCH_STREAMS", STREAMS)]).await;
    let run = browser::run_script("live-page.mjs", &served.base, &["--polling-kind", "services"]).await;
    served.shutdown().await;
    run.assert_success();
}
