"""Run events of distributed runs: real Redis, real worker subprocesses.

Structural pass-through nodes (the parallel containers the builder inserts before a
fan-out) run no user code on the workers and emit no node events; the comparisons with
in-memory runs leave them out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft import AbortController, AbortError, TypedContext, WorkflowError
from flowcraft.distributed import EventsNotEnabledError, RemoteNodeError
from flowcraft.engine.eventlog import decode_event
from flowcraft.events import (
    ContextChanged,
    FallbackUsed,
    NodeEvent,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    RetryAttempt,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
)
from flowcraft.graph import BlueprintExecutor

from .conftest import Space

USER_NODES = {"a", "b0", "b1", "b2", "join", "fl"}


def fan_graph() -> dict[str, Any]:
    graph = d.fan_out(3)
    graph["nodes"].insert(0, d.node("fl", "flaky"))
    graph["edges"].insert(0, d.edge("fl", "a"))
    return graph


def node_pairs(events: list[RunEvent], kinds: tuple[type[NodeEvent], ...]) -> list[tuple[str, str | None]]:
    return sorted((type(e).__name__, e.node_id) for e in events if isinstance(e, kinds) and e.node_id in USER_NODES)


@pytest.mark.timeout(60)
def test_fan_out_fan_in_listener_gets_the_in_memory_events(space: Space) -> None:
    space.start_workers(2, concurrency=4)
    flow = BlueprintExecutor(d.build(fan_graph()), d.REGISTRY).flow
    seen: list[RunEvent] = []
    threads: set[int] = set()

    def listener(event: RunEvent) -> None:
        seen.append(event)
        threads.add(threading.get_ident())
        if isinstance(event, NodeStarted) and event.node_id == "b1":
            raise RuntimeError("a broken listener never breaks the run")

    async def main() -> Any:
        async with space.executor() as executor:
            return await flow.run(TypedContext({"doomed": 1}), executor=executor, on_event=listener)

    action = asyncio.run(main())
    assert action == "finished"
    assert threads == {threading.get_ident()}  # delivered in the client's event loop
    assert isinstance(seen[0], RunStarted)
    assert isinstance(seen[-1], RunFinished) and seen[-1].action == "finished"
    assert sum(isinstance(e, (RunStarted, RunFinished, RunFailed, RunCancelled)) for e in seen) == 2
    run_id = seen[0].run_id
    assert all(e.run_id == run_id for e in seen)
    assert len(run_id) == 32

    kinds = (NodeStarted, NodeFinished, ContextChanged, RetryAttempt, FallbackUsed, NodeFailed)
    memory: list[RunEvent] = []
    asyncio.run(flow.run(TypedContext({"doomed": 1}), on_event=memory.append))
    assert node_pairs(seen, kinds) == node_pairs(memory, kinds)
    started = [e.node_id for e in seen if isinstance(e, NodeStarted)]
    assert sorted(started) == sorted(USER_NODES)  # one pair per node that ran; containers left out

    by_node = {(type(e).__name__, e.node_id): e for e in seen if isinstance(e, NodeEvent)}
    for node in USER_NODES:  # started before finished, per node
        assert seen.index(by_node["NodeStarted", node]) < seen.index(by_node["NodeFinished", node])
    b0 = by_node["ContextChanged", "b0"]
    assert isinstance(b0, ContextChanged)
    assert set(b0.keys_set) == {"mark:b0", "in:b0"} and b0.keys_deleted == ()
    fl = by_node["ContextChanged", "fl"]
    assert isinstance(fl, ContextChanged)
    assert fl.keys_set == ("flaky",) and fl.keys_deleted == ("doomed",)
    join = by_node["NodeFinished", "join"]
    assert isinstance(join, NodeFinished) and join.action == "finished" and join.duration >= 0
    retry = by_node["RetryAttempt", "fl"]
    assert isinstance(retry, RetryAttempt) and (retry.attempt, retry.max_attempts) == (1, 2)
    assert isinstance(retry.error, RemoteNodeError) and retry.error.type_name == "RuntimeError"
    assert "flaky" in str(retry.error)
    assert isinstance(by_node["FallbackUsed", "fl"], FallbackUsed)
    assert seen.index(by_node["NodeFinished", "fl"]) < seen.index(by_node["NodeStarted", "a"])


@pytest.mark.timeout(60)
def test_failing_node_gives_node_failed_then_run_failed(space: Space) -> None:
    space.start_workers(1)
    flow = BlueprintExecutor(
        d.build({"nodes": [d.node("a"), d.node("bad", "fail")], "edges": [d.edge("a", "bad")]}), d.REGISTRY
    ).flow
    seen: list[RunEvent] = []

    async def main() -> None:
        async with space.executor() as executor:
            with pytest.raises(WorkflowError, match="boom in bad"):
                await flow.run(TypedContext(), executor=executor, on_event=seen.append)

    asyncio.run(main())
    assert isinstance(seen[0], RunStarted)
    failed = [e for e in seen if isinstance(e, NodeFailed)]
    assert len(failed) == 1 and failed[0].node_id == "bad" and failed[0].phase == "exec"
    error = failed[0].error
    assert isinstance(error, WorkflowError) and error.phase == "exec"
    assert isinstance(error.original_error, RemoteNodeError) and error.original_error.type_name == "ValueError"
    assert "boom in bad" in str(error)
    assert seen.index(failed[0]) == len(seen) - 2
    last = seen[-1]
    assert isinstance(last, RunFailed) and isinstance(last.error, WorkflowError)
    assert "boom in bad" in str(last.error)
    assert not any(isinstance(e, NodeFinished) and e.node_id == "bad" for e in seen)


@pytest.mark.timeout(60)
def test_cancelled_run_ends_with_run_cancelled_and_queued_jobs_are_skipped(space: Space) -> None:
    space.start_workers(1, concurrency=1)
    graph = {
        "nodes": [d.node("a"), d.node("x", "blocker"), d.node("y", "blocker"), d.node("join", "collect")],
        "edges": [d.edge("a", "x"), d.edge("a", "y"), d.edge("x", "join"), d.edge("y", "join")],
    }
    flow = BlueprintExecutor(d.build(graph), d.REGISTRY).flow
    controller = AbortController()
    seen: list[RunEvent] = []

    def listener(event: RunEvent) -> None:
        seen.append(event)
        if isinstance(event, NodeStarted) and event.node_id in ("x", "y"):
            controller.abort("stop from the listener")

    async def main() -> None:
        async with space.executor() as executor:
            with pytest.raises(AbortError):
                await flow.run(TypedContext(), executor=executor, controller=controller, on_event=listener)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 15
    assert isinstance(seen[0], RunStarted)
    assert isinstance(seen[-1], RunCancelled) and "stop from the listener" in str(seen[-1].reason)
    assert sum(isinstance(e, (RunFinished, RunFailed, RunCancelled)) for e in seen) == 1
    assert not any(isinstance(e, NodeStarted) and e.node_id == "join" for e in seen)

    # the other branch's job, queued behind the cancelled one, is skipped after the end
    client = redis.Redis.from_url(space.url, decode_responses=True)
    try:
        stream = f"{space.prefix}:run:{{{seen[0].run_id}}}:stream"
        deadline = time.monotonic() + 10
        skipped: list[NodeSkipped] = []
        while not skipped and time.monotonic() < deadline:
            entries = client.xrange(stream)
            decoded = [decode_event(f["e"]) for _, f in entries if "e" in f]
            skipped = [e for e in decoded if isinstance(e, NodeSkipped)]
            time.sleep(0.1)
        assert skipped and skipped[0].node_id in ("x", "y") and "cancelled" in skipped[0].reason
        assert client.ttl(stream) > 0  # like every run key, once the run ended
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_handle_events_streams_a_run_started_elsewhere(space: Space) -> None:
    space.start_workers(1)
    blueprint = d.build({"nodes": [d.node("a"), d.node("b", action="end")], "edges": [d.edge("a", "b")]})

    async def main() -> tuple[list[RunEvent], Any]:
        async with space.executor() as starter, space.executor() as follower:
            handle = await starter.start(blueprint, {"n": 1}, params={"p": 2}, events=True)
            other = await follower.handle(handle.run_id)
            collected = [event async for event in other.events(block=0.2)]
            return collected, await handle.result(timeout=10)

    events, action = asyncio.run(main())
    assert action == "end"
    assert isinstance(events[0], RunStarted) and events[0].params == {"p": 2}
    assert isinstance(events[-1], RunFinished) and events[-1].action == "end" and events[-1].duration >= 0
    assert [(type(e).__name__, e.node_id) for e in events if isinstance(e, (NodeStarted, NodeFinished))] == [
        ("NodeStarted", "a"), ("NodeFinished", "a"), ("NodeStarted", "b"), ("NodeFinished", "b"),
    ]  # fmt: skip


@pytest.mark.timeout(60)
def test_runs_without_listener_write_no_event_stream(space: Space) -> None:
    space.start_workers(1)
    blueprint = d.build(d.fan_out(2))
    flow = BlueprintExecutor(blueprint, d.REGISTRY).flow

    async def main() -> None:
        async with space.executor() as executor:
            assert await flow.run(TypedContext(), executor=executor) == "finished"
            handle = await executor.start(blueprint)
            assert await handle.result(timeout=10) == "finished"
            with pytest.raises(EventsNotEnabledError):
                async for _ in handle.events():
                    pass

    asyncio.run(main())
    client = redis.Redis.from_url(space.url, decode_responses=True)
    try:
        assert list(client.scan_iter(match=f"{space.prefix}:run:*:stream")) == []
        metas = list(client.scan_iter(match=f"{space.prefix}:run:*:meta"))
        assert len(metas) == 2 and all(client.hget(m, "events") is None for m in metas)
    finally:
        client.close()
