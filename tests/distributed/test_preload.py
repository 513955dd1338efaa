"""Fewer round trips per node job on a single Redis: a job that a BullMQ completion fetches
gets its run state read in that same round trip (``LOAD_NEXT``, pipelined after the
completion), and a commit that decides no successor goes in one MULTI with the job's
completion (``COMPLETE_HOLD``). The scripts on a real Redis, and a fan-out on a real worker
process that reads almost no state and commits almost nothing on its own."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft.distributed import Worker
from flowcraft.distributed.keys import Keys, wire_job_id
from flowcraft.distributed.loading import LOAD, LOAD_NEXT
from flowcraft.distributed.queue import GUARD, UNHOLD
from flowcraft.distributed.shards import ShardedJobQueue
from flowcraft.distributed.store import COMPLETE, COMPLETE_HOLD

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
        """``EVALSHA`` calls of ``script``; ``""``: ``EVAL`` calls (any script)."""
        wanted = [b"EVALSHA", sha(script).encode()] if script else [b"EVAL"]
        entries = client.slowlog_get(100_000)
        return sum(1 for e in entries if e["command"].split(b" ")[: len(wanted)] == wanted)

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

    action, context = space.run(d.fan_out(24))
    d.check_fan_out(action, context, 24)
    loads, preloads = script_calls(LOAD), script_calls(LOAD_NEXT)
    assert loads <= 26 // 2, f"{loads} of 26 jobs read their state on their own ({preloads} LOAD_NEXT)"
    assert preloads >= 26 - loads
    # the branches' commits go with their completions (the last one, which releases the join, cannot)
    completes, with_completion = script_calls(COMPLETE), script_calls("")
    assert completes <= 26 // 2, f"{completes} of 26 jobs committed on their own ({with_completion} with it)"
    assert with_completion >= 26 - completes


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


def _commit_args(rk: Any, job: str, node: str, arrivals: list[tuple[str, int]], joins: int = -1) -> list[Any]:
    """``COMPLETE``'s arguments for a commit that sets ``k`` and arrives at ``arrivals``."""
    args: list[Any] = [60, rk.join_prefix, job, node, '"default"', "1.0", 0, 1, "k", "1", 0, len(arrivals)]
    for succ, count in arrivals:
        args += [succ, f"r1:{succ}:", count]
    return [*args, joins]


def test_complete_hold_commits_a_commit_without_successors_and_holds_any_other(space: Space) -> None:
    """``COMPLETE_HOLD`` (sent after ``GUARD``, which sets the job's lock to ``hold:<token>``)
    commits like ``COMPLETE`` when the commit decides no successor, and then sets the lock
    back; a commit that would release a join (or decide a successor, or is a redelivery's)
    changes nothing and leaves the lock held, so that BullMQ's completion after it fails;
    ``UNHOLD`` sets the lock back."""
    client = redis.Redis.from_url(space.url, decode_responses=True)
    rk = Keys(space.prefix).run("r1")
    keys = [rk.meta, rk.ctx, rk.pending, rk.done, rk.visits, rk.open, rk.events, rk.stream]
    lock = f"{space.prefix}:q:job:lock"
    client.hset(rk.meta, "status", "running")
    client.hset(rk.pending, mapping={"r1:b1:1": "b1", "r1:b2:1": "b2", "r1:b3:1": "b3"})
    client.set(lock, "tok", px=60_000)
    hold = client.register_script(COMPLETE_HOLD)

    def commit(job: str, node: str, arrivals: list[tuple[str, int]]) -> Any:
        client.eval(GUARD, 1, lock, "tok")
        assert client.get(lock) == "hold:tok" and 0 < client.pttl(lock) <= 60_000
        return hold(keys=[*keys, lock], args=_commit_args(rk, job, node, arrivals))

    try:
        assert commit("r1:b1:1", "b1", [("join", 3)]) == ["ok", '"default"', ""]  # first arrival: committed
        assert client.get(lock) == "tok" and 0 < client.pttl(lock) <= 60_000
        assert commit("r1:b2:1", "b2", [("join", 3)])[0] == "ok"
        assert client.smembers(rk.join("join", 1)) == {"b1", "b2"} and client.hget(rk.ctx, "k") == "1"
        assert client.get(lock) == "tok"
        for job, node, arrivals in (
            ("r1:b3:1", "b3", [("join", 3)]),  # the last arrival releases the join
            ("r1:b3:1", "b3", [("next", 1)]),  # a successor of its own
            ("r1:b1:1", "b1", [("join", 3)]),  # a redelivery (b1 committed): its recorded successors
        ):
            client.set(lock, "tok", px=60_000)
            assert commit(job, node, arrivals) == ["hold", "", ""]
            assert client.get(lock) == "hold:tok" and 0 < client.pttl(lock) <= 60_000
            assert client.eval(UNHOLD, 1, lock, "tok") == 1 and client.get(lock) == "tok"
        assert client.smembers(rk.join("join", 1)) == {"b1", "b2"}  # the holds changed nothing
        assert client.hkeys(rk.done) == ["r1:b1:1", "r1:b2:1"] and client.hlen(rk.pending) == 1
        assert client.eval(UNHOLD, 1, lock, "other") == 0 and client.get(lock) == "tok"  # not ours: untouched
        client.set(lock, "other", px=60_000)
        assert client.eval(GUARD, 1, lock, "tok") is None and client.get(lock) == "other"  # not ours: untouched
        client.set(lock, "tok", px=60_000)
        # the same last arrival through COMPLETE itself releases the join
        done = client.register_script(COMPLETE)(keys=keys, args=_commit_args(rk, "r1:b3:1", "b3", [("join", 3)], 0))
        assert done == ["ok", '"default"', "", "join", "r1:join:1"]
    finally:
        client.delete(*keys, lock, rk.join("join", 1))
        client.close()


@pytest.mark.timeout(120)
def test_a_fan_out_completes_when_redis_forgets_the_commit_script_but_not_bullmqs(space: Space) -> None:
    """A branch's commit goes by sha in one MULTI with BullMQ's completion of its job. Each
    branch here empties Redis' script cache and loads BullMQ's scripts again before its
    commit (as another worker does after a restart): the commit finds its script missing
    and BullMQ's completion present. The completion must then fail too (the job's lock is
    held until the commit sets it back), else the job would be done with its commit lost
    and the run would never end."""
    space.start_workers(1, concurrency=2)
    width = 12
    graph = d.fan_out(width)
    for branch in graph["nodes"][1 : width + 1]:
        branch.update(type="forget_scripts", data={**branch["data"], "url": space.url})

    action, context = space.run(graph)
    d.check_fan_out(action, context, width)


@pytest.mark.timeout(120)
def test_a_commit_whose_script_redis_forgot_never_lets_its_job_complete(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the MULTI of a commit with its job's completion, the commit's script goes by sha:
    when Redis has forgotten it (but not BullMQ's, which another worker loaded again),
    BullMQ's completion after it fails too, changing nothing (``GUARD`` held the lock), so
    that a worker dying right then leaves the job to stalled-job recovery, never completed
    with its commit lost. A worker in this process, its MULTIs' answers watched."""
    import flowcraft.distributed.queue as queue_module

    sent = queue_module.transaction
    answers: list[list[Any]] = []

    async def watched(client: Any, commands: Any) -> list[Any]:
        result = await sent(client, commands)
        if str(commands[0][0]) == "EVAL" and commands[0][1] == GUARD:
            answers.append(result)
        return result

    monkeypatch.setattr(queue_module, "transaction", watched)
    width = 6
    graph = d.fan_out(width)
    for branch in graph["nodes"][1 : width + 1]:
        branch.update(type="forget_scripts", data={**branch["data"], "url": space.url})

    action, context = space.run_in_process(graph, concurrency=1)
    assert action == "finished" and context["total"] == width + 1
    forgotten = [result for result in answers if isinstance(result[1], redis.exceptions.NoScriptError)]
    assert forgotten, f"no commit found its script missing ({len(answers)} commits with their completion)"
    for result in forgotten:
        done = result[2]
        assert isinstance(done, BaseException) or (isinstance(done, int) and done < 0), result


def test_on_a_cluster_a_worker_takes_the_three_round_trips(cluster_space: Space) -> None:
    """``LOAD_NEXT`` and ``COMPLETE_HOLD`` read keys of other slots: a cluster worker's
    queues never use them (each job reads its state and commits on its own), and asking
    a cluster queue for them is refused."""

    async def main() -> None:
        worker = Worker(
            d.REGISTRY, cluster_space.url, queue=cluster_space.queue, prefix=cluster_space.prefix,
            cluster=True, queue_shards=2,
        )  # fmt: skip
        await worker.connect()
        try:
            queue = worker._queue
            assert isinstance(queue, ShardedJobQueue)
            assert all(shard._preload is None for shard in queue.shards)
            with pytest.raises(ValueError, match="standalone Redis"):
                queue.shards[0].preload_states("p:run:{", 10)
        finally:
            await worker.aclose()

    asyncio.run(main())
