# Start a private redis-server on loopback for tests; it is stopped when the shell exits.
start_test_redis() {
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
  trap 'stop_test_redis' EXIT
}

stop_test_redis() {
  if [ -n "${REDIS_TEST_DIR:-}" ] && [ -f "$REDIS_TEST_DIR/redis.pid" ]; then
    kill "$(cat "$REDIS_TEST_DIR/redis.pid")" 2>/dev/null || true
  fi
}
