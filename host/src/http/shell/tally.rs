//! What the fleet and overview pages count, from the summary DTOs the hub holds
//! (`spec/dtos.md` section 4). Pure functions over rows, so unit tests pin the rules.
//!
//! The pod DTO carries no raw phase, only the kubectl-style display status (4.1), so
//! every pod rule here reads that status: a failing container reason
//! (`CrashLoopBackOff`, `OOMKilled`, …, also behind `Init:`) makes the pod *stuck*,
//! whatever its phase.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Container reasons that make a pod stuck: it will not get better on its own.
const STUCK: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
    "OOMKilled",
];

/// Stuck reasons a pod meets before its containers ever start (its phase is `Pending`).
const STUCK_BEFORE_START: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// At most this many pods in `needsAttention`.
pub(super) const ATTENTION_CAP: usize = 20;

// === rows: the DTO fields the shell reads ===

/// A pod DTO's fields (4.1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Pod {
    pub name: String,
    pub namespace: String,
    /// The display status, not the raw phase.
    pub phase: String,
    pub restarts: i64,
}

/// A node DTO's fields (4.19).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Node {
    pub status: String,
    pub kubelet_version: String,
    /// Formatted: `"2.00 cores"` or `"500m"`.
    pub cpu_capacity: String,
    /// Formatted: `"7.6 GiB"`, `"512.0 MiB"`, `"0 B"`.
    pub memory_capacity: String,
}

/// Any DTO, when only the count matters (namespaces).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Counted {}

/// A deployment or stateful set DTO's fields (4.3, 4.4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Replicated {
    pub replicas: i64,
    pub ready_replicas: i64,
}

/// A daemon set DTO's fields (4.5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct DaemonSet {
    pub desired_number_scheduled: i64,
    pub number_ready: i64,
}

/// A job, PV or PVC DTO's `status` (4.7, 4.16, 4.17) and, for volumes, `capacity`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Status {
    pub status: String,
    pub capacity: String,
}

/// A cron job DTO's fields (4.8).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct CronJob {
    pub suspend: bool,
}

// === pods ===

/// Where a pod's display status puts it on the overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bucket {
    Running,
    Pending,
    Succeeded,
    Failed,
    Unknown,
    Stuck,
}

impl Bucket {
    /// The bucket of a pod DTO's display status.
    pub(super) fn of(status: &str) -> Bucket {
        let (init, reason) = match status.strip_prefix("Init:") {
            Some(reason) => (true, reason),
            None => (false, status),
        };
        if STUCK.contains(&reason) {
            return Bucket::Stuck;
        }
        if init {
            // `Init:<i>/<N>` is progress; `Init:Error`, `Init:ExitCode:1`… a failure.
            let progress = reason.split_once('/').is_some_and(|(done, of)| {
                [done, of]
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            return if progress { Bucket::Pending } else { Bucket::Failed };
        }
        match reason {
            "Running" | "NotReady" | "Terminating" => Bucket::Running,
            "Pending" | "ContainerCreating" | "PodInitializing" => Bucket::Pending,
            "Succeeded" | "Completed" => Bucket::Succeeded,
            "Failed"
            | "Error"
            | "Evicted"
            | "ContainerStatusUnknown"
            | "DeadlineExceeded"
            | "Shutdown"
            | "Terminated"
            | "NodeAffinity"
            | "OutOfcpu"
            | "OutOfmemory"
            | "UnexpectedAdmissionError" => Bucket::Failed,
            r if r.starts_with("ExitCode:") || r.starts_with("Signal:") => Bucket::Failed,
            // `Unknown`, `NodeLost`, `""` and reasons this list does not know.
            _ => Bucket::Unknown,
        }
    }

    /// True for the pods the pages call failing (stuck or failed).
    pub(super) fn is_failing(self) -> bool {
        matches!(self, Bucket::Stuck | Bucket::Failed)
    }
}

/// `podPhases`: every pod in exactly one bucket, so the values sum to the pod count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct PodPhases {
    pub running: u64,
    pub pending: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub unknown: u64,
    pub stuck: u64,
}

impl PodPhases {
    /// The buckets of `pods`.
    pub(super) fn of(pods: &[Pod]) -> PodPhases {
        let mut phases = PodPhases::default();
        for pod in pods {
            *match Bucket::of(&pod.phase) {
                Bucket::Running => &mut phases.running,
                Bucket::Pending => &mut phases.pending,
                Bucket::Succeeded => &mut phases.succeeded,
                Bucket::Failed => &mut phases.failed,
                Bucket::Unknown => &mut phases.unknown,
                Bucket::Stuck => &mut phases.stuck,
            } += 1;
        }
        phases
    }
}

/// One `hotSignals` entry: a failing reason and how many pods show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct HotSignal {
    pub kind: String,
    pub count: u64,
}

/// The failing pods' reasons counted, largest count first, then by name.
pub(super) fn hot_signals(pods: &[Pod]) -> Vec<HotSignal> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for pod in pods.iter().filter(|p| Bucket::of(&p.phase).is_failing()) {
        *counts.entry(pod.phase.as_str()).or_default() += 1;
    }
    let mut signals: Vec<HotSignal> = counts
        .into_iter()
        .map(|(kind, count)| HotSignal {
            kind: kind.to_string(),
            count,
        })
        .collect();
    // The map iterates by name, and the sort is stable: ties stay in name order.
    signals.sort_by_key(|s| std::cmp::Reverse(s.count));
    signals
}

/// One `needsAttention` entry. The DTO names no container and carries no message, so
/// `container?` and `message?` are always omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Attention {
    pub name: String,
    pub namespace: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<i64>,
    /// The phase the kubelet reports for such a pod (the DTO has only the display status).
    pub phase: &'static str,
}

/// Stuck pods, then failed ones, each by namespace and name; at most [`ATTENTION_CAP`].
pub(super) fn needs_attention(pods: &[Pod]) -> Vec<Attention> {
    let mut failing: Vec<(Bucket, &Pod)> = pods
        .iter()
        .map(|p| (Bucket::of(&p.phase), p))
        .filter(|(bucket, _)| bucket.is_failing())
        .collect();
    failing.sort_by(|(a, p), (b, q)| {
        (*b == Bucket::Stuck)
            .cmp(&(*a == Bucket::Stuck))
            .then_with(|| (&p.namespace, &p.name).cmp(&(&q.namespace, &q.name)))
    });
    failing
        .into_iter()
        .take(ATTENTION_CAP)
        .map(|(bucket, pod)| {
            let reason = pod.phase.strip_prefix("Init:").unwrap_or(&pod.phase);
            let phase = match bucket {
                Bucket::Stuck if pod.phase.starts_with("Init:") || STUCK_BEFORE_START.contains(&reason) => "Pending",
                Bucket::Stuck => "Running",
                _ => "Failed",
            };
            Attention {
                name: pod.name.clone(),
                namespace: pod.namespace.clone(),
                reason: pod.phase.clone(),
                restart_count: (pod.restarts > 0).then_some(pod.restarts),
                phase,
            }
        })
        .collect()
}

// === nodes ===

/// True when the node DTO says `Ready`.
pub(super) fn is_ready(node: &Node) -> bool {
    node.status == "Ready"
}

/// The kubelet version most nodes run (ties: the lowest string); `""` without nodes.
pub(super) fn kubernetes_version(nodes: &[Node]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node in nodes.iter().filter(|n| !n.kubelet_version.is_empty()) {
        *counts.entry(node.kubelet_version.as_str()).or_default() += 1;
    }
    let mut best: Option<(&str, usize)> = None;
    for (version, count) in counts {
        if best.is_none_or(|(_, most)| count > most) {
            best = Some((version, count));
        }
    }
    best.map(|(version, _)| version.to_string()).unwrap_or_default()
}

/// The nodes' CPU as a Kubernetes quantity in cores (`"28"`, `"2.5"`); `""` without
/// nodes. Summed from the DTO's formatted capacity, the only CPU figure it carries.
pub(super) fn total_cpu(nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let millis: f64 = nodes.iter().filter_map(|n| cpu_millis(&n.cpu_capacity)).sum();
    decimal(millis / 1000.0, 3)
}

/// The nodes' memory as a Kubernetes quantity in Gi (`"62.5Gi"`); `""` without nodes.
/// The DTO rounds each node to 0.1 of its unit, so the sum is as precise as that.
pub(super) fn total_memory(nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let bytes: f64 = nodes.iter().filter_map(|n| formatted_bytes(&n.memory_capacity)).sum();
    format!("{}Gi", decimal(bytes / GI, 1))
}

const GI: f64 = (1u64 << 30) as f64;

/// Millicores of a node DTO's `cpuCapacity` (`"2.00 cores"`, `"500m"`).
fn cpu_millis(formatted: &str) -> Option<f64> {
    if let Some(cores) = formatted.strip_suffix(" cores") {
        return cores.trim().parse::<f64>().ok().map(|c| c * 1000.0);
    }
    formatted.strip_suffix('m')?.trim().parse().ok()
}

/// Bytes of a node DTO's `memoryCapacity` (`"7.6 GiB"`, `"512.0 MiB"`, `"0 B"`).
fn formatted_bytes(formatted: &str) -> Option<f64> {
    let (number, unit) = formatted.trim().split_once(' ')?;
    let scale = match unit {
        "GiB" => GI,
        "MiB" => (1u64 << 20) as f64,
        "KiB" => 1024.0,
        "B" => 1.0,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// `value` with at most `places` decimals, trailing zeros trimmed (`2.50` → `2.5`).
fn decimal(value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

// === workloads and storage ===

/// `{"total", "healthy"}` of one workload kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct Health {
    pub total: u64,
    pub healthy: u64,
}

impl Health {
    /// Counts `rows`, `healthy` deciding each.
    pub(super) fn of<T>(rows: &[T], healthy: impl Fn(&T) -> bool) -> Health {
        Health {
            total: rows.len() as u64,
            healthy: rows.iter().filter(|r| healthy(r)).count() as u64,
        }
    }
}

/// Deployments and stateful sets: every desired replica is ready.
pub(super) fn replicas_ready(row: &Replicated) -> bool {
    row.ready_replicas == row.replicas
}

/// Daemon sets: a ready pod on every node that should run one.
pub(super) fn daemons_ready(row: &DaemonSet) -> bool {
    row.number_ready == row.desired_number_scheduled
}

/// Jobs: completed.
pub(super) fn job_complete(row: &Status) -> bool {
    row.status == "Complete"
}

/// Cron jobs: not suspended (a cron job has no readiness of its own).
pub(super) fn cron_active(row: &CronJob) -> bool {
    !row.suspend
}

/// The PVs' summed capacity in Gi (`"20Gi"`), or `None` when none states one.
pub(super) fn total_provisioned(pvs: &[Status]) -> Option<String> {
    let sizes: Vec<f64> = pvs.iter().filter_map(|pv| quantity_bytes(&pv.capacity)).collect();
    if sizes.is_empty() {
        return None;
    }
    Some(format!("{}Gi", decimal(sizes.iter().sum::<f64>() / GI, 1)))
}

/// Bytes of a canonical Kubernetes quantity (`"10Gi"`, `"500M"`, `"1e3"`).
fn quantity_bytes(quantity: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let quantity = quantity.trim();
    if quantity.is_empty() {
        return None;
    }
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| quantity.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((quantity, 1.0));
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str) -> Pod {
        Pod {
            name: name.to_string(),
            namespace: "ns".to_string(),
            phase: phase.to_string(),
            restarts: 0,
        }
    }

    fn node(status: &str, version: &str, cpu: &str, memory: &str) -> Node {
        Node {
            status: status.to_string(),
            kubelet_version: version.to_string(),
            cpu_capacity: cpu.to_string(),
            memory_capacity: memory.to_string(),
        }
    }

    #[test]
    fn failing_container_reasons_make_a_pod_stuck_even_behind_init() {
        for status in [
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
            "OOMKilled",
            "Init:CrashLoopBackOff",
            "Init:ImagePullBackOff",
        ] {
            assert_eq!(Bucket::of(status), Bucket::Stuck, "{status}");
        }
    }

    #[test]
    fn display_statuses_land_in_their_phase_bucket() {
        let cases = [
            ("Running", Bucket::Running),
            ("NotReady", Bucket::Running),
            ("Terminating", Bucket::Running),
            ("Pending", Bucket::Pending),
            ("ContainerCreating", Bucket::Pending),
            ("Init:0/2", Bucket::Pending),
            ("Init:Error", Bucket::Failed),
            ("Init:ExitCode:3", Bucket::Failed),
            ("Completed", Bucket::Succeeded),
            ("Succeeded", Bucket::Succeeded),
            ("Error", Bucket::Failed),
            ("Evicted", Bucket::Failed),
            ("ExitCode:137", Bucket::Failed),
            ("Signal:9", Bucket::Failed),
            ("Unknown", Bucket::Unknown),
            ("NodeLost", Bucket::Unknown),
            ("", Bucket::Unknown),
        ];
        for (status, bucket) in cases {
            assert_eq!(Bucket::of(status), bucket, "{status:?}");
        }
    }

    #[test]
    fn pod_phases_sum_to_the_pod_count() {
        let pods: Vec<Pod> = [
            "Running",
            "CrashLoopBackOff",
            "Pending",
            "Completed",
            "Error",
            "Unknown",
            "Running",
        ]
        .iter()
        .map(|s| pod("p", s))
        .collect();
        let phases = PodPhases::of(&pods);
        let sum = phases.running + phases.pending + phases.succeeded + phases.failed + phases.unknown + phases.stuck;
        assert_eq!(sum, pods.len() as u64);
        assert_eq!((phases.running, phases.stuck), (2, 1));
    }

    #[test]
    fn hot_signals_go_largest_first_then_by_name() {
        let pods: Vec<Pod> = [
            "OOMKilled",
            "Error",
            "CrashLoopBackOff",
            "Error",
            "Running",
            "CrashLoopBackOff",
        ]
        .iter()
        .map(|s| pod("p", s))
        .collect();
        let kinds: Vec<(String, u64)> = hot_signals(&pods).into_iter().map(|s| (s.kind, s.count)).collect();
        assert_eq!(
            kinds,
            [
                ("CrashLoopBackOff".to_string(), 2),
                ("Error".to_string(), 2),
                ("OOMKilled".to_string(), 1)
            ]
        );
    }

    #[test]
    fn needs_attention_puts_stuck_pods_first_and_stops_at_twenty() {
        let mut pods: Vec<Pod> = (0..30).map(|i| pod(&format!("failed-{i:02}"), "Error")).collect();
        pods.push(Pod {
            restarts: 7,
            ..pod("looper", "CrashLoopBackOff")
        });
        pods.push(pod("puller", "ImagePullBackOff"));
        let attention = needs_attention(&pods);
        assert_eq!(attention.len(), ATTENTION_CAP);
        assert_eq!((attention[0].name.as_str(), attention[0].phase), ("looper", "Running"));
        assert_eq!(attention[0].restart_count, Some(7));
        assert_eq!((attention[1].name.as_str(), attention[1].phase), ("puller", "Pending"));
        assert_eq!(attention[1].restart_count, None);
        assert_eq!(
            (attention[2].name.as_str(), attention[2].phase),
            ("failed-00", "Failed")
        );
    }

    #[test]
    fn node_totals_are_quantities_summed_from_the_formatted_capacity() {
        let nodes = [
            node("Ready", "v1.35.0", "4.00 cores", "15.6 GiB"),
            node("NotReady", "v1.35.0", "500m", "512.0 MiB"),
            node("Ready", "v1.34.2", "16.00 cores", "0 B"),
        ];
        assert_eq!(total_cpu(&nodes), "20.5");
        assert_eq!(total_memory(&nodes), "16.1Gi");
        assert_eq!(kubernetes_version(&nodes), "v1.35.0");
        assert_eq!(nodes.iter().filter(|n| is_ready(n)).count(), 2);
        assert_eq!(
            (total_cpu(&[]), total_memory(&[]), kubernetes_version(&[])),
            (String::new(), String::new(), String::new())
        );
    }

    #[test]
    fn provisioned_storage_sums_canonical_quantities() {
        let pv = |capacity: &str| Status {
            status: "Bound".to_string(),
            capacity: capacity.to_string(),
        };
        assert_eq!(
            total_provisioned(&[pv("10Gi"), pv("512Mi"), pv("")]).as_deref(),
            Some("10.5Gi")
        );
        assert_eq!(total_provisioned(&[pv("")]), None);
        assert_eq!(quantity_bytes("1e3"), Some(1000.0));
        assert_eq!(quantity_bytes("2k"), Some(2000.0));
    }
}
