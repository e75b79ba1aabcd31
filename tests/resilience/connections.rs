//! Hostile clients against a real `serve` process (the release build, as the chart runs it):
//!
//! - thousands of connections that open and send nothing (held in the TLS handshake) or
//!   trickle a request's headers a byte a second (held in the header read) do not stop a
//!   normal review from being answered, and the server's deadlines close them all;
//! - twenty concurrent 6 MiB bodies keep the resident set under the chart's memory limit,
//!   and the ones beyond the body budget are answered 503 at once, not queued;
//! - connections that declare a body and send nothing (3 of them, then 50), and connections
//!   that send 5 MiB and stall, renewed as soon as the server drops them, do not make a normal
//!   review wait or fail;
//! - with `--client-ca-file`, a client without a certificate, or with one from another CA or
//!   with a name not allowed, gets no review answered; probes and metrics still answer it.

use super::support::{self, Certs, Serve, load};
use axum::body::Bytes;
use hyper::StatusCode;
use rustls::pki_types::ServerName;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Connections held at once, when the open-files limit allows (client and server each need
/// one descriptor per connection, plus their own).
const HELD: u64 = 2_000;

/// Raises this process's soft open-files limit to its hard limit (the `serve` child inherits
/// it) and returns how many connections fit, at most [`HELD`].
fn connections_that_fit() -> u64 {
    let soft = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    let n = HELD.min(soft.saturating_sub(200));
    println!("open-files limit {soft}: holding {n} connections (target {HELD})");
    assert!(
        n >= 500,
        "the open-files limit ({soft}) leaves room for only {n} connections"
    );
    n
}

/// Whether the server has closed `tcp` (EOF or error) without blocking.
fn closed(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match tcp.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn idle_and_trickling_connections_do_not_stop_a_review() {
    let _one = support::exclusive();
    let n = connections_that_fit();
    let certs = Certs::new().unwrap();
    let serve = Serve::static_view(&certs, &[]).unwrap();
    let rt = support::runtime();
    let addr = serve.addr;
    let review = support::agent_review();
    rt.block_on(async {
        let tls = load::connector(certs.ca_pem()).unwrap();
        // Half finish the TLS handshake and then send a request line a byte a second: the
        // server holds them in its header read.
        let started = Instant::now();
        let mut trickling = Vec::new();
        for _ in 0..n / 2 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = tls
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .expect("TLS handshake of a trickling connection");
            trickling.push(tokio::spawn(async move {
                for byte in b"POST /validate HTTP/1.1\r\nHost: localhost\r\n"
                    .iter()
                    .cycle()
                {
                    if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                // Ends when the server has closed the connection.
                Instant::now()
            }));
        }
        // The other half open TCP and send nothing: held in the TLS handshake.
        let mut idle = Vec::new();
        for _ in 0..n - n / 2 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let opened = started.elapsed();
        // `connect` returns once the kernel has the connection in the listen backlog; serve
        // takes the last ones a moment later. Wait for them (a few ms, well inside the 10 s
        // handshake deadline that will close them) before reading the descriptors.
        let accepted_by = Instant::now() + Duration::from_secs(3);
        let mut fds_held = serve.open_fds();
        while (fds_held as u64) < n && Instant::now() < accepted_by {
            tokio::time::sleep(Duration::from_millis(20)).await;
            fds_held = serve.open_fds();
        }
        // A normal review on a fresh connection, while all of those are held.
        let asked = Instant::now();
        let mut sender = load::connect(&tls, addr).await.unwrap();
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(30),
            load::post(&mut sender, "/validate", &review),
        )
        .await
        .expect("the review was not answered within 30 s")
        .unwrap();
        let answered_in = asked.elapsed();
        let idle_open = idle.iter().filter(|t| !closed(t)).count();
        let trickling_open = trickling.iter().filter(|t| !t.is_finished()).count();
        println!(
            "{n} connections opened in {:.1} s; serve held {fds_held} descriptors; a review over a \
             fresh connection answered {status} in {} ms with {idle_open} idle and \
             {trickling_open} trickling connections still open",
            opened.as_secs_f64(),
            answered_in.as_millis()
        );
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        // The review really came while the flood was held: the server had a descriptor for
        // each, and nearly all were still open when the answer came.
        assert!(
            fds_held as u64 >= n,
            "serve held only {fds_held} descriptors for {n} connections"
        );
        assert!(
            (idle_open + trickling_open) as u64 >= n * 9 / 10,
            "only {idle_open} idle and {trickling_open} trickling connections were still open: \
             the review did not overlap the flood"
        );
        // The handshake deadline and the header-read deadline (10 s each) close them all.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let idle_left = idle.iter().filter(|t| !closed(t)).count();
            let trickling_left = trickling.iter().filter(|t| !t.is_finished()).count();
            if idle_left == 0 && trickling_left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{idle_left} idle and {trickling_left} trickling connections still open 40 s on"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "all {n} held connections closed by the server {:.1} s after they were opened; \
             serve now holds {} descriptors",
            started.elapsed().as_secs_f64(),
            serve.open_fds()
        );
        // And reviews still are answered (on a new connection: the idle-time limit of a
        // keep-alive connection is the header-read deadline too).
        let mut sender = load::connect(&tls, addr).await.unwrap();
        let (status, _) = load::post(&mut sender, "/validate", &review).await.unwrap();
        assert_eq!(status, StatusCode::OK);
    });
}

/// The agent review grown to `size` bytes with one annotation (the API server's object limit
/// is about 1.5 MiB; 6 MiB is this webhook's own body limit).
fn review_of_size(size: usize) -> Bytes {
    let mut v: serde_json::Value = serde_json::from_slice(&support::agent_review()).unwrap();
    let base = serde_json::to_vec(&v).unwrap().len();
    let filler = size - base - r#","filler":"""#.len();
    v["request"]["object"]["metadata"]["annotations"]["filler"] = "x".repeat(filler).into();
    let bytes = serde_json::to_vec(&v).unwrap();
    assert_eq!(bytes.len(), size);
    bytes.into()
}

/// An attacker's connection, renewed for as long as `stop` is not set: it declares a body of
/// `declared` bytes, sends the first `sent` of them, then nothing, and opens a new one as soon
/// as the server answers or drops it. Returns how many it opened.
async fn stall_forever(
    tls: tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    declared: usize,
    sent: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    use std::sync::atomic::Ordering;
    let body = vec![b' '; sent];
    let mut opened = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            continue;
        };
        let Ok(mut stream) = tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
        else {
            continue;
        };
        opened += 1;
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
            || stream.flush().await.is_err()
        {
            continue;
        }
        // Held until the server answers (408) or closes; checked for `stop` now and then.
        let mut buf = [0u8; 1024];
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => break,
                Err(_) => {}
            }
        }
    }
    opened
}

/// `openclaw_admission_requests_in_flight` from `/metrics`, over a fresh connection.
async fn in_flight(tls: &tokio_rustls::TlsConnector, addr: std::net::SocketAddr) -> u64 {
    let mut sender = load::connect(tls, addr).await.unwrap();
    let (_, body) = load::get(&mut sender, "/metrics").await.unwrap();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("openclaw_admission_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("requests_in_flight in /metrics")
}

fn median_and_max(mut micros: Vec<u128>) -> (u128, u128) {
    micros.sort_unstable();
    (micros[micros.len() / 2], micros[micros.len() - 1])
}

#[test]
fn stalled_declarations_and_half_sent_bodies_do_not_stop_normal_reviews() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = support::exclusive();
    let certs = Certs::new().unwrap();
    let serve = Serve::static_view(&certs, &[]).unwrap();
    let rt = support::runtime();
    let addr = serve.addr;
    let review = support::agent_review();
    const REVIEWS: usize = 40;
    rt.block_on(async {
        let tls = load::connector(certs.ca_pem()).unwrap();
        let mut sender = load::connect(&tls, addr).await.unwrap();
        // The usual latency, before any attack, over the same keep-alive connection.
        let mut baseline = Vec::new();
        for _ in 0..REVIEWS {
            let t = Instant::now();
            let (status, _) = load::post(&mut sender, "/validate", &review).await.unwrap();
            baseline.push(t.elapsed().as_micros());
            assert_eq!(status, StatusCode::OK);
        }
        let (base_median, base_max) = median_and_max(baseline);
        println!("no attack: {REVIEWS} reviews, median {base_median} us, max {base_max} us");
        for declarations in [3usize, 50] {
            let stop = Arc::new(AtomicBool::new(false));
            let mut attackers = Vec::new();
            // Bodies of 6 MiB declared, none sent: the attack of issue 32.
            for _ in 0..declarations {
                attackers.push(tokio::spawn(stall_forever(
                    tls.clone(),
                    addr,
                    openclaw_admission::server::BODY_LIMIT,
                    0,
                    stop.clone(),
                )));
            }
            // And three that send 5 MiB of a declared 6 and stall: together they take nearly
            // all of the shared budget.
            for _ in 0..3 {
                attackers.push(tokio::spawn(stall_forever(
                    tls.clone(),
                    addr,
                    openclaw_admission::server::BODY_LIMIT,
                    5 * 1024 * 1024,
                    stop.clone(),
                )));
            }
            let held = declarations as u64 + 3;
            // Wait until the server holds them all.
            let mut seen = 0;
            for _ in 0..500 {
                seen = in_flight(&tls, addr).await;
                if seen >= held {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(
                seen >= held,
                "the server never held the {held} stalled requests ({seen})"
            );
            // Normal reviews meanwhile, each checked; the in-flight count after each says
            // the attack was still held.
            let mut latencies = Vec::new();
            let mut during = Vec::new();
            for _ in 0..REVIEWS {
                let t = Instant::now();
                let (status, body) = tokio::time::timeout(
                    Duration::from_secs(30),
                    load::post(&mut sender, "/validate", &review),
                )
                .await
                .expect("a normal review was not answered within 30 s")
                .unwrap();
                latencies.push(t.elapsed().as_micros());
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(answer["response"]["allowed"], true, "{answer}");
                during.push(in_flight(&tls, addr).await);
            }
            stop.store(true, Ordering::Relaxed);
            let mut opened = 0;
            for a in attackers {
                opened += a.await.unwrap();
            }
            let overlapped = during.iter().filter(|n| **n >= held).count();
            let (median, max) = median_and_max(latencies);
            println!(
                "{declarations} stalled declarations + 3 bodies stalled at 5 MiB ({opened} \
                 attacking connections opened in all): {REVIEWS} reviews answered 200, median \
                 {median} us, max {max} us; in flight after each review: {during:?}"
            );
            assert!(
                overlapped >= REVIEWS / 2,
                "the attack was held during only {overlapped} of {REVIEWS} reviews: {during:?}"
            );
        }
    });
}

/// The serving certificates, a client CA, and clients: one with a certificate from that CA,
/// one from another CA, one from that CA under a name not allowed.
#[test]
fn with_client_auth_only_clients_with_a_certificate_from_the_client_ca_get_reviews_answered() {
    let _one = support::exclusive();
    let certs = Certs::new().unwrap();
    let client_ca = openclaw_admission::certs::generate_ca("webhook client CA", 1).unwrap();
    let other_ca = openclaw_admission::certs::generate_ca("someone else's CA", 1).unwrap();
    let ca_file = certs.dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &client_ca.cert_pem).unwrap();
    let serve = Serve::static_view(
        &certs,
        &[
            "--client-ca-file",
            ca_file.to_str().unwrap(),
            "--client-name",
            "kube-apiserver-webhook-client",
        ],
    )
    .unwrap();
    let issue = |ca: &openclaw_admission::certs::Ca, name: &str| {
        let leaf = openclaw_admission::certs::issue_client(ca, name, 1).unwrap();
        load::connector_with_client_cert(certs.ca_pem(), &leaf.cert_pem, &leaf.key_pem).unwrap()
    };
    let api_server = issue(&client_ca, "kube-apiserver-webhook-client");
    let other = issue(&other_ca, "kube-apiserver-webhook-client");
    let wrong_name = issue(&client_ca, "someone-else");
    let none = load::connector(certs.ca_pem()).unwrap();
    let rt = support::runtime();
    let addr = serve.addr;
    let review = support::agent_review();
    rt.block_on(async {
        // The API server's certificate: answered.
        let mut sender = load::connect(&api_server, addr).await.unwrap();
        let (status, body) = load::post(&mut sender, "/validate", &review).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        // Another CA's certificate, or the right CA under another name: refused in the
        // handshake (with TLS 1.3 the client learns it at its first read, so no status).
        for (who, tls) in [("another CA", &other), ("a name not allowed", &wrong_name)] {
            let answered = async {
                let mut sender = load::connect(tls, addr).await?;
                load::post(&mut sender, "/validate", &review).await
            }
            .await;
            assert!(
                answered.is_err(),
                "a client certificate from {who} got an answer: {:?}",
                answered.map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned()))
            );
        }
        // No certificate: the handshake completes, the review is refused before its body,
        // with no review in the answer; probes and metrics answer.
        let mut sender = load::connect(&none, addr).await.unwrap();
        let (status, body) = load::post(&mut sender, "/validate", &review).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert!(!text.contains("\"allowed\":true"), "{text}");
        for path in ["/healthz", "/readyz"] {
            let mut sender = load::connect(&none, addr).await.unwrap();
            let (status, _) = load::get(&mut sender, path).await.unwrap();
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let mut sender = load::connect(&none, addr).await.unwrap();
        let (status, metrics) = load::get(&mut sender, "/metrics").await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let metrics = String::from_utf8_lossy(&metrics);
        for line in [
            "openclaw_admission_tls_handshakes_refused_total{reason=\"client_certificate\"} 2",
            "openclaw_admission_unauthenticated_reviews_total 1",
            "openclaw_admission_client_certificate_expiry_seconds ",
        ] {
            assert!(metrics.contains(line), "no {line} in\n{metrics}");
        }
        // Stalled declarations from clients without a certificate hold nothing at all: each
        // is refused at once, before its body.
        for _ in 0..20 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = none
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            stream
                .write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6000000\r\n\r\n")
                .await
                .unwrap();
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.unwrap();
            assert_eq!(&head, b"HTTP/1.1 403");
        }
    });
}

/// Sends a whole request while reading, and returns the status of the answer as soon as it
/// comes: an answer given before the body is read (a 503 at once) is seen even though the
/// server then closes the connection under the rest of the body.
async fn send_whole(
    tls: tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    path: &'static str,
    body: Bytes,
) -> Result<u16, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        w.write_all(head.as_bytes()).await?;
        w.write_all(&body).await?;
        w.flush().await?;
        // Keep the write half (and so the connection) until the answer is read.
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(w)
    });
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let status = loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&head[..end]).into_owned();
            break line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or(format!("no status in {line:?}"));
        }
        match r.read(&mut buf).await {
            Ok(0) => break Err("closed before an answer".to_string()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => break Err(format!("reading the answer: {e}")),
        }
    };
    writer.abort();
    status
}

#[test]
fn twenty_concurrent_six_mib_bodies_stay_under_the_chart_memory_limit() {
    let _one = support::exclusive();
    let limit_kib = support::chart_memory_limit_kib();
    let certs = Certs::new().unwrap();
    let serve = Serve::static_view(&certs, &[]).unwrap();
    let rt = support::runtime();
    let addr = serve.addr;
    let body = review_of_size(openclaw_admission::server::BODY_LIMIT - 1024);
    let before_kib = serve.rss_kib();
    rt.block_on(async {
        let tls = load::connector(certs.ca_pem()).unwrap();
        // Then twenty whole bodies at once, half to each endpoint.
        let at_once: Vec<_> = (0..20)
            .map(|i| {
                let path = if i % 2 == 0 { "/mutate" } else { "/validate" };
                tokio::spawn(send_whole(tls.clone(), addr, path, body.clone()))
            })
            .collect();
        let mut statuses = Vec::new();
        for t in at_once {
            statuses.push(t.await.unwrap());
        }
        let ok = statuses.iter().filter(|s| **s == Ok(200)).count();
        let busy = statuses.iter().filter(|s| **s == Ok(503)).count();
        println!("20 bodies at once: {ok} answered 200, {busy} answered 503: {statuses:?}");
        assert_eq!(ok + busy, 20, "{statuses:?}");
        assert!(
            ok >= 2,
            "at least the budget's worth must be judged: {statuses:?}"
        );
        // And a normal review still is.
        let mut sender = load::connect(&tls, addr).await.unwrap();
        let (status, _) = load::post(&mut sender, "/mutate", &support::agent_review())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
    });
    let peak_kib = serve.peak_kib();
    println!(
        "serve resident set: {} MiB before, peak {} MiB, now {} MiB; the chart's limit {} MiB",
        before_kib / 1024,
        peak_kib / 1024,
        serve.rss_kib() / 1024,
        limit_kib / 1024
    );
    assert!(
        peak_kib < limit_kib,
        "peak resident set {peak_kib} KiB reached the chart's limit {limit_kib} KiB"
    );
}
