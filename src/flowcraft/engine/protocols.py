"""The job engine's two seams: [`RunStore`][flowcraft.engine.RunStore] and [`JobQueue`][flowcraft.engine.JobQueue].

The engine ([`JobExecutor`][flowcraft.engine.JobExecutor] starts and follows runs,
[`JobWorker`][flowcraft.engine.JobWorker] runs their node jobs) talks to these two and to
nothing else. Backends: Redis + BullMQ ([`flowcraft.distributed`][flowcraft.distributed]), and the
in-memory pair of [`flowcraft.testing`][flowcraft.testing] (``MemoryRunStore``, ``MemoryJobQueue``),
which the contract suite runs over as well.

Example — an engine over the in-memory backends, in one process:

```python
store, queue = MemoryRunStore(), MemoryJobQueue()
worker = JobWorker(REGISTRY, store=store, queue=queue)
async with JobExecutor(store=store, queue=queue) as executor, worker.running():
    action = await flow.run(ctx, executor=executor)
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from .jobs import (
    Charge,
    Commit,
    Completion,
    Failure,
    Job,
    JobState,
    NewRun,
    Park,
    Resolution,
    Resolved,
    Usage,
    WaitRecord,
)

__all__ = [
    "JobFailed",
    "JobProcessor",
    "JobQueue",
    "RunStore",
    "Subscription",
    "WaitStore",
    "check_queue",
    "check_store",
]

JobProcessor = Callable[[Job], Awaitable[None]]
"""What a queue runs for each job; raising means "deliver it again later"."""

JobFailed = Callable[[Job, BaseException], Awaitable[None]]
"""What a queue calls when a job's last delivery failed."""


@runtime_checkable
class Subscription(Protocol):
    """Notifications on one topic (a run's end, or the cancellations every worker hears)."""

    async def get(self, wait: float) -> str | None:
        """The next message, or ``None`` after ``wait`` seconds without one."""
        ...


@runtime_checkable
class RunStore(Protocol):
    """Run state: records, context, done records, joins, pending jobs, events.

    Every write a job makes is one atomic [`commit`][flowcraft.engine.RunStore.commit], deduplicated by job id.
    Values are encoded text (`flowcraft.engine.codec`).
    """

    async def create(self, run: NewRun) -> bool:
        """Store the graph and a new run with its start job pending; ``False`` if the run exists."""
        ...

    async def graph(self, key: str) -> str | None:
        """The stored graph text for ``key``, or ``None``."""
        ...

    async def meta(self, run_id: str) -> dict[str, str]:
        """The run's record (status, params, times, error, ...); empty when there is no such run."""
        ...

    async def context(self, run_id: str) -> dict[str, str]:
        """The run's encoded context."""
        ...

    async def load(self, run_id: str, job_id: str) -> JobState:
        """Status, params, context and done record of a job, in one read."""
        ...

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        """The atomic per-node step: delta, done record, arrivals, releases, pending set, end of run.

        In order: a run that has ended → ``"skip"``; a job with a done record → ``"dup"``
        (that record's result); a key of [`commit.expects`][flowcraft.engine.Commit.expects]
        whose stored value is not the expected one (``""``: not set) → ``"conflict"`` with
        those keys' values now, and nothing written; else the commit is applied → ``"ok"``.
        """
        ...

    async def fail(self, run_id: str, failure: Failure) -> bool:
        """Mark the run failed if it is still active (and wake its followers).

        ``failure.details`` are stored in the run's record too (``meta``); with
        ``failure.abort_running`` every worker is also told to abort the run's running
        nodes (the control message of [`cancel`][flowcraft.engine.protocols.RunStore.cancel], after the run is
        marked failed).
        """
        ...

    async def charge(self, run_id: str, charge: Charge) -> Usage:
        """Atomically add ``charge.amount`` to the run's usage of ``charge.kind`` (budgets).

        One indivisible step (concurrent charges from any number of workers never
        overshoot a limit):

        1. the run is unknown or not active (``pending``/``running``) → ``Usage("inactive", 0.0)``;
           nothing changes;
        2. ``charge.key`` is set and a charge with that key was already applied to this
           kind → ``Usage("ok", used)``; nothing changes (a redelivered job's node run);
        3. ``used`` is the kind's current usage (0 when never charged).
           ``charge.admit``: if ``limit`` is set and ``used + amount > limit`` →
           ``Usage("exceeded", used)``, nothing changes; else ``used += amount``, remember
           the key, ``Usage("ok", used)``.
           Not ``admit``: ``used += amount``, remember the key; ``Usage("exceeded", used)``
           if ``limit`` is set and ``used > limit``, else ``Usage("ok", used)``.

        The usage of every kind is kept with the run and returned by
        [`load`][flowcraft.engine.protocols.RunStore.load] as
        ``JobState.usage`` (a JSON object kind → number) and by
        [`meta`][flowcraft.engine.protocols.RunStore.meta] under the
        ``"usage"`` field (same JSON). Charging never ends the run by itself: the worker
        that gets ``"exceeded"`` calls [`fail`][flowcraft.engine.protocols.RunStore.fail] (with ``abort_running``).
        """
        ...

    async def cancel(self, run_id: str, reason: str) -> str:
        """Mark the run cancelled and tell every worker; the state it ends in (``""``: no such run)."""
        ...

    async def still_pending(self, run_id: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` are decided on and not finished."""
        ...

    async def add_events(self, run_id: str, events: Sequence[str]) -> None:
        """Append encoded events to the run's event log (if it still exists)."""
        ...

    async def memo(self, run_id: str, job_id: str, key: str, value: str | None) -> str | None:
        """The encoded value memoised for ``(job, key)``, or ``None``; with ``value``, store
        it first unless one is stored already (the first writer wins)."""
        ...

    async def read_events(
        self, run_id: str, after: str, *, block: float | None, count: int = 500
    ) -> list[tuple[str, dict[str, str]]]:
        """Event-log entries after id ``after`` (waiting up to ``block`` s for one)."""
        ...

    def subscribe_run(self, run_id: str) -> AbstractAsyncContextManager[Subscription]:
        """Notifications when the run ends."""
        ...

    def subscribe_control(self) -> AbstractAsyncContextManager[Subscription]:
        """``"cancel <run id>"`` messages, for workers."""
        ...

    async def ping(self) -> None:
        """Raise if the backend cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class WaitStore(Protocol):
    """The part of a store that keeps waits and timers (durable stores have it)."""

    async def park(self, run_id: str, park: Park) -> str:
        """Store the wait and park its job, once, atomically; the run's state after it
        (``"awaiting"`` when nothing else of the run is left to run)."""
        ...

    async def wait(self, run_id: str, wait_id: str) -> WaitRecord | None:
        """The stored wait, or ``None``."""
        ...

    async def waits(self, run_id: str, *, open_only: bool = True) -> list[WaitRecord]:
        """The run's waits (the open ones), oldest first."""
        ...

    async def resolve(self, run_id: str, wait_id: str, resolution: Resolution) -> Resolved:
        """Compare-and-set on the wait being open: resolve it, unpark its job, set the run running."""
        ...

    async def due(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """Open waits with ``fire_at <= now``, earliest first, as ``(run id, wait id)``."""
        ...

    async def next_fire_at(self) -> float | None:
        """The earliest ``fire_at`` of an open wait, or ``None``."""
        ...


@runtime_checkable
class JobQueue(Protocol):
    """Delivers node jobs to workers, at least once.

    Adding a job whose id is still queued or running is a no-op. A job whose processor
    raises is delivered again later, a bounded number of times; then ``on_failed`` runs.
    """

    async def add(self, jobs: Sequence[Job]) -> None:
        """Enqueue ``jobs`` (one round trip)."""
        ...

    async def serve(
        self,
        processor: JobProcessor,
        *,
        concurrency: int,
        on_failed: JobFailed | None = None,
    ) -> None:
        """Run ``processor`` over jobs, ``concurrency`` at a time, until
        [`close`][flowcraft.engine.JobQueue.close]."""
        ...

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs; wait for running ones (``force``: abandon them to redelivery)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _missing(obj: object, protocol: type[Any]) -> list[str]:
    names = [name for name in dir(protocol) if not name.startswith("_") and callable(getattr(protocol, name, None))]
    return [name for name in sorted(names) if not callable(getattr(obj, name, None))]


def _check(obj: object, protocol: type[Any], role: str) -> None:
    missing = _missing(obj, protocol)
    if missing:
        raise TypeError(
            f"{type(obj).__name__} cannot be the engine's {role}: it has no {', '.join(missing)} "
            f"(the {protocol.__name__} protocol, flowcraft.engine.{protocol.__name__})"
        )


def check_store(store: object) -> RunStore:
    """``store`` typed, after checking it has every method of [`RunStore`][flowcraft.engine.RunStore].

    Raises:
        TypeError: naming the object and each missing method.
    """
    _check(store, RunStore, "store")
    assert isinstance(store, RunStore)
    return store


def check_queue(queue: object) -> JobQueue:
    """``queue`` typed, after checking it has every method of [`JobQueue`][flowcraft.engine.JobQueue].

    Raises:
        TypeError: naming the object and each missing method.
    """
    _check(queue, JobQueue, "queue")
    assert isinstance(queue, JobQueue)
    return queue
