"""Run the `flowcraft` command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODERATION = ROOT / "examples" / "moderation" / "graph.json"
REDIS_URL = os.environ.get("FLOWCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6399/0")


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


@contextlib.contextmanager
def running_worker(space: list[str], registry: str, *args: str, cwd: Path = ROOT) -> Iterator[subprocess.Popen[str]]:
    """A `flowcraft worker` process with ``--registry registry``, stopped with SIGTERM afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowcraft", "worker", "--registry", registry, *space, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = ""
    try:
        while "worker ready" not in seen:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, f"the worker did not start: {seen}"
            seen += line
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
