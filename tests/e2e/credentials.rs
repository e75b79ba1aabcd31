//! Issue 29 on the real control plane: a credential in a ConfigMap an agent takes env from
//! (read by the webhook's GET, by key name only), and an LLM endpoint that names an
//! `ExternalName` Service (a DNS alias for a host outside the cluster), also when the Service
//! comes in the same apply as the pod. The endpoint check is off in the suite's policy; this
//! case turns it on by a live policy change and restores it.

use crate::support::*;
use crate::workloads::policy_file;
use serde_json::{Value, json};

pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![
        (
            "a_credential_in_a_config_map_the_agent_takes_env_from_is_refused_without_showing_it",
            config_map_reference,
        ),
        (
            "an_endpoint_naming_an_external_name_service_is_not_in_cluster",
            external_name_service,
        ),
    ]
}

/// A value planted in the ConfigMap: it must appear in no answer and no log line.
const PLANTED: &str = "sk-proj-PLANTEDe2eConfigMap0123456789";

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn namespace(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])
}

fn with_env_from(ns: &str, name: &str, config_map: &str) -> Value {
    let mut p = hardened_pod(ns, name);
    p["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": config_map}}]);
    p
}

fn config_map_reference(env: &Env) -> Result<(), String> {
    let ns = "e2e-credentials";
    namespace(env, ns)?;
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "clean", "namespace": ns},
            "data": {"LOG_LEVEL": "info", "OPENCLAW_MODEL": "local"}}),
    ])?;
    // A clean ConfigMap: stored.
    let out = env.apply(&with_env_from(ns, "clean", "clean"), &[]);
    expect(out.ok, || {
        format!("agent with a clean ConfigMap: {}", out.all())
    })?;

    // The ConfigMap and the pod in one apply: the webhook reads the ConfigMap by a GET, so the
    // pod is refused though no watch ever saw it.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leaky", "namespace": ns},
            "data": {"OPENAI_API_KEY": PLANTED, "LOG_LEVEL": "debug"}},
        with_env_from(ns, "leaky", "leaky"),
    ]});
    let out = env.apply(&list, &[]);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("no-plaintext-credentials")
            && text.contains("spec.containers[0].envFrom[0].configMapRef")
            && text.contains("OPENAI_API_KEY")
            && !text.contains("LOG_LEVEL"),
        || format!("agent taking env from a ConfigMap with OPENAI_API_KEY: {text}"),
    )?;
    expect(!env.pod_exists(ns, "leaky"), || {
        "the leaky agent was stored".into()
    })?;

    // A single key drawn under a credential-like name.
    let mut p = hardened_pod(ns, "keyref");
    p["spec"]["containers"][0]["env"]
        .as_array_mut()
        .ok_or("hardened pod without env")?
        .push(json!({"name": "GITHUB_TOKEN",
            "valueFrom": {"configMapKeyRef": {"name": "leaky", "key": "LOG_LEVEL"}}}));
    let out = env.apply(&p, &[]);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("env[2].valueFrom.configMapKeyRef")
            && text.contains("GITHUB_TOKEN"),
        || format!("GITHUB_TOKEN from a ConfigMap: {text}"),
    )?;

    // `$(EMPTY)` before a key: expanded as the kubelet does, refused.
    let mut p = hardened_pod(ns, "expanded");
    p["spec"]["containers"][0]["env"] = json!([
        {"name": "EMPTY", "value": ""},
        {"name": "GITHUB_TOKEN", "value": "$(EMPTY)ghp_PLANTEDe2e0123456789abcdefABCDEF"}
    ]);
    let out = env.apply(&p, &[]);
    let text = out.all();
    expect(
        !out.ok && text.contains("env var GITHUB_TOKEN") && !text.contains("ghp_PLANTED"),
        || format!("GITHUB_TOKEN behind $(EMPTY): {text}"),
    )?;

    let log = env.webhook_log_text();
    expect(
        !log.contains(PLANTED) && !log.contains("ghp_PLANTED") && !text.contains(PLANTED),
        || "a planted value reached the webhook's log".into(),
    )
}

fn service(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": spec})
}

fn with_endpoint(ns: &str, name: &str, url: &str) -> Value {
    let mut p = hardened_pod(ns, name);
    p["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("hardened pod with env")
        .push(json!({"name": "OPENAI_BASE_URL", "value": url}));
    p
}

fn external_name_service(env: &Env) -> Result<(), String> {
    let ns = "e2e-endpoints";
    namespace(env, ns)?;
    env.apply_docs(&[
        service(
            ns,
            "vllm",
            json!({"ports": [{"port": 8000}], "selector": {"app": "vllm"}}),
        ),
        service(
            ns,
            "openai",
            json!({"type": "ExternalName", "externalName": "api.openai.com"}),
        ),
    ])?;
    let original = std::fs::read_to_string(policy_file(env)).map_err(|e| e.to_string())?;
    let on = format!(
        "{original}\nchecks:\n  inference:\n    allowedHosts: [llm-gateway.corp.example]\n"
    );
    let result = (|| {
        std::fs::write(policy_file(env), &on).map_err(|e| e.to_string())?;
        // Once the policy is in force (and the Service watched), the ExternalName Service is
        // refused for what it aliases.
        env.eventually(30, || {
            let out = env.apply(
                &with_endpoint(ns, "via-alias", &format!("https://openai.{ns}.svc/v1")),
                &[],
            );
            let text = out.all();
            let _ = env.kubectl(&["-n", ns, "delete", "pod", "via-alias", "--wait=false"]);
            if !out.ok
                && text.contains("in-cluster-inference")
                && text.contains(&format!("Service {ns}/openai"))
                && text.contains("ExternalName")
                && text.contains("api.openai.com")
            {
                Ok(())
            } else {
                Err(format!("endpoint through an ExternalName Service: {text}"))
            }
        })?;

        // A ClusterIP Service: in the cluster, stored.
        let out = env.apply(
            &with_endpoint(ns, "in-cluster", &format!("http://vllm.{ns}.svc:8000/v1")),
            &[],
        );
        expect(out.ok, || {
            format!("endpoint on a ClusterIP Service: {}", out.all())
        })?;

        // The alias and the pod in one apply: confirmed by a GET before the watch has it.
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            service(ns, "fresh", json!({"type": "ExternalName", "externalName": "evil.example"})),
            with_endpoint(ns, "fresh", &format!("http://fresh.{ns}.svc.cluster.local/v1")),
        ]});
        let out = env.apply(&list, &[]);
        let text = out.all();
        expect(
            !out.ok
                && text.contains(&format!("Service {ns}/fresh"))
                && text.contains("evil.example"),
            || format!("ExternalName Service applied with the pod: {text}"),
        )?;

        // What Node's URL parser connects to, not what the text seems to say.
        let out = env.apply(
            &with_endpoint(
                ns,
                "backslash",
                &format!(r"https://evil.example\@vllm.{ns}.svc/v1"),
            ),
            &[],
        );
        let text = out.all();
        expect(!out.ok && text.contains("backslash"), || {
            format!("endpoint with a backslash: {text}")
        })
    })();
    let _ = std::fs::write(policy_file(env), &original);
    result
}
