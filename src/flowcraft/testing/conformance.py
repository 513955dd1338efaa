"""The conformance kit: prove that an executor or a run store is correct.

[`check_executor`][flowcraft.testing.conformance.check_executor] runs the golden graphs
(fan-in, loops, conditional joins, nested parallel blocks, batches, sub-workflows,
several starts) through your executor and compares the final action and context with
the in-memory reference; then a failing node and a cancelled run; and, for an executor
with the ``crash`` capability, kills it with ``SIGKILL`` at each fault point
(``before_node``, ``during_node``, ``before_commit``, ``after_commit``,
``after_enqueue``) and restarts it through a
[`CrashHarness`][flowcraft.testing.conformance.CrashHarness], checking the recovered
run against the reference and an external ledger keyed by idempotency keys.
[`check_store`][flowcraft.testing.conformance.check_store] drives a
[`RunStore`][flowcraft.engine.RunStore] directly (deduplicated and atomic commits,
joins, no lost update, usage and memos that survive a restart), then runs the golden
graphs through the job engine on it, and kills a worker in its own process at each
fault point but ``during_node``, checking with a ledger that every node visit took
effect exactly once.

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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ..abort import AbortController
from ..context import TypedContext
from ..engine.client import JobExecutor
from ..engine.codec import encode
from ..engine.jobs import Arrival, Charge, Commit, Job, NewRun, job_id
from ..engine.memory import MemoryJobQueue
from ..engine.protocols import RunStore
from ..engine.worker import JobWorker
from ..errors import AbortError
from ..graph.blueprint import BlueprintExecutor
from ._kit import (
    _LEDGERS,
    GOLDEN_GRAPHS,
    REGISTRY,
    CheckResult,
    ConformanceError,
    ConformanceReport,
    _Checks,
    _e,
    _expect,
    _n,
    _opened,
    _reference_of,
    golden_blueprint,
    reference_result,
)
from .crash import (
    CRASH_POINTS,
    CrashHarness,
    CrashRun,
    ProcessHarness,
    WorkerHarness,
    _crash_checks,
    durable_executor,
)

__all__ = [
    "CAPABILITIES",
    "CRASH_POINTS",
    "GOLDEN_GRAPHS",
    "REGISTRY",
    "STORE_CRASH_POINTS",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "CrashHarness",
    "CrashRun",
    "ProcessHarness",
    "WorkerHarness",
    "check_executor",
    "check_store",
    "durable_executor",
    "golden_blueprint",
    "reference_result",
]

CAPABILITIES = frozenset({"graphs", "errors", "cancel", "crash"})
"""What [`check_executor`][flowcraft.testing.conformance.check_executor] can check:
``graphs`` (the golden graphs), ``errors`` (a failing node fails the run; needs ``exec``),
``cancel`` (an aborted run stops), ``crash`` (the executor is killed with ``SIGKILL`` at
each of [`CRASH_POINTS`][flowcraft.testing.conformance.CRASH_POINTS] and restarted;
needs a [`CrashHarness`][flowcraft.testing.conformance.CrashHarness])."""

STORE_CRASH_POINTS = ("before_node", "before_commit", "after_commit", "after_enqueue")
"""Where [`check_store`][flowcraft.testing.conformance.check_store] kills a worker (in
its own process: ``during_node`` needs a process of its own, see ``check_executor``)."""

_ENGINE_POINT = {"before_commit": "before_complete", "after_commit": "after_complete"}


# ---- executors ---------------------------------------------------------------------------------


async def check_executor(
    factory: Callable[[], Any],
    *,
    capabilities: Iterable[str] | None = None,
    graphs: Iterable[str] | None = None,
    crash: CrashHarness | None = None,
    crash_points: Iterable[str] = CRASH_POINTS,
    crash_timeout: float = 60.0,
    raise_on_failure: bool = True,
    name: str | None = None,
) -> ConformanceReport:
    """Run the kit over an executor.

    Args:
        factory: returns the executor (a [`FlowRunner`][flowcraft.FlowRunner]), an
            awaitable of one, or an async context manager that opens one; called once
            per check group.
        capabilities: the parts of the kit that apply (``CAPABILITIES``; default:
            ``graphs``, ``errors``, ``cancel``, and ``crash`` when a harness is given); a
            dry run, which never runs ``exec``, has ``{"graphs"}``.
        graphs: golden graph names to run (default: all of ``GOLDEN_GRAPHS``).
        crash: how to kill and restart the executor (the ``crash`` capability): a
            [`CrashHarness`][flowcraft.testing.conformance.CrashHarness] such as
            [`ProcessHarness`][flowcraft.testing.conformance.ProcessHarness].
        crash_points: the fault points to kill it at (default: all of ``CRASH_POINTS``).
        crash_timeout: seconds each kill-and-restart check may take.
        raise_on_failure: raise [`ConformanceError`][flowcraft.testing.conformance.ConformanceError]
            naming the failed checks (else only return the report).

    Checks: ``golden:<graph>`` (same final action and context as the reference),
    ``fan-in-exactly-once`` (the join ran once, after every branch), ``errors``,
    ``cancel``, ``crash:<point>`` (killed there and restarted, the run ends like the
    reference; an external ledger keyed by the node's idempotency key holds each node
    visit's effect once; no committed node runs again).

    Raises:
        ValueError: an unknown capability or fault point, or ``crash`` declared
            without a harness.
    """
    if capabilities is None:
        caps = CAPABILITIES if crash is not None else CAPABILITIES - {"crash"}
    else:
        caps = frozenset(capabilities)
    unknown = caps - CAPABILITIES
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; the kit knows {sorted(CAPABILITIES)}")
    points = list(crash_points)
    wrong = [point for point in points if point not in CRASH_POINTS]
    if wrong:
        raise ValueError(f"unknown fault points {wrong}; the kit knows {list(CRASH_POINTS)}")
    if "crash" in caps and crash is None:
        raise ValueError(
            "the 'crash' capability needs a harness that can kill and restart the executor: pass "
            "crash=ProcessHarness(...) or crash=WorkerHarness(...) (see flowcraft.testing.conformance.CrashHarness)"
        )
    checks = _Checks(name or str(getattr(factory, "__name__", type(factory).__name__)))
    names = list(GOLDEN_GRAPHS) if graphs is None else list(graphs)
    if caps - {"crash"}:
        await _run_checks(checks, factory, caps, names)
    if "crash" in caps and crash is not None:
        await _crash_checks(checks, crash, points, crash_timeout)
    return checks.report(raise_on_failure)


async def _run_checks(checks: _Checks, factory: Callable[[], Any], caps: frozenset[str], names: list[str]) -> None:
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
        crash: also kill a worker at each of ``STORE_CRASH_POINTS`` and check with a ledger
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
    for point in STORE_CRASH_POINTS:
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
