//! The e2e environment: control plane, webhook process, kubectl helpers.

use crate::mlflow::Mlflow;
use crate::prebuilt::{self, Need};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");

/// What the suite runs that cargo does not build: the control plane; MLflow, which the
/// decision spans go to; crane and the SBOM tool, with which the registry case builds and
/// serves the image; agent-sandbox's CRDs and RBAC, and its controller, which the sandbox
/// cases run (tests/e2e/sandbox_controller.rs).
pub const NEEDS: &[Need] = &[
    Need::ControlPlane,
    Need::Mlflow,
    Need::Tools,
    Need::AgentSandbox,
    Need::AgentSandboxController,
    Need::ReportCrds,
];

/// Namespaces the suite prepares: every one has the agent's dedicated ServiceAccount and a
/// default-deny egress policy allowing DNS and HTTPS; the ServiceAccount controller gives
/// each its `default` ServiceAccount, which the suite waits for.
pub const NS_ENFORCE: &str = "e2e-enforce";
pub const NS_WARN: &str = "e2e-warn";
pub const NS_AUDIT: &str = "e2e-audit";
pub const NS_NOPOLICY: &str = "e2e-no-egress-policy";
/// Left out by the webhook configuration's namespaceSelector (like the release namespace).
pub const NS_EXCLUDED: &str = "openclaw-system";
pub const AGENT_SA: &str = "openclaw-agent";

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, as a user sees them in a terminal.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub struct Env {
    /// Where the webhook's decision spans go (first field: stopped before `dir` goes).
    pub mlflow: Mlflow,
    pub dir: tempfile::TempDir,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    pub kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    pub apiserver_port: u16,
    pub webhook_port: u16,
    pub server_version: String,
    pub ca_bundle: String,
    pub webhook_log: PathBuf,
    /// The client certificate kube-apiserver presents to the webhook (up.sh's
    /// `OPENCLAW_CP_WEBHOOK_HOSTS`), its key, and the CA `serve --client-ca-file` trusts.
    pub webhook_client_cert: PathBuf,
    pub webhook_client_key: PathBuf,
    pub webhook_client_ca: PathBuf,
    pub rt: tokio::runtime::Runtime,
    /// The running `serve`: replaced by [`Env::restart_webhook`], hence behind a lock (the
    /// cases get `&Env`).
    webhook: Mutex<Option<Child>>,
    /// agent-sandbox's controller, started by the first case that needs it
    /// ([`crate::sandbox_controller::start`]) and stopped with the suite.
    pub agent_sandbox: Mutex<Option<crate::sandbox_controller::Controller>>,
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Runs a child so that it dies with this process (the test's main thread lives as long).
pub fn tied_to_us(program: &Path) -> Command {
    if Path::new("/usr/bin/setpriv").exists() {
        let mut c = Command::new("/usr/bin/setpriv");
        c.arg("--pdeathsig").arg("KILL").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Env {
    pub fn start() -> Result<Env, String> {
        let bin_dir = prebuilt::control_plane()?;
        let dir = tempfile::Builder::new()
            .prefix("openclaw-e2e-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let cp = dir.path().join("cp");
        std::fs::create_dir_all(&cp).map_err(|e| e.to_string())?;
        // Started first: it boots while the control plane does.
        let mut mlflow = Mlflow::spawn(dir.path())?;
        // Chosen before the control plane starts: the API server's webhook kubeconfig names
        // the webhook's host and port, and it presents its client certificate there only.
        let webhook_port = free_port();
        let status = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/up.sh"))
            .arg(&cp)
            .env("OPENCLAW_CP_OWNER_PID", std::process::id().to_string())
            .env(
                "OPENCLAW_CP_WEBHOOK_HOSTS",
                format!("127.0.0.1:{webhook_port}"),
            )
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run up.sh: {e}"))?;
        if !status.success() {
            return Err(format!("tests/controlplane/up.sh failed ({status})"));
        }
        mlflow.wait_ready()?;
        let cpenv = read_env_file(&cp.join("env"))?;
        let get = |k: &str| {
            cpenv
                .get(k)
                .cloned()
                .ok_or_else(|| format!("{k} missing from up.sh env"))
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut env = Env {
            mlflow,
            kubectl: bin_dir.join("kubectl"),
            helm: bin_dir.join("helm"),
            kubeconfig: PathBuf::from(get("KUBECONFIG")?),
            audit_log: PathBuf::from(get("AUDIT_LOG")?),
            apiserver_port: get("APISERVER_PORT")?
                .parse()
                .map_err(|_| "bad APISERVER_PORT")?,
            webhook_port,
            server_version: String::new(),
            ca_bundle: String::new(),
            webhook_log: dir.path().join("webhook.log"),
            webhook_client_cert: PathBuf::from(get("WEBHOOK_CLIENT_CERT")?),
            webhook_client_key: PathBuf::from(get("WEBHOOK_CLIENT_KEY")?),
            webhook_client_ca: PathBuf::from(get("WEBHOOK_CLIENT_CA")?),
            rt,
            webhook: Mutex::new(None),
            agent_sandbox: Mutex::new(None),
            dir,
        };
        let v = env.kubectl_json(&["version", "-o", "json"])?;
        env.server_version = v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        env.make_certs()?;
        env.prepare_namespaces()?;
        env.start_webhook()?;
        env.register_webhooks()?;
        Ok(env)
    }

    fn make_certs(&mut self) -> Result<(), String> {
        let certs = self.dir.path().join("certs");
        let out = Command::new(BIN)
            .args(["certs", "--out-dir"])
            .arg(&certs)
            .args(["--ip", "127.0.0.1", "--dns", "localhost"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "certs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.ca_bundle = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(())
    }

    /// The suite's policy file (the live-policy case rewrites it).
    pub fn policy_file(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    /// The suite's approval key, made once by [`Env::start`].
    pub fn approval_key_file(&self) -> PathBuf {
        self.dir.path().join("approval.key")
    }

    fn start_webhook(&mut self) -> Result<(), String> {
        // Decision spans to MLflow's OTLP endpoint, in the experiment the suite made.
        let text = format!(
            "{}telemetry:\n  endpoint: {}\n  headers:\n    x-mlflow-experiment-id: \"{}\"\n",
            include_str!("policy.yaml"),
            self.mlflow.traces_url(),
            self.mlflow.experiment_id
        );
        std::fs::write(self.policy_file(), text).map_err(|e| e.to_string())?;
        // What the chart keeps in a Secret: random bytes, made once per suite.
        let key: String = (0..4).map(|_| format!("{:016x}", rand_u64())).collect();
        std::fs::write(self.approval_key_file(), key).map_err(|e| e.to_string())?;
        std::fs::File::create(&self.webhook_log).map_err(|e| e.to_string())?;
        self.spawn_webhook(&self.approval_key_file(), &[])
    }

    /// Stops the webhook and starts it again on the same port, with the same certificate,
    /// policy file and log, and `serve`'s flags as [`Env::start`] gives them except that
    /// `--approval-key-file` is `approval_key` (the suite's own key when `None`) and `extra`
    /// is added; returns once `/readyz` says ready. `restart_webhook(None, &[])` restores the
    /// suite's webhook.
    pub fn restart_webhook(
        &self,
        approval_key: Option<&Path>,
        extra: &[&OsStr],
    ) -> Result<(), String> {
        if let Some(mut old) = self.webhook.lock().map_err(|e| e.to_string())?.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let key = approval_key.map_or_else(|| self.approval_key_file(), Path::to_path_buf);
        self.spawn_webhook(&key, extra)
    }

    /// Starts `serve` with `approval_key` and `extra` flags appended, its output appended to
    /// the webhook log, tied to this process, and waits for `/readyz`.
    fn spawn_webhook(&self, approval_key: &Path, extra: &[&OsStr]) -> Result<(), String> {
        let certs = self.dir.path().join("certs");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.webhook_log)
            .map_err(|e| e.to_string())?;
        let child = tied_to_us(Path::new(BIN))
            .arg("serve")
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .arg("--policy")
            .arg(self.policy_file())
            .arg("--approval-key-file")
            .arg(approval_key)
            // The live-policy case rewrites the policy file: look at it every second.
            .arg("--cert-reload-interval")
            .arg("1s")
            // The Cilium and SecretProviderClass cases install their CRDs mid-suite.
            .arg("--discovery-interval")
            .arg("1s")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.webhook_port))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            // Client auth on: only the API server's certificate gets reviews answered.
            .arg("--client-ca-file")
            .arg(&self.webhook_client_ca)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the webhook: {e}"))?;
        *self.webhook.lock().map_err(|e| e.to_string())? = Some(child);
        // Ready means: TLS up and the cluster caches synced.
        let ca = reqwest::Certificate::from_pem(
            &std::fs::read(certs.join("ca.crt")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let url = format!("https://127.0.0.1:{}/readyz", self.webhook_port);
        let waited = wait_until_up(&self.rt, &client, &url, Duration::from_secs(60), || {
            Ok(self
                .webhook
                .lock()
                .map_err(|e| e.to_string())?
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten()))
        });
        match waited {
            Ok(()) => Ok(()),
            Err(Down::Exited(st)) => Err(format!(
                "the webhook exited ({st}):\n{}",
                self.webhook_log_text()
            )),
            Err(Down::Late) => Err(format!(
                "the webhook was not ready within 60 s:\n{}",
                self.webhook_log_text()
            )),
            Err(Down::Other(e)) => Err(e),
        }
    }

    /// Applies the url form of `webhook-config/` with this run's port and caBundle.
    fn register_webhooks(&self) -> Result<(), String> {
        for f in ["validating.yaml", "mutating.yaml"] {
            let path = format!("{ROOT}/webhook-config/url/{f}");
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            let text = text.replace("${CA_BUNDLE}", &self.ca_bundle).replace(
                "${WEBHOOK_HOST}",
                &format!("127.0.0.1:{}", self.webhook_port),
            );
            let out = self.kubectl_stdin(&["apply", "-f", "-"], &text);
            if !out.ok {
                return Err(format!("registering {f} failed: {}", out.all()));
            }
        }
        Ok(())
    }

    fn prepare_namespaces(&self) -> Result<(), String> {
        let mut docs = Vec::new();
        for (ns, mode, egress) in [
            (NS_ENFORCE, None, true),
            (NS_WARN, Some("warn"), true),
            (NS_AUDIT, Some("audit"), true),
            (NS_NOPOLICY, None, false),
            (NS_EXCLUDED, None, true),
        ] {
            let mut labels = serde_json::Map::new();
            if let Some(m) = mode {
                labels.insert("openclaw.io/mode".into(), m.into());
            }
            docs.push(serde_json::json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns,"labels":labels}}));
            docs.push(serde_json::json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":AGENT_SA,"namespace":ns}}));
            if egress {
                docs.push(deny_egress_policy(ns));
            }
        }
        self.apply_docs(&docs)?;
        for ns in [NS_ENFORCE, NS_WARN, NS_AUDIT, NS_NOPOLICY, NS_EXCLUDED] {
            self.wait_for_default_service_account(ns)?;
        }
        Ok(())
    }

    /// The ServiceAccount controller makes `default` a moment after the namespace; a Pod
    /// that names no ServiceAccount is refused by the ServiceAccount admission plugin until
    /// then.
    pub fn wait_for_default_service_account(&self, ns: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .kubectl(&["-n", ns, "get", "serviceaccount", "default", "-o", "name"])
                .ok
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no ServiceAccount default in namespace {ns} after 30 s: is kube-controller-manager running?"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn apply_docs(&self, docs: &[Value]) -> Result<(), String> {
        let list = serde_json::json!({"apiVersion":"v1","kind":"List","items":docs});
        let out = self.kubectl_stdin(&["apply", "-f", "-"], &list.to_string());
        if out.ok {
            Ok(())
        } else {
            Err(format!("kubectl apply failed: {}", out.all()))
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, "")
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let child = Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    ok: false,
                    stdout: String::new(),
                    stderr: e.to_string(),
                };
            }
        };
        if let Some(mut si) = child.stdin.take() {
            let _ = si.write_all(stdin.as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => Output {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Output {
                ok: false,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Result<Value, String> {
        let out = self.kubectl(args);
        if !out.ok {
            return Err(format!("kubectl {} failed: {}", args.join(" "), out.all()));
        }
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("kubectl {}: not JSON: {e}", args.join(" ")))
    }

    /// `kubectl apply -f -` of one object.
    pub fn apply(&self, obj: &Value, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        self.kubectl_stdin(&args, &obj.to_string())
    }

    pub fn get_pod(&self, ns: &str, name: &str) -> Result<Value, String> {
        self.kubectl_json(&["-n", ns, "get", "pod", name, "-o", "json"])
    }

    pub fn pod_exists(&self, ns: &str, name: &str) -> bool {
        self.kubectl(&["-n", ns, "get", "pod", name, "-o", "name"])
            .ok
    }

    /// `GET https://127.0.0.1:<webhook>/<path>`, trusting the suite's CA: the body of a 200.
    pub fn webhook_get(&self, path: &str) -> Result<String, String> {
        let ca = reqwest::Certificate::from_pem(
            &std::fs::read(self.dir.path().join("certs/ca.crt")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let url = format!("https://127.0.0.1:{}{path}", self.webhook_port);
        self.rt.block_on(async {
            let r = client
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("{url}: HTTP {}", r.status()));
            }
            r.text().await.map_err(|e| format!("{url}: {e}"))
        })
    }

    pub fn webhook_log_text(&self) -> String {
        std::fs::read_to_string(&self.webhook_log).unwrap_or_default()
    }

    pub fn dump_webhook_log(&self) {
        let text = self.webhook_log_text();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("--- last lines of the webhook log ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }

    /// Retries `f` until it succeeds or `secs` pass: the webhook's caches follow the API
    /// server through watches, so a change is seen a moment later, not at once.
    pub fn eventually<T>(
        &self,
        secs: u64,
        mut f: impl FnMut() -> Result<T, String>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // The controller first: it would otherwise log the API server's going away.
        drop(self.agent_sandbox.get_mut().ok().and_then(Option::take));
        let child = self.webhook.get_mut().ok().and_then(Option::take);
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let cp = self.dir.path().join("cp");
        let _ = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/down.sh"))
            .arg(&cp)
            .stdout(Stdio::null())
            .status();
    }
}

/// Random enough for a test key: the std hasher's per-process random seed.
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Default-deny egress allowing DNS (53 UDP/TCP) and HTTPS (443), for every pod.
pub fn deny_egress_policy(ns: &str) -> Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-egress", "namespace": ns},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": 443}]}
            ]
        }
    })
}

/// An agent pod that passes every check.
pub fn hardened_pod(ns: &str, name: &str) -> Value {
    let sc = serde_json::json!({
        "runAsNonRoot": true, "runAsUser": 10001, "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}
    });
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {"app": "openclaw", "app.kubernetes.io/instance": name},
            "annotations": {"openclaw.io/secret-provider-class": "openclaw-vault"}
        },
        "spec": {
            "serviceAccountName": AGENT_SA,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{
                "name": "init-workspace", "image": "ghcr.io/openclaw/openclaw:2026.11",
                "command": ["sh", "-c", "true"], "securityContext": sc.clone()
            }],
            "containers": [{
                "name": "agent", "image": "ghcr.io/openclaw/openclaw:2026.11",
                "ports": [{"containerPort": 18789, "name": "gateway"}],
                "env": [
                    {"name": "OPENCLAW_WORKSPACE", "value": "/workspace"},
                    {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "key"}}}
                ],
                "securityContext": sc,
                "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}, {"name": "tmp", "mountPath": "/tmp"}]
            }],
            "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
        }
    })
}

/// The stored Pod's projected ServiceAccount token source, once it is checked that the
/// ServiceAccount plugin's own `kube-api-access-*` volume is gone.
pub fn projected_token(pod: &Value) -> Result<Value, String> {
    let vols = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if vols.iter().any(|v| {
        v["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("kube-api-access-")
    }) {
        return Err(format!("a kube-api-access volume is left: {vols:?}"));
    }
    vols.iter()
        .flat_map(|v| {
            v["projected"]["sources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|s| s.get("serviceAccountToken").is_some())
        .ok_or_else(|| format!("no projected serviceAccountToken volume: {vols:?}"))
}

/// Binds `bob` and `mallory` to the `edit` ClusterRole in `ns` by a RoleBinding, as a cluster
/// gives a tenant its namespace: requests made with [`AS_APPROVER`] or [`AS_USER`] then pass
/// RBAC, so a refusal is the webhook's.
pub fn editors(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "e2e-editors", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
                     {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]})])
}

/// `bob`, in the policy's approver group (and bound to `edit` by [`editors`]).
pub const AS_APPROVER: [&str; 2] = ["--as=bob", "--as-group=openclaw:approvers"];
/// `mallory`, a tenant with `edit` rights and no approver group.
pub const AS_USER: [&str; 1] = ["--as=mallory"];

/// Grants `bob` and `mallory` `pods/ephemeralcontainers` in `ns` (`kubectl debug`), which
/// `edit` does not: a refusal is then the webhook's, not RBAC's.
pub fn debuggers(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "debuggers", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"],
                "verbs": ["get", "patch", "update"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "debuggers", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debuggers"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
                         {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
    ])
}

/// Why a process the suite started did not come up.
pub enum Down {
    Exited(std::process::ExitStatus),
    /// Still running, not answering 2xx by the deadline.
    Late,
    Other(String),
}

/// Polls `url` until it answers 2xx, `exited` gives the process's exit status, or `within`
/// passes (the webhook's `/readyz`, agent-sandbox's controller's `/healthz`).
pub fn wait_until_up(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    within: Duration,
    mut exited: impl FnMut() -> Result<Option<std::process::ExitStatus>, String>,
) -> Result<(), Down> {
    let deadline = Instant::now() + within;
    loop {
        let ok = rt.block_on(async {
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().is_success())
        });
        if matches!(ok, Ok(true)) {
            return Ok(());
        }
        if let Some(st) = exited().map_err(Down::Other)? {
            return Err(Down::Exited(st));
        }
        if Instant::now() > deadline {
            return Err(Down::Late);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// A policy report's results (OpenReports or wgpolicyk8s.io) as `name:rule:result`, in the
/// report's order.
pub fn report_results(r: &Value) -> Vec<String> {
    r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            format!(
                "{}:{}:{}",
                x["resources"][0]["name"].as_str().unwrap_or(""),
                x["rule"].as_str().unwrap_or(""),
                x["result"].as_str().unwrap_or("")
            )
        })
        .collect()
}
