//! Hostile clients against a real `serve` process (the release build, as the chart runs it):
//!
//! - thousands of connections that open and send nothing (held in the TLS handshake) or
//!   trickle a request's headers a byte a second (held in the header read) do not stop a
//!   normal review from being answered, and the server's deadlines close them all;
//! - twenty concurrent 6 MiB bodies keep the resident set under the chart's memory limit,
//!   and the ones beyond the body budget are answered 503 while the admitted ones are still
//!   held, not queued behind them.

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

/// A request whose headers and first `sent` body bytes are on the wire, the rest held back.
struct Stalled {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    rest: Bytes,
}

async fn stalled(
    tls: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    body: &Bytes,
    sent: usize,
) -> Stalled {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..sent]).await.unwrap();
    stream.flush().await.unwrap();
    Stalled {
        stream,
        rest: body.slice(sent..),
    }
}

impl Stalled {
    /// Whether the server has answered yet (without waiting).
    async fn answered(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(50), self.stream.read(&mut buf)).await,
            Ok(Ok(n)) if n > 0
        )
    }
    /// Sends the rest of the body and reads the status line.
    async fn finish(mut self) -> u16 {
        self.stream.write_all(&self.rest).await.unwrap();
        self.stream.flush().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = self.stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before an answer");
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {line}"))
    }
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
        // Two bodies take 12 of the 16 MiB budget and stall half-sent.
        let mut holders = Vec::new();
        for _ in 0..2 {
            holders.push(stalled(&tls, addr, &body, 1024 * 1024).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The other eighteen come at once, whole: each is answered 503 while the two are
        // still held (their answers have not come), not queued behind them.
        let excess: Vec<_> = (0..18)
            .map(|_| tokio::spawn(send_whole(tls.clone(), addr, "/mutate", body.clone())))
            .collect();
        let mut statuses = Vec::new();
        for t in excess {
            statuses.push(
                tokio::time::timeout(Duration::from_secs(30), t)
                    .await
                    .expect("an excess body was not answered within 30 s")
                    .unwrap(),
            );
        }
        for h in &mut holders {
            assert!(
                !h.answered().await,
                "a held body was answered before it was sent whole"
            );
        }
        println!("18 bodies beside two held ones: {statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == Ok(503)),
            "every body beyond the budget must get 503: {statuses:?}"
        );
        // The held ones complete and are judged.
        for h in holders {
            assert_eq!(h.finish().await, 200);
        }
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
