#!/usr/bin/env bats
# Publishing through a real OCI registry: the runner built with its registry client
# (policy-runner-registry; LEAN_RUNNER is policy-runner, without it) pushes the annotated module
# to Debian's docker-registry on loopback, the registry's HTTP API shows Kubewarden's artifact
# layout, and what comes back (by tag, by digest) is the same module and evaluates requests.

bats_require_minimum_version 1.5.0

load scripts/local-registry.bash

RUNNER=${RUNNER:-target/tool/policy-runner-registry}
LEAN_RUNNER=${LEAN_RUNNER:-target/tool/policy-runner}
MODULE=${MODULE:-annotated-policy.wasm}
REPO=policies/dittofs-s3-policy
USER_NAME=fake-registry-user
PASSWORD=FAKE-REGISTRY-PASSWORD-DO-NOT-USE

setup_file() {
  export OPEN_DIR AUTH_DIR TLS_DIR OPEN_REGISTRY AUTH_REGISTRY TLS_REGISTRY
  OPEN_DIR=$(mktemp -d)
  AUTH_DIR=$(mktemp -d)
  TLS_DIR=$(mktemp -d)
  start_registry "$OPEN_DIR"
  OPEN_REGISTRY=$REGISTRY
  start_registry "$AUTH_DIR" --auth "$USER_NAME" "$PASSWORD"
  AUTH_REGISTRY=$REGISTRY
  start_registry "$TLS_DIR" --tls
  TLS_REGISTRY=$REGISTRY
}

# Runs even when setup_file or a test failed: no registry outlives the file, no storage stays.
teardown_file() {
  stop_registry "$OPEN_DIR"
  stop_registry "$AUTH_DIR"
  stop_registry "$TLS_DIR"
}

setup() {
  # No credentials unless a test writes some.
  export DOCKER_CONFIG=$BATS_TEST_TMPDIR/docker
  mkdir -p "$DOCKER_CONFIG"
}

sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# api PATH [CURL ARGS...]: a GET on the open registry's HTTP API, as OCI clients send it.
api() {
  local path=$1
  shift
  curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$@" "http://$OPEN_REGISTRY/v2/$path"
}

push_module() { # push_module TAG [RUNNER ARGS...]
  local tag=$1
  shift
  run --separate-stderr "$RUNNER" push "$@" --plain-http "$MODULE" "registry://$OPEN_REGISTRY/$REPO:$tag"
}

assert_failed_with() {
  [ "$status" -ne 0 ] || { echo "expected a failure: $output"; return 1; }
  [[ $stderr == *"$1"* ]] || { echo "stderr lacks '$1': $stderr"; return 1; }
}

# The single-line annotations of metadata.yml, as KEY<TAB>VALUE lines: the test's own reading.
metadata_annotations() {
  awk '/^annotations:/ { inside = 1; next } /^[^ #]/ { inside = 0 }
       inside && /^  [a-z]/ { key = $1; sub(/:$/, "", key); value = $0; sub(/^  [^:]*: /, "", value);
                              print key "\t" value }' metadata.yml
}

@test "push prints the immutable reference of the manifest it uploaded" {
  push_module v-test
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  [[ $output =~ ^registry://$OPEN_REGISTRY/$REPO@sha256:[0-9a-f]{64}$ ]] || { echo "$output"; return 1; }
  local digest=${output##*@}
  # The registry names the tag's manifest by the same digest, and it is the digest of its bytes.
  [ "$(api "$REPO/manifests/v-test" -o /dev/null -D - | tr -d '\r' |
       awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')" = "$digest" ]
  api "$REPO/manifests/v-test" >"$BATS_TEST_TMPDIR/manifest.json"
  [ "$(sha256_of "$BATS_TEST_TMPDIR/manifest.json")" = "$digest" ]
  # kwctl's JSON form carries the same reference, without the scheme.
  push_module v-test -o json
  [ "$(jq -r .immutable_ref <<<"$output")" = "$OPEN_REGISTRY/$REPO@$digest" ]
}

@test "the manifest has Kubewarden's layout: one wasm layer, config {}, media types" {
  push_module v-layout
  api "$REPO/manifests/v-layout" >"$BATS_TEST_TMPDIR/manifest.json"
  local manifest=$BATS_TEST_TMPDIR/manifest.json
  [ "$(jq -r .schemaVersion "$manifest")" = 2 ]
  [ "$(jq -r .mediaType "$manifest")" = application/vnd.oci.image.manifest.v1+json ]
  [ "$(jq -r .config.mediaType "$manifest")" = application/vnd.wasm.config.v1+json ]
  [ "$(jq -r '.layers | length' "$manifest")" = 1 ]
  [ "$(jq -r '.layers[0].mediaType' "$manifest")" = application/vnd.wasm.content.layer.v1+wasm ]
  [ "$(jq -r '.layers[0].digest' "$manifest")" = "$(sha256_of "$MODULE")" ]
  [ "$(jq -r '.layers[0].size' "$manifest")" = "$(stat -c %s "$MODULE")" ]
  # The config blob, fetched by its digest, is exactly `{}`.
  [ "$(api "$REPO/blobs/$(jq -r .config.digest "$manifest")")" = "{}" ]
  [ "$(jq -r .config.size "$manifest")" = 2 ]
  # The layer blob is the module, byte for byte.
  api "$REPO/blobs/$(jq -r '.layers[0].digest' "$manifest")" -o "$BATS_TEST_TMPDIR/layer.wasm"
  cmp "$BATS_TEST_TMPDIR/layer.wasm" "$MODULE"
}

@test "manifest annotations: metadata.yml's, the multi-line usage dropped, the image source added" {
  push_module v-annotations
  local annotations key value count=0
  annotations=$(api "$REPO/manifests/v-annotations" | jq -c .annotations)
  while IFS=$'\t' read -r key value; do
    count=$((count + 1))
    [ "$(jq -r --arg k "$key" '.[$k]' <<<"$annotations")" = "$value" ] ||
      { echo "annotation $key: expected '$value' in $annotations"; return 1; }
  done < <(metadata_annotations)
  [ "$count" -ge 10 ]
  [ "$(jq -r '.["org.opencontainers.image.source"]' <<<"$annotations")" = \
    "$(metadata_annotations | awk -F'\t' '$1 == "io.kubewarden.policy.source" { print $2 }')" ]
  # The module embeds its usage (the whole README) as io.kubewarden.policy.usage; being
  # multi-line, it stays out.
  grep -q io.kubewarden.policy.usage "$MODULE"
  [ "$(jq -r '.["io.kubewarden.policy.usage"]' <<<"$annotations")" = null ]
  # Nothing else: the single-line annotations the annotating tool embedded (kwctl adds its own
  # io.kubewarden.kwctl; policy-runner adds none), plus the image source.
  local embedded
  embedded=$(scripts/embedded-annotations.py "$MODULE")
  while IFS=$'\t' read -r key value; do
    [ "$(jq -r --arg k "$key" '.[$k]' <<<"$annotations")" = "$value" ] ||
      { echo "embedded annotation $key: expected '$value' in $annotations"; return 1; }
  done <<<"$embedded"
  [ "$(jq -r 'length' <<<"$annotations")" = $(($(wc -l <<<"$embedded") + 1)) ]
}

@test "pull by tag and by digest gives back the pushed module, byte for byte" {
  push_module v-pull
  local digest=${output##*@}
  run --separate-stderr "$RUNNER" pull --plain-http -o "$BATS_TEST_TMPDIR/by-tag.wasm" \
    "registry://$OPEN_REGISTRY/$REPO:v-pull"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  [[ $output == "registry://$OPEN_REGISTRY/$REPO@$digest "* ]] || { echo "$output"; return 1; }
  cmp "$BATS_TEST_TMPDIR/by-tag.wasm" "$MODULE"
  run --separate-stderr "$RUNNER" pull --plain-http -o "$BATS_TEST_TMPDIR/by-digest.wasm" \
    "registry://$OPEN_REGISTRY/$REPO@$digest"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  cmp "$BATS_TEST_TMPDIR/by-digest.wasm" "$MODULE"
  # Without -o, the module lands in the current directory, named after the repository.
  local runner
  runner=$(realpath "$RUNNER")
  mkdir "$BATS_TEST_TMPDIR/cwd"
  (cd "$BATS_TEST_TMPDIR/cwd" && "$runner" pull --plain-http "registry://$OPEN_REGISTRY/$REPO:v-pull" >/dev/null)
  cmp "$BATS_TEST_TMPDIR/cwd/dittofs-s3-policy.wasm" "$MODULE"
}

@test "run evaluates a registry:// module exactly as the local file" {
  push_module v-run
  local args=(run --request-path test_data/pod-create.json --allow-context-aware
              --replay-host-capabilities-interactions test_data/session-workload-found.yml)
  run --separate-stderr "$RUNNER" "${args[@]}" --plain-http "registry://$OPEN_REGISTRY/$REPO:v-run"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  local from_registry=$output
  [ "$(jq -r .allowed <<<"$from_registry")" = true ]
  # The sample Pod gets its credentials injected: the pulled module really ran.
  jq -r .patch <<<"$from_registry" | base64 -d | grep -q AWS_SECRET_ACCESS_KEY
  run --separate-stderr "$RUNNER" "${args[@]}" "$MODULE"
  [ "$(jq -S . <<<"$from_registry")" = "$(jq -S . <<<"$output")" ]
}

@test "make push publishes the annotated module as latest and v<version>" {
  local version
  version=$(metadata_annotations | awk -F'\t' '$1 == "io.kubewarden.policy.version" { print $2 }')
  run make -s push REGISTRY="$OPEN_REGISTRY/released" PLAIN_HTTP=1 REGISTRY_RUNNER="$RUNNER"
  [ "$status" -eq 0 ] || { echo "$output"; return 1; }
  [ "$(api released/dittofs-s3-policy/tags/list | jq -c '.tags | sort')" = "[\"latest\",\"v$version\"]" ]
  local latest versioned
  latest=$(api released/dittofs-s3-policy/manifests/latest | sha256sum)
  versioned=$(api "released/dittofs-s3-policy/manifests/v$version" | sha256sum)
  [ "$latest" = "$versioned" ]
  # TAG= publishes that tag alone.
  run make -s push REGISTRY="$OPEN_REGISTRY/tagged" TAG=rc1 PLAIN_HTTP=1 REGISTRY_RUNNER="$RUNNER"
  [ "$status" -eq 0 ] || { echo "$output"; return 1; }
  [ "$(api tagged/dittofs-s3-policy/tags/list | jq -c .tags)" = '["rc1"]' ]
}

@test "policy-runner, built without the registry client, names the binary that has it" {
  [[ -x $LEAN_RUNNER ]] || skip "no $LEAN_RUNNER"
  push_module v-lean
  run --separate-stderr "$LEAN_RUNNER" push --plain-http "$MODULE" "registry://$OPEN_REGISTRY/$REPO:v-lean2"
  assert_failed_with "push needs the registry client, which this build of policy-runner leaves out: use policy-runner-registry"
  run --separate-stderr "$LEAN_RUNNER" pull --plain-http "registry://$OPEN_REGISTRY/$REPO:v-lean"
  assert_failed_with "pull needs the registry client"
  run --separate-stderr "$LEAN_RUNNER" run --request-path test_data/pod-create.json --plain-http \
    "registry://$OPEN_REGISTRY/$REPO:v-lean"
  assert_failed_with "reading registry://$OPEN_REGISTRY/$REPO:v-lean needs the registry client"
  run api "$REPO/manifests/v-lean2"
  [ "$status" -ne 0 ]
}

@test "a module without embedded metadata is refused, and nothing is uploaded" {
  MODULE=policy.wasm push_module v-bare
  assert_failed_with "no embedded metadata"
  run api "$REPO/manifests/v-bare"
  [ "$status" -ne 0 ]
}

@test "error: registry unreachable" {
  local port
  port=$(free_port)
  run --separate-stderr "$RUNNER" push --plain-http "$MODULE" "registry://127.0.0.1:$port/$REPO:v1"
  assert_failed_with "cannot reach the registry 127.0.0.1:$port over plain HTTP"
  [[ $stderr == *"refused"* ]] || { echo "$stderr"; return 1; }
  run --separate-stderr "$RUNNER" pull --plain-http "registry://127.0.0.1:$port/$REPO:v1"
  assert_failed_with "cannot reach the registry 127.0.0.1:$port"
}

@test "over TLS: a trusted certificate works, an untrusted one is refused with the reason" {
  local target=registry://$TLS_REGISTRY/$REPO:v-tls
  # The throwaway CA is in no trust store yet.
  run --separate-stderr "$RUNNER" push "$MODULE" "$target"
  assert_failed_with "cannot reach the registry $TLS_REGISTRY over HTTPS: its certificate is not trusted"
  [[ $stderr == *SSL_CERT_FILE* ]] || { echo "$stderr"; return 1; }
  # Trusted through SSL_CERT_FILE, as for any rustls or OpenSSL client.
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.pem" "$RUNNER" push "$MODULE" "$target"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  local digest=${output##*@}
  [ "$(curl -fsS --cacert "$TLS_DIR/ca.pem" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
       "https://$TLS_REGISTRY/v2/$REPO/manifests/v-tls" | sha256sum | cut -d' ' -f1)" = "${digest#sha256:}" ]
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.pem" "$RUNNER" pull -o "$BATS_TEST_TMPDIR/tls.wasm" \
    "registry://$TLS_REGISTRY/$REPO@$digest"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  cmp "$BATS_TEST_TMPDIR/tls.wasm" "$MODULE"
}

@test "TLS unless asked otherwise, and plain HTTP only on loopback" {
  # The open registry speaks plain HTTP: without the flag the runner insists on TLS.
  run --separate-stderr "$RUNNER" push "$MODULE" "registry://$OPEN_REGISTRY/$REPO:v-tls"
  assert_failed_with "cannot reach the registry $OPEN_REGISTRY over HTTPS"
  [[ $stderr == *"needs --plain-http"* ]] || { echo "$stderr"; return 1; }
  run --separate-stderr "$RUNNER" pull --plain-http "registry://registry.example.com/$REPO:v1"
  assert_failed_with "--plain-http is allowed only for loopback registries"
}

# Registry passwords never show, in any output.
assert_no_password() {
  local everything=$output$stderr
  [[ $everything != *"$PASSWORD"* && $everything != *WRONG-FAKE-PASSWORD* ]] ||
    { echo "a password leaked: $everything"; return 1; }
}

@test "error: unauthorized, without credentials and with wrong ones; Docker config credentials work" {
  local target=registry://$AUTH_REGISTRY/$REPO:v-auth
  run --separate-stderr "$RUNNER" push --plain-http "$MODULE" "$target"
  assert_failed_with "unauthorized: the registry $AUTH_REGISTRY refused anonymous access"

  printf '{"auths": {"%s": {"auth": "%s"}}}' "$AUTH_REGISTRY" \
    "$(printf '%s:%s' "$USER_NAME" WRONG-FAKE-PASSWORD | base64 -w0)" >"$DOCKER_CONFIG/config.json"
  run --separate-stderr "$RUNNER" push --plain-http "$MODULE" "$target"
  assert_failed_with "unauthorized: the registry $AUTH_REGISTRY refused the credentials"
  [[ $stderr == *"$DOCKER_CONFIG/config.json"* ]] || { echo "$stderr"; return 1; }
  assert_no_password

  printf '{"auths": {"%s": {"auth": "%s"}}}' "$AUTH_REGISTRY" \
    "$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)" >"$DOCKER_CONFIG/config.json"
  run --separate-stderr "$RUNNER" push --plain-http "$MODULE" "$target"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  assert_no_password
  run --separate-stderr "$RUNNER" pull --plain-http -o "$BATS_TEST_TMPDIR/auth.wasm" "$target"
  [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
  cmp "$BATS_TEST_TMPDIR/auth.wasm" "$MODULE"

  rm "$DOCKER_CONFIG/config.json"
  run --separate-stderr "$RUNNER" pull --plain-http -o "$BATS_TEST_TMPDIR/anon.wasm" "$target"
  assert_failed_with "unauthorized"
  [ ! -e "$BATS_TEST_TMPDIR/anon.wasm" ]
}

@test "error: tag or repository not found" {
  push_module v-exists
  run --separate-stderr "$RUNNER" pull --plain-http "registry://$OPEN_REGISTRY/$REPO:no-such-tag"
  assert_failed_with "registry://$OPEN_REGISTRY/$REPO:no-such-tag not found"
  run --separate-stderr "$RUNNER" pull --plain-http "registry://$OPEN_REGISTRY/no/such-repo:v1"
  assert_failed_with "registry://$OPEN_REGISTRY/no/such-repo:v1 not found"
  run --separate-stderr "$RUNNER" run --request-path test_data/pod-create.json --plain-http \
    "registry://$OPEN_REGISTRY/$REPO:no-such-tag"
  assert_failed_with "not found"
}

# upload_blob REPO FILE: uploads FILE as a blob through the registry API, prints its digest.
upload_blob() {
  local digest location
  digest=$(sha256_of "$2")
  location=$(curl -fsS -X POST -D - -o /dev/null "http://$OPEN_REGISTRY/v2/$1/blobs/uploads/" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
  [[ $location == http* ]] || location=http://$OPEN_REGISTRY$location
  [[ $location == *\?* ]] && location+="&" || location+="?"
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
    "${location}digest=$digest" >/dev/null
  echo "$digest"
}

@test "error: an artifact that is not a Kubewarden policy (wrong layer media type)" {
  local repo=other/container-image layer config
  printf 'not a policy' >"$BATS_TEST_TMPDIR/layer.tar"
  printf '{}' >"$BATS_TEST_TMPDIR/config.json"
  layer=$(upload_blob "$repo" "$BATS_TEST_TMPDIR/layer.tar")
  config=$(upload_blob "$repo" "$BATS_TEST_TMPDIR/config.json")
  jq -n --arg layer "$layer" --arg config "$config" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: 2},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $layer, size: 12}]}' |
    curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @- \
      "http://$OPEN_REGISTRY/v2/$repo/manifests/v1"
  run --separate-stderr "$RUNNER" pull --plain-http -o "$BATS_TEST_TMPDIR/out.wasm" \
    "registry://$OPEN_REGISTRY/$repo:v1"
  assert_failed_with "registry://$OPEN_REGISTRY/$repo:v1 is not a Kubewarden policy"
  [[ $stderr == *"application/vnd.oci.image.layer.v1.tar"* ]] || { echo "$stderr"; return 1; }
  [ ! -e "$BATS_TEST_TMPDIR/out.wasm" ]
  run --separate-stderr "$RUNNER" run --request-path test_data/pod-create.json --plain-http \
    "registry://$OPEN_REGISTRY/$repo:v1"
  assert_failed_with "is not a Kubewarden policy"
}

@test "the registry is stopped and its storage removed even when a test fails" {
  local pid_file=$BATS_TEST_TMPDIR/pid dir=$BATS_TEST_TMPDIR/registry
  run env REGISTRY_DIR="$dir" PID_FILE="$pid_file" bats test_data/registry/failing-test.bats
  [ "$status" -ne 0 ]
  [[ $output == *"not ok 1"* ]] || { echo "$output"; return 1; }
  # The registry was up during the failing test ...
  [ -s "$pid_file" ]
  # ... and is gone afterwards, with its storage.
  if kill -0 "$(<"$pid_file")" 2>/dev/null; then echo "the registry still runs"; return 1; fi
  [ ! -e "$dir" ]
}
