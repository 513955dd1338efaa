"""Distributed workers: [`Worker`][flowcraft.distributed.Worker] is the job engine's worker over Redis and BullMQ.

Run one from the command line (``flowcraft worker --registry pkg.mod:REGISTRY --redis
URL``) or from code (`Worker.run`). What one job does is described in
`flowcraft.engine.worker`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.worker import CRASH_ENV, JobWorker
from ..loggers import Logger
from .connection import MAX_CONNECTIONS
from .keys import DEFAULT_PREFIX, DEFAULT_QUEUE, RUN_TTL, Keys
from .queue import BullMQJobQueue
from .store import RedisRunStore

__all__ = ["CRASH_ENV", "Worker"]

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
        lock_duration: float = 30.0,
        stalled_interval: float = 30.0,
        run_ttl: int = RUN_TTL,
        middleware: Sequence[Any] = (),
        logger: Logger | None = None,
        max_connections: int | None = None,
    ) -> None:
        super().__init__(
            registry, dependencies=dependencies, concurrency=concurrency, middleware=middleware, logger=logger
        )
        self.redis_url = redis_url
        self.queue_name = queue
        self.keys = Keys(prefix)
        self._lock_duration = lock_duration
        self._stalled_interval = stalled_interval
        self._run_ttl = run_ttl
        self._max_connections = max_connections or max(MAX_CONNECTIONS, 2 * concurrency + 4)

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
