"""SPEC §3.7 (branching, loops), §8.1 (None = default), §8.14, unhashable actions (§9),
and the 100,000-iteration loop in constant stack and memory."""

from __future__ import annotations

import sys
import tracemalloc

import pytest

from flowcraft import DEFAULT_ACTION, Flow, Node, TypedContext, map_collection

from .helpers import Fn, Step, run


def test_first_successor_for_the_action_runs():
    a = Step("a", action="right")
    a.next(Step("left"), "left")
    a.next([Step("right1"), Step("right2")], "right")
    ctx = TypedContext()
    run(Flow(a).run(ctx))
    assert run(ctx.get("trail")) == ["a", "right1"]


def test_no_successor_ends_the_flow_and_returns_the_last_action():
    a = Step("a", action="unwired")
    a.next(Step("b"))
    ctx = TypedContext()
    assert run(Flow(a).run(ctx)) == "unwired"
    assert run(ctx.get("trail")) == ["a"]


def test_none_from_post_is_default_action():
    a = Step("a")  # post returns None
    a.next(Step("b"))
    ctx = TypedContext()
    assert run(Flow(a).run(ctx)) is DEFAULT_ACTION
    assert run(ctx.get("trail")) == ["a", "b"]


def test_string_default_is_not_default_action():
    a = Step("a", action="default")
    a.next(Step("via_sentinel"))
    a.next(Step("via_string"), "default")
    ctx = TypedContext()
    run(Flow(a).run(ctx))
    assert run(ctx.get("trail")) == ["a", "via_string"]
    assert "default" != DEFAULT_ACTION
    assert DEFAULT_ACTION != "default"


def test_next_returns_first_successor_and_ignores_duplicates():
    a, b, c = Node(), Node(), Node()
    assert a.next(b) is b
    assert a.next([c, b], "x") is c
    a.next(b)
    a.next([b, c], "x")
    assert a.successors == {DEFAULT_ACTION: [b], "x": [c, b]}


def test_flow_action_is_its_last_action_so_outer_flow_branches_on_it():
    inner = Flow(Step("inner", action="approved")).with_id("sub")
    inner.next(Step("approved_path"), "approved")
    inner.next(Step("default_path"))
    ctx = TypedContext()
    run(Flow(inner).run(ctx))
    assert run(ctx.get("trail")) == ["inner", "approved_path"]


def test_sub_flow_ending_with_none_fires_next():
    inner = Flow(Step("inner"))
    inner.next(Step("after"))
    ctx = TypedContext()
    run(Flow(inner).run(ctx))
    assert run(ctx.get("trail")) == ["inner", "after"]


def test_unhashable_action_ends_the_flow_and_is_returned():
    node = Fn(lambda args: None, action=["a", "list"])
    node.next(Step("never"))
    ctx = TypedContext()
    assert run(Flow(node).run(ctx)) == ["a", "list"]
    assert run(ctx.get("trail")) is None


def test_collection_helper_result_as_action_ends_outer_flow():
    collection = map_collection([1, 2], lambda x: x * 10)
    collection.next(Step("never"))
    assert run(Flow(collection).run()) == [10, 20]


class Counter(Node):
    """Increments ctx['n']; returns 'again' until it reaches ``limit``."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    async def prep(self, args):
        return await args.ctx.get("n", 0)

    def exec(self, args):
        return args.prep_res + 1

    async def post(self, args):
        await args.ctx.set("n", args.exec_res)
        return "again" if args.exec_res < self.limit else "done"


def test_loop_back_to_earlier_node():
    counter = Counter(5)
    check = Step("check")
    counter.next(counter, "again")
    counter.next(check, "done")
    ctx = TypedContext()
    run(Flow(counter).run(ctx))
    assert run(ctx.get("n")) == 5
    assert run(ctx.get("trail")) == ["check"]


def test_loop_does_not_grow_the_stack():
    depths = []

    class Depth(Counter):
        def exec(self, args):
            frame, depth = sys._getframe(), 0
            while frame is not None:
                depth += 1
                frame = frame.f_back
            depths.append(depth)
            return super().exec(args)

    node = Depth(200)
    node.next(node, "again")
    run(Flow(Flow(node)).run())
    assert len(depths) == 200
    assert max(depths) == min(depths)


@pytest.mark.slow
def test_loop_of_100_000_iterations_in_constant_stack_and_memory():
    iterations = 100_000
    counter = Counter(iterations)
    counter.next(counter, "again")
    flow = Flow(counter)
    ctx = TypedContext()
    marks = {}

    async def main():
        tracemalloc.start()
        try:
            # warm up (caches, first allocations), then measure the long run
            await Flow(Counter(1_000)).run(TypedContext())
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await flow.run(ctx)
            current, peak = tracemalloc.get_traced_memory()
            marks.update(base=base, current=current, peak=peak)
        finally:
            tracemalloc.stop()

    run(main())
    assert run(ctx.get("n")) == iterations
    assert marks["peak"] - marks["base"] < 200_000, marks
    assert marks["current"] - marks["base"] < 50_000, marks
