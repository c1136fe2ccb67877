//! A real helm release's lifecycle against the sim: install, list, status, upgrade,
//! rollback and uninstall of a small chart.
//!
//! helm keeps its releases in Secrets (`sh.helm.release.v1.<name>.v<revision>`, type
//! `helm.sh/release.v1`, labels `owner=helm,name,status,version`) and writes them with
//! client-go's typed client, which sends protobuf bodies (and DeleteOptions as protobuf
//! on uninstall); the chart's objects go as JSON apply patches: helm 4 applies
//! server-side by default (field manager `helm`), and every command here runs with
//! helm's defaults. Without `--wait` helm waits only for hooks, and the charts have none.
//! The second test does the same with the project's own chart (`charts/periscope`).

use std::path::PathBuf;
use std::process::Output;

use periscope_sim::Sim;
use serde_json::Value;

use crate::support::{empty_sim, helm_path, within};

const CHART: &str = "apiVersion: v2
name: demo
version: 0.1.0
appVersion: \"1.0\"
";

const VALUES: &str = "x: one
";

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  x: {{ .Values.x | quote }}
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
      annotations:
        x: {{ .Values.x | quote }}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - name: http
          containerPort: 80
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
  - name: http
    port: 80
    targetPort: http
";

/// Runs helm against one sim, with its own kubeconfig, helm home and chart.
struct Helm {
    dir: tempfile::TempDir,
}

impl Helm {
    fn new(sim: &Sim) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        sim.write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("the kubeconfig is written");
        let chart = dir.path().join("chart");
        let templates = chart.join("templates");
        std::fs::create_dir_all(&templates).expect("the chart directory is created");
        for (path, contents) in [
            (chart.join("Chart.yaml"), CHART),
            (chart.join("values.yaml"), VALUES),
            (templates.join("configmap.yaml"), CONFIG_MAP),
            (templates.join("deployment.yaml"), DEPLOYMENT),
            (templates.join("service.yaml"), SERVICE),
        ] {
            std::fs::write(&path, contents).expect("the chart file is written");
        }
        Self { dir }
    }

    fn chart(&self) -> PathBuf {
        self.dir.path().join("chart")
    }

    /// The project's chart, `charts/periscope`.
    fn project_chart() -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/periscope")
    }

    fn home(&self, what: &str) -> PathBuf {
        self.dir.path().join("helm").join(what)
    }

    /// Runs helm to completion and returns stdout; fails the test on a non-zero exit.
    async fn run(&self, args: &[&str]) -> String {
        let output: Output = within(
            &format!("helm {}", args.join(" ")),
            tokio::process::Command::new(helm_path())
                .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
                .env("HELM_CACHE_HOME", self.home("cache"))
                .env("HELM_CONFIG_HOME", self.home("config"))
                .env("HELM_DATA_HOME", self.home("data"))
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("helm runs");
        assert!(
            output.status.success(),
            "helm {} failed: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("helm prints UTF-8")
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("helm {} printed no JSON ({e}): {out}", args.join(" ")))
    }
}

/// The release's storage Secrets as `(revision, status label)`, by revision.
fn revisions(sim: &Sim, release: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sim
        .objects("secrets", Some("default"))
        .expect("secrets are served")
        .iter()
        .filter(|s| s["metadata"]["labels"]["owner"] == "helm" && s["metadata"]["labels"]["name"] == release)
        .map(|s| {
            assert_eq!(s["type"], "helm.sh/release.v1", "{s}");
            let name = s["metadata"]["name"].as_str().unwrap_or_default();
            let version = s["metadata"]["labels"]["version"].as_str().unwrap_or_default();
            assert_eq!(name, format!("sh.helm.release.v1.{release}.v{version}"));
            assert!(
                s["data"]["release"].as_str().is_some_and(|r| !r.is_empty()),
                "the release payload is stored: {s}"
            );
            let status = s["metadata"]["labels"]["status"].as_str().unwrap_or_default();
            (version.to_string(), status.to_string())
        })
        .collect();
    out.sort_by_key(|(version, _)| version.parse::<u32>().unwrap_or(0));
    out
}

fn config_value(sim: &Sim) -> Option<String> {
    sim.get("configmaps", Some("default"), "demo-config")
        .expect("configmaps are served")
        .and_then(|cm| cm["data"]["x"].as_str().map(str::to_string))
}

fn pair(version: &str, status: &str) -> (String, String) {
    (version.to_string(), status.to_string())
}

#[tokio::test]
async fn a_release_installs_upgrades_rolls_back_and_uninstalls() {
    let sim = empty_sim().await;
    let helm = Helm::new(&sim);
    let chart = helm.chart();
    let chart = chart.to_str().expect("a UTF-8 temp path");

    helm.run(&["install", "demo", chart]).await;
    assert_eq!(revisions(&sim, "demo"), [pair("1", "deployed")]);
    assert_eq!(config_value(&sim).as_deref(), Some("one"));
    let deployment = sim
        .get("deployments", Some("default"), "demo")
        .expect("deployments are served")
        .expect("the chart's Deployment is created");
    assert_eq!(deployment["spec"]["template"]["metadata"]["annotations"]["x"], "one");
    assert_applied_by_helm(&deployment);
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            ["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
        serde_json::json!({ ".": {}, "f:containerPort": {}, "f:name": {} }),
        "{deployment}"
    );
    let service = sim
        .get("services", Some("default"), "demo")
        .expect("services are served")
        .expect("the chart's Service is created");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");

    let list = helm.json(&["list", "-o", "json"]).await;
    let releases = list.as_array().expect("helm list prints an array");
    assert_eq!(releases.len(), 1, "{list}");
    assert_eq!(releases[0]["name"], "demo");
    assert_eq!(releases[0]["revision"], "1");
    assert_eq!(releases[0]["status"], "deployed");
    assert_eq!(releases[0]["chart"], "demo-0.1.0");

    let status = helm.json(&["status", "demo", "-o", "json"]).await;
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    assert_eq!(status["version"], 1);

    helm.run(&["upgrade", "demo", chart, "--set", "x=two"]).await;
    let config = sim
        .get("configmaps", Some("default"), "demo-config")
        .expect("configmaps are served")
        .expect("the ConfigMap stays");
    assert_applied_by_helm(&config);
    assert_eq!(
        revisions(&sim, "demo"),
        [pair("1", "superseded"), pair("2", "deployed")]
    );
    assert_eq!(config_value(&sim).as_deref(), Some("two"));

    helm.run(&["rollback", "demo", "1"]).await;
    assert_eq!(
        revisions(&sim, "demo"),
        [pair("1", "superseded"), pair("2", "superseded"), pair("3", "deployed")]
    );
    assert_eq!(config_value(&sim).as_deref(), Some("one"));
    let status = helm.json(&["status", "demo", "-o", "json"]).await;
    assert_eq!(status["version"], 3);
    assert_eq!(status["info"]["description"], "Rollback to 1");

    helm.run(&["uninstall", "demo"]).await;
    assert_eq!(revisions(&sim, "demo"), []);
    assert_eq!(config_value(&sim), None);
    for plural in ["deployments", "services"] {
        assert_eq!(
            sim.get(plural, Some("default"), "demo").expect("served"),
            None,
            "the chart's {plural} are deleted"
        );
    }
    let list = helm.json(&["list", "-o", "json"]).await;
    assert_eq!(list, Value::Array(Vec::new()));
}

/// The object was created and is owned by helm's server-side apply, alone.
fn assert_applied_by_helm(obj: &Value) {
    let entries = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields are recorded");
    let appliers: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default(),
                e["operation"].as_str().unwrap_or_default(),
            )
        })
        .filter(|(_, operation)| *operation == "Apply")
        .collect();
    assert_eq!(appliers, [("helm", "Apply")], "{obj}");
    assert_eq!(entries[0]["fieldsType"], "FieldsV1");
}

#[tokio::test]
async fn the_project_chart_installs_upgrades_rolls_back_and_uninstalls() {
    let sim = empty_sim().await;
    let helm = Helm::new(&sim);
    let chart = Helm::project_chart();
    let chart = chart.to_str().expect("a UTF-8 path");
    let deployment = || {
        sim.get("deployments", Some("default"), "periscope")
            .expect("deployments are served")
    };

    // `--wait` checks every object's status as helm 4 does (kstatus): the controllers
    // must bring the Deployment to its replicas.
    helm.run(&[
        "install",
        "periscope",
        chart,
        "--set",
        "watchStreams.kinds=pods\\,workloads",
        "--wait",
        "--timeout=20s",
    ])
    .await;
    assert_eq!(revisions(&sim, "periscope"), [pair("1", "deployed")]);
    let installed = deployment().expect("the chart's Deployment is created");
    assert_applied_by_helm(&installed);
    assert_eq!(installed["spec"]["replicas"], 2);
    for (plural, name) in [
        ("configmaps", "periscope"),
        ("services", "periscope"),
        ("serviceaccounts", "periscope"),
        ("poddisruptionbudgets", "periscope"),
    ] {
        let obj = sim
            .get(plural, Some("default"), name)
            .expect("served")
            .unwrap_or_else(|| panic!("helm install created no {plural}/{name}"));
        assert_applied_by_helm(&obj);
    }
    for plural in ["clusterroles", "clusterrolebindings"] {
        assert!(
            sim.get(plural, None, "periscope").expect("served").is_some(),
            "no {plural}/periscope"
        );
    }

    helm.run(&[
        "upgrade",
        "periscope",
        chart,
        "--set",
        "watchStreams.kinds=pods\\,workloads",
        "--set",
        "replicaCount=3",
        "--wait",
        "--timeout=20s",
    ])
    .await;
    assert_eq!(
        revisions(&sim, "periscope"),
        [pair("1", "superseded"), pair("2", "deployed")]
    );
    let upgraded = deployment().expect("kept");
    assert_eq!(upgraded["spec"]["replicas"], 3);
    assert_eq!(upgraded["status"]["readyReplicas"], 3, "--wait saw it ready");

    helm.run(&["rollback", "periscope", "1", "--wait", "--timeout=20s"])
        .await;
    assert_eq!(
        revisions(&sim, "periscope"),
        [pair("1", "superseded"), pair("2", "superseded"), pair("3", "deployed")]
    );
    assert_eq!(deployment().expect("kept")["spec"]["replicas"], 2);

    helm.run(&["uninstall", "periscope", "--wait"]).await;
    assert_eq!(revisions(&sim, "periscope"), []);
    assert_eq!(deployment(), None);
    assert!(sim.get("clusterroles", None, "periscope").expect("served").is_none());
    // The garbage collector takes the Deployment's replica sets and pods with it.
    within("the garbage collector", async {
        while !sim.objects("replicasets", Some("default")).expect("served").is_empty()
            || !sim.objects("pods", Some("default")).expect("served").is_empty()
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}
