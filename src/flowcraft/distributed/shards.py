"""Scaling past one Redis: one logical queue split into several BullMQ queues ("shards").

[`ShardedJobQueue`][flowcraft.distributed.shards.ShardedJobQueue] is a
[`JobQueue`][flowcraft.engine.JobQueue] over ``queue_shards`` BullMQ queues: a job goes to
the shard [`shard_of`][flowcraft.distributed.keys.shard_of] its id (so a job added twice
meets itself there and is deduplicated), and a worker consumes every shard. Each shard's
name is a hash tag (``{flowcraft.0}``, ...), so on a Redis Cluster each shard's keys live
in one slot and the shards spread over the masters; the run keys are hash-tagged by run
id (``flowcraft:run:{<run id>}:*``), so each run lives on one master too. With the
defaults (one shard, no cluster) nothing of this is used.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.jobs import Job
from ..engine.protocols import JobFailed, JobProcessor
from .keys import queue_names, shard_of
from .queue import BullMQJobQueue

__all__ = ["ShardedJobQueue", "open_queue"]


class ShardedJobQueue:
    """One logical queue over several [`BullMQJobQueue`][flowcraft.distributed.BullMQJobQueue]s.

    Args:
        redis_url: a Redis URL (with ``cluster``: any node of the cluster).
        name: the logical queue name; shard ``i`` is the BullMQ queue ``{<name>.<i>}``.
        prefix: the key prefix.
        shards: how many BullMQ queues (>= 2; one queue needs no sharding).
        cluster: ``redis_url`` is a node of a Redis Cluster.
        **options: passed to each [`BullMQJobQueue`][flowcraft.distributed.BullMQJobQueue]
            (``lock_duration``, ``stalled_interval``, ...).

    A worker serving it splits its ``concurrency`` over the shards (at least one job each):
    jobs are spread evenly by id, so the shards fill alike.
    """

    def __init__(
        self, redis_url: str, *, name: str, prefix: str, shards: int, cluster: bool = False, **options: Any
    ) -> None:
        if shards < 2:
            raise ValueError(f"a sharded queue needs at least 2 shards, got {shards!r} (use BullMQJobQueue)")
        self.name = name
        self.shards = [
            BullMQJobQueue(redis_url, name=shard, prefix=prefix, cluster=cluster, **options)
            for shard in queue_names(name, shards, cluster=cluster)
        ]

    def preload_states(self, run_key_prefix: str, inline_limit: int, kept: Any = None, pooled: Any = None) -> None:
        """[`BullMQJobQueue.preload_states`][flowcraft.distributed.BullMQJobQueue.preload_states] on every shard."""
        for shard in self.shards:
            shard.preload_states(run_key_prefix, inline_limit, kept, pooled)

    def shard(self, job_id: str) -> BullMQJobQueue:
        """The shard that holds (or will hold) engine job ``job_id``."""
        return self.shards[shard_of(job_id, len(self.shards))]

    def _split(self, job_ids: Sequence[str]) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {}
        for job_id in job_ids:
            groups.setdefault(shard_of(job_id, len(self.shards)), []).append(job_id)
        return groups

    async def add(self, jobs: Sequence[Job]) -> None:
        """Add ``jobs``, each to its shard (one round trip per shard, concurrently)."""
        groups: dict[int, list[Job]] = {}
        for job in jobs:
            groups.setdefault(shard_of(job.id, len(self.shards)), []).append(job)
        await asyncio.gather(*(self.shards[i].add(group) for i, group in groups.items()))

    async def missing(self, job_ids: Sequence[str], waits: Mapping[str, str] | None = None) -> list[str]:
        """Which of ``job_ids`` their shard does not hold (``waits``: see
        [`BullMQJobQueue.missing`][flowcraft.distributed.BullMQJobQueue.missing])."""
        groups = self._split(job_ids)
        found = await asyncio.gather(*(self.shards[i].missing(ids, waits) for i, ids in groups.items()))
        lost = {job_id for ids in found for job_id in ids}
        return [job_id for job_id in job_ids if job_id in lost]

    async def counts(self) -> dict[str, int]:
        """Job counts by state, summed over the shards."""
        total: dict[str, int] = {}
        for counts in await asyncio.gather(*(shard.counts() for shard in self.shards)):
            for state, count in counts.items():
                total[state] = total.get(state, 0) + count
        return total

    async def state(self, job_id: str, wait: str | None = None) -> str:
        """The job's state in its shard (see [`BullMQJobQueue.state`][flowcraft.distributed.BullMQJobQueue.state])."""
        return await self.shard(job_id).state(job_id, wait)

    async def obliterate(self) -> None:
        """Delete every shard and its jobs (tests, benchmarks)."""
        await asyncio.gather(*(shard.obliterate() for shard in self.shards))

    async def serve(self, processor: JobProcessor, *, concurrency: int, on_failed: JobFailed | None = None) -> None:
        """Serve every shard until [`close`][flowcraft.distributed.shards.ShardedJobQueue.close]."""
        each = max(1, math.ceil(concurrency / len(self.shards)))
        tasks = [
            asyncio.ensure_future(shard.serve(processor, concurrency=each, on_failed=on_failed))
            for shard in self.shards
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs on every shard (``force``: hand running ones back at once)."""
        await asyncio.gather(*(shard.close(force=force) for shard in self.shards))

    async def aclose(self) -> None:
        """Close every shard's connections."""
        await asyncio.gather(*(shard.aclose() for shard in self.shards))


def open_queue(
    redis_url: str, *, name: str, prefix: str, shards: int = 1, cluster: bool = False, **options: Any
) -> BullMQJobQueue | ShardedJobQueue:
    """The job queue for ``name`` split into ``shards`` (one plain
    [`BullMQJobQueue`][flowcraft.distributed.BullMQJobQueue] by default; on a cluster its
    name is a hash tag)."""
    if shards > 1:
        return ShardedJobQueue(redis_url, name=name, prefix=prefix, shards=shards, cluster=cluster, **options)
    (bullmq_name,) = queue_names(name, 1, cluster=cluster)
    return BullMQJobQueue(redis_url, name=bullmq_name, prefix=prefix, cluster=cluster, **options)
