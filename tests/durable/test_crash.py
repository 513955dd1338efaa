"""kill -9 of the whole process at node boundaries of a 20-node flow (a loop, a
three-way fan-out into a join, a parallel block): a new process recovers the run to
the same final context as an uninterrupted run, and the external ledger keyed by
``args.idempotency_key`` holds each node visit exactly once.

Real processes on a real SQLite file; the crash is ``SIGKILL`` sent by the process to
itself (``FLOWCRAFT_TEST_CRASH_AT``), before or after a node's commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import durable_nodes
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def child(db: str, run_id: str, ledger: Path, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
        durable_nodes.LEDGER_ENV: str(ledger),
    }
    env.pop("FLOWCRAFT_TEST_CRASH_AT", None)
    if crash is not None:
        env["FLOWCRAFT_TEST_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, str(HERE / "crash_child.py"), db, run_id],
        env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def new_ledger(folder: Path) -> Path:
    (folder / "ledger").mkdir(parents=True)
    return folder


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], set[str]]:
    """The uninterrupted run: its outcome, and the ledger keys (node visits) it applied."""
    folder = tmp_path_factory.mktemp("reference")
    ledger = new_ledger(folder)
    result = outcome(child(str(folder / "runs.db"), "r", ledger))
    keys = {durable_nodes.key_of(name) for name in os.listdir(ledger / "ledger")}
    return result, keys


POINTS = [(point, node) for node in durable_nodes.JOB_NODES for point in ("before_complete", "after_complete")]
POINTS += [("during_node", node) for node in ("start", "fan", "par", "end")]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("point", "node"), POINTS, ids=[f"{p}:{n}" for p, n in POINTS])
def test_kill_9_then_recover(point: str, node: str, tmp_path: Path, reference: tuple[dict[str, Any], set[str]]) -> None:
    expected, visits = reference
    # 18 steps (the two blocks are not steps); the loop runs twice more, its body once more
    assert len(visits) == 21 and expected["action"] == "finished"
    db = str(tmp_path / "runs.db")
    ledger = new_ledger(tmp_path)
    crashed = child(db, "r", ledger, crash=f"{point}:{node}")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert "FLOWCRAFT_TEST_CRASH_AT reached" in crashed.stderr

    recovered = outcome(child(db, "r", ledger))

    assert recovered == expected
    applied = {durable_nodes.key_of(name) for name in os.listdir(ledger / "ledger")}
    assert applied == visits  # every node visit took effect once: none lost, none twice
    attempts = Counter((ledger / "attempts.log").read_text().split())
    assert set(attempts) == visits
    # the effect is memoised before post, so a re-run job finds it; only an effect caught
    # between running and being memoised (a sibling in the block in flight) is attempted
    # again, and the ledger's key refuses it
    repeated = {key for key, count in attempts.items() if count > 1}
    assert {key.split("/")[0] for key in repeated} <= {f"r:{node}:1"}, attempts
    runs = Counter((ledger / "runs.log").read_text().split())
    again = {key for key, count in runs.items() if count > 1}
    if point == "after_complete":
        assert not again  # the commit held: the new process did not run the node again
    else:  # the job in flight ran again from prep (a block: its inner nodes), under the same keys
        assert again and {key.split("/")[0] for key in again} == {f"r:{node}:1"}, again


@pytest.mark.timeout(60)
def test_recovery_with_another_graph_blocks_the_run(tmp_path: Path) -> None:
    """The code changed between the crash and the recovery: the run is blocked, and
    says which nodes differ, instead of running on the wrong graph."""
    import asyncio
    import sqlite3

    from flowcraft.durable import DurableExecutor, RunBlockedError

    db = str(tmp_path / "runs.db")
    crashed = child(db, "r", new_ledger(tmp_path), crash="after_complete:prep1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    with sqlite3.connect(db) as connection:  # stands for a new deploy: the factory now builds another graph
        (text,) = connection.execute("SELECT text FROM graphs").fetchone()
        record = json.loads(text)
        record["factory"] = "durable_nodes:make_small"
        connection.execute("UPDATE graphs SET text = ?", (json.dumps(record),))

    async def recover() -> tuple[str, str]:
        async with DurableExecutor(db) as executor:
            handle = await executor.handle("r")
            try:
                await handle.result(timeout=10)
            except RunBlockedError as error:
                return (await handle.status()).state, str(error)
            return (await handle.status()).state, "not blocked"

    state, message = asyncio.run(recover())
    assert state == "blocked"
    assert "Run 'r' is blocked at node 'prep2'" in message
    assert (
        "(added: m1, m2, m3, m4; removed: body, end, fan, loop, par, prep1, prep2, prep3, start, t1, t2, t3;" in message
    )
