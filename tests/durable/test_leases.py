"""Leases: a run leased to a live process elsewhere is left alone until its lease
expires; then any executor takes it over and finishes it. A dead process on this
machine is taken over at once. Times come from an injected clock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest

from flowcraft.clock import Clock
from flowcraft.durable import DurableExecutor, SqliteRunStore
from flowcraft.engine.client import graph_of
from flowcraft.engine.jobs import Job, NewRun, job_id


class ManualClock(Clock):
    def __init__(self, now: float) -> None:
        super().__init__()
        self.now = now

    def time(self) -> float:
        return self.now


async def orphan(store: SqliteRunStore, run_id: str, owner: str, ttl: float) -> None:
    """A run as another process leaves it: created, its start job pending, leased to ``owner``."""
    stored = graph_of("durable_nodes:make_small")
    start = Job(job_id(run_id, stored.start_id, 1), run_id, stored.start_id, stored.key)
    assert await store.create(NewRun(run_id, stored.key, stored.text, "{}", {}, start))
    assert await store.lease(run_id, owner, ttl)


def test_a_lease_held_elsewhere_is_respected_until_it_expires(db_path: str) -> None:
    clock = ManualClock(1000.0)

    async def main() -> tuple[list[str], list[str], Any]:
        store = SqliteRunStore(db_path, clock=clock)
        await orphan(store, "r", "another-host:4242:abcd", ttl=10.0)
        async with DurableExecutor(store, clock=clock) as executor:
            clock.now = 1009.0
            early = await executor.recover()
            clock.now = 1011.0
            late = await executor.recover()
            handle = await executor.handle("r")
            return early, late, await handle.result(timeout=10)

    early, late, action = asyncio.run(main())
    assert early == [] and late == ["r"] and action == "finished"


def test_a_dead_process_on_this_machine_is_taken_over_at_once(db_path: str) -> None:
    from flowcraft.durable.executor import HOST

    clock = ManualClock(1000.0)

    async def main() -> tuple[list[str], Any]:
        store = SqliteRunStore(db_path, clock=clock)
        await orphan(store, "r", f"{HOST}:999999999:dead", ttl=3600.0)  # no such pid
        async with DurableExecutor(store, clock=clock) as executor:
            handle = await executor.handle("r")
            return executor.taken_over, await handle.result(timeout=10)

    taken, action = asyncio.run(main())
    assert taken == ["r"] and action == "finished"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombie states are read from /proc (Linux)")
def test_a_zombie_process_on_this_machine_is_taken_over_at_once(db_path: str) -> None:
    """A process that exited but was not reaped yet (state Z) still has its pid: it is
    dead all the same, and its runs are taken over without waiting for the lease."""
    from flowcraft.durable.executor import HOST

    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once; not waited on
    try:
        deadline = time.monotonic() + 30
        while _proc_state(child.pid) != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        clock = ManualClock(1000.0)

        async def main() -> tuple[list[str], Any]:
            store = SqliteRunStore(db_path, clock=clock)
            await orphan(store, "r", f"{HOST}:{child.pid}:zomb", ttl=3600.0)
            async with DurableExecutor(store, clock=clock) as executor:
                handle = await executor.handle("r")
                return executor.taken_over, await handle.result(timeout=10)

        taken, action = asyncio.run(main())
        assert _proc_state(child.pid) == "Z"  # still unreaped while it was judged
    finally:
        child.wait()
    assert taken == ["r"] and action == "finished"


def _proc_state(pid: int) -> str:
    """The one-letter state of ``pid`` in /proc/<pid>/stat (after the command in parentheses)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]
