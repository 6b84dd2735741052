# Kubewarden policy conventions, plus `demo` (build and evaluate the bundled samples)
# and `runner` (the kwctl-compatible tool used where kwctl is not installed; `registry-runner`
# is the same tool with push and pull).

SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock .cargo/config.toml scripts/build-wasm.sh
RUNNER_SOURCES := $(shell find tools/runner/src -name '*.rs') tools/runner/Cargo.toml Cargo.lock
RUNNER := target/tool/policy-runner
# The runner with the registry client (push, pull, run registry://…), for make push and
# e2e-registry.bats; policy-runner leaves it out so that a first make demo builds less.
REGISTRY_RUNNER := target/tool/policy-runner-registry
# kwctl when it is installed, else the bundled runner (same command line).
KWCTL ?= $(shell command -v kwctl 2>/dev/null || echo $(RUNNER))

.PHONY: all
all: annotated-policy.wasm

policy.wasm: $(SOURCES)
	scripts/build-wasm.sh

$(RUNNER): $(RUNNER_SOURCES)
	cargo build --locked -p policy-runner --profile tool --bin policy-runner

$(REGISTRY_RUNNER): $(RUNNER_SOURCES)
	cargo build --locked -p policy-runner --profile tool --features registry --bin policy-runner-registry

.PHONY: runner registry-runner
runner: $(RUNNER)
registry-runner: $(REGISTRY_RUNNER)

# Plays the life of a DittoFS server through a kwctl-compatible tool (e2e.bats runs it).
LIFECYCLE := target/tool/lifecycle-scenario
$(LIFECYCLE): $(shell find tools/lifecycle/src -name '*.rs') tools/lifecycle/Cargo.toml Cargo.lock
	cargo build --locked -p lifecycle-scenario --profile tool

# The usage documentation the module embeds (io.kubewarden.policy.usage): README.md whole, as
# Kubewarden's convention (`-u README.md`) and Artifact Hub (which shows the whole README of the
# release tag) have it; the README is written for the people who install the policy.
USAGE := README.md

annotated-policy.wasm: policy.wasm metadata.yml $(USAGE) $(if $(filter $(RUNNER),$(KWCTL)),$(RUNNER))
	$(KWCTL) annotate -m metadata.yml -u $(USAGE) -o annotated-policy.wasm policy.wasm

# Derived from metadata.yml and questions-ui.yml; regenerate after changing either. Written by
# kwctl itself (the build beside the repository, else kwctl on PATH), as Kubewarden's release job
# checks it with `make artifacthub-pkg.yml VERSION=...`: kwctl takes the version from metadata.yml
# (its --version flag is deprecated), so VERSION changes nothing. Without kwctl the runner writes
# the same fields, not byte for byte (tools/repo-checks compares with kwctl when it is there).
# kwctl's generic install text (`kwctl scaffold manifest`, no context-aware access, the default
# PolicyServer) cannot work for this policy: it is replaced by artifacthub-install.md, the kit.
SCAFFOLD_KWCTL ?= $(firstword $(wildcard ../shared/tools/kwctl/kwctl) $(shell command -v kwctl 2>/dev/null))
artifacthub-pkg.yml: metadata.yml questions-ui.yml artifacthub-install.md $(if $(SCAFFOLD_KWCTL),,$(RUNNER))
	$(or $(SCAFFOLD_KWCTL),$(RUNNER)) scaffold artifacthub --metadata-path metadata.yml \
		--questions-path questions-ui.yml --output artifacthub-pkg.yml.tmp
	awk 'FNR == NR { text = text "  " $$0 "\n"; next } \
	     /^install: / { printf "install: |\n%s", text; skip = 1; next } \
	     skip && /^[^ ]/ { skip = 0 } !skip' artifacthub-install.md artifacthub-pkg.yml.tmp >artifacthub-pkg.yml
	rm -f artifacthub-pkg.yml.tmp

# Publishes the annotated module to registry://$(REGISTRY)/dittofs-s3-policy, tagged latest and
# v<version> (or TAG alone): make push REGISTRY=ghcr.io/dittofs/policies [TAG=…] [PLAIN_HTTP=1].
# Credentials come from the Docker config; PLAIN_HTTP is accepted for loopback registries only.
POLICY_NAME := dittofs-s3-policy
VERSION := $(shell awk '$$1 == "io.kubewarden.policy.version:" { print $$2 }' metadata.yml)

.PHONY: push
push: annotated-policy.wasm $(REGISTRY_RUNNER)
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=HOST[/PATH] [TAG=...] [PLAIN_HTTP=1]" >&2; exit 2; }
	@for tag in $(or $(TAG),latest v$(VERSION)); do \
		$(REGISTRY_RUNNER) push $(if $(PLAIN_HTTP),--plain-http) annotated-policy.wasm \
			registry://$(REGISTRY)/$(POLICY_NAME):$$tag || exit; \
	done

.PHONY: demo
demo: annotated-policy.wasm $(if $(filter $(RUNNER),$(KWCTL)),$(RUNNER))
	scripts/ensure-tools.sh jq
	KWCTL=$(KWCTL) scripts/demo.sh

# Built as the policy is (Cargo.toml's profile, the build script): a change to either rebuilds both.
target/floor-policy.wasm: tools/floor-policy/src/lib.rs tools/floor-policy/Cargo.toml Cargo.toml Cargo.lock \
  .cargo/config.toml scripts/build-wasm.sh
	scripts/build-wasm.sh floor-policy target/floor-policy.wasm

# Instructions per decision (issue 24): the WebAssembly instructions of one `validate` call of the
# policy and of the floor making the same host calls, on the fast, inject, review and Secret-write
# paths, counted exactly by the runner (wasmtime fuel), so a missed budget is a real regression,
# never noise (scripts/instructions.sh; docs/performance.md).
.PHONY: instruction-budgets
instruction-budgets: policy.wasm target/floor-policy.wasm $(RUNNER)
	scripts/ensure-tools.sh jq python3
	RUNNER=$(RUNNER) scripts/instructions.sh

# Benchmarks against the floor module and checks the budgets (see docs/performance.md): on the
# runner, under kwctl bench (when kwctl is there; scripts/bench-kwctl.sh), then under load through
# the real policy-server. All run; bench fails if any missed.
.PHONY: bench
bench: annotated-policy.wasm target/floor-policy.wasm $(USAGE) $(RUNNER) $(LIFECYCLE)
	scripts/ensure-tools.sh jq python3 curl openssl ab:apache2-utils
	@status=0; \
	echo "== instructions per decision (exact; issue 24's targets enforced here, make test's gates in make test)"; \
	TARGETS=enforce RUNNER=$(RUNNER) scripts/instructions.sh || status=1; \
	echo; RUNNER=$(RUNNER) scripts/bench.sh || status=1; \
	echo; echo "== under kwctl bench ($(or $(REAL_KWCTL),kwctl not found))"; \
	KWCTL=$(REAL_KWCTL) USAGE=$(USAGE) scripts/bench-kwctl.sh || status=1; \
	if [ -z "$(POLICY_SERVER)" ]; then \
		echo; echo "== policy-server not found: the load test through it is skipped"; \
	else \
		echo; echo "== under load through $(POLICY_SERVER)"; \
		POLICY_SERVER=$(POLICY_SERVER) ANNOTATE=$(or $(REAL_KWCTL),$(RUNNER)) scripts/bench-policy-server.sh || status=1; \
	fi; \
	exit $$status

.PHONY: fmt
fmt:
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check

# The runner twice: without the registry feature (policy-runner) and with it.
.PHONY: lint
lint:
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo clippy --locked -p policy-runner --all-targets --features registry -- -D warnings

# The runner's tests reuse the `tool` build of policy-runner-registry (every module, the
# registry's included), so wasmtime and the registry client are compiled once.
.PHONY: unit-tests
unit-tests:
	cargo test --locked --workspace --exclude policy-runner
	cargo test --locked -p policy-runner --profile tool --features registry

# The real kwctl for e2e-tests' second pass: the build beside the repository
# (../shared/tools/kwctl/kwctl), else `kwctl` on PATH; empty when neither exists.
REAL_KWCTL ?= $(firstword $(wildcard ../shared/tools/kwctl/kwctl) $(shell command -v kwctl 2>/dev/null))

# The module each tool runs in e2e-tests, annotated by that tool itself.
target/runner-annotated-policy.wasm: policy.wasm metadata.yml $(USAGE) $(RUNNER)
	$(RUNNER) annotate -m metadata.yml -u $(USAGE) -o $@ policy.wasm

# kwctl prints a Sigstore WARN with a backtrace on every offline start: shown only on failure.
target/kwctl-annotated-policy.wasm: policy.wasm metadata.yml $(USAGE)
	@test -n "$(REAL_KWCTL)" || { echo "kwctl not found (../shared/tools/kwctl/kwctl or PATH)" >&2; exit 1; }
	@mkdir -p target
	$(REAL_KWCTL) annotate -m metadata.yml -u $(USAGE) -o $@ policy.wasm 2>target/kwctl-annotate.log \
		|| { cat target/kwctl-annotate.log >&2; exit 1; }

# e2e.bats runs twice when kwctl is present: under the runner, then under the real kwctl (each
# on a module it annotated itself), both with RUST_BACKTRACE=1 so host errors reach the policy
# with a backtrace (kwctl's real one, the runner's short stand-in). Every pass runs; the target
# fails if any did.
.PHONY: e2e-tests
e2e-tests: target/runner-annotated-policy.wasm $(RUNNER) $(REGISTRY_RUNNER) $(LIFECYCLE) $(if $(REAL_KWCTL),target/kwctl-annotated-policy.wasm) annotated-policy.wasm
	scripts/ensure-tools.sh bats jq curl python3 openssl docker-registry htpasswd:apache2-utils
	@failed=; \
	echo "== e2e.bats under policy-runner ($(RUNNER)), module target/runner-annotated-policy.wasm"; \
	RUST_BACKTRACE=1 KWCTL=$(RUNNER) MODULE=target/runner-annotated-policy.wasm bats e2e.bats \
		|| failed="$$failed e2e.bats(policy-runner)"; \
	if [ -n "$(REAL_KWCTL)" ]; then \
		echo "== e2e.bats under $$($(REAL_KWCTL) --version 2>/dev/null | head -n 1) ($(REAL_KWCTL)), module target/kwctl-annotated-policy.wasm"; \
		RUST_BACKTRACE=1 KWCTL=$(REAL_KWCTL) MODULE=target/kwctl-annotated-policy.wasm bats e2e.bats \
			|| failed="$$failed e2e.bats(kwctl)"; \
	else \
		echo "== kwctl not found (../shared/tools/kwctl/kwctl or PATH): e2e.bats ran under policy-runner only"; \
	fi; \
	echo "== e2e-registry.bats under policy-runner-registry ($(REGISTRY_RUNNER))"; \
	RUNNER=$(REGISTRY_RUNNER) LEAN_RUNNER=$(RUNNER) bats e2e-registry.bats || failed="$$failed e2e-registry.bats"; \
	if [ -n "$(REAL_KWCTL)" ]; then \
		echo "== e2e-registry.bats, manifest annotations of the module kwctl annotated"; \
		RUNNER=$(REGISTRY_RUNNER) LEAN_RUNNER=$(RUNNER) MODULE=target/kwctl-annotated-policy.wasm \
			bats --filter 'manifest annotations' e2e-registry.bats || failed="$$failed e2e-registry.bats(kwctl-annotated)"; \
	fi; \
	if [ -n "$$failed" ]; then echo "== failed:$$failed"; exit 1; fi

# Every request and replay session of test_data (hostile cases included), settings variants,
# ungranted lookups and RUST_BACKTRACE=1, through the runner and the real kwctl, each on
# policy.wasm annotated by itself: same exit code, same response (verdict, status, patch,
# warnings), same refusal (scripts/differential.sh; docs/runner.md). Skipped, saying so,
# without kwctl. JOBS=N runs N pairs at a time (default 12).
.PHONY: differential
differential: policy.wasm metadata.yml $(USAGE) $(RUNNER)
	scripts/ensure-tools.sh jq
	KWCTL=$(REAL_KWCTL) RUNNER=$(RUNNER) USAGE=$(USAGE) scripts/differential.sh

# The real policy-server for e2e-policy-server and the load test in bench: the build beside the
# repository (../shared/tools/policy-server/policy-server), else `policy-server` on PATH.
POLICY_SERVER ?= $(firstword $(wildcard ../shared/tools/policy-server/policy-server) $(shell command -v policy-server 2>/dev/null))
# The module it loads: annotated by kwctl when kwctl is there, as the release job does.
PS_MODULE = $(if $(REAL_KWCTL),target/kwctl-annotated-policy.wasm,annotated-policy.wasm)

# The policy inside the real policy-server, over HTTPS, with a stand-in Kubernetes API
# (e2e-policy-server.bats; docs/testing.md). Without a policy-server binary it says so and skips,
# so `make test` works everywhere; the GitHub test workflow fetches a pinned release.
.PHONY: e2e-policy-server
e2e-policy-server: $(PS_MODULE) $(LIFECYCLE)
	@if [ -z "$(POLICY_SERVER)" ]; then \
		echo "== policy-server not found (../shared/tools/policy-server/policy-server or PATH): e2e-policy-server skipped"; \
	else \
		scripts/ensure-tools.sh bats jq curl python3 openssl && \
		POLICY_SERVER=$(POLICY_SERVER) MODULE=$(PS_MODULE) bats e2e-policy-server.bats; \
	fi

# A bounded fuzzing run of every target (FUZZ_SECONDS each, default 60); see docs/testing.md.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Every check: formatting, lints, unit tests, the instruction budgets, end-to-end tests through the compiled module
# (kwctl or the runner), the runner against kwctl, the real policy-server, and a bounded
# fuzzing run.
.PHONY: test
test: fmt lint unit-tests instruction-budgets e2e-tests differential e2e-policy-server fuzz

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
