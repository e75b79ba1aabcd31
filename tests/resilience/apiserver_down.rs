//! The API server stopped while a live `serve` answers reviews (the project's control plane,
//! tests/controlplane, in its own directory and on its own ports):
//!
//! - reviews keep being answered from the caches, and judged right: the agent Pod that the
//!   namespace's default-deny egress NetworkPolicy makes acceptable is allowed, the
//!   unhardened one refused;
//! - the lost watches show in `/metrics` (`openclaw_admission_cache_watch_errors_total`) and
//!   `/readyz` stays 200, since the caches are still good;
//! - once the API server is back, a change made then (the egress policy deleted) reaches the
//!   cache through the re-established watch: the same Pod is now refused. The namespace keeps
//!   another NetworkPolicy, so the cache never misses one and no live lookup stands in for
//!   the watch.

use super::support::prebuilt::NotBuilt;
use super::support::{self, Certs, Serve, load};
use anyhow::{Context as _, ensure};
use axum::body::Bytes;
use http_body_util::BodyExt as _;
use hyper::Request;
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A control plane of our own, stopped (down.sh) when dropped.
struct ControlPlane {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// kube-apiserver, etcd, kubectl (tests/controlplane/build.sh).
    bin_dir: PathBuf,
}

impl ControlPlane {
    fn start(bin_dir: PathBuf) -> anyhow::Result<ControlPlane> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cp");
        let status = Command::new("bash")
            .arg(support::manifest_path("tests/controlplane/up.sh"))
            .arg(&path)
            .env("OPENCLAW_CP_OWNER_PID", std::process::id().to_string())
            .status()
            .context("cannot run up.sh")?;
        ensure!(status.success(), "up.sh failed");
        Ok(ControlPlane {
            _dir: dir,
            path,
            bin_dir,
        })
    }
    fn kubeconfig(&self) -> PathBuf {
        self.path.join("kubeconfig")
    }
    fn apiserver(&self, action: &str) {
        let status = Command::new("bash")
            .arg(support::manifest_path("tests/controlplane/apiserver.sh"))
            .arg(&self.path)
            .arg(action)
            .status()
            .expect("run apiserver.sh");
        assert!(status.success(), "apiserver.sh {action} failed");
    }
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig").arg(self.kubeconfig()).args(args);
        let out = match stdin {
            Some(text) => {
                use std::io::Write as _;
                let mut child = cmd
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("kubectl");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
            None => cmd.output().expect("kubectl"),
        };
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(support::manifest_path("tests/controlplane/down.sh"))
            .arg(&self.path)
            .status();
    }
}

/// The review fixtures' namespace, with the ServiceAccount, the egress policy the hardened
/// Pod needs, and a second policy that selects other Pods.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: agents}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: openclaw-agent, namespace: agents}
automountServiceAccountToken: false
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: openclaw-default-deny-egress, namespace: agents}
spec:
  podSelector: {matchLabels: {app: openclaw}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: postgres-ingress, namespace: agents}
spec:
  podSelector: {matchLabels: {app: postgres}}
  policyTypes: [Ingress]
"#;

fn fixture(name: &str) -> Bytes {
    std::fs::read(support::manifest_path(&format!(
        "tests/fixtures/reviews/{name}"
    )))
    .unwrap()
    .into()
}

/// One HTTPS connection to the webhook, re-opened when it breaks.
struct Client {
    tls: tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    sender: Option<load::Sender>,
}

impl Client {
    async fn sender(&mut self) -> &mut load::Sender {
        if self.sender.is_none() {
            self.sender = Some(load::connect(&self.tls, self.addr).await.unwrap());
        }
        self.sender.as_mut().unwrap()
    }
    /// `allowed` of a review at /validate (HTTP 200 asserted).
    async fn allowed(&mut self, review: &Bytes) -> (bool, String) {
        let (status, body) = load::post(self.sender().await, "/validate", review)
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        (
            v["response"]["allowed"].as_bool().unwrap(),
            v["response"]["status"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    }
    async fn get(&mut self, path: &str) -> (u16, String) {
        let sender = self.sender().await;
        sender.ready().await.unwrap();
        let req = Request::get(path)
            .header(hyper::header::HOST, "localhost")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
    /// The sum over kinds of a labelled counter in /metrics.
    async fn metric_sum(&mut self, name: &str) -> u64 {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

#[test]
fn reviews_are_answered_from_the_caches_while_the_api_server_is_away_and_resync_after()
-> Result<(), NotBuilt> {
    // Before anything else, and instead of up.sh's own build of many minutes: a control
    // plane that is not built fails the test with the one line that says how to build it.
    let bin_dir = support::prebuilt::control_plane().map_err(NotBuilt)?;
    let _one = support::exclusive();
    let cp = ControlPlane::start(bin_dir).unwrap();
    cp.kubectl(&["apply", "-f", "-"], Some(OBJECTS));
    let certs = Certs::new().unwrap();
    let args: Vec<OsString> = vec!["--kubeconfig".into(), cp.kubeconfig().into()];
    let serve = Serve::start(&certs, &args).unwrap();
    let hardened = fixture("pod-create-hardened.json");
    let unhardened = fixture("pod-create-unhardened.json");
    let rt = support::runtime();
    rt.block_on(async {
        let mut client = Client {
            tls: load::connector(certs.ca_pem()).unwrap(),
            addr: serve.addr,
            sender: None,
        };
        // Ready once every kind is listed.
        let ready_by = Instant::now() + Duration::from_secs(60);
        while client.get("/readyz").await.0 != 200 {
            assert!(
                Instant::now() < ready_by,
                "serve not ready within 60 s:\n{}",
                serve.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(client.allowed(&hardened).await.0);
        assert!(!client.allowed(&unhardened).await.0);
        let errors_before = client
            .metric_sum("openclaw_admission_cache_watch_errors_total")
            .await;

        // The API server goes away.
        cp.apiserver("stop");
        let stopped = Instant::now();
        let mut reviews = 0;
        let seen_by = Instant::now() + Duration::from_secs(60);
        let errors_during = loop {
            assert!(
                client.allowed(&hardened).await.0,
                "the hardened pod must stay allowed from the cache"
            );
            assert!(!client.allowed(&unhardened).await.0);
            reviews += 2;
            let (status, body) = client.get("/readyz").await;
            assert_eq!(status, 200, "/readyz without the API server: {body}");
            let errors = client
                .metric_sum("openclaw_admission_cache_watch_errors_total")
                .await;
            if errors > errors_before && stopped.elapsed() > Duration::from_secs(5) {
                break errors;
            }
            assert!(
                Instant::now() < seen_by,
                "no watch error in /metrics 60 s after the API server stopped"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        println!(
            "API server away {:.1} s: {reviews} reviews answered from the caches and judged \
             right, /readyz 200 throughout, watch errors {errors_before} -> {errors_during}",
            stopped.elapsed().as_secs_f64()
        );

        // Back, and the egress policy is deleted through it.
        cp.apiserver("start");
        let back = Instant::now();
        cp.kubectl(
            &[
                "-n",
                "agents",
                "delete",
                "networkpolicy",
                "openclaw-default-deny-egress",
            ],
            None,
        );
        let resync_by = Instant::now() + Duration::from_secs(90);
        let message = loop {
            let (allowed, message) = client.allowed(&hardened).await;
            if !allowed {
                break message;
            }
            assert!(
                Instant::now() < resync_by,
                "the deleted NetworkPolicy still counts 90 s after the API server came back"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(message.contains("default-deny-egress"), "{message}");
        let (status, _) = client.get("/readyz").await;
        assert_eq!(status, 200);
        let relists = client
            .metric_sum("openclaw_admission_cache_relists_total")
            .await;
        let errors_after = client
            .metric_sum("openclaw_admission_cache_watch_errors_total")
            .await;
        println!(
            "API server back: the deleted egress policy reached the cache {:.1} s after the \
             restart; the hardened pod is now refused ({}); relists {relists}, watch errors \
             {errors_after}",
            back.elapsed().as_secs_f64(),
            message.lines().next().unwrap_or("")
        );
    });
    Ok(())
}
