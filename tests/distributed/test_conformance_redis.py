"""The conformance kit over Redis: DistributedExecutor with two real worker processes
(the kit's registry), its kill-and-restart checks with a worker process SIGKILLed at
each fault point and a fresh one started, and RedisRunStore."""

from __future__ import annotations

import asyncio
import sys

import pytest

from flowcraft.distributed.store import RedisRunStore
from flowcraft.testing.conformance import CRASH_POINTS, WorkerHarness, check_executor, check_store

from .conftest import LOCK_DURATION, STALLED_INTERVAL, Space

KIT_REGISTRY = ("--registry", "flowcraft.testing.conformance:REGISTRY")  # the last --registry wins


def worker_command(space: Space) -> list[str]:
    """A worker of ``space`` with the kit's node types and fast stalled-job recovery."""
    return [
        sys.executable, "-m", "flowcraft", "worker", "--registry", "flowcraft.testing.conformance:REGISTRY",
        "--redis", space.url, "--queue", space.queue, "--prefix", space.prefix, "--concurrency", "4",
        "--lock-duration", str(LOCK_DURATION), "--stalled-interval", str(STALLED_INTERVAL),
    ]  # fmt: skip


@pytest.mark.timeout(180)
def test_distributed_executor_with_worker_processes(space: Space, redis_url: str) -> None:
    for _ in range(2):
        space.start_worker(concurrency=4, extra_args=KIT_REGISTRY)
    for proc in space.workers:
        proc.wait_ready()
    crash_space = Space(redis_url)  # a queue of its own: the armed worker must be the one that takes the run
    try:
        harness = WorkerHarness(lambda: crash_space.executor(poll_interval=0.05), worker_command(crash_space))
        report = asyncio.run(
            check_executor(lambda: space.executor(poll_interval=0.05), crash=harness, name="DistributedExecutor")
        )
    finally:
        crash_space.close()
    assert report.passed, report
    assert [r.name for r in report.results if r.name.startswith("crash:")] == [f"crash:{p}" for p in CRASH_POINTS]


@pytest.mark.timeout(90)
def test_redis_run_store(space: Space) -> None:
    report = asyncio.run(
        check_store(lambda: RedisRunStore(space.url, prefix=space.prefix, run_ttl=3600), name="RedisRunStore")
    )
    assert report.passed
