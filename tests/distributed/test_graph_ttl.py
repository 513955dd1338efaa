"""Graphs in use do not expire: reading a stored graph on Redis renews its TTL, and a
worker re-reads the graphs it keeps hydrated once an hour."""

from __future__ import annotations

from typing import Any

import pytest


def test_a_graph_in_use_is_kept_past_its_ttl(redis_url: str) -> None:
    """Reading a stored graph renews its TTL (workers re-read theirs hourly), so the TTL
    counts from the last use, not from the start of the run."""
    import asyncio
    import uuid

    import redis as redis_lib

    from flowcraft.distributed.store import RedisRunStore

    prefix = f"fct{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[int, int]:
        store = RedisRunStore(redis_url, prefix=prefix, run_ttl=60, blueprint_ttl=1000)
        client = redis_lib.Redis.from_url(redis_url)
        key = store.keys.blueprint("g")
        client.set(key, "{}", ex=5)
        before = client.ttl(key)
        assert await store.graph("g") == "{}"
        after = client.ttl(key)
        client.delete(key)
        client.close()
        await store.aclose()
        return before, after

    before, after = asyncio.run(main())
    assert before <= 5 and after > 900


def test_a_worker_rereads_a_hydrated_graph_after_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import dist_nodes as d

    from flowcraft.engine import JobExecutor, JobWorker, MemoryJobQueue, MemoryRunStore
    from flowcraft.engine import worker as worker_module

    async def main(runs: int) -> list[str]:
        store, queue = MemoryRunStore(), MemoryJobQueue()
        reads: list[str] = []
        original = store.graph

        async def graph(key: str) -> Any:
            reads.append(key)
            return await original(key)

        store.graph = graph  # type: ignore[method-assign]
        worker = JobWorker(d.REGISTRY, store=store, queue=queue)
        async with JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor, worker.running():
            for _ in range(runs):
                handle = await executor.start("dist_nodes:make_pipeline")
                await handle.result(timeout=10)
        return reads

    assert len(asyncio.run(main(2))) == 1  # hydrated once, kept
    monkeypatch.setattr(worker_module, "GRAPH_REREAD", 0.0)
    assert len(asyncio.run(main(1))) > 1  # hydrated, then read again by later jobs (the TTL renewal)
