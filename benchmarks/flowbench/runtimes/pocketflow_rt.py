"""PocketFlow (``pocketflow`` on PyPI): the workloads with its async classes.

PocketFlow has one successor per action, so a fan-out is expressed with its parallel
batch flow, and a graph description with fan-out edges (W4 DAG) cannot be built.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from pocketflow import AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode

from ..workloads import chain_description
from . import Adapter

HELLO = """
import asyncio
from pocketflow import AsyncFlow, AsyncNode
class Hello(AsyncNode):
    async def exec_async(self, prep_res):
        print("hello")
asyncio.run(AsyncFlow(start=Hello()).run_async({}))
"""

# The loop ends on an action with no successor, which PocketFlow warns about every time.
warnings.filterwarnings("ignore", message="Flow ends:", category=UserWarning)

ADAPTER = Adapter(
    name="pocketflow",
    label="PocketFlow",
    version=lambda: f"pocketflow {version('pocketflow')}",
    import_statement="import pocketflow",
    hello_source=HELLO,
    unsupported={
        "w1.chain.mw1": "no middleware",
        "w1.chain.mw3": "no middleware",
        "w2.block": "same as its w2.fanout (parallel batch flow, then the join)",
        "w4.dag": "one successor per action: fan-out edges cannot be expressed",
    },
)


class Noop(AsyncNode):  # type: ignore[misc]
    async def exec_async(self, prep_res: Any) -> None:
        return None


class Counted(AsyncNode):  # type: ignore[misc]
    """Loops on itself; the counter is shared because PocketFlow copies nodes per step."""

    def __init__(self, limit: int, box: list[int]) -> None:
        super().__init__()
        self.limit = limit
        self.box = box

    async def exec_async(self, prep_res: Any) -> None:
        return None

    async def post_async(self, shared: Any, prep_res: Any, exec_res: Any) -> Any:
        box = self.box
        box[0] += 1
        return "again" if box[0] < self.limit else None


class SleepBranch(AsyncNode):  # type: ignore[misc]
    async def exec_async(self, prep_res: Any) -> None:
        await asyncio.sleep(0.01)


class SleepItem(AsyncNode):  # type: ignore[misc]
    async def exec_async(self, prep_res: Any) -> None:
        await asyncio.sleep(0.001)


class Fanout(AsyncParallelBatchFlow):  # type: ignore[misc]
    def __init__(self, start: Any, items: list[dict[str, Any]]) -> None:
        super().__init__(start=start)
        self.items = items

    async def prep_async(self, shared: Any) -> Any:
        return self.items


class BatchNoop(AsyncParallelBatchNode):  # type: ignore[misc]
    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__()
        self.items = items

    async def prep_async(self, shared: Any) -> Any:
        return self.items

    async def exec_async(self, item: Any) -> None:
        return None


class BatchSleep(BatchNoop):
    async def exec_async(self, item: Any) -> None:
        await asyncio.sleep(0.001)


def _runner(flow: Any) -> Callable[[], Awaitable[Any]]:
    async def run() -> None:
        await flow.run_async({})

    return run


@ADAPTER.add("w1.chain")
def chain(size: int) -> Callable[[], Awaitable[Any]]:
    first = current = Noop()
    for _ in range(size - 1):
        current = current.next(Noop())
    return _runner(AsyncFlow(start=first))


@ADAPTER.add("w1.loop")
def loop(size: int) -> Callable[[], Awaitable[Any]]:
    box = [0]
    node = Counted(size, box)
    node.next(node, "again")
    flow = AsyncFlow(start=node)

    async def run() -> None:
        box[0] = 0
        await flow.run_async({})

    return run


def fanout(size: int) -> Callable[[], Awaitable[Any]]:
    items = [{"branch": i} for i in range(size)]
    batch = Fanout(SleepBranch(), items)
    batch.next(Noop())
    return _runner(AsyncFlow(start=batch))


ADAPTER.add("w2.fanout")(fanout)


def _batch_node(cls: type[BatchNoop]) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        return _runner(AsyncFlow(start=cls([{"i": i} for i in range(size)])))

    return factory


def _subflow(work: type[AsyncNode]) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        return _runner(AsyncFlow(start=Fanout(work(), [{"i": i} for i in range(size)])))

    return factory


ADAPTER.add("w3.batch.noop")(_batch_node(BatchNoop))
ADAPTER.add("w3.batch.sleep")(_batch_node(BatchSleep))
ADAPTER.add("w3.subflow.noop")(_subflow(Noop))
ADAPTER.add("w3.subflow.sleep")(_subflow(SleepItem))


@ADAPTER.add("w4.chain")
def build_chain(size: int) -> Callable[[], Awaitable[Any]]:
    """No builder: nodes and ``next`` from the description by hand (the only way)."""
    description = chain_description(size)

    async def run() -> None:
        nodes = {node["id"]: Noop() for node in description["nodes"]}
        for edge in description["edges"]:
            nodes[edge["source"]].next(nodes[edge["target"]], edge.get("action", "default"))
        AsyncFlow(start=nodes[description["nodes"][0]["id"]])

    return run


def _memory(size: int) -> tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]:
    return (lambda: fanout(size)), (lambda run: run())


ADAPTER.memory = _memory
