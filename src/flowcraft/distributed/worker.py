"""Distributed workers: [`Worker`][flowcraft.distributed.Worker] is the job engine's worker over Redis and BullMQ.

Run one from the command line (``flowcraft worker --registry pkg.mod:REGISTRY --redis
URL``) or from code (`Worker.run`). What one job does is described in
`flowcraft.engine.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.jobs import ACTIVE_STATES, Job
from ..engine.worker import CRASH_ENV, GRAPH_CACHE_SIZE, JobWorker
from ..loggers import Logger
from .connection import MAX_CONNECTIONS
from .keys import DEFAULT_PREFIX, DEFAULT_QUEUE, RUN_TTL, Keys
from .queue import LOCK_DURATION, STALLED_INTERVAL, BullMQJobQueue
from .store import RedisRunStore

__all__ = ["CRASH_ENV", "RECONCILE_INTERVAL", "Worker"]

RECONCILE_INTERVAL = 60.0
"""Default seconds between reconciler passes (one worker at a time runs one)."""
RECONCILE_BATCH = 500
"""Runs checked per reconciler pass at most."""

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
        logger: the logger nodes receive (silent by default).

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
    ) -> None:
        super().__init__(
            registry, dependencies=dependencies, concurrency=concurrency, middleware=middleware, logger=logger,
            graph_cache_size=graph_cache_size,
        )  # fmt: skip
        self.redis_url = redis_url
        self.queue_name = queue
        self.keys = Keys(prefix)
        self._lock_duration = lock_duration
        self._stalled_interval = stalled_interval
        self._run_ttl = run_ttl
        self._max_connections = max_connections or max(MAX_CONNECTIONS, 2 * concurrency + 4)
        self.reconcile_interval = reconcile_interval

    async def _open(self) -> tuple[RedisRunStore, BullMQJobQueue]:
        store = RedisRunStore(
            self.redis_url, prefix=self.keys.prefix, run_ttl=self._run_ttl, max_connections=self._max_connections
        )
        queue = BullMQJobQueue(
            self.redis_url,
            name=self.queue_name,
            prefix=self.keys.prefix,
            lock_duration=self._lock_duration,
            stalled_interval=self._stalled_interval,
        )
        return store, queue

    async def run(self) -> None:
        """Process jobs (and run the reconciler) until [`close`][flowcraft.engine.JobWorker.close]."""
        reconciler = asyncio.ensure_future(self._reconcile_forever()) if self.reconcile_interval > 0 else None
        try:
            await super().run()
        finally:
            if reconciler is not None:
                reconciler.cancel()
                with contextlib.suppress(BaseException):
                    await reconciler

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
        queue does not hold. Returns how many jobs it enqueued.

        Enqueuing a job again is safe: job ids are deterministic, and a job whose commit
        is recorded only re-enqueues its own pending successors.
        """
        store, queue = self._store, self._queue
        if not isinstance(store, RedisRunStore) or not isinstance(queue, BullMQJobQueue):
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
            missing = await queue.missing(list(pending))
            if missing:
                actions = await store.incoming_actions(run_id, missing)
                await queue.add([Job(jid, run_id, pending[jid], graph, actions.get(jid)) for jid in missing])
                log.warning(
                    "run %s: %d pending job(s) were not in the queue; enqueued again: %s",
                    run_id, len(missing), ", ".join(missing),
                )  # fmt: skip
                enqueued += len(missing)
            await store.checked(run_id, active=True)
        return enqueued
