"""The examples that need scratch space clean it up: no `flowcraft-*` folder is left in
the temporary directory after a run (issue 10 item 17)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("examples/pipeline/main.py", "# Report: Urban Beekeeping Takes Off"),
        ("examples/batch/main.py", "processed 40 files"),
    ],
)
def test_example_leaves_no_temp_folder(tmp_path: Path, script: str, expected: str) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRAFT_LLM_")}
    env["TMPDIR"] = str(scratch)  # where the example's tempfile calls land
    result = subprocess.run([sys.executable, script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert sorted(p.name for p in scratch.iterdir()) == []
