"""Node types of the fan-out/fan-in example; workers load them with
``--registry fanout_nodes:REGISTRY``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flowcraft import Node, NodeArgs
from flowcraft.graph import create_node_registry


class Fetch(Node):
    """Pretends to fetch one source: writes ``size:<source>`` (its own key)."""

    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()
        self.source = str((data or {})["source"])

    async def exec(self, args: NodeArgs) -> int:
        await asyncio.sleep(0.2)
        return len(self.source) * 100

    async def post(self, args: NodeArgs) -> None:
        await args.ctx.set(f"size:{self.source}", args.exec_res)
        await args.ctx.set(f"worker:{self.source}", os.getpid())


class Summarize(Node):
    """The fan-in: runs once, after every fetch, and adds the sizes up."""

    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()

    async def post(self, args: NodeArgs) -> str:
        total = sum(value for key, value in args.ctx.entries() if key.startswith("size:"))
        await args.ctx.set("total", total)
        return "summarized"


REGISTRY = create_node_registry({"fetch": Fetch, "summarize": Summarize})

SOURCES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

GRAPH = {
    "nodes": [{"id": s, "type": "fetch", "data": {"source": s}} for s in SOURCES]
    + [{"id": "summary", "type": "summarize"}],
    "edges": [{"source": s, "target": "summary"} for s in SOURCES],
}
