"""Distributed workers: [`Worker`][flowcraft.distributed.Worker] is the job engine's worker over Redis and BullMQ.

Run one from the command line (``flowcraft worker --registry pkg.mod:REGISTRY --redis
URL``) or from code (`Worker.run`). What one job does is described in
`flowcraft.engine.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..engine.jobs import ACTIVE_STATES, Job
from ..engine.worker import CRASH_ENV, GRAPH_CACHE_SIZE, JobWorker
from ..errors import UnknownNodeTypeError
from ..graph.registry import ensure_registry
from ..loggers import Logger
from .connection import MAX_CONNECTIONS, open_connections
from .keys import DEFAULT_PREFIX, DEFAULT_QUEUE, RUN_TTL, Keys, queue_names
from .queue import LOCK_DURATION, STALLED_INTERVAL, BullMQJobQueue, JobDeferred
from .shards import ShardedJobQueue, open_queue
from .store import RedisRunStore

__all__ = ["CRASH_ENV", "RECONCILE_INTERVAL", "Worker"]

RECONCILE_INTERVAL = 60.0
"""Default seconds between reconciler passes (one worker at a time runs one)."""
RECONCILE_BATCH = 500
"""Runs checked per reconciler pass at most."""
HEARTBEAT = 5.0
"""Seconds between a worker's renewals of its entry in the queue's worker list (a worker
not seen for 3 heartbeats is taken for dead)."""
HANDOFF_DELAY = 0.05
"""Seconds before a job this worker cannot run is offered again, when a live worker can run it."""
WAIT_DELAY = 1.0
"""Seconds before it is offered again when no live worker can run it (the run waits for one)."""
UNKNOWN_TYPE_GRACE = 60.0
"""Default seconds a run waits, after it started, for a live worker that knows its node types."""

log = logging.getLogger("flowcraft.distributed.worker")


class Worker(JobWorker):
    """Runs node jobs of distributed runs. Stateless between jobs; start any number.

    Args:
        registry: node type → class (the mapping the builder uses); factory-named
            flows need none.
        redis_url: ``redis://`` / ``rediss://`` URL, with auth if needed.
        queue, prefix: must match the [`DistributedExecutor`][flowcraft.distributed.DistributedExecutor]'s.
        dependencies: keyword arguments for node constructors.
        concurrency: jobs run at once by this worker.
        lock_duration, stalled_interval: seconds; a job held by a dead worker is
            handed to another after about their sum.
        middleware: wraps every node this worker runs (in addition to the flow's own).
        max_connections: size of the worker's Redis connection pool for run state
            (calls wait for a free connection; default: enough for ``concurrency``).
        reconcile_interval: seconds between passes of the reconciler, which
            re-enqueues the pending jobs of active runs that the queue no longer holds
            (a start job whose enqueue failed, jobs lost with Redis data); one worker
            at a time runs it, and a run is checked at most once per interval, after
            it has existed that long. ``0`` turns it off on this worker.
        graph_cache_size: graphs kept hydrated (least recently used dropped first).
        unknown_type_grace: seconds after a run started during which a job whose node
            types this worker does not know is handed back to the queue (for a worker of
            another application sharing it) even when no live worker knows them; after
            that, with none, the run fails naming the types.
        logger: the logger nodes receive (silent by default).
        cluster: ``redis_url`` is a node of a Redis Cluster (as for the executor).
        queue_shards: the number of BullMQ queues the queue is split into (the
            executor's); this worker consumes all of them, its ``concurrency`` split
            evenly over them.

    Examples:
        ```python
        worker = Worker(REGISTRY, "redis://localhost:6379/0")
        await worker.run()          # until await worker.close() or a signal
        ```
    """

    def __init__(
        self,
        registry: Mapping[str, Any] | None = None,
        redis_url: str = "redis://localhost:6379/0",
        *,
        queue: str = DEFAULT_QUEUE,
        prefix: str = DEFAULT_PREFIX,
        dependencies: Mapping[str, Any] | None = None,
        concurrency: int = 10,
        lock_duration: float = LOCK_DURATION,
        stalled_interval: float = STALLED_INTERVAL,
        run_ttl: int = RUN_TTL,
        middleware: Sequence[Any] = (),
        logger: Logger | None = None,
        max_connections: int | None = None,
        reconcile_interval: float = RECONCILE_INTERVAL,
        graph_cache_size: int = GRAPH_CACHE_SIZE,
        unknown_type_grace: float = UNKNOWN_TYPE_GRACE,
        cluster: bool = False,
        queue_shards: int = 1,
    ) -> None:
        super().__init__(
            registry, dependencies=dependencies, concurrency=concurrency, middleware=middleware, logger=logger,
            graph_cache_size=graph_cache_size, fire_timers=True,
        )  # fmt: skip
        self.redis_url = redis_url
        self.queue_name = queue
        self.keys = Keys(prefix)
        queue_names(queue, queue_shards, cluster=cluster)  # a bad name or shard count fails here
        self.cluster = cluster
        self.queue_shards = queue_shards
        self._lock_duration = lock_duration
        self._stalled_interval = stalled_interval
        self._run_ttl = run_ttl
        self._max_connections = max_connections or max(MAX_CONNECTIONS, 2 * concurrency + 4)
        self.reconcile_interval = reconcile_interval
        self.unknown_type_grace = unknown_type_grace
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._types = sorted(ensure_registry(self.registry))
        self._graph_types: dict[str, frozenset[str]] = {}
        self._told: dict[str, float] = {}
        self._ahead: set[asyncio.Task[None]] = set()  # graphs being hydrated ahead (see _on_control)
        self.carry_state = True  # BullMQ's completion hands this worker the successor it enqueued

    async def _open(self) -> tuple[RedisRunStore, BullMQJobQueue | ShardedJobQueue]:
        store = RedisRunStore(
            self.redis_url, prefix=self.keys.prefix, run_ttl=self._run_ttl, max_connections=self._max_connections,
            cluster=self.cluster,
        )  # fmt: skip
        queue = open_queue(
            self.redis_url, name=self.queue_name, prefix=self.keys.prefix, shards=self.queue_shards,
            cluster=self.cluster, lock_duration=self._lock_duration, stalled_interval=self._stalled_interval,
        )  # fmt: skip
        if not self.cluster:  # a completion also reads the state of the job it fetches (not on a cluster)
            queue.preload_states(f"{self.keys.prefix}:run:{{", store.inline_limit, self._kept, store.client)
        return store, queue

    async def connect(self) -> None:
        """Open the backends (``run()`` does it), and on a single Redis as many of the
        store's pooled connections as jobs run at once: the first jobs of a run find them
        open instead of each opening one (a connect and its handshake)."""
        await super().connect()
        if not self.cluster and isinstance(self._store, RedisRunStore):
            await open_connections(self._store.client, self.concurrency)

    async def run(self) -> None:
        """Process jobs (and run the reconciler) until [`close`][flowcraft.engine.JobWorker.close]."""
        helpers = [asyncio.ensure_future(self._heartbeat_forever())]
        if self.reconcile_interval > 0:
            helpers.append(asyncio.ensure_future(self._reconcile_forever()))
        try:
            await super().run()
        finally:
            for helper in [*helpers, *self._ahead]:
                helper.cancel()
                with contextlib.suppress(BaseException):
                    await helper

    # ---- graphs hydrated ahead -------------------------------------------------------------

    def _on_control(self, text: str) -> None:
        verb, _, rest = text.partition(" ")
        if verb != "graph":
            super()._on_control(text)
            return
        key, _, queue = rest.partition(" ")
        if queue == self.queue_name and key and key not in self._hydrated and key not in self._hydrating:
            task = asyncio.ensure_future(self._hydrate_ahead(key))
            self._ahead.add(task)
            task.add_done_callback(self._ahead.discard)

    async def _hydrate_ahead(self, key: str) -> None:
        """Hydrate a graph whose run has just started on this worker's queue (announced by
        the executor's `create`), so that its jobs find it ready on every worker, not only
        on the one that runs its first job: without it, every other worker builds the
        graph when the first job of the fan-out reaches it, and runs nothing meanwhile."""
        try:
            await self._hydrate(key)
        except Exception as error:  # another application's graph, an expired one: its jobs will tell
            log.debug("graph %s not hydrated ahead: %s", key, error)

    # ---- which worker runs which graph ---------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        """Keep this worker's entry (its node types) in the queue's worker list; removed on exit."""
        key = self.keys.workers(self.queue_name)
        entry = {"types": self._types}
        try:
            while True:
                store = self._store
                if isinstance(store, RedisRunStore):
                    try:
                        await store.client.hset(key, self.worker_id, json.dumps({**entry, "seen": time.time()}))
                    except Exception as error:
                        log.debug("worker list not updated: %s", error)
                await asyncio.sleep(HEARTBEAT)
        finally:
            store = self._store
            if isinstance(store, RedisRunStore):
                with contextlib.suppress(Exception):
                    await store.client.hdel(key, self.worker_id)

    async def _live_workers(self) -> dict[str, frozenset[str]]:
        """The other live workers of this queue and the node types each can run."""
        store = self._store
        if not isinstance(store, RedisRunStore):
            return {}
        entries = cast(dict[str, str], await store.client.hgetall(self.keys.workers(self.queue_name)))
        live: dict[str, frozenset[str]] = {}
        stale: list[str] = []
        now = time.time()
        for worker_id, text in entries.items():
            try:
                entry = json.loads(text)
                seen, types = float(entry["seen"]), frozenset(str(t) for t in entry["types"])
            except (ValueError, KeyError, TypeError):
                continue
            if now - seen > 20 * HEARTBEAT:
                stale.append(worker_id)
            elif now - seen <= 3 * HEARTBEAT and worker_id != self.worker_id:
                live[worker_id] = types
        if stale:
            await store.client.hdel(self.keys.workers(self.queue_name), *stale)
        return live

    async def _types_of(self, graph_key: str) -> frozenset[str]:
        found = self._graph_types.get(graph_key)
        if found is None:
            text = await self.store.graph(graph_key)
            nodes = json.loads(text).get("nodes", []) if text else []
            found = frozenset(str(node.get("type")) for node in nodes if isinstance(node, dict))
            if len(self._graph_types) >= 256:
                self._graph_types.clear()
            self._graph_types[graph_key] = found
        return found

    async def _unknown_node_type(self, job: Job, error: UnknownNodeTypeError) -> None:
        """Another application's job (the queue is shared): hand it back to the queue for a
        worker that knows its node types, instead of failing its run. With no such live
        worker, the run waits for one (the job is offered again every second) until
        ``unknown_type_grace`` seconds after it started, then fails naming the types."""
        missing = (await self._types_of(job.graph)) - set(self._types)
        capable = [wid for wid, types in (await self._live_workers()).items() if missing <= types]
        if not capable:
            created = (await self.store.meta(job.run_id)).get("created_at")
            if created is None or time.time() - float(created) > self.unknown_type_grace:
                what = ", ".join(sorted(missing)) or "?"
                await super()._unknown_node_type(job, UnknownNodeTypeError(
                    f"{error} No live worker on queue {self.queue_name!r} knows node type(s) {what} "
                    f"{self.unknown_type_grace:g} s after the run started: start a worker whose registry has "
                    "them (same queue and prefix), or check the graph's types.",
                    node_id=error.node_id, path=error.path,
                ))  # fmt: skip
                return
        delay = HANDOFF_DELAY if capable else WAIT_DELAY
        now = time.monotonic()
        if now - self._told.get(job.graph, float("-inf")) > 60.0:  # once a minute per graph
            self._told[job.graph] = now
            what = ", ".join(sorted(missing)) or str(error)
            if capable:
                log.warning(
                    "run %s: this worker does not know node type(s) %s; handing its jobs to a worker that does "
                    "(%s)", job.run_id, what, capable[0],
                )  # fmt: skip
            else:
                log.warning(
                    "run %s: no live worker on queue %r knows node type(s) %s; the run waits for one (start a "
                    "worker whose registry has them, or cancel the run)", job.run_id, self.queue_name, what,
                )  # fmt: skip
        raise JobDeferred(delay, f"node type(s) {sorted(missing)} unknown to worker {self.worker_id}")

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval * random.uniform(0.5, 1.0))
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("reconciler pass failed: %s", error)

    async def reconcile(self) -> int:
        """One reconciler pass, unless another worker ran one less than
        ``reconcile_interval`` ago: re-enqueue the pending jobs of active runs that the
        queue does not hold (not those parked on waits), and arm their waits' timers again
        if one is missing. Returns how many jobs it enqueued.

        Enqueuing a job again is safe: job ids are deterministic, and a job whose commit
        is recorded only re-enqueues its own pending successors.
        """
        store, queue = self._store, self._queue
        if not isinstance(store, RedisRunStore) or not isinstance(queue, (BullMQJobQueue, ShardedJobQueue)):
            return 0
        interval = max(self.reconcile_interval, 0.1)
        lock = await store.client.set(self.keys.reconciler, uuid.uuid4().hex, nx=True, px=int(interval * 1000))
        if not lock:
            return 0
        enqueued = 0
        for run_id in await store.runs_to_check(time.time() - interval, RECONCILE_BATCH):
            status, graph, pending = await store.pending_jobs(run_id)
            if status not in ACTIVE_STATES or graph is None:
                await store.checked(run_id, active=False)
                continue
            # parked: waiting for a person or a timer, not lost; resumed: on the queue as the
            # delivery resumed after that wait (its own job id), not as the one that parked
            parked, resumed = await store.wait_jobs(run_id)
            missing = [jid for jid in await queue.missing(list(pending), resumed) if jid not in parked]
            if missing:
                actions = await store.incoming_actions(run_id, missing)
                await queue.add([
                    Job(jid, run_id, pending[jid], graph, actions.get(jid), jid in resumed, resumed.get(jid))
                    for jid in missing
                ])  # fmt: skip
                log.warning(
                    "run %s: %d pending job(s) were not in the queue; enqueued again: %s",
                    run_id, len(missing), ", ".join(missing),
                )  # fmt: skip
                enqueued += len(missing)
            await store.checked(run_id, active=True)
        return enqueued
