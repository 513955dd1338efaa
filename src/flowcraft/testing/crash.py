"""Kill-and-restart checks: the part of the conformance kit that kills an executor with
``SIGKILL`` (a real process death) at a named fault point and restarts it.

An executor takes part by declaring the ``crash`` capability and giving
[`check_executor`][flowcraft.testing.conformance.check_executor] a
[`CrashHarness`][flowcraft.testing.conformance.CrashHarness]: something that can start
the executor (or the worker processes that run its nodes) in a new process with a fault
point armed, and later start a fresh executor that finishes the run. Two harnesses come
with the kit: [`ProcessHarness`][flowcraft.testing.conformance.ProcessHarness] for an
executor that runs nodes in its own process (like
[`DurableExecutor`][flowcraft.durable.DurableExecutor]) and
[`WorkerHarness`][flowcraft.testing.conformance.WorkerHarness] for one whose worker
processes run them (like [`DistributedExecutor`][flowcraft.distributed.DistributedExecutor]).

A fault point is armed with the environment variable ``FLOWCRAFT_TEST_CRASH_AT`` set to
``<point>:<node id>``: the process must ``SIGKILL`` itself when it reaches that point
while running that node ([`JobWorker`][flowcraft.engine.JobWorker] does; an executor
with its own job loop must do it too, at the same points).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import importlib
import itertools
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Protocol, runtime_checkable

from ..engine.worker import CRASH_ENV
from ..graph.models import WorkflowBlueprint
from ._kit import (
    ATTEMPTS_LOG,
    REGISTRY,
    RUNS_LOG,
    _Checks,
    _e,
    _expect,
    _n,
    _opened,
    _reference_of,
    applied_effects,
    golden_blueprint,
    read_log,
)

__all__ = [
    "CRASH_POINTS",
    "CrashHarness",
    "CrashRun",
    "ProcessHarness",
    "WorkerHarness",
    "durable_executor",
]

CRASH_POINTS = ("before_node", "during_node", "before_commit", "after_commit", "after_enqueue")
"""Where [`check_executor`][flowcraft.testing.conformance.check_executor] kills an
executor that declares the ``crash`` capability, always while it runs node ``b`` of the
crash graph ``a → b → (c, d) → j``:

- ``before_node``: the node's job was taken, its ``prep`` has not run;
- ``during_node``: at the node's first context write (its effect already ran);
- ``before_commit``: the node ran; its result is not stored;
- ``after_commit``: its result is stored (atomically: context, done record, arrivals);
  its successors are not handed to a queue yet;
- ``after_enqueue``: its successors are queued too (the process may have begun them).
"""

_RERUN_ALLOWED: dict[str, frozenset[str]] = {
    "before_node": frozenset(),
    "during_node": frozenset({"b"}),
    "before_commit": frozenset({"b"}),
    "after_commit": frozenset(),
    "after_enqueue": frozenset({"c", "d"}),
}
"""The nodes that may run (``prep``) again after the kill: the ones in flight."""
_REATTEMPT_ALLOWED: dict[str, frozenset[str]] = {"after_enqueue": frozenset({"c", "d"})}
"""The nodes whose effect may be attempted again: begun, perhaps not memoised, at the kill."""
_COUNTER = itertools.count()


@dataclasses.dataclass(frozen=True, slots=True)
class CrashRun:
    """One run the kit crashes: a [`CrashHarness`][flowcraft.testing.conformance.CrashHarness]
    starts it with the fault point armed, then recovers it.

    Attributes:
        run_id: the id to start the run under (and to find it again by).
        graph: the JSON graph of golden nodes (its blueprint:
            [`blueprint()`][flowcraft.testing.conformance.CrashRun.blueprint]).
        point: one of [`CRASH_POINTS`][flowcraft.testing.conformance.CRASH_POINTS].
        node_id: the node at which the process dies.
    """

    run_id: str
    graph: Mapping[str, Any]
    point: str
    node_id: str

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that arm the fault point in a new process."""
        return {CRASH_ENV: f"{self.point}:{self.node_id}"}

    def blueprint(self) -> WorkflowBlueprint:
        """The run's graph as a blueprint (node types of the kit's ``REGISTRY``)."""
        return golden_blueprint(self.graph)


@runtime_checkable
class CrashHarness(Protocol):
    """How the kit kills and restarts your executor (the ``crash`` capability)."""

    async def crash(self, run: CrashRun) -> int | None:
        """Start what runs your executor's nodes in a new process whose environment adds
        ``run.env``; start ``run`` (its blueprint, under ``run.run_id``); return that
        process's exit code once it has ended (``-SIGKILL`` when the fault point was
        reached), or ``None`` if it had to be stopped."""
        ...

    async def recover(self, run: CrashRun) -> tuple[Any, Mapping[str, Any]]:
        """Start a fresh executor (no fault point) that finishes ``run``; return the
        run's final action and context."""
        ...


def _import(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{target!r} is not 'package.module:name'")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    # the child imports what this process can (the opener's module, test folders)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra)
    return env


async def _stop(process: asyncio.subprocess.Process, grace: float = 10.0) -> int | None:
    """Stop ``process`` (SIGTERM, then SIGKILL); its exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(grace):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    return text[-2000:]


class ProcessHarness:
    """A [`CrashHarness`][flowcraft.testing.conformance.CrashHarness] for an executor that
    runs nodes in its own process: ``crash`` opens it in a child process
    (``python -m flowcraft.testing._crash_child``), starts the run there and waits for the
    child to die; ``recover`` opens a fresh one in this process and waits for the run.

    Args:
        opener: ``"package.module:function"``, importable here and in a child process
            started with this process's ``sys.path``: ``function(where)`` returns the
            executor (or an async context manager that opens it). Opening it must take
            over runs whose process died.
        where: the argument for ``opener`` (a database path, a URL...): both processes
            must reach the same stored runs through it.
        timeout: seconds the child may take to reach the fault point.

    Examples:
        ```python
        harness = ProcessHarness(
            "flowcraft.testing.conformance:durable_executor", "runs.db"
        )
        ```
    """

    def __init__(self, opener: str, where: str, *, timeout: float = 60.0) -> None:
        self.opener = opener
        self.where = where
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ProcessHarness({self.opener!r}, {self.where!r})"

    async def crash(self, run: CrashRun) -> int | None:
        """Run ``run`` in a child process with the fault point armed; its exit code."""
        _import(self.opener)  # a wrong name fails here, naming it, not in the child
        with tempfile.TemporaryFile() as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flowcraft.testing._crash_child", self.opener, self.where, run.run_id,
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, env=_child_env(run.env),
            )  # fmt: skip
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps(dict(run.graph)).encode())
                process.stdin.close()
                async with asyncio.timeout(self.timeout):
                    code = await process.wait()
            except TimeoutError:
                await _stop(process)
                return None
            finally:
                await _stop(process)
            if code not in (-signal.SIGKILL, 0):
                raise AssertionError(f"the child process failed (exit code {code}):\n{_tail(log)}")
            return code

    async def recover(self, run: CrashRun) -> tuple[Any, Mapping[str, Any]]:
        """Open a fresh executor here; the run's final action and context."""
        opener = _import(self.opener)
        async with _opened(lambda: opener(self.where)) as executor:
            handle = await executor.handle(run.run_id)
            action = await handle.result()
            return action, await handle.context()


class WorkerHarness:
    """A [`CrashHarness`][flowcraft.testing.conformance.CrashHarness] for an executor whose
    nodes run in worker processes: ``crash`` starts one worker process with the fault
    point armed, starts the run through the executor (here) and waits for the worker to
    die; ``recover`` starts a fresh worker and waits for the run through the executor.

    Args:
        executor: opens the client executor (as ``check_executor``'s factory does); it
            must reach the workers started by ``command`` and no other (a queue of its
            own), so that the armed worker is the one that takes the run.
        command: the worker process's command line; the workers must know the kit's
            node types (``flowcraft.testing.conformance:REGISTRY``) and redeliver the
            jobs of a worker that died.
        env: extra environment variables for the workers.
        timeout: seconds the armed worker may take to reach the fault point.

    Examples:
        ```python
        harness = WorkerHarness(
            lambda: DistributedExecutor(url, queue="kit"),
            [sys.executable, "-m", "flowcraft", "worker", "--redis", url,
             "--queue", "kit", "--registry",
             "flowcraft.testing.conformance:REGISTRY"],
        )
        ```
    """

    def __init__(
        self,
        executor: Callable[[], Any],
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.executor = executor
        self.command = list(command)
        self.env = dict(env or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WorkerHarness({self.command!r})"

    async def _spawn(self, extra: Mapping[str, str], log: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.command, stdout=log, stderr=log, env=_child_env({**self.env, **extra})
        )

    async def crash(self, run: CrashRun) -> int | None:
        """Start an armed worker and the run; the worker's exit code."""
        with tempfile.TemporaryFile() as log:
            worker = await self._spawn(run.env, log)
            try:
                async with _opened(self.executor) as client:
                    handle = await client.start(run.blueprint(), run_id=run.run_id)
                    ended = asyncio.ensure_future(handle.result())
                    died = asyncio.ensure_future(worker.wait())
                    try:
                        await asyncio.wait({ended, died}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        ended.cancel()
                        with contextlib.suppress(BaseException):
                            await ended
                if worker.returncode is None:  # the run ended (or nothing happened): the fault point was not reached
                    await _stop(worker)
                    return None
                if worker.returncode != -signal.SIGKILL:
                    raise AssertionError(f"the worker process failed (exit code {worker.returncode}):\n{_tail(log)}")
                return worker.returncode
            finally:
                await _stop(worker)

    async def recover(self, run: CrashRun) -> tuple[Any, Mapping[str, Any]]:
        """Start a fresh worker; the run's final action and context."""
        with tempfile.TemporaryFile() as log:
            worker = await self._spawn({}, log)
            try:
                async with _opened(self.executor) as client:
                    handle = await client.handle(run.run_id)
                    action = await handle.result()
                    return action, await handle.context()
            finally:
                await _stop(worker)


def durable_executor(where: str) -> Any:
    """A [`DurableExecutor`][flowcraft.durable.DurableExecutor] on the SQLite file
    ``where`` that knows the kit's node types: an opener for
    [`ProcessHarness`][flowcraft.testing.conformance.ProcessHarness]."""
    # local import: the durable layer loads only for this opener (flowcraft.durable needs nothing from the kit)
    from ..durable.executor import DurableExecutor

    return DurableExecutor(where, registry=REGISTRY)


def _crash_graph(folder: str | None) -> dict[str, Any]:
    ledger = {"ledger_dir": folder} if folder else {}
    return {
        "nodes": [*(_n(node, **ledger) for node in ("a", "b", "c", "d")), _n("j", "collect", action="end")],
        "edges": [_e("a", "b"), _e("b", "c"), _e("b", "d"), _e("c", "j"), _e("d", "j")],
    }


async def _crash_checks(checks: _Checks, harness: CrashHarness, points: Sequence[str], limit: float) -> None:
    want = await _reference_of(_crash_graph(None))
    for point in points:
        async with checks.check(f"crash:{point}", limit=2 * limit + 10):
            with tempfile.TemporaryDirectory(prefix="fc-crash") as folder:
                run = CrashRun(f"kit-crash-{point}-{os.getpid()}-{next(_COUNTER)}", _crash_graph(folder), point, "b")
                await _crash_once(harness, run, want, folder, limit)


async def _crash_once(harness: CrashHarness, run: CrashRun, want: tuple[Any, Any], folder: str, limit: float) -> None:
    point = run.point
    try:
        async with asyncio.timeout(limit):
            code = await harness.crash(run)
    except TimeoutError:
        raise AssertionError(f"the harness did not return within {limit} s of starting the run to kill") from None
    if code != -signal.SIGKILL:
        raise AssertionError(
            f"the process running node 'b' was not killed at {point} (exit code {code}): the executor must "
            f"SIGKILL itself where {CRASH_ENV}={point}:b says"
        )
    try:
        async with asyncio.timeout(limit):
            action, ctx = await harness.recover(run)
    except TimeoutError:
        raise AssertionError(
            f"after a kill at {point}, a restarted executor did not finish the run within {limit} s: it did "
            "not recover the run (runs whose process died must be taken over)"
        ) from None
    applied = applied_effects(folder)
    wrong = {node: len(applied.get(node, [])) for node in ("a", "b", "c", "d") if len(applied.get(node, [])) != 1}
    if wrong:
        raise AssertionError(
            f"after a kill at {point}, the ledger applied these nodes' effects {wrong} time(s) (want once each, "
            f"under one idempotency key; applied: {applied}): a node visit took effect twice, or never"
        )
    allowed = _RERUN_ALLOWED[point]
    runs = collections.Counter(node for node, _ in read_log(folder, RUNS_LOG))
    again = sorted(node for node, count in runs.items() if count > 1 and node not in allowed)
    if again:
        raise AssertionError(
            f"after a kill at {point}, node(s) {again} ran again after the restart though their work was "
            f"committed or not begun at the kill (runs: {dict(runs)}; may run again: {sorted(allowed)})"
        )
    attempts = collections.Counter(read_log(folder, ATTEMPTS_LOG))
    allowed = _REATTEMPT_ALLOWED.get(point, frozenset())
    repeated = sorted(f"{node} {key}" for (node, key), count in attempts.items() if count > 1 and node not in allowed)
    if repeated:
        raise AssertionError(
            f"after a kill at {point}, the effect of {repeated} was attempted again: its memo did not survive "
            "the restart (the ledger refused the duplicate, an API without idempotency keys would not)"
        )
    _expect(f"after a kill at {point} and a restart: final action", action, want[0])
    _expect(f"after a kill at {point} and a restart: final context", dict(ctx), want[1])
