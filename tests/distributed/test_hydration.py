"""How often a worker process builds (hydrates) a graph: once, however many of its jobs
reach it at once, and ahead of them when a run of the graph starts on its queue."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import AbortError

from .conftest import Space


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def builds(built: Path, node_id: str) -> Counter[str]:
    """How many times each worker process built node ``node_id`` (once per hydration)."""
    return Counter(p.name.split(".")[1] for p in built.iterdir() if p.name.split(".")[0] == node_id)


@pytest.mark.timeout(90)
def test_a_worker_taking_many_jobs_of_a_new_graph_at_once_hydrates_it_once(space: Space) -> None:
    built, started = space.tmp / "built", space.tmp / "started"
    built.mkdir()
    started.mkdir()
    width = 12
    branches = [
        d.node(f"b{i}", "built", built_dir=str(built), started_dir=str(started), seconds=1.0) for i in range(width)
    ]
    graph = {
        "nodes": [d.node("a", "built", built_dir=str(built), seconds=0), *branches, d.node("join", "collect")],
        "edges": [d.edge("a", b["id"]) for b in branches] + [d.edge(b["id"], "join") for b in branches],
    }
    first = space.start_worker(concurrency=1)
    first.wait_ready()

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            # the fan-out is queued (one branch runs on the first worker): a new worker joins and
            # its slots take several jobs of a graph it does not hold, at the same time
            await asyncio.to_thread(wait_for, lambda: any(started.iterdir()))
            second = space.start_worker(concurrency=8)
            await asyncio.to_thread(second.wait_ready)
            return second, await handle.result(timeout=60)

    second, action = asyncio.run(main())
    assert action is None or isinstance(action, str)
    ran = Counter(p.name.split(".")[1] for p in started.iterdir())
    assert ran[str(second.proc.pid)] >= 2, ran  # the new worker ran several branches
    hydrations = builds(built, "a")
    assert set(hydrations) == {str(first.proc.pid), str(second.proc.pid)}
    assert hydrations == {str(first.proc.pid): 1, str(second.proc.pid): 1}, hydrations


@pytest.mark.timeout(90)
def test_workers_hydrate_a_graph_when_its_run_starts_not_when_its_jobs_reach_them(space: Space) -> None:
    built, started = space.tmp / "built", space.tmp / "started"
    built.mkdir()
    started.mkdir()
    graph = {
        "nodes": [
            d.node("gate", "built", built_dir=str(built), started_dir=str(started), seconds=30),
            d.node("after", "built", built_dir=str(built), seconds=0),
        ],
        "edges": [d.edge("gate", "after")],
    }
    workers = space.start_workers(2, concurrency=1)
    pids = {str(w.proc.pid) for w in workers}

    async def main() -> None:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            await asyncio.to_thread(wait_for, lambda: any(started.iterdir()))  # one worker runs the gate
            # the other one has no job of this run, and holds its graph all the same
            await asyncio.to_thread(wait_for, lambda: set(builds(built, "gate")) == pids)
            await handle.cancel("done")
            with pytest.raises(AbortError):
                await handle.result(timeout=20)

    asyncio.run(main())
    assert sorted(builds(built, "gate").values()) == [1, 1]  # once each
    assert len([p for p in started.iterdir() if not p.name.endswith("aborted")]) == 1  # one job ran


@pytest.mark.timeout(60)
def test_jobs_that_need_a_new_graph_at_once_wait_for_one_hydration(space: Space) -> None:
    from flowcraft.distributed import RedisRunStore, Worker
    from flowcraft.distributed.keys import Keys
    from flowcraft.engine.plan import blueprint_hash, canonical_json

    built = space.tmp / "built"
    built.mkdir()
    graph = {
        "nodes": [d.node("a", "built", built_dir=str(built), seconds=0), d.node("z", "mark")],
        "edges": [d.edge("a", "z")],
    }
    text = canonical_json(d.build(graph))
    key = blueprint_hash(text)

    async def main() -> list[Any]:
        store = RedisRunStore(space.url, prefix=space.prefix, run_ttl=60)
        try:
            await store.client.set(Keys(space.prefix).blueprint(key), text)
            worker = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix)
            worker._store = store  # what run() opens; here the slots' first jobs are simulated
            return list(await asyncio.gather(*(worker._hydrate(key) for _ in range(8))))
        finally:
            await store.aclose()

    graphs = asyncio.run(main())
    assert all(g is graphs[0] for g in graphs)  # one hydrated graph, shared
    assert sum(builds(built, "a").values()) == 1
