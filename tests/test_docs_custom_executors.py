"""Runs every Python code block of docs/custom-executors.md, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-executors.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_doc_has_the_dry_run_example() -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 3
    assert any("class PathDryRunExecutor" in block for block in blocks)


def test_doc_code_blocks_run() -> None:
    namespace: dict[str, object] = {"__name__": "docs_custom_executors"}
    for block in python_blocks(DOC.read_text()):
        exec(compile(block, str(DOC), "exec"), namespace)  # the doc's own code, not user input
    executor = namespace["executor"]
    assert executor.visited == ["charge", "receipt"]  # type: ignore[attr-defined]
