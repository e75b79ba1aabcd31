//! The accept loop: TCP, then a TLS handshake with a deadline, then HTTP/2 when the client
//! chose it by ALPN (the API server does), else HTTP/1.1 with keep-alive and a header-read
//! timeout; every connection registered for graceful shutdown.
//!
//! Wired by hand on hyper rather than through a server crate because three things matter
//! here and are plain in hyper: the header-read timeout (a client that opens a connection
//! and dribbles headers must not hold a slot), a handshake deadline for the same reason at
//! the TLS layer, and a drain that lets reviews in flight finish while new connections are
//! refused.

use super::connection::Connection;
use super::metrics::{HandshakeRefusal, Metrics};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Timeouts of the listener. Defaults suit an API server as the only client.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// Time allowed for the TLS handshake after the TCP connection is accepted.
    pub handshake_timeout: Duration,
    /// Time allowed to receive a request's headers (also bounds how long an idle keep-alive
    /// connection waits for its next request).
    pub header_read_timeout: Duration,
    /// After shutdown is asked for, how long reviews in flight get to finish.
    pub shutdown_grace: Duration,
    /// Reviews one HTTP/2 connection may have in flight at once.
    pub max_concurrent_streams: u32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            // Kubernetes waits 30 s (terminationGracePeriodSeconds) before SIGKILL.
            shutdown_grace: Duration::from_secs(25),
            // What hyper uses by default; the body budget bounds memory across streams.
            max_concurrent_streams: 200,
        }
    }
}

/// Why a handshake failed, from the error tokio-rustls gives (a `rustls::Error` inside an
/// `io::Error`).
fn refusal(e: &std::io::Error) -> HandshakeRefusal {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            HandshakeRefusal::ClientCertificate
        }
        _ => HandshakeRefusal::Other,
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then stops accepting, lets
/// open connections finish the request they are on (at most `shutdown_grace`), and returns.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()>,
) {
    serve_tls_counted(listener, tls, app, opts, None, shutdown).await;
}

/// [`serve_tls`], counting each connection by protocol in `metrics`.
pub async fn serve_tls_counted(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    opts: ListenOptions,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(opts.max_concurrent_streams)
        // A peer that stops answering pings is gone: its connection is closed, not kept.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(opts.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let http = http.clone();
        let h2 = h2.clone();
        let metrics = metrics.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(opts.handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let why = refusal(&e);
                    if let Some(m) = &metrics {
                        m.observe_handshake_refused(why);
                    }
                    if why == HandshakeRefusal::ClientCertificate {
                        tracing::info!(%peer, error = %e, "TLS handshake refused: client certificate");
                    } else {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    return;
                }
                Err(_) => {
                    if let Some(m) = &metrics {
                        m.observe_handshake_refused(HandshakeRefusal::Timeout);
                    }
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let session = stream.get_ref().1;
            let negotiated_h2 = session.alpn_protocol() == Some(b"h2".as_slice());
            // rustls keeps a client's certificates only once the verifier accepted them.
            let client = session.peer_certificates().and_then(|c| c.first());
            if let (Some(m), Some(leaf)) = (&metrics, client)
                && let Some((subject, not_after)) =
                    super::client_auth::subject_and_not_after(leaf.as_ref())
            {
                m.observe_client_certificate(&subject, not_after);
            }
            let connection = Connection::new(client.is_some());
            let service = TowerToHyperService::new(app.map_request(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(connection.clone());
                    req
                },
            ));
            if let Some(m) = &metrics {
                m.observe_connection(negotiated_h2);
            }
            let io = TokioIo::new(stream);
            let served = if negotiated_h2 {
                watcher.watch(h2.serve_connection(io, service)).await
            } else {
                watcher.watch(http.serve_connection(io, service)).await
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        grace_seconds = opts.shutdown_grace.as_secs(),
        "shutting down: no new connections, finishing reviews in flight"
    );
    match tokio::time::timeout(opts.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("grace period over; closing the connections still open"),
    }
}
