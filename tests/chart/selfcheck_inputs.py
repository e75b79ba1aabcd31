#!/usr/bin/env python3
"""Builds the inputs of the chart's self-check from one `helm template` render.

The webhook's own pod must pass every check of its own policy. `openclaw-admission check` only
judges agents, and the webhook's pod is deliberately not one, so this turns its Deployment's pod
template into a Pod that carries the first agent selector's labels; everything the checks consult
(ServiceAccount, NetworkPolicy, RBAC, the namespace) is copied beside it.

The policy is the rendered ConfigMap's, with one addition: the API-server ports of the chart's
NetworkPolicy join the egress allow-list. Agents are not given that egress; the webhook needs it
to watch the cluster, and this is the only place the self-check departs from the shipped policy.

The scheduled scan's pod (the CronJob's) is judged the same way with `--cronjob`: it runs the
same image, and must pass the same checks.

usage: selfcheck_inputs.py RENDER.yaml OUT_DIR [--cronjob]
writes OUT_DIR/policy.yaml, OUT_DIR/manifests/{pod,context}.yaml and
OUT_DIR/broken/{pod,context}.yaml (a control that must fail: root filesystem writable).
"""

import copy
import os
import sys

import yaml

# The engine's default egress allow-list (src/engine/policy.rs, EgressSettings::default), used
# when the chart's policy does not set checks.egress.allow.
ENGINE_DEFAULT_EGRESS = [
    {"name": "DNS", "protocol": "UDP", "port": 53},
    {"name": "DNS", "protocol": "TCP", "port": 53},
    {"name": "HTTPS", "protocol": "TCP", "port": 443},
]

CONTEXT_KINDS = {"ServiceAccount", "NetworkPolicy", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def die(msg):
    print(f"selfcheck_inputs: {msg}", file=sys.stderr)
    sys.exit(2)


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--cronjob"):
        die("usage: selfcheck_inputs.py RENDER.yaml OUT_DIR [--cronjob]")
    render, out = sys.argv[1], sys.argv[2]
    kind = "CronJob" if len(sys.argv) == 4 else "Deployment"
    with open(render) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]

    deployments = [d for d in docs if d.get("kind") == kind]
    configmaps = [d for d in docs if d.get("kind") == "ConfigMap" and "policy.yaml" in (d.get("data") or {})]
    if len(deployments) != 1 or len(configmaps) != 1:
        die(f"expected one {kind} and one policy ConfigMap, found {len(deployments)} and {len(configmaps)}")
    deploy, cm = deployments[0], configmaps[0]
    namespace = deploy["metadata"]["namespace"]

    policy = yaml.safe_load(cm["data"]["policy.yaml"]) or {}
    selectors = policy.get("agentSelectors") or []
    agent_labels = (selectors[0].get("matchLabels") if selectors else None) or {}
    if not agent_labels or selectors[0].get("matchExpressions"):
        die("agentSelectors[0] must be a matchLabels-only selector to make the webhook's pod an agent")

    # The API-server egress of the webhook's NetworkPolicy, as allow-list entries.
    extra = []
    for np in (d for d in docs if d.get("kind") == "NetworkPolicy"):
        for rule in np["spec"].get("egress") or []:
            for p in rule.get("ports") or []:
                if p.get("port") != 53:
                    extra.append({"name": "Kubernetes API (webhook self-check)", "protocol": p.get("protocol", "TCP"), "port": p["port"]})
    checks = policy.setdefault("checks", {})
    egress = checks.setdefault("egress", {})
    egress["allow"] = list(egress.get("allow") or ENGINE_DEFAULT_EGRESS) + extra

    template = deploy["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else deploy["spec"]["template"]
    meta = copy.deepcopy(template.get("metadata") or {})
    meta["name"] = deploy["metadata"]["name"] + "-selfcheck"
    meta["namespace"] = namespace
    meta.setdefault("labels", {}).update(agent_labels)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template["spec"])}

    context = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    context += [d for d in docs if d.get("kind") in CONTEXT_KINDS]
    # The NetworkPolicy selects the webhook's labels, which the relabelled pod still carries.

    broken = copy.deepcopy(pod)
    broken["metadata"]["name"] += "-broken"
    for c in broken["spec"]["containers"]:
        c.setdefault("securityContext", {})["readOnlyRootFilesystem"] = False

    os.makedirs(os.path.join(out, "manifests"), exist_ok=True)
    os.makedirs(os.path.join(out, "broken"), exist_ok=True)
    with open(os.path.join(out, "policy.yaml"), "w") as f:
        yaml.safe_dump(policy, f, sort_keys=False)
    for sub, p in (("manifests", pod), ("broken", broken)):
        with open(os.path.join(out, sub, "pod.yaml"), "w") as f:
            yaml.safe_dump(p, f, sort_keys=False)
        with open(os.path.join(out, sub, "context.yaml"), "w") as f:
            yaml.safe_dump_all(context, f, sort_keys=False)


if __name__ == "__main__":
    main()
