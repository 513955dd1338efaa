"""Four processes start and run durable runs on one SQLite file at once, while one of
them is killed midway: no "database is locked" reaches anyone, the survivors take over
the dead process's runs, and every run completes with the right context. A store opened
while another process holds the new file's write lock waits for it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flowcraft.durable import DurableExecutor
from flowcraft.durable.sqlite_schema import open_database

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUNS_EACH = 25


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_four_processes_one_file_one_killed(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")])}
    env.pop("FLOWCRAFT_TEST_CRASH_AT", None)
    total = 4 * RUNS_EACH

    def spawn(prefix: str, crash: str | None = None) -> subprocess.Popen[str]:
        child_env = dict(env, FLOWCRAFT_TEST_CRASH_AT=crash) if crash else env
        return subprocess.Popen(
            [sys.executable, str(HERE / "many_child.py"), db, prefix, str(RUNS_EACH), str(total), "60"],
            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    children = [spawn("killed", crash="before_complete:m3")] + [spawn(f"p{i}") for i in range(3)]
    outputs = [child.communicate(timeout=150) for child in children]

    killed = children[0]
    assert killed.returncode == -signal.SIGKILL, outputs[0][1]
    for child, (out, err) in zip(children[1:], outputs[1:], strict=True):
        assert child.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
    recovered = sum(int(out.split()[-1]) for out, _ in outputs[1:])
    assert recovered >= 1  # the killed process's runs were taken over

    async def check() -> list[tuple[str, str, dict[str, object]]]:
        async with DurableExecutor(db) as executor:
            found = []
            for run in await executor.runs(limit=1000):
                handle = await executor.handle(run.run_id)
                found.append((run.run_id, run.state, await handle.context()))
            return found

    runs = asyncio.run(check())
    started_by_killed = [run for run in runs if run[0].startswith("killed-")]
    assert len(runs) == 3 * RUNS_EACH + len(started_by_killed) and started_by_killed
    for run_id, state, context in runs:
        assert state == "completed", run_id
        assert context == {"n:m1": 1, "n:m2": 1, "n:m3": 1, "n:m4": 1}, run_id


def test_a_store_opened_while_another_process_creates_it_waits_for_its_lock(tmp_path: Path) -> None:
    # Another process holds the write lock of a new store's file (it is creating the
    # tables, before the file is in WAL mode). SQLite fails the switch to WAL mode at once,
    # without its busy handler: opening waits for the lock as busy_timeout says.
    db = str(tmp_path / "runs.db")
    creator = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, lambda: creator.execute("COMMIT"))
    releaser.start()
    started = time.monotonic()
    try:
        connection = open_database(db, synchronous="NORMAL", busy_timeout=5.0)
    finally:
        releaser.join()
        creator.close()
    assert time.monotonic() - started >= 0.25  # it waited for the lock, and did not fail
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
