"""The benchmark harness runs (smoke mode, tiny sizes): it checks that it runs, never how fast.

Every runtime the smoke run can start without installing the peers must run every case
it implements: a missing runtime or an "n/a" sample fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Runtimes the smoke run starts from the test environment: the Python floor, this
# library, and the JS floor (node is on every machine of this project).
REQUIRED = ("asyncio", "flowcraft", "handwritten", "js")
# Peers that only `bash scripts/bench` installs (into benchmarks/.venv, benchmarks/ts).
PEERS = {
    "pocketflow": "cannot import: No module named 'pocketflow'",
    "langgraph": "cannot import: No module named 'langgraph'",
    "flowcraft-ts": "benchmarks/ts/node_modules missing (run bash scripts/bench to install)",
}
# The deliberate gaps: a floor has nothing to import; the hand-written floor covers only
# the workloads issue 18 sets targets on (its adapter says why for each other one).
EXPECTED_NA = {("startup.import@1", "js"): "nothing to import (the floor)"}


def _handwritten_unsupported() -> dict[str, str]:
    """The workloads the hand-written floor declares it does not run, and why."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from flowbench.runtimes.handwritten import ADAPTER
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return dict(ADAPTER.unsupported)


HANDWRITTEN_NA = _handwritten_unsupported()


def expected_na(case: str, runtime: str) -> str | None:
    """Why ``runtime`` deliberately has no sample for ``case`` (None: it must have one)."""
    if runtime == "handwritten":
        return HANDWRITTEN_NA.get(case.split("@")[0])
    return EXPECTED_NA.get((case, runtime))


def problems(doc: dict[str, Any]) -> list[str]:
    """Everything that shows a runtime or a measurement missing from a results document:
    a required runtime that did not start, a peer skipped for another reason than not
    being installed, an error anywhere, an n/a of a required runtime."""
    found: list[str] = []
    for name in REQUIRED:
        entry = doc["runtimes"].get(name, {})
        if "version" not in entry:
            found.append(f"runtime {name} did not run: {entry.get('skipped', 'absent')}")
    for name, entry in doc["runtimes"].items():
        if name not in REQUIRED and "version" not in entry and entry.get("skipped") != PEERS.get(name):
            found.append(f"runtime {name} skipped unexpectedly: {entry.get('skipped')}")
    for case, by_runtime in doc["results"].items():
        for name, slot in by_runtime.items():
            if slot.get("samples") and all(sample > 0 for sample in slot["samples"]):
                continue
            if "na" in slot and (name not in REQUIRED or expected_na(case, name) == slot["na"]):
                continue  # a peer may lack a workload (the report says why); ours may not
            found.append(f"{case} {name}: {slot.get('na') or slot.get('error') or slot.get('samples')}")
    return found


def test_smoke_run_produces_rows_for_flowcraft_and_the_floors(tmp_path: Path) -> None:
    results, report = tmp_path / "results.json", tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--size", "5", "--quiet",
         "--json", str(results), "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(results.read_text())
    assert doc["meta"]["mode"] == "smoke"
    assert problems(doc) == []
    for case in ("w1.chain@5", "w1.loop@5", "w2.fanout@5", "w3.batch.noop@5", "w3.batch.sleep@5", "w4.dag@5"):
        for runtime in ("asyncio", "flowcraft", "js"):
            assert doc["results"][case][runtime]["samples"], (case, runtime)
    for case in ("w1.chain.mw1@5", "w1.chain.mw3@5", "w3.subflow.noop@5", "w2.block@5", "w5.memory@5"):
        assert doc["results"][case]["flowcraft"]["samples"], case
    assert doc["results"]["startup.import@1"]["flowcraft"]["samples"]
    assert doc["results"]["startup.hello@1"]["asyncio"]["samples"]
    text = report.read_text()
    assert "| Flowcraft for Python |" in text
    assert "÷ its floor's minimum (plain asyncio for Python" in text  # each cell is against the floor
    assert "## Targets\n" in text and "issue" not in text.lower()


def test_a_missing_runtime_or_an_unavailable_builder_is_a_problem() -> None:
    doc = {
        "runtimes": {
            "asyncio": {"version": "CPython"},
            "flowcraft": {"version": "flowcraft-py"},
            "handwritten": {"version": "hand-written"},
            "js": {"skipped": "node is not installed"},
            "langgraph": {"skipped": "cannot import: No module named 'langgraph'"},
        },
        "results": {
            "w4.dag@5": {
                "asyncio": {"samples": [0.1]},
                "flowcraft": {"samples": [], "na": "flowcraft.graph.GraphBuilder is not available yet"},
                "handwritten": {"samples": [], "na": "plain asyncio's column is the plain-dict build"},
            },
            "w2.fanout@5": {"handwritten": {"samples": [], "na": "not implemented"}},
            "startup.import@1": {"js": {"samples": [], "na": "nothing to import (the floor)"}},
            "w2.block@5": {"langgraph": {"samples": [], "na": "no parallel block"}},
            "w1.chain@5": {"langgraph": {"samples": [], "error": "boom"}},
        },
    }
    assert problems(doc) == [
        "runtime js did not run: node is not installed",
        "w4.dag@5 flowcraft: flowcraft.graph.GraphBuilder is not available yet",
        "w2.fanout@5 handwritten: not implemented",
        "w1.chain@5 langgraph: boom",
    ]


# The durable-runs benchmark: SQLite and Flowcraft must run every case; LangGraph's
# checkpointer and DBOS are installed by `bash scripts/bench` only (benchmarks/.venv-durable).
DURABLE_REQUIRED = ("sqlite.normal", "sqlite.full", "flowcraft.memory", "flowcraft.durable", "flowcraft.durable.full")
DURABLE_PEERS = {
    "langgraph": "cannot import: No module named 'langgraph'",
    "dbos": "cannot import: No module named 'dbos'",
}


def durable_problems(doc: dict[str, Any]) -> list[str]:
    """A required case or Flowcraft's recovery without samples, or a peer neither measured
    nor skipped for not being installed."""
    found: list[str] = []
    for case, entry in doc["cases"].items():
        if entry.get("samples") and all(sample > 0 for sample in entry["samples"]):
            continue
        peer = case.split(".")[0]
        if case not in DURABLE_REQUIRED and entry.get("skipped") == DURABLE_PEERS.get(peer):
            continue
        found.append(f"{case}: {entry.get('skipped') or entry.get('error') or 'no samples'}")
    for runtime, entry in doc["recovery"].items():
        if entry.get("samples_s") or (runtime != "flowcraft" and entry.get("skipped") == DURABLE_PEERS.get(runtime)):
            continue
        found.append(f"recovery {runtime}: {entry.get('skipped') or entry.get('error') or 'no samples'}")
    return found


def test_durable_smoke_run_measures_sqlite_and_flowcraft(tmp_path: Path) -> None:
    results, docs = tmp_path / "durable.json", tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Durable runs: old\n\nold figures\n\n## After\n\nkept\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "durable_bench.py"), "--smoke", "--dir", str(tmp_path),
         "--json", str(results), "--docs", str(docs)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(results.read_text())
    assert doc["meta"]["mode"] == "smoke"
    assert durable_problems(doc) == []
    text = docs.read_text()
    assert "old figures" not in text and text.count("## Durable runs") == 1 and text.endswith("## After\n\nkept\n")
    assert "| Flowcraft DurableExecutor, WAL, NORMAL (its default) |" in text
    assert doc["resume"]["samples"] and "| resume of an awaiting run → first node | ≤ 10 ms |" in text


def test_a_durable_case_missing_or_failing_is_a_problem() -> None:
    doc = {
        "cases": {
            "sqlite.normal": {"samples": [1e-5]},
            "flowcraft.durable": {"skipped": "cannot import: No module named 'flowcraft'"},
            "langgraph": {"skipped": "cannot import: No module named 'langgraph'"},
            "dbos": {"error": "boom"},
        },
        "recovery": {
            "flowcraft": {"error": "crashed twice"},
            "dbos": {"skipped": "cannot import: No module named 'dbos'"},
        },
    }
    assert durable_problems(doc) == [
        "flowcraft.durable: cannot import: No module named 'flowcraft'",
        "dbos: boom",
        "recovery flowcraft: crashed twice",
    ]
