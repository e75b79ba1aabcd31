//! Issue 30 on the real control plane: SIG Apps' agent-sandbox objects judged at `kubectl
//! apply`, with agent-sandbox's own CRDs (tests/agent-sandbox/fetch.sh, the pinned module from
//! the Go module proxy) installed, so every object applied here also passes its real schema.
//! No agent-sandbox controller runs: what is judged is what the objects say.

use crate::support::*;
use serde_json::{Value, json};

pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![
        (
            "an_unhardened_sandbox_and_template_are_refused_at_apply_at_their_pod_template_and_hardened_ones_stored",
            sandbox_and_template,
        ),
        (
            "a_template_that_omits_its_network_policy_is_refused_for_egress_with_the_policy_to_write",
            template_egress,
        ),
        (
            "a_claim_with_a_literal_token_is_refused_when_its_template_lets_claims_inject_env",
            claim_env,
        ),
        (
            "audit_lists_an_unhardened_template_admitted_in_audit_mode",
            audit_finds_templates,
        ),
    ]
}

const NS: &str = "e2e-agent-sandbox";
/// Not an agent label: the kind alone makes these objects agents.
const LABELS: &str = "openclaw-sandbox";
/// A gateway token in a claim's env: it must appear in no answer.
const PLANTED: &str = "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8PLANTED";

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Installs agent-sandbox's CRDs (once; `kubectl apply` is idempotent) and the case namespace,
/// then waits until the webhook watches templates and warm pools.
pub fn prepare(env: &Env) -> Result<(), String> {
    let dir = crate::prebuilt::require(&[crate::prebuilt::Need::AgentSandbox])?.remove(0);
    let crds = dir.join("crds");
    let out = env.kubectl(&["apply", "-f", &crds.to_string_lossy()]);
    expect(out.ok, || {
        format!("installing agent-sandbox's CRDs: {}", out.all())
    })?;
    for crd in [
        "sandboxes.agents.x-k8s.io",
        "sandboxtemplates.extensions.agents.x-k8s.io",
        "sandboxwarmpools.extensions.agents.x-k8s.io",
        "sandboxclaims.extensions.agents.x-k8s.io",
    ] {
        let out = env.kubectl(&[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            &format!("crd/{crd}"),
        ]);
        expect(out.ok, || format!("{crd} not established: {}", out.all()))?;
    }
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": NS}}),
        deny_egress_policy(NS),
    ])?;
    env.eventually(30, || {
        let metrics = env.webhook_get("/metrics")?;
        for kind in ["SandboxTemplate", "SandboxWarmPool"] {
            let line = format!("openclaw_admission_cache_served{{kind=\"{kind}\"}} 1");
            expect(metrics.contains(&line), || {
                format!("the webhook does not watch {kind} yet")
            })?;
        }
        Ok(())
    })
}

/// The suite's hardened agent as a pod template, labelled as agent-sandbox's examples label
/// theirs (no agent label) and without the Secrets Store annotation, which only Pods use.
fn pod_template(hardened: bool) -> Value {
    let p = hardened_pod(NS, "unused");
    let mut spec = p["spec"].clone();
    if !hardened {
        // As the upstream OpenClaw example has it: writable root, no seccomp profile.
        spec["securityContext"] = json!({"runAsNonRoot": true});
        spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
        spec["containers"][0]["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("seccompProfile");
    }
    json!({"metadata": {"labels": {"sandbox": LABELS}}, "spec": spec})
}

fn sandbox(name: &str, hardened: bool) -> Value {
    json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"podTemplate": pod_template(hardened)}})
}

/// `spec.networkPolicy` allowing DNS and HTTPS: what the suite's allow-list allows.
pub fn dns_and_https() -> Value {
    json!({"egress": [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}]}
    ]})
}

fn template(name: &str, hardened: bool, extra: Value) -> Value {
    let mut spec = json!({"podTemplate": pod_template(hardened)});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
        "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn exists(env: &Env, kind: &str, name: &str) -> bool {
    env.kubectl(&["-n", NS, "get", kind, name, "-o", "name"]).ok
}

fn sandbox_and_template(env: &Env) -> Result<(), String> {
    prepare(env)?;
    for (kind, resource, object) in [
        ("Sandbox", "sandboxes", sandbox("unhardened", false)),
        (
            "SandboxTemplate",
            "sandboxtemplates",
            template(
                "unhardened",
                false,
                json!({"networkPolicy": dns_and_https()}),
            ),
        ),
    ] {
        let out = env.apply(&object, &[]);
        let text = out.all();
        expect(
            !out.ok
                && text.contains(&format!("refused {kind} {NS}/unhardened"))
                && text.contains("read-only-root-filesystem")
                && text.contains(
                    "spec.podTemplate.spec.containers[0].securityContext.readOnlyRootFilesystem",
                )
                && text.contains("seccomp-profile")
                && text.contains("spec.podTemplate.spec"),
            || format!("unhardened {kind}: {text}"),
        )?;
        expect(!exists(env, resource, "unhardened"), || {
            format!("the unhardened {kind} was stored")
        })?;
    }
    for (kind, object) in [
        ("Sandbox", sandbox("hardened", true)),
        (
            "SandboxTemplate",
            template("hardened", true, json!({"networkPolicy": dns_and_https()})),
        ),
    ] {
        let out = env.apply(&object, &[]);
        expect(out.ok && !out.stderr.contains("Warning"), || {
            format!("hardened {kind}: {}", out.all())
        })?;
    }
    Ok(())
}

fn template_egress(env: &Env) -> Result<(), String> {
    prepare(env)?;
    // The namespace denies egress beyond DNS and HTTPS; the policy agent-sandbox's controller
    // writes for a template without `networkPolicy` opens every port to the internet again.
    let out = env.apply(&template("open-egress", true, json!({})), &[]);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("default-deny-egress")
            && text.contains("spec.networkPolicy")
            && text.contains("open-egress-network-policy")
            && text.contains("0.0.0.0/0")
            && text.contains("write spec.networkPolicy with egress allowing only")
            && text.contains("{protocol: TCP, port: 443}"),
        || format!("template without networkPolicy: {text}"),
    )?;
    expect(!exists(env, "sandboxtemplates", "open-egress"), || {
        "the template with the open default egress was stored".into()
    })?;
    // A rule beyond the allow-list is named by its index.
    let mut np = dns_and_https();
    np["egress"]
        .as_array_mut()
        .unwrap()
        .push(json!({"ports": [{"protocol": "TCP", "port": 22}]}));
    let out = env.apply(
        &template("ssh-egress", true, json!({"networkPolicy": np})),
        &[],
    );
    let text = out.all();
    expect(
        !out.ok && text.contains("spec.networkPolicy.egress[2]"),
        || format!("template with an SSH egress rule: {text}"),
    )?;
    // Unmanaged: the namespace's own policy (DNS and HTTPS) is all there is, and it passes.
    let out = env.apply(
        &template(
            "unmanaged",
            true,
            json!({"networkPolicyManagement": "Unmanaged"}),
        ),
        &[],
    );
    expect(out.ok, || format!("unmanaged template: {}", out.all()))
}

fn pool(name: &str, template: &str) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": 1, "sandboxTemplateRef": {"name": template}}})
}

fn claim(name: &str, pool: &str, token: bool) -> Value {
    let mut env_vars = vec![json!({"name": "OPENCLAW_LOG_LEVEL", "value": "info"})];
    if token {
        env_vars.push(json!({"name": "OPENCLAW_GATEWAY_TOKEN", "value": PLANTED}));
    }
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"warmPoolRef": {"name": pool}, "env": env_vars,
                 "additionalPodMetadata": {"labels": {"sandbox.users.io/claim": name}}}})
}

fn claim_env(env: &Env) -> Result<(), String> {
    prepare(env)?;
    env.apply_docs(&[
        template(
            "injects",
            true,
            json!({"networkPolicy": dns_and_https(), "envVarsInjectionPolicy": "Allowed"}),
        ),
        pool("injects", "injects"),
        template(
            "keeps-env-out",
            true,
            json!({"networkPolicy": dns_and_https()}),
        ),
        pool("keeps-env-out", "keeps-env-out"),
    ])?;
    let out = env.apply(&claim("leaky", "injects", true), &[]);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("refused SandboxClaim")
            && text.contains("no-plaintext-credentials")
            && text.contains("spec.env[1]")
            && text.contains("OPENCLAW_GATEWAY_TOKEN")
            && !text.contains("OPENCLAW_LOG_LEVEL")
            && !text.contains(PLANTED),
        || format!("claim with a literal token: {text}"),
    )?;
    expect(!exists(env, "sandboxclaims", "leaky"), || {
        "the claim with a literal token was stored".into()
    })?;
    let out = env.apply(&claim("clean", "injects", false), &[]);
    expect(out.ok, || {
        format!("claim without a credential: {}", out.all())
    })?;
    // A template that keeps claims' env out (the default): the token never reaches a Pod, so
    // the claim passes once the webhook's watch has the pool and the template.
    env.eventually(30, || {
        let out = env.apply(
            &claim("kept-out", "keeps-env-out", true),
            &["--dry-run=server"],
        );
        expect(out.ok && !out.all().contains(PLANTED), || {
            format!("claim against a template that keeps env out: {}", out.all())
        })
    })?;
    // A claim naming a pool that does not exist is stored, with a warning that says so.
    let out = env.apply(&claim("orphan", "no-such-pool", false), &[]);
    let text = out.all();
    expect(
        out.ok && text.contains("SandboxWarmPool no-such-pool") && text.contains("does not exist"),
        || format!("claim naming a missing pool: {text}"),
    )
}

/// A namespace in audit mode admits the unhardened template; `audit` lists it from the
/// cluster, judged at its pod template and for the open default egress.
fn audit_finds_templates(env: &Env) -> Result<(), String> {
    prepare(env)?;
    let ns = "e2e-agent-sandbox-audit";
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"openclaw.io/mode": "audit"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    let mut t = template("as-upstream", false, json!({}));
    t["metadata"]["namespace"] = json!(ns);
    env.eventually(20, || {
        let out = env.apply(&t, &[]);
        expect(out.ok, || format!("template in audit mode: {}", out.all()))
    })?;
    let out = std::process::Command::new(BIN)
        .args(["audit", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .args([
            "--policy",
            &format!("{ROOT}/tests/e2e/policy.yaml"),
            "-n",
            ns,
            "-o",
            "json",
        ])
        .output()
        .map_err(|e| format!("cannot run audit: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "audit output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let text = report.to_string();
    let found = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["kind"] == "SandboxTemplate" && f["name"] == "as-upstream");
    expect(
        found
            && text.contains(
                "spec.podTemplate.spec.containers[0].securityContext.readOnlyRootFilesystem",
            )
            && text.contains("spec.networkPolicy"),
        || format!("audit of {ns}: {text}"),
    )
}
