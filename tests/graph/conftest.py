"""Shared helpers for the graph tests: recording nodes, a dict resolver, runners."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from flowcraft import Node, NodeArgs, TypedContext


class Recorder(Node[Any, Any, Any]):
    """Appends its id to ``ctx["log"]``; returns ``data["action"]`` (or the value of
    ``ctx[data["action_key"]]``) as its action; ``data["set"]`` is written to the context."""

    def __init__(self, data: Mapping[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()
        self.data = dict(data or {})
        self.deps = deps

    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        ctx = args.ctx
        log = list(await ctx.get("log")) if await ctx.has("log") else []
        log.append(self.data.get("nodeId", self.id))
        await ctx.set("log", log)
        for key, value in (self.data.get("set") or {}).items():
            await ctx.set(key, value)

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        key = self.data.get("action_key")
        if key is not None:
            return await args.ctx.get(key)
        return self.data.get("action")


class DictResolver:
    """A SubWorkflowResolver over a dict of graphs."""

    def __init__(self, graphs: Mapping[str | int, Any]) -> None:
        self.graphs = dict(graphs)
        self.calls: list[str | int] = []

    def get_graph(self, workflow_id: str | int) -> Any:
        self.calls.append(workflow_id)
        return self.graphs.get(workflow_id)


def run(flow: Any, ctx: TypedContext | None = None, **options: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``flow`` synchronously; returns (final action, context snapshot)."""
    ctx = ctx if ctx is not None else TypedContext()
    action = asyncio.run(flow.run(ctx, **options))
    return action, ctx.to_dict()


@pytest.fixture
def registry() -> dict[str, Any]:
    return {"task": Recorder, "check": Recorder, "decide": Recorder}
