"""SPEC §3.8 (parallel, correct fan-in, fail-fast), §8.7 (per-activation bookkeeping),
and concurrency limits (§9)."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowcraft import DEFAULT_ACTION, Flow, Node, ParallelFlow, TypedContext, WorkflowError

from .helpers import RecordingLogger, Step, run


class Timed(Node):
    """Records (id, start, end) into ctx['events'] and sleeps ``delay``; returns ``action``."""

    def __init__(self, id, delay=0.0, action=None):
        super().__init__()
        self.with_id(id)
        self.delay = delay
        self.action = action

    async def exec(self, args):
        events = await args.ctx.get("events")
        start = time.perf_counter()
        if self.delay:
            await asyncio.sleep(self.delay)
        events.append((self.id, start, time.perf_counter()))

    def post(self, args):
        return self.action


def events_ctx():
    return TypedContext({"events": []})


def by_id(ctx):
    events = ctx.to_dict()["events"]
    result = {}
    for node_id, start, end in events:
        result.setdefault(node_id, []).append((start, end))
    return result


def assert_join_after(ctx, join, preds):
    runs = by_id(ctx)
    assert len(runs[join]) == 1, f"{join} ran {len(runs[join])} times"
    join_start = runs[join][0][0]
    for pred in preds:
        assert runs[pred], pred
        assert join_start >= max(end for _, end in runs[pred]), f"{join} started before {pred} ended"


def test_branches_run_concurrently():
    ctx = events_ctx()
    flow = Flow(ParallelFlow([Timed("a", 0.1), Timed("b", 0.1), Timed("c", 0.1)]))
    started = time.perf_counter()
    run(flow.run(ctx))
    assert time.perf_counter() - started < 0.25
    assert set(by_id(ctx)) == {"a", "b", "c"}


def test_fan_in_runs_once_after_all_branches_of_different_durations():
    ctx = events_ctx()
    a, b, c = Timed("a", 0.08), Timed("b", 0.0), Timed("c", 0.03)
    join = Timed("join")
    for branch in (a, b, c):
        branch.next(join)
    join.next(Timed("after_join"))
    par = ParallelFlow([a, b, c])
    par.next(Timed("after_par"))
    run(Flow(par).run(ctx))
    assert_join_after(ctx, "join", ["a", "b", "c"])
    runs = by_id(ctx)
    assert len(runs["after_join"]) == 1
    assert len(runs["after_par"]) == 1
    assert runs["after_par"][0][0] >= runs["after_join"][0][1]


def test_fan_in_after_longer_branch_chains():
    ctx = events_ctx()
    a1, a2, a3 = Timed("a1", 0.01), Timed("a2", 0.02), Timed("a3", 0.02)
    a1.next(a2).next(a3)
    b = Timed("b")
    join = Timed("join")
    a3.next(join)
    b.next(join)
    run(Flow(ParallelFlow([a1, b])).run(ctx))
    assert_join_after(ctx, "join", ["a3", "b"])


def test_join_reached_from_nested_block_and_outer_branch():
    ctx = events_ctx()
    x, y, z = Timed("x", 0.06), Timed("y", 0.01), Timed("z", 0.03)
    join = Timed("join")
    for node in (x, y, z):
        node.next(join)
    inner = ParallelFlow([y, z]).with_id("inner")
    run(Flow(ParallelFlow([x, inner])).run(ctx))
    assert_join_after(ctx, "join", ["x", "y", "z"])


def test_join_reached_from_nested_block_when_outer_branch_is_fastest():
    ctx = events_ctx()
    x, y, z = Timed("x", 0.0), Timed("y", 0.05), Timed("z", 0.02)
    join = Timed("join")
    for node in (x, y, z):
        node.next(join)
    inner = ParallelFlow([y, z])
    run(Flow(ParallelFlow([inner, x])).run(ctx))
    assert_join_after(ctx, "join", ["x", "y", "z"])


def test_join_after_nested_block_successor_and_outer_branch():
    ctx = events_ctx()
    y, z, x = Timed("y", 0.04), Timed("z", 0.01), Timed("x", 0.0)
    inner = ParallelFlow([y, z])
    join = Timed("join")
    inner.next(join)
    x.next(join)
    run(Flow(ParallelFlow([x, inner])).run(ctx))
    assert_join_after(ctx, "join", ["x", "y", "z"])


def test_joins_inside_a_nested_block_and_outside_it():
    ctx = events_ctx()
    y, z = Timed("y", 0.03), Timed("z")
    inner_join = Timed("inner_join", 0.01)
    y.next(inner_join)
    z.next(inner_join)
    x = Timed("x", 0.02)
    outer_join = Timed("outer_join")
    x.next(outer_join)
    inner_join.next(outer_join)
    run(Flow(ParallelFlow([x, ParallelFlow([y, z])])).run(ctx))
    assert_join_after(ctx, "inner_join", ["y", "z"])
    assert_join_after(ctx, "outer_join", ["x", "inner_join"])


def test_branch_taking_another_action_still_lets_the_join_run_once():
    ctx = events_ctx()
    a = Timed("a", 0.02)
    b = Timed("b", 0.0, action="elsewhere")
    other = Timed("other", 0.04)
    join = Timed("join")
    a.next(join)
    b.next(join)
    b.next(other, "elsewhere")
    run(Flow(ParallelFlow([a, b])).run(ctx))
    runs = by_id(ctx)
    assert len(runs["join"]) == 1
    assert len(runs["other"]) == 1
    assert_join_after(ctx, "join", ["a", "b"])


def test_join_is_released_as_soon_as_no_running_branch_can_reach_it():
    # b takes another action and ends at "other"; the join then waits only for a, which has
    # arrived. It must not wait for the unrelated slow branch.
    ctx = events_ctx()
    a = Timed("a")
    b = Timed("b", 0.0, action="elsewhere")
    other = Timed("other", 0.02)
    slow = Timed("slow", 0.4)
    join = Timed("join")
    a.next(join)
    b.next(join)
    b.next(other, "elsewhere")
    run(Flow(ParallelFlow([a, b, slow])).run(ctx))
    runs = by_id(ctx)
    assert len(runs["join"]) == 1
    assert_join_after(ctx, "join", ["a"])
    assert runs["join"][0][0] < runs["slow"][0][1], "the join waited for an unrelated branch"


def test_a_join_still_reachable_by_a_running_branch_keeps_waiting():
    # c is still on its way to the join (through "mid") when b ends elsewhere.
    ctx = events_ctx()
    a = Timed("a")
    b = Timed("b", 0.0, action="elsewhere")
    c = Timed("c", 0.05)
    mid = Timed("mid", 0.05)
    join = Timed("join")
    for node in (a, b, mid):
        node.next(join)
    c.next(mid)
    b.next(Timed("other"), "elsewhere")
    run(Flow(ParallelFlow([a, b, c])).run(ctx))
    assert_join_after(ctx, "join", ["a", "mid"])


def test_join_runs_once_when_every_branch_but_one_takes_another_action():
    ctx = events_ctx()
    join = Timed("join")
    branches = []
    for i in range(4):
        node = Timed(f"b{i}", 0.01 * i, action=None if i == 0 else "off")
        node.next(join)
        branches.append(node)
    run(Flow(ParallelFlow(branches)).run(ctx))
    assert len(by_id(ctx)["join"]) == 1


def test_join_through_a_sub_flow_branch():
    ctx = events_ctx()
    sub_last = Timed("sub_last", 0.03)
    sub_first = Timed("sub_first", 0.01)
    sub_first.next(sub_last)
    sub = Flow(sub_first).with_id("sub")
    b = Timed("b")
    join = Timed("join")
    sub.next(join)
    b.next(join)
    run(Flow(ParallelFlow([sub, b])).run(ctx))
    assert_join_after(ctx, "join", ["sub_last", "b"])


class Rounds(Node):
    """Counts passes in ctx['round']; 'again' until ``limit`` passes."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    async def post(self, args):
        n = await args.ctx.get("round", 0) + 1
        await args.ctx.set("round", n)
        return "again" if n < self.limit else "stop"


def test_loop_through_parallel_block_via_its_successor():
    ctx = events_ctx()
    a, b = Timed("a", 0.02), Timed("b", 0.0)
    join = Timed("join")
    a.next(join)
    b.next(join)
    par = ParallelFlow([a, b])
    check = Rounds(3)
    par.next(check)
    check.next(par, "again")
    run(Flow(par).run(ctx))
    runs = by_id(ctx)
    assert len(runs["a"]) == len(runs["b"]) == len(runs["join"]) == 3
    for i in range(3):
        assert runs["join"][i][0] >= max(runs["a"][i][1], runs["b"][i][1])


def test_loop_through_parallel_block_from_its_own_join():
    ctx = events_ctx()
    a, b = Timed("a", 0.0), Timed("b", 0.02)
    join = Timed("join")
    a.next(join)
    b.next(join)
    check = Rounds(4)
    join.next(check)
    par = ParallelFlow([a, b])
    check.next(par, "again")
    start = Timed("start")
    start.next(par)
    run(Flow(start).run(ctx))
    runs = by_id(ctx)
    assert len(runs["join"]) == 4
    assert len(runs["a"]) == len(runs["b"]) == 4
    for i in range(4):
        assert runs["join"][i][0] >= max(runs["a"][i][1], runs["b"][i][1])


def test_loop_inside_a_branch_runs_concurrently_with_siblings():
    ctx = events_ctx()
    body = Timed("body", 0.03)
    check = Rounds(3)
    body.next(check)
    check.next(body, "again")
    slow = Timed("slow", 0.1)
    started = time.perf_counter()
    run(Flow(ParallelFlow([body, slow])).run(ctx))
    elapsed = time.perf_counter() - started
    runs = by_id(ctx)
    assert len(runs["body"]) == 3
    assert run(ctx.get("round")) == 3
    # the loop (3 x 0.03 s) overlaps the slow branch (0.1 s): not 0.19 s in a row
    assert elapsed < 0.17, elapsed
    assert runs["body"][0][0] < runs["slow"][0][1]


def test_loop_inside_branches_with_a_join_after_the_loop():
    ctx = events_ctx()
    body = Timed("body", 0.01)
    check = Rounds(3)
    body.next(check)
    check.next(body, "again")
    other = Timed("other", 0.05)
    join = Timed("join")
    check.next(join, "stop")
    other.next(join)
    run(Flow(ParallelFlow([body, other])).run(ctx))
    runs = by_id(ctx)
    assert len(runs["body"]) == 3
    assert_join_after(ctx, "join", ["body", "other"])


def test_two_concurrent_runs_of_one_graph_keep_their_own_joins():
    a, b = Timed("a", 0.02), Timed("b", 0.0)
    join = Timed("join")
    a.next(join)
    b.next(join)
    flow = Flow(ParallelFlow([a, b]))
    contexts = [events_ctx() for _ in range(3)]

    async def main():
        await asyncio.gather(*(flow.run(ctx) for ctx in contexts))

    run(main())
    for ctx in contexts:
        assert_join_after(ctx, "join", ["a", "b"])


def test_parallel_exec_result_and_default_action():
    seen = []

    class After(Node):
        def prep(self, args):
            return args.incoming_action

        def exec(self, args):
            seen.append(args.prep_res)

    par = ParallelFlow([Step("a", action="x"), Step("b", action="y")])
    par.next(After())

    class Capture(ParallelFlow):
        def post(self, args):
            seen.append(sorted(args.exec_res))
            return super().post(args)

    cap = Capture([Step("a", action="x"), Step("b", action="y")])
    run(Flow(par).run())
    assert seen == [DEFAULT_ACTION]
    assert run(Flow(cap).run()) is DEFAULT_ACTION
    assert seen[-1] == ["x", "y"]


def test_empty_parallel_flow_continues():
    par = ParallelFlow([])
    par.next(Step("after"))
    ctx = TypedContext()
    run(Flow(par).run(ctx))
    assert run(ctx.get("trail")) == ["after"]


# ---- failure -------------------------------------------------------------------------------


class Sibling(Node):
    def __init__(self, log, delay=10):
        super().__init__()
        self.log = log
        self.delay = delay

    async def exec(self, args):
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.log.append("cancelled")
            raise
        self.log.append("finished")


class Failing(Node):
    def __init__(self, delay=0.01):
        super().__init__()
        self.with_id("failing")
        self.delay = delay

    async def exec(self, args):
        await asyncio.sleep(self.delay)
        raise ValueError("branch failed")


def test_failing_branch_cancels_siblings_and_error_reaches_caller():
    log = []
    after = Step("after")
    par = ParallelFlow([Sibling(log), Failing(), Sibling(log)])
    par.next(after)
    ctx = TypedContext()

    async def main():
        before = asyncio.all_tasks()
        started = time.perf_counter()
        with pytest.raises(WorkflowError, match="'failing'.*branch failed") as info:
            await Flow(par).run(ctx)
        assert time.perf_counter() - started < 1
        assert isinstance(info.value.__cause__, ValueError)
        await asyncio.sleep(0)
        assert asyncio.all_tasks() - before == set()

    run(main())
    assert log == ["cancelled", "cancelled"]
    assert run(ctx.get("trail")) is None


def test_failing_branch_in_nested_block_cancels_outer_siblings():
    log = []
    inner = ParallelFlow([Sibling(log), Failing(0.02)])
    flow = Flow(ParallelFlow([Sibling(log), inner, Sibling(log)]))
    with pytest.raises(WorkflowError, match="branch failed"):
        run(flow.run())
    assert log == ["cancelled"] * 3


def test_failing_branch_cancels_a_waiting_join_path():
    log = []
    join = Step("join")
    s = Sibling(log, delay=0.2)
    s.next(join)
    f = Failing(0.01)
    f.next(join)
    ctx = TypedContext()
    with pytest.raises(WorkflowError):
        run(Flow(ParallelFlow([s, f])).run(ctx))
    assert log == ["cancelled"]
    assert run(ctx.get("trail")) is None


# ---- concurrency limit -------------------------------------------------------------------


class Gauge(Node):
    def __init__(self, state, delay=0.01):
        super().__init__()
        self.state = state
        self.delay = delay

    async def exec(self, args):
        self.state["now"] += 1
        self.state["max"] = max(self.state["max"], self.state["now"])
        await asyncio.sleep(self.delay)
        self.state["now"] -= 1
        self.state["done"] += 1


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (2, 2), (None, 6)])
def test_parallel_flow_concurrency_limit(limit, expected):
    state = {"now": 0, "max": 0, "done": 0}
    par = ParallelFlow([Gauge(state) for _ in range(6)], concurrency=limit)
    run(Flow(par).run())
    assert state["max"] == expected
    assert state["done"] == 6


def test_parallel_flow_concurrency_class_attribute():
    class Two(ParallelFlow):
        concurrency = 2

    state = {"now": 0, "max": 0, "done": 0}
    par = Two([Gauge(state) for _ in range(5)])
    assert par.concurrency == 2
    run(Flow(par).run())
    assert state["max"] == 2
    assert state["done"] == 5


def test_concurrency_limit_with_a_join():
    state = {"now": 0, "max": 0, "done": 0}
    join = Step("join")
    branches = [Gauge(state) for _ in range(4)]
    for branch in branches:
        branch.next(join)
    ctx = TypedContext()
    run(Flow(ParallelFlow(branches, concurrency=2)).run(ctx))
    assert state["max"] == 2
    assert state["done"] == 4
    assert run(ctx.get("trail")) == ["join"]


# ---- a node wired as a branch's successor and as the block's successor runs twice ------------


def _double_wired():
    b, c, x = Step("b"), Step("c"), Step("x")
    block = ParallelFlow([b, c]).with_id("fan")
    b.next(x)  # x runs inside the block, after b ...
    block.next(x)  # ... and again after the whole block
    return Flow(block), x


def test_validate_flow_warns_about_a_node_that_runs_twice():
    from flowcraft.graph import validate_flow

    flow, _ = _double_wired()
    (issue,) = validate_flow(flow)
    assert issue.node_id == "x" and issue.type == "RunsTwice"
    assert "'x'" in issue.message and "'fan'" in issue.message and "twice" in issue.message
    assert [i.node_id for i in validate_flow(Flow(Flow(Step("a")).next(flow)))] == ["x"]  # nested flows too
    # nothing to report for ordinary fan-in
    b, c, join = Step("b"), Step("c"), Step("join")
    b.next(join)
    c.next(join)
    block = ParallelFlow([b, c])
    block.next(Step("after"))
    assert validate_flow(Flow(block)) == []


def test_the_engine_warns_once_when_it_analyses_a_block_with_a_node_that_runs_twice():
    flow, _ = _double_wired()
    logger = RecordingLogger()
    ctx = TypedContext()
    run(flow.run(ctx, logger=logger))
    assert run(ctx.get("trail")).count("x") == 2  # the documented behaviour stays
    (warning,) = [m for m in logger.messages("warn") if "twice" in m]
    assert "'x'" in warning and "'fan'" in warning
    run(flow.run(TypedContext(), logger=logger))  # the analysis is cached: no second warning
    assert len([m for m in logger.messages("warn") if "twice" in m]) == 1
