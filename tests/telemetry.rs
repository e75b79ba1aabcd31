//! Decision spans against a local OTLP receiver (tests/common/otlp.rs): one span per review
//! with the decision's attributes, the API server's trace joined, no secret value in the
//! exported bytes, and a collector that is down or slow costing spans (counted), never
//! answers. The same spans against a real MLflow are in tests/mlflow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/otlp.rs"]
mod otlp;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::policy::{Policy, TelemetrySettings};
use openclaw_admission::engine::view::StaticView;
use openclaw_admission::server::telemetry::Telemetry;
use openclaw_admission::server::{AppState, Readiness, router};
use otlp::Receiver;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

const PLANTED_ENV: &str = "sk-planted-env-value-7f3a9c";
const PLANTED_ANNOTATION: &str = "planted-annotation-value-51e0";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reviews")
        .join(name)
}

/// A fixture review with a known secret in every container's env and in an annotation.
fn planted(name: &str, uid: &str) -> Value {
    let mut v: Value = serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap();
    v["request"]["uid"] = json!(uid);
    let obj = &mut v["request"]["object"];
    obj["metadata"]["annotations"]["example.com/note"] = json!(PLANTED_ANNOTATION);
    for c in obj["spec"]["containers"].as_array_mut().unwrap() {
        let env = c["env"].as_array_mut().unwrap();
        env.push(json!({"name": "OPENAI_API_KEY", "value": PLANTED_ENV}));
    }
    v
}

fn state_exporting(settings: TelemetrySettings) -> AppState<StaticView> {
    let policy = Policy {
        telemetry: settings,
        ..Default::default()
    };
    let view = load_view(&[fixture_path("cluster-view.json")]).unwrap();
    let mut st = AppState::new(Arc::new(policy), Arc::new(view), Readiness::new(true));
    st.telemetry =
        Arc::new(Telemetry::start(&st.policy.get().telemetry, st.metrics.clone()).unwrap());
    st
}

async fn post(
    st: &AppState<StaticView>,
    path: &str,
    review: &Value,
    traceparent: Option<&str>,
) -> Value {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let req = req
        .body(Body::from(serde_json::to_vec(review).unwrap()))
        .unwrap();
    let resp = router(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    answer["response"].clone()
}

/// Flushes and stops the export (it waits on the export thread, so off the async workers).
async fn flush(st: &AppState<StaticView>) {
    let t = st.telemetry.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_review_becomes_one_span_carrying_the_decision_and_no_secret_value() {
    let rx = Receiver::start(Duration::ZERO).await;
    let st = state_exporting(TelemetrySettings {
        endpoint: rx.traces_url(),
        headers: BTreeMap::from([("x-mlflow-experiment-id".into(), "42".into())]),
        ..Default::default()
    });

    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    let denied = post(
        &st,
        "/validate",
        &planted("pod-create-unhardened.json", "uid-denied"),
        Some(&traceparent),
    )
    .await;
    assert_eq!(denied["allowed"], false);
    // The API server did not sample its trace: the decision is recorded all the same.
    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN}-00");
    post(
        &st,
        "/validate",
        &planted("pod-create-unhardened.json", "uid-unsampled"),
        Some(&unsampled),
    )
    .await;
    let mutated = post(
        &st,
        "/mutate",
        &planted("pod-create-hardened.json", "uid-mutated"),
        None,
    )
    .await;
    assert_eq!(mutated["allowed"], true);
    assert!(mutated["patch"].is_string(), "{mutated}");
    flush(&st).await;

    let spans = rx.spans();
    assert_eq!(spans.len(), 3, "one span per review");
    let by_uid = |uid: &str| {
        spans
            .iter()
            .find(|(_, s)| otlp::attrs(&s.attributes)["openclaw.review.uid"] == uid)
            .unwrap_or_else(|| panic!("no span for {uid}"))
    };

    let (resource, span) = by_uid("uid-denied");
    let a = otlp::attrs(&span.attributes);
    assert_eq!(resource["service.name"], "openclaw-admission");
    assert_eq!(span.name, "admission validate");
    assert_eq!(a["openclaw.decision"], "denied");
    assert_eq!(a["openclaw.mode"], "enforce");
    assert_eq!(a["openclaw.review.kind"], "Pod");
    assert_eq!(a["openclaw.review.operation"], "CREATE");
    assert_eq!(a["k8s.namespace.name"], "agents");
    assert!(
        a["openclaw.review.user"].starts_with("system:serviceaccount:"),
        "{a:?}"
    );
    assert!(
        a["openclaw.violations"].contains("run-as-non-root"),
        "{a:?}"
    );
    assert!(a["openclaw.violation_tiers"].contains("high"), "{a:?}");
    assert_eq!(
        a["openclaw.violations"].split(',').count(),
        a["openclaw.violation_tiers"].split(',').count(),
        "one tier per violation: {a:?}"
    );
    // Joined the API server's trace, as a child of its span.
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);

    let (_, span) = by_uid("uid-mutated");
    let a = otlp::attrs(&span.attributes);
    assert_eq!(span.name, "admission mutate");
    assert_eq!(a["openclaw.decision"], "allowed");
    assert_eq!(a["openclaw.mutated"], "true");
    assert_eq!(a["openclaw.agent.service_account"], "openclaw-agent");
    assert!(a["openclaw.injected"].contains("otel-env"), "{a:?}");
    // No traceparent: a trace of its own.
    assert!(span.parent_span_id.is_empty());
    assert_ne!(hex(&span.trace_id), TRACE_ID);

    let headers = rx.headers();
    assert!(headers.iter().all(|h| h["x-mlflow-experiment-id"] == "42"));
    assert!(
        headers
            .iter()
            .all(|h| h[header::CONTENT_TYPE] == "application/x-protobuf")
    );

    let raw = rx.raw();
    for secret in [
        PLANTED_ENV,
        PLANTED_ANNOTATION,
        "replace-me-with-a-long-random-string",
    ] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} reached the exported spans"
        );
    }
    let (_, span) = by_uid("uid-unsampled");
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(st.metrics.spans_exported_total(), 3);
    assert_eq!(st.metrics.spans_dropped_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_spans_counted_never_an_answer() {
    // A port that was free a moment ago: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", closed.local_addr().unwrap());
    drop(closed);
    let st = state_exporting(TelemetrySettings {
        endpoint: url,
        ..Default::default()
    });
    let review = planted("pod-create-unhardened.json", "uid-down");
    for _ in 0..20 {
        let answer = post(&st, "/validate", &review, None).await;
        assert_eq!(answer["allowed"], false);
    }
    flush(&st).await;
    assert_eq!(st.metrics.spans_exported_total(), 0);
    assert_eq!(st.metrics.spans_dropped_total(), 20);
    let text = st.metrics.render();
    assert!(
        text.contains(r#"openclaw_admission_spans_dropped_total{reason="export_failed"} 20"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_collector_fills_the_bounded_queue_and_the_drops_are_counted() {
    let rx = Receiver::start(Duration::from_millis(700)).await;
    let st = state_exporting(TelemetrySettings {
        endpoint: rx.traces_url(),
        max_queue_size: 4,
        ..Default::default()
    });
    let review = planted("pod-create-hardened.json", "uid-slow");
    for _ in 0..60 {
        let answer = post(&st, "/mutate", &review, None).await;
        assert_eq!(answer["allowed"], true);
    }
    flush(&st).await;
    let text = st.metrics.render();
    let queue_full: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"openclaw_admission_spans_dropped_total{reason="queue_full"} "#)
        })
        .unwrap()
        .parse()
        .unwrap();
    // At most the queue (4) plus what was already handed to the exporter got through.
    assert!(queue_full >= 60 - 8, "{text}");
    assert_eq!(
        st.metrics.spans_exported_total() + st.metrics.spans_dropped_total(),
        60,
        "every span is exported or counted as dropped: {text}"
    );
    assert_eq!(rx.spans().len() as u64, st.metrics.spans_exported_total());
}

/// Log lines captured for one test: the JSON line format `serve` writes, into memory.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'w self) -> CapturedLog {
        self.clone()
    }
}

/// Door 5 of issue 24: an exec command carrying credentials (a bearer header, a key after a
/// flag, a URL password) leaves the webhook only redacted. The audit annotation says
/// `<redacted: ...>` in their place; the log line and the span carry no command at all.
/// On a current-thread runtime, so the captured subscriber sees every event of the request.
#[tokio::test]
async fn credentials_in_an_exec_command_reach_no_log_line_span_or_annotation() {
    const BEARER: &str = "PLANTEDbearerT0kenValue9f8e7d";
    const KEY: &str = "sk-ant-api03-PLANTEDkeyVALUE0123456789";
    const PASSWORD: &str = "PLANTEDhunter2pw";
    let log = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(log.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rx = Receiver::start(Duration::ZERO).await;
    let st = state_exporting(TelemetrySettings {
        endpoint: rx.traces_url(),
        ..Default::default()
    });
    let exec = |uid: &str, user: &str, groups: &[&str]| {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "subResource": "exec", "namespace": "agents", "name": "agent-0",
                "operation": "CONNECT",
                "userInfo": {"username": user, "groups": groups},
                "object": {"apiVersion": "v1", "kind": "PodExecOptions", "container": "agent",
                    "command": ["curl", "-H", format!("Authorization: Bearer {BEARER}"),
                        "--api-key", KEY, format!("https://admin:{PASSWORD}@db.internal/")]},
                "oldObject": null, "dryRun": false
            }
        })
    };
    let approver = post(
        &st,
        "/validate",
        &exec("uid-exec-approver", "bob", &["openclaw:approvers"]),
        None,
    )
    .await;
    assert_eq!(approver["allowed"], true);
    let tenant = post(
        &st,
        "/validate",
        &exec("uid-exec-tenant", "mallory", &["system:authenticated"]),
        None,
    )
    .await;
    assert_eq!(tenant["allowed"], false);
    flush(&st).await;

    let record = approver["auditAnnotations"]["validate.openclaw.io/openclaw-exec"]
        .as_str()
        .or_else(|| approver["auditAnnotations"]["openclaw-exec"].as_str())
        .unwrap_or_else(|| panic!("no exec record: {approver}"))
        .to_string();
    assert_eq!(record.matches("<redacted: ").count(), 3, "{record}");
    assert!(record.starts_with("exec by bob"), "{record}");

    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("uid-exec-approver") && logged.contains("uid-exec-tenant"),
        "both reviews must be logged for the absence below to mean anything: {logged}"
    );
    assert_eq!(rx.spans().len(), 2, "one span per review");
    let raw = rx.raw();
    for secret in [BEARER, KEY, PASSWORD] {
        assert!(!logged.contains(secret), "{secret} in the log: {logged}");
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} reached the exported spans"
        );
        for answer in [&approver, &tenant] {
            assert!(
                !answer.to_string().contains(secret),
                "{secret} in an answer: {answer}"
            );
        }
    }
}
