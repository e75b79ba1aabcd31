//! Optional APIs the webhook watches only where the cluster serves them: SecretProviderClasses
//! (Secrets Store CSI driver) and Cilium's policies. The suite starts without their CRDs, so
//! each case first sees the webhook report the kind as not served (metrics and log, `/readyz`
//! still ready), then installs the project's CRDs (tests/e2e/crds/) and waits for the webhook
//! to find them (the suite runs it with `--discovery-interval 1s`).
//!
//! These cases run after every case that applies `hardened_pod` in a namespace of its own: that
//! pod names the class `openclaw-vault`, which only the prepared namespaces get here.

use crate::support::*;
use serde_json::{Value, json};

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn served_line(kind: &str, value: u8) -> String {
    format!("openclaw_admission_cache_served{{kind=\"{kind}\"}} {value}")
}

/// The kinds are reported not served (metrics, a log line) while `/readyz` says ready; the
/// CRDs installed, the webhook finds them.
fn install_crds(env: &Env, file: &str, kinds: &[&str], crds: &[&str]) -> Result<(), String> {
    let metrics = env.webhook_get("/metrics")?;
    for kind in kinds {
        expect(metrics.contains(&served_line(kind, 0)), || {
            format!("{kind} not reported as not served before its CRD exists:\n{metrics}")
        })?;
    }
    let log = env.webhook_log_text();
    expect(log.contains("API not served"), || {
        format!("no log line says the API is not served:\n{log}")
    })?;
    env.webhook_get("/readyz")
        .map_err(|e| format!("/readyz not ready while optional APIs are not served: {e}"))?;

    let out = env.kubectl(&["apply", "-f", &format!("{ROOT}/tests/e2e/crds/{file}")]);
    expect(out.ok, || format!("installing {file}: {}", out.all()))?;
    for crd in crds {
        let out = env.kubectl(&[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            &format!("crd/{crd}"),
        ]);
        expect(out.ok, || format!("{crd} not established: {}", out.all()))?;
    }
    env.eventually(30, || {
        let metrics = env.webhook_get("/metrics")?;
        for kind in kinds {
            expect(metrics.contains(&served_line(kind, 1)), || {
                format!("the webhook has not found {kind} served yet")
            })?;
        }
        Ok(())
    })
}

fn namespace_docs(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns}}),
        json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":AGENT_SA,"namespace":ns}}),
    ]
}

fn class(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": "vault", "parameters": {"roleName": "openclaw-agent"}}})
}

fn csi_classes(pod: &Value) -> Vec<String> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["csi"]["driver"] == "secrets-store.csi.k8s.io")
        .filter_map(|v| v["csi"]["volumeAttributes"]["secretProviderClass"].as_str())
        .map(String::from)
        .collect()
}

/// A class that exists gets the CSI volume; a typo gets a warning naming the class and the
/// annotation, and no volume that would keep the Pod in ContainerCreating.
pub fn secret_provider_classes(env: &Env) -> Result<(), String> {
    install_crds(
        env,
        "secrets-store.yaml",
        &["SecretProviderClass"],
        &["secretproviderclasses.secrets-store.csi.x-k8s.io"],
    )?;
    // The prepared namespaces' pods name openclaw-vault; give them the class.
    let prepared: Vec<Value> = [NS_ENFORCE, NS_WARN, NS_AUDIT, NS_NOPOLICY, NS_EXCLUDED]
        .iter()
        .map(|ns| class(ns, "openclaw-vault"))
        .collect();
    env.apply_docs(&prepared)?;

    let ns = "e2e-vault";
    let mut docs = namespace_docs(ns);
    docs.push(deny_egress_policy(ns));
    // The class arrives in the same apply as the pod: the live confirmation finds it.
    docs.push(class(ns, "agent-keys"));
    let mut good = hardened_pod(ns, "with-class");
    good["metadata"]["annotations"]["openclaw.io/secret-provider-class"] = json!("agent-keys");
    docs.push(good);
    let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let out = env.kubectl_stdin(&["apply", "-f", "-"], &text);
    expect(out.ok, || format!("apply refused: {}", out.all()))?;
    expect(!out.all().contains("secret-provider-class-exists"), || {
        format!("an existing class was reported: {}", out.all())
    })?;
    let stored = env.get_pod(ns, "with-class")?;
    expect(csi_classes(&stored) == ["agent-keys"], || {
        format!(
            "stored pod does not mount agent-keys: {}",
            stored["spec"]["volumes"]
        )
    })?;

    let mut typo = hardened_pod(ns, "with-typo");
    typo["metadata"]["annotations"]["openclaw.io/secret-provider-class"] = json!("agent-keyz");
    let out = env.apply(&typo, &[]);
    expect(out.ok, || {
        format!(
            "a missing class is low tier (warn), yet refused: {}",
            out.all()
        )
    })?;
    let said = out.all();
    expect(
        said.contains("secret-provider-class-exists")
            && said.contains(
                "SecretProviderClass agent-keyz, which does not exist in namespace e2e-vault",
            )
            && said.contains("metadata.annotations[openclaw.io/secret-provider-class]"),
        || format!("no warning naming the class and the annotation: {said}"),
    )?;
    let stored = env.get_pod(ns, "with-typo")?;
    expect(csi_classes(&stored).is_empty(), || {
        format!(
            "a CSI volume was injected for a missing class: {}",
            stored["spec"]["volumes"]
        )
    })?;

    // A volume written by hand naming a missing class is reported at its own path.
    let mut by_hand = hardened_pod(ns, "by-hand");
    by_hand["metadata"]["annotations"] = json!({});
    by_hand["spec"]["volumes"]
        .as_array_mut()
        .ok_or("no volumes")?
        .push(
            json!({"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
            "volumeAttributes": {"secretProviderClass": "nope"}}}),
        );
    let out = env.apply(&by_hand, &["--dry-run=server"]);
    expect(
        out.ok
            && out
                .all()
                .contains("spec.volumes[2].csi.volumeAttributes.secretProviderClass"),
        || {
            format!(
                "hand-written CSI volume not reported at its path: {}",
                out.all()
            )
        },
    )
}

fn policy_file(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("policy.yaml")
}

/// The allow-list with no open HTTPS: DNS to kube-system and the LLM provider's host only.
const FQDN_ALLOW_LIST: &str = "checks:
  egress:
    allow:
    - {name: DNS, protocol: UDP, port: 53, namespaces: [kube-system]}
    - {name: DNS, protocol: TCP, port: 53, namespaces: [kube-system]}
    - {name: Anthropic, protocol: TCP, port: 443, fqdns: [api.anthropic.com]}
";

fn llm_only(ns: &str) -> Value {
    json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "llm-only", "namespace": ns},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "openclaw"}},
        "egress": [
            {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
             "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]},
            {"toFQDNs": [{"matchName": "api.anthropic.com"}],
             "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
        ]
    }})
}

fn agent(ns: &str, name: &str) -> Value {
    let mut p = hardened_pod(ns, name);
    // Not a SecretProviderClass case: no class to name.
    p["metadata"]["annotations"] = json!({});
    p
}

/// A namespace boxed by a CiliumNetworkPolicy alone (DNS, and HTTPS to one host the allow-list
/// names) admits the agent; a Cilium policy opening HTTPS to the world is refused by name.
pub fn cilium_policies(env: &Env) -> Result<(), String> {
    install_crds(
        env,
        "cilium.yaml",
        &["CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"],
        &[
            "ciliumnetworkpolicies.cilium.io",
            "ciliumclusterwidenetworkpolicies.cilium.io",
        ],
    )?;
    let original = std::fs::read_to_string(policy_file(env)).map_err(|e| e.to_string())?;
    std::fs::write(policy_file(env), format!("{original}{FQDN_ALLOW_LIST}"))
        .map_err(|e| e.to_string())?;
    let result = cilium_with_fqdn_allow_list(env);
    std::fs::write(policy_file(env), &original).map_err(|e| e.to_string())?;
    // The original policy back in force: HTTPS anywhere is allowed again.
    let restored = env.eventually(20, || {
        let out = env.apply(&agent(NS_ENFORCE, "cilium-restored"), &["--dry-run=server"]);
        expect(out.ok, || {
            format!("original policy not back: {}", out.all())
        })
    });
    result.and(restored)
}

fn cilium_with_fqdn_allow_list(env: &Env) -> Result<(), String> {
    // In force once a NetworkPolicy opening HTTPS to anywhere no longer passes.
    env.eventually(20, || {
        let out = env.apply(&agent(NS_ENFORCE, "cilium-probe"), &["--dry-run=server"]);
        expect(
            !out.ok && out.all().contains("NetworkPolicy e2e-enforce/default-deny-egress egress[1] allows TCP 443 to anywhere"),
            || format!("the FQDN allow-list is not in force yet: {}", out.all()),
        )
    })?;

    // No NetworkPolicy: the Cilium policy, the namespace and the pod in one apply.
    let ns = "e2e-cilium";
    let mut docs = namespace_docs(ns);
    docs.push(llm_only(ns));
    docs.push(agent(ns, "agent"));
    let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let out = env.kubectl_stdin(&["apply", "-f", "-"], &text);
    expect(out.ok, || {
        format!("Cilium-only namespace refused: {}", out.all())
    })?;
    expect(env.pod_exists(ns, "agent"), || "pod not stored".into())?;

    // `audit` reads the Cilium policies too: the stored agent is clean under the same policy.
    let out = std::process::Command::new(BIN)
        .args(["audit", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .arg("--policy")
        .arg(policy_file(env))
        .args(["-n", ns, "-o", "json"])
        .output()
        .map_err(|e| format!("cannot run audit: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "audit printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let finding = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["kind"] == "Pod" && f["name"] == "agent")
        .ok_or_else(|| format!("audit did not judge the agent: {report}"))?;
    expect(
        finding["violations"]
            .as_array()
            .is_some_and(|v| v.is_empty())
            && out.status.code() == Some(0),
        || format!("audit finds the Cilium-boxed agent at fault: {finding}"),
    )?;

    // A second policy opening HTTPS to the world: refused while the agent runs (it would widen
    // the agent's egress, naming it); with the agent gone it is stored, and a new agent is then
    // refused, naming it, once the watch has it.
    let wide = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "open-web", "namespace": ns},
        "spec": {"endpointSelector": {}, "egress": [{"toEntities": ["world"],
            "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}});
    let held = env.apply(&wide, &[]);
    expect(
        !held.ok
            && held
                .all()
                .contains(&format!("running agent pod {ns}/agent")),
        || {
            format!(
                "a policy widening a running agent's egress was stored: {}",
                held.all()
            )
        },
    )?;
    let gone = env.kubectl(&["-n", ns, "delete", "pod", "agent"]);
    expect(gone.ok, || gone.all())?;
    env.eventually(15, || {
        let out = env.apply(&wide, &[]);
        expect(out.ok, || {
            format!("open-web still refused with the agent gone: {}", out.all())
        })
    })?;
    let refusal = env.eventually(15, || {
        let out = env.apply(&agent(ns, "after-open-web"), &["--dry-run=server"]);
        expect(!out.ok, || format!("accepted with open-web: {}", out.all()))?;
        Ok(out.all())
    })?;
    expect(
        refusal.contains("default-deny-egress")
            && refusal.contains(
                "CiliumNetworkPolicy e2e-cilium/open-web egress[0] allows TCP 443 to 0.0.0.0/0, ::/0",
            ),
        || format!("refusal does not name the Cilium policy and what it opens: {refusal}"),
    )?;

    // A namespace with neither kind of policy: the message says Cilium's count too.
    let bare = "e2e-cilium-none";
    env.apply_docs(&namespace_docs(bare))?;
    let out = env.apply(&agent(bare, "agent"), &["--dry-run=server"]);
    expect(
        !out.ok
            && out.all().contains(
                "no CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy puts it in egress default-deny",
            ),
        || format!("bare namespace not refused as expected: {}", out.all()),
    )?;

    // A clusterwide policy for that namespace, selected by Cilium's namespace label.
    let ccnp = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": "e2e-cilium-none-box"},
        "spec": {"endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": bare}},
            "egress": [{"toFQDNs": [{"matchName": "api.anthropic.com"}],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]}});
    env.apply_docs(&[ccnp])?;
    env.eventually(15, || {
        let out = env.apply(&agent(bare, "agent"), &["--dry-run=server"]);
        expect(out.ok, || {
            format!("clusterwide policy not counted yet: {}", out.all())
        })
    })
}
