//! The load generator: N keep-alive HTTP/1.1 connections over TLS, each a hyper client
//! connection driven by one task, either as fast as answers come back (closed loop) or on a
//! fixed schedule (open loop). Latency is taken per request, from send to the last body byte.

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type Sender = SendRequest<Full<Bytes>>;

/// A client that trusts only the bench's CA.
pub fn connector(ca_pem: &str) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A client that trusts only the bench's CA and presents `cert_pem`/`key_pem` as its client
/// certificate (the API server's, for a webhook run with `--client-ca-file`).
pub fn connector_with_client_cert(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let chain =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One keep-alive connection, handshake done.
pub async fn connect(tls: &TlsConnector, addr: SocketAddr) -> anyhow::Result<Sender> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    let stream = tls
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Opens `n` connections, each bounded by a deadline so a dead server cannot hang the bench.
pub async fn connect_all(
    tls: &TlsConnector,
    addr: SocketAddr,
    n: usize,
) -> anyhow::Result<Vec<Sender>> {
    let mut senders = Vec::with_capacity(n);
    for _ in 0..n {
        let s = tokio::time::timeout(Duration::from_secs(10), connect(tls, addr))
            .await
            .context("connecting took more than 10 s")??;
        senders.push(s);
    }
    Ok(senders)
}

/// POSTs one review and reads the whole answer.
pub async fn post(
    sender: &mut Sender,
    path: &'static str,
    body: &Bytes,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let req = Request::post(path)
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body.clone()))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// GETs `path` and reads the whole answer (the resilience tests read `/metrics` with it).
#[allow(dead_code)]
pub async fn get(sender: &mut Sender, path: &'static str) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let req = Request::get(path)
        .header(HOST, "localhost")
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// What one measured run saw.
#[derive(Debug, Default)]
pub struct Sample {
    /// Answers with HTTP 200 inside the measuring window.
    pub ok: u64,
    /// Other statuses and transport errors inside the window.
    pub errors: u64,
    pub window: Duration,
    /// Per answered request, nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Open loop only: requests whose slot came while their connection was still busy.
    pub late: u64,
}

impl Sample {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
    /// The q-quantile in microseconds (nearest rank).
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_ns.len() as f64).ceil() as usize)
            .clamp(1, self.latencies_ns.len());
        self.latencies_ns[rank - 1] as f64 / 1000.0
    }
    pub fn max_us(&self) -> f64 {
        self.latencies_ns
            .last()
            .map_or(f64::NAN, |n| *n as f64 / 1000.0)
    }
    /// One sample of several runs of the same target: answers, errors and latencies
    /// together over the sum of their windows.
    pub fn combine(runs: Vec<Sample>) -> Sample {
        let mut s = Sample::default();
        for r in runs {
            s.ok += r.ok;
            s.errors += r.errors;
            s.late += r.late;
            s.window += r.window;
            s.latencies_ns.extend(r.latencies_ns);
        }
        s.latencies_ns.sort_unstable();
        s
    }
    fn merge(parts: Vec<TaskResult>, window: Duration) -> Sample {
        let mut s = Sample {
            window,
            ..Sample::default()
        };
        for p in parts {
            s.errors += p.errors;
            s.late += p.late;
            s.latencies_ns.extend(p.latencies_ns);
        }
        s.ok = s.latencies_ns.len() as u64;
        s.latencies_ns.sort_unstable();
        s
    }
}

#[derive(Default)]
struct TaskResult {
    latencies_ns: Vec<u64>,
    errors: u64,
    late: u64,
}

/// The measuring plan of one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

async fn join(
    tasks: Vec<tokio::task::JoinHandle<TaskResult>>,
    window: Duration,
) -> anyhow::Result<Sample> {
    let mut parts = Vec::with_capacity(tasks.len());
    for t in tasks {
        parts.push(t.await?);
    }
    let sample = Sample::merge(parts, window);
    if sample.ok == 0 {
        bail!("no request was answered in the measuring window");
    }
    Ok(sample)
}

/// Every connection sends its next request as soon as the last answer is in. Requests that
/// start inside [warmup, warmup + measure) are counted.
pub async fn closed_loop(
    tls: &TlsConnector,
    addr: SocketAddr,
    path: &'static str,
    body: Bytes,
    plan: Plan,
) -> anyhow::Result<Sample> {
    let senders = connect_all(tls, addr, plan.connections).await?;
    let from = Instant::now() + plan.warmup;
    let until = from + plan.measure;
    let tasks = senders
        .into_iter()
        .map(|mut sender| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut r = TaskResult::default();
                loop {
                    let t = Instant::now();
                    if t >= until {
                        break;
                    }
                    let answer = post(&mut sender, path, &body).await;
                    let ok = matches!(answer, Ok((StatusCode::OK, _)));
                    if t >= from {
                        if ok {
                            r.latencies_ns.push(t.elapsed().as_nanos() as u64);
                        } else {
                            r.errors += 1;
                        }
                    }
                    if answer.is_err() {
                        // The connection is gone; the other connections carry on.
                        break;
                    }
                }
                r
            })
        })
        .collect();
    join(tasks, plan.measure).await
}

/// Requests go out on a fixed schedule, `rate` per second spread evenly over the
/// connections, whatever the answers do (open loop, as the API server's traffic arrives).
/// Latency is measured from the actual send (tokio's timer wakes on millisecond ticks, so
/// sends bunch up a little); a request whose connection was still waiting for the previous
/// answer when its slot came is counted as late (the server did not keep up).
pub async fn fixed_rate(
    tls: &TlsConnector,
    addr: SocketAddr,
    path: &'static str,
    body: Bytes,
    rate: f64,
    plan: Plan,
) -> anyhow::Result<Sample> {
    let senders = connect_all(tls, addr, plan.connections).await?;
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let from = start + plan.warmup;
    let until = from + plan.measure;
    let n = plan.connections as u64;
    let tasks = senders
        .into_iter()
        .enumerate()
        .map(|(j, mut sender)| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut r = TaskResult::default();
                let mut busy_until = start;
                for i in 0u64.. {
                    let slot = start + Duration::from_secs_f64((i * n + j as u64) as f64 / rate);
                    if slot >= until {
                        break;
                    }
                    if slot >= from && busy_until > slot {
                        r.late += 1;
                    }
                    tokio::time::sleep_until(slot).await;
                    let t = tokio::time::Instant::now();
                    let answer = post(&mut sender, path, &body).await;
                    busy_until = tokio::time::Instant::now();
                    let ok = matches!(answer, Ok((StatusCode::OK, _)));
                    if slot >= from {
                        if ok {
                            r.latencies_ns
                                .push(busy_until.duration_since(t).as_nanos() as u64);
                        } else {
                            r.errors += 1;
                        }
                    }
                    if answer.is_err() {
                        break;
                    }
                }
                r
            })
        })
        .collect();
    join(tasks, plan.measure).await
}
