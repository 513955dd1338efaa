"""Fault injection: kill -9 at every node boundary, duplicate delivery, lost updates."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft import TypedContext
from flowcraft.distributed import Worker
from flowcraft.distributed.keys import Keys
from flowcraft.distributed.queue import BullMQJobQueue
from flowcraft.engine import Job
from flowcraft.engine.plan import blueprint_hash, canonical_json
from flowcraft.graph import BlueprintExecutor

from .conftest import Space

FAN = d.fan_out(4, delay=0.2)


def expected(graph: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    bx = BlueprintExecutor(d.build(graph), d.REGISTRY)
    ctx = TypedContext()
    return asyncio.run(bx.flow.run(ctx, executor=bx)), ctx.to_dict()


POINTS = ["before_node", "during_node", "after_context_write", "after_join_update", "before_enqueue", "after_enqueue"]


# after_join_update / before_enqueue are the same atomic step as after_context_write;
# for the join (no successors) they add nothing, so they are run for the branch only.
CASES = [(p, "b1") for p in POINTS] + [(p, "join") for p in ("before_node", "during_node", "after_context_write")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("point", "target"), CASES)
def test_kill_9_at_a_node_boundary_still_completes_correctly(space: Space, point: str, target: str) -> None:
    """A worker SIGKILLs itself at ``point`` while running ``target``; another worker
    takes the stalled jobs over: same result as in memory, the join ran exactly once."""
    victim = space.start_worker(crash_at=f"{point}:{target}")
    victim.wait_ready()
    bp = d.build(FAN)

    async def main() -> tuple[Any, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start(bp)
            code = await asyncio.to_thread(victim.wait_exit, 30)
            assert code == -signal.SIGKILL, victim.output()
            space.start_workers(1)
            action = await handle.result(timeout=30)
            return action, await handle.context()

    action, ctx = asyncio.run(main())
    assert (action, ctx) == expected(FAN)
    assert ctx["collected"] == 1  # the fan-in fired once, after all four branches


@pytest.mark.timeout(60)
def test_the_same_job_delivered_twice_duplicates_nothing(space: Space) -> None:
    """Every job of a fan-in run is processed twice (in process, no queue consumer):
    each successor is enqueued once, the join fires once, the context is right."""
    bp = d.build(d.fan_out(3))
    digest = blueprint_hash(canonical_json(bp))

    async def main() -> tuple[Any, dict[str, Any], int]:
        async with space.executor() as executor:
            handle = await executor.start(bp, run_id="dup")
            worker = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix)
            await worker.connect()
            queue = BullMQJobQueue(space.url, name=space.queue, prefix=space.prefix)
            client = redis.asyncio.Redis.from_url(space.url, decode_responses=True)
            keys = Keys(space.prefix).run("dup")
            processed: set[str] = set()
            try:
                while True:
                    pending_nodes = await client.hgetall(keys.pending)  # job id -> node id
                    pending = sorted(pending_nodes)
                    todo = [j for j in pending if j not in processed]
                    if not todo:
                        break
                    for jid in todo:
                        node = pending_nodes[jid]
                        done = await client.hget(keys.done, jid)
                        job = Job(jid, "dup", node, digest, _incoming(jid))
                        await worker.process(job)
                        await worker.process(job)  # delivered again
                        processed.add(jid)
                        assert done is None
                counts = await queue.counts()
            finally:
                await queue.aclose()
                await client.aclose()
                await worker.aclose()
            return await handle.result(timeout=5), await handle.context(), counts["waiting"]

    incoming: dict[str, str] = {}

    def _incoming(jid: str) -> str | None:
        return incoming.get(jid)

    action, ctx, waiting = asyncio.run(main())
    assert (action, ctx) == expected(d.fan_out(3))
    assert ctx["collected"] == 1
    # a, the container, 3 branches and the join: 6 distinct jobs, each enqueued once
    assert waiting == 6


@pytest.mark.timeout(60)
def test_concurrent_branches_writing_different_keys_lose_nothing(space: Space) -> None:
    """30 branches on 2 workers write 30 different keys at overlapping times. Writing back
    the whole context (what Flowcraft TS's distributed example does) loses most of them:
    each branch would overwrite the others' keys with the snapshot it loaded."""
    space.start_workers(2, concurrency=16)
    graph = d.fan_out(30, delay=0.05)

    async def main() -> dict[str, Any]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            await handle.result(timeout=30)
            return await handle.context()

    ctx = asyncio.run(main())
    assert all(ctx[f"mark:b{i}"] == 1 for i in range(30))
    assert ctx["total"] == 31 and ctx["collected"] == 1
