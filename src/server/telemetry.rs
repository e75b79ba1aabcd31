//! What the webhook tells about each review: one JSON log line and, when an OTLP endpoint is
//! configured, one OpenTelemetry span, both built from the same field list
//! ([`review_fields!`]), so the two never disagree on what a decision was.
//!
//! # Export
//!
//! Spans go over OTLP/HTTP protobuf through the SDK's batch processor, which exports from its
//! own thread: a review only hands its finished span over (a non-blocking channel send), so a
//! slow or unreachable collector adds no latency. The queue is bounded ([`Bounded`]): when it
//! is full the span is dropped and counted (`openclaw_admission_spans_dropped_total`); a
//! failed export is counted as well and logged at most once a minute. Nothing here is fatal.
//!
//! Where to: `telemetry.endpoint` and `telemetry.headers` of the policy file win; without an
//! endpoint there, the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/traces`) decide, with `OTEL_EXPORTER_OTLP_*HEADERS`
//! and `*TIMEOUT` read by the exporter itself. With none of them, nothing is exported and
//! no span is built.
//!
//! When the API server's request carries a W3C `traceparent` (API server tracing on), the
//! span joins that trace as a child.
//!
//! # What never appears
//!
//! The fields are the request's identity, the decision, check ids and tiers, exemption
//! reasons and mutation names: never the object, an env value or a message quoting it.
//! Errors are exported with quoted fragments cut out ([`redact_quoted`]).

use super::metrics::Metrics;
use crate::admission::{Endpoint, Summary};
use crate::engine::policy::TelemetrySettings;
use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The instrumentation scope the spans carry.
const SCOPE: &str = "openclaw-admission";
/// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "openclaw-admission";
/// Failed exports and full-queue drops are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Every field of a review, once: `log key, span attribute, kind, value`. The log line and
/// the span are both expanded from this list (see [`log_review`] and [`attributes`]).
/// Kinds: `str` (left out of the span when empty), `opt` (an `Option<&str>`), `bool`,
/// `list` (a comma-joined string in the log, a string array on the span) and `log_f64`
/// (log only: the span has its own start and end).
macro_rules! review_fields {
    ($s:ident, $endpoint:ident, $elapsed:ident, $then:ident) => {
        $then! {
            endpoint, "openclaw.review.endpoint", str, $endpoint.as_str();
            uid, "openclaw.review.uid", str, $s.uid.as_str();
            kind, "openclaw.review.kind", str, $s.kind.as_str();
            namespace, "k8s.namespace.name", str, $s.namespace.as_str();
            name, "openclaw.review.name", str, $s.name.as_str();
            operation, "openclaw.review.operation", str, $s.operation.as_str();
            dry_run, "openclaw.review.dry_run", bool, $s.dry_run;
            user, "openclaw.review.user", str, $s.user.as_str();
            service_account, "openclaw.agent.service_account", str, $s.service_account.as_str();
            decision, "openclaw.decision", str, $s.result;
            mode, "openclaw.mode", opt, $s.mode;
            skipped, "openclaw.skipped", opt, $s.skipped;
            mutated, "openclaw.mutated", bool, $s.mutated;
            violations, "openclaw.violations", list, &$s.violations;
            tiers, "openclaw.violation_tiers", list, &$s.tiers;
            exempted, "openclaw.exempted", list, &$s.exempted;
            exemptions_refused, "openclaw.exemptions_refused", list, &$s.exemptions_refused;
            injected, "openclaw.injected", list, &$s.injected;
            duration_ms, "", log_f64, $elapsed.as_micros() as f64 / 1000.0;
        }
    };
}

/// One value for the log line.
macro_rules! log_value {
    (str, $v:expr) => {
        $v
    };
    (opt, $v:expr) => {
        $v.unwrap_or("")
    };
    (bool, $v:expr) => {
        $v
    };
    (list, $v:expr) => {
        tracing::field::display($v.join(","))
    };
    (log_f64, $v:expr) => {
        $v
    };
}

macro_rules! log_line {
    ($level:ident $(, $error:expr)?; $($key:ident, $attr:literal, $kind:ident, $v:expr;)*) => {
        tracing::$level!($($key = log_value!($kind, $v),)* $(error = %$error,)? "review")
    };
}

/// One value for the span, pushed only when it says something.
macro_rules! push_attr {
    ($out:ident, $attr:literal, str, $v:expr) => {{
        let v: &str = $v;
        if !v.is_empty() {
            $out.push(KeyValue::new($attr, v.to_string()));
        }
    }};
    ($out:ident, $attr:literal, opt, $v:expr) => {{
        if let Some(v) = $v {
            $out.push(KeyValue::new($attr, v));
        }
    }};
    ($out:ident, $attr:literal, bool, $v:expr) => {
        $out.push(KeyValue::new($attr, $v))
    };
    ($out:ident, $attr:literal, list, $v:expr) => {{
        let v = $v;
        if !v.is_empty() {
            let items: Vec<StringValue> =
                v.iter().map(|x| StringValue::from(x.to_string())).collect();
            $out.push(KeyValue::new($attr, Value::Array(Array::String(items))));
        }
    }};
    ($out:ident, $attr:literal, log_f64, $v:expr) => {};
}

macro_rules! span_attrs {
    ($($key:ident, $attr:literal, $kind:ident, $v:expr;)*) => {{
        let mut out: Vec<KeyValue> = Vec::with_capacity(20);
        $( push_attr!(out, $attr, $kind, $v); )*
        out
    }};
}

/// The span attributes of one review.
pub fn attributes(endpoint: Endpoint, s: &Summary) -> Vec<KeyValue> {
    // The span has its own start and end; the log's duration field is not expanded here.
    let _no_duration = Duration::ZERO;
    let mut out = review_fields!(s, endpoint, _no_duration, span_attrs);
    if let Some(e) = &s.error {
        out.push(KeyValue::new("openclaw.error", redact_quoted(e)));
    }
    out
}

/// One line per review: who, what, the decision and how long it took; never the object.
pub fn log_review(endpoint: Endpoint, s: &Summary, elapsed: Duration) {
    let error = s.error.as_deref().map(redact_quoted).unwrap_or_default();
    macro_rules! log_warn { ($($t:tt)*) => { log_line!(warn, error; $($t)*) }; }
    macro_rules! log_info { ($($t:tt)*) => { log_line!(info; $($t)*) }; }
    if matches!(s.result, "invalid" | "error") {
        review_fields!(s, endpoint, elapsed, log_warn);
    } else {
        review_fields!(s, endpoint, elapsed, log_info);
    }
    // A legacy stamp runs out at the end of the upgrade's grace: each use is worth a line
    // someone acts on. The description names approver, checks and workload, never a key.
    for (kind, what) in &s.approvals {
        if *kind == "legacy" {
            tracing::warn!(
                namespace = %s.namespace,
                name = %s.name,
                approval = %what,
                "honoured a legacy approval stamp (no content digest); re-approve the workload before the grace period ends"
            );
        }
    }
}

/// Parse errors can quote a fragment of the request (serde names the value it did not
/// expect); quoted text is dropped so that no object content reaches the log or a span.
pub fn redact_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Logs at most once per [`LOG_EVERY`], with how many were held back in between.
#[derive(Debug, Default)]
struct RateLimited {
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl RateLimited {
    /// `Some(held back since the last line)` when a line may be written now.
    fn allow(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

/// What the processor and the exporter share: spans handed over and not yet exported or
/// failed, against the bound.
#[derive(Debug)]
struct Queue {
    pending: AtomicUsize,
    limit: usize,
    metrics: Arc<Metrics>,
    drop_log: RateLimited,
    fail_log: RateLimited,
}

/// The SDK's batch processor behind a bound this module counts: the SDK drops silently
/// when its queue is full (it logs once and reports a total at shutdown), and the drops must
/// be a metric. The inner queue is sized above the bound, so it never drops on its own.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    queue: Arc<Queue>,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let q = &self.queue;
        if q.pending.fetch_add(1, Ordering::AcqRel) >= q.limit {
            q.pending.fetch_sub(1, Ordering::AcqRel);
            q.metrics.span_dropped_queue_full();
            if let Some(held) = q.drop_log.allow() {
                tracing::warn!(
                    queue = q.limit,
                    dropped_since_last_line = held,
                    "span export queue full; dropping decision spans (the collector is slow or unreachable)"
                );
            }
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what left and what failed.
#[derive(Debug)]
struct Counting {
    inner: opentelemetry_otlp::SpanExporter,
    queue: Arc<Queue>,
    endpoint: String,
}

impl SpanExporter for Counting {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.queue.pending.fetch_sub(n, Ordering::AcqRel);
        match &result {
            Ok(()) => self.queue.metrics.spans_exported(n as u64),
            Err(e) => {
                self.queue.metrics.spans_export_failed(n as u64);
                if let Some(held) = self.queue.fail_log.allow() {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        spans = n,
                        failures_since_last_line = held,
                        error = %e,
                        "cannot export decision spans; reviews go on, the spans are dropped"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

struct Exporting {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    endpoint: String,
}

/// The span side of the server: off, or a tracer exporting to one endpoint.
pub struct Telemetry {
    on: Option<Exporting>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("endpoint", &self.endpoint())
            .finish()
    }
}

/// The traces endpoint the settings and the environment give, if any.
fn endpoint_from(settings: &TelemetrySettings) -> Option<String> {
    if !settings.endpoint.is_empty() {
        return Some(settings.endpoint.clone());
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if let Some(e) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Some(e);
    }
    env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
}

impl Telemetry {
    /// No export: reviews are logged only.
    pub fn off() -> Self {
        Telemetry { on: None }
    }

    /// Export as the settings and the standard environment say, or [`Telemetry::off`] when
    /// neither names an endpoint. Builds the HTTP client on a thread of its own, so it may be
    /// called from inside or outside an async runtime. An endpoint that cannot be used (not
    /// a URL) is an error naming it; one that is down is not (it may come up later).
    pub fn start(settings: &TelemetrySettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let Some(endpoint) = endpoint_from(settings) else {
            return Ok(Telemetry::off());
        };
        // The exporter's https goes through rustls with the process's provider; ring is the
        // one `serve` installs. Installing it here too (a no-op when present) keeps a library
        // caller from a panic inside the HTTP client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone());
        if !settings.headers.is_empty() {
            let headers: HashMap<String, String> = settings
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            builder = builder.with_headers(headers);
        }
        let exporter = builder
            .build()
            .map_err(|e| format!("telemetry.endpoint {endpoint:?}: {e}"))?;
        let limit = settings.max_queue_size.max(1);
        let queue = Arc::new(Queue {
            pending: AtomicUsize::new(0),
            limit,
            metrics,
            drop_log: RateLimited::default(),
            fail_log: RateLimited::default(),
        });
        let batch = BatchSpanProcessor::builder(Counting {
            inner: exporter,
            queue: queue.clone(),
            endpoint: endpoint.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                // Room for every span the bound lets through, so the SDK never drops unseen.
                .with_max_queue_size(limit + 1)
                .with_max_export_batch_size(limit.min(512))
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(SERVICE_NAME);
        }
        let resource = resource
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            // Every decision is recorded, whatever the API server's sampling flag says: the
            // span is the decision's record, not a sample of traffic. It still joins the trace.
            .with_sampler(Sampler::AlwaysOn)
            .with_span_processor(Bounded {
                inner: batch,
                queue,
            })
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(SCOPE);
        Ok(Telemetry {
            on: Some(Exporting {
                provider,
                tracer,
                propagator: TraceContextPropagator::new(),
                endpoint,
            }),
        })
    }

    /// Where spans go, when they go anywhere.
    pub fn endpoint(&self) -> Option<&str> {
        self.on.as_ref().map(|e| e.endpoint.as_str())
    }

    /// Ends one review's span: started `elapsed` ago, child of the request's `traceparent`
    /// when there is one. Does nothing when export is off.
    pub fn review_span(
        &self,
        endpoint: Endpoint,
        s: &Summary,
        headers: &HeaderMap,
        elapsed: Duration,
    ) {
        let Some(on) = &self.on else {
            return;
        };
        let end = SystemTime::now();
        let start = end.checked_sub(elapsed).unwrap_or(end);
        let parent = if headers.contains_key("traceparent") {
            on.propagator
                .extract(&opentelemetry_http::HeaderExtractor(headers))
        } else {
            Context::new()
        };
        let name = match endpoint {
            Endpoint::Validate => "admission validate",
            Endpoint::Mutate => "admission mutate",
        };
        let builder = on
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(attributes(endpoint, s));
        let mut span = on.tracer.build_with_context(builder, &parent);
        if matches!(s.result, "invalid" | "error") {
            span.set_status(Status::error(s.result));
        }
        span.end_with_timestamp(end);
    }

    /// Sends what is queued and stops the export thread; waits at most a few seconds.
    pub fn shutdown(&self) {
        if let Some(on) = &self.on {
            let _ = on.provider.force_flush();
            if let Err(e) = on.provider.shutdown_with_timeout(Duration::from_secs(3)) {
                tracing::warn!(error = %e, "span export did not shut down cleanly");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_quoted_values_from_parse_errors() {
        let e = r#"invalid type: string "sk-live-123", expected i64 at line 3"#;
        let r = redact_quoted(e);
        assert!(!r.contains("sk-live"), "{r}");
        assert!(r.contains("expected i64 at line 3"), "{r}");
    }

    #[test]
    fn span_attributes_carry_the_decision_and_leave_empty_fields_out() {
        let s = Summary {
            uid: "u1".into(),
            kind: "Pod".into(),
            namespace: "agents".into(),
            name: "claw".into(),
            operation: "CREATE".into(),
            result: "denied",
            mode: Some("enforce"),
            violations: vec!["run-as-non-root", "no-host-access"],
            tiers: vec!["high", "high"],
            user: "alice".into(),
            ..Default::default()
        };
        let attrs = attributes(Endpoint::Validate, &s);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("openclaw.decision").as_deref(), Some("denied"));
        assert_eq!(get("openclaw.review.user").as_deref(), Some("alice"));
        assert_eq!(get("k8s.namespace.name").as_deref(), Some("agents"));
        assert_eq!(
            get("openclaw.violations").as_deref(),
            Some(r#"["run-as-non-root","no-host-access"]"#)
        );
        assert_eq!(get("openclaw.agent.service_account"), None);
        assert_eq!(get("openclaw.injected"), None);
    }

    #[test]
    fn the_policy_endpoint_wins_over_the_environment() {
        let settings = TelemetrySettings {
            endpoint: "http://collector.example:4318/v1/traces".into(),
            ..Default::default()
        };
        assert_eq!(
            endpoint_from(&settings).as_deref(),
            Some("http://collector.example:4318/v1/traces")
        );
    }
}
