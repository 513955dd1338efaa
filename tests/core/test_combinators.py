"""SPEC §8.10: map / filter / tap / to_context / with_lens keep params, id, retries and
exec_fallback; filter's verdict is per call."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    FILTER_FAILED,
    Flow,
    Node,
    ParallelFlow,
    TypedContext,
    context_key,
    lens,
)

from .helpers import run


class Source(Node):
    def __init__(self, value=3, fail_times=0, **options):
        super().__init__(**options)
        self.value = value
        self.fail_times = fail_times
        self.attempts = 0

    async def exec(self, args):
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise ValueError("flaky")
        return args.params.get("value", self.value)

    def exec_fallback(self, args):
        return -1

    def post(self, args):
        return "source_post"


@pytest.mark.parametrize(
    "derive",
    [
        lambda n: n.map(lambda x: x),
        lambda n: n.filter(lambda x: True),
        lambda n: n.tap(lambda x: None),
        lambda n: n.to_context("k"),
        lambda n: n.with_lens(lens("l"), 1),
    ],
    ids=["map", "filter", "tap", "to_context", "with_lens"],
)
def test_combinators_keep_params_id_retries_and_are_new_nodes(derive):
    source = Source(max_retries=3, wait=0.5, timeout=2).with_id("src").with_params(value=9)
    derived = derive(source)
    assert derived is not source
    assert derived.id == "src"
    assert derived.params == {"value": 9}
    assert (derived.max_retries, derived.wait, derived.timeout) == (3, 0.5, 2.0)
    assert derived.name == "Source"
    # the source is unchanged
    assert source.successors == {}


def test_map_transforms_result_and_retries_like_the_source():
    source = Source(value=4, fail_times=1, max_retries=2)
    mapped = source.map(lambda x: x * 10).to_context("out")
    ctx = TypedContext()
    assert run(Flow(mapped).run(ctx)) is DEFAULT_ACTION
    assert run(ctx.get("out")) == 40


def test_map_uses_the_sources_exec_fallback():
    source = Source(fail_times=5, max_retries=2)
    mapped = source.map(lambda x: x * 10).to_context("out")
    ctx = TypedContext()
    run(Flow(mapped).run(ctx))
    assert run(ctx.get("out")) == -10


def test_map_with_async_fn_and_params():
    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    node = Source().with_params(value=5).map(double).to_context("out")
    ctx = TypedContext()
    run(Flow(node).run(ctx))
    assert run(ctx.get("out")) == 10


def test_filter_routes_on_predicate():
    for value, expected in [(5, "big"), (1, "small")]:
        node = Source(value=value).filter(lambda x: x > 3)
        big, small = Source().map(lambda _: "big"), Source().map(lambda _: "small")
        node.next(big.to_context("route"))
        node.next(small.to_context("route"), FILTER_FAILED)
        ctx = TypedContext()
        run(Flow(node).run(ctx))
        assert run(ctx.get("route")) == expected


def test_filter_verdict_is_per_call_under_concurrency():
    class Param(Node):
        async def exec(self, args):
            await asyncio.sleep(0.01 * (3 - args.params["v"]))
            return args.params["v"]

    async def slow_even(x):
        await asyncio.sleep(0.02 if x % 2 else 0.0)
        return x % 2 == 0

    shared = Param().filter(slow_even)
    seen = []

    class Record(Node):
        def __init__(self, verdict):
            super().__init__()
            self.verdict = verdict

        def exec(self, args):
            seen.append((args.params["v"], self.verdict))

    shared.next(Record("pass"))
    shared.next(Record("fail"), FILTER_FAILED)
    branches = [Flow(shared).with_params(v=v) for v in range(4)]
    run(Flow(ParallelFlow(branches)).run())
    assert sorted(seen) == [(0, "pass"), (1, "fail"), (2, "pass"), (3, "fail")]


def test_filter_exposes_the_value_not_the_verdict_after_post():
    seen = []

    class Src(Node):
        def exec(self, args):
            return 7

    async def observe(args, next):
        action = await next(args)
        seen.append((args.exec_res, action))
        return action

    flow = Flow(Src().filter(lambda x: False))
    flow.use(observe)
    assert run(flow.run()) is FILTER_FAILED
    assert seen == [(7, FILTER_FAILED)]


@pytest.mark.parametrize("keep", [True, False])
def test_combinators_after_filter_see_the_value_not_a_wrapper(keep):
    # SPEC §8.21: the filter's verdict travels out of band; what it passes on is the value.
    seen = []
    ctx = TypedContext()
    stored = Source(value=7).filter(lambda x: keep).to_context("k")
    assert run(Flow(stored).run(ctx)) is DEFAULT_ACTION
    assert run(ctx.get("k")) == 7
    mapped = Source(value=7).filter(lambda x: keep).map(lambda x: seen.append(("map", x)) or x * 2).to_context("m")
    run(Flow(mapped).run(ctx))
    assert run(ctx.get("m")) == 14
    tapped = Source(value=7).filter(lambda x: keep).tap(lambda x: seen.append(("tap", x)))
    assert run(Flow(tapped).run()) is (DEFAULT_ACTION if keep else FILTER_FAILED)
    assert seen == [("map", 7), ("tap", 7)]


@pytest.mark.parametrize(
    ("first", "second", "action"),
    [(True, True, DEFAULT_ACTION), (True, False, FILTER_FAILED), (False, True, FILTER_FAILED)],
)
def test_chained_filters_both_must_hold(first, second, action):
    seen = []
    node = Source(value=7).filter(lambda x: seen.append(x) or first).filter(lambda x: seen.append(x) or second)
    assert run(Flow(node).run()) is action
    assert set(seen) == {7}


def test_tap_side_effect_passes_result_through():
    tapped = []
    node = Source(value=2).tap(tapped.append)
    run(Flow(node).run())
    assert tapped == [2]
    # the source's post (its action) is kept by tap
    assert run(Flow(Source(value=2).tap(lambda x: None)).run()) == "source_post"


def test_to_context_with_typed_key():
    key = context_key("answer", int)
    ctx = TypedContext()
    run(Flow(Source(value=42).to_context(key)).run(ctx))
    assert run(ctx.get(key)) == 42
    assert ctx.to_dict() == {"answer": 42}


def test_with_lens_sets_before_prep():
    seen = []

    class Reader(Node):
        async def prep(self, args):
            seen.append(await args.ctx.get("mode"))

    ctx = TypedContext()
    run(Flow(Reader().with_lens(lens("mode"), "fast")).run(ctx))
    assert seen == ["fast"]


def test_chained_combinators():
    node = Source(value=3).map(lambda x: x + 1).filter(lambda x: x == 4).tap(lambda x: None)
    assert run(Flow(node).run()) is DEFAULT_ACTION


def test_derived_node_needs_a_node():
    from flowcraft.combinators import MappedNode

    with pytest.raises(TypeError, match="MappedNode needs a Node to wrap, got str"):
        MappedNode("x", lambda v: v)
