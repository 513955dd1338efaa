"""A resume that arrives while the job that parked on the wait is still on the queue
(active: its worker has parked it but BullMQ has not completed it yet) is never dropped:
the continuation is its own delivery, under its own queue id, so the run goes on at once
(not after the reconciler's next pass). Real Redis, real BullMQ, an in-process worker
whose parked job is held active while the resume is made; the reconciler is off, so
nothing but the resume itself can move the run on."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import dist_nodes as d
import pytest

from flowcraft import RunSuspended
from flowcraft.distributed import BullMQJobQueue, Worker
from flowcraft.distributed.keys import engine_job_id, wire_job_id
from flowcraft.engine import Job

from .conftest import Space

ASK = {
    "nodes": [d.node("start"), d.node("ask", "wait", output="answer"), d.node("end")],
    "edges": [d.edge("start", "ask"), d.edge("ask", "end")],
}


class ResumeWhileParkedJobActive(Worker):
    """Resumes the wait from inside the parked job's delivery: after the worker parked the
    job, before the queue completes it."""

    def __init__(self, space: Space, **options: Any) -> None:
        super().__init__(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix, reconcile_interval=0,
                         cluster=space.cluster, queue_shards=space.shards, **options)  # fmt: skip
        self.space = space
        self.seen: list[tuple[str, str]] = []  # (queue state of the parked job, resume's outcome)
        self.resumed = asyncio.Event()

    async def process(self, job: Job) -> None:
        await super().process(job)
        if job.node_id != "ask" or job.resumed:
            return
        assert self._queue is not None
        state = await self._queue.state(job.id)
        async with self.space.executor(poll_interval=0.1) as client:
            await client.resume(job.run_id, "ask#1", "yes")
        self.seen.append((state, "resumed"))
        self.resumed.set()


@pytest.fixture(params=["one-queue", "sharded", "cluster"])
def topology(request: pytest.FixtureRequest) -> Space:
    """One Redis with one queue, one Redis with its queue in shards, a Redis Cluster."""
    if request.param == "cluster":
        return cast(Space, request.getfixturevalue("cluster_space"))
    space = cast(Space, request.getfixturevalue("space"))
    if request.param == "sharded":
        space.shards = 2
        space.topology = {"queue_shards": 2}
    return space


@pytest.mark.timeout(60)
def test_a_resume_while_the_parked_job_is_still_active_is_not_dropped(topology: Space) -> None:
    space = topology

    async def main() -> tuple[Any, dict[str, Any], list[tuple[str, str]], dict[str, int]]:
        worker = ResumeWhileParkedJobActive(space, concurrency=2)
        async with worker.running(), space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(d.build(ASK))
            with contextlib.suppress(RunSuspended):  # awaiting until the worker resumes it
                await handle.result(timeout=20)
            await asyncio.wait_for(worker.resumed.wait(), 20)
            # no reconciler runs: only the resume can finish the run; a dropped one never does
            action = await handle.result(timeout=20)
            assert worker._queue is not None
            return action, await handle.context(), worker.seen, await worker._queue.counts()

    action, ctx, seen, counts = asyncio.run(main())
    assert seen == [("active", "resumed")]  # the resume came while the parked job was active
    assert action is not None and ctx["answer"] == "yes" and ctx["mark:end"] == 1
    assert counts["waiting"] == counts["active"] == counts["delayed"] == 0


def test_resumed_queue_ids_are_distinct_and_read_back_to_the_engine_id() -> None:
    engine = "r1:sub:review:2"
    plain = wire_job_id(engine)
    resumed = wire_job_id(engine, "sub:review#2")
    retried = wire_job_id(engine, "sub:review#2~retry3")
    assert len({plain, resumed, retried}) == 3
    assert ":" not in resumed and ":" not in retried
    assert engine_job_id(resumed) == engine_job_id(retried) == engine_job_id(plain) == engine
    assert resumed == "r1|sub|review|2|wsub%3Areview#2"
    odd = "r%x:a|b%7C:1"
    assert engine_job_id(wire_job_id(odd, "a|b%7C#1~w")) == odd


@pytest.mark.timeout(60)
def test_the_reconciler_finds_a_resumed_job_under_its_own_id_and_re_adds_a_lost_one(space: Space) -> None:
    """Resumed with no worker running: the continuation waits on the queue under its resume
    id while the parked job is gone; the reconciler counts it as present (no second copy
    under the plain id), and when it is lost, adds it again as a resume."""

    async def main() -> tuple[list[int], dict[str, Any]]:
        passes: list[int] = []
        async with space.executor(poll_interval=0.1) as executor:
            handle = await executor.start(d.build(ASK))
            first = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix, reconcile_interval=0)
            async with first.running():
                with pytest.raises(RunSuspended):
                    await handle.result(timeout=20)
            # the worker has closed: its parked job was completed (and removed) before
            await executor.resume(handle.run_id, "ask#1", "late")
            job_id, resumed_id = f"{handle.run_id}:ask:1", wire_job_id(f"{handle.run_id}:ask:1", "ask#1")
            checker = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix, reconcile_interval=0.1)
            await checker.connect()
            queue = checker._queue
            assert isinstance(queue, BullMQJobQueue)
            try:
                assert await queue.state(job_id) == "unknown"  # the parked job is gone
                assert await queue.state(job_id, "ask#1") == "waiting"
                passes.append(await checker.reconcile())  # the resumed job is there: nothing added
                await queue._queue.remove(resumed_id)  # now lose it
                await asyncio.sleep(0.15)  # the reconciler's lock (its interval) runs out
                passes.append(await checker.reconcile())  # added again, as a resume
                assert await queue.state(job_id) == "unknown"  # never under the plain id
                assert await queue.state(job_id, "ask#1") == "waiting"
                added = await queue._queue.getJob(resumed_id)
                assert added.data["w"] == "ask#1" and added.data["n"] == "ask"
            finally:
                await checker.aclose()
            second = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix, reconcile_interval=0)
            async with second.running():
                await handle.result(timeout=20)
            return passes, await handle.context()

    passes, ctx = asyncio.run(main())
    assert passes == [0, 1]
    assert ctx["answer"] == "late" and ctx["mark:end"] == 1


def test_load_next_reads_a_resumed_job_under_its_engine_id(space: Space) -> None:
    """``LOAD_NEXT`` drops a resumed job's wait part from its queue id: a redelivered
    resumed job finds the done record of its engine job (its commit), not nothing."""
    import json

    import redis

    from flowcraft.distributed.keys import Keys
    from flowcraft.distributed.loading import LOAD_NEXT

    client = redis.Redis.from_url(space.url)
    prefix, queue, token = space.prefix, "q", "t1"
    active = f"{prefix}:{queue}:active"
    rk = Keys(prefix).run("r1")
    engine = "r1:sub:ask:1"
    wire = wire_job_id(engine, "sub:ask#1")
    client.hset(rk.meta, mapping={"status": "running", "params": "{}"})
    client.hset(rk.done, engine, json.dumps({"a": '"default"', "j": []}))
    client.lpush(active, wire)
    client.set(f"{prefix}:{queue}:{wire}:lock", token)
    client.hset(f"{prefix}:{queue}:{wire}", "data", json.dumps({"r": "r1", "n": "sub:ask", "b": "g", "w": "sub:ask#1"}))
    try:
        answer = client.register_script(LOAD_NEXT)(
            keys=[active], args=[f"{prefix}:{queue}:", token, f"{prefix}:run:{{", 50]
        )  # fmt: skip
        assert answer[:2] == [wire.encode(), b"r1"]
        assert json.loads(answer[2][5]) == {"a": '"default"', "j": []}
    finally:
        client.delete(active, f"{prefix}:{queue}:{wire}:lock", f"{prefix}:{queue}:{wire}")
        client.close()
