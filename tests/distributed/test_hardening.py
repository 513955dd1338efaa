"""Issue 14, defects: no stuck runs, no silent errors (real Redis, real worker processes)."""

from __future__ import annotations

import asyncio
import enum
import json
import math
import signal
import time
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft import DEFAULT_ACTION, ContextKey, TypedContext, WorkflowError
from flowcraft.distributed import (
    BackendConnectionError,
    BackendPoolExhaustedError,
    CodecError,
    RunNotFoundError,
    Worker,
    decode,
    encode,
)
from flowcraft.distributed.connection import MAX_CONNECTIONS
from flowcraft.distributed.keys import Keys, wire_job_id
from flowcraft.distributed.queue import BullMQJobQueue, ErrorLog
from flowcraft.engine.codec import decode_action, encode_action
from flowcraft.engine.plan import blueprint_hash, canonical_json
from flowcraft.graph import GraphBuilder

from .conftest import Space, delete_prefix

ONE = {"nodes": [d.node("a")], "edges": []}


@pytest.mark.timeout(120)
def test_hundreds_of_concurrent_runs_share_one_bounded_pool(space: Space) -> None:
    """300 concurrent ``start()`` + ``result()`` on one executor: all complete, and the
    executor never holds more connections than its pool allows (waiting ``result()``
    calls share one pub/sub connection)."""
    space.start_workers(2, concurrency=32)
    bp = d.build(ONE)

    async def main() -> tuple[list[Any], int]:
        async with space.executor() as executor:
            pool = executor.store.client.connection_pool
            peak = 0

            async def one() -> Any:
                nonlocal peak
                handle = await executor.start(bp)
                peak = max(peak, len(pool._in_use_connections) + len(pool._available_connections))
                return await handle.result(timeout=90)

            results = await asyncio.gather(*[one() for _ in range(300)], return_exceptions=True)
            return results, peak

    results, peak = asyncio.run(main())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert peak <= MAX_CONNECTIONS


@pytest.mark.timeout(30)
def test_an_exhausted_pool_is_not_reported_as_redis_down(space: Space) -> None:
    """Every pooled connection busy for ``pool_timeout``: a ``BackendPoolExhaustedError``
    naming the pool, not a ``BackendConnectionError``."""

    async def main() -> None:
        async with space.executor(max_connections=1, pool_timeout=0.2) as executor:
            client = executor.store.client
            held = asyncio.ensure_future(client.blpop([f"{space.prefix}:nothing"], timeout=2))
            await asyncio.sleep(0.1)
            with pytest.raises(BackendPoolExhaustedError, match="all 1 pooled Redis connections"):
                await executor.store.meta("some-run")
            await held

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_a_start_job_that_cannot_be_enqueued_fails_the_run(space: Space) -> None:
    """``start()`` stores the run, then its enqueue fails: ``start()`` raises, and the run
    is failed (with its keys' TTL) instead of staying pending with nobody to run it."""
    bp = d.build(ONE)

    async def main() -> tuple[Any, int]:
        async with space.executor() as executor:

            async def refuse(jobs: Any) -> None:
                raise BackendConnectionError("queue unreachable")

            executor.queue.add = refuse  # type: ignore[method-assign]
            with pytest.raises(BackendConnectionError, match="queue unreachable"):
                await executor.start(bp, run_id="lost")
            handle = await executor.handle("lost")
            with pytest.raises(WorkflowError, match="start job could not be enqueued"):
                await handle.result(timeout=5)
            client = redis.asyncio.Redis.from_url(space.url)
            try:
                ttl = await client.ttl(Keys(space.prefix).run("lost").meta)
            finally:
                await client.aclose()
            return await handle.status(), ttl

    status, ttl = asyncio.run(main())
    assert status.state == "failed" and status.error.phase == "start"
    assert ttl > 0


@pytest.mark.timeout(60)
def test_the_reconciler_enqueues_the_jobs_of_runs_the_queue_lost(space: Space) -> None:
    """Runs whose pending jobs are not in the queue — a start job never enqueued (the
    client died between its two steps), jobs lost with the queue's data — complete once
    a worker's reconciler finds them."""
    bp = d.build(d.fan_out(3))

    async def main() -> list[Any]:
        async with space.executor() as executor:
            orphan, _, _ = await executor._create_run(bp, None, params=None, run_id="orphan", events=False)
            queued = [await executor.start(bp) for _ in range(3)]
            queue = BullMQJobQueue(space.url, name=space.queue, prefix=space.prefix)
            try:
                await queue.obliterate()  # the queue's data is lost
            finally:
                await queue.aclose()
            worker = space.start_worker(extra_args=("--reconcile-interval", "0.5"))
            await asyncio.to_thread(worker.wait_ready)
            results = [await handle.result(timeout=30) for handle in [orphan, *queued]]
            assert "pending job(s) were not in the queue" in worker.output()
            return [*results, *[await handle.context() for handle in [orphan, *queued]]]

    outcome = asyncio.run(main())
    assert outcome[:4] == ["finished"] * 4
    assert all(ctx["collected"] == 1 for ctx in outcome[4:])


@pytest.mark.timeout(60)
def test_a_job_whose_data_is_not_json_fails_its_run_and_is_logged(space: Space) -> None:
    """A job BullMQ cannot even read (its data is not JSON) used to cycle between active
    and waiting forever, logging nothing: it is failed at once, its run fails with the
    reason, and the worker logs it."""
    bp = d.build(ONE)

    async def main() -> tuple[Any, dict[str, int]]:
        async with space.executor() as executor:
            handle = await executor.start(bp, run_id="poison")
            client = redis.asyncio.Redis.from_url(space.url)
            try:
                await client.hset(f"{space.prefix}:{space.queue}:{wire_job_id('poison:a:1')}", "data", "{not json")
            finally:
                await client.aclose()
            worker = space.start_worker()
            await asyncio.to_thread(worker.wait_ready)
            with pytest.raises(WorkflowError, match="not valid JSON"):
                await handle.result(timeout=20)
            queue = BullMQJobQueue(space.url, name=space.queue, prefix=space.prefix)
            try:
                counts = await queue.counts()
            finally:
                await queue.aclose()
            assert "poison|a|1: its data on the queue is not valid JSON" in worker.output()
            return await handle.status(), counts

    status, counts = asyncio.run(main())
    assert status.state == "failed" and status.error.node_id == "a"
    assert counts["failed"] == 1 and counts["active"] == counts["waiting"] == 0


def test_queue_errors_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """BullMQ's worker errors were dropped; now each kind is logged, rate-limited."""
    errors = ErrorLog(every=60)
    with caplog.at_level("ERROR", logger="flowcraft.distributed.queue"):
        for _ in range(100):
            errors(redis.exceptions.ConnectionError("refused"))
        errors(ValueError("other"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "ConnectionError" in lines[0] and "refused" in lines[0]
    assert "ValueError: other" in lines[1]
    errors._last["ConnectionError"] = (float("-inf"), 99)
    with caplog.at_level("ERROR", logger="flowcraft.distributed.queue"):
        errors(redis.exceptions.ConnectionError("refused"))
    assert "99 more like it" in caplog.records[-1].getMessage()


@pytest.mark.timeout(120)
def test_the_worker_keeps_a_bounded_number_of_graphs_hydrated(space: Space) -> None:
    """300 runs of 300 distinct blueprints through one worker: it keeps at most its
    cache size (256 by default) hydrated, least recently used dropped first, and still
    runs every graph (a dropped one is hydrated again)."""
    blueprints = [d.build({"nodes": [d.node("a", tag=i)], "edges": []}) for i in range(300)]

    async def main() -> tuple[list[Any], int, bool]:
        worker = Worker(d.REGISTRY, space.url, queue=space.queue, prefix=space.prefix, concurrency=32)
        async with worker.running(), space.executor() as executor:
            handles = [await executor.start(bp) for bp in blueprints]
            results = [await handle.result(timeout=60) for handle in handles]
            size = len(worker._hydrated)
            again = await executor.start(blueprints[0])  # dropped from the cache: hydrated again
            await again.result(timeout=10)
            return results, size, len(worker._hydrated) <= 256

    results, size, bounded = asyncio.run(main())
    assert results == [DEFAULT_ACTION] * 300
    assert size == 256 and bounded


@pytest.mark.timeout(60)
def test_a_lost_run_leaves_the_callers_context_untouched(space: Space) -> None:
    """Redis loses the run while ``flow.run()`` waits (restarted empty): ``flow.run()``
    raises ``RunNotFoundError`` and the caller's context keeps its values (it was wiped)."""
    space.start_workers(1)
    graph = {"nodes": [d.node("x", "blocker", seconds=2, started_dir=str(space.tmp))], "edges": []}
    flow = GraphBuilder(d.REGISTRY).build(graph).flow

    async def main() -> dict[str, Any]:
        ctx = TypedContext({"mine": 1, "other": [1, 2]})
        async with space.executor() as executor:
            running = asyncio.ensure_future(flow.run(ctx, executor=executor))
            for _ in range(200):
                if any(space.tmp.glob("x.*")):
                    break
                await asyncio.sleep(0.05)
            delete_prefix(space.url, space.prefix)  # Redis restarted empty
            with pytest.raises(RunNotFoundError):
                await running
        return ctx.to_dict()

    assert asyncio.run(main()) == {"mine": 1, "other": [1, 2]}


@pytest.mark.timeout(60)
def test_a_job_released_on_sigterm_goes_to_another_worker_at_once(space: Space) -> None:
    """A worker stopped by SIGTERM releases a job still running after its grace: the job
    goes back to waiting at once, not after stalled-job recovery (here lock 30 s +
    stalled check 30 s, the defaults before issue 14)."""
    slow = ("--lock-duration", "30", "--stalled-interval", "30", "--shutdown-grace", "0.5")
    first = space.start_worker(extra_args=slow)
    first.wait_ready()
    graph = {"nodes": [d.node("x", "blocker", seconds=1.5, started_dir=str(space.tmp))], "edges": []}

    async def main() -> float:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            for _ in range(200):
                if any(space.tmp.glob("x.*")):
                    break
                await asyncio.sleep(0.05)
            first.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(first.wait_exit, 20) == 0
            released = time.monotonic()
            await asyncio.to_thread(space.start_worker(extra_args=slow).wait_ready)
            await handle.result(timeout=15)
            return time.monotonic() - released

    elapsed = asyncio.run(main())
    assert elapsed < 10, f"the released job waited {elapsed:.1f} s for another worker"
    assert "released 1 running job(s)" in first.output()


@pytest.mark.timeout(90)
def test_with_the_default_timings_a_killed_workers_job_is_recovered_within_15_s(space: Space) -> None:
    """``kill -9`` in the middle of a node, workers with the default --lock-duration and
    --stalled-interval: another worker finishes the run within 15 s (it took ~58 s)."""
    victim = space.start_worker(crash_at="during_node:b", fast_recovery=False)
    victim.wait_ready()
    graph = {"nodes": [d.node("a"), d.node("b"), d.node("c")], "edges": [d.edge("a", "b"), d.edge("b", "c")]}

    async def main() -> tuple[float, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            assert await asyncio.to_thread(victim.wait_exit, 30) == -signal.SIGKILL
            killed = time.monotonic()
            space.start_worker(fast_recovery=False)
            await handle.result(timeout=25)
            return time.monotonic() - killed, await handle.context()

    elapsed, ctx = asyncio.run(main())
    assert elapsed < 15, f"recovery took {elapsed:.1f} s"
    assert ctx["mark:a"] == ctx["mark:b"] == ctx["mark:c"] == 1


def test_the_cli_default_timings_are_the_librarys() -> None:
    from flowcraft.cli import build_parser
    from flowcraft.cli.worker import WorkerOptions
    from flowcraft.distributed.queue import LOCK_DURATION, STALLED_INTERVAL

    args = build_parser().parse_args(["worker", "--registry", "x:Y"])
    assert (args.lock_duration, args.stalled_interval) == (LOCK_DURATION, STALLED_INTERVAL)
    options = WorkerOptions(registry="x:Y", redis=None)  # type: ignore[arg-type]
    assert (options.lock_duration, options.stalled_interval) == (LOCK_DURATION, STALLED_INTERVAL)
    assert LOCK_DURATION + STALLED_INTERVAL < 15


def test_the_codec_writes_only_valid_json() -> None:
    """NaN / Infinity were written as bare ``NaN`` / ``Infinity`` (not JSON: other
    readers refuse them); now they are tagged, and read back as floats."""
    value = {"x": float("nan"), "y": [float("inf"), -float("inf"), 1.5]}
    text = encode(value, key="k")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    back = decode(text)
    assert math.isnan(back["x"]) and back["y"] == [float("inf"), -float("inf"), 1.5]
    assert decode("NaN") != decode("NaN")  # what older versions wrote is still read


def test_the_codec_reports_deep_nesting_as_a_codec_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CodecError, match="'k'.*nested too deeply"):
        encode(deep, key="k")
    with pytest.raises(CodecError, match="'k' is nested too deeply"):
        decode("[" * 100_000 + "]" * 100_000, key="k")


def test_the_codec_refuses_enum_members_instead_of_changing_their_type() -> None:
    """A ``StrEnum`` silently came back as ``str``; an Enum member is now refused, naming
    its value. As an action a ``StrEnum`` still travels as its text (edges match text)."""

    class Color(enum.StrEnum):
        RED = "red"

    with pytest.raises(CodecError, match=r"'c'.*Color.*store its \.value, 'red'"):
        encode(Color.RED, key="c")
    with pytest.raises(CodecError, match="Color"):
        encode({"nested": [Color.RED]}, key="c")
    assert decode_action(encode_action(Color.RED)) == "red"
    assert decode(encode(ContextKey("k"))) == "k"


@pytest.mark.timeout(60)
def test_a_stored_blueprint_that_does_not_match_its_hash_fails_the_run(space: Space) -> None:
    """The stored graph is content-addressed: a worker that reads one whose hash differs
    from its key (altered or corrupted in Redis) fails the run instead of running it."""
    bp = d.build(ONE)
    other = canonical_json(d.build({"nodes": [d.node("a", "fail")], "edges": []}))

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(bp)
            client = redis.asyncio.Redis.from_url(space.url)
            try:
                await client.set(Keys(space.prefix).blueprint(blueprint_hash(canonical_json(bp))), other)
            finally:
                await client.aclose()
            space.start_workers(1)
            with pytest.raises(WorkflowError, match="does not match its content hash"):
                await handle.result(timeout=20)
            return await handle.status()

    status = asyncio.run(main())
    assert status.error.phase == "hydrate" and status.error.type == "BlueprintNotFoundError"


@pytest.mark.timeout(90)
def test_two_applications_on_one_queue_never_fail_each_others_runs(space: Space) -> None:
    """Workers of two applications (different registries) share a queue. A worker that
    takes a job whose node types it does not know logs it and hands the job back; a run
    never fails because the wrong worker took its job — even one started before any
    worker that can run it is up (it waits)."""
    other = space.start_worker(extra_args=("--registry", "dist_nodes:OTHER_REGISTRY"))
    other.wait_ready()
    mine = d.build(d.fan_out(3))
    their_graph = {"nodes": [d.node("f", "fetch"), d.node("g", "fetch")], "edges": [d.edge("f", "g")]}
    theirs = GraphBuilder(d.OTHER_REGISTRY).build_blueprint(their_graph).blueprint

    async def main() -> list[Any]:
        async with space.executor() as executor:
            early = [await executor.start(mine) for _ in range(3)]  # only the other app's worker is up
            await asyncio.sleep(1.0)
            space.start_workers(1)
            later = [await executor.start(bp) for bp in (mine, theirs, mine, theirs)]
            return [await handle.result(timeout=40) for handle in [*early, *later]]

    results = asyncio.run(main())
    assert results == ["finished"] * 3 + ["finished", DEFAULT_ACTION, "finished", DEFAULT_ACTION]
    assert "no live worker on queue" in other.output() and "knows node type(s) collect, mark" in other.output()
