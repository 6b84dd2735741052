#!/usr/bin/env bats
# End-to-end tests: the annotated module, evaluated by kwctl when it is installed, else by the
# bundled kwctl-compatible runner (KWCTL picks the binary). Lookups come from replay sessions.

bats_require_minimum_version 1.5.0

setup() {
  KWCTL=${KWCTL:-$(command -v kwctl || echo target/tool/policy-runner)}
  MODULE=${MODULE:-annotated-policy.wasm}
}

# evaluate REQUEST SESSION [SETTINGS_JSON]: runs the policy with lookups granted and replayed.
evaluate() {
  local request=$1 session=$2 settings=${3:-"{}"}
  [[ $request == /* ]] || request="test_data/$request"
  run --separate-stderr "$KWCTL" run --request-path "$request" --settings-json "$settings" \
    --allow-context-aware --replay-host-capabilities-interactions "test_data/$session" "$MODULE"
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

@test "sample DittoServer UPDATE is checked the same way" {
  evaluate dittoserver-sample-update.json session-secret-found.yml
  assert_accepted
  assert_no_warnings
}

@test "DittoServer without spec.s3 needs no lookup" {
  evaluate dittoserver-no-s3.json session-empty.yml
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
  evaluate dittoserver-custom-keys.json session-secret-found.yml
  assert_accepted
  assert_warning 'Secret "dittofs-s3-credentials" in namespace "dittofs-system": entry "id" is missing'
  assert_warning 'entry "key" is missing'
}

@test "region or bucket without credentialsSecretRef warns that nothing is injected" {
  evaluate dittoserver-region-bucket-without-ref.json session-empty.yml
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

@test "secretCheck=skip makes no lookup" {
  evaluate dittoserver-sample-create.json session-empty.yml '{"secretCheck":"skip"}'
  assert_accepted
  assert_no_warnings
}

@test "without --allow-context-aware the lookup is refused and reported" {
  run --separate-stderr "$KWCTL" run --request-path test_data/dittoserver-sample-create.json \
    --replay-host-capabilities-interactions test_data/session-secret-found.yml "$MODULE"
  assert_accepted
  assert_warning "Policy has not been granted access to Kubernetes v1/Secret resources"
}

@test "no response, message, warning or log carries a Secret value" {
  for session in test_data/session-secret-*.yml; do
    for settings in '{}' '{"secretCheck":"reject"}'; do
      evaluate dittoserver-sample-create.json "${session#test_data/}" "$settings"
      for value in FAKE-ACCESS-KEY-ID-0000 FAKE-SECRET-ACCESS-KEY-DO-NOT-USE \
        RkFLRS1BQ0NFU1MtS0VZLUlELTAwMDA= RkFLRS1TRUNSRVQtQUNDRVNTLUtFWS1ETy1OT1QtVVNF \
        s3.cubbit.eu minio.storage.svc amazonaws.com; do
        if [[ "$output$stderr" == *"$value"* ]]; then
          echo "$session leaks $value: $output $stderr"
          return 1
        fi
      done
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
