//! Hostile clients and hostile tokens over real sockets (issue 23): truncated heads,
//! idle and trickling connections at the connection cap, stalled readers on both SSE
//! paths, shutdown with a stalled reader, and claims that must not panic or widen
//! access. The big numbers are the `hostile` harness's (docs/benchmarks.md).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope_tests::served::{Served, SseClient, patience, pod, serve};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::auth::{claims, hs256, serve_jwt};

fn addr(served: &Served) -> SocketAddr {
    served.base.trim_start_matches("http://").parse().unwrap()
}

/// Server-side sockets of `port` in CLOSE-WAIT (the peer closed, the host did not).
fn close_wait(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "08"
        })
        .count()
}

/// How long this test's runtime (the host and the sim run on it) has been busy, summed
/// over its workers: the process's CPU time would count the tests running beside it.
fn busy() -> Duration {
    let metrics = tokio::runtime::Handle::current().metrics();
    (0..metrics.num_workers())
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum()
}

/// The value of a metric line that starts with `prefix` (summed over its labels).
async fn metric(served: &Served, prefix: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", served.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits up to `limit` for `check`; the time it took, or a failure naming `what`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `GET` over a fresh connection, raw: status and body (`None` if the connection
/// was closed without an answer).
async fn raw_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// True once the peer has closed `tcp` (EOF or reset), reading and dropping anything
/// it sent first.
async fn closed_by_peer(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_heads_then_closes_leave_no_close_wait_and_no_busy_task() {
    let served = serve(&[("PERISCOPE_WATCH_STREAMS", "pods")]).await;
    let addr = addr(&served);
    // Half a watch request line, half a head past it, then the client hangs up.
    for i in 0..1000 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let partial: &[u8] = if i % 2 == 0 {
            b"GET /api/clusters/"
        } else {
            b"GET /api/clusters/test/pods/watch HTTP/1.1\r\nHost: x\r\n"
        };
        tcp.write_all(partial).await.unwrap();
    }
    let took = within(Duration::from_secs(5), "every truncated connection closed", || async {
        close_wait(addr.port()) == 0 && metric(&served, "periscope_connections_open").await <= 1.0
    })
    .await;
    // Nothing spins: the process is idle (the sim included) once they are gone.
    let before = busy();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = (busy() - before).as_secs_f64();
    assert!(
        used < 0.1,
        "the runtime was busy {used:.2} s in an idle second after the truncated heads"
    );
    eprintln!("1000 truncated heads: closed within {took:?}, then busy {used:.3} s/s");
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_connections_are_closed_while_healthz_answers_at_the_cap() {
    let served = serve(&[
        ("PERISCOPE_WATCH_STREAMS", "pods"),
        ("PERISCOPE_HEADER_TIMEOUT", "2s"),
        ("PERISCOPE_MAX_CONNECTIONS", "100"),
    ])
    .await;
    let addr = addr(&served);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Trickling: a watch request line, a header after a whole line (hyper's), one
    // byte every 100 ms — never a whole head.
    let mut tricklers = Vec::new();
    for i in 0..60 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tricklers.push(tokio::spawn(async move {
            let text: &[u8] = if i % 2 == 0 {
                b"GET /api/clusters/test/pods/watch HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            } else {
                b"GET /api/features HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            };
            let started = Instant::now();
            for byte in text {
                if tcp.write_all(&[*byte]).await.is_err() {
                    return Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        }));
    }
    // Past the cap, the probes answer on their reserve (which idle connections hold
    // for one second at most); the rest is 503 JSON.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = raw_get(addr, "/api/features").await.expect("a refusal at the cap");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "server_busy", "{body}");
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let (status, body) = raw_get(addr, "/healthz").await.expect("/healthz answers at the cap");
        worst = worst.max(started.elapsed());
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The head deadline (2 s from the accept) closes every idle and trickling one.
    for tcp in &mut idle {
        assert!(
            closed_by_peer(tcp, Duration::from_secs(4)).await,
            "an idle connection is still open"
        );
    }
    for trickler in tricklers {
        let closed = trickler
            .await
            .unwrap()
            .expect("a trickling connection was never closed");
        assert!(
            closed < Duration::from_secs(5),
            "a trickler was closed only after {closed:?}"
        );
    }
    within(Duration::from_secs(3), "slots released", || async {
        metric(&served, "periscope_connections_open").await <= 1.0
    })
    .await;
    assert!(metric(&served, "periscope_connection_timeouts_total{phase=\"head\"}").await >= 100.0);
    let (status, _) = raw_get(addr, "/api/features").await.unwrap();
    assert_eq!(status, 200, "served again once the attack is gone");
    eprintln!("at the cap: worst /healthz {worst:?}");
    served.shutdown().await;
}

/// Reads `tcp` until `needle` has arrived (within the test's patience).
async fn read_until(tcp: &mut TcpStream, needle: &[u8]) {
    let mut seen: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let deadline = tokio::time::Instant::now() + patience();
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .expect("in time")
            .unwrap();
        assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(needle));
        seen.extend_from_slice(&chunk[..n]);
        if seen.windows(needle.len()).any(|w| w == needle) {
            return;
        }
        // Keep only a tail that could still hold the needle's start.
        let keep = seen.len().saturating_sub(needle.len());
        seen.drain(..keep);
    }
}

/// A big pods snapshot: 1,000 pods with 4 KB node names, about 4 MB per subscriber,
/// more than a loopback socket's buffers take.
fn fill(served: &Served) {
    let long = "x".repeat(4000);
    for i in 0..1000 {
        let mut object = pod("shop", &format!("p-{i}"));
        object["spec"]["nodeName"] = long.clone().into();
        served.sim.apply(object).unwrap();
    }
}

/// A watch request whose reader never reads, with a small receive buffer; `reuse`
/// sends a `/healthz` first on the same connection, so hyper serves the stream.
async fn stalled_reader(addr: SocketAddr, reuse: bool) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    if reuse {
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 512];
        let n = tcp.read(&mut first).await.unwrap();
        assert!(
            first[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&first[..n])
        );
    }
    tcp.write_all(b"GET /api/clusters/test/pods/watch HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_are_closed_within_the_write_timeout_on_both_paths() {
    let served = serve(&[
        ("PERISCOPE_WATCH_STREAMS", "pods"),
        ("PERISCOPE_WATCH_WRITE_TIMEOUT", "2s"),
    ])
    .await;
    fill(&served);
    let addr = addr(&served);
    // A reader that reads (raw: an SSE parser takes long over one 4 MB event).
    let mut healthy = TcpStream::connect(addr).await.unwrap();
    healthy
        .write_all(b"GET /api/clusters/test/pods/watch HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut healthy, b"]}\n\n").await;
    let mut stalled = Vec::new();
    for i in 0..20 {
        stalled.push(stalled_reader(addr, i % 5 == 0).await);
    }
    within(patience(), "20 stalled streams open", || async {
        served.streams.open_total() == 21
    })
    .await;
    // While stalled, /debug/streams shows what they hold and how long they wait.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let debug: Vec<Value> = reqwest::get(format!("{}/debug/streams", served.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let held = debug
        .iter()
        .filter(|s| s["bytesUnsent"].as_u64().unwrap_or(0) > 0 && s["sinceLastWriteMs"].as_u64().unwrap_or(0) >= 500)
        .count();
    assert!(held >= 16, "stalled direct streams show bytes unsent: {debug:#?}");
    let took = within(Duration::from_secs(5), "stalled streams closed", || async {
        served.streams.open_total() == 1
    })
    .await;
    assert!(took < Duration::from_secs(4), "closed {took:?} after the check");
    for tcp in &mut stalled {
        assert!(
            closed_by_peer(tcp, patience()).await,
            "a stalled connection is still open"
        );
    }
    let closes = metric(&served, "periscope_backpressure_closes_total").await;
    assert!(closes >= 16.0, "{closes} backpressure closes");
    assert!(metric(&served, "periscope_connection_timeouts_total{phase=\"write\"}").await >= 20.0);
    // The healthy reader carries on, and a new stream has its slot.
    served.sim.apply(pod("shop", "after")).unwrap();
    read_until(&mut healthy, b"\"after\"").await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_stalled_readers_ends_within_the_grace() {
    let served = serve(&[
        ("PERISCOPE_WATCH_STREAMS", "pods"),
        // Long enough that only the shutdown can end them in this test.
        ("PERISCOPE_WATCH_WRITE_TIMEOUT", "60s"),
        ("PERISCOPE_SHUTDOWN_GRACE", "10s"),
    ])
    .await;
    fill(&served);
    let addr = addr(&served);
    let _direct = stalled_reader(addr, false).await;
    let _hyper = stalled_reader(addr, true).await;
    within(patience(), "stalled streams open", || async {
        served.streams.open_total() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    served.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?} with stalled readers"
    );
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn whoami(served: &Served, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/auth/whoami", served.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_fractional_expiries_neither_panic_nor_disable_expiry() {
    let (served, _dir) = serve_jwt(&[("PERISCOPE_WATCH_STREAMS", "pods")]).await;
    let mut huge = claims("huge");
    huge["exp"] = json!(u64::MAX);
    let token = hs256(&huge);
    // The stream handler used to panic adding the expiry to the clock.
    let mut stream = SseClient::connect_as(&served.url("pods/watch"), &token).await;
    assert_eq!(stream.status, 200);
    stream.expect("snapshot").await;
    let (status, body) = whoami(&served, &token).await;
    assert_eq!((status, body["expiresAt"].as_u64()), (200, Some(u64::MAX)), "{body}");

    // A fractional expiry is a number: rounded down, and it still ends the stream.
    let mut fractional = claims("fractional");
    let exp = now() + 3;
    fractional["exp"] = json!(exp as f64 + 0.5);
    let token = hs256(&fractional);
    let (status, body) = whoami(&served, &token).await;
    assert_eq!((status, body["expiresAt"].as_u64()), (200, Some(exp)), "{body}");
    let mut stream = SseClient::connect_as(&served.url("pods/watch"), &token).await;
    stream.expect("snapshot").await;
    tokio::time::timeout(patience(), stream.expect("auth_expired"))
        .await
        .unwrap();

    // Fractional nbf and iat are numbers too; a fractional past exp is refused.
    let mut times = claims("times");
    times["nbf"] = json!(now() as f64 - 10.25);
    times["iat"] = json!(now() as f64 - 10.75);
    assert_eq!(whoami(&served, &hs256(&times)).await.0, 200);
    let mut future = claims("future");
    future["nbf"] = json!(now() as f64 + 3600.5);
    assert_eq!(whoami(&served, &hs256(&future)).await.0, 401);
    let mut past = claims("past");
    past["exp"] = json!(now() as f64 - 3600.5);
    assert_eq!(whoami(&served, &hs256(&past)).await.0, 401);
    for exp in [json!(-1), json!(1e300), json!("soon"), json!(null)] {
        let mut odd = claims("odd");
        odd["exp"] = exp.clone();
        let (status, body) = whoami(&served, &hs256(&odd)).await;
        assert!(status == 401 || status == 200, "exp {exp}: {status} {body}");
    }
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_groups_from_tokens_are_refused_unless_allowed_and_prefixes_apply() {
    let mut masters = claims("mallory");
    masters["groups"] = json!(["dev", "system:masters"]);
    let mut system_user = claims("system:serviceaccount:kube-system:admin");
    system_user["groups"] = json!(["dev"]);

    let (served, _dir) = serve_jwt(&[]).await;
    let (status, body) = whoami(&served, &hs256(&masters)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("system:masters"), "{body}");
    assert_eq!(whoami(&served, &hs256(&system_user)).await.0, 401);
    assert_eq!(whoami(&served, &hs256(&claims("alice"))).await.0, 200);
    served.shutdown().await;

    let (served, _dir) = serve_jwt(&[("PERISCOPE_AUTH_ALLOW_SYSTEM_GROUPS", "true")]).await;
    let (status, body) = whoami(&served, &hs256(&masters)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["groups"], json!(["dev", "system:masters"]));
    served.shutdown().await;

    // With a groups prefix, the token's `system:masters` is `oidc:system:masters`,
    // which Kubernetes gives nothing; the admin group is compared prefixed.
    let (served, _dir) = serve_jwt(&[
        ("PERISCOPE_AUTH_GROUPS_PREFIX", "oidc:"),
        ("PERISCOPE_AUTH_USERNAME_PREFIX", "oidc:"),
        ("PERISCOPE_AUTH_ADMIN_GROUP", "oidc:admins"),
    ])
    .await;
    let (status, body) = whoami(&served, &hs256(&masters)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["groups"], json!(["oidc:dev", "oidc:system:masters"]));
    let mut admin = claims("root");
    admin["groups"] = json!(["admins"]);
    let streams: Value = reqwest::Client::new()
        .get(format!("{}/api/admin/revocations", served.base))
        .bearer_auth(hs256(&admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        streams["revoked"].is_array(),
        "the prefixed admin group is an admin: {streams}"
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_json_and_echo_little() {
    let served = serve(&[
        ("PERISCOPE_WATCH_STREAMS", "pods"),
        ("PERISCOPE_WATCH_REQUEST_TIMEOUT", "2s"),
    ])
    .await;
    let addr = addr(&served);
    let kind = "k".repeat(10_000);
    let (status, body) = raw_get(addr, &format!("/api/clusters/test/{kind}")).await.unwrap();
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["message"].as_str().unwrap().len() < 400, "{body}");
    // An oversized head on the watch path: 431 with a JSON body.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let huge = format!(
        "GET /api/clusters/test/pods/watch HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    let _ = tcp.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(text.contains("\"error\":\"headers_too_large\""), "{text}");
    // A paused apiserver: a poll with no warm scope is 503 JSON, not 500 text.
    served.sim.pause();
    let response = reqwest::Client::new()
        .get(served.url("services?namespace=cold"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unavailable", "{body}");
    served.sim.unpause();
    served.shutdown().await;
}

/// 500 polls of distinct namespaces were 500 lists and 500 access reviews sent to the
/// apiserver: polls the hub cannot answer from memory are rated per user (here 2 a
/// second, bursts of 20), refused with 429 JSON and `Retry-After` before anything is
/// sent upstream; polls of a running upstream are never limited.
#[tokio::test(flavor = "multi_thread")]
async fn cold_polls_are_rated_per_user_and_warm_ones_are_not() {
    let served = serve(&[("PERISCOPE_WATCH_COLD_POLLS_PER_USER", "2")]).await;
    let client = reqwest::Client::new();
    let before = served.sim.list_requests();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let response = client
            .get(served.url(&format!("deployments?namespace=ns-{i}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "poll_rate", "{body}");
        }
        statuses.push(status);
    }
    let served_ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(served_ok + refused, 40, "{statuses:?}");
    // The burst (20) and what refilled meanwhile pass; the rest is refused unsent.
    assert!((20..=30).contains(&served_ok), "{statuses:?}");
    let lists = served.sim.list_requests().pages - before.pages;
    assert_eq!(lists, served_ok, "one list per served cold poll, none for refused ones");

    // A running cluster-wide upstream answers any namespace from memory: no limit.
    let mut stream = SseClient::connect(&served.url("pods/watch"), None).await;
    stream.expect("snapshot").await;
    for i in 0..40 {
        let response = client
            .get(served.url(&format!("pods?namespace=ns-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    served.shutdown().await;
}
