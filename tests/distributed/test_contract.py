"""The executor contract: the same blueprints give the same final context and action
in memory and with 1, 2 and 4 worker processes."""

from __future__ import annotations

import asyncio
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import TypedContext
from flowcraft.graph import BlueprintExecutor

from .conftest import Space

NAMES = list(d.GRAPHS)


EXPECTED = {name: d.in_memory(name) for name in NAMES}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_same_results_as_in_memory(space: Space, workers: int) -> None:
    space.start_workers(workers, concurrency=4)

    async def main() -> dict[str, tuple[Any, dict[str, Any]]]:
        async with space.executor() as executor:
            handles = {}
            for name in NAMES:  # all runs at once, so several workers share each one
                graph, initial = d.GRAPHS[name]
                handles[name] = await executor.start(d.build(graph), initial)
            results = {}
            for name, handle in handles.items():
                action = await handle.result(timeout=60)
                results[name] = (action, await handle.context())
            return results

    results = asyncio.run(main())
    for name in NAMES:
        assert results[name] == EXPECTED[name], name


def test_flow_run_fills_the_callers_context(space: Space) -> None:
    space.start_workers(1)
    graph, _ = d.GRAPHS["fan_in"]
    bx = BlueprintExecutor(d.build(graph), d.REGISTRY)  # GraphBuilder(...).build(graph).flow works the same
    flow = bx.flow
    assert flow.blueprint is bx.blueprint

    async def main() -> tuple[Any, dict[str, Any]]:
        ctx = TypedContext({"stale": 1})
        async with space.executor() as executor:
            action = await flow.run(ctx, executor=executor)
        return action, ctx.to_dict()

    action, ctx = asyncio.run(main())
    assert (action, ctx) == (EXPECTED["fan_in"][0], {"stale": 1, **EXPECTED["fan_in"][1]})


def test_a_flow_without_blueprint_is_refused(space: Space) -> None:
    from flowcraft import Flow
    from flowcraft.distributed import NotABlueprintFlowError

    async def main() -> None:
        async with space.executor() as executor:
            await Flow(d.Noop()).run(TypedContext(), executor=executor)

    with pytest.raises(
        NotABlueprintFlowError,
        match=r"neither: \(1\) a flow built from a blueprint .* \(2\) a programmatic flow named by a factory",
    ):
        asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_factory_flow_runs_on_two_workers_like_in_memory(space: Space) -> None:
    """A programmatic flow (no blueprint), named by its factory, on two worker processes."""
    from flowcraft.engine import flow_from_factory

    expected_ctx = TypedContext()
    expected_action = asyncio.run(d.make_pipeline().run(expected_ctx))
    space.start_workers(2, concurrency=4)

    async def main() -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start("dist_nodes:make_pipeline")
            first = (await handle.result(timeout=30), await handle.context())
            ctx = TypedContext()
            action = await flow_from_factory("dist_nodes:make_pipeline").run(ctx, executor=executor)
            return (*first, action, ctx.to_dict())

    action1, ctx1, action2, ctx2 = asyncio.run(main())
    assert (action1, ctx1) == (expected_action, expected_ctx.to_dict())
    assert (action2, ctx2) == (expected_action, expected_ctx.to_dict())


@pytest.mark.timeout(60)
def test_a_worker_whose_graph_differs_refuses_the_job(space: Space) -> None:
    """The run pins the structural hash of the factory's graph; a worker that builds a
    different graph (here: the stored record names another factory) blocks the run,
    saying which nodes differ."""
    import json

    import redis

    from flowcraft.distributed.keys import Keys
    from flowcraft.engine.errors import RunBlockedError

    async def main() -> None:
        async with space.executor() as executor:  # no worker yet: nothing hydrates before the swap
            client = redis.asyncio.Redis.from_url(space.url, decode_responses=True)
            keys = Keys(space.prefix)
            handle = await executor.start("dist_nodes:make_pipeline", run_id="pinned")
            meta = await client.hgetall(keys.run("pinned").meta)
            record = json.loads(await client.get(keys.blueprint(meta["blueprint"])))
            record["factory"] = "dist_nodes:make_other_pipeline"
            await client.set(keys.blueprint(meta["blueprint"]), json.dumps(record))
            await client.aclose()
            await asyncio.to_thread(space.start_workers, 1)
            try:
                await handle.result(timeout=30)
            finally:
                assert (await handle.status()).state == "blocked"

    with pytest.raises(
        RunBlockedError,
        match=r"Run 'pinned' is blocked at node .*builds a different graph here than the one the run was started "
        r"with \((added|removed|changed): \w",
    ):
        asyncio.run(main())
