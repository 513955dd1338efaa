"""SPEC §3.9 and §8.4: BatchFlow / ParallelBatchFlow."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    BatchFlow,
    BatchOutcome,
    FatalWorkflowError,
    Flow,
    Node,
    ParallelBatchFlow,
    TypedContext,
    WorkflowError,
)

from .helpers import RecordingLogger, Step, run


class Item(Node):
    def __init__(self, log, fail_on=(), delay=0.0):
        super().__init__()
        self.with_id("item")
        self.log = log
        self.fail_on = set(fail_on)
        self.delay = delay

    async def exec(self, args):
        i = args.params["i"]
        if self.delay:
            await asyncio.sleep(self.delay * (5 - i))
        if i in self.fail_on:
            raise ValueError(f"item {i} failed")
        self.log.append(i)
        return i

    def post(self, args):
        return f"done{args.exec_res}"


def make_batch(cls, n=4, **kwargs):
    prep_calls = []

    class Batch(cls):
        def prep(self, args):
            prep_calls.append(1)
            return [{"i": i} for i in range(n)]

        def post(self, args):
            prep_calls.append(args.exec_res)
            return super().post(args)

    return Batch, prep_calls


def test_batch_flow_runs_items_in_order_and_calls_prep_once():
    log = []
    Batch, calls = make_batch(BatchFlow)
    after = Step("after")
    batch = Batch(Item(log, delay=0.005))
    batch.next(after)
    ctx = TypedContext()
    assert run(Flow(batch).run(ctx)) is DEFAULT_ACTION
    assert log == [0, 1, 2, 3]
    assert calls[0] == 1
    assert calls.count(1) == 1
    outcomes = calls[-1]
    assert [o.action for o in outcomes] == ["done0", "done1", "done2", "done3"]
    assert all(isinstance(o, BatchOutcome) and o.ok for o in outcomes)
    assert [o.params for o in outcomes] == [{"i": i} for i in range(4)]
    assert run(ctx.get("trail")) == ["after"]


def test_batch_flow_stops_at_first_failure():
    log = []
    Batch, _ = make_batch(BatchFlow)
    with pytest.raises(WorkflowError, match="item 1 failed"):
        run(Flow(Batch(Item(log, fail_on={1}))).run())
    assert log == [0]


def test_parallel_batch_runs_concurrently_and_reports_each_item():
    log = []
    Batch, calls = make_batch(ParallelBatchFlow)
    run(Flow(Batch(Item(log, delay=0.01))).run())
    assert sorted(log) == [0, 1, 2, 3]
    assert log != [0, 1, 2, 3]  # later items sleep less, so they finish first
    assert calls.count(1) == 1
    assert [o.index for o in calls[-1]] == [0, 1, 2, 3]


def test_parallel_batch_failed_items_are_reported_and_logged():
    log = []
    Batch, calls = make_batch(ParallelBatchFlow)
    logger = RecordingLogger()
    after = Step("after")
    batch = Batch(Item(log, fail_on={1, 3}))
    batch.next(after)
    ctx = TypedContext()
    run(Flow(batch).run(ctx, logger=logger))
    assert sorted(log) == [0, 2]
    outcomes = calls[-1]
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert isinstance(outcomes[1].error, WorkflowError)
    assert isinstance(outcomes[1].error.__cause__, ValueError)
    assert outcomes[1].action is None
    errors = [m for m in logger.messages("error") if "Parallel batch item" in m]
    assert len(errors) == 2
    assert "item 1" in errors[0] or "item 1" in errors[1]
    assert run(ctx.get("trail")) == ["after"]


def test_parallel_batch_fatal_error_stops_everything():
    log = []

    class FatalItem(Item):
        async def exec(self, args):
            if args.params["i"] == 0:
                raise FatalWorkflowError("stop all")
            await asyncio.sleep(10)

    Batch, _ = make_batch(ParallelBatchFlow)
    with pytest.raises(FatalWorkflowError, match="stop all"):
        run(Flow(Batch(FatalItem(log))).run())


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (3, 3), (None, 8)])
def test_parallel_batch_concurrency_limit(limit, expected):
    state = {"now": 0, "max": 0}

    class Gauge(Node):
        async def exec(self, args):
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            await asyncio.sleep(0.005)
            state["now"] -= 1

    Batch, _ = make_batch(ParallelBatchFlow, n=8)
    run(Batch(Gauge(), concurrency=limit).run())
    assert state["max"] == expected


def test_parallel_batch_concurrency_class_attribute():
    class Limited(ParallelBatchFlow):
        concurrency = 2

    assert Limited(Node()).concurrency == 2


def test_node_to_run_class_attribute():
    log = []

    class Batch(BatchFlow):
        node_to_run = Item(log)

        def prep(self, args):
            return [{"i": 7}]

    run(Batch().run())
    assert log == [7]


def test_batch_prep_returning_none_runs_nothing():
    class Batch(BatchFlow):
        def prep(self, args):
            return None

    log = []
    assert run(Batch(Item(log)).run()) is DEFAULT_ACTION
    assert log == []


def test_same_node_runs_concurrently_as_batch_items_without_shared_state():
    class Echo(Node):
        async def prep(self, args):
            return args.params["i"]

        async def exec(self, args):
            await asyncio.sleep(0.01 * (3 - args.prep_res))
            return args.prep_res

        def post(self, args):
            return args.exec_res

    Batch, calls = make_batch(ParallelBatchFlow, n=3)
    run(Batch(Echo()).run())
    assert [o.action for o in calls[-1]] == [0, 1, 2]
