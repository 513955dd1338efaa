"""The executor contract on a real Redis Cluster (3 masters, started by scripts/test), the
queue split into 3 shards, with real worker processes: the same results as in memory
(fan-in, loops, conditional joins, nested sub-workflows, an in-process parallel block,
batches),
failures, cancellation and kill -9 recovery; every key of a run in one slot; the shards
on different masters; no ``:`` in a queue's job ids."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import cluster_flows
import dist_nodes as d
import pytest
import redis

from flowcraft import AbortError, TypedContext, WorkflowError
from flowcraft.distributed.keys import Keys, queue_names
from flowcraft.graph import BlueprintExecutor

from .conftest import CLUSTER_SHARDS, Space

NAMES = list(d.GRAPHS)
EXPECTED = {name: d.in_memory(name) for name in NAMES}


def _cluster(space: Space) -> Any:
    return redis.RedisCluster.from_url(space.url, decode_responses=True)


@pytest.mark.timeout(120)
def test_same_results_as_in_memory_on_a_cluster(cluster_space: Space) -> None:
    """Every contract graph at once on two workers, each consuming the three shards."""
    from flowcraft.engine import flow_from_factory

    expected_ctx, batch_ctx = TypedContext(), TypedContext()
    expected_action = asyncio.run(d.make_pipeline().run(expected_ctx))
    batch_action = asyncio.run(cluster_flows.make_batches().run(batch_ctx))
    assert batch_ctx.to_dict()["total"] == sum(n * n for n in range(8))
    cluster_space.start_workers(2, concurrency=6)

    async def main() -> tuple[dict[str, Any], Any, dict[str, Any], Any, dict[str, Any]]:
        async with cluster_space.executor() as executor:
            handles = {}
            for name in NAMES:
                graph, initial = d.GRAPHS[name]
                handles[name] = await executor.start(d.build(graph), initial)
            results = {name: (await h.result(timeout=60), await h.context()) for name, h in handles.items()}
            listed = {run.run_id for run in await executor.runs(limit=100)}  # read from every master
            assert {h.run_id for h in handles.values()} <= listed
            ctx = TypedContext()  # a factory flow: start, loop, in-process parallel block, fan-in
            action = await flow_from_factory("dist_nodes:make_pipeline").run(ctx, executor=executor)
            batches = TypedContext()  # a parallel batch, then a sequential one
            batches_action = await flow_from_factory("cluster_flows:make_batches").run(batches, executor=executor)
            return results, action, ctx.to_dict(), batches_action, batches.to_dict()

    results, action, ctx, batches_action, batches = asyncio.run(main())
    for name in NAMES:
        assert results[name] == EXPECTED[name], name
    assert (action, ctx) == (expected_action, expected_ctx.to_dict())
    assert (batches_action, batches) == (batch_action, batch_ctx.to_dict())


@pytest.mark.timeout(90)
def test_a_run_keeps_its_keys_in_one_slot_and_the_shards_spread_over_masters(cluster_space: Space) -> None:
    graph, initial = d.GRAPHS["fan_in"]
    cluster_space.start_workers(1)

    async def main() -> str:
        async with cluster_space.executor() as executor:
            handle = await executor.start(d.build(graph), initial, run_id="slot-check")
            await handle.result(timeout=30)
            return handle.run_id

    run_id = asyncio.run(main())
    client = _cluster(cluster_space)
    try:
        run_keys = list(client.scan_iter(match=f"{cluster_space.prefix}:run:*", count=1000))
        assert run_keys and all(f"{{{run_id}}}" in key for key in run_keys)
        assert len({client.keyslot(key) for key in run_keys}) == 1
        names = queue_names(cluster_space.queue, CLUSTER_SHARDS, cluster=True)
        assert len(names) == CLUSTER_SHARDS
        nodes = {client.get_node_from_key(f"{cluster_space.prefix}:{name}:meta").name for name in names}
        assert len(nodes) >= 2, nodes  # the shards do not all sit on one master
        for name in names:  # each shard's BullMQ keys share its slot
            keys = list(client.scan_iter(match=f"{cluster_space.prefix}:{name}:*", count=1000))
            assert len({client.keyslot(key) for key in keys}) <= 1
        assert Keys(cluster_space.prefix).run(run_id).meta in run_keys
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_job_ids_on_the_queue_have_no_colon(cluster_space: Space) -> None:
    """Node BullMQ 5 refuses custom job ids with ``:``; the queue's ids are ``run|node|visit``."""
    graph, initial = d.GRAPHS["fan_in"]

    async def main() -> list[str]:
        async with cluster_space.executor() as executor:  # no worker: the start job stays waiting
            await executor.start(d.build(graph), initial, run_id="ids")
        client = _cluster(cluster_space)
        waiting: list[str] = []
        try:
            for name in queue_names(cluster_space.queue, CLUSTER_SHARDS, cluster=True):
                waiting += client.lrange(f"{cluster_space.prefix}:{name}:wait", 0, -1)
        finally:
            client.close()
        return waiting

    waiting = asyncio.run(main())
    assert len(waiting) == 1 and ":" not in waiting[0] and waiting[0].startswith("ids|")


@pytest.mark.timeout(60)
def test_the_reconciler_finds_jobs_every_shard_lost_on_a_cluster(cluster_space: Space) -> None:
    """The queue's shards are wiped (data lost): a worker's reconciler asks each job's
    shard, enqueues the lost ones there again, and the runs complete."""
    from flowcraft.distributed.shards import open_queue

    bp = d.build(d.fan_out(3))

    async def main() -> list[Any]:
        async with cluster_space.executor() as executor:
            handles = [await executor.start(bp) for _ in range(4)]
            queue = open_queue(
                cluster_space.url, name=cluster_space.queue, prefix=cluster_space.prefix, shards=CLUSTER_SHARDS,
                cluster=True,
            )  # fmt: skip
            try:
                await queue.obliterate()
                assert sum((await queue.counts()).values()) == 0
            finally:
                await queue.aclose()
            worker = cluster_space.start_worker(extra_args=("--reconcile-interval", "0.5"))
            await asyncio.to_thread(worker.wait_ready)
            results = [await handle.result(timeout=30) for handle in handles]
            assert "pending job(s) were not in the queue" in worker.output()
            return [*results, *[await handle.context() for handle in handles]]

    outcome = asyncio.run(main())
    assert outcome[:4] == ["finished"] * 4
    assert all(ctx["collected"] == 1 for ctx in outcome[4:])


@pytest.mark.timeout(60)
def test_a_failing_node_fails_the_run_on_a_cluster(cluster_space: Space) -> None:
    graph = {
        "nodes": [d.node("a"), d.node("f", "fail"), d.node("after")],
        "edges": [d.edge("a", "f"), d.edge("f", "after")],
    }
    cluster_space.start_workers(1)

    async def main() -> Any:
        async with cluster_space.executor() as executor:
            handle = await executor.start(d.build(graph))
            with pytest.raises(WorkflowError, match="boom in f") as info:
                await handle.result(timeout=20)
            return info.value, await handle.status()

    error, status = asyncio.run(main())
    assert (error.node_name, error.phase) == ("f", "exec")
    assert status.state == "failed" and status.error.node_id == "f"


@pytest.mark.timeout(60)
def test_cancel_stops_running_nodes_on_a_cluster(cluster_space: Space) -> None:
    """The cancel message (a PUBLISH from a Lua script on the run's master) reaches the
    workers subscribed through another node: both running blockers are aborted."""
    started = cluster_space.tmp / "started"
    started.mkdir()
    graph = {
        "nodes": [
            d.node("a"),
            d.node("x", "blocker", started_dir=str(started)),
            d.node("y", "blocker", started_dir=str(started)),
            d.node("join", "collect"),
        ],
        "edges": [d.edge("a", "x"), d.edge("a", "y"), d.edge("x", "join"), d.edge("y", "join")],
    }
    cluster_space.start_workers(2, concurrency=1)

    def started_both() -> bool:
        return len([p for p in started.iterdir() if not p.name.endswith("aborted")]) == 2

    def aborted_both() -> bool:
        return (started / "x.aborted").exists() and (started / "y.aborted").exists()

    async def main() -> tuple[Any, dict[str, Any]]:
        async with cluster_space.executor() as executor:
            handle = await executor.start(d.build(graph))
            await asyncio.to_thread(_wait_for, started_both)
            await handle.cancel("stop")
            with pytest.raises(AbortError, match="stop"):
                await handle.result(timeout=10)
            await asyncio.to_thread(_wait_for, aborted_both)
            return await handle.status(), await handle.context()

    status, ctx = asyncio.run(main())
    assert status.state == "cancelled"
    assert "collected" not in ctx


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("point", "target"), [("during_node", "b1"), ("after_context_write", "join")])
def test_kill_9_mid_run_still_completes_on_a_cluster(cluster_space: Space, point: str, target: str) -> None:
    """A worker SIGKILLs itself; another takes its stalled job over: the in-memory result,
    the fan-in fired once."""
    fan = d.fan_out(4, delay=0.2)
    bx = BlueprintExecutor(d.build(fan), d.REGISTRY)
    reference = TypedContext()
    expected = (asyncio.run(bx.flow.run(reference, executor=bx)), reference.to_dict())
    victim = cluster_space.start_worker(crash_at=f"{point}:{target}")
    victim.wait_ready()

    async def main() -> tuple[Any, dict[str, Any]]:
        async with cluster_space.executor() as executor:
            handle = await executor.start(d.build(fan))
            code = await asyncio.to_thread(victim.wait_exit, 30)
            assert code == -signal.SIGKILL, victim.output()
            await asyncio.to_thread(cluster_space.start_workers, 1)
            action = await handle.result(timeout=40)
            return action, await handle.context()

    action, ctx = asyncio.run(main())
    assert (action, ctx) == expected
    assert ctx["collected"] == 1


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_a_sharded_queue_on_one_redis(redis_url: str) -> None:
    """``queue_shards`` without a cluster: two hash-tagged queues on one server, two workers."""
    space = Space(redis_url, shards=2)
    try:
        space.start_workers(2, concurrency=4)

        async def main() -> dict[str, Any]:
            async with space.executor() as executor:
                handles = {name: await executor.start(d.build(d.GRAPHS[name][0]), d.GRAPHS[name][1])
                           for name in ("fan_in", "loop50", "conditional")}  # fmt: skip
                return {name: (await h.result(timeout=30), await h.context()) for name, h in handles.items()}

        results = asyncio.run(main())
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            used = {  # a shard that completed jobs has "completed" entries in its event stream
                name
                for name in queue_names(space.queue, 2)
                for _, fields in client.xrange(f"{space.prefix}:{name}:events")
                if fields.get("event") == "completed"
            }
        finally:
            client.close()
    finally:
        space.close()
    assert results == {name: EXPECTED[name] for name in results}
    assert used == {f"{{{space.queue}.0}}", f"{{{space.queue}.1}}"}
