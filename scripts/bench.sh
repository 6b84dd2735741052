#!/usr/bin/env bash
# Benchmarks the annotated policy against the floor module (tools/floor-policy: parses the same
# request, then accepts), in the same run, on the bundled runner, and checks issue 7's budgets.
# Times are medians; ratios are policy / floor for the same request and mode.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER=${RUNNER:-target/tool/policy-runner}
SAMPLES=${SAMPLES:-300}
POLICY=annotated-policy.wasm
FLOOR=target/floor-policy.wasm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Generated inputs: a 1 MiB Secret (one unrelated 1 MiB entry beside the credentials) and a pod
# with 200 containers (199 sidecars, then dittofs).
python3 - "$work" <<'PY'
import base64, json, sys, pathlib
work = pathlib.Path(sys.argv[1])
session = pathlib.Path("test_data/session-workload-found.yml").read_text()
good = session.split("payload: '")[-1].rsplit("'", 1)[0]
secret = json.loads(good)
secret["data"]["bulk"] = base64.b64encode(b"x" * (1024 * 1024)).decode()
prefix = session.rsplit("payload: '", 1)[0]
(work / "session-1mib-secret.yml").write_text(prefix + "payload: '" + json.dumps(secret, separators=(",", ":")) + "'\n")
pod = json.loads(pathlib.Path("test_data/pod-create.json").read_text())
dittofs = pod["object"]["spec"]["containers"][0]
sidecars = [{"name": f"sidecar-{i}", "image": "busybox:1.36", "env": [{"name": "INDEX", "value": str(i)}]} for i in range(199)]
pod["object"]["spec"]["containers"] = sidecars + [dittofs]
(work / "pod-200-containers.json").write_text(json.dumps(pod))
PY

# name | request | session
scenarios=(
  "fast path: non-DittoFS pod (no lookup)|test_data/pod-create-not-dittofs.json|test_data/session-empty.yml"
  "DittoFS Pod CREATE, two lookups, injection|test_data/pod-create.json|test_data/session-workload-found.yml"
  "StatefulSet UPDATE (operator reconcile)|test_data/statefulset-update-reconciled.json|test_data/session-workload-found.yml"
  "DittoServer CREATE with the Secret check|test_data/dittoserver-sample-create.json|test_data/session-secret-found.yml"
  "DittoFS Pod CREATE, 1 MiB Secret|test_data/pod-create.json|$work/session-1mib-secret.yml"
  "DittoFS Pod CREATE, 200 containers|$work/pod-200-containers.json|test_data/session-workload-found.yml"
)

bench() { # module request [session]
  local args=(bench --json --num-samples "$SAMPLES" --request-path "$2")
  [[ -n ${3:-} ]] && args+=(--allow-context-aware --replay-host-capabilities-interactions "$3")
  "$RUNNER" "${args[@]}" "$1" 2>/dev/null
}
median() { jq -r --arg mode "$1" 'select(.mode == $mode) | .median_us'; }

printf '%-46s %12s %12s %7s %12s %12s %7s\n' scenario "fresh µs" "floor µs" ratio "warm µs" "floor µs" ratio
results=()
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r name request session <<<"$scenario"
  policy_json=$(bench "$POLICY" "$request" "$session")
  floor_json=$(bench "$FLOOR" "$request")
  pf=$(median fresh-instance <<<"$policy_json"); ff=$(median fresh-instance <<<"$floor_json")
  pw=$(median warm-instance <<<"$policy_json"); fw=$(median warm-instance <<<"$floor_json")
  rf=$(jq -n "$pf / $ff"); rw=$(jq -n "$pw / $fw")
  printf '%-46s %12.1f %12.1f %6.2fx %12.1f %12.1f %6.2fx\n' "$name" "$pf" "$ff" "$rf" "$pw" "$fw" "$rw"
  results+=("$pf|$rf")
done
instantiate=$(bench "$POLICY" test_data/pod-create-not-dittofs.json test_data/session-empty.yml | median instantiate-only)
floor_instantiate=$(bench "$FLOOR" test_data/pod-create-not-dittofs.json | median instantiate-only)
size=$(stat -c %s "$POLICY")
echo
echo "annotated module: $size bytes; floor: $(stat -c %s "$FLOOR") bytes"
printf 'instantiation: %.1f µs (floor %.1f µs, %.2fx)\n' "$instantiate" "$floor_instantiate" "$(jq -n "$instantiate / $floor_instantiate")"

# Budgets (fresh instance per request, as policy-server evaluates).
verdict() { if jq -e -n "$2" >/dev/null; then echo "PASS  $1"; else echo "MISS  $1"; missed=1; fi; }
missed=0
echo
IFS='|' read -r _ fast_ratio <<<"${results[0]}"
IFS='|' read -r _ inject_ratio <<<"${results[1]}"
IFS='|' read -r mib_us _ <<<"${results[4]}"
IFS='|' read -r many_us _ <<<"${results[5]}"
verdict "fast path <= 1.15x floor (fresh): $(printf %.2f "$fast_ratio")x" "$fast_ratio <= 1.15"
verdict "Pod injection with two lookups <= 3x floor (fresh): $(printf %.2f "$inject_ratio")x" "$inject_ratio <= 3"
verdict "1 MiB Secret <= 5 ms: $(printf %.2f "$(jq -n "$mib_us / 1000")") ms" "$mib_us <= 5000"
verdict "200-container pod <= 5 ms: $(printf %.2f "$(jq -n "$many_us / 1000")") ms" "$many_us <= 5000"
verdict "annotated module <= 500 KB: $((size / 1000)) KB" "$size <= 500000"
exit "$missed"
