#!/usr/bin/env bash
# CI checks of charts/openclaw-admission, with the real helm that tests/controlplane/build.sh builds.
#
#   1. `helm lint --strict` with default values and with every certificate mode;
#   2. `helm template` of each case into $OUT_DIR/render/<case>.yaml, plus a few assertions on
#      what was rendered, and renders that must be refused (bad mode, missing Secret, the webhook
#      labelled as an agent, ...);
#   3. webhook-config/ is what the chart renders (webhook-config/generate.sh --check);
#   4. the webhook's own pod, taken from the rendered Deployment and labelled as an agent, passes
#      `openclaw-admission check` with the chart's policy (exit 0), and a copy with a writable root
#      filesystem does not (exit 1), which proves the pod really was judged; the same for the
#      scheduled scan's pod (its CronJob's);
#   5. only when KUBECONFIG is set (the e2e API server): every rendered object is applied with
#      `kubectl apply --dry-run=server`, so the real API server validates it; then the chart is
#      installed, upgraded (the generated CA must survive) and uninstalled, and no webhook
#      configuration may be left behind.
#
# Environment:
#   HELM, KUBECTL        binaries (default: from `tests/controlplane/build.sh --print-bin-dir`)
#   OPENCLAW_ADMISSION   the binary (default: `cargo build`, then target/debug/openclaw-admission)
#   OUT_DIR              where renders go (default: a temp dir, kept and printed)
#   KUBECONFIG           enables step 5; the cluster must be a disposable test cluster
# Needs python3 with PyYAML (to turn the Deployment into a Pod and to filter manifests).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHART="$ROOT/charts/openclaw-admission"
BIN_DIR="$(bash "$ROOT/tests/controlplane/build.sh" --print-bin-dir)"
HELM="${HELM:-$BIN_DIR/helm}"
KUBECTL="${KUBECTL:-$BIN_DIR/kubectl}"
OUT_DIR="${OUT_DIR:-$(mktemp -d -t openclaw-chart.XXXXXX)}"
NS=openclaw-chart-check
RELEASE=openclaw-admission

FAILED=0
step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; FAILED=1; }

[[ -x "$HELM" ]] || { echo "check.sh: no helm at $HELM; run tests/controlplane/build.sh or set HELM" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "check.sh: python3 with PyYAML is required" >&2; exit 2; }
mkdir -p "$OUT_DIR/render" "$OUT_DIR/selfcheck"
echo "chart check: helm $("$HELM" version --short), output in $OUT_DIR"

# --- cases ---------------------------------------------------------------------------------
# name|helm args. The secret case borrows a real CA from the generate render (filled in below).
CASES=(
  "default|"
  "generate|--set certificates.mode=generate"
  "certManager|--set certificates.mode=certManager"
  "secret|--set certificates.mode=secret --set certificates.secret.name=openclaw-admission-serving"
  "catchAll|--set catchAll.enabled=true"
  "legacySecretCheck|--set policy.checks.token.legacySecretCheck=true"
  "singleReplica|--set replicaCount=1"
  "clientAuthGenerate|--set certificates.mode=generate --set clientAuth.enabled=true --set clientAuth.allowedNames={kube-apiserver-webhook-client}"
  "clientAuthCertManager|--set certificates.mode=certManager --set clientAuth.enabled=true"
  "execScoped|--set-json webhook.execNamespaceSelector={\"matchLabels\":{\"openclaw.io/agents\":\"true\"}}"
  "clientAuthOwnCa|--set clientAuth.enabled=true --set clientAuth.caSecret=my-client-ca"
  "webhookCIDRs|--set networkPolicy.webhookCIDRs={10.0.0.0/24} --set-json networkPolicy.extraIngressFrom=[{\"namespaceSelector\":{\"matchLabels\":{\"kubernetes.io/metadata.name\":\"monitoring\"}}}]"
  "keyRotation|--set approvalKeyRotation.previousKeySecret=openclaw-approval-key-previous --set approvalKeyRotation.until=2027-01-31"
  "scheduledScan|--set scheduledScan.enabled=true"
  "monitoring|--set monitoring.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=true --set monitoring.grafanaDashboard.enabled=true --set policy.telemetry.endpoint=http://otel-collector.observability.svc:4318/v1/traces"
)
# Renders that must be refused, each with a piece of the expected message.
REFUSED=(
  "--set certificates.mode=bogus|/certificates/mode"
  "--set webhook.timeoutSeconds=40|/webhook/timeoutSeconds"
  "--set certificates.mode=secret|certificates.secret.name is required"
  "--set certificates.mode=secret --set certificates.secret.name=x|certificates.secret.caBundle"
  "--set podLabels.app=openclaw|must not judge itself"
  "--set-json policy.agentSelectors=[{\"matchLabels\":{\"a\":\"b\"}}]|set the top-level value agentSelectors"
  "--set-json agentSelectors=[]|/agentSelectors"
  "--set approvalKeyRotation.previousKeySecret=old-key|approvalKeyRotation.until"
  "--set certificates.mode=secret --set certificates.secret.name=x --set certificates.secret.caBundle=Cg== --set clientAuth.enabled=true|clientAuth.caSecret"
  "--set networkPolicy.webhookCIDRs={10.0.0.1}|/networkPolicy/webhookCIDRs"
  "--set scheduledScan.enabled=true --set scheduledScan.scedule=@hourly|scedule"
)

case_args() { # case_args NAME -> the extra args of that case, one per line
  local c
  for c in "${CASES[@]}"; do
    if [[ "${c%%|*}" == "$1" ]]; then
      local a
      # Word splitting is wanted: the case's args are space separated.
      # shellcheck disable=SC2086
      for a in ${c#*|}; do printf '%s\n' "$a"; done
      [[ "$1" != secret ]] || printf '%s\n' --set "certificates.secret.caBundle=$CA_BUNDLE"
      return 0
    fi
  done
  return 1
}

render() { # render NAME [more helm args] -> $OUT_DIR/render/NAME.yaml
  local name="$1"; shift
  local args=()
  mapfile -t args < <(case_args "$name")
  "$HELM" template "$RELEASE" "$CHART" --namespace "$NS" "${args[@]}" "$@" >"$OUT_DIR/render/$name.yaml"
}

# --- 1 + 2: lint and template --------------------------------------------------------------
step "helm lint and helm template"
# The secret case needs a CA; the generate case makes one.
CA_BUNDLE=""
if render generate; then
  CA_BUNDLE="$(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Secret" and d.get("type") == "kubernetes.io/tls":
        print(d["data"]["ca.crt"])' "$OUT_DIR/render/generate.yaml")"
fi
[[ -n "$CA_BUNDLE" ]] || { fail "generate render holds no CA"; CA_BUNDLE=Cg==; }

for c in "${CASES[@]}"; do
  name="${c%%|*}"
  mapfile -t args < <(case_args "$name")
  if out="$("$HELM" lint --strict "$CHART" --namespace "$NS" "${args[@]}" 2>&1)"; then
    ok "helm lint --strict ($name)"
  else
    fail "helm lint --strict ($name)"; echo "$out" >&2
  fi
  if err="$(render "$name" 2>&1)"; then
    ok "helm template ($name): $(grep -c '^kind:' "$OUT_DIR/render/$name.yaml") objects"
  else
    fail "helm template ($name)"; echo "$err" >&2
  fi
done

for r in "${REFUSED[@]}"; do
  # shellcheck disable=SC2086
  if out="$("$HELM" template "$RELEASE" "$CHART" --namespace "$NS" ${r%%|*} 2>&1)"; then
    fail "helm template ${r%%|*} rendered; it must be refused"
  elif grep -qF -- "${r#*|}" <<<"$out"; then
    ok "refused: ${r%%|*}"
  else
    fail "helm template ${r%%|*} failed without naming '${r#*|}':"; echo "$out" >&2
  fi
done

# --- assertions on what was rendered --------------------------------------------------------
step "rendered content"
CHART="$CHART" python3 - "$OUT_DIR/render" <<'PY' || FAILED=1
import os, sys, yaml
d = sys.argv[1]
def load(name):
    return [x for x in yaml.safe_load_all(open(os.path.join(d, name + ".yaml"))) if x]
def one(docs, kind):
    found = [x for x in docs if x["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]
bad = []
def expect(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, file=sys.stdout if cond else sys.stderr)
    if not cond:
        bad.append(msg)

docs = load("monitoring")
rule = one(docs, "PrometheusRule")
alerts = yaml.safe_load(open(os.path.join(os.environ["CHART"], "files", "alerts.yaml")))
expect(rule["spec"] == alerts, "PrometheusRule carries files/alerts.yaml as is (what promtool tests)")
sm = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
expect(sm["scheme"] == "https" and sm["tlsConfig"]["ca"]["secret"]["key"] == "ca.crt",
       "ServiceMonitor scrapes over HTTPS trusting the serving CA")
egress = one(docs, "NetworkPolicy")["spec"]["egress"]
expect(any(p.get("port") == 4318 for e in egress for p in e.get("ports", [])),
       "with a telemetry endpoint the webhook may reach the OTLP collector")
expect("monitoring.coreos.com/v1" not in {d["apiVersion"] for d in load("default")},
       "no Prometheus Operator objects by default")
import json
dash = [x for x in docs if x["kind"] == "ConfigMap" and x["metadata"]["name"].endswith("-dashboard")]
expect(len(dash) == 1 and dash[0]["metadata"]["labels"].get("grafana_dashboard") == "1",
       "the dashboard ConfigMap carries Grafana's discovery label grafana_dashboard: \"1\"")
expect(len(dash) == 1 and json.loads(dash[0]["data"]["openclaw-admission.json"])
       == json.load(open(os.path.join(os.environ["CHART"], "files", "dashboard.json"))),
       "the dashboard ConfigMap carries files/dashboard.json as is (what promtool checks)")
expect(not any(x["kind"] == "ConfigMap" and "grafana_dashboard" in x["metadata"].get("labels", {})
               for x in load("default")),
       "no dashboard ConfigMap by default")

docs = load("default")
vwc, mwc = one(docs, "ValidatingWebhookConfiguration"), one(docs, "MutatingWebhookConfiguration")
pod_v = [w for w in vwc["webhooks"] if w["name"] == "validate.openclaw.io"]
pod_m = [w for w in mwc["webhooks"] if w["name"] == "mutate.openclaw.io"]
expect(len(pod_v) == 1 and len(pod_m) == 1, "one pod entry each, validating and mutating, for every agent selector")
selectors = yaml.safe_load(open(os.path.join(os.environ["CHART"], "values.yaml")))["agentSelectors"]
for w in pod_v + pod_m:
    cond = [c["expression"] for c in w.get("matchConditions", []) if c["name"] == "agent-pod"]
    expect("objectSelector" not in w and len(cond) == 1
           and all(f'l["{k}"] == "{v}"' in cond[0] for s in selectors for k, v in s["matchLabels"].items()),
           f"{w['name']} ORs every agent selector in one matchCondition")
expect(all(w["failurePolicy"] == "Fail" for w in vwc["webhooks"]
           if w["name"] != "validate-cluster-changes.openclaw.io"), "validating entries fail closed")
# Issue 26: an outage must not block cluster-wide RBAC changes, this chart's own included.
cluster_changes = [w for w in vwc["webhooks"] if w["name"] == "validate-cluster-changes.openclaw.io"]
expect(len(cluster_changes) == 1 and cluster_changes[0]["failurePolicy"] == "Ignore"
       and any("rbac.authorization.k8s.io" in r["apiGroups"] and "clusterroles" in r["resources"]
               for r in cluster_changes[0]["rules"]),
       "RBAC changes are judged by an entry that fails open")
egress = [w for w in vwc["webhooks"] if w["name"] == "validate-egress-policies.openclaw.io"]
expect(len(egress) == 1 and any("DELETE" in r["operations"] and "networkpolicies" in r["resources"]
                                for r in egress[0]["rules"]),
       "NetworkPolicy deletes are judged")
expect(all(w.get("reinvocationPolicy") == "IfNeeded" for w in pod_m), "pod mutating entries reinvoke IfNeeded")
wl_v = [w for w in vwc["webhooks"] if w["name"] == "validate-workloads.openclaw.io"]
wl_m = [w for w in mwc["webhooks"] if w["name"] == "mutate-workloads.openclaw.io"]
expect(len(wl_v) == 1 and len(wl_m) == 1, "one workload entry each, validating and mutating")
for w in wl_v + wl_m:
    expect("objectSelector" not in w and any(c["name"] == "agent-template" for c in w.get("matchConditions", [])),
           f"{w['name']} selects by the template's labels (matchConditions), not the workload's own")
    resources = {(r["apiGroups"][0], res) for r in w["rules"] for res in r["resources"]}
    expect({g for g, _ in resources} == {"apps", "batch", ""} and ("", "replicationcontrollers") in resources,
           f"{w['name']} covers apps and batch workloads and the core group's ReplicationControllers")
for w in pod_v + wl_v:
    conds = " ".join(c["expression"] for c in w.get("matchConditions", []))
    expect("oldObject != null" in conds,
           f"{w['name']} also matches what was an agent before an UPDATE (relabel-requires-approval)")
exec_v = [w for w in vwc["webhooks"] if w["name"] == "validate-exec.openclaw.io"]
exec_res = {res for w in exec_v for r in w["rules"] for res in r["resources"] if r["operations"] == ["CONNECT"]}
expect({"pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy"} <= exec_res,
       "the exec entry covers every way in: exec, attach, port-forward, pod and service proxy")
expect(any(c["name"] == "exemption-asked" for c in wl_m[0].get("matchConditions", [])) and wl_m[0]["failurePolicy"] == "Fail",
       "mutate-workloads is called only for exemption requests and fails closed")
key = one([x for x in docs if x["kind"] == "Secret" and x["metadata"]["name"].endswith("-approval-key")], "Secret")
expect(len(key["data"]["key"]) >= 64, "an approval key Secret")
args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
expect("--approval-key-file=/etc/openclaw-admission/approval/key" in args, "serve gets the approval key")
expect(not any(a.startswith("--previous-approval-key") for a in args), "no previous approval key unless rotating")
rot = one(load("keyRotation"), "Deployment")["spec"]["template"]["spec"]
rot_args = rot["containers"][0]["args"]
expect("--previous-approval-key-file=/etc/openclaw-admission/approval-previous/key" in rot_args
       and "--previous-approval-key-until=2027-01-31" in rot_args
       and any(v.get("secret", {}).get("secretName") == "openclaw-approval-key-previous" for v in rot["volumes"]),
       "a rotation mounts the previous key and names the end of its overlap")
for w in vwc["webhooks"] + mwc["webhooks"]:
    ns = w["namespaceSelector"]["matchExpressions"][0]
    expect(ns["operator"] == "NotIn" and {"kube-system", "openclaw-chart-check"} <= set(ns["values"]),
           f"{w['name']} leaves out kube-system and the release namespace")
    expect(w["sideEffects"] == "None" and w["admissionReviewVersions"] == ["v1"] and w["timeoutSeconds"] <= 10,
           f"{w['name']} has sideEffects None, v1 reviews, a short timeout")
    expect(w["clientConfig"].get("caBundle"), f"{w['name']} carries a caBundle (generate mode)")
pod = one(docs, "Deployment")["spec"]["template"]
expect(not any(s.get("matchLabels", {}).items() <= pod["metadata"]["labels"].items()
               for s in selectors), "the webhook's own pod matches no agent selector")
rules = one(docs, "ClusterRole")["rules"]
expect(all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules), "ClusterRole is read-only")
expect(not any("secrets" in r["resources"] for r in rules), "no Secret access by default")
verbs_of = lambda res: {v for r in rules if "" in r["apiGroups"] and res in r["resources"] for v in r["verbs"]}
expect(verbs_of("pods") == {"get", "list", "watch"},
       "pods get/list/watch: the lookups of a CONNECT, the agent Pods' keys, a namespace's Pods")
expect(verbs_of("services") == {"get", "list", "watch"},
       "services watched (in-cluster-inference: type and external name) and got (a CONNECT)")
expect(verbs_of("configmaps") == {"get"},
       "configmaps get only, never listed or watched (no-plaintext-credentials: envFrom key names)")
granted = {(g, res) for r in rules for g in r["apiGroups"] for res in r["resources"] if "watch" in r["verbs"]}
expect({("node.k8s.io", "runtimeclasses"), ("", "limitranges")} <= granted,
       "RuntimeClasses and LimitRanges are watched (sandboxed-runtime, resource-limits)")
expect({("cilium.io", "ciliumnetworkpolicies"), ("cilium.io", "ciliumclusterwidenetworkpolicies"),
        ("secrets-store.csi.x-k8s.io", "secretproviderclasses")} <= granted,
       "the optional kinds the webhook watches where served (Cilium policies, SecretProviderClasses)")
expect(any(x["kind"] == "PodDisruptionBudget" for x in docs), "a PodDisruptionBudget with two replicas")

legacy = one(load("legacySecretCheck"), "ClusterRole")["rules"]
expect(any("secrets" in r["resources"] for r in legacy), "legacySecretCheck grants Secret read")
expect(not any(x["kind"] == "PodDisruptionBudget" for x in load("singleReplica")), "no PDB with one replica")

cm = load("certManager")
cm_wh = [x for x in cm if x["kind"].endswith("WebhookConfiguration")]
expect(all("cert-manager.io/inject-ca-from" in x["metadata"].get("annotations", {}) for x in cm_wh),
       "certManager: both configurations ask for CA injection")
expect(not any(w["clientConfig"].get("caBundle") for x in cm_wh for w in x["webhooks"]),
       "certManager: no caBundle of our own")
expect({x["kind"] for x in cm} >= {"Issuer", "Certificate"}, "certManager: Issuer and Certificate")
expect(not any(x["kind"] == "Secret" and x["type"] == "kubernetes.io/tls" for x in cm + load("secret")),
       "certManager and secret modes render no TLS Secret")

ca = [x for x in load("catchAll") if x["kind"] == "ValidatingWebhookConfiguration"][0]["webhooks"]
catch = [w for w in ca if w["name"].startswith("validate-catchall")]
expect(len(catch) == 1 and catch[0]["failurePolicy"] == "Ignore", "catch-all entry fails open")
cm_ca = [x for x in load("catchAll") if x["kind"] == "MutatingWebhookConfiguration"][0]["webhooks"]
expect(any(w["name"] == "mutate-catchall.openclaw.io" and w["failurePolicy"] == "Ignore" for w in cm_ca),
       "catch-all pods are mutated too, failing open")

# Client authentication: off by default; on, in both certificate modes that make material.
def container(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]
def client_ca_volume(spec):
    return [v for v in spec["volumes"] if v["name"] == "client-ca"]
spec = container(load("default"))
expect(not any("client" in a for a in spec["containers"][0]["args"]) and not client_ca_volume(spec)
       and not any(x["kind"] == "Secret" and x["metadata"]["name"].endswith("-apiserver-client") for x in load("default")),
       "client authentication is off by default")
ga = load("clientAuthGenerate")
spec = container(ga)
args = spec["containers"][0]["args"]
expect("--client-ca-file=/etc/openclaw-admission/client-ca/ca.crt" in args
       and "--client-name=kube-apiserver-webhook-client" in args,
       "clientAuth (generate): serve gets the client CA and the allowed name")
vol = client_ca_volume(spec)
expect(len(vol) == 1 and vol[0]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
       and vol[0]["secret"]["secretName"].endswith("-apiserver-client"),
       "clientAuth (generate): the pod mounts the client CA alone, never the API server's key")
client = one([x for x in ga if x["kind"] == "Secret" and x["metadata"]["name"].endswith("-apiserver-client")], "Secret")
serving = one([x for x in ga if x["kind"] == "Secret" and x["metadata"]["name"].endswith("-tls")], "Secret")
expect(set(client["data"]) == {"ca.crt", "tls.crt", "tls.key"} and client["data"]["ca.crt"] != serving["data"]["ca.crt"],
       "clientAuth (generate): a client CA of its own and the API server's certificate and key")
import base64, subprocess, tempfile
with tempfile.TemporaryDirectory() as t:
    for k in ("ca.crt", "tls.crt"):
        open(os.path.join(t, k), "wb").write(base64.b64decode(client["data"][k]))
    open(os.path.join(t, "serving-ca.crt"), "wb").write(base64.b64decode(serving["data"]["ca.crt"]))
    v = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile", os.path.join(t, "ca.crt"),
                        os.path.join(t, "tls.crt")], capture_output=True, text=True)
    expect(v.returncode == 0, f"clientAuth (generate): the API server's certificate is a client certificate from the client CA ({v.stdout.strip()} {v.stderr.strip()})")
    v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(t, "serving-ca.crt"), os.path.join(t, "tls.crt")],
                       capture_output=True, text=True)
    expect(v.returncode != 0, "clientAuth (generate): the serving CA does not vouch for the API server's certificate")
    subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", os.path.join(t, "tls.crt")],
                          capture_output=True, text=True).stdout
    expect("kube-apiserver-webhook-client" in subj, f"clientAuth (generate): the client certificate is named {subj.strip()}")
cma = load("clientAuthCertManager")
certs = {x["metadata"]["name"]: x["spec"] for x in cma if x["kind"] == "Certificate"}
leaf = [c for n, c in certs.items() if n.endswith("-apiserver-client")]
ca_cert = [c for n, c in certs.items() if n.endswith("-client-ca")]
expect(len(ca_cert) == 1 and ca_cert[0].get("isCA") and len(leaf) == 1
       and "client auth" in leaf[0]["usages"] and "server auth" not in leaf[0]["usages"]
       and leaf[0]["issuerRef"]["name"].endswith("-client-ca"),
       "clientAuth (certManager): a client CA Certificate and a client-auth Certificate it issues")
expect(not any(x["kind"] == "Secret" and x["metadata"]["name"].endswith("-apiserver-client") for x in cma),
       "clientAuth (certManager): cert-manager writes the Secret, the chart does not")
vol = client_ca_volume(container(cma))
expect(len(vol) == 1 and vol[0]["secret"]["secretName"] == leaf[0]["secretName"],
       "clientAuth (certManager): the pod mounts ca.crt of the Secret cert-manager keeps")
own = load("clientAuthOwnCa")
vol = client_ca_volume(container(own))
expect(len(vol) == 1 and vol[0]["secret"]["secretName"] == "my-client-ca"
       and not any(x["metadata"]["name"].endswith("-apiserver-client") for x in own),
       "clientAuth.caSecret: your own client CA, nothing generated")
ing = one(load("webhookCIDRs"), "NetworkPolicy")["spec"]["ingress"]
expect(len(ing) == 1 and {"ipBlock": {"cidr": "10.0.0.0/24"}} in ing[0]["from"]
       and any("namespaceSelector" in p for p in ing[0]["from"]),
       "networkPolicy.webhookCIDRs restricts the webhook's port to those CIDRs and the extra peers")
scoped = {w["name"]: w["namespaceSelector"] for w in one(load("execScoped"), "ValidatingWebhookConfiguration")["webhooks"]}
ex = scoped["validate-exec.openclaw.io"]
expect(ex.get("matchLabels") == {"openclaw.io/agents": "true"}
       and ex["matchExpressions"][0]["operator"] == "NotIn" and "kube-system" in ex["matchExpressions"][0]["values"]
       and "matchLabels" not in scoped["validate.openclaw.io"],
       "webhook.execNamespaceSelector narrows the exec entry alone, keeping the usual exclusions")
ing = one(load("default"), "NetworkPolicy")["spec"]["ingress"]
expect(len(ing) == 1 and "from" not in ing[0], "without webhookCIDRs the port is open to any source")

# The scheduled scan: off by default; on, a CronJob running audit as its own ServiceAccount,
# in the webhook's image and pod security, with a ClusterRole that lists and writes reports only.
expect(not any(x["kind"] == "CronJob" for x in load("default")), "no scheduled scan by default")
scan = load("scheduledScan")
cron = one(scan, "CronJob")
pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
web = container(scan)
sc = pod["containers"][0]
expect(sc["image"] == web["containers"][0]["image"] and sc["securityContext"] == web["containers"][0]["securityContext"]
       and pod["securityContext"] == web["securityContext"],
       "the scan runs the webhook's image with the same locked-down security contexts")
expect(sc["args"][:2] == ["audit", "--write-reports"] and "--exit-zero" in sc["args"]
       and cron["spec"]["concurrencyPolicy"] == "Forbid" and pod["restartPolicy"] == "Never",
       "the CronJob runs audit --write-reports, one at a time")
accounts = {x["metadata"]["name"] for x in scan if x["kind"] == "ServiceAccount"}
expect(pod["serviceAccountName"] in accounts and pod["serviceAccountName"] != web["serviceAccountName"]
       and pod["automountServiceAccountToken"] is False,
       "the scan has a ServiceAccount of its own, with a projected token only")
roles = {x["metadata"]["name"]: x["rules"] for x in scan if x["kind"] == "ClusterRole"}
scan_rules = roles.get(pod["serviceAccountName"], [])
writes = {(g, r, v) for x in scan_rules for g in x["apiGroups"] for r in x["resources"] for v in x["verbs"] if v != "list"}
reports = {("openreports.io", "reports"), ("openreports.io", "clusterreports"),
           ("wgpolicyk8s.io", "policyreports"), ("wgpolicyk8s.io", "clusterpolicyreports")}
expect(scan_rules and writes == {(g, r, v) for g, r in reports for v in ("create", "delete", "patch")}
       and not any("secrets" in x["resources"] or "*" in x["resources"] + x["verbs"] + x["apiGroups"] for x in scan_rules),
       "the scan's ClusterRole lists, and writes and deletes nothing but its reports")
bound = [x for x in scan if x["kind"] == "ClusterRoleBinding" and x["roleRef"]["name"] == pod["serviceAccountName"]]
expect(len(bound) == 1 and bound[0]["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "openclaw-chart-check"}],
       "the scan's ClusterRole is bound to its ServiceAccount alone")
scan_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
web_selector = one(scan, "Deployment")["spec"]["selector"]["matchLabels"]
expect(not web_selector.items() <= scan_labels.items()
       and not any(s.get("matchLabels", {}).items() <= scan_labels.items() for s in selectors),
       "the scan's pod carries neither the webhook's selector labels nor an agent label")
sys.exit(1 if bad else 0)
PY

# --- 3: webhook-config/ is current ----------------------------------------------------------
step "webhook-config/ matches the chart"
if HELM="$HELM" bash "$ROOT/webhook-config/generate.sh" --check; then
  ok "webhook-config/ is what the chart renders"
else
  fail "webhook-config/ is stale: run webhook-config/generate.sh"
fi

# --- 4: the webhook's own pod passes its own check ------------------------------------------
step "the webhook's pod passes openclaw-admission check"
BIN="${OPENCLAW_ADMISSION:-}"
if [[ -z "$BIN" ]]; then
  (cd "$ROOT" && cargo build --quiet --bin openclaw-admission)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/openclaw-admission"
fi
# run_check DIR POLICY EXPECTED_EXIT EXPECTED_CHECK_IDS LABEL: the exit code, exactly one pod
# judged (not skipped as a non-agent), and exactly these check ids (space separated) violated.
run_check() {
  local code=0 out ids
  out="$("$BIN" check -o json --policy "$2" -f "$1" 2>"$OUT_DIR/selfcheck/stderr")" || code=$?
  ids="$(python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["summary"]["judged"] == 1, "judged %d objects, expected the one pod" % r["summary"]["judged"]
print(" ".join(sorted({v["check"] for o in r["objects"] for v in o["violations"]})))' <<<"$out" 2>&1)" || code="bad report: $ids"
  if [[ "$code" == "$3" && "$ids" == "$4" ]]; then
    ok "$5 (exit $code${ids:+, $ids})"
  else
    fail "$5: exit $code, violations [$ids]; expected exit $3, violations [$4]"
    echo "$out" >&2; cat "$OUT_DIR/selfcheck/stderr" >&2
  fi
}
for name in default certManager secret catchAll singleReplica; do
  d="$OUT_DIR/selfcheck/$name"
  if python3 "$HERE/selfcheck_inputs.py" "$OUT_DIR/render/$name.yaml" "$d"; then
    # The two isolation checks at their default tier (low: warnings, exit 0): the webhook runs
    # code of its own, not a model's, under the node's runtime and user namespace, which
    # every cluster supports (docs/operations.md); it sets limits, so resource-limits holds.
    run_check "$d/manifests" "$d/policy.yaml" 0 "sandboxed-runtime user-namespace" \
      "webhook pod passes its own policy ($name)"
    run_check "$d/broken" "$d/policy.yaml" 1 "read-only-root-filesystem sandboxed-runtime user-namespace" \
      "control: the same pod with a writable root filesystem is refused ($name)"
  else
    fail "cannot build self-check inputs from the $name render"
  fi
done
# The scheduled scan's pod, from its CronJob, under the same policy.
d="$OUT_DIR/selfcheck/scheduledScan"
if python3 "$HERE/selfcheck_inputs.py" "$OUT_DIR/render/scheduledScan.yaml" "$d" --cronjob; then
  run_check "$d/manifests" "$d/policy.yaml" 0 "sandboxed-runtime user-namespace" \
    "the scheduled scan's pod passes the webhook's policy"
  run_check "$d/broken" "$d/policy.yaml" 1 "read-only-root-filesystem sandboxed-runtime user-namespace" \
    "control: the scan's pod with a writable root filesystem is refused"
else
  fail "cannot build self-check inputs from the scheduledScan render"
fi
# With legacySecretCheck the webhook reads Secrets across the cluster, which least-privilege-rbac
# forbids to agents: a documented trade-off (docs/operations.md), kept visible by this check.
d="$OUT_DIR/selfcheck/legacySecretCheck"
if python3 "$HERE/selfcheck_inputs.py" "$OUT_DIR/render/legacySecretCheck.yaml" "$d"; then
  run_check "$d/manifests" "$d/policy.yaml" 1 "least-privilege-rbac sandboxed-runtime user-namespace" \
    "legacySecretCheck: only the documented cluster-wide Secret read is flagged"
else
  fail "cannot build self-check inputs from the legacySecretCheck render"
fi

# --- 5: the real API server -----------------------------------------------------------------
if [[ -z "${KUBECONFIG:-}" ]]; then
  step "API server checks skipped (KUBECONFIG not set)"
else
  step "rendered objects on the API server ($("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}'))"
  [[ -x "$KUBECTL" ]] || { echo "check.sh: no kubectl at $KUBECTL" >&2; exit 2; }
  K=("$KUBECTL" --request-timeout=30s)
  created_ns=""
  if ! "${K[@]}" get namespace "$NS" >/dev/null 2>&1; then
    "${K[@]}" create namespace "$NS" >/dev/null
    created_ns=1
  fi
  cleanup() {
    "$HELM" uninstall "$RELEASE" --namespace "$NS" >/dev/null 2>&1 || true
    if [[ -n "$created_ns" ]]; then "${K[@]}" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; fi
  }
  trap cleanup EXIT

  have_cert_manager=""
  if "${K[@]}" get crd certificates.cert-manager.io issuers.cert-manager.io >/dev/null 2>&1; then have_cert_manager=1; fi
  for c in "${CASES[@]}"; do
    name="${c%%|*}"
    file="$OUT_DIR/render/$name.yaml"
    # Without cert-manager's CRDs the server cannot know Issuer and Certificate, and the
    # Prometheus Operator's (ServiceMonitor, PrometheusRule) are never installed here; the rest
    # of the render is still applied.
    python3 - "$file" "$OUT_DIR/render/$name.server.yaml" "$have_cert_manager" <<'PY'
import sys, yaml
skip = ("monitoring.coreos.com/",) + (() if sys.argv[3] else ("cert-manager.io/",))
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and not d["apiVersion"].startswith(skip)]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
    file="$OUT_DIR/render/$name.server.yaml"
    if out="$("${K[@]}" apply --dry-run=server -f "$file" 2>&1)"; then
      ok "kubectl apply --dry-run=server ($name): $(wc -l <<<"$out") objects accepted"
    else
      fail "kubectl apply --dry-run=server ($name)"; echo "$out" >&2
    fi
  done
  [[ -n "$have_cert_manager" ]] || echo "note: no cert-manager CRDs on this server; Issuer and Certificate were not sent"
  # The plain manifests, with their placeholders filled as a user (or the e2e suite) would.
  for f in "$ROOT"/webhook-config/{service,url}/*.yaml; do
    rel="${f#"$ROOT"/}"
    if out="$(sed -e "s|\${CA_BUNDLE}|$CA_BUNDLE|g" -e 's|\${WEBHOOK_HOST}|127.0.0.1:8443|g' "$f" \
      | "${K[@]}" apply --dry-run=server -f - 2>&1)"; then
      ok "kubectl apply --dry-run=server $rel"
    else
      fail "kubectl apply --dry-run=server $rel"; echo "$out" >&2
    fi
  done

  step "helm install, upgrade, uninstall"
  # A selector no test pod carries, so the installed (fail-closed) configuration cannot affect
  # anything else running against the same API server while this step runs.
  ISOLATE=(--set-json 'agentSelectors=[{"matchLabels":{"openclaw.io/chart-check":"never-matches"}}]')
  # Client authentication on, so the upgrade shows the API server's certificate kept too.
  ISOLATE+=(--set clientAuth.enabled=true)
  ca_bundle() { "${K[@]}" get validatingwebhookconfiguration "$RELEASE" -o jsonpath='{.webhooks[0].clientConfig.caBundle}'; }
  client_cert() { "${K[@]}" -n "$NS" get secret "$RELEASE-apiserver-client" -o jsonpath='{.data.tls\.crt}'; }
  if out="$("$HELM" install "$RELEASE" "$CHART" --namespace "$NS" "${ISOLATE[@]}" 2>&1)"; then
    ok "helm install"
    before="$(ca_bundle)"
    client_before="$(client_cert)"
    if out="$("$HELM" upgrade "$RELEASE" "$CHART" --namespace "$NS" "${ISOLATE[@]}" 2>&1)"; then
      ok "helm upgrade"
      after="$(ca_bundle)"
      if [[ -n "$before" && "$before" == "$after" ]]; then
        ok "generate mode keeps its CA across an upgrade"
      else
        fail "the caBundle changed on upgrade (lookup did not keep the Secret)"
      fi
      client_after="$(client_cert)"
      if [[ -n "$client_before" && "$client_before" == "$client_after" ]]; then
        ok "generate mode keeps the API server's client certificate across an upgrade"
      else
        fail "the API server's client certificate changed on upgrade (or is missing)"
      fi
    else
      fail "helm upgrade"; echo "$out" >&2
    fi
  else
    fail "helm install"; echo "$out" >&2
  fi
  if out="$("$HELM" uninstall "$RELEASE" --namespace "$NS" --wait 2>&1)"; then
    ok "helm uninstall"
  else
    fail "helm uninstall"; echo "$out" >&2
  fi
  left="$("${K[@]}" get validatingwebhookconfigurations,mutatingwebhookconfigurations \
    -l "app.kubernetes.io/instance=$RELEASE" -o name 2>&1)"
  if [[ -z "$left" ]] && ! "${K[@]}" get validatingwebhookconfiguration "$RELEASE" >/dev/null 2>&1 \
    && ! "${K[@]}" get mutatingwebhookconfiguration "$RELEASE" >/dev/null 2>&1; then
    ok "no webhook configuration left after uninstall"
  else
    fail "webhook configurations left after uninstall: $left"
  fi
fi

echo
if [[ "$FAILED" != 0 ]]; then
  echo "chart check FAILED (renders in $OUT_DIR)" >&2
  exit 1
fi
echo "chart check passed (renders in $OUT_DIR)"
