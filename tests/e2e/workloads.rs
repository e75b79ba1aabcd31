//! The controller path: agents applied as workloads, their Pods made by
//! kube-controller-manager through admission, approvals that survive the controllers,
//! `kubectl debug` containers, and a ServiceAccount that opts out of tokens.

use crate::support::*;
use serde_json::{Value, json};

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The pod template of `pod` for a workload, labelled `e2e-workload: <name>` so its Pods can
/// be found, with the restart policy Jobs need.
fn template(pod: &Value, name: &str, job: bool) -> Value {
    let mut meta = pod["metadata"].clone();
    let m = meta.as_object_mut().unwrap();
    m.remove("name");
    m.remove("namespace");
    m.entry("labels").or_insert(json!({}))["e2e-workload"] = name.into();
    let mut spec = pod["spec"].clone();
    if job {
        spec["restartPolicy"] = "Never".into();
    }
    json!({"metadata": meta, "spec": spec})
}

/// A workload of `kind` named `name` around `pod`'s template.
pub(crate) fn workload(kind: &str, ns: &str, name: &str, pod: &Value) -> Value {
    let selector = json!({"matchLabels": {"e2e-workload": name}});
    let (api, spec) = match kind {
        "Job" => ("batch/v1", json!({"template": template(pod, name, true)})),
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": template(pod, name, true)}}}),
        ),
        "StatefulSet" => (
            "apps/v1",
            json!({"serviceName": name, "replicas": 1, "selector": selector, "template": template(pod, name, false)}),
        ),
        "DaemonSet" => (
            "apps/v1",
            json!({"selector": selector, "template": template(pod, name, false)}),
        ),
        _ => (
            "apps/v1",
            json!({"replicas": 1, "selector": selector, "template": template(pod, name, false)}),
        ),
    };
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

pub(crate) fn pods_of(env: &Env, ns: &str, name: &str) -> Result<Vec<Value>, String> {
    let list = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        &format!("e2e-workload={name}"),
        "-o",
        "json",
    ])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

pub fn wait_for_pods(env: &Env, ns: &str, name: &str) -> Result<Vec<Value>, String> {
    env.eventually(30, || {
        let pods = pods_of(env, ns, name)?;
        if pods.is_empty() {
            let events = env.kubectl(&[
                "-n",
                ns,
                "get",
                "events",
                "-o",
                "custom-columns=OBJ:.involvedObject.name,MSG:.message",
            ]);
            Err(format!(
                "no Pod of {ns}/{name} after 30 s; events:\n{}",
                events.stdout
            ))
        } else {
            Ok(pods)
        }
    })
}

/// Whether one event of the API server's audit log holds every one of `needles`.
pub fn audit_log_has(env: &Env, needles: &[&str]) -> bool {
    std::fs::read_to_string(&env.audit_log)
        .unwrap_or_default()
        .lines()
        .any(|l| needles.iter().all(|n| l.contains(n)))
}

/// What the mutation must have put into a stored Pod.
pub fn carries_the_box(pod: &Value) -> Result<(), String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let token = projected_token(pod).map_err(|e| format!("{name}: {e}"))?;
    let vols = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let secs = token["serviceAccountToken"]["expirationSeconds"]
        .as_i64()
        .unwrap_or(i64::MAX);
    expect(secs <= 3600, || format!("{name}: token lives {secs} s"))?;
    expect(
        vols.iter()
            .any(|v| v["csi"]["driver"] == "secrets-store.csi.k8s.io"),
        || format!("{name}: no CSI volume: {vols:?}"),
    )?;
    let env_names: Vec<String> = pod["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(String::from))
        .collect();
    expect(
        env_names.iter().any(|n| n == "OTEL_EXPORTER_OTLP_ENDPOINT")
            && env_names.last().map(String::as_str) == Some("OTEL_RESOURCE_ATTRIBUTES"),
        || format!("{name}: OTel env missing or not last: {env_names:?}"),
    )
}

pub fn every_workload_kind(env: &Env) -> Result<(), String> {
    let ns = NS_ENFORCE;
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
    ] {
        let lower = kind.to_lowercase();
        let template_path = if kind == "CronJob" {
            "spec.jobTemplate.spec.template.spec.containers[0]"
        } else {
            "spec.template.spec.containers[0]"
        };
        // Unhardened: refused at apply, with the template path in kubectl's output.
        let mut bad = hardened_pod(ns, "x");
        bad["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
        let out = env.apply(&workload(kind, ns, &format!("bad-{lower}"), &bad), &[]);
        expect(!out.ok, || {
            format!("{kind}: unhardened accepted: {}", out.all())
        })?;
        expect(
            out.all().contains(template_path) && out.all().contains("read-only-root-filesystem"),
            || format!("{kind}: no {template_path} in: {}", out.all()),
        )?;

        // Hardened: accepted, the controller makes Pods, and they carry the box.
        let name = format!("good-{lower}");
        let out = env.apply(&workload(kind, ns, &name, &hardened_pod(ns, "x")), &[]);
        expect(out.ok, || {
            format!("{kind}: hardened refused: {}", out.all())
        })?;
        let pod_owner = if kind == "CronJob" {
            let run = format!("{name}-manual");
            let out = env.kubectl(&[
                "-n",
                ns,
                "create",
                "job",
                &run,
                &format!("--from=cronjob/{name}"),
            ]);
            expect(out.ok, || {
                format!("create job --from=cronjob: {}", out.all())
            })?;
            run
        } else {
            name.clone()
        };
        let pods = wait_for_pods(env, ns, &name)?;
        for p in &pods {
            carries_the_box(p).map_err(|e| format!("{kind} ({pod_owner}): {e}"))?;
        }
    }
    Ok(())
}

pub fn template_only_label(env: &Env) -> Result<(), String> {
    // The agent label sits on the template only; the Deployment's own labels say nothing.
    let mut bad = hardened_pod(NS_ENFORCE, "x");
    bad["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    let mut d = workload("Deployment", NS_ENFORCE, "template-only", &bad);
    d["metadata"]["labels"] = json!({"team": "research"});
    let out = env.apply(&d, &[]);
    expect(!out.ok, || format!("accepted: {}", out.all()))?;
    expect(
        out.all().contains("spec.template.spec.containers[0]"),
        || out.all(),
    )
}

pub fn approvals_survive_controllers(env: &Env) -> Result<(), String> {
    let ns = NS_ENFORCE;
    editors(env, ns)?;
    let mut writable = hardened_pod(ns, "x");
    writable["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    writable["metadata"]["annotations"]["openclaw.io/exempt"] = "read-only-root-filesystem".into();

    // The approver's Deployment is stamped, and its Pods (made by the controllers) admitted.
    let out = env.apply(
        &workload("Deployment", ns, "approved", &writable),
        &AS_APPROVER,
    );
    expect(out.ok, || {
        format!("approver's Deployment refused: {}", out.all())
    })?;
    let stored = env.kubectl_json(&["-n", ns, "get", "deployment", "approved", "-o", "json"])?;
    let stamp = stored["spec"]["template"]["metadata"]["annotations"]["openclaw.io/approval"]
        .as_str()
        .ok_or_else(|| {
            format!(
                "no approval stamp: {}",
                stored["spec"]["template"]["metadata"]
            )
        })?
        .to_string();
    expect(
        stamp.contains("approver=bob") && stamp.contains("name=approved"),
        || stamp.clone(),
    )?;
    let pods = wait_for_pods(env, ns, "approved")?;
    carries_the_box(&pods[0])?;
    expect(
        audit_log_has(env, &["replicaset-controller", "openclaw-approval", "bob"]),
        || "no audit event of the controller's Pod naming the approval and bob".into(),
    )?;

    // The same annotations, stamp included, copied by a non-approver into another Deployment.
    let mut copied = workload("Deployment", ns, "copycat", &writable);
    copied["spec"]["template"]["metadata"]["annotations"]["openclaw.io/approval"] =
        stamp.clone().into();
    let out = env.apply(&copied, &AS_USER);
    expect(!out.ok, || format!("copied approval helped: {}", out.all()))?;
    expect(out.all().contains("read-only-root-filesystem"), || {
        out.all()
    })?;

    // A non-approver may not mint one either.
    let out = env.apply(
        &workload("Deployment", ns, "self-approved", &writable),
        &AS_USER,
    );
    expect(!out.ok, || {
        format!("non-approver's exemption honoured: {}", out.all())
    })
}

pub fn debug_containers(env: &Env) -> Result<(), String> {
    let ns = "e2e-debug";
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"openclaw.io/mode": "audit"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    // Admitted in audit mode with a writable root filesystem.
    let mut pod = hardened_pod(ns, "debugged");
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    env.eventually(20, || {
        let out = env.apply(&pod, &[]);
        if out.ok {
            Ok(())
        } else {
            Err(format!("audit-mode pod refused: {}", out.all()))
        }
    })?;
    let out = env.kubectl(&[
        "label",
        "namespace",
        ns,
        "openclaw.io/mode=enforce",
        "--overwrite",
    ]);
    expect(out.ok, || out.all())?;

    // The approver debugs: from anyone else a debug container is refused as an exec
    // (tests/e2e/doors.rs), whatever it looks like.
    editors(env, ns)?;
    debuggers(env, ns)?;
    let add = |name: &str, sc: Value| {
        // What `kubectl debug --target` sends: the Pod with one more ephemeral container.
        let patch = json!({"spec": {"ephemeralContainers": [
            {"name": name, "image": "busybox", "targetContainerName": "agent", "securityContext": sc}]}});
        env.kubectl(&[
            "-n",
            ns,
            "patch",
            "pod",
            "debugged",
            "--subresource=ephemeralcontainers",
            "--type=strategic",
            "-p",
            &patch.to_string(),
            AS_APPROVER[0],
            AS_APPROVER[1],
        ])
    };
    // An unhardened one is refused once the namespace enforces (the label is followed by watch).
    env.eventually(20, || {
        let out = add("open", json!({"privileged": true}));
        if out.ok {
            Err(format!(
                "unhardened debug container admitted: {}",
                out.all()
            ))
        } else if out.all().contains("spec.ephemeralContainers[0]") {
            Ok(())
        } else {
            Err(format!(
                "refused without the ephemeral container's path: {}",
                out.all()
            ))
        }
    })?;
    // A hardened one joins the Pod, whose own old violation is not held against it.
    let out = add(
        "locked",
        json!({"runAsNonRoot": true, "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
    );
    expect(out.ok, || {
        format!("hardened debug container refused: {}", out.all())
    })
}

pub fn service_account_without_tokens(env: &Env) -> Result<(), String> {
    let ns = NS_ENFORCE;
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": false,
        "metadata": {"name": "quiet-agent", "namespace": ns}}),
    ])?;
    let mut pod = hardened_pod(ns, "quiet");
    pod["spec"]["serviceAccountName"] = "quiet-agent".into();
    let stored = env.eventually(20, || {
        let out = env.apply(&pod, &[]);
        if !out.ok {
            return Err(format!("refused: {}", out.all()));
        }
        env.get_pod(ns, "quiet")
    })?;
    let vols = stored["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    expect(!vols.iter().any(|v| v.get("projected").is_some()), || {
        format!("a token volume was mounted: {vols:?}")
    })
}

/// The chart's catch-all entries, rendered for this run's webhook, registered under their own
/// configuration names for the length of the case.
/// Deletes the configurations [`register_catch_all`] made.
pub fn remove_catch_all(env: &Env) {
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let _ = env.kubectl(&[
            "delete",
            kind,
            "openclaw-e2e-catchall",
            "--ignore-not-found",
        ]);
    }
}

/// Registers the chart's catch-all entries (pods with an OpenClaw image and no agent label) as
/// `openclaw-e2e-catchall`; [`remove_catch_all`] takes them away.
pub fn register_catch_all(env: &Env) -> Result<(), String> {
    let rendered = std::process::Command::new(&env.helm)
        .args([
            "template",
            "openclaw-admission",
            &format!("{ROOT}/charts/openclaw-admission"),
            "--namespace",
            "openclaw-system",
            "--show-only",
            "templates/webhooks.yaml",
            "--set",
            "catchAll.enabled=true",
            "--set",
            "certificates.mode=secret",
            "--set",
            "certificates.secret.name=unused",
        ])
        .arg("--set")
        .arg(format!("certificates.secret.caBundle={}", env.ca_bundle))
        .arg("--set")
        .arg(format!(
            "webhook.url=https://127.0.0.1:{}",
            env.webhook_port
        ))
        .output()
        .map_err(|e| format!("helm: {e}"))?;
    expect(rendered.status.success(), || {
        String::from_utf8_lossy(&rendered.stderr).into_owned()
    })?;
    let out = env.kubectl_stdin(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        &String::from_utf8_lossy(&rendered.stdout),
    );
    expect(out.ok, || out.all())?;
    // One JSON object per document, one after the other.
    let configs: Vec<Value> = serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut docs = Vec::new();
    for mut cfg in configs {
        let hooks: Vec<Value> = cfg["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["name"].as_str().unwrap_or("").contains("catchall"))
            .cloned()
            .collect();
        cfg["webhooks"] = Value::Array(hooks);
        cfg["metadata"] = json!({"name": "openclaw-e2e-catchall"});
        docs.push(cfg);
    }
    expect(docs.len() == 2, || {
        format!("expected two configurations: {docs:?}")
    })?;
    env.apply_docs(&docs)
}

pub fn catch_all(env: &Env) -> Result<(), String> {
    register_catch_all(env)?;
    let result = (|| {
        let unlabel = |mut p: Value| {
            p["metadata"]["labels"] = json!({"team": "research"});
            p
        };
        // An unhardened OpenClaw pod that dropped its label: refused (catchAll.action deny).
        let mut bad = unlabel(hardened_pod(NS_ENFORCE, "unlabelled-bad"));
        bad["spec"]["hostNetwork"] = json!(true);
        env.eventually(20, || {
            let out = env.apply(&bad, &[]);
            if out.ok {
                let _ = env.kubectl(&[
                    "-n",
                    NS_ENFORCE,
                    "delete",
                    "pod",
                    "unlabelled-bad",
                    "--wait=false",
                ]);
                Err(format!(
                    "unlabelled unhardened agent accepted: {}",
                    out.all()
                ))
            } else if out.all().contains("no-host-access") {
                Ok(())
            } else {
                Err(format!("refused for another reason: {}", out.all()))
            }
        })?;
        // A hardened one is stored, and mutated like any agent.
        let good = unlabel(hardened_pod(NS_ENFORCE, "unlabelled-good"));
        let out = env.apply(&good, &[]);
        expect(out.ok, || {
            format!("hardened unlabelled agent refused: {}", out.all())
        })?;
        carries_the_box(&env.get_pod(NS_ENFORCE, "unlabelled-good")?)
    })();
    remove_catch_all(env);
    result
}

pub fn exec_requires_approval(env: &Env) -> Result<(), String> {
    let ns = NS_ENFORCE;
    editors(env, ns)?;
    let out = env.apply(&hardened_pod(ns, "exec-target"), &[]);
    expect(out.ok, || format!("agent pod refused: {}", out.all()))?;
    let exec = |who: &[&str]| {
        let mut args = vec!["-n", ns, "exec", "exec-target", "-c", "agent"];
        args.extend_from_slice(who);
        args.extend_from_slice(&["--", "cat", "/etc/hostname"]);
        env.kubectl(&args)
    };
    // An ordinary user: refused by admission, naming the user, the pod and the rule.
    let out = exec(&AS_USER);
    let text = out.all();
    expect(
        !out.ok
            && text.contains("validate-exec.openclaw.io")
            && text.contains("mallory")
            && text.contains(&format!("{ns}/exec-target"))
            && text.contains("exec-requires-approval"),
        || format!("ordinary user's exec not refused as expected: {text}"),
    )?;
    // An approver: admitted. No kubelet runs here, so the API server fails after admission,
    // when it looks for the node to proxy to; the webhook's refusal is absent.
    let out = exec(&AS_APPROVER);
    let text = out.all();
    expect(
        !text.contains("validate-exec.openclaw.io") && !text.contains("exec-requires-approval"),
        || format!("approver's exec refused by the webhook: {text}"),
    )?;
    expect(
        audit_log_has(
            env,
            &["openclaw-exec", "\"username\":\"bob\"", "cat /etc/hostname"],
        ),
        || "no audit event of bob's exec with the command".into(),
    )
}

/// The policy file the webhook serves from, as the suite wrote it.
pub fn policy_file(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("policy.yaml")
}

pub fn live_policy_and_mode_labels(env: &Env) -> Result<(), String> {
    let ns = "e2e-live";
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    let original = std::fs::read_to_string(policy_file(env)).map_err(|e| e.to_string())?;
    let writable = |name: &str| {
        let mut p = hardened_pod(ns, name);
        p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
        p
    };
    let result = (|| {
        let refused = |name: &str| -> Result<(), String> {
            let out = env.apply(&writable(name), &[]);
            if out.ok {
                // Not yet in force: take the pod away so the next try is a CREATE again.
                let _ = env.kubectl(&["-n", ns, "delete", "pod", name, "--wait=false"]);
                Err(format!("{name} accepted"))
            } else {
                Ok(())
            }
        };
        let accepted = |name: &str| -> Result<(), String> {
            let out = env.apply(&writable(name), &[]);
            if out.ok {
                Ok(())
            } else {
                Err(format!("{name} refused: {}", out.all()))
            }
        };
        env.eventually(20, || refused("before"))?;

        // A valid change takes effect without a restart.
        let relaxed = original.replace(
            "disabledChecks: [",
            "disabledChecks: [read-only-root-filesystem, ",
        );
        std::fs::write(policy_file(env), &relaxed).map_err(|e| e.to_string())?;
        env.eventually(20, || accepted("relaxed"))?;

        // A bad change is kept out: the policy in force stays, the error is logged with its key.
        let bad = format!("{relaxed}checks:\n  tokn: {{}}\n");
        std::fs::write(policy_file(env), bad).map_err(|e| e.to_string())?;
        env.eventually(20, || {
            let log = env.webhook_log_text();
            if log.contains("policy not reloaded") && log.contains("tokn") {
                Ok(())
            } else {
                Err("no log line for the refused policy".to_string())
            }
        })?;
        accepted("still-relaxed")?;

        // Back to the original; then the namespace's mode label, followed by watch.
        std::fs::write(policy_file(env), &original).map_err(|e| e.to_string())?;
        env.eventually(20, || refused("restored"))?;
        let out = env.kubectl(&[
            "label",
            "namespace",
            ns,
            "openclaw.io/mode=audit",
            "--overwrite",
        ]);
        expect(out.ok, || out.all())?;
        env.eventually(20, || accepted("audited"))?;
        let out = env.kubectl(&[
            "label",
            "namespace",
            ns,
            "openclaw.io/mode=enforce",
            "--overwrite",
        ]);
        expect(out.ok, || out.all())?;
        env.eventually(20, || refused("enforced-again"))
    })();
    // Whatever happened, the suite's policy is restored for the cases after this one.
    let _ = std::fs::write(policy_file(env), &original);
    result
}

/// `openclaw-admission audit` with this suite's kubeconfig and policy.
fn audit(env: &Env, extra: &[&str]) -> Result<(std::process::Output, Value), String> {
    let out = std::process::Command::new(BIN)
        .args(["audit", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .args([
            "--policy",
            &format!("{ROOT}/tests/e2e/policy.yaml"),
            "-o",
            "json",
        ])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run audit: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "audit printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out, report))
}

/// Applies the policy report CRDs as their owners ship them (tests/reports/fetch.sh), both
/// APIs, server-side over whatever is there, and waits until they are established.
pub fn apply_upstream_report_crds(env: &Env) -> Result<(), String> {
    let dir = crate::prebuilt::require(&[crate::prebuilt::Need::ReportCrds])?.remove(0);
    for sub in ["wgpolicyk8s", "openreports"] {
        let out = env.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &dir.join(sub).to_string_lossy(),
        ]);
        expect(out.ok, || {
            format!("installing the {sub} CRDs: {}", out.all())
        })?;
    }
    let out = env.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/policyreports.wgpolicyk8s.io",
        "crd/clusterpolicyreports.wgpolicyk8s.io",
        "crd/reports.openreports.io",
        "crd/clusterreports.openreports.io",
    ]);
    expect(out.ok, || out.all())
}

/// Installs the policy report CRDs as their owners ship them (tests/reports/fetch.sh: OpenReports'
/// module and Kyverno's), so every report written here passes the upstream schemas; and on the
/// way proves the upgrade notes: the `wgpolicyk8s.io` CRDs earlier releases shipped come first,
/// holding a report, and the upstream ones applied over them as docs/operations.md says keep it.
fn install_report_crds(env: &Env, ns: &str) -> Result<(), String> {
    let established = |crds: &[&str]| {
        let mut args = vec!["wait", "--for=condition=established", "--timeout=30s"];
        let names: Vec<String> = crds.iter().map(|c| format!("crd/{c}")).collect();
        args.extend(names.iter().map(String::as_str));
        let out = env.kubectl(&args);
        expect(out.ok, || out.all())
    };
    let wg = [
        "policyreports.wgpolicyk8s.io",
        "clusterpolicyreports.wgpolicyk8s.io",
    ];
    let out = env.kubectl(&[
        "apply",
        "-f",
        &format!("{ROOT}/tests/e2e/crds/policyreport-before-33.yaml"),
    ]);
    expect(out.ok, || format!("installing the old CRDs: {}", out.all()))?;
    established(&wg)?;
    let kept = json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "from-an-earlier-release", "namespace": ns},
        "summary": {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0},
        "results": [{"policy": "openclaw-admission", "rule": "run-as-non-root", "result": "fail",
            "severity": "high", "source": "openclaw-admission", "message": "kept across the upgrade"}]});
    env.eventually(20, || env.apply_docs(std::slice::from_ref(&kept)))?;
    let before = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "policyreport",
        "from-an-earlier-release",
        "-o",
        "json",
    ])?;

    apply_upstream_report_crds(env)?;
    let crd = env.kubectl_json(&["get", "crd", wg[0], "-o", "json"])?;
    expect(
        crd["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"].is_string(),
        || {
            format!(
                "the upstream schema did not replace the old one: {}",
                crd["metadata"]
            )
        },
    )?;
    let after = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "policyreport",
        "from-an-earlier-release",
        "-o",
        "json",
    ])?;
    expect(
        after["metadata"]["uid"] == before["metadata"]["uid"]
            && after["results"] == before["results"],
        || format!("the report did not survive the upgrade: {after}"),
    )
}

pub fn audit_scans_the_cluster_and_writes_policy_reports(env: &Env) -> Result<(), String> {
    // A namespace in audit mode, seeded with known violations.
    let ns = "e2e-scan";
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"openclaw.io/mode": "audit"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": ns}}),
        deny_egress_policy(ns),
    ])?;
    install_report_crds(env, ns)?;
    let pod = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut p = hardened_pod(ns, name);
        p["spec"]["automountServiceAccountToken"] = json!(false);
        f(&mut p);
        p
    };
    let mut writable = hardened_pod(ns, "x");
    writable["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    writable["spec"]["automountServiceAccountToken"] = json!(false);
    // One replica: its Pod, made by the controllers through a ReplicaSet, is reported with the
    // Deployment as its workload.
    let deploy = workload("Deployment", ns, "scan-writable", &writable);
    let seeded = vec![
        deploy,
        pod("scan-hardened", &|_| {}),
        pod("scan-root", &|p| {
            p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false)
        }),
        pod("scan-unlabelled", &|p| {
            p["metadata"]["labels"] = json!({"team": "research"});
            p["spec"]["hostNetwork"] = json!(true);
        }),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "scan-web", "namespace": ns},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
    ];
    env.eventually(20, || env.apply_docs(&seeded))?;
    env.eventually(60, || {
        let pods = env.kubectl_json(&[
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            "e2e-workload=scan-writable",
            "-o",
            "json",
        ])?;
        expect(
            pods["items"].as_array().is_some_and(|i| i.len() == 1),
            || format!("the Deployment's Pod is not there yet: {}", pods["items"]),
        )
    })?;

    let (out, report) = audit(env, &["-n", ns, "--write-reports", "--report-api", "both"])?;
    expect(out.status.code() == Some(1), || {
        format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let mut got: Vec<(String, String, Vec<String>, bool, bool)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut checks: Vec<String> = f["violations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["check"].as_str().map(String::from))
                .collect();
            checks.sort();
            checks.dedup();
            let name = f["name"].as_str().unwrap_or("");
            // The Deployment's Pod has a generated name.
            let name = if name.starts_with("scan-writable-") {
                "scan-writable-*"
            } else {
                name
            };
            (
                f["kind"].as_str().unwrap_or("").to_string(),
                name.to_string(),
                checks,
                f["unlabelled"] == json!(true),
                f["refused_if_enforced"] == json!(true),
            )
        })
        .collect();
    got.sort();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let want = vec![
        (
            "Deployment".to_string(),
            "scan-writable".to_string(),
            s(&["read-only-root-filesystem"]),
            false,
            true,
        ),
        (
            "Pod".to_string(),
            "scan-hardened".to_string(),
            s(&[]),
            false,
            false,
        ),
        (
            "Pod".to_string(),
            "scan-root".to_string(),
            s(&["run-as-non-root"]),
            false,
            true,
        ),
        (
            "Pod".to_string(),
            "scan-unlabelled".to_string(),
            s(&["no-host-access"]),
            true,
            true,
        ),
        (
            "Pod".to_string(),
            "scan-writable-*".to_string(),
            s(&["read-only-root-filesystem"]),
            false,
            true,
        ),
    ];
    expect(got == want, || {
        format!("audit findings differ from the seeded violations:\n got  {got:?}\n want {want:?}")
    })?;
    expect(
        report["next_step"]["audit_to_warn_warned"] == json!(4),
        || format!("next step: {}", report["next_step"]),
    )?;

    // Both APIs hold the namespace's report, read back through the upstream schemas, each
    // result with its fields.
    let rules = report_results;
    let mut first = Value::Null;
    for (kind, api_version) in [
        ("report", "openreports.io/v1alpha1"),
        ("policyreport", "wgpolicyk8s.io/v1alpha2"),
    ] {
        let r = env.kubectl_json(&["-n", ns, "get", kind, "openclaw-admission", "-o", "json"])?;
        expect(r["apiVersion"] == json!(api_version), || {
            r["apiVersion"].to_string()
        })?;
        expect(
            rules(&r).contains(&"scan-root:run-as-non-root:fail".to_string()),
            || format!("{kind}: {:?}", rules(&r)),
        )?;
        let fails = rules(&r).iter().filter(|x| x.ends_with(":fail")).count();
        expect(
            r["summary"]["pass"] == json!(1) && r["summary"]["fail"] == json!(fails) && fails >= 4,
            || format!("{kind} summary: {} for {:?}", r["summary"], rules(&r)),
        )?;
        let find = |name_prefix: &str, rule: &str| {
            r["results"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| {
                    x["rule"] == json!(rule)
                        && x["resources"][0]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with(name_prefix))
                })
                .cloned()
                .unwrap_or(Value::Null)
        };
        let root = find("scan-root", "run-as-non-root");
        let want = |x: &Value, field: &str, v: Value| {
            expect(x[field] == v, || format!("{kind} result {field}: {x}"))
        };
        want(&root, "source", json!("openclaw-admission"))?;
        want(&root, "policy", json!("run-as-non-root"))?;
        want(&root, "category", json!("OpenClaw agent box"))?;
        want(&root, "severity", json!("high"))?;
        expect(
            root["message"].as_str().is_some_and(|m| !m.is_empty()),
            || root.to_string(),
        )?;
        expect(
            root["resources"][0]["kind"] == json!("Pod")
                && root["resources"][0]["namespace"] == json!(ns)
                && root["resources"][0]["uid"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
            || root.to_string(),
        )?;
        let p = &root["properties"];
        expect(
            p["workload"] == json!("Pod/scan-root")
                && p["path"]
                    .as_str()
                    .is_some_and(|x| x.contains("runAsNonRoot"))
                && p["fix"].as_str().is_some_and(|x| !x.is_empty()),
            || format!("{kind} properties: {p}"),
        )?;
        // The Deployment's Pod is reported with the Deployment as its workload.
        let pod = find("scan-writable-", "read-only-root-filesystem");
        expect(
            pod["properties"]["workload"] == json!("Deployment/scan-writable"),
            || format!("{kind}: {pod}"),
        )?;
        if kind == "report" {
            first = r;
        }
    }

    // Without --report-api, OpenReports is written where it is served; a re-run after a fix
    // updates the Report in place.
    let out = env.kubectl(&["-n", ns, "delete", "pod", "scan-root", "--wait=true"]);
    expect(out.ok, || out.all())?;
    let (_, _) = audit(env, &["-n", ns, "--write-reports"])?;
    let second = env.kubectl_json(&[
        "-n",
        ns,
        "get",
        "report",
        "openclaw-admission",
        "-o",
        "json",
    ])?;
    expect(
        second["metadata"]["uid"] == first["metadata"]["uid"]
            && second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
            && !rules(&second).iter().any(|r| r.starts_with("scan-root:")),
        || format!("not updated in place: {:?}", rules(&second)),
    )?;
    let cluster =
        env.kubectl_json(&["get", "clusterreport", "openclaw-admission", "-o", "json"])?;
    expect(
        cluster["results"].as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["resources"][0]["name"] == json!(ns) && x["result"] == json!("fail"))
        }),
        || cluster.to_string(),
    )?;

    // A bound smaller than the namespace's results: numbered parts, each under it, whose
    // summaries add up to the whole; a re-run under the default bound deletes the parts it no
    // longer needs.
    let whole = &second["summary"];
    let (_, _) = audit(
        env,
        &["-n", ns, "--write-reports", "--report-max-bytes", "2048"],
    )?;
    // The namespace's Reports audit wrote, all parts.
    let list_reports = || {
        env.kubectl_json(&[
            "-n",
            ns,
            "get",
            "reports",
            "-l",
            "app.kubernetes.io/managed-by=openclaw-admission",
            "-o",
            "json",
        ])
    };
    let listed = list_reports()?;
    let parts = listed["items"].as_array().cloned().unwrap_or_default();
    expect(parts.len() >= 2, || {
        format!("{} part(s): {listed}", parts.len())
    })?;
    let mut sum = [0u64; 3];
    for p in &parts {
        let mut sent = p.clone();
        // What audit sent: the object without what the API server adds to its metadata.
        sent["metadata"] = json!({"name": p["metadata"]["name"], "namespace": ns, "labels": p["metadata"]["labels"]});
        let bytes = sent.to_string().len();
        expect(bytes <= 2048, || {
            format!("{} is {bytes} bytes", p["metadata"]["name"])
        })?;
        for (i, k) in ["pass", "fail", "warn"].iter().enumerate() {
            sum[i] += p["summary"][k].as_u64().unwrap_or(0);
        }
    }
    expect(
        sum == [
            whole["pass"].as_u64().unwrap_or(u64::MAX),
            whole["fail"].as_u64().unwrap_or(u64::MAX),
            whole["warn"].as_u64().unwrap_or(u64::MAX),
        ],
        || format!("parts add up to {sum:?}, the whole report said {whole}"),
    )?;
    let (_, _) = audit(env, &["-n", ns, "--write-reports"])?;
    let listed = list_reports()?;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    expect(names == ["openclaw-admission"], || {
        format!("stale parts left: {names:?}")
    })
}
