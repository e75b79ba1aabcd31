//! The router in process (`tower::ServiceExt::oneshot`), over AdmissionReviews shaped like
//! the ones an API server sends (tests/fixtures/reviews/), and over hostile bodies. Each
//! answer is checked against the status table in `src/server/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::engine::view::StaticView;
use openclaw_admission::server::{AppState, BODY_LIMIT, Readiness, router};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt as _;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reviews")
        .join(name)
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap()
}

/// The hardened pod's ServiceAccount and a deny-all egress NetworkPolicy.
fn view() -> StaticView {
    load_view(&[fixture_path("cluster-view.json")]).unwrap()
}

fn state(ready: bool) -> AppState<StaticView> {
    AppState::new(
        Arc::new(Policy::default()),
        Arc::new(view()),
        Readiness::new(ready),
    )
}

fn app() -> Router {
    router(state(true))
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, Bytes) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn post_bytes(app: Router, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    let (status, bytes) = send(app, req).await;
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

/// Posts a review and checks what every readable review gets: HTTP 200, a v1
/// AdmissionReview, the request's uid.
async fn review(path: &str, review: &Value) -> Value {
    let (status, answer) = post_bytes(app(), path, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "uid must be kept: {answer}"
    );
    answer["response"].clone()
}

fn message(resp: &Value) -> &str {
    resp["status"]["message"].as_str().unwrap_or("")
}

// --- captured reviews ---

#[tokio::test]
async fn refuses_unhardened_agent_pod_with_403_listing_its_violations() {
    let r = review("/validate", &fixture("pod-create-unhardened.json")).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 403);
    let msg = message(&r);
    assert!(msg.contains("run-as-non-root"), "{msg}");
    assert!(msg.contains("spec."), "violations carry their path: {msg}");
}

#[tokio::test]
async fn allows_hardened_agent_pod() {
    let r = review("/validate", &fixture("pod-create-hardened.json")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("patch").is_none());
}

#[tokio::test]
async fn allows_update_of_hardened_pod() {
    let r = review("/validate", &fixture("pod-update-hardened.json")).await;
    assert_eq!(r["allowed"], true, "{r}");
}

/// The hardened Pod with its security contexts cut to what no SCC fills in (a read-only
/// root filesystem), as OpenShift admitted it under `scc`.
fn silent_pod_admitted_under(scc: &str) -> Value {
    let mut r = fixture("pod-create-hardened.json");
    let pod = &mut r["request"]["object"];
    pod["metadata"]["annotations"] = json!({"openshift.io/scc": scc});
    pod["spec"]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    for c in pod["spec"]["containers"].as_array_mut().unwrap() {
        c["securityContext"] = json!({"readOnlyRootFilesystem": true});
    }
    r
}

#[tokio::test]
async fn on_openshift_a_pod_is_filled_in_only_as_the_scc_named_by_its_annotation() {
    let policy = Policy::from_yaml("assumeOpenShift: true\n", "policy.yaml").unwrap();
    let app = || {
        router(AppState::new(
            Arc::new(policy.clone()),
            Arc::new(view()),
            Readiness::new(true),
        ))
    };
    let answer = |scc: &'static str| {
        let app = app();
        async move {
            let body = serde_json::to_vec(&silent_pod_admitted_under(scc)).unwrap();
            let (status, a) = post_bytes(app, "/validate", body).await;
            assert_eq!(status, StatusCode::OK, "{a}");
            a["response"].clone()
        }
    };
    // restricted-v2 filled in a UID, runAsNonRoot, no escalation, drop ALL and seccomp.
    let r = answer("restricted-v2").await;
    assert_eq!(r["allowed"], true, "{r}");
    // anyuid runs the image's user, root included: judged as written.
    let r = answer("anyuid").await;
    assert_eq!(r["allowed"], false, "{r}");
    let msg = message(&r);
    for id in [
        "run-as-non-root",
        "no-privilege-escalation",
        "drop-all-capabilities",
        "seccomp-profile",
    ] {
        assert!(msg.contains(id), "{id}: {msg}");
    }
    // restricted (v1) is not in the default list, so it too is judged as written.
    let r = answer("restricted").await;
    assert!(message(&r).contains("run-as-non-root"), "{r}");
}

#[tokio::test]
async fn allows_delete_whose_object_is_null() {
    let f = fixture("pod-delete.json");
    assert!(f["request"]["object"].is_null());
    for path in ["/validate", "/mutate"] {
        let r = review(path, &f).await;
        assert_eq!(r["allowed"], true, "{path}: {r}");
        assert!(r.get("patch").is_none(), "{path}: {r}");
    }
}

#[tokio::test]
async fn dry_run_gets_the_same_answer_as_a_real_request() {
    for (name, path) in [
        ("pod-create-unhardened.json", "/validate"),
        ("pod-create-hardened.json", "/validate"),
        ("pod-create-hardened.json", "/mutate"),
    ] {
        let real = fixture(name);
        let mut dry = real.clone();
        dry["request"]["dryRun"] = json!(true);
        assert_eq!(
            review(path, &real).await,
            review(path, &dry).await,
            "{name} at {path}"
        );
    }
}

#[tokio::test]
async fn allows_configmap_without_judging_it() {
    let f = fixture("configmap-create.json");
    for path in ["/validate", "/mutate"] {
        let r = review(path, &f).await;
        assert_eq!(r["allowed"], true, "{path}: {r}");
        assert!(r.get("patch").is_none(), "{path}: {r}");
    }
}

#[tokio::test]
async fn allows_pod_that_no_agent_selector_matches_without_a_patch() {
    let f = fixture("pod-create-not-agent.json");
    for path in ["/validate", "/mutate"] {
        let r = review(path, &f).await;
        assert_eq!(r["allowed"], true, "{path}: {r}");
        assert!(r.get("patch").is_none(), "{path}: {r}");
        assert!(r.get("warnings").is_none_or(|w| w.is_null()), "{path}: {r}");
    }
}

#[tokio::test]
async fn mutate_answers_hardened_agent_pod_with_a_json_patch() {
    let r = review("/mutate", &fixture("pod-create-hardened.json")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(r["patchType"], "JSONPatch", "{r}");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap_or_else(|| panic!("{r}")))
        .unwrap();
    let ops: Vec<Value> = serde_json::from_slice(&raw).unwrap();
    assert!(!ops.is_empty());
    for op in &ops {
        assert!(
            ["add", "remove", "replace"].contains(&op["op"].as_str().unwrap_or("")),
            "{op}"
        );
        assert!(op["path"].as_str().unwrap().starts_with('/'), "{op}");
    }
    // Recorded in the one annotation the mutations share.
    assert!(
        ops.iter()
            .any(|op| op["path"].as_str().unwrap().contains("annotations")),
        "{ops:?}"
    );
}

// --- bad input ---

#[tokio::test]
async fn empty_body_is_a_400_with_a_message() {
    let (status, v) = post_bytes(app(), "/validate", Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["response"]["status"]["code"], 400);
    assert!(
        message(&v["response"]).starts_with("request body is empty"),
        "{v}"
    );
}

#[tokio::test]
async fn body_that_is_not_json_is_a_400_with_a_message() {
    let (status, v) = post_bytes(app(), "/validate", "apiVersion: admission.k8s.io/v1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&v["response"]).starts_with("request body is not a JSON AdmissionReview"),
        "{v}"
    );
    assert_eq!(v["response"]["allowed"], false);
}

#[tokio::test]
async fn wrong_api_version_or_kind_keeps_the_uid_and_refuses_with_code_400() {
    for (field, value) in [
        ("apiVersion", "admission.k8s.io/v1beta1"),
        ("kind", "TokenReview"),
    ] {
        let mut f = fixture("pod-create-hardened.json");
        f[field] = json!(value);
        let r = review("/validate", &f).await;
        assert_eq!(r["allowed"], false, "{r}");
        assert_eq!(r["status"]["code"], 400);
        assert!(message(&r).starts_with("unsupported review"), "{r}");
        assert!(message(&r).contains(value), "{r}");
    }
}

#[tokio::test]
async fn review_without_uid_is_a_400_with_a_message() {
    let mut f = fixture("pod-create-hardened.json");
    f["request"].as_object_mut().unwrap().remove("uid");
    let (status, v) = post_bytes(app(), "/validate", serde_json::to_vec(&f).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&v["response"]),
        "AdmissionReview request has no uid"
    );
}

#[tokio::test]
async fn review_without_request_is_a_400_with_a_message() {
    let (status, v) = post_bytes(
        app(),
        "/mutate",
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&v["response"]), "AdmissionReview has no request");
}

fn ten_mib() -> Vec<u8> {
    // A real review padded past the limit, so only its size is wrong.
    let mut f = fixture("pod-create-hardened.json");
    f["request"]["object"]["metadata"]["annotations"] =
        json!({ "padding": "x".repeat(10 * 1024 * 1024) });
    serde_json::to_vec(&f).unwrap()
}

#[tokio::test]
async fn ten_mib_body_is_refused_with_413_and_the_limit_named() {
    let body = ten_mib();
    assert!(body.len() > BODY_LIMIT);
    let (status, v) = post_bytes(app(), "/validate", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["response"]["status"]["code"], 413);
    assert!(
        message(&v["response"]).contains("exceeds the 6 MiB limit"),
        "{v}"
    );
}

#[tokio::test]
async fn ten_mib_body_without_content_length_is_refused_with_413() {
    let chunks: Vec<Result<Bytes, std::io::Error>> = ten_mib()
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, v) = post_bytes(app(), "/mutate", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        message(&v["response"]).contains("exceeds the 6 MiB limit"),
        "{v}"
    );
}

fn deep_array() -> String {
    format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))
}

fn deep_object() -> String {
    format!("{}{{}}{}", r#"{"f:x":"#.repeat(10_000), "}".repeat(10_000))
}

/// The hardened pod's review with the field `key` of the object at `parent` set to raw
/// JSON text.
fn with_raw(parent: &str, key: &str, raw: &str) -> (Value, String) {
    let mut f = fixture("pod-create-hardened.json");
    f.pointer_mut(parent).unwrap()[key] = json!("PLACEHOLDER");
    let body = serde_json::to_string(&f)
        .unwrap()
        .replace(r#""PLACEHOLDER""#, raw);
    (f, body)
}

#[tokio::test]
async fn body_nested_ten_thousand_deep_is_a_400_with_a_message() {
    let (status, v) = post_bytes(app(), "/validate", deep_array()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        message(&v["response"]).starts_with("request body is not a JSON AdmissionReview"),
        "{v}"
    );
}

#[tokio::test]
async fn managed_fields_nested_ten_thousand_deep_are_skipped_and_the_pod_judged() {
    // managedFields[].fieldsV1 is free-form JSON; the engine skips managedFields without
    // building anything, so depth there costs a scan and no recursion.
    let (f, body) = with_raw(
        "/request/object/metadata/managedFields/0",
        "fieldsV1",
        &deep_object(),
    );
    let (status, v) = post_bytes(app(), "/validate", body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["uid"], f["request"]["uid"]);
    // The hardened fixture: judged (the mode annotation is only set on judged pods) and allowed.
    assert_eq!(
        v["response"]["allowed"], true,
        "judged, not a parse error: {v}"
    );
    assert_eq!(
        v["response"]["auditAnnotations"]["openclaw-mode"], "enforce",
        "{v}"
    );
}

#[tokio::test]
async fn unknown_field_nested_ten_thousand_deep_is_skipped_and_the_pod_judged() {
    let (f, body) = with_raw("/request/object/spec", "x-unknown", &deep_object());
    let (status, v) = post_bytes(app(), "/validate", body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["uid"], f["request"]["uid"]);
    assert_eq!(v["response"]["allowed"], true, "{v}");
}

#[tokio::test]
async fn pod_object_nested_ten_thousand_deep_is_answered_with_its_uid() {
    let (f, body) = with_raw("/request", "object", &deep_array());
    let (status, v) = post_bytes(app(), "/validate", body).await;
    // The object is kept raw in the envelope and then fails its Pod schema: the uid is read,
    // so the answer is a review that refuses.
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["uid"], f["request"]["uid"]);
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["status"]["code"], 400);
    assert!(
        message(&v["response"]).starts_with("cannot read the Pod in request.object"),
        "{v}"
    );
}

#[tokio::test]
async fn pod_with_five_thousand_containers_is_answered() {
    let mut f = fixture("pod-create-unhardened.json");
    let one = f["request"]["object"]["spec"]["containers"][0].clone();
    let many: Vec<Value> = (0..5000)
        .map(|i| {
            let mut c = one.clone();
            c["name"] = json!(format!("c{i}"));
            c
        })
        .collect();
    f["request"]["object"]["spec"]["containers"] = json!(many);
    let r = review("/validate", &f).await;
    assert_eq!(
        r["allowed"], false,
        "the unhardened containers are still judged"
    );
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.len() < 64 * 1024 && message.contains("more (`openclaw-admission check`"),
        "the denial lists the first violations and counts the rest ({} bytes)",
        message.len()
    );
    let r = review("/mutate", &f).await;
    assert_eq!(r["allowed"], true);
}

// --- probes and metrics ---

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_the_readiness_flag() {
    let st = state(false);
    let app = router(st.clone());
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(
        send(app.clone(), get("/healthz")).await,
        (StatusCode::OK, Bytes::from("ok"))
    );
    assert_eq!(
        send(app.clone(), get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    st.readiness.set(true);
    assert_eq!(
        send(app, get("/readyz")).await,
        (StatusCode::OK, Bytes::from("ready"))
    );
}

#[tokio::test]
async fn metrics_count_reviews_by_kind_operation_and_result_and_violations_by_check() {
    let st = state(true);
    let app = router(st.clone());
    let body = |n: &str| serde_json::to_vec(&fixture(n)).unwrap();
    post_bytes(app.clone(), "/validate", body("pod-create-unhardened.json")).await;
    post_bytes(app.clone(), "/validate", body("configmap-create.json")).await;
    post_bytes(app.clone(), "/mutate", body("pod-create-hardened.json")).await;
    let (status, text) = send(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(text.to_vec()).unwrap();
    for line in [
        r#"openclaw_admission_reviews_total{endpoint="validate",kind="Pod",operation="CREATE",result="denied"} 1"#,
        r#"openclaw_admission_reviews_total{endpoint="validate",kind="ConfigMap",operation="CREATE",result="skipped"} 1"#,
        r#"openclaw_admission_reviews_total{endpoint="mutate",kind="Pod",operation="CREATE",result="allowed"} 1"#,
        r#"openclaw_admission_violations_total{check="run-as-non-root"} 1"#,
        r#"openclaw_admission_review_duration_seconds_count{endpoint="validate"} 2"#,
        r#"openclaw_admission_review_duration_seconds_count{endpoint="mutate"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn get_on_a_review_endpoint_is_405() {
    let (status, _) = send(
        app(),
        Request::get("/validate").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_is_cut_after_the_body_read_deadline() {
    // A byte a second, never the last: within the idle deadline each time, so only the
    // whole-body deadline ends it. The clock is paused: deadlines pass without waiting.
    let trickle = futures::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), n + 1))
    });
    let req = Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "100000")
        .body(Body::from_stream(trickle))
        .unwrap();
    let answered = tokio::time::timeout(
        openclaw_admission::server::BODY_READ_TIMEOUT * 6,
        send(app(), req),
    )
    .await
    .expect("the review must be answered, not held open");
    assert_eq!(answered.0, StatusCode::REQUEST_TIMEOUT);
    let v: Value = serde_json::from_slice(&answered.1).unwrap();
    assert!(
        message(&v["response"]).contains("not complete within 10 s"),
        "{v}"
    );
}

/// A body of `first` (bytes sent at once), then nothing ever again.
fn stalled_after(first: usize, declared: usize) -> Request<Body> {
    use futures::StreamExt as _;
    let chunks: Vec<Result<Bytes, std::io::Error>> = if first == 0 {
        Vec::new()
    } else {
        vec![Ok(Bytes::from(vec![b' '; first]))]
    };
    Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, declared.to_string())
        .body(Body::from_stream(
            futures::stream::iter(chunks).chain(futures::stream::pending()),
        ))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_body_whose_first_byte_never_comes_is_cut_after_the_idle_deadline() {
    let answered = tokio::time::timeout(
        openclaw_admission::server::BODY_READ_TIMEOUT,
        send(app(), stalled_after(0, 6 * 1024 * 1024)),
    )
    .await
    .expect("the review must be answered, not held open");
    assert_eq!(answered.0, StatusCode::REQUEST_TIMEOUT);
    let v: Value = serde_json::from_slice(&answered.1).unwrap();
    assert!(
        message(&v["response"]).contains("no request body bytes for 2000 ms"),
        "{v}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_midway_is_cut_after_the_idle_deadline() {
    let answered = tokio::time::timeout(
        openclaw_admission::server::BODY_READ_TIMEOUT,
        send(app(), stalled_after(5 * 1024 * 1024, 6 * 1024 * 1024)),
    )
    .await
    .expect("the review must be answered, not held open");
    assert_eq!(answered.0, StatusCode::REQUEST_TIMEOUT);
    let v: Value = serde_json::from_slice(&answered.1).unwrap();
    assert!(
        message(&v["response"]).contains("no request body bytes"),
        "{v}"
    );
}

/// State whose bodies may stall for an hour: the holders below keep what they hold while
/// the test asks the next question.
fn patient_state() -> AppState<StaticView> {
    let mut st = state(true);
    st.body_idle_timeout = std::time::Duration::from_secs(3600);
    st
}

#[tokio::test]
async fn declared_lengths_reserve_nothing_and_bytes_count_as_they_arrive() {
    // A budget of 3 MiB.
    let mut st = patient_state();
    st.body_budget = openclaw_admission::server::body_budget(3 * 1024 * 1024);
    let app = router(st);
    // Fifty requests declaring 6 MiB each and sending nothing hold no memory: a 2 MiB body
    // (beyond the small-review allowance, so drawn from the budget) is still judged.
    let mut holders = Vec::new();
    for _ in 0..50 {
        holders.push(tokio::spawn(
            app.clone().oneshot(stalled_after(0, BODY_LIMIT)),
        ));
    }
    tokio::task::yield_now().await;
    let big = grown_review(2 * 1024 * 1024);
    let (status, v) = post_bytes(app.clone(), "/validate", big.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // One request that has sent 2.5 MiB and stalls holds that much: now a second 2 MiB body
    // does not fit and is answered 503 at once, not queued...
    holders.push(tokio::spawn(
        app.clone().oneshot(stalled_after(2560 * 1024, BODY_LIMIT)),
    ));
    let mut refused = None;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let (status, v) = post_bytes(app.clone(), "/validate", big.clone()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(v);
            break;
        }
    }
    let v = refused.expect("a 2 MiB body beside a stalled 2.5 MiB one must be refused");
    assert!(
        message(&v["response"]).contains("request-body memory"),
        "{v}"
    );
    // ...while a small review never touches the budget and is judged.
    let hardened = fixture("pod-create-hardened.json").to_string();
    assert!(hardened.len() < openclaw_admission::server::SMALL_REVIEW);
    let (status, v) = post_bytes(app.clone(), "/validate", hardened).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Once the stalled body is gone, its bytes are free again.
    for h in &holders {
        h.abort();
    }
    for h in holders {
        let _ = h.await;
    }
    let (status, v) = post_bytes(app, "/validate", big).await;
    assert_eq!(status, StatusCode::OK, "the budget was not given back: {v}");
}

#[tokio::test]
async fn one_connection_holds_at_most_its_share_of_body_memory() {
    use openclaw_admission::server::Connection;
    let app = router(patient_state());
    let conn = Connection::new(false);
    let on = |mut req: Request<Body>, c: &Connection| {
        req.extensions_mut().insert(c.clone());
        req
    };
    // One stream of the connection has sent 5 MiB and stalls.
    let holder = tokio::spawn(
        app.clone()
            .oneshot(on(stalled_after(5 * 1024 * 1024, BODY_LIMIT), &conn)),
    );
    let big = grown_review(2 * 1024 * 1024);
    let post_on = |c: &Connection, body: String| {
        on(
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
            c,
        )
    };
    let mut refused = None;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let (status, bytes) = send(app.clone(), post_on(&conn, big.clone())).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(serde_json::from_slice::<Value>(&bytes).unwrap());
            break;
        }
    }
    let v = refused.expect("a second 2 MiB body on the same connection must be refused");
    assert!(
        message(&v["response"]).contains("on this connection"),
        "{v}"
    );
    // Another connection's 2 MiB body fits in the shared budget, and a small review on the
    // same connection needs no share at all.
    let (status, bytes) = send(app.clone(), post_on(&Connection::new(false), big)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let hardened = fixture("pod-create-hardened.json").to_string();
    let (status, bytes) = send(app, post_on(&conn, hardened)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    holder.abort();
}

#[tokio::test]
async fn bodies_past_the_small_allowance_are_read_only_a_few_at_once() {
    let mut st = patient_state();
    st.large_bodies = Arc::new(tokio::sync::Semaphore::new(1));
    let app = router(st);
    // One body stalled at 100 KiB takes the only large-body slot...
    let holder = tokio::spawn(app.clone().oneshot(stalled_after(100 * 1024, BODY_LIMIT)));
    let big = grown_review(200 * 1024);
    let mut refused = None;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let (status, v) = post_bytes(app.clone(), "/validate", big.clone()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(v);
            break;
        }
    }
    let v = refused.expect("a second body past 64 KiB must be refused while the slot is taken");
    assert!(
        message(&v["response"]).contains("request-body memory"),
        "{v}"
    );
    // ...and a small review needs none.
    let hardened = fixture("pod-create-hardened.json").to_string();
    let (status, v) = post_bytes(app.clone(), "/validate", hardened).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    holder.abort();
    let _ = holder.await;
    let (status, v) = post_bytes(app, "/validate", big).await;
    assert_eq!(status, StatusCode::OK, "the slot was not given back: {v}");
}

/// The hardened pod's review grown to `size` bytes with one annotation.
fn grown_review(size: usize) -> String {
    let mut v = fixture("pod-create-hardened.json");
    let base = serde_json::to_vec(&v).unwrap().len();
    v["request"]["object"]["metadata"]["annotations"]["filler"] =
        "x".repeat(size - base - r#","filler":"""#.len()).into();
    serde_json::to_string(&v).unwrap()
}

#[tokio::test]
async fn reviews_beyond_the_in_flight_cap_are_answered_at_once_not_queued() {
    // One slot: a review whose body stalls holds it.
    let mut st = patient_state();
    st.max_reviews = 1;
    let app = router(st);
    let holder = tokio::spawn(app.clone().oneshot(stalled_after(1, 100)));
    let hardened = fixture("pod-create-hardened.json").to_string();
    let mut refused = None;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let (status, v) = post_bytes(app.clone(), "/validate", hardened.clone()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(v);
            break;
        }
    }
    let v = refused.expect("the excess must be answered 503 at once, not queued");
    assert!(message(&v["response"]).contains("retry"), "{v}");
    // The slot comes back when the stalled review ends; probes never took one.
    let (status, _) = send(
        app.clone(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    holder.abort();
    let _ = holder.await;
    let (status, v) = post_bytes(app, "/validate", hardened).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn with_client_auth_a_review_without_a_verified_certificate_is_refused_before_its_body() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut st = state(true);
    st.require_client_cert = true;
    let app = router(st);
    let read = Arc::new(AtomicBool::new(false));
    let body = || {
        let flag = read.clone();
        Body::from_stream(futures::stream::once(async move {
            flag.store(true, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(fixture("pod-create-hardened.json").to_string()))
        }))
    };
    for verified in [None, Some(false)] {
        let mut req = Request::post("/validate")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body())
            .unwrap();
        if let Some(v) = verified {
            req.extensions_mut()
                .insert(openclaw_admission::server::Connection::new(v));
        }
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()[header::CONNECTION], "close");
        let v: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert!(message(&v["response"]).contains("client CA"), "{v}");
    }
    assert!(!read.load(Ordering::SeqCst), "the body was read");
    // Probes and metrics answer anyone; a verified connection's review is judged.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = send(app.clone(), Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let mut req = Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(fixture("pod-create-hardened.json").to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(openclaw_admission::server::Connection::new(true));
    let (status, bytes) = send(app, req).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}
