"""Flows with waits and timers for the durable tests (factories for child processes too)."""

from __future__ import annotations

from typing import Any

from flowcraft import Flow, Node, NodeArgs, SleepNode, WaitNode
from flowcraft.graph import create_node_registry


class Draft(Node):
    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("draft", "Dear customer, ...")


class Approve(WaitNode):
    """Waits for a reviewer: approve or reject; expires after a day (rejected)."""

    actions = ("approve", "reject")
    wait_timeout = 24 * 3600
    on_timeout = "reject"

    async def prep(self, args: NodeArgs) -> Any:
        return {"draft": await args.ctx.get("draft")}

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("review", args.exec_res)
        return args.resume_action


class Record(Node):
    def __init__(self, key: str, value: Any) -> None:
        super().__init__()
        self.key, self.value = key, value

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(self.key, self.value)
        return "finished"


def make_approval() -> Flow:
    """draft → approve (wait) → sent | discarded."""
    draft, approve = Draft(), Approve().with_id("approve")
    draft.next(approve)
    approve.next(Record("outcome", "sent"), "approve")
    approve.next(Record("outcome", "discarded"), "reject")
    return Flow(draft)


def make_nap() -> Flow:
    """start → sleep 1 h → done."""
    first = Record("started", True)
    nap = SleepNode(3600).with_id("nap")
    first.next(nap, "finished").next(Record("woke", True))
    return Flow(first)


def make_short_nap() -> Flow:
    """start → sleep 2 s → done (a real sleep across a restart)."""
    first = Record("started", True)
    nap = SleepNode("2s").with_id("nap")
    first.next(nap, "finished").next(Record("woke", True))
    return Flow(first)


class Mark(Node):
    def __init__(self, data: dict[str, Any] | None = None, **_deps: Any) -> None:
        super().__init__()
        self.data = dict(data or {})

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(f"mark:{self.data['nodeId']}", True)


class Collect(Mark):
    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("collected", await args.ctx.get("collected", 0) + 1)


REGISTRY = create_node_registry({"mark": Mark, "collect": Collect})


def node(node_id: str, kind: str = "mark", **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "data": data}


def edge(source: str, target: str, action: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"source": source, "target": target}
    if action is not None:
        found["action"] = action
    return found


PARALLEL_WAITS = {
    "nodes": [
        node("start"), node("a"), node("b"),
        node("w1", "wait", output="first"), node("w2", "wait", output="second", actions=["ok", "no"]),
        node("join", "collect"),
    ],
    "edges": [
        edge("start", "a"), edge("start", "w1"), edge("start", "w2"), edge("start", "b"),
        edge("a", "join"), edge("w1", "join"), edge("w2", "join"), edge("b", "join"),
    ],
}  # fmt: skip
"""Four parallel branches, two of them waits, meeting at a join."""


def make_wait_in_block() -> Flow:
    """A wait inside an in-process parallel block (refused: it would park a whole job)."""
    from flowcraft import ParallelFlow

    first = Draft()
    first.next(ParallelFlow([Approve().with_id("inner"), Record("other", 1)]).with_id("block"))
    return Flow(first)


class Inject(Mark):
    """Sets ``data.output`` to ``data.value`` (the in-memory stand-in for a resumed wait)."""

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(self.data["output"], self.data["value"])


REGISTRY["inject"] = Inject


def make_parallel_waits() -> Flow:
    """PARALLEL_WAITS as a factory-named flow (its parallel branches are jobs of their own)."""
    from flowcraft.graph import GraphBuilder

    return GraphBuilder(REGISTRY).build(PARALLEL_WAITS).flow


def injected(values: dict[str, Any]) -> dict[str, Any]:
    """PARALLEL_WAITS with each wait replaced by a node that sets what its resume would."""
    nodes = []
    for node in PARALLEL_WAITS["nodes"]:
        if node["type"] == "wait":
            node = {"id": node["id"], "type": "inject", "data": {"output": node["data"]["output"],
                                                                    "value": values[node["id"]]}}  # fmt: skip
        nodes.append(node)
    return {"nodes": nodes, "edges": PARALLEL_WAITS["edges"]}


def make_wait_in_batch() -> Flow:
    """A wait inside a batch item's flow (refused: a batch item runs inside one job)."""
    from flowcraft import BatchFlow

    class Items(BatchFlow):
        async def prep(self, args: NodeArgs) -> Any:
            return [{"i": 1}, {"i": 2}]

    first = Draft()
    first.next(Items(Approve().with_id("per-item")).with_id("batch"))
    return Flow(first)


ATTEMPTS: list[int] = []
"""Each exec of a Flaky node in this process (the test reads it)."""


class Flaky(Node):
    """Fails its first two attempts; backs off 10 s, then 20 s (a durable run parks on timers)."""

    def __init__(self) -> None:
        from flowcraft import RetryPolicy

        super().__init__(retry=RetryPolicy(max_attempts=3, wait=10.0, backoff=2.0, max_elapsed=3600))

    async def exec(self, args: NodeArgs) -> Any:
        ATTEMPTS.append(len(ATTEMPTS) + 1)
        if len(ATTEMPTS) < 3:
            raise ConnectionError(f"flaky attempt {len(ATTEMPTS)}")
        return len(ATTEMPTS)

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("attempts", args.exec_res)


def make_flaky() -> Flow:
    """start → a flaky call with 10 s and 20 s back-offs → done."""
    first = Record("started", True)
    first.next(Flaky().with_id("call"), "finished").next(Record("done", True))
    return Flow(first)
