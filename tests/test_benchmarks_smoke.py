"""The benchmark harness runs (smoke mode, tiny sizes): it checks that it runs, never how fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_run_produces_rows_for_flowcraft_and_the_floor(tmp_path: Path) -> None:
    results, report = tmp_path / "results.json", tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--size", "5", "--quiet",
         "--json", str(results), "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(results.read_text())
    assert doc["meta"]["mode"] == "smoke"
    for case in ("w1.chain@5", "w1.loop@5", "w2.fanout@5", "w3.batch.noop@5", "w3.batch.sleep@5"):
        for runtime in ("asyncio", "flowcraft"):
            slot = doc["results"][case][runtime]
            assert slot["samples"], (case, runtime, slot)
            assert all(sample > 0 for sample in slot["samples"])
    for case in ("w1.chain.mw1@5", "w1.chain.mw3@5", "w3.subflow.noop@5", "w2.block@5"):
        assert doc["results"][case]["flowcraft"]["samples"], case
    assert doc["results"]["w4.dag@5"]["asyncio"]["samples"]
    w4 = doc["results"]["w4.dag@5"]["flowcraft"]  # measured once the GraphBuilder exists, else an explicit n/a
    assert w4["samples"] or "not available" in w4.get("na", ""), w4
    assert doc["results"]["w5.memory@5"]["flowcraft"]["samples"]
    assert doc["results"]["startup.import@1"]["flowcraft"]["samples"]
    assert doc["results"]["startup.hello@1"]["asyncio"]["samples"]
    text = report.read_text()
    assert "| Flowcraft for Python |" in text
    assert "| plain asyncio (floor) |" in text
    assert "## Targets (issue 4)" in text
