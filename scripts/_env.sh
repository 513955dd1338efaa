# Shared by the scripts: a project virtualenv at .venv with the project installed.
# Usage: source scripts/_env.sh [extras]   (extras default to "dev")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXTRAS="${1:-dev}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=".venv/.installed-$(echo "$EXTRAS" | tr ',' '-')"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
