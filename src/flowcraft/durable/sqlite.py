"""[`SqliteRunStore`][flowcraft.durable.sqlite.SqliteRunStore]: the embedded, durable
[`RunStore`][flowcraft.engine.RunStore].

One file, stdlib ``sqlite3``, no server. Every call runs on one background thread
(the event loop never blocks on the disk); every write is one ``BEGIN IMMEDIATE``
transaction, so a node's commit (context delta, action, done record, successors,
joins) is atomic and deduplicated by job id, as the Redis store's Lua script is.
Several processes may share one file: SQLite serialises writers, ``busy_timeout``
waits for the lock, and a write that still finds the file locked is retried, so
"database is locked" never reaches the caller.

Beyond the engine's protocol it keeps what durable runs need: each run's lease (which
process runs it, until when), the jobs still to run with the action they carry (so a
new process can pick them up), memos, run listings, and retention.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any, TypeVar

from ..clock import Clock, current
from ..engine.errors import StoreError
from ..engine.jobs import (
    ACTIVE_STATES,
    FINAL_STATES,
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
    RunSummary,
    Usage,
    WaitRecord,
    job_id,
    job_id_prefix,
)
from ..engine.topics import Topics, TopicSubscription
from ..topology import releasable
from .sqlite_schema import RUN_TABLES, open_database

__all__ = ["SqliteRunStore"]

T = TypeVar("T")

log = logging.getLogger("flowcraft.durable.sqlite")

DEFAULT_RETENTION = 7 * 24 * 3600.0
"""Seconds a finished run is kept (7 days)."""

_LOCK_RETRY_SECONDS = 60.0
_CHECKPOINT_EVERY = 500
"""Commits on the loop's connection between two WAL checkpoints (run on the thread)."""


class _Busy(Exception):
    """The loop's connection found the file locked: the call goes to the thread."""


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


class SqliteRunStore:
    """A [`RunStore`][flowcraft.engine.RunStore] in one SQLite file, shared by any number of processes.

    Args:
        path: the file (created with its folder's permissions); ``":memory:"`` for a
            throwaway store.
        synchronous: ``"NORMAL"`` (the default: a commit survives a process crash; the
            last commits before a power loss may not) or ``"FULL"`` (survives power loss,
            slower).
        busy_timeout: seconds a write waits for another process's lock before retrying.
        clock: where times come from (``clock.time()``; default: the current
            ``flowcraft.clock.Clock``), for tests of leases and retention.
        retention: seconds a finished run is kept before
            [`cleanup`][flowcraft.durable.SqliteRunStore.cleanup] removes it.

    Raises:
        StoreError: the file is corrupted, another application's, written by a newer
            Flowcraft, or cannot be created (raised by the first call that opens it).

    Examples:
        ```python
        store = SqliteRunStore("runs.db")
        async with DurableExecutor(store, registry=REGISTRY) as executor:
            ...
        ```
    """

    def __init__(
        self,
        path: str = "flowcraft-runs.db",
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        retention: float = DEFAULT_RETENTION,
        clock: Clock | None = None,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "OFF", "EXTRA"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if retention <= 0:
            raise ValueError(f"retention must be > 0 seconds, got {retention!r}")
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.retention = retention
        self._clock = clock
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowcraft-sqlite")
        self._db: sqlite3.Connection | None = None  # the thread's: waits for locks
        self._fast: sqlite3.Connection | None = None  # the event loop's: never waits
        self._inflight = 0
        self._fast_commits = 0
        self._checkpointing: asyncio.Future[None] | None = None
        self._topics = Topics()
        self._control_seen = 0.0
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteRunStore({self.path!r})"

    def _time(self) -> float:
        return (self._clock if self._clock is not None else current()).time()

    # ---- where statements run ---------------------------------------------------------------
    #
    # A call runs at once on the event loop's own connection, which never waits for a lock
    # (busy_timeout 0): in WAL mode a read or a small commit takes tens of microseconds,
    # less than a hop to another thread. A call that would wait (another process holds
    # the write lock), and every call made while one is waiting, goes to the background
    # thread, whose connection waits (busy_timeout) and retries: the loop never blocks on
    # a lock, and calls keep their order. WAL checkpoints run on the thread too.

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = open_database(self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout)
        return self._db

    def _open_fast(self) -> None:
        """Open the loop's connection (on the thread: opening may wait for another process)."""
        if self._fast is None:
            fast = open_database(self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout)
            fast.execute("PRAGMA busy_timeout = 0")
            fast.execute("PRAGMA wal_autocheckpoint = 0")
            self._fast = fast

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)``: on the loop when nothing waits, else on the thread."""
        if self._closed:
            raise StoreError(f"The run store {self.path!r} is closed", path=self.path)
        if not self._inflight and self._fast is not None:
            try:
                return fn(self._fast, *args)
            except _Busy:
                pass
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise self._store_error(error) from error
        return await self._on_thread(fn, args)

    async def _on_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self._inflight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._run_on_thread, fn, args)
        finally:
            self._inflight -= 1

    def _run_on_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        db = self._connection()
        self._open_fast()
        return fn(db, *args)

    async def _tx(self, body: Callable[..., T], *args: Any) -> T:
        """Run ``body(db, *args)`` in one write transaction (see [`_call`][flowcraft.durable.SqliteRunStore._call])."""
        fast = self._fast
        if fast is not None and not self._inflight and not self._closed:  # _call's first step, inline
            try:
                result: T = self._write(fast, body, *args)
            except _Busy:
                result = await self._on_thread(self._write, (body, *args))
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise self._store_error(error) from error
                result = await self._on_thread(self._write, (body, *args))
        else:
            result = await self._call(self._write, body, *args)
        if self._fast_commits >= _CHECKPOINT_EVERY and self._checkpointing is None:
            self._fast_commits = 0
            self._start_checkpoint()
        return result

    def _start_checkpoint(self) -> None:
        """Checkpoint the WAL on the thread, while the loop goes on committing (a passive
        checkpoint never holds the write lock; it is off the path of the commits, which are
        durable in the WAL already). Calls that go to the thread meanwhile run after it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._thread, self._run_on_thread, _checkpoint, ())
        self._checkpointing = future

        def done(finished: asyncio.Future[None]) -> None:
            self._checkpointing = None
            if not finished.cancelled() and finished.exception() is not None:
                log.warning("WAL checkpoint of %s failed: %s", self.path, finished.exception())

        future.add_done_callback(done)

    def _write(self, db: sqlite3.Connection, body: Callable[..., T], *args: Any) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction. On the loop's connection a
        held lock raises ``_Busy`` at once; on the thread's it is waited for
        and retried."""
        waits = db is not self._fast
        deadline = 0.0  # set at the first retry
        delay = 0.002
        while True:
            began = False
            try:
                db.execute("BEGIN IMMEDIATE")
                began = True
                result = body(db, *args)
                db.execute("COMMIT")
            except BaseException as error:
                if began:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if isinstance(error, sqlite3.OperationalError) and _locked(error):
                    if not waits:
                        raise _Busy from error
                    if not deadline:
                        deadline = time.monotonic() + _LOCK_RETRY_SECONDS
                    if time.monotonic() < deadline:
                        time.sleep(delay)
                        delay = min(delay * 2, 0.1)
                        continue
                if isinstance(error, sqlite3.Error):
                    raise self._store_error(error) from error
                raise
            if not waits:
                self._fast_commits += 1
            return result

    def _store_error(self, error: sqlite3.Error) -> StoreError:
        return StoreError(f"Run store {self.path!r}: {error}", path=self.path)

    # ---- the RunStore protocol ---------------------------------------------------------------

    async def create(self, run: NewRun) -> bool:
        """Store the graph and a new run with its start job pending; ``False`` if the run exists."""
        created = await self._tx(_create, run, self._time())
        return created

    async def graph(self, key: str) -> str | None:
        """The stored graph text for ``key``, or ``None``."""
        return await self._call(_graph, key)

    async def meta(self, run_id: str) -> dict[str, str]:
        """The run's record (empty when there is no such run)."""
        return await self._call(_meta, run_id)

    async def context(self, run_id: str) -> dict[str, str]:
        """The run's encoded context."""
        return await self._call(_context, run_id)

    async def load(self, run_id: str, job_id: str) -> JobState:
        """Status, params, context and done record of a job, in one read."""
        return await self._call(_load, run_id, job_id)

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        """The atomic per-node step: delta, done record, arrivals, releases, pending jobs, end of run."""
        completion = await self._tx(_commit, run_id, commit, self._time())
        if completion.final:
            self._topics.publish(f"run:{run_id}", completion.final)
        return completion

    # ---- waits and timers ------------------------------------------------------------------

    async def park(self, run_id: str, park: Park) -> str:
        """Store the wait and park its job (atomically, once); the run's state after it
        (``"awaiting"`` when nothing else of the run is left to run)."""
        state = await self._tx(_park, run_id, park, self._time())
        if state == "awaiting":
            self._topics.publish(f"run:{run_id}", "awaiting")
        return state

    async def wait(self, run_id: str, wait_id: str) -> WaitRecord | None:
        """The stored wait, or ``None``."""
        return await self._call(_wait, run_id, wait_id)

    async def waits(self, run_id: str, *, open_only: bool = True) -> list[WaitRecord]:
        """The run's waits (the open ones), oldest first."""
        return await self._call(_waits, run_id, open_only)

    async def resolve(self, run_id: str, wait_id: str, resolution: Resolution) -> Resolved:
        """Compare-and-set on the wait being open: resolve it, unpark its job, run the run."""
        resolved = await self._tx(_resolve, run_id, wait_id, resolution, self._time())
        return resolved

    async def due(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """Open waits whose time has come (``fire_at <= now``), earliest first: ``(run id, wait id)``."""
        return await self._call(_due, now, limit)

    async def next_fire_at(self) -> float | None:
        """The earliest ``fire_at`` of an open wait, or ``None``."""
        return await self._call(_next_fire_at)

    async def fail(self, run_id: str, failure: Failure) -> bool:
        """Mark the run failed (or ``failure.state``) if it is still active."""
        failed = await self._tx(_fail, run_id, failure, self._time())
        if failed:
            self._topics.publish(f"run:{run_id}", failure.state)
            if failure.abort_running:
                self._topics.publish("control", f"cancel {run_id}")
        return failed

    async def charge(self, run_id: str, charge: Charge) -> Usage:
        """Atomically add to the run's usage of a kind (the steps of ``RunStore.charge``)."""
        return await self._tx(_charge, run_id, charge)

    async def cancel(self, run_id: str, reason: str) -> str:
        """Mark the run cancelled; the state it ends in (``""``: no such run)."""
        state = await self._tx(_cancel, run_id, reason, self._time())
        if state == "cancelled":
            self._topics.publish(f"run:{run_id}", "cancelled")
            self._topics.publish("control", f"cancel {run_id}")
        return state

    async def still_pending(self, run_id: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` are decided on and not finished."""
        return await self._call(_still_pending, run_id, list(job_ids))

    async def add_events(self, run_id: str, events: Sequence[str]) -> None:
        """Append encoded events to the run's event log (if it records events)."""
        if events:
            await self._tx(_add_events, run_id, [("e", text) for text in events])
            self._topics.publish(f"events:{run_id}", "")

    async def read_events(
        self, run_id: str, after: str, *, block: float | None, count: int = 500
    ) -> list[tuple[str, dict[str, str]]]:
        """Event-log entries after id ``after`` (waiting up to ``block`` s for one)."""
        mark = int(after.split("-")[0])
        entries = await self._call(_read_events, run_id, mark, count)
        if entries or not block:
            return entries
        deadline = time.monotonic() + block
        async with self._topics.subscribe(f"events:{run_id}") as subscription:
            while not entries and time.monotonic() < deadline:
                await subscription.get(min(0.05, max(0.0, deadline - time.monotonic())))
                entries = await self._call(_read_events, run_id, mark, count)
        return entries

    def subscribe_run(self, run_id: str) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """Notifications when the run ends (in this process; other processes are seen by polling)."""
        return self._topics.subscribe(f"run:{run_id}")

    def subscribe_control(self) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """``"cancel <run id>"`` messages: from this process at once, from others when polled."""
        return self._topics.subscribe("control", self._poll_cancelled)

    async def _poll_cancelled(self) -> str | None:
        since, self._control_seen = self._control_seen, self._time()
        found = await self._call(_cancelled_since, since - 1.0)
        for run_id in found[1:]:
            self._topics.publish("control", f"cancel {run_id}")
        return f"cancel {found[0]}" if found else None

    async def ping(self) -> None:
        """Open the file (raising [`StoreError`][flowcraft.durable.sqlite.StoreError] if it cannot be used)."""
        await self._call(lambda db: None)

    async def aclose(self) -> None:
        """Close the file and stop the background thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_connection)
        self._thread.shutdown(wait=False)
        if self._fast is not None:
            self._fast.close()
            self._fast = None

    def _close_connection(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._db.close()
            self._db = None

    # ---- durable runs ----------------------------------------------------------------------

    async def memo(self, run_id: str, job_id: str, key: str, value: str | None) -> str | None:
        """The value stored for ``(job, key)``; with ``value``, store it first unless one exists."""
        return await self._tx(_memo, run_id, job_id, key, value)

    async def lease(self, run_id: str, owner: str, ttl: float, *, expect: str | None = None) -> bool:
        """Take (or renew) the run's lease for ``owner`` until now + ``ttl``.

        Succeeds when the run is active and its lease is expired, free, already
        ``owner``'s, or held by ``expect`` (a dead owner being taken over).
        """
        return await self._tx(_lease, run_id, owner, ttl, expect, self._time())

    async def renew(self, owner: str, ttl: float) -> int:
        """Extend every active run leased to ``owner``; how many."""
        return await self._tx(_renew, owner, ttl, self._time())

    async def release(self, owner: str) -> None:
        """Give up ``owner``'s leases at once (a clean shutdown: another process may take over)."""
        await self._tx(_release, owner)

    async def orphans(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        """Active runs as ``(run id, owner, lease until)``, expired leases first."""
        return await self._call(_orphans, limit)

    async def pending_jobs(self, run_id: str) -> list[Job]:
        """The run's jobs decided on and not finished, ready to enqueue again."""
        return await self._call(_pending_jobs, run_id)

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """Runs, newest first (only those in ``state`` when given)."""
        return await self._call(_runs, state, limit)

    async def set_extra(self, run_id: str, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into the run's free-form record (e.g. where its registry comes from)."""
        await self._tx(_set_extra, run_id, json.dumps(extra))

    async def cleanup(self, *, now: float | None = None) -> int:
        """Remove finished runs older than ``retention`` (and graphs no run uses); how many runs."""
        return await self._tx(_cleanup, (now if now is not None else self._time()) - self.retention)


def _locked(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return "locked" in text or "busy" in text


# ---- statements (run on the store's thread; ``db`` is its connection) ----------------------


def _create(db: sqlite3.Connection, run: NewRun, now: float) -> bool:
    db.execute(
        "INSERT INTO graphs (key, text, used_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET used_at = excluded.used_at",
        (run.graph, run.graph_text, now),
    )
    found = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
    if found is not None:
        return False
    db.execute(
        "INSERT INTO runs (run_id, graph, status, params, created_at, updated_at, events, budget) "
        "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
        (run.run_id, run.graph, run.params, now, now, 1 if run.started_event is not None else 0, run.budget),
    )
    db.executemany(
        "INSERT INTO context (run_id, key, value) VALUES (?, ?, ?)",
        [(run.run_id, key, value) for key, value in run.context.items()],
    )
    db.execute("INSERT INTO visits (run_id, node_id, visits) VALUES (?, ?, 1)", (run.run_id, run.start.node_id))
    db.execute(
        "INSERT INTO jobs (run_id, job_id, node_id, action) VALUES (?, ?, ?, ?)",
        (run.run_id, run.start.id, run.start.node_id, run.start.action),
    )
    if run.started_event is not None:
        db.execute("INSERT INTO events (run_id, field, value) VALUES (?, 'e', ?)", (run.run_id, run.started_event))
    return True


def _graph(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT text FROM graphs WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


_META_COLUMNS = (
    "status", "graph", "params", "created_at", "updated_at", "ended_at", "last_action", "error_node",
    "error_phase", "error_type", "error_message", "cancel_reason", "events", "owner", "lease_until", "extra",
    "budget", "usage", "details",
)  # fmt: skip


def _meta(db: sqlite3.Connection, run_id: str) -> dict[str, str]:
    row = db.execute(f"SELECT {', '.join(_META_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return {}
    meta: dict[str, str] = {}
    for name, value in zip(_META_COLUMNS, row, strict=True):
        if value is None or (name == "events" and not value):
            continue
        meta[name] = f"{value:.6f}" if isinstance(value, float) else str(value)
    meta["blueprint"] = meta.pop("graph")
    meta.update(json.loads(meta.pop("details", "{}")))
    return meta


def _context(db: sqlite3.Connection, run_id: str) -> dict[str, str]:
    return {key: value for key, value in db.execute("SELECT key, value FROM context WHERE run_id = ?", (run_id,))}


def _load(db: sqlite3.Connection, run_id: str, job_id: str) -> JobState:
    row = db.execute(
        "SELECT r.status, r.params, r.events, j.done, r.budget, r.usage FROM runs r "
        "LEFT JOIN jobs j ON j.run_id = r.run_id AND j.job_id = ? WHERE r.run_id = ?",
        (job_id, run_id),
    ).fetchone()
    if row is None:
        return JobState(None, None, {}, None)
    done = _completion(row[3]) if row[3] is not None else None
    return JobState(row[0], row[1], _context(db, run_id), done, bool(row[2]), row[4], row[5])


def _completion(text: str) -> Completion:
    data = json.loads(text)
    return Completion("dup", data["a"], tuple((node, jid) for node, jid in data["s"]))


def _stale(db: sqlite3.Connection, run_id: str, commit: Commit) -> dict[str, str]:
    """The keys of ``commit.expects`` whose value changed (optimistic concurrency), with their values now."""
    expects = commit.expects
    marks = ", ".join("?" * len(expects))
    now = dict(db.execute(f"SELECT key, value FROM context WHERE run_id = ? AND key IN ({marks})",
                          (run_id, *expects)))  # fmt: skip
    return {key: now.get(key, "") for key, value in expects.items() if now.get(key, "") != value}


def _status_and_done(db: sqlite3.Connection, run_id: str, job: str) -> Any:
    """``(run status, the job's done record or None)``, or ``None`` when the run is gone."""
    return db.execute(
        "SELECT r.status, j.done FROM runs r LEFT JOIN jobs j ON j.run_id = r.run_id AND j.job_id = ? "
        "WHERE r.run_id = ?",
        (job, run_id),
    ).fetchone()


def _commit(db: sqlite3.Connection, run_id: str, commit: Commit, now: float) -> Completion:
    if commit.expects:  # atomic updates: refuse, writing nothing, when an expected key changed
        row = _status_and_done(db, run_id, commit.job_id)
        if row is None or row[0] not in ACTIVE_STATES:
            return Completion("skip", commit.action, ())
        if row[1] is not None:  # committed before: a redelivery
            return _completion(row[1])
        if stale := _stale(db, run_id, commit):
            return Completion("conflict", commit.action, (), current=stale)
    # The done record is written first, with the successors most commits decide on (the
    # first visits of their arrivals), in the statement that checks that the run is active
    # and the job not committed before; it is written again at the end if they differ.
    guess = [(a.node_id, job_id(run_id, a.node_id, 1)) for a in commit.arrivals]
    row = db.execute(_MARK_DONE, (_done_record(commit.action, guess), run_id, commit.job_id, run_id, run_id)).fetchone()
    missing = False  # the job has no row (its done record is inserted at the end)
    if row is None:  # not marked: the run has ended, the job was committed before, or it has no row
        row = _status_and_done(db, run_id, commit.job_id)
        if row is None or row[0] not in ACTIVE_STATES:
            return Completion("skip", commit.action, ())
        if row[1] is not None:  # committed before: a redelivery
            return _completion(row[1])
        missing = True
    status = row[0]
    sets = commit.sets
    if sets:
        if len(sets) == 1:
            ((key, value),) = sets.items()
            db.execute(_SET_CONTEXT, (run_id, key, value))
        else:
            db.executemany(_SET_CONTEXT, [(run_id, key, value) for key, value in sets.items()])
    if commit.deletes:
        db.executemany("DELETE FROM context WHERE run_id = ? AND key = ?", [(run_id, key) for key in commit.deletes])
    out: list[tuple[str, str]] = []
    unwritten: list[tuple[str, str]] = []  # the successors of ``out`` whose job rows are still to write
    for arrival in commit.arrivals:
        node = arrival.node_id
        if arrival.count <= 1:
            first = job_id(run_id, node, 1)
            if db.execute(_FIRST_VISIT, (run_id, first, node, commit.action)).rowcount:
                out.append((node, first))  # its first visit: the job row is written, no counter kept
            else:
                out.append((node, job_id(run_id, node, _next_visit(db, run_id, node))))
                unwritten.append(out[-1])
            continue
        found = db.execute("SELECT open FROM visits WHERE run_id = ? AND node_id = ?", (run_id, node)).fetchone()
        visit = found[0] if found is not None and found[0] else _bump(db, run_id, node, open_join=True)
        db.execute(
            "INSERT OR IGNORE INTO arrivals (run_id, node_id, visit, source) VALUES (?, ?, ?, ?)",
            (run_id, node, visit, commit.node_id),
        )
        arrived = db.execute(
            "SELECT count(*) FROM arrivals WHERE run_id = ? AND node_id = ? AND visit = ?", (run_id, node, visit)
        ).fetchone()[0]
        if arrived >= arrival.count:
            _close_join(db, run_id, node, visit)
            out.append((node, job_id(run_id, node, visit)))
            unwritten.append(out[-1])
    if commit.events:
        _add_events(db, run_id, [("e", text) for text in commit.events])
    # the other successors' rows are written with the done record, at the end
    pending: list[str] | None = None  # read only when needed: a successor is pending
    if not out:
        pending = _pending_nodes(db, run_id, commit.job_id)
    if commit.joins and (not commit.arrivals or not pending):  # a branch ended, or nothing runs
        waiting = {node: visit for node, visit in db.execute(
            "SELECT node_id, open FROM visits WHERE run_id = ? AND open > 0", (run_id,)
        )}  # fmt: skip
        if waiting:
            if pending is None:
                pending = _pending_nodes(db, run_id, commit.job_id) + [node for node, _ in out]
            released = []
            for node in releasable(list(waiting), pending, commit.joins):
                visit = waiting[node]
                _close_join(db, run_id, node, visit)
                released.append((node, job_id(run_id, node, visit)))
            if released:
                out.extend(released)
                unwritten.extend(released)
                pending.extend(node for node, _ in released)
    final = ""
    if not out and not pending:
        db.execute(
            "UPDATE runs SET status = 'completed', last_action = ?, ended_at = ?, updated_at = ? WHERE run_id = ?",
            (commit.action, now, now, run_id),
        )
        _end_events(db, run_id, "completed")
        final = "completed"
    elif not out and _all_parked(db, run_id, commit.job_id):  # what is left waits for input or a timer
        db.execute("UPDATE runs SET status = 'awaiting', updated_at = ? WHERE run_id = ?", (now, run_id))
        final = "awaiting"
    elif status == "pending":  # the first commit (updated_at otherwise moves with the lease)
        db.execute("UPDATE runs SET status = 'running', updated_at = ? WHERE run_id = ?", (now, run_id))
    if not unwritten and not missing:
        if out != guess:
            done = _done_record(commit.action, out)
            db.execute("UPDATE jobs SET done = ? WHERE run_id = ? AND job_id = ?", (done, run_id, commit.job_id))
    else:
        done = _done_record(commit.action, out)
        rows: list[tuple[str, str, str, str | None, str | None]] = [
            (run_id, jid, node, commit.action, None) for node, jid in unwritten
        ]
        rows.append((run_id, commit.job_id, commit.node_id, None, done))
        db.executemany(
            "INSERT INTO jobs (run_id, job_id, node_id, action, done) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, job_id) DO UPDATE SET done = coalesce(excluded.done, jobs.done)",
            rows,
        )
    return Completion("ok", commit.action, tuple(out), final)


def _done_record(action: str, successors: list[tuple[str, str]]) -> str:
    """The done record of a job, ``{"a": action, "s": [[node id, job id], ...]}`` (JSON, read
    by ``_completion``), written without a ``json.dumps`` of a whole structure."""
    if len(successors) == 1:
        ((node, jid),) = successors
        pairs = f"[{_json_str(node)},{_json_str(jid)}]"
    else:
        pairs = ",".join([f"[{_json_str(node)},{_json_str(jid)}]" for node, jid in successors])
    return f'{{"a":{_json_str(action)},"s":[{pairs}]}}'


_MARK_DONE = (
    "UPDATE jobs SET done = ? WHERE run_id = ? AND job_id = ? AND done IS NULL AND EXISTS (SELECT 1 FROM runs "
    f"WHERE run_id = ? AND status IN ({', '.join(repr(state) for state in sorted(ACTIVE_STATES))})) "
    "RETURNING (SELECT status FROM runs WHERE run_id = ?)"
)
_SET_CONTEXT = (
    "INSERT INTO context (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
_FIRST_VISIT = (
    "INSERT INTO jobs (run_id, job_id, node_id, action) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, job_id) DO NOTHING"
)


def _next_visit(db: sqlite3.Connection, run_id: str, node: str) -> int:
    """The next visit of a node that is not a join, after its first.

    A first visit keeps no counter (its job row is the record: see ``_commit``); from the
    second on the node has a row in ``visits``, started from the count of its job rows
    (each visit of a node that is not a join has one).
    """
    row = db.execute(
        "UPDATE visits SET visits = visits + 1 WHERE run_id = ? AND node_id = ? RETURNING visits", (run_id, node)
    ).fetchone()
    if row is not None:
        return int(row[0])
    prefix = job_id_prefix(run_id, node)
    row = db.execute(
        "INSERT INTO visits (run_id, node_id, visits) SELECT ?, ?, count(*) + 1 FROM jobs "
        "WHERE run_id = ? AND job_id >= ? AND job_id < ? AND node_id = ? RETURNING visits",
        (run_id, node, run_id, prefix, prefix[:-1] + ";", node),
    ).fetchone()
    return int(row[0])


def _pending_nodes(db: sqlite3.Connection, run_id: str, other_than: str) -> list[str]:
    """The nodes of the run's jobs decided on and not finished (but ``other_than``)."""
    rows = db.execute(
        "SELECT node_id FROM jobs WHERE run_id = ? AND done IS NULL AND job_id != ?", (run_id, other_than)
    )
    return [row[0] for row in rows]


def _all_parked(db: sqlite3.Connection, run_id: str, other_than: str) -> bool:
    """Whether every unfinished job of the run (but ``other_than``) is parked on a wait."""
    row = db.execute(
        "SELECT 1 FROM jobs WHERE run_id = ? AND done IS NULL AND parked = 0 AND job_id != ? LIMIT 1",
        (run_id, other_than),
    ).fetchone()
    return row is None


def _bump(db: sqlite3.Connection, run_id: str, node: str, *, open_join: bool) -> int:
    row = db.execute(
        "INSERT INTO visits (run_id, node_id, visits, open) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (run_id, node_id) DO UPDATE SET visits = visits + 1, "
        "open = CASE WHEN ? THEN visits + 1 ELSE open END RETURNING visits",
        (run_id, node, 1 if open_join else 0, open_join),
    ).fetchone()
    return int(row[0])


def _close_join(db: sqlite3.Connection, run_id: str, node: str, visit: int) -> None:
    db.execute("UPDATE visits SET open = 0 WHERE run_id = ? AND node_id = ?", (run_id, node))
    db.execute("DELETE FROM arrivals WHERE run_id = ? AND node_id = ? AND visit = ?", (run_id, node, visit))


def _end_events(db: sqlite3.Connection, run_id: str, state: str) -> None:
    if db.execute("SELECT events FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]:
        db.execute("INSERT INTO events (run_id, field, value) VALUES (?, 'end', ?)", (run_id, state))


def _fail(db: sqlite3.Connection, run_id: str, failure: Failure, now: float) -> bool:
    row = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None or row[0] not in ACTIVE_STATES:
        return False
    if failure.events:
        _add_events(db, run_id, [("e", text) for text in failure.events])
    db.execute(
        "UPDATE runs SET status = ?, error_node = ?, error_phase = ?, error_type = ?, error_message = ?, "
        "ended_at = ?, updated_at = ?, details = ? WHERE run_id = ?",
        (failure.state, failure.node_id, failure.phase, failure.error_type, failure.message, now, now,
         json.dumps(dict(failure.details)) if failure.details else None, run_id),
    )  # fmt: skip
    _close_waits(db, run_id, now)
    _end_events(db, run_id, failure.state)
    return True


def _charge(db: sqlite3.Connection, run_id: str, charge: Charge) -> Usage:
    row = db.execute("SELECT status, usage FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None or row[0] not in ACTIVE_STATES:
        return Usage("inactive", 0.0)
    usage: dict[str, float] = json.loads(row[1]) if row[1] else {}
    kind, limit = charge.kind, charge.limit
    used = float(usage.get(kind, 0.0))
    if charge.key is not None:
        seen = db.execute(
            "INSERT OR IGNORE INTO charges (run_id, key, kind) VALUES (?, ?, ?)", (run_id, charge.key, kind)
        ).rowcount
        if not seen:
            return Usage("ok", used)
    if charge.admit and limit is not None and used + charge.amount > limit:
        if charge.key is not None:  # refused: the key was not applied
            db.execute("DELETE FROM charges WHERE run_id = ? AND key = ? AND kind = ?", (run_id, charge.key, kind))
        return Usage("exceeded", used)
    used = usage[kind] = used + charge.amount
    db.execute("UPDATE runs SET usage = ? WHERE run_id = ?", (json.dumps(usage), run_id))
    return Usage("exceeded" if limit is not None and used > limit else "ok", used)


def _cancel(db: sqlite3.Connection, run_id: str, reason: str, now: float) -> str:
    row = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return ""
    if row[0] in FINAL_STATES:
        return str(row[0])
    db.execute(
        "UPDATE runs SET status = 'cancelled', cancel_reason = ?, ended_at = ?, updated_at = ? WHERE run_id = ?",
        (reason, now, now, run_id),
    )
    _close_waits(db, run_id, now)
    _end_events(db, run_id, "cancelled")
    return "cancelled"


def _still_pending(db: sqlite3.Connection, run_id: str, job_ids: list[str]) -> list[bool]:
    flags = []
    for jid in job_ids:
        row = db.execute("SELECT done FROM jobs WHERE run_id = ? AND job_id = ?", (run_id, jid)).fetchone()
        flags.append(row is not None and row[0] is None)
    return flags


def _add_events(db: sqlite3.Connection, run_id: str, fields: list[tuple[str, str]]) -> None:
    row = db.execute("SELECT events FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is not None and row[0]:
        db.executemany(
            "INSERT INTO events (run_id, field, value) VALUES (?, ?, ?)", [(run_id, f, v) for f, v in fields]
        )


def _read_events(db: sqlite3.Connection, run_id: str, after: int, count: int) -> list[tuple[str, dict[str, str]]]:
    rows = db.execute(
        "SELECT id, field, value FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?", (run_id, after, count)
    )
    return [(f"{row[0]}-0", {row[1]: row[2]}) for row in rows]


def _cancelled_since(db: sqlite3.Connection, since: float) -> list[str]:
    return [
        row[0] for row in db.execute("SELECT run_id FROM runs WHERE status = 'cancelled' AND updated_at >= ?", (since,))
    ]


def _memo(db: sqlite3.Connection, run_id: str, job_id: str, key: str, value: str | None) -> str | None:
    if value is not None:
        db.execute(
            "INSERT OR IGNORE INTO memos (run_id, job_id, key, value) VALUES (?, ?, ?, ?)", (run_id, job_id, key, value)
        )
    row = db.execute(
        "SELECT value FROM memos WHERE run_id = ? AND job_id = ? AND key = ?", (run_id, job_id, key)
    ).fetchone()
    return None if row is None else str(row[0])


def _lease(db: sqlite3.Connection, run_id: str, owner: str, ttl: float, expect: str | None, now: float) -> bool:
    cursor = db.execute(
        "UPDATE runs SET owner = ?, lease_until = ? WHERE run_id = ? AND status IN ('pending', 'running') "
        "AND (owner IS NULL OR owner = ? OR lease_until < ? OR owner = ?)",
        (owner, now + ttl, run_id, owner, now, expect),
    )
    return cursor.rowcount == 1


def _renew(db: sqlite3.Connection, owner: str, ttl: float, now: float) -> int:
    cursor = db.execute(
        "UPDATE runs SET lease_until = ?, updated_at = ? WHERE owner = ? AND status IN ('pending', 'running')",
        (now + ttl, now, owner),
    )
    return cursor.rowcount


def _release(db: sqlite3.Connection, owner: str) -> None:
    db.execute("UPDATE runs SET lease_until = 0 WHERE owner = ? AND status IN ('pending', 'running')", (owner,))


def _orphans(db: sqlite3.Connection, limit: int) -> list[tuple[str, str, float]]:
    rows = db.execute(
        "SELECT run_id, coalesce(owner, ''), lease_until FROM runs WHERE status IN ('pending', 'running') "
        "ORDER BY lease_until LIMIT ?",
        (limit,),
    )
    return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]


def _pending_jobs(db: sqlite3.Connection, run_id: str) -> list[Job]:
    row = db.execute("SELECT graph FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return []
    graph = str(row[0])
    rows = db.execute(
        "SELECT job_id, node_id, action FROM jobs WHERE run_id = ? AND done IS NULL AND parked = 0", (run_id,)
    )
    # (a scan of the run's own rows, by the primary key's run_id prefix)
    return [Job(str(r[0]), run_id, str(r[1]), graph, r[2]) for r in rows]


def _runs(db: sqlite3.Connection, state: str | None, limit: int) -> list[RunSummary]:
    if state is None:
        rows = db.execute(
            "SELECT run_id, status, created_at, updated_at FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
        )
    else:
        rows = db.execute(
            "SELECT run_id, status, created_at, updated_at FROM runs WHERE status = ? ORDER BY created_at DESC LIMIT ?",
            (state, limit),
        )
    return [RunSummary(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]


def _set_extra(db: sqlite3.Connection, run_id: str, extra: str) -> None:
    row = db.execute("SELECT extra FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is not None:
        merged = {**json.loads(row[0]), **json.loads(extra)}
        db.execute("UPDATE runs SET extra = ? WHERE run_id = ?", (json.dumps(merged), run_id))


def _cleanup(db: sqlite3.Connection, before: float) -> int:
    finished = ", ".join(f"'{state}'" for state in sorted(FINAL_STATES))
    old = [
        row[0]
        for row in db.execute(f"SELECT run_id FROM runs WHERE status IN ({finished}) AND ended_at < ?", (before,))
    ]
    for table in RUN_TABLES:
        db.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(run_id,) for run_id in old])
    db.executemany("DELETE FROM runs WHERE run_id = ?", [(run_id,) for run_id in old])
    db.execute("DELETE FROM graphs WHERE key NOT IN (SELECT graph FROM runs) AND used_at < ?", (before,))
    return len(old)


# ---- waits ----------------------------------------------------------------------------------


def _park(db: sqlite3.Connection, run_id: str, park: Park, now: float) -> str:
    row = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None or row[0] not in ACTIVE_STATES:
        return "" if row is None else str(row[0])
    db.execute(
        "INSERT OR IGNORE INTO waits (run_id, wait_id, job_id, node_id, kind, request, actions, fire_at, on_timeout, "
        "state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
        (run_id, park.wait_id, park.job_id, park.node_id, park.kind, park.request, json.dumps(list(park.actions)),
         park.fire_at, park.on_timeout, now),
    )  # fmt: skip
    db.execute("UPDATE jobs SET parked = 1 WHERE run_id = ? AND job_id = ? AND done IS NULL", (run_id, park.job_id))
    if _all_parked(db, run_id, ""):
        db.execute("UPDATE runs SET status = 'awaiting', updated_at = ? WHERE run_id = ?", (now, run_id))
        return "awaiting"
    return str(row[0])


_WAIT_COLUMNS = (
    "job_id, wait_id, node_id, kind, request, actions, fire_at, on_timeout, state, value, action, resolve_key"
)


def _wait_record(row: Any) -> WaitRecord:
    park = Park(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])), row[6], row[7])
    return WaitRecord(park, row[8], row[9], row[10], row[11])


def _wait(db: sqlite3.Connection, run_id: str, wait_id: str) -> WaitRecord | None:
    row = db.execute(
        f"SELECT {_WAIT_COLUMNS} FROM waits WHERE run_id = ? AND wait_id = ?", (run_id, wait_id)
    ).fetchone()
    return None if row is None else _wait_record(row)


def _waits(db: sqlite3.Connection, run_id: str, open_only: bool) -> list[WaitRecord]:
    where = " AND state = 'open'" if open_only else ""
    rows = db.execute(f"SELECT {_WAIT_COLUMNS} FROM waits WHERE run_id = ?{where} ORDER BY created_at", (run_id,))
    return [_wait_record(row) for row in rows]


def _resolve(db: sqlite3.Connection, run_id: str, wait_id: str, resolution: Resolution, now: float) -> Resolved:
    run = db.execute("SELECT status, graph FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if run is None:
        return Resolved("unknown")
    record = _wait(db, run_id, wait_id)
    if record is None:
        return Resolved("unknown", state=str(run[0]))
    if run[0] not in ACTIVE_STATES:
        return Resolved("ended", state=str(run[0]), record=record)
    if record.state != "open":
        same = (
            resolution.key is not None and record.key == resolution.key
            and record.value == resolution.value and record.action == resolution.action
        )  # fmt: skip
        return Resolved("same" if same else "taken", state=str(run[0]), record=record)
    db.execute(
        "UPDATE waits SET state = 'resolved', value = ?, action = ?, resolve_key = ?, resolved_at = ? "
        "WHERE run_id = ? AND wait_id = ?",
        (resolution.value, resolution.action, resolution.key, now, run_id, wait_id),
    )
    job_row = db.execute(
        "UPDATE jobs SET parked = 0 WHERE run_id = ? AND job_id = ? AND done IS NULL RETURNING node_id, action",
        (run_id, record.park.job_id),
    ).fetchone()
    db.execute(
        "UPDATE runs SET status = 'running', updated_at = ?, owner = NULL, lease_until = 0 WHERE run_id = ?",
        (now, run_id),
    )
    job = None
    if job_row is not None:
        # the wait it continues names the delivery (as RedisRunStore.resolve does): a job that
        # parks again (a retry timer) gets a resumed delivery of its own each time
        job = Job(record.park.job_id, run_id, str(job_row[0]), str(run[1]), job_row[1], resumed=True, wait=wait_id)
    return Resolved("ok", job, "running", record)


def _close_waits(db: sqlite3.Connection, run_id: str, now: float) -> None:
    """A run that stopped has no open wait (its timers must not fire, nobody can resume it)."""
    db.execute("UPDATE waits SET state = 'closed', resolved_at = ? WHERE run_id = ? AND state = 'open'", (now, run_id))


def _due(db: sqlite3.Connection, now: float, limit: int) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT run_id, wait_id FROM waits WHERE state = 'open' AND fire_at IS NOT NULL AND fire_at <= ? "
        "ORDER BY fire_at LIMIT ?",
        (now, limit),
    )
    return [(str(row[0]), str(row[1])) for row in rows]


def _next_fire_at(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT min(fire_at) FROM waits WHERE state = 'open' AND fire_at IS NOT NULL").fetchone()
    return None if row is None or row[0] is None else float(row[0])
