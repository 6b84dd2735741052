# Sourced by e2e-policy-server.bats and scripts/bench-policy-server.sh: the real policy-server
# (POLICY_SERVER) over HTTPS on loopback, with tools/fake-kube-api as its Kubernetes API.
#
# Everything lives in one directory DIR (throwaway CA and certificate, kubeconfig, the fake API's
# state and request log, policy-server's log, pid files):
#   ps_certificates DIR                     a CA (DIR/ca.pem) and a server certificate for 127.0.0.1
#   start_fake_api DIR [PORT]               the stand-in API (a free port, or PORT to come back on
#                                           the same one); writes DIR/kubeconfig; sets FAKE_API
#   stop_fake_api DIR                       stops it (its state and log stay)
#   api_state DIR < JSON                    replaces the API's state (see fake_kube_api.py)
#   start_policy_server DIR POLICIES [ARGS…]  policy-server with POLICIES (a policies.yml) and the
#                                           kubeconfig, HTTPS; sets PS_URL; log in DIR/policy-server.log
#   stop_policy_server DIR                  stops it
#   post_review DIR REQUEST POLICY_ID [validate|audit]
#                                           wraps REQUEST (a bare AdmissionRequest file) in an
#                                           AdmissionReview v1, posts it, verifying the certificate
#                                           against the CA; the body goes to DIR/response.json, the
#                                           HTTP status to DIR/response.status
# Every wait is bounded; a server that does not come up is reported with its log.

# shellcheck source=scripts/local-registry.bash
source "$(dirname "${BASH_SOURCE[0]}")/local-registry.bash" # free_port, make_certificates

FAKE_KUBE_API=${FAKE_KUBE_API:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/fake-kube-api/fake_kube_api.py}
POLICY_SERVER=${POLICY_SERVER:-policy-server}

ps_certificates() {
  make_certificates "$1"
}

start_fake_api() {
  local dir=$1 port=${2:-0} pid
  [[ -f $dir/api-state.json ]] || echo '{}' >"$dir/api-state.json"
  rm -f "$dir/api.port"
  # 3>&- : bats waits for every holder of its fd 3 before it finishes.
  python3 "$FAKE_KUBE_API" --state "$dir/api-state.json" --log "$dir/api-requests.jsonl" \
    --port-file "$dir/api.port" --port "$port" >>"$dir/api.stderr" 2>&1 3>&- &
  pid=$!
  echo "$pid" >"$dir/api.pid"
  for _ in $(seq 100); do
    if [[ -s $dir/api.port ]]; then
      FAKE_API=http://127.0.0.1:$(<"$dir/api.port")
      cat >"$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "$FAKE_API"}}]
users: [{name: fake, user: {token: fake-token-for-tests}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
YAML
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the fake Kubernetes API did not start:" >&2
  cat "$dir/api.stderr" >&2
  return 1
}

# stop_pid FILE: stops the process whose pid FILE holds (ours), waiting for it to go.
stop_pid() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  rm -f "$file"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop_fake_api() {
  stop_pid "$1/api.pid"
}

api_state() {
  local dir=$1
  cat >"$dir/api-state.json.tmp"
  mv "$dir/api-state.json.tmp" "$dir/api-state.json"
}

start_policy_server() {
  local dir=$1 policies=$2 port probe pid
  shift 2
  port=$(free_port)
  probe=$(free_port)
  mkdir -p "$dir/downloads" "$dir/sigstore"
  KUBECONFIG=$dir/kubeconfig "$POLICY_SERVER" --addr 127.0.0.1 --port "$port" \
    --readiness-probe-port "$probe" --policies "$policies" \
    --policies-download-dir "$dir/downloads" --sigstore-cache-dir "$dir/sigstore" \
    --cert-file "$dir/server.pem" --key-file "$dir/server.key" --log-no-color "$@" \
    >>"$dir/policy-server.log" 2>&1 3>&- &
  pid=$!
  echo "$pid" >"$dir/policy-server.pid"
  PS_URL=https://127.0.0.1:$port
  # Ready once the readiness probe answers 200: every policy is compiled by then.
  for _ in $(seq 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$probe/readiness") == 200 ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "policy-server did not become ready:" >&2
  tail -n 30 "$dir/policy-server.log" >&2
  return 1
}

stop_policy_server() {
  stop_pid "$1/policy-server.pid"
}

post_review() {
  local dir=$1 request=$2 policy=$3 endpoint=${4:-validate}
  jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "$request" >"$dir/review.json"
  curl -sS --max-time 30 --cacert "$dir/ca.pem" -H 'Content-Type: application/json' \
    --data-binary @"$dir/review.json" -o "$dir/response.json" -w '%{http_code}' \
    "$PS_URL/$endpoint/$policy" >"$dir/response.status"
}
