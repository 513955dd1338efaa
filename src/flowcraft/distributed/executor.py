"""The distributed client: [`DistributedExecutor`][flowcraft.distributed.DistributedExecutor] is
the job engine's client over
Redis ([`RedisRunStore`][flowcraft.distributed.RedisRunStore]) and BullMQ
([`BullMQJobQueue`][flowcraft.distributed.BullMQJobQueue])."""

from __future__ import annotations

from ..engine.client import JobExecutor, RunError, RunHandle, RunStatus, blueprint_of
from ..engine.jobs import RunSummary
from .connection import MAX_CONNECTIONS, POOL_TIMEOUT
from .keys import BLUEPRINT_TTL, DEFAULT_PREFIX, DEFAULT_QUEUE, RUN_TTL, queue_names
from .queue import BullMQJobQueue
from .shards import ShardedJobQueue, open_queue
from .store import RedisRunStore

__all__ = ["DistributedExecutor", "RunError", "RunHandle", "RunStatus", "blueprint_of"]


class DistributedExecutor(JobExecutor):
    """Runs flows as one queue job per node, on any number of [`Worker`][flowcraft.distributed.Worker] processes.

    Flows built from a blueprint, and programmatic flows named by a factory
    (``"package.module:function"``), run alike.

    Args:
        redis_url: ``redis://`` / ``rediss://`` URL (with auth if needed).
        queue, prefix: where jobs and keys go; workers must use the same.
        run_ttl: seconds a finished run's keys are kept.
        blueprint_ttl: seconds a stored graph is kept after its last run started.
        poll_interval: how often ``result()`` re-reads the status besides pub/sub.
        connection_grace: seconds ``result()`` rides out an unreachable Redis before raising.
        max_connections: size of the executor's Redis connection pool. Any number of
            concurrent ``start()``/``result()`` calls share it: a call that finds every
            connection busy waits for one (waiting ``result()`` calls hold none: pub/sub
            shares one connection).
        pool_timeout: seconds a call waits for a free connection before
            [`BackendPoolExhaustedError`][flowcraft.distributed.BackendPoolExhaustedError]
            (``None``: wait as long as it takes).
        cluster: ``redis_url`` is a node of a Redis Cluster (the others are found from
            it); every run's keys live in one slot (``{<run id>}``). Workers must agree.
        queue_shards: split the queue into this many BullMQ queues (``{<queue>.<i>}``),
            which a cluster spreads over its masters; workers must use the same number.

    Examples:
        ```python
        async with DistributedExecutor("redis://localhost:6379/0") as executor:
            action = await flow.run(ctx, executor=executor)        # flow built by GraphBuilder
            handle = await executor.start("myapp.flows:make_pipeline", {"n": 1})
            print(await handle.result(timeout=30))
        ```
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        queue: str = DEFAULT_QUEUE,
        prefix: str = DEFAULT_PREFIX,
        run_ttl: int = RUN_TTL,
        blueprint_ttl: int = BLUEPRINT_TTL,
        poll_interval: float = 1.0,
        connection_grace: float = 30.0,
        max_connections: int = MAX_CONNECTIONS,
        pool_timeout: float | None = POOL_TIMEOUT,
        cluster: bool = False,
        queue_shards: int = 1,
    ) -> None:
        store = RedisRunStore(
            redis_url, prefix=prefix, run_ttl=run_ttl, blueprint_ttl=blueprint_ttl, max_connections=max_connections,
            pool_timeout=pool_timeout, cluster=cluster, announce_queue=queue,
        )  # fmt: skip
        queue_names(queue, queue_shards, cluster=cluster)  # a bad name or shard count fails here, not at start()
        super().__init__(
            store=store,
            poll_interval=poll_interval,
            connection_grace=connection_grace,
        )
        self.redis_url = redis_url
        self.queue_name = queue
        self.prefix = prefix
        self.blueprint_ttl = blueprint_ttl
        self.cluster = cluster
        self.queue_shards = queue_shards

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """The runs under this prefix, newest first (``state``: only those in it).

        Scans every run's keys (see ``RedisRunStore.runs``); finished runs are listed
        until their keys expire (``run_ttl``).
        """
        store = self.store
        assert isinstance(store, RedisRunStore)
        return await store.runs(state, limit)

    def _open_queue(self) -> BullMQJobQueue | ShardedJobQueue:
        return open_queue(
            self.redis_url, name=self.queue_name, prefix=self.prefix, shards=self.queue_shards, cluster=self.cluster
        )
