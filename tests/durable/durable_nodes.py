"""Nodes and a 20-node flow for the durable crash suite (imported by the child
processes as ``durable_nodes:make_twenty``).

Every step records its effect in an external *ledger*: a folder where the file named by
``args.idempotency_key`` is created once (``O_EXCL``), the way an idempotent API keys
requests. Each attempt is also appended to ``attempts.log``, so a test sees both what
ran again after a crash (attempts) and what took effect (the ledger).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flowcraft import Flow, Node, NodeArgs, ParallelFlow

LEDGER_ENV = "FLOWCRAFT_TEST_LEDGER"


def file_name(key: str) -> str:
    """The ledger file of an idempotency key (``:`` and ``/`` are kept apart from path syntax)."""
    return key.replace(":", "__").replace("/", "--")


def key_of(name: str) -> str:
    """The idempotency key of a ledger file."""
    return name.replace("--", "/").replace("__", ":")


def log_run(key: str) -> None:
    """Note one run of a node visit in ``runs.log`` (every run, memoised or not)."""
    folder = os.environ.get(LEDGER_ENV)
    if folder:
        with open(os.path.join(folder, "runs.log"), "a", encoding="utf-8") as log:
            log.write(key + "\n")


def record(key: str) -> str:
    """The external effect of one node visit: appended to the attempts log, and kept in the ledger once per key."""
    folder = os.environ.get(LEDGER_ENV)
    if not folder:
        return "no ledger"
    with open(os.path.join(folder, "attempts.log"), "a", encoding="utf-8") as log:
        log.write(key + "\n")
    try:
        fd = os.open(os.path.join(folder, "ledger", file_name(key)), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return "duplicate refused"
    os.close(fd)
    return "applied"


class Step(Node):
    """Counts its visits under ``n:<id>``, applies its effect once per visit (memoised)."""

    def __init__(self, name: str, action: Any = None) -> None:
        super().__init__()
        self.label = name
        self.action = action
        self.with_id(name)

    async def prep(self, args: NodeArgs) -> Any:
        log_run(str(args.idempotency_key))

    async def exec(self, args: NodeArgs) -> Any:
        key = args.idempotency_key
        assert key is not None and self.label in key, key
        return await args.memo("effect", lambda: record(key))

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(f"n:{self.label}", await args.ctx.get(f"n:{self.label}", 0) + 1)
        return self.action


class Loop(Step):
    """Counts ``i`` and returns ``"again"`` until it reaches 3."""

    async def post(self, args: NodeArgs) -> Any:
        await super().post(args)
        i = await args.ctx.get("i", 0) + 1
        await args.ctx.set("i", i)
        return "again" if i < 3 else "done"


def make_twenty() -> Flow:
    """20 nodes: a chain, a loop, a parallel block of three branches meeting at a join,
    a second parallel block, a chain. Blocks run inside one job each (their inner nodes
    get the block's key plus their own id)."""
    start, prep1, prep2, prep3 = Step("start"), Step("prep1"), Step("prep2"), Step("prep3")
    loop, body = Loop("loop"), Step("body")
    a1, a2, b1, b2, c1, join = (Step(name) for name in ("a1", "a2", "b1", "b2", "c1", "join"))
    a1.next(a2).next(join)
    b1.next(b2).next(join)
    c1.next(join)
    fan = ParallelFlow([a1, b1, c1]).with_id("fan")
    par = ParallelFlow([Step("p1"), Step("p2")]).with_id("par")
    t1, t2, t3, end = Step("t1"), Step("t2"), Step("t3"), Step("end", "finished")
    start.next(prep1).next(prep2).next(prep3).next(loop)
    loop.next(body, "again")
    body.next(loop)
    loop.next(fan, "done")
    fan.next(par).next(t1).next(t2).next(t3).next(end)
    return Flow(start)


JOB_NODES = ["start", "prep1", "prep2", "prep3", "loop", "body", "fan", "par", "t1", "t2", "t3", "end"]
"""The nodes that run as jobs of their own (the others run inside ``fan`` and ``par``)."""


class Nap(Step):
    """A step that takes 5 ms (so that runs of several processes overlap)."""

    async def exec(self, args: NodeArgs) -> Any:
        await asyncio.sleep(0.005)
        return await super().exec(args)


def make_small() -> Flow:
    """Four steps in a row, 5 ms each."""
    first = Nap("m1")
    first.next(Nap("m2")).next(Nap("m3")).next(Nap("m4", "finished"))
    return Flow(first)
