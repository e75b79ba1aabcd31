"""Prints what the webhook injected into a stored pod (kubectl get pod -o json on stdin).

Only the injected OTel values are shown in full; other env values could be credentials.
"""
import json
import sys

pod = json.load(sys.stdin)
spec = pod["spec"]
print("  metadata.annotations:")
for key, value in sorted(pod["metadata"].get("annotations", {}).items()):
    if key.startswith("openclaw.io/"):
        print(f"    {key}: {value}")
automount = str(spec.get("automountServiceAccountToken")).lower()
print(f"  spec.automountServiceAccountToken: {automount}")
print("  spec.volumes:")
for vol in spec.get("volumes", []):
    kind = next(k for k in vol if k != "name")
    detail = ""
    if kind == "projected":
        for src in vol[kind]["sources"]:
            if "serviceAccountToken" in src:
                exp = src["serviceAccountToken"].get("expirationSeconds")
                detail = f"serviceAccountToken expirationSeconds={exp}"
    if kind == "csi":
        spc = vol[kind].get("volumeAttributes", {}).get("secretProviderClass")
        detail = f"driver={vol[kind]['driver']} secretProviderClass={spc}"
    print(f"    - {vol['name']}: {kind} {detail}".rstrip())
for c in spec.get("initContainers", []) + spec["containers"]:
    print(f"  container {c['name']}:")
    print("    env:")
    for env in c.get("env", []):
        if env["name"].startswith("OTEL_"):
            value = env.get("value", "<valueFrom>")
        else:
            value = "<valueFrom>" if "valueFrom" in env else "<literal, not shown>"
        print(f"      - {env['name']}={value}")
    print("    volumeMounts:")
    for m in c.get("volumeMounts", []):
        ro = ", readOnly" if m.get("readOnly") else ""
        print(f"      - {m['mountPath']} ({m['name']}{ro})")
