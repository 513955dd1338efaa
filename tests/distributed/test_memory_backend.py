"""The job engine over its in-memory backends (MemoryRunStore + MemoryJobQueue, no
Redis): the same graphs give the same final context and action as in memory, with one
and two in-process workers; programmatic flows run from a factory; bad backends are
refused at construction."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import AbortController, AbortError, TypedContext
from flowcraft.engine import JobExecutor, JobWorker, MemoryJobQueue, MemoryRunStore, flow_from_factory
from flowcraft.graph import BlueprintExecutor

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


def abort_from_a_thread_once_started(started: Path, controller: AbortController) -> threading.Thread:
    """A thread that aborts ``controller`` once a blocker wrote its marker in ``started``."""

    def body() -> None:
        deadline = time.monotonic() + 20
        while not any(started.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        controller.abort("from another thread")

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def blocked_graph(started: Path) -> dict[str, Any]:
    return {
        "nodes": [d.node("a"), d.node("x", "blocker", started_dir=str(started), seconds=10), d.node("after")],
        "edges": [d.edge("a", "x"), d.edge("x", "after")],
    }


@pytest.mark.timeout(60)
def test_abort_from_another_thread_cancels_the_run(tmp_path: Path) -> None:
    # The executor's abort listener runs in the aborting thread: it must hand the cancel
    # to the run's loop (call_soon_threadsafe), and signal.wait() must wake (issue 10 item 7).
    started = tmp_path / "started"
    started.mkdir()
    flow = BlueprintExecutor(d.build(blocked_graph(started)), d.REGISTRY).flow
    controller = AbortController()

    async def body(executor: JobExecutor) -> tuple[float, Any, dict[str, Any]]:
        waiter = asyncio.ensure_future(controller.signal.wait())
        thread = abort_from_a_thread_once_started(started, controller)
        begun = time.monotonic()
        ctx = TypedContext()
        with pytest.raises(AbortError, match="from another thread"):
            await flow.run(ctx, executor=executor, controller=controller)
        elapsed = time.monotonic() - begun
        reason = await asyncio.wait_for(waiter, 2)
        thread.join(5)
        return elapsed, reason, ctx.to_dict()

    elapsed, reason, ctx = asyncio.run(on_engine(1, body))
    assert elapsed < 5  # the blocker sleeps 10 s unless the run is cancelled
    assert reason == "from another thread"
    assert "mark:after" not in ctx


def test_the_memory_queue_delivers_a_resumed_job_while_the_parked_one_still_runs() -> None:
    """A resume that comes while the delivery that parked on the wait still runs is a
    delivery of its own (the in-process queue deduplicates by id only deliveries alike)."""
    from flowcraft.engine import Job

    async def main() -> list[tuple[str, bool]]:
        queue = MemoryJobQueue()
        seen: list[tuple[str, bool]] = []
        parked, resumed, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def processor(job: Job) -> None:
            seen.append((job.id, job.resumed))
            if job.resumed:
                resumed.set()
            else:
                parked.set()
                await release.wait()  # still running when the resume comes

        await queue.add([Job("r:ask:1", "r", "ask", "g")])
        serving = asyncio.ensure_future(queue.serve(processor, concurrency=2))
        try:
            await parked.wait()
            await queue.add([Job("r:ask:1", "r", "ask", "g", resumed=True, wait="ask#1")])
            await queue.add([Job("r:ask:1", "r", "ask", "g")])  # the parked one again: still deduplicated
            await asyncio.wait_for(resumed.wait(), 10)  # a dropped resume never comes
        finally:
            release.set()
            await queue.close()
            await serving
        return seen

    assert asyncio.run(main()) == [("r:ask:1", False), ("r:ask:1", True)]
