"""Issue 14, defects: no stuck runs, no silent errors (real Redis, real worker processes)."""

from __future__ import annotations

import asyncio
from typing import Any

import dist_nodes as d
import pytest

from flowcraft.distributed import BackendPoolExhaustedError
from flowcraft.distributed.connection import MAX_CONNECTIONS

from .conftest import Space

ONE = {"nodes": [d.node("a")], "edges": []}


@pytest.mark.timeout(120)
def test_hundreds_of_concurrent_runs_share_one_bounded_pool(space: Space) -> None:
    """300 concurrent ``start()`` + ``result()`` on one executor: all complete, and the
    executor never holds more connections than its pool allows (waiting ``result()``
    calls share one pub/sub connection)."""
    space.start_workers(2, concurrency=32)
    bp = d.build(ONE)

    async def main() -> tuple[list[Any], int]:
        async with space.executor() as executor:
            pool = executor.store.client.connection_pool
            peak = 0

            async def one() -> Any:
                nonlocal peak
                handle = await executor.start(bp)
                peak = max(peak, len(pool._in_use_connections) + len(pool._available_connections))
                return await handle.result(timeout=90)

            results = await asyncio.gather(*[one() for _ in range(300)], return_exceptions=True)
            return results, peak

    results, peak = asyncio.run(main())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert peak <= MAX_CONNECTIONS


@pytest.mark.timeout(30)
def test_an_exhausted_pool_is_not_reported_as_redis_down(space: Space) -> None:
    """Every pooled connection busy for ``pool_timeout``: a ``BackendPoolExhaustedError``
    naming the pool, not a ``BackendConnectionError``."""

    async def main() -> None:
        async with space.executor(max_connections=1, pool_timeout=0.2) as executor:
            client = executor.store.client
            held = asyncio.ensure_future(client.blpop([f"{space.prefix}:nothing"], timeout=2))
            await asyncio.sleep(0.1)
            with pytest.raises(BackendPoolExhaustedError, match="all 1 pooled Redis connections"):
                await executor.store.meta("some-run")
            await held

    asyncio.run(main())
