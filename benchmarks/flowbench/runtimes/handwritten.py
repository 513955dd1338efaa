"""The hand-written floor of issue 18: the least a workflow engine can do, written by hand.

Plain asyncio (``floor.py``) is the floor every runtime is divided by. This runtime sits
between the two: it does, by hand and with nothing else, the work any engine with
Flowcraft's model must do, so its ratio to plain asyncio says how close to that floor a
target can be set.

- chain: per node a 12-field args record, ``exec`` awaited (``prep``/``post`` not
  overridden, so skipped), an abort check and a successor lookup.
- fan-out: per branch a task, fail-fast (a done-callback that cancels the rest) and the
  join's arrival count, then the join.
- batch: per item a task, the params merge and an outcome record; the per-item sub-flow
  walks a one-node graph in each item.

``benchmarks/floors.py`` times the same floors in one process beside plain asyncio and
Flowcraft.
"""

from __future__ import annotations

import asyncio
import itertools
import platform
from collections.abc import Awaitable, Callable
from typing import Any

from . import Adapter

ADAPTER = Adapter(
    name="handwritten",
    label="hand-written engine floor",
    version=lambda: f"hand-written, CPython {platform.python_version()}",
    import_statement="import asyncio",
    hello_source="import asyncio\nasync def hello():\n    print('hello')\nasyncio.run(hello())\n",
    unsupported={
        "w1.chain.mw1": "no middleware (a floor)",
        "w1.chain.mw3": "no middleware (a floor)",
        "w1.loop": "same as its chain",
        "w2.block": "same as its fan-out",
        "w4.chain": "plain asyncio's column is the plain-dict build",
        "w4.dag": "plain asyncio's column is the plain-dict build",
        "startup.import": "nothing to import (a floor)",
        "startup.hello": "same as plain asyncio",
    },
)


class Args:
    """A 12-field args record (what ``NodeArgs`` holds)."""

    __slots__ = (
        "ctx", "error", "exec_res", "executor", "incoming_action", "logger",
        "name", "node", "params", "prep_res", "scope", "signal",
    )  # fmt: skip

    def __init__(self, ctx: Any, params: Any, signal: Any, logger: Any, name: str, node: Any, action: Any) -> None:
        self.ctx, self.params, self.signal, self.logger = ctx, params, signal, logger
        self.prep_res = self.exec_res = self.error = None
        self.name, self.executor, self.node, self.scope, self.incoming_action = name, None, node, None, action


class Signal:
    """An abort flag."""

    __slots__ = ("aborted",)

    def __init__(self) -> None:
        self.aborted = False


class FloorNode:
    """A node whose ``prep`` and ``post`` are not overridden (skipped) and whose ``exec`` is awaited."""

    def __init__(self) -> None:
        self.successors: dict[str, list[FloorNode]] = {}
        self.params: dict[str, Any] = {}

    async def exec(self, args: Args) -> Any:
        return None


class SleepNode(FloorNode):
    """A branch sleeping 10 ms."""

    async def exec(self, args: Args) -> Any:
        await asyncio.sleep(0.01)


class SleepItemNode(FloorNode):
    """An item sleeping 1 ms."""

    async def exec(self, args: Args) -> Any:
        await asyncio.sleep(0.001)


async def walk(node: FloorNode | None, signal: Signal, params: dict[str, Any]) -> Any:
    """Run ``node`` and its successors on the default action; return the last action."""
    action: Any = None
    while node is not None:
        if signal.aborted:
            raise RuntimeError("aborted")
        args = Args(None, params, signal, None, "FloorNode", node, action)
        args.exec_res = await node.exec(args)
        action = "default"
        bucket = node.successors.get(action)
        node = bucket[0] if bucket else None
    return action


# ---- W1 -------------------------------------------------------------------------------------


@ADAPTER.add("w1.chain")
def chain(size: int) -> Callable[[], Awaitable[Any]]:
    """A chain of ``size`` no-op nodes."""
    nodes = [FloorNode() for _ in range(size)]
    for a, b in itertools.pairwise(nodes):
        a.successors["default"] = [b]
    signal = Signal()

    async def run() -> None:
        await walk(nodes[0], signal, {})

    return run


# ---- W2 -------------------------------------------------------------------------------------


@ADAPTER.add("w2.fanout")
def fanout(size: int) -> Callable[[], Awaitable[Any]]:
    """``size`` branches sleeping 10 ms, fail-fast, counted into a join."""
    branches = [SleepNode() for _ in range(size)]
    join = FloorNode()
    signal = Signal()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        tasks: set[asyncio.Task[Any]] = set()
        arrivals = [0]

        def on_done(task: asyncio.Task[Any]) -> None:
            tasks.discard(task)
            if done.done():
                return
            error = task.exception()
            if error is not None:
                done.set_exception(error)
                for other in tasks:
                    other.cancel()
                return
            arrivals[0] += 1
            if arrivals[0] == size:
                done.set_result(None)

        for branch in branches:
            task = loop.create_task(walk(branch, signal, {}))
            tasks.add(task)
            task.add_done_callback(on_done)
        await done
        await walk(join, signal, {})

    return run


# ---- W3 -------------------------------------------------------------------------------------


def batch(items: list[dict[str, Any]], node: FloorNode, subflow: bool) -> Callable[[], Awaitable[Any]]:
    """A task per item: params merge, the node (or a one-node walk), an outcome record."""
    signal = Signal()
    base: dict[str, Any] = {}

    async def run_item(index: int, item: dict[str, Any]) -> tuple[int, Any, Any, Any]:
        params = {**base, **item}
        if subflow:  # the item's own walk of its one-node graph
            args = Args(None, params, signal, None, "Flow", node, None)
            action = await walk(node, signal, params)
        else:
            args = Args(None, params, signal, None, "FloorNode", node, None)
            args.exec_res = await node.exec(args)
            action = "default"
        return (index, item, action, None)  # the outcome record

    async def run() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*[loop.create_task(run_item(i, item)) for i, item in enumerate(items)])

    return run


def _batch(node_type: type[FloorNode], subflow: bool) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        return batch([{"i": i} for i in range(size)], node_type(), subflow)

    return factory


ADAPTER.add("w3.batch.noop")(_batch(FloorNode, subflow=False))
ADAPTER.add("w3.batch.sleep")(_batch(SleepItemNode, subflow=False))
ADAPTER.add("w3.subflow.noop")(_batch(FloorNode, subflow=True))
ADAPTER.add("w3.subflow.sleep")(_batch(SleepItemNode, subflow=True))


# ---- W5 -------------------------------------------------------------------------------------


def _memory(size: int) -> tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]:
    return (lambda: fanout(size)), (lambda run: run())


ADAPTER.memory = _memory
