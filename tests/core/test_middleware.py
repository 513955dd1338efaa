"""SPEC §3.6 and §8.6 (middleware), §9 apply_middleware / NodeArgs.replace / Flow.middleware."""

from __future__ import annotations

import dataclasses

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    BatchFlow,
    Flow,
    Node,
    NodeArgs,
    ParallelBatchFlow,
    ParallelFlow,
    TypedContext,
    apply_middleware,
)

from .helpers import Fn, Step, run


def tracer(log, tag):
    async def mw(args, next):
        log.append(f"{tag}>{args.node.id}")
        action = await next(args)
        log.append(f"{tag}<{args.node.id}")
        return action

    return mw


def test_first_used_is_outermost_and_every_node_is_wrapped():
    log = []
    a = Step("a")
    a.next(Step("b"))
    flow = Flow(a)
    flow.use(tracer(log, "outer")).use(tracer(log, "inner"))
    run(flow.run())
    assert log == ["outer>a", "inner>a", "inner<a", "outer<a", "outer>b", "inner>b", "inner<b", "outer<b"]


def test_flow_middleware_is_the_public_list_use_appends_to():
    flow = Flow(Node())
    mw = tracer([], "x")
    assert flow.use(mw) is flow
    assert flow.middleware == [mw]


def test_sync_middleware_works():
    log = []

    def sync_mw(args, next):
        log.append(args.node.id)
        return next(args)  # an awaitable: the engine awaits it

    flow = Flow(Step("a"))
    flow.use(sync_mw)
    ctx = TypedContext()
    run(flow.run(ctx))
    assert log == ["a"]
    assert run(ctx.get("trail")) == ["a"]


def test_sync_short_circuit_middleware_returns_action():
    def deny(args, next):
        return "denied"

    flow = Flow(Step("a"))
    flow.use(deny)
    ctx = TypedContext()
    assert run(flow.run(ctx)) == "denied"
    assert run(ctx.get("trail")) is None


def test_callable_object_middleware():
    class Mw:
        def __init__(self):
            self.calls = 0

        async def __call__(self, args, next):
            self.calls += 1
            return await next(args)

    mw = Mw()
    flow = Flow(Step("a"))
    flow.use(mw)
    run(flow.run())
    assert mw.calls == 1


def test_middleware_may_change_args_with_replace():
    seen = []
    node = Fn(lambda args: seen.append(args.params))

    async def inject(args, next):
        return await next(args.replace(params={**args.params, "injected": True}))

    async def inject_dc(args, next):
        return await next(dataclasses.replace(args, params={**args.params, "dc": True}))

    flow = Flow(node)
    flow.use(inject).use(inject_dc)
    run(flow.run(params={"x": 1}))
    assert seen == [{"x": 1, "injected": True, "dc": True}]


def test_node_args_replace_returns_a_copy():
    args = NodeArgs(TypedContext(), {"a": 1}, None, None)
    copy = args.replace(params={"b": 2})
    assert copy is not args
    assert args.params == {"a": 1}
    assert copy.params == {"b": 2}
    assert copy.ctx is args.ctx
    assert dataclasses.is_dataclass(args)


def test_short_circuit_skips_the_node_and_its_action_is_used():
    ran = []
    a = Fn(lambda args: ran.append("a"), id="a")
    skipped_to = Step("skipped_to")
    normal = Step("normal")
    a.next(normal)
    a.next(skipped_to, "skip")

    async def skip(args, next):
        if args.node is a:
            return "skip"
        return await next(args)

    flow = Flow(a)
    flow.use(skip)
    ctx = TypedContext()
    run(flow.run(ctx))
    assert ran == []
    assert run(ctx.get("trail")) == ["skipped_to"]


def test_middleware_returning_none_means_default_action():
    async def none_mw(args, next):
        await next(args)

    a = Step("a", action="custom")
    a.next(Step("b"))
    flow = Flow(a)
    flow.use(none_mw)
    ctx = TypedContext()
    assert run(flow.run(ctx)) is DEFAULT_ACTION
    assert run(ctx.get("trail")) == ["a", "b"]


def test_middleware_errors_propagate_and_stop_the_run():
    async def broken(args, next):
        if args.node.id == "b":
            raise RuntimeError("middleware broke")
        return await next(args)

    a = Step("a")
    a.next(Step("b")).next(Step("c"))
    flow = Flow(a)
    flow.use(broken)
    ctx = TypedContext()
    with pytest.raises(RuntimeError, match="middleware broke"):
        run(flow.run(ctx))
    assert run(ctx.get("trail")) == ["a"]


def test_middleware_sees_lifecycle_results_after_next():
    seen = []

    async def observe(args, next):
        action = await next(args)
        seen.append((args.name, args.prep_res, args.exec_res, action))
        return action

    class N(Node):
        def prep(self, args):
            return "p"

        def exec(self, args):
            return "e"

        def post(self, args):
            return "done"

    flow = Flow(N())
    flow.use(observe)
    run(flow.run())
    assert seen == [("N", "p", "e", "done")]


def test_nested_flow_nodes_get_own_and_inherited_middleware_only():
    log = []
    inner_node = Step("inner_node")
    inner = Flow(inner_node).with_id("inner")
    inner.use(tracer(log, "innermw"))
    outer = Flow(inner)
    outer.use(tracer(log, "local"))
    outer.use(tracer(log, "inherited"), inherit=True)
    run(outer.run())
    assert log == [
        "local>inner",
        "inherited>inner",
        "inherited>inner_node",
        "innermw>inner_node",
        "innermw<inner_node",
        "inherited<inner_node",
        "inherited<inner",
        "local<inner",
    ]


def test_inherited_middleware_reaches_every_depth():
    log = []
    deepest = Flow(Step("leaf")).with_id("l2")
    middle = Flow(deepest).with_id("l1")
    top = Flow(middle)
    top.use(tracer(log, "t"), inherit=True)
    run(top.run())
    assert [entry for entry in log if ">" in entry] == ["t>l1", "t>l2", "t>leaf"]


def test_parallel_branches_are_wrapped_by_the_enclosing_flows_middleware():
    log = []
    par = ParallelFlow([Step("a"), Step("b")]).with_id("par")
    par.use(tracer(log, "own"))
    flow = Flow(par)
    flow.use(tracer(log, "flow"))
    run(flow.run())
    entered = sorted(entry for entry in log if ">" in entry)
    assert entered == ["flow>a", "flow>b", "flow>par", "own>a", "own>b"]
    # the enclosing flow's middleware is outermost around each branch node
    assert log.index("flow>a") < log.index("own>a")


def test_batch_items_are_wrapped_by_the_enclosing_flows_middleware():
    for batch_cls in (BatchFlow, ParallelBatchFlow):
        log = []

        class Batch(batch_cls):
            def prep(self, args):
                return [{"i": 1}, {"i": 2}]

        item = Step("item")
        flow = Flow(Batch(item).with_id("batch"))
        flow.use(tracer(log, "m"))
        run(flow.run())
        assert sorted(entry for entry in log if ">" in entry) == ["m>batch", "m>item", "m>item"], batch_cls


def test_top_level_parallel_flow_own_middleware_wraps_branches():
    log = []
    par = ParallelFlow([Step("a"), Step("b")])
    par.use(tracer(log, "own"))
    run(par.run())
    assert sorted(entry for entry in log if ">" in entry) == ["own>a", "own>b"]


def test_apply_middleware_runs_full_lifecycle_first_outermost():
    log = []

    class N(Node):
        def prep(self, args):
            log.append("prep")

        def exec(self, args):
            log.append("exec")

        def post(self, args):
            log.append("post")
            return "act"

    node = N().with_id("n")
    handler = apply_middleware([tracer(log, "1"), tracer(log, "2")], node)
    args = NodeArgs(TypedContext(), {}, None, None, node=node)
    from flowcraft.abort import AbortController

    args.signal = AbortController().signal
    from flowcraft import NullLogger

    args.logger = NullLogger()
    assert run(handler(args)) == "act"
    assert log == ["1>n", "2>n", "prep", "exec", "post", "2<n", "1<n"]


def test_apply_middleware_with_no_middleware_runs_the_node():
    node = Step("solo", action="x")
    from flowcraft import AbortController, NullLogger

    args = NodeArgs(TypedContext(), {}, AbortController().signal, NullLogger(), node=node)
    assert run(apply_middleware([], node)(args)) == "x"
    assert run(node.run_lifecycle(args.replace())) == "x"
