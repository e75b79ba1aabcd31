//! `make bench-audit` (`cargo bench --bench audit_scale`): how long `openclaw-admission audit`
//! takes on a real API server holding many agent Pods, and what `audit --write-reports` writes
//! there (default 10,000 then 50,000 Pods; `AUDIT_BENCH_PODS`, a comma-separated list of
//! increasing counts).
//!
//! It starts the project's control plane (tests/controlplane/up.sh), installs OpenReports'
//! CRDs as its module ships them (tests/reports/fetch.sh), seeds one namespace with its
//! ServiceAccount, an egress policy and N agent Pods (created 32 at a time by the kube client;
//! no webhook is registered, so seeding measures nothing of ours), then runs the binary's
//! `audit` end to end (list every page, judge every Pod, print JSON) at two page sizes and
//! prints the wall time and the Pods per second. Last, `audit --write-reports` at the default
//! report bound: its wall time, its peak resident set (the kernel's high-water mark, VmHWM,
//! read every 5 ms while it runs), and, listed back from the API server, the number of Report
//! objects and the largest in bytes of JSON as the API server returns it. Each count is seeded
//! on top of the one before.
//!
//! Under `cargo test` (no `--bench` argument) it does the same with 50 Pods and checks the
//! counts, so the bench cannot rot unnoticed.

use anyhow::{Context as _, bail, ensure};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

#[path = "../common/controlplane.rs"]
mod controlplane;
#[path = "../common/prebuilt.rs"]
mod prebuilt;
#[path = "../common/procfs.rs"]
mod procfs;

use controlplane::ControlPlane;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
const NS: &str = "bench-agents";

fn agent_pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("agent-{i:05}"), "namespace": NS, "labels": {"app": "openclaw"}},
        "spec": {
            "serviceAccountName": "openclaw-agent", "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "agent", "image": "ghcr.io/openclaw/openclaw:2026.11",
                "securityContext": {"readOnlyRootFilesystem": !i.is_multiple_of(10), "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}}}]
        }
    })
}

/// `kubectl` of the control plane with `stdin` fed to it.
fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> anyhow::Result<()> {
    let bin = prebuilt::control_plane().map_err(anyhow::Error::msg)?;
    let mut child = Command::new(bin.join("kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    use std::io::Write;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    ensure!(child.wait()?.success(), "kubectl {args:?} failed");
    Ok(())
}

/// OpenReports' CRDs from the pinned module, established.
fn install_report_crds(kubeconfig: &Path) -> anyhow::Result<()> {
    let dir = prebuilt::require(&[prebuilt::Need::ReportCrds])
        .map_err(anyhow::Error::msg)?
        .remove(0);
    kubectl(
        kubeconfig,
        &["apply", "-f", &dir.join("openreports").to_string_lossy()],
        "",
    )?;
    kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/reports.openreports.io",
            "crd/clusterreports.openreports.io",
        ],
        "",
    )
}

/// The namespace, its ServiceAccount and egress policy.
async fn prepare(kubeconfig: &Path) -> anyhow::Result<()> {
    let client = openclaw_admission::cluster::client(Some(kubeconfig)).await?;
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await?;
    // The namespace's controllers make `default`; ours is created by hand.
    kubectl(
        kubeconfig,
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "openclaw-agent", "namespace": NS}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": NS},
             "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]})
        .to_string(),
    )?;
    Ok(())
}

/// Agent Pods `from..to`.
async fn seed(kubeconfig: &Path, from: usize, to: usize) -> anyhow::Result<()> {
    let client = openclaw_admission::cluster::client(Some(kubeconfig)).await?;
    let api = Api::<Pod>::namespaced(client, NS);
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(from..to)
        .map(|i| {
            let api = api.clone();
            async move {
                let pod: Pod = serde_json::from_value(agent_pod(i))?;
                api.create(&PostParams::default(), &pod).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    eprintln!(
        "seeded {} agent Pods in {:.1}s ({to} in all)",
        to - from,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn apply(client: &Client, ns: serde_json::Value) -> anyhow::Result<()> {
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let ns = serde_json::from_value(ns)?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Runs `audit` end to end: wall time and the number of agent objects it judged.
fn run_audit(kubeconfig: &Path, page: u32) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "audit",
            "-o",
            "json",
            "--page-size",
            &page.to_string(),
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .output()
        .context("cannot run audit")?;
    let secs = started.elapsed().as_secs_f64();
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!("audit failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let judged = report["total"]["objects"].as_u64().unwrap_or(0);
    Ok((secs, usize::try_from(judged)?))
}

/// What one `audit --write-reports` run cost and wrote.
struct Written {
    secs: f64,
    peak_kib: u64,
    reports: usize,
    largest_bytes: usize,
}

/// Runs `audit --write-reports` (OpenReports, the default bound), its peak resident set
/// polled while it runs, then lists the Reports back: how many, the largest, and whether
/// their summaries add up to one result per passing object and one per violation.
async fn run_write_reports(kubeconfig: &Path) -> anyhow::Result<Written> {
    let out_file = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args([
            "audit",
            "-o",
            "json",
            "--write-reports",
            "--report-api",
            "openreports",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .stdout(out_file.reopen()?)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run audit")?;
    let pid = child.id();
    let mut peak_kib = 0;
    let status = loop {
        // VmHWM is the kernel's high-water mark: polling loses at most the last few ms.
        if let Ok(kib) = procfs::proc_status_kib(pid, "VmHWM") {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut stderr)?;
    }
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("audit --write-reports failed: {stderr}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out_file.path())?)?;
    let want: u64 = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["violations"].as_array().map_or(0, Vec::len).max(1) as u64)
        .sum();

    let client = openclaw_admission::cluster::client(Some(kubeconfig)).await?;
    let ar = kube::api::ApiResource {
        group: "openreports.io".into(),
        version: "v1alpha1".into(),
        api_version: "openreports.io/v1alpha1".into(),
        kind: "Report".into(),
        plural: "reports".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client, NS, &ar);
    let (mut reports, mut largest_bytes, mut counted) = (0, 0, 0u64);
    let mut lp = kube::api::ListParams::default().limit(10);
    loop {
        let page = api.list(&lp).await?;
        for o in &page.items {
            reports += 1;
            largest_bytes = largest_bytes.max(serde_json::to_vec(o)?.len());
            for k in ["pass", "fail", "warn", "error", "skip"] {
                counted += o.data["summary"][k].as_u64().unwrap_or(0);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    ensure!(
        counted == want,
        "the Reports' summaries count {counted} results, audit judged {want}"
    );
    Ok(Written {
        secs,
        peak_kib,
        reports,
        largest_bytes,
    })
}

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let counts: Vec<usize> = if bench {
        match std::env::var("AUDIT_BENCH_PODS") {
            Ok(v) => match v.split(',').map(|n| n.trim().parse()).collect() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("AUDIT_BENCH_PODS={v:?}: not a comma-separated list of counts: {e}");
                    return ExitCode::FAILURE;
                }
            },
            Err(_) => vec![10_000, 50_000],
        }
    } else {
        vec![50]
    };
    if !counts.windows(2).all(|w| w[0] < w[1]) {
        eprintln!("AUDIT_BENCH_PODS: each count must be larger than the one before");
        return ExitCode::FAILURE;
    }
    let run = || -> anyhow::Result<()> {
        let cp = ControlPlane::start()?;
        install_report_crds(&cp.kubeconfig())?;
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(prepare(&cp.kubeconfig()))?;
        let mut seeded = 0;
        for &pods in &counts {
            rt.block_on(seed(&cp.kubeconfig(), seeded, pods))?;
            seeded = pods;
            for page in [500u32, 100] {
                let (secs, judged) = run_audit(&cp.kubeconfig(), page)?;
                ensure!(
                    judged == pods,
                    "audit judged {judged} agent objects, {pods} were seeded"
                );
                println!(
                    "audit of {pods} agent Pods, page size {page}: {secs:.2} s end to end ({:.0} Pods/s)",
                    pods as f64 / secs
                );
            }
            let w = rt.block_on(run_write_reports(&cp.kubeconfig()))?;
            ensure!(w.reports >= 1, "no Report written");
            println!(
                "audit --write-reports of {pods} agent Pods: {:.2} s end to end, peak RSS {:.1} MiB, {} Report(s), largest {} bytes",
                w.secs,
                w.peak_kib as f64 / 1024.0,
                w.reports,
                w.largest_bytes
            );
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
