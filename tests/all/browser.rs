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

#[tokio::test(flavor = "multi_thread")]
async fn the_live_page_asks_for_a_token_and_streams_after_sign_in() {
    const SECRET: &str = "a-secret-for-the-browser-sign-in-test";
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let secret = secret.display().to_string();
    let served = serve_scenario(
        Scenario::Demo,
        &[
            ("PERISCOPE_AUTH_MODE", "jwt"),
            ("PERISCOPE_AUTH_ALGORITHMS", "HS256"),
            ("PERISCOPE_AUTH_SECRET_FILE", &secret),
            // This test is about signing in; RBAC has its own tests (security).
            ("PERISCOPE_AUTH_RBAC", "off"),
        ],
    )
    .await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": "alice", "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let run = browser::run_script("sign-in.mjs", &served.base, &["--token", &token]).await;
    served.shutdown().await;
    run.assert_success();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eventsource_on_a_quiet_kind_gets_a_frame_after_every_reconnect() {
    let served = periscope_tests::served::serve(&[("PERISCOPE_WATCH_MAX_STREAM_DURATION", "2s")]).await;
    let run = browser::run_script(
        "eventsource-lifetime.mjs",
        &served.base,
        &["--path", "/api/clusters/test/nodes/watch", "--seconds", "12"],
    )
    .await;
    served.shutdown().await;
    run.assert_success();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_denied_by_rbac_ends_in_the_forbidden_state_not_reconnecting() {
    let (served, _dir) = crate::auth::serve_jwt_scenario(
        Scenario::Demo,
        &[
            ("PERISCOPE_AUTH_RBAC", "subjectaccessreview"),
            ("PERISCOPE_WATCH_STREAMS", "pods"),
        ],
    )
    .await;
    // mallory is bound to nothing: the watch is refused, and so is the poll.
    let token = crate::auth::hs256(&crate::auth::claims("mallory"));
    let run = browser::run_script(
        "eventsource-forbidden.mjs",
        &served.base,
        &["--token", &token, "--path", "/api/clusters/test/pods/watch"],
    )
    .await;
    served.shutdown().await;
    run.assert_success();
}
