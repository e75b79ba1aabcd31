# Task runner: every command the README names is a target here.
#   make demo            the main job (for now: the offline check on the examples)
#   make test            what CI runs (.ci/run)
# Needs only a Rust toolchain; cargo fetches the crates on first use.

CARGO ?= cargo
BIN := target/release/openclaw-admission

.PHONY: demo test lint build build-lib check-examples toolchain

# The unhardened agent is refused with every violation listed, the hardened one passes,
# and together each is judged in its own namespace.
demo: build
	@echo "== examples/unhardened: an agent as the published manifests run it (expect exit code 1)"
	@$(BIN) check -f examples/unhardened; rc=$$?; echo "exit code $$rc"; test $$rc -eq 1
	@echo
	@echo "== examples/hardened: the same agent, locked down (expect exit code 0)"
	@$(BIN) check -f examples/hardened; rc=$$?; echo "exit code $$rc"; test $$rc -eq 0
	@echo
	@echo "== examples/: both at once, each judged in its own namespace (headings and summary)"
	@$(BIN) check -f examples/ 2>/dev/null | grep -E '^(Pod|passed|[0-9]+ object)'; true

test: toolchain
	$(CARGO) build --no-default-features --lib
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

lint: toolchain
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release

# The library alone, without the server feature: proves the engine stays pure.
build-lib:
	$(CARGO) build --no-default-features --lib

# Exit codes the README promises, on the shipped examples.
check-examples: build
	@$(BIN) check -f examples/hardened >/dev/null; test $$? -eq 0 || { echo "examples/hardened should pass"; exit 1; }
	@$(BIN) check -f examples/unhardened >/dev/null 2>&1; test $$? -eq 1 || { echo "examples/unhardened should be refused"; exit 1; }
	@$(BIN) check -f examples/ >/dev/null 2>&1; test $$? -eq 1 || { echo "examples/ should report the unhardened agent"; exit 1; }
	@echo "check-examples: hardened passes (0), unhardened refused (1), both together (1)"

# clippy is a rustup component; install it when a fresh toolchain lacks it.
toolchain:
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
