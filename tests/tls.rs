//! The webhook over a real socket on 127.0.0.1: TLS with certificates made by the `certs`
//! library, a client that trusts only that CA, protocol versions, certificate rotation under
//! traffic (plain rename and a Secret volume's `..data` symlink swap), a bad new pair, and a
//! graceful shutdown that finishes the review in flight. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_admission::certs::{self, Ca, Issued};
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::server::listen::ListenOptions;
use openclaw_admission::server::metrics::Metrics;
use openclaw_admission::server::tls::ReloadingCert;
use openclaw_admission::server::{self, AppState, Readiness};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const RELOAD: Duration = Duration::from_millis(200);
/// Upper bound of every wait below; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(20);

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reviews")
        .join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn leaf(ca: &Ca, days: u32) -> Issued {
    certs::issue_serving(
        ca,
        &["localhost".into()],
        &["127.0.0.1".parse().unwrap()],
        days,
    )
    .unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// Replaces a file the way `kubectl cp` or a config tool would: write aside, then rename.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn write_pair(dir: &Path, pair: &Issued) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    replace(&k, pair.key_pem.as_bytes());
    replace(&c, pair.cert_pem.as_bytes());
    (c, k)
}

struct Running {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    async fn shut_down(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(cert: &Path, key: &Path) -> Running {
    let opts = ListenOptions {
        shutdown_grace: Duration::from_secs(10),
        ..ListenOptions::default()
    };
    start_with(cert, key, opts).await
}

async fn start_with(cert: &Path, key: &Path, opts: ListenOptions) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let view = load_view(&[fixture_path("cluster-view.json")]).unwrap();
    let state = AppState::new(
        Arc::new(Policy::default()),
        Arc::new(view),
        Readiness::new(true),
    );
    let metrics = state.metrics.clone();
    let certs = ReloadingCert::load(cert, key, metrics.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::run(listener, state, certs, None, RELOAD, opts, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        metrics,
        stop: Some(tx),
        task,
    }
}

/// A client that trusts the given CA and nothing else; `fresh` makes one connection per
/// request so every request is a new handshake.
fn client(ca_pem: &str, fresh: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_info(true)
        .timeout(Duration::from_secs(10));
    if fresh {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

/// The leaf certificate a new handshake is served.
async fn served_cert(ca_pem: &str, run: &Running) -> Vec<u8> {
    let resp = client(ca_pem, true)
        .get(run.url("/healthz"))
        .send()
        .await
        .unwrap();
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    info.peer_certificate().unwrap().to_vec()
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !f().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_review(c: &reqwest::Client, run: &Running, body: Vec<u8>) -> reqwest::Result<Value> {
    c.post(run.url("/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_trusting_only_the_generated_ca_gets_the_review_answered() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let run = start(&c, &k).await;

    let v = post_review(
        &client(&ca.cert_pem, false),
        &run,
        fixture_bytes("pod-create-unhardened.json"),
    )
    .await
    .unwrap();
    assert_eq!(v["response"]["uid"], "7f0c5b2e-9a61-4c43-8f0e-1d2a3b4c5d01");
    assert_eq!(v["response"]["allowed"], false);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("run-as-non-root")
    );

    let v = post_review(
        &client(&ca.cert_pem, false),
        &run,
        fixture_bytes("pod-create-hardened.json"),
    )
    .await
    .unwrap();
    assert_eq!(v["response"]["allowed"], true);

    // A client that trusts another CA refuses the server.
    let other = certs::generate_ca("other ca", 2).unwrap();
    assert!(
        client(&other.cert_pem, true)
            .get(run.url("/healthz"))
            .send()
            .await
            .is_err()
    );
    run.shut_down().await;
}

/// A client that offers HTTP/2 by ALPN (as the API server's does) gets it, and many reviews
/// in flight at once share its one connection; a client that offers only HTTP/1.1 still gets
/// that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_chosen_by_alpn_and_multiplexes_reviews_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let run = start(&c, &k).await;

    let h2 = client(&ca.cert_pem, false);
    let body = fixture_bytes("pod-create-unhardened.json");
    // The connection first: a client that starts many requests before it knows the server
    // speaks HTTP/2 opens one connection per request.
    let first = h2.get(run.url("/healthz")).send().await.unwrap();
    assert_eq!(first.version(), reqwest::Version::HTTP_2);
    let sends = (0..32).map(|_| {
        h2.post(run.url("/validate"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    let answers = futures::future::join_all(sends).await;
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.version(), reqwest::Version::HTTP_2);
        assert_eq!(a.status(), 200);
        let v: Value = a.json().await.unwrap();
        assert_eq!(v["response"]["uid"], "7f0c5b2e-9a61-4c43-8f0e-1d2a3b4c5d01");
        assert_eq!(v["response"]["allowed"], false);
    }
    let metrics = h2.get(run.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.version(), reqwest::Version::HTTP_2);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("openclaw_admission_connections_total{protocol=\"h2\"} 1\n"),
        "34 requests over HTTP/2 should share one connection:\n{text}"
    );

    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let a = h1
        .post(run.url("/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(a.version(), reqwest::Version::HTTP_11);
    assert_eq!(a.status(), 200);
    let text = h2
        .get(run.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("openclaw_admission_connections_total{protocol=\"http/1.1\"} 1\n"),
        "{text}"
    );
    run.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_tls_1_1_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let run = start(&c, &k).await;

    let mut tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        !buf.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&buf)
    );

    // A ClientHello that could be served in TLS 1.2 but offers TLS 1.1 at most gets a
    // protocol_version alert (21 = alert, 70 = protocol_version); the same hello offering
    // 1.2 gets a ServerHello (22 = handshake), so only the version makes the difference.
    let first_bytes = |version: [u8; 2]| async move {
        let mut tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
        tcp.write_all(&client_hello(version)).await.unwrap();
        let mut buf = vec![0u8; 7];
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        buf.truncate(n);
        buf
    };
    let answer = first_bytes([3, 2]).await;
    assert_eq!(
        answer.first(),
        Some(&21),
        "TLS 1.1 hello answered with {answer:?}"
    );
    assert_eq!(
        answer.get(6),
        Some(&70),
        "alert should be protocol_version: {answer:?}"
    );
    assert_eq!(
        first_bytes([3, 3]).await.first(),
        Some(&22),
        "the control hello should be served"
    );
    run.shut_down().await;
}

/// A minimal ClientHello without a supported_versions extension: ECDHE-ECDSA with
/// AES-GCM on P-256, the suite the generated certificate can serve in TLS 1.2.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x02, 0xc0, 0x2b]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    body.extend([0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04,
        0x03, // signature_algorithms: ecdsa_secp256r1_sha256
        0x00, 0x17, 0x00, 0x00, // extended_master_secret
        0xff, 0x01, 0x00, 0x01, 0x00, // renegotiation_info
    ];
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Drives traffic while `swap` replaces the pair with `next`; checks that the new pair ends
/// up served and that no request failed meanwhile.
async fn rotate_under_traffic(run: &Running, ca: &Ca, next: &Issued, swap: impl FnOnce()) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let traffic = {
        let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
        let keep_alive = client(&ca.cert_pem, false);
        let fresh = client(&ca.cert_pem, true);
        let body = fixture_bytes("pod-create-hardened.json");
        let url = run.url("/validate");
        tokio::spawn(async move {
            // Bounded: at most 600 requests, whatever happens.
            for i in 0..600 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let c = if i % 2 == 0 { &keep_alive } else { &fresh };
                let r = c.post(&url).body(body.clone()).send().await;
                match r {
                    Ok(resp) if resp.status().is_success() => {}
                    Ok(resp) => failures
                        .lock()
                        .unwrap()
                        .push(format!("HTTP {}", resp.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    wait_until("traffic before the swap", || {
        let n = done.load(Ordering::Relaxed);
        async move { n >= 20 }
    })
    .await;
    swap();
    let want = der(&next.cert_pem);
    wait_until("new certificate served", || async {
        served_cert(&ca.cert_pem, run).await == want
    })
    .await;
    let after = done.load(Ordering::Relaxed);
    wait_until("traffic after the swap", || {
        let n = done.load(Ordering::Relaxed);
        async move { n >= after + 20 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} requests failed during rotation: {:?}",
        failures.len(),
        &failures[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_files_are_served_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (a, b) = (leaf(&ca, 30), leaf(&ca, 2));
    let (c, k) = write_pair(dir.path(), &a);
    let run = start(&c, &k).await;
    assert_eq!(served_cert(&ca.cert_pem, &run).await, der(&a.cert_pem));

    rotate_under_traffic(&run, &ca, &b, || {
        write_pair(dir.path(), &b);
    })
    .await;

    // The expiry gauge follows the new certificate (2 days instead of 30).
    let text = client(&ca.cert_pem, true)
        .get(run.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("openclaw_admission_certificate_expiry_seconds "))
        .unwrap();
    let secs: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(secs > 0 && secs <= 2 * 86_400, "{line}");
    assert!(run.metrics.certificate_reload_successes() >= 1);
    run.shut_down().await;
}

/// Lays out a pair the way the kubelet does for a Secret volume.
fn secret_volume_version(dir: &Path, version: &str, pair: &Issued) {
    let v = dir.join(version);
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(v.join("tls.key"), &pair.key_pem).unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_volume_data_symlink_swap_is_picked_up_without_a_failed_request() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (a, b) = (leaf(&ca, 2), leaf(&ca, 2));
    secret_volume_version(d, "..2026_01_12_09_14_03.1111", &a);
    symlink("..2026_01_12_09_14_03.1111", d.join("..data")).unwrap();
    symlink("..data/tls.crt", d.join("tls.crt")).unwrap();
    symlink("..data/tls.key", d.join("tls.key")).unwrap();
    let run = start(&d.join("tls.crt"), &d.join("tls.key")).await;
    assert_eq!(served_cert(&ca.cert_pem, &run).await, der(&a.cert_pem));

    rotate_under_traffic(&run, &ca, &b, || {
        // The kubelet's atomic writer: new version dir, new symlink aside, rename over ..data.
        secret_volume_version(d, "..2026_01_12_10_00_00.2222", &b);
        symlink("..2026_01_12_10_00_00.2222", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(d.join("..2026_01_12_09_14_03.1111")).unwrap();
    })
    .await;
    run.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_new_pair_keeps_the_old_certificate_served() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (a, b) = (leaf(&ca, 2), leaf(&ca, 2));
    let (c, k) = write_pair(dir.path(), &a);
    let run = start(&c, &k).await;
    let keep_alive = client(&ca.cert_pem, false);
    post_review(&keep_alive, &run, fixture_bytes("pod-create-hardened.json"))
        .await
        .unwrap();

    // Garbage in place of the certificate.
    replace(
        &c,
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    wait_until("garbage certificate noticed", || async {
        run.metrics.certificate_reload_failures() >= 1
    })
    .await;
    assert_eq!(served_cert(&ca.cert_pem, &run).await, der(&a.cert_pem));

    // A valid certificate whose key is another's.
    replace(&c, b.cert_pem.as_bytes());
    let before = run.metrics.certificate_reload_failures();
    wait_until("mismatched pair noticed", || async {
        run.metrics.certificate_reload_failures() > before
    })
    .await;
    assert_eq!(served_cert(&ca.cert_pem, &run).await, der(&a.cert_pem));
    assert_eq!(run.metrics.certificate_reload_successes(), 0);

    // Existing connections never noticed; the matching key then completes the new pair.
    post_review(&keep_alive, &run, fixture_bytes("pod-create-hardened.json"))
        .await
        .unwrap();
    replace(&k, b.key_pem.as_bytes());
    let want = der(&b.cert_pem);
    wait_until("good pair served", || async {
        served_cert(&ca.cert_pem, &run).await == want
    })
    .await;
    run.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_review_in_flight_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let mut run = start(&c, &k).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();

    // Headers and half the body, then shutdown, then the rest.
    let body = fixture_bytes("pod-create-hardened.json");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    wait_until("request in flight", || async {
        run.metrics.in_flight_now() == 1
    })
    .await;

    let _ = run.stop.take().unwrap().send(());
    // Once the listener is closed, new connections are refused.
    wait_until("listener closed", || async {
        tokio::net::TcpStream::connect(run.addr).await.is_err()
    })
    .await;

    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut answer))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("7f0c5b2e-9a61-4c43-8f0e-1d2a3b4c5d02"),
        "{text}"
    );
    tokio::time::timeout(PATIENCE, run.task)
        .await
        .unwrap()
        .unwrap();
}

fn tls_connector(ca: &Ca) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_that_never_finishes_its_headers_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let opts = ListenOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ListenOptions::default()
    };
    let run = start_with(&c, &k, opts).await;
    let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tls_connector(&ca).connect(name, tcp).await.unwrap();
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // The server gives up on the headers and closes; the read ends instead of hanging.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut answer))
        .await
        .expect("connection still open");
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains(" 200 "), "{text}");
    run.shut_down().await;
}

// --- the binary ---

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");

#[test]
fn certs_command_writes_the_pair_and_prints_the_ca_bundle() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["certs", "--out-dir"])
        .arg(dir.path())
        .args([
            "--dns",
            "openclaw-admission.openclaw-system.svc",
            "--ip",
            "127.0.0.1",
            "--days",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = String::from_utf8(out.stdout).unwrap();
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(bundle.trim())
        .unwrap();
    assert_eq!(ca_pem, std::fs::read(dir.path().join("ca.crt")).unwrap());
    for f in ["tls.crt", "tls.key", "ca.key"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("openclaw-admission.openclaw-system.svc")
    );
}

#[test]
fn certs_command_without_names_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["certs", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one DNS name or IP"));
}

#[test]
fn serve_command_names_a_missing_certificate_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.crt");
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(dir.path().join("nope.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
}

#[test]
fn serve_command_reports_an_unknown_policy_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "mode: enforce\nmdoe: audit\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&c)
        .arg("--tls-key")
        .arg(&k)
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mdoe"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_command_answers_over_tls_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test ca", 2).unwrap();
    let (c, k) = write_pair(dir.path(), &leaf(&ca, 2));
    // A free port: bind, read, release. Another process could take it in between, which
    // would show up as a bind error, not a wrong answer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert-reload-interval",
            "200ms",
            "--tls-cert",
        ])
        .arg(&c)
        .arg("--tls-key")
        .arg(&k)
        .arg("--manifests")
        .arg(fixture_path("cluster-view.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let url = format!("https://127.0.0.1:{port}");
    let http = client(&ca.cert_pem, false);
    wait_until("serve ready", || {
        let r = http.get(format!("{url}/readyz")).send();
        async move { r.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    for (name, allowed) in [
        ("pod-create-unhardened.json", false),
        ("pod-create-hardened.json", true),
    ] {
        let v: Value = http
            .post(format!("{url}/validate"))
            .body(fixture_bytes(name))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["response"]["allowed"], allowed, "{name}: {v}");
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // One JSON line per review, with the decision and the check ids, never object content.
    let logs = String::from_utf8_lossy(&out.stdout);
    let denied: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["uid"] == "7f0c5b2e-9a61-4c43-8f0e-1d2a3b4c5d01")
        .unwrap_or_else(|| panic!("no review log line in:\n{logs}"));
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["operation"], "CREATE");
    assert_eq!(denied["kind"], "Pod");
    assert_eq!(denied["namespace"], "agents");
    assert!(
        denied["violations"]
            .as_str()
            .unwrap()
            .contains("run-as-non-root"),
        "{denied}"
    );
    assert!(denied["duration_ms"].is_number());
    assert!(
        !logs.contains("replace-me-with-a-long-random-string"),
        "an env value reached the log"
    );
}
