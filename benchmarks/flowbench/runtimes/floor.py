"""The floor: the same workloads written with plain asyncio (direct awaits, ``asyncio.gather``).

W4's floor builds plain dicts from the description (id -> node, successors by action,
predecessor counts): the least any builder has to do.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Awaitable, Callable
from typing import Any

from ..workloads import chain_description, dag_description
from . import Adapter

HELLO = """
import asyncio
async def hello():
    print("hello")
asyncio.run(hello())
"""

ADAPTER = Adapter(
    name="asyncio",
    label="plain asyncio",
    version=lambda: f"CPython {platform.python_version()}",
    import_statement="import asyncio",
    hello_source=HELLO,
)


async def noop() -> None:
    return None


# ---- W1 -------------------------------------------------------------------------------------


@ADAPTER.add("w1.chain")
def chain(size: int) -> Callable[[], Awaitable[None]]:
    steps = [noop] * size

    async def run() -> None:
        for step in steps:
            await step()

    return run


@ADAPTER.add("w1.loop")
def loop(size: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        count = 0
        while True:
            await noop()
            count += 1
            if count >= size:
                break

    return run


# ---- W2 -------------------------------------------------------------------------------------


async def sleep_branch() -> None:
    await asyncio.sleep(0.01)


def fanout(size: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await asyncio.gather(*(sleep_branch() for _ in range(size)))
        await noop()  # the join

    return run


ADAPTER.add("w2.fanout")(fanout)


# ---- W3 -------------------------------------------------------------------------------------


async def item_noop(item: dict[str, Any]) -> None:
    return None


async def item_sleep(item: dict[str, Any]) -> None:
    await asyncio.sleep(0.001)


def _batch(work: Callable[[dict[str, Any]], Awaitable[None]]) -> Callable[[int], Callable[[], Awaitable[None]]]:
    def factory(size: int) -> Callable[[], Awaitable[None]]:
        items = [{"i": i} for i in range(size)]

        async def run() -> None:
            await asyncio.gather(*(work(item) for item in items))

        return run

    return factory


ADAPTER.add("w3.batch.noop")(_batch(item_noop))
ADAPTER.add("w3.batch.sleep")(_batch(item_sleep))


# ---- W4 -------------------------------------------------------------------------------------


def build_plain(description: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Nodes by id, successors by action and predecessor counts, from a description."""
    nodes = {node["id"]: node for node in description["nodes"]}
    successors: dict[str, dict[str, list[str]]] = {node_id: {} for node_id in nodes}
    predecessors = dict.fromkeys(nodes, 0)
    for edge in description["edges"]:
        source, target = edge["source"], edge["target"]
        if source not in nodes or target not in nodes:
            raise ValueError(f"dangling edge {source} -> {target}")
        successors[source].setdefault(edge.get("action", "default"), []).append(target)
        predecessors[target] += 1
    starts = [node_id for node_id, count in predecessors.items() if count == 0]
    return {"nodes": nodes, "successors": successors, "predecessors": predecessors, "starts": starts}


def _builder(describe: Callable[[int], dict[str, list[dict[str, str]]]]) -> Callable[[int], Any]:
    def factory(size: int) -> Callable[[], Awaitable[None]]:
        description = describe(size)

        async def run() -> None:
            build_plain(description)

        return run

    return factory


ADAPTER.add("w4.chain")(_builder(chain_description))
ADAPTER.add("w4.dag")(_builder(dag_description))


# ---- W5 -------------------------------------------------------------------------------------


def _memory(size: int) -> tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]:
    return (lambda: fanout(size)), (lambda run: run())


ADAPTER.memory = _memory
