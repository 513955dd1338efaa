"""A job that a BullMQ completion fetches gets its run state read in that same round trip
(``LOAD_NEXT``, pipelined after the completion; standalone Redis): the script on a real
Redis, and a fan-out on a real worker process that reads almost no state on its own."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft.distributed.keys import Keys, wire_job_id
from flowcraft.distributed.loading import LOAD, LOAD_NEXT

from .conftest import Space


def sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


@pytest.fixture
def script_calls(redis_url: str) -> Iterator[Any]:
    """``calls(script)``: how many times Redis ran ``script`` (by ``EVALSHA``) since the
    fixture started, read from the slow log with every command logged."""
    client = redis.Redis.from_url(redis_url)
    old = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()

    def calls(script: str) -> int:
        wanted = sha(script).encode()
        entries = client.slowlog_get(100_000)
        return sum(1 for e in entries if e["command"].split(b" ")[:2] == [b"EVALSHA", wanted])

    try:
        yield calls
    finally:
        for name, value in old.items():
            client.config_set(name, value)
        client.slowlog_reset()
        client.close()


@pytest.mark.timeout(120)
def test_fan_out_jobs_a_completion_fetched_come_with_their_state(space: Space, script_calls: Any) -> None:
    """Of a fan-out's 26 jobs on one worker (2 slots), only the ones a slot fetched on its
    own (not with a completion) read their state with ``LOAD``; the results are the same.
    Before ``LOAD_NEXT``, every job read its state (26 ``LOAD`` calls)."""
    space.start_workers(1, concurrency=2)

    async def main() -> tuple[Any, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(d.fan_out(24)), {})
            return await handle.result(timeout=60), await handle.context()

    action, context = asyncio.run(main())
    assert action == "finished"
    assert context["total"] == 25 and context["collected"] == 1
    assert all(context[f"mark:b{i}"] == 1 for i in range(24))
    loads, preloads = script_calls(LOAD), script_calls(LOAD_NEXT)
    assert loads <= 26 // 2, f"{loads} of 26 jobs read their state on their own ({preloads} LOAD_NEXT)"
    assert preloads >= 26 - loads


def _queue_job(client: redis.Redis, prefix: str, queue: str, run_id: str, node_id: str, token: str) -> str:
    """A job as BullMQ leaves it after fetching it with lock ``token``: at the head of the
    active list, locked, with its data."""
    wire = wire_job_id(f"{run_id}:{node_id}:1")
    client.lpush(f"{prefix}:{queue}:active", wire)
    client.set(f"{prefix}:{queue}:{wire}:lock", token)
    client.hset(f"{prefix}:{queue}:{wire}", "data", json.dumps({"r": run_id, "n": node_id, "b": "g"}))
    return wire


def test_load_next_reads_the_state_of_the_job_just_fetched_with_its_token(space: Space) -> None:
    """``LOAD_NEXT`` finds the job at the head of the active list locked with the token,
    derives its run's keys from its data and its engine id from its queue id (escapes
    undone: a node id with ``:``, ``|`` and ``%``), and answers what ``LOAD`` would."""
    client = redis.Redis.from_url(space.url)
    prefix, queue = space.prefix, "q"
    active = f"{prefix}:{queue}:active"
    rk = Keys(prefix).run("r1")
    node_id = "sub:x|y%z"
    engine = f"r1:{node_id}:1"
    client.hset(rk.meta, mapping={"status": "running", "params": "{}"})
    client.hset(rk.ctx, mapping={"small": "1", "big": json.dumps("x" * 100)})
    script = client.register_script(LOAD_NEXT)
    load = client.register_script(LOAD)

    def load_next(token: str, *skip: str) -> Any:
        return script(keys=[active], args=[f"{prefix}:{queue}:", token, f"{prefix}:run:{{", 50, *skip])

    try:
        assert load_next("t1") is None  # nothing fetched
        wire = _queue_job(client, prefix, queue, "r1", node_id, "t1")
        assert wire == "r1|sub|x%7Cy%25z|1"
        answer = load_next("t1")
        assert answer[:2] == [wire.encode(), b"r1"]
        assert answer[2] == load(keys=[rk.meta, rk.ctx, rk.done], args=[engine, 50])
        state = answer[2]
        assert state[0] == b"running" and state[5] is None
        assert dict(zip(state[6::2], state[7::2], strict=True)) == {b"small": b"1", b"big": None}  # big: on demand
        assert load_next("t2") is None  # another token's job at the head
        assert load_next("t1", wire) is None  # a job whose state the worker keeps
        client.hset(rk.done, engine, json.dumps({"a": '"default"', "j": []}))  # a redelivery: its done record
        state = load_next("t1")[2]
        assert len(state) == 6 and json.loads(state[5]) == {"a": '"default"', "j": []}
        client.hset(f"{prefix}:{queue}:{wire}", "data", "not json")  # unreadable data: the worker reads itself
        assert load_next("t1") is None
    finally:
        client.delete(active, f"{prefix}:{queue}:{wire}:lock", f"{prefix}:{queue}:{wire}")
        client.close()
