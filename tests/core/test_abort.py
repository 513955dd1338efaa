"""SPEC §3.4 (cancellation), AbortSignal/AbortController/sleep (§9), asyncio task cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowcraft import (
    AbortController,
    AbortError,
    AbortSignal,
    BatchFlow,
    Flow,
    Node,
    ParallelBatchFlow,
    ParallelFlow,
    TypedContext,
    sleep,
)

from .helpers import Fn, Step, run


def test_abort_signal_basics():
    controller = AbortController()
    signal = controller.signal
    assert isinstance(signal, AbortSignal)
    assert not signal.aborted
    assert signal.reason is None
    controller.abort("because")
    assert signal.aborted
    assert signal.reason == "because"
    controller.abort("again")
    assert signal.reason == "because"


def test_abort_without_reason_gives_an_abort_error_reason():
    controller = AbortController()
    controller.abort()
    assert isinstance(controller.signal.reason, AbortError)
    with pytest.raises(AbortError, match="aborted"):
        controller.signal.throw_if_aborted()


def test_listeners_are_called_once_and_can_be_removed():
    controller = AbortController()
    seen, removed = [], []
    signal = controller.signal
    signal.add_listener(seen.append)
    signal.add_listener(removed.append)
    signal.remove_listener(removed.append)
    signal.remove_listener(print)  # never added: ignored
    controller.abort("r")
    controller.abort("r2")
    assert seen == ["r"]
    assert removed == []
    late = []
    signal.add_listener(late.append)  # already aborted: called at once
    assert late == ["r"]


def test_abort_wakes_waiters_first_and_isolates_each_listener(caplog):
    # A listener that raises is logged and the next one still runs; waiters are woken
    # before any listener runs, so a broken listener can never leave wait() hanging.
    controller = AbortController()
    signal = controller.signal
    calls = []

    def broken(reason):
        calls.append(("broken", inner.done()))  # the waiter's future is already resolved
        raise RuntimeError("listener bug")

    async def main():
        nonlocal inner
        waiter = asyncio.ensure_future(signal.wait())
        await asyncio.sleep(0)  # the waiter is registered
        (inner,) = signal._waiters
        signal.add_listener(broken)
        signal.add_listener(lambda reason: calls.append(("after", reason)))
        with caplog.at_level("ERROR", logger="flowcraft"):
            controller.abort("stop")  # does not raise
        return await asyncio.wait_for(waiter, 1.0)

    inner = None
    assert asyncio.run(main()) == "stop"
    assert calls == [("broken", True), ("after", "stop")]
    assert any("listener bug" in r.getMessage() or "listener bug" in str(r.exc_info) for r in caplog.records)


def test_wait_returns_the_reason_when_aborted():
    async def main():
        controller = AbortController()
        waiter = asyncio.create_task(controller.signal.wait())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        controller.abort("go")
        assert await waiter == "go"
        assert await controller.signal.wait() == "go"  # already aborted

    run(main())


def test_cancelled_wait_leaves_no_waiter_behind():
    async def main():
        controller = AbortController()
        waiter = asyncio.create_task(controller.signal.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert controller.signal._waiters == []
        controller.abort()

    run(main())


def test_sleep_is_interrupted_by_abort():
    async def main():
        controller = AbortController()
        asyncio.get_running_loop().call_later(0.02, controller.abort, "now")
        started = time.perf_counter()
        with pytest.raises(AbortError) as info:
            await sleep(5, controller.signal)
        assert time.perf_counter() - started < 1
        assert info.value.reason == "now"
        assert controller.signal._listeners == []

    run(main())


def test_sleep_without_signal_or_unaborted_signal_sleeps():
    async def main():
        await sleep(0.001)
        controller = AbortController()
        await sleep(0.001, controller.signal)
        assert controller.signal._listeners == []

    run(main())


def test_sleep_on_aborted_signal_raises_at_once():
    controller = AbortController()
    controller.abort()
    with pytest.raises(AbortError):
        run(sleep(10, controller.signal))


def test_run_with_pre_aborted_controller_runs_nothing():
    controller = AbortController()
    controller.abort("early")
    ctx = TypedContext()
    with pytest.raises(AbortError) as info:
        run(Flow(Step("a")).run(ctx, controller=controller))
    assert info.value.reason == "early"
    assert run(ctx.get("trail")) is None


class AbortIn(Node):
    """Aborts the controller in the given phase."""

    def __init__(self, controller, phase):
        super().__init__()
        self.controller = controller
        self.phase = phase
        self.ran = []

    def prep(self, args):
        self.ran.append("prep")
        if self.phase == "prep":
            self.controller.abort()

    def exec(self, args):
        self.ran.append("exec")
        if self.phase == "exec":
            self.controller.abort()

    def post(self, args):
        self.ran.append("post")
        if self.phase == "post":
            self.controller.abort()


@pytest.mark.parametrize(("phase", "ran"), [("prep", ["prep"]), ("exec", ["prep", "exec"]), ("post", None)])
def test_abort_is_checked_before_each_phase_and_between_nodes(phase, ran):
    controller = AbortController()
    node = AbortIn(controller, phase)
    ctx = TypedContext()
    node.next(Step("after"))
    with pytest.raises(AbortError):
        run(Flow(node).run(ctx, controller=controller))
    assert node.ran == (ran or ["prep", "exec", "post"])
    assert run(ctx.get("trail")) is None


def test_abort_between_retry_attempts():
    controller = AbortController()
    attempts = []

    class Failing(Node):
        def exec(self, args):
            attempts.append(1)
            controller.abort()
            raise ValueError("x")

    with pytest.raises(AbortError):
        run(Flow(Failing(max_retries=5)).run(controller=controller))
    assert len(attempts) == 1


def test_abort_during_the_last_node_still_raises():
    controller = AbortController()
    first = Step("first")
    last = AbortIn(controller, "post")
    first.next(last)
    ctx = TypedContext()
    with pytest.raises(AbortError):
        run(Flow(first).run(ctx, controller=controller))
    assert last.ran == ["prep", "exec", "post"]
    assert run(ctx.get("trail")) == ["first"]


def test_abort_during_the_last_node_of_a_sub_flow_still_raises():
    controller = AbortController()
    last = AbortIn(controller, "post")
    with pytest.raises(AbortError):
        run(Flow(Flow(Flow(last))).run(controller=controller))


@pytest.mark.parametrize("phase", ["exec", "post"])
def test_abort_in_the_only_node_raises(phase):
    controller = AbortController()
    with pytest.raises(AbortError):
        run(Flow(AbortIn(controller, phase)).run(controller=controller))


def test_abort_between_batch_items():
    controller = AbortController()
    seen = []

    class Item(Node):
        def exec(self, args):
            seen.append(args.params["i"])
            if args.params["i"] == 1:
                controller.abort()

    class Batch(BatchFlow):
        def prep(self, args):
            return [{"i": i} for i in range(5)]

    with pytest.raises(AbortError):
        run(Batch(Item()).run(controller=controller))
    assert seen == [0, 1]


def test_abort_reaches_every_parallel_branch():
    controller = AbortController()
    finished = []

    async def waiting(args):
        await sleep(10, args.signal)
        finished.append("never")

    flow = Flow(ParallelFlow([Fn(waiting), Fn(waiting), Fn(waiting)]))

    async def main():
        asyncio.get_running_loop().call_later(0.02, controller.abort)
        with pytest.raises(AbortError):
            await flow.run(controller=controller)

    started = time.perf_counter()
    run(main())
    assert time.perf_counter() - started < 1
    assert finished == []


def test_signal_wins_over_controller():
    winner, loser = AbortController(), AbortController()
    loser.abort("loser")
    seen = []
    node = Fn(lambda args: seen.append(args.signal))
    run(Flow(node).run(signal=winner.signal, controller=loser))
    assert seen == [winner.signal]
    winner.abort("winner")
    with pytest.raises(AbortError) as info:
        run(Flow(Node()).run(signal=winner.signal, controller=AbortController()))
    assert info.value.reason == "winner"


def test_node_sees_the_controllers_signal():
    controller = AbortController()
    seen = []
    run(Flow(Fn(lambda args: seen.append(args.signal))).run(controller=controller))
    assert seen == [controller.signal]


# ---- asyncio task cancellation -------------------------------------------------------------


def _cancel_after(flow, delay, *, started_event_key="started"):
    """Run ``flow`` in a task, cancel it after ``delay``; returns (elapsed, leftover tasks)."""

    async def main():
        before = asyncio.all_tasks()
        task = asyncio.create_task(flow.run(TypedContext()))
        await asyncio.sleep(delay)
        t0 = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0)
        return elapsed, asyncio.all_tasks() - before - {asyncio.current_task()}

    return run(main())


class Sleeper(Node):
    def __init__(self, delay, log):
        super().__init__()
        self.delay = delay
        self.log = log

    async def exec(self, args):
        self.log.append("start")
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.log.append("cancelled")
            raise
        self.log.append("finished")


def test_cancelling_the_task_stops_a_sequential_run_at_once():
    log = []
    first = Sleeper(10, log)
    first.next(Step("after"))
    elapsed, leftover = _cancel_after(Flow(first), 0.02)
    assert elapsed < 0.5
    assert leftover == set()
    assert log == ["start", "cancelled"]


def test_cancelling_the_task_cancels_every_parallel_branch():
    log = []
    inner = ParallelFlow([Sleeper(10, log), Sleeper(10, log)])
    flow = Flow(ParallelFlow([Sleeper(10, log), Flow(inner), Sleeper(10, log)]))
    elapsed, leftover = _cancel_after(flow, 0.05)
    assert elapsed < 0.5
    assert leftover == set()
    assert log.count("start") == 4
    assert log.count("cancelled") == 4
    assert "finished" not in log


def test_cancelling_the_task_cancels_parallel_batch_items():
    log = []

    class Batch(ParallelBatchFlow):
        def prep(self, args):
            return [{"i": i} for i in range(6)]

    elapsed, leftover = _cancel_after(Flow(Batch(Sleeper(10, log), concurrency=3)), 0.05)
    assert elapsed < 0.5
    assert leftover == set()
    assert log == ["start"] * 3 + ["cancelled"] * 3


def test_cancelling_during_retry_wait_stops():
    class Failing(Node):
        def exec(self, args):
            raise ValueError("x")

    elapsed, leftover = _cancel_after(Flow(Failing(max_retries=3, wait=10)), 0.02)
    assert elapsed < 0.5
    assert leftover == set()


def test_cancelled_error_inside_a_node_is_not_swallowed():
    class SelfCancel(Node):
        async def exec(self, args):
            raise asyncio.CancelledError()

        def exec_fallback(self, args):
            return "swallowed"

    with pytest.raises(asyncio.CancelledError):
        run(Flow(ParallelFlow([SelfCancel(), Step("other", delay=0.01)])).run())


def test_abort_from_another_thread_wakes_sleep_and_wait_on_their_loop() -> None:
    import threading
    import time as _time

    from flowcraft import AbortController, AbortError, Flow, Node, sleep

    controller = AbortController()
    woke: list[object] = []

    class Sleeper(Node):
        async def exec(self, args):
            await sleep(5.0, args.signal)

    async def main() -> float:
        waiter = asyncio.ensure_future(controller.signal.wait())
        threading.Timer(0.2, controller.abort, args=("from a thread",)).start()
        started = _time.monotonic()
        with pytest.raises(AbortError, match="from a thread"):
            await Flow(Sleeper()).run(controller=controller)
        woke.append(await asyncio.wait_for(waiter, 1.0))
        return _time.monotonic() - started

    elapsed = asyncio.run(main())
    assert elapsed < 2.0
    assert woke == ["from a thread"]
