# Kubewarden policy conventions, plus `demo` (build and evaluate the bundled samples)
# and `runner` (the kwctl-compatible tool used where kwctl is not installed).

SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock
RUNNER_SOURCES := $(shell find tools/runner/src -name '*.rs') tools/runner/Cargo.toml Cargo.lock
RUNNER := target/tool/policy-runner
# kwctl when it is installed, else the bundled runner (same command line).
KWCTL ?= $(shell command -v kwctl 2>/dev/null || echo $(RUNNER))

.PHONY: all
all: annotated-policy.wasm

policy.wasm: $(SOURCES)
	scripts/build-wasm.sh

$(RUNNER): $(RUNNER_SOURCES)
	cargo build --locked -p policy-runner --profile tool

.PHONY: runner
runner: $(RUNNER)

annotated-policy.wasm: policy.wasm metadata.yml README.md $(if $(filter $(RUNNER),$(KWCTL)),$(RUNNER))
	$(KWCTL) annotate -m metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

# Derived from metadata.yml and questions-ui.yml; regenerate after changing either. Written by
# kwctl itself (the build beside the repository, else kwctl on PATH), as Kubewarden's release job
# checks it with `make artifacthub-pkg.yml VERSION=...`: kwctl takes the version from metadata.yml
# (its --version flag is deprecated), so VERSION changes nothing. Without kwctl the runner writes
# the same fields, not byte for byte (tools/repo-checks compares with kwctl when it is there).
SCAFFOLD_KWCTL ?= $(firstword $(wildcard ../shared/tools/kwctl/kwctl) $(shell command -v kwctl 2>/dev/null))
artifacthub-pkg.yml: metadata.yml questions-ui.yml $(if $(SCAFFOLD_KWCTL),,$(RUNNER))
	$(or $(SCAFFOLD_KWCTL),$(RUNNER)) scaffold artifacthub --metadata-path metadata.yml \
		--questions-path questions-ui.yml --output artifacthub-pkg.yml

# Publishes the annotated module to registry://$(REGISTRY)/dittofs-s3-policy, tagged latest and
# v<version> (or TAG alone): make push REGISTRY=ghcr.io/dittofs/policies [TAG=…] [PLAIN_HTTP=1].
# Credentials come from the Docker config; PLAIN_HTTP is accepted for loopback registries only.
POLICY_NAME := dittofs-s3-policy
VERSION := $(shell awk '$$1 == "io.kubewarden.policy.version:" { print $$2 }' metadata.yml)

.PHONY: push
push: annotated-policy.wasm $(RUNNER)
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=HOST[/PATH] [TAG=...] [PLAIN_HTTP=1]" >&2; exit 2; }
	@for tag in $(or $(TAG),latest v$(VERSION)); do \
		$(RUNNER) push $(if $(PLAIN_HTTP),--plain-http) annotated-policy.wasm \
			registry://$(REGISTRY)/$(POLICY_NAME):$$tag || exit; \
	done

.PHONY: demo
demo: annotated-policy.wasm $(if $(filter $(RUNNER),$(KWCTL)),$(RUNNER))
	scripts/ensure-tools.sh jq
	KWCTL=$(KWCTL) scripts/demo.sh

target/floor-policy.wasm: tools/floor-policy/src/lib.rs tools/floor-policy/Cargo.toml Cargo.lock
	scripts/build-wasm.sh floor-policy target/floor-policy.wasm

# Benchmarks against the floor module and checks the budgets (see README, Performance).
.PHONY: bench
bench: annotated-policy.wasm target/floor-policy.wasm $(RUNNER)
	scripts/ensure-tools.sh jq python3
	RUNNER=$(RUNNER) scripts/bench.sh

.PHONY: fmt
fmt:
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check

.PHONY: lint
lint:
	cargo clippy --locked --workspace --all-targets -- -D warnings

# The runner's tests reuse its `tool` build, so wasmtime is compiled once.
.PHONY: unit-tests
unit-tests:
	cargo test --locked --workspace --exclude policy-runner
	cargo test --locked -p policy-runner --profile tool

.PHONY: e2e-tests
e2e-tests: annotated-policy.wasm $(RUNNER)
	scripts/ensure-tools.sh bats jq curl python3 openssl docker-registry htpasswd:apache2-utils
	KWCTL=$(KWCTL) bats e2e.bats
	RUNNER=$(RUNNER) bats e2e-registry.bats

# A bounded fuzzing run of every target (FUZZ_SECONDS each, default 60); see README, Fuzzing.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Every check: formatting, lints, unit tests, end-to-end tests through the compiled module,
# and a bounded fuzzing run.
.PHONY: test
test: fmt lint unit-tests e2e-tests fuzz

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
