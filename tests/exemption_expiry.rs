//! Exemptions that expire, judged the same way by the three entry points: one table of cases
//! runs through the webhook's router in process (`serve`), the built binary (`check`) and
//! `audit`'s judging (the code `audit` runs on what it listed). Each case is a policy
//! exemption of `read-only-root-filesystem` with or without an `expires`, over a pod whose
//! only violation is that check; expiries are set around this machine's clock, a day away,
//! so that no case sits near its boundary (the boundary itself is the engine's unit test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use openclaw_admission::cli::audit::judge_at;
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::approval::grant::{APPROVAL_ANNOTATION, Grant};
use openclaw_admission::engine::date::format_utc;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::server::{AppState, Readiness, router};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tower::ServiceExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
const CHECK: &str = "read-only-root-filesystem";
const DAY: i64 = 86_400;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reviews")
        .join(name)
}

fn now() -> i64 {
    openclaw_admission::admission::unix_now()
}

/// The hardened agent pod of the fixtures, named, with a writable root filesystem: its one
/// violation is `read-only-root-filesystem`.
fn review() -> Value {
    let mut review: Value =
        serde_json::from_slice(&std::fs::read(fixture_path("pod-create-hardened.json")).unwrap())
            .unwrap();
    let pod = &mut review["request"]["object"];
    let meta = pod["metadata"].as_object_mut().unwrap();
    meta.remove("generateName");
    meta.remove("ownerReferences");
    meta.remove("managedFields");
    meta.insert("name".into(), json!("agent"));
    pod["spec"]["containers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("readOnlyRootFilesystem");
    review["request"]["name"] = json!("agent");
    review
}

/// One case: the exemption's `expires` (none: no key), and whether it is honoured.
struct Case {
    name: &'static str,
    expires: Option<String>,
    honoured: bool,
}

fn cases() -> Vec<Case> {
    let now = now();
    vec![
        Case {
            name: "no expiry",
            expires: None,
            honoured: true,
        },
        Case {
            name: "a date and time tomorrow",
            expires: Some(format_utc(now + DAY)),
            honoured: true,
        },
        Case {
            name: "a date and time yesterday",
            expires: Some(format_utc(now - DAY)),
            honoured: false,
        },
        Case {
            name: "a date long past",
            expires: Some("2020-01-31".into()),
            honoured: false,
        },
        Case {
            name: "a date far ahead",
            expires: Some("2999-12-31".into()),
            honoured: true,
        },
    ]
}

/// The checks the fixture pod does not satisfy besides [`CHECK`] (it sets no CPU limit and
/// runs under the node's runtime and user namespace), left out so that [`CHECK`] is its one
/// violation.
const OTHER_FINDINGS: &str =
    "disabledChecks: [resource-limits, sandboxed-runtime, user-namespace]\n";

fn bare_policy_yaml() -> String {
    OTHER_FINDINGS.to_string()
}

fn policy_yaml(expires: Option<&str>) -> String {
    let mut y = format!(
        "{OTHER_FINDINGS}exemptions:\n- reason: legacy image writes to /\n  namespaces: [agents]\n  checks: [{CHECK}]\n"
    );
    if let Some(e) = expires {
        y.push_str(&format!("  expires: \"{e}\"\n"));
    }
    y
}

/// What one entry point made of the pod: admitted or not, the checks it still found, and
/// whether it said that an exemption had expired.
#[derive(Debug, PartialEq)]
struct Verdict {
    allowed: bool,
    checks: Vec<String>,
    said_expired: bool,
}

fn expected(honoured: bool) -> Verdict {
    Verdict {
        allowed: honoured,
        checks: if honoured {
            vec![]
        } else {
            vec![CHECK.to_string()]
        },
        said_expired: !honoured,
    }
}

/// `serve`: the router in process; also returns the expired-exemption counter after it.
async fn serve(policy: &Policy, review: &Value) -> (Verdict, u64) {
    let app = router(AppState::new(
        Arc::new(policy.clone()),
        Arc::new(load_view(&[fixture_path("cluster-view.json")]).unwrap()),
        Readiness::new(true),
    ));
    let req = Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(review).unwrap()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let r = &answer["response"];
    let annotations = r["auditAnnotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut checks: Vec<String> = annotations
        .get("openclaw-violations")
        .and_then(Value::as_str)
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.split(['@', ' ', ':']).next())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    checks.sort();
    checks.dedup();
    let said_expired = annotations.contains_key("openclaw-exemption-expired");
    if said_expired {
        let text = annotations["openclaw-exemption-expired"].as_str().unwrap();
        assert!(
            text.contains("exemptions[0]") && text.contains(CHECK),
            "{text}"
        );
    }
    let metrics = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        metrics
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix("openclaw_admission_exemptions_expired_total "))
        .unwrap_or_else(|| panic!("no exemptions_expired_total in /metrics:\n{text}"))
        .parse()
        .unwrap();
    (
        Verdict {
            allowed: r["allowed"].as_bool().unwrap(),
            checks,
            said_expired,
        },
        counted,
    )
}

/// `check`: the built binary over the pod and the cluster view in a directory.
fn check(dir: &Path, policy_file: &Path, review: &Value) -> Verdict {
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(
        inputs.join("pod.json"),
        serde_json::to_vec(&review["request"]["object"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(fixture_path("cluster-view.json"), inputs.join("view.json")).unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .arg("-f")
        .arg(&inputs)
        .arg("--policy")
        .arg(policy_file)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {stdout}\n{stderr}"));
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{stdout}");
    let o = &objects[0];
    let mut checks: Vec<String> = o["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["check"].as_str().unwrap().to_string())
        .collect();
    checks.sort();
    checks.dedup();
    let warned = stderr.matches("exemptions[0]").count();
    assert!(warned <= 1, "said more than once: {stderr}");
    let listed = o.get("expired_exemptions").is_some();
    assert_eq!(
        listed,
        warned == 1,
        "stdout and stderr disagree: {stdout}\n{stderr}"
    );
    let allowed = o["allowed"].as_bool().unwrap();
    // The exit code follows what enforce refuses.
    assert_eq!(
        out.status.code(),
        Some(if allowed { 0 } else { 1 }),
        "{stderr}"
    );
    Verdict {
        allowed,
        checks,
        said_expired: listed,
    }
}

/// `audit`: the judging `audit` runs on the objects it listed, at this moment.
fn audit(policy: &Policy, review: &Value) -> Verdict {
    let view = load_view(&[fixture_path("cluster-view.json")]).unwrap();
    let subjects = vec![("Pod", "v1".to_string(), review["request"]["object"].clone())];
    let report = judge_at(policy, &view, &subjects, now(), None);
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    let mut checks: Vec<String> = f
        .violations
        .iter()
        .map(|j| j.violation.check.to_string())
        .collect();
    checks.sort();
    checks.dedup();
    Verdict {
        allowed: !f.refused_now,
        checks,
        said_expired: !report.expired_exemptions.is_empty(),
    }
}

#[tokio::test]
async fn an_expired_exemption_is_ignored_alike_by_serve_check_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let review = review();
    // The premise: without an exemption, the pod's one violation is the exempted check, and
    // it is refused.
    let bare_file = dir.path().join("bare.yaml");
    std::fs::write(&bare_file, bare_policy_yaml()).unwrap();
    let bare = Policy::from_file(&bare_file).unwrap();
    let (v, _) = serve(&bare, &review).await;
    assert_eq!(
        v,
        Verdict {
            allowed: false,
            checks: vec![CHECK.into()],
            said_expired: false
        }
    );
    for case in cases() {
        let path = dir
            .path()
            .join(format!("{}.yaml", case.name.replace(' ', "-")));
        std::fs::write(&path, policy_yaml(case.expires.as_deref())).unwrap();
        let policy = Policy::from_file(&path).unwrap();
        let want = expected(case.honoured);
        let (by_serve, counted) = serve(&policy, &review).await;
        assert_eq!(by_serve, want, "serve: {}", case.name);
        assert_eq!(
            counted,
            u64::from(!case.honoured),
            "serve's counter: {}",
            case.name
        );
        let case_dir = dir.path().join(case.name.replace(' ', "-"));
        assert_eq!(
            check(&case_dir, &path, &review),
            want,
            "check: {}",
            case.name
        );
        assert_eq!(audit(&policy, &review), want, "audit: {}", case.name);
    }
}

#[test]
fn an_expires_that_is_not_a_date_is_refused_at_load_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["2027-02-30", "next week", "2027-01-31T00:00:00"] {
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, policy_yaml(Some(bad))).unwrap();
        let err = Policy::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("exemptions[0].expires"), "{bad}: {err}");
        assert!(err.contains(bad), "{bad}: {err}");
        let out = Command::new(BIN)
            .args(["check", "-f"])
            .arg(fixture_path("cluster-view.json"))
            .arg("--policy")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exemptions[0].expires"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn audit_lists_what_expires_within_the_window_soonest_first() {
    let now = now();
    let path = tempfile::tempdir().unwrap();
    let file = path.path().join("policy.yaml");
    std::fs::write(
        &file,
        format!(
            "exemptions:\n\
             - reason: in three days\n  namespaces: [a]\n  expires: \"{}\"\n\
             - reason: in thirty days\n  namespaces: [b]\n  expires: \"{}\"\n\
             - reason: never\n  namespaces: [c]\n\
             - reason: yesterday\n  namespaces: [d]\n  expires: \"{}\"\n",
            format_utc(now + 3 * DAY),
            format_utc(now + 30 * DAY),
            format_utc(now - DAY),
        ),
    )
    .unwrap();
    let policy = Policy::from_file(&file).unwrap();
    let view = load_view(&[fixture_path("cluster-view.json")]).unwrap();
    // Two approved Deployments: one stamp runs out in two days, one in twenty (within the
    // default 30-day maxLifetime); `audit` reads them without the key.
    let deployment = |name: &str, expires: i64| {
        let stamp = Grant::new(
            "agents",
            "Deployment",
            name,
            [CHECK.to_string()],
            "alice",
            now - DAY,
            expires,
            "ab".repeat(32),
        )
        .stamp(b"a key audit does not hold")
        .unwrap();
        (
            "Deployment",
            "apps/v1".to_string(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "agents"},
                "spec": {"selector": {"matchLabels": {"app": "openclaw"}},
                    "template": {"metadata": {"labels": {"app": "openclaw"},
                        "annotations": {APPROVAL_ANNOTATION: stamp}},
                        "spec": {"containers": [{"name": "agent", "image": "x"}]}}}}),
        )
    };
    let subjects = vec![
        deployment("soon", now + 2 * DAY),
        deployment("later", now + 20 * DAY),
    ];
    let report = judge_at(&policy, &view, &subjects, now, Some(7 * DAY));
    let listed: Vec<(String, bool)> = report
        .expiring
        .unwrap()
        .into_iter()
        .map(|e| (e.what, e.expired))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("policy exemptions[3] (\"yesterday\")".to_string(), true),
            (
                format!("approval on Deployment agents/soon ({CHECK}) by alice"),
                false
            ),
            (
                "policy exemptions[0] (\"in three days\")".to_string(),
                false
            ),
        ]
    );
    // Without the flag nothing is listed.
    assert!(
        judge_at(&policy, &view, &subjects, now, None)
            .expiring
            .is_none()
    );
}
