"""Flow / Node API: start_node, get_node_by_id, run_sync, sync and async lifecycle methods,
Node.run options, ExecNode/PreNode/PostNode."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    AbortController,
    DryRunExecutor,
    ExecNode,
    Flow,
    InMemoryExecutor,
    Node,
    ParallelFlow,
    PostNode,
    PreNode,
    TypedContext,
)

from .helpers import RecordingLogger, Step, run


def test_start_node_attribute_and_start_returns_node():
    flow = Flow()
    assert flow.start_node is None
    a = Node()
    assert flow.start(a) is a
    assert flow.start_node is a
    assert Flow(a).start_node is a


def test_get_node_by_id_and_get_all_nodes():
    a, b, c = Step("a"), Step("b"), Step("c")
    x, y = Step("x"), Step("y")
    par = ParallelFlow([x, y]).with_id("par")
    a.next(b).next(par).next(c)
    c.next(a, "loop")
    flow = Flow(a)
    assert flow.get_node_by_id("b") is b
    assert flow.get_node_by_id("y") is y
    assert flow.get_node_by_id("nope") is None
    assert flow.get_all_nodes() == {a, b, c, par, x, y}
    assert Flow().get_all_nodes() == set()


def test_original_id_and_graph_data():
    node = Node()
    assert node.original_id == ""
    node.with_id(7)
    assert node.original_id == "7"

    class G:
        data = {"originalId": "orig"}

    assert node.with_graph_data(G()).original_id == "orig"
    assert node.graph_data is not None
    assert Node.is_passthrough is False


class Mixed(Node):
    """Sync prep, async exec, sync post, async fallback."""

    def prep(self, args):
        return 2

    async def exec(self, args):
        await asyncio.sleep(0)
        if args.params.get("fail"):
            raise ValueError("x")
        return args.prep_res * 10

    def post(self, args):
        return f"r{args.exec_res}"

    async def exec_fallback(self, args):
        await asyncio.sleep(0)
        return -1


class AllAsync(Node):
    async def prep(self, args):
        return 3

    async def exec(self, args):
        return args.prep_res + 1

    async def post(self, args):
        await args.ctx.set("v", args.exec_res)
        return "async"


class AllSync(Node):
    def prep(self, args):
        return 3

    def exec(self, args):
        return args.prep_res + 2

    def post(self, args):
        return f"sync{args.exec_res}"


def test_sync_and_async_lifecycle_methods():
    assert run(Flow(Mixed()).run()) == "r20"
    assert run(Flow(Mixed().with_params(fail=True)).run()) == "r-1"
    ctx = TypedContext()
    assert run(Flow(AllAsync()).run(ctx)) == "async"
    assert run(ctx.get("v")) == 4
    assert run(Flow(AllSync()).run()) == "sync5"


def test_sync_fallback_with_retries():
    class SyncFallback(AllSync):
        def exec(self, args):
            raise ValueError("x")

        def exec_fallback(self, args):
            return 0

    assert run(Flow(SyncFallback(max_retries=2)).run()) == "sync0"


def test_async_detection_is_done_once_per_class_not_per_call(monkeypatch):
    import inspect

    calls = []
    real = inspect.iscoroutinefunction

    def counting(fn):
        calls.append(fn)
        return real(fn)

    flow = Flow(Mixed())
    run(flow.run())  # warm up
    monkeypatch.setattr(inspect, "iscoroutinefunction", counting)
    for _ in range(5):
        run(flow.run())
        run(Flow(AllAsync()).run())
    assert calls == []


def test_simplified_base_classes():
    class E(ExecNode):
        def exec(self, args):
            return "e"

    class P(PreNode):
        async def prep(self, args):
            await args.ctx.set("pre", True)

    class Q(PostNode):
        def post(self, args):
            return "post_action"

    e = E()
    e.next(P()).next(Q())
    ctx = TypedContext()
    assert run(Flow(e).run(ctx)) == "post_action"
    assert run(ctx.get("pre")) is True


def test_node_run_takes_the_flow_run_options():
    seen = {}

    class Look(Node):
        def exec(self, args):
            seen.update(params=args.params, logger=args.logger, signal=args.signal)
            args.logger.info("hello")

        def post(self, args):
            return "looked"

    logger = RecordingLogger()
    controller = AbortController()
    node = Look()
    action = run(node.run(TypedContext(), params={"p": 1}, logger=logger, controller=controller))
    assert action == "looked"
    assert seen == {"params": {"p": 1}, "logger": logger, "signal": controller.signal}
    other = AbortController()
    run(node.run(signal=other.signal, controller=controller))
    assert seen["signal"] is other.signal
    assert run(node.run(executor=DryRunExecutor())) == "looked"


def test_node_run_does_not_follow_successors():
    a = Step("a")
    a.next(Step("b"))
    ctx = TypedContext()
    run(a.run(ctx))
    assert run(ctx.get("trail")) == ["a"]


def test_flow_run_with_explicit_executor_and_default_context():
    assert run(Flow(Step("a")).run(executor=InMemoryExecutor())) is DEFAULT_ACTION


def test_one_flow_runs_concurrently_with_separate_contexts():
    class Slow(Node):
        async def exec(self, args):
            value = await args.ctx.get("v")
            await asyncio.sleep(0.01 * value)
            return value

        async def post(self, args):
            await args.ctx.set("out", args.exec_res * 2)

    flow = Flow(Slow())
    contexts = [TypedContext({"v": v}) for v in (3, 1, 2)]

    async def main():
        await asyncio.gather(*(flow.run(ctx) for ctx in contexts))

    run(main())
    assert [c.to_dict()["out"] for c in contexts] == [6, 2, 4]


def test_run_sync_from_a_plain_script():
    script = textwrap.dedent(
        """
        from flowcraft import Flow, Node, TypedContext

        class Hello(Node):
            def exec(self, args):
                return "hello " + args.params["who"]

            async def post(self, args):
                await args.ctx.set("greeting", args.exec_res)
                return "greeted"

        ctx = TypedContext()
        action = Flow(Hello()).run_sync(ctx, params={"who": "world"})
        print(action, ctx.to_dict()["greeting"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "greeted hello world"


def test_run_sync_in_this_thread_when_no_loop():
    assert Flow(Step("a", action="x")).run_sync(TypedContext()) == "x"


# ---- run() checks its inputs (SPEC §8.19) ----------------------------------------------


def _run_inputs_error(start, *args, **options) -> str:
    with pytest.raises(TypeError) as caught:
        run(start(*args, **options))
    return str(caught.value)


@pytest.mark.parametrize("how", ["flow", "node"])
def test_run_refuses_a_signal_that_is_not_an_abort_signal(how):
    ran = []
    node = Step("a").tap(ran.append) if how == "node" else Flow(Step("a").tap(ran.append))
    message = _run_inputs_error(node.run, TypedContext(), signal=AbortController())
    assert "signal=" in message and "AbortSignal" in message and "AbortController" in message
    assert "controller.signal" in message
    assert ran == []


def test_run_refuses_a_controller_that_is_not_an_abort_controller():
    message = _run_inputs_error(Flow(Step("a")).run, TypedContext(), controller=AbortController().signal)
    assert "controller=" in message and "AbortController" in message and "got AbortSignal" in message
    assert "signal=" in message


def test_run_refuses_a_plain_dict_as_context():
    ran = []
    message = _run_inputs_error(Flow(Step("a").tap(ran.append)).run, {"a": 1})
    assert "ctx" in message and "Context" in message and "got dict" in message and "TypedContext(" in message
    assert ran == []
    message = _run_inputs_error(Step("a").run, {"a": 1}, params={"x": 1})
    assert "got dict" in message


def test_run_refuses_a_logger_without_the_logger_methods():
    import logging

    message = _run_inputs_error(Flow(Step("a")).run, TypedContext(), logger=print)
    assert "logger=" in message and "debug" in message and "ConsoleLogger" in message
    message = _run_inputs_error(Flow(Step("a")).run, TypedContext(), logger=logging.getLogger("x"))
    assert "StdlibLogger" in message


def test_run_accepts_any_context_and_logger_with_the_methods():
    class Quiet:
        def debug(self, message, /, **context): ...
        def info(self, message, /, **context): ...
        def warn(self, message, /, **context): ...
        def error(self, message, /, **context): ...

    ctx = TypedContext()
    assert run(Flow(Step("a")).run(ctx, logger=Quiet(), signal=AbortController().signal)) is not None
    assert run(ctx.get("trail")) == ["a"]
