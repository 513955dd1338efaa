"""The flows of the durable-runs benchmark (``benchmarks/durable_bench.py``), named by
factory (``durable_flows:make_chain``) so that a durable run can be rebuilt by another
process.

The chain's length and each node's nap come from the environment, so that the process
that crashed and the one that recovers build the same graph.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

from flowcraft import Flow, Node, NodeArgs

LENGTH_ENV = "DURABLE_BENCH_N"
NAP_ENV = "DURABLE_BENCH_NAP"

first_prep: float | None = None
"""``time.time()`` at the first :class:`Nap` prep in this process (the recovery benchmark reads it)."""


class Bump(Node):
    """A trivial step: adds 1 to the context's ``count``."""

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("count", await args.ctx.get("count", 0) + 1)
        return None


class Nap(Bump):
    """A step that notes when the first one of this process starts, then naps before counting."""

    def __init__(self, nap: float) -> None:
        super().__init__()
        self.nap = nap

    async def prep(self, args: NodeArgs) -> Any:
        global first_prep
        if first_prep is None:
            first_prep = time.time()
        return None

    async def exec(self, args: NodeArgs) -> Any:
        await asyncio.sleep(self.nap)
        return None


def make_chain() -> Flow:
    """A chain of ``$DURABLE_BENCH_N`` nodes (default 200) ``n0 … n{N-1}``, each counting
    once; with ``$DURABLE_BENCH_NAP`` seconds set, each naps that long (:class:`Nap`)."""
    length = int(os.environ.get(LENGTH_ENV, "200"))
    nap = float(os.environ.get(NAP_ENV, "0"))
    nodes = [(Nap(nap) if nap > 0 else Bump()).with_id(f"n{i}") for i in range(length)]
    for node, successor in itertools.pairwise(nodes):
        node.next(successor)
    return Flow(nodes[0])


resumed_at: list[float] = []
"""``time.perf_counter()`` when each resumed wait's continuation started (its ``post``)."""


def _wait_node() -> Any:
    from flowcraft import WaitNode

    class Ask(WaitNode):
        async def post(self, args: NodeArgs) -> Any:
            resumed_at.append(time.perf_counter())
            return None

    return Ask()


def make_ask() -> Flow:
    """One step, a wait for input, one step: the resume benchmark's flow."""
    first = Bump()
    first.next(_wait_node().with_id("ask")).next(Bump())
    return Flow(first)
