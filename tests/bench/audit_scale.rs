//! `make bench-audit` (`cargo bench --bench audit_scale`): how long `openclaw-admission audit`
//! takes on a real API server holding many agent Pods (default 10,000; `AUDIT_BENCH_PODS`).
//!
//! It starts the project's control plane (tests/controlplane/up.sh), seeds one namespace with
//! its ServiceAccount, an egress policy and N agent Pods (created 32 at a time by the kube
//! client; no webhook is registered, so seeding measures nothing of ours), then runs the
//! binary's `audit` end to end (list every page, judge every Pod, print JSON) at two page
//! sizes and prints the wall time and the Pods per second.
//!
//! Under `cargo test` (no `--bench` argument) it does the same with 50 Pods and checks the
//! count, so the bench cannot rot unnoticed.

use anyhow::{Context as _, bail, ensure};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[path = "../common/prebuilt.rs"]
mod prebuilt;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
const NS: &str = "bench-agents";

struct ControlPlane {
    dir: tempfile::TempDir,
}

impl ControlPlane {
    fn start() -> anyhow::Result<ControlPlane> {
        // up.sh would build a missing control plane itself, for many minutes.
        prebuilt::control_plane().map_err(anyhow::Error::msg)?;
        let dir = tempfile::tempdir()?;
        let status = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/up.sh"))
            .arg(dir.path().join("cp"))
            .env("OPENCLAW_CP_OWNER_PID", std::process::id().to_string())
            .status()
            .context("cannot run up.sh")?;
        ensure!(status.success(), "up.sh failed");
        Ok(ControlPlane { dir })
    }
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("cp/kubeconfig")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/down.sh"))
            .arg(self.dir.path().join("cp"))
            .status();
    }
}

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

async fn seed(kubeconfig: &Path, pods: usize) -> anyhow::Result<()> {
    let client = openclaw_admission::cluster::client(Some(kubeconfig)).await?;
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await?;
    // The namespace's controllers make `default`; ours is created by hand.
    let kubectl = |args: &[&str], stdin: &str| -> anyhow::Result<()> {
        let bin = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/build.sh"))
            .arg("--print-bin-dir")
            .output()?;
        let bin = String::from_utf8(bin.stdout)?.trim().to_string();
        let mut child = Command::new(format!("{bin}/kubectl"))
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
    };
    kubectl(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "openclaw-agent", "namespace": NS}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": NS},
             "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]})
        .to_string(),
    )?;
    let api = Api::<Pod>::namespaced(client, NS);
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..pods)
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
        "seeded {pods} agent Pods in {:.1}s",
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

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let pods: usize = if bench {
        std::env::var("AUDIT_BENCH_PODS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    } else {
        50
    };
    let run = || -> anyhow::Result<()> {
        let cp = ControlPlane::start()?;
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(seed(&cp.kubeconfig(), pods))?;
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
