#!/usr/bin/env python3
"""The `make image` archive, the Containerfile and the chart describe one image.

Usage: metadata_check.py ARCHIVE

Fails when they drift: the Containerfile's final stage (parsed with dockerfile-parse) must give
the config `make image` wrote (user, entrypoint, cmd, env, workdir, ports, labels), its VERSION
default must be the crate version, and the archive must be named as the chart's default image
(values image.repository, tag = appVersion = crate version), and the SBOM beside it must
describe the crate. The revision label is the commit
in the archive and a build argument in the Containerfile, so only its presence is compared.
"""

import io
import json
import os
import sys
import tarfile

import yaml
from dockerfile_parse import DockerfileParser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    archive = sys.argv[1]
    with tarfile.open(archive) as t:
        index = json.load(t.extractfile("index.json"))
        desc = index["manifests"][0]

        def blob(digest):
            return json.load(t.extractfile("blobs/" + digest.replace(":", "/")))

        config = blob(blob(desc["digest"])["config"]["digest"])
    c = config["config"]

    with open(os.path.join(ROOT, "Containerfile"), "rb") as f:
        dfp = DockerfileParser(fileobj=io.BytesIO(f.read()))
    final = []
    for instr in dfp.structure:
        if instr["instruction"] == "FROM":
            final = []
        final.append(instr)
    one = {i["instruction"]: i["value"] for i in final}
    chart = yaml.safe_load(open(os.path.join(ROOT, "charts/openclaw-admission/Chart.yaml")))
    values = yaml.safe_load(open(os.path.join(ROOT, "charts/openclaw-admission/values.yaml")))
    crate = None
    for line in open(os.path.join(ROOT, "Cargo.toml")):
        if line.startswith("version = "):
            crate = line.split('"')[1]
            break

    bad = []

    def want(what, got, expected):
        print(("ok   " if got == expected else "FAIL ") + f"{what}: {got!r}" + ("" if got == expected else f", expected {expected!r}"))
        if got != expected:
            bad.append(what)

    want("Containerfile final stage base", dfp.baseimage, "scratch")
    want("Containerfile USER = image user", one.get("USER"), c.get("User"))
    want("Containerfile ENTRYPOINT = image entrypoint", json.loads(one.get("ENTRYPOINT", "null")), c.get("Entrypoint"))
    want("Containerfile CMD = image cmd", json.loads(one.get("CMD", "null")), c.get("Cmd"))
    want("Containerfile WORKDIR = image workdir", one.get("WORKDIR"), c.get("WorkingDir"))
    want("Containerfile ENV = image env", [f"{k}={v}" for k, v in dfp.envs.items()], c.get("Env"))
    want("Containerfile EXPOSE = image ports", sorted(one.get("EXPOSE", "").split()), sorted(c.get("ExposedPorts", {})))
    labels = dict(c.get("Labels") or {})
    file_labels = dict(dfp.labels)
    want("revision label in both", ("org.opencontainers.image.revision" in labels,
                                    "org.opencontainers.image.revision" in file_labels), (True, True))
    labels.pop("org.opencontainers.image.revision", None)
    file_labels.pop("org.opencontainers.image.revision", None)
    want("Containerfile LABELs = image labels", file_labels, labels)
    want("Containerfile ARG VERSION = crate version", dfp.args.get("VERSION"), crate)
    want("chart appVersion = crate version", str(chart["appVersion"]), crate)
    want("values image.tag (empty: the appVersion)", values["image"]["tag"] in ("", crate), True)
    want("archive names the chart's default image",
         desc.get("annotations", {}).get("org.opencontainers.image.ref.name"),
         f"{values['image']['repository']}:{chart['appVersion']}")

    # The SBOM beside the archive: CycloneDX for this crate and version, the crates linked into
    # the binary (rustls' ring among them), not the dev-dependencies (tempfile serves the tests
    # only; reqwest is linked in since the OTLP exporter uses it).
    sbom_path = archive[: -len(".oci.tar")] + ".cdx.json"
    sbom = json.load(open(sbom_path)) if os.path.exists(sbom_path) else {}
    names = {c["name"] for c in sbom.get("components", [])}
    want("SBOM format", (sbom.get("bomFormat"), sbom.get("specVersion")), ("CycloneDX", "1.5"))
    want("SBOM describes", (sbom.get("metadata", {}).get("component", {}).get("name"),
                            sbom.get("metadata", {}).get("component", {}).get("version")), ("openclaw-admission", crate))
    want("SBOM lists ring and kube, not the dev-dependency tempfile",
         ("ring" in names, "kube" in names, "tempfile" in names), (True, True, False))
    print(f"     SBOM {sbom_path}: {len(names)} components")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
