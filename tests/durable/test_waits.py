"""Waits for people and durable timers on SQLite: a run parks on a WaitNode
(RunSuspended), resumes with a value and an action, in this or another process;
parallel branches park alone; two waits resume in any order; concurrent resumes have
one winner; bad resumes leave the wait open; timers run on an injected clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import wait_nodes as w

from flowcraft import (
    DEFAULT_ACTION,
    InvalidResumeValue,
    RunNotFoundError,
    RunSuspended,
    UnknownWaitError,
    WaitAlreadyResolved,
)
from flowcraft.clock import Clock
from flowcraft.durable import DurableExecutor
from flowcraft.graph import GraphBuilder


class ManualClock(Clock):
    def __init__(self, now: float = 1_000_000.0) -> None:
        super().__init__()
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.mark.timeout(60)
def test_a_run_parks_on_a_wait_and_resumes_with_a_value_and_an_action(db_path: str) -> None:
    async def main() -> tuple[RunSuspended, str, Any, Any, dict[str, Any]]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r1")
            with pytest.raises(RunSuspended) as suspended:
                await handle.result(timeout=10)
            state = (await handle.status()).state
            waits = await handle.waits()
            resumed = await executor.resume("r1", "approve#1", {"by": "ana"}, action="approve")
            return suspended.value, state, waits, await resumed.result(timeout=10), await resumed.context()

    suspended, state, waits, action, ctx = asyncio.run(main())
    assert state == "awaiting"
    assert [wait.id for wait in suspended.waits] == ["approve#1"] and suspended.run_id == "r1"
    (wait,) = waits
    assert (wait.node_id, wait.kind, wait.actions) == ("approve", "input", ("approve", "reject"))
    assert wait.request == {"draft": "Dear customer, ..."} and wait.fire_at is not None
    assert action == "finished"
    assert ctx == {"draft": "Dear customer, ...", "review": {"by": "ana"}, "outcome": "sent"}


@pytest.mark.timeout(60)
def test_flow_run_raises_run_suspended_and_fills_the_context_so_far(db_path: str) -> None:
    from flowcraft import TypedContext
    from flowcraft.engine import flow_from_factory

    async def main() -> tuple[str, dict[str, Any]]:
        async with DurableExecutor(db_path) as executor:
            ctx = TypedContext()
            try:
                await flow_from_factory("wait_nodes:make_approval").run(ctx, executor=executor)
            except RunSuspended as error:
                return error.waits[0].id, ctx.to_dict()
            return "not suspended", ctx.to_dict()

    assert asyncio.run(main()) == ("approve#1", {"draft": "Dear customer, ..."})


@pytest.mark.timeout(60)
def test_a_wait_in_a_parallel_branch_parks_only_that_branch_and_holds_the_join(db_path: str) -> None:
    blueprint = GraphBuilder(w.REGISTRY).build_blueprint(w.PARALLEL_WAITS).blueprint

    async def main(order: list[tuple[str, Any, Any]]) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
        async with DurableExecutor(db_path, registry=w.REGISTRY) as executor:
            handle = await executor.start(blueprint)
            with pytest.raises(RunSuspended) as suspended:
                await handle.result(timeout=10)
            parked = await handle.context()
            for wait_id, value, action in order:
                await executor.resume(handle.run_id, wait_id, value, action=action)
                if wait_id != order[-1][0]:  # the other branch still waits: the join holds
                    with pytest.raises(RunSuspended):
                        await handle.result(timeout=10)
            await handle.result(timeout=10)
            return parked, sorted(wait.id for wait in suspended.value.waits), await handle.context()

    for order in ([("w1#1", "x", None), ("w2#1", 2, "ok")], [("w2#1", 2, "ok"), ("w1#1", "x", None)]):
        parked, waits, final = asyncio.run(main(order))
        assert waits == ["w1#1", "w2#1"]
        assert parked["mark:a"] and parked["mark:b"] and "collected" not in parked  # siblings ran, the join held
        assert final["first"] == "x" and final["second"] == 2 and final["collected"] == 1


@pytest.mark.timeout(60)
def test_of_twenty_concurrent_resumes_exactly_one_wins(db_path: str) -> None:
    async def main() -> tuple[list[Any], Any, dict[str, Any]]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r")
            with pytest.raises(RunSuspended):
                await handle.result(timeout=10)
            results = await asyncio.gather(
                *(executor.resume("r", "approve#1", i, action="approve") for i in range(20)), return_exceptions=True
            )
            return results, await handle.result(timeout=10), await handle.context()

    results, action, ctx = asyncio.run(main())
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 19
    assert all(isinstance(r, WaitAlreadyResolved) for r in losers)
    assert action == "finished" and ctx["review"] in range(20)


@pytest.mark.timeout(60)
def test_bad_resumes_are_refused_and_the_wait_stays_open(db_path: str) -> None:
    async def main() -> list[str]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r")
            with pytest.raises(RunSuspended):
                await handle.result(timeout=10)
            seen = []
            with pytest.raises(RunNotFoundError, match=r"Run 'nope' does not exist"):
                await executor.resume("nope", "approve#1", 1)
            with pytest.raises(UnknownWaitError, match=r"Run 'r' has no wait 'approve#2' \(open waits: approve#1\)"):
                await executor.resume("r", "approve#2", 1)
            with pytest.raises(InvalidResumeValue, match=r"allows the actions \['approve', 'reject'\], not 'maybe'"):
                await executor.resume("r", "approve#1", 1, action="maybe")
            with pytest.raises(InvalidResumeValue, match=r"needs an action, one of \['approve', 'reject'\]"):
                await executor.resume("r", "approve#1", 1)
            with pytest.raises(InvalidResumeValue, match=r"holds a builtins.object"):
                await executor.resume("r", "approve#1", object(), action="approve")
            seen.append((await handle.status()).state)
            first = await executor.resume("r", "approve#1", "yes", action="approve", idempotency_key="k1")
            again = await executor.resume("r", "approve#1", "yes", action="approve", idempotency_key="k1")
            seen.append(str(again.run_id == first.run_id))
            with pytest.raises(WaitAlreadyResolved, match=r"resolved already \(idempotency key 'k1'\)"):
                await executor.resume("r", "approve#1", "no", action="reject", idempotency_key="k1")
            await first.result(timeout=10)
            with pytest.raises(WaitAlreadyResolved, match=r"resolved already|has stopped"):
                await executor.resume("r", "approve#1", "late", action="approve")
            seen.append((await first.context())["outcome"])
            return seen

    assert asyncio.run(main()) == ["awaiting", "True", "sent"]


@pytest.mark.timeout(60)
def test_timers_on_a_fake_clock_sleep_and_expire(db_path: str) -> None:
    clock = ManualClock()

    async def main() -> tuple[list[str], list[str], Any, Any, dict[str, Any]]:
        async with DurableExecutor(db_path, clock=clock) as executor:
            nap = await executor.start("wait_nodes:make_nap", run_id="nap")
            review = await executor.start("wait_nodes:make_approval", run_id="review")
            with pytest.raises(RunSuspended):
                await review.result(timeout=10)
            for _ in range(100):  # the nap parks
                if (await nap.status()).state == "awaiting":
                    break
                await asyncio.sleep(0.01)
            (sleeping,) = await nap.waits()
            clock.now += 1800  # half an hour: nothing is due
            early = await executor.fire_due_timers()
            clock.now += 1801  # past the hour: the nap wakes; the review (24 h) still waits
            woke = await executor.fire_due_timers()
            nap_action = await nap.result(timeout=10)
            clock.now += 24 * 3600  # the review expires: on_timeout = "reject"
            expired = await executor.fire_due_timers()
            await review.result(timeout=10)
            return early, woke + expired, (sleeping.kind, sleeping.fire_at), nap_action, await review.context()

    early, fired, sleeping, nap_action, review = asyncio.run(main())
    assert early == [] and fired == ["nap#1", "approve#1"]
    assert sleeping == ("timer", 1_000_000.0 + 3600)
    assert nap_action == "finished"
    assert review["outcome"] == "discarded" and review["review"] is None


@pytest.mark.timeout(60)
def test_a_cancelled_awaiting_run_stays_cancelled(db_path: str) -> None:
    from flowcraft import AbortError

    async def main() -> tuple[str, str]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r")
            with pytest.raises(RunSuspended):
                await handle.result(timeout=10)
            await handle.cancel("no longer needed")
            with pytest.raises(AbortError):
                await handle.result(timeout=10)
            with pytest.raises(WaitAlreadyResolved, match=r"has stopped \(cancelled\)"):
                await executor.resume("r", "approve#1", 1, action="approve")
            return (await handle.status()).state, str((await handle.outcome()).error)

    state, error = asyncio.run(main())
    assert state == "cancelled" and "no longer needed" in error


def test_a_wait_outside_a_durable_run_is_refused() -> None:
    from flowcraft import DurabilityNotSupportedError, TypedContext

    with pytest.raises(DurabilityNotSupportedError, match=r"Wait node 'approve' \(Approve\) can only run as a step"):
        asyncio.run(w.make_approval().run(TypedContext()))


def test_bad_durations_are_refused_when_building() -> None:
    from flowcraft import GraphError, SleepNode

    with pytest.raises(GraphError, match=r"a duration must be a finite number of seconds >= 0, got -5"):
        SleepNode(-5)
    with pytest.raises(GraphError, match=r"cannot read 'soon' as a duration"):
        GraphBuilder(w.REGISTRY).build({"nodes": [w.node("s", "sleep", duration="soon")], "edges": []})
    assert SleepNode("24h").seconds == 86400 and SleepNode("5m").seconds == 300 and SleepNode(2).seconds == 2
    assert DEFAULT_ACTION is not None


@pytest.mark.timeout(60)
def test_the_run_events_show_the_pause_and_the_resume(db_path: str) -> None:
    from flowcraft import RunAwaiting, RunFinished, WaitResolved

    async def main() -> list[Any]:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r", events=True)
            with pytest.raises(RunSuspended):
                await handle.result(timeout=10)
            await executor.resume("r", "approve#1", "fine", action="approve")
            await handle.result(timeout=10)
            return [event async for event in handle.events()]

    events = asyncio.run(main())
    kinds = [type(event).__name__ for event in events]
    assert kinds.index("RunAwaiting") < kinds.index("WaitResolved") < kinds.index("RunFinished")
    awaiting = next(e for e in events if isinstance(e, RunAwaiting))
    resolved = next(e for e in events if isinstance(e, WaitResolved))
    assert (awaiting.wait_id, awaiting.kind, awaiting.node_id) == ("approve#1", "input", "approve")
    assert (resolved.wait_id, resolved.action, resolved.by) == ("approve#1", "approve", "resume")
    assert isinstance(events[-1], RunFinished) and events[-1].action == "finished"


@pytest.mark.timeout(60)
def test_a_wait_inside_an_in_process_block_is_refused_before_the_run_starts(db_path: str) -> None:
    from flowcraft import GraphError

    async def main() -> list[Any]:
        async with DurableExecutor(db_path) as executor:
            with pytest.raises(GraphError) as refused:
                await executor.start("wait_nodes:make_wait_in_block", run_id="r")
            assert "Wait node 'inner' is inside 'block' (ParallelFlow), which runs as one step" in str(refused.value)
            with pytest.raises(GraphError) as in_batch:
                await executor.start("wait_nodes:make_wait_in_batch", run_id="b")
            assert "Wait node 'per-item' is inside 'batch' (Items), which runs as one step" in str(in_batch.value)
            return list(await executor.runs())

    assert asyncio.run(main()) == []  # nothing was stored


@pytest.mark.timeout(60)
def test_cancelling_a_sleeping_run_closes_its_timer(db_path: str) -> None:
    clock = ManualClock()

    async def main() -> tuple[list[Any], list[str], int]:
        async with DurableExecutor(db_path, clock=clock) as executor:
            nap = await executor.start("wait_nodes:make_nap", run_id="nap")
            for _ in range(200):
                if await nap.waits():
                    break
                await asyncio.sleep(0.01)
            await nap.cancel("changed my mind")
            clock.now += 7200  # past the nap's time: it must not fire
            calls = 0
            original = executor.durable_store.due

            async def counting(now: float, limit: int = 100) -> list[tuple[str, str]]:
                nonlocal calls
                calls += 1
                return await original(now, limit)

            executor.durable_store.due = counting  # type: ignore[method-assign]
            fired = await executor.fire_due_timers()
            await asyncio.sleep(0.5)  # the timer loop runs meanwhile: it must not spin
            return await nap.waits(), fired, calls

    waits, fired, calls = asyncio.run(main())
    assert waits == [] and fired == []
    assert calls < 20


def test_wait_settings_that_cannot_work_are_refused_naming_the_node() -> None:
    from flowcraft import GraphError, WaitNode

    class Review(WaitNode):
        actions = ("approve", "reject")
        wait_timeout = 3600

    with pytest.raises(GraphError, match=r"Wait node Review: it expires after 3600 s but has no on_timeout"):
        Review()
    builder = GraphBuilder(w.REGISTRY)
    bad = {"actions": ["a"], "onTimeout": "b"}
    with pytest.raises(GraphError, match=r"Wait node 'ask': on_timeout 'b' is not one of its actions \['a'\]"):
        builder.build({"nodes": [w.node("ask", "wait", **bad)], "edges": []})
    with pytest.raises(GraphError, match=r"Wait node 'ask': data.timeout: a duration must be >= 0, got '-1s'"):
        builder.build({"nodes": [w.node("ask", "wait", timeout="-1s")], "edges": []})


@pytest.mark.timeout(60)
def test_long_retry_waits_park_the_job_on_timers_and_keep_the_attempt_count(db_path: str) -> None:
    clock = ManualClock()
    w.ATTEMPTS.clear()

    async def main() -> tuple[list[Any], list[str], list[str], Any, dict[str, Any]]:
        async with DurableExecutor(db_path, clock=clock) as executor:
            handle = await executor.start("wait_nodes:make_flaky", run_id="f")
            states = []
            for _ in range(200):  # attempt 1 fails: the job parks on a 10 s timer
                if await handle.waits():
                    break
                await asyncio.sleep(0.01)
            first = [(wait.id, wait.kind, wait.fire_at) for wait in await handle.waits()]
            states.append((await handle.status()).state)
            clock.now += 10
            fired = await executor.fire_due_timers()
            for _ in range(200):  # attempt 2 fails: 20 s this time
                if [wait.id for wait in await handle.waits()] == ["call#1~retry2"]:
                    break
                await asyncio.sleep(0.01)
            clock.now += 19
            early = await executor.fire_due_timers()
            clock.now += 1
            fired += await executor.fire_due_timers()
            action = await handle.result(timeout=10)
            return first + states, fired, early, action, await handle.context()

    first, fired, early, action, ctx = asyncio.run(main())
    assert first == [("call#1~retry1", "timer", 1_000_000.0 + 10), "awaiting"]  # no process held meanwhile
    assert fired == ["call#1~retry1", "call#1~retry2"] and early == []
    assert w.ATTEMPTS == [1, 2, 3]  # three attempts in all, not three per resumption
    assert action == "finished" and ctx == {"started": True, "attempts": 3, "done": True}


@pytest.mark.timeout(60)
def test_a_resolved_wait_names_itself_on_the_job_it_resumes(db_path: str) -> None:
    """The resumed delivery carries its wait's id, on SQLite as on Redis: an in-process
    queue tells it from the delivery that parked (and from an earlier resume of the same
    job, when a retry timer parks it again) by that id."""
    from flowcraft.engine.codec import encode, encode_action
    from flowcraft.engine.jobs import Resolution

    async def main() -> Any:
        async with DurableExecutor(db_path) as executor:
            handle = await executor.start("wait_nodes:make_approval", run_id="r1")
            with pytest.raises(RunSuspended):
                await handle.result(timeout=10)
            resolution = Resolution(encode({"by": "ana"}), encode_action("approve"))
            return (await executor.store.resolve("r1", "approve#1", resolution)).job

    job = asyncio.run(main())
    assert job is not None and job.resumed
    assert job.wait == "approve#1"
