"""What one node job moves through Redis: a large context value the node does not read
stays in Redis (counted in bytes on the real server), one it reads is fetched on demand,
and commits that leave the fan-in release facts out give the same results."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import dist_nodes as d
import job_io_nodes as n
import pytest
import redis

from flowcraft.distributed.store import CONTEXT_INLINE_BYTES

from .conftest import Space

BIG = 10 * 1024 * 1024  # 10 MB


def sent_bytes(url: str) -> int:
    """Bytes the Redis server has sent to its clients so far."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_net_output_bytes"])
    finally:
        client.close()


def chain(length: int, **data: Any) -> dict[str, Any]:
    nodes = [d.node(f"n{i}", "counter", limit=10**6, **data) for i in range(length)]
    return {"nodes": nodes, "edges": [d.edge(f"n{i}", f"n{i + 1}", "again") for i in range(length - 1)]}


@pytest.mark.timeout(120)
def test_a_large_value_no_node_reads_is_not_sent_to_its_jobs(space: Space) -> None:
    space.start_workers(1)
    big = "x" * BIG

    async def main() -> tuple[Any, int, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(chain(20)), {"big": big, "i": 0})
            before = sent_bytes(space.url)
            action = await handle.result(timeout=60)
            moved = sent_bytes(space.url) - before
            return action, moved, await handle.context()

    action, moved, context = asyncio.run(main())
    assert action == "again"
    assert context["i"] == 20 and context["big"] == big
    # 20 jobs each loading the whole context moved 20 x 10 MB; now the value stays put
    assert moved < BIG // 10, f"{moved:,} bytes sent by Redis during a run whose nodes never read the 10 MB value"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["space", "cluster_space"])
def test_a_large_value_is_fetched_when_read_and_when_the_whole_context_is_listed(
    where: str, request: pytest.FixtureRequest
) -> None:
    """On one Redis and on a cluster (where the blocking fetch of ``to_dict`` needs a
    cluster client)."""
    space: Space = request.getfixturevalue(where)
    space.start_workers(1, extra_args=("--registry", "job_io_nodes:REGISTRY"))
    big, huge = "y" * (CONTEXT_INLINE_BYTES + 1), "z" * (CONTEXT_INLINE_BYTES * 3)
    graph = {  # readbig reads "big" with get; listall lists the whole context with to_dict
        "nodes": [{"id": "read", "type": "readbig"}, {"id": "list", "type": "listall"}],
        "edges": [{"source": "read", "target": "list"}],
    }

    async def main() -> dict[str, Any]:
        async with space.executor() as executor:
            handle = await executor.start(n.build(graph), {"big": big, "huge": huge, "small": "s"})
            await handle.result(timeout=60)
            return cast(dict[str, Any], await handle.context())

    context = asyncio.run(main())
    assert context["got"] == len(big)
    assert context["sizes"] == {"big": len(big), "huge": len(huge), "small": 1}


@pytest.mark.timeout(180)
def test_commits_that_leave_the_release_facts_out_give_the_in_memory_results(space: Space) -> None:
    space.start_workers(2, concurrency=4, extra_args=("--dependencies", "job_io_nodes:joins_on_request"))
    names = [*d.GRAPHS, "wide"]
    graphs = {**d.GRAPHS, "wide": (d.fan_out(80), {})}
    expected = {name: d.in_memory(name) for name in d.GRAPHS}
    from flowcraft import TypedContext
    from flowcraft.graph import BlueprintExecutor

    bx = BlueprintExecutor(d.build(graphs["wide"][0]), d.REGISTRY)
    ctx = TypedContext()
    expected["wide"] = (asyncio.run(bx.flow.run(ctx, executor=bx)), ctx.to_dict())

    async def main() -> dict[str, tuple[Any, dict[str, Any]]]:
        results = {}
        async with space.executor() as executor:
            for group in (list(d.GRAPHS), ["wide"]):  # the wide one alone: some graphs race a slow branch
                handles = {name: await executor.start(d.build(graphs[name][0]), graphs[name][1]) for name in group}
                for name, handle in handles.items():
                    results[name] = (await handle.result(timeout=90), await handle.context())
        return results

    results = asyncio.run(main())
    for name in names:
        assert results[name] == expected[name], name


@pytest.mark.timeout(120)
def test_a_chain_completes_when_redis_forgets_its_scripts_midway(space: Space) -> None:
    """A job's successors and its completion go in one MULTI of BullMQ's scripts by sha:
    after ``SCRIPT FLUSH`` (as after a Redis restart) they are loaded again and no job is lost."""
    (worker,) = space.start_workers(1)

    async def main() -> tuple[Any, dict[str, Any]]:
        client = redis.asyncio.Redis.from_url(space.url)
        try:
            async with space.executor() as executor:
                handle = await executor.start(d.build(chain(200)), {"i": 0})
                for _ in range(10):
                    await asyncio.sleep(0.05)
                    await client.script_flush()
                try:
                    return await handle.result(timeout=60), await handle.context()
                except Exception as error:
                    raise AssertionError(f"{error!r}; the worker's log:\n{worker.output()}") from error
        finally:
            await client.aclose()

    action, context = asyncio.run(main())
    assert action == "again" and context["i"] == 200


def test_a_recording_context_fetches_a_left_out_value_once_and_only_when_read() -> None:
    from flowcraft.distributed import encode
    from flowcraft.engine.recording import RecordingContext

    stored = {"big": encode("B" * 10, key="big"), "huge": encode([1, 2], key="huge"), "gone": None}
    fetched: list[list[str]] = []

    async def fetch(names: Any) -> dict[str, str | None]:
        fetched.append(list(names))
        return {name: stored[name] for name in names}

    def fetch_now(names: Any) -> dict[str, str | None]:
        fetched.append(["now", *names])
        return {name: stored[name] for name in names}

    async def main() -> None:
        ctx = RecordingContext({"small": encode(1, key="small")}, {"big", "huge", "gone", "replaced"}, fetch, fetch_now)
        assert sorted(ctx.keys()) == ["big", "gone", "huge", "replaced", "small"] and fetched == []
        assert await ctx.has("huge") and fetched == []
        await ctx.set("replaced", 5)  # written without being read: never fetched
        assert await ctx.get("big") == "B" * 10 and await ctx.get("big") == "B" * 10
        assert fetched == [["big"]]
        assert await ctx.get("gone", "default") == "default"  # deleted in the store meanwhile
        assert ctx.to_dict() == {"small": 1, "big": "B" * 10, "huge": [1, 2], "replaced": 5}
        assert fetched == [["big"], ["gone"], ["now", "huge"]]
        assert ctx.delta() == ({"replaced": encode(5, key="replaced")}, [])

    asyncio.run(main())


def state_reads(url: str) -> int:
    """How many job states (the ``LOAD`` script, the only user of ``HKEYS``) Redis has read."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_hkeys", {}).get("calls", 0))
    finally:
        client.close()


@pytest.mark.timeout(120)
def test_a_chain_job_its_predecessor_enqueued_on_the_same_worker_does_not_read_its_state(space: Space) -> None:
    """In a graph without parallel jobs, the worker that commits a job keeps the state its lone
    successor will find (the context with the delta applied); when BullMQ hands it that successor,
    no read of the run's state is needed, and the results are the same."""
    space.start_workers(1)

    async def main() -> tuple[Any, int, dict[str, Any]]:
        async with space.executor() as executor:
            before = state_reads(space.url)
            handle = await executor.start(d.build(chain(30)), {"i": 0, "note": "kept"})
            action = await handle.result(timeout=60)
            return action, state_reads(space.url) - before, await handle.context()

    action, reads, context = asyncio.run(main())
    assert action == "again"
    assert context == {"i": 30, "note": "kept"}
    assert reads < 30 // 2, f"{reads} job states read for a chain of 30 jobs on one worker"
