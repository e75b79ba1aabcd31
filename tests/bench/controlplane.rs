//! `make bench-controlplane` (`cargo bench --bench controlplane`): what a Pod create costs on
//! the project's real control plane (tests/controlplane/up.sh) with no admission policy, with
//! the in-tree CEL pair a user could pick instead (tests/bench/cel/: a
//! ValidatingAdmissionPolicy with the container checks and a MutatingAdmissionPolicy adding
//! the OpenTelemetry env and the Secrets Store CSI volume), and with `openclaw-admission serve`
//! (the release binary, validate and mutate registered from webhook-config/url as the e2e
//! suite does, with a live view of the API server, the built-in policy).
//!
//! For each setup and each number of concurrent clients (1, 2, 4, 8) it creates the same
//! hardened agent Pod under fresh names, straight over HTTPS with the admin certificate (one
//! keep-alive connection per client, the body serialized once), and prints the median, the
//! p99, creates/s and the latency added over no policy; beside them the API server's own
//! metrics (scraped from its /metrics before and after each phase: request duration of pods
//! POST, admission steps, webhook calls, the CEL policies' checks) and the webhook's own
//! review time, as means per create. The setups are interleaved over rounds (the machine is
//! shared, so a slow minute hits all three alike), every phase's Pods are deleted before the
//! next one, and the chart of latency and creates/s against clients is written as SVG.
//!
//! Under `cargo test` (no `--bench` argument) it runs the same plan with a few creates per
//! phase and asserts what makes the figures mean something: each setup really is in force (an
//! unhardened Pod admitted with no policy, refused by the CEL policy and by the webhook; the
//! hardened one stored unmutated, mutated by the CEL policy, mutated by the webhook), every
//! create succeeded, and the API server's metrics saw the creates and the calls. It measures
//! nothing.
//!
//! Where the API server's time goes: kube-apiserver runs with `--profiling=true`, and in the
//! last round, after each setup's phase with the most clients, the bench creates Pods with
//! as many clients again for `CP_BENCH_PROFILE` seconds while it fetches a Go CPU profile of
//! kube-apiserver (`/debug/pprof/profile`) over that window. Apart from the measured phase, so
//! that the profiler's signals never touch the figures above; the same load otherwise. It
//! saves each profile as `target/controlplane-bench/apiserver-<setup>.pprof` and, when `go`
//! is on the PATH, prints one table of CPU milliseconds per create by bucket side by side
//! (none | cel | webhook; tests/bench/apiprof.rs says how samples are sorted), the CPU each
//! process of the control plane used per create over the window (from /proc), and pprof's
//! top functions per setup. Without `go`, or when a profile cannot be had, it says why in
//! one line and goes on. The smoke run profiles one window of a second (the webhook setup,
//! 2 clients) and checks the answer is a gzip'd profile that pprof reads.
//!
//! Environment (all optional): `CP_BENCH_CREATES` (creates per setup and client count over
//! all rounds, default 500), `CP_BENCH_ROUNDS` (default 2), `CP_BENCH_CLIENTS` (default
//! `1,2,4,8`), `CP_BENCH_SVG` (default docs/controlplane-bench.svg), `CP_BENCH_PROFILE`
//! (seconds of each profile window, default 10; 0 profiles nothing).

mod apiprof;
mod chart;
#[path = "../common/controlplane.rs"]
mod controlplane;
#[path = "../common/prebuilt.rs"]
mod prebuilt;
#[path = "../common/procfs.rs"]
mod procfs;

use anyhow::{Context as _, bail, ensure};
use controlplane::ControlPlane;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
const NS: &str = "cp-bench";
const AGENT_SA: &str = "openclaw-agent";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Setup {
    None,
    Cel,
    Webhook,
}

impl Setup {
    const ALL: [Setup; 3] = [Setup::None, Setup::Cel, Setup::Webhook];
    fn name(self) -> &'static str {
        match self {
            Setup::None => "no policy",
            Setup::Cel => "CEL pair",
            Setup::Webhook => "openclaw-admission",
        }
    }
    fn slug(self) -> &'static str {
        match self {
            Setup::None => "none",
            Setup::Cel => "cel",
            Setup::Webhook => "webhook",
        }
    }
}

struct Config {
    bench: bool,
    creates: usize,
    rounds: usize,
    clients: Vec<usize>,
    warmup: usize,
    svg: PathBuf,
    /// Seconds of each kube-apiserver profile window; 0: none.
    profile_secs: u64,
    /// Where the profiles are saved.
    profile_dir: PathBuf,
}

impl Config {
    fn from_env(bench: bool) -> anyhow::Result<Config> {
        let number = |name: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{name}={v:?} is not a positive whole number")),
                Err(_) => Ok(default),
            }
        };
        if !bench {
            // Smoke mode: enough to prove every path works, nothing to measure.
            let dir = std::env::temp_dir().join(format!("cp-bench-smoke-{}", std::process::id()));
            return Ok(Config {
                bench,
                creates: 3,
                rounds: 1,
                clients: vec![1, 2],
                warmup: 1,
                svg: dir.join("chart.svg"),
                profile_secs: 1,
                profile_dir: dir,
            });
        }
        let clients = match std::env::var("CP_BENCH_CLIENTS") {
            Ok(v) => v
                .split(',')
                .map(|c| c.trim().parse::<usize>().ok().filter(|n| *n > 0))
                .collect::<Option<Vec<_>>>()
                .with_context(|| {
                    format!("CP_BENCH_CLIENTS={v:?} is not a comma-separated list of client counts")
                })?,
            Err(_) => vec![1, 2, 4, 8],
        };
        let profile_secs = match std::env::var("CP_BENCH_PROFILE") {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                // The API server's request timeout is 60 s.
                .filter(|n| *n <= 50)
                .with_context(|| {
                    format!("CP_BENCH_PROFILE={v:?} is not a number of seconds from 0 to 50")
                })?,
            Err(_) => 10,
        };
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(ROOT).join("target"));
        Ok(Config {
            bench,
            profile_secs,
            profile_dir: target.join("controlplane-bench"),
            creates: number("CP_BENCH_CREATES", 500)?,
            rounds: number("CP_BENCH_ROUNDS", 2)?,
            clients,
            warmup: 20,
            svg: std::env::var_os("CP_BENCH_SVG")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(ROOT).join("docs/controlplane-bench.svg")),
        })
    }
}

// --- the control plane and the webhook ---------------------------------------------------

/// The control plane of tests/controlplane/up.sh in its own directory, with the webhook
/// process once started; both stop on drop.
struct Cluster {
    cp: ControlPlane,
    webhook: Option<Child>,
    webhook_port: u16,
    ca_bundle: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Cluster {
    fn start() -> anyhow::Result<Cluster> {
        // up.sh turns profiling off; the bench profiles kube-apiserver (the endpoint costs
        // nothing until a profile is asked for).
        Ok(Cluster {
            cp: ControlPlane::start_with("--profiling=true")?,
            webhook: None,
            webhook_port: free_port()?,
            ca_bundle: String::new(),
        })
    }

    fn get(&self, key: &str) -> anyhow::Result<&str> {
        self.cp.get(key)
    }

    fn kubectl(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        self.cp.kubectl(args, stdin)
    }

    /// The namespace every setup admits the agent Pod in: its own ServiceAccount and a
    /// default-deny egress policy allowing DNS and HTTPS (what the webhook requires); and
    /// the `gvisor` RuntimeClass the Pod names (the API server refuses a Pod naming a
    /// RuntimeClass that does not exist).
    fn prepare_namespace(&self) -> anyhow::Result<()> {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc"},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": NS}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "default-deny-egress", "namespace": NS},
             "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": 443}]}]}}
        ]});
        self.kubectl(&["apply", "-f", "-"], &list.to_string())?;
        Ok(())
    }

    /// `openclaw-admission serve` as deployed: TLS from `certs`, a live view through the
    /// admin kubeconfig, the built-in policy, one JSON log line per review (to a file).
    fn start_webhook(&mut self) -> anyhow::Result<()> {
        let certs = self.cp.dir().join("certs");
        let out = Command::new(BIN)
            .args(["certs", "--out-dir"])
            .arg(&certs)
            .args(["--ip", "127.0.0.1", "--dns", "localhost"])
            .output()
            .context("cannot run openclaw-admission certs")?;
        ensure!(
            out.status.success(),
            "openclaw-admission certs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.ca_bundle = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let log = std::fs::File::create(self.cp.dir().join("webhook.log"))?;
        let program = Path::new("/usr/bin/setpriv");
        let mut cmd = if program.exists() {
            // Dies with this process whatever happens to it.
            let mut c = Command::new(program);
            c.args(["--pdeathsig", "KILL", "--", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        let child = cmd
            .arg("serve")
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.webhook_port))
            .arg("--kubeconfig")
            .arg(self.get("KUBECONFIG")?)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start openclaw-admission serve")?;
        self.webhook = Some(child);
        Ok(())
    }

    fn webhook_log(&self) -> String {
        std::fs::read_to_string(self.cp.dir().join("webhook.log")).unwrap_or_default()
    }

    fn webhook_ca(&self) -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(self.cp.dir().join("certs/ca.crt"))?)
    }

    fn webhook_config(&self, file: &str) -> anyhow::Result<String> {
        let path = format!("{ROOT}/webhook-config/url/{file}");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        Ok(text.replace("${CA_BUNDLE}", &self.ca_bundle).replace(
            "${WEBHOOK_HOST}",
            &format!("127.0.0.1:{}", self.webhook_port),
        ))
    }

    /// Registers exactly what `setup` needs and removes the others' objects.
    fn switch_to(&self, setup: Setup) -> anyhow::Result<()> {
        let cel = [
            format!("{ROOT}/tests/bench/cel/validating.yaml"),
            format!("{ROOT}/tests/bench/cel/mutating.yaml"),
        ];
        let hooks = [
            self.webhook_config("validating.yaml")?,
            self.webhook_config("mutating.yaml")?,
        ];
        if setup != Setup::Cel {
            for f in &cel {
                self.kubectl(&["delete", "--ignore-not-found", "-f", f], "")?;
            }
        }
        if setup != Setup::Webhook {
            for h in &hooks {
                self.kubectl(&["delete", "--ignore-not-found", "-f", "-"], h)?;
            }
        }
        match setup {
            Setup::None => {}
            Setup::Cel => {
                for f in &cel {
                    self.kubectl(&["apply", "-f", f], "")?;
                }
            }
            Setup::Webhook => {
                for h in &hooks {
                    self.kubectl(&["apply", "-f", "-"], h)?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.webhook.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The control plane stops when `cp` drops, after this.
    }
}

// --- the Pod ---------------------------------------------------------------------------------

/// The bench's hardened agent Pod (tests/bench/agent-pod-review.json, as the ReplicaSet
/// controller sends it, without what only a controller or the API server writes), naming a
/// SecretProviderClass so that both mutating setups add the CSI volume. `NAME` is replaced
/// per create.
fn agent_pod() -> anyhow::Result<Value> {
    let path = format!("{ROOT}/tests/bench/agent-pod-review.json");
    let review: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?,
    )?;
    let mut pod = review["request"]["object"].clone();
    let meta = pod["metadata"]
        .as_object_mut()
        .context("the review's Pod has no metadata")?;
    for k in ["managedFields", "generateName", "ownerReferences"] {
        meta.remove(k);
    }
    meta.insert("name".into(), "NAME".into());
    meta.insert("namespace".into(), NS.into());
    meta.entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .context("annotations")?
        .insert(
            "openclaw.io/secret-provider-class".into(),
            "openclaw-vault".into(),
        );
    Ok(pod)
}

/// The same Pod with a writable root filesystem in its agent container: every policy here
/// refuses it.
fn unhardened(pod: &Value) -> Value {
    let mut p = pod.clone();
    p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    p
}

/// The Pod's JSON with `NAME` in place; split once so each create only joins three slices.
struct Body {
    head: String,
    tail: String,
}

impl Body {
    fn new(pod: &Value) -> anyhow::Result<Body> {
        let text = pod.to_string();
        let (head, tail) = text
            .split_once("\"NAME\"")
            .context("the Pod's name placeholder is missing")?;
        Ok(Body {
            head: head.to_string(),
            tail: tail.to_string(),
        })
    }
    fn with_name(&self, name: &str) -> Vec<u8> {
        format!("{}\"{name}\"{}", self.head, self.tail).into_bytes()
    }
}

// --- the client ------------------------------------------------------------------------------

#[derive(Clone)]
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// One client, one keep-alive HTTP/1.1 connection per concurrent request (reqwest's pool).
    fn new(cluster: &Cluster) -> anyhow::Result<Api> {
        let ca = std::fs::read(cluster.get("CA_CERT")?)?;
        let pki = Path::new(cluster.get("OPENCLAW_CP_DIR")?).join("pki");
        let mut identity = std::fs::read(pki.join("admin.crt"))?;
        identity.extend(std::fs::read(pki.join("admin.key"))?);
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .identity(reqwest::Identity::from_pem(&identity)?)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            base: cluster.get("APISERVER_URL")?.to_string(),
            client,
        })
    }

    /// POST of one Pod: the status and the answer's bytes (the stored Pod, or a Status).
    async fn create_raw(&self, body: Vec<u8>) -> anyhow::Result<(u16, hyper::body::Bytes)> {
        let r = self
            .client
            .post(format!("{}/api/v1/namespaces/{NS}/pods", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?))
    }

    /// The same, the answer parsed.
    async fn create(&self, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        let (status, bytes) = self.create_raw(body).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// A Go CPU profile of kube-apiserver over the next `seconds` (gzip'd protobuf).
    async fn cpu_profile(&self, seconds: u64) -> anyhow::Result<hyper::body::Bytes> {
        let path = format!("/debug/pprof/profile?seconds={seconds}");
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(seconds + 30))
            .send()
            .await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        ensure!(
            status.is_success(),
            "GET {path}: HTTP {status} {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
        ensure!(
            bytes.starts_with(&[0x1f, 0x8b]),
            "GET {path}: {} bytes that are not gzip",
            bytes.len()
        );
        Ok(bytes)
    }

    async fn text(&self, path: &str) -> anyhow::Result<String> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        ensure!(r.status().is_success(), "GET {path}: HTTP {}", r.status());
        Ok(r.text().await?)
    }

    /// Deletes every Pod of the namespace and waits until none is left (Pods that no node
    /// runs go at once), so the next phase starts with the same store.
    async fn delete_pods(&self) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/namespaces/{NS}/pods", self.base);
        let r = self.client.delete(&url).send().await?;
        ensure!(
            r.status().is_success(),
            "deleting Pods: HTTP {}",
            r.status()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list: Value = self
                .client
                .get(format!("{url}?limit=1"))
                .send()
                .await?
                .json()
                .await?;
            if list["items"].as_array().is_some_and(|a| a.is_empty()) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "Pods of {NS} still there 60 s after deletion"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// --- metrics ---------------------------------------------------------------------------------

/// Prometheus text as (metric name, labels) -> value, for the names this bench reads.
/// Parsed by hand: the format is one `name{k="v",...} value` per line, and a parser crate
/// for these few lines would be a dependency for nothing.
type Scrape = HashMap<(String, Vec<(String, String)>), f64>;

const WANTED: &[&str] = &[
    "apiserver_request_duration_seconds",
    "apiserver_admission_step_admission_duration_seconds",
    "apiserver_admission_webhook_admission_duration_seconds",
    "apiserver_admission_controller_admission_duration_seconds",
    "apiserver_validating_admission_policy_check_duration_seconds",
    "apiserver_mutating_admission_policy_check_duration_seconds",
    "openclaw_admission_review_duration_seconds",
];

fn parse_metrics(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let base = name
            .strip_suffix("_sum")
            .or_else(|| name.strip_suffix("_count"));
        if !base.is_some_and(|b| WANTED.contains(&b)) {
            continue;
        }
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let mut kv = Vec::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            if let Some((k, v)) = pair.split_once("=\"") {
                kv.push((k.to_string(), v.trim_end_matches('"').to_string()));
            }
        }
        kv.sort();
        out.insert((name.to_string(), kv), v);
    }
    out
}

/// One figure read from the metrics: a histogram's `_sum` and `_count` over the series whose
/// labels match.
struct Figure {
    label: &'static str,
    metric: &'static str,
    labels: &'static [(&'static str, &'static str)],
    /// Read from the webhook's /metrics rather than the API server's.
    webhook: bool,
}

const FIGURES: &[Figure] = &[
    Figure {
        label: "request, POST pods",
        metric: "apiserver_request_duration_seconds",
        labels: &[("resource", "pods"), ("verb", "POST"), ("subresource", "")],
        webhook: false,
    },
    Figure {
        label: "admission step, mutating (admit)",
        metric: "apiserver_admission_step_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("type", "admit")],
        webhook: false,
    },
    Figure {
        label: "admission step, validating",
        metric: "apiserver_admission_step_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("type", "validate")],
        webhook: false,
    },
    Figure {
        label: "MutatingAdmissionWebhook plugin",
        metric: "apiserver_admission_controller_admission_duration_seconds",
        labels: &[
            ("name", "MutatingAdmissionWebhook"),
            ("operation", "CREATE"),
        ],
        webhook: false,
    },
    Figure {
        label: "webhook calls, mutating",
        metric: "apiserver_admission_webhook_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("type", "admit")],
        webhook: false,
    },
    Figure {
        label: "of which mutate.openclaw.io",
        metric: "apiserver_admission_webhook_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("name", "mutate.openclaw.io")],
        webhook: false,
    },
    Figure {
        label: "ValidatingAdmissionWebhook plugin",
        metric: "apiserver_admission_controller_admission_duration_seconds",
        labels: &[
            ("name", "ValidatingAdmissionWebhook"),
            ("operation", "CREATE"),
        ],
        webhook: false,
    },
    Figure {
        label: "webhook calls, validating",
        metric: "apiserver_admission_webhook_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("type", "validating")],
        webhook: false,
    },
    Figure {
        label: "of which validate.openclaw.io",
        metric: "apiserver_admission_webhook_admission_duration_seconds",
        labels: &[("operation", "CREATE"), ("name", "validate.openclaw.io")],
        webhook: false,
    },
    Figure {
        label: "MutatingAdmissionPolicy plugin",
        metric: "apiserver_admission_controller_admission_duration_seconds",
        labels: &[("name", "MutatingAdmissionPolicy"), ("operation", "CREATE")],
        webhook: false,
    },
    Figure {
        label: "policy checks, mutating",
        metric: "apiserver_mutating_admission_policy_check_duration_seconds",
        labels: &[],
        webhook: false,
    },
    Figure {
        label: "ValidatingAdmissionPolicy plugin",
        metric: "apiserver_admission_controller_admission_duration_seconds",
        labels: &[
            ("name", "ValidatingAdmissionPolicy"),
            ("operation", "CREATE"),
        ],
        webhook: false,
    },
    Figure {
        label: "policy checks, validating",
        metric: "apiserver_validating_admission_policy_check_duration_seconds",
        labels: &[],
        webhook: false,
    },
    Figure {
        label: "webhook's own review time, /mutate",
        metric: "openclaw_admission_review_duration_seconds",
        labels: &[("endpoint", "mutate")],
        webhook: true,
    },
    Figure {
        label: "webhook's own review time, /validate",
        metric: "openclaw_admission_review_duration_seconds",
        labels: &[("endpoint", "validate")],
        webhook: true,
    },
];

impl Figure {
    /// (sum, count) over the matching series of one scrape.
    fn read(&self, scrape: &Scrape) -> (f64, f64) {
        let mut sum = 0.0;
        let mut count = 0.0;
        for ((name, labels), v) in scrape {
            let Some(suffix) = name.strip_prefix(self.metric) else {
                continue;
            };
            let matches = self
                .labels
                .iter()
                .all(|(k, want)| labels.iter().any(|(lk, lv)| lk == k && lv == want));
            if !matches {
                continue;
            }
            match suffix {
                "_sum" => sum += v,
                "_count" => count += v,
                _ => {}
            }
        }
        (sum, count)
    }
}

/// Both scrapes taken at one moment.
struct Scrapes {
    apiserver: Scrape,
    webhook: Scrape,
}

// --- measuring -------------------------------------------------------------------------------

#[derive(Default)]
struct Phase {
    /// Latency of every measured create.
    samples: Vec<Duration>,
    /// Wall time of the measured creates, summed over rounds.
    wall: Duration,
    /// Per figure: summed deltas of (sum, count).
    deltas: Vec<(f64, f64)>,
}

impl Phase {
    fn creates(&self) -> usize {
        self.samples.len()
    }
    fn quantile(&self, q: f64) -> f64 {
        let mut s: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64()).collect();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return f64::NAN;
        }
        let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
        s[i] * 1000.0
    }
    fn rate(&self) -> f64 {
        self.creates() as f64 / self.wall.as_secs_f64()
    }
}

struct Bench {
    cluster: Cluster,
    api: Api,
    webhook_client: reqwest::Client,
    pod: Value,
    body: Arc<Body>,
    probes: AtomicUsize,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    fn scrape(&self) -> anyhow::Result<Scrapes> {
        self.rt.block_on(async {
            let apiserver = parse_metrics(&self.api.text("/metrics").await?);
            let url = format!("https://127.0.0.1:{}/metrics", self.cluster.webhook_port);
            let r = self.webhook_client.get(&url).send().await?;
            ensure!(r.status().is_success(), "GET {url}: HTTP {}", r.status());
            let webhook = parse_metrics(&r.text().await?);
            Ok(Scrapes { apiserver, webhook })
        })
    }

    fn webhook_ready(&self) -> anyhow::Result<()> {
        let url = format!("https://127.0.0.1:{}/readyz", self.cluster.webhook_port);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self.rt.block_on(async {
                self.webhook_client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
            });
            if matches!(ok, Ok(true)) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the webhook was not ready within 60 s:\n{}",
                self.cluster.webhook_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `setup` is what the API server does to the Pod, and says so: the
    /// unhardened Pod admitted (no policy) or refused by the expected component, the hardened
    /// one stored as sent (no policy) or mutated. Policies and webhook configurations reach
    /// the admission plugins through informers, a moment after they are written.
    fn wait_in_force(&self, setup: Setup) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let bad = Body::new(&unhardened(&self.pod))?;
        loop {
            let n = self.probes.fetch_add(1, Ordering::Relaxed);
            let (bad_status, bad_answer) = self.rt.block_on(
                self.api
                    .create(bad.with_name(&format!("probe-unhardened-{n}"))),
            )?;
            let (good_status, good_answer) = self.rt.block_on(
                self.api
                    .create(self.body.with_name(&format!("probe-hardened-{n}"))),
            )?;
            let refusal = bad_answer["message"].as_str().unwrap_or("").to_string();
            let injected = good_answer["metadata"]["annotations"]["openclaw.io/injected"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let agent_env: Vec<&str> = good_answer["spec"]["containers"][0]["env"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
                .unwrap_or_default();
            let csi = good_answer["spec"]["volumes"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|v| v["csi"]["driver"] == "secrets-store.csi.k8s.io")
            });
            let mutated =
                agent_env.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT") && csi && !injected.is_empty();
            let refused_by = |who: &str| {
                bad_status == 403
                    && refusal.contains(who)
                    && refusal.contains("read-only-root-filesystem")
            };
            let ok = good_status == 201
                && match setup {
                    Setup::None => bad_status == 201 && !mutated && injected.is_empty(),
                    Setup::Cel => {
                        refused_by("ValidatingAdmissionPolicy 'openclaw-agent-checks'")
                            && mutated
                            && injected == "otel-env,secrets-store"
                    }
                    Setup::Webhook => {
                        refused_by("admission webhook \"validate.openclaw.io\"")
                            && mutated
                            && injected.contains("otel-env")
                            && injected.contains("secrets-store")
                    }
                };
            self.rt.block_on(self.api.delete_pods())?;
            let last = format!(
                "unhardened Pod: HTTP {bad_status} {refusal:?}; hardened Pod: HTTP {good_status}, openclaw.io/injected={injected:?}, OTel env in the agent: {}, CSI volume: {csi}",
                agent_env.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT")
            );
            if ok {
                return Ok(last);
            }
            if Instant::now() > deadline {
                bail!(
                    "setup {:?} not in force after 60 s; last probe: {last}",
                    setup.name()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `count` creates spread over `clients` connections: each client takes the next
    /// name as soon as its previous create is answered.
    fn run_creates(
        &self,
        setup: Setup,
        prefix: &str,
        clients: usize,
        count: usize,
    ) -> anyhow::Result<(Vec<Duration>, Duration)> {
        self.rt
            .block_on(self.creates(setup, prefix, clients, count, None))
    }

    /// The same, until `count` or, given `stop`, until it is set: the creates answered after
    /// that are not counted.
    async fn creates(
        &self,
        setup: Setup,
        prefix: &str,
        clients: usize,
        count: usize,
        stop: Option<Arc<AtomicBool>>,
    ) -> anyhow::Result<(Vec<Duration>, Duration)> {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            // The clients share one pool: each request in flight holds its own
            // keep-alive connection, as separate callers would.
            let api = self.api.clone();
            // In a mutating setup every stored Pod must carry the mark of the mutation:
            // with `failurePolicy: Ignore` a failed call would store it unmutated.
            let mark: &[u8] = if setup == Setup::None {
                b""
            } else {
                b"\"openclaw.io/injected\""
            };
            let body = self.body.clone();
            let next = next.clone();
            let prefix = prefix.to_string();
            let stop = stop.clone();
            let stopped = move || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || stopped() {
                        return Ok::<_, anyhow::Error>(lat);
                    }
                    let bytes = body.with_name(&format!("{prefix}-{i:05}"));
                    let t = Instant::now();
                    let (status, answer) = api.create_raw(bytes).await?;
                    let took = t.elapsed();
                    ensure!(
                        status == 201,
                        "create {prefix}-{i:05}: HTTP {status} {}",
                        String::from_utf8_lossy(&answer)
                    );
                    ensure!(
                        mark.is_empty() || answer.windows(mark.len()).any(|w| w == mark),
                        "create {prefix}-{i:05} was stored without openclaw.io/injected"
                    );
                    if stopped() {
                        return Ok(lat);
                    }
                    lat.push(took);
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        Ok((all, started.elapsed()))
    }

    fn measure(
        &self,
        setup: Setup,
        round: usize,
        clients: usize,
        count: usize,
        warmup: usize,
        phase: &mut Phase,
    ) -> anyhow::Result<()> {
        let prefix = format!("{}-r{round}-c{clients}", setup.slug());
        self.run_creates(setup, &format!("{prefix}-warm"), clients, warmup)?;
        let before = self.scrape()?;
        let (samples, wall) = self.run_creates(setup, &prefix, clients, count)?;
        let after = self.scrape()?;
        phase.samples.extend(samples);
        phase.wall += wall;
        if phase.deltas.is_empty() {
            phase.deltas = vec![(0.0, 0.0); FIGURES.len()];
        }
        for (f, d) in FIGURES.iter().zip(phase.deltas.iter_mut()) {
            let (b, a) = if f.webhook {
                (&before.webhook, &after.webhook)
            } else {
                (&before.apiserver, &after.apiserver)
            };
            let (s0, c0) = f.read(b);
            let (s1, c1) = f.read(a);
            d.0 += s1 - s0;
            d.1 += c1 - c0;
        }
        self.rt.block_on(self.api.delete_pods())
    }
}

// --- the API server's profile ----------------------------------------------------------------

/// One profile window: kube-apiserver's CPU profile while the bench created Pods.
struct Profiled {
    file: PathBuf,
    /// Creates answered within the window.
    creates: usize,
    /// CPU seconds each process used over the window (/proc), and the window's length.
    cpu: Vec<(&'static str, f64)>,
    window: Duration,
    /// The samples sorted into buckets, or why not (no `go`, pprof failed).
    split: Result<apiprof::Split, String>,
    /// pprof's top functions by their own samples.
    top: Vec<String>,
}

impl Bench {
    /// The processes whose CPU the profile window reports, by name.
    fn processes(&self) -> Vec<(&'static str, u32)> {
        let pid = |key: &str| {
            self.cluster
                .get(key)
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
        };
        let mut out = Vec::new();
        for (name, key) in [
            ("kube-apiserver", "APISERVER_PID"),
            ("etcd", "ETCD_PID"),
            ("kube-controller-manager", "KCM_PID"),
        ] {
            if let Some(p) = pid(key) {
                out.push((name, p));
            }
        }
        if let Some(c) = &self.cluster.webhook {
            out.push(("openclaw-admission", c.id()));
        }
        out.push(("the bench's clients", std::process::id()));
        out
    }

    /// Creates Pods with `clients` clients while kube-apiserver profiles itself for
    /// `seconds`, saves the profile in `dir` and sorts its samples. The outer error is the
    /// bench's own (a create failed, the Pods would not go); the inner one says why there is
    /// no profile (the endpoint refused, the file could not be written).
    fn profile(
        &self,
        setup: Setup,
        clients: usize,
        seconds: u64,
        dir: &Path,
    ) -> anyhow::Result<Result<Profiled, String>> {
        let processes = self.processes();
        let before: Vec<f64> = processes
            .iter()
            .map(|(_, pid)| procfs::cpu_seconds(*pid))
            .collect();
        let started = Instant::now();
        let (profile, creates) = self.rt.block_on(async {
            let stop = Arc::new(AtomicBool::new(false));
            let fetch = {
                let api = self.api.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let profile = api.cpu_profile(seconds).await;
                    // The window is over (or never opened): the clients stop.
                    stop.store(true, Ordering::Relaxed);
                    profile
                })
            };
            let prefix = format!("{}-profile-c{clients}", setup.slug());
            let created = self
                .creates(setup, &prefix, clients, usize::MAX, Some(stop))
                .await;
            let profile = fetch.await.context("the profile's task")?;
            Ok::<_, anyhow::Error>((profile, created?.0.len()))
        })?;
        let window = started.elapsed();
        let cpu = processes
            .iter()
            .zip(&before)
            .map(|((name, pid), b)| (*name, procfs::cpu_seconds(*pid) - b))
            .collect();
        self.rt.block_on(self.api.delete_pods())?;
        let profile = match profile {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("no profile of kube-apiserver: {e:#}"))),
        };
        let file = dir.join(format!("apiserver-{}.pprof", setup.slug()));
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, &profile))
        {
            return Ok(Err(format!("cannot save {}: {e}", file.display())));
        }
        let (split, top) = match apiprof::go_missing() {
            Some(why) => (Err(why), Vec::new()),
            None => (
                apiprof::traces(&file)
                    .map(|t| apiprof::split(&t))
                    .map_err(|e| format!("{e:#}")),
                apiprof::top(&file, 8).unwrap_or_default(),
            ),
        };
        Ok(Ok(Profiled {
            file,
            creates,
            cpu,
            window,
            split,
            top,
        }))
    }
}

type Profiles = Vec<(Setup, usize, Result<Profiled, String>)>;

fn report_profiles(profiles: &Profiles) {
    if profiles.is_empty() {
        return;
    }
    println!("\nkube-apiserver's CPU profile (go tool pprof), CPU ms per create\n");
    for (setup, clients, p) in profiles {
        match p {
            Ok(p) => println!(
                "- {}: {clients} clients for {:.1} s, {} creates ({:.0}/s): {}",
                setup.slug(),
                p.window.as_secs_f64(),
                p.creates,
                p.creates as f64 / p.window.as_secs_f64(),
                p.file.display()
            ),
            Err(why) => println!("- {}: {why}", setup.slug()),
        }
    }
    // The windows are steadier than the measured phases at the most clients (seconds of
    // creates each, not one), so their creates/s ratios are printed beside the targets'.
    let rate = |want: Setup| {
        profiles.iter().find_map(|(setup, _, p)| match p {
            Ok(p) if *setup == want && !p.window.is_zero() => {
                Some(p.creates as f64 / p.window.as_secs_f64())
            }
            _ => None,
        })
    };
    if let (Some(none), Some(cel), Some(webhook)) =
        (rate(Setup::None), rate(Setup::Cel), rate(Setup::Webhook))
        && none > 0.0
    {
        println!(
            "- creates/s in these windows against no policy's: CEL pair {:.2}, webhook {:.2} (under the profiler)",
            cel / none,
            webhook / none
        );
    }
    let done: Vec<(Setup, &Profiled)> = profiles
        .iter()
        .filter_map(|(s, _, p)| p.as_ref().ok().map(|p| (*s, p)))
        .collect();
    if done.is_empty() {
        return;
    }
    let per_create = |p: &Profiled, seconds: f64| {
        if p.creates == 0 {
            "".to_string()
        } else {
            format!("{:.3}", seconds * 1000.0 / p.creates as f64)
        }
    };
    let mut header = String::from("\n| CPU ms per create |");
    let mut rule = String::from("| --- |");
    for (setup, _) in &done {
        header.push_str(&format!(" {} |", setup.slug()));
        rule.push_str(" ---: |");
    }
    println!("{header}\n{rule}");
    // Rows: the buckets (when pprof could sort them), then the processes from /proc.
    let splits: Vec<Option<&apiprof::Split>> =
        done.iter().map(|(_, p)| p.split.as_ref().ok()).collect();
    let mut why_not = Vec::new();
    for (setup, p) in &done {
        if let Err(why) = &p.split {
            why_not.push(format!("{}: {why}", setup.slug()));
        }
    }
    let bucket_row = |label: String, value: &dyn Fn(&apiprof::Split) -> f64| {
        // A bucket no setup has a sample in says nothing.
        if splits.iter().flatten().all(|s| value(s) == 0.0) {
            return;
        }
        let mut row = format!("| {label} |");
        for ((_, p), s) in done.iter().zip(&splits) {
            let cell = s.map(|s| per_create(p, value(s))).unwrap_or_default();
            row.push_str(&format!(" {cell} |"));
        }
        println!("{row}");
    };
    if let Some(first) = splits.iter().flatten().next() {
        for (i, (label, _)) in first.exclusive.iter().enumerate() {
            bucket_row(label.to_string(), &|s| s.exclusive[i].1);
        }
        bucket_row("**all samples**".into(), &|s| s.total);
        for (i, (label, _)) in first.inclusive.iter().enumerate() {
            bucket_row(format!("({label})"), &|s| s.inclusive[i].1);
        }
    }
    let names: Vec<&'static str> = done[0].1.cpu.iter().map(|(n, _)| *n).collect();
    for (i, name) in names.iter().enumerate() {
        let mut row = format!("| {name}, /proc |");
        for (_, p) in &done {
            let cell = p.cpu.get(i).map(|c| per_create(p, c.1)).unwrap_or_default();
            row.push_str(&format!(" {cell} |"));
        }
        println!("{row}");
    }
    let mut row = String::from("| cores busy, these processes |");
    for (_, p) in &done {
        let all: f64 = p.cpu.iter().map(|c| c.1).sum();
        row.push_str(&format!(" {:.2} |", all / p.window.as_secs_f64()));
    }
    println!("{row}");
    for why in why_not {
        println!("\nno buckets for {why}");
    }
    for (setup, p) in &done {
        if !p.top.is_empty() {
            println!("\ntop functions by own samples, {}:", setup.slug());
            for l in &p.top {
                println!("{l}");
            }
        }
    }
}

// --- the run ---------------------------------------------------------------------------------

type Results = BTreeMap<(Setup, usize), Phase>;

fn run(cfg: &Config) -> anyhow::Result<(Results, Profiles)> {
    let started = Instant::now();
    let mut cluster = Cluster::start()?;
    cluster.prepare_namespace()?;
    // Started once and kept for every setup, so its watches load the API server alike in
    // all three; only its registration changes.
    cluster.start_webhook()?;
    let api = Api::new(&cluster)?;
    let webhook_client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cluster.webhook_ca()?)?)
        .timeout(Duration::from_secs(5))
        .build()?;
    let pod = agent_pod()?;
    let bench = Bench {
        body: Arc::new(Body::new(&pod)?),
        pod,
        api,
        webhook_client,
        cluster,
        probes: AtomicUsize::new(0),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    };
    bench.webhook_ready()?;
    eprintln!(
        "control plane and webhook up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let per_round = cfg.creates.div_ceil(cfg.rounds);
    let mut results = Results::new();
    let mut profiles = Profiles::new();
    let most = cfg.clients.iter().copied().max().unwrap_or(1);
    for round in 0..cfg.rounds {
        for setup in Setup::ALL {
            bench.cluster.switch_to(setup)?;
            let seen = bench.wait_in_force(setup)?;
            eprintln!("round {}: {} in force: {seen}", round + 1, setup.name());
            for &clients in &cfg.clients {
                let phase = results.entry((setup, clients)).or_default();
                bench.measure(setup, round, clients, per_round, cfg.warmup, phase)?;
            }
            // The smoke run profiles the setup with the most to profile, once.
            let profiled = cfg.profile_secs > 0
                && round + 1 == cfg.rounds
                && (cfg.bench || setup == Setup::Webhook);
            if profiled {
                let p = bench.profile(setup, most, cfg.profile_secs, &cfg.profile_dir)?;
                if let Err(why) = &p {
                    eprintln!("{}: {why}", setup.name());
                }
                profiles.push((setup, most, p));
            }
        }
    }
    if !cfg.bench {
        smoke_checks(&results)?;
        smoke_profile_checks(&profiles)?;
    }
    Ok((results, profiles))
}

/// The profile of the smoke run: there, saved as gzip, and (when `go` is here) read by pprof
/// into buckets that add up to its total.
fn smoke_profile_checks(profiles: &Profiles) -> anyhow::Result<()> {
    ensure!(profiles.len() == 1, "{} profiles, not one", profiles.len());
    for (setup, _, p) in profiles {
        let p = p
            .as_ref()
            .map_err(|why| anyhow::anyhow!("{}: {why}", setup.name()))?;
        let bytes = std::fs::read(&p.file)?;
        ensure!(
            bytes.len() > 2 && bytes.starts_with(&[0x1f, 0x8b]),
            "{} is not a gzip'd profile",
            p.file.display()
        );
        ensure!(p.creates > 0, "no create within the profile window");
        match (&p.split, apiprof::go_missing()) {
            (Ok(split), _) => {
                let summed: f64 = split.exclusive.iter().map(|(_, v)| v).sum();
                // pprof prints each stack's value and the total rounded, hence the margin.
                ensure!(
                    split.total > 0.0 && (summed - split.total).abs() <= 0.01 * split.total,
                    "the buckets add up to {summed} s of the profile's {} s",
                    split.total
                );
            }
            (Err(why), Some(_)) => eprintln!("profile not read ({why}); checked as gzip only"),
            (Err(why), None) => bail!("pprof could not read {}: {why}", p.file.display()),
        }
    }
    Ok(())
}

/// What the smoke run asserts beyond the setups being in force: every create was counted by
/// the API server, and each setup's own component was called for each one.
fn smoke_checks(results: &Results) -> anyhow::Result<()> {
    let figure = |label: &str| FIGURES.iter().position(|f| f.label == label);
    let post = figure("request, POST pods").context("figure")?;
    let hook_mut = figure("webhook calls, mutating").context("figure")?;
    let hook_val = figure("webhook calls, validating").context("figure")?;
    let map = figure("MutatingAdmissionPolicy plugin").context("figure")?;
    let own = figure("webhook's own review time, /mutate").context("figure")?;
    for ((setup, clients), p) in results {
        let n = p.creates() as f64;
        ensure!(
            n > 0.0,
            "{} with {clients} clients: no create",
            setup.name()
        );
        ensure!(
            p.deltas[post].1 >= n,
            "{} with {clients} clients: the API server counted {} Pod POSTs for {n} creates",
            setup.name(),
            p.deltas[post].1
        );
        let calls = |i: usize| p.deltas[i].1 / n;
        match setup {
            Setup::None => ensure!(
                calls(hook_mut) == 0.0 && calls(hook_val) == 0.0,
                "no policy, yet webhook calls were counted"
            ),
            Setup::Cel => ensure!(
                calls(map) >= 1.0 && calls(hook_mut) == 0.0,
                "CEL pair: {} MutatingAdmissionPolicy passes and {} webhook calls per create",
                calls(map),
                calls(hook_mut)
            ),
            Setup::Webhook => ensure!(
                calls(hook_mut) >= 1.0 && calls(hook_val) >= 1.0 && calls(own) >= 1.0,
                "webhook: {} mutating and {} validating calls per create, {} /mutate reviews seen by the webhook",
                calls(hook_mut),
                calls(hook_val),
                calls(own)
            ),
        }
    }
    Ok(())
}

/// The 1-minute load average: the machine is shared, and the figures mean little without it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn report(
    cfg: &Config,
    results: &Results,
    profiles: &Profiles,
    load_at_start: &str,
) -> anyhow::Result<()> {
    let load = format!(
        "load average {load_at_start} at the start, {} at the end",
        load_average()
    );
    println!(
        "\nPod creates on the real API server, {} per setup and client count over {} round(s); {load}\n",
        cfg.creates.div_ceil(cfg.rounds) * cfg.rounds,
        cfg.rounds
    );
    println!(
        "| setup | clients | creates | median | p99 | creates/s | added median | added p99 | creates/s vs none |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &clients in &cfg.clients {
        let base = results.get(&(Setup::None, clients));
        for setup in Setup::ALL {
            let Some(p) = results.get(&(setup, clients)) else {
                continue;
            };
            let (dm, dp, ratio) = match (setup, base) {
                (Setup::None, _) | (_, None) => ("".into(), "".into(), "1.00".into()),
                (_, Some(b)) => (
                    format!("{:+.2} ms", p.quantile(0.5) - b.quantile(0.5)),
                    format!("{:+.2} ms", p.quantile(0.99) - b.quantile(0.99)),
                    format!("{:.2}", p.rate() / b.rate()),
                ),
            };
            println!(
                "| {} | {clients} | {} | {:.2} ms | {:.2} ms | {:.0} | {dm} | {dp} | {ratio} |",
                setup.name(),
                p.creates(),
                p.quantile(0.5),
                p.quantile(0.99),
                p.rate()
            );
        }
    }
    println!(
        "\nThe API server's own metrics (and the webhook's) per create: time spent in all calls (ms) × calls\n"
    );
    let mut header = String::from("| figure |");
    let mut rule = String::from("| --- |");
    let mut columns = Vec::new();
    for &clients in &cfg.clients {
        for setup in Setup::ALL {
            if results.contains_key(&(setup, clients)) {
                header.push_str(&format!(" {}, {clients} cl. |", setup.slug()));
                rule.push_str(" ---: |");
                columns.push((setup, clients));
            }
        }
    }
    println!("{header}\n{rule}");
    for (i, f) in FIGURES.iter().enumerate() {
        let any = columns
            .iter()
            .any(|k| results.get(k).is_some_and(|p| p.deltas[i].1 > 0.0));
        if !any {
            continue;
        }
        let mut row = format!("| {} |", f.label);
        for k in &columns {
            let Some(p) = results.get(k) else { continue };
            let n = p.creates() as f64;
            let (sum, count) = p.deltas[i];
            if count > 0.0 {
                row.push_str(&format!(" {:.3} ms × {:.2} |", sum / n * 1000.0, count / n));
            } else {
                row.push_str(" |");
            }
        }
        println!("{row}");
    }

    let seq = *cfg.clients.first().context("no client counts")?;
    let conc = *cfg.clients.last().context("no client counts")?;
    if !cfg.bench {
        println!(
            "\n(smoke run under cargo test: the figures above measure nothing; targets not judged)"
        );
    } else {
        println!("\nTargets");
        judge_targets(results, seq, conc);
    }
    report_profiles(profiles);

    let colours = [
        (Setup::None, "#555555"),
        (Setup::Cel, "#1f77b4"),
        (Setup::Webhook, "#d62728"),
    ];
    let series: Vec<chart::Series<'_>> = colours
        .iter()
        .map(|(setup, colour)| chart::Series {
            label: setup.name(),
            colour,
            points: cfg
                .clients
                .iter()
                .filter_map(|c| {
                    let p = results.get(&(*setup, *c))?;
                    Some((*c, p.quantile(0.5), p.quantile(0.99), p.rate()))
                })
                .collect(),
        })
        .collect();
    let svg = chart::svg(
        "Pod CREATE on kube-apiserver v1.37.2: no policy, the CEL pair, openclaw-admission",
        &format!(
            "make bench-controlplane, {} creates per point over {} round(s); the API server, etcd, the webhook and the clients share one 2-vCPU VM ({load})",
            cfg.creates.div_ceil(cfg.rounds) * cfg.rounds,
            cfg.rounds
        ),
        &series,
    );
    if let Some(dir) = cfg.svg.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cfg.svg, &svg)
        .with_context(|| format!("cannot write {}", cfg.svg.display()))?;
    ensure!(
        svg.matches("<polyline").count() == 9,
        "the chart should hold 9 lines"
    );
    println!("\nchart: {}", cfg.svg.display());
    Ok(())
}

/// The Pod-create targets (docs/performance.md#targets), marked met or MISSED.
fn judge_targets(results: &Results, seq: usize, conc: usize) {
    let added = |setup: Setup, clients: usize| -> Option<f64> {
        Some(
            results.get(&(setup, clients))?.quantile(0.5)
                - results.get(&(Setup::None, clients))?.quantile(0.5),
        )
    };
    for (what, clients) in [("sequential", seq), ("concurrent", conc)] {
        if let (Some(w), Some(c)) = (added(Setup::Webhook, clients), added(Setup::Cel, clients)) {
            println!(
                "- added median, {what} ({clients} client(s)): webhook {w:+.2} ms, CEL pair {c:+.2} ms: {}",
                if w <= c { "met" } else { "MISSED" }
            );
        }
    }
    if let (Some(w), Some(c), Some(n)) = (
        results.get(&(Setup::Webhook, conc)),
        results.get(&(Setup::Cel, conc)),
        results.get(&(Setup::None, conc)),
    ) {
        let ratio = w.rate() / n.rate();
        println!(
            "- creates/s with {conc} clients, webhook / no policy: {ratio:.2} (CEL pair {:.2}; target at least 0.6): {}",
            c.rate() / n.rate(),
            if ratio >= 0.6 { "met" } else { "MISSED" }
        );
    }
}

fn main() -> ExitCode {
    let bench = std::env::args().any(|a| a == "--bench");
    let started = Instant::now();
    let load_at_start = load_average();
    let result = Config::from_env(bench).and_then(|cfg| {
        let (results, profiles) = run(&cfg)?;
        report(&cfg, &results, &profiles, &load_at_start)?;
        if !cfg.bench {
            let _ = std::fs::remove_dir_all(cfg.svg.parent().unwrap_or(Path::new("/nonexistent")));
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            println!(
                "control-plane bench {} in {:.0} s",
                if bench { "ran" } else { "smoke run passed" },
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("control-plane bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
