"""Flowcraft for Python: the workloads written with the public API only."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

import flowcraft
from flowcraft import Flow, Node, NodeArgs, ParallelBatchFlow, ParallelFlow

from ..workloads import chain_description, dag_description
from . import Adapter, Unavailable

HELLO = """
from flowcraft import Flow, Node
class Hello(Node):
    async def exec(self, args):
        print("hello")
Flow(Hello()).run_sync()
"""

ADAPTER = Adapter(
    name="flowcraft",
    label="Flowcraft for Python",
    version=lambda: f"flowcraft-py {flowcraft.__version__}",
    import_statement="import flowcraft",
    hello_source=HELLO,
)


class Noop(Node[Any, Any, Any]):
    """A no-op node: one awaited ``exec``; ``prep``/``post`` are the defaults."""

    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        return None


class Counted(Node[Any, Any, Any]):
    """A no-op node that loops on itself until it ran ``limit`` times."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.box = [0]

    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        return None

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        box = self.box
        box[0] += 1
        return "again" if box[0] < self.limit else None


class SleepBranch(Node[Any, Any, Any]):
    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        await asyncio.sleep(0.01)


class SleepItem(Node[Any, Any, Any]):
    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        await asyncio.sleep(0.001)


async def noop_middleware(args: NodeArgs[Any, Any], call_next: Any) -> Any:
    return await call_next(args)


# ---- W1 -------------------------------------------------------------------------------------


def _chain(size: int, middleware: int) -> Callable[[], Awaitable[Any]]:
    flow = Flow()
    current = flow.start(Noop())
    for _ in range(size - 1):
        current = current.next(Noop())
    for _ in range(middleware):
        flow.use(noop_middleware)
    return flow.run


ADAPTER.add("w1.chain")(lambda size: _chain(size, 0))
ADAPTER.add("w1.chain.mw1")(lambda size: _chain(size, 1))
ADAPTER.add("w1.chain.mw3")(lambda size: _chain(size, 3))


@ADAPTER.add("w1.loop")
def loop(size: int) -> Callable[[], Awaitable[Any]]:
    node = Counted(size)
    node.next(node, "again")
    flow = Flow(node)

    async def run() -> None:
        node.box[0] = 0
        await flow.run()

    return run


# ---- W2 -------------------------------------------------------------------------------------


def fanout(size: int) -> Callable[[], Awaitable[Any]]:
    """K branches, each ``.next(join)``: the join is a fan-in of the graph (runs once, after all)."""
    join = Noop()
    branches = [SleepBranch() for _ in range(size)]
    for branch in branches:
        branch.next(join)
    return Flow(ParallelFlow(branches)).run


def block(size: int) -> Callable[[], Awaitable[Any]]:
    """K branches in a parallel block; the join is the block's successor."""
    flow = Flow()
    flow.start(ParallelFlow([SleepBranch() for _ in range(size)])).next(Noop())
    return flow.run


ADAPTER.add("w2.fanout")(fanout)
ADAPTER.add("w2.block")(block)


# ---- W3 -------------------------------------------------------------------------------------


class Items(ParallelBatchFlow):
    """A parallel batch whose ``prep`` returns the precomputed items."""

    def __init__(self, node_to_run: Node[Any, Any, Any], items: list[dict[str, Any]]) -> None:
        super().__init__(node_to_run)
        self.items = items

    def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return self.items


def _batch(work: type[Node[Any, Any, Any]], subflow: bool) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        items = [{"i": i} for i in range(size)]
        node: Node[Any, Any, Any] = Flow(work()) if subflow else work()
        return Flow(Items(node, items)).run

    return factory


ADAPTER.add("w3.batch.noop")(_batch(Noop, subflow=False))
ADAPTER.add("w3.batch.sleep")(_batch(SleepItem, subflow=False))
ADAPTER.add("w3.subflow.noop")(_batch(Noop, subflow=True))
ADAPTER.add("w3.subflow.sleep")(_batch(SleepItem, subflow=True))


# ---- W4 -------------------------------------------------------------------------------------


def _graph_builder() -> Any:
    try:
        graph = importlib.import_module("flowcraft.graph")
    except ImportError as error:
        raise Unavailable(f"flowcraft.graph is not available ({error})") from None
    builder = getattr(graph, "GraphBuilder", None)
    if builder is None:
        raise Unavailable("flowcraft.graph.GraphBuilder is not available yet")
    registry = graph.create_node_registry({"noop": Noop}) if hasattr(graph, "create_node_registry") else {"noop": Noop}
    return builder(registry)


def _builder(describe: Callable[[int], dict[str, Any]]) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        builder = _graph_builder()
        description = describe(size)

        async def run() -> None:
            # From the plain JSON-shaped dict: parsing and validation are part of building
            # (build_blueprint parses a dict itself).
            builder.build_blueprint(description)

        return run

    return factory


ADAPTER.add("w4.chain")(_builder(chain_description))
ADAPTER.add("w4.dag")(_builder(dag_description))


# ---- W5 -------------------------------------------------------------------------------------


def _memory(size: int) -> tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]:
    return (lambda: fanout(size)), (lambda run: run())


ADAPTER.memory = _memory
