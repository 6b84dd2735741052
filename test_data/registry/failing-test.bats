#!/usr/bin/env bats
# Run by e2e-registry.bats: a test that fails while a registry runs, to show the cleanup holds.
# REGISTRY_DIR is where the registry lives; PID_FILE receives its process id.

load ../../scripts/local-registry.bash

setup_file() {
  start_registry "$REGISTRY_DIR"
  cp "$REGISTRY_DIR/pid" "$PID_FILE"
}

teardown_file() {
  stop_registry "$REGISTRY_DIR"
}

@test "fails on purpose while the registry runs" {
  curl -fsS "http://$REGISTRY/v2/" >/dev/null
  false
}
