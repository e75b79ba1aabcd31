//! Property tests over the review reader and the engine, through the one public entry
//! `admission::handle` at both endpoints:
//!
//! - arbitrary bytes, arbitrary JSON, and arbitrary JSON in a review's `request.object`
//!   never panic, and always get a readable AdmissionReview back;
//! - generated AdmissionReviews of Pods and Deployments (containers, init containers,
//!   securityContexts, env, volumes, labels with and without the agent labels, annotations)
//!   always get HTTP 200 and a v1 AdmissionReview with the request's uid; a patch, when
//!   there is one, is base64 JSON Patch that applies to the request's object and leaves an
//!   object that still reads as its kind.
//!
//! Case counts keep the whole module to a few seconds in a debug build.

use base64::Engine as _;
use openclaw_admission::admission::{self, Endpoint};
use openclaw_admission::cli::serve::load_view;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::engine::view::StaticView;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

static VIEW: LazyLock<StaticView> = LazyLock::new(|| {
    load_view(&[super::support::manifest_path(
        "tests/fixtures/reviews/cluster-view.json",
    )])
    .unwrap_or_else(|e| panic!("cluster-view.json: {e:#}"))
});
static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

/// What every answer must be, whatever the input: a JSON AdmissionReview v1 with a response.
fn answer_of(outcome: &admission::Outcome) -> Result<Value, TestCaseError> {
    let v: Value = serde_json::from_slice(&outcome.body).map_err(|e| {
        TestCaseError::fail(format!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&outcome.body)
        ))
    })?;
    prop_assert_eq!(&v["apiVersion"], "admission.k8s.io/v1", "{}", v);
    prop_assert_eq!(&v["kind"], "AdmissionReview", "{}", v);
    prop_assert!(v["response"].is_object(), "no response: {}", v);
    prop_assert!(v["response"]["allowed"].is_boolean(), "{}", v);
    Ok(v)
}

/// Arbitrary input: no panic (proptest reports one as a failure), an AdmissionReview back,
/// HTTP 200 or 400, and on 200 the uid of the request.
fn any_input_is_answered(body: &[u8]) -> Result<(), TestCaseError> {
    let sent_uid = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/request/uid").cloned());
    for endpoint in ENDPOINTS {
        let outcome = admission::handle(body, endpoint, &POLICY, &*VIEW);
        let v = answer_of(&outcome)?;
        prop_assert!(
            [200, 400].contains(&outcome.http_status),
            "HTTP {} for {}",
            outcome.http_status,
            String::from_utf8_lossy(body)
        );
        if outcome.http_status == 200 {
            prop_assert_eq!(Some(&v["response"]["uid"]), sent_uid.as_ref(), "{}", v);
        } else {
            prop_assert_eq!(&v["response"]["allowed"], false, "{}", v);
        }
    }
    Ok(())
}

/// Field names a review and a Pod use, so that arbitrary JSON lands on real fields often.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "request",
    "uid",
    "object",
    "oldObject",
    "operation",
    "namespace",
    "name",
    "metadata",
    "labels",
    "annotations",
    "spec",
    "template",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "image",
    "securityContext",
    "env",
    "valueFrom",
    "volumes",
    "volumeMounts",
    "projected",
    "sources",
    "serviceAccountToken",
    "capabilities",
    "drop",
    "add",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile",
    "type",
    "automountServiceAccountToken",
    "serviceAccountName",
    "hostNetwork",
    "userInfo",
    "username",
    "groups",
    "resource",
    "dryRun",
    "managedFields",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z./-]{0,8}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(
            &[
                "Pod",
                "v1",
                "admission.k8s.io/v1",
                "AdmissionReview",
                "CREATE",
                "UPDATE",
                "openclaw",
                "agents",
                "ALL",
                "RuntimeDefault",
                "$(HOME)",
                "",
            ][..]
        )
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A review envelope a real API server could send, around any object.
fn envelope(uid: &str, kind: &str, operation: &str, object: Value) -> Value {
    let (group, resource) = match kind {
        "Deployment" => ("apps", "deployments"),
        _ => ("", "pods"),
    };
    let version = "v1";
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": "agents",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
        }
    })
}

// --- structured Pods ---

/// Inserts the fields that are set.
fn obj(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn dns_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&["agent", "sidecar", "init", "openclaw", "gateway", "tools"][..])
            .prop_map(str::to_string),
        "[a-z][a-z0-9-]{0,10}[a-z0-9]",
    ]
}

fn capabilities() -> BoxedStrategy<Value> {
    let cap =
        prop::sample::select(&["ALL", "NET_ADMIN", "SYS_ADMIN", "NET_BIND_SERVICE", "CHOWN"][..]);
    (
        prop::option::of(prop::collection::vec(cap.clone(), 0..3)),
        prop::option::of(prop::collection::vec(cap, 0..3)),
    )
        .prop_map(|(drop, add)| {
            obj(vec![
                ("drop", drop.map(|d| json!(d))),
                ("add", add.map(|a| json!(a))),
            ])
        })
        .boxed()
}

fn seccomp() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"type": "RuntimeDefault"})),
        Just(json!({"type": "Unconfined"})),
        Just(json!({"type": "Localhost", "localhostProfile": "profiles/agent.json"})),
    ]
    .boxed()
}

fn container_security_context() -> BoxedStrategy<Value> {
    (
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0i64..70_000),
        prop::option::of(capabilities()),
        prop::option::of(seccomp()),
    )
        .prop_map(|(non_root, ro, escalation, privileged, user, caps, sec)| {
            obj(vec![
                ("runAsNonRoot", non_root.map(Value::from)),
                ("readOnlyRootFilesystem", ro.map(Value::from)),
                ("allowPrivilegeEscalation", escalation.map(Value::from)),
                ("privileged", privileged.map(Value::from)),
                ("runAsUser", user.map(Value::from)),
                ("capabilities", caps),
                ("seccompProfile", sec),
            ])
        })
        .boxed()
}

fn env_var() -> BoxedStrategy<Value> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "HOME",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_SERVICE_NAME",
                "OTEL_RESOURCE_ATTRIBUTES",
                "OPENCLAW_GATEWAY_TOKEN",
                "POD_NAME",
            ][..]
        )
        .prop_map(str::to_string),
        "[A-Z_]{1,10}",
    ];
    let value = prop_oneof![
        ".{0,16}".prop_map(|v| json!({"value": v})),
        Just(json!({"value": "$(POD_NAME).$(HOME)"})),
        Just(json!({"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})),
        Just(json!({"valueFrom": {"secretKeyRef": {"name": "openclaw", "key": "token"}}})),
        Just(json!({})),
    ];
    (name, value)
        .prop_map(|(name, mut v)| {
            v["name"] = Value::from(name);
            v
        })
        .boxed()
}

fn volume() -> BoxedStrategy<Value> {
    let source = prop_oneof![
        Just(json!({"emptyDir": {}})),
        Just(json!({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})),
        Just(json!({"secret": {"secretName": "openclaw-token"}})),
        Just(json!({"hostPath": {"path": "/var/run/docker.sock"}})),
        Just(json!({"configMap": {"name": "openclaw-config"}})),
        Just(json!({"projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
        ]}})),
        Just(
            json!({"csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
                             "volumeAttributes": {"secretProviderClass": "openclaw"}}})
        ),
    ];
    let name = prop_oneof![
        prop::sample::select(
            &[
                "openclaw-home",
                "openclaw-sa-token",
                "kube-api-access-x7k2p",
                "tmp",
                "data"
            ][..]
        )
        .prop_map(str::to_string),
        dns_name(),
    ];
    (name, source)
        .prop_map(|(name, mut v)| {
            v["name"] = Value::from(name);
            v
        })
        .boxed()
}

fn container() -> BoxedStrategy<Value> {
    let image = prop_oneof![
        Just("ghcr.io/openclaw/openclaw:2026.11".to_string()),
        Just("openclaw/openclaw@sha256:0000000000000000000000000000000000000000000000000000000000000000".to_string()),
        Just("busybox".to_string()),
        "[a-z]{1,8}(/[a-z]{1,8})?(:[a-z0-9.]{1,6})?",
    ];
    let mount = (
        prop::sample::select(&["openclaw-home", "openclaw-sa-token", "tmp", "data"][..]),
        prop::sample::select(
            &[
                "/home/node",
                "/tmp",
                "/var/run/secrets/kubernetes.io/serviceaccount",
                "/data",
            ][..],
        ),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, path, ro)| {
            obj(vec![
                ("name", Some(name.into())),
                ("mountPath", Some(path.into())),
                ("readOnly", ro.map(Value::from)),
            ])
        });
    (
        dns_name(),
        image,
        prop::option::of(container_security_context()),
        prop::option::of(prop::collection::vec(env_var(), 0..5)),
        prop::option::of(prop::collection::vec(mount, 0..3)),
        prop::option::of(prop::collection::vec(1i32..65_536, 0..3)),
        prop::option::of(Just(json!({"limits": {"memory": "1Gi", "cpu": "1"}}))),
        prop::option::of(Just(json!(["node", "dist/index.js"]))),
    )
        .prop_map(
            |(name, image, sc, env, mounts, ports, resources, command)| {
                obj(vec![
                    ("name", Some(name.into())),
                    ("image", Some(image.into())),
                    ("securityContext", sc),
                    ("env", env.map(Value::from)),
                    ("volumeMounts", mounts.map(Value::from)),
                    (
                        "ports",
                        ports.map(|p| {
                            p.into_iter()
                                .map(|port| json!({"containerPort": port}))
                                .collect()
                        }),
                    ),
                    ("resources", resources),
                    ("command", command),
                ])
            },
        )
        .boxed()
}

fn init_container() -> BoxedStrategy<Value> {
    (container(), prop::option::of(Just("Always")))
        .prop_map(|(mut c, restart)| {
            if let Some(r) = restart {
                // A native sidecar.
                c["restartPolicy"] = r.into();
            }
            c
        })
        .boxed()
}

fn labels() -> BoxedStrategy<Value> {
    let agent = prop::sample::select(
        &[
            ("app", "openclaw"),
            ("app.kubernetes.io/name", "openclaw"),
            ("app", "openclaw-gateway"),
            ("app.kubernetes.io/instance", "claw-1"),
            ("openclaw.io/mode", "audit"),
            ("openclaw.io/mode", "enforce"),
            ("openclaw.io/mode", "bogus"),
            ("app", "postgres"),
        ][..],
    );
    // Two in three carry one of the agent labels, so that most Pods are judged and patched.
    let selected = prop_oneof![
        2 => prop::sample::select(&[("app", "openclaw"), ("app.kubernetes.io/name", "openclaw"), ("app", "openclaw-gateway")][..])
            .prop_map(Some),
        1 => Just(None),
    ];
    (
        selected,
        prop::collection::vec(agent, 0..3),
        prop::collection::btree_map("[a-z.]{1,8}(/[a-z]{1,6})?", "[a-z0-9]{0,8}", 0..3),
    )
        .prop_map(|(selected, agent, other)| {
            let mut m: Map<String, Value> = other
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect();
            for (k, v) in selected.into_iter().chain(agent) {
                m.insert(k.to_string(), v.into());
            }
            Value::Object(m)
        })
        .boxed()
}

fn annotations() -> BoxedStrategy<Value> {
    let known = prop::sample::select(
        &[
            (
                "openclaw.io/exempt",
                "run-as-non-root,read-only-root-filesystem",
            ),
            ("openclaw.io/exempt", "*"),
            ("openclaw.io/secret-provider-class", "openclaw"),
            ("kubectl.kubernetes.io/default-container", "agent"),
        ][..],
    );
    (
        prop::collection::vec(known, 0..2),
        prop::collection::btree_map("[a-z.]{1,8}/[a-z-]{1,8}", ".{0,20}", 0..3),
    )
        .prop_map(|(known, other)| {
            let mut m: Map<String, Value> = other
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect();
            for (k, v) in known {
                m.insert(k.to_string(), v.into());
            }
            Value::Object(m)
        })
        .boxed()
}

fn pod_security_context() -> BoxedStrategy<Value> {
    (
        prop::option::of(any::<bool>()),
        prop::option::of(0i64..70_000),
        prop::option::of(0i64..70_000),
        prop::option::of(seccomp()),
    )
        .prop_map(|(non_root, user, fs_group, sec)| {
            obj(vec![
                ("runAsNonRoot", non_root.map(Value::from)),
                ("runAsUser", user.map(Value::from)),
                ("fsGroup", fs_group.map(Value::from)),
                ("seccompProfile", sec),
            ])
        })
        .boxed()
}

/// A Pod's metadata and spec, each field present or not.
fn pod() -> BoxedStrategy<Value> {
    let metadata = (
        prop::option::of(dns_name()),
        prop::option::of(prop::sample::select(&["agents", "elsewhere"][..])),
        prop::option::of(labels()),
        prop::option::of(annotations()),
    )
        .prop_map(|(name, namespace, labels, annotations)| {
            let (name, generate) = match name {
                Some(n) => (Some(Value::from(n)), None),
                None => (None, Some(Value::from("openclaw-gateway-6d9f7c8b5-"))),
            };
            obj(vec![
                ("name", name),
                ("generateName", generate),
                ("namespace", namespace.map(Value::from)),
                ("labels", labels),
                ("annotations", annotations),
            ])
        });
    let spec = (
        prop::collection::vec(container(), 1..4),
        prop::option::of(prop::collection::vec(init_container(), 0..3)),
        prop::option::of(prop::collection::vec(volume(), 0..5)),
        prop::option::of(pod_security_context()),
        prop::option::of(prop::sample::select(
            &["openclaw-agent", "default", "missing"][..],
        )),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(containers, init, volumes, sc, sa, automount, host_network)| {
                obj(vec![
                    ("containers", Some(containers.into())),
                    ("initContainers", init.map(Value::from)),
                    ("volumes", volumes.map(Value::from)),
                    ("securityContext", sc),
                    ("serviceAccountName", sa.map(Value::from)),
                    ("automountServiceAccountToken", automount.map(Value::from)),
                    ("hostNetwork", host_network.map(Value::from)),
                ])
            },
        );
    (metadata, spec).prop_map(|(metadata, spec)| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    })
    .boxed()
}

/// The same Pod, or a Deployment whose template it is.
fn subject() -> BoxedStrategy<(&'static str, Value)> {
    prop_oneof![
        4 => pod().prop_map(|p| ("Pod", p)),
        1 => pod().prop_map(|p| {
            let labels = p["metadata"]["labels"].clone();
            let template = json!({"metadata": {"labels": labels, "annotations": p["metadata"]["annotations"]},
                                  "spec": p["spec"]});
            ("Deployment", json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "openclaw", "namespace": "agents"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "openclaw"}}, "template": template}
            }))
        }),
    ]
    .boxed()
}

/// A generated review and its uid.
fn review() -> BoxedStrategy<(String, &'static str, Value)> {
    let user = prop::sample::select(
        &[
            "system:serviceaccount:kube-system:replicaset-controller",
            "alice",
            "system:admin",
        ][..],
    );
    (
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        subject(),
        subject(),
        prop_oneof![3 => Just("CREATE"), 1 => Just("UPDATE"), 1 => Just("DELETE")],
        user,
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(uid, (kind, object), (_, old), operation, user, dry_run)| {
                let mut r = envelope(&uid, kind, operation, object.clone());
                let req = &mut r["request"];
                req["userInfo"]["username"] = user.into();
                if let Some(name) = object.pointer("/metadata/name") {
                    req["name"] = name.clone();
                }
                if let Some(d) = dry_run {
                    req["dryRun"] = d.into();
                }
                match operation {
                    // Same kind on both sides: the old one is the new one with other fields.
                    "UPDATE" if old["kind"] == object["kind"] => req["oldObject"] = old,
                    "UPDATE" => req["oldObject"] = object,
                    "DELETE" => {
                        req["object"] = Value::Null;
                        req["oldObject"] = object;
                    }
                    _ => {}
                }
                (uid, kind, r)
            },
        )
        .boxed()
}

/// Applies the answer's patch (if any) to the request's object and reads the result back
/// as its kind.
fn patch_applies(answer: &Value, review: &Value, kind: &str) -> Result<bool, TestCaseError> {
    let response = &answer["response"];
    let Some(encoded) = response.get("patch").filter(|p| !p.is_null()) else {
        return Ok(false);
    };
    prop_assert_eq!(&response["patchType"], "JSONPatch", "{}", answer);
    let encoded = encoded
        .as_str()
        .ok_or_else(|| TestCaseError::fail(format!("patch is not a string: {answer}")))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| TestCaseError::fail(format!("patch is not base64 ({e}): {encoded}")))?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| {
        TestCaseError::fail(format!(
            "patch is not a JSON Patch ({e}): {}",
            String::from_utf8_lossy(&bytes)
        ))
    })?;
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).map_err(|e| {
        TestCaseError::fail(format!(
            "patch does not apply ({e}): {}\nto {}",
            String::from_utf8_lossy(&bytes),
            review["request"]["object"]
        ))
    })?;
    let typed = match kind {
        "Pod" => {
            serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(object.clone()).map(drop)
        }
        _ => serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(object.clone())
            .map(drop),
    };
    prop_assert!(
        typed.is_ok(),
        "patched object is no longer a {}: {:?}\n{}",
        kind,
        typed.err(),
        object
    );
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_answered_without_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        any_input_is_answered(&body)?;
    }

    #[test]
    fn arbitrary_json_is_answered_without_panic(value in any_json()) {
        any_input_is_answered(&serde_json::to_vec(&value).unwrap_or_default())?;
    }

    #[test]
    fn arbitrary_json_in_a_review_is_answered_with_its_uid(
        object in any_json(),
        kind in prop::sample::select(&["Pod", "Deployment"][..]),
        operation in prop::sample::select(&["CREATE", "UPDATE", "DELETE"][..]),
    ) {
        let body = serde_json::to_vec(&envelope("5d3c1f7e-0000-4000-8000-000000000001", kind, operation, object))
            .unwrap_or_default();
        for endpoint in ENDPOINTS {
            let outcome = admission::handle(&body, endpoint, &POLICY, &*VIEW);
            let v = answer_of(&outcome)?;
            prop_assert_eq!(outcome.http_status, 200, "{}", v);
            prop_assert_eq!(&v["response"]["uid"], "5d3c1f7e-0000-4000-8000-000000000001", "{}", v);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 384,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_reviews_get_200_their_uid_and_a_patch_that_applies((uid, kind, review) in review()) {
        let body = serde_json::to_vec(&review).unwrap_or_default();
        for endpoint in ENDPOINTS {
            let outcome = admission::handle(&body, endpoint, &POLICY, &*VIEW);
            let v = answer_of(&outcome)?;
            prop_assert_eq!(outcome.http_status, 200, "{}\nfor {}", v, review);
            prop_assert_eq!(&v["response"]["uid"], &Value::from(uid.as_str()), "{}", v);
            let patched = patch_applies(&v, &review, kind)?;
            if endpoint == Endpoint::Validate {
                prop_assert!(!patched, "/validate answered with a patch: {}", v);
            }
        }
    }
}

/// The generator reaches the interesting cases: over a fixed sample, some reviews are
/// refused, some allowed, and some patched (a generator that never made an agent Pod would
/// pass the property above vacuously).
#[test]
fn generated_reviews_cover_refusals_allowances_and_patches() {
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = review();
    let (mut refused, mut allowed, mut patched) = (0, 0, 0);
    for _ in 0..300 {
        let (_, _, review) = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("{e}"))
            .current();
        let body = serde_json::to_vec(&review).unwrap_or_default();
        let validated: Value = serde_json::from_slice(
            &admission::handle(&body, Endpoint::Validate, &POLICY, &*VIEW).body,
        )
        .unwrap_or_default();
        match validated["response"]["allowed"].as_bool() {
            Some(true) => allowed += 1,
            Some(false) => refused += 1,
            None => {}
        }
        let mutated: Value = serde_json::from_slice(
            &admission::handle(&body, Endpoint::Mutate, &POLICY, &*VIEW).body,
        )
        .unwrap_or_default();
        if mutated["response"]
            .get("patch")
            .is_some_and(|p| p.is_string())
        {
            patched += 1;
        }
    }
    println!(
        "300 generated reviews: {refused} refused, {allowed} allowed, {patched} patched at /mutate"
    );
    assert!(refused >= 10, "only {refused} of 300 refused");
    assert!(allowed >= 10, "only {allowed} of 300 allowed");
    assert!(patched >= 10, "only {patched} of 300 patched");
}
