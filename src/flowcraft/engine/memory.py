"""In-memory backends of the job engine: [`MemoryRunStore`][flowcraft.engine.MemoryRunStore] and
[`MemoryJobQueue`][flowcraft.engine.MemoryJobQueue].

Real implementations of the two protocols, kept in one process (no persistence, no
expiry): the contract suite runs the engine over them as it does over Redis, and users
can test their own flows on the job engine without a server. Each commit runs without an
``await`` inside it, so it is atomic on the event loop, as a Lua script is on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

from ..topology import releasable
from .jobs import ACTIVE_STATES, Charge, Commit, Completion, Failure, Job, JobState, NewRun, Usage, job_id
from .protocols import JobFailed, JobProcessor
from .topics import Topics, TopicSubscription

__all__ = ["MemoryJobQueue", "MemoryRunStore"]


@dataclasses.dataclass
class _Run:
    meta: dict[str, str]
    ctx: dict[str, str]
    pending: dict[str, str] = dataclasses.field(default_factory=dict)
    memos: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    done: dict[str, Completion] = dataclasses.field(default_factory=dict)
    visits: dict[str, int] = dataclasses.field(default_factory=dict)
    open: dict[str, int] = dataclasses.field(default_factory=dict)
    arrivals: dict[tuple[str, int], set[str]] = dataclasses.field(default_factory=dict)
    stream: list[tuple[str, dict[str, str]]] = dataclasses.field(default_factory=list)
    appended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    usage: dict[str, float] = dataclasses.field(default_factory=dict)
    charged: set[tuple[str, str]] = dataclasses.field(default_factory=set)


class MemoryRunStore:
    """A [`RunStore`][flowcraft.engine.RunStore] in this process's memory."""

    def __init__(self) -> None:
        self._graphs: dict[str, str] = {}
        self._runs: dict[str, _Run] = {}
        self._topics = Topics()
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return "MemoryRunStore()"

    # ---- helpers ----------------------------------------------------------------------

    def _append(self, run: _Run, fields: dict[str, str]) -> None:
        run.stream.append((f"{next(self._ids)}-0", fields))
        run.appended.set()
        run.appended = asyncio.Event()

    def _finish(self, run_id: str, run: _Run, state: str) -> None:
        if run.meta.get("events"):
            self._append(run, {"end": state})
        self._topics.publish(f"run:{run_id}", state)

    # ---- the protocol -------------------------------------------------------------------

    async def create(self, run: NewRun) -> bool:
        """Store the graph and a new run with its start job pending; ``False`` if it exists."""
        self._graphs[run.graph] = run.graph_text
        if run.run_id in self._runs:
            return False
        meta = {"status": "pending", "blueprint": run.graph, "params": run.params, "created_at": _now()}
        if run.budget is not None:
            meta["budget"] = run.budget
        record = _Run(meta, dict(run.context))
        record.visits[run.start.node_id] = 1
        record.pending[run.start.id] = run.start.node_id
        if run.started_event is not None:
            meta["events"] = "1"
            self._append(record, {"e": run.started_event})
        self._runs[run.run_id] = record
        return True

    async def graph(self, key: str) -> str | None:
        """The stored graph text, or ``None``."""
        return self._graphs.get(key)

    async def meta(self, run_id: str) -> dict[str, str]:
        """The run's record (empty when there is no such run)."""
        run = self._runs.get(run_id)
        return dict(run.meta) if run is not None else {}

    async def context(self, run_id: str) -> dict[str, str]:
        """The run's encoded context."""
        run = self._runs.get(run_id)
        return dict(run.ctx) if run is not None else {}

    async def load(self, run_id: str, job_id: str) -> JobState:
        """Status, params, context and done record of a job."""
        run = self._runs.get(run_id)
        if run is None:
            return JobState(None, None, {}, None)
        meta = run.meta
        return JobState(
            meta.get("status"), meta.get("params"), dict(run.ctx), run.done.get(job_id), bool(meta.get("events")),
            meta.get("budget"), meta.get("usage"),
        )  # fmt: skip

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        """The atomic per-node step (the same steps as the Redis script, in Python)."""
        run = self._runs.get(run_id)
        if run is None or run.meta.get("status") not in ACTIVE_STATES:
            return Completion("skip", commit.action, ())
        previous = run.done.get(commit.job_id)
        if previous is not None:
            return previous
        if commit.expects:  # optimistic concurrency: refuse when an updated key changed meanwhile
            stale = {k: now for k, v in commit.expects.items() if (now := run.ctx.get(k, "")) != v}
            if stale:
                return Completion("conflict", commit.action, (), current=stale)
        run.meta["status"] = "running"
        run.ctx.update(commit.sets)
        for key in commit.deletes:
            run.ctx.pop(key, None)
        out: list[tuple[str, str]] = []
        for arrival in commit.arrivals:
            node = arrival.node_id
            if arrival.count <= 1:
                visit = run.visits[node] = run.visits.get(node, 0) + 1
                out.append((node, job_id(run_id, node, visit)))
                continue
            visit = run.open.get(node, 0)
            if not visit:
                visit = run.open[node] = run.visits[node] = run.visits.get(node, 0) + 1
            arrived = run.arrivals.setdefault((node, visit), set())
            arrived.add(commit.node_id)
            if len(arrived) >= arrival.count:
                del run.arrivals[(node, visit)]
                del run.open[node]
                out.append((node, job_id(run_id, node, visit)))
        for text in commit.events:
            self._append(run, {"e": text})
        for node, jid in out:
            run.pending[jid] = node
        run.pending.pop(commit.job_id, None)
        if run.open and (not commit.arrivals or not run.pending):  # a branch ended, or nothing runs
            for node in releasable(list(run.open), run.pending.values(), commit.joins):
                visit = run.open.pop(node)
                run.arrivals.pop((node, visit), None)
                jid = job_id(run_id, node, visit)
                out.append((node, jid))
                run.pending[jid] = node
        final = ""
        if not run.pending:
            run.meta.update(status="completed", last_action=commit.action, ended_at=_now())
            self._finish(run_id, run, "completed")
            final = "completed"
        run.done[commit.job_id] = Completion("dup", commit.action, tuple(out))
        return Completion("ok", commit.action, tuple(out), final)

    async def fail(self, run_id: str, failure: Failure) -> bool:
        """Mark the run failed if it is still active."""
        run = self._runs.get(run_id)
        if run is None or run.meta.get("status") not in ACTIVE_STATES:
            return False
        for text in failure.events:
            self._append(run, {"e": text})
        run.meta.update(
            status=failure.state, error_node=failure.node_id, error_phase=failure.phase, error_type=failure.error_type,
            error_message=failure.message, ended_at=_now(),
        )  # fmt: skip
        run.meta.update(failure.details)
        self._finish(run_id, run, failure.state)
        if failure.abort_running:
            self._topics.publish("control", f"cancel {run_id}")
        return True

    async def charge(self, run_id: str, charge: Charge) -> Usage:
        """Atomically add to the run's usage of a kind (the steps of ``RunStore.charge``)."""
        run = self._runs.get(run_id)
        if run is None or run.meta.get("status") not in ACTIVE_STATES:
            return Usage("inactive", 0.0)
        kind, limit = charge.kind, charge.limit
        used = run.usage.get(kind, 0.0)
        if charge.key is not None and (charge.key, kind) in run.charged:
            return Usage("ok", used)
        if charge.admit and limit is not None and used + charge.amount > limit:
            return Usage("exceeded", used)
        used = run.usage[kind] = used + charge.amount
        if charge.key is not None:
            run.charged.add((charge.key, kind))
        run.meta["usage"] = json.dumps(run.usage)
        return Usage("exceeded" if limit is not None and used > limit else "ok", used)

    async def cancel(self, run_id: str, reason: str) -> str:
        """Mark the run cancelled and tell every worker."""
        run = self._runs.get(run_id)
        if run is None:
            return ""
        status = run.meta.get("status", "")
        if status not in ACTIVE_STATES:
            return status
        run.meta.update(status="cancelled", cancel_reason=reason, ended_at=_now())
        self._finish(run_id, run, "cancelled")
        self._topics.publish("control", f"cancel {run_id}")
        return "cancelled"

    async def still_pending(self, run_id: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` are decided on and not finished."""
        run = self._runs.get(run_id)
        return [run is not None and jid in run.pending for jid in job_ids]

    async def add_events(self, run_id: str, events: Sequence[str]) -> None:
        """Append encoded events to the run's event log."""
        run = self._runs.get(run_id)
        if run is not None and run.meta.get("events"):
            for text in events:
                self._append(run, {"e": text})

    async def read_events(
        self, run_id: str, after: str, *, block: float | None, count: int = 500
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries after id ``after``, waiting up to ``block`` s for one."""
        run = self._runs.get(run_id)
        if run is None:
            return []
        entries = _after(run.stream, after)
        if not entries and block:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.appended.wait(), block)
            entries = _after(run.stream, after)
        return entries[:count]

    async def memo(self, run_id: str, job_id: str, key: str, value: str | None) -> str | None:
        """The value memoised for ``(job, key)``; with ``value``, store it first unless one exists."""
        run = self._runs.get(run_id)
        if run is None:
            return value
        if value is not None:
            run.memos.setdefault((job_id, key), value)
        return run.memos.get((job_id, key))

    def subscribe_run(self, run_id: str) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """Notifications when the run ends."""
        return self._topics.subscribe(f"run:{run_id}")

    def subscribe_control(self) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """``"cancel <run id>"`` messages."""
        return self._topics.subscribe("control")

    async def ping(self) -> None:
        """Always reachable."""

    async def aclose(self) -> None:
        """Nothing to release."""


def _after(stream: list[tuple[str, dict[str, str]]], after: str) -> list[tuple[str, dict[str, str]]]:
    mark = int(after.split("-")[0])
    return [entry for entry in stream if int(entry[0].split("-")[0]) > mark]


def _now() -> str:
    return f"{time.time():.6f}"


class MemoryJobQueue:
    """A [`JobQueue`][flowcraft.engine.JobQueue] in this process: at-least-once delivery,
    ``attempts`` deliveries per job, ids deduplicated while queued or running.

    Every [`serve`][flowcraft.engine.MemoryJobQueue.serve] loop on one queue takes jobs from the same line (several
    in-process workers share it); [`close`][flowcraft.engine.MemoryJobQueue.close] stops them all.
    """

    def __init__(self, *, attempts: int = 5, retry_delay: float = 0.01) -> None:
        self._line: asyncio.Queue[tuple[Job, int] | None] = asyncio.Queue()
        self._known: set[Any] = set()  # what `_key` gives for each job queued or running
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._closing = asyncio.Event()
        self._serving = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def _key(job: Job) -> Any:
        # a resumed job is a delivery of its own: the one that parked on the wait may still
        # be running when the resume comes, and must not swallow it
        return (job.id, job.wait) if job.resumed else job.id

    async def add(self, jobs: Sequence[Job]) -> None:
        """Enqueue ``jobs`` (a job still queued or running is skipped; a resumed job is
        not the delivery that parked on its wait)."""
        for job in jobs:
            key = self._key(job)
            if key not in self._known:
                self._known.add(key)
                self._line.put_nowait((job, 1))

    async def serve(
        self,
        processor: JobProcessor,
        *,
        concurrency: int,
        on_failed: JobFailed | None = None,
    ) -> None:
        """Run ``processor`` over jobs, ``concurrency`` at a time, until
        [`close`][flowcraft.engine.MemoryJobQueue.close]."""
        slots = asyncio.Semaphore(concurrency)
        self._serving += 1
        try:
            while not self._closing.is_set():
                item = await self._line.get()
                if item is None or self._closing.is_set():  # close() wakes each serving loop with a None
                    if item is not None:
                        self._line.put_nowait(item)
                    break
                job, attempt = item
                await slots.acquire()
                task = asyncio.ensure_future(self._deliver(processor, job, attempt, on_failed, slots))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self._serving -= 1

    async def _deliver(
        self,
        processor: JobProcessor,
        job: Job,
        attempt: int,
        on_failed: JobFailed | None,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            await processor(job)
        except Exception as error:
            if attempt < self._attempts and not self._closing.is_set():
                await asyncio.sleep(self._retry_delay * attempt)
                self._line.put_nowait((job, attempt + 1))
                return
            self._known.discard(self._key(job))
            if on_failed is not None:
                await on_failed(job, error)
            return
        finally:
            slots.release()
        self._known.discard(self._key(job))

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs; wait for running ones (``force``: cancel them)."""
        self._closing.set()
        for _ in range(self._serving):
            self._line.put_nowait(None)
        tasks = list(self._tasks)
        if force:
            for task in tasks:
                task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def aclose(self) -> None:
        """Nothing to release."""
