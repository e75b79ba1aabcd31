//! Property tests of the mutations and their patch, over generated Pods: applying the patch
//! to the original's JSON gives exactly the typed mutated pod; a second pass changes
//! nothing; nothing is removed but the plugin's token volume and its mounts; the user's env
//! values are kept; and every `$(VAR)` an injected value refers to is defined before it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::short_lived_token::PLUGIN_VOLUME_PREFIX;
use super::{MutationInput, PodDraft, apply_all, otel_env};
use crate::engine::patch::{Op, json_patch_of};
use crate::engine::pod::Pod;
use crate::engine::policy::{Policy, SA_TOKEN_MOUNT_PATH};
use crate::engine::review::Subject;
use proptest::prelude::*;
use serde_json::{Value, json};

const ENV_NAMES: &[&str] = &[
    "A",
    "B",
    otel_env::ENDPOINT,
    otel_env::SERVICE_NAME,
    otel_env::RESOURCE_ATTRIBUTES,
    otel_env::POD_NAME,
    otel_env::NODE_NAME,
];

fn env_var() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        Just(json!({"value": "x"})),
        Just(json!({"value": "service.name=s,k=v"})),
        Just(json!({"value": "a=$(OTEL_RESOURCE_ATTRIBUTES)"})),
        Just(json!({"value": ""})),
        Just(json!({"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})),
        Just(json!({})),
    ];
    (prop::sample::select(ENV_NAMES), value).prop_map(|(name, mut v)| {
        v["name"] = json!(name);
        v
    })
}

fn mount() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(&["data", "kube-api-access-ab12c", "openclaw-sa-token"][..]);
    let path = prop::sample::select(
        &[
            "/data",
            SA_TOKEN_MOUNT_PATH,
            "/var/run/secrets/kubernetes.io/serviceaccount/",
            "/mnt/secrets-store",
        ][..],
    );
    (name, path).prop_map(|(n, p)| json!({"name": n, "mountPath": p, "readOnly": true}))
}

fn container(name: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(env_var(), 0..5),
        prop::collection::vec(mount(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(env, mounts, has_env, has_mounts)| {
            // `livenessProbe` and `resources` are read by nobody and not in the engine's pod
            // model (`crate::engine::pod`); like `futureField` they must survive the patch.
            let mut c = json!({"name": name, "image": "openclaw", "futureField": {"k": 1},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "resources": {"limits": {"memory": "1Gi"}}});
            if has_env {
                c["env"] = json!(env);
            }
            if has_mounts {
                c["volumeMounts"] = json!(mounts);
            }
            c
        })
}

fn volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"name": "data", "emptyDir": {}})),
        Just(
            json!({"name": "kube-api-access-ab12c", "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}})
        ),
        Just(json!({"name": "openclaw-sa-token", "emptyDir": {}})),
        Just(json!({"name": "openclaw-secrets-store", "csi": {"driver": "other"}})),
        Just(json!({"name": "cfg", "configMap": {"name": "c"}, "futureVolumeField": true})),
    ]
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container("setup"), 0..2),
        prop::collection::vec(container("agent"), 1..3),
        prop::collection::vec(volume(), 0..4),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(
            &["", "vault-agent", "openclaw-injected"][..],
        )),
        prop::option::of(prop::sample::select(
            &["", "otel-env", "secrets-store,otel-env"][..],
        )),
    )
        .prop_map(|(init, app, volumes, automount, class, injected)| {
            // Distinct container names, as the API server requires.
            let named = |list: Vec<Value>, prefix: &str| -> Vec<Value> {
                list.into_iter()
                    .enumerate()
                    .map(|(i, mut c)| {
                        c["name"] = json!(format!("{prefix}-{i}"));
                        c
                    })
                    .collect()
            };
            // Distinct volume names too; a repeated one is dropped.
            let mut seen = std::collections::HashSet::new();
            let volumes: Vec<Value> = volumes
                .into_iter()
                .filter(|v| seen.insert(v["name"].as_str().unwrap_or_default().to_string()))
                .collect();
            let mut annotations = serde_json::Map::new();
            if let Some(c) = class {
                annotations.insert("openclaw.io/secret-provider-class".into(), json!(c));
            }
            if let Some(i) = injected {
                annotations.insert(super::INJECTED_ANNOTATION.into(), json!(i));
            }
            let mut spec = json!({
                "serviceAccountName": "claw",
                "containers": named(app, "agent"),
                "futureSpecField": [1, 2],
                "tolerations": [{"operator": "Exists"}],
            });
            if !init.is_empty() {
                spec["initContainers"] = json!(named(init, "setup"));
            }
            if !volumes.is_empty() {
                spec["volumes"] = json!(volumes);
            }
            if let Some(a) = automount {
                spec["automountServiceAccountToken"] = json!(a);
            }
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "agent-0", "namespace": "agents",
                    "labels": {"app": "openclaw"}, "annotations": annotations},
                "spec": spec,
            })
        })
}

/// The pod in `raw`, read as the webhook reads a review's object.
fn read_pod(raw: &Value) -> Pod {
    match Subject::parse("Pod", &raw.to_string()).unwrap() {
        Subject::Pod(p) => *p,
        _ => unreachable!("a Pod reads as a Pod"),
    }
}

fn policy() -> Policy {
    let mut p = Policy::default();
    p.mutations.secrets_store.enabled = true;
    p.mutations.secrets_store.annotation = "openclaw.io/secret-provider-class".into();
    p
}

/// The element a remove op points at, in the document before the op.
fn removed_name(doc: &Value, path: &str) -> String {
    doc.pointer(path)
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<not a named element>")
        .to_string()
}

fn env_of(doc: &Value) -> Vec<Vec<Value>> {
    let spec = &doc["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().cloned().unwrap_or_default())
        .map(|c| c["env"].as_array().cloned().unwrap_or_default())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_patch_gives_the_typed_result_and_keeps_what_the_user_wrote(
        raw in pod(),
        sa_automount in prop::option::of(any::<bool>()),
    ) {
        let policy = policy();
        // Read as the webhook reads it, skipping what no check or mutation reads.
        let original = read_pod(&raw);
        let view = crate::engine::view::StaticView::new();
        let input = MutationInput { policy: &policy, namespace: "agents", service_account_automount: sa_automount, view: &view };
        let mut draft = PodDraft::new(&original);
        let applied = apply_all(&mut draft, &input);
        let ops = draft.patch().unwrap();
        prop_assert_eq!(applied.is_empty(), ops.is_empty());
        let mutated = draft.to_pod();

        // 1. The patch on the typed original is exactly the typed result, and on the raw
        //    object (with fields our types do not know) it keeps those fields.
        let mut typed_doc = serde_json::to_value(&original).unwrap();
        json_patch::patch(&mut typed_doc, &json_patch_of(&ops)).unwrap();
        prop_assert_eq!(&typed_doc, &serde_json::to_value(&mutated).unwrap());
        let mut doc = raw.clone();
        for op in &ops {
            // 3. Only the plugin's token volume and its mounts are ever removed.
            if let Op::Remove { path } = op {
                let name = removed_name(&doc, path.as_str());
                prop_assert!(name.starts_with(PLUGIN_VOLUME_PREFIX), "removed {} at {}", name, path);
            }
            json_patch::patch(&mut doc, &[op.to_json_patch()]).unwrap();
        }
        prop_assert_eq!(&doc["spec"]["futureSpecField"], &json!([1, 2]));
        prop_assert_eq!(&doc["spec"]["tolerations"], &raw["spec"]["tolerations"]);
        // A volume the mutation replaced keeps no source of the user's one beside its own
        // (the engine's `Volume` does not hold `emptyDir` or `configMap`).
        for v in doc["spec"]["volumes"].as_array().into_iter().flatten() {
            let sources = ["emptyDir", "projected", "csi", "configMap", "secret", "hostPath"];
            let n = sources.iter().filter(|s| v.get(**s).is_some()).count();
            prop_assert!(n <= 1, "a volume with {} sources: {}", n, v);
        }
        for list in ["initContainers", "containers"] {
            let (before, after) = (&raw["spec"][list], &doc["spec"][list]);
            for (i, c) in after.as_array().into_iter().flatten().enumerate() {
                for field in ["futureField", "livenessProbe", "resources"] {
                    prop_assert_eq!(&c[field], &before[i][field], "{}[{}].{}", list, i, field);
                }
            }
        }

        // 4. Every env var the user wrote is still there with its value; only a literal
        //    OTEL_RESOURCE_ATTRIBUTES may grow, keeping what it held first.
        for (before, after) in env_of(&raw).iter().zip(env_of(&doc)) {
            for e in before {
                let kept = after.iter().any(|a| a["name"] == e["name"] && (a == e
                    || (e["name"] == otel_env::RESOURCE_ATTRIBUTES
                        && e.get("valueFrom").is_none()
                        && a["value"].as_str().unwrap_or_default()
                            .starts_with(e["value"].as_str().unwrap_or_default()))));
                prop_assert!(kept, "lost or changed {} in {:?}", e, after);
            }
            // 5. A variable referred to as $(VAR) by an injected value comes before it.
            for (i, a) in after.iter().enumerate() {
                let value = a["value"].as_str().unwrap_or_default();
                for var in [otel_env::POD_NAME, otel_env::NODE_NAME] {
                    if value.contains(&format!("$({var})")) {
                        prop_assert!(after[..i].iter().any(|d| d["name"] == var),
                            "{} refers to $({}) before it is defined: {:?}", a["name"], var, after);
                    }
                }
            }
        }

        // 2. Idempotent on its own output: nothing applied, nothing patched.
        let again = read_pod(&doc);
        let mut second = PodDraft::new(&again);
        let applied = apply_all(&mut second, &input);
        prop_assert!(applied.is_empty(), "second pass applied {:?}", applied);
        prop_assert!(second.patch().unwrap().is_empty());
    }
}
