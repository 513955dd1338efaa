"""Run the `flowcraft` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODERATION = ROOT / "examples" / "moderation" / "graph.json"


def flowcraft(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("FLOWCRAFT_LLM_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flowcraft", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(result: Any) -> str:
    """The single stderr line of a failed command (and no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines, "expected an error message on stderr"
    assert lines[-1].startswith("flowcraft: error: ")
    return lines[-1]


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path
