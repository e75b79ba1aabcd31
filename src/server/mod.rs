//! The webhook's HTTP side: an axum router whose review handlers are thin (read the body
//! within the limit, call [`admission::handle`], count, log, answer), health and readiness
//! probes, Prometheus metrics, and the TLS listener with certificate reload
//! ([`tls`], [`listen`]).
//!
//! # Endpoints
//!
//! | method and path   | answer |
//! |-------------------|--------|
//! | `POST /validate`  | the validating webhook: an AdmissionReview back |
//! | `POST /mutate`    | the mutating webhook: an AdmissionReview back, with a JSONPatch for agent Pod CREATE |
//! | `GET /healthz`    | `200 ok` while the process serves |
//! | `GET /readyz`     | `200 ready` once the cluster view is ready, `503 not ready` before |
//! | `GET /metrics`    | Prometheus text format (0.0.4, written by `prometheus-client`) |
//!
//! # Request body limit
//!
//! A review body may be at most **6 MiB** ([`BODY_LIMIT`]). The API server caps a stored
//! object at about 1.5 MiB and a review carries the object and the old object, plus
//! envelope; 6 MiB leaves room for both with margin and still bounds the memory one
//! request can take.
//!
//! # Request body memory
//!
//! Memory is reserved as body bytes arrive, never from a declared `Content-Length` (a client
//! may declare 6 MiB and send nothing). The first [`SMALL_REVIEW`] bytes of every review are
//! held without touching any shared count, so the reviews an API server really sends never
//! wait or fail because of what other connections hold; bytes beyond that come from the
//! connection's [`CONNECTION_SHARE`] and from the shared [`BODY_BUDGET`], never waited for,
//! and only [`LARGE_BODIES_AT_ONCE`] bodies may be past [`SMALL_REVIEW`] at once.
//! A body must start within [`BODY_IDLE_TIMEOUT`] of its headers, never pause longer than
//! that, and be complete within [`BODY_READ_TIMEOUT`].
//!
//! # What each kind of input gets
//!
//! Every body that can be read as an AdmissionReview with a uid gets HTTP 200 and a review
//! with that uid, whatever goes wrong inside (the API server reads `response.status`).
//! Bodies that cannot get an HTTP error status and an AdmissionReview-shaped JSON body with
//! `response.uid` empty and `response.status.{code,message}` set:
//!
//! | input | HTTP | review answer | `status.message` (start) |
//! |-------|------|---------------|--------------------------|
//! | agent Pod violating checks, enforce mode | 200 | `allowed: false`, `status.code` 403 | `openclaw-admission refused pod NS/NAME: N violations` then one line per violation |
//! | agent Pod passing every check | 200 | `allowed: true` | - |
//! | DELETE (object `null`), a kind that is not judged, a pod no selector matches | 200 | `allowed: true`, no patch | - |
//! | agent Pod CREATE at `/mutate` | 200 | `allowed: true`, `patchType: JSONPatch`, base64 `patch` | - |
//! | `dryRun: true` | 200 | the same answer as without it | - |
//! | a pod with 5,000 containers | 200 | answered like any pod | - |
//! | empty body | 400 | `allowed: false`, code 400 | `request body is empty; expected an admission.k8s.io/v1 AdmissionReview` |
//! | not JSON | 400 | code 400 | `request body is not a JSON AdmissionReview: <serde error, line, column>` |
//! | a body nested 10,000 deep (`[[[[...`) | 400 | code 400 | `request body is not a JSON AdmissionReview: invalid type: ...` |
//! | free-form JSON nested 10,000 deep in `managedFields` or in unknown fields | 200 | skipped without recursion; the review is answered as if they were absent | - |
//! | JSON without `request` | 400 | code 400 | `AdmissionReview has no request` |
//! | `request` without `uid` (or empty) | 400 | code 400 | `AdmissionReview request has no uid` |
//! | wrong `apiVersion` or `kind` (uid present) | 200 | uid kept, `allowed: false`, code 400 | `unsupported review <apiVersion>/<kind>; this webhook answers admission.k8s.io/v1 AdmissionReview ...` |
//! | object that does not fit its kind's schema (uid present) | 200 | uid kept, `allowed: false`, code 400 | `cannot read the <Kind> in request.object: ...` |
//! | body over 6 MiB | 413 | code 413 | `request body exceeds the 6 MiB limit (6291456 bytes)` |
//! | body not complete within 10 s ([`BODY_READ_TIMEOUT`]) | 408 | code 408 | `request body not complete within 10 s` |
//! | no body byte within 2 s of the headers, or a 2 s gap between chunks ([`BODY_IDLE_TIMEOUT`]) | 408 | code 408 | `no request body bytes for 2000 ms` |
//! | body whose bytes beyond [`SMALL_REVIEW`] do not fit what is left of [`BODY_BUDGET`], or that passes [`SMALL_REVIEW`] while [`LARGE_BODIES_AT_ONCE`] others have | 503 | code 503 | `other reviews hold all the request-body memory ...; retry` |
//! | body whose bytes beyond [`SMALL_REVIEW`] do not fit its connection's [`CONNECTION_SHARE`] | 503 | code 503 | `other reviews on this connection hold its 6 MiB share ...; retry` |
//! | a review beyond [`MAX_REVIEWS_IN_FLIGHT`] at once | 503 | code 503 | `as many reviews as this webhook answers at once are in progress; retry` |
//! | with `--client-ca-file`, a review over a connection without a verified client certificate | 403 | code 403, connection closed, body never read | `this webhook answers reviews only from clients presenting a certificate signed by its client CA ...` |
//! | body that breaks off mid-stream | 400 | code 400 | `cannot read request body: ...` |
//! | other paths / methods | 404 / 405 | (empty body) | - |
//!
//! Content-Type is not checked: the API server sends `application/json`, and a strict check
//! would only turn a harmless header difference into a refused pod.

pub mod client_auth;
mod connection;
pub mod expired_log;
pub mod listen;
pub mod live_policy;
pub mod log_format;
pub mod metrics;
mod process;
pub mod telemetry;
pub mod tls;

use crate::admission::{self, Endpoint};
use crate::cluster::Confirm;
use crate::engine::policy::Policy;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use connection::{CONNECTION_SHARE, Connection};
use futures::StreamExt as _;
use live_policy::LivePolicy;
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use telemetry::Telemetry;

/// Largest request body accepted, in bytes (6 MiB). See the module docs for why.
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Whether the server should receive traffic: set by whoever owns the cluster view (true
/// at once for a static view; after the initial sync for a live one). Either a flag the
/// owner sets, or a function the probe asks.
#[derive(Clone)]
pub struct Readiness(ReadySource);

#[derive(Clone)]
enum ReadySource {
    Flag(Arc<AtomicBool>),
    Probe(Arc<dyn Fn() -> bool + Send + Sync>),
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Readiness").field(&self.is_ready()).finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(false)
    }
}

impl Readiness {
    /// A flag, set with [`Readiness::set`].
    pub fn new(ready: bool) -> Self {
        Readiness(ReadySource::Flag(Arc::new(AtomicBool::new(ready))))
    }
    /// Asks `probe` on every `/readyz` (e.g. a live view's own readiness).
    pub fn from_fn(probe: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Readiness(ReadySource::Probe(Arc::new(probe)))
    }
    /// Sets the flag; no effect on a probe.
    pub fn set(&self, ready: bool) {
        if let ReadySource::Flag(f) = &self.0 {
            f.store(ready, Ordering::Release);
        }
    }
    pub fn is_ready(&self) -> bool {
        match &self.0 {
            ReadySource::Flag(f) => f.load(Ordering::Acquire),
            ReadySource::Probe(p) => p(),
        }
    }
}

/// What the handlers share.
pub struct AppState<V> {
    pub policy: Arc<LivePolicy>,
    pub view: Arc<V>,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// Decision spans (off unless an OTLP endpoint is configured).
    pub telemetry: Arc<Telemetry>,
    /// Bytes of review bodies beyond [`SMALL_REVIEW`] held at once, across every connection
    /// ([`BODY_BUDGET`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Bodies past [`SMALL_REVIEW`] being read or judged at once ([`LARGE_BODIES_AT_ONCE`]).
    pub large_bodies: Arc<tokio::sync::Semaphore>,
    /// Reviews handled at once, across every connection ([`MAX_REVIEWS_IN_FLIGHT`]).
    pub max_reviews: usize,
    /// Whether `/validate` and `/mutate` answer only connections whose client certificate
    /// was verified in the handshake (`serve --client-ca-file`).
    pub require_client_cert: bool,
    /// Deadline of a body's first byte and of each gap between chunks ([`BODY_IDLE_TIMEOUT`]).
    pub body_idle_timeout: Duration,
    /// Expired policy exemptions already logged (each is logged once).
    pub expired_log: Arc<expired_log::ExpiredLog>,
}

/// Review bodies held in memory at once beyond each review's first [`SMALL_REVIEW`] bytes, all
/// connections together. A few maximum-size reviews fit; a body that would pass it is answered
/// 503 at once instead of being buffered: twenty 6 MiB bodies would otherwise take 120 MiB,
/// near the chart's 128 MiB limit.
pub const BODY_BUDGET: usize = 16 * 1024 * 1024;

/// The first bytes of every review body, held without touching [`BODY_BUDGET`]: nearly every
/// real review (one Pod, one workload, a CONNECT) is smaller, so bodies that others hold in
/// the budget never make such a review wait or fail. What they can take together is bounded
/// by [`MAX_REVIEWS_IN_FLIGHT`] (64 MiB at most, with the budget 80 MiB, under the chart's
/// 128 MiB limit; in practice the API server's few dozen reviews at once take a few MiB).
pub const SMALL_REVIEW: usize = 64 * 1024;

/// Bodies past [`SMALL_REVIEW`] read or judged at once, all connections together. With bytes
/// counted as they arrive, twenty 6 MiB bodies sent at once would each get some way into the
/// budget before it runs out, and the memory they touched on the way stays with the process
/// (the allocator keeps freed pages); four at once is enough for the two or three maximum-size
/// reviews [`BODY_BUDGET`] admits, and the others are refused after their first 64 KiB.
pub const LARGE_BODIES_AT_ONCE: usize = 4;

/// A fresh body budget of `bytes`.
pub fn body_budget(bytes: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(bytes))
}

/// Reviews handled at once, all connections together, from the request's headers to the
/// answer. Above what one API server sends a webhook (its default `--max-requests-inflight`
/// plus `--max-mutating-requests-inflight` is 600), so it only ever turns away a flood, at once
/// with a 503, instead of letting reviews parked on live lookups pile up without bound.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 1024;

impl<V> Clone for AppState<V> {
    fn clone(&self) -> Self {
        AppState {
            policy: self.policy.clone(),
            view: self.view.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
            telemetry: self.telemetry.clone(),
            body_budget: self.body_budget.clone(),
            large_bodies: self.large_bodies.clone(),
            max_reviews: self.max_reviews,
            require_client_cert: self.require_client_cert,
            body_idle_timeout: self.body_idle_timeout,
            expired_log: self.expired_log.clone(),
        }
    }
}

impl<V> AppState<V> {
    /// State with fresh metrics, the given readiness, no span export and no client
    /// certificate asked for.
    pub fn new(policy: Arc<Policy>, view: Arc<V>, readiness: Readiness) -> Self {
        let metrics = Arc::new(Metrics::new());
        AppState {
            policy: Arc::new(LivePolicy::fixed(policy, metrics.clone())),
            view,
            metrics,
            readiness,
            telemetry: Arc::new(Telemetry::off()),
            body_budget: body_budget(BODY_BUDGET),
            large_bodies: Arc::new(tokio::sync::Semaphore::new(LARGE_BODIES_AT_ONCE)),
            max_reviews: MAX_REVIEWS_IN_FLIGHT,
            require_client_cert: false,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            expired_log: Arc::new(expired_log::ExpiredLog::new()),
        }
    }
}

/// The router: review endpoints, probes and metrics.
///
/// The review routes' limits are layers, outermost first:
/// 1. the client-certificate gate (with `--client-ca-file`): refused before anything else, so
///    an unauthenticated client takes no slot and sends no body byte that is read;
/// 2. load shedding over a concurrency limit ([`MAX_REVIEWS_IN_FLIGHT`]): a review beyond the
///    cap is answered 503 at once instead of queueing;
/// 3. a deadline on the body's first byte and on every gap between chunks
///    ([`BODY_IDLE_TIMEOUT`]).
///
/// The memory accounting (bytes reserved as they arrive, [`SMALL_REVIEW`], [`CONNECTION_SHARE`],
/// [`BODY_BUDGET`]) and the whole-body deadline are in the handler: no tower layer reserves
/// memory per chunk, and the refusals must be review-shaped JSON naming what was wrong.
pub fn router<V: Confirm>(state: AppState<V>) -> Router {
    let metrics = state.metrics.clone();
    let shed = move |_: tower::BoxError| {
        let metrics = metrics.clone();
        async move {
            metrics.observe_rejected_body();
            let message = "as many reviews as this webhook answers at once are in progress; retry";
            tracing::warn!(status = 503, error = message, "review refused");
            refused_body(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    };
    let limits = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_gate::<V>,
        ))
        .layer(axum::error_handling::HandleErrorLayer::new(shed))
        .load_shed()
        .concurrency_limit(state.max_reviews)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.body_idle_timeout,
        ));
    let reviews = Router::new()
        .route("/validate", post(validate::<V>))
        .route("/mutate", post(mutate::<V>))
        .route_layer(limits);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<V>))
        .route("/metrics", get(metrics_text::<V>))
        .merge(reviews)
        .with_state(state)
}

/// With `--client-ca-file`, a review over a connection without a verified client certificate
/// is refused here, before its body is read (the connection is then closed): probes and
/// metrics on the same port stay open to the kubelet and Prometheus, which present none.
async fn client_gate<V>(
    State(st): State<AppState<V>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let verified = req
        .extensions()
        .get::<Connection>()
        .is_some_and(|c| c.client_verified);
    if st.require_client_cert && !verified {
        st.metrics.observe_unauthenticated_review();
        let message = "this webhook answers reviews only from clients presenting a certificate \
                       signed by its client CA (--client-ca-file)";
        tracing::warn!(
            path = req.uri().path(),
            status = 403,
            "review refused: no verified client certificate"
        );
        let mut answer = refused_body(StatusCode::FORBIDDEN, message);
        // The body is not read; closing the connection keeps it from being read as the next request.
        answer.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return answer;
    }
    next.run(req).await
}
async fn validate<V: Confirm>(State(st): State<AppState<V>>, req: Request) -> Response {
    review(&st, Endpoint::Validate, req).await
}

async fn mutate<V: Confirm>(State(st): State<AppState<V>>, req: Request) -> Response {
    review(&st, Endpoint::Mutate, req).await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz<V>(State(st): State<AppState<V>>) -> Response {
    if st.readiness.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics_text<V>(State(st): State<AppState<V>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        st.metrics.render(),
    )
        .into_response()
}

/// How long a review's body may take to arrive once its headers are in. A real review is
/// sent at once; a body that trickles must not hold a connection and its buffer for as long as
/// the client cares to (the API server gives up after the webhook's `timeoutSeconds`, at most
/// 30 s, anyway).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the body's first byte may take after the headers, and any gap between two of its
/// chunks. The API server writes a review's headers and body together, so a body that does
/// not come within this is a client holding a slot, not a slow network.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

enum BodyError {
    TooLarge,
    Read(String),
    Slow,
    /// No byte within [`BODY_IDLE_TIMEOUT`].
    Idle,
    /// [`BODY_BUDGET`] is spent by other reviews.
    Busy,
    /// This connection's [`CONNECTION_SHARE`] is spent by its other streams.
    ConnectionBusy,
}

/// Body bytes beyond [`SMALL_REVIEW`] held by one review, counted against its connection's
/// share and the shared budget; both are given back when this is dropped.
#[derive(Default)]
struct Held {
    /// One of [`LARGE_BODIES_AT_ONCE`], taken when the body passes [`SMALL_REVIEW`].
    large: Option<tokio::sync::OwnedSemaphorePermit>,
    share: Option<tokio::sync::OwnedSemaphorePermit>,
    budget: Option<tokio::sync::OwnedSemaphorePermit>,
    bytes: usize,
}

impl Held {
    /// Reserves `n` more bytes, never waiting: first from the connection's share, then from
    /// the shared budget; on failure nothing more is held.
    fn take(
        &mut self,
        n: usize,
        share: Option<&Arc<tokio::sync::Semaphore>>,
        budget: &Arc<tokio::sync::Semaphore>,
        large: &Arc<tokio::sync::Semaphore>,
    ) -> Result<(), BodyError> {
        let Ok(n32) = u32::try_from(n) else {
            return Err(BodyError::TooLarge);
        };
        if self.large.is_none() {
            self.large = Some(
                Arc::clone(large)
                    .try_acquire_owned()
                    .map_err(|_| BodyError::Busy)?,
            );
        }
        let from_share = match share {
            Some(s) => Some(
                Arc::clone(s)
                    .try_acquire_many_owned(n32)
                    .map_err(|_| BodyError::ConnectionBusy)?,
            ),
            None => None,
        };
        let from_budget = Arc::clone(budget)
            .try_acquire_many_owned(n32)
            .map_err(|_| BodyError::Busy)?;
        fn merge(
            into: &mut Option<tokio::sync::OwnedSemaphorePermit>,
            p: tokio::sync::OwnedSemaphorePermit,
        ) {
            match into {
                Some(held) => held.merge(p),
                None => *into = Some(p),
            }
        }
        if let Some(p) = from_share {
            merge(&mut self.share, p);
        }
        merge(&mut self.budget, from_budget);
        self.bytes += n;
        Ok(())
    }
}

/// Reads the body, reserving memory as bytes arrive (a declared `Content-Length` reserves
/// nothing: a client may declare 6 MiB and send none), and refusing it as soon as it is known
/// to pass the limit. The first [`SMALL_REVIEW`] bytes are free of the shared budget.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    budget: &Arc<tokio::sync::Semaphore>,
    large: &Arc<tokio::sync::Semaphore>,
    share: Option<&Arc<tokio::sync::Semaphore>>,
) -> Result<(Bytes, Held), BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut held = Held::default();
        let mut buf = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(body_error)?;
            let total = buf.len() + chunk.len();
            if total > BODY_LIMIT {
                return Err(BodyError::TooLarge);
            }
            let beyond_small = total.saturating_sub(SMALL_REVIEW);
            if beyond_small > held.bytes {
                held.take(beyond_small - held.bytes, share, budget, large)?;
            }
            if buf.is_empty() {
                // Room for the declared length once bytes come: pages are touched only as
                // they are written, so the resident set follows what arrived.
                let room = declared.map_or(0, |n| n as usize);
                buf.reserve_exact(room.max(chunk.len()));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), held))
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Slow))
}

/// A body error: the idle deadline of [`tower_http::timeout::RequestBodyTimeoutLayer`], or the
/// connection's own failure.
fn body_error(e: axum::Error) -> BodyError {
    let inner = e.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return BodyError::Idle;
        }
        source = err.source();
    }
    BodyError::Read(inner.to_string())
}

/// A review-shaped refusal for a body that was never read as a review.
fn refused_body(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        crate::wire::cannot_judge("", status.as_u16(), message),
    )
        .into_response()
}

async fn review<V: Confirm>(st: &AppState<V>, endpoint: Endpoint, req: Request) -> Response {
    let _in_flight = st.metrics.in_flight();
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let share = parts.extensions.get::<Connection>().map(|c| &c.share);
    // The permits hold the body's bytes against the budget until the answer is built.
    let (bytes, _held) = match read_body(
        &parts.headers,
        body,
        &st.body_budget,
        &st.large_bodies,
        share,
    )
    .await
    {
        Ok(b) => b,
        Err(err) => {
            st.metrics.observe_rejected_body();
            let (status, message) = match err {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeds the 6 MiB limit ({BODY_LIMIT} bytes)"),
                ),
                BodyError::Read(e) => (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read request body: {e}"),
                ),
                BodyError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "other reviews hold all the request-body memory this webhook allows at once; retry"
                        .to_string(),
                ),
                BodyError::ConnectionBusy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "other reviews on this connection hold its {} MiB share of request-body memory; retry",
                        CONNECTION_SHARE / (1024 * 1024)
                    ),
                ),
                BodyError::Slow => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not complete within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                ),
                BodyError::Idle => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "no request body bytes for {} ms",
                        st.body_idle_timeout.as_millis()
                    ),
                ),
            };
            tracing::warn!(endpoint = endpoint.as_str(), status = status.as_u16(), error = %message, "request body refused");
            return refused_body(status, &message);
        }
    };
    // The engine is synchronous and answers in microseconds: no spawn_blocking.
    // Cache misses that may be objects created a moment ago (one `kubectl apply` of a
    // namespace, its ServiceAccount, its NetworkPolicy and the pod) are confirmed with a live
    // read first; everything else answers from the indexed caches.
    let outcome = match admission::read(&bytes) {
        Ok(review) => {
            let policy = st.policy.get();
            let view = st.view.confirm(&review, &policy).await;
            admission::answer(&review, endpoint, &policy, &view)
        }
        Err(outcome) => *outcome,
    };
    let elapsed = start.elapsed();
    st.metrics
        .observe_review(endpoint, &outcome.summary, elapsed);
    telemetry::log_review(endpoint, &outcome.summary, elapsed);
    st.expired_log.observe(&outcome.summary);
    st.telemetry
        .review_span(endpoint, &outcome.summary, &parts.headers, elapsed);
    let status =
        StatusCode::from_u16(outcome.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        outcome.body,
    )
        .into_response()
}

/// Runs the webhook on `listener` until `shutdown` resolves: TLS from `certs` (re-read
/// every `reload_interval`), client certificates checked against `client_ca` when given (also
/// re-read), the router over `state`, then a graceful drain.
pub async fn run<V: Confirm>(
    listener: tokio::net::TcpListener,
    mut state: AppState<V>,
    certs: Arc<tls::ReloadingCert>,
    client_ca: Option<Arc<client_auth::ClientCa>>,
    reload_interval: Duration,
    opts: listen::ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), rustls::Error> {
    state.require_client_cert = client_ca.is_some();
    let verifier = client_ca
        .clone()
        .map(|ca| ca as Arc<dyn rustls::server::danger::ClientCertVerifier>);
    let config = certs.server_config(verifier)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut stop = stop_rx.clone();
    let reloader = tokio::spawn(certs.watch(reload_interval, async move {
        let _ = stop.changed().await;
    }));
    let ca_reloader = client_ca.map(|ca| {
        let mut stop = stop_rx.clone();
        tokio::spawn(ca.watch(reload_interval, async move {
            let _ = stop.changed().await;
        }))
    });
    let metrics = state.metrics.clone();
    listen::serve_tls_counted(
        listener,
        config,
        router(state),
        opts,
        Some(metrics),
        shutdown,
    )
    .await;
    let _ = stop_tx.send(());
    let _ = reloader.await;
    if let Some(r) = ca_reloader {
        let _ = r.await;
    }
    Ok(())
}
