"""LangGraph (``langgraph`` on PyPI): the workloads as ``StateGraph`` s run with ``ainvoke``.

Nodes are ``async def`` functions returning ``None`` (no state update). Fan-out is
static edges from ``START`` joined by one multi-source edge; batches use ``Send``
(to a node, or to a compiled one-node sub-graph for the per-item sub-flow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from ..workloads import chain_description, dag_description
from . import Adapter

HELLO = """
import asyncio
from typing import TypedDict
from langgraph.graph import END, START, StateGraph
class State(TypedDict, total=False):
    i: int
async def hello(state):
    print("hello")
graph = StateGraph(State)
graph.add_node("hello", hello)
graph.add_edge(START, "hello")
graph.add_edge("hello", END)
asyncio.run(graph.compile().ainvoke({}))
"""

ADAPTER = Adapter(
    name="langgraph",
    label="LangGraph",
    version=lambda: f"langgraph {version('langgraph')}",
    import_statement="from langgraph.graph import StateGraph",
    hello_source=HELLO,
    unsupported={
        "w1.chain.mw1": "no middleware",
        "w1.chain.mw3": "no middleware",
        "w2.block": "same as its w2.fanout",
    },
)


class State(TypedDict, total=False):
    i: int


class NoOutput(TypedDict, total=False):
    """A sub-graph writes nothing back (K items writing ``i`` at once would conflict)."""


async def noop(state: State) -> None:
    return None


async def sleep_branch(state: State) -> None:
    await asyncio.sleep(0.01)


async def sleep_item(state: State) -> None:
    await asyncio.sleep(0.001)


def _runner(graph: Any, limit: int) -> Callable[[], Awaitable[Any]]:
    compiled = graph.compile()
    config = {"recursion_limit": limit + 10}

    async def run() -> None:
        await compiled.ainvoke({}, config)

    return run


@ADAPTER.add("w1.chain")
def chain(size: int) -> Callable[[], Awaitable[Any]]:
    graph = StateGraph(State)
    for i in range(size):
        graph.add_node(f"n{i}", noop)
    graph.add_edge(START, "n0")
    for i in range(size - 1):
        graph.add_edge(f"n{i}", f"n{i + 1}")
    graph.add_edge(f"n{size - 1}", END)
    return _runner(graph, size)


@ADAPTER.add("w1.loop")
def loop(size: int) -> Callable[[], Awaitable[Any]]:
    box = [0]

    async def counted(state: State) -> None:
        box[0] += 1

    def route(state: State) -> str:
        return "again" if box[0] < size else "end"

    graph = StateGraph(State)
    graph.add_node("loop", counted)
    graph.add_edge(START, "loop")
    graph.add_conditional_edges("loop", route, {"again": "loop", "end": END})
    run_graph = _runner(graph, size)

    async def run() -> None:
        box[0] = 0
        await run_graph()

    return run


def fanout(size: int) -> Callable[[], Awaitable[Any]]:
    graph = StateGraph(State)
    names = [f"b{i}" for i in range(size)]
    for name in names:
        graph.add_node(name, sleep_branch)
        graph.add_edge(START, name)
    graph.add_node("join", noop)
    graph.add_edge(names, "join")
    graph.add_edge("join", END)
    return _runner(graph, 10)


ADAPTER.add("w2.fanout")(fanout)


def _batch(work: Callable[[State], Awaitable[None]], subflow: bool) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        items = [State(i=i) for i in range(size)]
        target: Any = work
        if subflow:
            inner = StateGraph(State, output_schema=NoOutput)
            inner.add_node("work", work)
            inner.add_edge(START, "work")
            inner.add_edge("work", END)
            target = inner.compile()
        graph = StateGraph(State)
        graph.add_node("work", target)
        graph.add_conditional_edges(START, lambda state: [Send("work", item) for item in items])
        graph.add_edge("work", END)
        return _runner(graph, 10)

    return factory


ADAPTER.add("w3.batch.noop")(_batch(noop, subflow=False))
ADAPTER.add("w3.batch.sleep")(_batch(sleep_item, subflow=False))
ADAPTER.add("w3.subflow.noop")(_batch(noop, subflow=True))
ADAPTER.add("w3.subflow.sleep")(_batch(sleep_item, subflow=True))


def _builder(describe: Callable[[int], dict[str, Any]]) -> Callable[[int], Callable[[], Awaitable[Any]]]:
    def factory(size: int) -> Callable[[], Awaitable[Any]]:
        description = describe(size)

        async def run() -> None:
            graph = StateGraph(State)
            targets = set()
            for node in description["nodes"]:
                graph.add_node(node["id"], noop)
            for edge in description["edges"]:
                graph.add_edge(edge["source"], edge["target"])
                targets.add(edge["target"])
            for node in description["nodes"]:
                if node["id"] not in targets:
                    graph.add_edge(START, node["id"])
            graph.compile()

        return run

    return factory


ADAPTER.add("w4.chain")(_builder(chain_description))
ADAPTER.add("w4.dag")(_builder(dag_description))


def _memory(size: int) -> tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]:
    return (lambda: fanout(size)), (lambda run: run())


ADAPTER.memory = _memory
