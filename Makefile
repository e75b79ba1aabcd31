# Task runner: every command the README names is a target here.
#   make demo            the main job: a real kube-apiserver + etcd, the webhook in front,
#                        the unhardened example refused, the hardened one stored and patched
#   make demo-sandbox    the demo and a second act: agent-sandbox's real controller makes a
#                        claim's Pod, patched by the webhook
#   make test            what CI runs (.ci/run): lint, cargo deny, unit, HTTP, TLS, CLI, image
#                        (runc) and e2e tests
#   make image           the OCI image without a container engine; last line: the archive
#   make unit            the fast loop: everything in `make test` that needs no control plane,
#                        MLflow or image tools (Rust alone)
# Needs Rust, Go (to build the control plane once) and python3; everything else is fetched
# from crates.io and the Go module proxy on first use.

CARGO ?= cargo
BIN := target/release/openclaw-admission

.PHONY: demo demo-sandbox test unit lint fmt build build-lib check-examples controlplane chart toolchain rust-components bench bench-audit bench-signal bench-controlplane bench-jsonpatch mlflow promtool psa roles agent-sandbox agent-sandbox-controller reports tools image image-test deny

demo:
	bash tests/demo/run.sh

# The demo, then a second act: SIG Apps' agent-sandbox controller (built once from the Go module
# proxy, see agent-sandbox-controller) runs as its own ServiceAccount, and a hardened template,
# warm pool and claim (examples/agent-sandbox/) give a Pod that shows what the webhook injected.
demo-sandbox:
	bash tests/demo/run.sh --sandbox

# kube-apiserver, kubectl, etcd, helm from the Go module proxy, cached outside git by version
# (first run about 12 minutes on 2 cores, then nothing).
controlplane:
	bash tests/controlplane/build.sh

# MLflow and the OpenTelemetry Python SDK, pinned, in a venv cached outside git (first run
# about 1.5 minutes and 850 MB, then nothing); the e2e suite sends spans there.
mlflow:
	bash tests/mlflow/venv.sh >/dev/null

# promtool from the Go module proxy, cached like the control plane (first run: see
# tests/promtool/build.sh), for the alert rules' unit tests.
promtool:
	bash tests/promtool/build.sh >/dev/null

# Kubernetes' own Pod Security fixtures (k8s.io/pod-security-admission at the version the
# control plane pins) from the Go module proxy, cached like the control plane (seconds, once);
# tests/psa_fixtures.rs runs every check on them.
psa:
	bash tests/psa/fetch.sh >/dev/null

# Kubernetes' built-in ClusterRoles (admin, edit, view, system:*) from the same pinned
# k8s.io/kubernetes module, cached like the control plane (seconds, once); build.rs embeds
# them so the offline `check` judges bindings to them as `serve` does. A build without them
# says so in a cargo warning and the unit test builtin_roles_are_embedded fails.
roles:
	bash tests/rbac/fetch.sh >/dev/null

# agent-sandbox's CRDs (Sandbox, SandboxTemplate, SandboxWarmPool, SandboxClaim), its
# controller's ServiceAccount, ClusterRoles and bindings, and its OpenClaw example from the
# pinned sigs.k8s.io/agent-sandbox module on the Go module proxy, cached like the control plane
# (seconds, once); the e2e suite installs the CRDs and the RBAC.
agent-sandbox:
	bash tests/agent-sandbox/fetch.sh >/dev/null

# agent-sandbox's own controller, built from the same pinned module (tests/agent-sandbox/build.sh,
# cached like the control plane; its first build took about 1,300 s, 22 minutes, on 2 cores
# shared with other builds, a relink 9 s). The e2e suite's sandbox cases and the demo's second
# act run it against the control plane as its own ServiceAccount.
agent-sandbox-controller:
	bash tests/agent-sandbox/build.sh >/dev/null

# The policy report CRDs as their owners ship them: OpenReports' (openreports.io) from the
# pinned github.com/openreports/reports-api module and the wgpolicyk8s.io ones from the pinned
# Kyverno module, both from the Go module proxy, cached like the control plane (seconds, once);
# the e2e suite and `make bench-audit` install them.
reports:
	bash tests/reports/fetch.sh >/dev/null

# Formatting, the pure library alone, clippy -D warnings, cargo deny, the image tests (built
# twice, run in runc), then every test target; the e2e target (tests/e2e) starts its own
# control plane and MLflow, and runs the chart checks, the registry + helm install of the
# image and the MLflow cases against them; last, the chart's alert rules under
# `promtool test rules`.
test: toolchain controlplane mlflow promtool psa roles agent-sandbox agent-sandbox-controller reports tools
	$(CARGO) fmt --all -- --check
	$(CARGO) build --no-default-features --lib
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) --no-print-directory deny
	bash tests/image/run.sh
	$(CARGO) test --all-targets
	bash tests/promtool/test-rules.sh

# What `make test` runs that needs Rust alone: formatting, the pure library, clippy, and every
# test target but the e2e suite, the resilience test that stops an API server
# (tests/resilience/apiserver_down.rs) and the two benches that start a control plane
# (audit_scale, controlplane); the webhook bench's smoke run is in. Every file tests/*.rs is
# a test target of its own and is picked up here (tests/psa_fixtures.rs needs the Pod Security
# fixtures: `make psa`, Go, seconds once). No cargo deny, image, chart or promtool.
UNIT_TESTS := $(foreach t,$(sort $(wildcard tests/*.rs)),--test $(basename $(notdir $(t))))
unit: rust-components psa roles
	$(CARGO) fmt --all -- --check
	$(CARGO) build --no-default-features --lib
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --lib --bins $(UNIT_TESTS)
	$(CARGO) test --test resilience -- --skip apiserver_down::
	$(CARGO) test --bench webhook

# crane, the runc test's seccomp profile, cargo-cyclonedx and cargo-deny at pinned versions,
# cached outside git (first run about 10 minutes on 2 cores, then nothing).
tools:
	bash tools/build.sh

# The OCI image (static binary, crane, no container engine) and its SBOM under target/image/;
# the last line printed is the oci-archive's path. The Containerfile builds the same image.
image: toolchain roles
	@bash image/build.sh

# make image twice (one digest), the archive against the Containerfile and the chart, and the
# image in runc as the chart's securityContext says (root needed, as for runc).
image-test: toolchain roles tools
	bash tests/image/run.sh

# Licenses, bans and sources of Cargo.lock against deny.toml, offline (--frozen): cargo fetch
# brings every crate's manifest from crates.io first; advisories would need GitHub.
deny: tools
	@$(CARGO) fetch --locked --quiet
	"$$(bash tools/build.sh --print-tools-dir)/cargo-deny" --frozen check --hide-inclusion-graph licenses bans sources

# The chart's lint/template/self-check alone, without an API server.
chart: controlplane
	bash tests/chart/check.sh

fmt:
	$(CARGO) fmt --all

lint: toolchain roles
	$(CARGO) clippy --all-targets -- -D warnings

build: roles
	$(CARGO) build --release

# Throughput and latency over TLS beside an echo floor, cost vs cluster size, memory of the
# real binary and the engine alone, printed side by side (docs/performance.md); about 2 minutes.
# BENCH_SECONDS (default 10) sets the measuring time per target.
bench:
	$(CARGO) bench --bench webhook

# The agent signal (issue 26) on a real API server: the webhook's memory with 1,000 agents
# alone, among 100,000 Pods, and with every Pod held; the latency of an egress-policy change
# answered from memory and by a lookup (docs/performance.md). About 10 minutes, mostly seeding.
bench-signal: controlplane
	$(CARGO) bench --bench agent_signal

# `audit` on a real API server seeded with AUDIT_BENCH_PODS agent Pods (default: 10,000, then
# 50,000), writing bounded OpenReports: report count, largest object, time, peak memory.
bench-audit: controlplane reports
	$(CARGO) bench --bench audit_scale

# Pod creates on the real API server with no policy, the CEL pair (tests/bench/cel/) and
# the webhook, 1 to 8 clients; prints the figures and the API server's own metrics, and
# redraws docs/controlplane-bench.svg (docs/performance.md); last, kube-apiserver's CPU per
# create by bucket from a Go profile per setup (target/controlplane-bench/*.pprof).
# CP_BENCH_CREATES (default 500 per setup and client count), CP_BENCH_ROUNDS (default 2),
# CP_BENCH_PROFILE (seconds per profile, default 10; 0: none).
bench-controlplane: controlplane
	$(CARGO) bench --bench controlplane

# The API server's JSON Patch library (gopkg.in/evanphx/json-patch.v4, as kube-apiserver
# v1.37 pins it; fetched through the Go module proxy) applying the engine's patch for the
# bench pod, beside the same change in other shapes (docs/performance.md); under a minute.
bench-jsonpatch:
	BENCH_ONLY=patch $(CARGO) bench --bench webhook
	cd tests/bench/jsonpatch && go run . ../../../target/jsonpatch

# The library alone, without the server feature: proves the engine stays pure.
build-lib:
	$(CARGO) build --no-default-features --lib

# Exit codes the README promises, on the shipped examples.
check-examples: build
	@$(BIN) check -f examples/hardened >/dev/null; test $$? -eq 0 || { echo "examples/hardened should pass"; exit 1; }
	@$(BIN) check -f examples/unhardened >/dev/null 2>&1; test $$? -eq 1 || { echo "examples/unhardened should be refused"; exit 1; }
	@$(BIN) check -f examples/ >/dev/null 2>&1; test $$? -eq 1 || { echo "examples/ should report the unhardened agent"; exit 1; }
	@echo "check-examples: hardened passes (0), unhardened refused (1), both together (1)"

# clippy and rustfmt are rustup components, PyYAML serves the chart checks, dockerfile-parse
# the image check: install what a fresh machine lacks.
toolchain: rust-components
	@python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
	@python3 -c 'import dockerfile_parse' 2>/dev/null || python3 -m pip install --quiet dockerfile-parse==2.0.1
	@command -v go >/dev/null 2>&1 || { echo "Go >= 1.26 is needed to build the control plane (tests/controlplane/build.sh)"; exit 2; }

rust-components:
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
