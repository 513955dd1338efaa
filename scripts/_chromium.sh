# Debian's chromium and chromium-driver for the dashboard's browser tests (tests/ui):
# installed with apt when missing and we are root; the tests fail, naming them, otherwise.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (Debian packages)..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "chromium or chromedriver is missing: apt-get install chromium chromium-driver" >&2
  fi
}
