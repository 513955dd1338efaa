"""The job engine on SqliteRunStore (DurableExecutor): the shared graphs give the same
final context and action as in memory; runs are stored, listed, found again; starting a
run id twice is idempotent; another graph under the same id is refused."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import TypedContext
from flowcraft.durable import DurableExecutor, RunConflictError, RunNotFoundError, SqliteRunStore
from flowcraft.engine import flow_from_factory

NAMES = list(d.GRAPHS)
EXPECTED = {name: d.in_memory(name) for name in NAMES}


@pytest.mark.timeout(90)
def test_same_results_as_in_memory(db_path: str) -> None:
    async def main() -> dict[str, tuple[Any, dict[str, Any]]]:
        async with DurableExecutor(db_path, registry=d.REGISTRY) as executor:
            handles = {}
            for name in NAMES:
                graph, initial = d.GRAPHS[name]
                handles[name] = await executor.start(d.build(graph), initial)
            return {name: (await h.result(timeout=30), await h.context()) for name, h in handles.items()}

    results = asyncio.run(main())
    for name in NAMES:
        assert results[name] == EXPECTED[name], name


@pytest.mark.timeout(60)
def test_flow_run_fills_the_context_and_the_run_is_stored(db_path: str) -> None:
    expected_ctx = TypedContext()
    expected_action = asyncio.run(d.make_pipeline().run(expected_ctx))

    async def main() -> tuple[Any, dict[str, Any], list[Any]]:
        async with DurableExecutor(db_path) as executor:
            ctx = TypedContext()
            flow = flow_from_factory("dist_nodes:make_pipeline")
            action = await flow.run(ctx, executor=executor)
            return action, ctx.to_dict(), await executor.runs()

    action, ctx, runs = asyncio.run(main())
    assert (action, ctx) == (expected_action, expected_ctx.to_dict())
    assert [run.state for run in runs] == ["completed"]

    async def later() -> Any:  # another executor on the same file finds the run
        async with DurableExecutor(db_path) as executor:
            handle = await executor.handle(runs[0].run_id)
            return await handle.result(timeout=5), await handle.context()

    assert asyncio.run(later()) == (expected_action, expected_ctx.to_dict())


@pytest.mark.timeout(60)
def test_starting_a_run_id_twice_returns_the_same_run(db_path: str) -> None:
    async def main() -> tuple[Any, Any, list[Any]]:
        async with DurableExecutor(db_path) as executor:
            first = await executor.start("dist_nodes:make_pipeline", run_id="order-1")
            second = await executor.start("dist_nodes:make_pipeline", run_id="order-1")
            return await first.result(timeout=20), await second.result(timeout=20), await executor.runs()

    first, second, runs = asyncio.run(main())
    assert first == second
    assert len(runs) == 1

    async def conflict() -> None:
        async with DurableExecutor(db_path) as executor:
            await executor.start("dist_nodes:make_other_pipeline", run_id="order-1")

    with pytest.raises(RunConflictError, match=r"Run 'order-1' exists with another graph"):
        asyncio.run(conflict())


def test_an_unknown_run_is_not_found(db_path: str) -> None:
    async def main() -> None:
        async with DurableExecutor(SqliteRunStore(db_path)) as executor:
            await executor.handle("nope")

    with pytest.raises(RunNotFoundError, match=r"Run 'nope' does not exist in SqliteRunStore"):
        asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_budget_stops_a_durable_run_after_k_node_runs(db_path: str) -> None:
    from flowcraft import Budget, BudgetExceededError

    async def main() -> tuple[Any, Any]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("dist_nodes:make_pipeline", budget=Budget(max_node_runs=3))
            with pytest.raises(BudgetExceededError) as caught:
                await handle.result(timeout=20)
            return caught.value, await handle.status()

    error, status = asyncio.run(main())
    assert (error.kind, error.limit, error.used) == ("node_runs", 3, 3)
    assert status.state == "failed" and status.usage == {"node_runs": 3}


@pytest.mark.timeout(60)
def test_outcome_says_where_a_run_stands_without_waiting(db_path: str) -> None:
    from flowcraft import RunOutcome

    async def main() -> tuple[RunOutcome, RunOutcome, RunOutcome]:
        async with DurableExecutor(db_path, registry=d.REGISTRY) as executor:
            done = await executor.start("dist_nodes:make_pipeline")
            await done.result(timeout=20)
            graph = {"nodes": [d.node("a"), d.node("bad", "fail")], "edges": [d.edge("a", "bad")]}
            failed = await executor.start(d.build(graph))
            with contextlib.suppress(Exception):
                await failed.result(timeout=20)
            cancelled = await executor.start("dist_nodes:make_pipeline")
            await cancelled.cancel("not needed")
            return await done.outcome(), await failed.outcome(), await cancelled.outcome()

    done, failed, cancelled = asyncio.run(main())
    assert done.state == "completed" and done.action is not None and done.error is None and done.waits == ()
    assert cancelled.state == "cancelled" and "not needed" in str(cancelled.error)
    assert failed.state == "failed" and "boom in bad" in str(failed.error) and failed.action is None


@pytest.mark.timeout(60)
def test_a_failed_runs_error_names_the_cause_once(db_path: str) -> None:
    from flowcraft import WorkflowError

    async def main() -> WorkflowError:
        async with DurableExecutor(db_path, registry=d.REGISTRY) as executor:
            graph = {"nodes": [d.node("a"), d.node("bad", "fail")], "edges": [d.edge("a", "bad")]}
            handle = await executor.start(d.build(graph))
            with pytest.raises(WorkflowError) as failed:
                await handle.result(timeout=20)
            return failed.value

    error = asyncio.run(main())
    assert str(error.original_error) == "ValueError: boom in bad"  # not the node's wrapper message again
    assert str(error).startswith("Node 'bad'") and error.phase == "exec"
