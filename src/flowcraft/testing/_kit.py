"""The conformance kit's shared parts: the golden nodes and graphs, the in-memory
reference, the external ledgers and the reports (public names are re-exported by
[`flowcraft.testing.conformance`][flowcraft.testing.conformance])."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from ..abort import sleep
from ..context import TypedContext
from ..graph.blueprint import BlueprintExecutor
from ..graph.builder import GraphBuilder
from ..graph.models import WorkflowBlueprint
from ..graph.registry import create_node_registry
from ..node import Node, NodeArgs
from ..patterns import ParallelBatchFlow

_LEDGERS: dict[str, dict[str, int]] = {}


# ---- the golden nodes --------------------------------------------------------------------------


class _Golden(Node[Any, Any, Any]):
    def __init__(self, data: Mapping[str, Any] | None = None, **_deps: Any) -> None:
        super().__init__()
        self.data = dict(data or {})


class Mark(_Golden):
    """Counts its visits under ``mark:<id>``; applies one ledger effect per visit (memoised;
    ``data.ledger`` names an in-process ledger, ``data.ledger_dir`` a folder, for effects
    in other processes); waits ``data.delay`` seconds; returns ``data.action``."""

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        folder = self.data.get("ledger_dir")
        if folder is not None:
            _append(str(folder), RUNS_LOG, f"{self.data['nodeId']} {args.idempotency_key}")
        return None

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        delay = float(self.data.get("delay", 0))
        if delay:
            await sleep(delay, args.signal)
        key = str(args.idempotency_key or self.data["nodeId"])
        ledger, folder = self.data.get("ledger"), self.data.get("ledger_dir")
        if ledger is not None:
            return await args.memo("effect", lambda: _apply(str(ledger), key))
        if folder is not None:
            node_id = str(self.data["nodeId"])
            return await args.memo("effect", lambda: record_effect(str(folder), node_id, key))
        return None

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        key = f"mark:{self.data['nodeId']}"
        await args.ctx.set(key, (await args.ctx.get(key, 0)) + 1)
        return self.data.get("action")


def _apply(ledger: str, key: str) -> str:
    counts = _LEDGERS.setdefault(ledger, {})
    counts[key] = counts.get(key, 0) + 1
    return "applied"


RUNS_LOG = "runs.log"
"""In a ledger folder: one line ``<node id> <idempotency key>`` per run of a node's ``prep``."""
ATTEMPTS_LOG = "attempts.log"
"""In a ledger folder: one line ``<node id> <idempotency key>`` per attempt of an effect."""
APPLIED = "applied"
"""In a ledger folder: the folder of applied effects, one file per idempotency key."""


def _append(folder: str, name: str, line: str) -> None:
    with open(os.path.join(folder, name), "a", encoding="utf-8") as log:
        log.write(line + "\n")


def record_effect(folder: str, node_id: str, key: str) -> str:
    """The external effect of a node visit, as an idempotent API applies it: logged as an
    attempt, and applied once per idempotency ``key`` (a second request with the key is
    refused). Returns ``"applied"`` or ``"refused"``."""
    _append(folder, ATTEMPTS_LOG, f"{node_id} {key}")
    applied = os.path.join(folder, APPLIED)
    os.makedirs(applied, exist_ok=True)
    name = key.replace("%", "%25").replace("/", "%2F").replace(":", "%3A")
    try:
        fd = os.open(os.path.join(applied, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return "refused"
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(node_id)
    return "applied"


def read_log(folder: str, name: str) -> list[tuple[str, str]]:
    """The ``(node id, idempotency key)`` lines of a ledger log (none if it is missing)."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as log:
        return [(line.split(" ", 1)[0], line.split(" ", 1)[-1]) for line in log.read().splitlines() if line]


def applied_effects(folder: str) -> dict[str, list[str]]:
    """Node id → the idempotency keys whose effect the ledger folder applied."""
    found: dict[str, list[str]] = {}
    applied = os.path.join(folder, APPLIED)
    for name in sorted(os.listdir(applied)) if os.path.isdir(applied) else ():
        with open(os.path.join(applied, name), encoding="utf-8") as fh:
            node_id = fh.read()
        key = name.replace("%3A", ":").replace("%2F", "/").replace("%25", "%")
        found.setdefault(node_id, []).append(key)
    return found


class Counter(_Golden):
    """Increments ``i``; ``"again"`` until ``data.limit``, then ``"done"``."""

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        i = (await args.ctx.get("i", 0)) + 1
        await args.ctx.set("i", i)
        return "again" if i < int(self.data["limit"]) else "done"


class Choose(_Golden):
    """Returns the action under ``ctx["route"]``."""

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        return await args.ctx.get("route")


class Collect(_Golden):
    """A join: records which ``mark:*`` keys it saw, and counts its own runs."""

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        seen = sorted(k for k, _ in args.ctx.entries() if k.startswith("mark:"))
        await args.ctx.set(f"saw:{self.data['nodeId']}", seen)
        key = f"runs:{self.data['nodeId']}"
        await args.ctx.set(key, (await args.ctx.get(key, 0)) + 1)
        return self.data.get("action")


class Fail(_Golden):
    """Fails in ``exec``."""

    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        raise ValueError(f"golden failure in {self.data['nodeId']}")


class Block(_Golden):
    """Leaves a file in ``data.started`` and waits (abortably) for ``data.seconds``."""

    async def exec(self, args: NodeArgs[Any, Any]) -> None:
        folder = self.data.get("started")
        if folder:
            _touch(os.path.join(str(folder), f"started.{os.getpid()}"))
        await sleep(float(self.data.get("seconds", 30)), args.signal)


def _touch(path: str) -> None:
    with open(path, "w") as fh:
        fh.write("x")


class Item(_Golden):
    """One batch item: sets ``item:<n>`` from its params."""

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        await args.ctx.set(f"item:{args.params['n']}", args.params["n"] * 10)


class Batch(ParallelBatchFlow):
    """A parallel batch over ``data.items`` numbers."""

    def __init__(self, data: Mapping[str, Any] | None = None, **_deps: Any) -> None:
        super().__init__(Item())
        self.items = list((data or {}).get("items", ()))

    def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return [{"n": n} for n in self.items]

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        return None


class Noop(_Golden):
    """Does nothing (sub-workflow nodes)."""


REGISTRY = create_node_registry(
    {
        "mark": Mark,
        "counter": Counter,
        "choose": Choose,
        "collect": Collect,
        "fail": Fail,
        "block": Block,
        "batch": Batch,
        "sub": Noop,
    }
)
"""The golden graphs' node types (give it to worker processes)."""


def _n(node_id: str, kind: str = "mark", **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "data": data}


def _e(source: str, target: str, action: str | None = None) -> dict[str, Any]:
    return {"source": source, "target": target, **({"action": action} if action else {})}


_SUBGRAPHS: dict[str, dict[str, Any]] = {
    "inner": {"nodes": [_n("x"), _n("y", action="approved")], "edges": [_e("x", "y")]},
}

GOLDEN_GRAPHS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "linear": ({"nodes": [_n("a"), _n("b"), _n("c", action="end")], "edges": [_e("a", "b"), _e("b", "c")]}, {}),
    "fan-in": (
        {
            "nodes": [_n("a"), *(_n(f"b{i}", delay=0.01 * i) for i in range(4)), _n("join", "collect")],
            "edges": [_e("a", f"b{i}") for i in range(4)] + [_e(f"b{i}", "join") for i in range(4)],
        },
        {},
    ),
    "loop": (
        {
            "nodes": [_n("start"), _n("count", "counter", limit=5), _n("end", action="over")],
            "edges": [_e("start", "count"), _e("count", "count", "again"), _e("count", "end", "done")],
        },
        {},
    ),
    "conditional-join": (
        {
            "nodes": [_n("pick", "choose"), _n("left"), _n("right"), _n("merge", "collect"), _n("after")],
            "edges": [
                _e("pick", "left", "l"),
                _e("pick", "right", "r"),
                _e("left", "merge"),
                _e("right", "merge"),
                _e("merge", "after"),
            ],
        },
        {"route": "r"},
    ),
    "nested-parallel": (
        {
            "nodes": [
                _n("s"),
                _n("p"),
                _n("c1", delay=0.02),
                _n("c2"),
                _n("inner", "collect"),
                _n("q", delay=0.01),
                _n("outer", "collect"),
            ],
            "edges": [
                _e("s", "p"),
                _e("s", "q"),
                _e("p", "c1"),
                _e("p", "c2"),
                _e("c1", "inner"),
                _e("c2", "inner"),
                _e("inner", "outer"),
                _e("q", "outer"),
            ],
        },
        {},
    ),
    "batch": (
        {
            "nodes": [_n("a"), _n("items", "batch", items=[1, 2, 3, 4]), _n("z")],
            "edges": [_e("a", "items"), _e("items", "z")],
        },
        {},
    ),
    "sub-workflow": (
        {
            "nodes": [_n("first"), _n("s", "sub", workflowId="inner", inputs={}, outputs={}), _n("ok"), _n("no")],
            "edges": [_e("first", "s"), _e("s", "ok", "approved"), _e("s", "no")],
        },
        {},
    ),
    "multi-start": (
        {
            "nodes": [_n("s1"), _n("s2", delay=0.01), _n("s3"), _n("meet", "collect")],
            "edges": [_e("s1", "meet"), _e("s2", "meet"), _e("s3", "meet")],
        },
        {},
    ),
}
"""Golden graph name → (JSON graph, initial context)."""


class _Resolver:
    def get_graph(self, workflow_id: str | int) -> Any:
        return _SUBGRAPHS.get(str(workflow_id))


def golden_blueprint(graph: Mapping[str, Any]) -> WorkflowBlueprint:
    """Compile a golden graph (the kit's sub-workflows and conditional types)."""
    builder = GraphBuilder(
        REGISTRY, sub_workflow_node_types=["sub"], sub_workflow_resolver=_Resolver(), conditional_node_types=["choose"]
    )
    return builder.build_blueprint(graph).blueprint


async def reference_result(name: str) -> tuple[Any, dict[str, Any]]:
    """The final action and context of golden graph ``name`` in memory (the reference)."""
    graph, initial = GOLDEN_GRAPHS[name]
    runner = BlueprintExecutor(golden_blueprint(graph), REGISTRY)
    ctx = TypedContext(initial)
    action = await runner.flow.run(ctx, executor=runner)
    return action, ctx.to_dict()


# ---- reports -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    """One named check: passed, or the reason it failed."""

    name: str
    passed: bool
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ConformanceReport:
    """Every check the kit ran, in order."""

    subject: str
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(result.passed for result in self.results)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [result.name for result in self.results if not result.passed]

    def __str__(self) -> str:
        lines = [f"{self.subject}: {len(self.results) - len(self.failed)}/{len(self.results)} checks passed"]
        lines += [f"  FAIL {r.name}: {r.detail}" for r in self.results if not r.passed]
        return "\n".join(lines)


class ConformanceError(AssertionError):
    """Some checks failed; ``report`` has every result."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        super().__init__(str(report))


class _Checks:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.results: list[CheckResult] = []

    @contextlib.asynccontextmanager
    async def check(self, name: str, limit: float = 30.0) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(limit):
                yield
        except AssertionError as error:
            self.results.append(CheckResult(name, False, str(error) or "assertion failed"))
        except TimeoutError:
            self.results.append(CheckResult(name, False, f"no answer within {limit} s"))
        except Exception as error:
            self.results.append(CheckResult(name, False, f"{type(error).__name__}: {error}"))
        else:
            self.results.append(CheckResult(name, True))

    def report(self, raise_on_failure: bool) -> ConformanceReport:
        report = ConformanceReport(self.subject, tuple(self.results))
        if raise_on_failure and not report.passed:
            raise ConformanceError(report)
        return report


def _expect(what: str, got: Any, want: Any) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, the in-memory reference gives {want!r}")


@contextlib.asynccontextmanager
async def _opened(factory: Callable[[], Any]) -> AsyncIterator[Any]:
    made = factory()
    if isinstance(made, Awaitable):
        made = await made
    if hasattr(made, "__aenter__"):
        async with made as entered:
            yield made if entered is None else entered
    else:
        yield made


async def _reference_of(graph: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    runner = BlueprintExecutor(golden_blueprint(graph), REGISTRY)
    ctx = TypedContext()
    action = await runner.flow.run(ctx, executor=runner)
    return action, ctx.to_dict()
