#!/usr/bin/env bash
# Differential test (issue 13, item 2): the same inputs through the bundled runner and the real
# kwctl, each on the module it annotated itself from the same policy.wasm (annotated here, in
# one run, so both carry the same build); the two must agree on everything the policy's caller
# sees. Where they disagree, kwctl is right and the runner is fixed.
#
#   RUNNER=target/tool/policy-runner KWCTL=../shared/tools/kwctl/kwctl POLICY=policy.wasm \
#     scripts/differential.sh [FILTER]
#
# A pair is a request, a replay session, settings, whether lookups are granted
# (--allow-context-aware) and whether RUST_BACKTRACE=1 is set. Compared for each pair:
#   - the exit code;
#   - exit 0: the AdmissionResponse printed (jq -S: verdict, status message and code, patch
#     type and patch, warnings, audit annotations, uid), byte for byte after key sorting;
#   - otherwise: the tool's `Error: …` line on stderr (the refusal: a request kwctl refuses,
#     invalid settings), exactly, but for the cause after `failed to infer config:` (lookups
#     granted without a session: kwctl's Kubernetes client fails, the runner has none).
# The pairs (see `pairs` below): every DittoServer request with every DittoServer session
# (session-empty, session-secret-*, session-access-*, session-update-*), every workload request
# with every workload session (session-empty, session-workload-*) in inject and verify mode, every
# Secret write with every list session (session-empty, session-guard-*), the
# hostile cases as test_data/hostile/cases.tsv pairs them, settings variants and invalid
# settings, lookups not granted, AdmissionReview-wrapped requests, and host errors with
# RUST_BACKTRACE=1. FILTER (a substring) keeps only the pairs whose description contains it.
# JOBS (default 12) pairs run at once.
# Ends with `differential: N pairs compared, N passed, N failed`; exit 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER=${RUNNER:-target/tool/policy-runner}
KWCTL=${KWCTL:-$(command -v kwctl || true)}
POLICY=${POLICY:-policy.wasm}
USAGE=${USAGE:-README.md} # the usage documentation the module embeds (the whole README)
JOBS=${JOBS:-12}
FILTER=${1:-}

if [[ -z $KWCTL || ! -x $KWCTL ]]; then
  echo "differential: kwctl not found (../shared/tools/kwctl/kwctl or PATH): skipped, nothing compared"
  exit 0
fi
for file in "$RUNNER" "$POLICY"; do
  [[ -e $file ]] || { echo "differential: $file is missing (make $file)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Each tool annotates the same module (kwctl rewrites the module as it annotates; the runner
# appends its section), as make e2e-tests does.
cp "$POLICY" "$work/policy.wasm"
RUNNER_MODULE=$work/runner-annotated.wasm KWCTL_MODULE=$work/kwctl-annotated.wasm
"$RUNNER" annotate -m metadata.yml -u "$USAGE" -o "$RUNNER_MODULE" "$work/policy.wasm"
"$KWCTL" annotate -m metadata.yml -u "$USAGE" -o "$KWCTL_MODULE" "$work/policy.wasm" 2>"$work/kwctl-annotate.log" \
  || { cat "$work/kwctl-annotate.log" >&2; exit 2; }

# Inputs derived from test_data: requests wrapped in an AdmissionReview, as the API server sends them.
for request in dittoserver-sample-create pod-create statefulset-update-injected; do
  jq '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' \
    "test_data/$request.json" >"$work/review-$request.json"
done

# --- the pairs: description <TAB> request <TAB> session|- <TAB> settings|- <TAB> grant|nogrant <TAB> backtrace 0|1
pairs() {
  local request session settings line expected
  local ditto_requests=(test_data/dittoserver-*.json)
  # The route cases (test_data/route-cases.tsv) differ only in their dittofs container: paired
  # with the two sessions that decide how routes are weighed, not with every session.
  local workload_requests=() route_requests=(test_data/pod-route-*.json)
  for request in test_data/pod-*.json test_data/statefulset-*.json; do
    [[ $request == test_data/pod-route-* ]] || workload_requests+=("$request")
  done
  local ditto_sessions=(test_data/session-empty.yml test_data/session-secret-*.yml
    test_data/session-access-*.yml test_data/session-update-*.yml test_data/session-developer-*.yml
    test_data/session-groups-*.yml)
  local workload_sessions=(test_data/session-empty.yml test_data/session-workload-*.yml)
  for request in "${ditto_requests[@]}"; do
    for session in "${ditto_sessions[@]}"; do
      printf '%s\t%s\t%s\t-\tgrant\t0\n' "${request#test_data/} + ${session#test_data/}" "$request" "$session"
    done
  done
  for request in "${workload_requests[@]}"; do
    for session in "${workload_sessions[@]}"; do
      for settings in '-' '{"workloads":"verify"}'; do
        printf '%s\t%s\t%s\t%s\tgrant\t0\n' "${request#test_data/} + ${session#test_data/} + $settings" \
          "$request" "$session" "$settings"
      done
    done
  done
  # The Secret guard: every Secret write with every list session, by secretGuard and endpoint rules.
  for request in test_data/secret-*.json; do
    for session in test_data/session-empty.yml test_data/session-guard-*.yml; do
      for settings in '-' '{"secretGuard":"warn"}' '{"allowedEndpointHosts":["*.cubbit.eu"]}'; do
        printf '%s\t%s\t%s\t%s\tgrant\t0\n' "${request#test_data/} + ${session#test_data/} + $settings" \
          "$request" "$session" "$settings"
      done
    done
  done
  for request in "${route_requests[@]}"; do
    for session in test_data/session-workload-found.yml test_data/session-workload-ditto-missing.yml; do
      for settings in '-' '{"workloads":"verify"}' '{"onCredentialRoute":"warn"}'; do
        printf '%s\t%s\t%s\t%s\tgrant\t0\n' "${request#test_data/} + ${session#test_data/} + $settings" \
          "$request" "$session" "$settings"
      done
    done
  done
  while IFS=$'\t' read -r request session expected; do
    [[ -z $request || $request == \#* ]] && continue
    printf '%s\t%s\t%s\t-\tgrant\t0\n' "$request + $session (hostile: $expected)" \
      "test_data/$request" "test_data/$session"
  done <test_data/hostile/cases.tsv
  # Settings that change what the DittoServer path does with each lookup answer.
  for settings in '{"secretCheck":"reject"}' '{"secretCheck":"skip","secretAccessCheck":"skip"}' \
    '{"secretAccessCheck":"warn","allowInsecureEndpoint":true}' \
    '{"allowedEndpointHosts":["*.cubbit.eu"],"allowedRegions":["eu-west-1"]}' \
    '{"allowedRegions":[],"allowedEndpointHosts":null}'; do
    for session in "${ditto_sessions[@]}"; do
      printf '%s\t%s\t%s\t%s\tgrant\t0\n' "dittoserver-sample-create.json + ${session#test_data/} + $settings" \
        test_data/dittoserver-sample-create.json "$session" "$settings"
    done
  done
  # ... and the workload path.
  for settings in '{"onEnvConflict":"overwrite"}' '{"containerName":"server","hashAnnotation":"example.com/h"}' \
    '{"onCredentialRoute":"warn"}' '{"workloads":"verify","onCredentialRoute":"warn"}' \
    '{"workloads":"verify","secretCheck":"reject","allowedEndpointHosts":["s3.cubbit.eu"]}'; do
    for request in test_data/pod-create.json test_data/pod-create-conflict.json test_data/statefulset-update-injected.json \
      test_data/pod-create-envfrom.json test_data/pod-create-injected-envfrom.json; do
      for session in test_data/session-workload-found.yml test_data/session-workload-rotated.yml \
        test_data/session-workload-secret-missing.yml; do
        printf '%s\t%s\t%s\t%s\tgrant\t0\n' "${request#test_data/} + ${session#test_data/} + $settings" \
          "$request" "$session" "$settings"
      done
    done
  done
  # Settings kwctl refuses before any evaluation (validate_settings, or not an object at all).
  for settings in '{"secretCheck":"maybe"}' '{"unknownField":1}' '{"allowedRegions":"eu-west-1"}' \
    '{"allowedEndpointHosts":["https://s3.cubbit.eu"]}' '{"containerName":""}' '"text"' '[1]' 'null' \
    'not json'; do
    for request in test_data/dittoserver-sample-create.json test_data/pod-create-not-dittofs.json; do
      printf '%s\t%s\t%s\t%s\tgrant\t0\n' "${request#test_data/} + session-secret-found.yml + $settings" \
        "$request" test_data/session-secret-found.yml "$settings"
    done
  done
  # Lookups not granted (no --allow-context-aware): the host refuses every lookup itself.
  for line in dittoserver-sample-create.json:session-secret-found.yml \
    dittoserver-sample-create.json:session-access-allowed.yml pod-create.json:session-workload-found.yml \
    statefulset-create.json:session-workload-found.yml \
    statefulset-update-reconciled.json:session-workload-found.yml \
    pod-create-injected.json:session-workload-found.yml; do
    request=${line%%:*} session=${line#*:}
    for settings in '-' '{"workloads":"verify"}'; do
      printf '%s\t%s\t%s\t%s\tnogrant\t0\n' "$request + $session + $settings, lookups not granted" \
        "test_data/$request" "test_data/$session" "$settings"
    done
  done
  # No replay session at all: kwctl then has no host to ask (no cluster here).
  printf '%s\t%s\t-\t-\tgrant\t0\n' "pod-create-not-dittofs.json, no session" test_data/pod-create-not-dittofs.json
  printf '%s\t%s\t-\t-\tnogrant\t0\n' "dittoserver-no-s3.json, no session, not granted" test_data/dittoserver-no-s3.json
  # AdmissionReview-wrapped requests.
  printf '%s\t%s\t%s\t-\tgrant\t0\n' \
    "AdmissionReview dittoserver-sample-create + session-secret-found.yml" "$work/review-dittoserver-sample-create.json" test_data/session-secret-found.yml \
    "AdmissionReview pod-create + session-workload-found.yml" "$work/review-pod-create.json" test_data/session-workload-found.yml \
    "AdmissionReview statefulset-update-injected + session-workload-rotated.yml" "$work/review-statefulset-update-injected.json" test_data/session-workload-rotated.yml
  # Host errors with RUST_BACKTRACE=1: kwctl appends a stack backtrace to the text it hands the policy.
  for session in "${ditto_sessions[@]}"; do
    printf '%s\t%s\t%s\t-\tgrant\t1\n' "dittoserver-sample-create.json + ${session#test_data/}, RUST_BACKTRACE=1" \
      test_data/dittoserver-sample-create.json "$session"
  done
  for request in test_data/pod-create.json test_data/statefulset-update-reconciled.json; do
    for session in "${workload_sessions[@]}"; do
      printf '%s\t%s\t%s\t-\tgrant\t1\n' "${request#test_data/} + ${session#test_data/}, RUST_BACKTRACE=1" \
        "$request" "$session"
    done
  done
}

pairs | awk -F'\t' -v filter="$FILTER" 'index($1, filter)' >"$work/pairs.tsv"
total=$(wc -l <"$work/pairs.tsv")
((total > 0)) || { echo "differential: no pair matches '$FILTER'" >&2; exit 2; }

# run_pair N: runs pair N (line N of pairs.tsv) through both tools and writes its verdict.
run_pair() {
  local n=$1 description request session settings grant backtrace dir tool binary module
  IFS=$'\t' read -r description request session settings grant backtrace < <(sed -n "${n}p" "$work/pairs.tsv")
  dir="$work/$n"
  mkdir -p "$dir"
  for tool in runner kwctl; do
    if [[ $tool == runner ]]; then binary=$RUNNER module=$RUNNER_MODULE; else binary=$KWCTL module=$KWCTL_MODULE; fi
    local args=(run --request-path "$request")
    # kwctl would fetch Sigstore's trust root first (about 1 s of retries offline); replaying a
    # session it verifies nothing, so it gets an empty one (without a session it builds a
    # verifier, which an empty root fails).
    [[ $tool == kwctl && $session != - ]] && args+=(--sigstore-trust-config test_data/sigstore-offline-trust-config.json)
    [[ $settings != - ]] && args+=(--settings-json "$settings")
    [[ $grant == grant ]] && args+=(--allow-context-aware)
    [[ $session != - ]] && args+=(--replay-host-capabilities-interactions "$session")
    local status=0
    if [[ $backtrace == 1 ]]; then
      RUST_BACKTRACE=1 "$binary" "${args[@]}" "$module" >"$dir/$tool.out" 2>"$dir/$tool.err" </dev/null || status=$?
    else
      env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$binary" "${args[@]}" "$module" \
        >"$dir/$tool.out" 2>"$dir/$tool.err" </dev/null || status=$?
    fi
    echo "$status" >"$dir/$tool.rc"
    if ((status == 0)); then
      tail -n 1 "$dir/$tool.out" | jq -S . >"$dir/$tool.normal" 2>&1 || echo "unreadable output" >>"$dir/$tool.normal"
    else
      # The refusal: the tool's error line, without kwctl's colour codes, and without the cause
      # of a failed cluster connection (kwctl's Kubernetes client; the runner has none).
      sed 's/\x1b\[[0-9;]*m//g' "$dir/$tool.err" | grep -m 1 '^Error: ' \
        | sed 's/^\(Error: failed to infer config\): .*/\1: …/' >"$dir/$tool.normal" \
        || echo "(no Error: line)" >"$dir/$tool.normal"
    fi
  done
  {
    echo "$description"
    echo "    request $request, session $session, settings $settings, lookups ${grant/nogrant/not granted}, RUST_BACKTRACE=$backtrace"
  } >"$dir/what"
  if [[ $(<"$dir/runner.rc") != $(<"$dir/kwctl.rc") ]]; then
    echo "exit code: runner $(<"$dir/runner.rc"), kwctl $(<"$dir/kwctl.rc")" >"$dir/failed"
  elif ! cmp -s "$dir/runner.normal" "$dir/kwctl.normal"; then
    diff -u --label runner --label kwctl "$dir/runner.normal" "$dir/kwctl.normal" >"$dir/failed" || true
    # A patch differs: show both decoded.
    for tool in runner kwctl; do
      if jq -e '.patch' "$dir/$tool.normal" >/dev/null 2>&1; then
        echo "$tool's patch: $(jq -r .patch "$dir/$tool.normal" | base64 -d | jq -c .)" >>"$dir/failed"
      fi
    done
  fi
  touch "$dir/done"
}
export -f run_pair
export work RUNNER RUNNER_MODULE KWCTL KWCTL_MODULE

echo "differential: $total pairs, each through $RUNNER and $("$KWCTL" --version 2>/dev/null | head -n 1) ($KWCTL)," \
  "on $POLICY annotated by each, $JOBS at a time"
start=$SECONDS
seq "$total" | xargs -P "$JOBS" -n 1 bash -c 'run_pair "$1"' run_pair

passed=0 failed=0
for n in $(seq "$total"); do
  if [[ ! -e $work/$n/done ]]; then
    failed=$((failed + 1))
    echo "DIFFERS: $(sed -n "${n}p" "$work/pairs.tsv" | cut -f1): did not finish"
  elif [[ -e $work/$n/failed ]]; then
    failed=$((failed + 1))
    echo "DIFFERS: $(cat "$work/$n/what")"
    sed 's/^/    /' "$work/$n/failed"
  else
    passed=$((passed + 1))
  fi
done
# What the agreeing pairs covered, by the runner's outcome.
for n in $(seq "$total"); do
  [[ -e $work/$n/done ]] || continue
  if [[ $(<"$work/$n/runner.rc") != 0 ]]; then echo refused
  else jq -r 'if .allowed then (if .patch then "accepted with a patch" else "accepted" end) else "rejected" end
              + (if .warnings then ", with warnings" else "" end)' "$work/$n/runner.normal" 2>/dev/null || echo unreadable
  fi
done | sort | uniq -c | sed 's/^ */  /' | awk '{ print "differential: " $0 }'
echo "differential: $total pairs compared in $((SECONDS - start)) s, $passed passed, $failed failed"
((failed == 0))
