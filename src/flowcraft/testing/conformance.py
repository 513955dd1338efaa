"""The conformance kit: prove that an executor or a run store is correct.

[`check_executor`][flowcraft.testing.conformance.check_executor] runs the golden graphs
(fan-in, loops, conditional joins, nested parallel blocks, batches, sub-workflows,
several starts) through your executor and compares the final action and context with
the in-memory reference; then a failing node and a cancelled run.
[`check_store`][flowcraft.testing.conformance.check_store] drives a
[`RunStore`][flowcraft.engine.RunStore] directly (deduplicated and atomic commits,
joins, no lost update, usage and memos that survive a restart), then runs the golden
graphs through the job engine on it, and kills a worker at each fault point
(``before_node``, ``before_commit``, ``after_commit``, ``after_enqueue``), checking with
an external ledger that every node visit took effect exactly once.

Each check has a name (``golden:fan-in``, ``commit-dedupe``, ``crash:after_commit``, ...);
a failure names it. Registry for worker processes: ``flowcraft.testing.conformance:REGISTRY``.

Examples:
    ```python
    from flowcraft.testing.conformance import check_executor

    async def test_my_executor_conforms():
        report = await check_executor(MyExecutor)
        assert report.passed
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from ..abort import AbortController, sleep
from ..context import TypedContext
from ..engine.client import JobExecutor
from ..engine.codec import encode
from ..engine.jobs import Arrival, Charge, Commit, Job, NewRun, job_id
from ..engine.memory import MemoryJobQueue
from ..engine.protocols import RunStore
from ..engine.worker import JobWorker
from ..errors import AbortError
from ..graph.blueprint import BlueprintExecutor
from ..graph.builder import GraphBuilder
from ..graph.models import WorkflowBlueprint
from ..graph.registry import create_node_registry
from ..node import Node, NodeArgs
from ..patterns import ParallelBatchFlow

__all__ = [
    "CAPABILITIES",
    "CRASH_POINTS",
    "GOLDEN_GRAPHS",
    "REGISTRY",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "check_executor",
    "check_store",
    "golden_blueprint",
    "reference_result",
]

CAPABILITIES = frozenset({"graphs", "errors", "cancel"})
"""What [`check_executor`][flowcraft.testing.conformance.check_executor] can check:
``graphs`` (the golden graphs), ``errors`` (a failing node fails the run; needs ``exec``),
``cancel`` (an aborted run stops)."""

CRASH_POINTS = ("before_node", "before_commit", "after_commit", "after_enqueue")
"""Where [`check_store`][flowcraft.testing.conformance.check_store] kills a worker
(``during_node`` needs a real process: see ``FLOWCRAFT_TEST_CRASH_AT``)."""

_ENGINE_POINT = {"before_commit": "before_complete", "after_commit": "after_complete"}
_LEDGERS: dict[str, dict[str, int]] = {}


# ---- the golden nodes --------------------------------------------------------------------------


class _Golden(Node[Any, Any, Any]):
    def __init__(self, data: Mapping[str, Any] | None = None, **_deps: Any) -> None:
        super().__init__()
        self.data = dict(data or {})


class Mark(_Golden):
    """Counts its visits under ``mark:<id>``; applies one ledger effect per visit; waits
    ``data.delay`` seconds; returns ``data.action``."""

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        delay = float(self.data.get("delay", 0))
        if delay:
            await sleep(delay, args.signal)
        ledger = self.data.get("ledger")
        if ledger is not None:
            key = str(args.idempotency_key or self.data["nodeId"])
            return await args.memo("effect", lambda: _apply(str(ledger), key))
        return None

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        key = f"mark:{self.data['nodeId']}"
        await args.ctx.set(key, (await args.ctx.get(key, 0)) + 1)
        return self.data.get("action")


def _apply(ledger: str, key: str) -> str:
    counts = _LEDGERS.setdefault(ledger, {})
    counts[key] = counts.get(key, 0) + 1
    return "applied"


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


# ---- executors ---------------------------------------------------------------------------------


async def check_executor(
    factory: Callable[[], Any],
    *,
    capabilities: Iterable[str] = CAPABILITIES,
    graphs: Iterable[str] | None = None,
    raise_on_failure: bool = True,
    name: str | None = None,
) -> ConformanceReport:
    """Run the kit over an executor.

    Args:
        factory: returns the executor (a [`FlowRunner`][flowcraft.FlowRunner]), an
            awaitable of one, or an async context manager that opens one; called once
            per check group.
        capabilities: the parts of the kit that apply (``CAPABILITIES``); a dry run,
            which never runs ``exec``, has ``{"graphs"}``.
        graphs: golden graph names to run (default: all of ``GOLDEN_GRAPHS``).
        raise_on_failure: raise [`ConformanceError`][flowcraft.testing.conformance.ConformanceError]
            naming the failed checks (else only return the report).

    Checks: ``golden:<graph>`` (same final action and context as the reference),
    ``fan-in-exactly-once`` (the join ran once, after every branch), ``errors``,
    ``cancel``.
    """
    caps = frozenset(capabilities)
    unknown = caps - CAPABILITIES
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; the kit knows {sorted(CAPABILITIES)}")
    checks = _Checks(name or str(getattr(factory, "__name__", type(factory).__name__)))
    names = list(GOLDEN_GRAPHS) if graphs is None else list(graphs)
    async with _opened(factory) as executor:
        if "graphs" in caps:
            results: dict[str, tuple[Any, dict[str, Any]]] = {}
            for graph_name in names:
                async with checks.check(f"golden:{graph_name}"):
                    graph, initial = GOLDEN_GRAPHS[graph_name]
                    flow = BlueprintExecutor(golden_blueprint(graph), REGISTRY).flow
                    ctx = TypedContext(initial)
                    action = await flow.run(ctx, executor=executor)
                    results[graph_name] = (action, ctx.to_dict())
                    want = await reference_result(graph_name)
                    _expect(f"{graph_name}: final action", action, want[0])
                    _expect(f"{graph_name}: final context", ctx.to_dict(), want[1])
            if "fan-in" in results:
                async with checks.check("fan-in-exactly-once"):
                    _, ctx_found = results["fan-in"]
                    runs, saw = ctx_found.get("runs:join"), ctx_found.get("saw:join")
                    if runs != 1 or saw != ["mark:a", "mark:b0", "mark:b1", "mark:b2", "mark:b3"]:
                        raise AssertionError(f"the join ran {runs} time(s) and saw {saw} (want once, after all 4)")
        if "errors" in caps:
            async with checks.check("errors"):
                graph = {
                    "nodes": [_n("a"), _n("bad", "fail"), _n("after")],
                    "edges": [_e("a", "bad"), _e("bad", "after")],
                }
                flow = BlueprintExecutor(golden_blueprint(graph), REGISTRY).flow
                ctx = TypedContext()
                try:
                    await flow.run(ctx, executor=executor)
                except Exception as error:
                    if "golden failure in bad" not in str(error) and "bad" not in str(error):
                        raise AssertionError(f"the run failed with {error!r}, which does not name node 'bad'") from None
                else:
                    raise AssertionError("a node failing in exec did not fail the run")
                if "mark:after" in ctx.to_dict():
                    raise AssertionError("the node after the failure ran")
        if "cancel" in caps:
            async with checks.check("cancel"):
                await _check_cancel(executor)
    return checks.report(raise_on_failure)


async def _check_cancel(executor: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="fc-kit") as folder:
        graph = {
            "nodes": [_n("a"), _n("wait", "block", started=folder, seconds=20), _n("after")],
            "edges": [_e("a", "wait"), _e("wait", "after")],
        }
        flow = BlueprintExecutor(golden_blueprint(graph), REGISTRY).flow
        controller = AbortController()
        ctx = TypedContext()

        async def abort_once_started() -> None:
            while not os.listdir(folder):  # noqa: ASYNC110 - another process may start the node
                await asyncio.sleep(0.02)
            controller.abort("cancelled by the conformance kit")

        aborter = asyncio.ensure_future(abort_once_started())
        begun = time.monotonic()
        try:
            await flow.run(ctx, executor=executor, controller=controller)
        except AbortError:
            pass
        else:
            raise AssertionError("an aborted run returned instead of raising AbortError")
        finally:
            aborter.cancel()
        if time.monotonic() - begun > 15:
            raise AssertionError("the aborted node kept running: the run ended only when it finished")
        if "mark:after" in ctx.to_dict():
            raise AssertionError("a node after the cancellation ran")


# ---- stores ----------------------------------------------------------------------------------


_COUNTER = itertools.count()


def _run(store_tag: str, start: str = "s") -> tuple[NewRun, str]:
    run_id = f"kit-{store_tag}-{os.getpid()}-{next(_COUNTER)}"
    start_job = Job(job_id(run_id, start, 1), run_id, start, "kit-graph")
    return NewRun(run_id, "kit-graph", '{"kit": true}', encode({}, key="<params>"), {}, start_job), run_id


def _commit(run_id: str, node: str, arrivals: list[Arrival], sets: Mapping[str, Any] | None = None) -> Commit:
    encoded = {k: encode(v, key=k) for k, v in (sets or {}).items()}
    joins = {a.node_id: frozenset({"s", "a", "b", a.node_id}) for a in arrivals if a.count > 1}
    return Commit(job_id(run_id, node, 1), node, encode(None, key="<action>"), encoded, [], arrivals, joins, [])


async def _close(store: Any) -> None:
    with contextlib.suppress(Exception):
        await store.aclose()


async def check_store(
    factory: Callable[[], Any],
    *,
    engine: bool = True,
    crash: bool = True,
    raise_on_failure: bool = True,
    name: str | None = None,
) -> ConformanceReport:
    """Run the kit over a [`RunStore`][flowcraft.engine.RunStore].

    Args:
        factory: opens the store (or an awaitable of it); calling it again must open the
            *same* stored state, as a restarted process would (the same file, the same
            Redis prefix, or the same object for an in-memory store).
        engine: also run the golden graphs through the job engine on this store.
        crash: also kill a worker at each of ``CRASH_POINTS`` and check with a ledger
            that every node visit took effect once.
        raise_on_failure: raise [`ConformanceError`][flowcraft.testing.conformance.ConformanceError]
            naming the failed checks.

    Checks: ``create-once``, ``commit-dedupe``, ``commit-atomic``,
    ``join-waits-for-all-arrivals``, ``no-lost-update``, ``commit-expects`` (a commit
    whose [`expects`][flowcraft.engine.Commit.expects] no longer hold is refused),
    ``usage-survives-restart``,
    ``memo-first-writer-wins``, ``engine:<graph>``, ``crash:<point>``.
    """
    checks = _Checks(name or str(getattr(factory, "__name__", type(factory).__name__)))
    store: RunStore = await _open_store(factory)
    try:
        async with checks.check("create-once"):
            new, run_id = _run("create")
            assert await store.create(new), "create() of a new run returned False"
            assert not await store.create(new), "create() of an existing run returned True (it must not replace it)"
        async with checks.check("commit-dedupe"):
            new, run_id = _run("dedupe")
            await store.create(new)
            first = await store.commit(run_id, _commit(run_id, "s", [Arrival("a", 1)], {"x": 1}))
            again = await store.commit(run_id, _commit(run_id, "s", [Arrival("a", 1)], {"x": 1}))
            state = await store.load(run_id, job_id(run_id, "s", 1))
            assert first.outcome == "ok", f"the first commit answered {first.outcome!r}"
            assert again.outcome == "dup", (
                f"a redelivered job's second commit answered {again.outcome!r}, not 'dup': it was applied twice"
            )
            assert again.successors == first.successors, "a redelivery got other successors than the first delivery"
            assert state.done is not None, "load() of a committed job has no done record (a redelivery would re-run it)"
        async with checks.check("commit-atomic"):
            new, run_id = _run("atomic")
            await store.create(new)
            both = await asyncio.gather(
                *(store.commit(run_id, _commit(run_id, "s", [Arrival("a", 1)], {"x": 1})) for _ in range(2))
            )
            outcomes = sorted(c.outcome for c in both)
            assert outcomes == ["dup", "ok"], (
                f"two deliveries of one job committing at once answered {outcomes}: the commit is not atomic"
            )
        async with checks.check("join-waits-for-all-arrivals"):
            new, run_id = _run("join")
            await store.create(new)
            await store.commit(run_id, _commit(run_id, "s", [Arrival("a", 1), Arrival("b", 1)]))
            after_a = await store.commit(run_id, _commit(run_id, "a", [Arrival("j", 2)], {"a": 1}))
            assert not after_a.successors, f"the join was released after 1 of 2 arrivals: {after_a.successors}"
            after_b = await store.commit(run_id, _commit(run_id, "b", [Arrival("j", 2)], {"b": 1}))
            assert [n for n, _ in after_b.successors] == ["j"], (
                f"the join was not released after its 2 arrivals: {after_b.successors}"
            )
        async with checks.check("no-lost-update"):
            new, run_id = _run("lost")
            await store.create(new)
            await store.commit(run_id, _commit(run_id, "s", [Arrival("a", 1), Arrival("b", 1)], {"s": 1}))
            await store.load(run_id, job_id(run_id, "a", 1))
            await store.load(run_id, job_id(run_id, "b", 1))
            await store.commit(run_id, _commit(run_id, "a", [], {"a": 1}))
            await store.commit(run_id, _commit(run_id, "b", [], {"b": 1}))
            found = sorted(await store.context(run_id))
            assert found == ["a", "b", "s"], f"two branches wrote 'a' and 'b'; the context holds only {found}"
        async with checks.check("commit-expects"):  # atomic updates: optimistic concurrency
            new, run_id = _run("expects")
            await store.create(new)
            branches = [Arrival("a", 1), Arrival("b", 1), Arrival("c", 1)]  # c keeps the run going
            await store.commit(run_id, _commit(run_id, "s", branches, {"n": 1}))
            seen = encode(1, key="n")  # what a and b read
            first = await store.commit(
                run_id, dataclasses.replace(_commit(run_id, "a", [], {"n": 2}), expects={"n": seen})
            )
            late = dataclasses.replace(_commit(run_id, "b", [], {"n": 2, "m": 1}), expects={"n": seen, "fresh": ""})
            refused = await store.commit(run_id, late)
            assert first.outcome == "ok", f"a commit whose expected value held answered {first.outcome!r}"
            assert refused.outcome == "conflict", (
                f"a commit expecting n={seen} after n changed answered {refused.outcome!r}, not 'conflict': "
                "an atomic update would be lost"
            )
            now = encode(2, key="n")
            assert dict(refused.current) == {"n": now}, f"the conflict reported {dict(refused.current)} (want n={now})"
            assert "m" not in await store.context(run_id), "a refused commit wrote its context changes"
            again = await store.commit(
                run_id, dataclasses.replace(late, sets={"n": encode(3, key="n")}, expects={"n": now})
            )
            assert again.outcome == "ok", f"the commit retried on the current value answered {again.outcome!r}"
            assert (await store.commit(run_id, late)).outcome == "dup", "a redelivery after the commit was not 'dup'"
        async with checks.check("usage-survives-restart"):
            new, run_id = _run("usage")
            await store.create(new)
            first_use = await store.charge(run_id, Charge("node_runs", 1, None, key="j1"))
            restarted: RunStore = await _open_store(factory)
            try:
                second = await restarted.charge(run_id, Charge("node_runs", 1, None, key="j2"))
                repeat = await restarted.charge(run_id, Charge("node_runs", 1, None, key="j1"))
            finally:
                if restarted is not store:
                    await _close(restarted)
            assert (first_use.used, second.used, repeat.used) == (1, 2, 2), (
                f"node-run attempts counted {first_use.used}, then {second.used} after a restart, then "
                f"{repeat.used} for a repeated charge (want 1, 2, 2): the counter did not survive the restart"
            )
        async with checks.check("memo-first-writer-wins"):
            new, run_id = _run("memo")
            await store.create(new)
            jid = job_id(run_id, "s", 1)
            one = await store.memo(run_id, jid, "k", '"v1"')
            two = await store.memo(run_id, jid, "k", '"v2"')
            assert (one, two) == ('"v1"', '"v1"'), f"memo answered {one!r} then {two!r} (want the first value twice)"
        if engine:
            await _engine_checks(checks, store, crash, factory)
    finally:
        await _close(store)
    return checks.report(raise_on_failure)


async def _open_store(factory: Callable[[], Any]) -> RunStore:
    made = factory()
    if isinstance(made, Awaitable):
        made = await made
    return made  # type: ignore[no-any-return]


class _CrashingWorker(JobWorker):
    """A worker that dies (its job is redelivered, as after a kill) at one fault point, once."""

    def __init__(self, *args: Any, crash_at: tuple[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plan: tuple[str, str] | None = crash_at

    def _maybe_crash(self, point: str, node_id: str) -> None:
        if self._plan == (point, node_id):
            self._plan = None
            raise _Killed(f"conformance kit: worker killed at {point}:{node_id}")


class _Killed(Exception):
    pass


async def _engine_checks(checks: _Checks, store: RunStore, crash: bool, factory: Callable[[], Any]) -> None:
    queue = MemoryJobQueue(retry_delay=0.005)
    workers = [JobWorker(REGISTRY, store=store, queue=queue, concurrency=4) for _ in range(2)]
    tasks = [asyncio.ensure_future(w.run()) for w in workers]
    try:
        await asyncio.gather(*(w.ready.wait() for w in workers))
        async with JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor:
            for graph_name, (graph, initial) in GOLDEN_GRAPHS.items():
                async with checks.check(f"engine:{graph_name}"):
                    handle = await executor.start(golden_blueprint(graph), initial)
                    action = await handle.result(timeout=20)
                    want = await reference_result(graph_name)
                    _expect(f"{graph_name}: final action", action, want[0])
                    _expect(f"{graph_name}: final context", await handle.context(), want[1])
    finally:
        for w in workers:
            await w.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    if not crash:
        return
    for point in CRASH_POINTS:
        async with checks.check(f"crash:{point}"):
            # a store of its own: the engine's client closes the store it was given when it ends
            fresh: RunStore = await _open_store(factory)
            try:
                await _crash_check(fresh, point)
            finally:
                await _close(fresh)


def _crash_graph(ledger: str | None) -> dict[str, Any]:
    marks = [_n(node, ledger=ledger) if ledger else _n(node) for node in ("a", "b", "c", "d")]
    return {
        "nodes": [*marks, _n("j", "collect")],
        "edges": [_e("a", "b"), _e("a", "c"), _e("b", "d"), _e("c", "j"), _e("d", "j")],
    }


async def _crash_check(store: RunStore, point: str) -> None:
    ledger = f"ledger-{os.getpid()}-{next(_COUNTER)}"
    graph = _crash_graph(ledger)
    want_action, want_ctx = await _reference_of(_crash_graph(None))
    queue = MemoryJobQueue(retry_delay=0.005)
    worker = _CrashingWorker(
        REGISTRY, store=store, queue=queue, concurrency=4, crash_at=(_ENGINE_POINT.get(point, point), "b")
    )
    task = asyncio.ensure_future(worker.run())
    try:
        await worker.ready.wait()
        async with JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor:
            handle = await executor.start(golden_blueprint(graph))
            action = await handle.result(timeout=20)
            ctx = await handle.context()
    finally:
        await worker.close()
        await asyncio.gather(task, return_exceptions=True)
    if worker._plan is not None:
        raise AssertionError(f"the fault point {point} was never reached")
    _expect(f"after a kill at {point}: final action", action, want_action)
    _expect(f"after a kill at {point}: final context", ctx, want_ctx)
    applied = _LEDGERS.pop(ledger, {})
    twice = sorted(k for k, n in applied.items() if n != 1)
    if twice or len(applied) != 4:
        raise AssertionError(
            f"after a kill at {point}, the ledger holds {applied}: every node visit must take effect exactly once"
        )


async def _reference_of(graph: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    runner = BlueprintExecutor(golden_blueprint(graph), REGISTRY)
    ctx = TypedContext()
    action = await runner.flow.run(ctx, executor=runner)
    return action, ctx.to_dict()
