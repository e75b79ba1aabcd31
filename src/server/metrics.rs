//! Prometheus metrics on `prometheus-client`, rendered in the Prometheus text format (0.0.4)
//! at `GET /metrics`. Counters, gauges and histograms that change as the server works are the
//! library's own metric types in one registry; figures read when Prometheus scrapes (seconds
//! until a certificate expires, the live view's cache, the process) are collectors of that
//! registry. Hand-written here only what the library has no way to say, each with its reason:
//! the cap on the series of families labelled from requests, and the client-certificate table
//! behind a gauge.

use crate::admission::{Endpoint, Summary};
use crate::cluster::reports::{MAX_NAMESPACES, OTHER_NAMESPACES, RESULTS, ScanStats};
use crate::cluster::stats::CacheStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The prefix of every family but the standard `process_*` ones.
const PREFIX: &str = "openclaw_admission";

/// Upper bounds (seconds) of the latency buckets: the engine answers in microseconds, the
/// API server gives up after `timeoutSeconds` (10 s by default).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Distinct label sets of the review counter beyond which new kinds are counted as `other`.
/// The kind comes from the request, and whoever can reach the port must not grow memory.
const MAX_REVIEW_SERIES: usize = 512;

const NOT_AFTER_UNKNOWN: i64 = i64::MIN;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReviewLabels {
    endpoint: &'static str,
    kind: String,
    operation: String,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NamespaceLabel {
    object_namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    endpoint: &'static str,
    decision: &'static str,
    mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabel {
    check: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StampLabel {
    stamp: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

type LatencyFamily = Family<EndpointLabel, Histogram, fn() -> Histogram>;

/// A counter family with a bound on its number of series. Hand-written: the library has no
/// such bound, and some of these labels come from requests, so whoever can reach the port
/// must not be able to grow memory or Prometheus' series by sending new ones.
#[derive(Debug)]
struct CappedFamily<S> {
    family: Family<S, Counter>,
    /// Series created so far; held while one is created, so that the cap is exact under
    /// concurrency (the fast path, an existing series, does not take it).
    series: Mutex<usize>,
    cap: usize,
}

impl<S> CappedFamily<S>
where
    S: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    fn new(cap: usize) -> Self {
        CappedFamily {
            family: Family::default(),
            series: Mutex::new(0),
            cap,
        }
    }

    /// Counts one event under `labels`, or, when those are new and the family already holds
    /// `cap` series, under the labels `overflow` makes of them (one more series, shared by
    /// everything past the cap).
    fn inc(&self, mut labels: S, overflow: impl FnOnce(&mut S)) {
        if let Some(c) = self.family.get(&labels) {
            c.inc();
            return;
        }
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if self.family.get(&labels).is_none() {
            if *series >= self.cap {
                overflow(&mut labels);
            }
            if self.family.get(&labels).is_none() {
                *series += 1;
            }
        }
        self.family.get_or_create(&labels).inc();
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// A success/failure pair of one counter family, both series created up front so that they
/// show 0 before the first event (an alert on `increase` needs the series to exist).
#[derive(Debug, Clone)]
struct Outcomes {
    success: Counter,
    failure: Counter,
}

impl Outcomes {
    fn register(registry: &mut Registry, name: &str, help: &str) -> Self {
        let family = Family::<ResultLabel, Counter>::default();
        let success = family.get_or_create_owned(&ResultLabel { result: "success" });
        let failure = family.get_or_create_owned(&ResultLabel { result: "failure" });
        registry.register(name, help, family);
        Outcomes { success, failure }
    }

    fn count(&self, ok: bool) {
        if ok {
            self.success.inc();
        } else {
            self.failure.inc();
        }
    }
}

/// Every metric the server exports. The handles are clones of what the registry holds
/// (each an `Arc` inside), so recording never looks a series up by its labels when the
/// labels are fixed.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Kind and operation come from the request: capped at [`MAX_REVIEW_SERIES`] series.
    reviews: CappedFamily<ReviewLabels>,
    /// Refused reviews by the reviewed object's namespace (from the request): capped at
    /// [`MAX_NAMESPACES`] series, the last one [`OTHER_NAMESPACES`], as the scan's figures.
    refusals: CappedFamily<NamespaceLabel>,
    violations: Family<CheckLabel, Counter>,
    validate_latency: Histogram,
    mutate_latency: Histogram,
    rejected_bodies: Counter,
    /// TLS connections accepted, by the protocol chosen by ALPN: HTTP/2, HTTP/1.1.
    connections_h2: Counter,
    connections_http1: Counter,
    in_flight: Gauge,
    cert_reloads: Outcomes,
    policy_reloads: Outcomes,
    /// 1 while the policy file on disk is one that was refused (the old policy is in force).
    policy_stale: Gauge,
    spans_exported: Counter,
    spans_dropped_queue_full: Counter,
    spans_export_failed: Counter,
    /// Times a matching policy exemption was ignored because it had expired.
    exemptions_expired: Counter,
    /// `(endpoint, decision, mode)`: every label from a fixed set, so the series are bounded.
    decisions: Family<DecisionLabels, Counter>,
    /// Approval stamps by how they counted: `stamped`, `current`, `previous-key`, `legacy`.
    /// A fixed set of labels, so the series are bounded.
    approvals: Family<StampLabel, Counter>,
    /// TLS handshakes that did not complete, by [`HandshakeRefusal`].
    handshakes_refused: [Counter; 3],
    /// Reviews refused for want of a verified client certificate (`--client-ca-file`).
    unauthenticated_reviews: Counter,
    /// What is read at scrape time; shared with the registry's collector.
    scraped: Arc<ScrapeTime>,
}

/// Why a TLS handshake did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// The client's certificate was missing where required, not signed by the client CA,
    /// expired, or not in the allowed names.
    ClientCertificate,
    /// Not finished within the handshake deadline.
    Timeout,
    /// Anything else (no common protocol version or cipher, a peer that hung up, ...).
    Other,
}

impl HandshakeRefusal {
    const ALL: [HandshakeRefusal; 3] = [
        HandshakeRefusal::ClientCertificate,
        HandshakeRefusal::Timeout,
        HandshakeRefusal::Other,
    ];
    fn label(self) -> &'static str {
        match self {
            HandshakeRefusal::ClientCertificate => "client_certificate",
            HandshakeRefusal::Timeout => "timeout",
            HandshakeRefusal::Other => "other",
        }
    }
}

/// Client certificates remembered at most; the oldest seen is forgotten first.
const MAX_CLIENT_CERTS: usize = 32;
/// A client certificate not presented for this long no longer counts for the expiry gauge
/// (a replaced certificate must not keep the alert firing).
const CLIENT_CERT_FORGOTTEN_AFTER: i64 = 24 * 3600;

/// State whose figures are computed when Prometheus scrapes.
#[derive(Debug)]
struct ScrapeTime {
    /// The serving certificate's `notAfter`, Unix seconds; [`NOT_AFTER_UNKNOWN`] until set.
    cert_not_after: AtomicI64,
    /// Verified client certificates by subject: (`notAfter`, when last presented), Unix
    /// seconds. Only certificates the client CA signed get here, so the map stays small; it
    /// is capped anyway. Hand-written: a gauge of the library holds one number, and this
    /// one is the earliest expiry among the certificates seen lately.
    client_certs: Mutex<BTreeMap<String, (i64, i64)>>,
    /// The live view's figures, once `serve` watches a cluster.
    cache: Mutex<Option<Arc<CacheStats>>>,
    /// The scheduled scan's reports as last listed, once `serve` watches a cluster.
    scan: Mutex<Option<Arc<ScanStats>>>,
}

impl ScrapeTime {
    /// The earliest `notAfter` of the client certificates presented in the last day.
    fn client_certificate_not_after(&self) -> Option<i64> {
        let now = unix_now();
        let certs = self.client_certs.lock().unwrap_or_else(|e| e.into_inner());
        certs
            .values()
            .filter(|(_, seen)| now - seen <= CLIENT_CERT_FORGOTTEN_AFTER)
            .map(|(not_after, _)| *not_after)
            .min()
    }
}

/// The registry's collector for [`ScrapeTime`].
#[derive(Debug)]
struct ScrapeCollector(Arc<ScrapeTime>);

/// One unlabelled figure in its own family.
fn one<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> std::fmt::Result {
    let e = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(e)
}

/// A family with one `label` over `rows`, each a label value and its metric.
fn labelled<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    label: &str,
    rows: impl IntoIterator<Item = (&'static str, M)>,
) -> std::fmt::Result {
    let mut e = encoder.encode_descriptor(name, help, None, kind)?;
    for (value, metric) in rows {
        let labels = [(label, value)];
        metric.encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let not_after = s.cert_not_after.load(Ordering::Relaxed);
        if not_after != NOT_AFTER_UNKNOWN {
            one(
                &mut encoder,
                "certificate_expiry_seconds",
                "Seconds until the serving certificate expires (negative once expired).",
                ConstGauge::new(not_after.saturating_sub(unix_now())),
            )?;
        }
        if let Some(not_after) = s.client_certificate_not_after() {
            one(
                &mut encoder,
                "client_certificate_expiry_seconds",
                "Seconds until the earliest-expiring client certificate presented in the last day expires (negative once expired); absent without client authentication.",
                ConstGauge::new(not_after.saturating_sub(unix_now())),
            )?;
        }
        let cache = s.cache.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(cache) = cache {
            encode_cache(&mut encoder, &cache)?;
        }
        let scan = s.scan.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(figures) = scan.and_then(|scan| scan.latest()) {
            let mut e = encoder.encode_descriptor(
                "scan_results",
                "Results in the PolicyReports the scheduled scan (audit --write-reports) wrote, by namespace and result, from their summary.",
                None,
                MetricType::Gauge,
            )?;
            for (ns, counts) in &figures.by_namespace {
                for (result, n) in RESULTS.iter().zip(counts) {
                    let labels = [("object_namespace", ns.as_str()), ("result", *result)];
                    ConstGauge::new(*n).encode(e.encode_family(&labels)?)?;
                }
            }
            if let Some(t) = figures.last_run {
                one(
                    &mut encoder,
                    "scan_last_run_timestamp_seconds",
                    "Unix time of the newest result in the scheduled scan's PolicyReports.",
                    ConstGauge::new(t),
                )?;
            }
        }
        Ok(())
    }
}

fn encode_cache(encoder: &mut DescriptorEncoder, cache: &CacheStats) -> std::fmt::Result {
    labelled(
        encoder,
        (
            "cache_last_event_timestamp_seconds",
            "Unix time of the last watch event per watched kind (0 before the first).",
            MetricType::Gauge,
        ),
        "kind",
        cache
            .kinds()
            .map(|(kind, k)| (kind, ConstGauge::new(k.last_event_unix()))),
    )?;
    labelled(
        encoder,
        (
            "cache_relists",
            "Lists after the first per watched kind (a broken watch or an expired resource version).",
            MetricType::Counter,
        ),
        "kind",
        cache
            .kinds()
            .map(|(kind, k)| (kind, ConstCounter::new(k.relists()))),
    )?;
    labelled(
        encoder,
        (
            "cache_watch_errors",
            "Watch errors per watched kind (each retried after backoff).",
            MetricType::Counter,
        ),
        "kind",
        cache
            .kinds()
            .map(|(kind, k)| (kind, ConstCounter::new(k.watch_errors()))),
    )?;
    labelled(
        encoder,
        (
            "cache_served",
            "Whether the API server serves the watched kind (0 for an optional API whose CRD is not installed: its objects are not judged).",
            MetricType::Gauge,
        ),
        "kind",
        cache
            .kinds()
            .map(|(kind, k)| (kind, ConstGauge::new(i64::from(k.served())))),
    )?;
    labelled(
        encoder,
        (
            "live_lookups",
            "Live confirmations of cache misses, by outcome (fetched, timed_out, failed).",
            MetricType::Counter,
        ),
        "outcome",
        cache
            .lookups
            .outcomes()
            .map(|(outcome, n)| (outcome, ConstCounter::new(n))),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(super::process::ProcessCollector));
        let registry = root.sub_registry_with_prefix(PREFIX);

        // Help texts of registered metrics go without a final period: the library adds one.
        let reviews = CappedFamily::new(MAX_REVIEW_SERIES);
        registry.register(
            "reviews",
            "Admission reviews answered, by endpoint, kind, operation and result",
            reviews.family.clone(),
        );
        // One series fewer than the cap for namespaces of their own: the last is `_other`.
        let refusals = CappedFamily::new(MAX_NAMESPACES - 1);
        registry.register(
            "refusals",
            "Reviews refused (decision denied), by the reviewed object's namespace (empty for cluster-scoped objects; _other beyond 255 namespaces)",
            refusals.family.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Reviews by endpoint, decision (allowed, denied, skipped, invalid, error) and mode (enforce, warn, audit, none when not judged)",
            decisions.clone(),
        );
        let approvals = Family::<StampLabel, Counter>::default();
        registry.register(
            "approvals",
            "Approval stamps written (stamp=\"stamped\") or honoured, by how: under the current key, the previous key during a rotation's overlap, or as a legacy stamp without a content digest during the upgrade's grace (re-approve those before it ends)",
            approvals.clone(),
        );
        let violations = Family::<CheckLabel, Counter>::default();
        registry.register(
            "violations",
            "Violations found, by check id",
            violations.clone(),
        );
        let rejected_bodies = Counter::default();
        registry.register(
            "rejected_bodies",
            "Request bodies refused before review (too large, unreadable, too slow, beyond the memory shares or the in-flight cap)",
            rejected_bodies.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        let handshakes_refused = HandshakeRefusal::ALL.map(|why| {
            refused.get_or_create_owned(&ReasonLabel {
                reason: why.label(),
            })
        });
        registry.register(
            "tls_handshakes_refused",
            "TLS handshakes that did not complete, by reason (client_certificate: missing, not signed by the client CA, expired or not an allowed name; timeout; other)",
            refused,
        );
        let unauthenticated_reviews = Counter::default();
        registry.register(
            "unauthenticated_reviews",
            "Reviews refused before their body was read: the connection presented no client certificate and --client-ca-file asks for one",
            unauthenticated_reviews.clone(),
        );
        let connections = Family::<ProtocolLabel, Counter>::default();
        let connections_h2 = connections.get_or_create_owned(&ProtocolLabel { protocol: "h2" });
        let connections_http1 = connections.get_or_create_owned(&ProtocolLabel {
            protocol: "http/1.1",
        });
        registry.register(
            "connections",
            "TLS connections accepted, by the protocol ALPN chose (h2 or http/1.1)",
            connections,
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        let validate_latency = latency.get_or_create_owned(&EndpointLabel {
            endpoint: Endpoint::Validate.as_str(),
        });
        let mutate_latency = latency.get_or_create_owned(&EndpointLabel {
            endpoint: Endpoint::Mutate.as_str(),
        });
        registry.register(
            "review_duration_seconds",
            "Time to answer one review, body read included",
            latency,
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being answered now",
            in_flight.clone(),
        );
        let cert_reloads = Outcomes::register(
            registry,
            "certificate_reloads",
            "Reloads of the serving certificate, or of the client CA (--client-ca-file), after a file change, by result",
        );
        let policy_reloads = Outcomes::register(
            registry,
            "policy_reloads",
            "Policy reloads after the policy file changed, by result",
        );
        let policy_stale = Gauge::default();
        registry.register(
            "policy_file_rejected",
            "1 while the policy file holds a policy that was refused; the previous policy is in force",
            policy_stale.clone(),
        );
        let spans_exported = Counter::default();
        registry.register(
            "spans_exported",
            "Decision spans the OTLP collector accepted",
            spans_exported.clone(),
        );
        let dropped = Family::<ReasonLabel, Counter>::default();
        let spans_dropped_queue_full = dropped.get_or_create_owned(&ReasonLabel {
            reason: "queue_full",
        });
        let spans_export_failed = dropped.get_or_create_owned(&ReasonLabel {
            reason: "export_failed",
        });
        registry.register(
            "spans_dropped",
            "Decision spans lost, by reason (queue_full: the export queue was full; export_failed: the collector was down, refused or too slow)",
            dropped,
        );
        let exemptions_expired = Counter::default();
        registry.register(
            "exemptions_expired",
            "Times a policy exemption that matched a review was ignored because its expires date had passed (each such exemption is also logged once)",
            exemptions_expired.clone(),
        );
        let scraped = Arc::new(ScrapeTime {
            cert_not_after: AtomicI64::new(NOT_AFTER_UNKNOWN),
            client_certs: Mutex::default(),
            cache: Mutex::default(),
            scan: Mutex::default(),
        });
        registry.register_collector(Box::new(ScrapeCollector(scraped.clone())));

        Metrics {
            registry: root,
            reviews,
            refusals,
            violations,
            validate_latency,
            mutate_latency,
            rejected_bodies,
            connections_h2,
            connections_http1,
            in_flight,
            cert_reloads,
            policy_reloads,
            policy_stale,
            spans_exported,
            spans_dropped_queue_full,
            spans_export_failed,
            exemptions_expired,
            decisions,
            approvals,
            handshakes_refused,
            unauthenticated_reviews,
            scraped,
        }
    }
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(self)
    }

    /// Requests being answered right now (the graceful-shutdown test waits on it).
    pub fn in_flight_now(&self) -> i64 {
        self.in_flight.get()
    }

    /// Records one answered review.
    pub fn observe_review(&self, endpoint: Endpoint, summary: &Summary, elapsed: Duration) {
        let result = if summary.result.is_empty() {
            "error"
        } else {
            summary.result
        };
        self.reviews.inc(
            ReviewLabels {
                endpoint: endpoint.as_str(),
                kind: summary.kind.clone(),
                operation: summary.operation.clone(),
                result,
            },
            |l| {
                l.kind = "other".into();
                l.operation = "other".into();
            },
        );
        if result == "denied" {
            self.refusals.inc(
                NamespaceLabel {
                    object_namespace: summary.namespace.clone(),
                },
                |l| l.object_namespace = OTHER_NAMESPACES.into(),
            );
        }
        for &check in &summary.violations {
            self.violations.get_or_create(&CheckLabel { check }).inc();
        }
        self.decisions
            .get_or_create(&DecisionLabels {
                endpoint: endpoint.as_str(),
                decision: result,
                mode: summary.mode.unwrap_or("none"),
            })
            .inc();
        for &(stamp, _) in &summary.approvals {
            self.approvals.get_or_create(&StampLabel { stamp }).inc();
        }
        if !summary.expired_exemptions.is_empty() {
            self.exemptions_expired
                .inc_by(u64::try_from(summary.expired_exemptions.len()).unwrap_or(u64::MAX));
        }
        self.latency(endpoint).observe(elapsed.as_secs_f64());
    }

    /// Reports the live view's cache freshness and confirmation outcomes from now on.
    pub fn watch_cache(&self, stats: Arc<CacheStats>) {
        *self.scraped.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Reports the scheduled scan's figures (its PolicyReports as last listed) from now on.
    pub fn watch_scan(&self, stats: Arc<ScanStats>) {
        *self.scraped.scan.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Records a body refused before it was read as a review (too large, unreadable).
    pub fn observe_rejected_body(&self) {
        self.rejected_bodies.inc();
    }

    /// Counts a TLS handshake that did not complete.
    pub fn observe_handshake_refused(&self, why: HandshakeRefusal) {
        self.handshakes_refused[why as usize].inc();
    }

    /// Handshakes refused so far for `why`.
    pub fn handshakes_refused(&self, why: HandshakeRefusal) -> u64 {
        self.handshakes_refused[why as usize].get()
    }

    /// Counts a review refused for want of a verified client certificate.
    pub fn observe_unauthenticated_review(&self) {
        self.unauthenticated_reviews.inc();
    }

    /// Records a verified client certificate's subject and `notAfter` (Unix seconds).
    pub fn observe_client_certificate(&self, subject: &str, not_after: i64) {
        let now = unix_now();
        let mut certs = self
            .scraped
            .client_certs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !certs.contains_key(subject) && certs.len() >= MAX_CLIENT_CERTS {
            let oldest = certs
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                certs.remove(&k);
            }
        }
        certs.insert(subject.to_string(), (not_after, now));
    }

    /// The earliest `notAfter` of the client certificates presented in the last day.
    #[cfg(test)]
    fn client_certificate_not_after(&self) -> Option<i64> {
        self.scraped.client_certificate_not_after()
    }

    /// Counts a connection past its TLS handshake, by the HTTP version it will speak.
    pub fn observe_connection(&self, http2: bool) {
        if http2 {
            self.connections_h2.inc();
        } else {
            self.connections_http1.inc();
        }
    }

    fn latency(&self, endpoint: Endpoint) -> &Histogram {
        match endpoint {
            Endpoint::Validate => &self.validate_latency,
            Endpoint::Mutate => &self.mutate_latency,
        }
    }

    /// Sets the serving certificate's `notAfter` (Unix seconds).
    pub fn set_certificate_not_after(&self, unix_seconds: i64) {
        self.scraped
            .cert_not_after
            .store(unix_seconds, Ordering::Relaxed);
    }

    /// Counts a certificate reload attempt.
    pub fn certificate_reloaded(&self, ok: bool) {
        self.cert_reloads.count(ok);
    }

    /// Counts a policy reload attempt after the file changed.
    pub fn policy_reloaded(&self, ok: bool) {
        self.policy_reloads.count(ok);
        self.policy_stale.set(i64::from(!ok));
    }

    /// Policy reloads that failed so far.
    pub fn policy_reload_failures(&self) -> u64 {
        self.policy_reloads.failure.get()
    }

    /// Certificate reloads that failed so far (the rotation tests wait on it).
    pub fn certificate_reload_failures(&self) -> u64 {
        self.cert_reloads.failure.get()
    }

    /// Certificate reloads that succeeded so far.
    pub fn certificate_reload_successes(&self) -> u64 {
        self.cert_reloads.success.get()
    }

    /// Counts decision spans the collector accepted.
    pub fn spans_exported(&self, n: u64) {
        self.spans_exported.inc_by(n);
    }

    /// Counts a decision span dropped because the export queue was full.
    pub fn span_dropped_queue_full(&self) {
        self.spans_dropped_queue_full.inc();
    }

    /// Counts decision spans lost to a failed export (collector down, refused, timed out).
    pub fn spans_export_failed(&self, n: u64) {
        self.spans_export_failed.inc_by(n);
    }

    /// Decision spans exported so far.
    pub fn spans_exported_total(&self) -> u64 {
        self.spans_exported.get()
    }

    /// Decision spans dropped so far, whatever the reason.
    pub fn spans_dropped_total(&self) -> u64 {
        self.spans_dropped_queue_full.get() + self.spans_export_failed.get()
    }

    /// The Prometheus text format (0.0.4; `Content-Type` [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn summary(kind: &str, result: &'static str, violations: Vec<&'static str>) -> Summary {
        Summary {
            kind: kind.into(),
            operation: "CREATE".into(),
            result,
            violations,
            ..Default::default()
        }
    }

    #[test]
    fn client_authentication_figures_are_rendered_and_the_earliest_expiry_counts() {
        let m = Metrics::new();
        let text = m.render();
        assert!(
            !text.contains("openclaw_admission_client_certificate_expiry_seconds"),
            "no client certificate seen yet: no expiry"
        );
        assert!(text.contains(
            "openclaw_admission_tls_handshakes_refused_total{reason=\"client_certificate\"} 0"
        ));
        m.observe_handshake_refused(HandshakeRefusal::ClientCertificate);
        m.observe_handshake_refused(HandshakeRefusal::Timeout);
        m.observe_unauthenticated_review();
        let now = unix_now();
        m.observe_client_certificate("CN=a", now + 10 * 86400);
        m.observe_client_certificate("CN=b", now + 3 * 86400);
        let text = m.render();
        for line in [
            "openclaw_admission_tls_handshakes_refused_total{reason=\"client_certificate\"} 1",
            "openclaw_admission_tls_handshakes_refused_total{reason=\"timeout\"} 1",
            "openclaw_admission_tls_handshakes_refused_total{reason=\"other\"} 0",
            "openclaw_admission_unauthenticated_reviews_total 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        let expiry: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("openclaw_admission_client_certificate_expiry_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((3 * 86400 - 5..=3 * 86400).contains(&expiry), "{expiry}");
        // A renewed certificate under the same subject replaces the old one.
        m.observe_client_certificate("CN=b", now + 20 * 86400);
        assert_eq!(m.client_certificate_not_after(), Some(now + 10 * 86400));
        // Many subjects: the map stays bounded.
        for i in 0..100 {
            m.observe_client_certificate(&format!("CN={i}"), now + 86400);
        }
        assert!(m.scraped.client_certs.lock().unwrap().len() <= MAX_CLIENT_CERTS);
    }

    #[test]
    fn counts_reviews_and_violations_with_their_labels() {
        let m = Metrics::new();
        m.observe_review(
            Endpoint::Validate,
            &summary("Pod", "denied", vec!["run-as-non-root", "no-host-access"]),
            Duration::from_micros(80),
        );
        m.observe_review(
            Endpoint::Validate,
            &summary("Pod", "denied", vec!["run-as-non-root"]),
            Duration::from_micros(80),
        );
        let text = m.render();
        assert!(
            text.contains(
                r#"openclaw_admission_reviews_total{endpoint="validate",kind="Pod",operation="CREATE",result="denied"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_violations_total{check="run-as-non-root"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_violations_total{check="no-host-access"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"openclaw_admission_review_duration_seconds_bucket{endpoint="validate",le="0.0001"} 2"#));
        assert!(text.contains(
            r#"openclaw_admission_review_duration_seconds_count{endpoint="validate"} 2"#
        ));
    }

    #[test]
    fn approvals_are_counted_by_how_their_stamp_counted() {
        let m = Metrics::new();
        let mut s = summary("Pod", "allowed", vec![]);
        s.approvals = vec![(
            "legacy",
            "bob: read-only-root-filesystem on Deployment a/b".into(),
        )];
        m.observe_review(Endpoint::Validate, &s, Duration::ZERO);
        m.observe_review(Endpoint::Validate, &s, Duration::ZERO);
        s.approvals = vec![("previous-key", String::new())];
        m.observe_review(Endpoint::Validate, &s, Duration::ZERO);
        let text = m.render();
        assert!(
            text.contains(r#"openclaw_admission_approvals_total{stamp="legacy"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_approvals_total{stamp="previous-key"} 1"#),
            "{text}"
        );
        assert!(!text.contains("bob"), "descriptions are not labels");
    }

    #[test]
    fn decisions_are_counted_by_mode_with_bounded_labels() {
        let m = Metrics::new();
        let mut s = summary("Pod", "denied", vec!["run-as-non-root"]);
        s.mode = Some("enforce");
        m.observe_review(Endpoint::Validate, &s, Duration::ZERO);
        m.observe_review(
            Endpoint::Validate,
            &summary("Po\"d", "skipped", vec![]),
            Duration::ZERO,
        );
        let text = m.render();
        assert!(
            text.contains(r#"openclaw_admission_decisions_total{endpoint="validate",decision="denied",mode="enforce"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_decisions_total{endpoint="validate",decision="skipped",mode="none"} 1"#),
            "{text}"
        );
        // The kind from the request is not a label of this series.
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("openclaw_admission_decisions_total") && l.contains("Po"))
        );
    }

    #[test]
    fn refusals_are_counted_by_namespace_with_bounded_series() {
        let m = Metrics::new();
        let mut refused = summary("Pod", "denied", vec!["run-as-non-root"]);
        refused.namespace = "team-a".into();
        m.observe_review(Endpoint::Validate, &refused, Duration::ZERO);
        let mut allowed = summary("Pod", "allowed", vec![]);
        allowed.namespace = "team-b".into();
        m.observe_review(Endpoint::Validate, &allowed, Duration::ZERO);
        let text = m.render();
        assert!(
            text.contains(r#"openclaw_admission_refusals_total{object_namespace="team-a"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"object_namespace="team-b""#), "{text}");
        // team-a and ns-0 to ns-253 fill all series but the overflow one.
        for i in 0..(MAX_NAMESPACES + 20) {
            refused.namespace = format!("ns-{i}");
            m.observe_review(Endpoint::Validate, &refused, Duration::ZERO);
        }
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("openclaw_admission_refusals_total{"))
            .count();
        assert_eq!(series, MAX_NAMESPACES);
        assert!(
            text.contains(r#"openclaw_admission_refusals_total{object_namespace="_other"} 22"#),
            "{text}"
        );
    }

    #[test]
    fn scan_figures_appear_once_the_reports_were_listed() {
        let m = Metrics::new();
        let stats = Arc::new(ScanStats::default());
        m.watch_scan(stats.clone());
        assert!(!m.render().contains("openclaw_admission_scan_"));
        let mut t = crate::cluster::reports::Tally::default();
        t.add(
            "team-a",
            &serde_json::json!({"summary": {"pass": 3, "fail": 2},
                "results": [{"timestamp": {"seconds": 1_700_000_000}}]}),
        );
        stats.set(Some(t.finish()));
        let text = m.render();
        for line in [
            r#"openclaw_admission_scan_results{object_namespace="team-a",result="pass"} 3"#,
            r#"openclaw_admission_scan_results{object_namespace="team-a",result="fail"} 2"#,
            r#"openclaw_admission_scan_results{object_namespace="team-a",result="skip"} 0"#,
            "openclaw_admission_scan_last_run_timestamp_seconds 1700000000",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        stats.set(None);
        assert!(!m.render().contains("openclaw_admission_scan_"));
    }

    #[test]
    fn cache_figures_appear_once_a_live_view_is_watched() {
        let m = Metrics::new();
        assert!(
            !m.render()
                .contains("openclaw_admission_cache_relists_total")
        );
        let stats = Arc::new(CacheStats::new(&[
            "Namespace",
            "NetworkPolicy",
            "CiliumNetworkPolicy",
        ]));
        stats.kind("CiliumNetworkPolicy").unwrap().set_served(false);
        m.watch_cache(stats);
        let text = m.render();
        assert!(
            text.contains(r#"openclaw_admission_cache_served{kind="CiliumNetworkPolicy"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_cache_served{kind="Namespace"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_cache_relists_total{kind="NetworkPolicy"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"openclaw_admission_cache_last_event_timestamp_seconds{kind="Namespace"} 0"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"openclaw_admission_live_lookups_total{outcome="timed_out"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn process_figures_come_from_proc() {
        let text = Metrics::new().render();
        let rss: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .expect("process_resident_memory_bytes")
            .parse()
            .unwrap();
        assert!(rss > 1e6, "{text}");
        assert!(text.contains("process_start_time_seconds "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
    }

    #[test]
    fn escapes_label_values_taken_from_requests() {
        let m = Metrics::new();
        m.observe_review(
            Endpoint::Mutate,
            &summary("Po\"d\n", "allowed", vec![]),
            Duration::ZERO,
        );
        assert!(m.render().contains(r#"kind="Po\"d\n""#));
    }

    #[test]
    fn caps_the_number_of_review_series() {
        let m = Metrics::new();
        for i in 0..(MAX_REVIEW_SERIES + 50) {
            m.observe_review(
                Endpoint::Validate,
                &summary(&format!("Kind{i}"), "skipped", vec![]),
                Duration::ZERO,
            );
        }
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("openclaw_admission_reviews_total{"))
            .count();
        assert_eq!(series, MAX_REVIEW_SERIES + 1);
        assert!(text.contains(r#"kind="other",operation="other",result="skipped"} 50"#));
    }

    #[test]
    fn certificate_expiry_is_reported_once_known() {
        let m = Metrics::new();
        assert!(
            !m.render()
                .contains("openclaw_admission_certificate_expiry_seconds ")
        );
        m.set_certificate_not_after(unix_now() + 3600);
        let text = m.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("openclaw_admission_certificate_expiry_seconds "))
            .unwrap();
        let secs: i64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!((3500..=3600).contains(&secs), "{line}");
    }
}
