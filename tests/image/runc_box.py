#!/usr/bin/env python3
"""Runs the webhook image with runc in the box the chart describes, and checks it from outside.

Usage: runc_box.py ARCHIVE --helm HELM --seccomp-tool TOOL [--runc RUNC]

  1. unpacks the oci-archive (`make image`): the config must name the non-root user, the
     entrypoint and `serve`; the layer must hold the binary and /etc/passwd, /etc/group, nothing
     else (no shell);
  2. renders the chart (helm template) and builds the runc bundle from its Deployment: the
     container's args, the user and group (fsGroup as a supplementary group, as the kubelet
     does), a read-only root filesystem, every capability dropped, no_new_privileges, Docker's
     default seccomp profile (what RuntimeDefault means on containerd and CRI-O), and every
     volume the Deployment mounts, read-only at its path, filled from the rendered Secrets and
     ConfigMaps (0440, group 65532, as the kubelet lays out the chart's Secret volumes).
     Differences from a cluster, all forced by having no kubelet: host network with
     `--listen 127.0.0.1:<free port>` instead of the pod's 0.0.0.0:8443, `--manifests` (one
     more read-only mount) instead of an API server, and a serving pair for 127.0.0.1 in place
     of the chart's (which names the Service);
  3. from the host: the kernel's view of the process (uid/gid 65532, no capabilities in any
     set, NoNewPrivs 1, Seccomp 2, root mounted ro), and the image's own binary trying to write
     (`certs --out-dir`) in every place a process could, refused each time;
  4. `/readyz` and reviews over TLS from the host;
  5. SIGTERM (`runc kill`) with a review half sent: new connections are refused, the review is
     answered, the process exits 0.

Every container started here is killed and deleted on the way out, on failure too. Needs root
(runc creates namespaces); CI runs as root.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "reviews")
PATIENCE = 30.0

FAILED = []


def ok(msg):
    print(f"ok   {msg}", flush=True)


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr, flush=True)
    FAILED.append(msg)


def expect(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(f"{msg}{': ' + detail if detail else ''}")
    return cond


def blob(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def read_image(archive, work):
    """Unpacks the archive into work/layout; returns (manifest, config, layer paths)."""
    layout = os.path.join(work, "layout")
    with tarfile.open(archive) as t:
        t.extractall(layout, filter="data")
    index = json.load(open(os.path.join(layout, "index.json")))
    if len(index["manifests"]) != 1:
        raise SystemExit(f"{archive}: index.json lists {len(index['manifests'])} manifests, expected one image")
    desc = index["manifests"][0]
    manifest = json.load(open(blob(layout, desc["digest"])))
    config = json.load(open(blob(layout, manifest["config"]["digest"])))
    layers = [blob(layout, layer["digest"]) for layer in manifest["layers"]]
    print(f"image: {desc.get('annotations', {}).get('org.opencontainers.image.ref.name', '?')} {desc['digest']}")
    return manifest, config, layers


def unpack_rootfs(layers, rootfs):
    """Applies the layers in order; files keep the owner and mode the image gives them."""
    names = []
    for path in layers:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if os.path.basename(m.name).startswith(".wh."):
                    raise SystemExit(f"{path}: whiteout {m.name}; this test applies plain layers only")
                names.append(m.name.rstrip("/"))
            t.extractall(rootfs, filter="tar")
    return sorted(names)


def render_chart(helm):
    """The chart's default render: the pod spec and every rendered object (for the volumes)."""
    out = subprocess.run(
        [helm, "template", "openclaw-admission", os.path.join(ROOT, "charts", "openclaw-admission"),
         "--namespace", "openclaw-system"],
        check=True, capture_output=True, text=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    return deploy["spec"]["template"]["spec"], docs


def volume_files(volume, docs):
    """What the kubelet would put in a Secret or ConfigMap volume, from the rendered objects:
    {relative path: bytes}. Other volume kinds (the projected API token) stay empty: with
    --manifests, serve reads no token."""
    for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
        if field not in volume:
            continue
        src = volume[field]
        name = src.get("secretName") or src.get("name")
        obj = next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)
        if obj is None:
            raise SystemExit(f"volume {volume['name']}: the chart renders no {kind} {name}")
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()} if kind == "Secret" \
            else {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        if "items" in src:
            return {item["path"]: data[item["key"]] for item in src["items"]}
        return data
    return {}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mount_dir(host, mode, gid):
    """A volume as the kubelet lays out a Secret with defaultMode 0440 and fsGroup."""
    os.chown(host, 0, gid)
    os.chmod(host, 0o750)
    for name in os.listdir(host):
        p = os.path.join(host, name)
        os.chown(p, 0, gid)
        os.chmod(p, mode)


def bundle_config(image_cfg, pod, container, mounts, args, seccomp):
    psc, csc = pod.get("securityContext", {}), container["securityContext"]
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    groups = [psc["fsGroup"]] if "fsGroup" in psc else []
    no_caps = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    ro_bind = ["rbind", "ro", "nosuid", "nodev", "noexec"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": groups},
            # The pod's args replace the image's Cmd; the entrypoint stays.
            "args": image_cfg["config"]["Entrypoint"] + args,
            "env": image_cfg["config"].get("Env", []),
            "cwd": image_cfg["config"].get("WorkingDir") or "/",
            "capabilities": no_caps,
            "noNewPrivileges": not csc.get("allowPrivilegeEscalation", True),
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        },
        "root": {"path": "rootfs", "readonly": bool(csc.get("readOnlyRootFilesystem"))},
        "hostname": "openclaw-admission",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            # Device nodes only; root-owned 0755, so the process can create nothing here.
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ] + [{"destination": dst, "type": "bind", "source": src, "options": ro_bind} for dst, src in mounts],
        "linux": {
            # No network namespace: host networking, loopback address only (see --listen).
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "seccomp": seccomp,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def tls_context(ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = True
    return ctx


def get(url, ctx, timeout=5):
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
        return r.status, r.read().decode()


def post(url, body, ctx):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.status, json.loads(r.read())


def proc_status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("archive")
    ap.add_argument("--helm", required=True)
    ap.add_argument("--seccomp-tool", required=True)
    ap.add_argument("--runc", default="runc")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("runc_box.py needs root: runc creates the namespaces and mounts (CI runs as root)")
    if not shutil.which(a.runc):
        raise SystemExit(f"runc_box.py: no runc at '{a.runc}' (Debian: apt-get install runc)")

    # SIGTERM (a CI timeout) unwinds like an error, so the container is still removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="openclaw-runc.")
    os.chmod(work, 0o755)
    cid = f"openclaw-admission-test-{os.getpid()}"
    started = []
    try:
        run(a, work, cid, started)
    finally:
        for c in started:
            subprocess.run([a.runc, "kill", c, "KILL"], capture_output=True)
            subprocess.run([a.runc, "delete", "--force", c], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if FAILED:
        print(f"\nrunc box: {len(FAILED)} FAILED", file=sys.stderr)
        sys.exit(1)
    print("\nrunc box: all checks passed")


def run(a, work, cid, started):
    # --- 1: the image ------------------------------------------------------------------------
    print("== the image")
    manifest, cfg, layers = read_image(a.archive, work)
    c = cfg["config"]
    expect(c.get("User") == "65532:65532", "config user is numeric non-root 65532:65532", repr(c.get("User")))
    expect(c.get("Entrypoint") == ["/usr/local/bin/openclaw-admission"], "entrypoint is the binary", repr(c.get("Entrypoint")))
    expect(c.get("Cmd") == ["serve"], "default argument is serve", repr(c.get("Cmd")))
    labels = c.get("Labels") or {}
    for key in ("source", "version", "licenses", "revision"):
        expect(labels.get(f"org.opencontainers.image.{key}"), f"label org.opencontainers.image.{key} = {labels.get(f'org.opencontainers.image.{key}')}")
    bundle = os.path.join(work, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs)
    names = unpack_rootfs(layers, rootfs)
    expected = ["etc", "etc/group", "etc/passwd", "usr", "usr/local", "usr/local/bin",
                "usr/local/bin/openclaw-admission"]
    expect(names == expected, "the layer holds the binary, /etc/passwd and /etc/group only (no shell)", repr(names))
    binary = os.path.join(rootfs, "usr/local/bin/openclaw-admission")

    # --- 2: the bundle, from the chart's Deployment -------------------------------------------
    print("== the box, from the chart's Deployment")
    pod, docs = render_chart(a.helm)
    container = next(x for x in pod["containers"] if x["name"] == "webhook")
    csc = container["securityContext"]
    expect(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
           and csc.get("capabilities", {}).get("drop") == ["ALL"]
           and csc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
           and csc.get("runAsNonRoot") is True,
           "the chart asks for read-only root, no escalation, drop ALL, RuntimeDefault seccomp, non-root")
    gid = pod["securityContext"]["fsGroup"]
    port = free_port()
    args = [x for x in container["args"] if not x.startswith("--listen")]
    args += [f"--listen=127.0.0.1:{port}", "--manifests=/etc/openclaw-admission/manifests",
             "--shutdown-grace=20s"]
    mounts_by_name = {m["name"]: m for m in container["volumeMounts"]}
    expect(all(m.get("readOnly") for m in container["volumeMounts"]), "every volume the chart mounts is read-only")
    # Every volume the chart mounts, filled from the rendered Secrets and ConfigMaps, except
    # the serving pair: the chart's own is for the Service's DNS name, the host calls 127.0.0.1.
    volumes = {v["name"]: v for v in pod["volumes"]}
    host = {}
    for name in mounts_by_name:
        host[name] = os.path.join(work, "volumes", name)
        os.makedirs(host[name])
        for rel, content in volume_files(volumes[name], docs).items():
            open(os.path.join(host[name], rel), "wb").write(content)
    # The serving pair, made by the image's own binary (static: it runs on the host as well).
    certs = os.path.join(work, "certs")
    subprocess.run([binary, "certs", "--out-dir", certs, "--ip", "127.0.0.1", "--dns", "localhost"],
                   check=True, capture_output=True)
    for f in ("tls.crt", "tls.key"):
        shutil.copy(os.path.join(certs, f), host["tls"])
    manifests = os.path.join(work, "volumes", "manifests")
    os.makedirs(manifests)
    shutil.copy(os.path.join(FIXTURES, "cluster-view.json"), manifests)
    for d in list(host.values()) + [manifests]:
        mount_dir(d, 0o440, gid)
    mounts = [(mounts_by_name[n]["mountPath"], host[n]) for n in mounts_by_name]
    mounts.append(("/etc/openclaw-admission/manifests", manifests))
    seccomp = json.loads(subprocess.run([a.seccomp_tool], check=True, capture_output=True, text=True).stdout)
    config = bundle_config(cfg, pod, container, mounts, args, seccomp)
    json.dump(config, open(os.path.join(bundle, "config.json"), "w"), indent=2)
    print(f"bundle: user {config['process']['user']}, args {' '.join(config['process']['args'])}")

    # --- 3: run it ----------------------------------------------------------------------------
    print("== serve inside runc")
    log = open(os.path.join(work, "serve.log"), "w+")
    started.append(cid)
    proc = subprocess.Popen([a.runc, "run", "--bundle", bundle, cid], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    ctx = tls_context(os.path.join(certs, "ca.crt"))
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + PATIENCE
    ready = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ready = get(f"{url}/readyz", ctx)
            if ready[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    if not expect(ready is not None and ready[0] == 200, f"GET /readyz over TLS from the host: {ready}"):
        log.seek(0)
        raise SystemExit(f"serve never became ready (runc exit {proc.poll()}):\n{log.read()}")

    state = json.loads(subprocess.run([a.runc, "state", cid], check=True, capture_output=True, text=True).stdout)
    pid = state["pid"]
    st = proc_status(pid)
    expect(st["Uid"].split() == ["65532"] * 4 and st["Gid"].split() == ["65532"] * 4,
           f"runs as uid/gid 65532 (Uid {st['Uid']}, Gid {st['Gid']}, Groups {st['Groups']})")
    caps = {k: st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    expect(all(int(v, 16) == 0 for v in caps.values()), f"no capability in any set {caps}")
    expect(st.get("NoNewPrivs") == "1", f"NoNewPrivs {st.get('NoNewPrivs')}")
    expect(st.get("Seccomp") == "2", f"seccomp filter mode (Seccomp {st.get('Seccomp')}, {len(seccomp['syscalls'])} rules, default {seccomp['defaultAction']})")
    mountinfo = [line.split() for line in open(f"/proc/{pid}/mountinfo")]
    root = next(m for m in mountinfo if m[4] == "/")
    expect("ro" in root[5].split(","), f"root filesystem mounted {root[5]}")
    for dst, _ in mounts:
        m = next((m for m in mountinfo if m[4] == dst), None)
        expect(m is not None and "ro" in m[5].split(","), f"{dst} mounted {m[5] if m else 'missing'}")

    # The image's own binary, in the same box, tries to write a certificate pair everywhere.
    probe = dict(config["process"])
    control = os.path.join(work, "control-probe")
    write = ["certs", "--dns", "probe", "--out-dir"]
    out = subprocess.run([binary] + write + [control], capture_output=True, text=True)
    expect(out.returncode == 0 and os.path.exists(os.path.join(control, "tls.key")),
           "control: the write probe (certs --out-dir) writes on the host", out.stderr)
    # Refused by the kernel for a read-only mount (os error 30) or missing permission (13);
    # /proc and /sys refuse a new entry with their own errors, any of which is a refusal.
    refusals = {"/proc/probe": ("os error",), "/sys/probe": ("os error",)}
    targets = ["/", "/probe", "/tmp", "/etc", "/usr/local/bin", "/dev", "/dev/shm", "/sys/probe",
               "/proc/probe"] + [dst for dst, _ in mounts]
    for target in targets:
        probe["args"] = config["process"]["args"][:1] + write + [target]
        pfile = os.path.join(work, "probe.json")
        json.dump(probe, open(pfile, "w"))
        out = subprocess.run([a.runc, "exec", "--process", pfile, cid], capture_output=True, text=True, timeout=PATIENCE)
        why = refusals.get(target, ("Read-only file system (os error 30)", "Permission denied (os error 13)"))
        reason = next((line.strip() for line in out.stderr.splitlines() if any(w in line for w in why)), None)
        expect(out.returncode != 0 and reason is not None, f"cannot write in {target}: {reason}",
               f"exit {out.returncode}: {out.stdout}{out.stderr}")

    for name, allowed in (("pod-create-unhardened.json", False), ("pod-create-hardened.json", True)):
        body = open(os.path.join(FIXTURES, name), "rb").read()
        status, review = post(f"{url}/validate", body, ctx)
        expect(status == 200 and review["response"]["allowed"] is allowed,
               f"POST /validate {name}: allowed={review['response']['allowed']}")
    status, review = post(f"{url}/mutate", open(os.path.join(FIXTURES, "pod-create-hardened.json"), "rb").read(), ctx)
    expect(status == 200 and review["response"]["allowed"] is True, f"POST /mutate: patch {review['response'].get('patchType')}")

    # --- 4: SIGTERM with a review in flight ---------------------------------------------------
    print("== SIGTERM with a review in flight")
    body = open(os.path.join(FIXTURES, "pod-create-hardened.json"), "rb").read()
    raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=PATIENCE), server_hostname="127.0.0.1")
    raw.sendall((f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 2])
    in_flight = None
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        metrics = get(f"{url}/metrics", ctx)[1]
        in_flight = next((line.split()[-1] for line in metrics.splitlines()
                          if line.startswith("openclaw_admission_requests_in_flight ")), None)
        if in_flight == "1":
            break
        time.sleep(0.1)
    expect(in_flight == "1", f"one review in flight before SIGTERM (gauge {in_flight})")
    subprocess.run([a.runc, "kill", cid, "TERM"], check=True)
    refused = False
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.1)
        except OSError:
            refused = True
    expect(refused, "after SIGTERM new connections are refused")
    raw.sendall(body[len(body) // 2:])
    answer = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            break
        answer += chunk
    raw.close()
    text = answer.decode(errors="replace")
    expect(text.startswith("HTTP/1.1 200") and "7f0c5b2e-9a61-4c43-8f0e-1d2a3b4c5d02" in text,
           "the review in flight is answered after SIGTERM", text[:300])
    try:
        code = proc.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        code = None
    log.seek(0)
    logs = log.read()
    expect(code == 0, f"serve exits 0 after SIGTERM (runc run exit {code})", logs[-2000:])
    expect("SIGTERM received" in logs, "serve logged the SIGTERM")
    subprocess.run([a.runc, "delete", cid], capture_output=True)
    started.remove(cid)


if __name__ == "__main__":
    main()
