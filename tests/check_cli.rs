//! The `check` subcommand as a user runs it: the built binary on the shipped examples and on
//! broken inputs in a temporary directory, asserting exit codes and what is printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-admission");
/// The fake key in `examples/unhardened/agent.yaml`.
const EXAMPLE_KEY: &str = "sk-proj-FAKE-example-key-not-real-0123456789abcdef";

fn examples(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel)
}

fn check(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("check")
        .args(args)
        .output()
        .expect("run openclaw-admission check")
}

fn check_paths(paths: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("check");
    for p in paths {
        cmd.arg("-f").arg(p);
    }
    cmd.args(extra)
        .output()
        .expect("run openclaw-admission check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An agent Deployment with no hardening at all, after a ConfigMap in the same file.
const MULTI_DOC: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: agent-config
data:
  mode: gateway
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: claw
spec:
  selector:
    matchLabels: {app: openclaw}
  template:
    metadata:
      labels: {app: openclaw}
    spec:
      containers:
        - name: agent
          image: ghcr.io/openclaw/openclaw:latest
          env:
            - name: ANTHROPIC_API_KEY
              value: sk-ant-api03-FAKE-multi-doc-secret-value
";

#[test]
fn hardened_example_passes_with_exit_code_zero() {
    let out = check_paths(&[&examples("hardened")], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    // Nothing refused; what it shows are the isolation checks' warnings (examples/isolated
    // goes further), three for each object.
    assert!(
        text.lines()
            .any(|l| l.starts_with("Pod openclaw-hardened/openclaw (")
                && l.ends_with("3 violations, would be allowed in enforce mode")),
        "{text}"
    );
    // The same agent as a Deployment, whose template leaves the token to the mutation.
    assert!(
        text.contains("Deployment openclaw-hardened/research-agent"),
        "{text}"
    );
    assert!(text.contains("2 objects judged, 6 violations"), "{text}");
    assert!(!text.contains("would be refused"), "{text}");
    let ids: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["sandboxed-runtime", "user-namespace", "resource-limits"].contains(w))
        .collect();
    assert_eq!(ids.len(), 3, "{text}");
}

#[test]
fn unhardened_example_is_reported_with_check_path_and_fix() {
    let out = check_paths(&[&examples("unhardened")], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("Pod openclaw-unhardened/openclaw"), "{text}");
    assert!(text.contains("run-as-non-root"), "{text}");
    assert!(text.contains("spec.containers[0]"), "{text}");
    assert!(text.contains("fix: "), "{text}");
    for id in [
        "no-plaintext-credentials",
        "default-deny-egress",
        "dedicated-service-account",
    ] {
        assert!(text.contains(id), "{id} missing:\n{text}");
    }
    assert!(text.contains("1 object judged"), "{text}");
    assert!(
        stderr(&out).contains("skipped: Service openclaw"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hardened_and_unhardened_together_report_the_unhardened_pod_only() {
    let out = check_paths(
        &[&examples("hardened"), &examples("unhardened")],
        &["--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3, "{report:#}");
    let by_ns = |ns: &str| objects.iter().find(|o| o["namespace"] == ns).unwrap();
    // The hardened objects get the isolation checks' warnings only.
    assert!(
        objects
            .iter()
            .filter(|o| o["namespace"] == "openclaw-hardened")
            .all(|o| o["allowed"] == true
                && o["violations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|v| v["action"] == "warn" && v["tier"] == "low")),
        "{report:#}"
    );
    // The hardened namespace's NetworkPolicy and ServiceAccount must not cover the other pod.
    assert_eq!(by_ns("openclaw-hardened")["allowed"], true, "{report:#}");
    let bad = by_ns("openclaw-unhardened");
    assert_eq!(bad["allowed"], false);
    let checks: Vec<&str> = bad["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["check"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"default-deny-egress"), "{checks:?}");
    assert!(checks.contains(&"dedicated-service-account"), "{checks:?}");
}

#[test]
fn json_output_lists_each_violation_with_its_fields() {
    let out = check_paths(&[&examples("unhardened")], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let obj = &report["objects"][0];
    assert_eq!(obj["kind"], "Pod");
    assert_eq!(obj["name"], "openclaw");
    assert!(
        obj["file"].as_str().unwrap().ends_with("agent.yaml"),
        "{obj}"
    );
    let v = obj["violations"].as_array().unwrap();
    assert!(!v.is_empty());
    let first = &v[0];
    for key in ["check", "tier", "path", "message", "fix", "action"] {
        assert!(first[key].is_string(), "{key} missing in {first}");
    }
    assert_eq!(
        report["summary"]["violations"].as_u64().unwrap() as usize,
        v.len()
    );
}

#[test]
fn secret_values_in_env_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let multi = write(dir.path(), "multi.yaml", MULTI_DOC);
    for format in ["table", "json"] {
        let out = check_paths(&[&examples("unhardened"), &multi], &["-o", format]);
        assert_eq!(out.status.code(), Some(1));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("OPENAI_API_KEY"),
            "the variable is named:\n{all}"
        );
        assert!(
            !all.contains(EXAMPLE_KEY),
            "secret value leaked ({format}):\n{all}"
        );
        assert!(
            !all.contains("FAKE-multi-doc-secret-value"),
            "secret value leaked ({format}):\n{all}"
        );
        assert!(
            !all.contains("sk-proj-FAKE"),
            "a prefix of the secret leaked ({format}):\n{all}"
        );
    }
}

#[test]
fn missing_file_exits_two_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let out = check_paths(&[&missing], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn broken_yaml_exits_two_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: [app: openclaw\nspec: {}\n",
    );
    let out = check_paths(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("line "), "{err}");
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn broken_json_exits_two_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.json",
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  oops\n}\n",
    );
    let out = check_paths(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.json: line 4"), "{err}");
}

#[test]
fn pod_that_breaks_the_schema_names_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "schema.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: openclaw}\nspec:\n  containers: 42\n",
    );
    let out = check_paths(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("schema.yaml: document 2 (line 5)"), "{err}");
    assert!(err.contains("Pod p"), "{err}");
}

#[test]
fn configmap_is_skipped_with_a_note_and_a_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n",
    );
    write(
        dir.path(),
        "notes.txt",
        "not a manifest, and not read from a directory",
    );
    let out = check_paths(&[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    assert!(
        stderr(&out).contains("skipped: ConfigMap settings"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("0 objects judged, 0 violations"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn pod_without_agent_label_is_noted_as_not_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "web.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: nginx\n      image: nginx\n",
    );
    let out = check_paths(&[&p], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Pod default/web"), "{}", stderr(&out));
    assert!(stderr(&out).contains("not an agent"), "{}", stderr(&out));
}

#[test]
fn deployment_in_a_multi_document_file_is_judged_at_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let multi = write(dir.path(), "multi.yaml", MULTI_DOC);
    let out = check_paths(&[&multi], &["-o", "json", "-n", "agents"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = &report["objects"][0];
    assert_eq!(obj["kind"], "Deployment");
    assert_eq!(obj["namespace"], "agents");
    let paths: Vec<&str> = obj["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert!(!paths.is_empty());
    // Everything sits in the template; container findings below its pod spec.
    assert!(
        paths.iter().all(|p| p.starts_with("spec.template.")),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"spec.template.spec.containers[0].securityContext.runAsNonRoot"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"spec.template.spec.containers[0].env[0]"),
        "{paths:?}"
    );
    assert!(
        stderr(&out).contains("skipped: ConfigMap agent-config"),
        "{}",
        stderr(&out)
    );
}

/// The unhardened agent as a ReplicationController, the core group's own workload.
const REPLICATION_CONTROLLER: &str = "\
apiVersion: v1
kind: ReplicationController
metadata:
  name: claw
spec:
  replicas: 1
  selector: {app: openclaw}
  template:
    metadata:
      labels: {app: openclaw}
    spec:
      containers:
        - name: agent
          image: ghcr.io/openclaw/openclaw:latest
";

#[test]
fn replication_controller_is_judged_at_its_template_like_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let rc = write(dir.path(), "rc.yaml", REPLICATION_CONTROLLER);
    let out = check_paths(&[&rc], &["-o", "json", "-n", "agents"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = &report["objects"][0];
    assert_eq!(obj["kind"], "ReplicationController");
    assert_eq!(obj["allowed"], false);
    let paths: Vec<&str> = obj["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"spec.template.spec.containers[0].securityContext.runAsNonRoot"),
        "{paths:?}"
    );
    assert!(
        paths.iter().all(|p| p.starts_with("spec.template.")),
        "{paths:?}"
    );
    assert!(!stderr(&out).contains("not judged"), "{}", stderr(&out));

    // A template field that does not fit is named with its path and line, as for the
    // other kinds (the full ReplicationController type finds it).
    let bad = write(
        dir.path(),
        "bad.yaml",
        &REPLICATION_CONTROLLER.replace("image: ghcr.io/openclaw/openclaw:latest", "image: [a, b]"),
    );
    let out = check_paths(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("spec.template.spec.containers[0].image (line 14)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_list_items_are_judged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "a", "namespace": "x", "labels": {"app": "openclaw"}},
             "spec": {"containers": [{"name": "c", "image": "ghcr.io/openclaw/openclaw:latest"}]}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}
        ]
    });
    let p = write(dir.path(), "list.json", &list.to_string());
    let out = check_paths(&[&p], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"].as_array().unwrap().len(), 1);
    assert_eq!(report["objects"][0]["name"], "a");
    assert!(
        stderr(&out).contains("skipped: ConfigMap b"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_input_is_bad_usage() {
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_policy_file_is_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.yaml", "mode: block\n");
    let out = check_paths(
        &[&examples("hardened")],
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("policy.yaml"), "{}", stderr(&out));
}

#[test]
fn audit_mode_policy_still_lists_every_violation_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.yaml", "mode: audit\n");
    let out = check_paths(
        &[&examples("unhardened")],
        &["--policy", policy.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = &report["objects"][0];
    assert_eq!(obj["allowed"], true);
    let v = obj["violations"].as_array().unwrap();
    assert!(!v.is_empty());
    assert!(v.iter().all(|j| j["action"] == "audit"), "{obj}");
}

#[test]
fn assume_openshift_fills_what_the_scc_sets_and_keeps_the_rest() {
    let out = check_paths(
        &[&examples("unhardened")],
        &["--assume-openshift", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks: Vec<&str> = report["objects"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["check"].as_str().unwrap())
        .collect();
    for gone in [
        "run-as-non-root",
        "drop-all-capabilities",
        "no-privilege-escalation",
        "seccomp-profile",
    ] {
        assert!(
            !checks.contains(&gone),
            "{gone} should be filled by the SCC: {checks:?}"
        );
    }
    for kept in [
        "read-only-root-filesystem",
        "no-plaintext-credentials",
        "dedicated-service-account",
    ] {
        assert!(
            checks.contains(&kept),
            "{kept} is not the SCC's business: {checks:?}"
        );
    }
}

#[test]
fn policy_exemption_drops_the_check_and_is_reported_as_exempted() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "policy.yaml",
        "exemptions:\n  - reason: pending vault migration\n    namespaces: [openclaw-unhardened]\n    checks: [no-plaintext-credentials]\n",
    );
    let out = check_paths(
        &[&examples("unhardened")],
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains("  no-plaintext-credentials "), "{text}");
    assert!(
        text.contains("exempted no-plaintext-credentials: policy: pending vault migration"),
        "{text}"
    );
}

#[test]
fn in_cluster_inference_example_passes_its_policy_and_an_outside_endpoint_does_not() {
    let dir = examples("in-cluster-inference");
    let policy = dir.join("policy.yaml");
    let policy = policy.to_str().unwrap();
    let out = check_paths(&[&dir.join("agent.yaml")], &["--policy", policy]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let text = std::fs::read_to_string(dir.join("agent.yaml"))
        .unwrap()
        .replace(
            "http://vllm.inference.svc.cluster.local:8000/v1",
            "https://api.openai.com/v1",
        );
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("agent.yaml");
    std::fs::write(&outside, text).unwrap();
    let out = check_paths(&[&outside], &["--policy", policy]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("in-cluster-inference") && text.contains("api.openai.com"),
        "{text}"
    );
}

#[test]
fn yaml_1_1_scalars_are_read_as_kubernetes_reads_them() {
    // The hardened example written the way Helm charts often are: `no`, `yes`, `on` for
    // booleans and an octal file mode. kubectl stores this pod as the hardened one.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "namespace.yaml",
        "networkpolicy.yaml",
        "serviceaccount.yaml",
    ] {
        std::fs::copy(examples("hardened").join(f), dir.path().join(f)).unwrap();
    }
    let agent = std::fs::read_to_string(examples("hardened").join("agent.yaml")).unwrap();
    let yaml11 = agent
        .replace("automountServiceAccountToken: false", "automountServiceAccountToken: no")
        .replace("runAsNonRoot: true", "runAsNonRoot: yes")
        .replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: on")
        .replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: off")
        .replace(
            "              path: token\n",
            "              path: token\n          - secret:\n              name: tls\n              items: [{key: a, path: a, mode: 0400}]\n",
        );
    assert_ne!(yaml11, agent);
    write(dir.path(), "agent.yaml", &yaml11);
    let out = check_paths(&[dir.path()], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn field_that_breaks_the_schema_is_named_with_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "field.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: openclaw}\nspec:\n  containers:\n  - name: a\n    image: x\n    env:\n    - name: OPENAI_API_KEY\n      value: 0444\n",
    );
    let out = check_paths(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("spec.containers[0].env[0].value (line 12): invalid type: integer (value not shown), expected a string"),
        "{err}"
    );
    assert!(!err.contains("292") && !err.contains("0444"), "{err}");
    // No position in JSON the tool wrote itself.
    assert!(!err.contains("column"), "{err}");
}

#[test]
fn directory_with_nothing_to_read_exits_two_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "README.md", "# not a manifest\n");
    let out = check_paths(&[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{}", stdout(&out));
    assert!(
        stderr(&out).contains("no manifest files (*.yaml, *.yml, *.json) in this directory"),
        "{}",
        stderr(&out)
    );
    // Files that hold no object at all (comments only) are no better.
    write(dir.path(), "empty.yaml", "# rendered nothing\n---\n");
    let out = check_paths(&[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no Kubernetes objects found in the inputs"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn helm_test_hook_pod_is_judged_and_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "test-connection.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: claw-test-connection\n  labels: {app: openclaw}\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers:\n  - name: wget\n    image: busybox\n",
    );
    let out = check_paths(&[&f], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Pod default/claw-test-connection (Helm test hook \"test\") ("),
        "{text}"
    );
    let out = check_paths(&[&f], &["-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"][0]["helm_hook"], "test");
}

#[test]
fn violations_name_the_line_of_their_path_in_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "agent.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: openclaw}\nspec:\n  containers:\n  - name: agent\n    image: x\n    securityContext:\n      privileged: true\n",
    );
    let out = check_paths(&[&f], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("spec.containers[0].securityContext.privileged (line 11)"),
        "{text}"
    );
    let out = check_paths(&[&f], &["-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let privileged = report["objects"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"] == "spec.containers[0].securityContext.privileged")
        .expect("a violation at privileged");
    assert_eq!(privileged["line"], 11);
}

#[test]
fn helm_chart_directory_is_skipped_with_how_to_render_it() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("mychart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    write(
        &chart,
        "Chart.yaml",
        "apiVersion: v2\nname: mychart\nversion: 0.1.0\n",
    );
    write(
        &chart.join("templates"),
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: {{ .Release.Name }}}\n",
    );
    let out = check_paths(&[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("is a Helm chart; render it first: helm template NAME"),
        "{err}"
    );
    assert!(!err.contains("invalid YAML"), "{err}");
}

/// An egress box written as a CiliumNetworkPolicy (DNS to kube-dns, HTTPS to one host).
const CILIUM_LLM_ONLY: &str = "\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: llm-only
  namespace: openclaw-hardened
spec:
  endpointSelector:
    matchLabels:
      app: openclaw
  egress:
  - toEndpoints:
    - matchLabels:
        k8s:io.kubernetes.pod.namespace: kube-system
        k8s:k8s-app: kube-dns
    toPorts:
    - ports: [{port: '53', protocol: ANY}]
      rules:
        dns: [{matchPattern: '*'}]
  - toFQDNs: [{matchName: api.anthropic.com}]
    toPorts:
    - ports: [{port: '443', protocol: TCP}]
";

const FQDN_POLICY: &str = "\
checks:
  egress:
    allow:
    - {name: DNS, protocol: UDP, port: 53, namespaces: [kube-system]}
    - {name: DNS, protocol: TCP, port: 53, namespaces: [kube-system]}
    - {name: Anthropic, protocol: TCP, port: 443, fqdns: [api.anthropic.com]}
";

#[test]
fn cilium_policies_in_the_manifests_count_for_default_deny_egress() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.yaml", FQDN_POLICY);
    let mut paths = Vec::new();
    for f in ["agent.yaml", "namespace.yaml", "serviceaccount.yaml"] {
        let text = std::fs::read_to_string(examples("hardened").join(f)).unwrap();
        paths.push(write(dir.path(), f, &text));
    }
    let cnp = write(dir.path(), "cnp.yaml", CILIUM_LLM_ONLY);
    let mut args: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    args.push(&cnp);
    let policy_arg = policy.to_str().unwrap();
    let out = check_paths(&args, &["--policy", policy_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );

    // The same policy opening HTTPS to the whole internet breaks the allow-list.
    let wide = write(
        dir.path(),
        "cnp.yaml",
        &CILIUM_LLM_ONLY.replace(
            "- toFQDNs: [{matchName: api.anthropic.com}]",
            "- toEntities: [world]",
        ),
    );
    let mut args: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    args.push(&wide);
    let out = check_paths(&args, &["--policy", policy_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "CiliumNetworkPolicy openclaw-hardened/llm-only egress[1] allows TCP 443 to 0.0.0.0/0, ::/0"
        ),
        "{text}"
    );
}

#[test]
fn a_secret_provider_class_missing_from_the_manifests_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let agent = examples("hardened").join("agent.yaml");
    let np = examples("hardened").join("networkpolicy.yaml");
    let sa = examples("hardened").join("serviceaccount.yaml");
    let class = write(
        dir.path(),
        "class.yaml",
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n\
         metadata: {name: openclaw-vualt, namespace: openclaw-hardened}\nspec: {provider: vault}\n",
    );
    let out = check_paths(&[&agent, &np, &sa, &class], &[]);
    let text = stdout(&out);
    assert!(
        text.contains("annotation openclaw.io/secret-provider-class names SecretProviderClass openclaw-vault, which does not exist in namespace openclaw-hardened"),
        "{text}\n{}",
        stderr(&out)
    );
    // Low tier: reported, but a warning rather than a refusal, so the run passes.
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("would be allowed in enforce mode"), "{text}");
}

/// `agents` unhardened agent Pods and `others` Pods that are no agent (each one a `skipped:`
/// note on stderr), as one multi-document file in `dir`.
fn many_pods(dir: &Path, agents: usize, others: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..agents {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: agent-{i}\n  labels: {{app: openclaw}}\n\
             spec:\n  containers:\n  - name: gateway\n    image: ghcr.io/openclaw/openclaw:latest\n"
        ));
    }
    for i in 0..others {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-{i}\n\
             spec:\n  containers:\n  - name: nginx\n    image: nginx\n"
        ));
    }
    write(dir, "pods.yaml", &text)
}

/// Runs `check` with `stdout` (and `stderr`), reads `keep` bytes of what arrives on `reader`
/// and closes it, as `| head -c` does; returns the exit code once the process has ended.
fn check_into_closing_pipe(
    file: &Path,
    extra: &[&str],
    reader: std::io::PipeReader,
    stdout: std::io::PipeWriter,
    stderr: Stdio,
    keep: usize,
) -> Output {
    let child = Command::new(BIN)
        .arg("check")
        .arg("-f")
        .arg(file)
        .args(extra)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("run openclaw-admission check");
    // The writing end given to the child must be its only one, or the pipe never breaks: the
    // Command (and with it the parent's copy) is gone by now.
    let mut reader = reader;
    let mut head = vec![0; keep];
    reader.read_exact(&mut head).expect("the first bytes");
    drop(reader);
    child.wait_with_output().expect("wait for check")
}

#[test]
fn a_reader_that_stops_early_ends_the_report_quietly_with_the_usual_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let pods = many_pods(dir.path(), 1500, 0);
    for format in ["table", "json"] {
        // The whole report is far more than a pipe holds (64 KiB by default, 1 MiB at most
        // unless /proc/sys/fs/pipe-max-size is raised), so the process is still writing when
        // the reader leaves.
        let whole = check_paths(&[&pods], &["-o", format]);
        assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
        assert!(
            whole.stdout.len() > 2 << 20,
            "{format}: {} bytes",
            whole.stdout.len()
        );
        assert_eq!(stderr(&whole), "");

        let (reader, writer) = std::io::pipe().unwrap();
        let out =
            check_into_closing_pipe(&pods, &["-o", format], reader, writer, Stdio::piped(), 100);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert_eq!(
            err, "",
            "{format}: nothing is said about the reader leaving"
        );
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
    }
}

#[test]
fn stderr_on_the_same_closed_pipe_does_not_change_the_exit_code() {
    // As `check ... 2>&1 | head -c 100`: the `skipped:` notes for the Pods that are no agent
    // come first and overflow the pipe; writing them must not end the process either.
    let dir = tempfile::tempdir().unwrap();
    let pods = many_pods(dir.path(), 20, 3000);
    let (reader, writer) = std::io::pipe().unwrap();
    let same = Stdio::from(writer.try_clone().unwrap());
    let out = check_into_closing_pipe(&pods, &[], reader, writer, same, 100);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_report_that_cannot_be_written_is_an_error_with_exit_code_two() {
    let dir = tempfile::tempdir().unwrap();
    let pods = many_pods(dir.path(), 400, 0);
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full, which refuses every write with ENOSPC");
    let out = Command::new(BIN)
        .arg("check")
        .arg("-f")
        .arg(&pods)
        .stdout(full)
        .output()
        .expect("run openclaw-admission check");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: cannot write the report to stdout: No space left on device"),
        "{err}"
    );
}

/// Issue 28's examples: the isolated agent passes a policy that raises the three isolation
/// checks to high; the plain hardened agent is refused under it, naming each, and under the
/// default policy passes with the three shown as warnings.
#[test]
fn the_isolated_example_passes_the_raised_policy_and_the_plain_hardened_one_does_not() {
    let raised = examples("isolated").join("policy.yaml");
    let raised = raised.to_str().unwrap();
    let out = check_paths(&[&examples("isolated")], &["--policy", raised]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 violations"), "{}", stdout(&out));

    let out = check_paths(&[&examples("hardened")], &["--policy", raised]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for id in ["sandboxed-runtime", "user-namespace", "resource-limits"] {
        assert!(
            text.lines()
                .any(|l| l.contains(id) && l.contains("high") && l.contains("deny")),
            "{id} not refused at high: {text}"
        );
    }

    let out = check_paths(&[&examples("hardened")], &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for id in ["sandboxed-runtime", "user-namespace", "resource-limits"] {
        assert!(
            text.lines()
                .any(|l| l.contains(id) && l.contains("low") && l.contains("warn")),
            "{id} not warned at low: {text}"
        );
    }
}

#[test]
fn rbac_escape_example_is_refused_with_each_power_named() {
    let out = check_paths(&[&examples("rbac-escape")], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let text = stdout(&out);
    for power in [
        "(create pods)",
        "(create or change workloads)",
        "(exec, attach or port-forward into pods)",
        "(proxy to pods, Services or nodes)",
        "(add ephemeral containers to pods)",
        "(change network policies)",
        "(mint ServiceAccount tokens)",
        "(change admission webhooks or policies)",
        "(read Secrets beyond named ones)",
    ] {
        assert!(text.contains(power), "{power} not named:\n{text}");
    }
    // The Role and the rule are named with the verb.
    assert!(
        text.contains("Role agent-helper")
            && text.contains("rule 3 grants create on pods/exec, pods/portforward"),
        "{text}"
    );
}

/// `check` knows Kubernetes' built-in ClusterRoles (build.rs embeds the pinned module's
/// bootstrap policy): a binding to one is judged by its rules, aggregation included, as
/// `serve` judges it from the cluster's copy.
#[test]
fn bindings_to_built_in_cluster_roles_are_judged_by_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let binding = |role: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: agent-extra, namespace: openclaw-hardened}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"{role}\"}}
subjects:
  - {{kind: ServiceAccount, name: openclaw-agent, namespace: openclaw-hardened}}
"
        )
    };
    let agent = examples("hardened").join("agent.yaml");
    let sa = examples("hardened").join("serviceaccount.yaml");
    let np = examples("hardened").join("networkpolicy.yaml");
    // A role only the bootstrap policy defines: it grants exec into pods.
    let b = write(dir.path(), "b.yaml", &binding("system:aggregate-to-edit"));
    let out = check_paths(&[&agent, &sa, &np, &b], &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("ClusterRole system:aggregate-to-edit")
            && text.contains("(exec, attach or port-forward into pods)"),
        "{text}"
    );
    // `view`, aggregated from system:aggregate-to-view, grants none of it.
    let b = write(dir.path(), "b.yaml", &binding("view"));
    let out = check_paths(&[&agent, &sa, &np, &b], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn agent_sandbox_example_passes_and_its_template_is_judged() {
    let out = check_paths(&[&examples("agent-sandbox")], &[]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(
        text.contains("3 objects judged, 0 violations"),
        "{text}\n{err}"
    );
    for kind in ["SandboxTemplate", "SandboxWarmPool", "SandboxClaim"] {
        assert!(
            text.contains(&format!("passed: {kind} openclaw-sandbox/")),
            "{kind}: {text}"
        );
    }
}

#[test]
fn agent_sandbox_objects_are_judged_as_their_pods_will_be_and_refs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // As agent-sandbox's OpenClaw example writes it: a writable root filesystem, a literal
    // gateway token, no seccomp profile, and no networkPolicy (the controller's open default).
    write(
        dir.path(),
        "template.yaml",
        "apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: {name: openclaw, namespace: agents}
spec:
  envVarsInjectionPolicy: Allowed
  podTemplate:
    metadata:
      labels: {sandbox: openclaw-template-sandbox}
    spec:
      containers:
        - name: openclaw
          image: ghcr.io/openclaw/openclaw:2026.3.23
          env:
            - {name: OPENCLAW_GATEWAY_TOKEN, value: dummy-token-for-sandbox}
          securityContext:
            readOnlyRootFilesystem: false
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata: {name: pool, namespace: agents}
spec:
  sandboxTemplateRef: {name: no-such-template}
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: {name: claim, namespace: agents}
spec:
  warmPoolRef: {name: no-such-pool}
  env:
    - {name: ANTHROPIC_API_KEY, value: sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}
---
# Another project's kind of the same name is not agent-sandbox's.
apiVersion: example.com/v1
kind: Sandbox
metadata: {name: other, namespace: agents}
spec: {}
",
    );
    let out = check_paths(&[dir.path()], &[]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    for want in [
        "SandboxTemplate agents/openclaw",
        "spec.podTemplate.spec.containers[0].securityContext.readOnlyRootFilesystem",
        "spec.podTemplate.spec.containers[0].env[0]",
        "spec.networkPolicy (line",
        "write spec.networkPolicy with egress allowing only",
        "SandboxClaim agents/claim",
        "spec.env[0]",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("sk-ant-api03"), "{text}");
    assert!(
        err.contains("SandboxTemplate no-such-template, which does not exist"),
        "{err}"
    );
    assert!(
        err.contains("SandboxWarmPool no-such-pool, which does not exist"),
        "{err}"
    );
    assert!(err.contains("skipped: Sandbox other"), "{err}");
}
