#!/usr/bin/env bats
# End-to-end tests through the real policy-server (POLICY_SERVER, 1.35), as on a cluster:
# AdmissionReviews over HTTPS (a throwaway CA), the deploy kit's policies translated into
# policies.yml the way Kubewarden's controller writes it, and lookups made by policy-server itself
# against tools/fake-kube-api, a stand-in Kubernetes API on loopback that records every request.
#
# Each test uses its own namespace (t<number>), so policy-server's 5 s lookup cache, keyed by
# object, never carries an answer from one test into another; tests that are about the cache say
# so. Every server is started here and stopped in teardown_file.

bats_require_minimum_version 1.5.0

setup_file() {
  export POLICY_SERVER=${POLICY_SERVER:-$(command -v policy-server || echo ../shared/tools/policy-server/policy-server)}
  export MODULE=${MODULE:-annotated-policy.wasm}
  export LIFECYCLE=${LIFECYCLE:-target/tool/lifecycle-scenario}
  export KIT_POLICIES=${KIT_POLICIES:-target/tool/kit-policies}
  export DIR=$BATS_FILE_TMPDIR/cluster
  export MODULE_URL=file://$(realpath "$MODULE")
  # shellcheck source=scripts/policy-server.bash
  source scripts/policy-server.bash
  mkdir -p "$DIR"
  echo "# e2e-policy-server.bats: $("$POLICY_SERVER" --version | head -n 1) ($POLICY_SERVER), module $MODULE" >&3
  ps_certificates "$DIR"
  start_fake_api "$DIR"
  # The kit as deployed, with the lifecycle scenario's allow-list (allowedEndpointHosts), plus
  # two entries a kit user could end up with: the same inject policy without hostCapabilities
  # (a hand-written policies.yml) and without timeoutEvalSeconds (policy-server's 2 s default).
  "$KIT_POLICIES" deploy "$MODULE_URL" "$("$LIFECYCLE" settings)" |
    jq '. + {"no-host-capabilities": (.["clusterwide-dittofs-s3-inject"] | del(.hostCapabilities)),
             "default-timeout": (.["clusterwide-dittofs-s3-inject"] | del(.timeoutEvalSeconds))}' \
      >"$DIR/policies.yml"
  # Two workers, as on the 2-core build machine, whatever this one has.
  start_policy_server "$DIR" "$DIR/policies.yml" --log-level debug --workers 2
  export PS_URL FAKE_API
}

teardown_file() {
  source scripts/policy-server.bash
  for dir in "$DIR" "$BATS_FILE_TMPDIR"/lifecycle-* "$BATS_FILE_TMPDIR"/discovery "$BATS_FILE_TMPDIR"/guard-forbidden; do
    [[ -d $dir ]] || continue
    stop_policy_server "$dir"
    stop_fake_api "$dir"
  done
}

setup() {
  source scripts/policy-server.bash
  NS=t$BATS_TEST_NUMBER
}

# Background work a test starts (clients, the lifecycle runs) is listed in $BATS_TEST_TMPDIR/bg
# and stopped here if the test ended before it did.
background() {
  echo "$1" >>"$BATS_TEST_TMPDIR/bg"
}

teardown() {
  [[ -f $BATS_TEST_TMPDIR/bg ]] || return 0
  local pid
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$BATS_TEST_TMPDIR/bg"
}

# --- The cluster: objects, requests, responses ------------------------------------------------

# Fake credentials; no response and no log line may carry any of them, raw or base64-encoded.
ACCESS_KEY=FAKE-ACCESS-KEY-ID-0000
SECRET_KEY=FAKE-SECRET-ACCESS-KEY-DO-NOT-USE
ENDPOINT=https://s3.cubbit.eu
UNRELATED=FAKE-UNRELATED-VALUE-0000
ROTATED=FAKE-ROTATED-SECRET-KEY-DO-NOT-USE
SECRET_VALUES=("$ACCESS_KEY" "$SECRET_KEY" "$ENDPOINT" "$UNRELATED" "$ROTATED"
  FAKE-LIFECYCLE-KEY-ID FAKE-LIFECYCLE-SECRET-creds FAKE-LIFECYCLE-ROTATED FAKE-LIFECYCLE-ROTATED-V2
  https://s3.attacker.example)
HASH=b460e4ff7acbcc091678f1821e6c5bc1c4ef9c8ec1699a4cee59f4765970fe79

b64() { printf %s "$1" | base64 -w0; }

# cluster [JQ]: the API's state for namespace $NS: DittoServer dittofs-s3-sample naming Secret
# dittofs-s3-credentials, and that Secret, complete. JQ edits the state; $ds and $secret are the
# two objects' paths.
cluster() {
  jq -n --arg ns "$NS" --arg ak "$(b64 "$ACCESS_KEY")" --arg sk "$(b64 "$SECRET_KEY")" \
    --arg ep "$(b64 "$ENDPOINT")" "
    \"/apis/dittofs.dittofs.com/v1alpha1/namespaces/\(\$ns)/dittoservers/dittofs-s3-sample\" as \$ds
    | \"/api/v1/namespaces/\(\$ns)/secrets/dittofs-s3-credentials\" as \$secret
    | {objects: {
        (\$ds): {apiVersion: \"dittofs.dittofs.com/v1alpha1\", kind: \"DittoServer\",
                metadata: {name: \"dittofs-s3-sample\", namespace: \$ns, uid: \"7d1e3c2a-0000-4000-8000-000000000001\"},
                spec: {image: \"marmos91c/dittofs:0.12.0\", replicas: 1,
                       s3: {credentialsSecretRef: {secretName: \"dittofs-s3-credentials\"},
                            region: \"eu-west-1\", bucket: \"dittofs-data\"}}},
        (\$secret): {apiVersion: \"v1\", kind: \"Secret\", type: \"Opaque\",
                    metadata: {name: \"dittofs-s3-credentials\", namespace: \$ns, resourceVersion: \"1001\"},
                    data: {accessKeyId: \$ak, secretAccessKey: \$sk, endpoint: \$ep}}}}
    | ${1:-.}" | api_state "$DIR"
}

# request FILE [JQ]: test_data/FILE moved into namespace $NS, uid <test>-<file>, edited by JQ;
# its path is printed.
request() {
  local out=$BATS_TEST_TMPDIR/request-${1%.json}.json
  jq --arg ns "$NS" --arg uid "$NS-${1%.json}" '
    .namespace = $ns | .uid = $uid | .object.metadata.namespace = $ns
    | if .oldObject then .oldObject.metadata.namespace = $ns else . end | '"${2:-.}" \
    "test_data/$1" >"$out"
  echo "$out"
}

# review REQUEST POLICY_ID [validate|audit]: posts it; RESPONSE is the AdmissionResponse, PATCH
# the decoded patch (or null). Every body is kept for the final scan for Secret values.
review() {
  API_MARK=$(wc -l <"$DIR/api-requests.jsonl")
  local started=$EPOCHREALTIME
  post_review "$DIR" "$1" "$2" "${3:-validate}"
  ELAPSED=$(jq -n "$EPOCHREALTIME - $started")
  cat "$DIR/response.json" >>"$DIR/responses.log"
  echo >>"$DIR/responses.log"
  [ "$(<"$DIR/response.status")" = 200 ] || { echo "HTTP $(<"$DIR/response.status"): $(<"$DIR/response.json")"; return 1; }
  jq -e '.apiVersion == "admission.k8s.io/v1" and .kind == "AdmissionReview"' "$DIR/response.json" >/dev/null
  RESPONSE=$(jq -c '.response' "$DIR/response.json")
  [[ -z ${SHOW:-} ]] || echo "# $RESPONSE" >&3
  PATCH=$(jq -r '.response.patch // empty' "$DIR/response.json" | base64 -d | jq -c . 2>/dev/null || echo null)
  [[ -n $PATCH ]] || PATCH=null
}

# assert_response JSON: the response without its patch is exactly JSON (key order aside).
assert_response() {
  local actual expected
  actual=$(jq -S 'del(.patch)' <<<"$RESPONSE")
  expected=$(jq -S . <<<"$1")
  [ "$actual" = "$expected" ] || { echo "response: $actual"; echo "expected: $expected"; return 1; }
}

# assert_patch FILE|null: the decoded JSON Patch is exactly test_data/FILE (or there is none).
assert_patch() {
  local expected=null
  [ "$1" = null ] || expected=$(jq -c . "test_data/$1")
  [ "$(jq -S . <<<"$PATCH")" = "$(jq -S . <<<"$expected")" ] || { echo "patch: $PATCH"; echo "expected: $expected"; return 1; }
}

# api_requests: what the API received during the last review, one "METHOD PATH" per line.
api_requests() {
  tail -n +"$((API_MARK + 1))" "$DIR/api-requests.jsonl" | jq -r '"\(.method) \(.path)\(if .query != "" then "?" + .query else "" end)"'
}

# assert_api_requests LINE…: exactly these requests reached the API during the last review
# (discovery, read once per policy-server, left out).
assert_api_requests() {
  local actual expected
  actual=$(api_requests | grep -v -x -e 'GET /api/v1' -e 'GET /apis/dittofs.dittofs.com/v1alpha1' | sort)
  expected=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
  [ "$actual" = "$expected" ] || { echo "API requests: $actual"; echo "expected: $expected"; return 1; }
}

DS_PATH() { echo "/apis/dittofs.dittofs.com/v1alpha1/namespaces/$NS/dittoservers/dittofs-s3-sample"; }
SECRET_PATH() { echo "/api/v1/namespaces/$NS/secrets/${1:-dittofs-s3-credentials}"; }

# policy_server_log_since MARK: policy-server's log lines after line MARK, without colours.
policy_server_log_since() {
  tail -n +"$(($1 + 1))" "$DIR/policy-server.log" | sed 's/\x1b\[[0-9;]*m//g'
}

# --- A DittoFS Pod, as a new user tries it ------------------------------------------------------

@test "a DittoFS Pod through /validate: allowed, the four variables, and the same patch and hash as kwctl" {
  cluster
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"patchType\": \"JSONPatch\",
                    \"auditAnnotations\": null, \"warnings\": null}"
  assert_patch expected-patch-pod-create.json
  # policy-server asked for the two objects by name, nothing else; discovery once, first.
  assert_api_requests "GET $(DS_PATH)" "GET $(SECRET_PATH)"
  [ "$(api_requests | head -n 1)" = "GET /apis/dittofs.dittofs.com/v1alpha1" ]

  # kwctl, on the same request with the same objects replayed, computes the same response.
  local kwctl
  kwctl=$(command -v kwctl || echo ../shared/tools/kwctl/kwctl)
  if [[ ! -x $kwctl ]]; then
    echo "# kwctl not found: the comparison with kwctl is skipped" >&3
    return 0
  fi
  run --separate-stderr "$kwctl" run --sigstore-trust-config test_data/sigstore-offline-trust-config.json --request-path test_data/pod-create.json \
    --settings-json "$(jq -c '.["clusterwide-dittofs-s3-inject"].settings' "$DIR/policies.yml")" \
    --allow-context-aware --replay-host-capabilities-interactions test_data/session-workload-found.yml "$MODULE"
  [ "$status" -eq 0 ] || { echo "kwctl: $stderr"; return 1; }
  local kw
  kw=$(tail -n 1 <<<"$output")
  [ "$(jq -c '{allowed, patchType, warnings, status}' <<<"$kw")" = "$(jq -c '{allowed, patchType, warnings, status}' <<<"$RESPONSE")" ]
  [ "$(jq -r .patch <<<"$kw" | base64 -d | jq -S -c .)" = "$(jq -S -c . <<<"$PATCH")" ]
}

@test "the Secret is cached 5 s, the owning DittoServer never: the same Pod again asks the API for the DittoServer only" {
  cluster
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-create.json
  local mark
  mark=$(wc -l <"$DIR/policy-server.log")
  # The Secret is rotated; within 5 s policy-server still answers from its cache.
  cluster ".objects[\$secret].data.secretAccessKey = \"$(b64 "$ROTATED")\""
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-create.json
  # A cached DittoServer could still name a Secret it dropped while its image changed.
  assert_api_requests "GET $(DS_PATH)"
  policy_server_log_since "$mark" | grep -q 'Get Kubernetes resource value="v1/Secret" cached=true'
}

@test "field masks: policy-server is asked for spec.s3 and the consumed entries; unrelated keys and last-applied-configuration change nothing" {
  local applied
  applied=$(jq -cn --arg ns "$NS" --arg ak "$(b64 "$ACCESS_KEY")" --arg sk "$(b64 "$SECRET_KEY")" \
    --arg ep "$(b64 "$ENDPOINT")" --arg un "$(b64 "$UNRELATED")" \
    '{apiVersion: "v1", kind: "Secret", metadata: {name: "dittofs-s3-credentials", namespace: $ns},
      data: {accessKeyId: $ak, secretAccessKey: $sk, endpoint: $ep, unrelated: $un}}')
  cluster ".objects[\$secret].data.unrelated = \"$(b64 "$UNRELATED")\"
    | .objects[\$secret].data[\"bulk.bin\"] = \"$(head -c 65536 /dev/zero | base64 -w0)\"
    | .objects[\$secret].metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"] = $(jq -R . <<<"$applied")
    | .objects[\$secret].metadata.managedFields = [{manager: \"kubectl-client-side-apply\", operation: \"Update\",
        apiVersion: \"v1\", fieldsType: \"FieldsV1\", fieldsV1: {\"f:data\": {\"f:unrelated\": {}}}}]
    | .objects[\$ds].spec.storage = {size: \"10Gi\"} | .objects[\$ds].status = {phase: \"Running\"}"
  local mark
  mark=$(wc -l <"$DIR/policy-server.log")
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  # The hash covers the consumed entries only: the same patch as for the plain Secret.
  assert_patch expected-patch-pod-create.json
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"patchType\": \"JSONPatch\",
                    \"auditAnnotations\": null, \"warnings\": null}"
  # The masks the policy gave the host, as policy-server logs each lookup (debug level).
  local lookups
  lookups=$(policy_server_log_since "$mark" | grep -o 'req=GetResourceRequest .*')
  echo "$lookups"
  [[ $lookups == *'kind: "DittoServer", name: "dittofs-s3-sample", namespace: Some("'$NS'"), disable_cache: true, field_masks: Some({"spec.s3"})'* ]]
  [[ $lookups == *'kind: "Secret", name: "dittofs-s3-credentials", namespace: Some("'$NS'"), disable_cache: false, field_masks: Some({"data.accessKeyId", "data.endpoint", "data.secretAccessKey"})'* ]]
}

# --- When a lookup fails (README, "When a lookup fails") -----------------------------------------

@test "Pod: DittoServer not found (404 Status) - admitted untouched, with a warning" {
  cluster "del(.objects[\$ds])"
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"auditAnnotations\": null,
    \"warnings\": [\"S3 credentials were not injected into Pod \\\"dittofs-s3-sample-0\\\": DittoServer \\\"dittofs-s3-sample\\\" in namespace \\\"$NS\\\" was not found\"]}"
  assert_patch null
  assert_api_requests "GET $(DS_PATH)"
}

@test "Pod: Secret not found - env and record injected without the hash, with a warning" {
  cluster "del(.objects[\$secret])"
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"patchType\": \"JSONPatch\", \"auditAnnotations\": null,
    \"warnings\": [\"S3 env injected into Pod \\\"dittofs-s3-sample-0\\\" without dittofs.io/s3-credentials-hash: Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\" was not found\"]}"
  assert_patch expected-patch-pod-env-only.json
  assert_api_requests "GET $(DS_PATH)" "GET $(SECRET_PATH)"
}

@test "Pod: Secret forbidden (403 Status) - reported as access denied, not as missing" {
  cluster ".forbidden[\$secret] = \"RBAC: clusterrole.rbac.authorization.k8s.io \\\"dittofs-s3-policy-lookups\\\" not found\""
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-env-only.json
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"patchType\": \"JSONPatch\", \"auditAnnotations\": null,
    \"warnings\": [\"S3 env injected into Pod \\\"dittofs-s3-sample-0\\\" without dittofs.io/s3-credentials-hash: cannot read Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\": access denied (ApiError: secrets \\\"dittofs-s3-credentials\\\" is forbidden: User \\\"system:serviceaccount:kub…\"]}"
}

@test "Pod: the API answers 500 - a lookup failure quoting the API's message, never a 500 of ours" {
  cluster ".faults[\$secret] = {status: 500, reason: \"InternalError\", message: \"etcdserver: request timed out\"}"
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-env-only.json
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"patchType\": \"JSONPatch\", \"auditAnnotations\": null,
    \"warnings\": [\"S3 env injected into Pod \\\"dittofs-s3-sample-0\\\" without dittofs.io/s3-credentials-hash: cannot read Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\": lookup failed (ApiError: etcdserver: request timed out: InternalError)\"]}"
}

@test "Pod: the API answers garbage (HTML with 200) - a lookup failure" {
  cluster ".faults[\$ds] = {status: 200, raw: \"<html><body>proxy error</body></html>\"}"
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch null
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"auditAnnotations\": null,
    \"warnings\": [\"S3 credentials were not injected into Pod \\\"dittofs-s3-sample-0\\\": cannot read DittoServer \\\"dittofs-s3-sample\\\" in namespace \\\"$NS\\\": lookup failed (Error deserializing response: expected value at line 1 column 1)\"]}"
}

@test "StatefulSet UPDATE while the Secret is forbidden: the previous revision's env, hash and record are kept" {
  cluster ".forbidden[\$secret] = \"\""
  review "$(request statefulset-update-reconciled.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-statefulset-carry-over.json
  [ "$(jq -r '.allowed' <<<"$RESPONSE")" = true ]
  [[ $(jq -r '.warnings[0]' <<<"$RESPONSE") == "kept the S3 env and hash of the previous revision of StatefulSet \"dittofs-s3-sample\": cannot read Secret \"dittofs-s3-credentials\" in namespace \"$NS\": access denied (ApiError: secrets \"dittofs-s3-credentials\" is forbidden"* ]]
}

@test "without hostCapabilities in policies.yml every lookup is refused: admitted uninjected, with a warning" {
  cluster
  review "$(request pod-create.json)" no-host-capabilities
  assert_patch null
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"auditAnnotations\": null,
    \"warnings\": [\"S3 credentials were not injected into Pod \\\"dittofs-s3-sample-0\\\": cannot read DittoServer \\\"dittofs-s3-sample\\\" in namespace \\\"$NS\\\": access denied (Policy has not been granted access to the 'kubernetes/get_resource' host capability. The violatio…)\"]}"
  assert_api_requests
}

# --- DittoServers: the Secret check and the author's access (validating policy) -----------------

@test "DittoServer CREATE: the author's access is asked with a SubjectAccessReview, then the Secret is read" {
  cluster
  review "$(request dittoserver-sample-create.json)" clusterwide-dittofs-s3-validate
  assert_response "{\"uid\": \"$NS-dittoserver-sample-create\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
  assert_patch null
  # One question for each Secret the sample names (spec.s3, spec.identity.admin, spec.identity.jwt).
  local sar="POST /apis/authorization.k8s.io/v1/subjectaccessreviews"
  assert_api_requests "$sar" "$sar" "$sar" "GET $(SECRET_PATH)"
  tail -n +"$((API_MARK + 1))" "$DIR/api-requests.jsonl" | jq -c 'select(.method == "POST") | .body.spec' >"$BATS_TEST_TMPDIR/sar"
  [ "$(head -n 1 "$BATS_TEST_TMPDIR/sar")" = "{\"groups\":[\"system:authenticated\",\"system:masters\"],\"resourceAttributes\":{\"group\":\"\",\"name\":\"dittofs-s3-credentials\",\"namespace\":\"$NS\",\"resource\":\"secrets\",\"verb\":\"get\",\"version\":\"v1\"},\"user\":\"kubernetes-admin\"}" ]
  [ "$(jq -r .resourceAttributes.name "$BATS_TEST_TMPDIR/sar" | paste -sd ' ')" = "dittofs-s3-credentials dittofs-admin-secret dittofs-jwt-secret" ]
}

@test "DittoServer CREATE by an author who may not read the Secret: rejected (secretAccessCheck: reject)" {
  cluster '.accessReviews = [{user: "kubernetes-admin", name: "dittofs-s3-credentials", status: {allowed: false, reason: "no RBAC policy matched"}}]'
  review "$(request dittoserver-sample-create.json)" clusterwide-dittofs-s3-validate
  assert_response "{\"uid\": \"$NS-dittoserver-sample-create\", \"allowed\": false, \"auditAnnotations\": null, \"warnings\": null,
    \"status\": {\"message\": \"DittoServer \\\"dittofs-s3-sample\\\" is rejected: user \\\"kubernetes-admin\\\" may not get Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\", so it may not have DittoFS pods read it (secretAccessCheck); grant the user get on that Secret, or name one the user can read\"}}"
  # Refused before the Secret is read.
  local sar="POST /apis/authorization.k8s.io/v1/subjectaccessreviews"
  assert_api_requests "$sar" "$sar" "$sar"
}

@test "DittoServer UPDATE of spec.image by an author who may not read the Secret: rejected before the Secret is read" {
  cluster '.accessReviews = [{user: "dev@example.com", name: "dittofs-s3-credentials", status: {allowed: false, reason: "no RBAC policy matched"}}]'
  review "$(request dittoserver-update-image.json)" clusterwide-dittofs-s3-validate
  [[ $(jq -r .status.message <<<"$RESPONSE") == "DittoServer \"dittofs-s3-sample\" is rejected: user \"dev@example.com\" may not get Secret \"dittofs-s3-credentials\" in namespace \"$NS\", so it may not have DittoFS pods read it (secretAccessCheck) (this write changes spec.image); "* ]]
  local sar="POST /apis/authorization.k8s.io/v1/subjectaccessreviews"
  assert_api_requests "$sar" "$sar" "$sar"
}

@test "DittoServer CREATE naming a missing Secret: accepted with a warning (secretCheck: warn)" {
  cluster "del(.objects[\$secret])"
  review "$(request dittoserver-sample-create.json)" clusterwide-dittofs-s3-validate
  assert_response "{\"uid\": \"$NS-dittoserver-sample-create\", \"allowed\": true, \"auditAnnotations\": null,
    \"warnings\": [\"Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\" (spec.s3.credentialsSecretRef.secretName) was not found: DittoFS pods will not start until it exists\"]}"
}

# --- The drift policy: monitor on /validate, its real verdict on /audit ------------------------

@test "drift policy: a Pod on rotated credentials passes /validate (monitor) and is reported on /audit" {
  cluster ".objects[\$secret].data.secretAccessKey = \"$(b64 "$ROTATED")\""
  review "$(request pod-create-injected.json)" clusterwide-dittofs-s3-drift
  assert_response "{\"uid\": \"$NS-pod-create-injected\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
  review "$(request pod-create-injected.json)" clusterwide-dittofs-s3-drift audit
  assert_patch null
  assert_response "{\"uid\": \"$NS-pod-create-injected\", \"allowed\": false, \"auditAnnotations\": null, \"warnings\": null,
    \"status\": {\"message\": \"Pod \\\"dittofs-s3-sample-0\\\": it runs with outdated S3 credentials (dittofs.io/s3-credentials-hash does not match Secret \\\"dittofs-s3-credentials\\\" in namespace \\\"$NS\\\"); roll it with: kubectl rollout restart statefulset/dittofs-s3-sample -n $NS\"}}"
}

@test "drift policy on /audit: a Pod whose credentials are current passes" {
  cluster
  review "$(request pod-create-injected.json)" clusterwide-dittofs-s3-drift audit
  assert_response "{\"uid\": \"$NS-pod-create-injected\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
}

# --- The Secret guard: Secret writes checked against the namespace's DittoServers ----------------

# The writes carry values of their own (the fixtures' lower-cased, the endpoint on another host of
# *.cubbit.eu): policy-server's debug log prints every AdmissionReview it receives, the Secret's
# data included, and the last tests look for the cluster's values in that log.
GUARD_VALUES='def own: with_entries(.value |= if . == "" then . else (@base64d | ascii_downcase
  | sub("^https://"; "https://guard.") | @base64) end);
  .object.data |= own | if .oldObject then .oldObject.data |= own else . end'

DS_COLLECTION() { echo "/apis/dittofs.dittofs.com/v1alpha1/namespaces/$NS/dittoservers"; }

# collection_requests MARK: the requests for $NS's DittoServer collection since line MARK of the
# API's log, one "METHOD PATH?QUERY STATUS" per line, the watch's resourceVersion as N.
collection_requests() {
  tail -n +"$(($1 + 1))" "$DIR/api-requests.jsonl" |
    jq -r --arg path "$(DS_COLLECTION)" 'select(.path == $path) | "\(.method) \(.path)?\(.query) \(.status)"' |
    sed -E 's/resourceVersion=[0-9]+/resourceVersion=N/'
}

# The reflector opens its watch right after the list that answered the policy: wait for it.
wait_for_watch() {
  for _ in $(seq 50); do
    collection_requests "$1" | grep -q 'watch=true' && return 0
    sleep 0.1
  done
}

@test "Secret guard: a rotation emptying a key is refused naming the DittoServer, a good one accepted; one LIST and one WATCH for both" {
  # A second DittoServer naming another Secret, which the refusal must not name.
  cluster '.objects[$ds | sub("dittofs-s3-sample$"; "dittofs-archive")] = (.objects[$ds]
    | .metadata.name = "dittofs-archive" | .spec.s3.credentialsSecretRef.secretName = "archive-s3-credentials")'
  local start
  start=$(wc -l <"$DIR/api-requests.jsonl")
  review "$(request secret-update-emptied.json "$GUARD_VALUES")" clusterwide-dittofs-s3-secret-guard
  assert_response "{\"uid\": \"$NS-secret-update-emptied\", \"allowed\": false, \"auditAnnotations\": null, \"warnings\": null,
    \"status\": {\"message\": \"Secret \\\"dittofs-s3-credentials\\\" is rejected: it would break DittoServer \\\"dittofs-s3-sample\\\" (entry \\\"accessKeyId\\\" is empty)\"}}"
  local first=$ELAPSED
  review "$(request secret-update-rotated.json "$GUARD_VALUES")" clusterwide-dittofs-s3-secret-guard
  assert_response "{\"uid\": \"$NS-secret-update-rotated\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
  echo "first write $first s, second $ELAPSED s"
  # The second write was answered from the reflector's store: no request at all.
  assert_api_requests
  # Both writes: the reflector's list (kube-rs's query, with its leading &) and its watch, once.
  wait_for_watch "$start"
  collection_requests "$start"
  [ "$(collection_requests "$start")" = "GET $(DS_COLLECTION)?&limit=500 200
GET $(DS_COLLECTION)?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=N 200" ]
  # Nothing else reached the API for them (discovery aside): no GET of a DittoServer or Secret.
  [ "$(tail -n +"$((start + 1))" "$DIR/api-requests.jsonl" | jq -r .path | grep -v -x -e /api/v1 -e /apis/dittofs.dittofs.com/v1alpha1 -e "$(DS_COLLECTION)" | wc -l)" = 0 ]
}

@test "Secret guard: a Secret no DittoServer names is accepted with no warning, after the one list" {
  cluster
  local start
  start=$(wc -l <"$DIR/api-requests.jsonl")
  review "$(request secret-create-unnamed.json "$GUARD_VALUES")" clusterwide-dittofs-s3-secret-guard
  assert_response "{\"uid\": \"$NS-secret-create-unnamed\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
  wait_for_watch "$start"
  [ "$(collection_requests "$start" | wc -l)" = 2 ]
  [ "$(collection_requests "$start" | head -n 1)" = "GET $(DS_COLLECTION)?&limit=500 200" ]
}

@test "Secret guard with the list forbidden (403): policy-server never answers; the client's timeout ends it" {
  # Its own API and policy-server (one worker): the hung evaluation and the reflector retrying
  # its list must not reach the other tests.
  local dir=$BATS_FILE_TMPDIR/guard-forbidden
  mkdir -p "$dir"
  cp "$DIR"/{ca.pem,server.pem,server.key,policies.yml} "$dir/"
  DIR=$dir cluster ".forbidden[\"$(DS_COLLECTION)\"] = \"\""
  start_fake_api "$dir"
  local main_url=$PS_URL
  start_policy_server "$dir" "$dir/policies.yml" --workers 1
  local started rc=0
  started=$EPOCHREALTIME
  # As the API server calls the webhook, giving up after the kit's timeoutSeconds.
  local webhook_timeout
  webhook_timeout=$(awk '$1 == "timeoutSeconds:" { print $2 }' deploy/secret-guard-policy.yaml)
  [ "$webhook_timeout" -le 5 ]
  jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "$(request secret-update-emptied.json)" >"$dir/review.json"
  curl -sS --max-time "$webhook_timeout" --cacert "$dir/ca.pem" -H 'Content-Type: application/json' --data-binary @"$dir/review.json" \
    -o "$dir/response.json" -w '%{http_code}' "$PS_URL/validate/clusterwide-dittofs-s3-secret-guard" >"$dir/response.status" 2>"$dir/curl.err" || rc=$?
  local elapsed
  elapsed=$(jq -n "$EPOCHREALTIME - $started")
  echo "curl exit $rc after $elapsed s: $(<"$dir/curl.err")"
  # curl's timeout (28), nothing received: no verdict, no error text, no 500.
  [ "$rc" = 28 ]
  [ ! -s "$dir/response.json" ]
  jq -e -n "$elapsed >= $webhook_timeout" >/dev/null
  # Meanwhile the reflector kept asking for the list, every ~1-1.5 s, and never watched.
  jq -r 'select(.path | endswith("/dittoservers")) | "\(.query) \(.status)"' "$dir/api-requests.jsonl" | sort | uniq -c
  [ "$(jq -r 'select(.path | endswith("/dittoservers")) | select(.query == "&limit=500" and .status == 403) | .path' "$dir/api-requests.jsonl" | wc -l)" -ge 2 ]
  ! jq -e 'select(.query | contains("watch=true"))' "$dir/api-requests.jsonl"
  # In a cluster the API server's own timeout ends the call, and the kit's guard fails open:
  # the write goes through (a `failed calling webhook` line in the API server's log).
  grep -q -x '  failurePolicy: Ignore' deploy/secret-guard-policy.yaml
  # The client gone, its evaluation no longer holds the only worker: a write in a namespace
  # whose list works is answered at once (while the reflector keeps retrying the other).
  local other=$BATS_TEST_TMPDIR/other.json
  jq '.namespace = "elsewhere" | .object.metadata.namespace = "elsewhere"
    | .oldObject.metadata.namespace = "elsewhere" | .uid = "elsewhere"' "$(request secret-update-rotated.json)" >"$other"
  started=$EPOCHREALTIME
  post_review "$dir" "$other" clusterwide-dittofs-s3-secret-guard
  elapsed=$(jq -n "$EPOCHREALTIME - $started")
  echo "then another namespace's write: $elapsed s, $(jq -c .response "$dir/response.json")"
  jq -e '.response.allowed == true and .response.warnings == null' "$dir/response.json" >/dev/null
  jq -e -n "$elapsed < 2" >/dev/null
  stop_policy_server "$dir"
  stop_fake_api "$dir"
  PS_URL=$main_url
}

# --- Slow answers and the evaluation limit -------------------------------------------------------

@test "a slow answer within the limit (1 s of the inject policy's 5 s): the normal verdict" {
  cluster '.delays = {($ds): 1, ($secret): 1}'
  review "$(request pod-create.json)" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-create.json
  # Two lookups, one second each.
  jq -e -n "$ELAPSED >= 2" >/dev/null
}

@test "an answer slower than the 2 s limit: policy-server answers 500 once the lookup returns (not at 2 s)" {
  cluster '.delays = {($ds): 2.5, ($secret): 2.5}'
  review "$(request pod-create.json)" default-timeout
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": false, \"auditAnnotations\": null, \"warnings\": null,
    \"status\": {\"message\": \"Policy execution interrupted because it exceeded the allowed execution time\", \"code\": 500}}"
  # The limit cannot interrupt a host call: the answer comes when the lookup does.
  jq -e -n "$ELAPSED >= 2.5" >/dev/null
}

@test "drift policy (monitor, 3 s limit) with an API slower than its limit: /validate still allows" {
  # Two lookups of 1.6 s each: 3.2 s.
  cluster '.delays = {($ds): 1.6, ($secret): 1.6}'
  review "$(request pod-create-injected.json)" clusterwide-dittofs-s3-drift
  assert_response "{\"uid\": \"$NS-pod-create-injected\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
}

@test "a slow API holds policy-server's workers: a Pod that needs no lookup waits behind two slow ones" {
  # Two lookups of 2 s each: 4 s, within the inject policy's 5 s.
  cluster '.delays = {($ds): 2, ($secret): 2}'
  local slow
  slow=$(request pod-create.json)
  for i in 1 2; do
    curl -sS --max-time 30 --cacert "$DIR/ca.pem" -H 'Content-Type: application/json' -o "$BATS_TEST_TMPDIR/slow-$i.json" \
      --data-binary "$(jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "$slow")" \
      "$PS_URL/validate/clusterwide-dittofs-s3-inject" 3>&- &
    background $!
  done
  sleep 0.5
  review "$(request pod-create-not-dittofs.json)" clusterwide-dittofs-s3-inject
  wait
  assert_response "{\"uid\": \"$NS-pod-create-not-dittofs\", \"allowed\": true, \"auditAnnotations\": null, \"warnings\": null}"
  echo "fast-path review took $ELAPSED s"
  jq -e -n "$ELAPSED >= 2" >/dev/null
  for i in 1 2; do jq -e '.response.allowed == true' "$BATS_TEST_TMPDIR/slow-$i.json"; done
}

# --- Faults: the API server down, restarting, answering garbage ---------------------------------

@test "the API server down, then back on the same port mid-run: warnings while down, injection again after, never a 500" {
  cluster
  local port pod
  port=$(<"$DIR/api.port")
  pod=$(request pod-create.json)
  stop_fake_api "$DIR"
  review "$pod" clusterwide-dittofs-s3-inject
  assert_patch null
  assert_response "{\"uid\": \"$NS-pod-create\", \"allowed\": true, \"auditAnnotations\": null,
    \"warnings\": [\"S3 credentials were not injected into Pod \\\"dittofs-s3-sample-0\\\": cannot read DittoServer \\\"dittofs-s3-sample\\\" in namespace \\\"$NS\\\": lookup failed (ServiceError: client error (Connect))\"]}"
  # The author's access cannot be checked: the validating policy fails closed (secretAccessCheck: reject).
  review "$(request dittoserver-sample-create.json)" clusterwide-dittofs-s3-validate
  assert_response "{\"uid\": \"$NS-dittoserver-sample-create\", \"allowed\": false, \"auditAnnotations\": null, \"warnings\": null,
    \"status\": {\"message\": \"DittoServer \\\"dittofs-s3-sample\\\" is rejected: cannot check whether user \\\"kubernetes-admin\\\" may get Secrets \\\"dittofs-s3-credentials\\\", \\\"dittofs-admin-secret\\\", \\\"dittofs-jwt-secret\\\" in namespace \\\"$NS\\\": lookup failed (ServiceError: client error (Connect)), so it may not have DittoFS pods read it (secretAccessCheck); grant the user get on that Secret, or name one the user can read\"}}"
  # Reviews keep coming while the API restarts on the same port.
  (
    for i in $(seq 20); do
      post_review "$DIR" "$pod" clusterwide-dittofs-s3-inject
      jq -c --arg status "$(<"$DIR/response.status")" '{status: $status, allowed: .response.allowed,
        code: .response.status.code, patched: (.response.patch != null), warnings: .response.warnings}' "$DIR/response.json"
      sleep 0.1
    done
  ) >"$BATS_TEST_TMPDIR/during-restart" 3>&- &
  local loop=$!
  background "$loop"
  sleep 0.5
  start_fake_api "$DIR" "$port"
  wait "$loop"
  cat "$BATS_TEST_TMPDIR/during-restart"
  ! grep -v '"status":"200","allowed":true' "$BATS_TEST_TMPDIR/during-restart"
  ! grep '"code":500' "$BATS_TEST_TMPDIR/during-restart"
  # Each answer is either the injection or the documented warning.
  ! grep '"patched":false' "$BATS_TEST_TMPDIR/during-restart" | grep -v 'lookup failed (ServiceError: client error (Connect))'
  review "$pod" clusterwide-dittofs-s3-inject
  assert_patch expected-patch-pod-create.json
}

@test "discovery failing at policy-server's start (garbage, then 503): lookups fail with warnings, and recover once it answers" {
  local dir=$BATS_FILE_TMPDIR/discovery
  mkdir -p "$dir"
  cp "$DIR"/{ca.pem,server.pem,server.key,policies.yml} "$dir/"
  jq -n '{faults: {"/apis/dittofs.dittofs.com/v1alpha1": {status: 200, raw: "not json"},
                   "/api/v1": {status: 503, reason: "ServiceUnavailable", message: "the server is currently unable to handle the request"}}}' |
    api_state "$dir"
  start_fake_api "$dir"
  local main_url=$PS_URL
  start_policy_server "$dir" "$dir/policies.yml" --workers 2
  local pod
  pod=$(request pod-create.json)
  post_review "$dir" "$pod" clusterwide-dittofs-s3-inject
  [ "$(<"$dir/response.status")" = 200 ]
  jq -c .response "$dir/response.json"
  jq -e '.response.allowed == true and .response.patch == null' "$dir/response.json"
  [[ $(jq -r '.response.warnings[0]' "$dir/response.json") == "S3 credentials were not injected into Pod \"dittofs-s3-sample-0\": cannot read DittoServer \"dittofs-s3-sample\" in namespace \"$NS\": lookup failed (error finding resource dittofs.dittofs.com/v1alpha1 / DittoServer: Error deserializing response"* ]]
  # Discovery answers again (a failed one is not kept): the next review looks the objects up.
  DIR=$dir cluster
  post_review "$dir" "$pod" clusterwide-dittofs-s3-inject
  jq -c .response "$dir/response.json"
  jq -e '.response.allowed == true and .response.warnings == null and .response.patch != null' "$dir/response.json"
  cat "$dir/response.json" >>"$DIR/responses.log"
  stop_policy_server "$dir"
  stop_fake_api "$dir"
  PS_URL=$main_url
}

# --- The life of a DittoFS server, through policy-server ----------------------------------------

@test "lifecycle through policy-server: both operator flavours, each step's patch making the next stored object" {
  # Each flavour on its own API and policy-server, side by side: most of the time is spent
  # waiting for policy-server's 5 s cache to let a changed object through.
  local flavour dir pids=()
  for flavour in plain renders-env; do
    dir=$BATS_FILE_TMPDIR/lifecycle-$flavour
    mkdir -p "$dir"
    cp "$DIR"/{ca.pem,server.pem,server.key,policies.yml} "$dir/"
    start_fake_api "$dir"
    start_policy_server "$dir" "$dir/policies.yml" --log-level debug --workers 2
    "$LIFECYCLE" --policy-server "$PS_URL" "$dir/ca.pem" "$dir" "$flavour" >"$dir/scenario.out" 2>&1 3>&- &
    pids+=($!)
    background $!
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  for flavour in plain renders-env; do
    echo "== $flavour"
    cat "$BATS_FILE_TMPDIR/lifecycle-$flavour/scenario.out"
    grep -q ' passed, 0 failed$' "$BATS_FILE_TMPDIR/lifecycle-$flavour/scenario.out"
  done
  [ "$failed" = 0 ]
}

# --- Nothing leaks ---------------------------------------------------------------------------------

@test "no Secret value in any response, nor in policy-server's logs (debug level)" {
  local file value form found=0
  for file in "$DIR/responses.log" "$DIR/policy-server.log" "$BATS_FILE_TMPDIR"/lifecycle-*/policy-server.log \
    "$BATS_FILE_TMPDIR"/lifecycle-*/scenario.out "$BATS_FILE_TMPDIR"/discovery/policy-server.log; do
    [[ -f $file ]] || continue
    # Left out: policy-server's own debug dump of each AdmissionReview it receives
    # (admission_review=…), which for a Secret write (the lifecycle's Secret guard steps) is the
    # Secret as the API server sent it, not anything the policy wrote.
    sed 's/\x1b\[[0-9;]*m//g' "$file" | grep -v 'policy_server::api::handlers: admission_review=' \
      >"$BATS_TEST_TMPDIR/scanned" || true
    for value in "${SECRET_VALUES[@]}"; do
      for form in "$value" "$(b64 "$value")"; do
        if grep -qF -- "$form" "$BATS_TEST_TMPDIR/scanned"; then
          echo "$file carries a Secret value ($value)"
          found=1
        fi
      done
    done
  done
  [ "$found" = 0 ]
  # The logs were there to scan, and saw the reviews.
  grep -q 'policy evaluated' "$DIR/policy-server.log"
  [ -s "$DIR/responses.log" ]
}

@test "policy-server asked the API for named objects, and the guard's DittoServer lists: one LIST per namespace, discovery once" {
  jq -r '"\(.method) \(.path) \(.query)"' "$DIR/api-requests.jsonl" | sort | uniq -c >"$BATS_TEST_TMPDIR/all"
  cat "$BATS_TEST_TMPDIR/all"
  local collection='^/apis/dittofs\.dittofs\.com/v1alpha1/namespaces/[^/]+/dittoservers$'
  # Queries only on the guard's lists: kube-rs's LIST, and its WATCH from the list's version.
  ! jq -r 'select(.query != "") | "\(.path) \(.query)"' "$DIR/api-requests.jsonl" |
    grep -v -E "${collection%$} (&limit=500|&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=[0-9]+)$"
  ! jq -r 'select(.method == "GET") | .path' "$DIR/api-requests.jsonl" |
    grep -v -E "^/apis/dittofs\.dittofs\.com/v1alpha1(/namespaces/[^/]+/dittoservers/[^/]+)?$|^/api/v1(/namespaces/[^/]+/secrets/[^/]+)?$|$collection"
  ! jq -r 'select(.method != "GET") | "\(.method) \(.path)"' "$DIR/api-requests.jsonl" |
    grep -v -x 'POST /apis/authorization.k8s.io/v1/subjectaccessreviews'
  # Never a second LIST of a namespace's DittoServers, whatever the number of writes. A WATCH is
  # opened again when the connection drops (the API's restart above), from the last version the
  # reflector saw (the list's, or a later event's), never with a new LIST.
  jq -r --arg c "$collection" 'select(.path | test($c)) | "\(.path) \(.query)"' "$DIR/api-requests.jsonl" |
    sed -E 's/&watch=true.*resourceVersion=/WATCH /; s/&limit=500$/LIST/' | sort | uniq -c
  [ -z "$(jq -r --arg c "$collection" 'select(.path | test($c)) | select(.query == "&limit=500") | .path' \
    "$DIR/api-requests.jsonl" | sort | uniq -d)" ]
  [ "$(jq -r --arg c "$collection" 'select(.path | test($c)) | .path' "$DIR/api-requests.jsonl" | sort -u | wc -l)" -ge 2 ]
  [ "$(jq -r 'select(.path == "/api/v1" and .status == 200) | .path' "$DIR/api-requests.jsonl" | wc -l)" = 1 ]
  [ "$(jq -r 'select(.path == "/apis/dittofs.dittofs.com/v1alpha1" and .status == 200) | .path' "$DIR/api-requests.jsonl" | wc -l)" = 1 ]
}
