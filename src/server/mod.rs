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
//! | `GET /metrics`    | Prometheus text format |
//!
//! # Request body limit
//!
//! A review body may be at most **6 MiB** ([`BODY_LIMIT`]). The API server caps a stored
//! object at about 1.5 MiB and a review carries the object and the old object, plus
//! envelope; 6 MiB leaves room for both with margin and still bounds the memory one
//! request can take.
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
//! | body that does not fit the bytes left of [`BODY_BUDGET`] | 503 | code 503 | `other reviews hold all the request-body memory ...; retry` |
//! | a review beyond [`MAX_REVIEWS_IN_FLIGHT`] at once | 503 | code 503 | `as many reviews as this webhook answers at once are in progress; retry` |
//! | body that breaks off mid-stream | 400 | code 400 | `cannot read request body: ...` |
//! | other paths / methods | 404 / 405 | (empty body) | - |
//!
//! Content-Type is not checked: the API server sends `application/json`, and a strict check
//! would only turn a harmless header difference into a refused pod.

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
    /// Bytes of review bodies held at once, across every connection ([`BODY_BUDGET`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Reviews being handled at once, across every connection ([`MAX_REVIEWS_IN_FLIGHT`]).
    pub review_slots: Arc<tokio::sync::Semaphore>,
}

/// Review bodies held in memory at once, all connections together. A real review is tens of
/// KB; a few maximum-size ones fit, and the excess is answered 503 at once instead of being
/// buffered: twenty 6 MiB bodies would otherwise take 120 MiB, near the chart's 128 MiB limit.
pub const BODY_BUDGET: usize = 16 * 1024 * 1024;

/// A fresh body budget of `bytes`.
pub fn body_budget(bytes: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(bytes))
}

/// Reviews handled at once, all connections together, from the first body byte to the answer.
/// Above what one API server sends a webhook (its default `--max-requests-inflight` plus
/// `--max-mutating-requests-inflight` is 600), so it only ever turns away a flood, at once
/// with a 503, instead of letting reviews parked on live lookups pile up without bound.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 1024;

/// Fresh review slots: `n` reviews at once.
pub fn review_slots(n: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(n))
}

impl<V> Clone for AppState<V> {
    fn clone(&self) -> Self {
        AppState {
            policy: self.policy.clone(),
            view: self.view.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
            telemetry: self.telemetry.clone(),
            body_budget: self.body_budget.clone(),
            review_slots: self.review_slots.clone(),
        }
    }
}

impl<V> AppState<V> {
    /// State with fresh metrics, the given readiness and no span export.
    pub fn new(policy: Arc<Policy>, view: Arc<V>, readiness: Readiness) -> Self {
        let metrics = Arc::new(Metrics::new());
        AppState {
            policy: Arc::new(LivePolicy::fixed(policy, metrics.clone())),
            view,
            metrics,
            readiness,
            telemetry: Arc::new(Telemetry::off()),
            body_budget: body_budget(BODY_BUDGET),
            review_slots: review_slots(MAX_REVIEWS_IN_FLIGHT),
        }
    }
}

/// The router: review endpoints, probes and metrics.
pub fn router<V: Confirm>(state: AppState<V>) -> Router {
    Router::new()
        .route("/validate", post(validate::<V>))
        .route("/mutate", post(mutate::<V>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<V>))
        .route("/metrics", get(metrics_text::<V>))
        .with_state(state)
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
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// How long a review's body may take to arrive once its headers are in. A real review is
/// sent at once; a body that trickles or never comes must not hold a connection and its
/// buffer for as long as the client cares to (the API server gives up after the webhook's
/// `timeoutSeconds`, at most 30 s, anyway).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

enum BodyError {
    TooLarge,
    Read(String),
    Slow,
    /// The body budget is spent by other reviews.
    Busy,
}

/// Reads the body, refusing it as soon as it is known to pass the limit.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    budget: &Arc<tokio::sync::Semaphore>,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| n as usize);
    // Bytes are reserved before they are held: the declared length at once, or chunk by
    // chunk for a body without one. Never waited for: a review that cannot have its bytes now
    // is answered at once.
    let take = |n: usize| {
        u32::try_from(n)
            .ok()
            .and_then(|n| Arc::clone(budget).try_acquire_many_owned(n).ok())
            .ok_or(BodyError::Busy)
    };
    let mut held = take(capacity)?;
    let read = async {
        let mut buf = Vec::with_capacity(capacity);
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if buf.len() + chunk.len() > BODY_LIMIT {
                return Err(BodyError::TooLarge);
            }
            let beyond = (buf.len() + chunk.len()).saturating_sub(capacity.max(buf.len()));
            if beyond > 0 {
                held.merge(take(beyond)?);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), held))
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Slow))
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
    // Never waited for, like the body budget: a review over the cap is answered at once.
    let Ok(_slot) = Arc::clone(&st.review_slots).try_acquire_owned() else {
        st.metrics.observe_rejected_body();
        let message =
            "as many reviews as this webhook answers at once are in progress; retry".to_string();
        tracing::warn!(endpoint = endpoint.as_str(), status = 503, error = %message, "review refused");
        return refused_body(StatusCode::SERVICE_UNAVAILABLE, &message);
    };
    let (parts, body) = req.into_parts();
    // The permit holds the body's bytes against the budget until the answer is built.
    let (bytes, _budget) = match read_body(&parts.headers, body, &st.body_budget).await {
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
                BodyError::Slow => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not complete within {} s",
                        BODY_READ_TIMEOUT.as_secs()
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
/// every `reload_interval`), the router over `state`, then a graceful drain.
pub async fn run<V: Confirm>(
    listener: tokio::net::TcpListener,
    state: AppState<V>,
    certs: Arc<tls::ReloadingCert>,
    reload_interval: Duration,
    opts: listen::ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), rustls::Error> {
    let config = certs.server_config()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reloader = tokio::spawn(certs.watch(reload_interval, async move {
        let _ = stop_rx.await;
    }));
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
    Ok(())
}
