"""Run events: what is emitted, in which order, and that listeners can't break a run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowcraft import (
    AbortController,
    ContextChanged,
    EventStream,
    FallbackUsed,
    Flow,
    Node,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    ParallelFlow,
    RetryAttempt,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    TypedContext,
    WorkflowError,
)


class Put(Node):
    def __init__(self, key: str, value: Any = 1) -> None:
        super().__init__()
        self.key, self.value = key, value

    async def post(self, args):
        await args.ctx.set(self.key, self.value)


class Flaky(Node):
    def __init__(self, failures: int, fallback: bool = False) -> None:
        super().__init__(max_retries=2)
        self.failures = failures
        self.has_fallback = fallback

    def exec(self, args):
        if self.failures:
            self.failures -= 1
            raise ValueError("flaky")
        return "ok"

    def exec_fallback(self, args):
        if self.has_fallback:
            return "fallback"
        raise args.error


def kinds(events: list[RunEvent]) -> list[str]:
    return [type(e).__name__ + (f":{e.node_id}" if getattr(e, "node_id", None) else "") for e in events]


def test_linear_run_emits_run_and_node_events_in_order() -> None:
    a = Put("a").with_id("a")
    a.next(Put("b").with_id("b"))
    events: list[RunEvent] = []
    ctx = TypedContext()
    asyncio.run(Flow(a).run(ctx, on_event=events.append))
    assert kinds(events) == [
        "RunStarted",
        "NodeStarted:a",
        "ContextChanged:a",
        "NodeFinished:a",
        "NodeStarted:b",
        "ContextChanged:b",
        "NodeFinished:b",
        "RunFinished",
    ]
    assert len({e.run_id for e in events}) == 1
    changed = [e for e in events if isinstance(e, ContextChanged)]
    assert [c.keys_set for c in changed] == [("a",), ("b",)]
    assert ctx.to_dict() == {"a": 1, "b": 1}


def test_retry_and_fallback_events() -> None:
    node = Flaky(failures=2, fallback=True).with_id("flaky")
    events: list[RunEvent] = []
    asyncio.run(Flow(node).run(on_event=events.append))
    retries = [e for e in events if isinstance(e, RetryAttempt)]
    assert [(r.attempt, r.max_attempts) for r in retries] == [(1, 2)]
    assert isinstance(retries[0].error, ValueError)
    assert [type(e.error) for e in events if isinstance(e, FallbackUsed)] == [ValueError]
    assert isinstance(events[-1], RunFinished)


class AlwaysFails(Node):
    def exec(self, args):
        raise ValueError("always")


def test_failure_emits_node_failed_and_run_failed() -> None:
    node = AlwaysFails().with_id("bad")
    events: list[RunEvent] = []
    with pytest.raises(WorkflowError, match="bad"):
        asyncio.run(Flow(node).run(on_event=events.append))
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert len(failed) == 1 and failed[0].node_id == "bad" and failed[0].phase == "exec"
    assert isinstance(events[-1], RunFailed) and isinstance(events[-1].error, WorkflowError)
    assert not any(isinstance(e, FallbackUsed) for e in events), "the default fallback is not a fallback"


def test_abort_emits_run_cancelled() -> None:
    controller = AbortController()

    class Stop(Node):
        def exec(self, args):
            controller.abort("enough")

    events: list[RunEvent] = []
    with pytest.raises(Exception, match="enough"):
        asyncio.run(Flow(Stop()).run(controller=controller, on_event=events.append))
    assert isinstance(events[-1], RunCancelled) and events[-1].reason == "enough"


def test_a_raising_listener_never_breaks_the_run_and_is_logged() -> None:
    logged: list[str] = []

    class Recorder:
        def debug(self, message, /, **context): ...
        def info(self, message, /, **context): ...
        def warn(self, message, /, **context): ...
        def error(self, message, /, **context):
            logged.append(message)

    def listener(event: RunEvent) -> None:
        raise RuntimeError("listener bug")

    ctx = TypedContext()
    action = asyncio.run(Flow(Put("x")).run(ctx, on_event=listener, logger=Recorder()))
    assert ctx.to_dict() == {"x": 1}
    assert action is not None
    assert logged and all("listener bug" in m for m in logged)


def test_parallel_and_nested_flows_report_every_node() -> None:
    inner = Flow(Put("inner").with_id("inner"))
    inner.with_id("sub")
    left, right, join = Put("l").with_id("l"), Put("r").with_id("r"), Put("j").with_id("j")
    left.next(join)
    right.next(join)
    start = Put("s").with_id("s")
    start.next(ParallelFlow([left, right]).with_id("par")).next(inner)
    events: list[RunEvent] = []
    asyncio.run(Flow(start).run(on_event=events.append))
    finished = [e.node_id for e in events if isinstance(e, NodeFinished)]
    assert sorted(finished) == sorted(["s", "l", "r", "j", "par", "inner", "sub"])
    assert finished.count("j") == 1
    assert finished.index("j") > max(finished.index("l"), finished.index("r"))
    started = [e.node_id for e in events if isinstance(e, NodeStarted)]
    assert started.index("sub") < started.index("inner")


def test_event_stream_iterates_until_the_run_ends() -> None:
    async def main() -> list[str]:
        stream = EventStream()
        task = asyncio.create_task(Flow(Put("k").with_id("k")).run(on_event=stream))
        seen = [type(e).__name__ async for e in stream]
        await task
        return seen

    assert asyncio.run(main()) == ["RunStarted", "NodeStarted", "ContextChanged", "NodeFinished", "RunFinished"]


def test_no_listener_means_no_event_machinery() -> None:
    from flowcraft.executors.base import WalkScope

    seen: list[WalkScope] = []

    class Peek(Node):
        def exec(self, args):
            seen.append(args.scope)

    asyncio.run(Flow(Peek()).run())
    assert seen[0].events is None and seen[0].chain is None

    asyncio.run(Flow(Peek()).run(on_event=lambda e: None))
    assert seen[1].events is not None


def test_run_started_carries_flow_name_and_params() -> None:
    events: list[RunEvent] = []
    flow = Flow(Put("p")).with_params(a=1)
    asyncio.run(flow.run(params={"b": 2}, on_event=events.append))  # type: ignore[attr-defined]
    first = events[0]
    assert isinstance(first, RunStarted)
    assert first.flow == "Flow" and first.params == {"a": 1, "b": 2}
