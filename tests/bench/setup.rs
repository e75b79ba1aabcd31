//! What the bench measures against: certificates from the crate's own `certs`, the real
//! router behind the real TLS listener, an echo server behind the same listener, cluster
//! views of two sizes, and the release binary as a child process for memory figures.

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use openclaw_admission::certs;
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::policy::{Policy, TelemetrySettings};
use openclaw_admission::engine::view::StaticView;
use openclaw_admission::server::listen::{self, ListenOptions};
use openclaw_admission::server::metrics::Metrics;
use openclaw_admission::server::telemetry::Telemetry;
use openclaw_admission::server::tls::ReloadingCert;
use openclaw_admission::server::{self, AppState, Readiness};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub fn manifest_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The agent pod review (or the one `BENCH_REVIEW` names), compacted as the API server
/// sends it.
pub fn agent_review() -> anyhow::Result<Bytes> {
    let path = std::env::var_os("BENCH_REVIEW").map_or_else(
        || manifest_path("tests/bench/agent-pod-review.json"),
        PathBuf::from,
    );
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text)?;
    Ok(Bytes::from(serde_json::to_vec(&value)?))
}

/// A CA and a serving pair for localhost / 127.0.0.1, written where `serve` can read them;
/// and a client CA with the client certificate the API server would present to a webhook run
/// with `--client-ca-file`.
pub struct Tls {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Where [`Tls::generate`] writes the client CA.
const CLIENT_CA_FILE: &str = "client-ca.crt";

impl Tls {
    pub fn generate() -> anyhow::Result<Tls> {
        let ca = certs::generate_ca("openclaw-admission bench CA", 1)?;
        let leaf = certs::issue_serving(&ca, &["localhost".into()], &["127.0.0.1".parse()?], 1)?;
        let dir = tempfile::tempdir()?;
        certs::write_files(dir.path(), &ca, &leaf)?;
        let client_ca = certs::generate_ca("openclaw-admission bench client CA", 1)?;
        let client = certs::issue_client(&client_ca, "kube-apiserver-webhook-client", 1)?;
        std::fs::write(dir.path().join(CLIENT_CA_FILE), &client_ca.cert_pem)?;
        Ok(Tls {
            ca_pem: ca.cert_pem.clone(),
            client_cert_pem: client.cert_pem,
            client_key_pem: client.key_pem,
            dir,
        })
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join(certs::TLS_CERT_FILE)
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join(certs::TLS_KEY_FILE)
    }
    fn reloading(&self) -> anyhow::Result<Arc<ReloadingCert>> {
        Ok(ReloadingCert::load(
            &self.cert(),
            &self.key(),
            Arc::new(Metrics::new()),
        )?)
    }
}

/// A server running on the server runtime until stopped.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn options() -> ListenOptions {
    ListenOptions {
        // The bench ends by itself: a short drain.
        shutdown_grace: Duration::from_secs(1),
        ..ListenOptions::default()
    }
}

/// The webhook as `serve` runs it: router, metrics, reloading certificate, TLS listener.
pub fn start_webhook(rt: &Runtime, tls: &Tls, view: StaticView) -> anyhow::Result<Running> {
    Ok(start_webhook_exporting(rt, tls, view, None)?.0)
}

/// [`start_webhook`] with client authentication on, as `serve --client-ca-file` runs it: only
/// a client presenting [`Tls`]'s client certificate gets reviews answered.
pub fn start_webhook_client_auth(
    rt: &Runtime,
    tls: &Tls,
    view: StaticView,
) -> anyhow::Result<Running> {
    let client_ca = openclaw_admission::server::client_auth::ClientCa::load(
        &tls.dir.path().join(CLIENT_CA_FILE),
        vec!["kube-apiserver-webhook-client".into()],
        Arc::new(Metrics::new()),
    )?;
    Ok(start_webhook_with(rt, tls, view, None, Some(client_ca))?.0)
}

/// [`start_webhook`], exporting one span per review to `traces_url` when given; the metrics
/// say how many spans left and how many were dropped.
pub fn start_webhook_exporting(
    rt: &Runtime,
    tls: &Tls,
    view: StaticView,
    traces_url: Option<String>,
) -> anyhow::Result<(Running, Arc<Metrics>)> {
    start_webhook_with(rt, tls, view, traces_url, None)
}

fn start_webhook_with(
    rt: &Runtime,
    tls: &Tls,
    view: StaticView,
    traces_url: Option<String>,
    client_ca: Option<Arc<openclaw_admission::server::client_auth::ClientCa>>,
) -> anyhow::Result<(Running, Arc<Metrics>)> {
    let certs = tls.reloading()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let mut state = AppState::new(
        Arc::new(Policy::default()),
        Arc::new(view),
        Readiness::new(true),
    );
    if let Some(endpoint) = traces_url {
        let settings = TelemetrySettings {
            endpoint,
            ..Default::default()
        };
        let telemetry =
            Telemetry::start(&settings, state.metrics.clone()).map_err(|e| anyhow::anyhow!(e))?;
        state.telemetry = Arc::new(telemetry);
    }
    let metrics = state.metrics.clone();
    let (tx, rx) = oneshot::channel::<()>();
    rt.spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = server::run(
            listener,
            state,
            certs,
            client_ca,
            Duration::from_secs(10),
            options(),
            shutdown,
        )
        .await
        {
            eprintln!("webhook server failed: {e}");
        }
    });
    Ok((
        Running {
            addr,
            stop: Some(tx),
        },
        metrics,
    ))
}

/// What the echo server answers, whatever it is sent.
pub const ECHO_ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"b3d5a0f2-6c1e-4f7a-9b2d-8e4c0a1f5d37","allowed":true}}"#;

/// Reads the whole body (as the webhook must) and answers a fixed review without parsing.
async fn echo(body: Bytes) -> impl IntoResponse {
    drop(body);
    ([(CONTENT_TYPE, "application/json")], ECHO_ANSWER)
}

/// The floor: the same TLS listener, an axum handler that does no work.
pub fn start_echo(rt: &Runtime, tls: &Tls) -> anyhow::Result<Running> {
    let config = tls.reloading()?.server_config(None)?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/validate", post(echo))
        .route("/mutate", post(echo));
    let (tx, rx) = oneshot::channel::<()>();
    rt.spawn(listen::serve_tls(
        listener,
        config,
        app,
        options(),
        async move {
            let _ = rx.await;
        },
    ));
    Ok(Running {
        addr,
        stop: Some(tx),
    })
}

/// The view the review fixtures are written against: the agents namespace, its
/// ServiceAccount and one default-deny-egress NetworkPolicy; and the `gvisor` RuntimeClass
/// the bench's isolated agent names (the review fixtures name none).
pub fn small_view() -> anyhow::Result<StaticView> {
    let mut view = load_view(&[manifest_path("tests/fixtures/reviews/cluster-view.json")])?;
    view.index.apply_runtime_class("gvisor");
    Ok(view)
}

/// Sizes of the large view.
pub const NAMESPACES: usize = 2_000;
pub const POLICIES_PER_NAMESPACE: usize = 5;
pub const SERVICE_ACCOUNTS_PER_NAMESPACE: usize = 50;

/// The small view plus 2,000 namespaces of 5 NetworkPolicies and 50 ServiceAccounts each
/// (10,000 and 100,000), and 4 more policies in the pod's own namespace, so that it has 5
/// of its own like its neighbours. The pod is still allowed: the extra policies open only
/// DNS and HTTPS egress, or select other pods.
pub fn large_view() -> anyhow::Result<StaticView> {
    let mut view = small_view()?;
    let np = |namespace: &str, name: &str, spec: serde_json::Value| {
        serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
    };
    let dns = json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                     "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]});
    let index = &mut view.index;
    for (name, spec) in [
        (
            "allow-dns",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Egress"], "egress": [dns]}),
        ),
        (
            "allow-https",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Egress"],
                   "egress": [{"ports": [{"protocol": "TCP", "port": 443}]}]}),
        ),
        (
            "allow-gateway-ingress",
            json!({"podSelector": {"matchLabels": {"app": "openclaw"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
                                "ports": [{"port": 18789}]}]}),
        ),
        (
            "postgres-egress",
            json!({"podSelector": {"matchLabels": {"app": "postgres"}},
                   "egress": [{"ports": [{"protocol": "TCP", "port": 5432}]}]}),
        ),
    ] {
        index.apply_network_policy(np("agents", name, spec)?);
    }
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:04}");
        index.apply_namespace(&Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(
                    [
                        ("kubernetes.io/metadata.name".to_string(), ns.clone()),
                        ("team".to_string(), format!("t{}", n % 50)),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        });
        for p in 0..POLICIES_PER_NAMESPACE {
            let spec = match p {
                0 => json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                1 => json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns.clone()]}),
                _ => json!({"podSelector": {"matchLabels": {"app": format!("svc-{p}")}},
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                                         "ports": [{"protocol": "TCP", "port": 8080 + p}]}]}),
            };
            index.apply_network_policy(np(&ns, &format!("policy-{p}"), spec)?);
        }
        for s in 0..SERVICE_ACCOUNTS_PER_NAMESPACE {
            index.apply_service_account_name(&ns, &format!("workload-{s:02}"), None);
        }
    }
    Ok(view)
}

/// The release binary, serving on a loopback port; killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `openclaw-admission serve --no-cluster` on a free loopback port with the small
/// view's manifests; logs go to /dev/null (one JSON line per review is still written).
pub fn spawn_serve(tls: &Tls) -> anyhow::Result<ServeProcess> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let bin = Path::new(env!("CARGO_BIN_EXE_openclaw-admission"));
    let child = Command::new(bin)
        .arg("serve")
        .arg("--no-cluster")
        .arg("--manifests")
        .arg(manifest_path("tests/fixtures/reviews/cluster-view.json"))
        .arg("--tls-cert")
        .arg(tls.cert())
        .arg("--tls-key")
        .arg(tls.key())
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok(ServeProcess { child, addr })
}

/// Waits until something accepts TCP on `addr`, at most 10 s.
pub fn wait_listening(process: &mut ServeProcess) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = process.child.try_wait()? {
            bail!("serve exited early: {status}");
        }
        if std::net::TcpStream::connect(process.addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("serve did not listen on {} within 10 s", process.addr)
}
