"""Node types and graphs shared by the distributed tests, the worker subprocesses
(``--registry dist_nodes:REGISTRY``) and the in-memory reference runs."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flowcraft import ContextKey, Flow, Node, NodeArgs, ParallelFlow, sleep
from flowcraft.graph import GraphBuilder, WorkflowBlueprint, create_node_registry


class Base(Node):
    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()
        self.data = dict(data or {})


class Mark(Base):
    """Sets ``mark:<nodeId>`` to its visit count and ``last`` to its id; optional delay."""

    async def exec(self, args: NodeArgs) -> None:
        delay = float(self.data.get("delay", 0))
        if delay:
            await sleep(delay, args.signal)

    async def post(self, args: NodeArgs) -> Any:
        key = f"mark:{self.data['nodeId']}"
        await args.ctx.set(key, (await args.ctx.get(key, 0)) + 1)
        await args.ctx.set(f"in:{self.data['nodeId']}", repr(args.incoming_action))
        return self.data.get("action")


class Counter(Base):
    """Increments ``i``; returns ``"again"`` until ``i`` reaches ``data.limit``."""

    async def post(self, args: NodeArgs) -> Any:
        i = (await args.ctx.get("i", 0)) + 1
        await args.ctx.set("i", i)
        return "again" if i < int(self.data["limit"]) else "done"


class Choose(Base):
    """Returns the action stored under ``ctx["route"]``."""

    async def post(self, args: NodeArgs) -> Any:
        return await args.ctx.get("route")


class FlushScripts(Mark):
    """A ``Mark`` that first empties Redis' script cache (``data.url``), BullMQ's scripts
    included, as a Redis restart does: every script its job's commit sends is missing."""

    async def exec(self, args: NodeArgs) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.data["url"])
        try:
            await client.script_flush()
        finally:
            await client.aclose()
        await super().exec(args)


class Collect(Base):
    """Sums every ``mark:*`` value into ``total`` (a fan-in)."""

    async def post(self, args: NodeArgs) -> Any:
        total = sum(v for k, v in args.ctx.entries() if k.startswith("mark:"))
        await args.ctx.set("total", total)
        await args.ctx.set("collected", (await args.ctx.get("collected", 0)) + 1)
        return "finished"


class Fail(Base):
    async def exec(self, args: NodeArgs) -> None:
        raise ValueError(f"boom in {self.data['nodeId']}")


class Unencodable(Base):
    async def post(self, args: NodeArgs) -> None:
        await args.ctx.set("handle", object())


class ForgetScripts(Mark):
    """A ``Mark`` that first empties Redis' script cache (``data.url``) and loads BullMQ's
    own scripts again, as another worker does after a Redis restart: the commit after it
    finds BullMQ's completion script there, and its own missing."""

    async def exec(self, args: NodeArgs) -> None:
        import redis.asyncio as aioredis
        from bullmq.redis_connection import SCRIPT_DEFINITIONS, loadScript

        client = aioredis.Redis.from_url(self.data["url"])
        try:
            await client.script_flush()
            for name in SCRIPT_DEFINITIONS.values():
                await client.script_load(loadScript(name))
        finally:
            await client.aclose()
        await super().exec(args)


def touch(path: str) -> None:
    with open(path, "w") as fh:
        fh.write("x")


class Blocker(Base):
    """Records that it started, then waits (abortably) for a long time."""

    async def exec(self, args: NodeArgs) -> None:
        path = self.data.get("started_dir")
        if path:
            touch(os.path.join(path, f"{self.data['nodeId']}.{os.getpid()}"))
        try:
            await sleep(float(self.data.get("seconds", 30)), args.signal)
        except BaseException:
            if path:
                touch(os.path.join(path, f"{self.data['nodeId']}.aborted"))
            raise


class Built(Blocker):
    """A blocker that records each time a worker builds it (``built_dir/<nodeId>.<pid>.<n>``):
    a worker hydrating a graph builds each of its nodes once."""

    built = 0

    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__(data, **deps)
        path = self.data.get("built_dir")
        if path:
            Built.built += 1
            touch(os.path.join(path, f"{self.data['nodeId']}.{os.getpid()}.{Built.built}"))


class Busy(Base):
    """Sleeps without looking at the signal (a node that ignores cancellation)."""

    async def exec(self, args: NodeArgs) -> None:
        await asyncio.sleep(float(self.data.get("seconds", 0.1)))


class Flaky(Node):
    """Fails every attempt (two); its fallback recovers with ``"recovered"``."""

    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__(max_retries=2)

    async def exec(self, args: NodeArgs) -> None:
        raise RuntimeError("flaky")

    async def exec_fallback(self, args: NodeArgs) -> str:
        return "recovered"

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("flaky", args.exec_res)
        await args.ctx.delete("doomed")
        return None


class Noop(Node):
    def __init__(self, data: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__()


class Probe(Base):
    """On its first visit, records under ``saw:<nodeId>`` whether the ``slow`` branch had
    already finished (``mark:slow`` is set); with ``data.limit`` it counts ``i`` and
    returns ``"again"`` until the limit, else ``data.action``."""

    async def post(self, args: NodeArgs) -> Any:
        node_id = self.data["nodeId"]
        if not await args.ctx.has(f"saw:{node_id}"):
            await args.ctx.set(f"saw:{node_id}", await args.ctx.has("mark:slow"))
        limit = self.data.get("limit")
        if limit is None:
            return self.data.get("action")
        i = (await args.ctx.get("i", 0)) + 1
        await args.ctx.set("i", i)
        return "again" if i < int(limit) else "done"


class Tally(Base):
    """Leaves a file ``<data.dir>/<nodeId>.<pid>.<n>`` as it runs (a side effect outside
    the store, to count real node runs), then optionally charges ``data.tokens``."""

    async def exec(self, args: NodeArgs) -> None:
        folder = self.data.get("dir")
        if folder:
            touch(os.path.join(folder, f"{self.data['nodeId']}.{os.getpid()}.{id(args)}"))
        delay = float(self.data.get("delay", 0))
        if delay:
            await sleep(delay, args.signal)
        tokens = self.data.get("tokens")
        if tokens:
            await args.budget.charge("tokens", float(tokens))


TRAIL = ContextKey[str]("trail", merge="append")
"""``trail`` with the append merge policy: a ``set`` through it appends."""
COUNT = ContextKey[int]("count", merge="add")
SEEN = ContextKey[list[str]]("seen", merge="union")


class Append(Base):
    """Appends ``"e"`` to ``trail`` after ``data.delay`` s, as ``data.mode`` says:
    ``"plain"`` reads, waits and sets (parallel copies lose updates), ``"update"`` uses
    ``ctx.update``, ``"merge"`` sets through keys with merge policies (``TRAIL``, and
    ``COUNT``/``SEEN`` too)."""

    async def post(self, args: NodeArgs) -> Any:
        mode, delay = self.data.get("mode", "plain"), float(self.data.get("delay", 0))
        if mode == "plain":
            trail = await args.ctx.get("trail", "")
            await sleep(delay, args.signal)
            await args.ctx.set("trail", trail + "e")
            return None
        await sleep(delay, args.signal)
        if mode == "update":
            await args.ctx.update("trail", lambda trail: trail + "e", "")
        else:
            await args.ctx.set(TRAIL, "e")
            await args.ctx.set(COUNT, 1)
            await args.ctx.set(SEEN, [self.data["nodeId"]])
        return None


REGISTRY = create_node_registry(
    {
        "mark": Mark,
        "forget_scripts": ForgetScripts,
        "flush_scripts": FlushScripts,
        "counter": Counter,
        "choose": Choose,
        "collect": Collect,
        "fail": Fail,
        "unencodable": Unencodable,
        "blocker": Blocker,
        "built": Built,
        "busy": Busy,
        "noop": Noop,
        "flaky": Flaky,
        "sub": Noop,
        "probe": Probe,
        "tally": Tally,
        "append": Append,
    }
)


OTHER_REGISTRY = create_node_registry({"fetch": Noop})
"""Another application's registry (sharing a queue with ``REGISTRY``'s)."""


class Resolver:
    def __init__(self, graphs: dict[str, dict[str, Any]]) -> None:
        self.graphs = graphs

    def get_graph(self, workflow_id: Any) -> Any:
        return self.graphs.get(str(workflow_id))


def node(id: str, type: str = "mark", **data: Any) -> dict[str, Any]:
    return {"id": id, "type": type, "data": data}


def edge(source: str, target: str, action: str | None = None) -> dict[str, Any]:
    e = {"source": source, "target": target}
    if action is not None:
        e["action"] = action
    return e


SUBGRAPHS = {
    "inner": {
        "nodes": [node("x"), node("y", action="approved")],
        "edges": [edge("x", "y")],
    },
    "outer": {
        "nodes": [
            node("p"),
            {"id": "deep", "type": "sub", "data": {"workflowId": "inner", "inputs": {}, "outputs": {}}},
        ],
        "edges": [edge("p", "deep")],
    },
}


def build(graph: dict[str, Any]) -> WorkflowBlueprint:
    builder = GraphBuilder(
        REGISTRY,
        sub_workflow_node_types=["sub"],
        sub_workflow_resolver=Resolver(SUBGRAPHS),
        conditional_node_types=["choose"],
    )
    return builder.build_blueprint(graph).blueprint


def appends(mode: str, width: int = 4, delay: float = 0.3) -> dict[str, Any]:
    """``a`` fans out to ``width`` parallel ``append`` nodes (``data.mode``), joined by ``join``."""
    branches = [node(f"b{i}", "append", mode=mode, delay=delay) for i in range(width)]
    return {
        "nodes": [node("a"), *branches, node("join", "collect")],
        "edges": [edge("a", b["id"]) for b in branches] + [edge(b["id"], "join") for b in branches],
    }


def fan_out(width: int, delay: float = 0.0) -> dict[str, Any]:
    branches = [node(f"b{i}", delay=delay) for i in range(width)]
    return {
        "nodes": [node("a"), *branches, node("join", "collect")],
        "edges": [edge("a", b["id"]) for b in branches] + [edge(b["id"], "join") for b in branches],
    }


def check_fan_out(action: Any, context: dict[str, Any], width: int) -> None:
    """``fan_out(width)`` ended as in memory: every branch ran once, the join once."""
    assert action == "finished"
    assert context["total"] == width + 1 and context["collected"] == 1
    assert all(context[f"mark:b{i}"] == 1 for i in range(width))


GRAPHS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "linear": (
        {"nodes": [node("a"), node("b"), node("c", action="end")], "edges": [edge("a", "b"), edge("b", "c")]},
        {},
    ),
    "branch": (
        {
            "nodes": [node("pick", "choose"), node("yes"), node("no")],
            "edges": [edge("pick", "yes", "yes"), edge("pick", "no", "no")],
        },
        {"route": "no"},
    ),
    "loop50": (
        {
            "nodes": [node("start"), node("count", "counter", limit=50), node("end", action="over")],
            "edges": [edge("start", "count"), edge("count", "count", "again"), edge("count", "end", "done")],
        },
        {},
    ),
    "fan_in": (fan_out(4), {}),
    "nested_sub": (
        {
            "nodes": [
                node("first"),
                {"id": "s", "type": "sub", "data": {"workflowId": "outer", "inputs": {}, "outputs": {}}},
                node("ok", action="fine"),
                node("rejected"),
            ],
            "edges": [edge("first", "s"), edge("s", "ok", "approved"), edge("s", "rejected")],
        },
        {},
    ),
    "conditional": (
        {
            "nodes": [node("pick", "choose"), node("left"), node("right"), node("merge"), node("after")],
            "edges": [
                edge("pick", "left", "l"),
                edge("pick", "right", "r"),
                edge("left", "merge"),
                edge("right", "merge"),
                edge("merge", "after"),
            ],
        },
        {"route": "r"},
    ),
    # The two modes disagreed here before the one fan-in rule (topology.fan_in): a loop's
    # entry is not a join of the loop and the path into it, so it never waits for a slow
    # sibling branch ...
    "loop_beside_slow": (
        {
            "nodes": [node("s"), node("slow", delay=0.5), node("loop", "probe", limit=3), node("step")],
            "edges": [edge("s", "slow"), edge("s", "loop"), edge("loop", "step", "again"), edge("step", "loop")],
        },
        {},
    ),
    # ... and a join that a conditional skip left one arrival short fires when a branch
    # ends (c) and no running branch can reach it, not when the slow branch ends.
    "join_after_skip_beside_slow": (
        {
            "nodes": [
                node("s"),
                node("a", action="skip"),
                node("a2"),
                node("b"),
                node("c", delay=0.05),
                node("slow", delay=0.5),
                node("j", "probe"),
            ],
            "edges": [
                edge("s", "a"),
                edge("s", "b"),
                edge("s", "c"),
                edge("s", "slow"),
                edge("a", "j", "skip"),
                edge("a", "a2", "go"),
                edge("a2", "j"),
                edge("b", "j"),
            ],
        },
        {},
    ),
    "multi_start": (
        {
            "nodes": [node("s1"), node("s2"), node("s3"), node("meet", "collect")],
            "edges": [edge("s1", "meet"), edge("s2", "meet"), edge("s3", "meet")],
        },
        {},
    ),
}


async def tag_middleware(args: Any, call_next: Any) -> Any:
    """Worker middleware for tests: records every node it wrapped under ``mw:<node id>``."""
    action = await call_next(args)
    await args.ctx.set(f"mw:{args.node.id}", True)
    return action


def in_memory(name: str) -> tuple[Any, dict[str, Any]]:
    """The final action and context of ``GRAPHS[name]`` run by the in-memory executor (the reference)."""
    from flowcraft import TypedContext
    from flowcraft.graph import BlueprintExecutor

    graph, initial = GRAPHS[name]
    bx = BlueprintExecutor(build(graph), REGISTRY)
    ctx = TypedContext(initial)
    action = asyncio.run(bx.flow.run(ctx, executor=bx))
    return action, ctx.to_dict()


def make_pipeline() -> Flow:
    """A programmatic flow (no blueprint) for runs named by the factory
    ``"dist_nodes:make_pipeline"``: a start, a loop, an in-process parallel block, a fan-in."""
    first = Mark({"nodeId": "first"})
    count = Counter({"limit": 3})
    block = ParallelFlow([Mark({"nodeId": "left", "delay": 0.02}), Mark({"nodeId": "right"})])
    last = Collect({}).with_id("last")
    first.next(count)
    count.next(count, "again")
    count.next(block, "done")
    block.next(last)
    return Flow(first)


def make_other_pipeline() -> Flow:
    """A different graph (an extra node), to stand for another code version."""
    flow = make_pipeline()
    assert flow.start_node is not None
    flow.start_node.next(Mark({"nodeId": "extra"}), "extra")
    return flow
