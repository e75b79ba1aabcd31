//! `make bench-signal` (`cargo bench --bench agent_signal`): what the agent signal costs
//! (src/cluster/agents.rs, issue 26), on the project's real control plane holding many Pods.
//!
//! The webhook knows which namespaces hold agents from one metadata watch of Pods per agent
//! selector, filtered by the API server with the selector. The claim to measure: its memory
//! follows the agents, not the cluster's Pods. And what a change to an egress policy costs,
//! answered from memory or by a lookup of the namespace's Pods.
//!
//! Plan (default sizes; `SIGNAL_BENCH_PODS` sets the total):
//! - 100 agent namespaces of 10 agents each (namespace `a000` holds a Deployment of 10, its
//!   Pods made by the ReplicaSet controller; the others bare Pods): 1,000 agents.
//! - 99,000 other Pods, half spread over the agent namespaces, half over 100 namespaces
//!   without agents. Every Pod, agent or not, carries `bench=signal`.
//! - No Pod webhook is registered, and no scheduler runs: seeding measures nothing of ours and
//!   every Pod stays Pending (unfinished, as the lookup counts them).
//!
//! Phases, each three `openclaw-admission serve` started one after another and measured once
//! ready (built-in policy unless said; memory is reported as their median and range, as one
//! process's resident set varies by megabytes from start to start):
//! 1. The 1,000 agents alone: the webhook's resident memory once ready.
//! 2. The same 1,000 agents among 100,000 Pods: the same figure, which must not follow the
//!    99,000 others.
//! 3. A policy whose one agent selector is `bench=signal`: every Pod is an agent, so the
//!    watch holds what a cluster-wide Pod watch of metadata would (the contrast).
//!
//! In phases 1 and 2 the `validate-egress-policies` entry alone is registered and dry-run
//! DELETEs of an egress policy are timed, one at a time, round-robin over four namespaces:
//! `openclaw-system` (not sent to the webhook: the API server's own cost), a namespace with no
//! agent (answered from memory), one with 10 bare agent Pods and one with the Deployment's 10
//! (a lookup: the namespace's agent Pods listed by selector, the namespace and each workload's
//! owners read). With the other Pods seeded, each agent namespace also holds 490 of them.
//!
//! Under `cargo test` (no `--bench` argument) it runs the same plan on 320 Pods, asserting the
//! verdicts (refused in agent namespaces naming an agent, allowed elsewhere, refused in the
//! no-agent namespace once its Pods are agents) and that each phase came ready.

use anyhow::{Context as _, bail, ensure};
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[path = "../common/controlplane.rs"]
mod controlplane;
#[path = "../common/prebuilt.rs"]
mod prebuilt;
#[path = "../common/procfs.rs"]
mod procfs;

use controlplane::ControlPlane;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
const POLICY_NAME: &str = "agent-egress";
/// Excluded by every entry's namespaceSelector: what the API server costs alone.
const EXCLUDED_NS: &str = "openclaw-system";

struct Plan {
    agent_namespaces: usize,
    agents_per_namespace: usize,
    other_namespaces: usize,
    /// Non-agent Pods, half in the agent namespaces and half in the others.
    others: usize,
    rounds: usize,
    /// Webhooks started per phase; memory figures are their median.
    samples: usize,
}

impl Plan {
    fn new(bench: bool) -> anyhow::Result<Plan> {
        if !bench {
            return Ok(Plan {
                agent_namespaces: 4,
                agents_per_namespace: 5,
                other_namespaces: 4,
                others: 300,
                rounds: 5,
                samples: 1,
            });
        }
        let total: usize = match std::env::var("SIGNAL_BENCH_PODS") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("SIGNAL_BENCH_PODS={v:?} is not a number of Pods"))?,
            Err(_) => 100_000,
        };
        let rounds: usize = match std::env::var("SIGNAL_BENCH_ROUNDS") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("SIGNAL_BENCH_ROUNDS={v:?} is not a number"))?,
            Err(_) => 200,
        };
        ensure!(
            total >= 2_000,
            "SIGNAL_BENCH_PODS={total}: at least 2,000 (1,000 of them are agents)"
        );
        Ok(Plan {
            agent_namespaces: 100,
            agents_per_namespace: 10,
            other_namespaces: 100,
            others: total - 1_000,
            rounds,
            samples: 3,
        })
    }
    fn agents(&self) -> usize {
        self.agent_namespaces * self.agents_per_namespace
    }
    fn pods(&self) -> usize {
        self.agents() + self.others
    }
    fn agent_ns(i: usize) -> String {
        format!("a{i:03}")
    }
    fn other_ns(i: usize) -> String {
        format!("o{i:03}")
    }
    /// The namespace whose agents a Deployment makes.
    fn deployment_ns() -> String {
        Plan::agent_ns(0)
    }
}

// --- seeding ----------------------------------------------------------------------------------

async fn create<K>(api: &Api<K>, object: Value) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object)?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A namespace with the ServiceAccount every Pod names and a default-deny egress policy.
async fn namespace(client: &Client, ns: &str) -> anyhow::Result<()> {
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": ns}}),
    )
    .await?;
    create(
        &Api::<ServiceAccount>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": "agent"}}),
    )
    .await?;
    create(
        &Api::<NetworkPolicy>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": POLICY_NAME},
               "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
    )
    .await
}

fn pod_spec() -> Value {
    json!({
        "serviceAccountName": "agent", "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "main", "image": "ghcr.io/openclaw/openclaw:2026.11",
            "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}}}]
    })
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app, "bench": "signal"}},
           "spec": pod_spec()})
}

/// Creates Pods 64 at a time, printing progress every 10,000.
async fn create_pods(
    client: &Client,
    pods: Vec<(String, Value)>,
    what: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let total = pods.len();
    let mut done = 0usize;
    let mut results = stream::iter(pods)
        .map(|(ns, pod)| {
            let api = Api::<Pod>::namespaced(client.clone(), &ns);
            async move { create(&api, pod).await }
        })
        .buffer_unordered(64);
    while let Some(r) = results.next().await {
        r?;
        done += 1;
        if done.is_multiple_of(10_000) && done < total {
            eprintln!(
                "  {what}: {done} of {total} created ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "  {what}: {total} created in {:.1} s ({:.0} Pods/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// Namespaces, the Deployment of agents and the bare agents.
async fn seed_agents(client: &Client, plan: &Plan) -> anyhow::Result<()> {
    let mut names: Vec<String> = (0..plan.agent_namespaces).map(Plan::agent_ns).collect();
    names.extend((0..plan.other_namespaces).map(Plan::other_ns));
    names.push(EXCLUDED_NS.to_string());
    let results: Vec<anyhow::Result<()>> = stream::iter(names)
        .map(|ns| async move { namespace(client, &ns).await })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let dns = Plan::deployment_ns();
    create(
        &Api::<Deployment>::namespaced(client.clone(), &dns),
        json!({"metadata": {"name": "agent"},
               "spec": {"replicas": plan.agents_per_namespace,
                        "selector": {"matchLabels": {"app": "openclaw"}},
                        "template": {"metadata": {"labels": {"app": "openclaw", "bench": "signal"}},
                                     "spec": pod_spec()}}}),
    )
    .await?;
    let bare: Vec<(String, Value)> = (1..plan.agent_namespaces)
        .flat_map(|n| {
            (0..plan.agents_per_namespace).map(move |i| {
                let ns = Plan::agent_ns(n);
                let p = pod(&ns, &format!("agent-{i:02}"), "openclaw");
                (ns, p)
            })
        })
        .collect();
    create_pods(client, bare, "bare agent Pods").await?;
    // The ReplicaSet controller makes the Deployment's Pods a moment later.
    let api = Api::<Pod>::namespaced(client.clone(), &dns);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = api
            .list(&ListParams::default().labels("app=openclaw"))
            .await?
            .items
            .len();
        if n == plan.agents_per_namespace {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the Deployment in {dns} has {n} Pods after 120 s, {} wanted",
            plan.agents_per_namespace
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The non-agent Pods: half over the agent namespaces, half over the others.
async fn seed_others(client: &Client, plan: &Plan) -> anyhow::Result<()> {
    let half = plan.others / 2;
    let others: Vec<(String, Value)> = (0..plan.others)
        .map(|i| {
            let ns = if i < half {
                Plan::agent_ns(i % plan.agent_namespaces)
            } else {
                Plan::other_ns(i % plan.other_namespaces)
            };
            let p = pod(&ns, &format!("worker-{i:06}"), "worker");
            (ns, p)
        })
        .collect();
    create_pods(client, others, "other Pods").await
}

// --- the webhook ------------------------------------------------------------------------------

struct Webhook {
    child: Child,
    port: u16,
    ca: Vec<u8>,
    log: PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one phase's webhook showed once ready.
struct Footprint {
    ready_secs: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Serving certificates for 127.0.0.1 (once: every phase's webhook serves the same pair, so
/// the registered caBundle holds).
fn certs(dir: &Path) -> anyhow::Result<()> {
    let out = Command::new(BIN)
        .args(["certs", "--out-dir"])
        .arg(dir)
        .args(["--ip", "127.0.0.1", "--dns", "localhost"])
        .output()
        .context("cannot run openclaw-admission certs")?;
    ensure!(
        out.status.success(),
        "openclaw-admission certs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn start_webhook(
    cp: &ControlPlane,
    certs: &Path,
    port: u16,
    policy: Option<&Path>,
    phase: &str,
) -> anyhow::Result<Webhook> {
    let log_path = cp.dir().join(format!("webhook-{phase}.log"));
    let log = std::fs::File::create(&log_path)?;
    let setpriv = Path::new("/usr/bin/setpriv");
    let mut cmd = if setpriv.exists() {
        // Dies with this process whatever happens to it.
        let mut c = Command::new(setpriv);
        c.args(["--pdeathsig", "KILL", "--", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.arg("serve")
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig")
        .arg(cp.kubeconfig());
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start openclaw-admission serve")?;
    Ok(Webhook {
        child,
        port,
        ca: std::fs::read(certs.join("ca.crt"))?,
        log: log_path,
    })
}

impl Webhook {
    /// Waits for `/readyz` (every watch listed), then lets the process settle and reads its
    /// memory from the kernel.
    async fn footprint(&mut self, started: Instant) -> anyhow::Result<Footprint> {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca)?)
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("https://127.0.0.1:{}/readyz", self.port);
        let deadline = started + Duration::from_secs(300);
        let ready_secs = loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the webhook exited ({status}) before it was ready: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                break started.elapsed().as_secs_f64();
            }
            ensure!(
                Instant::now() < deadline,
                "the webhook not ready after 300 s (log {})",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = self.child.id();
        Ok(Footprint {
            ready_secs,
            rss_kib: procfs::proc_status_kib(pid, "VmRSS")?,
            hwm_kib: procfs::proc_status_kib(pid, "VmHWM")?,
        })
    }
}

/// The `validate-egress-policies` entry of webhook-config/url/validating.yaml alone, pointed
/// at `port` (kubectl turns the YAML into JSON).
fn register_egress_entry(cp: &ControlPlane, certs: &Path, port: u16) -> anyhow::Result<()> {
    let path = format!("{ROOT}/webhook-config/url/validating.yaml");
    let ca = String::from_utf8(std::fs::read(certs.join("ca.crt"))?)?;
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(ca)
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path}"))?
        .replace("${CA_BUNDLE}", &b64)
        .replace("${WEBHOOK_HOST}", &format!("127.0.0.1:{port}"));
    let json = cp.kubectl(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        &text,
    )?;
    let mut config: Value = serde_json::from_str(&json)?;
    config["metadata"]["name"] = json!("openclaw-admission-signal-bench");
    let hooks = config["webhooks"]
        .as_array_mut()
        .context("validating.yaml has no webhooks")?;
    hooks.retain(|h| h["name"] == "validate-egress-policies.openclaw.io");
    ensure!(
        hooks.len() == 1,
        "validating.yaml has no validate-egress-policies.openclaw.io entry"
    );
    cp.kubectl(&["apply", "-f", "-"], &config.to_string())?;
    Ok(())
}

// --- changes ----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Where {
    Excluded,
    NoAgent,
    BareAgents,
    DeploymentAgents,
}

const WHERE: [Where; 4] = [
    Where::Excluded,
    Where::NoAgent,
    Where::BareAgents,
    Where::DeploymentAgents,
];

impl Where {
    fn namespace(self) -> String {
        match self {
            Where::Excluded => EXCLUDED_NS.to_string(),
            Where::NoAgent => Plan::other_ns(0),
            Where::BareAgents => Plan::agent_ns(1),
            Where::DeploymentAgents => Plan::deployment_ns(),
        }
    }
    fn label(self) -> &'static str {
        match self {
            Where::Excluded => "excluded namespace (API server alone)",
            Where::NoAgent => "no agent (answered from memory)",
            Where::BareAgents => "bare agent Pods (lookup)",
            Where::DeploymentAgents => "a Deployment's agent Pods (lookup + owners)",
        }
    }
}

/// One dry-run DELETE of the namespace's egress policy: its latency, and the refusal's
/// message when refused.
async fn change(client: &Client, ns: &str) -> anyhow::Result<(Duration, Option<String>)> {
    let api = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let started = Instant::now();
    let r = api.delete(POLICY_NAME, &dp).await;
    let took = started.elapsed();
    match r {
        Ok(_) => Ok((took, None)),
        Err(kube::Error::Api(e)) if e.code == 403 || e.code == 400 => Ok((took, Some(e.message))),
        Err(e) => Err(e).with_context(|| format!("dry-run DELETE of {ns}/{POLICY_NAME}")),
    }
}

/// `rounds` changes per namespace kind, round-robin; each latency list in milliseconds.
async fn time_changes(client: &Client, rounds: usize) -> anyhow::Result<Vec<(Where, Vec<f64>)>> {
    let mut out: Vec<(Where, Vec<f64>)> = WHERE.iter().map(|w| (*w, Vec::new())).collect();
    for _ in 0..rounds {
        for (w, times) in &mut out {
            let (took, refused) = change(client, &w.namespace()).await?;
            let want_refused = matches!(w, Where::BareAgents | Where::DeploymentAgents);
            ensure!(
                refused.is_some() == want_refused,
                "the egress policy's DELETE in {} ({}) was {}: {}",
                w.namespace(),
                w.label(),
                if refused.is_some() {
                    "refused"
                } else {
                    "allowed"
                },
                refused.unwrap_or_default()
            );
            times.push(took.as_secs_f64() * 1e3);
        }
    }
    Ok(out)
}

/// The refusal in an agent namespace names one of its agent Pods.
async fn assert_names_an_agent(client: &Client, w: Where) -> anyhow::Result<()> {
    let ns = w.namespace();
    let (_, refused) = change(client, &ns).await?;
    let message = refused.with_context(|| format!("the DELETE in {ns} was allowed"))?;
    let agents = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app=openclaw"))
        .await?;
    ensure!(
        agents.items.iter().any(|p| p
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| message.contains(n))),
        "the refusal in {ns} names none of its agent Pods: {message}"
    );
    Ok(())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn print_changes(phase: &str, timed: &[(Where, Vec<f64>)]) {
    let base = timed
        .iter()
        .find(|(w, _)| *w == Where::Excluded)
        .map(|(_, t)| {
            let mut t = t.clone();
            t.sort_by(f64::total_cmp);
            quantile(&t, 0.5)
        })
        .unwrap_or(f64::NAN);
    println!("\ndry-run DELETE of an egress policy, {phase}, one at a time:");
    println!("| where | n | median ms | p90 ms | median vs API server alone |");
    println!("|---|---:|---:|---:|---:|");
    for (w, t) in timed {
        let mut t = t.clone();
        t.sort_by(f64::total_cmp);
        let med = quantile(&t, 0.5);
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2}x |",
            w.label(),
            t.len(),
            med,
            quantile(&t, 0.9),
            med / base
        );
    }
}

// --- the run ----------------------------------------------------------------------------------

struct PhaseResult {
    name: String,
    pods: usize,
    watched: usize,
    footprints: Vec<Footprint>,
}

impl PhaseResult {
    fn median(&self, f: impl Fn(&Footprint) -> f64) -> f64 {
        let mut v: Vec<f64> = self.footprints.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        quantile(&v, 0.5)
    }
    fn range(&self, f: impl Fn(&Footprint) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.footprints.iter().map(f).collect();
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }
}

fn rss_mib(f: &Footprint) -> f64 {
    f.rss_kib as f64 / 1024.0
}

/// `samples` webhooks one after another, each measured once ready; the last keeps running.
async fn phase(
    cp: &ControlPlane,
    certs: &Path,
    port: u16,
    policy: Option<&Path>,
    name: &str,
    samples: usize,
) -> anyhow::Result<(Webhook, Vec<Footprint>)> {
    let mut footprints = Vec::new();
    loop {
        let started = Instant::now();
        let mut hook = start_webhook(
            cp,
            certs,
            port,
            policy,
            &format!("{name}-{}", footprints.len()),
        )?;
        footprints.push(hook.footprint(started).await?);
        if footprints.len() >= samples {
            return Ok((hook, footprints));
        }
    }
}

async fn run(bench: bool) -> anyhow::Result<()> {
    let plan = Plan::new(bench)?;
    eprintln!(
        "agent signal bench: {} Pods, {} of them agents in {} namespaces; {} namespaces without agents",
        plan.pods(),
        plan.agents(),
        plan.agent_namespaces,
        plan.other_namespaces
    );
    let cp = ControlPlane::start()?;
    let client = openclaw_admission::cluster::client(Some(&cp.kubeconfig())).await?;
    let certs_dir = cp.dir().join("certs");
    certs(&certs_dir)?;
    let port = free_port()?;
    let mut results = Vec::new();

    seed_agents(&client, &plan).await?;

    // Phase 1: the agents alone.
    let (hook, footprints) = phase(&cp, &certs_dir, port, None, "agents", plan.samples).await?;
    results.push(PhaseResult {
        name: "agents alone".into(),
        pods: plan.agents(),
        watched: plan.agents(),
        footprints,
    });
    register_egress_entry(&cp, &certs_dir, port)?;
    assert_names_an_agent(&client, Where::BareAgents).await?;
    assert_names_an_agent(&client, Where::DeploymentAgents).await?;
    let timed_agents = time_changes(&client, plan.rounds).await?;
    drop(hook);

    // Phase 2: the same agents among the other Pods.
    seed_others(&client, &plan).await?;
    let (hook, footprints) = phase(&cp, &certs_dir, port, None, "all", plan.samples).await?;
    results.push(PhaseResult {
        name: "agents among other Pods".into(),
        pods: plan.pods(),
        watched: plan.agents(),
        footprints,
    });
    assert_names_an_agent(&client, Where::BareAgents).await?;
    let timed_all = time_changes(&client, plan.rounds).await?;
    drop(hook);

    // Phase 3: every Pod an agent, what a cluster-wide metadata watch would hold.
    let policy = cp.dir().join("every-pod.yaml");
    std::fs::write(&policy, "agentSelectors:\n- matchLabels: {bench: signal}\n")?;
    let (hook, footprints) = phase(
        &cp,
        &certs_dir,
        port,
        Some(&policy),
        "every-pod",
        plan.samples,
    )
    .await?;
    results.push(PhaseResult {
        name: "every Pod an agent (contrast)".into(),
        pods: plan.pods(),
        watched: plan.pods(),
        footprints,
    });
    // The namespace without agents now holds agents, known from the watch alone.
    let (_, refused) = change(&client, &Where::NoAgent.namespace()).await?;
    ensure!(
        refused.is_some(),
        "with every Pod an agent, the DELETE in {} was allowed",
        Where::NoAgent.namespace()
    );
    drop(hook);

    println!(
        "\nagent signal on the real API server: {} Pods, {} agents in {} namespaces, {} namespaces without agents",
        plan.pods(),
        plan.agents(),
        plan.agent_namespaces,
        plan.other_namespaces
    );
    println!(
        "| phase | Pods in the cluster | Pods the watches hold | webhooks | ready after s (median) | RSS MiB, median (min-max) | peak RSS MiB, max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        let (lo, hi) = r.range(rss_mib);
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} ({:.1}-{:.1}) | {:.1} |",
            r.name,
            r.pods,
            r.watched,
            r.footprints.len(),
            r.median(|f| f.ready_secs),
            r.median(rss_mib),
            lo,
            hi,
            r.range(|f| f.hwm_kib as f64 / 1024.0).1
        );
    }
    let (a, b, c) = (
        results[0].median(rss_mib),
        results[1].median(rss_mib),
        results[2].median(rss_mib),
    );
    println!(
        "median RSS: agents among {} other Pods vs agents alone {:.3}x ({:+.1} MiB); every Pod held vs agents only {:.2}x ({:+.1} MiB, {:.0} bytes per further Pod held)",
        plan.others,
        b / a,
        b - a,
        c / b,
        c - b,
        (c - b) * 1024.0 * 1024.0 / (plan.pods() - plan.agents()) as f64
    );
    print_changes(&format!("{} agents alone", plan.agents()), &timed_agents);
    print_changes(&format!("{} Pods", plan.pods()), &timed_all);
    if !bench {
        println!("\n(smoke run under cargo test: the figures above measure nothing)");
    }
    Ok(())
}

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent signal bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(bench)) {
        Ok(()) => {
            eprintln!(
                "agent signal bench {}",
                if bench { "ran" } else { "smoke run passed" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent signal bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
