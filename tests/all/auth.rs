use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use periscope_tests::served::{Served, SseClient, patience, serve};
use serde_json::{Value, json};

const SECRET: &str = "an-hmac-secret-that-is-long-enough-for-hs256";
const ISSUER: &str = "https://id.example.com/";
const AUDIENCE: &str = "periscope";

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub(crate) fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600, "groups": ["dev"] })
}

pub(crate) fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn rs256_with(claims: &Value, key: &str) -> String {
    let pem = std::fs::read(keys().join(key)).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn rs256(claims: &Value) -> String {
    rs256_with(claims, "rsa.pem")
}

/// A served periscope with JWT auth (HS256 and RS256), admins in group `admins`, and
/// Kubernetes RBAC off (these tests are about authentication; `security` tests RBAC).
pub(crate) async fn serve_jwt(extra: &[(&str, &str)]) -> (Served, tempfile::TempDir) {
    serve_jwt_scenario(periscope_sim::Scenario::Empty, extra).await
}

/// [`serve_jwt`] on a sim scenario; `extra` settings win over the defaults.
pub(crate) async fn serve_jwt_scenario(
    scenario: periscope_sim::Scenario,
    extra: &[(&str, &str)],
) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let revocations = dir.path().join("revoked");
    std::fs::write(&revocations, "# revoked subjects\n").unwrap();
    let public = keys().join("rsa.pub.pem");
    let mut env = vec![
        ("PERISCOPE_AUTH_MODE", "jwt".to_string()),
        ("PERISCOPE_AUTH_ALGORITHMS", "HS256,RS256".to_string()),
        ("PERISCOPE_AUTH_SECRET_FILE", secret.display().to_string()),
        ("PERISCOPE_AUTH_PUBLIC_KEY_FILES", public.display().to_string()),
        ("PERISCOPE_AUTH_ISSUER", ISSUER.to_string()),
        ("PERISCOPE_AUTH_AUDIENCE", AUDIENCE.to_string()),
        ("PERISCOPE_AUTH_ADMIN_GROUP", "admins".to_string()),
        ("PERISCOPE_AUTH_LEEWAY", "5s".to_string()),
        ("PERISCOPE_AUTH_REVOCATION_FILE", revocations.display().to_string()),
        ("PERISCOPE_AUTH_RBAC", "off".to_string()),
    ];
    env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (periscope_tests::served::serve_scenario(scenario, &env).await, dir)
}

async fn status_and_body(served: &Served, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(served.url("pods/watch"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = tokio::time::timeout(patience(), request.send()).await.unwrap().unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        return (status, String::new());
    }
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_hs256_and_rs256_tokens_open_streams() {
    let (served, _dir) = serve_jwt(&[]).await;
    for token in [hs256(&claims("alice")), rs256(&claims("bob"))] {
        let mut client = SseClient::connect_as(&served.url("pods/watch"), &token).await;
        assert_eq!(client.status, 200);
        client.expect("snapshot").await;
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_get_401_with_a_json_reason_and_never_a_stream() {
    let (served, _dir) = serve_jwt(&[]).await;
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 120);
    let mut immature = claims("alice");
    immature["nbf"] = json!(now() + 600);
    let mut wrong_issuer = claims("alice");
    wrong_issuer["iss"] = json!("https://evil.example.com/");
    let mut wrong_audience = claims("alice");
    wrong_audience["aud"] = json!("someone-else");
    let public_pem = std::fs::read(keys().join("rsa.pub.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims("alice"))
    );
    let cases = [
        ("expired", hs256(&expired), "token expired"),
        ("not yet valid", hs256(&immature), "not yet valid"),
        ("wrong issuer", rs256(&wrong_issuer), "wrong issuer"),
        ("wrong audience", rs256(&wrong_audience), "wrong audience"),
        (
            "bad signature",
            rs256_with(&claims("alice"), "rsa-other.pem"),
            "bad signature",
        ),
        ("alg none", alg_none, "invalid token"),
        ("HS256 signed with the RS256 public key", confused, "bad signature"),
        ("malformed header", "not-a-jwt".to_string(), "invalid token"),
    ];
    for (what, token, reason) in cases {
        let (status, body) = status_and_body(&served, Some(&token)).await;
        assert_eq!(status, 401, "{what}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
        assert_eq!(body["error"], "unauthenticated", "{what}");
        assert!(body["message"].as_str().unwrap().contains(reason), "{what}: {body}");
    }
    let (status, body) = status_and_body(&served, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("no token"), "{body}");
    assert_eq!(served.streams.open_total(), 0);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_carries_the_token_for_eventsource() {
    let (served, _dir) = serve_jwt(&[]).await;
    let response = reqwest::Client::new()
        .get(served.url("pods/watch"))
        .header(
            "Cookie",
            format!("theme=dark; periscope_token={}", hs256(&claims("alice"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fourth_stream_of_one_actor_gets_429_while_another_actor_opens() {
    let (served, _dir) = serve_jwt(&[("PERISCOPE_WATCH_PER_USER_LIMIT", "3")]).await;
    let alice = hs256(&claims("alice"));
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut client = SseClient::connect_as(&served.url("pods/watch"), &alice).await;
        client.expect("snapshot").await;
        open.push(client);
    }
    let response = reqwest::Client::new()
        .get(served.url("pods/watch"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        response.text().await.unwrap(),
        "too many concurrent watch streams for this user"
    );

    let mut bob = SseClient::connect_as(&served.url("pods/watch"), &hs256(&claims("bob"))).await;
    assert_eq!(bob.status, 200);
    bob.expect("snapshot").await;

    drop(open.pop());
    let deadline = tokio::time::Instant::now() + patience();
    while served.streams.open_for("alice") != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's slot was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = SseClient::connect_as(&served.url("pods/watch"), &alice).await;
    assert_eq!(again.status, 200);
    again.expect("snapshot").await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_zero_disables_the_cap_and_counts_return_to_zero() {
    let served = serve(&[("PERISCOPE_WATCH_PER_USER_LIMIT", "0")]).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
        assert_eq!(client.status, 200);
        client.expect("snapshot").await;
        clients.push(client);
    }
    assert_eq!(served.streams.open_for("anonymous@127.0.0.1"), 100);
    // 200 random connects and disconnects.
    let mut seed: u64 = 42;
    for _ in 0..200 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        if seed >> 63 == 0 && !clients.is_empty() {
            let at = (seed >> 8) as usize % clients.len();
            drop(clients.swap_remove(at));
        } else {
            clients.push(SseClient::connect(&served.url("nodes/watch"), None).await);
        }
    }
    drop(clients);
    let deadline = tokio::time::Instant::now() + patience();
    while served.streams.open_total() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} streams still counted",
            served.streams.open_total()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served.streams.open_for("anonymous@127.0.0.1"), 0);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_expiring_mid_stream_ends_it_with_auth_expired() {
    let (served, _dir) = serve_jwt(&[]).await;
    let mut short = claims("alice");
    short["exp"] = json!(now() + 2);
    let mut client = SseClient::connect_as(&served.url("pods/watch"), &hs256(&short)).await;
    client.expect("snapshot").await;
    assert_eq!(client.expect("auth_expired").await.data, "{}");
    assert!(client.next().await.is_none());
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_actor_ends_its_streams_with_auth_expired() {
    let (served, dir) = serve_jwt(&[]).await;
    let mut alice = SseClient::connect_as(&served.url("pods/watch"), &hs256(&claims("alice"))).await;
    alice.expect("snapshot").await;
    let mut carol = SseClient::connect_as(&served.url("pods/watch"), &hs256(&claims("carol"))).await;
    carol.expect("snapshot").await;

    // The admin endpoint: admins only.
    let revocations = format!("{}/api/admin/revocations", served.base);
    let response = reqwest::Client::new()
        .post(&revocations)
        .bearer_auth(hs256(&claims("bob")))
        .body(r#"{"subject":"alice"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let mut admin = claims("root");
    admin["groups"] = json!(["admins"]);
    let response = reqwest::Client::new()
        .post(&revocations)
        .bearer_auth(hs256(&admin))
        .body(r#"{"subject":"alice"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    served.sim.apply(periscope_tests::served::pod("shop", "poke")).unwrap();
    assert_eq!(alice.expect("auth_expired").await.data, "{}");
    assert_eq!(carol.expect_json("added").await["object"]["name"], "poke");
    let (status, _) = status_and_body(&served, Some(&hs256(&claims("alice")))).await;
    assert_eq!(status, 401);

    // The revocation file, re-read when it changes.
    std::fs::write(dir.path().join("revoked"), "carol\n").unwrap();
    let deadline = tokio::time::Instant::now() + patience();
    loop {
        served.sim.apply(periscope_tests::served::pod("shop", "poke")).unwrap();
        match carol.next().await.unwrap().event.as_str() {
            "auth_expired" => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "carol was not revoked"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lifetime_cap_ends_streams_and_they_resume_with_what_they_missed() {
    let served = serve(&[("PERISCOPE_WATCH_MAX_STREAM_DURATION", "1s")]).await;
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    let snapshot = client.expect("snapshot").await;
    assert!(
        client.next().await.is_none(),
        "the stream ends silently at its lifetime"
    );
    // Missed deltas are replayed (a watcher shows when the hub has the change).
    let mut watcher = SseClient::connect(&served.url("pods/watch"), None).await;
    watcher.expect("snapshot").await;
    served.sim.apply(periscope_tests::served::pod("shop", "later")).unwrap();
    watcher.expect("added").await;
    let mut resumed = SseClient::connect(&served.url("pods/watch"), Some(&snapshot.id)).await;
    let added = resumed.expect("added").await;
    assert_eq!(
        serde_json::from_str::<Value>(&added.data).unwrap()["object"]["name"],
        "later"
    );
    assert!(resumed.next().await.is_none());
    // With nothing missed, the resume is a snapshot: the SPA's error budget resets
    // only on a snapshot or a delta (spec 3.4).
    let mut quiet = SseClient::connect(&served.url("pods/watch"), Some(&added.id)).await;
    assert_eq!(
        quiet.expect_json("snapshot").await["items"].as_array().unwrap().len(),
        1
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_streams_shows_admins_everything_and_users_their_own() {
    let (served, _dir) = serve_jwt(&[]).await;
    let mut a = SseClient::connect_as(&served.url("pods/watch?namespace=shop"), &hs256(&claims("alice"))).await;
    a.expect("snapshot").await;
    let mut b = SseClient::connect_as(&served.url("nodes/watch"), &hs256(&claims("bob"))).await;
    b.expect("snapshot").await;
    let debug = format!("{}/debug/streams", served.base);
    let get = |token: Option<String>| {
        let debug = debug.clone();
        async move {
            let mut request = reqwest::Client::new().get(debug);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.unwrap()
        }
    };
    assert_eq!(get(None).await.status(), 401);
    let mine: Value = get(Some(hs256(&claims("alice")))).await.json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let stream = &mine[0];
    assert_eq!(stream["actor"], "alice");
    assert_eq!(stream["transport"], "sse");
    assert_eq!(stream["cluster"], "test");
    assert_eq!(stream["kind"], "pods");
    assert_eq!(stream["namespace"], "shop");
    assert!(stream["eventsSent"].as_u64().unwrap() >= 1);
    assert!(stream["queueDepth"].is_u64() && stream["openedAt"].is_string() && stream["id"].is_u64());
    let mut admin = claims("root");
    admin["groups"] = json!(["admins"]);
    let all: Value = get(Some(hs256(&admin))).await.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text_and_move() {
    let served = serve(&[("PERISCOPE_WATCH_PER_USER_LIMIT", "1")]).await;
    let scrape = || async {
        let text = reqwest::get(format!("{}/metrics", served.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
        let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
            scrape
                .samples
                .iter()
                .filter(|s| s.metric == name)
                .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => 0.0,
                })
                .sum()
        };
        (
            value("periscope_streams_active", Some(("kind", "pods"))),
            value("periscope_upstream_watches", Some(("kind", "pods"))),
            value("periscope_events_delivered_total", None),
            value("periscope_rate_limited_total", None),
            value("periscope_plugin_calls_total", Some(("kind", "pods"))),
            value("periscope_build_info", None),
        )
    };
    let before = scrape().await;
    assert_eq!(before.5, 1.0, "build info");
    let mut client = SseClient::connect(&served.url("pods/watch"), None).await;
    client.expect("snapshot").await;
    served.sim.apply(periscope_tests::served::pod("shop", "m")).unwrap();
    client.expect("added").await;
    let refused = reqwest::get(served.url("pods/watch")).await.unwrap();
    assert_eq!(refused.status(), 429);
    let after = scrape().await;
    assert_eq!(after.0, 1.0, "one active pods stream");
    assert_eq!(after.1, 1.0, "one pods upstream");
    assert!(
        after.2 >= before.2 + 2.0,
        "events delivered moved: {before:?} -> {after:?}"
    );
    assert_eq!(after.3, before.3 + 1.0, "one 429");
    assert!(after.4 > before.4, "plugin calls moved");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_query_token_is_accepted_only_when_enabled() {
    let token = hs256(&claims("alice"));
    let (off, _dir) = serve_jwt(&[]).await;
    let response = reqwest::get(format!("{}?access_token={token}", off.url("pods/watch")))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    off.shutdown().await;
    let (on, _dir) = serve_jwt(&[("PERISCOPE_AUTH_QUERY_TOKEN", "true")]).await;
    let response = reqwest::get(format!("{}?access_token={token}", on.url("pods/watch")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    on.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn es256_keys_and_a_jwks_file_verify_tokens() {
    let ec_public = keys().join("ec.pub.pem");
    let jwks = keys().join("jwks.json");
    let served = serve(&[
        ("PERISCOPE_AUTH_MODE", "jwt"),
        ("PERISCOPE_AUTH_ALGORITHMS", "ES256,RS256"),
        ("PERISCOPE_AUTH_PUBLIC_KEY_FILES", ec_public.to_str().unwrap()),
        ("PERISCOPE_AUTH_JWKS_FILE", jwks.to_str().unwrap()),
        ("PERISCOPE_AUTH_ISSUER", ISSUER),
        ("PERISCOPE_AUTH_AUDIENCE", AUDIENCE),
        ("PERISCOPE_AUTH_RBAC", "off"),
    ])
    .await;
    let ec_pem = std::fs::read(keys().join("ec.pem")).unwrap();
    let es256 = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims("eve"),
        &EncodingKey::from_ec_pem(&ec_pem).unwrap(),
    )
    .unwrap();
    assert_eq!(status_and_body(&served, Some(&es256)).await.0, 200);

    let rsa_pem = std::fs::read(keys().join("rsa.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-rsa".into());
    let from_jwks =
        jsonwebtoken::encode(&header, &claims("jo"), &EncodingKey::from_rsa_pem(&rsa_pem).unwrap()).unwrap();
    assert_eq!(status_and_body(&served, Some(&from_jwks)).await.0, 200);

    header.kid = Some("unknown-key".into());
    let wrong_kid =
        jsonwebtoken::encode(&header, &claims("jo"), &EncodingKey::from_rsa_pem(&rsa_pem).unwrap()).unwrap();
    let (status, body) = status_and_body(&served, Some(&wrong_kid)).await;
    assert_eq!(status, 401, "{body}");
    served.shutdown().await;
}
