//! The `periscope` binary as users run it: `plugins list` and `plugins map`.

// Helpers of tests, too: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-05-01T12:00:00Z";

fn periscope(args: &[&str]) -> Output {
    periscope_with_stdin(args, "")
}

/// The `periscope` binary with `args`, a component cache shared by these tests, and no
/// configuration or plugin directory inherited from the environment.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_periscope"));
    command
        .args(args)
        .env(
            "PERISCOPE_PLUGINS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-component-cache"),
        )
        .env_remove("PERISCOPE_PLUGINS_DIR")
        .env_remove("PERISCOPE_CONFIG");
    command
}

fn periscope_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the periscope binary runs");
    // The command may exit before reading its input (a usage error): a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

#[test]
fn plugins_map_reproduces_every_golden_case_of_every_kind() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut kinds: Vec<PathBuf> = std::fs::read_dir(plugins_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kinds.retain(|p| p.join("golden").is_dir());
    kinds.sort();
    assert!(!kinds.is_empty());
    for kind_dir in kinds {
        let kind = kind_dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(kind_dir.join("golden"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.retain(|p| p.to_string_lossy().ends_with(".k8s.json"));
        cases.sort();
        for case in cases {
            let output = periscope(&["plugins", "map", &kind, case.to_str().unwrap(), "--now", NOW]);
            let expected_path = case.to_string_lossy().replace(".k8s.json", ".dto.json");
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
            let actual: serde_json::Value = if output.status.success() {
                serde_json::from_slice(&output.stdout).unwrap()
            } else {
                serde_json::json!({ "exit": output.status.code(), "stderr": stderr(&output) })
            };
            if actual != expected {
                failures.push(format!("{expected_path}: expected {expected}\n got {actual}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} golden cases found");
}

#[test]
fn plugins_map_reads_standard_input() {
    let pod = r#"{"kind":"Pod","metadata":{"name":"a","namespace":"b"},"status":{"phase":"Pending"}}"#;
    let output = periscope_with_stdin(&["plugins", "map", "pods", "--now", NOW], pod);
    assert!(output.status.success(), "{}", stderr(&output));
    let dto: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(dto["phase"], "Pending");
    assert_eq!(dto["ready"], "0/0");
}

#[test]
fn plugins_map_of_a_list_prints_the_snapshot_array() {
    let list = r#"{"kind":"PodList","items":[{"metadata":{"name":"a","namespace":"n"}},{"metadata":{"name":"b","namespace":"n"}}]}"#;
    let output = periscope_with_stdin(&["plugins", "map", "pods", "-", "--now", NOW], list);
    assert!(output.status.success(), "{}", stderr(&output));
    let dtos: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(dtos.as_array().unwrap().len(), 2);
    assert_eq!(dtos[1]["name"], "b");
}

#[test]
fn an_unknown_kind_exits_2_listing_the_known_kinds() {
    let output = periscope_with_stdin(&["plugins", "map", "podz"], "{}");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("unknown kind \"podz\"") && message.contains("known kinds: pods"),
        "{message}"
    );
}

#[test]
fn malformed_json_exits_2_with_the_parse_position() {
    let output = periscope_with_stdin(&["plugins", "map", "pods"], "{\n  \"kind\": \"Pod\",\n  oops\n}");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("not valid JSON") && message.contains("line 3 column 3"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn an_object_the_plugin_rejects_exits_1_with_the_reason() {
    let output = periscope_with_stdin(
        &["plugins", "map", "pods"],
        r#"{"metadata":{"creationTimestamp":"yesterday"}}"#,
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("malformed object") && message.contains("yesterday"),
        "{message}"
    );
}

#[test]
fn a_bad_now_is_a_usage_error() {
    let output = periscope_with_stdin(&["plugins", "map", "pods", "--now", "noon"], "{}");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));
}

#[test]
fn plugins_list_shows_every_bundled_kind() {
    let output = periscope(&["plugins", "list", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pods = rows.as_array().unwrap().iter().find(|r| r["token"] == "pods").unwrap();
    assert_eq!(pods["group"], "core");
    assert_eq!(pods["apiVersion"], "v1");
    assert_eq!(pods["kind"], "Pod");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["source"], "bundled:pods");

    let table = periscope(&["plugins", "list"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("TOKEN"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("pods ") && l.contains("bundled:pods")),
        "{text}"
    );
}

#[test]
fn kinds_resolve_prints_what_an_expression_enables() {
    let output = periscope(&["kinds", "resolve", " Core, nodes "]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("enabled 3 of 22 kinds: pods, events, nodes\n"),
        "{text}"
    );
    assert!(
        text.contains("watch streams enabled: pods=true events=true deployments=false"),
        "{text}"
    );
}

#[test]
fn kinds_resolve_of_a_bad_expression_exits_2_naming_the_entry() {
    let output = periscope(&["kinds", "resolve", "pods,deploymnets"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("unknown kind \"deploymnets\"; did you mean \"deployments\"?"),
        "{message}"
    );
}

/// The README's first command: `periscope serve` with no configuration embeds the demo
/// cluster and streams its churn.
#[test]
fn serve_with_no_cluster_streams_the_demo_cluster() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = {
        let stderr = server.stderr.take().unwrap();
        // Keep the log flowing (and visible when the test fails).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("periscope: {line}");
            }
        });
        Kill(server)
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stream = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "periscope serve did not listen within 120 s");
        assert!(server.0.try_wait().unwrap().is_none(), "periscope serve exited early");
        std::thread::sleep(Duration::from_millis(100));
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET /api/clusters/demo/pods/watch HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut lines = BufReader::new(stream).lines().map_while(Result::ok);
    assert!(lines.next().unwrap().starts_with("HTTP/1.1 200"));
    let mut events = Vec::new();
    for line in lines {
        if let Some(event) = line.strip_prefix("event: ") {
            events.push(event.to_string());
            if events.len() > 1 {
                break;
            }
        }
    }
    assert_eq!(events[0], "snapshot");
    assert!(
        ["added", "modified", "deleted"].contains(&events[1].as_str()),
        "{events:?}"
    );
}

#[test]
fn serve_with_a_bad_kinds_expression_exits_64_naming_the_variable() {
    let output = command(&["serve", "--listen", "127.0.0.1:0"])
        .env("PERISCOPE_WATCH_STREAMS", "pods,podz")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let message = stderr(&output);
    assert!(
        message.contains(
            "error: invalid configuration: watch.streams = \"pods,podz\" (from PERISCOPE_WATCH_STREAMS): \
             unknown kind \"podz\"; did you mean \"pods\"?"
        ),
        "{message}"
    );
    assert_eq!(
        message.matches("unknown kind").count(),
        1,
        "the cause is printed once: {message}"
    );
}

#[test]
fn serve_with_a_malformed_limit_exits_64_before_loading_anything() {
    let output = command(&["serve"])
        .env("PERISCOPE_WATCH_PER_USER_LIMIT", "sixty")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let message = stderr(&output);
    assert!(
        message.contains("watch.per_user_limit = \"sixty\" (from PERISCOPE_WATCH_PER_USER_LIMIT)"),
        "{message}"
    );
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    use std::net::TcpListener;
    // Hold the port so start-up fails right after loading plugins: enough to log.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = command(&["serve", "--listen", &addr])
        .env("PERISCOPE_LOG_FORMAT", "json")
        .env("PERISCOPE_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    let logs: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let enabled = logs
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("watch streams: all 22 kinds (pods, events,"))
        })
        .unwrap_or_else(|| panic!("no start-up line in {text}"));
    assert_eq!(enabled["level"], "INFO");
    assert!(text.contains(&format!("error: cannot listen on {addr}")), "{text}");
}

#[test]
fn periscope_sim_prints_its_url_and_serves_the_kubernetes_api() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut sim = command(&["sim", "--listen", &format!("127.0.0.1:{port}"), "--scenario", "empty"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(
        first.trim(),
        format!("simulated cluster listening on http://127.0.0.1:{port}")
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"kind\":\"NamespaceList\"") && response.contains("kube-system"),
        "{response}"
    );
}

#[test]
fn serve_says_what_it_does_in_a_few_lines_and_shows_a_first_compile() {
    use std::io::BufRead;
    // A fresh cache: this start compiles every bundled component and must say so.
    let cache = tempfile::tempdir().unwrap();
    let mut child = command(&["serve", "--listen", "127.0.0.1:0"])
        .env("PERISCOPE_PLUGINS_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        let done = line.contains("listening on");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    assert!(lines.len() <= 8, "start-up took {} lines:\n{text}", lines.len());
    assert!(text.contains("compiling 22 plugin components (first start;"), "{text}");
    assert!(text.contains("22 plugins loaded in"), "{text}");
    assert!(text.contains("(22 compiled, 0 from cache)"), "{text}");
    assert!(text.contains("watch streams: all 22 kinds"), "{text}");
    assert!(text.contains("open http://127.0.0.1:"), "{text}");
    assert!(!text.contains("loaded plugin"), "per-plugin lines are debug: {text}");
}
