# Sourced by the registry tests: a throwaway OCI registry (Debian's docker-registry) on loopback.
#
# start_registry DIR [--auth USER PASSWORD] [--tls]: config, storage and log go under DIR (created).
#   --auth demands HTTP basic auth; --tls serves HTTPS with a certificate for 127.0.0.1 signed by a
#   throwaway CA, written to DIR/ca.pem. Sets REGISTRY (127.0.0.1:PORT).
# stop_registry DIR: stops the registry started in DIR and removes DIR.
# free_port: a loopback TCP port nothing listens on (yet).

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_registry() {
  local dir=$1 auth="" tls="" scheme=http port pid
  shift
  mkdir -p "$dir/storage"
  while (($#)); do
    case $1 in
      --auth)
        htpasswd -Bbn "$2" "$3" >"$dir/htpasswd"
        auth="auth: {htpasswd: {realm: test, path: $dir/htpasswd}}"
        shift 3 ;;
      --tls)
        make_certificates "$dir"
        tls=", tls: {certificate: $dir/server.pem, key: $dir/server.key}"
        scheme=https
        shift ;;
      *) echo "start_registry: unknown option $1" >&2; return 2 ;;
    esac
  done
  port=$(free_port)
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}}
http: {addr: "127.0.0.1:$port", secret: throwaway-test-registry$tls}
$auth
YAML
  # 3>&- : bats waits for every holder of its fd 3 before it finishes.
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 3>&- &
  pid=$!
  echo "$pid" >"$dir/pid"
  REGISTRY=127.0.0.1:$port
  # Up once /v2/ answers at all (200, or 401 when auth is on).
  for _ in $(seq 100); do
    [[ $(curl -s --cacert "$dir/ca.pem" -o /dev/null -w '%{http_code}' "$scheme://$REGISTRY/v2/") =~ ^(200|401)$ ]] &&
      return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "registry in $dir did not start:" >&2
  cat "$dir/registry.log" >&2
  return 1
}

# make_certificates DIR: a one-day CA (DIR/ca.pem) and a server certificate for 127.0.0.1 it signed.
make_certificates() {
  local dir=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=throwaway test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
    "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
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
