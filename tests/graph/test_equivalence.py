"""Differential test: a workflow written programmatically with nested flows and the same
workflow as a JSON graph with inlined sub-workflows end with the same context and action."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from flowcraft import AbstractNode, Flow, Node, ParallelFlow, TypedContext
from flowcraft.graph import GraphBuilder

from .conftest import DictResolver


class Mark(Node[Any, Any, Any]):
    """Counts its runs under ``mark:<name>``, adds to ``total``; action from data or context."""

    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()
        self.data = data or {}

    async def exec(self, args: Any) -> None:
        ctx, name = args.ctx, self.data["name"]
        key = f"mark:{name}"
        await ctx.set(key, ((await ctx.get(key)) if await ctx.has(key) else 0) + 1)
        await ctx.set("total", ((await ctx.get("total")) if await ctx.has("total") else 0) + self.data.get("add", 1))

    async def post(self, args: Any) -> Any:
        if "action_if" in self.data:  # {"key": ..., "below": n, "then": a, "else": b}
            rule = self.data["action_if"]
            return rule["then"] if (await args.ctx.get(rule["key"])) < rule["below"] else rule["else"]
        return self.data.get("action")


def m(name: str, **data: Any) -> Mark:
    return Mark({"name": name, **data})


def j(id: str, **data: Any) -> dict[str, Any]:
    return {"id": id, "type": "mark", "data": {"name": id, **data}}


def sub(id: str, workflow: str) -> dict[str, Any]:
    return {"id": id, "type": "sub", "data": {"workflowId": workflow}}


def e(source: str, target: str, action: str | None = None) -> dict[str, str]:
    return {"source": source, "target": target} | ({"action": action} if action else {})


def linear_with_sub() -> tuple[AbstractNode, dict[str, Any], dict[str, Any]]:
    inner = Flow()
    inner.start(m("x")).next(m("y", action="inner-done"))
    a = m("a")
    a.next(inner).next(m("b"), "inner-done")
    graph = {"nodes": [j("a"), sub("s", "w"), j("b")], "edges": [e("a", "s"), e("s", "b", "inner-done")]}
    subs = {"w": {"nodes": [j("x"), j("y", action="inner-done")], "edges": [e("x", "y")]}}
    return a, graph, subs


def actions_out_of_nested_subs() -> tuple[AbstractNode, dict[str, Any], dict[str, Any]]:
    deep = Flow()
    deep.start(m("d1")).next(m("d2", action_if={"key": "total", "below": 3, "then": "low", "else": "high"}))
    middle = Flow()
    middle.start(m("p")).next(deep)
    deep.next(m("q_low", action="approved"), "low")
    deep.next(m("q_high", action="rejected"), "high")
    top = m("start", add=5)
    top.next(middle)
    middle.next(m("ok", action="end-ok"), "approved")
    middle.next(m("ko", action="end-ko"), "rejected")
    graph = {
        "nodes": [j("start", add=5), sub("mid", "middle"), j("ok", action="end-ok"), j("ko", action="end-ko")],
        "edges": [e("start", "mid"), e("mid", "ok", "approved"), e("mid", "ko", "rejected")],
    }
    subs = {
        "middle": {
            "nodes": [j("p"), sub("deep", "deep"), j("q_low", action="approved"), j("q_high", action="rejected")],
            "edges": [e("p", "deep"), e("deep", "q_low", "low"), e("deep", "q_high", "high")],
        },
        "deep": {
            "nodes": [j("d1"), j("d2", action_if={"key": "total", "below": 3, "then": "low", "else": "high"})],
            "edges": [e("d1", "d2")],
        },
    }
    return top, graph, subs


def fan_out_inside_sub() -> tuple[AbstractNode, dict[str, Any], dict[str, Any]]:
    inner = Flow()
    head = m("h")
    block = ParallelFlow([m("l"), m("r")])
    inner.start(head).next(block).next(m("join", action="joined"))
    a = m("a")
    a.next(inner).next(m("z", action="fin"), "joined")
    graph = {"nodes": [j("a"), sub("s", "w"), j("z", action="fin")], "edges": [e("a", "s"), e("s", "z", "joined")]}
    subs = {
        "w": {
            "nodes": [j("h"), j("l"), j("r"), j("join", action="joined")],
            "edges": [e("h", "l"), e("h", "r"), e("l", "join"), e("r", "join")],
        }
    }
    return a, graph, subs


def loop_around_a_sub() -> tuple[AbstractNode, dict[str, Any], dict[str, Any]]:
    body = Flow()
    body.start(m("work")).next(m("check", action_if={"key": "mark:work", "below": 4, "then": "again", "else": "stop"}))
    start = m("start")
    start.next(body)
    body.next(body, "again")
    body.next(m("after", action="done"), "stop")
    graph = {
        "nodes": [j("start"), sub("loop", "body"), j("after", action="done")],
        "edges": [e("start", "loop"), e("loop", "loop", "again"), e("loop", "after", "stop")],
    }
    subs = {
        "body": {
            "nodes": [
                j("work"),
                j("check", action_if={"key": "mark:work", "below": 4, "then": "again", "else": "stop"}),
            ],
            "edges": [e("work", "check")],
        }
    }
    return start, graph, subs


CASES: dict[str, Callable[[], tuple[AbstractNode, dict[str, Any], dict[str, Any]]]] = {
    "linear_with_sub": linear_with_sub,
    "actions_out_of_nested_subs": actions_out_of_nested_subs,
    "fan_out_inside_sub": fan_out_inside_sub,
    "loop_around_a_sub": loop_around_a_sub,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_programmatic_and_declarative_agree(name: str) -> None:
    start, graph, subs = CASES[name]()
    programmatic_ctx, declarative_ctx = TypedContext(), TypedContext()
    programmatic = asyncio.run(Flow(start).run(programmatic_ctx))
    builder = GraphBuilder({"mark": Mark}, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs))
    declarative = asyncio.run(builder.build(graph).flow.run(declarative_ctx))
    assert declarative == programmatic
    assert declarative_ctx.to_dict() == programmatic_ctx.to_dict()
    assert programmatic_ctx.to_dict()  # something ran
