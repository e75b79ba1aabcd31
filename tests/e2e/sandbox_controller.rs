//! Issue 31 on the real control plane with agent-sandbox's real controller
//! (`agent-sandbox-controller` of the pinned `sigs.k8s.io/agent-sandbox`, built by
//! tests/agent-sandbox/build.sh) running against it as its own ServiceAccount
//! (`agent-sandbox-system/agent-sandbox-controller`, with upstream's ClusterRoles:
//! tests/agent-sandbox/identity.sh), so the Pods and Sandboxes it makes reach the webhook as
//! they do in a cluster, from the user the webhook knows as a controller.
//!
//! The control plane has no kubelet: the Pods are stored and never run, so no Sandbox ever
//! reports Pod IPs or Ready. What that means for the controller (v1.0.1):
//! - a warm pool still creates its Sandboxes (`<pool>-xxxxx`) and the Sandbox controller their
//!   Pods; the pool replaces a Sandbox that stays unready for
//!   `--sandbox-warm-pool-readiness-grace-period`, set long here so that it does not;
//! - a claim adopts a pool Sandbox only once that Sandbox reports Pod IPs (an unready one with
//!   IPs is a fallback candidate); without any, it retries for 2 s after the claim's creation
//!   and then creates a Sandbox of its own from the template, named after the claim (a cold
//!   start). The adoption case therefore writes the warm Pod's status as a kubelet would
//!   (`pods/status`: Running, an IP, Ready) before the claim comes, and the cold-start path is
//!   what the approval case's claims take;
//! - the Sandboxes a pool or claim makes carry `automountServiceAccountToken: false` unless the
//!   template sets it, so their Pods mount no token and the webhook adds none: the adoption
//!   case's template asks for a token to see the webhook's short-lived one, the approval
//!   case's does not.

use crate::sandboxes::{dns_and_https, prepare};
use crate::support::*;
use crate::workloads::audit_log_has;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub fn all() -> Vec<(&'static str, crate::cases::Case)> {
    vec![
        (
            "sandbox_controller_makes_a_warm_pools_pod_mutated_and_a_claim_adopts_it_without_a_refusal",
            warm_pool_and_claim,
        ),
        (
            "sandbox_controller_makes_the_pod_of_a_sandbox_applied_directly_mutated",
            direct_sandbox,
        ),
        (
            "sandbox_controller_honours_an_approvers_exemption_on_a_template_and_not_a_tenants_copy",
            approvals_through_templates,
        ),
    ]
}

/// The identity the controller runs as, as the webhook sees it.
pub const CONTROLLER_USER: &str =
    "system:serviceaccount:agent-sandbox-system:agent-sandbox-controller";
const NS: &str = "e2e-sandbox-controller";
const NS_APPROVALS: &str = "e2e-sandbox-approvals";
const SPC: &str = "openclaw-vault";

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The running controller: stopped (and waited for) when dropped, with the suite's `Env`.
pub struct Controller {
    child: Child,
    pub log: PathBuf,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the controller unless it runs: the CRDs (and the webhook's watch of templates and
/// pools) first, then its identity and a kubeconfig with its token, then the binary with the
/// extensions (claims, pools, templates), no leader election, metrics off and its health
/// endpoint on a free loopback port, which is waited for.
pub fn start(env: &Env) -> Result<(), String> {
    let mut slot = env.agent_sandbox.lock().map_err(|e| e.to_string())?;
    if let Some(c) = slot.as_mut() {
        return match c.child.try_wait() {
            Ok(None) => Ok(()),
            other => Err(format!(
                "agent-sandbox's controller is gone ({other:?}):\n{}",
                tail(&c.log, 40)
            )),
        };
    }
    let t = Instant::now();
    prepare(env)?;
    let bin = crate::prebuilt::require(&[crate::prebuilt::Need::AgentSandboxController])?
        .remove(0)
        .join("agent-sandbox-controller");
    let kubeconfig = env.dir.path().join("agent-sandbox-controller.kubeconfig");
    // Longer than any suite run: the token is not refreshed.
    let out = std::process::Command::new("bash")
        .arg(format!("{ROOT}/tests/agent-sandbox/identity.sh"))
        .arg(&env.kubectl)
        .arg(&kubeconfig)
        .arg("6h")
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .map_err(|e| format!("cannot run identity.sh: {e}"))?;
    expect(out.status.success(), || {
        format!(
            "tests/agent-sandbox/identity.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let log = env.dir.path().join("agent-sandbox-controller.log");
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let health = free_port();
    let child = tied_to_us(&bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--extensions",
            "--leader-elect=false",
            "--metrics-bind-address=0",
            &format!("--health-probe-bind-address=127.0.0.1:{health}"),
            // Nothing becomes Ready without a kubelet: without this, every pool would replace
            // its Sandboxes every 5 minutes (the default) for the rest of the suite.
            "--sandbox-warm-pool-readiness-grace-period=6h",
            "--zap-encoder=console",
        ])
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut c = Controller { child, log };
    let url = format!("http://127.0.0.1:{health}/healthz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let waited = wait_until_up(&env.rt, &client, &url, Duration::from_secs(30), || {
        Ok(c.child.try_wait().ok().flatten())
    });
    match waited {
        Ok(()) => {}
        Err(Down::Exited(st)) => {
            return Err(format!(
                "agent-sandbox's controller exited ({st}):\n{}",
                tail(&c.log, 40)
            ));
        }
        Err(Down::Late) => {
            return Err(format!(
                "agent-sandbox's controller not healthy within 30 s:\n{}",
                tail(&c.log, 40)
            ));
        }
        Err(Down::Other(e)) => return Err(e),
    }
    println!(
        "    agent-sandbox-controller up as {CONTROLLER_USER} in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    *slot = Some(c);
    Ok(())
}

fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn log_text(env: &Env) -> String {
    env.agent_sandbox
        .lock()
        .ok()
        .and_then(|s| {
            s.as_ref()
                .map(|c| std::fs::read_to_string(&c.log).unwrap_or_default())
        })
        .unwrap_or_default()
}

/// The last lines of the controller's log, when it was started (the suite's failure output).
pub fn dump_log(env: &Env) {
    let path = env
        .agent_sandbox
        .lock()
        .ok()
        .and_then(|s| s.as_ref().map(|c| c.log.clone()));
    if let Some(p) = path {
        eprintln!("--- last lines of agent-sandbox-controller's log ---");
        eprintln!("{}", tail(&p, 40));
    }
}

/// The controller's log lines that carry an admission refusal and mention `needle`.
fn refusals(env: &Env, needle: &str) -> Vec<String> {
    log_text(env)
        .lines()
        .filter(|l| l.contains("denied the request") && l.contains(needle))
        .map(String::from)
        .collect()
}

/// A namespace as a tenant's: the agent's ServiceAccount and default-deny egress.
fn namespace(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
            "labels": {"openclaw.io/mode": "enforce"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    env.wait_for_default_service_account(ns)
}

/// The suite's hardened agent as agent-sandbox's pod template: no agent label (the Sandbox
/// owner makes its Pods agents), the Secrets Store class named as Pods name it.
fn pod_template() -> Value {
    let p = hardened_pod("unused", "unused");
    json!({"metadata": {"labels": {"sandbox": "openclaw"},
            "annotations": {"openclaw.io/secret-provider-class": SPC}},
        "spec": p["spec"].clone()})
}

fn template(ns: &str, name: &str, pod_template: Value) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxTemplate",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podTemplate": pod_template, "networkPolicy": dns_and_https()}})
}

fn pool(ns: &str, name: &str, template: &str) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "sandboxTemplateRef": {"name": template}}})
}

fn claim(ns: &str, name: &str, pool: &str) -> Value {
    json!({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"warmPoolRef": {"name": pool}}})
}

/// The controller owner of `obj` as `Kind/name`.
fn controller_of(obj: &Value) -> String {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == true)
        .map(|r| {
            format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_default()
}

fn list(env: &Env, ns: &str, resource: &str) -> Result<Vec<Value>, String> {
    let l = env.kubectl_json(&["-n", ns, "get", resource, "-o", "json"])?;
    Ok(l["items"].as_array().cloned().unwrap_or_default())
}

/// The Sandboxes whose controller owner is `owner` (`Kind/name`).
fn sandboxes_of(env: &Env, ns: &str, owner: &str) -> Result<Vec<Value>, String> {
    Ok(list(env, ns, "sandboxes.agents.x-k8s.io")?
        .into_iter()
        .filter(|s| controller_of(s) == owner)
        .collect())
}

/// The ServiceAccount token a controller's Pod should end up with.
#[derive(Clone, Copy, PartialEq)]
enum Token {
    /// The pod template asks for one (or leaves it to the ServiceAccount, on a Sandbox applied
    /// directly): the webhook's projected token, at most an hour.
    Projected,
    /// The pod template leaves `automountServiceAccountToken` unset and a warm pool or claim
    /// made the Sandbox: agent-sandbox's controllers write `false` into it ("secure defaults"),
    /// and the webhook respects a Pod that asks for no token: none at all.
    None,
}

/// What the webhook injects, on a Pod the controller stored: the token as `token` says and
/// never a `kube-api-access-*` volume, the Secrets Store CSI volume with the class the
/// template names, and the OTel env with `OTEL_SERVICE_NAME` = `service`, kept last.
fn carries_the_box(pod: &Value, service: &str, token: Token) -> Result<(), String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    match token {
        Token::Projected => {
            let token = projected_token(pod).map_err(|e| format!("Pod {name}: {e}"))?;
            let secs = token["serviceAccountToken"]["expirationSeconds"]
                .as_i64()
                .unwrap_or(i64::MAX);
            expect(secs <= 3600, || {
                format!("Pod {name}: the token lives {secs} s")
            })?;
        }
        Token::None => {
            let vols = pod["spec"]["volumes"].to_string();
            expect(
                pod["spec"]["automountServiceAccountToken"] == json!(false)
                    && !vols.contains("kube-api-access-")
                    && !vols.contains("serviceAccountToken"),
                || format!("Pod {name} should mount no token at all: {vols}"),
            )?;
        }
    }
    let vols = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    expect(
        vols.iter().any(|v| {
            v["csi"]["driver"] == "secrets-store.csi.k8s.io"
                && v["csi"]["volumeAttributes"]["secretProviderClass"] == SPC
        }),
        || format!("Pod {name}: no Secrets Store CSI volume of class {SPC}: {vols:?}"),
    )?;
    let env_vars = pod["spec"]["containers"][0]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let value_of = |n: &str| {
        env_vars
            .iter()
            .find(|e| e["name"] == n)
            .map(|e| e["value"].as_str().unwrap_or("").to_string())
    };
    expect(
        value_of("OTEL_SERVICE_NAME").as_deref() == Some(service),
        || {
            format!(
                "Pod {name}: OTEL_SERVICE_NAME is {:?}, not {service:?}",
                value_of("OTEL_SERVICE_NAME")
            )
        },
    )?;
    expect(
        value_of("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            && env_vars.last().map(|e| e["name"].clone())
                == Some(json!("OTEL_RESOURCE_ATTRIBUTES")),
        || format!("Pod {name}: OTel env missing or not last: {env_vars:?}"),
    )
}

/// The Pod the controller made for Sandbox `name` (named after it, controller-owned by it),
/// created through the webhook by the controller's own user.
fn pod_of_sandbox(env: &Env, ns: &str, name: &str) -> Result<Value, String> {
    let pod = env.eventually(30, || {
        env.get_pod(ns, name).map_err(|e| {
            let sb = env
                .kubectl(&[
                    "-n",
                    ns,
                    "get",
                    "sandbox",
                    name,
                    "-o",
                    "jsonpath={.status.conditions}",
                ])
                .all();
            format!("no Pod of Sandbox {ns}/{name} after 30 s ({e}); its conditions: {sb}")
        })
    })?;
    expect(controller_of(&pod) == format!("Sandbox/{name}"), || {
        format!("Pod {ns}/{name} is controlled by {:?}", controller_of(&pod))
    })?;
    expect(
        audit_log_has(
            env,
            &[
                "\"verb\":\"create\"",
                "\"resource\":\"pods\"",
                &format!("\"namespace\":\"{ns}\",\"name\":\"{name}\""),
                &format!("\"username\":\"{CONTROLLER_USER}\""),
            ],
        ),
        || {
            format!(
                "no create of Pod {ns}/{name} by {CONTROLLER_USER} in the API server's audit log"
            )
        },
    )?;
    Ok(pod)
}

/// Writes what a kubelet would for a started Pod: Running, Ready, an IP. The controller
/// copies the IP into the Sandbox's status, which makes the Sandbox adoptable by a claim.
fn kubelet_reports_running(env: &Env, ns: &str, pod: &str) -> Result<(), String> {
    let now = "2026-01-01T00:00:00Z";
    let status = json!({"status": {"phase": "Running", "podIP": "10.244.0.7",
        "podIPs": [{"ip": "10.244.0.7"}], "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let out = env.kubectl(&[
        "-n",
        ns,
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    expect(out.ok, || {
        format!("patching Pod {ns}/{pod}'s status: {}", out.all())
    })
}

/// (a) A hardened template, a warm pool of one and a claim: the pool's Sandbox and its Pod
/// are made by the controller and mutated; the claim adopts that Sandbox (its controller owner
/// moves to the claim, the Pod is relabelled for the claim) without a refusal anywhere.
fn warm_pool_and_claim(env: &Env) -> Result<(), String> {
    start(env)?;
    namespace(env, NS)?;
    let tpl = "hardened-agent";
    // An agent that talks to the API server asks for its token: the ServiceAccount plugin
    // mounts `kube-api-access-*` and the webhook swaps it for its short-lived one.
    let mut asks_for_a_token = pod_template();
    asks_for_a_token["spec"]["automountServiceAccountToken"] = json!(true);
    env.apply_docs(&[template(NS, tpl, asks_for_a_token)])?;
    // The webhook judges a pool against its template: wait until it has the template.
    env.eventually(20, || {
        let out = env.apply(&pool(NS, "warm", tpl), &[]);
        expect(out.ok && !out.all().contains("does not exist"), || {
            format!("warm pool: {}", out.all())
        })
    })?;
    let warm = env.eventually(30, || {
        let sbs = sandboxes_of(env, NS, "SandboxWarmPool/warm")?;
        sbs.into_iter().next().ok_or_else(|| {
            format!(
                "the warm pool made no Sandbox after 30 s; controller refusals: {:?}",
                refusals(env, NS)
            )
        })
    })?;
    let name = warm["metadata"]["name"].as_str().unwrap_or("").to_string();
    expect(name.starts_with("warm-"), || {
        format!("pool Sandbox named {name}")
    })?;
    let pod = pod_of_sandbox(env, NS, &name)?;
    carries_the_box(&pod, tpl, Token::Projected)?;

    kubelet_reports_running(env, NS, &name)?;
    env.eventually(30, || {
        let sb = env.kubectl_json(&["-n", NS, "get", "sandbox", &name, "-o", "json"])?;
        expect(
            sb["status"]["podIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            || format!("Sandbox {name} reports no Pod IPs: {}", sb["status"]),
        )
    })?;
    let out = env.apply(&claim(NS, "mine", "warm"), &[]);
    expect(out.ok, || format!("claim: {}", out.all()))?;
    let claimed = env.eventually(30, || {
        let c = env.kubectl_json(&["-n", NS, "get", "sandboxclaim", "mine", "-o", "json"])?;
        let got = c["status"]["sandbox"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        expect(!got.is_empty(), || {
            format!("the claim has no Sandbox yet: {}", c["status"])
        })?;
        Ok((got, c["metadata"]["uid"].as_str().unwrap_or("").to_string()))
    })?;
    expect(claimed.0 == name, || {
        format!(
            "the claim got Sandbox {} instead of adopting the warm {name} (a cold start)",
            claimed.0
        )
    })?;
    // The Sandbox controller follows the adoption on the Pod: the claim's label, written by a
    // Pod update that the webhook lets the controller's user make.
    env.eventually(30, || {
        let sb = env.kubectl_json(&["-n", NS, "get", "sandbox", &name, "-o", "json"])?;
        expect(controller_of(&sb) == "SandboxClaim/mine", || {
            format!("Sandbox {name} is controlled by {:?}", controller_of(&sb))
        })?;
        let pod = env.get_pod(NS, &name)?;
        expect(
            pod["metadata"]["labels"]["agents.x-k8s.io/claim-uid"] == json!(claimed.1),
            || {
                format!(
                    "Pod {name} not relabelled for the claim: {}",
                    pod["metadata"]["labels"]
                )
            },
        )
    })?;
    // Still the same, mutated Pod; and nothing was refused on the way.
    carries_the_box(&env.get_pod(NS, &name)?, tpl, Token::Projected)?;
    let refused = refusals(env, NS);
    expect(refused.is_empty(), || {
        format!("the webhook refused the controller: {refused:#?}")
    })?;
    let c = env.kubectl_json(&["-n", NS, "get", "sandboxclaim", "mine", "-o", "json"])?;
    let conditions = c["status"]["conditions"].to_string();
    expect(!conditions.contains("denied"), || {
        format!("the claim's conditions carry a refusal: {conditions}")
    })
}

/// (b) A hardened Sandbox applied directly: its Pod, made by the controller, is mutated, its
/// OTel service name the Sandbox's.
fn direct_sandbox(env: &Env) -> Result<(), String> {
    start(env)?;
    namespace(env, NS)?;
    let name = "direct-agent";
    let sb = json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"podTemplate": pod_template()}});
    let out = env.apply(&sb, &[]);
    expect(out.ok, || format!("hardened Sandbox: {}", out.all()))?;
    let pod = pod_of_sandbox(env, NS, name)?;
    carries_the_box(&pod, name, Token::Projected)?;
    let refused = refusals(env, name);
    expect(refused.is_empty(), || {
        format!("the webhook refused the controller: {refused:#?}")
    })?;

    // A Sandbox running another image than OpenClaw's (agent-sandbox's Python runtime, say):
    // its Pod is an agent by its owner alone (the suite's catch-all knows OpenClaw's images).
    // A tenant with `edit` may neither take that owner reference off, walking the Pod out of
    // the webhook's entries, nor proxy into it.
    editors(env, NS)?;
    let runtime = "direct-runtime";
    let mut pt = pod_template();
    for list in ["initContainers", "containers"] {
        for c in pt["spec"][list].as_array_mut().into_iter().flatten() {
            c["image"] = json!("registry.example/agent-runtime/python:3.12");
        }
    }
    let sb = json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": runtime, "namespace": NS}, "spec": {"podTemplate": pt}});
    let out = env.apply(&sb, &[]);
    expect(out.ok, || format!("runtime Sandbox: {}", out.all()))?;
    let pod = pod_of_sandbox(env, NS, runtime)?;
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or(runtime);
    let out = env.kubectl(&[
        "-n",
        NS,
        "patch",
        "pod",
        pod_name,
        "--type=json",
        "-p",
        r#"[{"op": "remove", "path": "/metadata/ownerReferences"}]"#,
        AS_USER[0],
    ]);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("relabel-requires-approval")
            && text.contains("metadata.ownerReferences"),
        || format!("the tenant took the Sandbox owner off its Pod: {text}"),
    )?;
    let owners = env.get_pod(NS, pod_name)?["metadata"]["ownerReferences"].clone();
    expect(owners[0]["kind"] == "Sandbox", || {
        format!("owner references now: {owners}")
    })?;
    let out = env.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{NS}/pods/{pod_name}:18789/proxy/"),
        AS_USER[0],
    ]);
    let text = out.all();
    expect(!out.ok && text.contains("exec-requires-approval"), || {
        format!("the tenant reached into the Sandbox's Pod: {text}")
    })
}

/// Lets `bob` and `mallory` (editors of `ns`) write agent-sandbox's objects there, which the
/// built-in `edit` role does not cover: a refusal is then the webhook's.
fn sandbox_editors(env: &Env, ns: &str) -> Result<(), String> {
    editors(env, ns)?;
    env.apply_docs(&[
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "agent-sandbox-editors", "namespace": ns},
            "rules": [
                {"apiGroups": ["agents.x-k8s.io"], "resources": ["sandboxes"], "verbs": ["*"]},
                {"apiGroups": ["extensions.agents.x-k8s.io"],
                 "resources": ["sandboxtemplates", "sandboxwarmpools", "sandboxclaims"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "agent-sandbox-editors", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agent-sandbox-editors"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
                         {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
    ])
}

/// Sets the namespace's mode and waits until the webhook judges it so: a tenant's dry-run
/// Sandbox with a writable root is refused under enforce only.
fn mode(env: &Env, ns: &str, mode: &str) -> Result<(), String> {
    let out = env.kubectl(&[
        "label",
        "namespace",
        ns,
        &format!("openclaw.io/mode={mode}"),
        "--overwrite",
    ]);
    expect(out.ok, || out.all())?;
    let mut probe = pod_template();
    probe["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    let sb = json!({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
        "metadata": {"name": "mode-probe", "namespace": ns}, "spec": {"podTemplate": probe}});
    env.eventually(20, || {
        let out = env.kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-", AS_USER[0]],
            &sb.to_string(),
        );
        expect(out.ok == (mode != "enforce"), || {
            format!("namespace {ns} not yet judged as {mode}: {}", out.all())
        })
    })
}

/// (c) An approver's exemption on a template reaches the Pod of a claim on its pool; the same
/// annotations copied by a tenant onto another template do not: that template's Pod is never
/// stored, and the controller's log carries the webhook's refusal.
fn approvals_through_templates(env: &Env) -> Result<(), String> {
    start(env)?;
    let ns = NS_APPROVALS;
    namespace(env, ns)?;
    sandbox_editors(env, ns)?;
    // The agent writes to its root filesystem and asks for that check's exemption.
    let mut writable = pod_template();
    writable["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    writable["metadata"]["annotations"]["openclaw.io/exempt"] = json!("read-only-root-filesystem");
    // No `resources`: the controllers write `resources: {}` back into each such container of
    // the Sandboxes they make, which the stamp's digest must not count as a change.
    let out = env.apply(
        &template(ns, "approved-agent", writable.clone()),
        &AS_APPROVER,
    );
    expect(out.ok, || format!("the approver's template: {}", out.all()))?;
    let stored = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "sandboxtemplate",
        "approved-agent",
        "-o",
        "json",
    ])?;
    // The stamp, on the template's pod template as on a workload's (or on the template).
    let pod_annotations = stored["spec"]["podTemplate"]["metadata"]["annotations"].clone();
    let own_annotations = stored["metadata"]["annotations"].clone();
    expect(
        pod_annotations.get("openclaw.io/approval").is_some()
            || own_annotations.get("openclaw.io/approval").is_some(),
        || {
            format!(
                "no approval stamp on the approver's template: {}",
                stored["metadata"]
            )
        },
    )?;
    env.eventually(20, || {
        let out = env.apply(&pool(ns, "approved-pool", "approved-agent"), &AS_APPROVER);
        expect(out.ok && !out.all().contains("does not exist"), || {
            format!("pool of the approved template: {}", out.all())
        })
    })?;
    let out = env.apply(&claim(ns, "approved-claim", "approved-pool"), &AS_USER);
    expect(out.ok, || {
        format!("the tenant's claim on the approved pool: {}", out.all())
    })?;
    // Whichever Sandbox the claim gets (the warm one never reports an IP here: a cold start
    // after 2 s), its Pod is stored with the exemption, made by the controller.
    let sb = env.eventually(40, || {
        let c = env.kubectl_json(&[
            "-n",
            ns,
            "get",
            "sandboxclaim",
            "approved-claim",
            "-o",
            "json",
        ])?;
        c["status"]["sandbox"]["name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or_else(|| {
                format!(
                    "the claim has no Sandbox: {}; refusals: {:#?}",
                    c["status"],
                    refusals(env, ns)
                )
            })
    })?;
    let pod = pod_of_sandbox(env, ns, &sb)?;
    expect(
        pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] == json!(false),
        || {
            format!(
                "the approved Pod {sb} is not the writable agent: {}",
                pod["spec"]
            )
        },
    )?;
    carries_the_box(&pod, "approved-agent", Token::None)?;
    // The warm pool's own Sandbox and Pod came through too.
    let warm = sandboxes_of(env, ns, "SandboxWarmPool/approved-pool")?;
    let warm_name = warm
        .first()
        .and_then(|s| s["metadata"]["name"].as_str())
        .ok_or("the approved pool has no Sandbox")?
        .to_string();
    carries_the_box(
        &pod_of_sandbox(env, ns, &warm_name)?,
        "approved-agent",
        Token::None,
    )?;

    // The tenant copies the approved template's pod template, stamp and all, onto one of
    // their own: refused at apply while the namespace enforces.
    let mut copied = template(ns, "copied-agent", writable.clone());
    copied["spec"]["podTemplate"]["metadata"]["annotations"] = pod_annotations;
    for (k, v) in own_annotations.as_object().into_iter().flatten() {
        if k.starts_with("openclaw.io/") {
            copied["metadata"]["annotations"][k] = v.clone();
        }
    }
    let out = env.apply(&copied, &AS_USER);
    expect(
        !out.ok && out.all().contains("read-only-root-filesystem"),
        || format!("the tenant's copy under enforce: {}", out.all()),
    )?;
    // Stored while the namespace is in audit mode (as during a roll-out), it is judged when
    // the controller makes something of it after enforcement starts.
    mode(env, ns, "audit")?;
    let out = env.apply(&copied, &AS_USER);
    expect(out.ok, || {
        format!("the tenant's copy in audit mode: {}", out.all())
    })?;
    mode(env, ns, "enforce")?;
    let out = env.apply(&pool(ns, "copied-pool", "copied-agent"), &AS_USER);
    expect(out.ok, || {
        format!("pool of the copied template: {}", out.all())
    })?;
    let out = env.apply(&claim(ns, "copied-claim", "copied-pool"), &AS_USER);
    expect(out.ok, || {
        format!("the tenant's claim on the copy: {}", out.all())
    })?;
    // The controller tries, and is refused each time: the pool's Sandbox (the stamp names
    // another template) or, had that passed, its Pod.
    env.eventually(40, || {
        let refused: Vec<String> = refusals(env, ns)
            .into_iter()
            .filter(|l| l.contains("read-only-root-filesystem") && l.contains("copied"))
            .collect();
        expect(!refused.is_empty(), || {
            let text = log_text(env);
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "no refusal of the copied template's objects in the controller's log:\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            )
        })
    })?;
    let copies: Vec<Value> = list(env, ns, "pods")?
        .into_iter()
        .filter(|p| {
            let n = p["metadata"]["name"].as_str().unwrap_or("");
            n.starts_with("copied-")
        })
        .collect();
    expect(copies.is_empty(), || {
        format!("a Pod of the tenant's copied template was stored: {copies:#?}")
    })
}
