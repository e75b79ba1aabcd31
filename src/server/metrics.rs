//! Prometheus metrics, hand-rolled: a few counters, one histogram per endpoint and two
//! gauges do not justify a registry crate, and the hot path stays one short lock and a few
//! atomic adds per review. Rendered in the text exposition format at `GET /metrics`.

use crate::admission::{Endpoint, Summary};
use crate::cluster::stats::CacheStats;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (seconds) of the latency buckets: the engine answers in microseconds, the
/// API server gives up after `timeoutSeconds` (10 s by default).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Distinct label sets of the review counter beyond which new kinds are counted as `other`.
/// The kind comes from the request, and whoever can reach the port must not grow memory.
const MAX_REVIEW_SERIES: usize = 512;

const NOT_AFTER_UNKNOWN: i64 = i64::MIN;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ReviewKey {
    endpoint: &'static str,
    kind: String,
    operation: String,
    result: &'static str,
}

#[derive(Debug)]
struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // Buckets are stored non-cumulative and summed at render time: one add per sample.
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    reviews: Mutex<BTreeMap<ReviewKey, u64>>,
    violations: Mutex<BTreeMap<&'static str, u64>>,
    validate_latency: Histogram,
    mutate_latency: Histogram,
    rejected_bodies: AtomicU64,
    /// TLS connections accepted, by the protocol chosen by ALPN: HTTP/2, HTTP/1.1.
    connections_h2: AtomicU64,
    connections_http1: AtomicU64,
    in_flight: AtomicI64,
    cert_not_after: AtomicI64,
    cert_reload_ok: AtomicU64,
    cert_reload_failed: AtomicU64,
    policy_reload_ok: AtomicU64,
    policy_reload_failed: AtomicU64,
    /// 1 while the policy file on disk is one that was refused (the old policy is in force).
    policy_stale: AtomicU64,
    spans_exported: AtomicU64,
    spans_dropped_queue_full: AtomicU64,
    spans_export_failed: AtomicU64,
    /// Times a matching policy exemption was ignored because it had expired.
    exemptions_expired: AtomicU64,
    /// `(endpoint, decision, mode)`: every label from a fixed set, so the series are bounded.
    decisions: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    /// Approval stamps by how they counted: `stamped`, `current`, `previous-key`, `legacy`.
    /// A fixed set of labels, so the series are bounded.
    approvals: Mutex<BTreeMap<&'static str, u64>>,
    /// The live view's figures, once `serve` watches a cluster.
    cache: Mutex<Option<Arc<CacheStats>>>,
    /// TLS handshakes that did not complete, by [`HandshakeRefusal`].
    handshakes_refused: [AtomicU64; 3],
    /// Reviews refused for want of a verified client certificate (`--client-ca-file`).
    unauthenticated_reviews: AtomicU64,
    /// Verified client certificates by subject: (`notAfter`, when last presented), Unix
    /// seconds. Only certificates the client CA signed get here, so the map stays small;
    /// it is capped anyway.
    client_certs: Mutex<BTreeMap<String, (i64, i64)>>,
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

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reviews: Mutex::default(),
            violations: Mutex::default(),
            validate_latency: Histogram::new(),
            mutate_latency: Histogram::new(),
            rejected_bodies: AtomicU64::new(0),
            connections_h2: AtomicU64::new(0),
            connections_http1: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            cert_not_after: AtomicI64::new(NOT_AFTER_UNKNOWN),
            cert_reload_ok: AtomicU64::new(0),
            cert_reload_failed: AtomicU64::new(0),
            policy_reload_ok: AtomicU64::new(0),
            policy_reload_failed: AtomicU64::new(0),
            policy_stale: AtomicU64::new(0),
            spans_exported: AtomicU64::new(0),
            spans_dropped_queue_full: AtomicU64::new(0),
            spans_export_failed: AtomicU64::new(0),
            exemptions_expired: AtomicU64::new(0),
            decisions: Mutex::default(),
            approvals: Mutex::default(),
            cache: Mutex::default(),
            handshakes_refused: Default::default(),
            unauthenticated_reviews: AtomicU64::new(0),
            client_certs: Mutex::default(),
        }
    }
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Label values come from requests: escape what the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Requests being answered right now (the graceful-shutdown test waits on it).
    pub fn in_flight_now(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records one answered review.
    pub fn observe_review(&self, endpoint: Endpoint, summary: &Summary, elapsed: Duration) {
        let result = if summary.result.is_empty() {
            "error"
        } else {
            summary.result
        };
        {
            let mut reviews = self.reviews.lock().unwrap_or_else(|e| e.into_inner());
            let mut key = ReviewKey {
                endpoint: endpoint.as_str(),
                kind: summary.kind.clone(),
                operation: summary.operation.clone(),
                result,
            };
            if !reviews.contains_key(&key) && reviews.len() >= MAX_REVIEW_SERIES {
                key.kind = "other".into();
                key.operation = "other".into();
            }
            *reviews.entry(key).or_insert(0) += 1;
        }
        if !summary.violations.is_empty() {
            let mut v = self.violations.lock().unwrap_or_else(|e| e.into_inner());
            for id in &summary.violations {
                *v.entry(*id).or_insert(0) += 1;
            }
        }
        {
            let mode = summary.mode.unwrap_or("none");
            let mut d = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
            *d.entry((endpoint.as_str(), result, mode)).or_insert(0) += 1;
        }
        self.exemptions_expired.fetch_add(
            u64::try_from(summary.expired_exemptions.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if !summary.approvals.is_empty() {
            let mut a = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
            for (kind, _) in &summary.approvals {
                *a.entry(*kind).or_insert(0) += 1;
            }
        }
        self.latency(endpoint).observe(elapsed);
    }

    /// Reports the live view's cache freshness and confirmation outcomes from now on.
    pub fn watch_cache(&self, stats: Arc<CacheStats>) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Records a body refused before it was read as a review (too large, unreadable).
    pub fn observe_rejected_body(&self) {
        self.rejected_bodies.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a TLS handshake that did not complete.
    pub fn observe_handshake_refused(&self, why: HandshakeRefusal) {
        self.handshakes_refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Handshakes refused so far for `why`.
    pub fn handshakes_refused(&self, why: HandshakeRefusal) -> u64 {
        self.handshakes_refused[why as usize].load(Ordering::Relaxed)
    }

    /// Counts a review refused for want of a verified client certificate.
    pub fn observe_unauthenticated_review(&self) {
        self.unauthenticated_reviews.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a verified client certificate's subject and `notAfter` (Unix seconds).
    pub fn observe_client_certificate(&self, subject: &str, not_after: i64) {
        let now = unix_now();
        let mut certs = self.client_certs.lock().unwrap_or_else(|e| e.into_inner());
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
    fn client_certificate_not_after(&self) -> Option<i64> {
        let now = unix_now();
        let certs = self.client_certs.lock().unwrap_or_else(|e| e.into_inner());
        certs
            .values()
            .filter(|(_, seen)| now - seen <= CLIENT_CERT_FORGOTTEN_AFTER)
            .map(|(not_after, _)| *not_after)
            .min()
    }

    /// Counts a connection past its TLS handshake, by the HTTP version it will speak.
    pub fn observe_connection(&self, http2: bool) {
        let counter = if http2 {
            &self.connections_h2
        } else {
            &self.connections_http1
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn latency(&self, endpoint: Endpoint) -> &Histogram {
        match endpoint {
            Endpoint::Validate => &self.validate_latency,
            Endpoint::Mutate => &self.mutate_latency,
        }
    }

    /// Sets the serving certificate's `notAfter` (Unix seconds).
    pub fn set_certificate_not_after(&self, unix_seconds: i64) {
        self.cert_not_after.store(unix_seconds, Ordering::Relaxed);
    }

    /// Counts a certificate reload attempt.
    pub fn certificate_reloaded(&self, ok: bool) {
        if ok {
            self.cert_reload_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.cert_reload_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a policy reload attempt after the file changed.
    pub fn policy_reloaded(&self, ok: bool) {
        if ok {
            self.policy_reload_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.policy_reload_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.policy_stale.store(u64::from(!ok), Ordering::Relaxed);
    }

    /// Policy reloads that failed so far.
    pub fn policy_reload_failures(&self) -> u64 {
        self.policy_reload_failed.load(Ordering::Relaxed)
    }

    /// Certificate reloads that failed so far (the rotation tests wait on it).
    pub fn certificate_reload_failures(&self) -> u64 {
        self.cert_reload_failed.load(Ordering::Relaxed)
    }

    /// Certificate reloads that succeeded so far.
    pub fn certificate_reload_successes(&self) -> u64 {
        self.cert_reload_ok.load(Ordering::Relaxed)
    }

    /// Counts decision spans the collector accepted.
    pub fn spans_exported(&self, n: u64) {
        self.spans_exported.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a decision span dropped because the export queue was full.
    pub fn span_dropped_queue_full(&self) {
        self.spans_dropped_queue_full
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts decision spans lost to a failed export (collector down, refused, timed out).
    pub fn spans_export_failed(&self, n: u64) {
        self.spans_export_failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Decision spans exported so far.
    pub fn spans_exported_total(&self) -> u64 {
        self.spans_exported.load(Ordering::Relaxed)
    }

    /// Decision spans dropped so far, whatever the reason.
    pub fn spans_dropped_total(&self) -> u64 {
        self.spans_dropped_queue_full.load(Ordering::Relaxed)
            + self.spans_export_failed.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP openclaw_admission_reviews_total Admission reviews answered, by endpoint, kind, operation and result."
        )?;
        writeln!(out, "# TYPE openclaw_admission_reviews_total counter")?;
        {
            let reviews = self.reviews.lock().unwrap_or_else(|e| e.into_inner());
            for (k, n) in reviews.iter() {
                writeln!(
                    out,
                    "openclaw_admission_reviews_total{{endpoint=\"{}\",kind=\"{}\",operation=\"{}\",result=\"{}\"}} {n}",
                    k.endpoint,
                    escape(&k.kind),
                    escape(&k.operation),
                    k.result
                )?;
            }
        }
        writeln!(
            out,
            "# HELP openclaw_admission_decisions_total Reviews by endpoint, decision (allowed, denied, skipped, invalid, error) and mode (enforce, warn, audit, none when not judged)."
        )?;
        writeln!(out, "# TYPE openclaw_admission_decisions_total counter")?;
        {
            let d = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
            for ((endpoint, decision, mode), n) in d.iter() {
                writeln!(
                    out,
                    "openclaw_admission_decisions_total{{endpoint=\"{endpoint}\",decision=\"{decision}\",mode=\"{mode}\"}} {n}"
                )?;
            }
        }
        writeln!(
            out,
            "# HELP openclaw_admission_approvals_total Approval stamps written (stamp=\"stamped\") or honoured, by how: under the current key, the previous key during a rotation's overlap, or as a legacy stamp without a content digest during the upgrade's grace (re-approve those before it ends)."
        )?;
        writeln!(out, "# TYPE openclaw_admission_approvals_total counter")?;
        {
            let a = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
            for (kind, n) in a.iter() {
                writeln!(
                    out,
                    "openclaw_admission_approvals_total{{stamp=\"{kind}\"}} {n}"
                )?;
            }
        }
        writeln!(
            out,
            "# HELP openclaw_admission_violations_total Violations found, by check id."
        )?;
        writeln!(out, "# TYPE openclaw_admission_violations_total counter")?;
        {
            let v = self.violations.lock().unwrap_or_else(|e| e.into_inner());
            for (check, n) in v.iter() {
                writeln!(
                    out,
                    "openclaw_admission_violations_total{{check=\"{check}\"}} {n}"
                )?;
            }
        }
        writeln!(
            out,
            "# HELP openclaw_admission_rejected_bodies_total Request bodies refused before review (too large, unreadable, too slow, beyond the memory shares or the in-flight cap)."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_rejected_bodies_total counter"
        )?;
        writeln!(
            out,
            "openclaw_admission_rejected_bodies_total {}",
            self.rejected_bodies.load(Ordering::Relaxed)
        )?;

        writeln!(
            out,
            "# HELP openclaw_admission_tls_handshakes_refused_total TLS handshakes that did not complete, by reason (client_certificate: missing, not signed by the client CA, expired or not an allowed name; timeout; other)."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_tls_handshakes_refused_total counter"
        )?;
        for why in HandshakeRefusal::ALL {
            writeln!(
                out,
                "openclaw_admission_tls_handshakes_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                self.handshakes_refused(why)
            )?;
        }
        writeln!(
            out,
            "# HELP openclaw_admission_unauthenticated_reviews_total Reviews refused before their body was read: the connection presented no client certificate and --client-ca-file asks for one."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_unauthenticated_reviews_total counter"
        )?;
        writeln!(
            out,
            "openclaw_admission_unauthenticated_reviews_total {}",
            self.unauthenticated_reviews.load(Ordering::Relaxed)
        )?;
        if let Some(not_after) = self.client_certificate_not_after() {
            writeln!(
                out,
                "# HELP openclaw_admission_client_certificate_expiry_seconds Seconds until the earliest-expiring client certificate presented in the last day expires (negative once expired); absent without client authentication."
            )?;
            writeln!(
                out,
                "# TYPE openclaw_admission_client_certificate_expiry_seconds gauge"
            )?;
            writeln!(
                out,
                "openclaw_admission_client_certificate_expiry_seconds {}",
                not_after.saturating_sub(unix_now())
            )?;
        }

        writeln!(
            out,
            "# HELP openclaw_admission_connections_total TLS connections accepted, by the protocol ALPN chose (h2 or http/1.1)."
        )?;
        writeln!(out, "# TYPE openclaw_admission_connections_total counter")?;
        for (protocol, counter) in [
            ("h2", &self.connections_h2),
            ("http/1.1", &self.connections_http1),
        ] {
            writeln!(
                out,
                "openclaw_admission_connections_total{{protocol=\"{protocol}\"}} {}",
                counter.load(Ordering::Relaxed)
            )?;
        }

        writeln!(
            out,
            "# HELP openclaw_admission_review_duration_seconds Time to answer one review, body read included."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_review_duration_seconds histogram"
        )?;
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let h = self.latency(endpoint);
            let ep = endpoint.as_str();
            let mut cumulative = 0u64;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                writeln!(
                    out,
                    "openclaw_admission_review_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{b}\"}} {cumulative}"
                )?;
            }
            let count = h.count.load(Ordering::Relaxed);
            writeln!(
                out,
                "openclaw_admission_review_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {count}"
            )?;
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            writeln!(
                out,
                "openclaw_admission_review_duration_seconds_sum{{endpoint=\"{ep}\"}} {sum}"
            )?;
            writeln!(
                out,
                "openclaw_admission_review_duration_seconds_count{{endpoint=\"{ep}\"}} {count}"
            )?;
        }

        writeln!(
            out,
            "# HELP openclaw_admission_requests_in_flight Requests being answered now."
        )?;
        writeln!(out, "# TYPE openclaw_admission_requests_in_flight gauge")?;
        writeln!(
            out,
            "openclaw_admission_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        )?;

        let not_after = self.cert_not_after.load(Ordering::Relaxed);
        if not_after != NOT_AFTER_UNKNOWN {
            writeln!(
                out,
                "# HELP openclaw_admission_certificate_expiry_seconds Seconds until the serving certificate expires (negative once expired)."
            )?;
            writeln!(
                out,
                "# TYPE openclaw_admission_certificate_expiry_seconds gauge"
            )?;
            writeln!(
                out,
                "openclaw_admission_certificate_expiry_seconds {}",
                not_after.saturating_sub(unix_now())
            )?;
        }
        writeln!(
            out,
            "# HELP openclaw_admission_certificate_reloads_total Reloads of the serving certificate, or of the client CA (--client-ca-file), after a file change, by result."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_certificate_reloads_total counter"
        )?;
        writeln!(
            out,
            "openclaw_admission_certificate_reloads_total{{result=\"success\"}} {}",
            self.cert_reload_ok.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "openclaw_admission_certificate_reloads_total{{result=\"failure\"}} {}",
            self.cert_reload_failed.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP openclaw_admission_policy_reloads_total Policy reloads after the policy file changed, by result.\n# TYPE openclaw_admission_policy_reloads_total counter"
        )?;
        writeln!(
            out,
            "openclaw_admission_policy_reloads_total{{result=\"success\"}} {}\nopenclaw_admission_policy_reloads_total{{result=\"failure\"}} {}",
            self.policy_reload_ok.load(Ordering::Relaxed),
            self.policy_reload_failed.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP openclaw_admission_policy_file_rejected 1 while the policy file holds a policy that was refused; the previous policy is in force.\n# TYPE openclaw_admission_policy_file_rejected gauge\nopenclaw_admission_policy_file_rejected {}",
            self.policy_stale.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP openclaw_admission_spans_exported_total Decision spans the OTLP collector accepted."
        )?;
        writeln!(
            out,
            "# TYPE openclaw_admission_spans_exported_total counter"
        )?;
        writeln!(
            out,
            "openclaw_admission_spans_exported_total {}",
            self.spans_exported.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP openclaw_admission_spans_dropped_total Decision spans lost, by reason (queue_full: the export queue was full; export_failed: the collector was down, refused or too slow)."
        )?;
        writeln!(out, "# TYPE openclaw_admission_spans_dropped_total counter")?;
        writeln!(
            out,
            "openclaw_admission_spans_dropped_total{{reason=\"queue_full\"}} {}",
            self.spans_dropped_queue_full.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "openclaw_admission_spans_dropped_total{{reason=\"export_failed\"}} {}",
            self.spans_export_failed.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "# HELP openclaw_admission_exemptions_expired_total Times a policy exemption that matched a review was ignored because its expires date had passed (each such exemption is also logged once).\n# TYPE openclaw_admission_exemptions_expired_total counter\nopenclaw_admission_exemptions_expired_total {}",
            self.exemptions_expired.load(Ordering::Relaxed)
        )?;
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(cache) = cache {
            render_cache(out, &cache)?;
        }
        super::process::render(out)?;
        Ok(())
    }
}

fn render_cache(out: &mut String, cache: &CacheStats) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP openclaw_admission_cache_last_event_timestamp_seconds Unix time of the last watch event per watched kind (0 before the first)."
    )?;
    writeln!(
        out,
        "# TYPE openclaw_admission_cache_last_event_timestamp_seconds gauge"
    )?;
    for (kind, k) in cache.kinds() {
        writeln!(
            out,
            "openclaw_admission_cache_last_event_timestamp_seconds{{kind=\"{kind}\"}} {}",
            k.last_event_unix()
        )?;
    }
    writeln!(
        out,
        "# HELP openclaw_admission_cache_relists_total Lists after the first per watched kind (a broken watch or an expired resource version)."
    )?;
    writeln!(out, "# TYPE openclaw_admission_cache_relists_total counter")?;
    for (kind, k) in cache.kinds() {
        writeln!(
            out,
            "openclaw_admission_cache_relists_total{{kind=\"{kind}\"}} {}",
            k.relists()
        )?;
    }
    writeln!(
        out,
        "# HELP openclaw_admission_cache_watch_errors_total Watch errors per watched kind (each retried after backoff)."
    )?;
    writeln!(
        out,
        "# TYPE openclaw_admission_cache_watch_errors_total counter"
    )?;
    for (kind, k) in cache.kinds() {
        writeln!(
            out,
            "openclaw_admission_cache_watch_errors_total{{kind=\"{kind}\"}} {}",
            k.watch_errors()
        )?;
    }
    writeln!(
        out,
        "# HELP openclaw_admission_cache_served Whether the API server serves the watched kind (0 for an optional API whose CRD is not installed: its objects are not judged)."
    )?;
    writeln!(out, "# TYPE openclaw_admission_cache_served gauge")?;
    for (kind, k) in cache.kinds() {
        writeln!(
            out,
            "openclaw_admission_cache_served{{kind=\"{kind}\"}} {}",
            u8::from(k.served())
        )?;
    }
    writeln!(
        out,
        "# HELP openclaw_admission_live_lookups_total Live confirmations of cache misses, by outcome (fetched, timed_out, failed)."
    )?;
    writeln!(out, "# TYPE openclaw_admission_live_lookups_total counter")?;
    for (outcome, n) in cache.lookups.outcomes() {
        writeln!(
            out,
            "openclaw_admission_live_lookups_total{{outcome=\"{outcome}\"}} {n}"
        )?;
    }
    Ok(())
}

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
        assert!(m.client_certs.lock().unwrap().len() <= MAX_CLIENT_CERTS);
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
