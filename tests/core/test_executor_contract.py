"""A reusable executor contract: small programmatic workflows with their expected final
context and action. Every executor that runs in-process flows must pass all of them.

Later executors reuse it::

    from tests.core.test_executor_contract import CASES, check_case

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    def test_my_executor(case):
        check_case(MyExecutor(), case)
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    FILTER_FAILED,
    AbortController,
    BatchFlow,
    Executor,
    Flow,
    FlowRunner,
    InMemoryExecutor,
    Node,
    NodeArgs,
    NullLogger,
    ParallelBatchFlow,
    ParallelFlow,
    RunOptions,
    SequenceFlow,
    TypedContext,
    map_collection,
)
from flowcraft.executors import first_successor

# ---- building blocks -------------------------------------------------------------------------


class Put(Node):
    """Sets ``key`` to ``value`` (``value`` may use params via ``{name}``), returns ``action``."""

    def __init__(self, key: str, value: Any = True, action: Any = None, delay: float = 0.0) -> None:
        super().__init__()
        self.with_id(key)
        self.key, self.value, self.action, self.delay = key, value, action, delay

    async def exec(self, args: NodeArgs) -> Any:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value.format(**args.params) if isinstance(self.value, str) else self.value

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(self.key, args.exec_res)
        return self.action


class Add(Node):
    """ctx[key] += params.get('by', 1); returns 'again' while below ``limit`` (if given)."""

    def __init__(self, key: str, limit: int | None = None) -> None:
        super().__init__()
        self.with_id(f"add_{key}")
        self.key, self.limit = key, limit

    async def prep(self, args: NodeArgs) -> int:
        return await args.ctx.get(self.key, 0)

    def exec(self, args: NodeArgs) -> int:
        return args.prep_res + args.params.get("by", 1)

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(self.key, args.exec_res)
        if self.limit is not None:
            return "again" if args.exec_res < self.limit else "done"
        return None


class Join(Node):
    """Writes the sorted ``sources`` values it finds into ctx[key] and counts its runs."""

    def __init__(self, key: str, sources: list[str]) -> None:
        super().__init__()
        self.with_id(key)
        self.key, self.sources = key, sources

    async def prep(self, args: NodeArgs) -> list[Any]:
        return [await args.ctx.get(source) for source in self.sources]

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(self.key, args.prep_res)
        await args.ctx.set(f"{self.key}_runs", await args.ctx.get(f"{self.key}_runs", 0) + 1)


@dataclasses.dataclass(frozen=True)
class Case:
    """One contract workflow: ``build()`` returns the flow; run with ``initial`` and ``params``."""

    name: str
    build: Callable[[], Flow]
    expected_ctx: dict[str, Any]
    expected_action: Any = DEFAULT_ACTION
    initial: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] | None = None


def check_case(executor: Any, case: Case) -> None:
    """Run ``case`` on ``executor`` and compare the final context and action."""
    ctx = TypedContext(case.initial)
    action = asyncio.run(case.build().run(ctx, params=case.params, executor=executor))
    assert action == case.expected_action
    assert ctx.to_dict() == case.expected_ctx


# ---- the cases -------------------------------------------------------------------------------


def _linear() -> Flow:
    return SequenceFlow(Put("a", 1), Put("b", 2), Put("c", 3, action="end"))


def _branch() -> Flow:
    decide = Put("decide", "x", action="right")
    decide.next(Put("left"), "left")
    decide.next(Put("right"), "right")
    return Flow(decide)


def _loop() -> Flow:
    add = Add("n", limit=5)
    add.next(add, "again")
    add.next(Put("after"), "done")
    return Flow(add)


def _sub_flow_action() -> Flow:
    inner = Flow(Put("inner", action="approved")).with_id("sub")
    inner.next(Put("approved"), "approved")
    inner.next(Put("rejected"))
    return Flow(inner)


def _fan_in() -> Flow:
    a, b, c = Put("a", 1, delay=0.02), Put("b", 2), Put("c", 3, delay=0.01)
    join = Join("joined", ["a", "b", "c"])
    for node in (a, b, c):
        node.next(join)
    par = ParallelFlow([a, b, c])
    par.next(Put("after_par"))
    return Flow(par)


def _nested_fan_in() -> Flow:
    x, y, z = Put("x", 1, delay=0.02), Put("y", 2), Put("z", 3, delay=0.01)
    join = Join("joined", ["x", "y", "z"])
    for node in (x, y, z):
        node.next(join)
    return Flow(ParallelFlow([x, ParallelFlow([y, z])]))


def _fan_in_other_action() -> Flow:
    a = Put("a", 1, delay=0.01)
    b = Put("b", 2, action="side")
    join = Join("joined", ["a", "b", "side"])
    a.next(join)
    b.next(join)
    b.next(Put("side", 3, delay=0.02), "side")
    return Flow(ParallelFlow([a, b]))


def _loop_through_parallel() -> Flow:
    add = Add("n", limit=3)
    join = Join("joined", ["n"])
    add.next(join)
    other = Put("other", 1)
    other.next(join)
    par = ParallelFlow([add, other])
    check = Add("rounds", limit=3)
    par.next(check)
    check.next(par, "again")
    return Flow(par)


def _batch() -> Flow:
    class Batch(BatchFlow):
        def prep(self, args: NodeArgs) -> list[dict[str, Any]]:
            return [{"by": i} for i in (1, 2, 3)]

    return Flow(Batch(Add("total")))


def _parallel_batch() -> Flow:
    class Batch(ParallelBatchFlow):
        concurrency = 2

        def prep(self, args: NodeArgs) -> list[dict[str, Any]]:
            return [{"i": i} for i in range(4)]

    class PutItem(Node):
        async def post(self, args: NodeArgs) -> Any:
            await args.ctx.set(f"item{args.params['i']}", args.params["i"] * 10)

    return Flow(Batch(PutItem()))


def _params() -> Flow:
    node = Put("v", "{a}-{b}-{c}").with_params(c="node")
    return Flow(node).with_params(a="flow", b="flow")


def _middleware() -> Flow:
    async def count(args: NodeArgs, next: Any) -> Any:
        await args.ctx.set("seen", await args.ctx.get("seen", 0) + 1)
        return await next(args)

    flow = SequenceFlow(Put("a"), Put("b"))
    flow.use(count)
    return flow


def _filter() -> Flow:
    class Value(Node):
        def exec(self, args: NodeArgs) -> int:
            return 2

    node = Value().filter(lambda v: v > 5)
    node.next(Put("passed"))
    node.next(Put("failed"), FILTER_FAILED)
    return Flow(node)


def _collection() -> Flow:
    return Flow(map_collection([1, 2, 3], lambda x: x * 2))


CASES: list[Case] = [
    Case("linear", _linear, {"a": 1, "b": 2, "c": 3}, "end"),
    Case("branch", _branch, {"decide": "x", "right": True}),
    Case("loop", _loop, {"n": 5, "after": True}),
    Case("sub_flow_action", _sub_flow_action, {"inner": True, "approved": True}),
    Case("fan_in", _fan_in, {"a": 1, "b": 2, "c": 3, "joined": [1, 2, 3], "joined_runs": 1, "after_par": True}),
    Case("nested_fan_in", _nested_fan_in, {"x": 1, "y": 2, "z": 3, "joined": [1, 2, 3], "joined_runs": 1}),
    Case(
        "fan_in_other_action",
        _fan_in_other_action,
        {"a": 1, "b": 2, "side": 3, "joined": [1, 2, 3], "joined_runs": 1},
    ),
    Case(
        "loop_through_parallel",
        _loop_through_parallel,
        {"n": 3, "other": 1, "joined": [3], "joined_runs": 3, "rounds": 3},
        "done",
    ),
    Case("batch", _batch, {"total": 16}, initial={"total": 10}),
    Case("parallel_batch", _parallel_batch, {"item0": 0, "item1": 10, "item2": 20, "item3": 30}),
    Case("params", _params, {"v": "flow-run-node"}, params={"b": "run"}),
    Case("middleware", _middleware, {"a": True, "b": True, "seen": 2}),
    Case("filter", _filter, {"failed": True}),
    Case("collection", _collection, {}, [2, 4, 6]),
]


class ObservingExecutor(InMemoryExecutor):
    """A subclass overriding ``run_node``: must give the same results."""

    def __init__(self) -> None:
        self.visited: list[Any] = []

    async def run_node(self, args: NodeArgs) -> Any:
        self.visited.append(args.node)
        return await super().run_node(args)


class RoutingExecutor(InMemoryExecutor):
    """A subclass overriding ``get_next_node`` (delegating to the default rule)."""

    def get_next_node(self, curr: Any, action: Any) -> Any:
        return first_successor(curr, action)


class LifecycleExecutor:
    """Protocol-only (not an InMemoryExecutor): runs the top-level flow's lifecycle with
    public pieces; nested walks are handed, explicitly, to an in-memory engine."""

    def __init__(self) -> None:
        self.engine = InMemoryExecutor()

    async def run(self, flow: Flow, context: Any = None, options: RunOptions | None = None) -> Any:
        options = options or RunOptions()
        ctx = context if context is not None else TypedContext()
        params = {**flow.params, **(options.params or {})}
        signal = options.signal or (options.controller or AbortController()).signal
        args = NodeArgs(ctx, params, signal, options.logger or NullLogger(), name=flow.name, executor=self, node=flow)
        return await flow.run_lifecycle(args)

    def run_subflow(self, flow: Flow, args: NodeArgs) -> Any:
        return self.engine.run_subflow(flow, args)

    async def run_parallel(self, block: Flow, branches: Any, args: NodeArgs, limit: int | None = None) -> list[Any]:
        return await self.engine.run_parallel(block, branches, args, limit)

    async def run_batch(self, block: Flow, node: Any, items: Any, args: NodeArgs, **options: Any) -> list[Any]:
        return await self.engine.run_batch(block, node, items, args, **options)


class NoSignalExecutor(LifecycleExecutor):
    """Written from the guide with ``options.signal`` as is: ``NodeArgs.signal`` is ``None``
    (never aborted) when the run was given no signal (SPEC §8.18)."""

    async def run(self, flow: Flow, context: Any = None, options: RunOptions | None = None) -> Any:
        options = options or RunOptions()
        ctx = context if context is not None else TypedContext()
        params = {**flow.params, **(options.params or {})}
        logger = options.logger or NullLogger()
        args = NodeArgs(ctx, params, options.signal, logger, name=flow.name, executor=self, node=flow)  # type: ignore[arg-type]
        return await flow.run_lifecycle(args)


class RunnerOnly:
    """Only ``run`` (a FlowRunner), yet puts itself in ``NodeArgs.executor``."""

    async def run(self, flow: Flow, context: Any = None, options: RunOptions | None = None) -> Any:
        args = NodeArgs(TypedContext(), {}, AbortController().signal, NullLogger(), executor=self, node=flow)
        return await flow.run_lifecycle(args)


EXECUTORS: list[Callable[[], Any]] = [
    InMemoryExecutor,
    ObservingExecutor,
    RoutingExecutor,
    LifecycleExecutor,
    NoSignalExecutor,
]


def test_lifecycle_executor_satisfies_the_protocol():
    assert isinstance(LifecycleExecutor(), Executor)


def test_a_flow_runner_is_not_an_executor_and_nested_walks_say_so():
    assert isinstance(RunnerOnly(), FlowRunner)
    assert not isinstance(RunnerOnly(), Executor)
    with pytest.raises(TypeError, match=r"RunnerOnly is in NodeArgs.executor but has no run_subflow, run_parallel"):
        asyncio.run(Flow(Put("a")).run(executor=RunnerOnly()))


@pytest.mark.parametrize("make_executor", EXECUTORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_contract(make_executor, case):
    check_case(make_executor(), case)


def test_observing_executor_sees_every_node_including_branches():
    executor = ObservingExecutor()
    check_case(executor, CASES[4])  # fan_in
    ids = sorted(str(node.id) for node in executor.visited if node.id is not None)
    assert ids == ["a", "after_par", "b", "c", "joined"]


def test_walks_set_every_node_args_field():
    """The walk builds NodeArgs by slot writes: a field it forgets would be unset here."""
    import dataclasses

    seen: list[NodeArgs] = []

    class Grab(Node):
        def post(self, args: NodeArgs) -> Any:
            seen.append(args)

    first = Grab()
    first.next(Grab())
    asyncio.run(Flow(first).run())
    assert len(seen) == 2
    for args in seen:
        values = {field.name: getattr(args, field.name) for field in dataclasses.fields(NodeArgs)}
        assert values["node"] is not None and values["scope"] is not None


def test_a_node_lifecycle_with_no_signal_is_never_aborted():
    """``NodeArgs.signal=None`` through every phase: retries with a wait, the fallback, a walk."""
    attempts: list[int] = []

    class Flaky(Node):
        def __init__(self) -> None:
            super().__init__(max_retries=3, wait=0.001)

        def exec(self, args: NodeArgs) -> Any:
            attempts.append(1)
            raise ValueError("always")

        def exec_fallback(self, args: NodeArgs) -> Any:
            return "fell back"

        async def post(self, args: NodeArgs) -> Any:
            await args.ctx.set("result", args.exec_res)
            return "done"

    async def main() -> tuple[Any, Any]:
        ctx = TypedContext()
        node = Flaky()
        action = await node.run_lifecycle(NodeArgs(ctx, {}, None, NullLogger()))  # type: ignore[arg-type]
        inner = SequenceFlow(Put("a"), Put("b"))
        flow_action = await inner.run_lifecycle(NodeArgs(ctx, {}, None, NullLogger(), node=inner))  # type: ignore[arg-type]
        return action, (flow_action, ctx.to_dict())

    action, (flow_action, final) = asyncio.run(main())
    assert action == "done" and len(attempts) == 3
    assert flow_action == DEFAULT_ACTION
    assert final == {"result": "fell back", "a": True, "b": True}


def test_engine_walks_called_directly_with_no_signal():
    """A custom executor may hand the engine's walks NodeArgs with ``signal=None``."""
    engine = InMemoryExecutor()

    async def main() -> dict[str, Any]:
        ctx = TypedContext()

        def args() -> NodeArgs:
            return NodeArgs(ctx, {}, None, NullLogger(), executor=engine)  # type: ignore[arg-type]

        await engine.run_subflow(SequenceFlow(Put("a"), Put("b")), args())
        block = ParallelFlow()
        await engine.run_parallel(block, [Put("c"), Put("d")], args())
        await engine.run_batch(block, Put("e"), [{}, {}], args(), concurrent=False)
        return ctx.to_dict()

    assert asyncio.run(main()) == {"a": True, "b": True, "c": True, "d": True, "e": True}
