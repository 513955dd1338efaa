"""The conformance kit over Redis: DistributedExecutor with two real worker processes
(the kit's registry), and RedisRunStore."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft.distributed.store import RedisRunStore
from flowcraft.testing.conformance import check_executor, check_store

from .conftest import Space

KIT_REGISTRY = ("--registry", "flowcraft.testing.conformance:REGISTRY")  # the last --registry wins


@pytest.mark.timeout(90)
def test_distributed_executor_with_worker_processes(space: Space) -> None:
    for _ in range(2):
        space.start_worker(concurrency=4, extra_args=KIT_REGISTRY)
    for proc in space.workers:
        proc.wait_ready()
    report = asyncio.run(check_executor(lambda: space.executor(poll_interval=0.05), name="DistributedExecutor"))
    assert report.passed


@pytest.mark.timeout(90)
def test_redis_run_store(space: Space) -> None:
    report = asyncio.run(
        check_store(lambda: RedisRunStore(space.url, prefix=space.prefix, run_ttl=3600), name="RedisRunStore")
    )
    assert report.passed
