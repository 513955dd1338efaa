# Start a private redis-server on loopback for tests; it is stopped when the shell exits.
ensure_redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing redis-server (Debian package)..."
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      echo "redis-server is missing: install it (e.g. apt-get install redis-server) and re-run" >&2
      return 1
    fi
  fi
}

start_test_redis() {
  ensure_redis_server || return 1
  local port="${FLOWCRAFT_TEST_REDIS_PORT:-6399}"
  REDIS_TEST_DIR="$(mktemp -d)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$REDIS_TEST_DIR" --daemonize yes --pidfile "$REDIS_TEST_DIR/redis.pid" \
    --logfile "$REDIS_TEST_DIR/redis.log" >/dev/null
  for _ in $(seq 1 50); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null
  export FLOWCRAFT_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  export FLOWCRAFT_TEST_REDIS_PORT="$port"
  trap 'stop_test_servers' EXIT
}

stop_test_redis() {
  if [ -n "${REDIS_TEST_DIR:-}" ] && [ -f "$REDIS_TEST_DIR/redis.pid" ]; then
    kill "$(cat "$REDIS_TEST_DIR/redis.pid")" 2>/dev/null || true
  fi
}

# Start a private Redis Cluster of FLOWCRAFT_TEST_CLUSTER_MASTERS (3) masters, no replicas, on
# loopback ports FLOWCRAFT_TEST_CLUSTER_PORT (7001) and up, for the cluster contract tests;
# stopped when the shell exits (with the single server, if one was started). Exports
# FLOWCRAFT_TEST_CLUSTER_URL (one node's URL: the client discovers the others).
start_test_cluster() {
  ensure_redis_server || return 1
  local base="${FLOWCRAFT_TEST_CLUSTER_PORT:-7001}" masters="${FLOWCRAFT_TEST_CLUSTER_MASTERS:-3}"
  REDIS_CLUSTER_DIR="$(mktemp -d)"
  local nodes=() port
  for i in $(seq 0 $((masters - 1))); do
    port=$((base + i))
    mkdir -p "$REDIS_CLUSTER_DIR/$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file "$REDIS_CLUSTER_DIR/$port/nodes.conf" \
      --cluster-node-timeout 5000 --dir "$REDIS_CLUSTER_DIR/$port" --daemonize yes \
      --pidfile "$REDIS_CLUSTER_DIR/$port/redis.pid" --logfile "$REDIS_CLUSTER_DIR/$port/redis.log" >/dev/null
    nodes+=("127.0.0.1:$port")
  done
  for node in "${nodes[@]}"; do
    for _ in $(seq 1 50); do
      if redis-cli -p "${node##*:}" ping >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$REDIS_CLUSTER_DIR/create.log" 2>&1 || {
    cat "$REDIS_CLUSTER_DIR/create.log" >&2
    return 1
  }
  for _ in $(seq 1 100); do
    if redis-cli -p "$base" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then break; fi
    sleep 0.1
  done
  redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' || {
    echo "the test Redis Cluster on ports $base.. did not become ready" >&2
    return 1
  }
  export FLOWCRAFT_TEST_CLUSTER_URL="redis://127.0.0.1:$base/0"
  trap 'stop_test_servers' EXIT
}

stop_test_cluster() {
  if [ -n "${REDIS_CLUSTER_DIR:-}" ]; then
    for pidfile in "$REDIS_CLUSTER_DIR"/*/redis.pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
  fi
}

stop_test_servers() {
  stop_test_redis
  stop_test_cluster
}
