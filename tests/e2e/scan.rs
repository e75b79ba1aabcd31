//! The chart's scheduled scan, proved as far as a control plane without a kubelet allows: the
//! CronJob is rendered by helm and accepted by the API server, its ServiceAccount and RBAC are
//! applied, a token is minted for that ServiceAccount (TokenRequest, `kubectl create token`),
//! and the container's own arguments are run with that token (the binary, with the policy the
//! chart mounts and a kubeconfig holding nothing but the token). The reports appear and follow
//! a fix; and the ServiceAccount may do exactly what the scan needs, nothing more.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// The release's namespace, and the namespace of agents the scan is pointed at.
const RELEASE_NS: &str = "e2e-scan-system";
const NS: &str = "e2e-scheduled-scan";
const RELEASE: &str = "oc";
/// Where the chart mounts the policy ConfigMap in the scan's container.
const POLICY_MOUNT: &str = "/etc/openclaw-admission/policy";

/// What the scan's ServiceAccount may do, as (API group, resource, verb): `list` of what
/// `audit` reads, and the report kinds it writes by server-side apply. Written out here, not
/// read from the chart, so that a widened ClusterRole fails this test.
fn needed() -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    let mut add = |group: &str, resources: &[&str], verbs: &[&str]| {
        for r in resources {
            for v in verbs {
                set.insert((group.to_string(), r.to_string(), v.to_string()));
            }
        }
    };
    add(
        "",
        &[
            "namespaces",
            "serviceaccounts",
            "services",
            "pods",
            "replicationcontrollers",
        ],
        &["list"],
    );
    add("networking.k8s.io", &["networkpolicies"], &["list"]);
    add(
        "rbac.authorization.k8s.io",
        &[
            "roles",
            "rolebindings",
            "clusterroles",
            "clusterrolebindings",
        ],
        &["list"],
    );
    add(
        "apps",
        &["deployments", "statefulsets", "daemonsets", "replicasets"],
        &["list"],
    );
    add("batch", &["jobs", "cronjobs"], &["list"]);
    add(
        "cilium.io",
        &["ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"],
        &["list"],
    );
    add(
        "secrets-store.csi.x-k8s.io",
        &["secretproviderclasses"],
        &["list"],
    );
    add("agents.x-k8s.io", &["sandboxes"], &["list"]);
    add(
        "extensions.agents.x-k8s.io",
        &["sandboxtemplates", "sandboxwarmpools", "sandboxclaims"],
        &["list"],
    );
    add(
        "openreports.io",
        &["reports", "clusterreports"],
        &["create", "delete", "list", "patch"],
    );
    add(
        "wgpolicyk8s.io",
        &["policyreports", "clusterpolicyreports"],
        &["create", "delete", "list", "patch"],
    );
    set
}

/// Every object of the chart rendered with the scan on, as JSON.
fn render(env: &Env) -> Result<Vec<Value>, String> {
    let rendered = Command::new(&env.helm)
        .args([
            "template",
            RELEASE,
            &format!("{ROOT}/charts/openclaw-admission"),
            "--namespace",
            RELEASE_NS,
            "--set",
            "scheduledScan.enabled=true",
            "--set-json",
            &format!("scheduledScan.extraArgs=[\"--namespace={NS}\"]"),
        ])
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
    serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// A kubeconfig for the API server of the suite that authenticates with `token` alone.
fn token_kubeconfig(env: &Env, token: &str, path: &Path) -> Result<(), String> {
    let admin = env.kubectl_json(&["config", "view", "--raw", "--minify", "-o", "json"])?;
    let cluster = &admin["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "scan", "cluster": cluster}],
        "users": [{"name": "scan", "user": {"token": token}}],
        "contexts": [{"name": "scan", "context": {"cluster": "scan", "user": "scan"}}],
        "current-context": "scan",
    });
    std::fs::write(path, config.to_string()).map_err(|e| e.to_string())
}

/// The container's arguments with each path under the policy mount moved to `dir`.
fn args_with_policy_in(args: &[Value], dir: &Path) -> Vec<String> {
    args.iter()
        .filter_map(Value::as_str)
        .map(|a| a.replace(POLICY_MOUNT, &dir.display().to_string()))
        .collect()
}

pub fn scheduled_scan_writes_reports_as_its_own_least_privilege_account(
    env: &Env,
) -> Result<(), String> {
    crate::workloads::apply_upstream_report_crds(env)?;

    // The chart's scan objects: the CronJob validated by the API server (not stored: with no
    // kubelet its Jobs' pods would never run), its account and RBAC applied for real.
    let docs = render(env)?;
    let scan_name = format!("{RELEASE}-openclaw-admission-scan");
    let of_scan = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == scan_name.as_str())
            .cloned()
            .ok_or_else(|| format!("no {kind} {scan_name} in the render"))
    };
    let cronjob = of_scan("CronJob")?;
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}),
    ])?;
    let out = env.apply(&cronjob, &["--dry-run=server"]);
    expect(out.ok, || {
        format!("the API server refused the CronJob: {}", out.all())
    })?;
    env.apply_docs(&[
        of_scan("ServiceAccount")?,
        of_scan("ClusterRole")?,
        of_scan("ClusterRoleBinding")?,
    ])?;
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    expect(pod["serviceAccountName"] == scan_name.as_str(), || {
        format!("the CronJob runs as {}", pod["serviceAccountName"])
    })?;
    let container = &pod["containers"][0];
    let policy_cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["data"]["policy.yaml"].is_string())
        .ok_or("no policy ConfigMap in the render")?;
    let mounts_policy = pod["volumes"].as_array().into_iter().flatten().any(|v| {
        v["configMap"]["name"] == policy_cm["metadata"]["name"]
            && container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["name"] == v["name"] && m["mountPath"] == POLICY_MOUNT)
    });
    expect(mounts_policy, || {
        format!("the scan does not mount the policy at {POLICY_MOUNT}: {pod}")
    })?;

    // The volume as the kubelet would fill it, and a kubeconfig with the minted token only.
    let dir = env.dir.path().join("scheduled-scan");
    let policy_dir = dir.join("policy");
    std::fs::create_dir_all(&policy_dir).map_err(|e| e.to_string())?;
    std::fs::write(
        policy_dir.join("policy.yaml"),
        policy_cm["data"]["policy.yaml"]
            .as_str()
            .unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    let out = env.kubectl(&[
        "-n",
        RELEASE_NS,
        "create",
        "token",
        &scan_name,
        "--duration=10m",
    ]);
    expect(out.ok, || format!("TokenRequest failed: {}", out.all()))?;
    let kubeconfig = dir.join("kubeconfig");
    token_kubeconfig(env, out.stdout.trim(), &kubeconfig)?;
    let args = args_with_policy_in(
        container["args"]
            .as_array()
            .map_or(&[][..], |a| a.as_slice()),
        &policy_dir,
    );
    let run_scan = || -> Result<String, String> {
        let out = Command::new(BIN)
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .map_err(|e| format!("cannot run the scan: {e}"))?;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // --exit-zero: the refused-under-enforce finding below does not fail the Job.
        expect(out.status.success(), || {
            format!("the scan failed ({}) with args {args:?}: {all}", out.status)
        })?;
        Ok(all)
    };

    // Agents in audit mode: one hardened, one running as root.
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"openclaw.io/mode": "audit"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": NS}}),
        deny_egress_policy(NS),
    ])?;
    let agent = |name: &str, root: bool| {
        let mut p = hardened_pod(NS, name);
        p["spec"]["automountServiceAccountToken"] = json!(false);
        if root {
            p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
        }
        p
    };
    env.eventually(20, || {
        env.apply_docs(&[agent("cron-hardened", false), agent("cron-agent", true)])
    })?;

    let printed = run_scan()?;
    expect(printed.contains("wrote 1 Report(s)"), || printed.clone())?;
    let report = || {
        env.kubectl_json(&[
            "-n",
            NS,
            "get",
            "reports.openreports.io",
            "openclaw-admission",
            "-o",
            "json",
        ])
    };
    let results = |r: &Value| -> BTreeSet<String> { report_results(r).into_iter().collect() };
    // The chart's default policy also has findings on the hardened agent (tier low, and no
    // CPU limit): the agent running as root differs from it by run-as-non-root, and only that.
    let of = |r: &Value, pod: &str| -> BTreeSet<String> {
        results(r)
            .into_iter()
            .filter_map(|x| x.strip_prefix(&format!("{pod}:")).map(String::from))
            .collect()
    };
    let first = report()?;
    let hardened = of(&first, "cron-hardened");
    let root = of(&first, "cron-agent");
    expect(
        root.contains("run-as-non-root:fail")
            && !hardened.iter().any(|r| r.starts_with("run-as-non-root:"))
            && root.iter().all(|r| {
                r.starts_with("run-as-non-root:") || hardened.contains(&r.replace(":fail", ":warn"))
            }),
        || format!("first report: {:?}", results(&first)),
    )?;

    // The violation fixed (a Pod's security context cannot change: replaced), the next run
    // updates the same report.
    let out = env.kubectl(&["-n", NS, "delete", "pod", "cron-agent", "--wait=true"]);
    expect(out.ok, || out.all())?;
    env.eventually(20, || env.apply_docs(&[agent("cron-agent", false)]))?;
    run_scan()?;
    let second = report()?;
    expect(
        second["metadata"]["uid"] == first["metadata"]["uid"]
            && second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
            && of(&second, "cron-agent") == hardened
            && of(&second, "cron-hardened") == hardened,
        || {
            format!(
                "not updated in place after the fix: {:?} ({} -> {})",
                results(&second),
                first["metadata"]["uid"],
                second["metadata"]["uid"]
            )
        },
    )?;
    expect(second["summary"]["fail"] == json!(0), || {
        format!("summary after the fix: {}", second["summary"])
    })?;
    let cluster = env.kubectl_json(&[
        "get",
        "clusterreports.openreports.io",
        "openclaw-admission",
        "-o",
        "json",
    ])?;
    expect(
        cluster["results"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["resources"][0]["name"] == NS && r["result"] == "pass"),
        || format!("the ClusterReport does not show {NS} passing: {cluster}"),
    )?;

    // Exactly what the scan needs: the rules the API server says this token has, in the
    // agents' namespace and in the release's, beyond what a ServiceAccount bound to nothing
    // has (every authenticated user may ask about itself, read ClusterTrustBundles, ...).
    let out = env.kubectl(&[
        "-n",
        RELEASE_NS,
        "create",
        "token",
        "default",
        "--duration=10m",
    ]);
    expect(out.ok, || {
        format!("TokenRequest for default failed: {}", out.all())
    })?;
    let bare_kubeconfig = dir.join("bare-kubeconfig");
    token_kubeconfig(env, out.stdout.trim(), &bare_kubeconfig)?;
    let need = needed();
    for ns in [NS, RELEASE_NS] {
        let everyone = rules_of(env, &bare_kubeconfig, ns)?;
        // Else the comparison below would not see a rule go missing from the chart.
        expect(everyone.is_disjoint(&need), || {
            format!(
                "a bare ServiceAccount may already do some of what the scan needs: {everyone:?}"
            )
        })?;
        let granted: BTreeSet<_> = rules_of(env, &kubeconfig, ns)?
            .difference(&everyone)
            .cloned()
            .collect();
        expect(granted == need, || {
            format!(
                "in {ns} the scan's token may do more or less than the scan needs:\n more: {:?}\n less: {:?}",
                granted.difference(&need).collect::<Vec<_>>(),
                need.difference(&granted).collect::<Vec<_>>()
            )
        })?;
    }
    // And the API server refuses it what it was not given (a Secret, a delete, a report read).
    for denied in [
        &["get", "secrets", "-A"][..],
        &["-n", NS, "delete", "pod", "cron-agent", "--dry-run=server"][..],
        &[
            "-n",
            NS,
            "get",
            "reports.openreports.io",
            "openclaw-admission",
        ][..],
    ] {
        let out = Command::new(&env.kubectl)
            .args(denied)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        expect(!out.status.success() && err.contains("Forbidden"), || {
            format!("kubectl {denied:?} as the scan was not forbidden: {err}")
        })?;
    }
    Ok(())
}

/// (API group, resource, verb) of every resource rule the holder of `kubeconfig` has in `ns`,
/// as the API server answers a SelfSubjectRulesReview.
fn rules_of(
    env: &Env,
    kubeconfig: &Path,
    ns: &str,
) -> Result<BTreeSet<(String, String, String)>, String> {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": ns}});
    // --validate=false: kubectl's own schema check would list CRDs, which these tokens may not.
    let out = Command::new(&env.kubectl)
        .args(["create", "--validate=false", "-o", "json", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .map(|mut i| i.write_all(review.to_string().as_bytes()))
                .transpose()?;
            c.wait_with_output()
        })
        .map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "SelfSubjectRulesReview: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    expect(answer["status"]["incomplete"] != json!(true), || {
        format!("the rules review is incomplete: {answer}")
    })?;
    let mut rules = BTreeSet::new();
    for rule in answer["status"]["resourceRules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let strs = |k: &str| -> Vec<String> {
            rule[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        for g in strs("apiGroups") {
            for r in strs("resources") {
                for v in strs("verbs") {
                    rules.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    Ok(rules)
}
