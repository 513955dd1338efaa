"""Functional helpers: map_node, context_node, transform_node, pipeline, compose, *_collection."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft import (
    AbortController,
    AbortError,
    Flow,
    SequenceFlow,
    TypedContext,
    compose,
    context_node,
    filter_collection,
    lens,
    map_collection,
    map_node,
    pipeline,
    reduce_collection,
    transform_node,
)

from .helpers import Step, run


def test_map_node_gets_params():
    node = map_node(lambda params: params["x"] * 2).to_context("out")
    ctx = TypedContext()
    run(Flow(node).run(ctx, params={"x": 21}))
    assert run(ctx.get("out")) == 42


def test_context_node_gets_ctx_and_params_async():
    async def fn(ctx, params):
        return (await ctx.get("base")) + params["inc"]

    node = context_node(fn).with_params(inc=1).to_context("out")
    ctx = TypedContext({"base": 10})
    run(Flow(node).run(ctx))
    assert run(ctx.get("out")) == 11


def test_transform_node_applies_transforms_in_order():
    counter = lens("n")
    node = transform_node(counter.set(1), counter.update(lambda n: n + 1), lens("s").set("x"))
    ctx = TypedContext()
    run(Flow(node).run(ctx))
    assert ctx.to_dict() == {"n": 2, "s": "x"}


def test_pipeline_is_a_sequence_flow():
    flow = pipeline(Step("a"), Step("b"), Step("c"))
    assert isinstance(flow, SequenceFlow)
    ctx = TypedContext()
    run(flow.run(ctx))
    assert run(ctx.get("trail")) == ["a", "b", "c"]


def test_empty_sequence_flow_and_pipeline_run_nothing_and_return_default():
    # SPEC §8.17 (as in Flowcraft TS); a bare Flow() keeps raising EmptyFlowError (test_errors).
    from flowcraft import DEFAULT_ACTION

    assert run(SequenceFlow().run()) is DEFAULT_ACTION
    assert run(pipeline().run()) is DEFAULT_ACTION
    empty = pipeline()
    empty.next(Step("after"))
    ctx = TypedContext()
    assert run(Flow(empty).run(ctx)) is DEFAULT_ACTION
    assert run(ctx.get("trail")) == ["after"]


def test_compose_sync_and_async():
    async def add_one(x):
        return x + 1

    composed = compose(lambda x: x * 10, add_one)
    assert run(composed(1)) == 20
    assert run(compose(add_one, lambda x: x * 10)(1)) == 11


def test_map_collection_returns_result_from_run():
    async def slow_square(x):
        await asyncio.sleep(0.01 * (3 - x))
        return x * x

    assert run(map_collection([1, 2, 3], slow_square).run()) == [1, 4, 9]
    assert run(map_collection([], lambda x: x).run()) == []


def test_filter_collection_keeps_order():
    assert run(filter_collection(range(10), lambda x: x % 3 == 0).run()) == [0, 3, 6, 9]


def test_reduce_collection_in_order():
    assert run(reduce_collection(["a", "b", "c"], lambda acc, x: acc + x, ">").run()) == ">abc"


def test_reduce_collection_is_abortable():
    controller = AbortController()
    seen = []

    def reducer(acc, x):
        seen.append(x)
        if x == 1:
            controller.abort()
        return acc + x

    with pytest.raises(AbortError):
        run(reduce_collection([0, 1, 2, 3], reducer, 0).run(controller=controller))
    assert seen == [0, 1]


def test_collection_flow_inside_a_flow_returns_its_result():
    assert run(Flow(map_collection([1], lambda x: x + 1)).run()) == [2]


@pytest.mark.parametrize(
    "call",
    [
        lambda: map_node(1),
        lambda: context_node(None),
        lambda: transform_node("x"),
        lambda: compose(1, lambda x: x),
        lambda: map_collection([1], 3),
        lambda: filter_collection([1], None),
        lambda: reduce_collection([1], "f", 0),
    ],
)
def test_helpers_reject_non_callables(call):
    with pytest.raises(TypeError, match="expects a callable"):
        call()
