"""The job engine over its in-memory backends (MemoryRunStore + MemoryJobQueue, no
Redis): the same graphs give the same final context and action as in memory, with one
and two in-process workers; programmatic flows run from a factory; bad backends are
refused at construction."""

from __future__ import annotations

import asyncio
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import TypedContext
from flowcraft.engine import JobExecutor, JobWorker, MemoryJobQueue, MemoryRunStore, flow_from_factory

NAMES = list(d.GRAPHS)


EXPECTED = {name: d.in_memory(name) for name in NAMES}


async def on_engine(workers: int, body: Any) -> Any:
    store, queue = MemoryRunStore(), MemoryJobQueue()
    pool = [JobWorker(d.REGISTRY, store=store, queue=queue, concurrency=4) for _ in range(workers)]
    tasks = [asyncio.ensure_future(worker.run()) for worker in pool]
    await asyncio.gather(*(worker.ready.wait() for worker in pool))
    try:
        async with JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor:
            return await body(executor)
    finally:
        for worker in pool:
            await worker.close()
        await asyncio.gather(*tasks)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 2])
def test_same_results_as_in_memory(workers: int) -> None:
    async def body(executor: JobExecutor) -> dict[str, tuple[Any, dict[str, Any]]]:
        handles = {}
        for name in NAMES:
            graph, initial = d.GRAPHS[name]
            handles[name] = await executor.start(d.build(graph), initial)
        return {name: (await h.result(timeout=20), await h.context()) for name, h in handles.items()}

    results = asyncio.run(on_engine(workers, body))
    for name in NAMES:
        assert results[name] == EXPECTED[name], name


@pytest.mark.timeout(60)
def test_a_factory_flow_runs_on_two_workers_like_in_memory() -> None:
    expected_ctx = TypedContext()
    expected_action = asyncio.run(d.make_pipeline().run(expected_ctx))

    async def body(executor: JobExecutor) -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
        handle = await executor.start("dist_nodes:make_pipeline")
        by_name = (await handle.result(timeout=20), await handle.context())
        ctx = TypedContext()
        action = await flow_from_factory("dist_nodes:make_pipeline").run(ctx, executor=executor)
        return (*by_name, action, ctx.to_dict())

    action1, ctx1, action2, ctx2 = asyncio.run(on_engine(2, body))
    assert (action1, ctx1) == (expected_action, expected_ctx.to_dict())
    assert (action2, ctx2) == (expected_action, expected_ctx.to_dict())
    assert ctx1["total"] == 3 and ctx1["i"] == 3 and ctx1["collected"] == 1  # mark:first, mark:left, mark:right


class NoCommit:
    async def create(self, run: Any) -> bool:
        return True


def test_a_backend_missing_a_method_is_refused_at_construction() -> None:
    with pytest.raises(
        TypeError, match=r"NoCommit cannot be the engine's store: it has no .*commit.*RunStore protocol"
    ):
        JobExecutor(store=NoCommit(), queue=MemoryJobQueue())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"MemoryRunStore cannot be the engine's queue: it has no add, .*serve"):
        JobWorker(d.REGISTRY, store=MemoryRunStore(), queue=MemoryRunStore())  # type: ignore[arg-type]
