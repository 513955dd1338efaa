"""Where the dashboard's runs come from: a run store file or Redis, behind one small seam.

[`Backend`][flowcraft.ui.backend.Backend] is what the pages call: a page of the runs
list, one run (status, waits, context, graph, events), resume and cancel. Store errors
become [`StoreUnavailable`][flowcraft.ui.backend.StoreUnavailable] (a 503 page), unknown
runs [`RunNotFoundError`][flowcraft.engine.RunNotFoundError] (a 404 page).

The dashboard never takes over another process's runs: its store lists no orphans, so
opening it recovers nothing. A run it resumes goes on in the dashboard's process (the
wait node's ``post`` and what follows run there, as with ``flowcraft resume``), with the
registry given to ``flowcraft ui --registry`` or, failing that, the one the run was
started with by ``flowcraft run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

from ..durable import DurableExecutor, SqliteRunStore
from ..engine.client import JobExecutor, RunHandle, RunStatus
from ..engine.codec import decode
from ..engine.errors import BackendError, RunNotFoundError, StoreError
from ..engine.eventlog import EVENT_FIELD, decode_event
from ..engine.jobs import RunSummary
from ..events import RunEvent
from ..waits import Wait

__all__ = [
    "RUN_STATES",
    "Backend",
    "ContextEntry",
    "RedisBackend",
    "RunListing",
    "RunView",
    "SqliteBackend",
    "StoreUnavailable",
]

RUN_STATES = ("pending", "running", "awaiting", "completed", "failed", "cancelled", "blocked")
"""The states a run can be in, in the order the dashboard lists them."""


class StoreUnavailable(Exception):
    """The run store cannot be read now (its file is gone, Redis is down): a 503 page."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunListing:
    """One page of the runs list: its ``rows``, how many runs match (``total``), and the
    count of runs in each state (of the whole store, whatever the filter)."""

    rows: list[RunSummary]
    total: int
    counts: dict[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class ContextEntry:
    """One context key: its decoded ``value``, or ``error`` when it cannot be decoded
    (then ``raw`` is the stored text)."""

    key: str
    value: Any = None
    error: str | None = None
    raw: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RunView:
    """What the run page shows: the status, the open waits, the context, the stored
    graph (text) and whether the run records events."""

    status: RunStatus
    waits: list[Wait]
    context: list[ContextEntry]
    graph: str | None
    events: bool
    meta: dict[str, str]


class Backend(Protocol):
    """The dashboard's view of a run store (see the module docstring)."""

    description: str
    """Where the runs are, for the page header (no credentials)."""
    can_resume: bool
    """Whether waits can be resumed from the dashboard."""

    async def listing(self, state: str | None, search: str, offset: int, limit: int) -> RunListing:
        """A page of runs, newest first."""
        ...

    async def run(self, run_id: str) -> RunView:
        """One run (raises ``RunNotFoundError``)."""
        ...

    async def events(self, run_id: str, after: str) -> list[tuple[str, RunEvent]]:
        """The run's events after entry ``after`` (``"0-0"``: from the first)."""
        ...

    async def resume(self, run_id: str, wait_id: str, value: Any, action: str | None, key: str) -> None:
        """Resolve an open wait (the run goes on in this process)."""
        ...

    async def cancel(self, run_id: str, reason: str) -> str:
        """Cancel the run; the state it ends in (raises ``RunNotFoundError``)."""
        ...

    async def aclose(self) -> None:
        """Close connections; stop runs this process resumed (they are handed over)."""
        ...


def _decode_context(raw: dict[str, str]) -> list[ContextEntry]:
    out = []
    for key in sorted(raw):
        try:
            out.append(ContextEntry(key, decode(raw[key], key=key)))
        except Exception as error:
            out.append(ContextEntry(key, error=f"{type(error).__name__}: {error}", raw=raw[key]))
    return out


def _decode_events(entries: Sequence[tuple[str, dict[str, str]]]) -> list[tuple[str, RunEvent]]:
    out = []
    for entry_id, fields in entries:
        text = fields.get(EVENT_FIELD)
        if text is None:
            continue
        try:
            event = decode_event(text)
        except Exception:
            continue  # an unreadable event is skipped, as RunHandle.events() does
        if event is not None:
            out.append((entry_id, event))
    return out


def _cancelled(run_id: str, state: str) -> str:
    if not state:
        raise RunNotFoundError(f"Run {run_id!r} does not exist", run_id=run_id)
    return state


class _NoTakeover(SqliteRunStore):
    """A store that lists no orphaned runs: the dashboard never takes a run over."""

    async def orphans(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        return []


# ---- SQLite ---------------------------------------------------------------------------------


class SqliteBackend:
    """Runs in a run store file (``flowcraft ui --store FILE``).

    Args:
        path: the file ``flowcraft run --store`` or a ``DurableExecutor`` wrote.
        registry: ``module:NAME`` of the node registry that resumed runs go on with
            (default: the one the run was started with by ``flowcraft run``).
    """

    can_resume = True

    def __init__(self, path: str, *, registry: str | None = None) -> None:
        self.path = os.path.abspath(path)
        self.description = f"store {path}"
        self.registry = registry
        self._reader: SqliteRunStore | None = None
        self._client: JobExecutor | None = None
        self._executors: dict[str | None, DurableExecutor] = {}
        self._lock = asyncio.Lock()

    def _check(self) -> None:
        if not os.path.isfile(self.path):
            raise StoreUnavailable(
                f"The run store {self.path} is gone (deleted or moved): nothing can be shown or changed; "
                "restart `flowcraft ui` with the store's new path"
            )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        self._check()
        try:
            yield
        except StoreError as error:
            raise StoreUnavailable(str(error)) from error

    def _store(self) -> SqliteRunStore:
        if self._reader is None:
            self._reader = _NoTakeover(self.path)
            self._client = JobExecutor(store=self._reader)
        return self._reader

    def _handle(self, run_id: str) -> RunHandle:
        self._store()
        assert self._client is not None
        return RunHandle(self._client, run_id)

    # ---- the list ----

    async def listing(self, state: str | None, search: str, offset: int, limit: int) -> RunListing:
        """A page of runs, newest first (one read-only connection, SQL paging)."""
        with self._errors():
            return await asyncio.to_thread(self._listing, state, search, offset, limit)

    def _listing(self, state: str | None, search: str, offset: int, limit: int) -> RunListing:
        uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=5.0)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"Cannot open the run store {self.path}: {error}") from error
        try:
            where, params = [], []
            if state is not None:
                where.append("status = ?")
                params.append(state)
            if search:
                escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                where.append("run_id LIKE ? ESCAPE '\\'")
                params.append(f"%{escaped}%")
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            rows = db.execute(
                f"SELECT run_id, status, created_at, updated_at FROM runs {clause} "
                "ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            total = db.execute(f"SELECT count(*) FROM runs {clause}", params).fetchone()[0]
            counts = dict(db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        except sqlite3.Error as error:
            raise StoreUnavailable(f"Cannot read the run store {self.path}: {error}") from error
        finally:
            db.close()
        summaries = [RunSummary(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]
        return RunListing(summaries, int(total), {str(k): int(v) for k, v in counts.items()})

    # ---- one run ----

    async def run(self, run_id: str) -> RunView:
        """One run: status, open waits, context, stored graph."""
        with self._errors():
            store = self._store()
            handle = self._handle(run_id)
            status = await handle.status()
            meta = await store.meta(run_id)
            waits = await handle.waits()
            context = _decode_context(await store.context(run_id))
            graph = await store.graph(meta.get("blueprint", ""))
            return RunView(status, waits, context, graph, bool(meta.get("events")), meta)

    async def events(self, run_id: str, after: str) -> list[tuple[str, RunEvent]]:
        """The run's events after ``after``."""
        with self._errors():
            return _decode_events(await self._store().read_events(run_id, after, block=None))

    async def cancel(self, run_id: str, reason: str) -> str:
        """Cancel the run (any process running it stops starting nodes); the state it ends in."""
        with self._errors():
            return _cancelled(run_id, await self._store().cancel(run_id, reason))

    async def resume(self, run_id: str, wait_id: str, value: Any, action: str | None, key: str) -> None:
        """Resolve the wait; the run goes on in this process."""
        with self._errors():
            meta = await self._store().meta(run_id)
            if not meta:
                raise RunNotFoundError(f"Run {run_id!r} does not exist in {self.path}", run_id=run_id)
            extra: dict[str, Any] = json.loads(meta.get("extra") or "{}")
            ref = self.registry or extra.get("registry")
            executor = await self._executor(ref, extra.get("builder") or {})
            await executor.resume(run_id, wait_id, value, action=action, idempotency_key=key)

    async def _executor(self, ref: str | None, builder_options: dict[str, Any]) -> DurableExecutor:
        async with self._lock:
            found = self._executors.get(ref)
            if found is not None:
                return found
            registry = dependencies = None
            if ref is not None:
                # local import: the CLI's registry loading, only when a run is resumed
                from ..cli.loading import BuilderOptions, load_builder

                builder = await asyncio.to_thread(load_builder, ref, BuilderOptions.from_dict(builder_options))
                registry, dependencies = builder.registry, builder.dependencies
            executor = DurableExecutor(_NoTakeover(self.path), registry=registry, dependencies=dependencies)
            await executor.__aenter__()
            self._executors[ref] = executor
            return executor

    async def aclose(self) -> None:
        """Hand resumed runs over and close the store."""
        executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            with contextlib.suppress(Exception):
                await executor.aclose(force=True)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(Exception):
                await reader.aclose()


# ---- Redis -----------------------------------------------------------------------------------


class RedisBackend:
    """Runs on Redis (``flowcraft ui --redis URL``): list, run pages, resume of waits (the
    workers run the run on) and cancel.

    The list reads every run's summary (``RedisRunStore.runs``: a ``SCAN``), cached
    for ``cache_seconds`` so that paging and filtering do not scan again. ``cluster`` and
    ``queue_shards`` are the [`DistributedExecutor`][flowcraft.distributed.DistributedExecutor]'s.
    """

    can_resume = False

    def __init__(self, url: str, *, queue: str = "flowcraft", prefix: str = "flowcraft",
                 cache_seconds: float = 2.0, cluster: bool = False, queue_shards: int = 1) -> None:  # fmt: skip
        # local import: the redis extra, only for --redis
        from ..distributed import DistributedExecutor

        scheme, sep, rest = url.partition("://")
        self.description = "redis " + scheme + sep + ("***@" + rest.split("@", 1)[1] if "@" in rest else rest)
        self._executor = DistributedExecutor(
            url, queue=queue, prefix=prefix, cluster=cluster, queue_shards=queue_shards
        )
        self._cache: tuple[float, list[RunSummary]] | None = None
        self.cache_seconds = cache_seconds

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (BackendError, ConnectionError, OSError) as error:
            raise StoreUnavailable(f"Redis cannot be reached ({self.description}): {error}") from error

    async def listing(self, state: str | None, search: str, offset: int, limit: int) -> RunListing:
        """A page of runs, newest first."""
        async with self._errors():
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] > self.cache_seconds:
                self._cache = (now, await self._executor.runs(None, limit=1_000_000))
            every = self._cache[1]
        counts: dict[str, int] = {}
        for summary in every:
            counts[summary.state] = counts.get(summary.state, 0) + 1
        chosen = [s for s in every if (state is None or s.state == state) and (not search or search in s.run_id)]
        return RunListing(chosen[offset : offset + limit], len(chosen), counts)

    async def run(self, run_id: str) -> RunView:
        """One run: status, context, stored graph (no waits on Redis yet)."""
        async with self._errors():
            store = self._executor.store
            handle = RunHandle(self._executor, run_id)
            status = await handle.status()
            meta = await store.meta(run_id)
            context = _decode_context(await store.context(run_id))
            graph = await store.graph(meta.get("blueprint", "")) if meta.get("blueprint") else None
            return RunView(status, await handle.waits(), context, graph, bool(meta.get("events")), meta)

    async def events(self, run_id: str, after: str) -> list[tuple[str, RunEvent]]:
        """The run's events after ``after``."""
        async with self._errors():
            return _decode_events(await self._executor.store.read_events(run_id, after, block=None))

    async def resume(self, run_id: str, wait_id: str, value: Any, action: str | None, key: str) -> None:
        """Resolve the wait; the workers run the run on."""
        async with self._errors():
            await self._executor.resume(run_id, wait_id, value, action=action, idempotency_key=key)

    async def cancel(self, run_id: str, reason: str) -> str:
        """Cancel the run (its workers stop starting nodes); the state it ends in."""
        async with self._errors():
            state = await self._executor.store.cancel(run_id, reason)
        self._cache = None
        return _cancelled(run_id, state)

    async def aclose(self) -> None:
        """Close the Redis connections."""
        with contextlib.suppress(Exception):
            await self._executor.aclose()
