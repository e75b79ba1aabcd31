//! The e2e cases: each asserts what a user sees through kubectl and the API server.

use crate::observability;
use crate::second_webhook;
use crate::support::*;
use serde_json::{Value, json};

pub type Case = fn(&Env) -> Result<(), String>;

pub fn all() -> Vec<(&'static str, Case)> {
    let mut all: Vec<(&'static str, Case)> = vec![
        (
            "the_egress_policy_of_a_running_agent_is_held_until_the_agent_is_gone",
            crate::dependents::egress_policy_held_while_the_agent_runs,
        ),
        (
            "binding_an_agents_service_account_to_pods_exec_is_refused",
            crate::dependents::exec_binding_for_an_agent_is_refused,
        ),
        (
            "helm_uninstall_kubectl_delete_of_the_set_and_namespace_deletion_remove_an_agent",
            crate::dependents::uninstalling_an_agent_keeps_working,
        ),
        (
            "refuses_a_pod_breaking_each_check_naming_check_path_and_fix",
            refuses_each_check,
        ),
        (
            "stores_a_hardened_agent_with_token_csi_volume_and_otel_env",
            stores_hardened_agent,
        ),
        (
            "only_the_api_server_with_its_client_certificate_gets_reviews_answered",
            crate::callers::only_the_api_server_gets_reviews_answered,
        ),
        (
            "stores_a_pod_that_no_selector_matches_untouched",
            leaves_non_agents_untouched,
        ),
        ("warn_mode_prints_warnings_and_stores_the_pod", warn_mode),
        (
            "audit_mode_stores_the_pod_and_writes_audit_annotations",
            audit_mode,
        ),
        (
            "server_dry_run_gets_the_same_verdict_and_stores_nothing",
            dry_run,
        ),
        (
            "reinvocation_after_a_second_mutating_webhook_duplicates_nothing",
            reinvocation,
        ),
        (
            "namespace_serviceaccount_policy_and_pod_in_one_apply_are_accepted",
            one_apply,
        ),
        (
            "binding_to_cluster_admin_is_refused_until_the_binding_is_deleted",
            rbac_follows_bindings,
        ),
        (
            "aggregated_cluster_role_is_judged_live_as_its_sources_gain_and_lose_the_label",
            rbac_follows_aggregation,
        ),
        (
            "deployment_with_an_agent_template_is_refused_at_apply",
            refuses_deployment,
        ),
        (
            "every_workload_kind_is_refused_at_apply_or_gets_pods_from_its_controller_carrying_the_box",
            crate::workloads::every_workload_kind,
        ),
        (
            "deployment_labelled_only_on_its_template_is_refused_at_apply",
            crate::workloads::template_only_label,
        ),
        (
            "an_approvers_exemption_reaches_the_pods_controllers_make_and_a_copy_does_not",
            crate::workloads::approvals_survive_controllers,
        ),
        (
            "approvals_are_bound_to_content_through_restart_one_and_two_step_moves_and_replays",
            crate::approvals::approvals_bound_to_content,
        ),
        (
            "an_approved_deployment_stops_getting_pods_after_its_expiry",
            crate::approvals::approvals_expire,
        ),
        // Restarts the webhook with a rotated key, and as it was at the end.
        (
            "an_approval_key_rotation_honours_old_grants_until_the_overlap_ends",
            crate::approvals::rotation_keeps_old_grants_until_the_overlap_ends,
        ),
        (
            "debug_container_is_judged_alone_hardened_admitted_unhardened_refused",
            crate::workloads::debug_containers,
        ),
        (
            "serviceaccount_with_automount_off_gets_no_token_and_is_accepted",
            crate::workloads::service_account_without_tokens,
        ),
        (
            "catch_all_refuses_and_mutates_openclaw_pods_without_an_agent_label",
            crate::workloads::catch_all,
        ),
        (
            "exec_into_an_agent_is_refused_to_an_ordinary_user_and_admitted_for_an_approver",
            crate::workloads::exec_requires_approval,
        ),
    ];
    // The doors a tenant with `edit` rights tries (tests/e2e/doors.rs).
    all.extend(crate::doors::all());
    all.extend(crate::isolation::all());
    all.extend(crate::credentials::all());
    all.extend(crate::sandboxes::all());
    all.extend(crate::sandbox_controller::all());
    let rest: Vec<(&'static str, Case)> = vec![
        (
            "yaml_is_read_as_kubectl_reads_it_object_by_object",
            yaml_reads_like_kubectl,
        ),
        (
            "helm_template_of_an_agent_chart_piped_to_check_is_judged",
            helm_template_to_check,
        ),
        (
            "policy_file_and_namespace_mode_changes_apply_without_restart_and_a_bad_policy_is_kept_out",
            crate::workloads::live_policy_and_mode_labels,
        ),
        (
            "audit_finds_the_seeded_violations_object_by_object_and_keeps_policy_reports_up_to_date",
            crate::workloads::audit_scans_the_cluster_and_writes_policy_reports,
        ),
        (
            "the_scan_figures_follow_the_reports_and_every_dashboard_metric_is_exposed",
            crate::dashboard::scan_figures_follow_the_reports_and_every_dashboard_metric_exists,
        ),
        (
            "scheduled_scan_runs_the_cronjobs_arguments_with_its_own_token_and_may_do_nothing_more",
            crate::scan::scheduled_scan_writes_reports_as_its_own_least_privilege_account,
        ),
        (
            "decision_spans_reach_mlflow_for_a_refused_and_an_accepted_agent",
            observability::decision_spans_reach_mlflow,
        ),
        (
            "the_injected_otel_env_sends_an_agent_trace_to_mlflow",
            observability::injected_env_sends_an_agent_trace_to_mlflow,
        ),
        (
            "the_api_server_sends_its_reviews_over_http2",
            api_server_uses_http2,
        ),
        // After every MLflow case: it stops MLflow.
        (
            "stopping_mlflow_costs_counted_spans_and_no_answer",
            observability::stopping_mlflow_costs_spans_never_answers,
        ),
        // After every case that applies agents in namespaces of its own: these install CRDs,
        // and the SecretProviderClass one makes the class hardened_pod names matter.
        (
            "secret_provider_classes_are_found_once_served_an_existing_one_is_mounted_a_typo_warned",
            crate::optional_apis::secret_provider_classes,
        ),
        (
            "cilium_only_namespace_admits_the_agent_and_an_over_wide_cilium_policy_is_refused_by_name",
            crate::optional_apis::cilium_policies,
        ),
        // Last: an installed chart registers webhooks whose service has no endpoints here.
        (
            "helm_chart_renders_applies_installs_and_uninstalls_cleanly",
            helm_chart,
        ),
        (
            "image_pushed_to_a_loopback_registry_is_installed_by_the_chart",
            image_from_registry,
        ),
    ];
    all.extend(rest);
    all
}

/// The webhook offers h2 by ALPN; the API server's webhook client takes it, so its reviews
/// share multiplexed connections. By now every earlier case has sent reviews.
fn api_server_uses_http2(env: &Env) -> Result<(), String> {
    let text = env.webhook_get("/metrics")?;
    let count = |protocol: &str| -> f64 {
        let series = format!("openclaw_admission_connections_total{{protocol=\"{protocol}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    let (h2, h1) = (count("h2"), count("http/1.1"));
    println!("    connections to the webhook: h2 {h2}, http/1.1 {h1}");
    expect(h2 >= 1.0, || {
        format!("the API server never spoke HTTP/2 to the webhook (h2 {h2}, http/1.1 {h1})")
    })
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn container(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["containers"][0]
}

fn refuses_each_check(env: &Env) -> Result<(), String> {
    type Breaker = fn(&mut Value);
    let cases: Vec<(&str, &str, &str, Breaker)> = vec![
        ("run-as-non-root", NS_ENFORCE, "spec.containers[0]", |p| {
            container(p)["securityContext"]["runAsNonRoot"] = json!(false)
        }),
        (
            "read-only-root-filesystem",
            NS_ENFORCE,
            "spec.containers[0]",
            |p| container(p)["securityContext"]["readOnlyRootFilesystem"] = json!(false),
        ),
        (
            "drop-all-capabilities",
            NS_ENFORCE,
            "spec.containers[0]",
            |p| container(p)["securityContext"]["capabilities"]["drop"] = json!(["all"]),
        ),
        (
            "no-privilege-escalation",
            NS_ENFORCE,
            "spec.initContainers[0]",
            |p| {
                p["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    json!(true)
            },
        ),
        ("seccomp-profile", NS_ENFORCE, "spec.containers[0]", |p| {
            container(p)["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"})
        }),
        ("no-host-access", NS_ENFORCE, "spec.hostPID", |p| {
            p["spec"]["hostPID"] = json!(true)
        }),
        (
            "dedicated-service-account",
            NS_ENFORCE,
            "spec.serviceAccountName",
            |p| p["spec"]["serviceAccountName"] = json!("default"),
        ),
        ("default-deny-egress", NS_NOPOLICY, "", |_| {}),
        (
            "no-plaintext-credentials",
            NS_ENFORCE,
            "spec.containers[0].env[",
            |p| container(p)["env"][1] = json!({"name": "OPENAI_API_KEY", "value": "sk-proj-E2eFakeKeyValue0123456789abcdef"}),
        ),
        ("short-lived-token", NS_ENFORCE, "spec.volumes[", |p| {
            p["spec"]["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "long-token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 86400}}]}}));
            container(p)["volumeMounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "long-token", "mountPath": "/var/run/long"}));
        }),
    ];
    let mut failures = Vec::new();
    for (i, (check, ns, path, breaker)) in cases.iter().enumerate() {
        let name = format!("breaks-{i}");
        let mut pod = hardened_pod(ns, &name);
        breaker(&mut pod);
        let out = env.apply(&pod, &[]);
        let text = out.all();
        if out.ok || env.pod_exists(ns, &name) {
            failures.push(format!("{check}: pod was accepted: {text}"));
            continue;
        }
        for needle in [*check, *path, "fix:", "denied the request"] {
            if !text.contains(needle) {
                failures.push(format!("{check}: kubectl output lacks {needle:?}: {text}"));
            }
        }
        if text.contains("E2eFakeKeyValue") {
            failures.push(format!("{check}: the secret value was echoed: {text}"));
        }
    }
    expect(failures.is_empty(), || failures.join("\n"))
}

fn volumes(pod: &Value) -> Vec<&Value> {
    pod["spec"]["volumes"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn stores_hardened_agent(env: &Env) -> Result<(), String> {
    let pod = hardened_pod(NS_ENFORCE, "hardened");
    let out = env.apply(&pod, &[]);
    expect(out.ok, || format!("hardened pod refused: {}", out.all()))?;
    let stored = env.get_pod(NS_ENFORCE, "hardened")?;
    let spec = &stored["spec"];
    expect(spec["automountServiceAccountToken"] == json!(false), || {
        "automountServiceAccountToken is not false".into()
    })?;
    let token = projected_token(&stored)?;
    let vols = volumes(&stored);
    expect(
        token["serviceAccountToken"]["expirationSeconds"] == json!(3600),
        || format!("token: {token}"),
    )?;
    let csi = vols
        .iter()
        .find(|v| v.get("csi").is_some())
        .ok_or("no CSI volume")?;
    expect(csi["csi"]["driver"] == "secrets-store.csi.k8s.io", || {
        format!("csi: {csi}")
    })?;
    expect(
        csi["csi"]["volumeAttributes"]["secretProviderClass"] == "openclaw-vault",
        || format!("csi: {csi}"),
    )?;
    let agent = &spec["containers"][0];
    let mounts: Vec<&str> = agent["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for p in [
        "/var/run/secrets/kubernetes.io/serviceaccount",
        "/mnt/secrets-store",
    ] {
        expect(mounts.contains(&p), || {
            format!("agent container lacks mount {p}: {mounts:?}")
        })?;
    }
    let names: Vec<&str> = agent["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for n in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ] {
        expect(names.contains(&n), || {
            format!("agent env lacks {n}: {names:?}")
        })?;
    }
    expect(names.last() == Some(&"OTEL_RESOURCE_ATTRIBUTES"), || {
        format!("OTEL_RESOURCE_ATTRIBUTES not last: {names:?}")
    })?;
    let injected = stored["metadata"]["annotations"]["openclaw.io/injected"]
        .as_str()
        .unwrap_or("");
    expect(!injected.is_empty(), || {
        "no openclaw.io/injected annotation".into()
    })?;
    println!(
        "    stored pod: volumes {:?}; injected: {injected}",
        vols.iter()
            .map(|v| v["name"].as_str().unwrap_or(""))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// A pod's spec with the random suffix of the ServiceAccount plugin's volume made constant.
fn normalized_spec(pod: &Value) -> String {
    let text = pod["spec"].to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("kube-api-access-") {
        out.push_str(&rest[..i + "kube-api-access-".len()]);
        out.push_str("XXXXX");
        rest = &rest[i + "kube-api-access-".len() + 5..];
    }
    out.push_str(rest);
    out.replace(&format!("\"{NS_EXCLUDED}\""), "\"NS\"")
        .replace(&format!("\"{NS_ENFORCE}\""), "\"NS\"")
}

fn leaves_non_agents_untouched(env: &Env) -> Result<(), String> {
    // Unhardened on purpose: no selector matches, so nothing is judged or injected.
    let make = |ns: &str| {
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"plain","namespace":ns,"labels":{"app":"web"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1.27","env":[{"name":"A","value":"1"}]}]}})
    };
    // The same pod in a namespace the webhooks leave out is the reference: API defaults only.
    for ns in [NS_EXCLUDED, NS_ENFORCE] {
        let out = env.apply(&make(ns), &[]);
        expect(out.ok, || {
            format!("plain pod refused in {ns}: {}", out.all())
        })?;
    }
    let reference = env.get_pod(NS_EXCLUDED, "plain")?;
    let judged = env.get_pod(NS_ENFORCE, "plain")?;
    expect(
        normalized_spec(&reference) == normalized_spec(&judged),
        || {
            format!(
                "spec differs:\n  reference {}\n  stored    {}",
                normalized_spec(&reference),
                normalized_spec(&judged)
            )
        },
    )?;
    expect(
        judged["metadata"]["annotations"]
            .get("openclaw.io/injected")
            .is_none(),
        || "annotated".into(),
    )
}

fn unhardened_rootfs(ns: &str, name: &str) -> Value {
    let mut pod = hardened_pod(ns, name);
    container(&mut pod)["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    pod
}

fn warn_mode(env: &Env) -> Result<(), String> {
    let out = env.apply(&unhardened_rootfs(NS_WARN, "warned"), &[]);
    expect(out.ok, || format!("refused in warn mode: {}", out.all()))?;
    let text = out.all();
    expect(
        text.contains("Warning:") && text.contains("read-only-root-filesystem"),
        || format!("no warning printed: {text}"),
    )?;
    expect(env.pod_exists(NS_WARN, "warned"), || {
        "pod not stored".into()
    })
}

fn audit_mode(env: &Env) -> Result<(), String> {
    let out = env.apply(&unhardened_rootfs(NS_AUDIT, "audited"), &[]);
    expect(out.ok, || format!("refused in audit mode: {}", out.all()))?;
    expect(!out.all().contains("Warning:"), || {
        format!("audit mode printed warnings: {}", out.all())
    })?;
    expect(env.pod_exists(NS_AUDIT, "audited"), || {
        "pod not stored".into()
    })?;
    env.eventually(10, || {
        let log = std::fs::read_to_string(&env.audit_log).map_err(|e| e.to_string())?;
        let hit = log.lines().any(|l| {
            l.contains("\"audited\"")
                && l.contains("openclaw-violations")
                && l.contains("read-only-root-filesystem")
        });
        expect(hit, || {
            "no audit event of pod audited with openclaw-violations".into()
        })
    })
}

fn dry_run(env: &Env) -> Result<(), String> {
    let bad = unhardened_rootfs(NS_ENFORCE, "dry-bad");
    let normal = env.apply(&bad, &[]);
    let dry = env.apply(&bad, &["--dry-run=server"]);
    expect(!normal.ok && !dry.ok, || {
        format!("bad pod accepted: {} / {}", normal.all(), dry.all())
    })?;
    let line = |t: &str| {
        t.lines()
            .filter(|l| l.contains("read-only-root-filesystem"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    expect(line(&normal.all()) == line(&dry.all()), || {
        format!("verdicts differ:\n{}\n{}", normal.all(), dry.all())
    })?;
    let good = env.apply(&hardened_pod(NS_ENFORCE, "dry-good"), &["--dry-run=server"]);
    expect(good.ok && good.stdout.contains("server dry run"), || {
        format!("dry run of a good pod: {}", good.all())
    })?;
    expect(!env.pod_exists(NS_ENFORCE, "dry-good"), || {
        "dry run stored the pod".into()
    })
}

fn reinvocation(env: &Env) -> Result<(), String> {
    let certs = env.dir.path().join("certs");
    let (port, stop) =
        second_webhook::start(&env.rt, &certs.join("tls.crt"), &certs.join("tls.key"))?;
    // Named to sort after ours, so ours runs first and is then reinvoked.
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "zz-e2e-second-mutator"},
        "webhooks": [{
            "name": "second.e2e.openclaw.io",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate"), "caBundle": env.ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "objectSelector": {"matchLabels": {"app": "openclaw"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS_ENFORCE}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
            "failurePolicy": "Fail", "reinvocationPolicy": "IfNeeded"
        }]
    });
    let result = (|| {
        env.apply_docs(std::slice::from_ref(&config))?;
        let out = env.apply(&hardened_pod(NS_ENFORCE, "reinvoked"), &[]);
        expect(out.ok, || format!("refused: {}", out.all()))?;
        let stored = env.get_pod(NS_ENFORCE, "reinvoked")?;
        let spec = &stored["spec"];
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut problems = Vec::new();
        let dupes = |list: Vec<String>| {
            let mut s = list.clone();
            s.sort();
            s.dedup();
            s.len() != list.len()
        };
        if dupes(names(&spec["volumes"])) {
            problems.push(format!("duplicated volume: {:?}", names(&spec["volumes"])));
        }
        let agent = &spec["containers"][0];
        if dupes(names(&agent["env"])) {
            problems.push(format!("duplicated env: {:?}", names(&agent["env"])));
        }
        let mounts: Vec<String> = agent["volumeMounts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["mountPath"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if dupes(mounts.clone()) {
            problems.push(format!("duplicated mount: {mounts:?}"));
        }
        if !names(&agent["env"]).contains(&second_webhook::ENV_NAME.to_string()) {
            problems.push("the second webhook did not run".into());
        }
        expect(problems.is_empty(), || problems.join("; "))
    })();
    let _ = env.kubectl(&[
        "delete",
        "mutatingwebhookconfiguration",
        "zz-e2e-second-mutator",
    ]);
    drop(stop);
    result
}

fn one_apply(env: &Env) -> Result<(), String> {
    let ns = "e2e-fresh";
    let docs = [
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns}}),
        json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":AGENT_SA,"namespace":ns}}),
        deny_egress_policy(ns),
        hardened_pod(ns, "agent"),
    ];
    // One file, in that order, one apply.
    let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let out = env.kubectl_stdin(&["apply", "-f", "-"], &text);
    expect(out.ok, || format!("one-file apply refused: {}", out.all()))?;
    expect(env.pod_exists(ns, "agent"), || "pod not stored".into())
}

/// A namespace of its own with the agent ServiceAccount and default-deny egress and no agent
/// running yet: binding a running agent's ServiceAccount to a broad role is itself refused
/// (`dependents`), so the cases that watch a Pod being refused after such a binding start
/// where no agent runs.
fn fresh_agent_namespace(env: &Env, ns: &str) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns}}),
        json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":AGENT_SA,"namespace":ns}}),
        deny_egress_policy(ns),
    ])?;
    env.wait_for_default_service_account(ns)
}

fn rbac_follows_bindings(env: &Env) -> Result<(), String> {
    const NS_ENFORCE: &str = "e2e-rbac-bindings";
    fresh_agent_namespace(env, NS_ENFORCE)?;
    let binding = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
        "metadata":{"name":"agent-is-admin","namespace":NS_ENFORCE},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
        "subjects":[{"kind":"ServiceAccount","name":AGENT_SA,"namespace":NS_ENFORCE}]});
    env.apply_docs(&[binding])?;
    // The webhook learns of the binding through its watch: retry until it refuses.
    let mut i = 0;
    let refusal = env.eventually(15, || {
        i += 1;
        let name = format!("rbac-{i}");
        let out = env.apply(&hardened_pod(NS_ENFORCE, &name), &[]);
        if out.ok {
            let _ = env.kubectl(&["-n", NS_ENFORCE, "delete", "pod", &name, "--wait=false"]);
            return Err(format!(
                "accepted while bound to cluster-admin: {}",
                out.all()
            ));
        }
        Ok(out.all())
    })?;
    expect(
        refusal.contains("least-privilege-rbac") && refusal.contains("cluster-admin"),
        || format!("refusal does not name least-privilege-rbac and cluster-admin: {refusal}"),
    )?;
    let del = env.kubectl(&["-n", NS_ENFORCE, "delete", "rolebinding", "agent-is-admin"]);
    expect(del.ok, || del.all())?;
    env.eventually(15, || {
        i += 1;
        let out = env.apply(&hardened_pod(NS_ENFORCE, &format!("rbac-{i}")), &[]);
        expect(out.ok, || {
            format!("still refused after the binding was deleted: {}", out.all())
        })
    })
}

/// An aggregated ClusterRole bound to the agent grants what its selectors match: a
/// ClusterRole reading every Secret gains the aggregation label and the agent is refused;
/// the label removed, it is accepted again. The webhook learns both through its watch.
fn rbac_follows_aggregation(env: &Env) -> Result<(), String> {
    const NS_ENFORCE: &str = "e2e-rbac-aggregation";
    fresh_agent_namespace(env, NS_ENFORCE)?;
    let label = "e2e.openclaw.io/aggregate-to-agent";
    let aggregate = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
        "metadata":{"name":"e2e-agent-aggregate"},
        "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{label:"true"}}]},
        "rules":[]});
    let reader = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
        "metadata":{"name":"e2e-secret-reader"},
        "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["list"]}]});
    let binding = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
        "metadata":{"name":"e2e-agent-aggregate"},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"e2e-agent-aggregate"},
        "subjects":[{"kind":"ServiceAccount","name":AGENT_SA,"namespace":NS_ENFORCE}]});
    env.apply_docs(&[aggregate, reader, binding])?;
    let mut i = 0;
    let mut try_pod = |want_ok: bool| {
        env.eventually(15, || {
            i += 1;
            let name = format!("aggregate-{i}");
            let out = env.apply(&hardened_pod(NS_ENFORCE, &name), &[]);
            if out.ok {
                let _ = env.kubectl(&["-n", NS_ENFORCE, "delete", "pod", &name, "--wait=false"]);
            }
            if out.ok == want_ok {
                Ok(out.all())
            } else {
                Err(format!(
                    "pod {}: {}",
                    if out.ok { "accepted" } else { "refused" },
                    out.all()
                ))
            }
        })
    };
    let outcome = (|| {
        // Nothing matches the selector yet.
        try_pod(true)?;
        let lbl = env.kubectl(&[
            "label",
            "clusterrole",
            "e2e-secret-reader",
            &format!("{label}=true"),
        ]);
        expect(lbl.ok, || lbl.all())?;
        let refusal = try_pod(false)?;
        let unlabel = env.kubectl(&[
            "label",
            "clusterrole",
            "e2e-secret-reader",
            &format!("{label}-"),
        ]);
        expect(unlabel.ok, || unlabel.all())?;
        try_pod(true)?;
        Ok::<_, String>(refusal)
    })();
    // Cleaned up whatever happened, so later cases in this namespace are not refused.
    let _ = env.kubectl(&["delete", "clusterrolebinding", "e2e-agent-aggregate"]);
    let _ = env.kubectl(&[
        "delete",
        "clusterrole",
        "e2e-agent-aggregate",
        "e2e-secret-reader",
    ]);
    let refusal = outcome?;
    expect(
        refusal.contains("least-privilege-rbac")
            && refusal.contains("ClusterRole e2e-agent-aggregate")
            && refusal.contains("reads Secrets across the cluster"),
        || format!("refusal does not name the aggregated role and why: {refusal}"),
    )
}

fn refuses_deployment(env: &Env) -> Result<(), String> {
    let mut pod = unhardened_rootfs(NS_ENFORCE, "x");
    let template = json!({"metadata": {"labels": pod["metadata"]["labels"].take()}, "spec": pod["spec"].take()});
    let deploy = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"agent","namespace":NS_ENFORCE,"labels":{"app":"openclaw"}},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"openclaw"}},"template":template}});
    let out = env.apply(&deploy, &[]);
    expect(!out.ok, || format!("deployment accepted: {}", out.all()))?;
    expect(
        out.all().contains("spec.template.spec.containers[0]"),
        || format!("no template path: {}", out.all()),
    )
}

/// `check` reads manifests with `openclaw_admission::yaml`; kubectl with go-yaml v2 via
/// `sigs.k8s.io/yaml`. On a corpus of YAML 1.1 scalars (octal, yes/no/on/off, keys that
/// resolve, anchors and merges, big and odd numbers) both readings must be the same JSON,
/// object by object.
fn yaml_reads_like_kubectl(env: &Env) -> Result<(), String> {
    let path = format!("{ROOT}/tests/fixtures/yaml/tricky-scalars.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // No schema validation: the corpus holds values the API server would refuse, and the
    // point is how the file is read, not whether it would be stored.
    let out = env.kubectl(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "--validate=false",
        "-f",
        &path,
    ]);
    if !out.ok {
        return Err(format!(
            "kubectl create --dry-run=client failed: {}",
            out.all()
        ));
    }
    let theirs: Vec<Value> = serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("kubectl output is not a JSON stream: {e}"))?;
    let ours: Vec<Value> = openclaw_admission::yaml::read_stream(
        &text,
        openclaw_admission::yaml::Duplicates::LastWins,
    )
    .map_err(|e| format!("{path}: {e}"))?
    .into_iter()
    .map(|d| d.value)
    .filter(|v| !v.is_null())
    // kubectl lists the items of a `kind: List` one by one.
    .flat_map(|v| match v.get("kind").and_then(Value::as_str) {
        Some("List") => v["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![v],
    })
    .map(|mut v| {
        // kubectl create fills in the namespace of its context; the reading itself does not.
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.entry("namespace").or_insert_with(|| json!("default"));
        }
        v
    })
    .collect();
    expect(ours.len() == theirs.len(), || {
        format!(
            "{} objects read here, {} by kubectl",
            ours.len(),
            theirs.len()
        )
    })?;
    for (o, t) in ours.iter().zip(&theirs) {
        let name = t["metadata"]["name"].as_str().unwrap_or("?");
        if let Some(at) = first_difference(o, t, String::new()) {
            return Err(format!(
                "object {name}: read differently at {at}\n  here:    {}\n  kubectl: {}",
                o, t
            ));
        }
    }
    if theirs.len() < 9 {
        return Err(format!("the corpus lost objects: {}", theirs.len()));
    }
    Ok(())
}

/// The path of the first place two JSON values differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let here = format!("{at}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, here) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{here} (present on one side only)")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} here, {b} by kubectl")),
    }
}

/// `helm template examples/helm/openclaw-agent | openclaw-admission check -f -`, as the
/// README shows: a chart written with YAML 1.1 scalars (`no`, `on`, octal modes) is read as
/// kubectl reads it and judged, the Helm test hook named as such.
fn helm_template_to_check(env: &Env) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let rendered = Command::new(&env.helm)
        .args([
            "template",
            "claw",
            &format!("{ROOT}/examples/helm/openclaw-agent"),
        ])
        .output()
        .map_err(|e| format!("helm: {e}"))?;
    expect(rendered.status.success(), || {
        format!(
            "helm template failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        )
    })?;
    let mut child = Command::new(BIN)
        .args(["check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("check: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&rendered.stdout)
            .map_err(|e| format!("check stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("check: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    expect(out.status.code() == Some(0), || {
        format!("check exited {:?}:\n{text}", out.status.code())
    })?;
    // Judged under the default policy: nothing refused; the isolation checks' warnings only.
    expect(
        text.contains("Deployment default/claw (<stdin>)")
            && text.contains("Pod default/claw-test-connection (Helm test hook \"test\")")
            && text.contains("2 objects judged")
            && !text.contains("would be refused")
            && text
                .lines()
                .filter(|l| l.contains("  low     warn"))
                .all(|l| {
                    ["sandboxed-runtime", "user-namespace", "resource-limits"]
                        .iter()
                        .any(|id| l.trim_start().starts_with(id))
                }),
        || format!("unexpected report:\n{text}"),
    )
}

/// The chart's CI (tests/chart/check.sh) with this API server: lint and template for every
/// certificate mode, every rendered object applied with `--dry-run=server`, the webhook's own
/// pod through `check`, then install, upgrade and uninstall with no webhook configuration left.
fn helm_chart(env: &Env) -> Result<(), String> {
    // The suite's own registration (webhook-config/url) has the chart's names; the release
    // must own its configurations, so the suite's go first.
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let out = env.kubectl(&["delete", kind, "openclaw-admission", "--ignore-not-found"]);
        expect(out.ok, || out.all())?;
    }
    let crds = std::fs::read_to_string(format!("{ROOT}/tests/chart/cert-manager-crds.yaml"))
        .map_err(|e| e.to_string())?;
    let out = env.kubectl_stdin(&["apply", "-f", "-"], &crds);
    expect(out.ok, || {
        format!("cert-manager stand-in CRDs: {}", out.all())
    })?;
    env.eventually(20, || {
        let out = env.kubectl(&["get", "certificates.cert-manager.io", "-A"]);
        expect(out.ok, || out.all())
    })?;
    let text = run_check_script(
        env,
        "chart check",
        "tests/chart/check.sh",
        &[
            ("OPENCLAW_ADMISSION", BIN.into()),
            ("OUT_DIR", env.dir.path().join("chart").into()),
        ],
    )?;
    expect(!text.contains("were not sent"), || {
        format!("cert-manager objects were not applied:\n{text}")
    })?;
    let left = env.kubectl(&[
        "get",
        "validatingwebhookconfigurations,mutatingwebhookconfigurations",
        "-o",
        "name",
    ]);
    expect(
        left.ok && !left.stdout.contains("openclaw-admission"),
        || format!("left behind: {}", left.all()),
    )
}

/// The `make image` archive through a real registry (crane's, on loopback): pushed, pulled back
/// by digest, its config checked, then `helm install` with image.repository/image.digest
/// pointing at it, accepted by this API server (tests/image/registry.sh). Builds the image
/// first when needed (image/build.sh; cached after the first run).
fn image_from_registry(env: &Env) -> Result<(), String> {
    let text = run_check_script(env, "registry check", "tests/image/registry.sh", &[])?;
    expect(text.contains("registry check passed"), || {
        format!("tests/image/registry.sh did not finish:\n{text}")
    })
}

/// Runs a check script from the repository against this API server (KUBECONFIG, HELM,
/// KUBECTL set, plus `extra`), prints how many `ok` lines it wrote, and returns its output, or
/// the output as the error when it fails.
fn run_check_script(
    env: &Env,
    label: &str,
    script: &str,
    extra: &[(&str, std::ffi::OsString)],
) -> Result<String, String> {
    let out = std::process::Command::new("bash")
        .arg(format!("{ROOT}/{script}"))
        .env("KUBECONFIG", &env.kubeconfig)
        .env("HELM", &env.helm)
        .env("KUBECTL", &env.kubectl)
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let oks = text.lines().filter(|l| l.starts_with("ok ")).count();
    println!("    {label}: {oks} ok lines");
    expect(out.status.success(), || format!("{script} failed:\n{text}"))?;
    Ok(text)
}
