"""A wide fan-out on one Redis: the job that decides more than ``ADD_CHUNK`` successors
adds the first ones ahead, ``ADD_CHUNK`` per MULTI, so that other workers start on them
while it adds the rest, and completes only with its last ones. Real Redis; the first
test watches the MULTIs of a worker in this process, the second runs a worker process."""

from __future__ import annotations

from typing import Any

import dist_nodes as d
import pytest

from flowcraft.distributed.queue import ADD_CHUNK

from .conftest import Space

ADD_KEYS = 9  # addStandardJob's keys: how its EVALSHA is told apart in a MULTI


@pytest.mark.timeout(120)
def test_a_wide_fan_out_adds_its_first_successors_ahead_of_its_completion(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, all the successors went in the one MULTI that completes the job: no
    other worker could start a branch until the last one was packed and added."""
    import flowcraft.distributed.queue as queue_module

    sent = queue_module.transaction
    multis: list[tuple[int, int]] = []  # (successors added, other commands) per MULTI with adds

    async def watched(client: Any, commands: Any) -> list[Any]:
        adds = sum(1 for c in commands if str(c[0]) == "EVALSHA" and c[2] == ADD_KEYS)
        if adds:
            multis.append((adds, len(commands) - adds))
        return await sent(client, commands)

    monkeypatch.setattr(queue_module, "transaction", watched)
    width = 2 * ADD_CHUNK + 44

    action, context = space.run_in_process(d.fan_out(width), concurrency=4)
    d.check_fan_out(action, context, width)
    # the fan-out's adds (not the lone successors of other jobs, e.g. the join's): two
    # chunks alone, then the rest with the job's completion (and the next job's state)
    wide = [multi for multi in multis if multi[0] > 1]
    assert wide == [(ADD_CHUNK, 0), (ADD_CHUNK, 0), (44, wide[-1][1])], multis
    assert wide[-1][1] >= 1


@pytest.mark.timeout(120)
def test_a_wide_fan_out_finishes_when_redis_forgot_every_script(space: Space) -> None:
    """The job that fans out empties Redis' script cache first (a restart, as far as
    scripts go): its first MULTI of successors finds BullMQ's add script missing; the run
    still ends as in memory, each branch run once. A worker process. (The worker loads the
    script again and sends that MULTI again; were it to give up instead, the job's retry
    would add them, as BullMQ reloads its scripts: this checks the outcome, not the path.)"""
    space.start_workers(1, concurrency=4)
    width = 2 * ADD_CHUNK + 10
    graph = d.fan_out(width)
    graph["nodes"][0].update(type="flush_scripts", data={**graph["nodes"][0]["data"], "url": space.url})

    action, context = space.run(graph)
    d.check_fan_out(action, context, width)
