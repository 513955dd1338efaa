"""Waits and timers on Redis with two worker processes: a run parks in a parallel branch
(its siblings run, the join holds), the waits are resumed from the client in either
order, and the join fires once; of 20 concurrent resumes of one wait exactly one wins;
a sleep is fired by a worker."""

from __future__ import annotations

import asyncio
from typing import Any

import dist_nodes as d
import pytest

from flowcraft import RunSuspended, WaitAlreadyResolved

from .conftest import Space

PARALLEL_WAITS = {
    "nodes": [
        d.node("start"), d.node("a"), d.node("b"),
        d.node("w1", "wait", output="first"), d.node("w2", "wait", output="second", actions=["ok", "no"]),
        d.node("join", "collect"),
    ],
    "edges": [
        d.edge("start", "a"), d.edge("start", "w1"), d.edge("start", "w2"), d.edge("start", "b"),
        d.edge("a", "join"), d.edge("w1", "join"), d.edge("w2", "join"), d.edge("b", "join"),
    ],
}  # fmt: skip

NAP = {
    "nodes": [d.node("start"), d.node("nap", "sleep", duration="1s"), d.node("end")],
    "edges": [d.edge("start", "nap"), d.edge("nap", "end")],
}


@pytest.mark.timeout(120)
def test_waits_in_parallel_branches_resume_in_either_order_across_workers(space: Space) -> None:
    space.start_workers(2)
    blueprint = d.build(PARALLEL_WAITS)

    async def main(order: list[tuple[str, Any, Any]]) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(blueprint)
            with pytest.raises(RunSuspended) as suspended:
                await handle.result(timeout=30)
            parked = await handle.context()
            for wait_id, value, action in order:
                await executor.resume(handle.run_id, wait_id, value, action=action)
            await handle.result(timeout=30)
            return sorted(w.id for w in suspended.value.waits), parked, await handle.context()

    for order in ([("w1#1", "x", None), ("w2#1", 2, "ok")], [("w2#1", 2, "ok"), ("w1#1", "x", None)]):
        waits, parked, final = asyncio.run(main(order))
        assert waits == ["w1#1", "w2#1"]
        assert parked["mark:a"] == 1 and parked["mark:b"] == 1 and "collected" not in parked
        assert final["first"] == "x" and final["second"] == 2 and final["collected"] == 1


@pytest.mark.timeout(120)
def test_of_twenty_concurrent_resumes_one_wins_and_a_worker_fires_a_sleep(space: Space) -> None:
    space.start_workers(2)
    waiting = d.build({"nodes": [d.node("start"), d.node("ask", "wait", output="answer")],
                       "edges": [d.edge("start", "ask")]})  # fmt: skip

    async def main() -> tuple[list[Any], dict[str, Any], Any, dict[str, Any]]:
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(waiting)
            with pytest.raises(RunSuspended):
                await handle.result(timeout=30)
            results = await asyncio.gather(
                *(executor.resume(handle.run_id, "ask#1", i) for i in range(20)), return_exceptions=True
            )
            await handle.result(timeout=30)
            nap = await executor.start(d.build(NAP))
            action = await nap.result(timeout=30)  # waits through the timer: a worker fires it
            return results, await handle.context(), action, await nap.context()

    results, ctx, action, nap = asyncio.run(main())
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, WaitAlreadyResolved) for r in results if isinstance(r, BaseException))
    assert ctx["answer"] in range(20)
    assert nap["mark:end"] == 1 and action is not None


@pytest.mark.timeout(120)
def test_kill_9_of_the_workers_while_awaiting_then_resume_from_another_client(space: Space) -> None:
    import signal

    victims = space.start_workers(2)
    blueprint = d.build(PARALLEL_WAITS)

    async def park() -> str:
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(blueprint)
            with pytest.raises(RunSuspended):
                await handle.result(timeout=30)
            return handle.run_id

    run_id = asyncio.run(park())
    for victim in victims:
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
    space.start_workers(1)

    async def resume() -> dict[str, Any]:
        async with space.executor(poll_interval=0.1) as executor:  # another client, later
            await executor.resume(run_id, "w2#1", 7, action="no")
            handle = await executor.resume(run_id, "w1#1", "y")
            await handle.result(timeout=30)
            return await handle.context()

    final = asyncio.run(resume())
    assert (final["first"], final["second"], final["collected"]) == ("y", 7, 1)


@pytest.mark.timeout(120)
def test_the_reconciler_rearms_a_lost_timer_and_leaves_parked_jobs_alone(space: Space) -> None:
    import redis as redis_lib

    from flowcraft.distributed.keys import Keys

    worker = space.start_worker(extra_args=("--reconcile-interval", "0.5"))
    worker.wait_ready()
    graph = d.build({
        "nodes": [d.node("start"), d.node("ask", "wait", actions=["ok", "late"], timeout="1s", onTimeout="late"),
                  d.node("ontime"), d.node("overdue")],
        "edges": [d.edge("start", "ask"), d.edge("ask", "ontime", "ok"), d.edge("ask", "overdue", "late")],
    })  # fmt: skip

    async def main() -> dict[str, Any]:
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(graph)
            with pytest.raises(RunSuspended):
                await handle.result(timeout=30)
            client = redis_lib.Redis.from_url(space.url)
            removed = client.zrem(Keys(space.prefix).timers, f"{handle.run_id}\x1fask#1")  # the timer is lost
            client.close()
            assert removed == 1
            with pytest.raises(RunSuspended):  # still parked: the input wait is open until the timer fires
                await handle.result(timeout=5)
            for _ in range(100):  # the reconciler arms it again; a worker fires it
                if (await handle.status()).finished:
                    break
                await asyncio.sleep(0.1)
            return await handle.context()

    ctx = asyncio.run(main())
    assert ctx.get("mark:overdue") == 1 and "mark:ontime" not in ctx
    assert "were not in the queue" not in worker.output()  # the parked job was not taken for a lost one


@pytest.mark.timeout(60)
def test_cancel_an_awaiting_run_on_redis(space: Space) -> None:
    from flowcraft import AbortError

    space.start_workers(1)
    graph = d.build({"nodes": [d.node("start"), d.node("ask", "wait")], "edges": [d.edge("start", "ask")]})

    async def main() -> tuple[str, list[Any]]:
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(graph)
            with pytest.raises(RunSuspended):
                await handle.result(timeout=30)
            await handle.cancel("nobody will answer")
            with pytest.raises(AbortError, match="nobody will answer"):
                await handle.result(timeout=10)
            with pytest.raises(WaitAlreadyResolved, match=r"has stopped \(cancelled\)"):
                await executor.resume(handle.run_id, "ask#1", 1)
            return (await handle.status()).state, await handle.waits()

    state, waits = asyncio.run(main())
    assert state == "cancelled" and waits == []
