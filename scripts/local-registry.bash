# Sourced by the registry tests: a throwaway OCI registry (Debian's docker-registry) on loopback.
#
# start_registry DIR [USER PASSWORD]: config, storage and log go under DIR (created); with USER
#   and PASSWORD the registry demands HTTP basic auth. Sets REGISTRY (127.0.0.1:PORT).
# stop_registry DIR: stops the registry started in DIR and removes DIR.

start_registry() {
  local dir=$1 user=${2:-} password=${3:-} port auth="" pid
  mkdir -p "$dir/storage"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [[ -n $user ]]; then
    htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
    auth="auth: {htpasswd: {realm: test, path: $dir/htpasswd}}"
  fi
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}}
http: {addr: "127.0.0.1:$port", secret: throwaway-test-registry}
$auth
YAML
  # 3>&- : bats waits for every holder of its fd 3 before it finishes.
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 3>&- &
  pid=$!
  echo "$pid" >"$dir/pid"
  REGISTRY=127.0.0.1:$port
  # Up once /v2/ answers at all (200, or 401 when auth is on).
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/") =~ ^(200|401)$ ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "registry in $dir did not start:" >&2
  cat "$dir/registry.log" >&2
  return 1
}

stop_registry() {
  local dir=$1 pid
  [[ -d $dir ]] || return 0
  if [[ -f $dir/pid ]]; then
    pid=$(<"$dir/pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to go, so nothing writes into the storage while it is removed.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
