//! What the process-level tests share: the release binary run as a child process (the chart
//! runs that build, and its memory is what the chart limits), serving certificates laid out
//! as a Kubernetes Secret volume lays them out, resident-set readings, a TLS client, and a
//! lock so that the tests that load the machine do not measure each other.

use anyhow::{Context as _, bail};
use openclaw_admission::certs;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

#[path = "../common/prebuilt.rs"]
pub mod prebuilt;
#[path = "../common/procfs.rs"]
mod procfs;
pub use procfs::{cpu_seconds, proc_status_kib};

#[path = "../bench/load.rs"]
#[allow(dead_code)]
pub mod load;

pub fn manifest_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// One machine-loading test at a time (the soak, the connection floods, the API server
/// outage): each measures a process, and two at once would measure each other.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The static release binary that image/binary.sh builds (`make test` has built it for the
/// image tests already; then this is cargo's freshness check and nothing else).
pub fn release_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(manifest_path("image/binary.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run image/binary.sh: {e}"));
        assert!(
            out.status.success(),
            "image/binary.sh failed: {}",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(text.lines().last().unwrap_or_default().trim());
        assert!(path.is_file(), "image/binary.sh printed no binary: {text}");
        path
    })
    .clone()
}

/// The chart's memory limit (`resources.limits.memory` in values.yaml, `NNNMi`), in KiB.
pub fn chart_memory_limit_kib() -> u64 {
    let path = manifest_path("charts/openclaw-admission/values.yaml");
    let text = std::fs::read_to_string(&path).expect("read the chart's values.yaml");
    let docs =
        openclaw_admission::yaml::read_stream(&text, openclaw_admission::yaml::Duplicates::Refuse)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let memory = docs
        .first()
        .and_then(|d| d.value.pointer("/resources/limits/memory"))
        .and_then(|m| m.as_str())
        .expect("values.yaml has resources.limits.memory");
    let mib: u64 = memory
        .strip_suffix("Mi")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("resources.limits.memory {memory:?} is not NNNMi"));
    mib * 1024
}

/// A CA and a serving pair for localhost, in a directory laid out as a Secret volume:
/// `tls.crt` -> `..data/tls.crt`, `..data` -> `..<generation>/`. [`Certs::rotate`] writes a
/// new generation and swaps `..data` with one rename, as the kubelet does.
pub struct Certs {
    pub dir: tempfile::TempDir,
    ca: certs::Ca,
    generation: u32,
    /// The DER of every leaf written, by generation (index 0 = generation 1).
    pub leaves: Vec<Vec<u8>>,
}

impl Certs {
    pub fn new() -> anyhow::Result<Certs> {
        let ca = certs::generate_ca("openclaw-admission resilience CA", 1)?;
        let dir = tempfile::tempdir()?;
        for name in [certs::TLS_CERT_FILE, certs::TLS_KEY_FILE] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name))?;
        }
        let mut c = Certs {
            dir,
            ca,
            generation: 0,
            leaves: Vec::new(),
        };
        c.rotate()?;
        Ok(c)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join(certs::TLS_CERT_FILE)
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join(certs::TLS_KEY_FILE)
    }

    /// Issues a new leaf (new key, new serial) and makes it the one the files show, in one
    /// atomic rename.
    pub fn rotate(&mut self) -> anyhow::Result<()> {
        self.generation += 1;
        let leaf =
            certs::issue_serving(&self.ca, &["localhost".into()], &["127.0.0.1".parse()?], 1)?;
        let gen_dir = format!("..gen-{}", self.generation);
        let target = self.dir.path().join(&gen_dir);
        std::fs::create_dir(&target)?;
        std::fs::write(target.join(certs::TLS_CERT_FILE), &leaf.cert_pem)?;
        std::fs::write(target.join(certs::TLS_KEY_FILE), &leaf.key_pem)?;
        let tmp = self.dir.path().join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&gen_dir, &tmp)?;
        std::fs::rename(&tmp, self.dir.path().join("..data"))?;
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes())
            .context("cannot read the issued certificate's PEM")?;
        self.leaves.push(der.to_vec());
        Ok(())
    }
}

/// `openclaw-admission serve` (the release build) on a free loopback port; killed when
/// dropped. Its log is kept in a file and printed when a test asks.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Serve {
    /// Starts `serve` with `args` (besides `--listen`, `--tls-cert`, `--tls-key`) and waits
    /// until it accepts connections.
    pub fn start(certs: &Certs, args: &[OsString]) -> anyhow::Result<Serve> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = tempfile::NamedTempFile::new()?;
        let bin = release_binary();
        let child = Command::new(&bin)
            .arg("serve")
            .args(args)
            .arg("--tls-cert")
            .arg(certs.cert())
            .arg("--tls-key")
            .arg(certs.key())
            .arg("--listen")
            .arg(addr.to_string())
            // Warnings and errors, and the certificate reloads: one info line per review
            // would make the soak about the log's speed.
            .env("RUST_LOG", "warn,openclaw_admission::server::tls=info")
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut serve = Serve { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = serve.child.try_wait()? {
                bail!("serve exited early ({status}):\n{}", serve.log_text());
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(serve);
            }
            if Instant::now() > deadline {
                bail!("serve did not listen on {addr} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `--no-cluster` over the review fixtures' cluster view.
    pub fn static_view(certs: &Certs, extra: &[&str]) -> anyhow::Result<Serve> {
        let mut args: Vec<OsString> = vec![
            "--no-cluster".into(),
            "--manifests".into(),
            manifest_path("tests/fixtures/reviews/cluster-view.json").into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        Serve::start(certs, &args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS").expect("VmRSS of serve")
    }
    /// The resident set's high-water mark since start.
    pub fn peak_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM").expect("VmHWM of serve")
    }
    /// Open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS connection's served leaf certificate (DER), by a fresh handshake.
pub async fn served_leaf(ca_pem: &str, addr: SocketAddr) -> anyhow::Result<Vec<u8>> {
    let tls = load::connector(ca_pem)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let stream = tls
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no peer certificate")?;
    Ok(leaf.to_vec())
}

/// The agent pod review the bench uses (11.5 KB), compacted as the API server sends it.
pub fn agent_review() -> axum::body::Bytes {
    let text = std::fs::read(manifest_path("tests/bench/agent-pod-review.json"))
        .expect("read tests/bench/agent-pod-review.json");
    let value: serde_json::Value = serde_json::from_slice(&text).expect("agent review is JSON");
    serde_json::to_vec(&value).expect("serialize").into()
}

/// A multi-threaded runtime for the client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
