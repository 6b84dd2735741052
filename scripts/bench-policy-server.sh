#!/usr/bin/env bash
# Load test through the real policy-server (issue 16): the annotated policy and the floor module
# (tools/floor-policy, annotated here) served by the same policy-server in the same run, over
# HTTPS on loopback, with tools/fake-kube-api as the Kubernetes API. Prints p50/p99 latency and
# throughput per scenario, as ratios to the floor on the same request, checks the budgets, and
# samples policy-server's RSS over 10,000 requests. Stops by itself; every server it starts is
# stopped on exit.
#
#   POLICY_SERVER=… ANNOTATE=kwctl|policy-runner scripts/bench-policy-server.sh
#   REQUESTS (per run, 3000), CONCURRENCY (4), ROUNDS (15), MEMORY_REQUESTS (10000),
#   SERVER_CPU (the last CPU) and CLIENT_CPU (the first), or PIN=no
#
# With two CPUs or more, policy-server has one CPU to itself, and the client and the stand-in
# API another (taskset): a request handed between policy-server's threads then never waits for
# another CPU to wake, which on a 2-CPU VM moved single evaluations by hundreds of µs
# (scripts/bench-kwctl.sh measures it), and neither the client nor the stand-in takes the
# server's CPU. (The stand-in beside policy-server made every fresh DittoServer lookup wait for
# it, about 2 ms at p50, which the policy and its floors share: it flattered the ratios.)
#
# Client: ApacheBench (`ab`, Debian's apache2-utils), C, one event loop, keep-alive. Why it is not
# the bottleneck is measured, not assumed: its own CPU time per run is printed beside the
# server's, and the same client against the same server on a path that evaluates nothing
# (an unknown policy id, answered 404 after the same TLS and HTTP work) shows its ceiling.
#
# Budgets (issue 24; PASS/MISS): the fast path's p50 and p99 at most 1.05x the floor's; the inject
# path's at most 1.1x the mutating floor's (the floor making the same two lookups and answering
# with the policy's own mutated object, so that what policy-server spends on the mutation is on
# both sides). Ratios are paired: the policy's figure against its floor's in the same round (run
# seconds apart, so a machine slowed by other work slows both), then the median over rounds,
# printed with the spread of the per-round ratios ((max - min) / median).
#
# Besides the budgeted fast and inject paths, without a budget: the Secret guard (the kit's
# dittofs-s3-secret-guard) on a Secret write no DittoServer names (test_data/secret-create-unnamed.json),
# against the floor making the same list_resources_by_namespace call and accepting. policy-server
# answers lists from a reflector (one LIST and one WATCH of the stand-in per query, then its
# store), so this is the cost of the store's answer, not of an API round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
POLICY_SERVER=${POLICY_SERVER:-../shared/tools/policy-server/policy-server}
ANNOTATE=${ANNOTATE:-target/tool/policy-runner}
REQUESTS=${REQUESTS:-3000}
CONCURRENCY=${CONCURRENCY:-4}
ROUNDS=${ROUNDS:-15}
MEMORY_REQUESTS=${MEMORY_REQUESTS:-10000}
POLICY=${POLICY:-annotated-policy.wasm}
FLOOR=${FLOOR:-target/floor-policy.wasm}

# shellcheck source=scripts/policy-server.bash
source scripts/policy-server.bash
dir=$(mktemp -d)
cleanup() {
  stop_policy_server "$dir"
  stop_fake_api "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT

# The floor, annotated as policy-server requires (no README, validating only). It may look up
# what the policy looks up: served a second time with the policy's two lookups as settings, it
# measures what those lookups alone cost through policy-server.
"$ANNOTATE" annotate -m tools/floor-policy/metadata.yml -o "$dir/floor.wasm" "$FLOOR" >"$dir/annotate.log" 2>&1 ||
  { cat "$dir/annotate.log" >&2; exit 1; }

# The floor answering with the policy's own answer to pod-create.json (its mutated object), and
# the same floor carrying the same settings but accepting: against each other they split off
# what policy-server spends on the mutation itself (reading the object back, diffing it,
# encoding and sending the patch), whatever the policy does. The policy's answer comes from the
# recorded session of the same cluster; check below holds the floor's patch to the policy's.
sed 's/^mutating: false$/mutating: true/' tools/floor-policy/metadata.yml >"$dir/floor-mutating.yml"
"$ANNOTATE" annotate -m "$dir/floor-mutating.yml" -o "$dir/floor-mutating.wasm" "$FLOOR" >"$dir/annotate.log" 2>&1 ||
  { cat "$dir/annotate.log" >&2; exit 1; }
scripts/session-lookups.py test_data/session-workload-found.yml >"$dir/lookups.json"
# The guard's list as the policy makes it for a Secret of dittofs-system (kwctl's recording).
scripts/session-lookups.py test_data/session-guard-named.yml >"$dir/guard-lists.json"
"$ANNOTATE" run --request-path test_data/pod-create.json --allow-context-aware \
  --replay-host-capabilities-interactions test_data/session-workload-found.yml "$POLICY" \
  >"$dir/inject-response.json" 2>"$dir/run.log" || { cat "$dir/run.log" >&2; exit 1; }
for key in response carried; do
  scripts/mutating-floor-settings.py test_data/pod-create.json "$dir/inject-response.json" "$dir/lookups.json" "$key" \
    >"$dir/floor-$key.json"
done

# The cluster: the DittoServer and Secret of test_data/pod-create.json, fake credentials.
b64() { printf %s "$1" | base64 -w0; }
jq -n --arg ak "$(b64 FAKE-ACCESS-KEY-ID-0000)" --arg sk "$(b64 FAKE-SECRET-ACCESS-KEY-DO-NOT-USE)" \
  --arg ep "$(b64 https://s3.cubbit.eu)" '{objects: {
    "/apis/dittofs.dittofs.com/v1alpha1/namespaces/dittofs-system/dittoservers/dittofs-s3-sample":
      {apiVersion: "dittofs.dittofs.com/v1alpha1", kind: "DittoServer",
       metadata: {name: "dittofs-s3-sample", namespace: "dittofs-system"},
       spec: {s3: {credentialsSecretRef: {secretName: "dittofs-s3-credentials"}, region: "eu-west-1", bucket: "dittofs-data"}}},
    "/api/v1/namespaces/dittofs-system/secrets/dittofs-s3-credentials":
      {apiVersion: "v1", kind: "Secret", metadata: {name: "dittofs-s3-credentials", namespace: "dittofs-system"},
       data: {accessKeyId: $ak, secretAccessKey: $sk, endpoint: $ep}}}}' >"$dir/api-state.json"

ps_certificates "$dir"
start_fake_api "$dir"
target/tool/kit-policies deploy "file://$(realpath "$POLICY")" |
  jq --arg floor "file://$dir/floor.wasm" --arg mutating "file://$dir/floor-mutating.wasm" \
    --slurpfile lookups "$dir/lookups.json" --slurpfile responding "$dir/floor-response.json" \
    --slurpfile carrying "$dir/floor-carried.json" --slurpfile lists "$dir/guard-lists.json" \
    '[{apiVersion: "v1", kind: "Secret"}, {apiVersion: "dittofs.dittofs.com/v1alpha1", kind: "DittoServer"}] as $resources
    | . + {floor: {namespacedName: {Namespace: "", Name: "floor"},
    module: $floor, policyMode: "protect", allowedToMutate: false, settings: {}, hostCapabilities: ["*"]},
    "floor-lookups": {namespacedName: {Namespace: "", Name: "floor-lookups"},
    module: $floor, policyMode: "protect", allowedToMutate: false, settings: $lookups[0], hostCapabilities: ["*"],
    contextAwareResources: $resources},
    "floor-lists": {namespacedName: {Namespace: "", Name: "floor-lists"},
    module: $floor, policyMode: "protect", allowedToMutate: false, settings: $lists[0], hostCapabilities: ["*"],
    contextAwareResources: $resources},
    "floor-carrying": {namespacedName: {Namespace: "", Name: "floor-carrying"},
    module: $mutating, policyMode: "protect", allowedToMutate: true, settings: $carrying[0], hostCapabilities: ["*"],
    contextAwareResources: $resources},
    "floor-mutating": {namespacedName: {Namespace: "", Name: "floor-mutating"},
    module: $mutating, policyMode: "protect", allowedToMutate: true, settings: $responding[0], hostCapabilities: ["*"],
    contextAwareResources: $resources}}' \
    >"$dir/policies.yml"
# Info level, as deployed: debug logging would be part of what is measured.
start_policy_server "$dir" "$dir/policies.yml"
pid=$(<"$dir/policy-server.pid")
client=()
if [[ ${PIN:-yes} != no ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  cpus=$(taskset -c -p $$ | sed 's/.*: //') # the CPUs this may use: "0,1", "0-3", "2,5-7"
  SERVER_CPU=${SERVER_CPU:-$(awk -F'[,-]' '{ print $NF }' <<<"$cpus")}
  CLIENT_CPU=${CLIENT_CPU:-$(sed 's/[,-].*//' <<<"$cpus")}
  taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null
  taskset -a -p -c "$CLIENT_CPU" "$(<"$dir/api.pid")" >/dev/null
  client=(taskset -c "$CLIENT_CPU")
fi
echo "policy-server: $("$POLICY_SERVER" --version | head -n 1), $(nproc) CPUs, default workers; client: $(ab -V | head -n 1)"
echo "$(if ((${#client[@]})); then echo "policy-server on CPU $SERVER_CPU, the client and the stand-in API on CPU $CLIENT_CPU"; else echo "not pinned to CPUs"; fi)"
echo "module: $POLICY ($(stat -c %s "$POLICY") bytes); floor: $FLOOR, annotated ($(stat -c %s "$dir/floor.wasm") bytes)"

for name in pod-create pod-create-not-dittofs pod-create-injected secret-create-unnamed; do
  jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "test_data/$name.json" >"$dir/$name.review"
done

TIMEFORMAT='%R %U %S' # bash's `time`: wall, user and system seconds of the client
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# load POLICY_ID REVIEW N: one ab run; prints "p50_ms p99_ms rps ab_cpu_s server_cpu_s wall_s".
load() {
  local policy=$1 review=$2 n=$3 before after
  before=$(cpu_ticks "$pid")
  { time "${client[@]}" ab -q -k -n "$n" -c "$CONCURRENCY" -T application/json -p "$dir/$review" \
      -e "$dir/percentiles.csv" "$PS_URL/validate/$policy" >"$dir/ab.out" 2>"$dir/ab.err"; } 2>"$dir/time.out" ||
    { cat "$dir/ab.err" "$dir/ab.out" >&2; return 1; }
  after=$(cpu_ticks "$pid")
  if ! grep -q '^Failed requests: *0$' "$dir/ab.out" || grep -q '^Non-2xx responses' "$dir/ab.out"; then
    echo "errors in the run against $policy:" >&2
    cat "$dir/ab.out" >&2
    return 1
  fi
  local p50 p99 rps
  p50=$(awk -F, '$1 == 50 { print $2 }' "$dir/percentiles.csv")
  p99=$(awk -F, '$1 == 99 { print $2 }' "$dir/percentiles.csv")
  rps=$(awk '/^Requests per second:/ { print $4 }' "$dir/ab.out")
  read -r wall user sys <"$dir/time.out"
  echo "$p50 $p99 $rps $(jq -n "$user + $sys") $(jq -n "($after - $before) / $(getconf CLK_TCK)") $wall"
}

# check POLICY_ID REQUEST JQ: one review of test_data/REQUEST.json by curl, its response must
# satisfy JQ.
check() {
  post_review "$dir" "test_data/$2.json" "$1" validate
  jq -e ".response | $3" "$dir/response.json" >/dev/null ||
    { echo "unexpected response from $1: $(<"$dir/response.json")" >&2; return 1; }
}

check clusterwide-dittofs-s3-inject pod-create '.allowed and .patch != null and .warnings == null'
check clusterwide-dittofs-s3-inject pod-create-not-dittofs '.allowed and .patch == null and .warnings == null'
check clusterwide-dittofs-s3-inject pod-create-injected '.allowed and .patch == null and .warnings == null'
check floor pod-create '.allowed and .patch == null'
check floor-lookups pod-create '.allowed and .patch == null'
check floor-carrying pod-create '.allowed and .patch == null'
post_review "$dir" test_data/pod-create.json clusterwide-dittofs-s3-inject validate
policy_patch=$(jq .response.patch "$dir/response.json")
check floor-mutating pod-create ".allowed and .patch == $policy_patch"
# The guard lists the DittoServers (a failed list would warn) and accepts; the floor lists too.
check clusterwide-dittofs-s3-secret-guard secret-create-unnamed '.allowed and .warnings == null and .status == null'
check floor-lists secret-create-unnamed '.allowed and .status == null'

# Warm-up: every policy's first instances, the TLS sessions, the lookup cache.
for id in floor floor-lookups floor-carrying floor-mutating clusterwide-dittofs-s3-inject; do
  load "$id" pod-create.review 500 >/dev/null
  load "$id" pod-create-not-dittofs.review 500 >/dev/null
done
for id in floor-lists clusterwide-dittofs-s3-secret-guard; do
  load "$id" secret-create-unnamed.review 500 >/dev/null
done

# The client's ceiling: policy-server answers an unknown policy id with 404 after the same TLS
# and HTTP work, evaluating nothing (ab counts the 404s as non-2xx, so read its own figures).
{ time "${client[@]}" ab -q -k -n "$REQUESTS" -c "$CONCURRENCY" -T application/json -p "$dir/pod-create.review" \
    "$PS_URL/validate/no-such-policy" >"$dir/ab.out" 2>&1; } 2>"$dir/time.out" || true
ceiling=$(awk '/^Requests per second:/ { print $4 }' "$dir/ab.out")
read -r ceiling_wall ceiling_user ceiling_sys <"$dir/time.out"

# Scenarios, interleaved over ROUNDS so that load from other processes on the machine hits
# the policy and its floor alike; each time is the median over the rounds, each ratio the
# median of the rounds' ratios.
declare -A runs
# The third, without a budget, splits the inject path: the same two cached lookups, no patch.
scenarios=("fast|pod-create-not-dittofs.review" "inject|pod-create.review" "injected|pod-create-injected.review")
# Each pair that a budget compares runs back to back, in alternating order (floor first in odd
# rounds, policy first in even ones), so that neither side always follows the same work.
# pair RUN_A ID_A RUN_B ID_B REVIEW
pair() {
  if ((round % 2)); then
    runs[$1]+="$(load "$2" "$5" "$REQUESTS")"$'\n'
    runs[$3]+="$(load "$4" "$5" "$REQUESTS")"$'\n'
  else
    runs[$3]+="$(load "$4" "$5" "$REQUESTS")"$'\n'
    runs[$1]+="$(load "$2" "$5" "$REQUESTS")"$'\n'
  fi
}
for round in $(seq "$ROUNDS"); do
  for scenario in "${scenarios[@]}"; do
    IFS='|' read -r name review <<<"$scenario"
    pair "$name-floor" floor "$name-policy" clusterwide-dittofs-s3-inject "$review"
  done
  pair mutating-floor floor-mutating inject-policy-again clusterwide-dittofs-s3-inject pod-create.review
  pair carrying-floor floor-carrying lookups-floor floor-lookups pod-create.review
  pair guard-floor floor-lists guard-policy clusterwide-dittofs-s3-secret-guard secret-create-unnamed.review
done

# spread COLUMN <<< rows: how far the rounds lie apart, (max - min) / median, in percent.
spread() {
  awk -v c="$1" 'NF { print $c }' | sort -g |
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f%%", 100 * (v[NR] - v[1]) / m }'
}
# median COLUMN <<< rows
median() { awk -v c="$1" 'NF { print $c }' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# paired COLUMN ROWS OTHER_ROWS: the rounds' ratios ROWS / OTHER_ROWS of COLUMN (rows in round
# order), as one row per round, for median and spread.
paired() { paste <(awk -v c="$1" 'NF { print $c }' <<<"$2") <(awk -v c="$1" 'NF { print $c }' <<<"$3") | awk '{ print $1 / $2 }'; }

missed=0
verdict() { if jq -e -n "$2" >/dev/null; then echo "PASS  $1"; else echo "MISS  $1"; missed=1; fi; }
echo
echo "$REQUESTS requests per run, $CONCURRENCY concurrent clients, median of $ROUNDS interleaved rounds:"
printf '%-44s %9s %9s %9s %9s %9s %9s %7s %7s %13s\n' scenario "p50 ms" "floor" "p99 ms" "floor" "req/s" "floor" "ab cpu" "server" "p50 spread"
declare -A ratio
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r name _ <<<"$scenario"
  case $name in
    fast) label="fast path: non-DittoFS pod (no lookup)" ;;
    inject) label="inject path: DittoFS Pod, lookups cached" ;;
    injected) label="(split) injected Pod: lookups, no patch" ;;
  esac
  p=${runs[$name-policy]}
  f=${runs[$name-floor]}
  p50=$(median 1 <<<"$p"); f50=$(median 1 <<<"$f")
  p99=$(median 2 <<<"$p"); f99=$(median 2 <<<"$f")
  rps=$(median 3 <<<"$p"); frps=$(median 3 <<<"$f")
  ab_share=$(awk 'NF { c += $4; w += $6 } END { printf "%.0f%%", 100 * c / w }' <<<"$p")
  server_share=$(awk 'NF { c += $5; w += $6 } END { printf "%.0f%%", 100 * c / w }' <<<"$p")
  printf '%-44s %9.3f %9.3f %9.3f %9.3f %9.0f %9.0f %7s %7s %6s/%6s\n' "$label" "$p50" "$f50" "$p99" "$f99" "$rps" "$frps" \
    "$ab_share" "$server_share" "$(spread 1 <<<"$p")" "$(spread 1 <<<"$f")"
  ratio[$name-p50]=$(paired 1 "$p" "$f" | median 1)
  ratio[$name-p99]=$(paired 2 "$p" "$f" | median 1)
  ratio[$name-rps]=$(paired 3 "$p" "$f" | median 1)
  printf '%-44s %9s %9.3fx %9s %9.3fx %9s %8.3fx %15s\n' "  ratio to the floor (spread p50/p99)" "" "${ratio[$name-p50]}" "" "${ratio[$name-p99]}" "" "${ratio[$name-rps]}" \
    "$(paired 1 "$p" "$f" | spread 1)/$(paired 2 "$p" "$f" | spread 1)"
done
# split NAME LABEL RUNS: a floor variant's row against the floor, its ratios kept as NAME-p50/p99.
f=${runs[inject-floor]}
split() {
  ratio[$1-p50]=$(paired 1 "$3" "$f" | median 1)
  ratio[$1-p99]=$(paired 2 "$3" "$f" | median 1)
  printf '%-44s %9.3f %9.3f %9.3f %9.3f %9.0f %9.0f %7s %7s %6s/%6s\n' "$2" \
    "$(median 1 <<<"$3")" "$(median 1 <<<"$f")" "$(median 2 <<<"$3")" "$(median 2 <<<"$f")" "$(median 3 <<<"$3")" "$(median 3 <<<"$f")" \
    "" "" "$(spread 1 <<<"$3")" "$(spread 1 <<<"$f")"
  printf '%-44s %9s %9.3fx %9s %9.3fx %35s\n' "  ratio to the floor (spread p50/p99)" "" "${ratio[$1-p50]}" "" "${ratio[$1-p99]}" \
    "$(paired 1 "$3" "$f" | spread 1)/$(paired 2 "$3" "$f" | spread 1)"
}
# What the two lookups alone cost: the floor making them.
split lookups "(split) floor making the same two lookups" "${runs[lookups-floor]}"
# What policy-server spends on the mutation: the floor answering with the policy's mutated
# object, against the same floor carrying the same settings and accepting.
m=${runs[mutating-floor]}
c=${runs[carrying-floor]}
split mutating "(split) floor, lookups, the policy's mutation" "$m"
printf '%-44s %9.3f %9s %9.3f\n' "  of which the mutation (vs carrying it, ms)" \
  "$(jq -n "$(median 1 <<<"$m") - $(median 1 <<<"$c")")" "" "$(jq -n "$(median 2 <<<"$m") - $(median 2 <<<"$c")")"
# The inject path against the mutating floor: the same lookups and the same answer, no work
# (the policy's runs made back to back with the mutating floor's).
p=${runs[inject-policy-again]}
ratio[inject-mutating-p50]=$(paired 1 "$p" "$m" | median 1)
ratio[inject-mutating-p99]=$(paired 2 "$p" "$m" | median 1)
printf '%-44s %9.3f %9.3f %9.3f %9.3f %9.0f %9.0f %7s %7s %6s/%6s\n' "inject path vs the mutating floor" \
  "$(median 1 <<<"$p")" "$(median 1 <<<"$m")" "$(median 2 <<<"$p")" "$(median 2 <<<"$m")" "$(median 3 <<<"$p")" "$(median 3 <<<"$m")" \
  "" "" "$(spread 1 <<<"$p")" "$(spread 1 <<<"$m")"
printf '%-44s %9s %9.3fx %9s %9.3fx %35s\n' "  ratio to the mutating floor (spread p50/p99)" "" "${ratio[inject-mutating-p50]}" "" "${ratio[inject-mutating-p99]}" \
  "$(paired 1 "$p" "$m" | spread 1)/$(paired 2 "$p" "$m" | spread 1)"
# The Secret guard against the floor making the same list (no budget: reported).
p=${runs[guard-policy]}
f=${runs[guard-floor]}
printf '%-44s %9.3f %9.3f %9.3f %9.3f %9.0f %9.0f\n' "Secret guard: Secret no DittoServer names" \
  "$(median 1 <<<"$p")" "$(median 1 <<<"$f")" "$(median 2 <<<"$p")" "$(median 2 <<<"$f")" "$(median 3 <<<"$p")" "$(median 3 <<<"$f")"
ratio[guard-p50]=$(paired 1 "$p" "$f" | median 1)
ratio[guard-p99]=$(paired 2 "$p" "$f" | median 1)
ratio[guard-rps]=$(paired 3 "$p" "$f" | median 1)
printf '%-44s %9s %9.2fx %9s %9.2fx %9s %8.2fx\n' "  ratio to the floor making the same list" "" "${ratio[guard-p50]}" "" "${ratio[guard-p99]}" "" "${ratio[guard-rps]}"
collection=/apis/dittofs.dittofs.com/v1alpha1/namespaces/dittofs-system/dittoservers
printf '  requests for the DittoServer list over the whole run: %s LIST, %s WATCH\n' \
  "$(jq -r --arg c "$collection" 'select(.path == $c and .query == "&limit=500") | .path' "$dir/api-requests.jsonl" | wc -l)" \
  "$(jq -r --arg c "$collection" 'select(.path == $c and (.query | contains("watch=true"))) | .path' "$dir/api-requests.jsonl" | wc -l)"
printf 'client ceiling (same TLS and HTTP, no evaluation): %.0f req/s; ab used %.0f%% of one CPU there\n' \
  "$ceiling" "$(jq -n "100 * ($ceiling_user + $ceiling_sys) / $ceiling_wall")"

# Memory: RSS after each tenth of MEMORY_REQUESTS requests on the inject path.
echo
step=$((MEMORY_REQUESTS / 10))
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
samples=()
for _ in $(seq 10); do
  load clusterwide-dittofs-s3-inject pod-create.review "$step" >/dev/null
  samples+=("$(rss)")
done
echo "policy-server RSS (KiB) after each $step of $MEMORY_REQUESTS inject-path requests: ${samples[*]}"
first_half=$(printf '%s\n' "${samples[@]:1:4}" | sort -n | tail -n 1)
second_half=$(printf '%s\n' "${samples[@]:5:5}" | sort -n | tail -n 1)

# Nothing went wrong on the way: no error in policy-server's log, still the same answers.
check clusterwide-dittofs-s3-inject pod-create '.allowed and .patch != null and .warnings == null'
errors=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/policy-server.log" | grep -c -E '^[^ ]+ +ERROR' || true)

echo
verdict "fast path p50 <= 1.05x floor: $(printf %.2f "${ratio[fast-p50]}")x" "${ratio[fast-p50]} <= 1.05"
verdict "fast path p99 <= 1.05x floor: $(printf %.2f "${ratio[fast-p99]}")x" "${ratio[fast-p99]} <= 1.05"
verdict "inject path p50 <= 1.1x the mutating floor: $(printf %.2f "${ratio[inject-mutating-p50]}")x" "${ratio[inject-mutating-p50]} <= 1.1"
verdict "inject path p99 <= 1.1x the mutating floor: $(printf %.2f "${ratio[inject-mutating-p99]}")x" "${ratio[inject-mutating-p99]} <= 1.1"
echo "      (the floor making the policy's two lookups alone: p50 $(printf %.2f "${ratio[lookups-p50]}")x, p99 $(printf %.2f "${ratio[lookups-p99]}")x the floor)"
echo "      (the floor making them and answering with the policy's mutated object: p50 $(printf %.2f "${ratio[mutating-p50]}")x, p99 $(printf %.2f "${ratio[mutating-p99]}")x the floor)"
verdict "no failed request, no non-2xx answer, no ERROR in policy-server's log: $errors errors" "$errors == 0"
# Flat: the highest RSS of the last five tenths within 2 MiB of the highest of tenths 2-5 (the
# first tenth still warms up).
verdict "memory flat over $MEMORY_REQUESTS requests: max RSS $((first_half / 1024)) MiB (tenths 2-5), $((second_half / 1024)) MiB (6-10)" \
  "$second_half - $first_half <= 2048"
exit "$missed"
