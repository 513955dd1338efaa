"""[`DurableExecutor`][flowcraft.durable.executor.DurableExecutor]: durable runs in this process, on a
[`SqliteRunStore`][flowcraft.durable.executor.SqliteRunStore].

The job engine of the distributed mode (one job per node visit, one atomic commit per
node), with an asyncio queue in this process instead of BullMQ, and a store that
outlives the process. Each run is leased to the process running it; a process that
enters an executor takes over the runs whose lease expired (their process died) and
runs their pending jobs again, so a run goes on where its last commit left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from ..budget import Budget
from ..clock import Clock, current
from ..context import Context
from ..engine.client import JobExecutor, RunHandle
from ..engine.errors import DurabilityNotSupportedError, RunConflictError
from ..engine.jobs import Job, RunSummary
from ..engine.memory import MemoryJobQueue
from ..engine.protocols import RunStore, WaitStore
from ..engine.worker import JobWorker
from ..executors.base import RunOptions
from ..flow import Flow
from ..loggers import Logger
from .sqlite import SqliteRunStore

__all__ = ["DurableExecutor", "DurableRunStore"]

HOST = socket.gethostname()
TIMER_POLL = 0.5
"""Seconds between two looks for due timers when none is due sooner."""


@runtime_checkable
class DurableRunStore(RunStore, WaitStore, Protocol):
    """A [`RunStore`][flowcraft.engine.RunStore] that durable runs can use: leases, the jobs a
    run still has to run, run listings and retention ([`SqliteRunStore`][flowcraft.durable.executor.SqliteRunStore])."""

    async def lease(self, run_id: str, owner: str, ttl: float, *, expect: str | None = None) -> bool:
        """Take or renew the run's lease (see [`SqliteRunStore.lease`][flowcraft.durable.SqliteRunStore.lease])."""
        ...

    async def renew(self, owner: str, ttl: float) -> int:
        """Extend every active run leased to ``owner``."""
        ...

    async def release(self, owner: str) -> None:
        """Give up ``owner``'s leases at once."""
        ...

    async def orphans(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        """Active runs as ``(run id, owner, lease until)``."""
        ...

    async def pending_jobs(self, run_id: str) -> list[Job]:
        """The run's jobs decided on and not finished."""
        ...

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """Runs, newest first."""
        ...

    async def cleanup(self, *, now: float | None = None) -> int:
        """Remove finished runs past their retention."""
        ...


def _owner_alive(owner: str) -> bool:
    """Whether the process named by ``owner`` (``host:pid:nonce``) may still be alive."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return True  # another machine: only its lease's expiry tells
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, unless it is a zombie
        pass
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited, though perhaps not yet reaped by its parent (state ``Z``
    in ``/proc/<pid>/stat`` on Linux; elsewhere, and when unreadable, ``False``). A zombie
    keeps its pid, so ``os.kill(pid, 0)`` alone takes it for a live process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except FileNotFoundError:  # gone meanwhile (on Linux), or no /proc at all
        return os.path.exists("/proc/self/stat")
    except OSError:
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses, so the state
    # follows the last ")"
    fields = text.rpartition(b")")[2].split()
    return bool(fields) and fields[0] in (b"Z", b"X")


class DurableExecutor(JobExecutor):
    """Runs flows durably in this process: every node's commit is stored, and a run whose
    process died is finished by the next executor opened on the same store.

    Use it as an async context manager (entering it takes over orphaned runs; leaving it
    hands this process's unfinished runs over at once). Flows must be rebuildable by
    another process: built from a blueprint (give ``registry``), or named by a factory
    (``"package.module:function"``).

    Args:
        store: a [`SqliteRunStore`][flowcraft.durable.executor.SqliteRunStore], or the path of its file.
        registry: node type → class, for blueprint graphs.
        dependencies: keyword arguments for node constructors.
        concurrency: node jobs run at once.
        lease_ttl: seconds a run's lease lasts without renewal (renewed every third of it);
            another process takes a run over this long after its process died (at once
            when that process was on this machine).
        middleware, logger: as for [`JobWorker`][flowcraft.engine.JobWorker].
        poll_interval: how often a handle re-reads a run another process runs.
        clock: where lease times come from (``clock.time()``; default: the current
            ``flowcraft.clock.Clock``); given to the store this executor opens.

    Raises:
        DurabilityNotSupportedError: ``store`` cannot hold durable runs.

    Examples:
        ```python
        async with DurableExecutor("runs.db", registry=REGISTRY) as executor:
            action = await flow.run(ctx, executor=executor)
            handle = await executor.start("myapp.flows:make_pipeline", {"n": 1}, run_id="order-42")
            print(await handle.result())
        ```
    """

    def __init__(
        self,
        store: DurableRunStore | str = "flowcraft-runs.db",
        *,
        registry: Mapping[str, Any] | None = None,
        dependencies: Mapping[str, Any] | None = None,
        concurrency: int = 16,
        lease_ttl: float = 10.0,
        middleware: Sequence[Any] = (),
        logger: Logger | None = None,
        poll_interval: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(store, (str, os.PathLike)):
            store = cast(DurableRunStore, SqliteRunStore(os.fspath(store), clock=clock))
        if not isinstance(store, DurableRunStore):
            missing = [name for name in ("lease", "renew", "release", "orphans", "pending_jobs", "runs", "cleanup")
                       if not callable(getattr(store, name, None))]  # fmt: skip
            raise DurabilityNotSupportedError(
                f"{type(store).__name__} cannot hold durable runs: it has no {', '.join(missing)} "
                "(use SqliteRunStore, or DistributedExecutor for Redis)"
            )
        if lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be > 0 seconds, got {lease_ttl!r}")
        queue = MemoryJobQueue()
        super().__init__(store=store, queue=queue, poll_interval=poll_interval)
        self.durable_store: DurableRunStore = store
        self.lease_ttl = lease_ttl
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._worker = JobWorker(
            registry, store=store, queue=queue, dependencies=dependencies, concurrency=concurrency,
            middleware=middleware, logger=logger, inline_successors=True, clock=clock, retry_timers=True,
        )  # fmt: skip
        self._stack: contextlib.AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._entering: asyncio.Lock | None = None
        self._timer_wake = asyncio.Event()
        self._worker.on_park = lambda _run_id, _park: self._timer_wake.set()
        self.taken_over: list[str] = []
        """Ids of the runs this executor took over from processes that died (see
        [`recover`][flowcraft.durable.DurableExecutor.recover])."""

    def __repr__(self) -> str:
        return f"DurableExecutor({self.durable_store!r})"

    # ---- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> DurableExecutor:
        await self._ensure_running()
        return self

    async def _ensure_running(self) -> None:
        if self._stack is not None:
            return
        if self._entering is None:
            self._entering = asyncio.Lock()
        async with self._entering:
            if self._stack is not None:
                return
            await self.durable_store.ping()
            stack = contextlib.AsyncExitStack()
            await stack.enter_async_context(self._worker.running())
            self._stack = stack
            await self.recover()
            self._tasks = [
                asyncio.ensure_future(self._keep_leases()),
                asyncio.ensure_future(self._cleanup()),
                asyncio.ensure_future(self._timers()),
            ]

    async def aclose(self, *, force: bool = False) -> None:
        """Stop running jobs (unfinished runs are handed over at once) and close the store.

        ``force``: cancel the node jobs still running instead of waiting for them (a run
        recovered later runs them again from ``prep``).
        """
        if force and self._stack is not None:
            await self._worker.close(force=True)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        if self._stack is not None:
            stack, self._stack = self._stack, None
            try:
                await stack.aclose()
            finally:
                with contextlib.suppress(Exception):
                    await self.durable_store.release(self.owner)
        await self.durable_store.aclose()

    async def _keep_leases(self) -> None:
        """Renew this process's leases every third of their TTL; take over runs that are orphaned meanwhile."""
        period = self.lease_ttl / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self.durable_store.renew(self.owner, self.lease_ttl)
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store is briefly unusable: try again next period
                self._worker.logger.warn(f"durable executor: renewing leases failed: {error}")

    async def _cleanup(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.durable_store.cleanup()
            await asyncio.sleep(3600)

    async def recover(self) -> list[str]:
        """Take over every active run whose lease expired or whose process on this machine
        died, and run its pending jobs; the ids of the runs taken over."""
        taken: list[str] = []
        now = self._now()
        for run_id, owner, until in await self.durable_store.orphans():
            if owner == self.owner:
                continue
            if owner and until >= now and _owner_alive(owner):
                continue
            if await self.durable_store.lease(run_id, self.owner, self.lease_ttl, expect=owner or None):
                await self.queue.add(await self.durable_store.pending_jobs(run_id))
                taken.append(run_id)
        self.taken_over.extend(taken)
        return taken

    # ---- runs ------------------------------------------------------------------------------

    async def start(
        self,
        graph: Any,
        context: Context | Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        events: bool = False,
        budget: Budget | None = None,
    ) -> RunHandle:
        """Store the run (committed before this returns), then run it in this process.

        ``graph`` is a blueprint (or a flow built from one) or a flow factory (name,
        function, or a flow it built). Starting an existing ``run_id`` with the same graph
        returns its handle (the run is not started twice).

        Raises:
            RunConflictError: ``run_id`` exists with another graph.
            NotABlueprintFlowError: ``graph`` cannot be rebuilt by another process.
            CodecError: a context value or param cannot be stored (names the key and type).
        """
        await self._ensure_running()
        handle, start, stored = await self._create_run(
            graph, context, params=params, run_id=run_id, events=events, budget=budget
        )
        if start is None:  # the run exists: the same graph is the same run
            return self._existing(handle.run_id, await self.store.meta(handle.run_id), stored.key)
        if await self.durable_store.lease(handle.run_id, self.owner, self.lease_ttl):
            await self.queue.add([start])
        return handle

    def _existing(self, run_id: str, meta: Mapping[str, str], key: str) -> RunHandle:
        if meta.get("blueprint") != key:
            raise RunConflictError(
                f"Run {run_id!r} exists with another graph ({meta.get('blueprint', '?')[:12]}..., this one is "
                f"{key[:12]}...): choose another run id, or start the graph it was started with",
                run_id=run_id,
            )
        return RunHandle(self, run_id)

    async def handle(self, run_id: str) -> RunHandle:
        """A handle on a stored run (started by any process).

        Raises:
            RunNotFoundError: there is no such run.
        """
        await self._ensure_running()
        return await super().handle(run_id)

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """The stored runs, newest first (``state``: only those in it)."""
        await self._ensure_running()
        return await self.durable_store.runs(state, limit)

    # ---- waits and timers --------------------------------------------------------------

    async def _continue(self, run_id: str, job: Job | None) -> None:
        """A resolved wait's continuation runs here: this process takes the run's lease."""
        await self.durable_store.lease(run_id, self.owner, self.lease_ttl)
        await super()._continue(run_id, job)

    async def resume(
        self,
        run_id: str,
        wait_id: str,
        value: Any = None,
        *,
        action: Any = None,
        idempotency_key: str | None = None,
    ) -> RunHandle:
        """Resolve a wait and run the run on in this process (see
        [`JobExecutor.resume`][flowcraft.engine.JobExecutor.resume])."""
        await self._ensure_running()
        return await super().resume(run_id, wait_id, value, action=action, idempotency_key=idempotency_key)

    async def fire_due_timers(self) -> list[str]:
        """Fire every timer whose time has come (by the executor's clock), earliest first:
        expired waits take their ``on_timeout`` action, sleeps go on. The ids of the waits
        fired here (a timer another process fired first is skipped). The executor does
        this by itself; call it to drive a fake clock in tests."""
        return await self.fire_timers(self._now())

    async def _timers(self) -> None:
        """Fire due timers; sleep until the next one (at most half a second: other
        processes park waits too, and a test's clock may jump)."""
        while True:
            fired: list[str] = []
            try:
                fired = await self.fire_due_timers()
                next_at = await self.durable_store.next_fire_at()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store is briefly unusable: try again
                self._worker.logger.warn(f"durable executor: firing timers failed: {error}")
                next_at = None
            delay = TIMER_POLL if next_at is None else min(TIMER_POLL, max(0.0, next_at - self._now()))
            if not fired:  # a due timer that could not fire (another process has it): never spin
                delay = max(delay, 0.05)
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._timer_wake.wait()

    def _now(self) -> float:
        return (self._clock if self._clock is not None else current()).time()

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run ``flow`` durably and wait for it (see [`JobExecutor.run`][flowcraft.engine.JobExecutor.run])."""
        await self._ensure_running()
        return await super().run(flow, context, options)
