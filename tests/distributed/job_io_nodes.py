"""Worker-side helpers of ``test_job_io.py`` (imported by worker subprocesses)."""

from __future__ import annotations

from typing import Any

import dist_nodes as d

from flowcraft import NodeArgs
from flowcraft.distributed import store
from flowcraft.graph import GraphBuilder, WorkflowBlueprint, create_node_registry


class ReadBig(d.Base):
    """Stores the length of ``big`` (read with ``get``) under ``got``."""

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("got", len(await args.ctx.get("big")))


class ListAll(d.Base):
    """Stores the context's key names and the length of each value (listed with ``to_dict``)."""

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("sizes", {k: len(v) for k, v in args.ctx.to_dict().items() if isinstance(v, str)})


REGISTRY = create_node_registry({**d.REGISTRY, "readbig": ReadBig, "listall": ListAll})


def build(graph: dict[str, Any]) -> WorkflowBlueprint:
    return GraphBuilder(REGISTRY).build_blueprint(graph).blueprint


def joins_on_request() -> dict[str, Any]:
    """``--dependencies`` factory: this worker's commits leave the fan-in release facts out
    unless the commit script asks for them (as a wide graph's commits do)."""
    store.JOINS_INLINE = 0
    return {}
