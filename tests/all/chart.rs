//! The helm chart in `charts/periscope`, with the real `helm` binary.
//!
//! - The chart's generated files follow the registry and the settings: `kinds.json`
//!   (the bundled kinds, for the ClusterRole and the kinds check), `settings.json` (the
//!   env mapping and defaults), the `config:` block of `values.yaml` and
//!   `values.schema.json`. A mismatch fails; `PERISCOPE_BLESS=1` rewrites them.
//! - `helm lint`, and `helm template` of the defaults and a matrix of values: each
//!   rendering validates strictly against Kubernetes' schemas (kubernetes-validate,
//!   installed by `scripts/install-tools.sh`), its ClusterRole grants exactly the
//!   enabled kinds, its env follows the rules of `watchStreams`, and its ConfigMap plus
//!   env load as a valid periscope configuration.
//! - A misspelled kind fails at template time, naming the value.
//! - `helm install` into the simulated cluster creates the objects and `helm
//!   uninstall` removes them.
//!
//! Run with: `cargo test -p periscope-tests --test all chart`

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use periscope::config::settings::{self, Chart, DefaultValue, Meta, SETTINGS, Type};
use periscope::kinds::Registry;
use serde_json::{Value, json};

// === tools ===

/// `$PERISCOPE_TOOLS_DIR`, else the cache `scripts/install-tools.sh` installs into.
fn tools_dir() -> PathBuf {
    std::env::var_os("PERISCOPE_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME is set")
                .join("periscope-tools")
        })
}

/// Installs the tools once per process when one is missing; fails (never skips) when
/// they are still missing after.
fn ensure_tools() {
    let dir = tools_dir();
    if !dir.join("bin/helm").is_file() || !dir.join("python/kubernetes_validate").is_dir() {
        let _ = periscope_build_support::scripts::run_once("install-tools.sh");
    }
    assert!(
        dir.join("python/kubernetes_validate").is_dir(),
        "kubernetes-validate not found in {}: run scripts/install-tools.sh",
        dir.join("python").display()
    );
}

fn helm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PERISCOPE_HELM") {
        return PathBuf::from(path);
    }
    ensure_tools();
    let path = tools_dir().join("bin/helm");
    assert!(
        path.is_file(),
        "helm not found at {}: run scripts/install-tools.sh",
        path.display()
    );
    path
}

/// Python with the packages kubernetes-validate brought (PyYAML among them).
fn python() -> Command {
    ensure_tools();
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", tools_dir().join("python"));
    cmd
}

fn chart_dir() -> PathBuf {
    periscope_tests::workspace_root().join("charts/periscope")
}

/// Runs helm with its own config, cache and data dirs (nothing from the user's).
fn helm(args: &[&str], home: &Path) -> Output {
    Command::new(helm_path())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(args)
        .output()
        .expect("helm runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// === generated files ===

/// The bundled registry, as `periscope serve` builds it.
fn registry() -> Registry {
    let runtime = periscope_tests::runtime();
    Registry::new(runtime.load_all(None, &[]).expect("the bundled plugins load")).expect("a registry")
}

fn kinds_json(registry: &Registry) -> Value {
    let kinds: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|plugin| {
            let info = plugin.info();
            json!({
                "token": info.token,
                "alias": info.group_alias,
                "apiGroup": info.api_group,
                "resource": info.plural,
            })
        })
        .collect();
    json!({
        "_generated": "from the bundled kind plugins by tests/all/chart.rs; PERISCOPE_BLESS=1 cargo test -p periscope-tests --test all chart",
        "kinds": kinds,
        "aliases": registry.catalog().groups,
    })
}

fn default_json(meta: &Meta) -> Value {
    meta.default_toml()
        .map(|value| serde_json::to_value(value).expect("TOML values convert to JSON"))
        .unwrap_or(Value::Null)
}

fn settings_json() -> Value {
    let settings: Vec<Value> = SETTINGS
        .iter()
        .map(|meta| {
            let mut entry = json!({ "key": meta.key, "env": meta.env, "default": default_json(meta) });
            match meta.chart {
                Chart::Config | Chart::ConfigInPod(_) => entry["values"] = json!(format!("config.{}", meta.key)),
                Chart::Env(path) => entry["values_env"] = json!(path),
            }
            entry
        })
        .collect();
    json!({
        "_generated": "from host/src/config/settings.rs by tests/all/chart.rs; PERISCOPE_BLESS=1 cargo test -p periscope-tests --test all chart",
        "settings": settings,
    })
}

/// Settings the chart renders into the ConfigMap, by section, in declaration order.
fn config_sections() -> Vec<(&'static str, Vec<&'static Meta>)> {
    settings::sections()
        .into_iter()
        .map(|section| {
            let metas: Vec<&Meta> = settings::in_section(section)
                .filter(|meta| matches!(meta.chart, Chart::Config | Chart::ConfigInPod(_)))
                .collect();
            (section, metas)
        })
        .filter(|(_, metas)| !metas.is_empty())
        .collect()
}

/// `text` wrapped at about 88 columns, each line starting with `indent# `.
fn comment(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > 88 {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}# {line}\n"));
    }
    out
}

const BLOCK_START: &str = "# --- generated: config";
const BLOCK_END: &str = "# --- end generated ---\n";

fn values_block() -> String {
    let mut out = String::from(
        "# --- generated: config (from host/src/config/settings.rs; PERISCOPE_BLESS=1 cargo test -p periscope-tests \
         --test all chart) ---\n\
         # ~ keeps periscope's own default, named in each comment. watch.streams and\n\
         # watch.per_user_limit are set with watchStreams above.\n\
         config:\n",
    );
    for (section, metas) in config_sections() {
        out.push_str(&format!("  {section}:\n"));
        for meta in metas {
            let default = match meta.default {
                DefaultValue::Value(text) => format!("Default: {text}."),
                DefaultValue::Absent(text) => format!("Default: {}.", text.replace('`', "")),
            };
            out.push_str(&comment(
                &format!("{} ({}) {default}", meta.doc.replace('`', ""), meta.env),
                "    ",
            ));
            let value = match meta.chart {
                Chart::ConfigInPod(value) => value,
                _ => "~",
            };
            out.push_str(&format!("    {}: {value}\n", meta.name()));
        }
    }
    out.push_str(BLOCK_END);
    out
}

fn values_yaml(current: &str) -> String {
    let start = current
        .find(BLOCK_START)
        .expect("values.yaml has the generated block's start line");
    let end = start
        + current[start..]
            .find(BLOCK_END)
            .expect("values.yaml has the generated block's end line");
    format!(
        "{}{}{}",
        &current[..start],
        values_block(),
        &current[end + BLOCK_END.len()..]
    )
}

/// The JSON schema of one setting's value, or null.
fn setting_schema(meta: &Meta) -> Value {
    let mut schema = match meta.ty {
        Type::String => json!({ "type": ["string", "null"] }),
        Type::Duration => json!({
            "type": ["string", "null"],
            "pattern": "^\\s*([0-9]+\\s*[a-zA-Z]+\\s*)+$",
        }),
        Type::Integer { min, max } => {
            let mut schema = json!({ "type": ["integer", "null"], "minimum": min });
            if let Some(max) = max {
                schema["maximum"] = json!(max);
            }
            schema
        }
        Type::Boolean => json!({ "type": ["boolean", "null"] }),
        Type::Strings => json!({ "type": ["array", "null"], "items": { "type": "string" } }),
    };
    schema["description"] = json!(format!(
        "{} ({}); see docs/operators/configuration.md",
        meta.key, meta.env
    ));
    if let Some(default) = meta.default_toml() {
        schema["default"] = serde_json::to_value(default).expect("TOML values convert to JSON");
    }
    schema
}

/// The shape of a kinds expression only: comma-separated words. Which words are kinds
/// is the template's check (`periscope.enabledKinds`), whose `fail` names the value,
/// the valid kinds and the nearest one; a pattern listing them all refused a typo with
/// a 900-character regular expression instead.
fn kinds_pattern() -> String {
    "^[A-Za-z0-9 ,._-]*$".to_string()
}

fn object(properties: Value) -> Value {
    json!({ "type": "object", "additionalProperties": false, "properties": properties })
}

fn strings_map() -> Value {
    json!({ "type": "object", "additionalProperties": { "type": "string" } })
}

fn schema() -> Value {
    let config: serde_json::Map<String, Value> = config_sections()
        .into_iter()
        .map(|(section, metas)| {
            let properties: serde_json::Map<String, Value> = metas
                .iter()
                .map(|meta| (meta.name().to_string(), setting_schema(meta)))
                .collect();
            (section.to_string(), object(Value::Object(properties)))
        })
        .collect();
    let streams = settings::WATCH_STREAMS.meta;
    let limit = settings::WATCH_PER_USER_LIMIT.meta;
    let mut per_user_limit = setting_schema(&limit);
    per_user_limit["description"] = json!(format!(
        "{} (rendered as {} whenever set, 0 included)",
        limit.key, limit.env
    ));
    let port = json!({ "type": "integer", "minimum": 1, "maximum": 65535 });
    let ingress = object(json!({
        "enabled": { "type": "boolean" },
        "className": { "type": "string" },
        "annotations": strings_map(),
        "streamingAnnotations": { "type": "boolean" },
        "hosts": { "type": "array", "items": { "type": "string" } },
        "tls": {
            "type": "array",
            "items": object(json!({
                "secretName": { "type": "string" },
                "hosts": { "type": "array", "items": { "type": "string" } },
            })),
        },
        "sideBySide": object(json!({
            "enabled": { "type": "boolean" },
            "backend": object(json!({ "name": { "type": "string" }, "port": port })),
            "paths": {
                "type": "array",
                "items": object(json!({
                    "path": { "type": "string", "pattern": "^/" },
                    "pathType": { "type": "string", "enum": ["Exact", "Prefix", "ImplementationSpecific"] },
                })),
            },
        })),
    }));
    let int_or_percent = json!({ "type": ["integer", "string"], "minimum": 0, "pattern": "^[0-9]+%$" });
    let mut properties = json!({
            "global": { "type": "object" },
            "watchStreams": object(json!({
                "kinds": {
                    "type": "string",
                    "description": format!("{} ({} when non-empty): comma-separated kinds and group aliases, or all, or off; the chart names a misspelled one", streams.key, streams.env),
                    "pattern": kinds_pattern(),
                },
                "perUserLimit": per_user_limit,
            })),
            "clusters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name"],
                    "properties": {
                        "name": { "type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" },
                        "kubeconfig": { "type": "string" },
                        "context": { "type": "string" },
                        "in_cluster": { "type": "boolean" },
                        "server": { "type": "string", "pattern": "^https?://" },
                        "sim": { "type": "string", "enum": periscope::config::SIM_SCENARIOS },
                    },
                },
            },
            "config": object(Value::Object(config)),
            "auth": object(json!({ "existingSecret": { "type": "string" } })),
            "env": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": false,
                    "properties": {
                        "name": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
                        "value": { "type": "string" },
                        "valueFrom": { "type": "object" },
                    },
                },
            },
    });
    let more = json!({
            "image": object(json!({
                "repository": { "type": "string", "minLength": 1 },
                "tag": { "type": "string" },
                "pullPolicy": { "type": "string", "enum": ["Always", "IfNotPresent", "Never"] },
            })),
            "imagePullSecrets": {
                "type": "array",
                "items": object(json!({ "name": { "type": "string" } })),
            },
            "nameOverride": { "type": "string" },
            "fullnameOverride": { "type": "string" },
            "replicaCount": { "type": "integer", "minimum": 0 },
            "serviceAccount": object(json!({
                "create": { "type": "boolean" },
                "name": { "type": "string" },
                "annotations": strings_map(),
            })),
            "rbac": object(json!({ "create": { "type": "boolean" } })),
            "podAnnotations": strings_map(),
            "podLabels": strings_map(),
            "nodeSelector": strings_map(),
            "tolerations": { "type": "array", "items": { "type": "object" } },
            "affinity": { "type": "object" },
            "topologySpreadConstraints": { "type": "array", "items": { "type": "object" } },
            "priorityClassName": { "type": "string" },
            "resources": object(json!({
                "requests": { "type": "object", "additionalProperties": { "type": ["string", "number"] } },
                "limits": { "type": "object", "additionalProperties": { "type": ["string", "number"] } },
            })),
            "terminationGracePeriodSeconds": { "type": ["integer", "null"], "minimum": 1 },
            "cacheSizeLimit": { "type": "string", "pattern": "^[0-9]+(Ki|Mi|Gi|K|M|G)?$" },
            "service": object(json!({
                "type": { "type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"] },
                "port": port,
                "annotations": strings_map(),
            })),
            "ingress": ingress,
            "networkPolicy": object(json!({
                "enabled": { "type": "boolean" },
                "from": { "type": "array", "items": { "type": "object" } },
                "apiServerPorts": { "type": "array", "items": port },
            })),
            "podDisruptionBudget": object(json!({
                "enabled": { "type": "boolean" },
                "maxUnavailable": int_or_percent,
            })),
            "autoscaling": object(json!({
                "enabled": { "type": "boolean" },
                "minReplicas": { "type": "integer", "minimum": 1 },
                "maxReplicas": { "type": "integer", "minimum": 1 },
                "targetCPUUtilizationPercentage": { "type": "integer", "minimum": 1, "maximum": 100 },
            })),
            "serviceMonitor": object(json!({
                "enabled": { "type": "boolean" },
                "interval": { "type": "string", "pattern": "^[0-9]+(ms|s|m|h)$" },
                "labels": strings_map(),
            })),
    });
    if let (Value::Object(properties), Value::Object(more)) = (&mut properties, more) {
        properties.extend(more);
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "periscope chart values",
        "description": "Generated by tests/all/chart.rs from the bundled kinds and host/src/config/settings.rs; PERISCOPE_BLESS=1 cargo test -p periscope-tests --test all chart",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n"
}

/// Compares `path` with `expected`; `PERISCOPE_BLESS=1` rewrites it instead. Returns
/// the name of a stale file.
fn check_generated(path: &Path, expected: &str) -> Option<String> {
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    if actual == expected {
        return None;
    }
    if std::env::var_os("PERISCOPE_BLESS").is_some() {
        std::fs::write(path, expected).unwrap();
        return None;
    }
    Some(path.display().to_string())
}

#[test]
fn the_generated_chart_files_follow_the_registry_and_the_settings() {
    let registry = registry();
    let dir = chart_dir();
    let values = std::fs::read_to_string(dir.join("values.yaml")).unwrap();
    let stale: Vec<String> = [
        check_generated(&dir.join("kinds.json"), &pretty(&kinds_json(&registry))),
        check_generated(&dir.join("settings.json"), &pretty(&settings_json())),
        check_generated(&dir.join("values.schema.json"), &pretty(&schema())),
        check_generated(&dir.join("values.yaml"), &values_yaml(&values)),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        stale.is_empty(),
        "stale generated chart files: {}\nIf the registry and settings are right, run: PERISCOPE_BLESS=1 cargo test \
         -p periscope-tests --test all chart",
        stale.join(", ")
    );
}

// === rendering ===

/// `helm template` with `args` (`--set …`); the manifests as JSON, or helm's error.
fn template(args: &[&str]) -> Result<Vec<Value>, String> {
    let home = tempfile::tempdir().unwrap();
    let chart = chart_dir();
    let mut all = vec![
        "template",
        "periscope",
        chart.to_str().unwrap(),
        "--namespace",
        "observability",
    ];
    all.extend_from_slice(args);
    let out = helm(&all, home.path());
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    Ok(yaml_documents(&out.stdout))
}

fn yaml_documents(yaml: &[u8]) -> Vec<Value> {
    let mut child = python()
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(yaml).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the rendered YAML does not parse");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|doc| doc["kind"] == kind)
}

fn kinds_of(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|doc| doc["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Validates every manifest Kubernetes has a schema for, strictly (no unknown fields).
fn validate_strictly(docs: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        // CRDs (ServiceMonitor) have no schema in Kubernetes' own set; checked by hand.
        if doc["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
        {
            continue;
        }
        let path = dir.path().join(format!("{i}-{}.json", doc["kind"].as_str().unwrap()));
        std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
        files.push(path);
    }
    let out = python()
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    assert!(
        out.status.success(),
        "rendered manifests do not validate:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment").expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn env_of(docs: &[Value]) -> BTreeMap<String, String> {
    container(docs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The (API group, resource) pairs the ClusterRole lets periscope list and watch.
fn list_watch_grants(docs: &[Value]) -> BTreeSet<(String, String)> {
    let role = find(docs, "ClusterRole").expect("a ClusterRole");
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        if rule["verbs"] != json!(["list", "watch"]) {
            continue;
        }
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                grants.insert((
                    group.as_str().unwrap().to_string(),
                    resource.as_str().unwrap().to_string(),
                ));
            }
        }
    }
    grants
}

/// Loads the rendered ConfigMap's TOML with the rendered env, as the pod would.
fn load_rendered(docs: &[Value]) -> periscope::config::Config {
    let toml = find(docs, "ConfigMap").expect("a ConfigMap")["data"]["periscope.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("periscope.toml");
    std::fs::write(&path, &toml).unwrap();
    let env: HashMap<String, String> = env_of(docs)
        .into_iter()
        .filter(|(name, _)| name.starts_with("PERISCOPE_") && name != "PERISCOPE_CONFIG")
        .collect();
    periscope::config::load(Some(&path), &env).unwrap_or_else(|e| panic!("the rendered config is invalid: {e}\n{toml}"))
}

/// One rendering of the matrix: what was set and what must follow.
struct Case {
    args: Vec<&'static str>,
    kinds: &'static str,
    limit: Option<u32>,
}

#[test]
fn helm_lint_passes() {
    let home = tempfile::tempdir().unwrap();
    let chart = chart_dir();
    let out = helm(&["lint", "--strict", chart.to_str().unwrap()], home.path());
    assert!(
        out.status.success(),
        "helm lint:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_defaults_render_valid_manifests() {
    let docs = template(&[]).unwrap();
    validate_strictly(&docs);
    assert_eq!(
        kinds_of(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
    let pod = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"].is_object());
    let config = load_rendered(&docs);
    // Longer than the grace, so streams close with `shutdown` before the kill.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > config.shutdown_grace.as_secs(), "{grace}");
    assert_eq!(config.listen.port(), 8080);
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        config.clusters,
        vec![periscope::config::ClusterConfig {
            name: "in-cluster".into(),
            source: periscope::config::ClusterSource::InCluster,
        }]
    );
    // Defaults are periscope's: nothing else is pinned by the chart.
    assert_eq!(config.watch.per_user_limit, settings::WATCH_PER_USER_LIMIT.default());
}

#[test]
fn a_matrix_of_values_renders_valid_manifests() {
    let registry = registry();
    let cases = [
        Case {
            args: vec![],
            kinds: "",
            limit: None,
        },
        Case {
            args: vec!["--set", "watchStreams.kinds=off"],
            kinds: "off",
            limit: None,
        },
        Case {
            args: vec![
                "--set",
                "watchStreams.kinds=pods\\,workloads",
                "--set",
                "watchStreams.perUserLimit=0",
            ],
            kinds: "pods,workloads",
            limit: Some(0),
        },
        Case {
            args: vec!["--set", "watchStreams.perUserLimit=60"],
            kinds: "",
            limit: Some(60),
        },
        Case {
            args: vec![
                "--set",
                "watchStreams.kinds=Core\\, nodes",
                "--set",
                "ingress.enabled=true",
                "--set",
                "ingress.className=nginx",
                "--set",
                "ingress.tls[0].secretName=periscope-tls",
                "--set",
                "ingress.tls[0].hosts[0]=periscope.example.com",
                "--set",
                "ingress.sideBySide.enabled=true",
                "--set",
                "ingress.sideBySide.backend.name=periscope-backend",
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "autoscaling.enabled=true",
                "--set",
                "serviceMonitor.enabled=true",
            ],
            kinds: "Core, nodes",
            limit: None,
        },
        Case {
            args: vec![
                "--set",
                "auth.existingSecret=periscope-hmac",
                "--set",
                "config.auth.mode=jwt",
                "--set",
                "config.auth.algorithms={HS256}",
                "--set",
                "config.auth.secret_file=/etc/periscope/auth/hmac",
                "--set",
                "config.auth.audience=periscope",
                "--set",
                "config.server.shutdown_grace=1m30s",
                "--set",
                "config.watch.queue=512",
                "--set",
                "watchStreams.perUserLimit=5",
            ],
            kinds: "",
            limit: Some(5),
        },
    ];
    let known_env: BTreeSet<&str> = SETTINGS
        .iter()
        .map(|meta| meta.env)
        .chain(["PERISCOPE_CONFIG", "XDG_CACHE_HOME"])
        .collect();
    for case in &cases {
        let what = format!("helm template {}", case.args.join(" "));
        let docs = template(&case.args).unwrap_or_else(|e| panic!("{what}: {e}"));
        validate_strictly(&docs);

        // Env: only variables periscope reads; the watchStreams rules.
        let env = env_of(&docs);
        for name in env.keys() {
            assert!(known_env.contains(name.as_str()), "{what}: unknown variable {name}");
        }
        assert_eq!(
            env.get(settings::ENV_WATCH_STREAMS).map(String::as_str),
            (!case.kinds.is_empty()).then_some(case.kinds),
            "{what}"
        );
        assert_eq!(
            env.get(settings::ENV_WATCH_PER_USER_LIMIT).cloned(),
            case.limit.map(|n| n.to_string()),
            "{what}"
        );

        // RBAC: exactly the enabled kinds, plus namespaces and secrets.
        let enabled = registry.resolve(case.kinds).unwrap();
        let mut expected: BTreeSet<(String, String)> = enabled
            .tokens()
            .iter()
            .map(|token| {
                let info = registry.get(token).unwrap().info();
                (info.api_group.clone(), info.plural.clone())
            })
            .collect();
        expected.insert((String::new(), "namespaces".into()));
        expected.insert((String::new(), "secrets".into()));
        assert_eq!(list_watch_grants(&docs), expected, "{what}");

        // The pod's configuration is valid and says what was set.
        let config = load_rendered(&docs);
        assert_eq!(config.watch.streams.value, case.kinds, "{what}");
        assert_eq!(
            config.watch.per_user_limit,
            case.limit.unwrap_or(settings::WATCH_PER_USER_LIMIT.default()),
            "{what}"
        );
        let pod = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"];
        assert!(
            pod["terminationGracePeriodSeconds"].as_u64().unwrap() > config.shutdown_grace.as_secs(),
            "{what}"
        );
    }
}

#[test]
fn ingress_streams_unbuffered_and_routes_side_by_side() {
    let docs = template(&[
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.sideBySide.enabled=true",
        "--set",
        "ingress.sideBySide.backend.name=periscope-backend",
    ])
    .unwrap();
    let ingress = find(&docs, "Ingress").unwrap();
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
    assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"], "3600");
    let paths = ingress["spec"]["rules"][0]["http"]["paths"].as_array().unwrap();
    let routes: Vec<(&str, &str)> = paths
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap(),
                p["backend"]["service"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("/graphqlws", "periscope"),
            ("/api/clusters/[^/]+/[^/]+/watch", "periscope"),
            ("/", "periscope-backend"),
        ]
    );
    let monitor = template(&["--set", "serviceMonitor.enabled=true"]).unwrap();
    let monitor = find(&monitor, "ServiceMonitor").unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
}

#[test]
fn a_misspelled_kind_fails_at_template_time_naming_the_value() {
    let error = template(&["--set", "watchStreams.kinds=banana\\,pods"]).unwrap_err();
    assert!(error.contains("watchStreams") && error.contains("kinds"), "{error}");
    assert!(error.contains("banana,pods"), "{error}");
    // An alias misspelled, and off combined with a kind, too.
    for bad in ["workload", "off\\,pods", "pods\\,\\,events"] {
        let error = template(&["--set", &format!("watchStreams.kinds={bad}")]).unwrap_err();
        assert!(error.contains("watchStreams"), "{bad}: {error}");
    }
}

#[test]
fn a_misspelled_kind_gets_one_readable_line_with_a_did_you_mean() {
    let error = template(&["--set", "watchStreams.kinds=podz"]).unwrap_err();
    let line = error
        .lines()
        .find(|line| line.contains("watchStreams.kinds"))
        .unwrap_or_else(|| panic!("{error}"));
    assert!(
        line.contains(
            r#"watchStreams.kinds = "podz": unknown kind "podz" (did you mean "pods"?); valid: all, off, none, "#
        ),
        "{line}"
    );
    for valid in ["workloads", "pods", "deployments", "cronjobs", "storageclasses"] {
        assert!(line.contains(valid), "{valid} missing from {line}");
    }
    assert!(line.len() < 600, "one readable line, not a regular expression: {line}");
    assert!(
        !error.contains("(?i)"),
        "the schema's pattern does not fire first: {error}"
    );
    let error = template(&["--set", "watchStreams.kinds=pods\\,deploymnets"]).unwrap_err();
    assert!(error.contains(r#"(did you mean "deployments"?)"#), "{error}");
    let error = template(&["--set", "watchStreams.kinds=banana"]).unwrap_err();
    assert!(
        error.contains(r#"unknown kind "banana"; valid:"#),
        "no guess without a near name: {error}"
    );
}

#[test]
fn jwt_mode_without_a_key_fails_at_template_time_naming_the_missing_value() {
    let error = template(&["--set", "config.auth.mode=jwt"]).unwrap_err();
    assert!(
        error.contains(r#"config.auth.mode = "jwt" needs a key"#)
            && error.contains("config.auth.secret_file")
            && error.contains("config.auth.public_key_files")
            && error.contains("config.auth.jwks_file"),
        "{error}"
    );
    for key in [
        "config.auth.jwks_file=/etc/periscope/auth/jwks.json",
        "config.auth.public_key_files[0]=/etc/periscope/auth/key.pem",
    ] {
        template(&["--set", "config.auth.mode=jwt", "--set", key]).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    template(&[
        "--set",
        "config.auth.mode=jwt",
        "--set",
        "config.auth.algorithms[0]=HS256",
        "--set",
        "config.auth.secret_file=/etc/periscope/auth/hmac",
    ])
    .unwrap();
}

#[test]
fn values_of_the_wrong_type_fail_at_template_time() {
    for (set, key) in [
        ("watchStreams.perUserLimit=-1", "perUserLimit"),
        ("config.watch.queue=many", "queue"),
        ("config.watch.heartbeat=15", "heartbeat"),
        ("config.server.listn=0.0.0.0:1", "listn"),
        ("config.auth.query_token=maybe", "query_token"),
    ] {
        let error = template(&["--set", set]).unwrap_err();
        assert!(error.contains(key), "{set}: {error}");
    }
}

#[test]
fn a_termination_grace_not_longer_than_shutdown_grace_fails() {
    let error = template(&["--set", "terminationGracePeriodSeconds=10"]).unwrap_err();
    assert!(error.contains("terminationGracePeriodSeconds"), "{error}");
    let docs = template(&[
        "--set",
        "terminationGracePeriodSeconds=45",
        "--set",
        "config.server.shutdown_grace=30s",
    ])
    .unwrap();
    assert_eq!(
        find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        45
    );
}

#[test]
fn docs_env_names_and_chart_values_agree() {
    let docs =
        std::fs::read_to_string(periscope_tests::workspace_root().join("docs/operators/configuration.md")).unwrap();
    let values = std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap();
    let values = yaml_documents(values.as_bytes()).remove(0);
    for meta in SETTINGS {
        let row = docs
            .lines()
            .find(|line| line.starts_with(&format!("| `[{}] {}` ", meta.section(), meta.name())))
            .unwrap_or_else(|| panic!("{} has no row in the docs", meta.key));
        assert!(row.contains(&format!("`{}`", meta.env)), "{row}");
        let path = match meta.chart {
            Chart::Config | Chart::ConfigInPod(_) => format!("config.{}", meta.key),
            Chart::Env(path) => path.to_string(),
        };
        assert!(row.contains(&format!("`{path}`")), "{row}");
        let mut value = &values;
        for part in path.split('.') {
            assert!(value.get(part).is_some(), "values.yaml has no {path}");
            value = &value[part];
        }
    }
}

// === install into the simulated cluster ===

#[tokio::test]
async fn helm_install_creates_the_objects_and_uninstall_removes_them() {
    let sim = periscope_sim::Sim::start(periscope_sim::SimOptions {
        scenario: periscope_sim::Scenario::Empty,
        ..periscope_sim::SimOptions::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let chart = chart_dir();
    let helm_in = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        let home = home.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--kubeconfig".to_string(), kubeconfig.display().to_string()];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            helm(&refs, &home)
        })
    };
    let out = helm_in(
        [
            "install",
            "periscope",
            chart.to_str().unwrap(),
            "--namespace",
            "default",
            "--set",
            "watchStreams.kinds=pods\\,workloads",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm install:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // (API path prefix, plural) of what the chart creates, each named `periscope`.
    let objects = [
        ("api/v1/namespaces/default", "configmaps"),
        ("api/v1/namespaces/default", "services"),
        ("api/v1/namespaces/default", "serviceaccounts"),
        ("apis/apps/v1/namespaces/default", "deployments"),
        ("apis/policy/v1/namespaces/default", "poddisruptionbudgets"),
        ("apis/rbac.authorization.k8s.io/v1", "clusterroles"),
        ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ];
    let http = reqwest::Client::new();
    let get = |prefix: &str, plural: &str| {
        let url = format!("{}/{prefix}/{plural}/periscope", sim.url().trim_end_matches('/'));
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    for (prefix, plural) in objects {
        let response = get(prefix, plural).await;
        assert_eq!(response.status(), 200, "helm install created no {plural}/periscope");
    }
    let role: Value = get(objects[5].0, objects[5].1).await.json().await.unwrap();
    assert!(role["rules"].to_string().contains("subjectaccessreviews"), "{role}");

    let out = helm_in(
        ["uninstall", "periscope", "--namespace", "default", "--wait"]
            .map(String::from)
            .to_vec(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm uninstall:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for (prefix, plural) in objects {
        let response = get(prefix, plural).await;
        assert_eq!(response.status(), 404, "helm uninstall left {plural}/periscope");
    }
    let secrets: Value = http
        .get(format!(
            "{}/api/v1/namespaces/default/secrets?labelSelector=owner%3Dhelm",
            sim.url().trim_end_matches('/')
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secrets["items"], json!([]), "helm's release secret is left");
}
