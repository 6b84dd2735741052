#!/usr/bin/env bats
# End-to-end tests: the annotated module (MODULE), evaluated by the tool KWCTL names: kwctl or the
# bundled kwctl-compatible runner (`make e2e-tests` runs the suite under both when kwctl is
# present). Lookups come from replay sessions.

bats_require_minimum_version 1.5.0

setup() {
  KWCTL=${KWCTL:-$(command -v kwctl || echo target/tool/policy-runner)}
  MODULE=${MODULE:-annotated-policy.wasm}
  # kwctl fetches Sigstore's trust root at every start (about 1 s of retries offline). With a
  # replay session it verifies nothing, so it gets an empty one (without a session it builds a
  # verifier, which an empty root fails; docs/testing.md). The runner fetches none.
  OFFLINE=()
  [[ $(basename "$KWCTL") != kwctl ]] || OFFLINE=(--sigstore-trust-config test_data/sigstore-offline-trust-config.json)
}

# Says which tool runs the suite, on which module.
setup_file() {
  setup
  echo "# e2e.bats under $("$KWCTL" --version 2>/dev/null | head -n 1) ($KWCTL), module $MODULE" >&3
}

# The fake credentials and endpoints of the replay sessions. No output may carry any of them.
SECRET_VALUES=(FAKE-ACCESS-KEY-ID-0000 FAKE-SECRET-ACCESS-KEY-DO-NOT-USE FAKE-ROTATED-SECRET-KEY-DO-NOT-USE
  cubbit.eu minio.storage.svc amazonaws.com)

# policy_logs [STDERR]: the policy's own log events in the last run's stderr (or in STDERR), each
# as `policy_log: <message> data=<other fields as JSON>`. kwctl prints them as
#   <time> <LEVEL> validate{…settings=…}:policy_log{…}: policy_log: <message> data=<fields>
# (with colour codes, even into a file; its span prefix echoes the settings, which are not the
# policy's output), the runner as
#   <LEVEL> policy_log: <message> data=<fields>
# Every other stderr line is the tool's own: its warnings, errors and backtraces, and kwctl's
# end-of-run listing of unreplayed exchanges, which quotes their recorded payloads.
policy_logs() {
  sed 's/\x1b\[[0-9;]*m//g' <<<"${1-$stderr}" |
    awk '{ at = index($0, " policy_log: "); if (at) print substr($0, at + 1) }'
}

# assert_no_secret_values: the last response, its decoded patch and the policy's log lines
# carry no Secret value, raw or base64-encoded. The tool's own diagnostics are not checked.
assert_no_secret_values() {
  local everything value
  everything="$output$(policy_logs)$(response | jq -r '.patch // empty' 2>/dev/null | base64 -d 2>/dev/null)"
  for value in "${SECRET_VALUES[@]}"; do
    for form in "$value" "$(printf %s "$value" | base64 -w0)"; do
      if [[ $everything == *"$form"* ]]; then
        echo "output carries a Secret value ($value): $everything"
        return 1
      fi
    done
  done
}

# evaluate REQUEST SESSION [SETTINGS_JSON]: runs the policy with lookups granted and replayed,
# and checks that nothing it printed carries a Secret value.
evaluate() {
  local request=$1 session=$2 settings=${3:-"{}"}
  [[ $request == /* ]] || request="test_data/$request"
  [[ $session == /* ]] || session="test_data/$session"
  run --separate-stderr "$KWCTL" run "${OFFLINE[@]}" --request-path "$request" --settings-json "$settings" \
    --allow-context-aware --replay-host-capabilities-interactions "$session" "$MODULE"
  assert_no_secret_values
}

response() { tail -n 1 <<<"$output"; }

assert_verdict() {
  [ "$status" -eq 0 ] || { echo "exit $status: $stderr"; return 1; }
  local allowed
  allowed=$(response | jq -r .allowed)
  [ "$allowed" = "$1" ] || { echo "expected allowed=$1: $(response)"; return 1; }
  # Never an internal error, whatever the input.
  [ "$(response | jq -r '.status.code // 0')" != 500 ] || { echo "500: $(response)"; return 1; }
}

assert_accepted() { assert_verdict true; }

assert_rejected_with() {
  assert_verdict false
  local message
  message=$(response | jq -r .status.message)
  [[ $message == *"$1"* ]] || { echo "message lacks '$1': $message"; return 1; }
}

assert_warning() {
  local warnings
  warnings=$(response | jq -r '.warnings // [] | .[]')
  [[ $warnings == *"$1"* ]] || { echo "no warning with '$1': $(response)"; return 1; }
}

assert_no_warnings() {
  [ "$(response | jq -c .warnings)" = null ] || { echo "unexpected warnings: $(response)"; return 1; }
}

assert_no_patch() {
  [ "$(response | jq -r 'has("patch")')" = false ] || { echo "unexpected patch: $(response)"; return 1; }
}

# --- DittoServer validation: the spec ------------------------------------------------------

@test "sample DittoServer with a complete Secret is accepted silently" {
  evaluate dittoserver-sample-create.json session-secret-found.yml
  assert_accepted
  assert_no_warnings
  assert_no_patch
}

@test "sample DittoServer UPDATE that changes spec.s3 is checked the same way" {
  evaluate dittoserver-sample-update.json session-secret-found.yml
  assert_accepted
  assert_no_warnings
}

@test "DittoServer without spec.s3 reads no Secret; its author is asked about the identity Secrets it names" {
  # The session holds the two access questions only: a Secret lookup would exhaust it.
  evaluate dittoserver-no-s3.json session-access-identity-only.yml
  assert_accepted
  assert_no_warnings
}

@test "CRD defaults apply to absent key names" {
  evaluate dittoserver-defaults.json session-secret-found.yml
  assert_accepted
  assert_no_warnings
}

@test "custom key names are looked up in the Secret" {
  evaluate dittoserver-custom-keys.json session-secret-custom-keys.yml
  assert_accepted
  assert_no_warnings
}

@test "custom key names missing from the Secret are reported by key" {
  evaluate dittoserver-custom-keys.json session-secret-custom-keys-missing.yml
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" in namespace "dittofs-system": entry "id" is missing'
  assert_warning 'entry "key" is missing'
}

@test "region or bucket without credentialsSecretRef warns that nothing is injected" {
  evaluate dittoserver-region-bucket-without-ref.json session-access-identity-only.yml
  assert_accepted
  assert_warning "spec.s3 sets region and bucket but no credentialsSecretRef"
}

@test "credentialsSecretRef without secretName is rejected" {
  evaluate dittoserver-ref-without-name.json session-empty.yml
  assert_rejected_with 'DittoServer "dittofs-s3-sample" is invalid: spec.s3.credentialsSecretRef.secretName: is required'
}

@test "secretName that is not a DNS-1123 subdomain is rejected" {
  evaluate dittoserver-bad-secret-name.json session-empty.yml
  assert_rejected_with "spec.s3.credentialsSecretRef.secretName: must be a DNS-1123 subdomain"
}

@test "a key name that is not a Secret key is rejected" {
  evaluate dittoserver-bad-key-name.json session-empty.yml
  assert_rejected_with "spec.s3.credentialsSecretRef.secretAccessKeyKey: must be a valid Secret key"
}

@test "two equal key names are rejected" {
  evaluate dittoserver-duplicate-keys.json session-empty.yml
  assert_rejected_with 'accessKeyIdKey and secretAccessKeyKey must name different Secret keys (both are "key")'
}

@test "a malformed region is rejected" {
  evaluate dittoserver-bad-region.json session-empty.yml
  assert_rejected_with "spec.s3.region: must be 1-63 lowercase letters, digits and hyphens"
}

@test "allowedRegions rejects other regions and accepts listed ones" {
  evaluate dittoserver-region-fr-par.json session-secret-found.yml '{"allowedRegions":["eu-west-1"]}'
  assert_rejected_with 'spec.s3.region: "fr-par" is not in allowedRegions [eu-west-1]'
  evaluate dittoserver-region-fr-par.json session-secret-found.yml '{"allowedRegions":["eu-west-1","fr-par"]}'
  assert_accepted
}

@test "allowedRegions applies to the defaulted region" {
  evaluate dittoserver-defaults.json session-empty.yml '{"allowedRegions":["fr-par"]}'
  assert_rejected_with '"eu-west-1" (the default) is not in allowedRegions [fr-par]'
}

@test "bucket naming rules: IP form, reserved prefix and suffix, uppercase" {
  evaluate dittoserver-bucket-ip.json session-empty.yml
  assert_rejected_with "spec.s3.bucket: must not be formatted as an IP address"
  evaluate dittoserver-bucket-reserved-prefix.json session-empty.yml
  assert_rejected_with "spec.s3.bucket: must not start with a reserved prefix"
  evaluate dittoserver-bucket-reserved-suffix.json session-empty.yml
  assert_rejected_with "spec.s3.bucket: must not end with a reserved suffix"
  evaluate dittoserver-bucket-uppercase.json session-empty.yml
  assert_rejected_with "spec.s3.bucket: must contain only lowercase letters"
}

@test "wrong JSON types and nulls get a clear rejection" {
  evaluate dittoserver-s3-wrong-type.json session-empty.yml
  assert_rejected_with "spec.s3: must be an object, not a string"
  evaluate dittoserver-s3-null.json session-empty.yml
  assert_rejected_with "spec.s3: must be an object, not null"
  evaluate dittoserver-ref-wrong-type.json session-empty.yml
  assert_rejected_with "spec.s3.credentialsSecretRef: must be an object, not an array"
  evaluate dittoserver-region-number.json session-empty.yml
  assert_rejected_with "spec.s3.region: must be a string, not a number"
}

@test "a megabyte secretName is rejected, not a crash" {
  huge="$BATS_TEST_TMPDIR/huge.json"
  jq '.object.spec.s3.credentialsSecretRef.secretName = ("a" * 1000000)' \
    test_data/dittoserver-defaults.json >"$huge"
  evaluate "$huge" session-empty.yml
  assert_rejected_with "spec.s3.credentialsSecretRef.secretName: must be 1-253 characters long"
}

@test "a DittoServer being deleted is never blocked" {
  evaluate dittoserver-being-deleted.json session-empty.yml
  assert_accepted
}

# --- DittoServer validation: the Secret check ------------------------------------------------

@test "missing Secret: warning by default, rejection with secretCheck=reject" {
  evaluate dittoserver-sample-create.json session-secret-missing.yml
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" in namespace "dittofs-system" (spec.s3.credentialsSecretRef.secretName) was not found'
  evaluate dittoserver-sample-create.json session-secret-missing.yml '{"secretCheck":"reject"}'
  assert_rejected_with 'DittoServer "dittofs-s3-sample" is rejected: Secret "dittofs-s3-credentials" in namespace "dittofs-system" (spec.s3.credentialsSecretRef.secretName) was not found'
}

@test "incomplete Secret: each missing or empty entry is named" {
  evaluate dittoserver-sample-create.json session-secret-incomplete.yml
  assert_accepted
  assert_warning 'entry "accessKeyId" is empty'
  assert_warning 'entry "secretAccessKey" is missing'
  evaluate dittoserver-sample-create.json session-secret-incomplete.yml '{"secretCheck":"reject"}'
  assert_rejected_with 'entry "accessKeyId" is empty; Secret "dittofs-s3-credentials" in namespace "dittofs-system": entry "secretAccessKey" is missing'
}

@test "Secret entry that is not base64 is reported" {
  evaluate dittoserver-sample-create.json session-secret-not-base64.yml
  assert_accepted
  assert_warning 'entry "secretAccessKey" is not valid base64'
}

@test "http endpoint: warning, unless allowInsecureEndpoint" {
  evaluate dittoserver-sample-create.json session-secret-http-endpoint.yml
  assert_accepted
  assert_warning 'entry "endpoint" must use https (http only with allowInsecureEndpoint)'
  evaluate dittoserver-sample-create.json session-secret-http-endpoint.yml '{"allowInsecureEndpoint":true}'
  assert_accepted
  assert_no_warnings
  evaluate dittoserver-sample-create.json session-secret-http-endpoint.yml '{"secretCheck":"reject"}'
  assert_rejected_with 'entry "endpoint" must use https'
}

@test "endpoint that is not an absolute URL is reported" {
  evaluate dittoserver-sample-create.json session-secret-relative-endpoint.yml
  assert_accepted
  assert_warning 'entry "endpoint" must be an absolute URL with a host'
}

@test "endpoint outside allowedEndpointHosts is always rejected" {
  evaluate dittoserver-sample-create.json session-secret-aws-endpoint.yml '{"allowedEndpointHosts":["*.cubbit.eu"]}'
  assert_rejected_with 'entry "endpoint" has a host that is not in allowedEndpointHosts'
  evaluate dittoserver-sample-create.json session-secret-found.yml '{"allowedEndpointHosts":["s3.cubbit.eu"]}'
  assert_accepted
  assert_no_warnings
  evaluate dittoserver-sample-create.json session-secret-aws-endpoint.yml
  assert_accepted
  assert_no_warnings
}

@test "a Secret without endpoint is fine (AWS S3)" {
  evaluate dittoserver-sample-create.json session-secret-found-no-endpoint.yml '{"allowedEndpointHosts":["s3.cubbit.eu"]}'
  assert_accepted
  assert_no_warnings
}

@test "access denied is reported as such: warning, or rejection with secretCheck=reject" {
  evaluate dittoserver-sample-create.json session-secret-denied.yml
  assert_accepted
  assert_warning 'cannot check Secret "dittofs-s3-credentials" in namespace "dittofs-system": access denied'
  evaluate dittoserver-sample-create.json session-secret-denied.yml '{"secretCheck":"reject"}'
  assert_rejected_with "access denied"
}

@test "API errors and unreadable answers are reported, never a 500" {
  evaluate dittoserver-sample-create.json session-secret-api-error.yml
  assert_accepted
  assert_warning "lookup failed (etcdserver: request timed out)"
  evaluate dittoserver-sample-create.json session-secret-garbage.yml '{"secretCheck":"reject"}'
  assert_rejected_with "the host answered with invalid JSON"
}

@test "secretCheck=skip makes no Secret lookup (the author's access is still asked about)" {
  evaluate dittoserver-sample-create.json session-access-allowed.yml '{"secretCheck":"skip"}'
  assert_accepted
  assert_no_warnings
  evaluate dittoserver-sample-create.json session-empty.yml '{"secretCheck":"skip","secretAccessCheck":"skip"}'
  assert_accepted
  assert_no_warnings
}

@test "without --allow-context-aware the lookup is refused and reported" {
  run --separate-stderr "$KWCTL" run "${OFFLINE[@]}" --request-path test_data/dittoserver-sample-create.json \
    --replay-host-capabilities-interactions test_data/session-secret-found.yml "$MODULE"
  assert_accepted
  assert_warning "Policy has not been granted access to Kubernetes v1/Secret resources"
}

@test "no response, message, warning or log carries a Secret value, whatever the Secret check" {
  for session in test_data/session-secret-*.yml; do
    for settings in '{}' '{"secretCheck":"reject"}' '{"allowedEndpointHosts":["example.com"]}'; do
      evaluate dittoserver-sample-create.json "${session#test_data/}" "$settings"
    done
  done
}

# --- Settings ----------------------------------------------------------------------------------

@test "invalid settings stop the run with a clear message" {
  run --separate-stderr "$KWCTL" run --request-path test_data/dittoserver-sample-create.json \
    --settings-json '{"secretCheck":"maybe"}' "$MODULE"
  [ "$status" -ne 0 ]
  [[ "$output$stderr" == *"unknown variant \`maybe\`, expected one of \`warn\`, \`reject\`, \`skip\`"* ]]
  run --separate-stderr "$KWCTL" run --request-path test_data/dittoserver-sample-create.json \
    --settings-json '{"allowedRegion":["eu-west-1"]}' "$MODULE"
  [ "$status" -ne 0 ]
  [[ "$output$stderr" == *"unknown field \`allowedRegion\`"* ]]
  run --separate-stderr "$KWCTL" run --request-path test_data/dittoserver-sample-create.json \
    --settings-json '{"hashAnnotation":"not a key!"}' "$MODULE"
  [ "$status" -ne 0 ]
  [[ "$output$stderr" == *'hashAnnotation "not a key!" is not a valid annotation key'* ]]
}

# --- Workloads: injection ------------------------------------------------------------------------

# assert_patch EXPECTED: the decoded JSON Patch equals test_data/EXPECTED, operation by operation.
assert_patch() {
  assert_accepted
  local actual
  actual=$(response | jq -r '.patch // empty' | base64 -d | jq -S .)
  [ "$(response | jq -r .patchType)" = JSONPatch ] || { echo "no JSONPatch: $(response)"; return 1; }
  diff <(jq -S . "test_data/$1") <(echo "$actual") || { echo "patch differs from $1"; return 1; }
}

# apply_patch REQUEST OUT: writes REQUEST with its object patched by the last response.
# Handles the add/replace operations this policy's patches consist of.
apply_patch() {
  local patch
  patch=$(response | jq -r .patch | base64 -d)
  jq --argjson ops "$patch" '.object |= reduce $ops[] as $op (.;
      if ($op.op == "add" or $op.op == "replace") then
        setpath($op.path | ltrimstr("/") | split("/")
                | map(gsub("~1"; "/") | gsub("~0"; "~") | (tonumber? // .)); $op.value)
      else error("unexpected op \($op.op)") end)' "test_data/$1" >"$2"
}

@test "Pod CREATE: first injection appends the env after the container's own and sets the hash" {
  evaluate pod-create.json session-workload-found.yml
  assert_patch expected-patch-pod-create.json
  assert_no_warnings
}

@test "StatefulSet CREATE: env and hash go into the pod template" {
  evaluate statefulset-create.json session-workload-found.yml
  assert_patch expected-patch-statefulset-create.json
  assert_no_warnings
}

@test "injection is idempotent: the policy's own output gives no patch" {
  for request in pod-create.json statefulset-create.json; do
    evaluate "$request" session-workload-found.yml
    apply_patch "$request" "$BATS_TEST_TMPDIR/injected.json"
    evaluate "$BATS_TEST_TMPDIR/injected.json" session-workload-found.yml
    assert_accepted
    assert_no_patch
    assert_no_warnings
  done
}

@test "an already injected pod (created from an injected template) is left alone" {
  evaluate pod-create-injected.json session-workload-found.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "a differently defined variable is a conflict: rejected by default" {
  evaluate pod-create-conflict.json session-workload-found.yml
  assert_rejected_with 'Pod "dittofs-s3-sample-0": container "dittofs" already defines AWS_REGION differently from what DittoServer "dittofs-s3-sample" in namespace "dittofs-system" requires (onEnvConflict: reject)'
}

@test "a differently defined variable is replaced in place with onEnvConflict=overwrite" {
  evaluate pod-create-conflict.json session-workload-found.yml '{"onEnvConflict":"overwrite"}'
  assert_patch expected-patch-pod-overwrite.json
  assert_warning 'replaced the definition of AWS_REGION in container "dittofs" of Pod "dittofs-s3-sample-0" (onEnvConflict: overwrite)'
}

@test "a rotated Secret changes the hash, which rolls the pods" {
  evaluate statefulset-update-injected.json session-workload-rotated.yml
  assert_patch expected-patch-statefulset-rotated.json
}

@test "a change to an unrelated Secret key keeps the hash" {
  evaluate statefulset-update-injected.json session-workload-unrelated-key.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "a DittoServer without spec.s3 leaves its workloads untouched (no Secret lookup)" {
  evaluate statefulset-create.json session-workload-no-s3.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "non-DittoFS Pods and StatefulSets pass without any lookup" {
  evaluate pod-create-not-dittofs.json session-empty.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
  evaluate statefulset-not-dittofs.json session-empty.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "Pod UPDATE is accepted without lookups (a pod spec is immutable)" {
  evaluate pod-update.json session-empty.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "a pod without the dittofs container is left alone with a warning" {
  evaluate pod-create-no-dittofs-container.json session-workload-found.yml
  assert_accepted
  assert_no_patch
  assert_warning 'S3 credentials were not injected into Pod "dittofs-s3-sample-0": it has no container "dittofs"'
  evaluate pod-create-no-dittofs-container.json session-workload-found.yml '{"containerName":"server"}'
  assert_accepted
  [ "$(response | jq -r 'has("patch")')" = true ]
}

# --- Workloads: failure modes --------------------------------------------------------------------

@test "CREATE with the DittoServer missing or unreadable: untouched, with a warning naming it" {
  evaluate pod-create.json session-workload-ditto-missing.yml
  assert_accepted
  assert_no_patch
  assert_warning 'S3 credentials were not injected into Pod "dittofs-s3-sample-0": DittoServer "dittofs-s3-sample" in namespace "dittofs-system" was not found'
  # A StatefulSet is refused instead: see "Lifecycle gaps" below.
  evaluate pod-create.json session-workload-ditto-denied.yml
  assert_accepted
  assert_no_patch
  assert_warning 'cannot read DittoServer "dittofs-s3-sample" in namespace "dittofs-system": access denied'
}

@test "CREATE with the Secret missing or incomplete: env injected, no hash, a warning" {
  evaluate pod-create.json session-workload-secret-missing.yml
  assert_patch expected-patch-pod-env-only.json
  assert_warning 'S3 env injected into Pod "dittofs-s3-sample-0" without dittofs.io/s3-credentials-hash: Secret "dittofs-s3-credentials" in namespace "dittofs-system" was not found'
  evaluate pod-create.json session-workload-secret-incomplete.yml
  assert_patch expected-patch-pod-env-only.json
  assert_warning 'is incomplete: entry "secretAccessKey" is missing'
}

@test "StatefulSet UPDATE with the DittoServer unreadable carries env and hash over" {
  for session in session-workload-ditto-missing.yml session-workload-ditto-denied.yml; do
    evaluate statefulset-update-reconciled.json "$session"
    assert_patch expected-patch-statefulset-carry-over.json
    assert_warning 'kept the S3 env and hash of the previous revision of StatefulSet "dittofs-s3-sample": '
  done
}

@test "StatefulSet UPDATE with the Secret unreadable keeps the previous env and hash, so nothing rolls" {
  for session in session-workload-secret-missing.yml session-workload-secret-denied.yml session-workload-secret-incomplete.yml; do
    evaluate statefulset-update-reconciled.json "$session"
    assert_patch expected-patch-statefulset-carry-over.json
    assert_warning 'kept the S3 env and hash of the previous revision of StatefulSet "dittofs-s3-sample": '
  done
}

@test "workload responses never carry a Secret value, in either mode" {
  for request in pod-create.json statefulset-create.json statefulset-update-injected.json pod-create-conflict.json; do
    for session in test_data/session-workload-*.yml; do
      evaluate "$request" "${session#test_data/}"
      evaluate "$request" "${session#test_data/}" '{"workloads":"verify"}'
    done
  done
}

# --- Workloads: verify mode (the audit scanner's view) -------------------------------------------

VERIFY='{"workloads":"verify"}'

@test "verify: a fresh pod passes, without a patch" {
  evaluate pod-create-injected.json session-workload-found.yml "$VERIFY"
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "verify: a pod whose hash predates a rotation is stale, with the command that rolls it" {
  evaluate pod-create-injected.json session-workload-rotated.yml "$VERIFY"
  assert_rejected_with 'Pod "dittofs-s3-sample-0": it runs with outdated S3 credentials (dittofs.io/s3-credentials-hash does not match Secret "dittofs-s3-credentials" in namespace "dittofs-system"); roll it with: kubectl rollout restart statefulset/dittofs-s3-sample -n dittofs-system'
  assert_no_patch
}

@test "verify: an unrelated Secret key change does not make pods stale" {
  evaluate pod-create-injected.json session-workload-unrelated-key.yml "$VERIFY"
  assert_accepted
  assert_no_warnings
}

@test "verify: missing env and missing hash are reported" {
  evaluate pod-create.json session-workload-found.yml "$VERIFY"
  assert_rejected_with 'container "dittofs" lacks AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION; it lacks the dittofs.io/s3-credentials-hash annotation'
  assert_no_patch
}

@test "verify: a conflicting definition is reported" {
  evaluate pod-create-conflict.json session-workload-found.yml "$VERIFY"
  assert_rejected_with 'container "dittofs" defines AWS_REGION differently from what DittoServer "dittofs-s3-sample" in namespace "dittofs-system" requires'
}

@test "verify: answers CREATE (audit scanner) and UPDATE the same way for StatefulSets" {
  evaluate statefulset-create.json session-workload-found.yml "$VERIFY"
  assert_rejected_with 'StatefulSet "dittofs-s3-sample": container "dittofs" lacks AWS_ACCESS_KEY_ID'
  evaluate statefulset-update-injected.json session-workload-rotated.yml "$VERIFY"
  assert_rejected_with 'StatefulSet "dittofs-s3-sample": it runs with outdated S3 credentials'
  evaluate statefulset-update-injected.json session-workload-found.yml "$VERIFY"
  assert_accepted
  assert_no_warnings
}

@test "verify: a missing Secret rejects, because the pods cannot start" {
  evaluate pod-create-injected.json session-workload-secret-missing.yml "$VERIFY"
  assert_rejected_with 'Pod "dittofs-s3-sample-0": Secret "dittofs-s3-credentials" in namespace "dittofs-system" was not found, so its DittoFS container cannot start'
}

@test "verify: an orphan or a failed lookup warns instead of flapping reports" {
  evaluate pod-create-injected.json session-workload-ditto-missing.yml "$VERIFY"
  assert_accepted
  assert_warning 'cannot verify the S3 credentials of Pod "dittofs-s3-sample-0": DittoServer "dittofs-s3-sample" in namespace "dittofs-system" was not found'
  evaluate pod-create-injected.json session-workload-secret-denied.yml "$VERIFY"
  assert_accepted
  assert_warning "cannot verify the credentials hash"
}

@test "verify: whatever injection outputs passes verification" {
  for request in pod-create.json statefulset-create.json pod-create-conflict.json; do
    evaluate "$request" session-workload-found.yml '{"onEnvConflict":"overwrite"}'
    apply_patch "$request" "$BATS_TEST_TMPDIR/injected.json"
    evaluate "$BATS_TEST_TMPDIR/injected.json" session-workload-found.yml "$VERIFY"
    assert_accepted
    assert_no_warnings
  done
}

@test "verify: DittoServer validation is unchanged, and non-DittoFS workloads pass untouched" {
  evaluate dittoserver-bad-region.json session-empty.yml "$VERIFY"
  assert_rejected_with "spec.s3.region: must be 1-63 lowercase letters"
  evaluate pod-create-not-dittofs.json session-empty.yml "$VERIFY"
  assert_accepted
  assert_no_warnings
}

# --- The life of a DittoFS server -----------------------------------------------------------------

# The scenario harness plays each write of a DittoFS server's life through the same tool and
# module, feeding each step's patched object into the next (tools/lifecycle).
LIFECYCLE=${LIFECYCLE:-target/tool/lifecycle-scenario}

@test "lifecycle: the life of a DittoFS server, with an operator that writes no AWS env" {
  run "$LIFECYCLE" "$KWCTL" "$MODULE" plain
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *" passed, 0 failed"* ]]
}

@test "lifecycle: the life of a DittoFS server, with operator v0.4-v0.12 rendering the env itself" {
  run "$LIFECYCLE" "$KWCTL" "$MODULE" renders-env
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *" passed, 0 failed"* ]]
}

# session_with_secret_name NAME OUT: session-secret-found.yml, for a Secret called NAME.
session_with_secret_name() {
  sed "s/dittofs-s3-credentials/$1/g" test_data/session-secret-found.yml >"$2"
}

@test "a Secret name with a part longer than 63 characters is valid (Kubernetes limits only the total)" {
  local name
  name=$(printf 'a%.0s' {1..64})
  jq --arg n "$name" '.object.spec.s3.credentialsSecretRef.secretName = $n' \
    test_data/dittoserver-sample-create.json >"$BATS_TEST_TMPDIR/long.json"
  session_with_secret_name "$name" "$BATS_TEST_TMPDIR/long.yml"
  evaluate "$BATS_TEST_TMPDIR/long.json" "$BATS_TEST_TMPDIR/long.yml"
  assert_accepted
  assert_no_warnings
}

@test "optional: false written out is the same definition as leaving it out" {
  jq '(.object.spec.containers[0].env[] | select(.name == "AWS_ACCESS_KEY_ID") | .valueFrom.secretKeyRef.optional) = false' \
    test_data/pod-create-injected.json >"$BATS_TEST_TMPDIR/optional.json"
  evaluate "$BATS_TEST_TMPDIR/optional.json" session-workload-found.yml
  assert_accepted
  assert_no_patch
  assert_no_warnings
}

@test "an endpoint with a trailing newline (echo | base64) is reported like the AWS SDK would refuse it" {
  local padded
  padded=$(printf 'https://s3.cubbit.eu\n' | base64 -w0)
  sed "s|aHR0cHM6Ly9zMy5jdWJiaXQuZXU=|$padded|" test_data/session-secret-found.yml >"$BATS_TEST_TMPDIR/newline.yml"
  evaluate dittoserver-sample-create.json "$BATS_TEST_TMPDIR/newline.yml"
  assert_accepted
  assert_warning 'entry "endpoint" must not contain whitespace or control characters'
  sed "s|aHR0cHM6Ly9zMy5jdWJiaXQuZXU=|$padded|" test_data/session-workload-found.yml >"$BATS_TEST_TMPDIR/newline-workload.yml"
  evaluate pod-create.json "$BATS_TEST_TMPDIR/newline-workload.yml"
  assert_rejected_with 'entry "endpoint" must not contain whitespace or control characters'
}

@test "a Pod CREATE carrying a deletionTimestamp is injected (the API server clears it on create)" {
  jq '.object.metadata.deletionTimestamp = "2026-11-30T00:00:00Z"' test_data/pod-create.json >"$BATS_TEST_TMPDIR/stale-ts.json"
  evaluate "$BATS_TEST_TMPDIR/stale-ts.json" session-workload-found.yml
  assert_patch expected-patch-pod-create.json
}

@test "a DittoServer UPDATE that leaves spec.s3 alone stays possible when its Secret or the rules changed" {
  jq '.oldObject = .object | .object.metadata.finalizers = ["example.com/cleanup"] | .object.metadata.labels = {"team": "storage"}' \
    test_data/dittoserver-sample-update.json >"$BATS_TEST_TMPDIR/relabel.json"
  evaluate "$BATS_TEST_TMPDIR/relabel.json" session-empty.yml '{"secretCheck":"reject"}'
  assert_accepted
  assert_no_warnings
  evaluate "$BATS_TEST_TMPDIR/relabel.json" session-empty.yml '{"allowedRegions":["fr-par"]}'
  assert_accepted
  assert_warning 'would be rejected if spec.s3 changed: spec.s3.region: "eu-west-1" is not in allowedRegions [fr-par]'
}

@test "a DittoServer without a name is called unnamed, not \"\"" {
  jq 'del(.object.metadata.name) | .name = ""' test_data/dittoserver-bad-region.json >"$BATS_TEST_TMPDIR/unnamed.json"
  evaluate "$BATS_TEST_TMPDIR/unnamed.json" session-empty.yml
  assert_rejected_with 'unnamed DittoServer is invalid: spec.s3.region'
}

@test "a DittoServer naming DittoFS 0.13 or later is warned that AWS_* variables are ignored" {
  for image in marmos91c/dittofs:0.13.0 marmos91c/dittofs:v1.2.3; do
    jq --arg i "$image" '.object.spec.image = $i' test_data/dittoserver-sample-create.json >"$BATS_TEST_TMPDIR/new.json"
    evaluate "$BATS_TEST_TMPDIR/new.json" session-secret-found.yml
    assert_accepted
    assert_warning 'from 0.13.0 on DittoFS ignores AWS_* variables'
  done
  for image in marmos91c/dittofs:0.12.0 marmos91c/dittofs:latest marmos91c/dittofs@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; do
    jq --arg i "$image" '.object.spec.image = $i' test_data/dittoserver-sample-create.json >"$BATS_TEST_TMPDIR/old.json"
    evaluate "$BATS_TEST_TMPDIR/old.json" session-secret-found.yml
    assert_accepted
    assert_no_warnings
  done
}

@test "empty allow-lists (what the UI sends for a list left empty) mean any, as when omitted" {
  evaluate dittoserver-sample-create.json session-secret-found.yml '{"allowedRegions":[],"allowedEndpointHosts":[]}'
  assert_accepted
  assert_no_warnings
}

@test "a failing tracing/log host call does not turn a rejection into a 500" {
  # Only the runner can make the host's log call fail (POLICY_RUNNER_FAIL_LOG_CALLS, a test hook);
  # a real host's fails on an event it cannot read. The policy logs every rejection.
  [[ $("$KWCTL" --version 2>/dev/null) == policy-runner* ]] || skip "only the runner can make log calls fail"
  POLICY_RUNNER_FAIL_LOG_CALLS=1 evaluate dittoserver-bad-region.json session-empty.yml
  assert_rejected_with 'DittoServer "dittofs-s3-sample" is invalid: spec.s3.region'
}

# --- Least data: the host is asked only for the fields the policy reads ----------------------------

@test "masks: the Secret's consumed entries and the DittoServer's spec.s3 are all the policy asks for" {
  # The sessions record the masked requests exactly as kwctl 1.35 matches them (field_masks
  # included): a policy asking for more, or less, would not match them.
  grep -q -- '- data.accessKeyId' test_data/session-workload-found.yml
  grep -q -- '- spec.s3' test_data/session-workload-found.yml
  evaluate pod-create.json session-workload-found.yml
  assert_patch expected-patch-pod-create.json
}

@test "masks: a host that ignores them (before Kubewarden 1.33) gives the same patch and hash" {
  evaluate pod-create.json session-workload-found-unmasking-host.yml
  assert_patch expected-patch-pod-create.json
  assert_no_warnings
}

@test "masks: a key name with a dot cannot be masked alone, so the whole data is asked for" {
  evaluate dittoserver-dotted-key.json session-secret-dotted-key.yml
  assert_accepted
  assert_no_warnings
}

# --- No confused deputy: a DittoServer may only name a Secret its author may get ---------------------

@test "access: an author who may get the Secret passes silently" {
  evaluate dittoserver-sample-create.json session-secret-found.yml
  assert_accepted
  assert_no_warnings
}

@test "access: a service account is asked about with its groups" {
  evaluate dittoserver-create-by-serviceaccount.json session-access-serviceaccount.yml
  assert_accepted
  assert_no_warnings
}

@test "access: an author who may not get the Secret is refused per secretAccessCheck" {
  evaluate dittoserver-sample-create.json session-access-refused.yml
  assert_rejected_with 'DittoServer "dittofs-s3-sample" is rejected: user "kubernetes-admin" may not get Secret "dittofs-s3-credentials" in namespace "dittofs-system"'
  evaluate dittoserver-sample-create.json session-access-refused.yml '{"secretAccessCheck":"reject"}'
  assert_rejected_with 'may not get Secret "dittofs-s3-credentials"'
  evaluate dittoserver-sample-create.json session-access-refused.yml '{"secretAccessCheck":"warn"}'
  assert_accepted
  assert_warning 'DittoServer "dittofs-s3-sample" was not checked against its Secret: user "kubernetes-admin" may not get'
  evaluate dittoserver-sample-create.json session-update-secret-found.yml '{"secretAccessCheck":"skip"}'
  assert_accepted
  assert_no_warnings
}

@test "access: a failing access review is reported per secretAccessCheck, never a 500" {
  evaluate dittoserver-sample-create.json session-access-failing.yml
  # One failing review fails all three alike: said once, for the three Secrets.
  assert_rejected_with 'cannot check whether user "kubernetes-admin" may get Secrets "dittofs-s3-credentials", "dittofs-admin-secret", "dittofs-jwt-secret" in namespace "dittofs-system": access denied (ApiError: subjectaccessreviews.authorization.k8s.io is forbidden'
  evaluate dittoserver-sample-create.json session-access-failing.yml '{"secretAccessCheck":"warn"}'
  assert_accepted
  assert_warning 'cannot check whether user "kubernetes-admin" may get Secret'
}

@test "access: requests without a user (the audit scanner's) are not asked about" {
  evaluate dittoserver-audit-scan.json session-update-secret-found.yml
  assert_accepted
  assert_no_warnings
}

@test "access: an UPDATE that keeps the Secret and keys is not asked about; one that renames a key is" {
  evaluate dittoserver-update-same-secret.json session-empty.yml
  assert_accepted
  assert_no_warnings
  evaluate dittoserver-update-key-renamed.json session-access-refused.yml
  assert_rejected_with 'user "kubernetes-admin" may not get Secret "dittofs-s3-credentials"'
  evaluate dittoserver-update-key-renamed.json session-access-renamed-keys.yml
  assert_accepted
  assert_no_warnings
}

@test "access: every write that decides what runs with the Secret is asked about (image, database, identity, spec.s3)" {
  for request in dittoserver-update-image.json dittoserver-update-identity.json dittoserver-update-bucket.json; do
    # The session holds the questions only: reading the Secret would exhaust it (a replay error).
    evaluate "$request" session-developer-refused.yml
    assert_rejected_with 'user "dev@example.com" may not get Secret "dittofs-s3-credentials" in namespace "dittofs-system", so it may not have DittoFS pods read it (secretAccessCheck) (this write changes spec.'
    evaluate "$request" session-developer-refused.yml '{"secretAccessCheck":"warn"}'
    assert_accepted
    assert_warning 'was not checked against its Secret: user "dev@example.com" may not get'
    evaluate "$request" session-empty.yml '{"secretAccessCheck":"skip","secretCheck":"skip"}'
    assert_accepted
  done
  evaluate dittoserver-update-image.json session-developer-refused.yml
  assert_rejected_with '(this write changes spec.image)'
  evaluate dittoserver-update-database.json session-developer-postgres-refused.yml
  assert_rejected_with 'may not get Secret "dittofs-postgres" in namespace "dittofs-system" (named in spec.database.postgresSecretRef.name)'
  assert_rejected_with '(this write changes spec.database)'
  # Someone who may read every Secret changes the image: asked, allowed, the Secret is not re-read.
  evaluate dittoserver-update-image.json session-developer-allowed.yml
  assert_accepted
  assert_no_warnings
}

@test "access: writes that only size the server, metadata and the operator's status writes ask nothing" {
  evaluate dittoserver-update-scaled.json session-empty.yml
  assert_accepted
  assert_no_warnings
  evaluate dittoserver-update-status-by-operator.json session-empty.yml
  assert_accepted
  assert_no_warnings
}

@test "access: every Secret a DittoServer names is asked about, the backup keys sent to a free-form endpoint included" {
  evaluate dittoserver-create-percona-backup.json session-developer-backup-refused.yml
  assert_rejected_with 'may not get Secret "dittofs-backup-keys" in namespace "dittofs-system" (named in spec.percona.backup.credentialsSecretRef.name)'
}

@test "access: a request with groups but no user name is asked about, not waved through" {
  evaluate dittoserver-create-groups-only.json session-groups-only-refused.yml
  assert_rejected_with 'the unnamed user of groups [system:masters] may not get Secret "dittofs-s3-credentials"'
}

@test "access: a Secret reference that is not a name is refused before any lookup" {
  evaluate dittoserver-secret-ref-traversal.json session-empty.yml
  assert_rejected_with 'is invalid: spec.database.postgresSecretRef.name: '
}

@test "routes: AWS_ENDPOINT_URL_S3 in the dittofs container is refused; warned with onCredentialRoute=warn, patch kept" {
  evaluate pod-create-endpoint-override.json session-workload-found.yml
  assert_rejected_with 'Pod "dittofs-s3-sample-0": container "dittofs" can send its S3 credentials elsewhere: env['
  assert_rejected_with '] AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL (onCredentialRoute: reject); remove it, or set onCredentialRoute: warn'
  evaluate pod-create-endpoint-override.json session-workload-found.yml '{"onCredentialRoute":"warn"}'
  assert_accepted
  assert_warning 'Pod "dittofs-s3-sample-0": container "dittofs" can send its S3 credentials elsewhere (onCredentialRoute: warn): env['
  [ "$(response | jq -r 'has("patch")')" = true ] || { echo "the injection was dropped: $(response)"; return 1; }
}

@test "routes: envFrom, in a Pod or a StatefulSet template, is refused" {
  evaluate pod-create-envfrom.json session-workload-found.yml
  assert_rejected_with 'envFrom[0] (configMapRef "dittofs-extra-env") can set any variable'
  evaluate statefulset-create-envfrom.json session-workload-found.yml
  assert_rejected_with 'StatefulSet "dittofs-s3-sample": container "dittofs" can send its S3 credentials elsewhere: envFrom[0] (secretRef "dittofs-extra-env")'
}

@test "routes: \$(AWS_SECRET_ACCESS_KEY) in args is refused; the escaped \$\$( form is text" {
  evaluate pod-create-args-reference.json session-workload-found.yml
  assert_rejected_with 'copies AWS_SECRET_ACCESS_KEY (onCredentialRoute: reject)'
  evaluate pod-create-escaped-reference.json session-workload-found.yml
  assert_accepted
  assert_no_warnings
}

@test "routes: a second AWS_ENDPOINT_URL is a conflict when lookups work, and a route when the pod is kept as it came" {
  evaluate pod-create-duplicate-endpoint.json session-workload-found.yml
  assert_rejected_with 'already defines AWS_ENDPOINT_URL differently'
  evaluate pod-create-duplicate-endpoint.json session-workload-ditto-missing.yml
  assert_rejected_with 'AWS_ENDPOINT_URL differ, and the last one applies (onCredentialRoute: reject)'
}

@test "routes: verify mode reports them" {
  evaluate pod-create-injected-envfrom.json session-workload-found.yml '{"workloads":"verify"}'
  assert_rejected_with 'Pod "dittofs-s3-sample-0": container "dittofs" can send its S3 credentials elsewhere: envFrom[0]'
  evaluate pod-create-injected-envfrom.json session-workload-found.yml '{"workloads":"verify","onCredentialRoute":"warn"}'
  assert_accepted
  assert_warning 'can send its S3 credentials elsewhere (onCredentialRoute: warn): envFrom[0]'
  # Where the pod is stale too, both are said in one rejection.
  evaluate pod-create-injected-envfrom.json session-workload-rotated.yml '{"workloads":"verify"}'
  assert_rejected_with 'outdated S3 credentials'
  assert_rejected_with 'Also, container "dittofs" can send its S3 credentials elsewhere'
}

@test "subresource writes (a kubelet's pods/status update) pass unreviewed, even in verify mode" {
  evaluate pod-update-status.json session-empty.yml '{"workloads":"verify"}'
  assert_accepted
  assert_no_warnings
  evaluate pod-update.json session-workload-found.yml '{"workloads":"verify"}'
  assert_rejected_with 'lacks AWS_ACCESS_KEY_ID'
}

@test "routes: each kind (test_data/route-cases.tsv) is refused in inject and in verify mode, and warned with warn" {
  local file text message failures=() count=0
  while IFS=$'\t' read -r file text; do
    count=$((count + 1))
    # inject, the DittoServer unreadable: the pod is admitted as it came, so only the route rules
    # stand between its definitions and the credentials.
    evaluate "$file" session-workload-ditto-missing.yml
    message=$(response | jq -r '.status.message // empty')
    [[ $status == 0 && $message == *"can send its S3 credentials elsewhere: "*"$text"*"(onCredentialRoute: reject)"* ]] ||
      failures+=("$file inject: $(response)")
    # verify, lookups working: the pod is current, the route is all there is to report.
    evaluate "$file" session-workload-found.yml '{"workloads":"verify"}'
    message=$(response | jq -r '.status.message // empty')
    [[ $status == 0 && $message == *"can send its S3 credentials elsewhere"*"$text"* ]] ||
      failures+=("$file verify: $(response)")
    evaluate "$file" session-workload-ditto-missing.yml '{"onCredentialRoute":"warn"}'
    [[ $status == 0 && $(response | jq -r .allowed) == true &&
      $(response | jq -r '.warnings // [] | .[]') == *"(onCredentialRoute: warn): "*"$text"* ]] ||
      failures+=("$file warn: $(response)")
  done <test_data/route-cases.tsv
  [ "$count" -ge 11 ]
  printf '%s\n' "${failures[@]}"
  [ "${#failures[@]}" -eq 0 ]
}

@test "routes: the DittoFS operator v0.12.0's own rendering (command, args, preStop, AWS env) passes" {
  evaluate pod-create-operator-rendered.json session-workload-found.yml
  assert_accepted
  assert_no_warnings
}

# --- Secret guard: Secret writes that would break a DittoServer -------------------------------------

@test "guard: a good rotation of a named Secret is accepted silently" {
  evaluate secret-update-rotated.json session-guard-named.yml
  assert_accepted
  assert_no_warnings
}

@test "guard: a rotation that empties a key, drops one or sets an http endpoint is refused, naming the DittoServer and the rule" {
  local request rule
  for request in "secret-update-emptied.json:entry \"accessKeyId\" is empty" \
    "secret-update-key-dropped.json:entry \"secretAccessKey\" is missing" \
    "secret-update-http-endpoint.json:entry \"endpoint\" must use https"; do
    rule=${request#*:}
    evaluate "${request%%:*}" session-guard-named.yml
    assert_rejected_with "Secret \"dittofs-s3-credentials\" is rejected: it would break DittoServer \"dittofs-s3-sample\" ($rule"
    # The other DittoServer names another Secret; the retiring one is being deleted.
    [[ $(response | jq -r .status.message) != *dittofs-archive* && $(response | jq -r .status.message) != *dittofs-retired* ]]
  done
}

@test "guard: an endpoint outside allowedEndpointHosts is refused; secretGuard=warn admits it with the warning" {
  evaluate secret-update-foreign-endpoint.json session-guard-named.yml '{"allowedEndpointHosts":["*.cubbit.eu"]}'
  assert_rejected_with 'entry "endpoint" has a host that is not in allowedEndpointHosts'
  evaluate secret-update-foreign-endpoint.json session-guard-named.yml '{"allowedEndpointHosts":["*.cubbit.eu"],"secretGuard":"warn"}'
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" is accepted, but it would break DittoServer "dittofs-s3-sample" (entry "endpoint" has a host'
  evaluate secret-update-foreign-endpoint.json session-guard-named.yml
  assert_accepted
  assert_no_warnings
}

@test "guard: deleting a named Secret is refused; once its DittoServers are being deleted it is not" {
  evaluate secret-delete.json session-guard-named.yml
  assert_rejected_with 'deleting Secret "dittofs-s3-credentials" is rejected: Secret "dittofs-s3-credentials" is named by DittoServer "dittofs-s3-sample" (spec.s3.credentialsSecretRef)'
  evaluate secret-delete.json session-guard-retiring.yml
  assert_accepted
  assert_no_warnings
}

@test "guard: a Secret no DittoServer names passes after one list; relabelling and TLS Secrets make none" {
  evaluate secret-create-unnamed.json session-guard-named.yml
  assert_accepted
  assert_no_warnings
  # An empty session: any lookup would fail, and a failed list warns.
  evaluate secret-update-labels-only.json session-empty.yml
  assert_accepted
  assert_no_warnings
  evaluate secret-create-tls.json session-empty.yml
  assert_accepted
  assert_no_warnings
}

@test "guard: a failed list never blocks the write, and says why it was not checked" {
  evaluate secret-update-emptied.json session-guard-list-denied.yml
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" was not checked against the DittoServers that may use it: listing them: access denied (ApiError: dittoservers.dittofs.com is forbidden'
}

@test "guard: a problem the stored Secret had is only warned about, but a moved endpoint is a new one" {
  evaluate secret-update-partial-repair.json session-guard-named.yml
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" still breaks DittoServer "dittofs-s3-sample" (entry "accessKeyId" is missing)'
  evaluate secret-update-endpoint-moved.json session-guard-named.yml
  assert_rejected_with 'it would break DittoServer "dittofs-s3-sample" (entry "endpoint" must use https'
}

@test "guard: a Secret held by a finalizer while being deleted is still guarded" {
  evaluate secret-update-terminating-emptied.json session-guard-named.yml
  assert_rejected_with 'entry "accessKeyId" is empty'
}

@test "guard: the audit scanner's replay of a broken Secret fails, so its PolicyReport lists it" {
  evaluate secret-audit-broken.json session-guard-named.yml
  assert_rejected_with 'it would break DittoServer "dittofs-s3-sample" (entry "accessKeyId" is empty)'
}

# --- Hostile inputs ---------------------------------------------------------------------------------

@test "hostile inputs: every case of test_data/hostile/cases.tsv ends in a clear verdict, never a 500" {
  local count=0 failures=()
  while IFS=$'\t' read -r request session expected; do
    count=$((count + 1))
    evaluate "$request" "$session"
    # refuse:TEXT: the tool itself refuses the request (as kwctl does with one that is not an
    # AdmissionRequest) before the policy sees it.
    if [[ $expected == refuse:* ]]; then
      [[ $status -ne 0 && $stderr == *"${expected#refuse:}"* ]] ||
        failures+=("$request: expected the tool to refuse it (${expected#refuse:}), got exit $status: $output $stderr")
      continue
    fi
    if ! assert_verdict "$([[ $expected == reject:* ]] && echo false || echo true)" >/dev/null; then
      failures+=("$request: $(response) $stderr")
      continue
    fi
    case "$expected" in
      reject:*) [[ $(response | jq -r .status.message) == *"${expected#reject:}"* ]] ;;
      warn:*) [[ $(response | jq -r '.warnings // [] | join("\n")') == *"${expected#warn:}"* ]] ;;
      accept) true ;;
    esac || failures+=("$request: expected $expected, got $(response)")
  done <test_data/hostile/cases.tsv
  printf '%s\n' "${failures[@]}"
  [ "${#failures[@]}" -eq 0 ]
  [ "$count" -ge 40 ]
}

@test "hostile inputs: megabyte strings in a workload are handled" {
  big="$BATS_TEST_TMPDIR/big.json"
  jq '.object.metadata.annotations["example.com/blob"] = ("x" * 1048576)
      | .object.spec.containers[0].env += [{"name": "BLOB", "value": ("y" * 1048576)}]' \
    test_data/pod-create.json >"$big"
  evaluate "$big" session-workload-found.yml
  assert_accepted
  [ "$(response | jq -r '.patch' | base64 -d | jq 'length')" = 6 ]
}

# --- Cost stays linear (behaviour here; time is measured by make bench) --------------------------

@test "a 1 MiB Secret: only the consumed entries are hashed" {
  python3 - "$BATS_TEST_TMPDIR" <<'PY'
import base64, json, pathlib, sys
session = pathlib.Path("test_data/session-workload-found.yml").read_text()
head, payload = session.rsplit("payload: '", 1)
secret = json.loads(payload.rsplit("'", 1)[0])
secret["data"]["bulk"] = base64.b64encode(b"x" * (1024 * 1024)).decode()
pathlib.Path(sys.argv[1], "session-1mib.yml").write_text(head + "payload: '" + json.dumps(secret) + "'\n")
PY
  evaluate pod-create.json "$BATS_TEST_TMPDIR/session-1mib.yml"
  assert_patch expected-patch-pod-create.json
}

@test "a 200-container pod: only the dittofs container changes" {
  jq '.object.spec.containers = [range(199) | {name: "sidecar-\(.)", image: "busybox", env: [{name: "I", value: "\(.)"}]}] + .object.spec.containers' \
    test_data/pod-create.json >"$BATS_TEST_TMPDIR/pod-200.json"
  evaluate "$BATS_TEST_TMPDIR/pod-200.json" session-workload-found.yml
  assert_accepted
  paths=$(response | jq -r .patch | base64 -d | jq -r '.[].path' | sort | tr '\n' ' ')
  [ "$paths" = "/metadata/annotations/dittofs.io~1s3-credentials-hash /metadata/annotations/dittofs.io~1s3-credentials-source /spec/containers/199/env/1 /spec/containers/199/env/2 /spec/containers/199/env/3 /spec/containers/199/env/4 " ]
}

# --- The harness itself -----------------------------------------------------------------------------

@test "the leak check reads the policy's log lines, not the tool's own diagnostics" {
  # A rejection is logged by the policy ("request rejected"): the filter must find that line.
  evaluate dittoserver-bad-region.json session-empty.yml
  assert_rejected_with "spec.s3.region"
  [[ $(policy_logs) == 'policy_log: request rejected data={'*'"reason":'* ]] || { echo "no policy log line in: $stderr"; return 1; }
  # A Secret value in a policy log line (either tool's shape) is caught...
  output='{"allowed":true}'
  local kwctl_line=$'\e[32m INFO\e[0m validate{}:policy_log{}: \e[2mpolicy_log\e[0m\e[2m:\e[0m request rejected data={"reason":"FAKE-ACCESS-KEY-ID-0000"}'
  local runner_line=' INFO policy_log: m data={"k":"'"$(printf %s s3.cubbit.eu | base64 -w0)"'"}'
  for stderr in "$kwctl_line" "$runner_line"; do
    if assert_no_secret_values >/dev/null; then echo "leak not caught in: $stderr"; return 1; fi
  done
  # ...while kwctl's listing of unreplayed exchanges, with their payloads, and its echo of the
  # settings are not policy output.
  stderr=' WARN kwctl::callback_handler::proxy: Some of the recorded exchanges have not been replayed leftovers=[Exchange { response: Success { payload: "FAKE-ACCESS-KEY-ID-0000" } }]'
  assert_no_secret_values
  stderr=' INFO validate{settings=PolicySettings({"allowedEndpointHosts": Array [String("*.cubbit.eu")]})}:policy_log{}: policy_log: request rejected data={}'
  assert_no_secret_values
}

@test "a host error reaches the policy as a short reason, whatever the tool and RUST_BACKTRACE" {
  for backtrace in 0 1; do
    RUST_BACKTRACE=$backtrace evaluate dittoserver-sample-create.json session-secret-api-error.yml
    assert_accepted
    assert_warning "lookup failed (etcdserver: request timed out)"
    [[ $(response | jq -r '.warnings | join("\n")') != *"Stack backtrace"* ]] || { echo "backtrace in: $(response)"; return 1; }
  done
}

# --- Lifecycle gaps (issue #22 item 4) -------------------------------------------------------------

@test "gaps: a StatefulSet CREATE whose DittoServer cannot be read is refused, for the operator to retry" {
  for session in session-workload-ditto-missing.yml session-workload-ditto-denied.yml; do
    evaluate statefulset-create.json "$session"
    assert_rejected_with 'StatefulSet "dittofs-s3-sample": not created while its S3 credentials cannot be determined ('
    assert_rejected_with 'retry once the lookup succeeds'
  done
}

@test "gaps: after a failed lookup, AWS_* entries the previous revision lacked are removed, and the warning says so" {
  evaluate statefulset-update-first-creds-v2.json session-workload-renamed-missing.yml
  assert_accepted
  [ "$(response | jq -r .patch | base64 -d | jq -c '[.[] | select(.path | startswith("/spec/template/spec/containers/0/env"))] | length')" -gt 0 ]
  [[ $(response | jq -r .patch | base64 -d) != *creds-v2* ]] || { echo "creds-v2 still added: $(response)"; return 1; }
  assert_warning 'removed AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION from StatefulSet "dittofs-s3-sample", as its previous revision had no S3 env: Secret "creds-v2" in namespace "dittofs-system" was not found'
}

@test "gaps: after a failed lookup, an entry a person removed is put back, and the warning says so" {
  evaluate statefulset-update-endpoint-removed.json session-workload-ditto-missing.yml
  assert_accepted
  [[ $(response | jq -r .patch | base64 -d) == *AWS_ENDPOINT_URL* ]] || { echo "not put back: $(response)"; return 1; }
  assert_warning 'kept the S3 env and hash of the previous revision of StatefulSet "dittofs-s3-sample" (put back AWS_ENDPOINT_URL, which this write removed): '
}

@test "gaps: a pod injected from an earlier template loses the policy's entries once its DittoServer dropped spec.s3; verify reports it" {
  evaluate pod-create-injected.json session-workload-no-s3.yml
  assert_accepted
  [[ $(response | jq -r .patch | base64 -d) == *remove* ]] || { echo "nothing removed: $(response)"; return 1; }
  assert_warning 'removed the S3 env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION) the policy injected into Pod "dittofs-s3-sample-0": DittoServer "dittofs-s3-sample" in namespace "dittofs-system" names no S3 credentials any more'
  evaluate pod-create-injected.json session-workload-no-s3.yml "$VERIFY"
  assert_rejected_with 'container "dittofs" holds S3 credentials that DittoServer "dittofs-s3-sample" in namespace "dittofs-system" no longer names; roll it with: kubectl rollout restart statefulset/dittofs-s3-sample -n dittofs-system'
}
