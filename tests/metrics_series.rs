//! The series `/metrics` exposes after a fixed set of requests and events, by name and label
//! set (values left out: they hold timings), against tests/fixtures/metrics/series.txt. The
//! fixture was captured from the hand-written exposition before the metrics moved onto
//! `prometheus-client`; the move must not rename a metric, drop or add a label, or change a
//! family's type, since the chart's alerts, dashboards and users' queries match on them.
//!
//! Counter families are compared under their `_total` name whatever the `# TYPE` line says
//! (OpenMetrics writes it without the suffix, the Prometheus text format with it), and `le`
//! values as numbers (`1` and `1.0` are the same bucket bound).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use openclaw_admission::admission::{Endpoint, Summary};
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::cluster::stats::CacheStats;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::server::metrics::HandshakeRefusal;
use openclaw_admission::server::{AppState, BODY_LIMIT, Readiness, router};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt as _;

fn path(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

async fn send(app: axum::Router, req: Request<Body>) -> (StatusCode, Bytes) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn post(app: &axum::Router, endpoint: &str, body: Vec<u8>) -> StatusCode {
    let req = Request::post(endpoint)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    send(app.clone(), req).await.0
}

fn review(name: &str) -> Vec<u8> {
    std::fs::read(path("tests/fixtures/reviews").join(name)).unwrap()
}

/// Splits a sample line into its metric name and its labels, values unescaped.
fn parse_sample(line: &str) -> (String, Vec<(String, String)>) {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    if line[name_end..].starts_with('{') {
        let mut rest = &line[name_end + 1..];
        loop {
            rest = rest.trim_start_matches(',');
            if rest.starts_with('}') {
                break;
            }
            let eq = rest
                .find("=\"")
                .unwrap_or_else(|| panic!("no value in {line}"));
            let key = rest[..eq].to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let end = loop {
                let (i, c) = chars
                    .next()
                    .unwrap_or_else(|| panic!("open value in {line}"));
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape in {line}"),
                    },
                    '"' => break eq + 2 + i + 1,
                    c => value.push(c),
                }
            };
            if key == "le" {
                let bound: f64 = if value == "+Inf" {
                    f64::INFINITY
                } else {
                    value.parse().unwrap()
                };
                value = format!("{bound:?}");
            }
            labels.push((key, value));
            rest = &rest[end..];
        }
    }
    labels.sort();
    (name, labels)
}

/// `TYPE <family> <type>` lines and `<name>{<labels sorted>}` lines, sorted.
fn series(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (family, kind) = t.split_once(' ').unwrap();
            let family = if kind == "counter" && !family.ends_with("_total") {
                format!("{family}_total")
            } else {
                family.to_string()
            };
            out.insert(format!("TYPE {family} {kind}"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, labels) = parse_sample(line);
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        out.insert(format!("{name}{{{}}}", labels.join(",")));
    }
    out
}

/// Every kind of request the router answers and every event the server records outside a
/// review, then the `/metrics` text.
async fn metrics_after_the_same_requests() -> String {
    let view = load_view(&[path("tests/fixtures/reviews/cluster-view.json")]).unwrap();
    let st = AppState::new(
        Arc::new(Policy::default()),
        Arc::new(view),
        Readiness::new(true),
    );
    let app = router(st.clone());
    for (endpoint, name) in [
        ("/validate", "pod-create-unhardened.json"),
        ("/validate", "pod-create-hardened.json"),
        ("/validate", "configmap-create.json"),
        ("/validate", "pod-delete.json"),
        ("/validate", "pod-update-hardened.json"),
        ("/mutate", "pod-create-hardened.json"),
        ("/mutate", "pod-create-not-agent.json"),
    ] {
        assert_eq!(post(&app, endpoint, review(name)).await, StatusCode::OK);
    }
    // A body that is not a review, and one past the size limit.
    assert_eq!(
        post(&app, "/validate", b"{\"apiVersion\":1}".to_vec()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&app, "/validate", vec![b' '; BODY_LIMIT + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // What the TLS listener, the reloaders, the span exporter and the live view record.
    let m = &st.metrics;
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    m.observe_connection(true);
    m.observe_connection(false);
    m.observe_handshake_refused(HandshakeRefusal::Timeout);
    m.observe_unauthenticated_review();
    m.observe_client_certificate("CN=kube-apiserver", now + 86400);
    m.set_certificate_not_after(now + 30 * 86400);
    m.certificate_reloaded(true);
    m.policy_reloaded(false);
    m.spans_exported(3);
    m.span_dropped_queue_full();
    m.spans_export_failed(2);
    let approved = Summary {
        kind: "Deployment".into(),
        operation: "UPDATE".into(),
        result: "allowed",
        mode: Some("enforce"),
        approvals: vec![("current", String::new()), ("stamped", String::new())],
        ..Default::default()
    };
    m.observe_review(Endpoint::Validate, &approved, Duration::from_micros(50));
    m.watch_cache(Arc::new(CacheStats::new(&["Namespace", "NetworkPolicy"])));

    let (status, text) = send(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(text.to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_keep_their_names_label_sets_and_types() {
    let text = metrics_after_the_same_requests().await;
    let got = series(&text);
    let fixture = path("tests/fixtures/metrics/series.txt");
    let want: BTreeSet<String> = std::fs::read_to_string(&fixture)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "series differ from {}\nmissing: {missing:#?}\nextra: {extra:#?}\nall series now:\n{}",
        fixture.display(),
        got.iter().cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_series_parser_reads_escapes_and_bucket_bounds() {
    let (name, labels) = parse_sample(r#"a_bucket{kind="Po\"d\n",le="1.0"} 3"#);
    assert_eq!(name, "a_bucket");
    assert_eq!(
        labels,
        vec![
            ("kind".to_string(), "Po\"d\n".to_string()),
            ("le".to_string(), "1.0".to_string())
        ]
    );
    assert_eq!(parse_sample(r#"a_bucket{le="1"} 3"#).1[0].1, "1.0");
    assert_eq!(parse_sample("up 1").1, vec![]);
    let s = series("# TYPE x counter\nx_total 1\n# TYPE y_total counter\n");
    assert!(s.contains("TYPE x_total counter") && s.contains("TYPE y_total counter"));
}
