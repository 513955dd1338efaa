"""SPEC §10: budgets of job-engine runs — usage kept in the run store, updated atomically
(in memory and with Redis + real worker processes)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import Budget, BudgetExceeded, BudgetExceededError, RunFailed
from flowcraft.engine import Charge, JobExecutor, JobWorker, MemoryJobQueue, MemoryRunStore
from flowcraft.testing import EventRecorder


def tally_fan(width: int, folder: Path, *, delay: float = 0.0, tokens: float = 0) -> Any:
    branches = [d.node(f"b{i}", "tally", dir=str(folder), delay=delay, tokens=tokens) for i in range(width)]
    graph = {
        "nodes": [d.node("a", "tally", dir=str(folder)), *branches, d.node("join", "collect")],
        "edges": [d.edge("a", b["id"]) for b in branches] + [d.edge(b["id"], "join") for b in branches],
    }
    return d.build(graph)


def runs_in(folder: Path) -> int:
    return len([name for name in os.listdir(folder) if not name.endswith(".aborted")])


async def on_memory_engine(workers: int, body: Any) -> Any:
    store, queue = MemoryRunStore(), MemoryJobQueue()
    pool = [JobWorker(d.REGISTRY, store=store, queue=queue, concurrency=8) for _ in range(workers)]
    tasks = [asyncio.ensure_future(worker.run()) for worker in pool]
    await asyncio.gather(*(worker.ready.wait() for worker in pool))
    try:
        async with JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor:
            return await body(executor)
    finally:
        for worker in pool:
            await worker.close()
        await asyncio.gather(*tasks)


# ---- the store's charge step ---------------------------------------------------------------


def test_memory_store_charge_follows_the_protocol() -> None:
    async def main() -> list[Any]:
        store = MemoryRunStore()
        from flowcraft.engine import Job, NewRun

        await store.create(NewRun("r", "g", "{}", "{}", {}, Job("r:a:1", "r", "a", "g")))
        out = [
            await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j1")),
            await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j1")),  # deduplicated
            await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j2")),
            await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j3")),  # refused, unchanged
            await store.charge("r", Charge("tokens", 7, 10)),
            await store.charge("r", Charge("tokens", 7, 10)),  # crosses: counted, exceeded
            await store.charge("r", Charge("usd", 1.5, None)),
        ]
        out.append(json.loads((await store.meta("r"))["usage"]))
        await store.cancel("r", "x")
        out.append(await store.charge("r", Charge("tokens", 1, 10)))
        return out

    *usages, usage, after = asyncio.run(main())
    assert [(u.state, u.used) for u in usages] == [
        ("ok", 1), ("ok", 1), ("ok", 2), ("exceeded", 2), ("ok", 7), ("exceeded", 14), ("ok", 1.5),
    ]  # fmt: skip
    assert usage == {"node_runs": 2, "tokens": 14, "usd": 1.5}
    assert after.state == "inactive"


def test_redis_store_charge_follows_the_protocol(space: Any) -> None:
    from flowcraft.distributed import RedisRunStore
    from flowcraft.engine import Job, NewRun

    async def main() -> list[Any]:
        store = RedisRunStore(space.url, prefix=space.prefix, run_ttl=60)
        try:
            await store.create(NewRun("r", "g", "{}", "{}", {}, Job("r:a:1", "r", "a", "g"), budget='{"x": 1}'))
            out = [
                await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j1")),
                await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j1")),
                await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j2")),
                await store.charge("r", Charge("node_runs", 1, 2, admit=True, key="j3")),
                await store.charge("r", Charge("tokens", 7, 10)),
                await store.charge("r", Charge("tokens", 7, 10)),
                await store.charge("r", Charge("usd", 1.5, None)),
            ]
            state = await store.load("r", "r:a:1")
            out.append((state.budget, json.loads(state.usage or "{}")))
            await store.cancel("r", "x")
            out.append(await store.charge("r", Charge("tokens", 1, 10)))
            out.append(await store.charge("nope", Charge("tokens", 1, 10)))
            return out
        finally:
            await store.aclose()

    *usages, (budget, usage), after, unknown = asyncio.run(main())
    assert [(u.state, u.used) for u in usages] == [
        ("ok", 1), ("ok", 1), ("ok", 2), ("exceeded", 2), ("ok", 7), ("exceeded", 14), ("ok", 1.5),
    ]  # fmt: skip
    assert budget == '{"x": 1}' and usage == {"node_runs": 2, "tokens": 14, "usd": 1.5}
    assert after.state == "inactive" and unknown.state == "inactive"


# ---- the engine on its in-memory backends --------------------------------------------------------


@pytest.mark.timeout(60)
def test_max_node_runs_on_the_memory_engine_with_two_workers(tmp_path: Path) -> None:
    blueprint = tally_fan(30, tmp_path, delay=0.002)

    async def body(executor: JobExecutor) -> Any:
        handle = await executor.start(blueprint, budget=Budget(max_node_runs=10), events=True)
        with pytest.raises(BudgetExceededError) as info:
            await handle.result(timeout=20)
        events = [event async for event in handle.events(block=0.1)]
        return info.value, await handle.status(), events

    error, status, events = asyncio.run(on_memory_engine(2, body))
    assert (error.kind, error.limit, error.used) == ("node_runs", 10, 10)
    assert status.state == "failed" and status.usage is not None and status.usage["node_runs"] == 10
    assert status.exceeded == ("node_runs", 10.0, 10.0)
    assert runs_in(tmp_path) <= 10
    assert [e for e in events if isinstance(e, BudgetExceeded)][0].kind == "node_runs"
    assert isinstance(events[-1], RunFailed)


@pytest.mark.timeout(60)
def test_a_token_budget_stops_concurrent_branches_on_the_memory_engine(tmp_path: Path) -> None:
    blueprint = tally_fan(50, tmp_path, delay=0.001, tokens=10)
    recorder = EventRecorder()

    async def body(executor: JobExecutor) -> Any:
        from flowcraft import TypedContext

        with pytest.raises(BudgetExceededError) as info:
            await blueprint_flow(blueprint).run(
                TypedContext(), executor=executor, budget=Budget(limits={"tokens": 95}), on_event=recorder
            )
        return info.value

    error = asyncio.run(on_memory_engine(2, body))
    assert error.kind == "tokens" and error.limit == 95 and error.used >= 100
    assert error.usage["tokens"] == error.used
    assert isinstance(recorder.of_type(RunFailed)[0].error, BudgetExceededError)


def blueprint_flow(blueprint: Any) -> Any:
    from flowcraft.graph import BlueprintExecutor

    return BlueprintExecutor(blueprint, d.REGISTRY).flow


@pytest.mark.timeout(60)
def test_a_run_within_budget_completes_and_reports_its_usage(tmp_path: Path) -> None:
    blueprint = tally_fan(5, tmp_path, tokens=2)

    async def body(executor: JobExecutor) -> Any:
        handle = await executor.start(blueprint, budget=Budget(max_node_runs=7, limits={"tokens": 10}))
        return await handle.result(timeout=20), await handle.status()

    action, status = asyncio.run(on_memory_engine(1, body))
    assert action == "finished"
    assert status.usage == {"node_runs": 7.0, "tokens": 10.0}


def test_start_refuses_a_budget_that_is_not_one() -> None:
    async def body(executor: JobExecutor) -> None:
        with pytest.raises(TypeError, match="budget must be a flowcraft.Budget"):
            await executor.start(d.build(d.GRAPHS["linear"][0]), budget={"max_node_runs": 3})  # type: ignore[arg-type]

    asyncio.run(on_memory_engine(1, body))


# ---- Redis, four worker processes -----------------------------------------------------------------


@pytest.mark.timeout(240)
def test_four_workers_never_overshoot_max_node_runs_20_times(space: Any, tmp_path: Path) -> None:
    space.start_workers(4, concurrency=8)
    k = 7

    async def main() -> list[tuple[Any, Any, int]]:
        out = []
        async with space.executor(poll_interval=0.05) as executor:
            for attempt in range(20):
                folder = tmp_path / f"run{attempt}"
                folder.mkdir()
                handle = await executor.start(tally_fan(24, folder, delay=0.005), budget=Budget(max_node_runs=k))
                try:
                    await handle.result(timeout=30)
                    error = None
                except BudgetExceededError as raised:
                    error = raised
                out.append((error, await handle.status(), runs_in(folder)))
        return out

    for error, status, ran in asyncio.run(main()):
        assert error is not None and (error.kind, error.limit, error.used) == ("node_runs", k, k)
        assert status.usage is not None and status.usage["node_runs"] == k
        assert ran <= k


@pytest.mark.timeout(120)
def test_a_token_budget_on_redis_workers_aborts_the_in_flight_nodes(space: Any, tmp_path: Path) -> None:
    space.start_workers(2, concurrency=8)
    tallies = tmp_path / "tallies"
    tallies.mkdir()
    branches = [d.node(f"b{i}", "tally", dir=str(tallies), delay=0.5, tokens=10) for i in range(3)]
    blockers = [d.node(f"w{i}", "blocker", started_dir=str(tmp_path), seconds=30) for i in range(4)]
    graph = {
        "nodes": [d.node("a"), *branches, *blockers],
        "edges": [d.edge("a", n["id"]) for n in branches + blockers],
    }

    async def main() -> Any:
        async with space.executor(poll_interval=0.05) as executor:
            handle = await executor.start(d.build(graph), budget=Budget(limits={"tokens": 15}))
            with pytest.raises(BudgetExceededError) as info:
                await handle.result(timeout=30)
            for _ in range(100):  # the blockers see their abort within moments
                if len([n for n in os.listdir(tmp_path) if n.endswith(".aborted")]) == 4:
                    break
                await asyncio.sleep(0.05)
            return info.value

    error = asyncio.run(main())
    assert error.kind == "tokens" and error.used >= 20
    names = os.listdir(tmp_path)
    started = {n.split(".")[0] for n in names if n.startswith("w") and not n.endswith(".aborted")}
    aborted = {n.split(".")[0] for n in names if n.endswith(".aborted")}
    assert started == aborted == {"w0", "w1", "w2", "w3"}
